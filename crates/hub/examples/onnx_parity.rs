//! Runs an ONNX model on mlfw and compares its outputs with a reference.
//!
//! `cargo run --release --example onnx_parity -- MODEL.onnx MODEL_io.safetensors`
//!
//! The safetensors file holds the model's inputs under their ONNX input names (or one
//! tensor `input`) and the expected outputs under the output names (or `output`). Prints
//! the largest relative error per output (`|a − b| / max(|b|, 1e-6)` over the largest
//! `|b|`-scaled difference) and PASS or FAIL (tolerance 1e-4 relative), and exits non-zero
//! on a failure.

use mlfw_core::{Device, Tensor};
use mlfw_hub::onnx::OnnxModel;

const TOL: f64 = 1e-4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, io] = args.as_slice() else {
        eprintln!("usage: onnx_parity MODEL.onnx MODEL_io.safetensors");
        std::process::exit(2);
    };
    match run(model, io) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

fn run(model: &str, io: &str) -> mlfw_core::Result<bool> {
    let dev = Device::Cpu;
    let m = OnnxModel::load(model, &dev)?;
    let io = mlfw_core::safetensors::load(io, &dev)?;
    let single = m.inputs().len() == 1;
    let pick = |name: &str, fallback: &str, alone: bool| -> mlfw_core::Result<Tensor> {
        match io.get(name) {
            Some(t) => Ok(t.clone()),
            None if alone => io.require(fallback).cloned(),
            None => io.require(name).cloned(),
        }
    };
    let inputs = m
        .inputs()
        .iter()
        .map(|s| pick(&s.name, "input", single)?.to_dtype(s.dtype))
        .collect::<mlfw_core::Result<Vec<_>>>()?;
    let outs = m.run(&inputs)?;
    let mut ok = true;
    for (spec, got) in m.outputs().iter().zip(&outs) {
        let want = pick(&spec.name, "output", m.outputs().len() == 1)?;
        let (g, w) = (got.to_f64_vec()?, want.to_f64_vec()?);
        if got.dims() != want.dims() {
            println!(
                "{model} `{}`: shape {} where the reference has {} FAIL",
                spec.name,
                got.shape(),
                want.shape()
            );
            ok = false;
            continue;
        }
        let scale = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
        let max_abs = g
            .iter()
            .zip(&w)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        let rel = max_abs / scale;
        let pass = rel <= TOL && g.iter().all(|v| v.is_finite());
        ok &= pass;
        println!(
            "{model} `{}` {}: max abs error {max_abs:.3e}, relative {rel:.3e} (tolerance {TOL:.0e}) {}",
            spec.name,
            got.shape(),
            if pass { "PASS" } else { "FAIL" }
        );
    }
    Ok(ok)
}
