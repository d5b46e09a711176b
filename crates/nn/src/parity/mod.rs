//! Runs PyTorch reference cases (the `tests/fixtures/torch-ref/ops.safetensors` format) and
//! reports how far mlfw's outputs and gradients are from PyTorch's.
//!
//! For each case `NAME` (metadata entry `NAME` = JSON with `op`, its parameters, `inputs` and
//! `grads`), the inputs `NAME.in<i>` are moved to the device (those listed in `grads` require
//! grad), the op runs forward, `sum(out * NAME.gout)` runs backward, and `out` and each
//! `grad<i>` are compared on the host with [`rel_err`] ≤ [`TOLERANCE`]: special values exactly
//! (NaN where PyTorch has NaN, the same infinity), `max|a − b| / (max|b| + 1e-6)` elsewhere.
//! Batch-norm cases also compare the running statistics after a training call. The ops a
//! case may name are listed in `parity/ops.rs`.

mod ops;

use mlfw_autograd::Backward;
use mlfw_core::safetensors::{self, SafeTensorsFile};
use mlfw_core::{Device, Error, Result, Tensor};
use serde_json::Value;
use std::path::Path;

/// Largest accepted relative error per tensor.
pub const TOLERANCE: f64 = 1e-4;

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Op name from the metadata.
    pub op: String,
    /// Relative error of the output.
    pub out_err: f64,
    /// Relative error of each compared gradient, by input index.
    pub grad_errs: Vec<(usize, f64)>,
    /// Other compared tensors (e.g. `running_mean`), by name.
    pub extra_errs: Vec<(String, f64)>,
    /// True when every error is within [`TOLERANCE`] and nothing failed.
    pub passed: bool,
    /// Why the case could not run (unknown op, shape mismatch, kernel error).
    pub error: Option<String>,
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<24}", self.name)?;
        if let Some(e) = &self.error {
            return write!(f, "  FAIL ({e})");
        }
        write!(f, "  out={:.1e}", self.out_err)?;
        for (i, e) in &self.grad_errs {
            write!(f, " grad{i}={e:.1e}")?;
        }
        for (n, e) in &self.extra_errs {
            write!(f, " {n}={e:.1e}")?;
        }
        f.write_str(if self.passed { " PASS" } else { " FAIL" })
    }
}

/// Error of `a` against the reference `b`, both copied to the host as f64: `max|a − b| /
/// (max|b| + 1e-6)` over the elements where `b` is finite (the max over finite `|b|`), and
/// infinite when a special value differs: a NaN where `b` has none or none where it has one,
/// another infinity than `b`'s, or a non-finite `a` where `b` is finite. Errors on a shape
/// mismatch.
///
/// # Errors
/// `Error::Msg` when the shapes differ.
pub fn rel_err(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(Error::msg(format!(
            "shape {} differs from the reference {}",
            a.shape(),
            b.shape()
        )));
    }
    let (av, bv) = (a.to_f64_vec()?, b.to_f64_vec()?);
    let mut num = 0.0f64;
    for (&x, &y) in av.iter().zip(&bv) {
        let d = if y.is_nan() {
            if x.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else if y.is_infinite() {
            if x == y {
                0.0
            } else {
                f64::INFINITY
            }
        } else if x.is_finite() {
            (x - y).abs()
        } else {
            f64::INFINITY
        };
        num = num.max(d);
    }
    let den = bv
        .iter()
        .filter(|y| y.is_finite())
        .fold(0.0f64, |m, y| m.max(y.abs()));
    Ok(num / (den + 1e-6))
}

/// One line per failed case (its [`CaseResult`] display), for test messages.
pub fn failures(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.to_string())
        .collect()
}

/// Runs every case of the file at `path` on `device`.
///
/// # Errors
/// `Error::File` when `path` is missing or not safetensors; then as [`run`].
pub fn run_file(path: &Path, device: &Device) -> Result<Vec<CaseResult>> {
    let file = safetensors::load(path, &Device::Cpu)?;
    run(&file, device)
}

/// Runs every case of a loaded fixture file on `device`, sorted by name.
///
/// # Errors
/// None of its own: a case that cannot run (unknown op, missing tensor, kernel error) is
/// reported in its [`CaseResult`]'s `error`, not as an `Err`.
pub fn run(file: &SafeTensorsFile, device: &Device) -> Result<Vec<CaseResult>> {
    let mut cases: Vec<(String, Value)> = file
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let j: Value = serde_json::from_str(v).ok()?;
            j.get("op")?;
            Some((k.clone(), j))
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(cases
        .into_iter()
        .map(|(name, meta)| run_case(file, &name, &meta, device))
        .collect())
}

fn run_case(file: &SafeTensorsFile, name: &str, meta: &Value, device: &Device) -> CaseResult {
    let op = meta["op"].as_str().unwrap_or("?").to_string();
    let mut r = CaseResult {
        name: name.to_string(),
        op: op.clone(),
        out_err: f64::NAN,
        grad_errs: vec![],
        extra_errs: vec![],
        passed: false,
        error: None,
    };
    match case_errors(file, name, &op, meta, device, &mut r) {
        Ok(()) => {
            let errs = std::iter::once(r.out_err)
                .chain(r.grad_errs.iter().map(|e| e.1))
                .chain(r.extra_errs.iter().map(|e| e.1));
            r.passed = errs.into_iter().all(|e| e <= TOLERANCE);
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r
}

fn case_errors(
    file: &SafeTensorsFile,
    name: &str,
    op: &str,
    meta: &Value,
    device: &Device,
    r: &mut CaseResult,
) -> Result<()> {
    let n_in = meta["inputs"].as_u64().unwrap_or(0) as usize;
    let grads: Vec<usize> = meta["grads"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as usize)
                .collect()
        })
        .unwrap_or_default();
    let get = |s: &str| file.require(&format!("{name}.{s}"));
    let mut inputs = Vec::with_capacity(n_in);
    for i in 0..n_in {
        let t = get(&format!("in{i}"))?.to_device(device)?.detach();
        if grads.contains(&i) {
            t.set_requires_grad(true)?;
        }
        inputs.push(t);
    }
    let mut extra = vec![];
    let out = ops::forward(file, name, op, meta, &inputs, device, &mut extra)?;
    r.out_err = rel_err(&out.to_device(&Device::Cpu)?, get("out")?)?;
    let gout = get("gout")?.to_device(device)?;
    out.mul(&gout)?.sum_all()?.backward()?;
    for &i in &grads {
        let g = inputs
            .get(i)
            .and_then(|t| t.grad())
            .ok_or_else(|| Error::msg(format!("input {i} received no gradient")))?;
        r.grad_errs.push((
            i,
            rel_err(&g.to_device(&Device::Cpu)?, get(&format!("grad{i}"))?)?,
        ));
    }
    for (n, t) in extra {
        r.extra_errs.push((
            n.clone(),
            rel_err(&t.to_device(&Device::Cpu)?, get(&format!("{n}_after"))?)?,
        ));
    }
    Ok(())
}
