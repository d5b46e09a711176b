//! Layers: each a struct implementing [`crate::Module`], with PyTorch's names, parameter
//! shapes, default initialisation and state-dict keys.

mod activation;
mod attention;
mod conv;
mod dropout;
mod embedding;
mod linear;
mod norm;
mod pool;
mod rnn;
mod rnn_cell;
mod sequential;
mod transformer;

pub use activation::{
    Flatten, Gelu, Identity, LeakyRelu, LogSoftmax, Relu, Sigmoid, Softmax, Tanh,
};
pub use attention::{AttnArgs, MultiheadAttention};
pub use conv::{Conv2d, Conv2dConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use rnn::{Gru, Lstm, Rnn};
pub use rnn_cell::{GruCell, LstmCell, RnnCell};
pub use sequential::Sequential;
pub use transformer::{
    DecoderMasks, FfActivation, TransformerConfig, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer,
};

use crate::TensorKind;
use mlfw_core::Tensor;

/// Visits an optional tensor (skipped when absent).
pub(crate) fn visit_opt(
    f: &mut dyn FnMut(&str, &Tensor, TensorKind),
    name: &str,
    t: &Option<Tensor>,
    k: TensorKind,
) {
    if let Some(t) = t {
        f(name, t, k);
    }
}

/// Visits an optional tensor mutably.
pub(crate) fn visit_opt_mut(
    f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> mlfw_core::Result<()>,
    name: &str,
    t: &mut Option<Tensor>,
    k: TensorKind,
) -> mlfw_core::Result<()> {
    match t {
        Some(t) => f(name, t, k),
        None => Ok(()),
    }
}
