//! Engine behaviour: accumulation, reuse, retain_graph, no_grad, detach, errors, custom ops, memory.

use mlfw_autograd::{backward, custom_op, grad, gradcheck, no_grad, Backward, GradcheckOptions};
use mlfw_core::{Device, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

#[test]
fn accumulates_across_backward_calls_and_zero_grad_clears() {
    let x = t(&[1., 2.], &[2]).requires_grad_(true).unwrap();
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![6., 6.]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn second_backward_through_freed_graph_is_an_error_unless_retained() {
    let x = t(&[1., 2.], &[2]).requires_grad_(true).unwrap();
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert!(e.contains("second time"), "{e}");
    let z = x.exp().unwrap().sum_all().unwrap();
    z.backward_retain().unwrap();
    z.backward().unwrap();
}

#[test]
fn no_grad_and_detach_stop_recording() {
    let x = t(&[1., 2.], &[2]).requires_grad_(true).unwrap();
    {
        let _g = no_grad();
        let y = x.mul_scalar(2.0).unwrap();
        assert!(!y.requires_grad());
    }
    assert!(x.mul_scalar(2.0).unwrap().requires_grad());
    let d = x.detach();
    assert!(!d.requires_grad() && d.is_leaf());
    assert!(d
        .mul_scalar(2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .is_err());
}

#[test]
fn bad_backward_calls_are_errors() {
    let x = t(&[1., 2.], &[2]).requires_grad_(true).unwrap();
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert!(e.contains("scalar"), "{e}");
    let e = y
        .backward_with(&t(&[1., 1., 1.], &[3]), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape mismatch"), "{e}");
    y.backward_with(&t(&[1., 1.], &[2]), false).unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![2., 2.]);
    let i = Tensor::from_vec(vec![1i64], [1], &Device::Cpu).unwrap();
    assert!(i.set_requires_grad(true).is_err());
    assert!(t(&[1.], &[1]).sum_all().unwrap().backward().is_err());
}

#[test]
fn views_route_gradients_to_the_viewed_elements() {
    let x = t(&[1., 2., 3., 4., 5., 6.], &[2, 3])
        .requires_grad_(true)
        .unwrap();
    let y = x
        .t()
        .unwrap()
        .narrow(0, 1, 2)
        .unwrap()
        .select(1, 1)
        .unwrap();
    // y = [x[1][1], x[1][2]] = [5, 6]
    y.mul(&t(&[10., 20.], &[2]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![0., 0., 0., 0., 10., 20.]
    );
}

#[test]
fn functional_grad_leaves_dot_grad_alone() {
    let x = t(&[1., 2.], &[2]).requires_grad_(true).unwrap();
    let y = x.square().unwrap().sum_all().unwrap();
    let g = grad(&y, std::slice::from_ref(&x), None).unwrap();
    assert_eq!(
        g[0].as_ref().unwrap().to_vec::<f32>().unwrap(),
        vec![2., 4.]
    );
    assert!(x.grad().is_none());
    backward(&y, None, false).unwrap();
    assert!(x.grad().is_some());
}

#[test]
fn custom_op_is_differentiable_and_gradcheckable() {
    // A smooth-abs op sqrt(x² + 1) with a hand-written derivative.
    let f = |xs: &[Tensor]| {
        custom_op(
            "smooth_abs",
            |xs| xs[0].square()?.add_scalar(1.0)?.sqrt(),
            |xs, y, g| Ok(vec![Some(g.mul(&xs[0].div(y)?)?)]),
            xs,
        )
    };
    let x = Tensor::from_vec(vec![-1.5f64, 0.3, 2.0], [3], &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let r = gradcheck(f, &[x], GradcheckOptions::default()).unwrap();
    assert!(r.passed(), "{r}");
    // A wrong backward is caught.
    let bad = |xs: &[Tensor]| {
        custom_op(
            "bad",
            |xs| xs[0].exp(),
            |_, y, g| Ok(vec![Some(g.mul(y)?.mul_scalar(1.1)?)]),
            xs,
        )
    };
    let x = Tensor::from_vec(vec![0.5f64, -0.2], [2], &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    assert!(!gradcheck(bad, &[x], GradcheckOptions::default())
        .unwrap()
        .passed());
}

#[test]
fn long_graphs_drop_without_stack_overflow() {
    let x = t(&[1.], &[1]).requires_grad_(true).unwrap();
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = y.add_scalar(1.0).unwrap();
    }
    drop(y);
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.mul_scalar(1.0).unwrap();
    }
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0]);
}
