//! The fused f32 CPU batch norm against the composite formula (taken for strided inputs),
//! forward, gradients (first and second order), running statistics and eval mode, on odd
//! shapes; and the composite formula against PyTorch's numbers.

use mlfw_autograd::{grad, grad_with};
use mlfw_core::{DType, Device, Generator, Op, Tensor};
use mlfw_nn::functional::{batch_norm, batch_norm_relu, RunningStats};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::randn_with(0.5, 2.0, shape.to_vec(), DType::F32, &Device::Cpu, &mut g).unwrap()
}

/// The same values as `x` in a strided (non-contiguous) layout, so batch norm takes the
/// composite path; gradients still flow to `x`.
fn strided(x: &Tensor) -> Tensor {
    x.transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap()
        .transpose(0, 1)
        .unwrap()
}

fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: fused {x} vs composite {y}"
        );
    }
}

#[test]
fn training_forward_grads_and_running_stats_match_composite() {
    for (shape, affine, relu) in [
        (vec![4usize, 3, 5, 7], true, false),
        (vec![2, 17, 3, 3], true, false),
        (vec![5, 6], true, false),
        (vec![3, 4, 2, 2, 3], false, false),
        (vec![8, 70, 8, 8], true, false),
        (vec![4, 3, 5, 7], true, true),
        (vec![2, 17, 3, 3], false, true),
        (vec![6, 5], true, true),
    ] {
        let c = shape[1];
        let x = randn(&shape, 1).requires_grad_(true).unwrap();
        let w = randn(&[c], 2).requires_grad_(true).unwrap();
        let b = randn(&[c], 3).requires_grad_(true).unwrap();
        let r = randn(&shape, 4);
        let mut outs = Vec::new();
        for fused in [true, false] {
            let (rm, rv) = (
                Tensor::zeros([c], DType::F32, &Device::Cpu).unwrap(),
                Tensor::ones([c], DType::F32, &Device::Cpu).unwrap(),
            );
            let xin = if fused { x.clone() } else { strided(&x) };
            assert_eq!(xin.is_contiguous(), fused);
            let (wa, ba) = if affine {
                (Some(&w), Some(&b))
            } else {
                (None, None)
            };
            let running = RunningStats {
                mean: &rm,
                var: &rv,
                num_batches_tracked: None,
                momentum: Some(0.1),
            };
            let f = if relu { batch_norm_relu } else { batch_norm };
            let y = f(&xin, Some(running), wa, ba, true, 1e-5).unwrap();
            // The fused path records one custom op; the composite one an ordinary op.
            assert_eq!(matches!(y.op(), Some(Op::Custom(..))), fused, "{shape:?}");
            let loss = y.mul(&r).unwrap().sum_all().unwrap();
            let mut ins = vec![x.clone()];
            if affine {
                ins.extend([w.clone(), b.clone()]);
            }
            let gs = grad(&loss, &ins, None).unwrap();
            outs.push((y.detach(), gs, rm, rv));
        }
        let what = format!("{shape:?} relu {relu}");
        close(&outs[0].0, &outs[1].0, 1e-4, &format!("{what} y"));
        for (k, (a, b)) in outs[0].1.iter().zip(&outs[1].1).enumerate() {
            close(
                a.as_ref().unwrap(),
                b.as_ref().unwrap(),
                2e-3,
                &format!("{what} grad {k}"),
            );
        }
        close(
            &outs[0].2,
            &outs[1].2,
            1e-5,
            &format!("{what} running mean"),
        );
        close(&outs[0].3, &outs[1].3, 1e-4, &format!("{what} running var"));
    }
}

#[test]
fn eval_mode_matches_composite_and_tracks_grads_through_composite() {
    let x = randn(&[3, 5, 4, 6], 5);
    let (rm, rv) = (randn(&[5], 6), randn(&[5], 7).abs().unwrap());
    let (w, b) = (randn(&[5], 8), randn(&[5], 9));
    let run = |xin: &Tensor| {
        let running = RunningStats {
            mean: &rm,
            var: &rv,
            num_batches_tracked: None,
            momentum: Some(0.1),
        };
        batch_norm(xin, Some(running), Some(&w), Some(&b), false, 1e-5).unwrap()
    };
    close(&run(&x), &run(&strided(&x)), 1e-5, "eval y");
    // An input that needs a gradient in eval mode still gets one (composite path).
    let xg = x.clone().requires_grad_(true).unwrap();
    let y = run(&xg);
    let g = grad(&y.sum_all().unwrap(), std::slice::from_ref(&xg), None).unwrap();
    let want = w
        .mul(&rv.add_scalar(1e-5).unwrap().rsqrt().unwrap())
        .unwrap();
    let got = g[0]
        .as_ref()
        .unwrap()
        .narrow(0, 0, 1)
        .unwrap()
        .narrow(2, 0, 1)
        .unwrap()
        .narrow(3, 0, 1)
        .unwrap()
        .flatten(0, -1)
        .unwrap();
    close(&got, &want, 1e-5, "eval grad");
}

#[test]
fn second_order_gradients_match_composite() {
    // create_graph: the fused op's backward is recorded ops, so grad of grad works.
    let x = randn(&[3, 2, 4], 11).requires_grad_(true).unwrap();
    let w = randn(&[2], 12).requires_grad_(true).unwrap();
    let r = randn(&[3, 2, 4], 13);
    let mut outs = Vec::new();
    for fused in [true, false] {
        let xin = if fused { x.clone() } else { strided(&x) };
        let y = batch_norm_relu(&xin, None, Some(&w), None, true, 1e-5).unwrap();
        let loss = y.mul(&r).unwrap().square().unwrap().sum_all().unwrap();
        let gx = grad_with(&loss, std::slice::from_ref(&x), None, true).unwrap()[0]
            .clone()
            .unwrap();
        let gg = grad(
            &gx.square().unwrap().sum_all().unwrap(),
            &[x.clone(), w.clone()],
            None,
        )
        .unwrap();
        outs.push((gx.detach(), gg));
    }
    close(&outs[0].0, &outs[1].0, 2e-3, "first order");
    for (k, (a, b)) in outs[0].1.iter().zip(&outs[1].1).enumerate() {
        close(
            a.as_ref().unwrap(),
            b.as_ref().unwrap(),
            5e-3,
            &format!("second order {k}"),
        );
    }
}

#[test]
fn one_value_per_channel_is_an_error_in_training() {
    let x = randn(&[1, 3], 1);
    assert!(batch_norm(&x, None, None, None, true, 1e-5).is_err());
}
