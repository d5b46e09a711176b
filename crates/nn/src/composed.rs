//! Composed-op forms of the ops that also have a fused kernel: the path taken where the fused
//! kernel does not apply, and what the fused kernels re-run and differentiate under
//! `create_graph`. Below both `functional`/`attention` and `fused`, so neither imports the other
//! back.

use mlfw_core::{DType, Device, Error, Result, Tensor};

/// The additive causal mask `[l, s]`: 0 on and below the diagonal, −inf above.
///
/// # Errors
/// Device errors only (out of memory).
pub fn causal_bias(l: usize, s: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let v: Vec<f64> = (0..l)
        .flat_map(|i| (0..s).map(move |j| if j > i { f64::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, [l, s], device)?.to_dtype(dtype)
}

/// `softmax(q·kᵀ·scale + bias)` over the last dim: the attention weights `[.., L, S]` of
/// [`crate::attention`]'s composed path (before dropout), also the differentiable re-run of
/// the fused attention kernel. `v` is only checked against `k`; `scale` defaults to `1/√E`.
pub(crate) fn attention_weights(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    scale: Option<f64>,
) -> Result<Tensor> {
    let e = q.dims()[q.rank() - 1];
    if k.dims()[k.rank() - 1] != e || k.dims()[k.rank() - 2] != v.dims()[v.rank() - 2] {
        return Err(Error::msg(format!(
            "attention: query {} and key {} must share the last dim, key {} and value {} the sequence dim",
            q.shape(),
            k.shape(),
            k.shape(),
            v.shape()
        )));
    }
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
    // Scaling q (smaller than the scores) saves a scores-sized tensor per call.
    let mut scores = q.mul_scalar(scale)?.matmul(&k.transpose(-2, -1)?)?;
    if let Some(b) = bias {
        if b.dtype() != scores.dtype() {
            return Err(Error::msg(format!(
                "attention: a float mask must have the query's dtype {}, got {}",
                scores.dtype(),
                b.dtype()
            )));
        }
        scores = scores.add(b).map_err(|err| {
            Error::msg(format!(
                "attention: attn_mask of shape {} does not broadcast to the scores {} ({err})",
                b.shape(),
                scores.shape()
            ))
        })?;
    }
    scores.softmax(-1)
}

/// [`crate::functional::layer_norm`] as composed ops (any dtype and device; differentiable to
/// any order). Arguments already checked.
pub(crate) fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let k = normalized_shape.len();
    let dims: Vec<isize> = (1..=k as isize).map(|i| -i).collect();
    let mean = x.mean(&dims, true)?;
    let xc = x.sub(&mean)?;
    let var = xc.square()?.mean(&dims, true)?;
    let mut y = xc.mul(&var.add_scalar(eps)?.rsqrt()?)?;
    if let Some(w) = weight {
        y = y.mul(w)?;
    }
    if let Some(b) = bias {
        y = y.add(b)?;
    }
    Ok(y)
}
