//! Embedding table.

use crate::{param, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// A lookup table (PyTorch's `nn.Embedding`): i64 indices of any shape → `[.., dim]`.
/// Key `weight [num, dim]`, N(0, 1) initially (row `padding_idx` zero if set).
#[derive(Debug, Clone)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    /// Row zeroed at initialisation that never receives a gradient (as PyTorch's).
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// A float32 table from the global generator.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(num: usize, dim: usize, device: &Device) -> Result<Self> {
        Self::from_tensor(
            Tensor::randn(0.0, 1.0, [num, dim], DType::F32, device)?,
            None,
        )
    }

    /// A float32 table from `g`, with an optional zeroed `padding_idx` row.
    ///
    /// # Errors
    /// `Error::Msg` for a `padding_idx` outside `0..num`.
    pub fn new_with(
        num: usize,
        dim: usize,
        padding_idx: Option<usize>,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Self> {
        Self::from_tensor(
            Tensor::randn_with(0.0, 1.0, [num, dim], DType::F32, device, g)?,
            padding_idx,
        )
    }

    /// A table from an existing `[num, dim]` tensor (made a parameter).
    ///
    /// # Errors
    /// `Error::Msg` when `w` is not 2-D or `padding_idx` is outside `0..num`.
    pub fn from_tensor(w: Tensor, padding_idx: Option<usize>) -> Result<Self> {
        let [num, _] = *w.dims() else {
            return Err(Error::msg(format!(
                "Embedding: weight must be 2-D, got {}",
                w.shape()
            )));
        };
        if let Some(p) = padding_idx {
            if p >= num {
                return Err(Error::msg(format!(
                    "Embedding: padding_idx {p} out of range for {num} rows"
                )));
            }
            let row = w.narrow(0, p, 1)?;
            row.assign(&row.zeros_like()?)?;
        }
        Ok(Embedding {
            weight: param(w)?,
            padding_idx,
        })
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        if ids.dtype() != DType::I64 {
            return Err(Error::msg(format!(
                "Embedding({}, {}): indices must be int64, got {} of shape {}",
                self.weight.dims()[0],
                self.weight.dims()[1],
                ids.dtype(),
                ids.shape()
            )));
        }
        crate::functional::embedding(&self.weight, ids, self.padding_idx)
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        f("weight", &self.weight, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        f("weight", &mut self.weight, TensorKind::Parameter)
    }
}
