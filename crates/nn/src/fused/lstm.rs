//! The fused LSTM sequence op (float32 on the CPU): one layer in one direction as a single
//! differentiable op, as cuDNN/oneDNN do, with a hand-written backward through time.
//!
//! Inputs: the input part of the gates for the whole sequence `xg [T, B, 4H]` (biases
//! included), `h0`, `c0 [B, H]`, and `W_hh [4H, H]`. Output `[T + 1, B, H]`: rows `0..T`
//! are `h_t` in time order, row `T` is the final cell state. Per step the forward is one
//! matmul plus one pass over the gates; the backward is one matmul per step plus one matmul
//! for `W_hh`'s gradient over the whole sequence, and the gradient of `xg` is written once
//! (the composed form pads a gradient of the whole sequence per step).
//!
//! Under `create_graph` the backward falls back to the composed ops (so gradients stay
//! differentiable): it re-runs [`crate::recurrent::run_direction_composed`] and differentiates it.

use super::f32s;
use super::lstm_kernel::{self as kernel, Dims, Saved};
#[cfg(target_arch = "x86_64")]
use super::lstm_simd;
use crate::recurrent::cell::{cell_step, RnnMode};
use mlfw_autograd::Function;
use mlfw_core::cpu::batch_norm::with_f32;
use mlfw_core::parallel;
use mlfw_core::{Device, Error, Result, Tensor};
use std::sync::Mutex;

/// One LSTM layer-direction over a whole sequence.
pub(crate) struct LstmSeq {
    reverse: bool,
    saved: Mutex<Option<Saved>>,
}

/// Whether the fused op applies (see [`super::usable_noted`]).
pub(crate) fn fused_ok(ts: &[&Tensor]) -> bool {
    super::usable_noted("LSTM", ts, true)
}

/// Runs the fused op; returns the outputs `[T, B, H]`, `h_n` and `c_n`.
pub(crate) fn lstm_seq(
    xg: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
    reverse: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let t_len = xg.dims()[0];
    let f = LstmSeq {
        reverse,
        saved: Mutex::new(None),
    };
    let inputs = [xg.contiguous()?, h0.clone(), c0.clone(), w_hh.contiguous()?];
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
        let d = Dims {
            t: t_len,
            b,
            h: g4 / 4,
        };
        let (h0, c0) = (f32s(&inputs[1])?, f32s(&inputs[2])?);
        let w = f32s(&inputs[3])?;
        let order = self.order(t_len);
        let run = |xg: &[f32]| kernel_forward(d, &order, xg, (&h0, &c0), &w);
        // xg (the largest input) is read in place when it can be.
        let (out, saved) = match with_f32(&inputs[0], run) {
            Some(r) => r,
            None => run(&f32s(&inputs[0])?),
        };
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Tensor::from_vec(out, [t_len + 1, b, d.h], &Device::Cpu)
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
        let Some(saved) = saved.as_ref() else {
            return Err(Error::msg("lstm_seq: backward without a forward"));
        };
        let [t_len, b, g4] = *inputs[0].dims() else {
            return Err(Error::msg("lstm_seq: expected xg [T, B, 4H]"));
        };
        let d = Dims {
            t: t_len,
            b,
            h: g4 / 4,
        };
        let grad = grad.contiguous()?;
        let (h0, c0) = (f32s(&inputs[1])?, f32s(&inputs[2])?);
        let w = f32s(&inputs[3])?;
        let order = self.order(t_len);
        let run = |gout: &[f32], hout: &[f32]| {
            kernel_backward(d, &order, (gout, hout), (&h0, &c0), &w, saved)
        };
        // The output and its gradient are read in place when they can be.
        let inner = |gout: &[f32]| -> Result<_> {
            match with_f32(output, |hout| run(gout, hout)) {
                Some(r) => Ok(r),
                None => Ok(run(gout, &f32s(output)?)),
            }
        };
        let (dxg, dh0, dc0, hprev) = match with_f32(&grad, inner) {
            Some(r) => r?,
            None => inner(&f32s(&grad)?)?,
        };
        let dev = Device::Cpu;
        let dxg = Tensor::from_vec(dxg, [t_len, b, g4], &dev)?;
        let hprev = Tensor::from_vec(hprev, [t_len * b, d.h], &dev)?;
        // dW_hh = dGᵀ·h_prev over the whole sequence, straight into [4H, H].
        let dw = dxg.reshape([t_len * b, g4])?.t()?.matmul(&hprev)?;
        Ok(vec![
            Some(dxg),
            Some(Tensor::from_vec(dh0, [b, d.h], &dev)?),
            Some(Tensor::from_vec(dc0, [b, d.h], &dev)?),
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
            &inputs[3].t()?,
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

/// Forward over the steps in `order`: `xg [T, B, 4H]` (input part of the gates, biases
/// included), `h0`/`c0 [B, H]`, `w = W_hh [4H, H]`. Returns `[T + 1, B, H]` (h_t in time
/// order, then the final cell state) and the saved activations.
fn kernel_forward(
    d: Dims,
    order: &[usize],
    xg: &[f32],
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
) -> (Vec<f32>, Saved) {
    #[cfg(target_arch = "x86_64")]
    if lstm_simd::usable(d.h) {
        return lstm_simd::forward(d, order, xg, (h0, c0), w, parallel::num_threads());
    }
    kernel::forward_generic(d, order, xg, (h0, c0), w)
}

/// Backward through the steps of `order` (reversed): from the output gradient
/// `gout [T + 1, B, H]` (row `T`: the final cell state's), the forward's output `hout`,
/// `h0`, `c0`, `w = W_hh [4H, H]` and the saved activations. Returns the gradients of
/// `xg [T, B, 4H]`, `h0` and `c0`, and `h_{t−1}` per step (`[T, B, H]`, for `W_hh`'s
/// gradient).
#[allow(clippy::type_complexity)]
fn kernel_backward(
    d: Dims,
    order: &[usize],
    (gout, hout): (&[f32], &[f32]),
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
    s: &Saved,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if lstm_simd::usable(d.h) {
        let parts = parallel::num_threads();
        return lstm_simd::backward(d, order, (gout, hout), (h0, c0), w, s, parts);
    }
    kernel::backward_generic(d, order, (gout, hout), (h0, c0), w, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_util::{max_diff, rand};

    /// The fused op against the composed cell steps: outputs, final states and the four
    /// gradients, both directions, hidden sizes split over threads unevenly.
    #[test]
    fn fused_matches_composed() {
        for (t, b, h, reverse) in [
            (5, 3, 70, false),
            (4, 2, 20, true),
            (1, 1, 3, false),
            (3, 5, 32, true),
        ] {
            let xg = rand(&[t, b, 4 * h], 1, 0.0);
            let (h0, c0) = (rand(&[b, h], 2, 0.0), rand(&[b, h], 3, 0.0));
            let w = rand(&[4 * h, h], 4, 0.0).mul_scalar(0.3).unwrap();
            let wt = w.t().unwrap();
            let (out, h_n, c_n) = lstm_seq(&xg, &h0, &c0, &w, reverse).unwrap();
            let (mut hs, mut cs) = (h0.clone(), c0.clone());
            let mut outs = vec![None; t];
            for step in 0..t {
                let i = if reverse { t - 1 - step } else { step };
                let xi = xg.select(0, i as isize).unwrap();
                let (nh, nc) = cell_step(RnnMode::Lstm, &xi, &hs, Some(&cs), &wt, None).unwrap();
                hs = nh;
                cs = nc.unwrap();
                outs[i] = Some(hs.clone());
            }
            let outs: Vec<Tensor> = outs.into_iter().flatten().collect();
            let plain = Tensor::stack(&outs, 0).unwrap();
            assert!(max_diff(&out, &plain) < 1e-5);
            assert!(max_diff(&h_n, &hs) < 1e-5 && max_diff(&c_n, &cs) < 1e-5);
            let lf = out
                .square()
                .unwrap()
                .sum_all()
                .unwrap()
                .add(&c_n.sum_all().unwrap())
                .unwrap();
            let lp = plain
                .square()
                .unwrap()
                .sum_all()
                .unwrap()
                .add(&cs.sum_all().unwrap())
                .unwrap();
            let inputs = [xg.clone(), h0.clone(), c0.clone(), w.clone()];
            let gf = mlfw_autograd::grad(&lf, &inputs, None).unwrap();
            let gp = mlfw_autograd::grad(&lp, &inputs, None).unwrap();
            for (i, (a, b)) in gf.iter().zip(&gp).enumerate() {
                let d = max_diff(a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!(
                    d < 1e-4,
                    "t={t} h={h} reverse={reverse}: grad {i} differs by {d}"
                );
            }
        }
    }
}
