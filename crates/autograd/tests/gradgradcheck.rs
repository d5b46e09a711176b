//! Second-order gradient checks (five-point, f64) for every op family with a smooth second
//! derivative, and for the piecewise-linear ones whose second derivative is zero.

mod common;
use common::{check2, ids, leaf, pos_leaf};
use mlfw_core::{Conv2dParams, Pool2dParams, Tensor, UnaryOp};

#[test]
fn unary_ops() {
    let x = leaf(&[3, 4], 1);
    let p = pos_leaf(&[3, 4], 2);
    let cases: Vec<(&str, UnaryOp, &Tensor)> = vec![
        ("neg", UnaryOp::Neg, &x),
        ("exp", UnaryOp::Exp, &x),
        ("log", UnaryOp::Log, &p),
        ("sqrt", UnaryOp::Sqrt, &p),
        ("rsqrt", UnaryOp::Rsqrt, &p),
        ("sin", UnaryOp::Sin, &x),
        ("cos", UnaryOp::Cos, &x),
        ("tanh", UnaryOp::Tanh, &x),
        ("sigmoid", UnaryOp::Sigmoid, &x),
        ("gelu", UnaryOp::GeluErf, &x),
        ("gelu_tanh", UnaryOp::GeluTanh, &x),
        ("erf", UnaryOp::Erf, &x),
        ("recip", UnaryOp::Recip, &p),
        ("square", UnaryOp::Square, &x),
        ("powf", UnaryOp::Powf(2.5), &p),
        ("affine", UnaryOp::Affine(2.0, -1.0), &x),
        // Piecewise linear: the second derivative is zero away from the kinks.
        ("relu", UnaryOp::Relu, &x),
        ("abs", UnaryOp::Abs, &x),
        ("leaky_relu", UnaryOp::LeakyRelu(0.1), &x),
        ("clamp", UnaryOp::Clamp(-0.5, 0.5), &x),
    ];
    for (name, op, t) in cases {
        check2(name, |xs| xs[0].unary_op(op), std::slice::from_ref(t));
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let a = leaf(&[2, 3, 4], 3);
    let b = leaf(&[3, 1], 4);
    let pa = pos_leaf(&[2, 3, 4], 5);
    let pb = pos_leaf(&[3, 1], 6);
    check2(
        "add",
        |x| x[0].add(&x[1])?.square(),
        &[a.clone(), b.clone()],
    );
    check2(
        "sub",
        |x| x[0].sub(&x[1])?.square(),
        &[a.clone(), b.clone()],
    );
    check2("mul", |x| x[0].mul(&x[1]), &[a.clone(), b.clone()]);
    check2("div", |x| x[0].div(&x[1]), &[a.clone(), pb.clone()]);
    // No exponent at exactly 0 (`leaf` of 3 elements holds a 0): like PyTorch, the rule
    // masks the base gradient there, so its derivative in the exponent is 0, not 1/a.
    let e = leaf(&[4], 13);
    check2("pow", |x| x[0].pow(&x[1]), &[pa.clone(), e]);
    check2("maximum", |x| x[0].maximum(&x[1])?.square(), &[a, b]);
}

#[test]
fn reductions_and_softmax() {
    let x = leaf(&[3, 4, 5], 7);
    check2(
        "sum",
        |x| x[0].sum(&[1], false)?.square(),
        std::slice::from_ref(&x),
    );
    check2(
        "mean",
        |x| x[0].mean(&[0, 2], true)?.exp(),
        std::slice::from_ref(&x),
    );
    check2(
        "max",
        |x| x[0].max(&[2], false)?.square(),
        std::slice::from_ref(&x),
    );
    check2(
        "var",
        |x| x[0].var(&[1], true, false),
        std::slice::from_ref(&x),
    );
    check2(
        "std",
        |x| x[0].std(&[2], true, true),
        std::slice::from_ref(&x),
    );
    check2("softmax", |x| x[0].softmax(1), std::slice::from_ref(&x));
    check2(
        "log_softmax",
        |x| x[0].log_softmax(2),
        std::slice::from_ref(&x),
    );
    check2(
        "logsumexp",
        |x| x[0].logsumexp(&[1], false),
        std::slice::from_ref(&x),
    );
}

#[test]
fn matmul_views_and_indexing() {
    let a = leaf(&[2, 3, 4], 8);
    let b = leaf(&[4, 5], 9);
    check2("matmul", |x| x[0].matmul(&x[1]), &[a.clone(), b]);
    let sq = |t: Tensor| t.square();
    check2(
        "reshape",
        |x| sq(x[0].reshape([6, 4])?),
        std::slice::from_ref(&a),
    );
    check2(
        "permute",
        |x| sq(x[0].permute(&[2, 0, 1])?),
        std::slice::from_ref(&a),
    );
    check2(
        "narrow",
        |x| sq(x[0].narrow(2, 1, 2)?),
        std::slice::from_ref(&a),
    );
    check2(
        "expand",
        |x| sq(x[0].narrow(0, 0, 1)?.broadcast_to([3, 3, 4])?),
        std::slice::from_ref(&a),
    );
    check2(
        "cat",
        |x| sq(Tensor::cat(&[x[0].clone(), x[0].exp()?], 1)?),
        std::slice::from_ref(&a),
    );
    let i = ids(&[2, 0, 2], &[3]);
    check2(
        "index_select",
        |x| sq(x[0].index_select(&i, 2)?),
        std::slice::from_ref(&a),
    );
    let g = ids(&[0, 3, 1, 1, 2, 0], &[2, 3, 1]);
    check2(
        "gather",
        |x| sq(x[0].gather(&g, 2)?),
        std::slice::from_ref(&a),
    );
    let cond = a.gt(&a.zeros_like().unwrap()).unwrap();
    check2(
        "where",
        |x| sq(cond.where_cond(&x[0], &x[0].exp()?)?),
        std::slice::from_ref(&a),
    );
    // Cross-entropy written out: log_softmax, then the target's entry.
    let logits = leaf(&[4, 5], 10);
    let t = ids(&[1, 4, 0, 2], &[4, 1]);
    check2(
        "cross_entropy",
        |x| x[0].log_softmax(1)?.gather(&t, 1)?.mean_all()?.neg(),
        std::slice::from_ref(&logits),
    );
}

#[test]
fn convolution_and_pooling() {
    let x = leaf(&[2, 4, 6, 5], 11);
    let w = leaf(&[6, 2, 3, 2], 12);
    let p = Conv2dParams {
        stride: (2, 1),
        padding: (1, 1),
        dilation: (1, 2),
        groups: 2,
    };
    // conv is bilinear: its second derivative is the cross term between input and weight.
    check2("conv2d", |t| t[0].conv2d(&t[1], None, p), &[x.clone(), w]);
    let sq = |t: Tensor| t.square();
    check2(
        "max_pool2d",
        |t| sq(t[0].max_pool2d(Pool2dParams::new(2))?),
        std::slice::from_ref(&x),
    );
    let ap = Pool2dParams {
        padding: (1, 1),
        ..Pool2dParams::new(3)
    };
    check2(
        "avg_pool2d",
        |t| sq(t[0].avg_pool2d(ap)?),
        std::slice::from_ref(&x),
    );
    check2(
        "adaptive_avg_pool2d",
        |t| sq(t[0].adaptive_avg_pool2d((2, 3))?),
        std::slice::from_ref(&x),
    );
}

#[test]
fn create_graph_backward_accumulates_differentiable_grads() {
    use mlfw_autograd::{backward_create_graph, grad};
    let x = Tensor::from_vec(vec![1f64, -2.0, 3.0], [3], &mlfw_core::Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    backward_create_graph(&x.powf(3.0).unwrap().sum_all().unwrap(), None).unwrap();
    let g = x.grad().unwrap(); // 3x²
    assert!(g.requires_grad());
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![3.0, 12.0, 27.0]);
    let h = grad(&g.sum_all().unwrap(), std::slice::from_ref(&x), None).unwrap();
    assert_eq!(
        h[0].as_ref().unwrap().to_vec::<f64>().unwrap(),
        vec![6.0, -12.0, 18.0]
    );
}
