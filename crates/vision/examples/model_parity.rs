//! Checks a zoo model against logits PyTorch computed.
//!
//! ```text
//! cargo run --release -p mlfw-vision --example model_parity -- \
//!     --model resnet18 --formula-phase 0.0 --io tests/fixtures/torchvision/resnet18_formula_io.safetensors
//! cargo run --release -p mlfw-vision --example model_parity -- \
//!     --model resnet18 --weights W.safetensors --io FILE [--tol 1e-4]
//! ```
//! The io file holds `input` and `logits` (or `logits_f64`, preferred). With
//! `--formula-phase P` the weights are set by the fixtures' formula at phase P (keys numbered
//! in state-dict order, which is torchvision's); with `--weights` they are loaded from a file.
//! Prints the max relative error and PASS/FAIL; exits non-zero on failure.

use mlfw_core::{safetensors, Device, Error, Result};
use mlfw_vision::parity::{self, max_rel_error};
use mlfw_vision::predict::load_weights;
use mlfw_vision::registry::{build_model, ModelConfig};

struct Args {
    model: String,
    phase: Option<f64>,
    weights: Option<String>,
    io: String,
    tol: f64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        model: "resnet18".into(),
        phase: None,
        weights: None,
        io: String::new(),
        tol: 1e-4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| Error::msg(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--model" => a.model = val()?,
            "--formula-phase" => {
                let v = val()?;
                a.phase = Some(
                    v.parse()
                        .map_err(|_| Error::msg(format!("bad phase `{v}`")))?,
                )
            }
            "--weights" => a.weights = Some(val()?),
            "--io" => a.io = val()?,
            "--tol" => {
                let v = val()?;
                a.tol = v
                    .parse()
                    .map_err(|_| Error::msg(format!("bad tolerance `{v}`")))?
            }
            other => return Err(Error::msg(format!("unknown argument `{other}`"))),
        }
    }
    if a.io.is_empty() || a.phase.is_some() == a.weights.is_some() {
        return Err(Error::msg(
            "usage: model_parity --model NAME (--formula-phase P | --weights W) --io FILE [--tol T]",
        ));
    }
    Ok(a)
}

fn run() -> Result<bool> {
    let a = parse()?;
    let _g = mlfw_autograd::no_grad();
    let io = safetensors::load(&a.io, &Device::Cpu)?;
    let want = io
        .get("logits_f64")
        .or(io.get("logits"))
        .ok_or_else(|| Error::msg(format!("{}: no `logits` or `logits_f64` tensor", a.io)))?;
    let input = io.require("input")?;
    let num_classes = *want.dims().last().unwrap_or(&0);
    let cfg = ModelConfig::new(num_classes).in_channels(input.dims().get(1).copied().unwrap_or(3));
    let (mut model, info) = build_model(&a.model, &cfg)?;
    match (a.phase, &a.weights) {
        (Some(p), _) => {
            if let Some(fp) = io.metadata.get("phase") {
                if fp.parse::<f64>().ok() != Some(p) {
                    println!(
                        "note: {} was computed with phase {fp}, checking phase {p}",
                        a.io
                    );
                }
            }
            parity::set_formula_weights(model.as_ref(), p)?
        }
        (None, Some(w)) => load_weights(model.as_ref(), &info, w)?,
        (None, None) => unreachable!("checked in parse"),
    }
    model.eval();
    let got = model.forward(input)?;
    let err = max_rel_error(&got, want)?;
    let ok = err <= a.tol;
    println!(
        "{}: input {} → logits {}; max relative error {err:.3e} (tolerance {:.0e}): {}",
        info.name,
        input.shape(),
        got.shape(),
        a.tol,
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
