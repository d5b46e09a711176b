//! The fused CPU path of [`crate::functional::batch_norm`]: f32 tensors on the CPU run the
//! single-pass kernels of `mlfw_core::cpu::batch_norm` (statistics, then normalise + affine
//! in one pass; backward in two) instead of the composite formula's eight recorded ops.
//!
//! A ReLU after the normalisation can be fused too ([`crate::functional::batch_norm_relu`]):
//! the forward clamps in the same pass and the backward masks the gradient while reading it.
//!
//! Training mode records one custom op whose backward is PyTorch's
//! `native_batch_norm_backward`; with `create_graph` the backward is written in recorded
//! tensor ops instead, so second derivatives still work. Everything else (other dtypes and
//! devices, strided inputs, eval mode with inputs that need gradients) takes the composite
//! path. During a graph capture, training mode with a weight and a bias runs the same kernels
//! through `Tensor::batch_norm_train` / `batch_norm_train_backward`, which the capture records
//! as one graph op each (`Op::BatchNorm`, `Op::BatchNormBackward`), so a compiled plan calls
//! the kernels eager code calls (bit-identical); other cases, and `MLFW_FUSED=0`, record the
//! composite formula.

use mlfw_autograd::Function;
use mlfw_core::cpu::batch_norm::{self as kernels, with_f32, BnShape};
use mlfw_core::{CmpOp, Result, Tensor};

/// Copies of `t` as f32 when it is a contiguous CPU f32 tensor.
fn host(t: &Tensor) -> Option<Vec<f32>> {
    with_f32(t, <[f32]>::to_vec)
}

/// Per-channel `scale = weight·rstd` and `shift = bias − mean·scale`.
fn affine(
    mean: &[f32],
    rstd: &[f32],
    w: Option<&[f32]>,
    b: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    (0..mean.len())
        .map(|c| {
            let s = w.map_or(1.0, |w| w[c]) * rstd[c];
            (s, b.map_or(0.0, |b| b[c]) - mean[c] * s)
        })
        .unzip()
}

/// The result of the fused path: the output and, in training mode, the batch mean and
/// biased variance (for the running statistics).
pub(crate) struct Fused {
    pub(crate) y: Tensor,
    pub(crate) batch_stats: Option<(Tensor, Tensor)>,
}

/// Batch norm of `x [N, C, *]` by the fused kernels, or `None` where they do not apply (the
/// caller then runs the composite formula). Shapes were checked by the caller. In eval mode
/// `running` is `(mean, var)`.
pub(crate) fn try_batch_norm(
    x: &Tensor,
    running: Option<(&Tensor, &Tensor)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    eps: f64,
    relu: bool,
) -> Result<Option<Fused>> {
    // A graph capture records the kernels as graph ops (`Op::BatchNorm`), one node each way.
    if training && mlfw_core::graph::is_capturing() {
        return captured(x, weight, bias, eps, relu);
    }
    // `MLFW_FUSED=0` takes the composite formula (see `super::usable`).
    if !super::usable(&[]) {
        return Ok(None);
    }
    let sh = BnShape::of(x.dims())?;
    let (w, b) = match (weight.map(host), bias.map(host)) {
        (Some(None), _) | (_, Some(None)) => return Ok(None),
        (w, b) => (w.flatten(), b.flatten()),
    };
    let tracked = [Some(x), weight, bias]
        .into_iter()
        .flatten()
        .any(Tensor::requires_grad)
        && mlfw_core::is_grad_enabled();
    if !training {
        let Some((rm, rv)) = running else {
            return Ok(None);
        };
        let (Some(mean), Some(var)) = (host(rm), host(rv)) else {
            return Ok(None);
        };
        if tracked {
            return Ok(None);
        }
        let rstd: Vec<f32> = var.iter().map(|&v| rstd_of(v, eps)).collect();
        let (scale, shift) = affine(&mean, &rstd, w.as_deref(), b.as_deref());
        let Some(y) = with_f32(x, |xs| kernels::apply(xs, sh, &scale, &shift, relu)) else {
            return Ok(None);
        };
        let y = Tensor::from_vec(y?, x.shape().clone(), &x.device())?;
        return Ok(Some(Fused {
            y,
            batch_stats: None,
        }));
    }
    let Some(st) = with_f32(x, |xs| kernels::stats(xs, sh)) else {
        return Ok(None);
    };
    let (mean, var) = st?;
    let rstd: Vec<f32> = var.iter().map(|&v| rstd_of(v, eps)).collect();
    let (scale, shift) = affine(&mean, &rstd, w.as_deref(), b.as_deref());
    let y = with_f32(x, |xs| kernels::apply(xs, sh, &scale, &shift, relu))
        .ok_or_else(|| mlfw_core::Error::msg("batch_norm: input changed layout"))??;
    let y = Tensor::from_vec(y, x.shape().clone(), &x.device())?;
    let c = sh.c;
    let batch_stats = Some((
        Tensor::from_vec(mean.clone(), [c], &x.device())?,
        Tensor::from_vec(var, [c], &x.device())?,
    ));
    if !tracked {
        return Ok(Some(Fused { y, batch_stats }));
    }
    let mut inputs = vec![x.clone()];
    inputs.extend(weight.cloned());
    inputs.extend(bias.cloned());
    let f = BnTrain {
        sh,
        eps,
        mean,
        rstd,
        weight: w,
        has_weight: weight.is_some(),
        has_bias: bias.is_some(),
        relu,
        y: y.clone(),
    };
    let y = mlfw_autograd::apply(f, &inputs)?;
    Ok(Some(Fused { y, batch_stats }))
}

/// Training-mode batch norm during a graph capture: the kernels as recorded core ops, or
/// `None` (composite formula) without a weight and bias, for other dtypes, devices or strided
/// tensors, or with `MLFW_FUSED=0`.
fn captured(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    relu: bool,
) -> Result<Option<Fused>> {
    let (Some(w), Some(b)) = (weight, bias) else {
        return Ok(None);
    };
    let fits = |t: &Tensor| with_f32(t, |_| ()).is_some();
    if std::env::var_os("MLFW_FUSED").is_some_and(|v| v == "0") || ![x, w, b].into_iter().all(fits)
    {
        return Ok(None);
    }
    let (y, stats) = x.batch_norm_train(w, b, eps, relu)?;
    let c = stats.dims()[1];
    let row = |t: &Tensor, i: usize| t.narrow(0, i, 1)?.reshape([c]);
    let batch_stats = Some((row(&stats, 0)?, row(&stats, 1)?));
    let tracked = [x, w, b].into_iter().any(Tensor::requires_grad) && mlfw_core::is_grad_enabled();
    if !tracked {
        return Ok(Some(Fused { y, batch_stats }));
    }
    let f = BnCaptured {
        stats,
        y: y.clone(),
        eps,
        relu,
    };
    let y = mlfw_autograd::apply(f, &[x.clone(), w.clone(), b.clone()])?;
    Ok(Some(Fused { y, batch_stats }))
}

/// Training-mode batch norm recorded by a capture; inputs `[x, weight, bias]`. Forward and
/// backward are core ops, so the capture records them as graph nodes.
struct BnCaptured {
    /// `[2, C]`: mean, biased variance.
    stats: Tensor,
    /// The forward's output (its ReLU mask, when `relu`).
    y: Tensor,
    eps: f64,
    relu: bool,
}

impl Function for BnCaptured {
    fn name(&self) -> &str {
        "batch_norm"
    }

    fn forward(&self, _inputs: &[Tensor]) -> Result<Tensor> {
        Ok(self.y.clone())
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            return Err(mlfw_core::Error::msg(
                "batch_norm: a captured batch norm has no second derivative (create_graph)",
            ));
        }
        let (x, w) = (&inputs[0], &inputs[1]);
        let (dx, pg) =
            grad.batch_norm_train_backward(x, &self.y, &self.stats, w, self.eps, self.relu)?;
        let c = w.elem_count();
        let row = |i: usize| pg.narrow(0, i, 1)?.reshape([c]);
        Ok(vec![Some(dx), Some(row(0)?), Some(row(1)?)])
    }
}

fn rstd_of(var: f32, eps: f64) -> f32 {
    (1.0 / (var as f64 + eps).sqrt()) as f32
}

/// Training-mode batch norm as one recorded op; inputs `[x, weight?, bias?]`.
struct BnTrain {
    sh: BnShape,
    eps: f64,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    weight: Option<Vec<f32>>,
    has_weight: bool,
    has_bias: bool,
    /// A ReLU follows (fused): the output is `max(bn, 0)`.
    relu: bool,
    /// The output, computed before recording (forward only hands it back).
    y: Tensor,
}

impl Function for BnTrain {
    fn name(&self) -> &str {
        "batch_norm"
    }

    fn forward(&self, _inputs: &[Tensor]) -> Result<Tensor> {
        Ok(self.y.clone())
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        if mlfw_core::is_grad_enabled() {
            // create_graph: recorded ops, so the gradient is itself differentiable.
            return self.backward_recorded(inputs, grad);
        }
        let g = grad.contiguous()?;
        let need_dx = x.requires_grad();
        let r = with_f32(x, |xs| {
            with_f32(&g, |gs| {
                with_f32(&self.y, |ys| {
                    kernels::backward_train(
                        xs,
                        gs,
                        self.sh,
                        &self.mean,
                        &self.rstd,
                        self.weight.as_deref(),
                        self.relu.then_some(ys),
                        need_dx,
                    )
                })
            })
        })
        .flatten()
        .flatten();
        let Some(r) = r else {
            return self.backward_recorded(inputs, grad);
        };
        let (dx, dw, db) = r?;
        let dev = x.device();
        let c = self.sh.c;
        let mut out = vec![match dx {
            Some(dx) => Some(Tensor::from_vec(dx, x.shape().clone(), &dev)?),
            None => None,
        }];
        if self.has_weight {
            out.push(Some(Tensor::from_vec(dw, [c], &dev)?));
        }
        if self.has_bias {
            out.push(Some(Tensor::from_vec(db, [c], &dev)?));
        }
        Ok(out)
    }
}

impl BnTrain {
    /// The backward in recorded tensor ops (differentiable again):
    /// `dx = w·rstd·(g − mean(g) − x̂·mean(g·x̂))`, `dw = Σ g·x̂`, `db = Σ g`.
    fn backward_recorded(&self, inputs: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let masked;
        let g = if self.relu {
            let keep = self.y.cmp_scalar(0.0, CmpOp::Gt)?.to_dtype(g.dtype())?;
            masked = g.mul(&keep)?;
            &masked
        } else {
            g
        };
        let rank = x.rank();
        let dims: Vec<isize> = (0..rank as isize).filter(|&d| d != 1).collect();
        let pc = |t: &Tensor| {
            let mut shape = vec![1usize; rank];
            shape[1] = t.elem_count();
            t.reshape(shape)
        };
        let mean = x.mean(&dims, true)?;
        let xc = x.sub(&mean)?;
        let rstd = xc
            .square()?
            .mean(&dims, true)?
            .add_scalar(self.eps)?
            .rsqrt()?;
        let xhat = xc.mul(&rstd)?;
        let gxhat = g.mul(&xhat)?;
        let mut k = rstd;
        if self.has_weight {
            k = k.mul(&pc(&inputs[1])?)?;
        }
        let dx = g
            .sub(&g.mean(&dims, true)?)?
            .sub(&xhat.mul(&gxhat.mean(&dims, true)?)?)?
            .mul(&k)?;
        let mut out = vec![Some(dx)];
        if self.has_weight {
            out.push(Some(gxhat.sum(&dims, false)?));
        }
        if self.has_bias {
            out.push(Some(g.sum(&dims, false)?));
        }
        Ok(out)
    }
}
