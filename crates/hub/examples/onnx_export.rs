//! Exports zoo models (random weights) to ONNX with a reference input and mlfw's output,
//! for checking the files with other runtimes (or `onnx_parity`).
//!
//! `cargo run --release --example onnx_export -- OUT_DIR [MODEL...]` writes
//! `OUT_DIR/MODEL.onnx` and `OUT_DIR/MODEL_io.safetensors` (`input`: a batch of 2, `output`).

use mlfw_core::{DType, Device, Tensor};
use mlfw_vision::registry::{build_model, ModelConfig, MODEL_NAMES};

fn main() -> mlfw_core::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((dir, names)) = args.split_first() else {
        eprintln!("usage: onnx_export OUT_DIR [MODEL...]");
        std::process::exit(2);
    };
    let names: Vec<&str> = if names.is_empty() {
        MODEL_NAMES.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    std::fs::create_dir_all(dir).map_err(|e| mlfw_core::Error::msg(format!("{dir}: {e}")))?;
    for name in names {
        mlfw_core::manual_seed(0);
        let (mut model, info) = build_model(name, &ModelConfig::new(10))?;
        model.train(false);
        let [c, h, w] = info.input_shape;
        let x = Tensor::randn(0.0, 1.0, [2, c, h, w], DType::F32, &Device::Cpu)?;
        let _g = mlfw_autograd::no_grad();
        let path = format!("{dir}/{name}.onnx");
        mlfw_hub::onnx::export_module(model.as_ref(), &x, &path)?;
        let y = model.forward(&x)?;
        let io = vec![("input".to_string(), x), ("output".to_string(), y)];
        mlfw_core::safetensors::save(format!("{dir}/{name}_io.safetensors"), &io, None)?;
        println!("{path}");
    }
    Ok(())
}
