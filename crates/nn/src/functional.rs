//! Stateless forms of the layers and losses (`torch.nn.functional`). Everything is composed
//! of recorded core ops, so autograd differentiates it without custom rules; in-place
//! updates of running statistics go through `Tensor::assign`, which is never recorded.

use mlfw_core::{CmpOp, DType, Error, Generator, Result, Tensor};

pub use crate::attention::{
    generate_square_subsequent_mask, pad_sequence, scaled_dot_product_attention,
};
pub use crate::loss::{
    binary_cross_entropy, binary_cross_entropy_with_logits, check_finite, cross_entropy,
    cross_entropy_with, l1_loss, mse_loss, nll_loss, nll_loss_with, smooth_l1_loss,
    CrossEntropyOptions, Reduction,
};
pub use crate::recurrent::{recurrent, RecurrentOutput};

/// Rows of the table `weight [num, dim]` for the i64 indices `ids` (any shape) →
/// `[..ids, dim]` (torch.nn.functional.embedding). Lookups of `padding_idx` read the row but
/// never pass it a gradient, so the padding row does not train. Errors on a non-2-D table,
/// non-int64 or out-of-range ids, or a `padding_idx` outside the table.
///
/// # Errors
/// `Error::Msg` for a table that is not 2-D, `ids` that are not i64, or a `padding_idx` outside
/// `0..num`; `Error::IndexOutOfRange` for an id outside `0..num`.
pub fn embedding(weight: &Tensor, ids: &Tensor, padding_idx: Option<usize>) -> Result<Tensor> {
    if ids.dtype() != DType::I64 {
        return Err(Error::msg(format!(
            "embedding: indices must be int64, got {} of shape {}",
            ids.dtype(),
            ids.shape()
        )));
    }
    let out = weight.embedding(ids)?;
    let Some(p) = padding_idx else {
        return Ok(out);
    };
    let num = weight.dims()[0];
    if p >= num {
        return Err(Error::msg(format!(
            "embedding: padding_idx {p} out of range for {num} rows"
        )));
    }
    if !out.requires_grad() {
        return Ok(out);
    }
    // Same values; the lookups of the padding row come from a detached copy (no gradient).
    let mut mask_dims = ids.dims().to_vec();
    mask_dims.push(1);
    let pad = ids.cmp_scalar(p as f64, CmpOp::Eq)?.reshape(mask_dims)?;
    pad.where_cond(&out.detach(), &out)
}

/// `x · wᵀ + b`: `x [.., in]`, `w [out, in]`, `b [out]` → `[.., out]`.
///
/// # Errors
/// `Error::Msg` when `w` is not 2-D, `x` does not end in `in`, or `b` is not `[out]`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let [out_f, in_f] = *w.dims() else {
        return Err(Error::msg(format!(
            "linear: weight must be 2-D [out, in], got {}",
            w.shape()
        )));
    };
    if x.rank() == 0 || x.dims()[x.rank() - 1] != in_f {
        return Err(Error::msg(format!(
            "linear: input of shape {} does not end in in_features {in_f} (weight {})",
            x.shape(),
            w.shape()
        )));
    }
    if let Some(b) = b {
        if b.dims() != [out_f] {
            return Err(Error::msg(format!(
                "linear: bias must have shape [{out_f}], got {}",
                b.shape()
            )));
        }
        if crate::fused::linear::fused_ok(x, w, Some(b)) {
            return crate::fused::linear::linear(x, w, b);
        }
    }
    let y = x.matmul(&w.t()?)?;
    match b {
        // Under autocast the bias joins the product's 16-bit dtype (PyTorch's linear is one op).
        Some(b) if mlfw_core::autocast::autocast_dtype().is_some() => {
            y.add(&b.to_dtype(y.dtype())?)
        }
        Some(b) => y.add(b),
        None => Ok(y),
    }
}

/// Reshapes a per-channel `[C]` tensor to broadcast over `[N, C, *]` of rank `rank`.
fn per_channel(t: &Tensor, rank: usize) -> Result<Tensor> {
    let mut shape = vec![1usize; rank];
    shape[1] = t.elem_count();
    t.reshape(shape)
}

/// Running statistics for [`batch_norm`]: updated in place in training mode, used in eval.
pub struct RunningStats<'a> {
    /// `[C]` running mean.
    pub mean: &'a Tensor,
    /// `[C]` running (unbiased) variance.
    pub var: &'a Tensor,
    /// Scalar i64 count of training batches seen (PyTorch's `num_batches_tracked`), if kept.
    pub num_batches_tracked: Option<&'a Tensor>,
    /// Weight of the new batch; `None` keeps a cumulative average (factor 1/num_batches).
    pub momentum: Option<f64>,
}

/// Batch normalisation over `[N, C, *]`.
///
/// Training: normalises with the batch's mean and biased variance over all dims but 1 and,
/// when `running` is given, updates it in place: `mean ← (1−m)·mean + m·batch_mean`,
/// `var ← (1−m)·var + m·batch_var·n/(n−1)` (PyTorch's unbiased running variance).
/// Eval (`training = false`): normalises with `running`, which is then required.
///
/// Contiguous f32 CPU inputs run fused kernels (one pass for the statistics, one for
/// normalise + affine; a two-pass backward), see `crate::fused::batch_norm`; the result is
/// the same formula.
///
/// # Errors
/// `Error::Msg` for an input of rank < 2, `weight`/`bias`/running stats not shaped `[C]`, or
/// training with one value per channel.
pub fn batch_norm(
    x: &Tensor,
    running: Option<RunningStats<'_>>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    eps: f64,
) -> Result<Tensor> {
    batch_norm_impl(x, running, weight, bias, training, eps, false)
}

/// `relu(batch_norm(..))` (arguments, shapes and errors as [`batch_norm`]): on contiguous
/// f32 CPU inputs the ReLU runs inside the fused kernels (no extra pass, no extra saved
/// tensor); elsewhere it is the two ops.
///
/// # Errors
/// As [`batch_norm`].
pub fn batch_norm_relu(
    x: &Tensor,
    running: Option<RunningStats<'_>>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    eps: f64,
) -> Result<Tensor> {
    batch_norm_impl(x, running, weight, bias, training, eps, true)
}

fn batch_norm_impl(
    x: &Tensor,
    running: Option<RunningStats<'_>>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    if x.rank() < 2 {
        return Err(Error::msg(format!(
            "batch_norm: expected an input [N, C, *] of rank >= 2, got {}",
            x.shape()
        )));
    }
    let (rank, c) = (x.rank(), x.dims()[1]);
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.dims() != [c] {
                return Err(Error::msg(format!(
                    "batch_norm: {what} must have shape [{c}] for input {}, got {}",
                    x.shape(),
                    t.shape()
                )));
            }
        }
    }
    if let Some(r) = &running {
        if r.mean.dims() != [c] || r.var.dims() != [c] {
            return Err(Error::msg(format!(
                "batch_norm: running stats must have shape [{c}] for input {}, got {} and {}",
                x.shape(),
                r.mean.shape(),
                r.var.shape()
            )));
        }
    }
    let n = x.elem_count() / c.max(1);
    if training && n <= 1 {
        return Err(Error::msg(format!(
            "batch_norm: expected more than 1 value per channel when training, got input {}",
            x.shape()
        )));
    }
    let eval_stats = match (&running, training) {
        (Some(r), false) => Some((r.mean, r.var)),
        _ => None,
    };
    if let Some(f) =
        crate::fused::batch_norm::try_batch_norm(x, eval_stats, weight, bias, training, eps, relu)?
    {
        if let (Some(r), Some((mean, var))) = (&running, &f.batch_stats) {
            update_running(r, mean, var, n)?;
        }
        return Ok(f.y);
    }
    let dims: Vec<isize> = (0..rank as isize).filter(|&d| d != 1).collect();
    let (mean, var) = if training {
        let mean = x.mean(&dims, true)?;
        let var = x.sub(&mean)?.square()?.mean(&dims, true)?;
        if let Some(r) = &running {
            update_running(r, &mean.detach(), &var.detach(), n)?;
        }
        (mean, var)
    } else {
        let r = running
            .ok_or_else(|| Error::msg("batch_norm: evaluation mode needs running statistics"))?;
        (
            per_channel(&r.mean.to_dtype(x.dtype())?, rank)?,
            per_channel(&r.var.to_dtype(x.dtype())?, rank)?,
        )
    };
    let mut y = x.sub(&mean)?.mul(&var.add_scalar(eps)?.rsqrt()?)?;
    if let Some(w) = weight {
        y = y.mul(&per_channel(w, rank)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&per_channel(b, rank)?)?;
    }
    if relu {
        y = y.relu()?;
    }
    Ok(y)
}

fn update_running(r: &RunningStats<'_>, mean: &Tensor, var: &Tensor, n: usize) -> Result<()> {
    if let Some(nbt) = r.num_batches_tracked {
        nbt.assign(&nbt.add_scalar(1.0)?)?;
    }
    let m = match r.momentum {
        Some(m) => m,
        None => {
            let count = match r.num_batches_tracked {
                Some(nbt) => nbt.item_f64()?,
                None => 1.0,
            };
            1.0 / count.max(1.0)
        }
    };
    let dt = r.mean.dtype();
    let mean = mean.to_dtype(dt)?.reshape(r.mean.shape().clone())?;
    let unbiased = var
        .to_dtype(dt)?
        .reshape(r.var.shape().clone())?
        .mul_scalar(n as f64 / (n as f64 - 1.0))?;
    r.mean
        .assign(&r.mean.mul_scalar(1.0 - m)?.add(&mean.mul_scalar(m)?)?)?;
    r.var
        .assign(&r.var.mul_scalar(1.0 - m)?.add(&unbiased.mul_scalar(m)?)?)
}

/// Layer normalisation over the trailing dims `normalized_shape` (biased variance), then
/// `* weight + bias` (both shaped `normalized_shape`) when given.
///
/// # Errors
/// `Error::Msg` when `x` does not end in `normalized_shape` or `weight`/`bias` are shaped
/// otherwise.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let k = normalized_shape.len();
    if k == 0 || x.rank() < k || x.dims()[x.rank() - k..] != *normalized_shape {
        return Err(Error::msg(format!(
            "layer_norm: input of shape {} does not end in normalized_shape {normalized_shape:?}",
            x.shape()
        )));
    }
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.dims() != normalized_shape {
                return Err(Error::msg(format!(
                    "layer_norm: {what} must have shape {normalized_shape:?}, got {}",
                    t.shape()
                )));
            }
        }
    }
    if crate::fused::layer_norm::fused_ok(x, weight, bias) {
        return crate::fused::layer_norm::layer_norm(x, normalized_shape, weight, bias, eps);
    }
    crate::composed::layer_norm(x, normalized_shape, weight, bias, eps)
}

/// Dropout: in training, zeroes each element with probability `p` and scales the rest by
/// `1/(1−p)`; the identity otherwise. `g = None` draws from the global generator.
///
/// # Errors
/// `Error::Msg` when `p` is outside `[0, 1]`.
pub fn dropout(x: &Tensor, p: f64, training: bool, g: Option<&mut Generator>) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::msg(format!(
            "dropout: probability must be in [0, 1], got {p}"
        )));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    if p == 1.0 {
        return x.mul_scalar(0.0);
    }
    let (shape, dev) = (x.shape().clone(), x.device());
    let u = match g {
        Some(g) => Tensor::rand_with(0.0, 1.0, shape, DType::F32, &dev, g)?,
        None => Tensor::rand(0.0, 1.0, shape, DType::F32, &dev)?,
    };
    let keep = u
        .cmp_scalar(1.0 - p, mlfw_core::CmpOp::Lt)?
        .to_dtype(x.dtype())?;
    x.mul(&keep)?.mul_scalar(1.0 / (1.0 - p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_core::Device;

    fn t(v: Vec<f32>, s: &[usize]) -> Tensor {
        Tensor::from_vec(v, s.to_vec(), &Device::Cpu).unwrap()
    }

    #[test]
    fn linear_values_and_errors() {
        let x = t(vec![1., 2.], &[1, 2]);
        let w = t(vec![1., 0., 0., 1., 1., 1.], &[3, 2]);
        let b = t(vec![0., 0., 10.], &[3]);
        let y = linear(&x, &w, Some(&b)).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 13.]);
        let e = linear(&t(vec![1., 2., 3.], &[1, 3]), &w, None).unwrap_err();
        assert!(e.to_string().contains("[1, 3]"), "{e}");
    }

    #[test]
    fn batch_norm_train_updates_running_stats() {
        let x = t(vec![1., 3., 5., 7.], &[4, 1]);
        let rm = t(vec![0.], &[1]);
        let rv = t(vec![1.], &[1]);
        let nbt = Tensor::scalar(0i64, &Device::Cpu).unwrap();
        let stats = RunningStats {
            mean: &rm,
            var: &rv,
            num_batches_tracked: Some(&nbt),
            momentum: Some(0.1),
        };
        let y = batch_norm(&x, Some(stats), None, None, true, 0.0).unwrap();
        let v = y.to_vec::<f32>().unwrap();
        let s = 5f32.sqrt();
        assert!((v[0] + 3.0 / s).abs() < 1e-5, "{v:?}");
        assert!((rm.item::<f32>().unwrap() - 0.4).abs() < 1e-6);
        // unbiased var = 20/3; 0.9 + 0.1*20/3
        assert!((rv.item::<f32>().unwrap() - (0.9 + 2.0 / 3.0)).abs() < 1e-5);
        assert_eq!(nbt.item::<i64>().unwrap(), 1);
    }

    #[test]
    fn layer_norm_and_dropout() {
        let x = t(vec![1., 2., 3., 4.], &[2, 2]);
        let y = layer_norm(&x, &[2], None, None, 0.0).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![-1., 1., -1., 1.]);
        assert!(layer_norm(&x, &[3], None, None, 1e-5).is_err());
        let x = Tensor::ones([1000], DType::F32, &Device::Cpu).unwrap();
        let mut g = Generator::new(3);
        let y = dropout(&x, 0.25, true, Some(&mut g))
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let zeros = y.iter().filter(|&&v| v == 0.0).count();
        assert!((200..300).contains(&zeros), "{zeros}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        assert_eq!(
            dropout(&x, 0.5, false, None)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            x.to_vec::<f32>().unwrap()
        );
        assert!(dropout(&x, 1.5, true, None).is_err());
    }
}
