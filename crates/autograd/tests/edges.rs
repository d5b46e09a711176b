//! Special values (NaN, ±inf), ties and singular points: forward values and gradients are
//! PyTorch 2.15's (issue 14), op by op. The nn and optim cases (Embedding's padding_idx,
//! binary cross entropy, clip_grad_norm) are in those crates' tests.

use mlfw_autograd::Backward;
use mlfw_core::{Device, Pool2dParams, Result, Tensor};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

fn leaf(v: &[f32], shape: &[usize]) -> Tensor {
    t(v, shape).requires_grad_(true).unwrap()
}

/// Equal element by element: NaN where `want` has NaN, the same infinity, else within 1e-6
/// relative.
#[track_caller]
fn same(what: &str, got: &Tensor, want: &[f32]) {
    let g = got.to_vec::<f32>().unwrap();
    assert_eq!(g.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in g.iter().zip(want).enumerate() {
        let ok = if b.is_nan() {
            a.is_nan()
        } else if b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= 1e-6 * (1.0 + b.abs())
        };
        assert!(ok, "{what}: element {i} is {a}, PyTorch gives {b} ({g:?})");
    }
}

/// The gradient of `sum(f(x))` at `x`.
fn grad_of(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Tensor {
    x.zero_grad();
    f(x).unwrap().sum_all().unwrap().backward().unwrap();
    x.grad().unwrap()
}

#[test]
fn relu_family_passes_nan_through() {
    let x = leaf(&[NAN, -1., 2., 0.], &[4]);
    same("relu", &x.relu().unwrap(), &[NAN, 0., 2., 0.]);
    // threshold_backward: 0 where the output is <= 0 (also at 0), else the gradient.
    same("relu'", &grad_of(&x, |x| x.relu()), &[1., 0., 1., 0.]);
    let x = leaf(&[NAN, -3., 0.5, 3.], &[4]);
    same("clamp", &x.clamp(-1., 1.).unwrap(), &[NAN, -1., 0.5, 1.]);
    same(
        "clamp'",
        &grad_of(&x, |x| x.clamp(-1., 1.)),
        &[0., 0., 1., 0.],
    );
    same(
        "clamp_min",
        &x.clamp(0., f64::INFINITY).unwrap(),
        &[NAN, 0., 0.5, 3.],
    );
    same("relu6", &x.clamp(0., 6.).unwrap(), &[NAN, 0., 0.5, 3.]);
    let x = leaf(&[NAN, -2., 0., 3.], &[4]);
    same(
        "leaky_relu",
        &x.leaky_relu(0.1).unwrap(),
        &[NAN, -0.2, 0., 3.],
    );
    // PyTorch: x > 0 ? g : slope·g, so NaN and 0 take the slope.
    same(
        "leaky_relu'",
        &grad_of(&x, |x| x.leaky_relu(0.1)),
        &[0.1, 0.1, 0.1, 1.],
    );
}

#[test]
fn max_min_reductions_and_pooling_propagate_nan() {
    let x = leaf(&[1., NAN, 3., 2., 2., 0.], &[2, 3]);
    same("amax", &x.max(&[1], false).unwrap(), &[NAN, 2.]);
    same("amin", &x.min(&[1], false).unwrap(), &[NAN, 0.]);
    same("max all", &x.max(&[], false).unwrap(), &[NAN]);
    let (v, i) = x.max_dim(1, false).unwrap();
    same("max(x, 1).values", &v, &[NAN, 2.]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0]);
    let (v, i) = x.min_dim(1, false).unwrap();
    same("min(x, 1).values", &v, &[NAN, 0.]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 2]);
    let a = leaf(&[NAN, 1., 2.], &[3]);
    let b = leaf(&[0., NAN, 2.], &[3]);
    same("maximum", &a.maximum(&b).unwrap(), &[NAN, NAN, 2.]);
    same("minimum", &a.minimum(&b).unwrap(), &[NAN, NAN, 2.]);
    // PyTorch gives the whole gradient to both sides where either is NaN, half at a tie.
    a.maximum(&b)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    same("maximum' a", &a.grad().unwrap(), &[1., 1., 0.5]);
    same("maximum' b", &b.grad().unwrap(), &[1., 1., 0.5]);
    let p = leaf(&[NAN, 1., 2., 3.], &[1, 1, 2, 2]);
    let y = p.max_pool2d(Pool2dParams::new(2)).unwrap();
    same("max_pool2d", &y, &[NAN]);
    same(
        "max_pool2d'",
        &grad_of(&p, |p| p.max_pool2d(Pool2dParams::new(2))),
        &[1., 0., 0., 0.],
    );
}

#[test]
fn softmax_subtracts_an_infinite_max_and_only_all_neg_inf_rows_are_special() {
    let ninf = f32::NEG_INFINITY;
    // (row, softmax, log_softmax, logsumexp)
    for (row, sm, lsm, lse) in [
        ([0., INF], [NAN, NAN], [NAN, NAN], INF),
        ([ninf, ninf], [NAN, NAN], [NAN, NAN], ninf),
        ([ninf, 0.], [0., 1.], [ninf, 0.], 0.),
    ] {
        let x = t(&row, &[2]);
        same(&format!("softmax({row:?})"), &x.softmax(0).unwrap(), &sm);
        same(
            &format!("log_softmax({row:?})"),
            &x.log_softmax(0).unwrap(),
            &lsm,
        );
        same(
            &format!("logsumexp({row:?})"),
            &x.logsumexp(&[0], false).unwrap(),
            &[lse],
        );
    }
    // f64 and a longer row take the generic (non-vectorised) path.
    let x = Tensor::from_vec(vec![0f64, 1., f64::INFINITY], [3], &Device::Cpu).unwrap();
    let y = x.softmax(0).unwrap().to_vec::<f64>().unwrap();
    assert!(y.iter().all(|v| v.is_nan()), "{y:?}");
    let x = t(&[NAN, 0., 1.], &[3]);
    same("softmax with NaN", &x.softmax(0).unwrap(), &[NAN, NAN, NAN]);
}

#[test]
fn pow_with_tensor_exponent_masks_zero_base() {
    let a = leaf(&[0., 2.], &[2]);
    let b = leaf(&[1., 1.], &[2]);
    a.pow(&b).unwrap().sum_all().unwrap().backward().unwrap();
    same("d/db 0^1, 2^1", &b.grad().unwrap(), &[0., 1.386_294_4]);
    same("d/da 0^1, 2^1", &a.grad().unwrap(), &[1., 1.]);
    let a = leaf(&[0., 2.], &[2]);
    let b = leaf(&[0., 0.], &[2]);
    let y = a.pow(&b).unwrap();
    same("0^0, 2^0", &y, &[1., 1.]);
    y.sum_all().unwrap().backward().unwrap();
    same("d/da 0^0, 2^0", &a.grad().unwrap(), &[0., 0.]);
    same(
        "d/db 0^0, 2^0",
        &b.grad().unwrap(),
        &[0., std::f32::consts::LN_2],
    );
}

#[test]
fn max_over_a_dim_gives_the_tie_to_the_returned_index_amax_splits_it() {
    let x = leaf(&[1., 3., 3.], &[1, 3]);
    same(
        "max(x, 1).values'",
        &grad_of(&x, |x| Ok(x.max_dim(1, false)?.0)),
        &[0., 1., 0.],
    );
    same(
        "amax'",
        &grad_of(&x, |x| x.max(&[1], false)),
        &[0., 0.5, 0.5],
    );
    let x = leaf(&[2., 1., 1.], &[1, 3]);
    same(
        "min(x, 1, keepdim).values'",
        &grad_of(&x, |x| Ok(x.min_dim(-1, true)?.0)),
        &[0., 1., 0.],
    );
    same(
        "amin'",
        &grad_of(&x, |x| x.min(&[1], false)),
        &[0., 0.5, 0.5],
    );
    let (v, i) = x.min_dim(1, true).unwrap();
    assert_eq!(v.dims(), &[1, 1]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1]);
}

#[test]
fn std_and_norm_have_zero_gradient_at_zero() {
    let x = leaf(&[0., 0., 0.], &[3]);
    same("std", &x.std(&[], true, false).unwrap(), &[0.]);
    same(
        "std'",
        &grad_of(&x, |x| x.std(&[], true, false)),
        &[0., 0., 0.],
    );
    same("norm'", &grad_of(&x, |x| x.norm(&[], false)), &[0., 0., 0.]);
    // Away from zero the ordinary derivatives: (x − mean) / ((n − 1)·std) and x / ‖x‖.
    let x = leaf(&[1., 2., 3.], &[3]);
    same(
        "std' at [1,2,3]",
        &grad_of(&x, |x| x.std(&[], true, false)),
        &[-0.5, 0., 0.5],
    );
    let x = leaf(&[3., 4., 0., 0.], &[2, 2]);
    same("norm rows", &x.norm(&[1], false).unwrap(), &[5., 0.]);
    same(
        "norm' rows",
        &grad_of(&x, |x| x.norm(&[1], false)),
        &[0.6, 0.8, 0., 0.],
    );
    // Constant rows of a batch: 0 there, the usual gradient elsewhere.
    let x = leaf(&[5., 5., 1., 3.], &[2, 2]);
    same(
        "std' rows",
        &grad_of(&x, |x| x.std(&[1], false, false)),
        &[0., 0., -0.5, 0.5],
    );
}

#[test]
fn abs_and_sign_at_zero_and_nan() {
    let x = leaf(&[-2., 0., NAN, 3.], &[4]);
    // PyTorch: d|x| = sgn(x) with sgn(0) = sgn(NaN) = 0.
    same("abs'", &grad_of(&x, |x| x.abs()), &[-1., 0., 0., 1.]);
    // mlfw keeps NaN for sign(NaN) (PyTorch gives 0): see the README.
    same("sign", &x.sign().unwrap(), &[-1., 0., NAN, 1.]);
    same("sign'", &grad_of(&x, |x| x.sign()), &[0., 0., 0., 0.]);
}
