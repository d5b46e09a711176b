//! Layer normalisation (float32 on the CPU) as one op: one pass for the statistics and one
//! for `y = (x − mean)·rstd·w + b` per row, where the composed form makes five full-size
//! tensors (centred, squared, normalised, scaled, shifted) and keeps them for the backward.
//! The op keeps `mean` and `rstd` per row (Ba et al. 2016; PyTorch's `native_layer_norm`).
//!
//! Backward per row, with `x̂ = (x − mean)·rstd` and `ĝ = g·w`:
//! `dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, `dw = Σ_rows g·x̂`, `db = Σ_rows g`.

use super::{f32s, Out};
use mlfw_core::parallel;
use mlfw_core::{Device, Error, Result, Tensor};
use std::sync::Mutex;

/// Rows per parallel task (at least this many elements per task).
const MIN_TASK: usize = 16 * 1024;

/// Whether the fused op applies (see [`super::usable_noted`]).
pub(crate) fn fused_ok(x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> bool {
    let mut ts = vec![x];
    ts.extend(weight);
    ts.extend(bias);
    super::usable_noted("layer-norm", &ts, true)
}

/// `layer_norm` of `x` over its trailing `normalized_shape`; `weight`/`bias` of that shape
/// when present (checked by the caller, [`crate::functional::layer_norm`]).
pub(crate) fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let f = LayerNorm {
        d: normalized_shape.iter().product(),
        shape: normalized_shape.to_vec(),
        eps,
        affine: (weight.is_some(), bias.is_some()),
        stats: Mutex::new(None),
    };
    let mut inputs = vec![x.contiguous()?];
    inputs.extend(weight.cloned());
    inputs.extend(bias.cloned());
    mlfw_autograd::apply(f, &inputs)
}

/// `Σ f(x)` over 16 float32 lanes (vectorised; pairwise-like rounding, as PyTorch's CPU
/// reductions), then the lanes added.
fn lanes_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    acc.iter().sum()
}

/// The affine parts' values, when present.
type WeightBias = (Option<Vec<f32>>, Option<Vec<f32>>);

/// Per-task partial sums of `g·x̂` and `g` (the weight's and bias's gradients).
type Partial = (Vec<f64>, Vec<f64>);

struct LayerNorm {
    /// Elements per row (the product of `shape`).
    d: usize,
    /// The normalized shape.
    shape: Vec<usize>,
    eps: f64,
    /// Whether a weight and a bias follow `x` in the inputs.
    affine: (bool, bool),
    /// `(mean, rstd)` per row, for the backward.
    stats: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl LayerNorm {
    fn weight_bias(&self, inputs: &[Tensor]) -> Result<WeightBias> {
        let w = if self.affine.0 {
            Some(f32s(&inputs[1])?)
        } else {
            None
        };
        let b = if self.affine.1 {
            Some(f32s(&inputs[1 + self.affine.0 as usize])?)
        } else {
            None
        };
        Ok((w, b))
    }

    /// Rows per task for `rows` rows.
    fn per_task(&self, rows: usize) -> usize {
        parallel::chunk_len(rows, MIN_TASK.div_ceil(self.d.max(1)))
    }
}

impl mlfw_autograd::Function for LayerNorm {
    fn name(&self) -> &str {
        "layer_norm"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let x = f32s(&inputs[0])?;
        let d = self.d;
        if d == 0 || x.len() % d != 0 {
            return Err(Error::msg(
                "layer_norm: normalized size does not divide the input",
            ));
        }
        let rows = x.len() / d;
        let (w, b) = self.weight_bias(inputs)?;
        let mut y = vec![0f32; x.len()];
        let mut mean = vec![0f32; rows];
        let mut rstd = vec![0f32; rows];
        let (py, pm, pr) = (Out::new(&mut y), Out::new(&mut mean), Out::new(&mut rstd));
        let per = self.per_task(rows);
        parallel::run(rows.div_ceil(per), |t| {
            let (r0, r1) = (t * per, ((t + 1) * per).min(rows));
            // SAFETY: rows r0..r1 belong to this task only.
            let (ys, ms, rs) = unsafe {
                (
                    py.part(r0 * d, (r1 - r0) * d),
                    pm.part(r0, r1 - r0),
                    pr.part(r0, r1 - r0),
                )
            };
            for r in r0..r1 {
                let xr = &x[r * d..(r + 1) * d];
                let m = lanes_sum(xr, |v| v) / d as f32;
                let var = lanes_sum(xr, |v| (v - m) * (v - m)) as f64 / d as f64;
                let s = (1.0 / (var + self.eps).sqrt()) as f32;
                ms[r - r0] = m;
                rs[r - r0] = s;
                let yr = &mut ys[(r - r0) * d..(r - r0 + 1) * d];
                for (j, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
                    let mut h = (v - m) * s;
                    if let Some(w) = &w {
                        h *= w[j];
                    }
                    if let Some(b) = &b {
                        h += b[j];
                    }
                    *o = h;
                }
            }
        });
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some((mean, rstd));
        Tensor::from_vec(y, inputs[0].dims(), &Device::Cpu)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            return self.composed_backward(inputs, grad);
        }
        let guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (mean, rstd) = guard
            .as_ref()
            .ok_or_else(|| Error::msg("layer_norm: backward without a forward"))?;
        let x = f32s(&inputs[0])?;
        let g = f32s(&grad.contiguous()?)?;
        let (w, _) = self.weight_bias(inputs)?;
        let d = self.d;
        let rows = x.len() / d;
        let mut dx = vec![0f32; x.len()];
        let pdx = Out::new(&mut dx);
        let per = self.per_task(rows);
        let want_wb = self.affine.0 || self.affine.1;
        // Each task returns its partial sums of g·x̂ and g (in f64) over its rows.
        let partial = parallel::map(rows.div_ceil(per), |t| {
            let (r0, r1) = (t * per, ((t + 1) * per).min(rows));
            // SAFETY: rows r0..r1 belong to this task only.
            let dxs = unsafe { pdx.part(r0 * d, (r1 - r0) * d) };
            let (mut dw, mut db) = if want_wb {
                (vec![0f64; d], vec![0f64; d])
            } else {
                (Vec::new(), Vec::new())
            };
            let mut gh = vec![0f32; d];
            for r in r0..r1 {
                let (xr, gr) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
                let (m, s) = (mean[r], rstd[r]);
                let (mut sum_g, mut sum_gx) = (0f64, 0f64);
                for j in 0..d {
                    let xh = (xr[j] - m) * s;
                    let gj = match &w {
                        Some(w) => gr[j] * w[j],
                        None => gr[j],
                    };
                    gh[j] = gj;
                    sum_g += gj as f64;
                    sum_gx += (gj * xh) as f64;
                    if want_wb {
                        dw[j] += (gr[j] * xh) as f64;
                        db[j] += gr[j] as f64;
                    }
                }
                let (mg, mgx) = ((sum_g / d as f64) as f32, (sum_gx / d as f64) as f32);
                let out = &mut dxs[(r - r0) * d..(r - r0 + 1) * d];
                for j in 0..d {
                    let xh = (xr[j] - m) * s;
                    out[j] = s * (gh[j] - mg - xh * mgx);
                }
            }
            (dw, db)
        });
        let dev = Device::Cpu;
        let mut grads = vec![Some(Tensor::from_vec(dx, inputs[0].dims(), &dev)?)];
        let total = |pick: fn(&Partial) -> &Vec<f64>| -> Vec<f32> {
            let mut acc = vec![0f64; d];
            for p in &partial {
                for (a, v) in acc.iter_mut().zip(pick(p)) {
                    *a += v;
                }
            }
            acc.into_iter().map(|v| v as f32).collect()
        };
        if self.affine.0 {
            grads.push(Some(Tensor::from_vec(
                total(|p| &p.0),
                inputs[1].dims(),
                &dev,
            )?));
        }
        if self.affine.1 {
            let i = 1 + self.affine.0 as usize;
            grads.push(Some(Tensor::from_vec(
                total(|p| &p.1),
                inputs[i].dims(),
                &dev,
            )?));
        }
        Ok(grads)
    }
}

impl LayerNorm {
    /// The backward under `create_graph`: the composed ops re-run and differentiated.
    fn composed_backward(&self, inputs: &[Tensor], grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let w = self.affine.0.then(|| &inputs[1]);
        let b = self.affine.1.then(|| &inputs[1 + self.affine.0 as usize]);
        let y = crate::composed::layer_norm(x, &self.shape, w, b, self.eps)?;
        mlfw_autograd::grad_with(&y, inputs, Some(grad), true)
    }
}

#[cfg(test)]
mod tests {
    use crate::fused::test_util::{max_diff, rand};

    /// The fused op against the composed ops: output and every gradient, with and without
    /// the affine parts, over one and two normalized dims, rows far from zero mean.
    #[test]
    fn fused_matches_composed() {
        for (shape, norm, affine) in [
            (vec![4, 9, 16], vec![16], (true, true)),
            (vec![3, 5, 6], vec![5, 6], (true, false)),
            (vec![70, 33], vec![33], (false, true)),
            (vec![2, 8], vec![8], (false, false)),
        ] {
            let x = rand(&shape, 1, 3.0);
            let w = affine.0.then(|| rand(&norm, 2, 1.0));
            let b = affine.1.then(|| rand(&norm, 3, 0.0));
            let g = rand(&shape, 4, 0.0).detach();
            let fused = super::layer_norm(&x, &norm, w.as_ref(), b.as_ref(), 1e-5).unwrap();
            let plain =
                crate::composed::layer_norm(&x, &norm, w.as_ref(), b.as_ref(), 1e-5).unwrap();
            assert!(max_diff(&fused, &plain) < 2e-5, "{shape:?} {norm:?}");
            let mut inputs = vec![x.clone()];
            inputs.extend(w.clone());
            inputs.extend(b.clone());
            let gf = mlfw_autograd::grad(&fused, &inputs, Some(&g)).unwrap();
            let gp = mlfw_autograd::grad(&plain, &inputs, Some(&g)).unwrap();
            for (i, (a, b)) in gf.iter().zip(&gp).enumerate() {
                let d = max_diff(a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!(d < 5e-5, "grad {i} of {shape:?} {norm:?}: {d}");
            }
            // Second order goes through the composed ops.
            let g2 = mlfw_autograd::grad_with(&fused, &inputs, Some(&g), true).unwrap();
            let h = g2[0].as_ref().unwrap().square().unwrap().sum_all().unwrap();
            assert!(mlfw_autograd::grad(&h, std::slice::from_ref(&x), None).unwrap()[0].is_some());
        }
    }
}
