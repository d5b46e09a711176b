//! Numerical gradient checking in f64 with the five-point central difference
//! f'(x) ≈ (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h.
//!
//! The function's output is reduced to a scalar with a fixed random weighting `Σ wᵢ·outᵢ`
//! (one backward pass checks a random projection of the whole Jacobian, as PyTorch's
//! `fast_mode`); each input element is then perturbed in turn.

use crate::engine::grad;
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// Step and tolerances for [`gradcheck`].
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (w.r.t. the numerical value).
    pub rtol: f64,
    /// Seed of the output weighting.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-3,
            atol: 1e-6,
            rtol: 1e-4,
            seed: 0,
        }
    }
}

/// Agreement for one input.
#[derive(Debug, Clone)]
pub struct InputReport {
    /// Index of the input.
    pub index: usize,
    /// Largest |analytic − numerical|.
    pub max_abs_err: f64,
    /// Largest |analytic − numerical| / max(|numerical|, tiny).
    pub max_rel_err: f64,
    /// Flat index of the element with the largest tolerance violation (or abs error).
    pub worst: usize,
    /// Analytic value at `worst`.
    pub analytic: f64,
    /// Numerical value at `worst`.
    pub numerical: f64,
    /// Whether every element is within tolerance.
    pub passed: bool,
}

/// Result of [`gradcheck`].
#[derive(Debug, Clone)]
pub struct GradcheckReport {
    /// One entry per input that requires grad.
    pub inputs: Vec<InputReport>,
}

impl GradcheckReport {
    /// True when every checked input passed.
    pub fn passed(&self) -> bool {
        self.inputs.iter().all(|r| r.passed)
    }
}

impl std::fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.inputs {
            writeln!(
                f,
                "input {}: max abs err {:.3e}, max rel err {:.3e}, worst element {} (analytic {:.6e}, numerical {:.6e}) {}",
                r.index,
                r.max_abs_err,
                r.max_rel_err,
                r.worst,
                r.analytic,
                r.numerical,
                if r.passed { "PASS" } else { "FAIL" }
            )?;
        }
        Ok(())
    }
}

/// Compares the analytic gradients of `f` with numerical ones, in f64.
///
/// Inputs that require grad are checked (converted to f64 on their device); the others
/// are passed through unchanged. `f` must be deterministic.
///
/// # Errors
/// No input requires grad; `f` or its backward failing. A mismatch is not an error:
/// it is reported in the returned [`GradcheckReport`].
pub fn gradcheck<F>(f: F, inputs: &[Tensor], opts: GradcheckOptions) -> Result<GradcheckReport>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let checked: Vec<bool> = inputs.iter().map(|t| t.requires_grad()).collect();
    if !checked.iter().any(|&c| c) {
        return Err(Error::msg("gradcheck: no input requires grad"));
    }
    let xs: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            if t.requires_grad() {
                t.detach().to_dtype(DType::F64)?.requires_grad_(true)
            } else {
                Ok(t.clone())
            }
        })
        .collect::<Result<_>>()?;
    let out = f(&xs)?;
    let mut gen = Generator::new(opts.seed);
    let w = Tensor::rand_with(
        0.5,
        1.5,
        out.shape().clone(),
        out.dtype(),
        &out.device(),
        &mut gen,
    )?;
    let scalar = |ys: &Tensor, w: &Tensor| -> Result<f64> {
        ys.mul(w)?.sum_all()?.to_dtype(DType::F64)?.item::<f64>()
    };
    let wanted: Vec<Tensor> = xs
        .iter()
        .zip(&checked)
        .filter(|(_, &c)| c)
        .map(|(x, _)| x.clone())
        .collect();
    let s = out.mul(&w)?.sum_all()?;
    let analytic = grad(&s, &wanted, None)?;
    let _ng = crate::no_grad();
    let mut reports = Vec::new();
    let mut k = 0;
    for (i, x) in xs.iter().enumerate() {
        if !checked[i] {
            continue;
        }
        let a = match &analytic[k] {
            Some(g) => g.to_dtype(DType::F64)?.to_vec::<f64>()?,
            None => vec![0.0; x.elem_count()],
        };
        k += 1;
        let base = x.to_vec::<f64>()?;
        let dev: Device = x.device();
        let eval_at = |j: usize, delta: f64| -> Result<f64> {
            let mut v = base.clone();
            v[j] += delta;
            let mut args = xs.clone();
            args[i] = Tensor::from_vec(v, x.shape().clone(), &dev)?;
            scalar(&f(&args)?, &w)
        };
        let h = opts.eps;
        let mut rep = InputReport {
            index: i,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            worst: 0,
            analytic: 0.0,
            numerical: 0.0,
            passed: true,
        };
        let mut worst_excess = f64::NEG_INFINITY;
        for (j, &aj) in a.iter().enumerate() {
            let n = (-eval_at(j, 2.0 * h)? + 8.0 * eval_at(j, h)? - 8.0 * eval_at(j, -h)?
                + eval_at(j, -2.0 * h)?)
                / (12.0 * h);
            let abs = (aj - n).abs();
            let rel = abs / n.abs().max(1e-12);
            rep.max_abs_err = rep.max_abs_err.max(abs);
            rep.max_rel_err = rep.max_rel_err.max(rel);
            let excess = abs - (opts.atol + opts.rtol * n.abs());
            if excess > worst_excess {
                worst_excess = excess;
                rep.worst = j;
                rep.analytic = aj;
                rep.numerical = n;
            }
            if excess.is_nan() || excess > 0.0 {
                rep.passed = false;
            }
        }
        reports.push(rep);
    }
    Ok(GradcheckReport { inputs: reports })
}
