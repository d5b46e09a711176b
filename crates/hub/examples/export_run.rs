//! Exports a training run folder as a registry entry (what `mlfw hub export` does).
//!
//! ```text
//! cargo run -p mlfw-hub --example export_run -- RUN_DIR NAME OUT_DIR [--trained-by WHO] [--file FILE] [--version V]
//! ```
//! `RUN_DIR` holds `config.json`, `metrics.jsonl` and `best.safetensors`/`last.safetensors`;
//! `OUT_DIR/index.json` gains (or updates) the entry and `OUT_DIR` the weights. Serve
//! `OUT_DIR` from any static file server and pull with `--registry URL/index.json`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut opts = mlfw_hub::ExportOptions::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--trained-by" => opts.trained_by = value()?,
            "--file" => opts.file_name = Some(value()?),
            "--version" => opts.version = value()?,
            "--license" => opts.license = Some(value()?),
            "--description" => opts.description = value()?,
            _ => positional.push(a),
        }
    }
    let [run, name, out] = positional.as_slice() else {
        return Err(
            "usage: export_run RUN_DIR NAME OUT_DIR [--trained-by WHO] [--file FILE] [--version V]"
                .into(),
        );
    };
    let done = mlfw_hub::export(&PathBuf::from(run), name, &PathBuf::from(out), &opts)?;
    println!(
        "exported {} -> {} (sha256 {}); index {}",
        done.entry.id(),
        done.weights.display(),
        done.entry.files[0].sha256,
        done.index.display()
    );
    Ok(())
}
