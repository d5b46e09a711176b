//! A gradcheck for every differentiable op of mlfw-core (conv and pooling in gradcheck_nn.rs).

mod common;
use common::{check, ids, leaf, pos_leaf};
use mlfw_core::{CmpOp, Tensor, UnaryOp};

#[test]
fn unary_ops() {
    let x = leaf(&[3, 4], 1);
    let p = pos_leaf(&[3, 4], 2);
    let cases: Vec<(&str, UnaryOp, &Tensor)> = vec![
        ("neg", UnaryOp::Neg, &x),
        ("abs", UnaryOp::Abs, &x),
        ("exp", UnaryOp::Exp, &x),
        ("log", UnaryOp::Log, &p),
        ("sqrt", UnaryOp::Sqrt, &p),
        ("rsqrt", UnaryOp::Rsqrt, &p),
        ("sin", UnaryOp::Sin, &x),
        ("cos", UnaryOp::Cos, &x),
        ("tanh", UnaryOp::Tanh, &x),
        ("sigmoid", UnaryOp::Sigmoid, &x),
        ("relu", UnaryOp::Relu, &x),
        ("gelu", UnaryOp::GeluErf, &x),
        ("gelu_tanh", UnaryOp::GeluTanh, &x),
        ("erf", UnaryOp::Erf, &x),
        ("recip", UnaryOp::Recip, &p),
        ("square", UnaryOp::Square, &x),
        ("leaky_relu", UnaryOp::LeakyRelu(0.1), &x),
        ("powf", UnaryOp::Powf(2.5), &p),
        ("clamp", UnaryOp::Clamp(-0.5, 0.5), &x),
        ("affine", UnaryOp::Affine(2.0, -1.0), &x),
    ];
    for (name, op, t) in cases {
        check(name, |xs| xs[0].unary_op(op), std::slice::from_ref(t));
    }
    check(
        "sign",
        |xs| xs[0].sign()?.mul(&xs[0]),
        std::slice::from_ref(&x),
    );
}

#[test]
fn binary_ops_with_broadcasting() {
    let a = leaf(&[2, 3, 4], 3);
    let b = leaf(&[3, 1], 4);
    let pb = pos_leaf(&[3, 1], 5);
    check("add", |x| x[0].add(&x[1]), &[a.clone(), b.clone()]);
    check("sub", |x| x[0].sub(&x[1]), &[a.clone(), b.clone()]);
    check("mul", |x| x[0].mul(&x[1]), &[a.clone(), b.clone()]);
    check("div", |x| x[0].div(&x[1]), &[a.clone(), pb.clone()]);
    check("maximum", |x| x[0].maximum(&x[1]), &[a.clone(), b.clone()]);
    check("minimum", |x| x[0].minimum(&x[1]), &[a.clone(), b.clone()]);
    check(
        "pow",
        |x| x[0].pow(&x[1]),
        &[pos_leaf(&[2, 3, 4], 6), b.clone()],
    );
    check(
        "where",
        |x| x[0].cmp_op(&x[1], CmpOp::Gt)?.where_cond(&x[0], &x[1]),
        &[a.clone(), b.clone()],
    );
    check("used twice", |x| x[0].mul(&x[0])?.add(&x[0]), &[a]);
}

#[test]
fn reductions_and_softmax() {
    let x = leaf(&[3, 4, 5], 7);
    check("sum", |x| x[0].sum(&[1], false), std::slice::from_ref(&x));
    check(
        "sum keepdim",
        |x| x[0].sum(&[0, 2], true),
        std::slice::from_ref(&x),
    );
    check("sum all", |x| x[0].sum_all(), std::slice::from_ref(&x));
    check(
        "mean",
        |x| x[0].mean(&[0, 2], false),
        std::slice::from_ref(&x),
    );
    check("max", |x| x[0].max(&[2], false), std::slice::from_ref(&x));
    check("min", |x| x[0].min(&[1], true), std::slice::from_ref(&x));
    check(
        "max all",
        |x| x[0].max(&[], false),
        std::slice::from_ref(&x),
    );
    check(
        "var",
        |x| x[0].var(&[1], true, false),
        std::slice::from_ref(&x),
    );
    check(
        "std",
        |x| x[0].std(&[2], false, true),
        std::slice::from_ref(&x),
    );
    check(
        "logsumexp",
        |x| x[0].logsumexp(&[1], false),
        std::slice::from_ref(&x),
    );
    check("softmax", |x| x[0].softmax(1), std::slice::from_ref(&x));
    check(
        "log_softmax",
        |x| x[0].log_softmax(-1),
        std::slice::from_ref(&x),
    );
    check("softmax dim0", |x| x[0].softmax(0), &[x]);
}

#[test]
fn max_ties_share_gradient() {
    use mlfw_autograd::Backward;
    let x = Tensor::from_vec(vec![1f64, 3., 3.], [3], &mlfw_core::Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    x.max(&[], false).unwrap().backward().unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec::<f64>().unwrap(),
        vec![0., 0.5, 0.5]
    );
}

#[test]
fn matmul_all_cases() {
    check(
        "mm",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[3, 4], 1), leaf(&[4, 2], 2)],
    );
    check(
        "mm transposed",
        |x| x[0].t()?.matmul(&x[1]),
        &[leaf(&[4, 3], 1), leaf(&[4, 2], 2)],
    );
    check(
        "batched bcast",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[2, 1, 3, 4], 3), leaf(&[5, 4, 2], 4)],
    );
    check(
        "batched x 2d",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[2, 3, 4], 5), leaf(&[4, 2], 6)],
    );
    check(
        "mv",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[3, 4], 7), leaf(&[4], 8)],
    );
    check(
        "vm",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[4], 9), leaf(&[4, 3], 10)],
    );
    check(
        "dot",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[4], 11), leaf(&[4], 12)],
    );
    check(
        "vec x batched",
        |x| x[0].matmul(&x[1]),
        &[leaf(&[4], 13), leaf(&[2, 4, 3], 14)],
    );
}

#[test]
fn views_and_joins() {
    let x = leaf(&[2, 3, 4], 21);
    check(
        "transpose+reshape",
        |x| x[0].transpose(0, 2)?.reshape([4, 6]),
        std::slice::from_ref(&x),
    );
    check(
        "permute",
        |x| x[0].permute(&[2, 0, 1]),
        std::slice::from_ref(&x),
    );
    check("narrow", |x| x[0].narrow(2, 1, 2), std::slice::from_ref(&x));
    check("select", |x| x[0].select(1, -1), std::slice::from_ref(&x));
    check(
        "expand",
        |x| x[0].unsqueeze(0)?.expand([3, 2, 3, 4]),
        std::slice::from_ref(&x),
    );
    check(
        "squeeze",
        |x| x[0].narrow(1, 0, 1)?.squeeze(1),
        std::slice::from_ref(&x),
    );
    check("flatten", |x| x[0].flatten(1, -1), std::slice::from_ref(&x));
    check(
        "chunk",
        |x| Ok(x[0].chunk(2, 2)?[1].clone()),
        std::slice::from_ref(&x),
    );
    check(
        "contiguous",
        |x| x[0].t().or_else(|_| x[0].transpose(0, 1))?.contiguous(),
        std::slice::from_ref(&x),
    );
    check(
        "cat",
        |x| Tensor::cat(&[x[0].clone(), x[1].clone()], 1),
        &[x.clone(), leaf(&[2, 2, 4], 22)],
    );
    check(
        "stack",
        |x| Tensor::stack(&[x[0].clone(), x[1].clone()], 0),
        &[leaf(&[3, 2], 23), leaf(&[3, 2], 24)],
    );
    check(
        "to_dtype",
        |x| {
            x[0].to_dtype(mlfw_core::DType::F32)?
                .to_dtype(mlfw_core::DType::F64)
        },
        &[x],
    );
}

#[test]
fn indexing_ops() {
    let x = leaf(&[4, 3], 31);
    check(
        "index_select",
        |x| x[0].index_select(&ids(&[2, 0, 2], &[3]), 0),
        std::slice::from_ref(&x),
    );
    check(
        "gather",
        |x| x[0].gather(&ids(&[0, 2, 1, 1, 0, 0, 2, 2], &[4, 2]), 1),
        std::slice::from_ref(&x),
    );
    check(
        "scatter_add",
        |x| x[0].scatter_add(&ids(&[0, 1, 0, 3, 3, 2], &[2, 3]), &x[1], 0),
        &[x.clone(), leaf(&[2, 3], 32)],
    );
    check(
        "index_add",
        |x| x[0].index_add(&ids(&[1, 1], &[2]), &x[1], 0),
        &[x.clone(), leaf(&[2, 3], 33)],
    );
    check(
        "embedding",
        |x| x[0].embedding(&ids(&[3, 0, 3, 1], &[2, 2])),
        &[x],
    );
}
