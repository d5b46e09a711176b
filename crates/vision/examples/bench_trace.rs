//! Cost of static graphs for LeNet-5's training step (forward, cross-entropy, backward):
//! the time to capture it, and what `Graph::run` adds per node over eager execution.
//!
//! ```text
//! cargo run --release -p mlfw-vision --example bench_trace -- [BATCH]
//! ```
//! Prints capture times (median of 21; fixed and symbolic batch) and, for eager and graph
//! steps, the fastest of 15 alternating 5-run medians, and the difference per graph node.

use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_nn::{functional as F, trace_train_step};
use mlfw_vision::registry::{build_model, ModelConfig};
use std::time::Instant;

fn median_ms(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[reps / 2])
}

fn main() -> Result<()> {
    mlfw_core::cpu::tune_allocator();
    let b: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    mlfw_core::manual_seed(0);
    let (model, _) = build_model("lenet5", &ModelConfig::new(10))?;
    let x = Tensor::randn(0.0, 1.0, [b, 1, 28, 28], DType::F32, &Device::Cpu)?;
    let t = Tensor::randint(0, 10, [b], &Device::Cpu)?;
    let params = model.parameters();
    let eager = || -> Result<()> {
        let loss = F::cross_entropy(&model.forward(&x)?, &t)?;
        mlfw_autograd::grad(&loss, &params, None)?;
        Ok(())
    };
    for _ in 0..10 {
        eager()?;
    }
    let capture = median_ms(21, || {
        trace_train_step(model.as_ref(), &x, &t, false).map(|_| ())
    })?;
    let capture_sym = median_ms(21, || {
        trace_train_step(model.as_ref(), &x, &t, true).map(|_| ())
    })?;
    let g = trace_train_step(model.as_ref(), &x, &t, false)?;
    let inputs = [x.clone(), t.clone()];
    let run = || g.run(&inputs).map(|_| ());
    for _ in 0..10 {
        run()?;
    }
    // Alternate eager and graph runs so both see the same machine state.
    let (mut e, mut r) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        e.push(median_ms(5, eager)?);
        r.push(median_ms(5, run)?);
    }
    e.sort_by(|a, b| a.total_cmp(b));
    r.sort_by(|a, b| a.total_cmp(b));
    // The fastest of 15 alternating 5-run medians: robust to other load on the machine.
    let (em, rm) = (e[0], r[0]);
    let nodes = g.nodes.len();
    println!(
        "LeNet-5 training step (forward + loss + backward), batch {b}, {nodes} nodes ({} ops)",
        g.op_count()
    );
    println!("capture (fixed batch)      {capture:.3} ms");
    println!("capture (symbolic batch)   {capture_sym:.3} ms");
    println!("eager step                 {em:.3} ms");
    println!("graph.run step             {rm:.3} ms");
    println!(
        "graph.run over eager       {:+.3} ms = {:+.2} µs per node",
        rm - em,
        (rm - em) * 1e3 / nodes as f64
    );
    Ok(())
}
