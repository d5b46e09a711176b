//! Runs PyTorch reference cases (the `tests/fixtures/torch-ref/ops.safetensors` format) and
//! reports how far mlfw's outputs and gradients are from PyTorch's.
//!
//! For each case `NAME` (metadata entry `NAME` = JSON with `op`, its parameters, `inputs` and
//! `grads`), the inputs `NAME.in<i>` are moved to the device (those listed in `grads` require
//! grad), the op runs forward, `sum(out * NAME.gout)` runs backward, and `out` and each
//! `grad<i>` are compared on the host with `max|a − b| / (max|b| + 1e-6)` ≤ [`TOLERANCE`].
//! Batch-norm cases also compare the running statistics after a training call.

use crate::functional::{self as F, CrossEntropyOptions, Reduction, RunningStats};
use mlfw_autograd::Backward;
use mlfw_core::safetensors::{self, SafeTensorsFile};
use mlfw_core::{Conv2dParams, Device, Error, Pool2dParams, Result, Tensor};
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

/// `max|a − b| / (max|b| + 1e-6)`, both copied to the host as f64; errors on shape mismatch.
pub fn rel_err(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() != b.dims() {
        return Err(Error::msg(format!(
            "shape {} differs from the reference {}",
            a.shape(),
            b.shape()
        )));
    }
    let (av, bv) = (a.to_f64_vec()?, b.to_f64_vec()?);
    let num = av
        .iter()
        .zip(&bv)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m: f64, d| if d.is_nan() { f64::NAN } else { m.max(d) },
        );
    let den = bv.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    Ok(num / (den + 1e-6))
}

/// Runs every case of the file at `path` on `device`.
pub fn run_file(path: &Path, device: &Device) -> Result<Vec<CaseResult>> {
    let file = safetensors::load(path, &Device::Cpu)?;
    run(&file, device)
}

/// Runs every case of a loaded fixture file on `device`, sorted by name.
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
    let out = forward(file, name, op, meta, &inputs, device, &mut extra)?;
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

fn usize_of(v: &Value, key: &str) -> Result<usize> {
    v[key]
        .as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| Error::msg(format!("parameter `{key}` missing or not an integer")))
}

fn isize_of(v: &Value, key: &str) -> Result<isize> {
    v[key]
        .as_i64()
        .map(|x| x as isize)
        .ok_or_else(|| Error::msg(format!("parameter `{key}` missing or not an integer")))
}

/// An int or a 2-list parameter as a pair (`default` when absent).
fn pair_of(v: &Value, key: &str, default: usize) -> Result<(usize, usize)> {
    match &v[key] {
        Value::Null => Ok((default, default)),
        Value::Number(n) => {
            let x = n
                .as_u64()
                .ok_or_else(|| Error::msg(format!("bad `{key}`")))? as usize;
            Ok((x, x))
        }
        Value::Array(a) if a.len() == 2 => {
            let f = |i: usize| a[i].as_u64().map(|x| x as usize);
            match (f(0), f(1)) {
                (Some(x), Some(y)) => Ok((x, y)),
                _ => Err(Error::msg(format!("bad `{key}`"))),
            }
        }
        _ => Err(Error::msg(format!("bad `{key}`"))),
    }
}

fn ilist(v: &Value, key: &str) -> Option<Vec<isize>> {
    v[key].as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_i64())
            .map(|x| x as isize)
            .collect()
    })
}

fn reduction(v: &Value) -> Result<Reduction> {
    match v["reduction"].as_str().unwrap_or("mean") {
        "mean" => Ok(Reduction::Mean),
        "sum" => Ok(Reduction::Sum),
        "none" => Ok(Reduction::None),
        o => Err(Error::msg(format!("unknown reduction `{o}`"))),
    }
}

fn forward(
    file: &SafeTensorsFile,
    name: &str,
    op: &str,
    m: &Value,
    x: &[Tensor],
    device: &Device,
    extra: &mut Vec<(String, Tensor)>,
) -> Result<Tensor> {
    let need = |n: usize| -> Result<()> {
        if x.len() < n {
            return Err(Error::msg(format!(
                "op {op} needs {n} inputs, got {}",
                x.len()
            )));
        }
        Ok(())
    };
    need(1)?;
    let a = &x[0];
    let target =
        || -> Result<Tensor> { file.require(&format!("{name}.target"))?.to_device(device) };
    let dims = || ilist(m, "dims").unwrap_or_default();
    let keep = m["keepdim"].as_bool().unwrap_or(false);
    Ok(match op {
        "add" | "sub" | "mul" | "div" | "maximum" | "matmul" | "mse_loss" | "bce_with_logits" => {
            need(2)?;
            let b = &x[1];
            match op {
                "add" => a.add(b)?,
                "sub" => a.sub(b)?,
                "mul" => a.mul(b)?,
                "div" => a.div(b)?,
                "maximum" => a.gt(b)?.where_cond(a, b)?,
                "matmul" => a.matmul(b)?,
                "mse_loss" => F::mse_loss(a, b, reduction(m)?)?,
                _ => F::binary_cross_entropy_with_logits(a, b, None, None, reduction(m)?)?,
            }
        }
        "exp" => a.exp()?,
        "log" => a.log()?,
        "tanh" => a.tanh()?,
        "sigmoid" => a.sigmoid()?,
        "relu" => a.relu()?,
        "sqrt" => a.sqrt()?,
        "neg" => a.neg()?,
        "abs" => a.abs()?,
        "sin" => a.sin()?,
        "cos" => a.cos()?,
        "gelu" => match m["approximate"].as_str().unwrap_or("none") {
            "tanh" => a.gelu_tanh()?,
            _ => a.gelu()?,
        },
        "leaky_relu" => a.leaky_relu(m["negative_slope"].as_f64().unwrap_or(0.01))?,
        "pow" => a.powf(
            m["exponent"]
                .as_f64()
                .ok_or_else(|| Error::msg("pow: missing `exponent`"))?,
        )?,
        "sum" => a.sum(&dims(), keep)?,
        "mean" => a.mean(&dims(), keep)?,
        "max" => a.max(&dims(), keep)?,
        "var" => a.var(&dims(), m["unbiased"].as_bool().unwrap_or(true), keep)?,
        "softmax" => a.softmax(isize_of(m, "dim")?)?,
        "log_softmax" => a.log_softmax(isize_of(m, "dim")?)?,
        "transpose_reshape" => {
            let shape: Vec<usize> = ilist(m, "shape")
                .ok_or_else(|| Error::msg("transpose_reshape: missing `shape`"))?
                .into_iter()
                .map(|d| d as usize)
                .collect();
            a.transpose(isize_of(m, "dim0")?, isize_of(m, "dim1")?)?
                .reshape(shape)?
        }
        "permute" => {
            let p: Vec<usize> = dims().into_iter().map(|d| d as usize).collect();
            a.permute(&p)?
        }
        "narrow" => a.narrow(
            isize_of(m, "dim")?,
            usize_of(m, "start")?,
            usize_of(m, "length")?,
        )?,
        "cat" => Tensor::cat(x, isize_of(m, "dim")?)?,
        "stack" => Tensor::stack(x, isize_of(m, "dim")?)?,
        "linear" => {
            need(2)?;
            F::linear(a, &x[1], x.get(2))?
        }
        "conv2d" => {
            need(2)?;
            let p = Conv2dParams {
                stride: pair_of(m, "stride", 1)?,
                padding: pair_of(m, "padding", 0)?,
                dilation: pair_of(m, "dilation", 1)?,
                groups: m["groups"].as_u64().unwrap_or(1) as usize,
            };
            a.conv2d(&x[1], x.get(2), p)?
        }
        "max_pool2d" | "avg_pool2d" => {
            let k = pair_of(m, "kernel", 1)?;
            let mut p = Pool2dParams::new(1);
            p.kernel = k;
            p.stride = if m["stride"].is_null() {
                k
            } else {
                pair_of(m, "stride", 1)?
            };
            p.padding = pair_of(m, "padding", 0)?;
            p.ceil_mode = m["ceil_mode"].as_bool().unwrap_or(false);
            if op == "max_pool2d" {
                a.max_pool2d(p)?
            } else {
                a.avg_pool2d(p)?
            }
        }
        "adaptive_avg_pool2d" => a.adaptive_avg_pool2d(pair_of(m, "output", 1)?)?,
        "batch_norm" => {
            need(3)?;
            let eps = m["eps"].as_f64().unwrap_or(1e-5);
            let c = a.dims().get(1).copied().unwrap_or(0);
            if m["training"].as_bool().unwrap_or(true) {
                let rm = Tensor::zeros([c], a.dtype(), device)?;
                let rv = Tensor::ones([c], a.dtype(), device)?;
                let stats = RunningStats {
                    mean: &rm,
                    var: &rv,
                    num_batches_tracked: None,
                    momentum: Some(m["momentum"].as_f64().unwrap_or(0.1)),
                };
                let y = F::batch_norm(a, Some(stats), Some(&x[1]), Some(&x[2]), true, eps)?;
                extra.push(("running_mean".into(), rm));
                extra.push(("running_var".into(), rv));
                y
            } else {
                let rm = file
                    .require(&format!("{name}.running_mean"))?
                    .to_device(device)?;
                let rv = file
                    .require(&format!("{name}.running_var"))?
                    .to_device(device)?;
                let stats = RunningStats {
                    mean: &rm,
                    var: &rv,
                    num_batches_tracked: None,
                    momentum: None,
                };
                F::batch_norm(a, Some(stats), Some(&x[1]), Some(&x[2]), false, eps)?
            }
        }
        "layer_norm" => {
            let shape: Vec<usize> = ilist(m, "normalized_shape")
                .ok_or_else(|| Error::msg("layer_norm: missing `normalized_shape`"))?
                .into_iter()
                .map(|d| d as usize)
                .collect();
            F::layer_norm(
                a,
                &shape,
                x.get(1),
                x.get(2),
                m["eps"].as_f64().unwrap_or(1e-5),
            )?
        }
        "cross_entropy" | "nll_loss" => {
            let o = CrossEntropyOptions {
                weight: None,
                ignore_index: m["ignore_index"].as_i64().unwrap_or(-100),
                reduction: reduction(m)?,
                label_smoothing: m["label_smoothing"].as_f64().unwrap_or(0.0),
            };
            if op == "nll_loss" {
                F::nll_loss_with(a, &target()?, &o)?
            } else {
                F::cross_entropy_with(a, &target()?, &o)?
            }
        }
        _ => return Err(Error::msg(format!("unknown op `{op}`"))),
    })
}
