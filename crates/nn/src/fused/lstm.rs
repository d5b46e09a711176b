//! The fused LSTM sequence op (float32 on the CPU): one layer in one direction as a single
//! differentiable op, as cuDNN/oneDNN do, with a hand-written backward through time.
//!
//! Inputs: the input part of the gates for the whole sequence `xg [T, B, 4H]` (biases
//! included), `h0`, `c0 [B, H]`, and `W_hhᵀ [H, 4H]`. Output `[T + 1, B, H]`: rows `0..T`
//! are `h_t` in time order, row `T` is the final cell state. Per step the forward is one
//! matmul plus one pass over the gates; the backward is one matmul per step plus one matmul
//! for `W_hh`'s gradient over the whole sequence, and the gradient of `xg` is written once
//! (the composed form pads a gradient of the whole sequence per step).
//!
//! Under `create_graph` the backward falls back to the composed ops (so gradients stay
//! differentiable): it re-runs [`crate::recurrent::run_direction_composed`] and differentiates it.

use crate::recurrent::{cell_step, RnnMode};
use mlfw_autograd::Function;
use mlfw_core::{Device, Error, Result, Tensor};
use std::sync::Mutex;

/// Activations the backward needs.
struct Saved {
    /// `[T, B, 4H]`: i, f, g, o after their nonlinearities, in time order.
    acts: Vec<f32>,
    /// `[T, B, H]`: c_t in time order.
    cs: Vec<f32>,
}

/// One LSTM layer-direction over a whole sequence.
pub(crate) struct LstmSeq {
    reverse: bool,
    saved: Mutex<Option<Saved>>,
}

/// Whether the fused op applies (see [`super::usable`]).
pub(crate) fn fused_ok(ts: &[&Tensor]) -> bool {
    super::usable(ts)
}

/// Runs the fused op; returns the outputs `[T, B, H]`, `h_n` and `c_n`.
pub(crate) fn lstm_seq(
    xg: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_hh_t: &Tensor,
    reverse: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let t_len = xg.dims()[0];
    let f = LstmSeq {
        reverse,
        saved: Mutex::new(None),
    };
    let inputs = [xg.contiguous()?, h0.clone(), c0.clone(), w_hh_t.clone()];
    let out = mlfw_autograd::apply(f, &inputs)?;
    let h_n = if t_len == 0 {
        h0.clone()
    } else {
        out.select(0, if reverse { 0 } else { t_len as isize - 1 })?
    };
    Ok((
        out.narrow(0, 0, t_len)?,
        h_n,
        out.select(0, t_len as isize)?,
    ))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `tanh` through one `exp` (libm's `tanhf` goes through the slower `expm1f`); absolute
/// error below 1e-7, exact limits ±1.
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
}

impl LstmSeq {
    fn order(&self, t_len: usize) -> Vec<usize> {
        if self.reverse {
            (0..t_len).rev().collect()
        } else {
            (0..t_len).collect()
        }
    }
}

impl Function for LstmSeq {
    fn name(&self) -> &str {
        "lstm_seq"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let [t_len, b, g4] = *inputs[0].dims() else {
            return Err(Error::msg("lstm_seq: expected xg [T, B, 4H]"));
        };
        let hs = g4 / 4;
        let xg = inputs[0].to_vec::<f32>()?;
        // W_hh [4H, H] times hᵀ [H, B]: gemm's fast orientation for a small batch.
        let w = inputs[3].t()?.contiguous()?;
        let mut ht = inputs[1].t()?.contiguous()?;
        let mut c = inputs[2].to_vec::<f32>()?;
        let (bh, bg) = (b * hs, b * g4);
        let mut out = vec![0f32; (t_len + 1) * bh];
        let mut acts = vec![0f32; t_len * bg];
        let mut cs = vec![0f32; t_len * bh];
        let mut hnext_t = vec![0f32; bh];
        for t in self.order(t_len) {
            let hp = w.matmul(&ht)?.to_vec::<f32>()?; // [4H, B]
            let a = &mut acts[t * bg..(t + 1) * bg];
            let x = &xg[t * bg..(t + 1) * bg];
            let ho = &mut out[t * bh..(t + 1) * bh];
            for r in 0..b {
                let (row, hr) = (r * g4, r * hs);
                let pre = |k: usize, j: usize| x[row + k * hs + j] + hp[(k * hs + j) * b + r];
                for j in 0..hs {
                    let gi = sigmoid(pre(0, j));
                    let gf = sigmoid(pre(1, j));
                    let gg = tanh(pre(2, j));
                    let go = sigmoid(pre(3, j));
                    let cn = gf * c[hr + j] + gi * gg;
                    c[hr + j] = cn;
                    let hn = go * tanh(cn);
                    ho[hr + j] = hn;
                    hnext_t[j * b + r] = hn;
                    a[row + j] = gi;
                    a[row + hs + j] = gf;
                    a[row + 2 * hs + j] = gg;
                    a[row + 3 * hs + j] = go;
                }
            }
            cs[t * bh..(t + 1) * bh].copy_from_slice(&c);
            ht = Tensor::from_slice(&hnext_t, [hs, b], &Device::Cpu)?;
        }
        out[t_len * bh..].copy_from_slice(&c);
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(Saved { acts, cs });
        Tensor::from_vec(out, [t_len + 1, b, hs], &Device::Cpu)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            return composed_backward(inputs, grad, self.reverse);
        }
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        let Some(Saved { acts, cs }) = saved.as_ref() else {
            return Err(Error::msg("lstm_seq: backward without a forward"));
        };
        let [t_len, b, g4] = *inputs[0].dims() else {
            return Err(Error::msg("lstm_seq: expected xg [T, B, 4H]"));
        };
        let hs = g4 / 4;
        let (bh, bg) = (b * hs, b * g4);
        let gout = grad.to_vec::<f32>()?;
        let hout = output.to_vec::<f32>()?;
        let h0 = inputs[1].to_vec::<f32>()?;
        let c0 = inputs[2].to_vec::<f32>()?;
        let w = inputs[3].t()?.contiguous()?; // W_hh [4H, H], contiguous for gemm
        let order = self.order(t_len);
        let mut dxg = vec![0f32; t_len * bg];
        // h_{t-1} for each t (in time order), for W_hh's gradient.
        let mut hprev = vec![0f32; t_len * bh];
        let mut dh_next = vec![0f32; bh];
        let mut dc = gout[t_len * bh..].to_vec();
        for (k, &t) in order.iter().enumerate().rev() {
            let (c_prev, h_prev): (&[f32], &[f32]) = if k == 0 {
                (&c0, &h0)
            } else {
                let p = order[k - 1];
                (&cs[p * bh..(p + 1) * bh], &hout[p * bh..(p + 1) * bh])
            };
            hprev[t * bh..(t + 1) * bh].copy_from_slice(h_prev);
            let a = &acts[t * bg..(t + 1) * bg];
            let ct = &cs[t * bh..(t + 1) * bh];
            let gh = &gout[t * bh..(t + 1) * bh];
            let d = &mut dxg[t * bg..(t + 1) * bg];
            for r in 0..b {
                let (row, hr) = (r * g4, r * hs);
                for j in 0..hs {
                    let (gi, gf, gg, go) = (
                        a[row + j],
                        a[row + hs + j],
                        a[row + 2 * hs + j],
                        a[row + 3 * hs + j],
                    );
                    let dh = gh[hr + j] + dh_next[hr + j];
                    let tc = tanh(ct[hr + j]);
                    let dct = dc[hr + j] + dh * go * (1.0 - tc * tc);
                    d[row + j] = dct * gg * gi * (1.0 - gi);
                    d[row + hs + j] = dct * c_prev[hr + j] * gf * (1.0 - gf);
                    d[row + 2 * hs + j] = dct * gi * (1.0 - gg * gg);
                    d[row + 3 * hs + j] = dh * tc * go * (1.0 - go);
                    dc[hr + j] = dct * gf;
                }
            }
            let dg = Tensor::from_slice(&d[..], [b, g4], &Device::Cpu)?;
            dh_next = dg.matmul(&w)?.to_vec::<f32>()?;
        }
        let dxg = Tensor::from_vec(dxg, [t_len, b, g4], &Device::Cpu)?;
        let hprev = Tensor::from_vec(hprev, [t_len * b, hs], &Device::Cpu)?;
        let dw = hprev.t()?.matmul(&dxg.reshape([t_len * b, g4])?)?;
        Ok(vec![
            Some(dxg),
            Some(Tensor::from_vec(dh_next, [b, hs], &Device::Cpu)?),
            Some(Tensor::from_vec(dc, [b, hs], &Device::Cpu)?),
            Some(dw),
        ])
    }
}

/// The backward under `create_graph`: the composed ops re-run on the inputs and
/// differentiated with a recorded graph.
fn composed_backward(
    inputs: &[Tensor],
    grad: &Tensor,
    reverse: bool,
) -> Result<Vec<Option<Tensor>>> {
    let [t_len, _, _] = *inputs[0].dims() else {
        return Err(Error::msg("lstm_seq: expected xg [T, B, 4H]"));
    };
    let mut h = inputs[1].clone();
    let mut c = inputs[2].clone();
    let mut outs: Vec<Option<Tensor>> = vec![None; t_len];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let (nh, nc) = cell_step(
            RnnMode::Lstm,
            &inputs[0].select(0, t as isize)?,
            &h,
            Some(&c),
            &inputs[3],
            None,
        )?;
        h = nh;
        c = nc.ok_or_else(|| Error::msg("lstm_seq: no cell state"))?;
        outs[t] = Some(h.clone());
    }
    let mut all: Vec<Tensor> = outs.into_iter().flatten().collect();
    all.push(c);
    let out = Tensor::stack(&all, 0)?;
    let gs = mlfw_autograd::grad_with(&out, inputs, Some(grad), true)?;
    Ok(gs)
}
