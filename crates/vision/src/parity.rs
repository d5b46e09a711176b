//! Checking models against PyTorch: deterministic "formula" weights (no weights file needed,
//! see `tests/fixtures/README.md`), key lists, and the relative error measure the fixtures use.

use mlfw_core::{Device, Error, Result, Tensor};
use mlfw_nn::Module;
use std::collections::HashMap;
use std::path::Path;

/// Reads a key list (`name [d0, d1, ...]` per line), as `torchvision/resnet18_keys.txt`.
///
/// # Errors
/// `Error::File` naming the file when it cannot be read or a line is not `name [d0, d1, ...]`.
pub fn read_keys_file(path: impl AsRef<Path>) -> Result<Vec<(String, Vec<usize>)>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        msg: format!("cannot read: {e}"),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || Error::File {
                path: path.display().to_string(),
                msg: format!(
                    "line {}: expected `name [d0, d1, ...]`, got `{line}`",
                    i + 1
                ),
            };
            let (name, shape) = line.trim().split_once(' ').ok_or_else(bad)?;
            let inner = shape
                .trim()
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'));
            let dims = inner
                .ok_or_else(bad)?
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|d| d.parse::<usize>().map_err(|_| bad()))
                .collect::<Result<Vec<_>>>()?;
            Ok((name.to_string(), dims))
        })
        .collect()
}

/// Element `j` of key number `p`: `s = sin(0.7·j + 1.3·p + φ)`, mapped by the key's role:
/// conv/linear weights `s/√fan_in`, biases and `running_mean` `0.1·s`, BatchNorm weights
/// `1 + 0.1·s`, `running_var` `1 + 0.5·|s|`.
fn formula_value(name: &str, shape: &[usize], p: usize, j: usize, phase: f64) -> f64 {
    let s = (0.7 * j as f64 + 1.3 * p as f64 + phase).sin();
    let numel: usize = shape.iter().product();
    if name.ends_with("running_var") {
        1.0 + 0.5 * s.abs()
    } else if name.ends_with("running_mean") || name.ends_with("bias") {
        0.1 * s
    } else if name.ends_with("weight") && shape.len() == 1 {
        1.0 + 0.1 * s
    } else {
        let fan_in = numel / shape.first().copied().unwrap_or(1).max(1);
        s / (fan_in.max(1) as f64).sqrt()
    }
}

/// The formula state dict for `keys` (in order; `p` is the index in this list) at `phase`,
/// as f32 tensors on the CPU. `num_batches_tracked` keys are skipped.
///
/// # Errors
/// Device errors only (out of memory).
pub fn formula_state_dict(
    keys: &[(String, Vec<usize>)],
    phase: f64,
) -> Result<HashMap<String, Tensor>> {
    keys.iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .enumerate()
        .map(|(p, (name, shape))| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|j| formula_value(name, shape, p, j, phase) as f32)
                .collect();
            Ok((
                name.clone(),
                Tensor::from_vec(v, shape.clone(), &Device::Cpu)?,
            ))
        })
        .collect()
}

/// The formula input `sin(0.01·j + φ)` of `shape`, f32.
///
/// # Errors
/// Device errors only (out of memory).
pub fn formula_input(shape: &[usize], phase: f64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|j| (0.01 * j as f64 + phase).sin() as f32)
        .collect();
    Tensor::from_vec(v, shape.to_vec(), &Device::Cpu)
}

/// The model's keys and shapes in state-dict order, without `num_batches_tracked`.
pub fn model_keys(m: &dyn Module) -> Vec<(String, Vec<usize>)> {
    m.state_dict()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect()
}

/// Sets the model's weights by the formula, numbering keys in the model's state-dict order.
///
/// # Errors
/// As [`mlfw_nn::Module::load_state_dict`] (none for the zoo's own models).
pub fn set_formula_weights(m: &dyn Module, phase: f64) -> Result<()> {
    let sd = formula_state_dict(&model_keys(m), phase)?;
    m.load_state_dict(&sd, false)?;
    Ok(())
}

/// `max |a − b| / (max |b| + 1e-6)`, the fixtures' tolerance measure. Errors on shape mismatch.
///
/// # Errors
/// `Error::ShapeMismatch` when `a` and `b` differ in shape.
pub fn max_rel_error(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.shape() != b.shape() {
        return Err(Error::ShapeMismatch {
            op: "max_rel_error",
            lhs: a.shape().clone(),
            rhs: b.shape().clone(),
        });
    }
    let (a, b) = (a.to_f64_vec()?, b.to_f64_vec()?);
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    Ok(diff / (scale + 1e-6))
}
