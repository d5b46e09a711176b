//! f32 matmul throughput through `Tensor::matmul`.
//!
//! `cargo run --release -p mlfw-core --example bench_matmul -- [N]` (default 1024) multiplies
//! two N×N matrices repeatedly and prints the median GFLOP/s on its last line as
//! `GFLOP/s: <number>`.

use mlfw_core::{DType, Device, Tensor};
use std::time::Instant;

fn main() -> mlfw_core::Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().map_err(|_| {
            mlfw_core::Error::msg(format!("N must be a positive integer, got `{s}`"))
        })?,
        None => 1024,
    };
    let a = Tensor::randn(0.0, 1.0, [n, n], DType::F32, &Device::Cpu)?;
    let b = Tensor::randn(0.0, 1.0, [n, n], DType::F32, &Device::Cpu)?;
    let flops = 2.0 * (n as f64).powi(3);
    // Warm up (thread pool, page faults), then time enough runs for about 2 s.
    for _ in 0..3 {
        a.matmul(&b)?;
    }
    let t = Instant::now();
    a.matmul(&b)?;
    let one = t.elapsed().as_secs_f64();
    let reps = ((2.0 / one) as usize).clamp(5, 200);
    let mut rates: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let c = a.matmul(&b).expect("matmul");
            let s = t.elapsed().as_secs_f64();
            drop(c);
            flops / s / 1e9
        })
        .collect();
    rates.sort_by(|x, y| x.total_cmp(y));
    println!(
        "matmul f32 {n}x{n} · {n}x{n}: {reps} runs, threads {}, min {:.1} / max {:.1} GFLOP/s",
        mlfw_core::parallel::num_threads(),
        rates[0],
        rates[reps - 1]
    );
    println!("GFLOP/s: {:.1}", rates[reps / 2]);
    Ok(())
}
