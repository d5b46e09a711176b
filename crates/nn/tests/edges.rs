//! Special points of layers and losses, with PyTorch 2.15's values (issue 14): Embedding's
//! padding row never trains; binary cross entropy at saturated probabilities has PyTorch's
//! finite gradient.

use mlfw_autograd::Backward;
use mlfw_core::{Device, Result, Tensor};
use mlfw_nn::functional as F;
use mlfw_nn::{Embedding, Module, Reduction};

fn close(got: &[f32], want: &[f32], rtol: f32) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (a, b) in got.iter().zip(want) {
        assert!(
            (a - b).abs() <= rtol * b.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn embedding_padding_row_gets_no_gradient() -> Result<()> {
    let d = Device::Cpu;
    let w = Tensor::from_vec(vec![0f32, 0., 1., 2., 3., 4.], [3, 2], &d)?;
    let emb = Embedding::from_tensor(w, Some(0))?;
    let ids = Tensor::from_vec(vec![0i64, 1, 0, 2], [4], &d)?;
    let y = emb.forward(&ids)?;
    close(&y.to_vec::<f32>()?, &[0., 0., 1., 2., 0., 0., 3., 4.], 0.0);
    y.sum_all()?.backward()?;
    // PyTorch: row 0 gets [0, 0] (mlfw used to give it [2, 2]).
    close(
        &emb.weight.grad().unwrap().to_vec::<f32>()?,
        &[0., 0., 1., 1., 1., 1.],
        0.0,
    );
    // Also when the padding row holds non-zero values (loaded weights): read, never trained.
    let w = Tensor::from_vec(vec![5f32, 6., 1., 2.], [2, 2], &d)?.requires_grad_(true)?;
    let ids = Tensor::from_vec(vec![1i64, 1, 0], [3, 1], &d)?;
    let y = F::embedding(&w, &ids, Some(1))?;
    assert_eq!(y.dims(), &[3, 1, 2]);
    close(&y.to_vec::<f32>()?, &[1., 2., 1., 2., 5., 6.], 0.0);
    y.mul_scalar(3.0)?.sum_all()?.backward()?;
    close(&w.grad().unwrap().to_vec::<f32>()?, &[3., 3., 0., 0.], 0.0);
    assert!(F::embedding(&w, &ids, Some(2)).is_err());
    Ok(())
}

#[test]
fn binary_cross_entropy_at_saturated_probabilities() -> Result<()> {
    let d = Device::Cpu;
    let p = Tensor::from_vec(vec![0f32, 0.5], [2], &d)?.requires_grad_(true)?;
    let y = Tensor::from_vec(vec![1f32, 1.], [2], &d)?;
    let loss = F::binary_cross_entropy(&p, &y, None, Reduction::Mean)?;
    // PyTorch: loss 50.346573, dL/dp [-5.0e11, -1] = (p − y) / max(p(1 − p), 1e-12) / n.
    close(&[loss.item_f64()? as f32], &[50.346_573], 1e-6);
    loss.backward()?;
    close(&p.grad().unwrap().to_vec::<f32>()?, &[-5.0e11, -1.0], 1e-6);
    // p = 1 with target 0 (the other saturated end) and the target's gradient.
    let p = Tensor::from_vec(vec![1f32, 0.25], [2], &d)?.requires_grad_(true)?;
    let y = Tensor::from_vec(vec![0f32, 0.5], [2], &d)?.requires_grad_(true)?;
    let loss = F::binary_cross_entropy(&p, &y, None, Reduction::Sum)?;
    close(
        &[loss.item_f64()? as f32],
        &[100.0 - (0.5 * 0.25f32.ln() + 0.5 * 0.75f32.ln())],
        1e-6,
    );
    loss.backward()?;
    close(
        &p.grad().unwrap().to_vec::<f32>()?,
        &[1.0e12, -0.25 / (0.25 * 0.75)],
        1e-6,
    );
    // d/dy = log(1 − p) − log(p), each clamped at −100.
    close(
        &y.grad().unwrap().to_vec::<f32>()?,
        &[-100.0, 0.75f32.ln() - 0.25f32.ln()],
        1e-6,
    );
    Ok(())
}

#[test]
fn cross_entropy_with_masked_out_minus_inf_logits() -> Result<()> {
    // PyTorch: cross_entropy([[0, -inf], [-inf, 1]], [0, 1]) = 0 with gradient 0 (the -inf
    // classes have probability 0); selecting by 0·(-inf) would make both NaN.
    let d = Device::Cpu;
    let ninf = f32::NEG_INFINITY;
    let x = Tensor::from_vec(vec![0f32, ninf, ninf, 1.], [2, 2], &d)?.requires_grad_(true)?;
    let t = Tensor::from_vec(vec![0i64, 1], [2], &d)?;
    let loss = F::cross_entropy(&x, &t)?;
    close(&[loss.item_f64()? as f32], &[0.0], 0.0);
    loss.backward()?;
    close(&x.grad().unwrap().to_vec::<f32>()?, &[0., 0., 0., 0.], 0.0);
    // The same through nll_loss and with class weights and an ignored row.
    let lp = x.detach().log_softmax(1)?;
    let w = Tensor::from_vec(vec![2f32, 3.], [2], &d)?;
    let o = mlfw_nn::CrossEntropyOptions {
        weight: Some(w),
        ignore_index: 1,
        ..Default::default()
    };
    let l = F::nll_loss_with(&lp, &t, &o)?;
    close(&[l.item_f64()? as f32], &[0.0], 0.0);
    // A -inf at the target itself is an infinite loss, as in PyTorch.
    let t = Tensor::from_vec(vec![1i64, 1], [2], &d)?;
    assert_eq!(
        F::cross_entropy(&x.detach(), &t)?.item_f64()?,
        f64::INFINITY
    );
    Ok(())
}
