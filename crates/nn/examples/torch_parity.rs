//! Runs every case of a PyTorch ops fixture (format: tests/fixtures/README.md) forward and
//! backward, and compares outputs and gradients with PyTorch's.
//!
//! `cargo run --release -p mlfw-nn --example torch_parity -- FILE [--device cpu|cuda]`
//! prints one line per case and `N passed, M failed`; exits non-zero if any case fails or
//! uses an unknown op.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut file, mut device) = (None, mlfw_core::Device::Cpu);
    while let Some(a) = args.next() {
        if a == "--device" {
            match mlfw_cuda::parse_device(&args.next().unwrap_or_default()) {
                Ok(d) => device = d,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(2);
                }
            }
        } else {
            file = Some(PathBuf::from(a));
        }
    }
    let Some(file) = file else {
        eprintln!("usage: torch_parity FILE [--device cpu|cuda]");
        std::process::exit(2);
    };
    let results = match mlfw_nn::parity::run_file(&file, &device) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    for r in &results {
        println!("{r}");
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 || results.is_empty() {
        std::process::exit(1);
    }
}
