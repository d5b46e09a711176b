//! Multi-head attention (PyTorch's `nn.MultiheadAttention`).

use super::{visit_opt, visit_opt_mut};
use crate::attention::{additive_mask, attention, causal_bias, Mask};
use crate::{functional, init, param, Linear, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// Optional arguments of [`MultiheadAttention::forward_with`], PyTorch's defaults via `default()`
/// (`need_weights` true, `average_attn_weights` true).
#[derive(Debug, Clone, Copy)]
pub struct AttnArgs<'a> {
    /// `[batch, S]`: bool (true = ignore that key) or float (added).
    pub key_padding_mask: Option<&'a Tensor>,
    /// `[L, S]` or `[batch·heads, L, S]`: bool (true = *not* allowed to attend) or float (added).
    pub attn_mask: Option<&'a Tensor>,
    /// Whether to return the attention weights.
    pub need_weights: bool,
    /// Average the returned weights over heads (`[batch, L, S]`), else `[batch, heads, L, S]`.
    pub average_attn_weights: bool,
    /// A causal mask when `attn_mask` is absent (with `attn_mask`, PyTorch treats it as a hint).
    pub is_causal: bool,
}

impl Default for AttnArgs<'_> {
    fn default() -> Self {
        AttnArgs {
            key_padding_mask: None,
            attn_mask: None,
            need_weights: true,
            average_attn_weights: true,
            is_causal: false,
        }
    }
}

/// Multi-head attention with PyTorch's packed projection: keys `in_proj_weight [3E, E]`
/// (xavier-uniform; rows q, k, v), `in_proj_bias [3E]` (zeros), `out_proj.weight [E, E]`,
/// `out_proj.bias [E]` (zeros).
///
/// Inputs `[L, batch, E]` (`[batch, L, E]` with `batch_first`, or unbatched `[L, E]`); the
/// output has the query's shape. `dropout` applies to the weights in training mode.
#[derive(Debug, Clone)]
pub struct MultiheadAttention {
    /// `[3E, E]`.
    pub in_proj_weight: Tensor,
    /// `[3E]`, if the layer has biases.
    pub in_proj_bias: Option<Tensor>,
    /// The output projection.
    pub out_proj: Linear,
    /// Number of heads (divides E).
    pub num_heads: usize,
    /// Dropout probability on the attention weights.
    pub dropout: f64,
    /// Whether inputs are `[batch, seq, E]`.
    pub batch_first: bool,
    training: bool,
}

impl MultiheadAttention {
    /// `MultiheadAttention(embed_dim, num_heads, dropout=0, bias, batch_first)` from the global
    /// generator.
    ///
    /// # Errors
    /// `Error::Msg` unless `embed_dim` is a positive multiple of `num_heads`.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        batch_first: bool,
        device: &Device,
    ) -> Result<Self> {
        Self::build(embed_dim, num_heads, bias, batch_first, device, None)
    }

    /// The same, initialised from `g`.
    ///
    /// # Errors
    /// `Error::Msg` unless `embed_dim` is a positive multiple of `num_heads`.
    pub fn new_with(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        batch_first: bool,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Self> {
        Self::build(embed_dim, num_heads, bias, batch_first, device, Some(g))
    }

    fn build(
        e: usize,
        heads: usize,
        bias: bool,
        batch_first: bool,
        device: &Device,
        mut g: Option<&mut Generator>,
    ) -> Result<Self> {
        if heads == 0 || e == 0 || !e.is_multiple_of(heads) {
            return Err(Error::msg(format!(
                "MultiheadAttention: embed_dim {e} must be a positive multiple of num_heads {heads}"
            )));
        }
        let w = Tensor::zeros([3 * e, e], DType::F32, device)?;
        init::xavier_uniform(&w, 1.0, g.as_deref_mut())?;
        let out_proj = match g {
            Some(g) => Linear::new_with(e, e, bias, device, g)?,
            None => Linear::new(e, e, bias, device)?,
        };
        if let Some(b) = &out_proj.bias {
            init::zeros(b)?;
        }
        Ok(MultiheadAttention {
            in_proj_weight: param(w)?,
            in_proj_bias: if bias {
                Some(param(Tensor::zeros([3 * e], DType::F32, device)?)?)
            } else {
                None
            },
            out_proj,
            num_heads: heads,
            dropout: 0.0,
            batch_first,
            training: true,
        })
    }

    /// Sets the dropout on the attention weights.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// `embed_dim`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.dims()[1]
    }

    /// Attention of `query [L, N, E]` over `key`/`value [S, N, E]` (batch-first or unbatched
    /// as configured): the output `[L, N, E]` and, if `need_weights`, the weights
    /// `[N, L, S]` (averaged) or `[N, heads, L, S]`.
    ///
    /// # Errors
    /// `Error::Msg` naming the argument and both shapes for a mask of the wrong shape or dtype
    /// (bool or the input's), inputs not ending in `embed_dim`, or `query`/`key`/`value` that
    /// disagree on batch or sequence sizes.
    pub fn forward_with(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        args: AttnArgs<'_>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let e = self.embed_dim();
        let (h, hd) = (self.num_heads, e / self.num_heads);
        let batched = query.rank() == 3;
        for (what, t) in [("query", query), ("key", key), ("value", value)] {
            if t.rank() != query.rank()
                || !(batched || t.rank() == 2)
                || t.dims()[t.rank() - 1] != e
            {
                let want = match (query.rank(), self.batch_first) {
                    (2, _) => format!("[seq, {e}]"),
                    (_, true) => format!("[batch, seq, {e}]"),
                    _ => format!("[seq, batch, {e}]"),
                };
                return Err(Error::msg(format!(
                    "MultiheadAttention: {what} must be {want}, got {}",
                    t.shape()
                )));
            }
        }
        // Batch-first internally: [N, L, E].
        let bf = |t: &Tensor| -> Result<Tensor> {
            match (batched, self.batch_first) {
                (false, _) => t.unsqueeze(0),
                (true, true) => Ok(t.clone()),
                (true, false) => t.transpose(0, 1),
            }
        };
        let self_attn = query.id() == key.id() && key.id() == value.id();
        let (q, k, v) = (bf(query)?, bf(key)?, bf(value)?);
        let (n, l, s) = (q.dims()[0], q.dims()[1], k.dims()[1]);
        if k.dims()[0] != n || v.dims()[0] != n || v.dims()[1] != s {
            return Err(Error::msg(format!(
                "MultiheadAttention: query {}, key {} and value {} disagree on batch or sequence sizes",
                query.shape(),
                key.shape(),
                value.shape()
            )));
        }
        let (q, k, v) = if self_attn {
            let qkv = functional::linear(&q, &self.in_proj_weight, self.in_proj_bias.as_ref())?;
            // Plain (or causal) self-attention without weights or dropout: the fused kernel
            // reads the packed projection and writes [N, L, E] (no per-head copies).
            let plain = args.attn_mask.is_none() && args.key_padding_mask.is_none();
            let dropout = self.dropout > 0.0 && self.training;
            if plain && !dropout && !args.need_weights && crate::fused::usable(&[&qkv]) {
                let o =
                    crate::fused::attention::fused_self_attention(&qkv, h, args.is_causal, None)?;
                return Ok((self.finish(self.out_proj.forward(&o)?, batched)?, None));
            }
            (
                qkv.narrow(2, 0, e)?,
                qkv.narrow(2, e, e)?,
                qkv.narrow(2, 2 * e, e)?,
            )
        } else {
            let part = |x: &Tensor, i: usize| -> Result<Tensor> {
                let w = self.in_proj_weight.narrow(0, i * e, e)?;
                let b = self
                    .in_proj_bias
                    .as_ref()
                    .map(|b| b.narrow(0, i * e, e))
                    .transpose()?;
                functional::linear(x, &w, b.as_ref())
            };
            (part(&q, 0)?, part(&k, 1)?, part(&v, 2)?)
        };
        let heads = |t: &Tensor, len: usize| t.reshape([n, len, h, hd])?.permute(&[0, 2, 1, 3]);
        let (q, k, v) = (heads(&q, l)?, heads(&k, s)?, heads(&v, s)?);
        let bias = self.merged_mask(&args, n, l, s, batched, q.dtype(), &q.device())?;
        let mask = match &bias {
            Some(b) => Mask::Bias(b),
            None if args.is_causal && args.attn_mask.is_none() => Mask::Causal,
            None => Mask::None,
        };
        let (o, w) = attention(
            &q,
            &k,
            &v,
            mask,
            self.dropout,
            self.training,
            None,
            args.need_weights,
        )?;
        let o = o.permute(&[0, 2, 1, 3])?.reshape([n, l, e])?;
        let o = self.finish(self.out_proj.forward(&o)?, batched)?;
        let w = if let (true, Some(w)) = (args.need_weights, w) {
            let w = if args.average_attn_weights {
                w.mean(&[1], false)?
            } else {
                w
            };
            Some(if batched { w } else { w.squeeze(0)? })
        } else {
            None
        };
        Ok((o, w))
    }

    /// The output `[N, L, E]` back in the caller's layout (unbatched or sequence-first).
    fn finish(&self, o: Tensor, batched: bool) -> Result<Tensor> {
        match (batched, self.batch_first) {
            (false, _) => o.squeeze(0),
            (true, true) => Ok(o),
            (true, false) => o.transpose(0, 1),
        }
    }

    /// The key-padding and attention masks merged into one additive mask broadcasting to
    /// `[N, heads, L, S]`.
    #[allow(clippy::too_many_arguments)]
    fn merged_mask(
        &self,
        args: &AttnArgs<'_>,
        n: usize,
        l: usize,
        s: usize,
        batched: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Tensor>> {
        let h = self.num_heads;
        let mut bias = match (args.attn_mask, args.is_causal) {
            (Some(m), _) => {
                let m = additive_mask(
                    m,
                    dtype,
                    &[vec![l, s], vec![n * h, l, s]],
                    "MultiheadAttention: attn_mask",
                )?;
                Some(if m.rank() == 3 {
                    m.reshape([n, h, l, s])?
                } else {
                    m
                })
            }
            // Alone, the causal mask is applied by `attention` itself (no mask tensor).
            (None, true) if args.key_padding_mask.is_none() => None,
            (None, true) => Some(causal_bias(l, s, dtype, device)?),
            (None, false) => None,
        };
        if let Some(m) = args.key_padding_mask {
            let want = if batched { vec![n, s] } else { vec![s] };
            let m = additive_mask(m, dtype, &[want], "MultiheadAttention: key_padding_mask")?;
            let m = m.reshape([n, 1, 1, s])?;
            bias = Some(match bias {
                Some(b) => b.add(&m)?,
                None => m,
            });
        }
        Ok(bias)
    }
}

impl Module for MultiheadAttention {
    /// Self-attention of `x` without masks; the output only.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let args = AttnArgs {
            need_weights: false,
            ..Default::default()
        };
        Ok(self.forward_with(x, x, x, args)?.0)
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        f(
            "in_proj_weight",
            &self.in_proj_weight,
            TensorKind::Parameter,
        );
        visit_opt(f, "in_proj_bias", &self.in_proj_bias, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        f(
            "in_proj_weight",
            &mut self.in_proj_weight,
            TensorKind::Parameter,
        )?;
        visit_opt_mut(
            f,
            "in_proj_bias",
            &mut self.in_proj_bias,
            TensorKind::Parameter,
        )
    }
    crate::children!(out_proj);
    fn set_own_training(&mut self, on: bool) {
        self.training = on;
    }
    fn own_training(&self) -> Option<bool> {
        Some(self.training)
    }
}
