//! Checks second-order gradients against PyTorch (Hessian-vector product, gradient penalty,
//! `Σx²`) for any `higher_order.safetensors`-format file:
//!
//! ```text
//! cargo run --release --example higher_order_parity -- tests/fixtures/torch-ref/higher_order.safetensors
//! ```
//! Prints one line per tensor and `N passed, M failed`; exits non-zero on a failure.

use mlfw_core::{safetensors, Device};
use mlfw_vision::parity_second_order::run_file;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: higher_order_parity FILE [TOL]");
        std::process::exit(2);
    };
    let tol = std::env::args()
        .nth(2)
        .and_then(|t| t.parse().ok())
        .unwrap_or(1e-4);
    let res = safetensors::load(&path, &Device::Cpu).and_then(|f| run_file(&f, tol));
    match res {
        Ok(cases) => {
            let failed = cases.iter().filter(|c| !c.passed).count();
            for c in &cases {
                let v = if c.passed { "ok" } else { "FAIL" };
                println!("{:<24} max rel err {:.3e}  {v}", c.name, c.max_rel_err);
            }
            println!("{} passed, {failed} failed", cases.len() - failed);
            if failed > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
