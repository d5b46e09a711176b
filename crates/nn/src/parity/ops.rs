//! The ops a fixture case may name (metadata `op`), run forward from the case's inputs and
//! parameters: those of `ops.safetensors` (see tests/fixtures/README.md) and of
//! `special.safetensors`: `amax`/`amin` (over `dims`, ties share the gradient), `max`/`min`
//! over one dim (torch.max(x, dim).values: the gradient goes to the returned index; over
//! several or all dims they are `amax`/`amin`), `std`, `norm` (L2), `pow_tensor`, `clamp`,
//! `hardtanh`, `relu6`, `sign`, `minimum`, `logsumexp`, `embedding`, `binary_cross_entropy`.

use crate::functional::{self as F, CrossEntropyOptions, Reduction, RunningStats};
use mlfw_core::safetensors::SafeTensorsFile;
use mlfw_core::{Conv2dParams, Device, Error, Pool2dParams, Result, Tensor};
use serde_json::Value;

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

/// A required list of sizes.
fn ulist(v: &Value, key: &str, op: &str) -> Result<Vec<usize>> {
    Ok(ilist(v, key)
        .ok_or_else(|| Error::msg(format!("{op}: missing `{key}`")))?
        .into_iter()
        .map(|d| d as usize)
        .collect())
}

fn reduction(v: &Value) -> Result<Reduction> {
    match v["reduction"].as_str().unwrap_or("mean") {
        "mean" => Ok(Reduction::Mean),
        "sum" => Ok(Reduction::Sum),
        "none" => Ok(Reduction::None),
        o => Err(Error::msg(format!("unknown reduction `{o}`"))),
    }
}

pub(super) fn forward(
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
    // `dims` (a list; null = all), or a single `dim` as torch.max(x, dim) is written.
    let dims = || {
        ilist(m, "dims")
            .or_else(|| m["dim"].as_i64().map(|d| vec![d as isize]))
            .unwrap_or_default()
    };
    let keep = m["keepdim"].as_bool().unwrap_or(false);
    Ok(match op {
        "add"
        | "sub"
        | "mul"
        | "div"
        | "maximum"
        | "minimum"
        | "matmul"
        | "mse_loss"
        | "bce_with_logits"
        | "binary_cross_entropy"
        | "pow_tensor" => {
            need(2)?;
            let b = &x[1];
            match op {
                "add" => a.add(b)?,
                "sub" => a.sub(b)?,
                "mul" => a.mul(b)?,
                "div" => a.div(b)?,
                // ops.safetensors writes maximum as where(x > y, x, y); with `elementwise`
                // true it is torch.maximum (NaN-propagating, ties split the gradient).
                "maximum" if m["elementwise"].as_bool().unwrap_or(false) => a.maximum(b)?,
                "maximum" => a.gt(b)?.where_cond(a, b)?,
                "minimum" => a.minimum(b)?,
                "matmul" => a.matmul(b)?,
                "pow_tensor" => a.pow(b)?,
                "mse_loss" => F::mse_loss(a, b, reduction(m)?)?,
                // An optional third input is the elementwise weight.
                "binary_cross_entropy" => F::binary_cross_entropy(a, b, x.get(2), reduction(m)?)?,
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
        "sign" => a.sign()?,
        "clamp" | "hardtanh" => {
            let (lo_key, hi_key, lo0, hi0) = match op {
                "clamp" => ("min", "max", f64::NEG_INFINITY, f64::INFINITY),
                _ => ("min_val", "max_val", -1.0, 1.0),
            };
            a.clamp(
                m[lo_key].as_f64().unwrap_or(lo0),
                m[hi_key].as_f64().unwrap_or(hi0),
            )?
        }
        "relu6" => a.clamp(0.0, 6.0)?,
        "sum" => a.sum(&dims(), keep)?,
        "mean" => a.mean(&dims(), keep)?,
        "amax" => a.max(&dims(), keep)?,
        "amin" => a.min(&dims(), keep)?,
        // torch.max(x, dim).values: the gradient goes to the returned index.
        "max" | "min" if dims().len() == 1 => {
            let d = dims()[0];
            match op {
                "max" => a.max_dim(d, keep)?.0,
                _ => a.min_dim(d, keep)?.0,
            }
        }
        "max" => a.max(&dims(), keep)?,
        "min" => a.min(&dims(), keep)?,
        "var" => a.var(&dims(), m["unbiased"].as_bool().unwrap_or(true), keep)?,
        "std" => a.std(&dims(), m["unbiased"].as_bool().unwrap_or(true), keep)?,
        "norm" => match m["p"].as_f64().or(m["ord"].as_f64()).unwrap_or(2.0) {
            2.0 => a.norm(&dims(), keep)?,
            p => {
                return Err(Error::msg(format!(
                    "norm: only p = 2 is supported, got {p}"
                )))
            }
        },
        "logsumexp" => a.logsumexp(&dims(), keep)?,
        "embedding" => {
            let ids = file
                .require(&format!("{name}.indices"))?
                .to_device(device)?;
            // PyTorch counts a negative padding_idx from the end of the table.
            let rows = a.dims().first().copied().unwrap_or(0) as i64;
            let pad = match m["padding_idx"].as_i64() {
                Some(p) if p < 0 && p + rows >= 0 => Some((p + rows) as usize),
                Some(p) if p >= 0 => Some(p as usize),
                Some(p) => {
                    return Err(Error::msg(format!(
                        "embedding: padding_idx {p} out of range for {rows} rows"
                    )))
                }
                None => None,
            };
            F::embedding(a, &ids, pad)?
        }
        "softmax" => a.softmax(isize_of(m, "dim")?)?,
        "log_softmax" => a.log_softmax(isize_of(m, "dim")?)?,
        "transpose_reshape" => {
            let shape = ulist(m, "shape", op)?;
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
            let shape = ulist(m, "normalized_shape", op)?;
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
