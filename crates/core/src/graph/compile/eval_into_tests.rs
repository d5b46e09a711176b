//! The `_into` kernels against their allocating forms (bit for bit, odd shapes, buffers
//! full of NaN), their refusals of wrongly sized buffers, and the memory plan's buffer
//! sharing for kernel steps (liveness, outputs, bit-identical runs).

use super::compile;
use crate::graph::Capture;
use crate::params::{Conv2dParams, MatmulDims, Pool2dParams, ReduceOp};
use crate::{cpu, DType, Device, Layout, Result, Tensor};

fn randn(shape: &[usize]) -> Result<Tensor> {
    Tensor::randn(0.0, 1.0, shape.to_vec(), DType::F32, &Device::Cpu)
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_vec::<f32>()?.iter().map(|x| x.to_bits()).collect())
}

/// The whole f32 buffer under `t` (its layout applies).
fn buf(t: &Tensor) -> Vec<f32> {
    super::eval_into::with_in_test(t)
}

/// Runs `f` on a buffer of `n` NaNs (so an element it skips shows) and returns its bits.
fn into(n: usize, f: impl FnOnce(&mut [f32]) -> Result<()>) -> Result<Vec<u32>> {
    let mut out = vec![f32::NAN; n];
    f(&mut out)?;
    Ok(out.iter().map(|x| x.to_bits()).collect())
}

#[test]
fn matmul_into_is_bit_identical() -> Result<()> {
    crate::manual_seed(1);
    // (b, m, k, n, transpose b): small, parallel-sized, k = 0, a transposed right operand
    // big enough for the skinny path (k·n ≥ 2^20).
    for &(b, m, k, n, tr) in &[
        (1, 3, 5, 7, false),
        (3, 17, 9, 33, true),
        (2, 130, 70, 61, false),
        (1, 200, 150, 97, true),
        (2, 4, 0, 5, false),
        (1, 5, 1100, 1000, true),
    ] {
        let a = randn(&[b, m, k])?;
        let bt = if tr {
            randn(&[b, n, k])?.transpose(1, 2)?
        } else {
            randn(&[b, k, n])?
        };
        let want = bits(&a.bmm(&bt)?)?;
        let d = MatmulDims { b, m, k, n };
        let (x, y) = (buf(&a), buf(&bt));
        let got = into(b * m * n, |o| {
            cpu::matmul_f32_into(&x, a.layout(), &y, bt.layout(), d, o)
        })?;
        assert_eq!(want, got, "matmul {b}×{m}×{k}×{n} (transposed: {tr})");
    }
    Ok(())
}

/// Geometries that reach each convolution kernel: direct (LeNet), Winograd and blocked
/// (many channels, 3×3), strided (phase / im2col), grouped, 1×1, dilated.
fn conv_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
    let p = |s: usize, pad: usize, d: usize, g: usize| Conv2dParams {
        stride: (s, s),
        padding: (pad, pad),
        dilation: (d, d),
        groups: g,
    };
    vec![
        ([3, 1, 13, 11], [6, 1, 5, 5], p(1, 0, 1, 1)),
        ([2, 6, 12, 14], [16, 6, 5, 5], p(1, 0, 1, 1)),
        ([2, 32, 9, 10], [32, 32, 3, 3], p(1, 1, 1, 1)),
        ([2, 16, 9, 7], [24, 16, 3, 3], p(1, 1, 1, 1)),
        ([2, 16, 11, 9], [32, 16, 3, 3], p(2, 1, 1, 1)),
        ([3, 4, 7, 9], [6, 2, 3, 3], p(1, 1, 1, 2)),
        ([2, 8, 7, 5], [5, 8, 1, 1], p(2, 0, 1, 1)),
        ([1, 3, 11, 12], [4, 3, 3, 3], p(1, 2, 2, 1)),
    ]
}

#[test]
fn conv_into_is_bit_identical() -> Result<()> {
    crate::manual_seed(2);
    for (xd, wd, p) in conv_cases() {
        let x = randn(&xd)?;
        let w = randn(&wd)?;
        let y = x.conv2d(&w, None, p)?;
        let (xs, ws) = (buf(&x), buf(&w));
        let got = into(y.elem_count(), |o| {
            cpu::conv2d_f32_into(&xs, x.layout(), &ws, w.layout(), &p, o)
        })?;
        assert_eq!(bits(&y)?, got, "conv2d {xd:?} {wd:?} {p:?}");
        let gy = randn(y.dims())?;
        let hw = (xd[2], xd[3]);
        let dx = gy.conv2d_backward_input(&w, p, hw)?;
        let gs = buf(&gy);
        let got = into(dx.elem_count(), |o| {
            cpu::conv2d_backward_input_f32_into(&gs, gy.layout(), &ws, w.layout(), &p, hw, o)
        })?;
        assert_eq!(bits(&dx)?, got, "conv2d_backward_input {xd:?} {wd:?} {p:?}");
    }
    Ok(())
}

#[test]
fn reduce_and_softmax_into_are_bit_identical() -> Result<()> {
    crate::manual_seed(3);
    let x = randn(&[5, 7, 9, 11])?;
    let xt = x.transpose(1, 3)?;
    let xs = buf(&x);
    for (t, dims) in [
        (&x, vec![0, 2, 3]),
        (&x, vec![0]),
        (&x, vec![0, 1]),
        (&x, vec![3]),
        (&x, vec![1, 3]),
        (&x, vec![0, 1, 2, 3]),
        (&xt, vec![0, 2, 3]),
        (&xt, vec![2]),
    ] {
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
            let ds: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            let want = t.reduce_op(op, &ds, true)?;
            let got = into(want.elem_count(), |o| {
                cpu::reduce_f32_into(&xs, t.layout(), op, &dims, o)
            })?;
            assert_eq!(bits(&want)?, got, "{op:?} over {dims:?} of {}", t.shape());
        }
    }
    for t in [&x, &xt] {
        for log in [false, true] {
            let want = if log {
                t.log_softmax(-1)?
            } else {
                t.softmax(-1)?
            };
            let got = into(t.elem_count(), |o| {
                cpu::softmax_f32_into(&xs, t.layout(), log, o)
            })?;
            assert_eq!(bits(&want)?, got, "softmax (log {log}) of {}", t.shape());
        }
    }
    Ok(())
}

#[test]
fn batch_norm_into_is_bit_identical() -> Result<()> {
    crate::manual_seed(4);
    let x = randn(&[3, 5, 7, 9])?;
    let w = randn(&[5])?;
    let b = randn(&[5])?;
    for relu in [false, true] {
        let (y, st) = x.batch_norm_train(&w, &b, 1e-5, relu)?;
        let mut st2 = None;
        let got = into(x.elem_count(), |o| {
            st2 = Some(x.batch_norm_train_into(&w, &b, 1e-5, relu, o)?);
            Ok(())
        })?;
        assert_eq!(bits(&y)?, got);
        assert_eq!(bits(&st)?, bits(&st2.expect("stats"))?);
        let g = randn(x.dims())?;
        let (dx, pg) = g.batch_norm_train_backward(&x, &y, &st, &w, 1e-5, relu)?;
        let mut pg2 = None;
        let got = into(x.elem_count(), |o| {
            pg2 = Some(g.batch_norm_train_backward_into(&x, &y, &st, &w, 1e-5, relu, o)?);
            Ok(())
        })?;
        assert_eq!(bits(&dx)?, got);
        assert_eq!(bits(&pg)?, bits(&pg2.expect("param grads"))?);
    }
    Ok(())
}

#[test]
fn wrongly_sized_buffers_are_errors() -> Result<()> {
    let a = randn(&[1, 3, 4])?;
    let b = randn(&[1, 4, 5])?;
    let d = MatmulDims {
        b: 1,
        m: 3,
        k: 4,
        n: 5,
    };
    let (x, y) = (buf(&a), buf(&b));
    for n in [14, 16, 0] {
        let mut o = vec![0f32; n];
        let e = cpu::matmul_f32_into(&x, a.layout(), &y, b.layout(), d, &mut o);
        assert!(e.is_err_and(|e| e.to_string().contains("15")), "{n}");
    }
    let (xc, wc, p) = conv_cases()[0];
    let (xt, wt) = (randn(&xc)?, randn(&wc)?);
    let (xs, ws) = (buf(&xt), buf(&wt));
    let mut o = vec![0f32; 5];
    assert!(cpu::conv2d_f32_into(&xs, xt.layout(), &ws, wt.layout(), &p, &mut o).is_err());
    let gl = Layout::contiguous([3, 6, 9, 7]);
    let g = vec![0f32; gl.elem_count()];
    assert!(
        cpu::conv2d_backward_input_f32_into(&g, &gl, &ws, wt.layout(), &p, (13, 11), &mut o)
            .is_err()
    );
    assert!(cpu::reduce_f32_into(&xs, xt.layout(), ReduceOp::Sum, &[0], &mut o).is_err());
    assert!(cpu::reduce_f32_into(&xs, xt.layout(), ReduceOp::ArgMax, &[0], &mut o).is_err());
    assert!(cpu::softmax_f32_into(&xs, xt.layout(), true, &mut o).is_err());
    let (w, bias) = (randn(&[1])?, randn(&[1])?);
    assert!(xt
        .batch_norm_train_into(&w, &bias, 1e-5, false, &mut o)
        .is_err());
    // A planned tensor too small for the value is refused too (no panic, no partial write).
    let small = Tensor::zeros([4], DType::F32, &Device::Cpu)?;
    let r = super::eval_into::with_out(&small.narrow(0, 1, 3)?, |o| {
        cpu::matmul_f32_into(&x, a.layout(), &y, b.layout(), d, o)
    });
    assert!(r.is_err());
    Ok(())
}

/// A chain of products where `a` is read again at the end: `b = a·w`, `c = b·w`,
/// `d = c·w`, `e = d·w + a`.
fn chain(xs: &[Tensor], w: &Tensor) -> Result<Vec<Tensor>> {
    let a = xs[0].bmm(w)?.log_softmax(-1)?;
    let b = a.bmm(w)?;
    let c = b.bmm(w)?;
    let d = c.bmm(w)?;
    let e = d.bmm(w)?.add(&a)?;
    Ok(vec![e.sum(&[2], false)?])
}

#[test]
fn kernel_values_share_buffers_only_when_never_live_together() -> Result<()> {
    crate::manual_seed(5);
    let x = randn(&[2, 6, 6])?;
    let w = randn(&[2, 6, 6])?;
    let g = Capture::new()
        .input("x", &x)
        .param("w", &w)
        .run(|xs| chain(xs, &w))?;
    let mut plan = compile(&g)?;
    // Each planned value: the step writing it and the last step reading it.
    let step_of = |k: usize| {
        plan.steps
            .iter()
            .position(|s| matches!(s, super::Step::Eval(j) if *j == k))
    };
    let mut spans = vec![];
    for (k, b) in plan.node_buf.iter().enumerate() {
        let Some(b) = b else { continue };
        let w = step_of(k).expect("a planned kernel value has its own step");
        let last = (0..plan.graph.nodes.len())
            .filter(|&c| plan.graph.nodes[c].inputs().iter().any(|v| v.0 == k))
            .filter_map(step_of)
            .max()
            .expect("read by a later step");
        spans.push((k, *b, w, last));
    }
    assert!(
        spans.len() >= 5,
        "matmuls and log_softmax planned: {spans:?}"
    );
    let mut shared = 0;
    for (i, &(k1, b1, w1, l1)) in spans.iter().enumerate() {
        for &(k2, b2, w2, l2) in &spans[i + 1..] {
            let overlap = w1 <= l2 && w2 <= l1;
            if b1 == b2 {
                shared += 1;
                assert!(
                    !overlap,
                    "values {k1} and {k2} live together in buffer {b1}"
                );
            }
        }
    }
    assert!(shared >= 1, "dead values' buffers are reused: {spans:?}");
    // Outputs never live in a planned buffer.
    for o in &plan.graph.outputs {
        assert!(plan.node_buf[o.0].is_none());
    }
    // Repeated runs (buffers reused with the last run's contents) stay bit-identical, and
    // an earlier run's output is not overwritten by a later run.
    let first = plan.run(std::slice::from_ref(&x))?;
    let keep = bits(&first[0])?;
    for _ in 0..3 {
        let want = g.run(std::slice::from_ref(&x))?;
        let got = plan.run(std::slice::from_ref(&x))?;
        assert_eq!(bits(&want[0])?, bits(&got[0])?);
    }
    assert_eq!(keep, bits(&first[0])?);
    Ok(())
}

/// Convolution, batch norm with ReLU, their backward kernels and a reduction, as a
/// training step's pieces.
fn conv_bn(xs: &[Tensor], w: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Vec<Tensor>> {
    let p = Conv2dParams {
        padding: (1, 1),
        ..Default::default()
    };
    let h = xs[0].conv2d(w, None, p)?;
    let (y, st) = h.batch_norm_train(gamma, beta, 1e-5, true)?;
    let z = y.conv2d(w, None, p)?;
    let gz = z.mul_scalar(0.25)?;
    let gy = gz.conv2d_backward_input(w, p, (9, 10))?;
    let (gh, pg) = gy.batch_norm_train_backward(&h, &y, &st, gamma, 1e-5, true)?;
    let gx = gh.conv2d_backward_input(w, p, (9, 10))?;
    Ok(vec![gx.sum(&[0, 2, 3], false)?, pg, z])
}

#[test]
fn planned_conv_and_batch_norm_steps_are_bit_identical() -> Result<()> {
    crate::manual_seed(6);
    for c in [4, 32] {
        let x = randn(&[3, c, 9, 10])?;
        let w = randn(&[c, c, 3, 3])?;
        let (gamma, beta) = (randn(&[c])?, randn(&[c])?);
        let g = Capture::new()
            .input("x", &x)
            .param("w", &w)
            .param("gamma", &gamma)
            .param("beta", &beta)
            .run(|xs| conv_bn(xs, &w, &gamma, &beta))?;
        let mut plan = compile(&g)?;
        let planned = plan.node_buf.iter().filter(|b| b.is_some()).count();
        assert!(planned >= 4, "{planned} planned values");
        for _ in 0..3 {
            let want = g.run(std::slice::from_ref(&x))?;
            let got = plan.run(std::slice::from_ref(&x))?;
            for (w, h) in want.iter().zip(&got) {
                assert_eq!(bits(w)?, bits(h)?);
            }
        }
    }
    Ok(())
}

#[test]
fn max_pool_into_is_bit_identical() -> Result<()> {
    crate::manual_seed(7);
    let pp = |k: usize, s: usize, pad: usize, ceil: bool| Pool2dParams {
        kernel: (k, k),
        stride: (s, s),
        padding: (pad, pad),
        dilation: (1, 1),
        ceil_mode: ceil,
        count_include_pad: true,
    };
    for (xd, p) in [
        ([3, 5, 12, 10], pp(2, 2, 0, false)),
        ([2, 3, 11, 13], pp(3, 2, 1, false)),
        ([2, 4, 9, 7], pp(3, 3, 0, false)),
        ([1, 2, 9, 9], pp(2, 2, 0, true)),
    ] {
        let x = randn(&xd)?;
        let (v, i) = x.max_pool2d_with_indices(p)?;
        let xs = buf(&x);
        let mut is = vec![-1i64; i.elem_count()];
        let got = into(v.elem_count(), |o| {
            cpu::max_pool2d_f32_into(&xs, x.layout(), &p, o, &mut is)
        })?;
        assert_eq!(bits(&v)?, got, "max_pool2d {xd:?} {p:?}");
        assert_eq!(i.to_vec::<i64>()?, is);
        let gy = randn(v.dims())?;
        let dx = gy.max_pool2d_backward(&i, x.shape())?;
        let gs = buf(&gy);
        let got = into(x.elem_count(), |o| {
            cpu::max_pool2d_backward_f32_into(&gs, gy.layout(), &is, i.layout(), x.shape(), o)
        })?;
        assert_eq!(bits(&dx)?, got, "max_pool2d_backward {xd:?} {p:?}");
        let mut short = vec![0f32; 3];
        assert!(cpu::max_pool2d_f32_into(&xs, x.layout(), &p, &mut short, &mut is).is_err());
        assert!(cpu::max_pool2d_backward_f32_into(
            &gs,
            gy.layout(),
            &is,
            i.layout(),
            x.shape(),
            &mut short
        )
        .is_err());
    }
    Ok(())
}

/// Max pooling (stride 3, so no fused pooling step takes it) and its gradient in a plan:
/// values and indices in planned buffers, bit-identical runs.
#[test]
fn planned_max_pool_steps_are_bit_identical() -> Result<()> {
    crate::manual_seed(8);
    let x = randn(&[2, 3, 10, 11])?;
    let p = Pool2dParams {
        kernel: (3, 3),
        stride: (3, 3),
        padding: (1, 1),
        dilation: (1, 1),
        ceil_mode: false,
        count_include_pad: true,
    };
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let h = xs[0].log_softmax(-1)?;
        let (v, i) = h.max_pool2d_with_indices(p)?;
        let s = v.log_softmax(-1)?;
        let dx = s.max_pool2d_backward(&i, h.shape())?;
        Ok(vec![dx.sum(&[1], false)?])
    };
    let g = Capture::new().input("x", &x).run(f)?;
    let mut plan = compile(&g)?;
    let planned = plan.node_buf.iter().filter(|b| b.is_some()).count();
    assert!(planned >= 5, "{planned} planned values");
    assert!(plan.buffers.iter().any(|(d, _)| *d == DType::I64));
    for _ in 0..3 {
        let want = g.run(std::slice::from_ref(&x))?;
        let got = plan.run(std::slice::from_ref(&x))?;
        assert_eq!(bits(&want[0])?, bits(&got[0])?);
    }
    Ok(())
}

/// One "optimizer step" on `w` (the write's value from a product and a fused pair, and a
/// second write from a kernel step), and the loss.
fn update(xs: &[Tensor], w: &Tensor, v: &Tensor) -> Result<Vec<Tensor>> {
    let y = xs[0].bmm(w)?;
    let loss = y.sum(&[1, 2], false)?;
    let step = xs[0].bmm(&y)?.mul_scalar(0.01)?.add(w)?;
    w.assign(&step)?;
    v.assign(&y.bmm(v)?)?;
    Ok(vec![loss])
}

#[test]
fn state_writes_live_in_planned_buffers_and_stay_bit_identical() -> Result<()> {
    crate::manual_seed(9);
    let x = randn(&[2, 5, 5])?.mul_scalar(0.3)?;
    let w0 = randn(&[2, 5, 5])?;
    let v0 = randn(&[2, 5, 5])?;
    let (w1, w2) = (w0.copy()?, w0.copy()?);
    let (v1, v2) = (v0.copy()?, v0.copy()?);
    let cap = |w: &Tensor, v: &Tensor| {
        Capture::new()
            .input("x", &x)
            .param("w", w)
            .param("v", v)
            .run(|xs| update(xs, w, v))
    };
    let (g1, g2) = (cap(&w1, &v1)?, cap(&w2, &v2)?);
    assert_eq!(g1.writes.len(), 2);
    let mut plan = compile(&g1)?;
    for (_, s) in &plan.graph.writes {
        assert!(
            plan.node_buf[s.0].is_some(),
            "a state write's value is planned"
        );
    }
    let mut losses = vec![];
    for _ in 0..3 {
        let got = plan.run(std::slice::from_ref(&x))?;
        let want = g2.run(std::slice::from_ref(&x))?;
        assert_eq!(bits(&want[0])?, bits(&got[0])?);
        assert_eq!(bits(&w2)?, bits(&w1)?);
        assert_eq!(bits(&v2)?, bits(&v1)?);
        losses.push((got[0].clone(), bits(&got[0])?));
    }
    // Returned losses keep their values after later runs.
    for (t, b) in &losses {
        assert_eq!(&bits(t)?, b);
    }
    Ok(())
}

#[test]
fn binary_into_is_bit_identical() -> Result<()> {
    use crate::params::BinaryOp;
    crate::manual_seed(10);
    let x = randn(&[4, 5, 6, 7])?;
    let y = randn(&[4, 5, 6, 7])?;
    let b = randn(&[1, 5, 1, 1])?;
    let xt = x.transpose(1, 3)?;
    let yt = y.transpose(1, 3)?;
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Pow,
    ];
    for (p, q) in [
        (&x, &y),
        (&x, &b),
        (&b, &x),
        (&xt, &yt),
        (&xt, &y.reshape([4, 7, 6, 5])?),
    ] {
        for op in ops {
            let want = p.binary_op(q, op)?;
            let (pa, qa) = p.broadcast_pair(q, "binary")?;
            let (ps, qs) = (buf(&pa), buf(&qa));
            let got = into(want.elem_count(), |o| {
                cpu::binary_f32_into(&ps, pa.layout(), &qs, qa.layout(), op, o)
            })?;
            assert_eq!(
                bits(&want)?,
                got,
                "{op:?} of {} and {}",
                p.shape(),
                q.shape()
            );
        }
    }
    let mut short = vec![0f32; 7];
    let xs = buf(&x);
    assert!(
        cpu::binary_f32_into(&xs, x.layout(), &xs, x.layout(), BinaryOp::Add, &mut short).is_err()
    );
    assert!(
        cpu::binary_f32_into(&xs, x.layout(), &xs, xt.layout(), BinaryOp::Add, &mut short).is_err()
    );
    Ok(())
}
