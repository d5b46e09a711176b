//! Rules for elementwise ops: unary maths, binaries (inputs already broadcast), where.

use mlfw_core::{BinaryOp, CmpOp, Result, Tensor, UnaryOp};

/// Gradient of a unary op with input `x`, output `y`, upstream `g`.
pub fn unary(x: &Tensor, y: &Tensor, g: &Tensor, op: UnaryOp) -> Result<Tensor> {
    use UnaryOp as U;
    match op {
        U::Neg => g.neg(),
        U::Abs => g.mul(&x.sign()?),
        U::Exp => g.mul(y),
        U::Log => g.div(x),
        U::Sqrt => g.div(y)?.mul_scalar(0.5),
        U::Rsqrt => g.mul(&y.powf(3.0)?)?.mul_scalar(-0.5),
        U::Sin => g.mul(&x.cos()?),
        U::Cos => g.mul(&x.sin()?)?.neg(),
        U::Tanh => g.mul(&y.square()?.affine(-1.0, 1.0)?),
        U::Sigmoid => g.mul(&y.mul(&y.affine(-1.0, 1.0)?)?),
        // sign(y) is 1 where x > 0 and 0 elsewhere: two single passes, no mask buffers.
        U::Relu => g.mul(&y.sign()?),
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
        U::GeluTanhGrad => Err(mlfw_core::Error::msg(
            "third derivatives of the tanh-approximated GELU are not supported",
        )),
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
            // PyTorch: the winner gets the gradient, ties split it evenly.
            let cmp = if op == BinaryOp::Maximum {
                CmpOp::Gt
            } else {
                CmpOp::Lt
            };
            let a_wins = a.cmp_op(b, cmp)?.to_dtype(g.dtype())?;
            let tie = a
                .cmp_op(b, CmpOp::Eq)?
                .to_dtype(g.dtype())?
                .mul_scalar(0.5)?;
            let wa = a_wins.add(&tie)?;
            let wb = wa.affine(-1.0, 1.0)?;
            (g.mul(&wa)?, g.mul(&wb)?)
        }
        BinaryOp::Pow => {
            let ga = g.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0)?)?)?;
            let gb = g.mul(y)?.mul(&a.log()?)?;
            (ga, gb)
        }
    })
}

/// Gradients of `where(c, t, f)` for `t` and `f`.
pub fn where_cond(c: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    let z = g.zeros_like()?;
    Ok((c.where_cond(g, &z)?, c.where_cond(&z, g)?))
}
