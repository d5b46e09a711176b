//! Convolutions (cuDNN path) and pooling against the CPU.

use crate::common::{randn, same_on_both};
use mlfw_core::{Conv2dParams, Pool2dParams, Result, Shape};

pub(crate) fn conv_cases(tol: f64) -> Result<()> {
    mlfw_cuda::set_cudnn_allow_tf32(false);
    let cases = [
        ([2, 3, 11, 13], [4, 3, 3, 3], Conv2dParams::default()),
        (
            [2, 4, 12, 12],
            [6, 2, 3, 5],
            Conv2dParams {
                stride: (2, 1),
                padding: (1, 2),
                dilation: (1, 1),
                groups: 2,
            },
        ),
        (
            [1, 3, 16, 9],
            [5, 3, 3, 3],
            Conv2dParams {
                stride: (1, 2),
                padding: (2, 1),
                dilation: (2, 1),
                groups: 1,
            },
        ),
        (
            [8, 1, 28, 28],
            [6, 1, 5, 5],
            Conv2dParams {
                padding: (2, 2),
                ..Default::default()
            },
        ),
    ];
    for (i, (xs, ws, p)) in cases.into_iter().enumerate() {
        same_on_both(&format!("conv case {i}"), tol, tol, |d| {
            let x = randn(&xs, 1, d)?;
            let w = randn(&ws, 2, d)?;
            let y = x.conv2d(&w, None, p)?;
            let g = randn(y.dims(), 3, d)?;
            let dx = g.conv2d_backward_input(&w, p, (xs[2], xs[3]))?;
            let dw = x.conv2d_backward_weight(&g, p, (ws[2], ws[3]))?;
            // A strided (non-contiguous) input gives the same result.
            let xt = x
                .permute(&[0, 1, 3, 2])?
                .contiguous()?
                .permute(&[0, 1, 3, 2])?;
            Ok(vec![y, dx, dw, xt.conv2d(&w, None, p)?])
        })?;
    }
    Ok(())
}

#[test]
fn conv2d_forward_and_backward() -> Result<()> {
    conv_cases(1e-4)
}

#[test]
fn pooling_forward_and_backward() -> Result<()> {
    let pools = [
        Pool2dParams::new(2),
        Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
            dilation: (1, 1),
            ceil_mode: true,
            count_include_pad: false,
        },
        Pool2dParams {
            kernel: (3, 2),
            stride: (1, 2),
            padding: (1, 0),
            dilation: (2, 1),
            ceil_mode: false,
            count_include_pad: true,
        },
    ];
    for (i, p) in pools.into_iter().enumerate() {
        same_on_both(&format!("pool case {i}"), 1e-5, 1e-6, |d| {
            let x = randn(&[2, 3, 9, 10], 4, d)?;
            let input = Shape::new(vec![2, 3, 9, 10]);
            let (m, idx) = x.max_pool2d_with_indices(p)?;
            let g = randn(m.dims(), 5, d)?;
            let mut out = vec![m, idx.clone(), g.max_pool2d_backward(&idx, &input)?];
            if p.dilation == (1, 1) {
                let a = x.avg_pool2d(p)?;
                let ga = randn(a.dims(), 6, d)?;
                out.push(a);
                out.push(ga.avg_pool2d_backward(p, &input)?);
            }
            Ok(out)
        })?;
    }
    same_on_both("adaptive avg pool", 1e-5, 1e-6, |d| {
        let x = randn(&[2, 3, 10, 7], 7, d)?;
        let input = Shape::new(vec![2, 3, 10, 7]);
        let mut out = Vec::new();
        for hw in [(1, 1), (3, 4), (10, 7), (4, 3)] {
            let y = x.adaptive_avg_pool2d(hw)?;
            let g = randn(y.dims(), 8, d)?;
            out.push(y);
            out.push(g.adaptive_avg_pool2d_backward(&input)?);
        }
        Ok(out)
    })
}
