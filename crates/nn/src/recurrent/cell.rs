//! The bottom of the recurrent family: which cell runs ([`RnnMode`]) and one time step of it
//! as composed core ops ([`cell_step`]), shared by the sequence op above, the cell modules and
//! the fused LSTM kernel's differentiable fallback.

use mlfw_core::{Error, Result, Tensor};

/// The cell a recurrent layer runs. Gate order follows PyTorch: LSTM `i, f, g, o`; GRU `r, z, n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnMode {
    /// Elman RNN, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnTanh,
    /// Elman RNN with relu.
    RnnRelu,
    /// Long short-term memory (4 gates).
    Lstm,
    /// Gated recurrent unit (3 gates).
    Gru,
}

impl RnnMode {
    /// Number of gates (rows of `weight_ih` per hidden unit).
    pub fn gates(self) -> usize {
        match self {
            RnnMode::Lstm => 4,
            RnnMode::Gru => 3,
            _ => 1,
        }
    }

    /// PyTorch's class name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            RnnMode::RnnTanh | RnnMode::RnnRelu => "RNN",
            RnnMode::Lstm => "LSTM",
            RnnMode::Gru => "GRU",
        }
    }
}

/// One time step given the input part of the gates `xg [B, G·H]` (input biases included),
/// the state, `W_hhᵀ [H, G·H]` and (GRU only) `b_hh`.
pub(crate) fn cell_step(
    mode: RnnMode,
    xg: &Tensor,
    h: &Tensor,
    c: Option<&Tensor>,
    w_hh_t: &Tensor,
    gru_b_hh: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    let hs = h.dims()[1];
    let hp = h.matmul(w_hh_t)?;
    match mode {
        RnnMode::RnnTanh => Ok((xg.add(&hp)?.tanh()?, None)),
        RnnMode::RnnRelu => Ok((xg.add(&hp)?.relu()?, None)),
        RnnMode::Lstm => {
            let c = c.ok_or_else(|| Error::msg("LSTM: missing cell state"))?;
            let gates = xg.add(&hp)?;
            let sg = gates.sigmoid()?;
            let (ig, fg, og) = (
                sg.narrow(1, 0, hs)?,
                sg.narrow(1, hs, hs)?,
                sg.narrow(1, 3 * hs, hs)?,
            );
            let gg = gates.narrow(1, 2 * hs, hs)?.tanh()?;
            let c2 = fg.mul(c)?.add(&ig.mul(&gg)?)?;
            let h2 = og.mul(&c2.tanh()?)?;
            Ok((h2, Some(c2)))
        }
        RnnMode::Gru => {
            let hp = match gru_b_hh {
                Some(b) => hp.add(b)?,
                None => hp,
            };
            let rz = xg
                .narrow(1, 0, 2 * hs)?
                .add(&hp.narrow(1, 0, 2 * hs)?)?
                .sigmoid()?;
            let (r, z) = (rz.narrow(1, 0, hs)?, rz.narrow(1, hs, hs)?);
            let n = xg
                .narrow(1, 2 * hs, hs)?
                .add(&r.mul(&hp.narrow(1, 2 * hs, hs)?)?)?
                .tanh()?;
            // (1 − z)·n + z·h = n + z·(h − n)
            Ok((n.add(&z.mul(&h.sub(&n)?)?)?, None))
        }
    }
}
