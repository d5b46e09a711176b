//! Checks mlfw against PyTorch's LeNet-5 training trace.
//!
//! `cargo run --release -p mlfw-optim --example lenet_trace -- tests/fixtures/torch-ref [--device cpu|cuda]`
//! prints one line per compared group and `N passed, M failed`; exits non-zero on failure.

mod common;

use mlfw_core::Device;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut device = Device::Cpu;
    while let Some(a) = args.next() {
        if a == "--device" {
            let d = args.next().unwrap_or_default();
            device = match mlfw_cuda::parse_device(&d) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            };
        } else {
            dir = Some(PathBuf::from(a));
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: lenet_trace DIR [--device cpu|cuda]  (DIR holds lenet5_init/lenet5_trace.safetensors)");
        std::process::exit(2);
    };
    match common::run(&dir, &device) {
        Ok(results) => {
            for r in &results {
                println!("{r}");
            }
            let passed = results.iter().filter(|r| r.passed()).count();
            let failed = results.len() - passed;
            println!("{passed} passed, {failed} failed");
            if failed > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
