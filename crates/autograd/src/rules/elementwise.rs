//! Rules for elementwise ops: unary maths, binaries (inputs already broadcast), where.

use mlfw_core::{BinaryOp, CmpOp, Result, Tensor, UnaryOp};
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

/// Gradient of a unary op with input `x`, output `y`, upstream `g`.
///
/// # Errors
/// An op on `x`, `y` or `g` failing: shapes, dtypes or devices that do not match
/// (`Error::Shape`, `Error::DType`, a device error).
pub fn unary(x: &Tensor, y: &Tensor, g: &Tensor, op: UnaryOp) -> Result<Tensor> {
    use UnaryOp as U;
    match op {
        U::Neg => g.neg(),
        // PyTorch: g·sgn(x) with sgn(0) = sgn(NaN) = 0 (mlfw's sign(NaN) is NaN, so not x.sign()).
        U::Abs => g.mul(&step(x, CmpOp::Gt, g)?.sub(&step(x, CmpOp::Lt, g)?)?),
        U::Exp => g.mul(y),
        U::Log => g.div(x),
        U::Sqrt => g.div(y)?.mul_scalar(0.5),
        U::Rsqrt => g.mul(&y.powf(3.0)?)?.mul_scalar(-0.5),
        U::Sin => g.mul(&x.cos()?),
        U::Cos => g.mul(&x.sin()?)?.neg(),
        U::Tanh => g.mul(&y.square()?.affine(-1.0, 1.0)?),
        U::Sigmoid => g.mul(&y.mul(&y.affine(-1.0, 1.0)?)?),
        // PyTorch's threshold_backward: 0 where y <= 0, else g, so a NaN input passes g on.
        U::Relu => y
            .cmp_scalar(0.0, CmpOp::Le)?
            .where_cond(&g.scalar_like(0.0)?, g),
        U::GeluErf => g.mul(&gelu_erf_grad(x)?),
        U::GeluTanh => g.mul(&gelu_tanh_grad(x)?),
        U::Erf => g.mul(&x.square()?.neg()?.exp()?.mul_scalar(FRAC_2_SQRT_PI)?),
        U::Sign => g.zeros_like(),
        U::Recip => g.mul(&y.square()?)?.neg(),
        U::Square => g.mul(x)?.mul_scalar(2.0),
        U::LeakyRelu(s) => x
            .cmp_scalar(0.0, CmpOp::Gt)?
            .where_cond(g, &g.mul_scalar(s)?),
        U::Powf(e) => {
            if e == 0.0 {
                g.zeros_like()
            } else {
                g.mul(&x.powf(e - 1.0)?)?.mul_scalar(e)
            }
        }
        U::Clamp(lo, hi) => {
            let inside = x
                .cmp_scalar(lo, CmpOp::Ge)?
                .to_dtype(g.dtype())?
                .mul(&x.cmp_scalar(hi, CmpOp::Le)?.to_dtype(g.dtype())?)?;
            g.mul(&inside)
        }
        U::Affine(m, _) => g.mul_scalar(m),
    }
}

/// `gelu'(x) = Φ(x) + x·φ(x)` for the erf form `gelu(x) = x·Φ(x)`, as PyTorch's
/// `GeluBackward` computes it; built from differentiable ops, so its own gradient
/// (`φ(x)(2 − x²)`) follows.
fn gelu_erf_grad(x: &Tensor) -> Result<Tensor> {
    let cdf = x.mul_scalar(FRAC_1_SQRT_2)?.erf()?.affine(0.5, 0.5)?;
    let pdf = x
        .square()?
        .mul_scalar(-0.5)?
        .exp()?
        .mul_scalar(FRAC_2_SQRT_PI * FRAC_1_SQRT_2 * 0.5)?;
    cdf.add(&x.mul(&pdf)?)
}

/// `gelu'(x) = ½(1 + t) + ½x·(1 − t²)·c(1 + 3kx²)` for the tanh form
/// `gelu(x) = ½x(1 + t)`, `t = tanh(c(x + kx³))`, `c = √(2/π)`, `k = 0.044715`; the order of
/// the products is PyTorch's (`GeluBackward`, approximate='tanh').
fn gelu_tanh_grad(x: &Tensor) -> Result<Tensor> {
    let c = FRAC_2_SQRT_PI * FRAC_1_SQRT_2;
    let k = 0.044_715;
    let x2 = x.square()?;
    let t = x.mul(&x2.affine(k, 1.0)?)?.mul_scalar(c)?.tanh()?;
    let dt = t
        .square()?
        .affine(-1.0, 1.0)?
        .mul(&x2.affine(3.0 * k * c, c)?)?;
    t.affine(0.5, 0.5)?.add(&x.mul_scalar(0.5)?.mul(&dt)?)
}

/// Gradients of a binary op on same-shaped inputs `a`, `b` with output `y`.
///
/// # Errors
/// An op on `a`, `b`, `y` or `g` failing: shapes, dtypes or devices that do not match.
pub fn binary(
    a: &Tensor,
    b: &Tensor,
    y: &Tensor,
    g: &Tensor,
    op: BinaryOp,
) -> Result<(Tensor, Tensor)> {
    Ok(match op {
        BinaryOp::Add => (g.clone(), g.clone()),
        BinaryOp::Sub => (g.clone(), g.neg()?),
        BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
        BinaryOp::Div => {
            let ga = g.div(b)?;
            (ga.clone(), ga.mul(y)?.neg()?)
        }
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // PyTorch: ties split the gradient evenly and only the loser gets none, so where
            // either side is NaN (no order) both get all of it.
            let (a_loses, b_loses) = if op == BinaryOp::Maximum {
                (CmpOp::Lt, CmpOp::Gt)
            } else {
                (CmpOp::Gt, CmpOp::Lt)
            };
            let half_tie = step_op(a, b, CmpOp::Eq, g)?.mul_scalar(0.5)?;
            let wa = step_op(a, b, a_loses, g)?
                .add(&half_tie)?
                .affine(-1.0, 1.0)?;
            let wb = step_op(a, b, b_loses, g)?
                .add(&half_tie)?
                .affine(-1.0, 1.0)?;
            (g.mul(&wa)?, g.mul(&wb)?)
        }
        BinaryOp::Pow => {
            // PyTorch masks the singular points: no base gradient where the exponent is 0
            // (0^-1 · 0 would be NaN), no exponent gradient where the base is 0 and the
            // exponent >= 0 (0 · log 0 would be NaN).
            let zero = g.scalar_like(0.0)?;
            let ga = g.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0)?)?)?;
            let ga = b.cmp_scalar(0.0, CmpOp::Eq)?.where_cond(&zero, &ga)?;
            let gb = g.mul(y)?.mul(&a.log()?)?;
            let base0 = a
                .cmp_scalar(0.0, CmpOp::Eq)?
                .mul(&b.cmp_scalar(0.0, CmpOp::Ge)?)?;
            (ga, base0.where_cond(&zero, &gb)?)
        }
    })
}

/// `1` where `x op 0`, else `0`, in `like`'s dtype (a NaN compares false: 0).
fn step(x: &Tensor, op: CmpOp, like: &Tensor) -> Result<Tensor> {
    x.cmp_scalar(0.0, op)?.to_dtype(like.dtype())
}

/// `1` where `a op b`, else `0`, in `like`'s dtype.
fn step_op(a: &Tensor, b: &Tensor, op: CmpOp, like: &Tensor) -> Result<Tensor> {
    a.cmp_op(b, op)?.to_dtype(like.dtype())
}

/// Gradients of `where(c, t, f)` for `t` and `f`.
///
/// # Errors
/// `c` and `g` of different shapes or devices.
pub fn where_cond(c: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let z = g.zeros_like()?;
    Ok((c.where_cond(g, &z)?, c.where_cond(&z, g)?))
}
