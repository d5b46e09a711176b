//! Graph overhead: record + backward of a chain of 10,000 small elementwise ops.
//! `cargo run --release -p mlfw-autograd --example bench_graph` prints µs per op.

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Tensor};
use std::time::Instant;

fn main() -> mlfw_core::Result<()> {
    let n_ops = 10_000;
    let x = Tensor::ones([16], DType::F32, &Device::Cpu)?.requires_grad_(true)?;
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        let mut y = x.clone();
        for i in 0..n_ops {
            y = if i % 2 == 0 {
                y.mul_scalar(1.0001)?
            } else {
                y.add_scalar(-0.0001)?
            };
        }
        let s = y.sum_all()?;
        let t1 = Instant::now();
        s.backward()?;
        let t2 = Instant::now();
        fwd.push((t1 - t0).as_secs_f64());
        bwd.push((t2 - t1).as_secs_f64());
        x.zero_grad();
    }
    fwd.sort_by(f64::total_cmp);
    bwd.sort_by(f64::total_cmp);
    let (f, b) = (fwd[fwd.len() / 2], bwd[bwd.len() / 2]);
    println!("chain of {n_ops} elementwise ops on 16 floats (median of 7)");
    println!("record: {:.2} µs/op", f * 1e6 / n_ops as f64);
    println!("backward: {:.2} µs/op", b * 1e6 / n_ops as f64);
    println!(
        "record + backward: {:.2} µs/op",
        (f + b) * 1e6 / n_ops as f64
    );
    Ok(())
}
