//! Training-mode batch norm by the fused CPU kernels ([`crate::cpu::batch_norm`]) as recorded
//! ops ([`Op::BatchNorm`], [`Op::BatchNormBackward`]), so a graph capture holds batch norm as
//! one node forward and one backward and replays the kernels eager code runs. Neither records
//! a gradient: eager code wraps them in a custom autograd op (`mlfw-nn`'s fused batch norm).

use crate::cpu::batch_norm::{self as kernels, with_f32, BnShape};
use crate::op::Op;
use crate::{Error, Result, Tensor};
use std::mem::MaybeUninit;

/// `1 / sqrt(var + eps)` in f64, as the eager fused path computes it.
fn rstd_of(var: f32, eps: f64) -> f32 {
    (1.0 / (var as f64 + eps).sqrt()) as f32
}

/// The values of a contiguous CPU f32 tensor, or an error naming `what`.
fn values(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    with_f32(t, <[f32]>::to_vec).ok_or_else(|| {
        Error::msg(format!(
            "batch_norm: `{what}` must be a contiguous CPU f32 tensor (got {} on {:?})",
            t.dtype(),
            t.device()
        ))
    })
}

/// Mean and rstd per channel from `stats [2, C]` (mean, biased variance).
fn mean_rstd(stats: &Tensor, c: usize, eps: f64) -> Result<(Vec<f32>, Vec<f32>)> {
    let s = values(stats, "stats")?;
    if s.len() != 2 * c {
        return Err(Error::msg(format!(
            "batch_norm: stats hold {} values, expected [2, {c}]",
            s.len()
        )));
    }
    let rstd = s[c..].iter().map(|&v| rstd_of(v, eps)).collect();
    Ok((s[..c].to_vec(), rstd))
}

/// A new f32 tensor shaped like `like` whose every element `fill` writes; returns it with
/// what `fill` returns.
fn filled<R>(
    like: &Tensor,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]) -> Result<R>,
) -> Result<(Tensor, R)> {
    let len = like.elem_count();
    let mut v = Vec::with_capacity(len);
    let r = fill(&mut v.spare_capacity_mut()[..len])?;
    // SAFETY: `fill` wrote every one of the `len` elements (the callers' kernels do).
    unsafe { v.set_len(len) };
    Ok((
        Tensor::from_vec(v, like.shape().clone(), &like.device())?,
        r,
    ))
}

impl Tensor {
    /// Training-mode batch norm of `self` (`[N, C, *]`, contiguous CPU f32) with the batch's
    /// statistics: `y = (x − mean)·rstd·weight + bias` (then `max(y, 0)` when `relu`), and the
    /// statistics `[2, C]` (mean; biased variance). `weight`, `bias`: `[C]`. Recorded by a
    /// graph capture as one [`Op::BatchNorm`]; no gradient is recorded. Bit-identical to the
    /// fused eager path of `mlfw_nn::functional::batch_norm`.
    ///
    /// # Errors
    /// A tensor that is not contiguous CPU f32; a rank below 2; `weight`/`bias` not `[C]`;
    /// no values per channel.
    pub fn batch_norm_train(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f64,
        relu: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (y, stats) = filled(self, |out| {
            self.batch_norm_fill(weight, bias, eps, relu, out)
        })?;
        let sc = stats.clone();
        let y = Tensor::finish(
            y.0.storage.clone(),
            y.0.layout.clone(),
            || Op::BatchNorm {
                input: self.clone(),
                weight: weight.clone(),
                bias: bias.clone(),
                stats: sc,
                eps,
                relu,
            },
            false,
        );
        Ok((y, stats))
    }

    /// [`Tensor::batch_norm_train`] writing `y` into `out` (the input's element count,
    /// any prior contents, every element written; bit-identical) and returning the
    /// statistics. Records nothing (for compiled plans, which run without gradients).
    ///
    /// # Errors
    /// As [`Tensor::batch_norm_train`]; `out` of the wrong length.
    pub(crate) fn batch_norm_train_into(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f64,
        relu: bool,
        out: &mut [f32],
    ) -> Result<Tensor> {
        self.batch_norm_fill(weight, bias, eps, relu, as_uninit(out))
    }

    /// The forward's kernels: `y` into `out`, the statistics `[2, C]` returned.
    fn batch_norm_fill(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f64,
        relu: bool,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<Tensor> {
        let sh = BnShape::of(self.dims())?;
        let (w, b) = (values(weight, "weight")?, values(bias, "bias")?);
        if w.len() != sh.c || b.len() != sh.c {
            return Err(Error::msg(format!(
                "batch_norm: weight and bias must be [{}] (got {} and {} values)",
                sh.c,
                w.len(),
                b.len()
            )));
        }
        let (mean, var) = with_f32(self, |xs| kernels::stats(xs, sh)).ok_or_else(|| {
            Error::msg("batch_norm: the input must be a contiguous CPU f32 tensor")
        })??;
        let (scale, shift): (Vec<f32>, Vec<f32>) = (0..sh.c)
            .map(|c| {
                let s = w[c] * rstd_of(var[c], eps);
                (s, b[c] - mean[c] * s)
            })
            .unzip();
        with_f32(self, |xs| {
            kernels::apply_into(xs, sh, &scale, &shift, relu, out)
        })
        .ok_or_else(|| Error::msg("batch_norm: input changed layout"))??;
        let mut st = mean;
        st.extend(var);
        Tensor::from_vec(st, [2, sh.c], &self.device())
    }

    /// The gradient of [`Tensor::batch_norm_train`] (`self` = the output's gradient):
    /// `dx` shaped `input`, and `[2, C]` (`dweight`; `dbias`). `output` is the forward's result
    /// (read only when `relu`, to mask the gradient), `stats` its statistics. Recorded by a
    /// graph capture as one [`Op::BatchNormBackward`]; no gradient is recorded.
    ///
    /// # Errors
    /// As [`Tensor::batch_norm_train`]; shapes that do not match the input's.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_train_backward(
        &self,
        input: &Tensor,
        output: &Tensor,
        stats: &Tensor,
        weight: &Tensor,
        eps: f64,
        relu: bool,
    ) -> Result<(Tensor, Tensor)> {
        let g = self.contiguous()?;
        let (dx, pg) = filled(input, |out| {
            g.batch_norm_backward_fill(input, output, stats, weight, eps, relu, out)
        })?;
        let pc = pg.clone();
        let dx = Tensor::finish(
            dx.0.storage.clone(),
            dx.0.layout.clone(),
            || Op::BatchNormBackward {
                grad: g.clone(),
                input: input.clone(),
                output: output.clone(),
                stats: stats.clone(),
                weight: weight.clone(),
                param_grads: pc,
                eps,
                relu,
            },
            false,
        );
        Ok((dx, pg))
    }

    /// [`Tensor::batch_norm_train_backward`] writing `dx` into `out` (the input's element
    /// count, any prior contents, every element written; bit-identical) and returning
    /// `[2, C]` (`dweight`; `dbias`). Records nothing.
    ///
    /// # Errors
    /// As [`Tensor::batch_norm_train_backward`]; `out` of the wrong length.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_norm_train_backward_into(
        &self,
        input: &Tensor,
        output: &Tensor,
        stats: &Tensor,
        weight: &Tensor,
        eps: f64,
        relu: bool,
        out: &mut [f32],
    ) -> Result<Tensor> {
        let g = self.contiguous()?;
        g.batch_norm_backward_fill(input, output, stats, weight, eps, relu, as_uninit(out))
    }

    /// The backward's kernel on a contiguous gradient `self`: `dx` into `out`, the
    /// parameters' gradients returned.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward_fill(
        &self,
        input: &Tensor,
        output: &Tensor,
        stats: &Tensor,
        weight: &Tensor,
        eps: f64,
        relu: bool,
        out: &mut [MaybeUninit<f32>],
    ) -> Result<Tensor> {
        let sh = BnShape::of(input.dims())?;
        let (mean, rstd) = mean_rstd(stats, sh.c, eps)?;
        let w = values(weight, "weight")?;
        let r = with_f32(input, |xs| {
            with_f32(self, |gs| {
                with_f32(output, |ys| {
                    kernels::backward_train_into(
                        xs,
                        gs,
                        sh,
                        &mean,
                        &rstd,
                        Some(&w),
                        relu.then_some(ys),
                        Some(out),
                    )
                })
            })
        })
        .flatten()
        .flatten()
        .ok_or_else(|| {
            Error::msg("batch_norm_backward: input, grad and output must be contiguous CPU f32")
        })?;
        let (dw, db) = r?;
        let mut pg = dw;
        pg.extend(db);
        Tensor::from_vec(pg, [2, sh.c], &input.device())
    }
}

/// `out` (f32, any prior contents) seen as uninitialised memory for the kernels.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the kernels only ever write initialised f32 values through it.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}
