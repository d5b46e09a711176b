//! The separability analysis on small graphs, both ways, and a numerical check that the
//! combine rules it reports reproduce the whole-batch outputs.

use super::*;
use crate::graph::{compile_for_batch, Capture};
use crate::{Device, Tensor};

fn x(n: usize) -> Result<Tensor> {
    let v: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
        .collect();
    Tensor::from_vec(v, [n, 3], &Device::Cpu)
}

fn w() -> Result<Tensor> {
    Tensor::from_vec(
        vec![0.5f32, -1.0, 0.25, 2.0, -0.75, 1.5],
        [3, 2],
        &Device::Cpu,
    )
}

fn capture(n: usize, f: impl Fn(&Tensor, &Tensor) -> Result<Vec<Tensor>>) -> Result<Graph> {
    let w = w()?;
    Capture::new()
        .input("x", &x(n)?)
        .params([("w".to_string(), w.clone())])
        .symbolic_batch(true)
        .run(|xs| f(&xs[0], &w))
}

/// A mean loss over the samples (divided by a count computed from the batch, as
/// cross-entropy's mean is), the per-sample outputs, and the loss's gradient w.r.t. `w`
/// written by hand: `loss = Σ (x·w)² / D`, `dw = xᵀ · (2·x·w / D)`.
fn mean_loss(x: &Tensor, w: &Tensor) -> Result<Vec<Tensor>> {
    let d = x.narrow(1, 0, 1)?.full_like(1.0)?.sum_all()?;
    let y = x.matmul(w)?;
    let loss = y.square()?.sum_all()?.div(&d)?;
    let scale = d.full_like(1.0)?.div(&d)?;
    let gy = y.mul_scalar(2.0)?.mul(&scale)?;
    let gw = x.t()?.matmul(&gy)?;
    Ok(vec![loss, y, gw])
}

#[test]
fn a_mean_loss_and_its_gradient_are_separable() -> Result<()> {
    let g = capture(4, mean_loss)?;
    let s = sample_separable(&g)?;
    assert_eq!(
        s.combine,
        vec![
            Combine::NormalizedSum,
            Combine::Concat,
            Combine::NormalizedSum
        ]
    );
    assert!(s.normalizer.is_some());
    Ok(())
}

#[test]
fn micro_batches_combined_as_reported_match_the_whole_batch() -> Result<()> {
    let g = capture(4, mean_loss)?;
    let s = sample_separable(&g)?;
    let mut gd = g.clone();
    gd.outputs.push(s.normalizer.expect("a normalizer"));
    let n = 10;
    let xs = x(n)?;
    let whole = compile_for_batch(&g, n)?.run(std::slice::from_ref(&xs))?;
    // Unequal micro-batches: 4 + 6 samples.
    let mut parts = Vec::new();
    for (start, len) in [(0, 4), (4, 6)] {
        let mut p = compile_for_batch(&gd, len)?;
        parts.push(p.run(&[xs.narrow(0, start, len)?.contiguous()?])?);
    }
    let dk: Vec<f64> = parts
        .iter()
        .map(|o| o[3].item_f64())
        .collect::<Result<_>>()?;
    assert_eq!(dk, vec![4.0, 6.0]);
    let d: f64 = dk.iter().sum();
    for (j, c) in s.combine.iter().enumerate() {
        let got: Vec<f32> = match c {
            Combine::Concat => {
                Tensor::cat(&[parts[0][j].clone(), parts[1][j].clone()], 0)?.to_vec::<f32>()?
            }
            Combine::NormalizedSum => {
                let (a, b) = (parts[0][j].to_vec::<f32>()?, parts[1][j].to_vec::<f32>()?);
                a.iter()
                    .zip(&b)
                    .map(|(p, q)| (dk[0] / d * *p as f64 + dk[1] / d * *q as f64) as f32)
                    .collect()
            }
            other => panic!("unexpected {other:?}"),
        };
        let want = whole[j].to_vec::<f32>()?;
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "output {j}: {a} vs {b}"
            );
        }
    }
    Ok(())
}

#[test]
fn sums_without_a_normalizer_add_up_and_fixed_outputs_are_shared() -> Result<()> {
    let g = capture(4, |x, w| Ok(vec![x.sum(&[0], false)?, w.mul_scalar(2.0)?]))?;
    let s = sample_separable(&g)?;
    assert_eq!(s.combine, vec![Combine::Sum, Combine::Same]);
    assert_eq!(s.normalizer, None);
    Ok(())
}

fn refused(g: &Graph, what: &str) {
    match sample_separable(g) {
        Ok(s) => panic!("expected refusal ({what}), got {s:?}"),
        Err(e) => assert!(e.to_string().contains(what), "{e}"),
    }
}

#[test]
fn a_batch_statistic_flowing_back_into_samples_is_refused() -> Result<()> {
    // `x - mean(x, 0)` with the mean divided by a count of the batch: batch-norm-like.
    let g = capture(4, |x, _| {
        let d = x.narrow(1, 0, 1)?.full_like(1.0)?.sum_all()?;
        let centred = x.sub(&x.sum(&[0], true)?.div(&d)?)?;
        Ok(vec![centred.square()?.sum_all()?])
    })?;
    refused(&g, "computed from several samples");
    // Without a divisor too.
    let g = capture(4, |x, _| Ok(vec![x.sub(&x.sum(&[0], true)?)?]))?;
    refused(&g, "into per-sample values");
    Ok(())
}

#[test]
fn mixing_ops_and_non_sum_reductions_are_refused() -> Result<()> {
    refused(
        &capture(4, |x, _| Ok(vec![x.max(&[0], false)?]))?,
        "not as a sum",
    );
    refused(
        &capture(4, |x, _| Ok(vec![x.log_softmax(0)?]))?,
        "normalizes over the batch dim",
    );
    refused(
        &capture(4, |x, _| {
            Ok(vec![x.t()?.contiguous()?.reshape([x.dims()[0] * 3])?])
        })?,
        "reshapes across samples",
    );
    // A loss scaled by 1/D but with a D-free term added: not homogeneous.
    refused(
        &capture(4, |x, w| {
            let d = x.narrow(1, 0, 1)?.full_like(1.0)?.sum_all()?;
            let s = x.matmul(w)?.sum_all()?;
            Ok(vec![s.div(&d)?.add(&s)?])
        })?,
        "not as a sum",
    );
    Ok(())
}

#[test]
fn a_fixed_batch_capture_is_refused() -> Result<()> {
    let g = Capture::new()
        .input("x", &x(4)?)
        .run(|xs| Ok(vec![xs[0].sum_all()?]))?;
    refused(&g, "one batch size");
    Ok(())
}
