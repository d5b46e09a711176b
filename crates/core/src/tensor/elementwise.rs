//! Elementwise ops: unary maths, broadcasting binaries, scalar forms, comparisons, where.

use super::{same_device_dtype, Tensor};
use crate::op::Op;
use crate::params::{BinaryOp, CmpOp, UnaryOp};
use crate::{Error, Result};

macro_rules! unary_fns {
    ($($(#[$m:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $($(#[$m])* pub fn $name(&self) -> Result<Tensor> { self.unary_op($op) })*
        }
    };
}

unary_fns! {
    /// `-x`.
    neg => UnaryOp::Neg;
    /// `|x|`.
    abs => UnaryOp::Abs;
    /// `e^x`.
    exp => UnaryOp::Exp;
    /// Natural logarithm.
    log => UnaryOp::Log;
    /// Square root.
    sqrt => UnaryOp::Sqrt;
    /// `1/sqrt(x)`.
    rsqrt => UnaryOp::Rsqrt;
    /// Sine.
    sin => UnaryOp::Sin;
    /// Cosine.
    cos => UnaryOp::Cos;
    /// Hyperbolic tangent.
    tanh => UnaryOp::Tanh;
    /// Logistic sigmoid.
    sigmoid => UnaryOp::Sigmoid;
    /// `max(x, 0)`; NaN stays NaN (as PyTorch).
    relu => UnaryOp::Relu;
    /// GELU, exact (erf) form.
    gelu => UnaryOp::GeluErf;
    /// GELU, tanh approximation.
    gelu_tanh => UnaryOp::GeluTanh;
    /// The error function, as `torch.erf`: same shape and dtype out; libm's `erf` in f64,
    /// rounded once to the dtype (CUDA: `erff`/`erf`).
    ///
    /// # Errors
    /// `UnsupportedDType` for integer and bool tensors.
    erf => UnaryOp::Erf;
    /// -1, 0 or 1; NaN for NaN (PyTorch gives 0: a deliberate difference, see the README).
    sign => UnaryOp::Sign;
    /// `1/x`.
    recip => UnaryOp::Recip;
    /// `x*x`.
    square => UnaryOp::Square;
}

impl Tensor {
    /// Applies an elementwise op (recorded for autograd).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` when `op` is not defined for the dtype (transcendental ops on
    /// integers, anything but `Relu`/`Abs`/`Clamp`/`Affine` on u8, any op on bool).
    pub fn unary_op(&self, op: UnaryOp) -> Result<Tensor> {
        if matches!(
            op,
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Recip | UnaryOp::Rsqrt | UnaryOp::Powf(_)
        ) {
            if let Some(x) = crate::autocast::to_f32(self)? {
                return x.unary_op(op);
            }
        }
        let s = self.storage().unary(self.layout(), op)?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::Unary(self.clone(), op),
            &[self],
        ))
    }

    /// `x if x > 0 else slope * x`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for integer and bool tensors.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::LeakyRelu(slope))
    }

    /// `x ^ e` for a scalar exponent.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for integer and bool tensors.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::Powf(e))
    }

    /// Clamps into `[lo, hi]` (use infinities for one-sided clamps); NaN stays NaN.
    ///
    /// # Errors
    /// `Error::Msg` when `lo > hi`; `Error::UnsupportedDType` for bool tensors.
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Tensor> {
        if lo > hi {
            return Err(Error::msg(format!(
                "clamp: min {lo} is greater than max {hi}"
            )));
        }
        self.unary_op(UnaryOp::Clamp(lo, hi))
    }

    /// `x * mul + add`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.unary_op(UnaryOp::Affine(mul, add))
    }

    /// `x + s`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(1.0, s)
    }
    /// `x - s`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn sub_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(1.0, -s)
    }
    /// `x * s`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(s, 0.0)
    }
    /// `x / s`.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn div_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(1.0 / s, 0.0)
    }

    /// Broadcasts two tensors to their common shape (recorded as expands).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` (named `op`) when the shapes do not broadcast.
    pub fn broadcast_pair(&self, rhs: &Tensor, op: &'static str) -> Result<(Tensor, Tensor)> {
        if self.shape() == rhs.shape() {
            return Ok((self.clone(), rhs.clone()));
        }
        let shape = self.shape().broadcast_with(rhs.shape(), op)?;
        Ok((self.broadcast_to(shape.clone())?, rhs.broadcast_to(shape)?))
    }

    /// Elementwise op with NumPy broadcasting.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when the shapes do not broadcast, `Error::DTypeMismatch` /
    /// `Error::DeviceMismatch` when the operands differ in dtype or device,
    /// `Error::UnsupportedDType` when `op` is not defined for the dtype.
    pub fn binary_op(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let name = match op {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Pow => "pow",
        };
        if let Some(dt) = crate::autocast::promote(self.dtype(), rhs.dtype()) {
            return self.to_dtype(dt)?.binary_op(&rhs.to_dtype(dt)?, op);
        }
        same_device_dtype(self, rhs, name)?;
        let (a, b) = self.broadcast_pair(rhs, name)?;
        let s = a
            .storage()
            .binary(a.layout(), &**b.storage(), b.layout(), op)?;
        Ok(Tensor::from_storage(
            s,
            a.shape().clone(),
            || Op::Binary(a.clone(), b.clone(), op),
            &[&a, &b],
        ))
    }

    /// `a + b`.
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Add)
    }
    /// `a - b`.
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Sub)
    }
    /// `a * b`.
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Mul)
    }
    /// `a / b`.
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Div)
    }
    /// Elementwise maximum (NaN propagates).
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Maximum)
    }
    /// Elementwise minimum (NaN propagates).
    ///
    /// # Errors
    /// As [`Tensor::binary_op`].
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Minimum)
    }
    /// `a ^ b` elementwise.
    ///
    /// # Errors
    /// As [`Tensor::binary_op`]; integer and bool dtypes are `Error::UnsupportedDType`.
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Pow)
    }

    /// A 0-dim tensor of `v` with this tensor's dtype and device.
    ///
    /// # Errors
    /// Device errors only.
    pub fn scalar_like(&self, v: f64) -> Result<Tensor> {
        Tensor::full(v, crate::Shape::new(vec![]), self.dtype(), &self.device())
    }

    /// Comparison with broadcasting, giving a bool mask (no gradient; recorded only by a
    /// graph capture, as [`Op::Cmp`]).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when the shapes do not broadcast; `Error::DTypeMismatch` /
    /// `Error::DeviceMismatch` when the operands differ in dtype or device.
    pub fn cmp_op(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        same_device_dtype(self, rhs, "compare")?;
        let shape = self.shape().broadcast_with(rhs.shape(), "compare")?;
        let (la, lb) = (
            self.layout().broadcast_as(&shape)?,
            rhs.layout().broadcast_as(&shape)?,
        );
        let s = self.storage().cmp(&la, &**rhs.storage(), &lb, op)?;
        Ok(Tensor::from_storage(
            s,
            shape,
            || Op::Cmp(self.clone(), rhs.clone(), op),
            &[],
        ))
    }

    /// `a == b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Eq)
    }
    /// `a != b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Ne)
    }
    /// `a < b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Lt)
    }
    /// `a <= b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Le)
    }
    /// `a > b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Gt)
    }
    /// `a >= b`.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`].
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.cmp_op(rhs, CmpOp::Ge)
    }

    /// Comparison with a scalar.
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`] (the scalar takes `self`'s dtype).
    pub fn cmp_scalar(&self, v: f64, op: CmpOp) -> Result<Tensor> {
        self.cmp_op(&self.scalar_like(v)?, op)
    }

    /// `where(self, t, f)`: picks `t` where this mask is true, else `f` (all broadcast).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` when `self` is not bool; `Error::ShapeMismatch` when the three
    /// shapes do not broadcast; `Error::DTypeMismatch` / `Error::DeviceMismatch` when `t` and `f`
    /// differ.
    pub fn where_cond(&self, t: &Tensor, f: &Tensor) -> Result<Tensor> {
        same_device_dtype(t, f, "where")?;
        if self.device() != t.device() {
            return Err(Error::DeviceMismatch {
                op: "where",
                lhs: self.device(),
                rhs: t.device(),
            });
        }
        let shape = self
            .shape()
            .broadcast_with(t.shape(), "where")?
            .broadcast_with(f.shape(), "where")?;
        let cl = self.layout().broadcast_as(&shape)?;
        let (t, f) = (
            t.broadcast_to(shape.clone())?,
            f.broadcast_to(shape.clone())?,
        );
        let s = self.storage().where_cond(
            &cl,
            &**t.storage(),
            t.layout(),
            &**f.storage(),
            f.layout(),
        )?;
        let cond = self.clone();
        Ok(Tensor::from_storage(
            s,
            shape,
            || Op::Where(cond, t.clone(), f.clone()),
            &[&t, &f],
        ))
    }
}

macro_rules! std_ops {
    ($tr:ident, $m:ident, $f:ident) => {
        impl std::ops::$tr<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$f(self, rhs)
            }
        }
        impl std::ops::$tr<Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$f(&self, &rhs)
            }
        }
        impl std::ops::$tr<&Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $m(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$f(&self, rhs)
            }
        }
    };
}
std_ops!(Add, add, add);
std_ops!(Sub, sub, sub);
std_ops!(Mul, mul, mul);
std_ops!(Div, div, div);
