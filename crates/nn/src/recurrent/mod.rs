//! The recurrent computation shared by `Rnn`/`Lstm`/`Gru` and their cells, as a functional op
//! over explicit weights (PyTorch's `_VF.lstm` and friends).
//!
//! Fast path (as cuDNN/oneDNN): one matmul projects the whole sequence's input for all gates
//! at once, then one matmul per step computes the recurrent part of all gates. Everything
//! is composed of recorded core ops, so autograd differentiates it (twice, too).

pub(crate) mod cell;

pub(crate) use cell::cell_step;
pub use cell::RnnMode;

use crate::functional;
use mlfw_core::{Error, Result, Tensor};

/// The options of a recurrent layer, with PyTorch's defaults (`num_layers 1`, `bias true`,
/// `batch_first false`, `dropout 0`, `bidirectional false`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnConfig {
    /// Features of the input.
    pub input_size: usize,
    /// Features of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers.
    pub num_layers: usize,
    /// Whether the layers have `bias_ih`/`bias_hh`.
    pub bias: bool,
    /// Input and output `[batch, seq, feature]` instead of `[seq, batch, feature]`
    /// (hidden states stay `[layers × directions, batch, hidden]`).
    pub batch_first: bool,
    /// Dropout on the outputs of every layer but the last (training mode only).
    pub dropout: f64,
    /// Whether each layer also runs backwards in time (outputs concatenated).
    pub bidirectional: bool,
}

impl RnnConfig {
    /// `input_size`, `hidden_size` and PyTorch's defaults for the rest.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
    /// Sets `num_layers`.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// Sets `bias`.
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
    /// Sets `batch_first`.
    pub fn batch_first(mut self, on: bool) -> Self {
        self.batch_first = on;
        self
    }
    /// Sets `dropout`.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Sets `bidirectional`.
    pub fn bidirectional(mut self, on: bool) -> Self {
        self.bidirectional = on;
        self
    }
    /// 2 if bidirectional, else 1.
    pub fn directions(&self) -> usize {
        1 + self.bidirectional as usize
    }

    /// PyTorch's state-dict keys with their shapes, in PyTorch's order: per layer and
    /// direction `weight_ih_l{k}[_reverse] [G·H, in]`, `weight_hh_l{k} [G·H, H]`, then the biases.
    pub fn weight_keys(&self, mode: RnnMode) -> Vec<(String, Vec<usize>)> {
        let (h, g) = (self.hidden_size, mode.gates() * self.hidden_size);
        let mut v = Vec::new();
        for l in 0..self.num_layers {
            let inp = if l == 0 {
                self.input_size
            } else {
                h * self.directions()
            };
            for d in 0..self.directions() {
                let sfx = format!("_l{l}{}", if d == 1 { "_reverse" } else { "" });
                v.push((format!("weight_ih{sfx}"), vec![g, inp]));
                v.push((format!("weight_hh{sfx}"), vec![g, h]));
                if self.bias {
                    v.push((format!("bias_ih{sfx}"), vec![g]));
                    v.push((format!("bias_hh{sfx}"), vec![g]));
                }
            }
        }
        v
    }

    pub(crate) fn validate(&self, mode: RnnMode) -> Result<()> {
        if self.hidden_size == 0 || self.num_layers == 0 {
            return Err(Error::msg(format!(
                "{}: hidden_size and num_layers must be positive, got {} and {}",
                mode.name(),
                self.hidden_size,
                self.num_layers
            )));
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return Err(Error::msg(format!(
                "{}: dropout must be in [0, 1], got {}",
                mode.name(),
                self.dropout
            )));
        }
        Ok(())
    }
}

/// The result of [`recurrent`].
#[derive(Debug, Clone)]
pub struct RecurrentOutput {
    /// `[seq, batch, directions·hidden]` (`[batch, seq, ..]` if `batch_first`; `[seq, ..]`
    /// for an unbatched input).
    pub output: Tensor,
    /// Final hidden state `[layers·directions, batch, hidden]`.
    pub h_n: Tensor,
    /// Final cell state (LSTM only), shaped as `h_n`.
    pub c_n: Option<Tensor>,
}

/// Weights of one layer and direction (biases optional).
pub(crate) struct CellWeights<'a> {
    pub w_ih: &'a Tensor,
    pub w_hh: &'a Tensor,
    pub b_ih: Option<&'a Tensor>,
    pub b_hh: Option<&'a Tensor>,
}

/// Runs a stacked recurrent layer on explicit weights (in [`RnnConfig::weight_keys`] order).
///
/// `x`: `[seq, batch, input]` (`[batch, seq, input]` with `batch_first`) or unbatched
/// `[seq, input]`; `h0`/`c0`: `[layers·directions, batch, hidden]` (`[layers·directions,
/// hidden]` unbatched), zeros when absent; `c0` only for LSTM. `training` enables the
/// dropout between layers.
///
/// # Errors
/// `Error::Msg` naming the argument and both shapes: a weight list of the wrong length or
/// shapes, `x` not of the configured layout, `h0`/`c0` shaped or typed otherwise than the
/// input, `c0` for a mode other than LSTM, or an invalid `cfg` (zero sizes, dropout outside
/// `[0, 1]`).
pub fn recurrent(
    mode: RnnMode,
    cfg: &RnnConfig,
    weights: &[Tensor],
    x: &Tensor,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
    training: bool,
) -> Result<RecurrentOutput> {
    cfg.validate(mode)?;
    let name = mode.name();
    let keys = cfg.weight_keys(mode);
    if weights.len() != keys.len() {
        return Err(Error::msg(format!(
            "{name}: expected {} weight tensors, got {}",
            keys.len(),
            weights.len()
        )));
    }
    for ((k, s), w) in keys.iter().zip(weights) {
        if w.dims() != s.as_slice() {
            return Err(Error::msg(format!(
                "{name}: {k} must have shape {s:?}, got {}",
                w.shape()
            )));
        }
    }
    let batched = x.rank() == 3;
    if !(batched || x.rank() == 2) || x.dims()[x.rank() - 1] != cfg.input_size {
        let want = match (cfg.batch_first, x.rank()) {
            (_, 2) => format!("[seq, {}]", cfg.input_size),
            (true, _) => format!("[batch, seq, {}]", cfg.input_size),
            (false, _) => format!("[seq, batch, {}]", cfg.input_size),
        };
        return Err(Error::msg(format!(
            "{name}: input must be {want}, got {}",
            x.shape()
        )));
    }
    if c0.is_some() && mode != RnnMode::Lstm {
        return Err(Error::msg(format!("{name}: c0 is only for LSTM")));
    }
    // Time-major, batched: [T, B, I].
    let xt = match (batched, cfg.batch_first) {
        (false, _) => x.unsqueeze(1)?,
        (true, true) => x.transpose(0, 1)?,
        (true, false) => x.clone(),
    };
    let (b, h, nd) = (xt.dims()[1], cfg.hidden_size, cfg.directions());
    let state_shape: Vec<usize> = if batched {
        vec![cfg.num_layers * nd, b, h]
    } else {
        vec![cfg.num_layers * nd, h]
    };
    let state = |t: Option<&Tensor>, what: &str| -> Result<Option<Tensor>> {
        match t {
            None => Ok(None),
            Some(t) if t.dims() != state_shape.as_slice() => Err(Error::msg(format!(
                "{name}: {what} must have shape {state_shape:?}, got {}",
                t.shape()
            ))),
            Some(t) if t.dtype() != x.dtype() => Err(Error::msg(format!(
                "{name}: {what} must have the input's dtype {}, got {}",
                x.dtype(),
                t.dtype()
            ))),
            Some(t) if batched => Ok(Some(t.clone())),
            Some(t) => Ok(Some(t.unsqueeze(1)?)),
        }
    };
    let (h0, c0) = (state(h0, "h0")?, state(c0, "c0")?);
    let zeros = Tensor::zeros([b, h], x.dtype(), &x.device())?;
    let per = if cfg.bias { 4 } else { 2 };
    let (mut hs, mut cs) = (Vec::new(), Vec::new());
    let mut input = xt;
    for l in 0..cfg.num_layers {
        let mut outs = Vec::with_capacity(nd);
        for d in 0..nd {
            let k = l * nd + d;
            let w = &weights[k * per..(k + 1) * per];
            let cw = CellWeights {
                w_ih: &w[0],
                w_hh: &w[1],
                b_ih: w.get(2),
                b_hh: w.get(3),
            };
            let hi = match &h0 {
                Some(t) => t.select(0, k as isize)?,
                None => zeros.clone(),
            };
            let ci = match (&c0, mode) {
                (Some(t), _) => Some(t.select(0, k as isize)?),
                (None, RnnMode::Lstm) => Some(zeros.clone()),
                _ => None,
            };
            let (out, hn, cn) = run_direction(mode, &cw, &input, hi, ci, d == 1)?;
            outs.push(out);
            hs.push(hn);
            cs.extend(cn);
        }
        input = if nd == 1 {
            outs.pop().expect("one direction")
        } else {
            Tensor::cat(&outs, 2)?
        };
        if l + 1 < cfg.num_layers && cfg.dropout > 0.0 {
            input = functional::dropout(&input, cfg.dropout, training, None)?;
        }
    }
    let mut h_n = Tensor::stack(&hs, 0)?;
    let mut c_n = if cs.is_empty() {
        None
    } else {
        Some(Tensor::stack(&cs, 0)?)
    };
    let output = match (batched, cfg.batch_first) {
        (false, _) => {
            h_n = h_n.squeeze(1)?;
            c_n = c_n.map(|c| c.squeeze(1)).transpose()?;
            input.squeeze(1)?
        }
        (true, true) => input.transpose(0, 1)?,
        (true, false) => input,
    };
    Ok(RecurrentOutput { output, h_n, c_n })
}

/// One layer in one direction over a time-major `[T, B, I]` input: returns the outputs
/// `[T, B, H]` (in time order) and the final `h` (and `c`).
pub(crate) fn run_direction(
    mode: RnnMode,
    w: &CellWeights<'_>,
    x: &Tensor,
    mut h: Tensor,
    mut c: Option<Tensor>,
    reverse: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let [t_len, b, i] = *x.dims() else {
        return Err(Error::msg(format!(
            "{}: expected a [seq, batch, input] sequence, got {}",
            mode.name(),
            x.shape()
        )));
    };
    let g = w.w_ih.dims()[0];
    // The input part of every gate for the whole sequence in one matmul (biases added in
    // place by the fused linear op where it applies).
    let x2 = x.reshape([t_len * b, i])?;
    let (xp, hb) = match (mode, w.b_ih, w.b_hh) {
        (RnnMode::Gru, Some(bi), Some(bh)) => {
            (crate::functional::linear(&x2, w.w_ih, Some(bi))?, Some(bh))
        }
        (_, Some(bi), Some(bh)) => (
            crate::functional::linear(&x2, w.w_ih, Some(&bi.add(bh)?))?,
            None,
        ),
        _ => (x2.matmul(&w.w_ih.t()?)?, None),
    };
    let xp = xp.reshape([t_len, b, g])?;
    if let (RnnMode::Lstm, Some(c0)) = (mode, &c) {
        if crate::fused::lstm::fused_ok(&[&xp, &h, c0, w.w_hh]) {
            let w_hh = w.w_hh.contiguous()?;
            let (out, h_n, c_n) = crate::fused::lstm::lstm_seq(&xp, &h, c0, &w_hh, reverse)?;
            return Ok((out, h_n, Some(c_n)));
        }
    }
    let w_hh_t = w.w_hh.t()?.contiguous()?;
    let mut outs: Vec<Option<Tensor>> = vec![None; t_len];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let (nh, nc) = cell_step(
            mode,
            &xp.select(0, t as isize)?,
            &h,
            c.as_ref(),
            &w_hh_t,
            hb,
        )?;
        h = nh;
        c = nc;
        outs[t] = Some(h.clone());
    }
    let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
    let out = if outs.is_empty() {
        Tensor::zeros([0, b, h.dims()[1]], x.dtype(), &x.device())?
    } else {
        Tensor::stack(&outs, 0)?
    };
    Ok((out, h, c))
}
