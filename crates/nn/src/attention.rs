//! Attention as functional ops (`torch.nn.functional.scaled_dot_product_attention`), the mask
//! helpers the attention modules share, and `pad_sequence`.

pub use crate::composed::causal_bias;
use crate::functional;
use mlfw_core::{DType, Device, Error, Result, Tensor};

/// Softmax attention `softmax(q·kᵀ·scale + mask)·v` (PyTorch's `scaled_dot_product_attention`).
///
/// `q [.., L, E]`, `k [.., S, E]`, `v [.., S, Ev]` (batch dims broadcast) → `[.., L, Ev]`.
/// `attn_mask` broadcasts to `[.., L, S]`: a **bool** mask says which positions *may* attend
/// (true = take part, as PyTorch's function; the modules' masks are the opposite, see
/// [`crate::MultiheadAttention`]), a float mask is added to the scores. `is_causal` masks
/// the upper triangle (and then `attn_mask` must be absent). `scale` defaults to `1/√E`.
/// `dropout_p` applies dropout to the weights (global generator). Rows where every key is
/// masked give NaN, as PyTorch.
///
/// # Errors
/// `Error::Msg` when `q`, `k` or `v` has fewer than 2 dims, their last/sequence dims disagree, both
/// `attn_mask` and `is_causal` are given, or the mask is neither bool nor `q`'s dtype or does not
/// broadcast to `[.., L, S]`.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    attn_mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
) -> Result<Tensor> {
    if q.rank() < 2 || k.rank() < 2 || v.rank() < 2 {
        return Err(Error::msg(format!(
            "scaled_dot_product_attention: query, key and value need at least 2 dims, got {}, {} and {}",
            q.shape(),
            k.shape(),
            v.shape()
        )));
    }
    let bias;
    let mask = match (attn_mask, is_causal) {
        (Some(_), true) => {
            return Err(Error::msg(
                "scaled_dot_product_attention: pass either attn_mask or is_causal, not both",
            ))
        }
        (None, true) => Mask::Causal,
        (Some(m), false) => {
            bias = if m.dtype() == DType::Bool {
                m.where_cond(&q.scalar_like(0.0)?, &q.scalar_like(f64::NEG_INFINITY)?)?
            } else {
                m.clone()
            };
            Mask::Bias(&bias)
        }
        (None, false) => Mask::None,
    };
    Ok(attention(q, k, v, mask, dropout_p, true, scale, false)?.0)
}

/// The mask of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mask<'a> {
    /// Every query sees every key.
    None,
    /// Query row `i` sees keys `0..=i` (PyTorch's `is_causal`).
    Causal,
    /// An additive float mask broadcasting to the scores `[.., L, S]`.
    Bias(&'a Tensor),
}

/// `softmax(q·kᵀ·scale + mask)·v`, and the weights when `need_weights`. Float32 CPU calls
/// without weights, dropout or an additive mask run as one fused op
/// ([`crate::fused::attention`]: no `[.., L, S]` tensor is kept); the rest as composed ops.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Mask<'_>,
    dropout_p: f64,
    training: bool,
    scale: Option<f64>,
    need_weights: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let dropout = dropout_p > 0.0 && training;
    let plain = matches!(mask, Mask::None | Mask::Causal);
    if !need_weights && !dropout && plain && crate::fused::attention::fused_ok(q, k, v) {
        let e = q.dims()[q.rank() - 1];
        let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
        let causal = matches!(mask, Mask::Causal);
        return Ok((
            crate::fused::attention::fused_attention(q, k, v, causal, scale)?,
            None,
        ));
    }
    let causal;
    let bias = match mask {
        Mask::None => None,
        Mask::Causal => {
            let (l, s) = (q.dims()[q.rank() - 2], k.dims()[k.rank() - 2]);
            causal = causal_bias(l, s, q.dtype(), &q.device())?;
            Some(&causal)
        }
        Mask::Bias(b) => Some(b),
    };
    let (o, w) = composed(q, k, v, bias, dropout_p, training, scale)?;
    Ok((o, Some(w)))
}

/// `softmax(q·kᵀ·scale + bias)·v` and the weights, as composed (differentiable) ops; `bias`
/// is an additive float mask that broadcasts to the scores. Shape errors name both shapes.
pub(crate) fn composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    dropout_p: f64,
    training: bool,
    scale: Option<f64>,
) -> Result<(Tensor, Tensor)> {
    let w = crate::composed::attention_weights(q, k, v, bias, scale)?;
    let w = functional::dropout(&w, dropout_p, training, None)?;
    Ok((w.matmul(v)?, w))
}

/// PyTorch's `Transformer.generate_square_subsequent_mask(n)`: a float `[n, n]` mask,
/// −inf above the diagonal, 0 elsewhere.
///
/// # Errors
/// Device errors only (out of memory).
pub fn generate_square_subsequent_mask(n: usize, device: &Device) -> Result<Tensor> {
    causal_bias(n, n, DType::F32, device)
}

/// A module-style mask (bool: true = *not* allowed; float: added) as an additive float
/// mask of `dtype`, after checking its shape is one of `shapes`. `what` names the argument.
pub(crate) fn additive_mask(
    mask: &Tensor,
    dtype: DType,
    shapes: &[Vec<usize>],
    what: &str,
) -> Result<Tensor> {
    if !shapes.iter().any(|s| s.as_slice() == mask.dims()) {
        let list: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
        return Err(Error::msg(format!(
            "{what} must have shape {}, got {}",
            list.join(" or "),
            mask.shape()
        )));
    }
    match mask.dtype() {
        DType::Bool => {
            let zero = Tensor::zeros([], dtype, &mask.device())?;
            mask.where_cond(&zero.full_like(f64::NEG_INFINITY)?, &zero)
        }
        d if d == dtype => Ok(mask.clone()),
        d => Err(Error::msg(format!(
            "{what} must be bool or {dtype} (the input's dtype), got {d}"
        ))),
    }
}

/// Pads variable-length sequences `[len_i, *]` to one tensor (PyTorch's
/// `nn.utils.rnn.pad_sequence`): `[max_len, n, *]`, or `[n, max_len, *]` with `batch_first`.
/// Errors when the list is empty or the trailing dims differ.
///
/// # Errors
/// `Error::Msg` for an empty list, a 0-D sequence, or trailing dims that differ from the first
/// sequence's.
pub fn pad_sequence(seqs: &[Tensor], batch_first: bool, padding_value: f64) -> Result<Tensor> {
    let first = seqs
        .first()
        .ok_or_else(|| Error::msg("pad_sequence: expected at least one sequence"))?;
    if first.rank() == 0 {
        return Err(Error::msg("pad_sequence: sequences need at least 1 dim"));
    }
    let tail = first.dims()[1..].to_vec();
    let max_len = seqs
        .iter()
        .map(|s| s.dims().first().copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let mut padded = Vec::with_capacity(seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        if s.rank() == 0 || s.dims()[1..] != tail[..] {
            return Err(Error::msg(format!(
                "pad_sequence: sequence {i} has shape {}, expected [len, {}]",
                s.shape(),
                tail.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let n = s.dims()[0];
        let p = if n < max_len {
            let mut shape = vec![max_len - n];
            shape.extend(&tail);
            let pad = Tensor::full(padding_value, shape, s.dtype(), &s.device())?;
            Tensor::cat(&[s.clone(), pad], 0)?
        } else {
            s.clone()
        };
        padded.push(p);
    }
    Tensor::stack(&padded, if batch_first { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdpa_masks_and_padding() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0.0, 1.0, [2, 3, 4], DType::F32, &dev).unwrap();
        let causal = scaled_dot_product_attention(&q, &q, &q, None, 0.0, true, None).unwrap();
        let allowed = Tensor::from_vec(
            vec![true, false, false, true, true, false, true, true, true],
            [3, 3],
            &dev,
        )
        .unwrap();
        let masked =
            scaled_dot_product_attention(&q, &q, &q, Some(&allowed), 0.0, false, None).unwrap();
        let d: f32 = causal.sub(&masked).unwrap().abs().unwrap().max_all_f32();
        assert!(d < 1e-6);
        // First row attends to itself only.
        let r0 = causal
            .narrow(1, 0, 1)
            .unwrap()
            .sub(&q.narrow(1, 0, 1).unwrap())
            .unwrap();
        assert!(r0.abs().unwrap().max_all_f32() < 1e-6);
        let e = additive_mask(&allowed, DType::F32, &[vec![2, 3]], "attn_mask").unwrap_err();
        assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[3, 3]"));
        let p = pad_sequence(
            &[
                Tensor::ones([2, 3], DType::F32, &dev).unwrap(),
                Tensor::ones([4, 3], DType::F32, &dev).unwrap(),
            ],
            true,
            0.0,
        )
        .unwrap();
        assert_eq!(p.dims(), &[2, 4, 3]);
        assert_eq!(p.sum_all().unwrap().item::<f32>().unwrap(), 18.0);
    }

    trait MaxAll {
        fn max_all_f32(&self) -> f32;
    }
    impl MaxAll for Tensor {
        fn max_all_f32(&self) -> f32 {
            self.to_vec::<f32>()
                .unwrap()
                .into_iter()
                .fold(0.0, f32::max)
        }
    }
}
