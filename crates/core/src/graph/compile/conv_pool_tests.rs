//! The fused convolution + bias + ReLU + 2×2 max-pool forward step (`Kind::ConvForward`,
//! `cpu::conv_pool_fused`) against the graph interpreter, bit for bit, on the direct
//! kernels' geometries and on ones that fall back to the plain convolution.

use super::super::compile;
use super::tests::{awkward, bits};
use crate::graph::{Capture, Graph};
use crate::params::{CmpOp, Conv2dParams, Pool2dParams};
use crate::{DType, Device, Result, Tensor};

/// `(input [n, c, h, w], weight [o, c, kh, kw], stride, padding)`.
type Case = ([usize; 4], [usize; 4], usize, usize);

/// A conv layer's forward and backward as a training step records them, and a graph of it
/// with `xs = [x, grad of the pooled map]`. With `nan`, the input holds NaNs and −0; the
/// last output channel has zero weights (ties, every window equal) and a −0.0 bias, the one
/// before it a large negative bias (planes with no positive value).
fn capture(
    (xd, wd, stride, pad): Case,
    nan: bool,
    shared: bool,
) -> Result<(Graph, Vec<Tensor>, Conv2dParams)> {
    let mut x = awkward(xd, 1)?;
    if !nan {
        let v: Vec<f32> = x
            .to_vec::<f32>()?
            .iter()
            .map(|v| v.clamp(-3.0, 3.0))
            .collect();
        let v = v.into_iter().map(|v| if v.is_nan() { 0.5 } else { v });
        x = Tensor::from_vec(v.collect(), xd.to_vec(), &Device::Cpu)?;
    }
    let (w, b) = layer_params(wd)?;
    let o = wd[0];
    let params = Conv2dParams {
        stride: (stride, stride),
        padding: (pad, pad),
        ..Default::default()
    };
    let y = x.conv2d(&w, None, params)?;
    let (oh, ow) = (y.dims()[2], y.dims()[3]);
    let gp = awkward([xd[0], o, oh / 2, ow / 2], 2)?;
    let g = Capture::new()
        .input("x", &x)
        .input("gp", &gp)
        .param("w", &w)
        .param("b", &b)
        .run(|xs| {
            let y = xs[0].conv2d(&w, None, params)?;
            let r = y.add(&b)?.relu()?;
            let (p, i) = r.max_pool2d_with_indices(Pool2dParams::new(2))?;
            let m = xs[1].max_pool2d_backward(&i, r.shape())?;
            let mask = r.cmp_scalar(0.0, CmpOp::Le)?;
            let d = mask.where_cond(&m.scalar_like(0.0)?, &m)?;
            let mut outs = vec![p.mul_scalar(2.0)?, d.mul_scalar(3.0)?, i];
            if shared {
                outs.push(y.sum_all()?);
            }
            Ok(outs)
        })?;
    Ok((g, vec![x, gp], params))
}

/// A layer's weight `wd` and bias `[1, O, 1, 1]`: random weights except the last output
/// channel's, all zero (ties: every window equal), whose bias is −0.0; the channel before it
/// has a large negative bias (planes with no positive value).
pub(super) fn layer_params(wd: [usize; 4]) -> Result<(Tensor, Tensor)> {
    crate::manual_seed(7);
    let o = wd[0];
    let plane = wd[1] * wd[2] * wd[3];
    let mut wv = Tensor::randn(0.0, 0.3, wd.to_vec(), DType::F32, &Device::Cpu)?.to_vec::<f32>()?;
    wv[(o - 1) * plane..].fill(0.0);
    let w = Tensor::from_vec(wv, wd.to_vec(), &Device::Cpu)?;
    let mut bv: Vec<f32> = (0..o).map(|k| k as f32 * 0.11 - 0.2).collect();
    bv[o - 1] = -0.0;
    if o >= 2 {
        bv[o - 2] = -100.0;
    }
    Ok((w, Tensor::from_vec(bv, [1, o, 1, 1], &Device::Cpu)?))
}

fn check(case: Case, nan: bool, shared: bool) -> Result<Vec<String>> {
    let (g, ins, _) = capture(case, nan, shared)?;
    plan_matches_graph(&g, &ins, &format!("{case:?} nan {nan}"))
}

/// Compiles `g`, checks two plan runs on `ins` against `Graph::run` bit for bit (`what` names
/// the case in failures) and returns the plan's step names.
pub(super) fn plan_matches_graph(g: &Graph, ins: &[Tensor], what: &str) -> Result<Vec<String>> {
    let mut plan = compile(g)?;
    let names: Vec<String> = plan.profile(ins)?.into_iter().map(|(n, _)| n).collect();
    for _ in 0..2 {
        let (want, got) = (g.run(ins)?, plan.run(ins)?);
        assert_eq!(want.len(), got.len(), "{what}");
        for (w, h) in want.iter().zip(&got) {
            assert_eq!(w.dims(), h.dims(), "{what}");
            assert_eq!(bits(w)?, bits(h)?, "{what}");
        }
    }
    Ok(names)
}

#[test]
fn fused_conv_pool_step_is_bit_identical_to_graph_run() -> Result<()> {
    let cases: [Case; 6] = [
        ([64, 1, 32, 32], [6, 1, 5, 5], 1, 0), // LeNet-5 conv1, batch 64 (parallel)
        ([3, 6, 14, 14], [16, 6, 5, 5], 1, 0), // LeNet-5 conv2
        ([1, 3, 12, 9], [7, 3, 5, 5], 1, 0),   // batch 1, odd output 8x5, 7 channels
        ([2, 2, 9, 11], [5, 2, 4, 4], 1, 1),   // padding, odd 8x10 -> even, even kernel
        ([2, 3, 13, 13], [4, 3, 3, 3], 2, 0),  // stride 2: the plain convolution runs
        ([2, 17, 10, 7], [19, 17, 3, 3], 1, 1), // 3x3: Winograd, the plain convolution
    ];
    for case in cases {
        for nan in [false, true] {
            let names = check(case, nan, false)?;
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with("conv_bias_relu_max_pool")),
                "{case:?}: {names:?}"
            );
            assert!(!names.iter().any(|n| n.starts_with("conv2d[")), "{names:?}");
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with("max_pool_relu_backward")),
                "{names:?}"
            );
        }
    }
    Ok(())
}

/// A convolution output read elsewhere stays a step of its own; the pooling still fuses.
#[test]
fn a_shared_conv_output_is_not_fused() -> Result<()> {
    let names = check(([2, 3, 12, 12], [5, 3, 5, 5], 1, 0), false, true)?;
    assert!(
        !names.iter().any(|n| n.starts_with("conv_bias")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("bias_relu_max_pool")),
        "{names:?}"
    );
    Ok(())
}

#[test]
fn fused_conv_pool_kernel_refuses_bad_shapes() -> Result<()> {
    use crate::cpu::conv_bias_relu_max_pool_2x2 as fused;
    use crate::cpu::pool_fused::bias_relu_max_pool_2x2_strided as strided;
    let p = Conv2dParams::default();
    let (xd, wd) = ((2, 3, 12, 12), (5, 3, 5, 5));
    let x = vec![0.5f32; 2 * 3 * 144];
    let w = vec![0.1f32; 5 * 75];
    let (mut o, mut i) = (vec![0f32; 2 * 5 * 16], vec![0i64; 2 * 5 * 16]);
    let direct = fused(&x, xd, &w, wd, &p, &[0.0; 5], &mut o, &mut i)?;
    if direct {
        // 0.5 · 0.1 · 75 taps in every window: the first tap wins the tie.
        assert!(o.iter().all(|&v| (v - 3.75).abs() < 1e-5), "{o:?}");
        assert_eq!(&i[..4], &[0, 2, 4, 6]);
    } else {
        eprintln!("no AVX-512 direct kernels here: the fused kernel declined, as it should");
    }
    let bias_err = fused(&x, xd, &w, wd, &p, &[0.0; 4], &mut o, &mut i).unwrap_err();
    assert!(bias_err.to_string().contains("biases"), "{bias_err}");
    assert!(fused(&x[1..], xd, &w, wd, &p, &[0.0; 5], &mut o, &mut i).is_err());
    assert!(fused(&x, xd, &w, (5, 2, 5, 5), &p, &[0.0; 5], &mut o, &mut i).is_err());
    assert!(fused(&x, xd, &w, (5, 3, 13, 13), &p, &[0.0; 5], &mut o, &mut i).is_err());
    let small = fused(&x, xd, &w, (5, 3, 12, 12), &p, &[0.0; 5], &mut o, &mut i);
    assert!(small.unwrap_err().to_string().contains("2x2"));
    if direct {
        assert!(fused(&x, xd, &w, wd, &p, &[0.0; 5], &mut o[1..], &mut i).is_err());
    }
    // The strided pooling: planes of 4x5 held 6 apart by rows, 30 apart by planes.
    let src = vec![1f32; 60];
    let (mut o, mut i) = (vec![0f32; 8], vec![0i64; 8]);
    assert!(strided(&src, (30, 6), &[0.0; 2], (4, 5), &mut o, &mut i).is_ok());
    assert_eq!(i, [0, 2, 10, 12, 0, 2, 10, 12]);
    assert!(strided(&src, (30, 4), &[0.0; 2], (4, 5), &mut o, &mut i).is_err());
    assert!(strided(&src[..40], (30, 6), &[0.0; 2], (4, 5), &mut o, &mut i).is_err());
    assert!(strided(&src, (30, 6), &[0.0; 3], (4, 5), &mut o, &mut i).is_err());
    assert!(strided(&src, (30, 6), &[], (4, 5), &mut o, &mut i).is_err());
    Ok(())
}
