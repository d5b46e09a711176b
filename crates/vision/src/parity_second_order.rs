//! Second-order checks against PyTorch: the Hessian-vector product of a zoo model's
//! cross-entropy loss, a WGAN-GP style gradient penalty and its parameter gradients, and
//! the `Σx²` example, read from a `higher_order.safetensors` file (format in
//! `tests/fixtures/README.md`).

use crate::parity::max_rel_error;
use crate::registry::{build_model, ModelConfig};
use mlfw_autograd::{grad, grad_with};
use mlfw_core::safetensors::SafeTensorsFile;
use mlfw_core::{Error, Result, Tensor};
use mlfw_nn::Module;
use std::collections::HashMap;

/// One compared tensor: its name, the fixtures' error measure, and whether it is within
/// the tolerance.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub max_rel_err: f64,
    pub passed: bool,
}

/// `Σ_k ⟨a_k, b_k⟩` over paired tensors.
fn dot(a: &[Tensor], b: &[Tensor]) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for (x, y) in a.iter().zip(b) {
        let d = x.mul(y)?.sum_all()?;
        acc = Some(match acc {
            Some(s) => s.add(&d)?,
            None => d,
        });
    }
    acc.ok_or_else(|| Error::msg("higher-order parity: the model has no parameters"))
}

/// Builds the file's model (metadata `model`) with the file's `param.<key>` weights.
fn load_model(f: &SafeTensorsFile) -> Result<Box<dyn Module>> {
    let name = f
        .metadata
        .get("model")
        .ok_or_else(|| Error::msg("higher-order parity: the file's metadata names no `model`"))?;
    let input = f.require("input")?;
    let c = input.dims().get(1).copied().unwrap_or(1);
    // The class count is the output size of the last parameter in state-dict order.
    let (probe, _) = build_model(name, &ModelConfig::new(10).in_channels(c))?;
    let last = probe
        .named_parameters()
        .last()
        .map(|(k, _)| k.clone())
        .ok_or_else(|| Error::msg(format!("model `{name}` has no parameters")))?;
    let k = f.require(&format!("param.{last}"))?.dims()[0];
    let (model, _) = build_model(name, &ModelConfig::new(k).in_channels(c))?;
    let sd: HashMap<String, Tensor> = f
        .tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix("param.").map(|k| (k.to_string(), t.clone())))
        .collect();
    model.load_state_dict(&sd, true)?;
    Ok(model)
}

/// Runs every case of a `higher_order.safetensors` file; `tol` is the relative tolerance.
///
/// # Errors
/// A missing tensor or metadata entry (named), an unknown model, shapes that do not
/// match the model.
pub fn run_file(f: &SafeTensorsFile, tol: f64) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    let mut check = |name: String, got: &Tensor, want: &Tensor| -> Result<()> {
        let e = max_rel_error(got, want).map_err(|e| e.context(name.clone()))?;
        out.push(CaseResult {
            name,
            max_rel_err: e,
            passed: e <= tol,
        });
        Ok(())
    };
    let model = load_model(f)?;
    let named = model.named_parameters();
    let params: Vec<Tensor> = named.iter().map(|(_, t)| t.clone()).collect();
    let (input, target) = (f.require("input")?, f.require("target")?);

    // Hessian-vector product of the mean cross-entropy.
    let loss = mlfw_nn::functional::cross_entropy(&model.forward(input)?, target)?;
    let g1 = grad_with(&loss, &params, None, true)?;
    let g1: Vec<Tensor> = g1
        .into_iter()
        .zip(&params)
        .map(|(g, p)| g.map_or_else(|| p.zeros_like(), Ok))
        .collect::<Result<_>>()?;
    let v: Vec<Tensor> = named
        .iter()
        .map(|(k, _)| f.require(&format!("v.{k}")).cloned())
        .collect::<Result<_>>()?;
    let hvp = grad(&dot(&g1, &v)?, &params, None)?;
    for ((k, p), h) in named.iter().zip(hvp) {
        let h = h.map_or_else(|| p.zeros_like(), Ok)?;
        check(format!("hvp.{k}"), &h, f.require(&format!("hvp.{k}"))?)?;
    }

    // Gradient penalty: mean over samples of (‖∂Σlogits/∂input_i‖ − 1)².
    let x = input.detach().requires_grad_(true)?;
    let s = model.forward(&x)?.sum_all()?;
    let gx = grad_with(&s, std::slice::from_ref(&x), None, true)?[0]
        .clone()
        .ok_or_else(|| Error::msg("gradient penalty: the logits do not depend on the input"))?;
    let n = gx.dims()[0];
    let norms = gx
        .reshape([n, gx.elem_count() / n])?
        .square()?
        .sum(&[1], false)?
        .sqrt()?;
    let gp = norms.sub_scalar(1.0)?.square()?.mean_all()?;
    check(
        "gp".into(),
        &gp.reshape(f.require("gp")?.shape().clone())?,
        f.require("gp")?,
    )?;
    let gpg = grad(&gp, &params, None)?;
    for ((k, p), g) in named.iter().zip(gpg) {
        let g = g.map_or_else(|| p.zeros_like(), Ok)?;
        check(
            format!("gp_grad.{k}"),
            &g,
            f.require(&format!("gp_grad.{k}"))?,
        )?;
    }

    // d(Σx²)/dx and its own gradient.
    let x = f.require("x2_input")?.detach().requires_grad_(true)?;
    let y = x.square()?.sum_all()?;
    let g = grad_with(&y, std::slice::from_ref(&x), None, true)?[0]
        .clone()
        .ok_or_else(|| Error::msg("x2: no gradient"))?;
    check("x2_grad".into(), &g, f.require("x2_grad")?)?;
    let g2 = grad(&g.sum_all()?, &[x], None)?[0]
        .clone()
        .ok_or_else(|| Error::msg("x2: no second gradient"))?;
    check("x2_grad2".into(), &g2, f.require("x2_grad2")?)?;
    Ok(out)
}
