//! Optimizer updates against hand-computed PyTorch values, groups, state dicts, errors.

use mlfw_core::{DType, Device, Tensor};
use mlfw_optim::*;

fn leaf(v: Vec<f32>) -> Tensor {
    let n = v.len();
    Tensor::from_vec(v, [n], &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

fn grad(p: &Tensor, v: Vec<f32>) {
    let n = v.len();
    p.set_grad(Some(Tensor::from_vec(v, [n], &Device::Cpu).unwrap()));
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_momentum_weight_decay_nesterov() {
    let p = leaf(vec![1.0, -1.0]);
    let mut opt = Sgd::new(
        vec![p.clone()],
        SgdConfig::new(0.1).momentum(0.9).weight_decay(0.1),
    )
    .unwrap();
    grad(&p, vec![1.0, 1.0]);
    opt.step().unwrap();
    // d = g + 0.1 p = [1.1, 0.9]; buf = d; p -= 0.1 d
    close(&p.to_vec::<f32>().unwrap(), &[0.89, -1.09], 1e-6);
    opt.step().unwrap();
    // d = [1 + .089, 1 - .109] = [1.089, 0.891]; buf = 0.9*[1.1, .9] + d = [2.079, 1.701]
    close(
        &p.to_vec::<f32>().unwrap(),
        &[0.89 - 0.2079, -1.09 - 0.1701],
        1e-6,
    );
    let q = leaf(vec![0.0]);
    let mut n = Sgd::new(
        vec![q.clone()],
        SgdConfig::new(1.0).momentum(0.5).nesterov(true),
    )
    .unwrap();
    grad(&q, vec![1.0]);
    n.step().unwrap();
    // buf = 1; d = 1 + 0.5 * 1 = 1.5
    close(&q.to_vec::<f32>().unwrap(), &[-1.5], 1e-7);
    assert!(Sgd::new(vec![leaf(vec![0.0])], SgdConfig::new(0.1).nesterov(true)).is_err());
    assert!(Sgd::new(vec![leaf(vec![0.0])], SgdConfig::new(-0.1)).is_err());
}

#[test]
fn adam_adamw_amsgrad() {
    let p = leaf(vec![1.0, 2.0]);
    let mut opt = Adam::new(vec![p.clone()], AdamConfig::new(0.01)).unwrap();
    grad(&p, vec![0.5, -3.0]);
    opt.step().unwrap();
    close(&p.to_vec::<f32>().unwrap(), &[0.99, 2.01], 1e-6);
    // AdamW with zero gradient only decays: p *= 1 - lr * wd
    let q = leaf(vec![2.0]);
    let mut w = AdamW::new(vec![q.clone()], AdamConfig::adamw(0.1).weight_decay(0.5)).unwrap();
    grad(&q, vec![0.0]);
    w.step().unwrap();
    close(&q.to_vec::<f32>().unwrap(), &[1.9], 1e-6);
    let r = leaf(vec![1.0]);
    let mut a = Adam::new(vec![r.clone()], AdamConfig::new(0.1).amsgrad(true)).unwrap();
    grad(&r, vec![1.0]);
    a.step().unwrap();
    grad(&r, vec![0.1]);
    a.step().unwrap();
    assert_eq!(a.state_dict().unwrap().tensors.len(), 3);
    assert!(Adam::new(vec![leaf(vec![0.0])], AdamConfig::new(0.1).betas(1.0, 0.9)).is_err());
}

#[test]
fn rmsprop_and_adagrad() {
    let p = leaf(vec![1.0]);
    let mut opt = RmsProp::new(vec![p.clone()], RmsPropConfig::new(0.01)).unwrap();
    grad(&p, vec![2.0]);
    opt.step().unwrap();
    // v = 0.01 * 4; p -= 0.01 * 2 / (0.2 + 1e-8)
    close(&p.to_vec::<f32>().unwrap(), &[0.9], 1e-6);
    let c = leaf(vec![1.0]);
    let mut cm = RmsProp::new(
        vec![c.clone()],
        RmsPropConfig::new(0.01).momentum(0.9).centered(true),
    )
    .unwrap();
    grad(&c, vec![2.0]);
    cm.step().unwrap();
    // centered: avg = sqrt(0.04 - 0.02^2); buf = 2 / avg
    let expect = 1.0 - 0.01 * 2.0 / ((0.04f32 - 0.0004).sqrt() + 1e-8);
    close(&c.to_vec::<f32>().unwrap(), &[expect], 1e-5);
    let q = leaf(vec![1.0]);
    let mut ag = Adagrad::new(vec![q.clone()], AdagradConfig::new(0.1).lr_decay(1.0)).unwrap();
    grad(&q, vec![2.0]);
    ag.step().unwrap();
    ag.step().unwrap();
    // step 1: 1 - 0.1 * 2/2 = 0.9; step 2: clr = 0.1/2, sum = 8 -> 0.9 - 0.05 * 2/sqrt(8)
    close(
        &q.to_vec::<f32>().unwrap(),
        &[0.9 - 0.05 * 2.0 / 8f32.sqrt()],
        1e-6,
    );
}

#[test]
fn groups_lr_and_skipped_params() {
    let a = leaf(vec![1.0]);
    let b = leaf(vec![1.0]);
    let c = leaf(vec![1.0]);
    let mut opt = Sgd::new(vec![a.clone(), c.clone()], SgdConfig::new(0.1)).unwrap();
    opt.add_param_group(vec![b.clone()], SgdConfig::new(1.0))
        .unwrap();
    assert!(opt
        .add_param_group(vec![a.clone()], SgdConfig::new(1.0))
        .is_err());
    grad(&a, vec![1.0]);
    grad(&b, vec![1.0]);
    opt.step().unwrap();
    close(&a.to_vec::<f32>().unwrap(), &[0.9], 1e-7);
    close(&b.to_vec::<f32>().unwrap(), &[0.0], 1e-7);
    close(&c.to_vec::<f32>().unwrap(), &[1.0], 0.0);
    assert_eq!(opt.group_lrs(), vec![0.1, 1.0]);
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
    opt.zero_grad();
    assert!(a.grad().is_none());
    let nonleaf = a.mul_scalar(2.0).unwrap();
    assert!(Sgd::new(vec![nonleaf], SgdConfig::new(0.1)).is_err());
}

#[test]
fn state_dict_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let init = vec![0.3f32, -0.7, 1.1];
    let grads = [
        vec![0.1f32, 0.2, -0.3],
        vec![-0.5, 0.25, 0.125],
        vec![0.7, -0.1, 0.3],
    ];
    let p = leaf(init.clone());
    let mut opt = Adam::new(vec![p.clone()], AdamConfig::new(0.01).amsgrad(true)).unwrap();
    for g in &grads[..2] {
        grad(&p, g.clone());
        opt.step().unwrap();
    }
    let path = dir.path().join("opt.safetensors");
    opt.state_dict().unwrap().save(&path).unwrap();
    let q = leaf(p.to_vec::<f32>().unwrap());
    let mut resumed = Adam::new(vec![q.clone()], AdamConfig::new(0.5)).unwrap();
    resumed
        .load_state_dict(&OptimizerState::load(&path).unwrap())
        .unwrap();
    assert_eq!(resumed.lr(), 0.01);
    assert_eq!(resumed.step_count(0, 0), 2);
    grad(&p, grads[2].clone());
    grad(&q, grads[2].clone());
    opt.step().unwrap();
    resumed.step().unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), q.to_vec::<f32>().unwrap());
    // wrong optimizer kind
    let mut sgd = Sgd::new(vec![leaf(init)], SgdConfig::new(0.1)).unwrap();
    let e = sgd.load_state_dict(&opt.state_dict().unwrap()).unwrap_err();
    assert!(e.to_string().contains("Adam"), "{e}");
}

#[test]
fn other_dtypes() {
    for dt in [DType::F64, DType::F16, DType::BF16] {
        let p = Tensor::ones([4], dt, &Device::Cpu)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        p.set_grad(Some(Tensor::ones([4], dt, &Device::Cpu).unwrap()));
        let mut opt = Sgd::new(vec![p.clone()], SgdConfig::new(0.5).momentum(0.9)).unwrap();
        opt.step().unwrap();
        assert_eq!(p.to_f64_vec().unwrap(), vec![0.5; 4], "{dt}");
    }
}

#[test]
fn gradient_clipping() {
    let p = leaf(vec![0.0, 0.0]);
    grad(&p, vec![3.0, 4.0]);
    let n = clip_grad_norm(std::slice::from_ref(&p), 1.0, 2.0).unwrap();
    assert!((n - 5.0).abs() < 1e-6);
    close(
        &p.grad().unwrap().to_vec::<f32>().unwrap(),
        &[0.6, 0.8],
        1e-6,
    );
    grad(&p, vec![3.0, -4.0]);
    let n = clip_grad_norm(std::slice::from_ref(&p), 10.0, f64::INFINITY).unwrap();
    assert_eq!(n, 4.0);
    close(
        &p.grad().unwrap().to_vec::<f32>().unwrap(),
        &[3.0, -4.0],
        0.0,
    );
    clip_grad_value(std::slice::from_ref(&p), 3.5).unwrap();
    close(
        &p.grad().unwrap().to_vec::<f32>().unwrap(),
        &[3.0, -3.5],
        0.0,
    );
    assert!(clip_grad_norm(&[p], 1.0, 0.0).is_err());
}

#[test]
fn gradient_clipping_with_a_nan_gradient_poisons_every_gradient_as_pytorch() {
    // PyTorch: grads [nan, 1] and [3, 4], max_norm 1 → total NaN, every gradient NaN.
    let (p, q) = (leaf(vec![0.0, 0.0]), leaf(vec![0.0, 0.0]));
    grad(&p, vec![f32::NAN, 1.0]);
    grad(&q, vec![3.0, 4.0]);
    let n = clip_grad_norm(&[p.clone(), q.clone()], 1.0, 2.0).unwrap();
    assert!(n.is_nan());
    for t in [&p, &q] {
        let g = t.grad().unwrap().to_vec::<f32>().unwrap();
        assert!(g.iter().all(|x| x.is_nan()), "{g:?}");
    }
    // The infinity norm too (a NaN-dropping max would have returned 4).
    grad(&p, vec![f32::NAN, 1.0]);
    grad(&q, vec![3.0, 4.0]);
    let n = clip_grad_norm(&[q.clone(), p.clone()], 1.0, f64::INFINITY).unwrap();
    assert!(n.is_nan());
    assert!(q.grad().unwrap().to_vec::<f32>().unwrap()[0].is_nan());
    // error_if_nonfinite: an error naming the norm, gradients untouched.
    grad(&p, vec![f32::NAN, 1.0]);
    grad(&q, vec![3.0, 4.0]);
    let e = clip_grad_norm_with(&[p.clone(), q.clone()], 1.0, 2.0, true).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    assert_eq!(q.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    grad(&p, vec![f32::INFINITY, 1.0]);
    assert!(clip_grad_norm_with(std::slice::from_ref(&p), 1.0, 2.0, true).is_err());
    // Finite gradients clip as usual with the option on.
    grad(&p, vec![3.0, 4.0]);
    let n = clip_grad_norm_with(std::slice::from_ref(&p), 1.0, 2.0, true).unwrap();
    assert!((n - 5.0).abs() < 1e-6);
    close(
        &p.grad().unwrap().to_vec::<f32>().unwrap(),
        &[0.6, 0.8],
        1e-6,
    );
}
