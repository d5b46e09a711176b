//! Elementwise ops, casts and copies: CUDA against the CPU on the same inputs.

use crate::common::{randn, same_on_both};
use mlfw_core::{DType, Device, Result, Tensor, UnaryOp};

const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

fn tol(dt: DType) -> (f64, f64) {
    match dt {
        DType::F64 => (1e-12, 1e-12),
        DType::F32 => (2e-6, 1e-6),
        DType::F16 => (2e-3, 1e-3),
        _ => (1.6e-2, 1e-2),
    }
}

#[test]
fn unary_ops_all_float_dtypes() -> Result<()> {
    use UnaryOp::*;
    let ops = [
        Neg,
        Abs,
        Exp,
        Sin,
        Cos,
        Tanh,
        Sigmoid,
        Relu,
        GeluErf,
        GeluTanh,
        Sign,
        Square,
        LeakyRelu(0.1),
        Clamp(-0.5, 0.7),
        Affine(1.5, -0.25),
        Erf,
    ];
    let positive = [Log, Sqrt, Rsqrt, Recip, Powf(1.7), Powf(2.0)];
    for dt in DTYPES {
        let (rtol, atol) = tol(dt);
        same_on_both(&format!("unary {dt}"), rtol, atol, |d| {
            let x = randn(&[7, 33], 1, d)?.to_dtype(dt)?;
            let p = crate::common::rand(&[7, 33], 0.1, 4.0, 2, d)?.to_dtype(dt)?;
            let mut out = Vec::new();
            for op in ops {
                out.push(x.unary_op(op)?);
                out.push(x.t()?.unary_op(op)?); // strided input
            }
            for op in positive {
                out.push(p.unary_op(op)?);
            }
            Ok(out)
        })?;
    }
    Ok(())
}

#[test]
fn integer_unary_and_binary() -> Result<()> {
    same_on_both("int ops", 0.0, 0.0, |d| {
        let a = Tensor::from_vec(vec![-3i64, 0, 7, i64::MAX, -9, 4], [2, 3], d)?;
        let b = Tensor::from_vec(vec![2i64, -5, 7, 1, 3, -4], [2, 3], d)?;
        let u = Tensor::from_vec(vec![0u8, 7, 200, 255, 3, 9], [2, 3], d)?;
        let v = Tensor::from_vec(vec![1u8, 250, 100, 1, 3, 10], [2, 3], d)?;
        Ok(vec![
            a.unary_op(UnaryOp::Neg)?,
            a.unary_op(UnaryOp::Abs)?,
            a.unary_op(UnaryOp::Sign)?,
            a.clamp(-4.0, 5.0)?,
            a.affine(2.0, 1.0)?,
            a.add(&b)?,
            a.sub(&b)?,
            a.mul(&b)?,
            a.maximum(&b)?,
            a.minimum(&b.t()?.contiguous()?.t()?)?,
            u.add(&v)?,
            u.sub(&v)?,
            u.mul(&v)?,
            u.affine(3.0, -10.0)?,
            u.clamp(5.0, 100.0)?,
            a.lt(&b)?,
            u.ge(&v)?,
        ])
    })
}

#[test]
fn binary_broadcast_and_strided() -> Result<()> {
    for dt in DTYPES {
        let (rtol, atol) = tol(dt);
        same_on_both(&format!("binary {dt}"), rtol, atol, |d| {
            let a = randn(&[4, 5, 6], 3, d)?.to_dtype(dt)?;
            let b = randn(&[5, 1], 4, d)?.to_dtype(dt)?;
            let c = randn(&[6, 5, 4], 5, d)?.to_dtype(dt)?.permute(&[2, 1, 0])?;
            let p = crate::common::rand(&[4, 5, 6], 0.5, 2.0, 6, d)?.to_dtype(dt)?;
            Ok(vec![
                a.add(&b)?,
                a.sub(&c)?,
                a.mul(&c)?,
                a.div(&p)?,
                a.maximum(&b)?,
                a.minimum(&c)?,
                p.pow(&b)?,
                a.narrow(1, 1, 3)?.add(&c.narrow(1, 2, 3)?)?,
                a.gt(&c)?,
                a.eq(&a)?,
                a.le(&b)?,
                a.gt(&b)?.where_cond(&a, &c)?,
            ])
        })?;
    }
    Ok(())
}

#[test]
fn casts_are_exact() -> Result<()> {
    let all = [
        DType::U8,
        DType::Bool,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ];
    same_on_both("casts", 0.0, 0.0, |d| {
        let vals = vec![
            -1e30,
            -70000.0,
            -300.5,
            -2.5,
            -1.0,
            -0.4,
            0.0,
            0.3,
            0.5,
            1.5,
            2.5,
            65519.0,
            70000.0,
            1e30,
            f64::NAN,
            f64::INFINITY,
            1.0 / 3.0,
            254.9,
            255.5,
            9.3e18,
        ];
        let x = Tensor::from_vec(vals, [4, 5], d)?;
        let mut out = Vec::new();
        for a in all {
            let xa = x.to_dtype(a)?;
            for b in all {
                out.push(xa.to_dtype(b)?);
                out.push(xa.t()?.to_dtype(b)?);
            }
        }
        Ok(out)
    })
}

#[test]
fn copies_and_assign_into_views() -> Result<()> {
    same_on_both("copies", 0.0, 0.0, |d| {
        let a = randn(&[3, 4, 5], 7, d)?;
        let t = a.permute(&[2, 0, 1])?.contiguous()?;
        let dst = Tensor::zeros([5, 8], DType::F32, d)?;
        let view = dst.narrow(1, 2, 4)?;
        view.assign(&randn(&[4, 5], 8, d)?.t()?)?;
        let e = randn(&[1, 5], 9, d)?.expand([3, 5])?.contiguous()?;
        Ok(vec![t, dst, e, Tensor::full(0.1, [3, 3], DType::BF16, d)?])
    })
}

#[test]
fn large_contiguous_add() -> Result<()> {
    same_on_both("large add", 0.0, 0.0, |d| {
        let a = randn(&[1 << 20], 10, d)?;
        let b = randn(&[1 << 20], 11, d)?;
        Ok(vec![a.add(&b)?])
    })?;
    let _ = Device::Cpu;
    Ok(())
}
