//! Batch norm's fused kernels as graph ops: a capture records `batch_norm` and
//! `batch_norm_backward` as one node each (with their second outputs), and a run of the graph
//! on another batch gives exactly what the kernels give eagerly.

use mlfw_core::graph::Capture;
use mlfw_core::{DType, Device, Generator, Result, Tensor};

fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut g = Generator::new(seed);
    Tensor::randn_with(0.0, 1.0, shape.to_vec(), DType::F32, &Device::Cpu, &mut g)
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_vec::<f32>()?.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn batch_norm_ops_capture_as_one_node_each_and_replay_exactly() -> Result<()> {
    let (w, b) = (randn(&[3], 1)?, randn(&[3], 2)?);
    let step = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let (y, stats) = xs[0].batch_norm_train(&w, &b, 1e-5, true)?;
        let (dx, pg) = xs[1].batch_norm_train_backward(&xs[0], &y, &stats, &w, 1e-5, true)?;
        Ok(vec![y, stats, dx, pg])
    };
    let (x0, g0) = (randn(&[4, 3, 5, 5], 3)?, randn(&[4, 3, 5, 5], 4)?);
    let graph = Capture::new()
        .input("x", &x0)
        .input("g", &g0)
        .param("w", &w)
        .param("b", &b)
        .run(step)?;
    let ops: Vec<String> = graph.nodes.iter().map(|n| n.op_name()).collect();
    assert_eq!(
        ops.iter().filter(|o| *o == "batch_norm").count(),
        1,
        "{ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|o| *o == "batch_norm_backward").count(),
        1,
        "{ops:?}"
    );
    let (x, g) = (randn(&[4, 3, 5, 5], 5)?, randn(&[4, 3, 5, 5], 6)?);
    let want = step(&[x.clone(), g.clone()])?;
    let got = graph.run(&[x.clone(), g.clone()])?;
    assert_eq!(got.len(), 4);
    for (a, e) in got.iter().zip(&want) {
        assert_eq!(a.dims(), e.dims());
        assert_eq!(bits(a)?, bits(e)?);
    }
    let mut plan = mlfw_core::graph::compile(&graph)?;
    let planned = plan.run(&[x, g])?;
    for (a, e) in planned.iter().zip(&want) {
        assert_eq!(bits(a)?, bits(e)?);
    }
    Ok(())
}

#[test]
fn batch_norm_ops_refuse_bad_input() -> Result<()> {
    let (w, b) = (randn(&[3], 1)?, randn(&[3], 2)?);
    let x = randn(&[4, 3, 2], 3)?;
    assert!(x
        .to_dtype(DType::F64)?
        .batch_norm_train(&w, &b, 1e-5, false)
        .is_err());
    assert!(x
        .batch_norm_train(&randn(&[2], 1)?, &b, 1e-5, false)
        .is_err());
    assert!(randn(&[3], 1)?
        .batch_norm_train(&w, &b, 1e-5, false)
        .is_err());
    let (y, stats) = x.batch_norm_train(&w, &b, 1e-5, false)?;
    assert_eq!(stats.dims(), &[2, 3]);
    assert!(x
        .batch_norm_train_backward(&x, &y, &randn(&[2, 2], 1)?, &w, 1e-5, false)
        .is_err());
    Ok(())
}
