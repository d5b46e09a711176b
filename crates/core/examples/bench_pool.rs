//! LeNet-5 max pooling timings (forward with indices, backward).
//!
//! `cargo run --release -p mlfw-core --example bench_pool -- [batch]` (default 64).

use mlfw_core::{DType, Device, Pool2dParams, Result, Tensor};
use std::time::Instant;

/// (median, min) milliseconds of `f` over about 0.5 s after 2 warm-ups.
fn time_ms(mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    f()?;
    f()?;
    let t = Instant::now();
    f()?;
    let reps = ((0.5 / t.elapsed().as_secs_f64()) as usize).clamp(5, 200);
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok((v[reps / 2], v[0]))
}

fn main() -> Result<()> {
    let batch = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let d = Device::Cpu;
    println!("max_pool2d k2s2, batch {batch} (ms, median / min)");
    println!("| input | forward | backward |");
    println!("|---|---|---|");
    for dims in [[batch, 6, 28, 28], [batch, 16, 10, 10]] {
        let x = Tensor::randn(0.0, 1.0, dims, DType::F32, &d)?;
        let p = Pool2dParams::new(2);
        let (y, idx) = x.max_pool2d_with_indices(p)?;
        let gy = y.ones_like()?;
        let fwd = time_ms(|| x.max_pool2d_with_indices(p).map(drop))?;
        let bwd = time_ms(|| gy.max_pool2d_backward(&idx, x.shape()).map(drop))?;
        let f = |t: (f64, f64)| format!("{:.3} / {:.3}", t.0, t.1);
        println!("| {dims:?} | {} | {} |", f(fwd), f(bwd));
    }
    Ok(())
}
