//! Rules for elementwise ops: unary maths, binaries (inputs already broadcast), where.

use mlfw_core::{BinaryOp, CmpOp, Result, Tensor, UnaryOp};

/// Gradient of a unary op with input `x`, output `y`, upstream `g`.
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
        U::GeluErf => g.mul(&x.unary_op(U::GeluErfGrad)?),
        U::GeluTanh => g.mul(&x.unary_op(U::GeluTanhGrad)?),
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
        // gelu(x) = xΦ(x), gelu'(x) = Φ(x) + xφ(x), gelu''(x) = φ(x)(2 − x²).
        U::GeluErfGrad => {
            let x2 = x.square()?;
            let phi = x2
                .mul_scalar(-0.5)?
                .exp()?
                .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
            g.mul(&phi.mul(&x2.affine(-1.0, 2.0)?)?)
        }
        // gelu(x) = ½x(1 + t), t = tanh(u), u = c(x + kx³):
        // gelu''(x) = (1 − t²)(u' + ½x(u'' − 2t·u'²)), u' = c(1 + 3kx²), u'' = 6ckx.
        U::GeluTanhGrad => {
            let (c, k) = ((2.0 / std::f64::consts::PI).sqrt(), 0.044_715);
            let x2 = x.square()?;
            let t = x.mul(&x2.affine(k, 1.0)?)?.mul_scalar(c)?.tanh()?;
            let du = x2.affine(3.0 * c * k, c)?;
            let ddu = x.mul_scalar(6.0 * c * k)?;
            let inner = ddu.sub(&t.mul(&du.square()?)?.mul_scalar(2.0)?)?;
            let d2 = t
                .square()?
                .affine(-1.0, 1.0)?
                .mul(&du.add(&x.mul(&inner)?.mul_scalar(0.5)?)?)?;
            g.mul(&d2)
        }
    }
}

/// Gradients of a binary op on same-shaped inputs `a`, `b` with output `y`.
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
pub fn where_cond(c: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let z = g.zeros_like()?;
    Ok((c.where_cond(g, &z)?, c.where_cond(&z, g)?))
}
