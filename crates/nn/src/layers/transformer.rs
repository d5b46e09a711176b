//! Transformer layers and stacks (PyTorch's `nn.TransformerEncoderLayer`,
//! `nn.TransformerDecoderLayer`, `nn.TransformerEncoder`, `nn.TransformerDecoder`).

use super::attention::{AttnArgs, MultiheadAttention};
use crate::{functional, param, LayerNorm, Linear, Module, TensorKind};
use mlfw_core::{Device, Error, Generator, Result, Tensor};

/// The feed-forward activation of a Transformer layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfActivation {
    /// `relu` (PyTorch's default).
    Relu,
    /// `gelu`, exact erf form.
    Gelu,
}

/// Options of a Transformer layer with PyTorch's defaults: `dim_feedforward 2048`,
/// `dropout 0.1`, relu, `layer_norm_eps 1e-5`, `batch_first false`, `norm_first false`, biases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformerConfig {
    /// Model width E.
    pub d_model: usize,
    /// Attention heads (divides E).
    pub nhead: usize,
    /// Hidden width of the feed-forward block.
    pub dim_feedforward: usize,
    /// Dropout after attention, inside and after the feed-forward block (training only).
    pub dropout: f64,
    /// Feed-forward activation.
    pub activation: FfActivation,
    /// LayerNorm eps.
    pub layer_norm_eps: f64,
    /// Inputs `[batch, seq, E]` instead of `[seq, batch, E]`.
    pub batch_first: bool,
    /// Pre-norm (`x + f(norm(x))`) instead of post-norm (`norm(x + f(x))`).
    pub norm_first: bool,
    /// Biases in the linear layers and attention.
    pub bias: bool,
}

impl TransformerConfig {
    /// `d_model`, `nhead` and PyTorch's defaults.
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: FfActivation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
            bias: true,
        }
    }
}

/// The feed-forward block `linear2(dropout(act(linear1(x))))` and the dropout settings.
#[derive(Debug, Clone)]
struct FeedForward {
    linear1: Linear,
    linear2: Linear,
    activation: FfActivation,
    dropout: f64,
}

impl FeedForward {
    fn new(c: &TransformerConfig, device: &Device, g: &mut Generator) -> Result<Self> {
        Ok(FeedForward {
            linear1: Linear::new_with(c.d_model, c.dim_feedforward, c.bias, device, g)?,
            linear2: Linear::new_with(c.dim_feedforward, c.d_model, c.bias, device, g)?,
            activation: c.activation,
            dropout: c.dropout,
        })
    }
    fn run(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let y = self.linear1.forward(x)?;
        let y = match self.activation {
            FfActivation::Relu => y.relu()?,
            FfActivation::Gelu if crate::fused::gelu::fused_ok(&y) => crate::fused::gelu::gelu(&y)?,
            FfActivation::Gelu => y.gelu()?,
        };
        let y = functional::dropout(&y, self.dropout, training, None)?;
        let y = self.linear2.forward(&y)?;
        functional::dropout(&y, self.dropout, training, None)
    }
}

fn layer_norm(c: &TransformerConfig, device: &Device) -> Result<LayerNorm> {
    Ok(LayerNorm::new(&[c.d_model], device)?.eps(c.layer_norm_eps))
}

fn mha(c: &TransformerConfig, device: &Device, g: &mut Generator) -> Result<MultiheadAttention> {
    Ok(
        MultiheadAttention::new_with(c.d_model, c.nhead, c.bias, c.batch_first, device, g)?
            .with_dropout(c.dropout),
    )
}

/// Attention output with the dropout after it; masks as [`AttnArgs`].
fn attend(
    m: &MultiheadAttention,
    q: &Tensor,
    kv: &Tensor,
    mask: Option<&Tensor>,
    kpm: Option<&Tensor>,
    is_causal: bool,
) -> Result<Tensor> {
    let args = AttnArgs {
        key_padding_mask: kpm,
        attn_mask: mask,
        need_weights: false,
        average_attn_weights: true,
        is_causal,
    };
    let y = m.forward_with(q, kv, kv, args)?.0;
    // The layer's dropout after attention has the attention's probability and mode.
    functional::dropout(&y, m.dropout, m.is_training(), None)
}

/// One encoder block: self-attention then feed-forward, each with a residual connection and
/// LayerNorm (post-norm, or pre-norm with `norm_first`). Keys: `self_attn.*`, `linear1.*`,
/// `linear2.*`, `norm1.*`, `norm2.*`. Input and output `[seq, batch, E]` (or batch-first).
#[derive(Debug, Clone)]
pub struct TransformerEncoderLayer {
    /// Self-attention.
    pub self_attn: MultiheadAttention,
    ff: FeedForward,
    /// LayerNorm of the attention block.
    pub norm1: LayerNorm,
    /// LayerNorm of the feed-forward block.
    pub norm2: LayerNorm,
    cfg: TransformerConfig,
    training: bool,
}

impl TransformerEncoderLayer {
    /// A float32 layer initialised from `g` (PyTorch's inits: see [`MultiheadAttention`], [`Linear`]).
    ///
    /// # Errors
    /// `Error::Msg` unless `d_model` is a positive multiple of `nhead` (as
    /// [`MultiheadAttention::new`]).
    pub fn new_with(cfg: TransformerConfig, device: &Device, g: &mut Generator) -> Result<Self> {
        Ok(TransformerEncoderLayer {
            self_attn: mha(&cfg, device, g)?,
            ff: FeedForward::new(&cfg, device, g)?,
            norm1: layer_norm(&cfg, device)?,
            norm2: layer_norm(&cfg, device)?,
            cfg,
            training: true,
        })
    }

    /// The layer's options.
    pub fn config(&self) -> &TransformerConfig {
        &self.cfg
    }

    /// Runs on `src` with an optional `mask` (`[L, L]` or `[batch·heads, L, L]`; bool true = not
    /// allowed, or float added), `key_padding_mask [batch, L]` and `is_causal` (a causal mask
    /// when `mask` is absent).
    ///
    /// # Errors
    /// Errors of [`MultiheadAttention::forward_with`] (mask shapes and dtypes, named) and of the
    /// layer norms (an input not ending in `d_model`).
    pub fn forward_with(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        let tr = self.training;
        let sa = |x: &Tensor| attend(&self.self_attn, x, x, mask, key_padding_mask, is_causal);
        if self.cfg.norm_first {
            let x = src.add(&sa(&self.norm1.forward(src)?)?)?;
            x.add(&self.ff.run(&self.norm2.forward(&x)?, tr)?)
        } else {
            let x = self.norm1.forward(&src.add(&sa(src)?)?)?;
            self.norm2.forward(&x.add(&self.ff.run(&x, tr)?)?)
        }
    }
}

/// One decoder block: self-attention, cross-attention over `memory`, feed-forward. Keys:
/// `self_attn.*`, `multihead_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`–`norm3.*`.
#[derive(Debug, Clone)]
pub struct TransformerDecoderLayer {
    /// Self-attention over the target.
    pub self_attn: MultiheadAttention,
    /// Attention of the target over the memory.
    pub multihead_attn: MultiheadAttention,
    ff: FeedForward,
    /// LayerNorm of the self-attention block.
    pub norm1: LayerNorm,
    /// LayerNorm of the cross-attention block.
    pub norm2: LayerNorm,
    /// LayerNorm of the feed-forward block.
    pub norm3: LayerNorm,
    cfg: TransformerConfig,
    training: bool,
}

/// Masks of a decoder call (all optional; see [`TransformerEncoderLayer::forward_with`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct DecoderMasks<'a> {
    /// Self-attention mask `[T, T]`.
    pub tgt_mask: Option<&'a Tensor>,
    /// Cross-attention mask `[T, S]`.
    pub memory_mask: Option<&'a Tensor>,
    /// `[batch, T]`.
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    /// `[batch, S]`.
    pub memory_key_padding_mask: Option<&'a Tensor>,
    /// A causal self-attention mask when `tgt_mask` is absent.
    pub tgt_is_causal: bool,
}

impl TransformerDecoderLayer {
    /// A float32 layer initialised from `g`.
    ///
    /// # Errors
    /// `Error::Msg` unless `d_model` is a positive multiple of `nhead` (as
    /// [`MultiheadAttention::new`]).
    pub fn new_with(cfg: TransformerConfig, device: &Device, g: &mut Generator) -> Result<Self> {
        Ok(TransformerDecoderLayer {
            self_attn: mha(&cfg, device, g)?,
            multihead_attn: mha(&cfg, device, g)?,
            ff: FeedForward::new(&cfg, device, g)?,
            norm1: layer_norm(&cfg, device)?,
            norm2: layer_norm(&cfg, device)?,
            norm3: layer_norm(&cfg, device)?,
            cfg,
            training: true,
        })
    }

    /// Runs on `tgt [T, batch, E]` attending to `memory [S, batch, E]` (or batch-first).
    ///
    /// # Errors
    /// As [`TransformerEncoderLayer::forward_with`], for `tgt`, `memory` and each mask.
    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<Tensor> {
        let tr = self.training;
        let sa = |x: &Tensor| {
            attend(
                &self.self_attn,
                x,
                x,
                m.tgt_mask,
                m.tgt_key_padding_mask,
                m.tgt_is_causal,
            )
        };
        let ca = |x: &Tensor| {
            attend(
                &self.multihead_attn,
                x,
                memory,
                m.memory_mask,
                m.memory_key_padding_mask,
                false,
            )
        };
        if self.cfg.norm_first {
            let x = tgt.add(&sa(&self.norm1.forward(tgt)?)?)?;
            let x = x.add(&ca(&self.norm2.forward(&x)?)?)?;
            x.add(&self.ff.run(&self.norm3.forward(&x)?, tr)?)
        } else {
            let x = self.norm1.forward(&tgt.add(&sa(tgt)?)?)?;
            let x = self.norm2.forward(&x.add(&ca(&x)?)?)?;
            self.norm3.forward(&x.add(&self.ff.run(&x, tr)?)?)
        }
    }
}

/// A stack of encoder layers and an optional final LayerNorm (`nn.TransformerEncoder`);
/// keys `layers.{i}.*`, `norm.*`.
#[derive(Debug, Clone)]
pub struct TransformerEncoder {
    /// The blocks.
    pub layers: Vec<TransformerEncoderLayer>,
    /// Final normalisation.
    pub norm: Option<LayerNorm>,
}

/// A stack of decoder layers and an optional final LayerNorm (`nn.TransformerDecoder`).
#[derive(Debug, Clone)]
pub struct TransformerDecoder {
    /// The blocks.
    pub layers: Vec<TransformerDecoderLayer>,
    /// Final normalisation.
    pub norm: Option<LayerNorm>,
}

/// `n` independent copies of `m` with the same initial values (PyTorch deep-copies the layer).
fn clones<M: Module + Clone>(m: &M, n: usize) -> Result<Vec<M>> {
    (0..n)
        .map(|_| {
            let mut c = m.clone();
            c.visit_tensors_mut("", &mut |_, t, k| {
                let copy = t.copy()?.detach();
                *t = if k == TensorKind::Parameter {
                    param(copy)?
                } else {
                    copy
                };
                Ok(())
            })?;
            Ok(c)
        })
        .collect()
}

/// Runs `f` through every layer, then the optional final norm.
fn run_stack<L>(
    layers: &[L],
    norm: Option<&LayerNorm>,
    x: &Tensor,
    f: impl Fn(&L, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut x = x.clone();
    for l in layers {
        x = f(l, &x)?;
    }
    match norm {
        Some(n) => n.forward(&x),
        None => Ok(x),
    }
}

impl TransformerEncoder {
    /// `num_layers` copies of `layer` (identical initial weights, as PyTorch).
    ///
    /// # Errors
    /// Device errors copying the layer's weights.
    pub fn new(
        layer: &TransformerEncoderLayer,
        num_layers: usize,
        norm: Option<LayerNorm>,
    ) -> Result<Self> {
        Ok(TransformerEncoder {
            layers: clones(layer, num_layers)?,
            norm,
        })
    }

    /// Runs every layer with the same masks (see [`TransformerEncoderLayer::forward_with`]).
    ///
    /// # Errors
    /// As [`TransformerEncoderLayer::forward_with`].
    pub fn forward_with(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        run_stack(&self.layers, self.norm.as_ref(), src, |l, x| {
            l.forward_with(x, mask, key_padding_mask, is_causal)
        })
    }
}

impl TransformerDecoder {
    /// `num_layers` copies of `layer`.
    ///
    /// # Errors
    /// Device errors copying the layer's weights.
    pub fn new(
        layer: &TransformerDecoderLayer,
        num_layers: usize,
        norm: Option<LayerNorm>,
    ) -> Result<Self> {
        Ok(TransformerDecoder {
            layers: clones(layer, num_layers)?,
            norm,
        })
    }

    /// Runs every layer over `memory` with the same masks.
    ///
    /// # Errors
    /// As [`TransformerDecoderLayer::forward_with`].
    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<Tensor> {
        run_stack(&self.layers, self.norm.as_ref(), tgt, |l, x| {
            l.forward_with(x, memory, m)
        })
    }
}

macro_rules! training_flag {
    () => {
        fn set_own_training(&mut self, on: bool) {
            self.training = on;
        }
        fn own_training(&self) -> Option<bool> {
            Some(self.training)
        }
    };
}

impl Module for TransformerEncoderLayer {
    /// Without masks.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, None, false)
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        f("self_attn", &self.self_attn);
        f("linear1", &self.ff.linear1);
        f("linear2", &self.ff.linear2);
        f("norm1", &self.norm1);
        f("norm2", &self.norm2);
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        f("self_attn", &mut self.self_attn)?;
        f("linear1", &mut self.ff.linear1)?;
        f("linear2", &mut self.ff.linear2)?;
        f("norm1", &mut self.norm1)?;
        f("norm2", &mut self.norm2)
    }
    training_flag!();
}

impl Module for TransformerDecoderLayer {
    /// Needs a memory: an error pointing at `forward_with`.
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        Err(Error::msg(
            "TransformerDecoderLayer: needs a memory; call forward_with(tgt, memory, masks)",
        ))
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        f("self_attn", &self.self_attn);
        f("multihead_attn", &self.multihead_attn);
        f("linear1", &self.ff.linear1);
        f("linear2", &self.ff.linear2);
        f("norm1", &self.norm1);
        f("norm2", &self.norm2);
        f("norm3", &self.norm3);
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        f("self_attn", &mut self.self_attn)?;
        f("multihead_attn", &mut self.multihead_attn)?;
        f("linear1", &mut self.ff.linear1)?;
        f("linear2", &mut self.ff.linear2)?;
        f("norm1", &mut self.norm1)?;
        f("norm2", &mut self.norm2)?;
        f("norm3", &mut self.norm3)
    }
    training_flag!();
}

macro_rules! stack_children {
    () => {
        fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
            for (i, l) in self.layers.iter().enumerate() {
                f(&format!("layers.{i}"), l);
            }
            if let Some(n) = &self.norm {
                f("norm", n);
            }
        }
        fn visit_children_mut(
            &mut self,
            f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
        ) -> Result<()> {
            for (i, l) in self.layers.iter_mut().enumerate() {
                f(&format!("layers.{i}"), l)?;
            }
            if let Some(n) = &mut self.norm {
                f("norm", n)?;
            }
            Ok(())
        }
    };
}

impl Module for TransformerEncoder {
    /// Without masks.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, None, false)
    }
    stack_children!();
}

impl Module for TransformerDecoder {
    /// Needs a memory: an error pointing at `forward_with`.
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        Err(Error::msg(
            "TransformerDecoder: needs a memory; call forward_with(tgt, memory, masks)",
        ))
    }
    stack_children!();
}
