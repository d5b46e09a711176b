//! The fused bias + ReLU + 2×2 max-pool steps against the graph interpreter (bit for bit),
//! the ReLU / max-pool commutation they rely on, and their refusals.

use super::super::compile;
use crate::cpu::pool_fused::{bias_relu_max_pool_2x2, max_pool_2x2_relu_backward, Pool2x2};
use crate::graph::{Capture, Graph};
use crate::params::{CmpOp, Pool2dParams};
use crate::{DType, Device, Result, Tensor};

pub(super) fn bits(t: &Tensor) -> Result<Vec<u64>> {
    Ok(match t.dtype() {
        DType::I64 => t.to_vec::<i64>()?.iter().map(|&x| x as u64).collect(),
        _ => (t.to_vec::<f32>()?.iter().map(|x| x.to_bits() as u64)).collect(),
    })
}

/// `[n, c, h, w]` of mixed signs with NaN, ±0, ties and windows of only negative values.
pub(super) fn awkward(shape: [usize; 4], seed: u64) -> Result<Tensor> {
    crate::manual_seed(seed);
    let mut v =
        Tensor::randn(0.0, 1.0, shape.to_vec(), DType::F32, &Device::Cpu)?.to_vec::<f32>()?;
    let len = v.len();
    for (k, x) in v.iter_mut().enumerate() {
        match k % 23 {
            0 => *x = f32::NAN,
            1 => *x = -0.0,
            2 | 3 => *x = 0.0,
            5 | 6 => *x = 0.75,            // ties in a row
            7..=10 => *x = -x.abs() - 1.0, // runs of negatives
            _ => {}
        }
    }
    // One plane entirely negative.
    let plane = shape[2] * shape[3];
    for x in v[len - plane..].iter_mut() {
        *x = -x.abs() - 0.5;
    }
    Tensor::from_vec(v, shape.to_vec(), &Device::Cpu)
}

/// A layer's forward (bias add, ReLU, 2×2 pooling) and backward (pooling's gradient, ReLU's
/// mask) as a training step records them; `xs = [x, grad of the pooled map]`.
fn layer(xs: &[Tensor], b: &Tensor) -> Result<Vec<Tensor>> {
    let r = xs[0].add(b)?.relu()?;
    let (p, i) = r.max_pool2d_with_indices(Pool2dParams::new(2))?;
    let m = xs[1].max_pool2d_backward(&i, r.shape())?;
    let mask = r.cmp_scalar(0.0, CmpOp::Le)?;
    let w = mask.where_cond(&m.scalar_like(0.0)?, &m)?;
    Ok(vec![p.mul_scalar(2.0)?, w.mul_scalar(3.0)?, i])
}

fn capture(
    shape: [usize; 4],
    f: fn(&[Tensor], &Tensor) -> Result<Vec<Tensor>>,
) -> Result<(Graph, Vec<Tensor>)> {
    let [n, c, h, w] = shape;
    let x = awkward(shape, 1)?;
    let gp = awkward([n, c, h / 2, w / 2], 2)?;
    let b = Tensor::from_vec(
        (0..c).map(|k| k as f32 * 0.37 - 0.5).collect(),
        [1, c, 1, 1],
        &Device::Cpu,
    )?;
    let g = Capture::new()
        .input("x", &x)
        .input("gp", &gp)
        .param("b", &b)
        .run(|xs| f(xs, &b))?;
    Ok((g, vec![x, gp]))
}

fn step_names(plan: &mut super::super::Plan, ins: &[Tensor]) -> Result<Vec<String>> {
    Ok(plan.profile(ins)?.into_iter().map(|(n, _)| n).collect())
}

#[test]
fn fused_pool_steps_are_bit_identical_to_graph_run() -> Result<()> {
    // Odd sizes (a last row and column outside every window), small and parallel-sized.
    for shape in [[3, 5, 7, 9], [2, 3, 2, 2], [4, 6, 28, 28], [16, 16, 33, 30]] {
        let (g, ins) = capture(shape, layer)?;
        let mut plan = compile(&g)?;
        let names = step_names(&mut plan, &ins)?;
        assert!(
            names.iter().any(|n| n.starts_with("bias_relu_max_pool")),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("max_pool_relu_backward")),
            "{names:?}"
        );
        for _ in 0..2 {
            let want = g.run(&ins)?;
            let got = plan.run(&ins)?;
            for (w, h) in want.iter().zip(&got) {
                assert_eq!(w.dims(), h.dims());
                assert_eq!(bits(w)?, bits(h)?, "shape {shape:?}");
            }
        }
    }
    Ok(())
}

/// Chains the pass must leave alone (the ReLU'd map read elsewhere; a mask whose `where`
/// writes 1, not 0): nothing is fused, and the plan still matches the interpreter.
#[test]
fn other_readers_and_masks_are_not_fused() -> Result<()> {
    fn shared(xs: &[Tensor], b: &Tensor) -> Result<Vec<Tensor>> {
        let r = xs[0].add(b)?.relu()?;
        let (p, _) = r.max_pool2d_with_indices(Pool2dParams::new(2))?;
        Ok(vec![p, r.sum_all()?])
    }
    fn one_mask(xs: &[Tensor], b: &Tensor) -> Result<Vec<Tensor>> {
        let r = xs[0].add(b)?.relu()?;
        let (p, i) = r.max_pool2d_with_indices(Pool2dParams::new(2))?;
        let m = xs[1].max_pool2d_backward(&i, r.shape())?;
        let w = r
            .cmp_scalar(0.0, CmpOp::Le)?
            .where_cond(&m.scalar_like(1.0)?, &m)?;
        Ok(vec![p, w])
    }
    type Layer = fn(&[Tensor], &Tensor) -> Result<Vec<Tensor>>;
    for f in [shared as Layer, one_mask] {
        let (g, ins) = capture([2, 3, 6, 7], f)?;
        let mut plan = compile(&g)?;
        let names = step_names(&mut plan, &ins)?;
        assert!(
            !names.iter().any(|n| n.contains("max_pool_relu")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.starts_with("bias_relu")),
            "{names:?}"
        );
        let (want, got) = (g.run(&ins)?, plan.run(&ins)?);
        for (w, h) in want.iter().zip(&got) {
            assert_eq!(bits(w)?, bits(h)?);
        }
    }
    Ok(())
}

/// `max_pool(relu(x)) == relu(max_pool(x))` bit for bit (NaN, −0, ties); the indices differ
/// only in windows whose maximum is not positive, where ReLU's mask zeroes the gradient
/// either way, so both orders give the same input gradient.
#[test]
fn relu_and_max_pool_commute() -> Result<()> {
    let x = awkward([3, 4, 10, 12], 5)?;
    let gp = awkward([3, 4, 5, 6], 6)?;
    let p = Pool2dParams::new(2);
    let (a, ia) = x.relu()?.max_pool2d_with_indices(p)?;
    let (pm, ib) = x.max_pool2d_with_indices(p)?;
    let b = pm.relu()?;
    assert_eq!(bits(&a)?, bits(&b)?);
    let (av, bv) = (a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    let (iav, ibv) = (ia.to_vec::<i64>()?, ib.to_vec::<i64>()?);
    let mut differ = 0;
    for k in 0..av.len() {
        if iav[k] != ibv[k] {
            assert!(bv[k] <= 0.0, "window {k}: max {}", bv[k]);
            differ += 1;
        }
    }
    assert!(
        differ > 0,
        "the data has windows of only non-positive values"
    );
    // Gradient: relu then pool (eager order) vs pool then relu (mask on the pooled map).
    let r = x.relu()?;
    let m = gp.max_pool2d_backward(&ia, x.shape())?;
    let dx1 = r
        .cmp_scalar(0.0, CmpOp::Le)?
        .where_cond(&m.scalar_like(0.0)?, &m)?;
    let gm = b
        .cmp_scalar(0.0, CmpOp::Le)?
        .where_cond(&gp.scalar_like(0.0)?, &gp)?;
    let dx2 = gm.max_pool2d_backward(&ib, x.shape())?;
    assert_eq!(bits(&dx1)?, bits(&dx2)?);
    Ok(())
}

#[test]
fn fused_pool_kernels_refuse_bad_shapes_and_indices() {
    let g = Pool2x2 {
        planes: 6,
        c: 3,
        h: 4,
        w: 5,
    };
    let x = vec![1f32; 6 * 20];
    let (mut o, mut i) = (vec![0f32; 6 * 4], vec![0i64; 6 * 4]);
    assert!(bias_relu_max_pool_2x2(&x, &[0.0; 3], g, &mut o, &mut i).is_ok());
    let e = bias_relu_max_pool_2x2(&x, &[0.0; 2], g, &mut o, &mut i).unwrap_err();
    assert!(e.to_string().contains("bias"), "{e}");
    assert!(bias_relu_max_pool_2x2(&x[1..], &[0.0; 3], g, &mut o, &mut i).is_err());
    let bad = Pool2x2 { c: 4, ..g };
    assert!(bias_relu_max_pool_2x2(&x, &[0.0; 4], bad, &mut o, &mut i).is_err());
    let mut dx = vec![0f32; 6 * 20];
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, None).is_ok());
    i[3] = 20; // outside the plane
    let e = max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, None).unwrap_err();
    assert!(e.to_string().contains("index"), "{e}");
    i[3] = -1;
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, None).is_err());
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx[1..], None).is_err());
    // The bias gradient: one per channel, at least two channels.
    i[3] = 1; // in the plane, in another window
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, None).is_err());
    bias_relu_max_pool_2x2(&x, &[0.0; 3], g, &mut o, &mut i).unwrap();
    let mut db = [0f32; 3];
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, Some(&mut db)).is_ok());
    let mut db2 = [0f32; 2];
    let e = max_pool_2x2_relu_backward(&o, &o, &i, 0.0, g, &mut dx, Some(&mut db2));
    assert!(e.unwrap_err().to_string().contains("bias_grad"));
    let one = Pool2x2 { c: 1, ..g };
    let mut db1 = [0f32; 1];
    assert!(max_pool_2x2_relu_backward(&o, &o, &i, 0.0, one, &mut dx, Some(&mut db1)).is_err());
}

/// The layer with its bias gradient `sum(w, [0, 2, 3])` (as `sum_to` records it, a graph
/// output here: the step's store then gets fresh memory while `w` keeps its buffer).
fn layer_bias(xs: &[Tensor], b: &Tensor) -> Result<Vec<Tensor>> {
    let r = xs[0].add(b)?.relu()?;
    let (p, i) = r.max_pool2d_with_indices(Pool2dParams::new(2))?;
    let m = xs[1].max_pool2d_backward(&i, r.shape())?;
    let mask = r.cmp_scalar(0.0, CmpOp::Le)?;
    let w = mask.where_cond(&m.scalar_like(0.0)?, &m)?;
    let dims: &[isize] = if xs[0].dims()[0] == 1 {
        &[2, 3]
    } else {
        &[0, 2, 3]
    };
    let db = w.sum(dims, true)?;
    Ok(vec![p, w.mul_scalar(3.0)?, i, db])
}

#[test]
fn fused_bias_gradient_is_bit_identical_to_graph_run() -> Result<()> {
    // Odd planes (a tail after chunks of 8), one sample, more planes than a group of 4, a
    // plane count that is not a multiple of 4, parallel-sized.
    for shape in [
        [3, 5, 7, 9],
        [1, 3, 6, 6],
        [2, 3, 2, 2],
        [64, 6, 28, 28],
        [5, 7, 10, 10],
    ] {
        let (g, ins) = capture(shape, layer_bias)?;
        let mut plan = compile(&g)?;
        let names = step_names(&mut plan, &ins)?;
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("max_pool_relu_backward") && n.contains("sum")),
            "{shape:?}: {names:?}"
        );
        assert!(!names.iter().any(|n| n.starts_with("sum")), "{names:?}");
        for _ in 0..2 {
            let (want, got) = (g.run(&ins)?, plan.run(&ins)?);
            for (w, h) in want.iter().zip(&got) {
                assert_eq!(w.dims(), h.dims());
                assert_eq!(bits(w)?, bits(h)?, "shape {shape:?}");
            }
        }
    }
    // One channel: eager sums the whole map as one row, so the sum stays its own step.
    let (g, ins) = capture([2, 1, 6, 6], layer_bias)?;
    let mut plan = compile(&g)?;
    let names = step_names(&mut plan, &ins)?;
    assert!(names.iter().any(|n| n.starts_with("sum")), "{names:?}");
    let (want, got) = (g.run(&ins)?, plan.run(&ins)?);
    for (w, h) in want.iter().zip(&got) {
        assert_eq!(bits(w)?, bits(h)?);
    }
    Ok(())
}
