//! The fused backward step that computes a convolution's weight and bias gradients straight
//! from the pooled gradient (`Kind::BackwardWeight`, `cpu::conv_weight_grad_from_pool`)
//! against the graph interpreter, bit for bit, on the direct kernels' geometries and on ones
//! that fall back to the full-size gradient and the plain weight-gradient kernel.

use super::tests::awkward;
use crate::graph::{Capture, Graph};
use crate::params::{CmpOp, Conv2dParams, Pool2dParams};
use crate::{Device, Result, Tensor};

/// `(input [n, c, h, w], weight [o, c, kh, kw], stride, padding)`.
type Case = ([usize; 4], [usize; 4], usize, usize);

/// What a training step records for a first conv layer (no input gradient): the forward,
/// then `where(relu <= 0, 0, max_pool2d_backward(gp))`, the bias gradient as its sum over
/// `[0, 2, 3]` and the weight gradient. With `nan`, NaNs and −0 in the input and the
/// pooled gradient; the last channel has zero weights (ties) and a −0.0 bias, the one
/// before it a large negative bias (masked planes). With `dx`, the input gradient is
/// recorded too (as a second layer's step does); with `leak`, the full-size gradient is
/// also a graph output (another reader: no fusion).
fn capture(
    (xd, wd, stride, pad): Case,
    nan: bool,
    (dx, leak): (bool, bool),
) -> Result<(Graph, Vec<Tensor>)> {
    let clean = |t: Tensor| -> Result<Tensor> {
        if nan {
            return Ok(t);
        }
        let v: Vec<f32> = t.to_vec::<f32>()?;
        let v = v
            .iter()
            .map(|v| if v.is_nan() { 0.5 } else { v.clamp(-3.0, 3.0) });
        Tensor::from_vec(v.collect::<Vec<f32>>(), t.dims().to_vec(), &Device::Cpu)
    };
    let x = clean(awkward(xd, 3)?)?;
    let (w, b) = super::conv_tests::layer_params(wd)?;
    let o = wd[0];
    let params = Conv2dParams {
        stride: (stride, stride),
        padding: (pad, pad),
        ..Default::default()
    };
    let y = x.conv2d(&w, None, params)?;
    let (oh, ow) = (y.dims()[2], y.dims()[3]);
    let gp = clean(awkward([xd[0], o, oh / 2, ow / 2], 4)?)?;
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
            let db = d.sum(&[0, 2, 3], false)?;
            let dw = xs[0].conv2d_backward_weight(&d, params, (wd[2], wd[3]))?;
            let mut outs = vec![p, dw, db];
            if dx {
                outs.push(d.conv2d_backward_input(&w, params, (xd[2], xd[3]))?);
            }
            if leak {
                outs.push(d.mul_scalar(2.0)?);
            }
            Ok(outs)
        })?;
    Ok((g, vec![x, gp]))
}

fn check(case: Case, nan: bool, extra: (bool, bool)) -> Result<Vec<String>> {
    let (g, ins) = capture(case, nan, extra)?;
    super::conv_tests::plan_matches_graph(&g, &ins, &format!("{case:?} nan {nan} {extra:?}"))
}

#[test]
fn fused_weight_gradient_step_is_bit_identical_to_graph_run() -> Result<()> {
    let cases: [Case; 6] = [
        ([64, 1, 32, 32], [6, 1, 5, 5], 1, 0), // LeNet-5 conv1, batch 64 (parallel)
        ([3, 6, 14, 14], [16, 6, 5, 5], 1, 0), // LeNet-5 conv2
        ([1, 3, 12, 9], [7, 3, 5, 5], 1, 0),   // batch 1, odd output 8x5, 7 channels
        ([2, 2, 9, 11], [5, 2, 4, 4], 1, 1),   // padding, even kernel
        ([2, 3, 13, 13], [4, 3, 3, 3], 2, 0),  // stride 2: the full-size fallback
        ([2, 17, 10, 7], [19, 17, 3, 3], 1, 1), // 3x3 Winograd-sized: the fallback
    ];
    for case in cases {
        for (nan, dx) in [(false, false), (true, false), (false, true), (true, true)] {
            let names = check(case, nan, (dx, false))?;
            let fused = |p: &str| names.iter().any(|n| n.starts_with(p));
            assert!(
                fused("max_pool_relu_conv_weight_backward"),
                "{case:?}: {names:?}"
            );
            assert!(!fused("conv2d_backward"), "{names:?}");
            assert!(!fused("sum"), "{names:?}");
        }
    }
    Ok(())
}

/// A full-size gradient something else also reads is stored: the plain backward step.
#[test]
fn a_gradient_with_another_reader_is_not_fused() -> Result<()> {
    let names = check(([2, 3, 12, 12], [5, 3, 5, 5], 1, 0), true, (true, true))?;
    let has = |p: &str| names.iter().any(|n| n.starts_with(p));
    assert!(!has("max_pool_relu_conv_weight_backward"), "{names:?}");
    assert!(has("max_pool_relu_backward"), "{names:?}");
    assert!(has("conv2d_backward_weight"), "{names:?}");
    Ok(())
}

type Slices<'a> = (&'a [f32], &'a [f32], &'a [i64]);

/// `cpu::conv_weight_grad_from_pool` on a `[2, 3, 12, 12]` input of 0.5 (weight dims `wd`).
fn fused(
    x: &[f32],
    wd: (usize, usize, usize, usize),
    sl: Slices<'_>,
    geo: crate::cpu::pool_fused::Pool2x2,
    db: Option<&mut [f32]>,
    ig: Option<(&[f32], &mut [f32])>,
) -> Result<Option<Vec<f32>>> {
    let (xd, p) = ((2, 3, 12, 12), Conv2dParams::default());
    crate::cpu::conv_weight_grad_from_pool(x, xd, wd, &p, sl, 0.0, geo, db, ig)
}

#[test]
fn fused_weight_gradient_kernel_refuses_bad_input() -> Result<()> {
    use crate::cpu::pool_fused::Pool2x2;
    let wd = (5, 3, 5, 5);
    let geo = Pool2x2 {
        planes: 10,
        c: 5,
        h: 8,
        w: 8,
    };
    let x = vec![0.5f32; 2 * 3 * 144];
    let (gy, pooled) = (vec![1f32; 160], vec![1f32; 160]);
    // Window-local offsets: every window's first element.
    let idx: Vec<i64> = (0..160)
        .map(|k| {
            let (r, c) = ((k % 16) / 4, k % 4);
            (2 * r * 8 + 2 * c) as i64
        })
        .collect();
    let sl: Slices = (&gy, &pooled, &idx);
    let mut db = vec![0f32; 5];
    let ok = fused(&x, wd, sl, geo, Some(&mut db), None)?;
    if let Some(dw) = &ok {
        // Every image's gradient is 1 at 16 window corners of each plane.
        assert!(db.iter().all(|&v| v == 32.0), "{db:?}");
        assert_eq!(dw.len(), 5 * 75);
    } else {
        eprintln!("no AVX-512 direct kernels here: the fused kernel declined, as it should");
    }
    let bad = |r: Result<Option<Vec<f32>>>| assert!(r.is_err());
    bad(fused(&x, wd, (&gy[1..], &pooled, &idx), geo, None, None));
    bad(fused(&x[1..], wd, sl, geo, None, None));
    bad(fused(&x, (5, 3, 3, 3), sl, geo, None, None));
    let one = Pool2x2 {
        c: 1,
        planes: 2,
        ..geo
    };
    bad(fused(&x, wd, sl, one, None, None));
    bad(fused(&x, wd, sl, geo, Some(&mut [0.0; 4]), None));
    if ok.is_some() {
        let mut far = idx.clone();
        far[3] = 60;
        let e = fused(&x, wd, (&gy, &pooled, &far), geo, None, None).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        // The input gradient's weight and output must fit the geometry.
        let (w, mut dx) = (vec![0.1f32; 5 * 75], vec![0f32; 2 * 3 * 144]);
        bad(fused(&x, wd, sl, geo, None, Some((&w[1..], &mut dx))));
        bad(fused(&x, wd, sl, geo, None, Some((&w, &mut dx[1..]))));
        assert!(fused(&x, wd, sl, geo, None, Some((&w, &mut dx)))?.is_some());
    }
    Ok(())
}
