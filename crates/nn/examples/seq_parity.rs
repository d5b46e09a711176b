//! Checks the recurrent layers, MultiheadAttention and TransformerEncoderLayer against
//! PyTorch for any `seq.safetensors`-format file (outputs, final states, attention weights and
//! every gradient):
//!
//! ```text
//! cargo run --release --example seq_parity -- tests/fixtures/torch-seq/seq.safetensors
//! ```
//! Prints one line per case and `N passed, M failed`; exits non-zero on a failure.

use mlfw_core::{safetensors, Device};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: seq_parity FILE");
        std::process::exit(2);
    };
    match safetensors::load(&path, &Device::Cpu) {
        Ok(file) => {
            let cases = mlfw_nn::seq_parity::run(&file);
            let failed = cases.iter().filter(|c| !c.passed()).count();
            for c in &cases {
                println!("{c}");
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
