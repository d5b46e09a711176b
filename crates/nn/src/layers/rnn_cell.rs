//! Single-step recurrent cells `RnnCell`, `LstmCell`, `GruCell` (PyTorch's `nn.RNNCell`, ...).
//!
//! Keys `weight_ih [G·H, in]`, `weight_hh [G·H, H]`, `bias_ih`, `bias_hh [G·H]`, U(±1/√H)
//! initially; the same step as the layers ([`crate::recurrent`]).

use super::{visit_opt, visit_opt_mut};
use crate::recurrent::{cell_step, RnnMode};
use crate::{functional, init, param, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// The shared state of the three cells.
#[derive(Debug, Clone)]
struct Cell {
    mode: RnnMode,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Option<Tensor>,
    bias_hh: Option<Tensor>,
}

impl Cell {
    fn new(
        mode: RnnMode,
        input: usize,
        hidden: usize,
        bias: bool,
        device: &Device,
        mut g: Option<&mut Generator>,
    ) -> Result<Self> {
        if hidden == 0 {
            return Err(Error::msg(format!(
                "{}Cell: hidden_size must be positive",
                mode.name()
            )));
        }
        let bound = 1.0 / (hidden as f64).sqrt();
        let gh = mode.gates() * hidden;
        let mut make = |s: Vec<usize>| -> Result<Tensor> {
            let t = Tensor::zeros(s, DType::F32, device)?;
            init::uniform(&t, -bound, bound, g.as_deref_mut())?;
            param(t)
        };
        let (weight_ih, weight_hh) = (make(vec![gh, input])?, make(vec![gh, hidden])?);
        let (bias_ih, bias_hh) = if bias {
            (Some(make(vec![gh])?), Some(make(vec![gh])?))
        } else {
            (None, None)
        };
        Ok(Cell {
            mode,
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        })
    }

    fn hidden(&self) -> usize {
        self.weight_hh.dims()[1]
    }

    /// `x [B, in]` or `[in]`; states `[B, H]` or `[H]` (zeros when absent).
    fn step(
        &self,
        x: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let name = format!("{}Cell", self.mode.name());
        let input = self.weight_ih.dims()[1];
        let batched = x.rank() == 2;
        if !(batched || x.rank() == 1) || x.dims()[x.rank() - 1] != input {
            return Err(Error::msg(format!(
                "{name}: input must be [batch, {input}] or [{input}], got {}",
                x.shape()
            )));
        }
        let x = if batched { x.clone() } else { x.unsqueeze(0)? };
        let want = [x.dims()[0], self.hidden()];
        let state = |t: Option<&Tensor>, what: &str| -> Result<Tensor> {
            let Some(t) = t else {
                return Tensor::zeros(want, x.dtype(), &x.device());
            };
            let t = if batched { t.clone() } else { t.unsqueeze(0)? };
            if t.dims() != want {
                return Err(Error::msg(format!(
                    "{name}: {what} must have shape {:?}, got {}",
                    if batched { &want[..] } else { &want[1..] },
                    t.shape()
                )));
            }
            Ok(t)
        };
        let h = state(h, "hx")?;
        let c = match self.mode {
            RnnMode::Lstm => Some(state(c, "cx")?),
            _ => None,
        };
        let b_in = match (self.mode, &self.bias_ih, &self.bias_hh) {
            (RnnMode::Gru, Some(b), _) => Some(b.clone()),
            (_, Some(bi), Some(bh)) => Some(bi.add(bh)?),
            _ => None,
        };
        let xg = functional::linear(&x, &self.weight_ih, b_in.as_ref())?;
        let gru_b = if self.mode == RnnMode::Gru {
            self.bias_hh.as_ref()
        } else {
            None
        };
        let (h2, c2) = cell_step(self.mode, &xg, &h, c.as_ref(), &self.weight_hh.t()?, gru_b)?;
        if batched {
            Ok((h2, c2))
        } else {
            Ok((h2.squeeze(0)?, c2.map(|c| c.squeeze(0)).transpose()?))
        }
    }
}

macro_rules! cell_module {
    ($(#[$doc:meta])* $name:ident, $mode:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(Cell);

        impl $name {
            /// A float32 cell from the global generator.
            ///
            /// # Errors
            /// `Error::Msg` when `hidden_size` is 0.
            pub fn new(input_size: usize, hidden_size: usize, bias: bool, device: &Device) -> Result<Self> {
                Ok($name(Cell::new($mode, input_size, hidden_size, bias, device, None)?))
            }
            /// The same, initialised from `g`.
            ///
            /// # Errors
            /// `Error::Msg` when `hidden_size` is 0.
            pub fn new_with(
                input_size: usize,
                hidden_size: usize,
                bias: bool,
                device: &Device,
                g: &mut Generator,
            ) -> Result<Self> {
                Ok($name(Cell::new($mode, input_size, hidden_size, bias, device, Some(g))?))
            }
        }

        impl Module for $name {
            /// One step from a zero state; returns the new hidden state.
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(self.0.step(x, None, None)?.0)
            }
            fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
                f("weight_ih", &self.0.weight_ih, TensorKind::Parameter);
                f("weight_hh", &self.0.weight_hh, TensorKind::Parameter);
                visit_opt(f, "bias_ih", &self.0.bias_ih, TensorKind::Parameter);
                visit_opt(f, "bias_hh", &self.0.bias_hh, TensorKind::Parameter);
            }
            fn visit_own_mut(
                &mut self,
                f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
            ) -> Result<()> {
                f("weight_ih", &mut self.0.weight_ih, TensorKind::Parameter)?;
                f("weight_hh", &mut self.0.weight_hh, TensorKind::Parameter)?;
                visit_opt_mut(f, "bias_ih", &mut self.0.bias_ih, TensorKind::Parameter)?;
                visit_opt_mut(f, "bias_hh", &mut self.0.bias_hh, TensorKind::Parameter)
            }
        }
    };
}

cell_module!(
    /// One tanh RNN step (`nn.RNNCell`): `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (relu with
    /// [`RnnCell::relu`]).
    /// `x [batch, in]` or `[in]` → `h' [batch, hidden]` or `[hidden]`.
    RnnCell,
    RnnMode::RnnTanh
);
cell_module!(
    /// One LSTM step (`nn.LSTMCell`), gates `i, f, g, o`; see [`LstmCell::step`].
    LstmCell,
    RnnMode::Lstm
);
cell_module!(
    /// One GRU step (`nn.GRUCell`), gates `r, z, n`; see [`GruCell::step`].
    GruCell,
    RnnMode::Gru
);

impl RnnCell {
    /// The same cell with `nonlinearity='relu'`.
    pub fn relu(mut self) -> Self {
        self.0.mode = RnnMode::RnnRelu;
        self
    }

    /// `h' ` from `x` and `hx [batch, hidden]` (zeros when absent).
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not `[batch, input]` or `[input]`, or `hx` is not shaped `[batch,
    /// hidden]`.
    pub fn step(&self, x: &Tensor, hx: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.0.step(x, hx, None)?.0)
    }
}

impl LstmCell {
    /// `(h', c')` from `x [batch, in]` and `(hx, cx)` (each `[batch, hidden]`, zeros when absent).
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not `[batch, input]` or `[input]`, or `hx`/`cx` are not shaped
    /// `[batch, hidden]`.
    pub fn step(&self, x: &Tensor, state: Option<(&Tensor, &Tensor)>) -> Result<(Tensor, Tensor)> {
        let (h, c) = self.0.step(x, state.map(|s| s.0), state.map(|s| s.1))?;
        Ok((h, c.ok_or_else(|| Error::msg("LSTMCell: no cell state"))?))
    }
}

impl GruCell {
    /// `h'` from `x [batch, in]` and `hx [batch, hidden]` (zeros when absent).
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not `[batch, input]` or `[input]`, or `hx` is not shaped `[batch,
    /// hidden]`.
    pub fn step(&self, x: &Tensor, hx: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.0.step(x, hx, None)?.0)
    }
}
