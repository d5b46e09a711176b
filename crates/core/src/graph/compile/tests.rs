//! Compiled plans against the graph interpreter (bit for bit) and their refusals.

use super::{compile, CompiledGraph};
use crate::graph::Capture;
use crate::params::CmpOp;
use crate::{DType, Device, Result, Tensor};

fn randn(shape: &[usize]) -> Result<Tensor> {
    Tensor::randn(0.0, 1.0, shape.to_vec(), DType::F32, &Device::Cpu)
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_vec::<f32>()?.iter().map(|x| x.to_bits()).collect())
}

/// Bias add + ReLU forward and ReLU's backward mask, as a training step makes them, on a
/// layout big enough to be split over the thread pool and with a partial last block.
fn bias_relu(xs: &[Tensor], b: &Tensor) -> Result<Vec<Tensor>> {
    let y = xs[0].add(b)?.relu()?;
    let g = y.mul_scalar(0.5)?;
    let mask = y.cmp_scalar(0.0, CmpOp::Le)?;
    let gx = mask.where_cond(&g.scalar_like(0.0)?, &g)?;
    Ok(vec![y.sum_all()?, gx.neg()?.exp()?])
}

#[test]
fn fused_plan_is_bit_identical_to_graph_run() -> Result<()> {
    crate::manual_seed(7);
    let x = randn(&[9, 6, 29, 31])?;
    let b = randn(&[1, 6, 1, 1])?;
    let g = Capture::new()
        .input("x", &x)
        .param("b", &b)
        .run(|xs| bias_relu(xs, &b))?;
    let mut plan = compile(&g)?;
    let st = plan.stats();
    assert!(st.fused_groups >= 1, "{st:?}");
    assert!(st.fused_nodes >= 4, "{st:?}");
    for _ in 0..2 {
        let want = g.run(std::slice::from_ref(&x))?;
        let got = plan.run(std::slice::from_ref(&x))?;
        for (w, h) in want.iter().zip(&got) {
            assert_eq!(bits(w)?, bits(h)?);
        }
    }
    Ok(())
}

#[test]
fn fused_erf_is_bit_identical_to_eager() -> Result<()> {
    crate::manual_seed(11);
    let mut x = randn(&[3, 1000])?;
    // Special values: ±inf, NaN, -0 pass through erf as the eager kernel does.
    x = Tensor::cat(
        &[
            x,
            Tensor::from_vec(
                vec![f32::INFINITY, f32::NEG_INFINITY, f32::NAN],
                [3, 1],
                &Device::Cpu,
            )?,
            Tensor::from_vec(vec![-0.0f32, 9.0, -4.5], [3, 1], &Device::Cpu)?,
        ],
        1,
    )?;
    // The erf-form GELU written out: x · ½(1 + erf(x/√2)).
    let gelu = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let x = &xs[0];
        let e = x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?;
        Ok(vec![x.mul(&e.affine(0.5, 0.5)?)?, e])
    };
    let g = Capture::new().input("x", &x).run(gelu)?;
    let mut plan = compile(&g)?;
    let st = plan.stats();
    assert!(st.fused_nodes >= 4, "erf joins the fused group: {st:?}");
    let want = gelu(std::slice::from_ref(&x))?;
    let got = plan.run(std::slice::from_ref(&x))?;
    for (w, h) in want.iter().zip(&got) {
        assert_eq!(bits(w)?, bits(h)?);
    }
    Ok(())
}

#[test]
fn nan_and_broadcast_scalars_follow_eager() -> Result<()> {
    let x = Tensor::from_vec(
        vec![f32::NAN, -1.0, 0.0, 2.0, f32::INFINITY],
        [5],
        &Device::Cpu,
    )?;
    let g = Capture::new().input("x", &x).run(|xs| {
        let r = xs[0].relu()?.affine(3.0, -1.0)?;
        Ok(vec![r
            .maximum(&xs[0])?
            .div(&xs[0].abs()?.add_scalar(1.0)?)?])
    })?;
    let mut plan = compile(&g)?;
    assert_eq!(
        bits(&g.run(std::slice::from_ref(&x))?[0])?,
        bits(&plan.run(&[x])?[0])?
    );
    Ok(())
}

#[test]
fn buffers_are_reused_across_a_chain() -> Result<()> {
    // Four fused groups split by reductions; their results are dead after the next group,
    // so the plan needs fewer buffers than materialized values.
    let x = randn(&[64, 100])?;
    let g = Capture::new().input("x", &x).run(|xs| {
        let mut h = xs[0].clone();
        for _ in 0..4 {
            let a = h.relu()?.mul_scalar(0.5)?;
            let s = a.sum(&[1], true)?;
            h = a.sub(&s)?.tanh()?;
        }
        Ok(vec![h.sum_all()?])
    })?;
    let mut plan = compile(&g)?;
    let st = plan.stats();
    assert!(st.buffers >= 1 && st.buffers < 4, "{st:?}");
    let want = g.run(std::slice::from_ref(&x))?;
    for _ in 0..3 {
        assert_eq!(
            bits(&want[0])?,
            bits(&plan.run(std::slice::from_ref(&x))?[0])?
        );
    }
    Ok(())
}

#[test]
fn a_plan_refuses_other_shapes() -> Result<()> {
    let x = randn(&[4, 3])?;
    let g = Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .run(|xs| Ok(vec![xs[0].relu()?.mul_scalar(2.0)?]))?;
    let mut plan = compile(&g)?;
    let err = plan
        .run(&[randn(&[5, 3])?])
        .expect_err("shape change must fail");
    assert!(err.to_string().contains("compiled for"), "{err}");
    assert!(plan.run(&[randn(&[4, 3])?]).is_ok());
    Ok(())
}

#[test]
fn compiled_graph_recompiles_new_shapes_with_a_bounded_cache() -> Result<()> {
    let x = randn(&[4, 3])?;
    let g = Capture::new()
        .input("x", &x)
        .symbolic_batch(true)
        .run(|xs| Ok(vec![xs[0].relu()?.mul_scalar(2.0)?.sum_all()?]))?;
    let mut cg = CompiledGraph::new(g.clone(), 2)?.quiet(true);
    for (n, expect) in [(4, 1), (4, 1), (7, 2), (4, 2), (9, 3), (4, 3), (7, 4)] {
        let xn = randn(&[n, 3])?;
        let got = cg.run(std::slice::from_ref(&xn))?;
        assert_eq!(bits(&got[0])?, bits(&g.run(&[xn])?[0])?);
        assert_eq!(cg.compilations(), expect, "batch {n}");
        assert!(cg.cached() <= 2);
    }
    assert!(cg.run(&[randn(&[4, 5])?]).is_err(), "a fixed dim changed");
    Ok(())
}

#[test]
fn results_returned_through_a_view_are_not_overwritten_by_the_next_run() -> Result<()> {
    let x = randn(&[8, 6])?;
    let g = Capture::new().input("x", &x).run(|xs| {
        let v = xs[0].relu()?.mul_scalar(2.0)?;
        Ok(vec![v.reshape([48])?])
    })?;
    let mut plan = compile(&g)?;
    assert!(plan.stats().fused_groups >= 1);
    let first = plan.run(std::slice::from_ref(&x))?;
    let kept = bits(&first[0])?;
    plan.run(&[randn(&[8, 6])?])?;
    assert_eq!(kept, bits(&first[0])?);
    assert_eq!(kept, bits(&g.run(&[x])?[0])?);
    Ok(())
}
