//! LeNet-5 training steps, eager and compiled (`mlfw_optim::CompiledStep`), interleaved in
//! one process so both see the same machine load; prints the median step time of each and
//! the ratio. `cargo run --release -p mlfw-vision --example compiled_step -- [BATCH] [STEPS]`
//! (`CPU_TIME=1`: thread CPU time of alternating blocks; `PROFILE=1`: the plan's per-step
//! profile; `MLFW_COMPILE_REWRITE=0`: compile without the fused pooling steps, for A/B runs;
//! `MLFW_COMPILE_CONV_POOL=0`: without only the convolution + pooling fusions, forward and
//! backward).

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};
use mlfw_vision::models::LeNet5;
use std::time::Instant;

#[path = "common/counting.rs"]
mod counting;
use counting::{per_call, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "common/timing.rs"]
mod timing;
use timing::{median, thread_cpu_s};

fn main() -> Result<()> {
    mlfw_core::cpu::tune_allocator();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (b, steps) = (
        args.first().copied().unwrap_or(64),
        args.get(1).copied().unwrap_or(100),
    );
    let dev = Device::Cpu;
    manual_seed(0);
    let (me, mc) = (LeNet5::new(10, 1, &dev)?, LeNet5::new(10, 1, &dev)?);
    let cfg = SgdConfig::new(0.01).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(me.parameters(), cfg)?,
        Sgd::new(mc.parameters(), cfg)?,
    );
    let x = Tensor::randn(0.0, 1.0, [b, 1, 28, 28], DType::F32, &dev)?;
    let y = Tensor::randint(0, 10, [b], &dev)?;
    let t = Instant::now();
    let mut step = CompiledStep::new(&mc, &x, &y)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut te, mut tc) = (vec![], vec![]);
    for i in 0..steps + 5 {
        let t = Instant::now();
        oe.zero_grad();
        let loss = F::cross_entropy(&me.forward(&x)?, &y)?;
        loss.item_f64()?;
        loss.backward()?;
        oe.step()?;
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        step.step(&x, &y, &mut oc)?;
        let c = t.elapsed().as_secs_f64();
        if i >= 5 {
            te.push(e);
            tc.push(c);
        }
    }
    let (e, c) = (median(te.clone()), median(tc.clone()));
    let (emin, cmin) = (
        te.iter().copied().fold(f64::MAX, f64::min),
        tc.iter().copied().fold(f64::MAX, f64::min),
    );
    println!(
        "fastest steps: eager {:.3} ms, compiled {:.3} ms, ratio {:.2}x",
        emin * 1e3,
        cmin * 1e3,
        emin / cmin
    );
    {
        let (ne, be) = per_call(10, || {
            oe.zero_grad();
            let loss = F::cross_entropy(&me.forward(&x)?, &y)?;
            loss.item_f64()?;
            loss.backward()?;
            oe.step()
        })?;
        let (nc, bc) = per_call(10, || step.step(&x, &y, &mut oc).map(|_| ()))?;
        println!("heap allocations per step: eager {ne} ({be:.2} MB), compiled {nc} ({bc:.2} MB)");
    }
    if std::env::var("CPU_TIME").is_ok() {
        // Alternating blocks of 50 steps; total thread CPU time of each kind.
        let (mut ce, mut cc) = (0.0, 0.0);
        for _ in 0..6 {
            let t = thread_cpu_s();
            for _ in 0..50 {
                oe.zero_grad();
                let loss = F::cross_entropy(&me.forward(&x)?, &y)?;
                loss.item_f64()?;
                loss.backward()?;
                oe.step()?;
            }
            ce += thread_cpu_s() - t;
            let t = thread_cpu_s();
            for _ in 0..50 {
                step.step(&x, &y, &mut oc)?;
            }
            cc += thread_cpu_s() - t;
        }
        println!(
            "thread CPU time per step over 300 steps each: eager {:.3} ms, compiled {:.3} ms, ratio {:.2}x",
            ce / 300.0 * 1e3,
            cc / 300.0 * 1e3,
            ce / cc
        );
    }
    if std::env::var("MICRO").is_ok() {
        let h = Tensor::randn(0.0, 1.0, [b, 6, 28, 28], DType::F32, &dev)?;
        let bias = Tensor::randn(0.0, 1.0, [1, 6, 1, 1], DType::F32, &dev)?;
        let g = mlfw_core::graph::Capture::new()
            .input("h", &h)
            .param("b", &bias)
            .run(|xs| Ok(vec![xs[0].add(&bias)?.relu()?]))?;
        let mut plan = mlfw_core::graph::compile(&g)?;
        let (mut a, mut f) = (f64::MAX, f64::MAX);
        for _ in 0..200 {
            let t = Instant::now();
            let _ = h.add(&bias)?.relu()?;
            a = a.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let _ = plan.run(std::slice::from_ref(&h))?;
            f = f.min(t.elapsed().as_secs_f64());
        }
        println!(
            "bias+relu [{b},6,28,28]: eager {:.3} ms, fused {:.3} ms",
            a * 1e3,
            f * 1e3
        );
    }
    if std::env::var("GRAPH").is_ok() {
        println!("{}", step.graph());
        for g in step.fused_groups() {
            println!("{g:?}");
        }
    }
    if std::env::var("PROFILE").is_ok() {
        let mut acc: Vec<(String, f64)> = step.profile(&x, &y)?;
        for _ in 0..20 {
            for (a, p) in acc.iter_mut().zip(step.profile(&x, &y)?) {
                a.1 = a.1.min(p.1);
            }
        }
        acc.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (n, t) in acc.iter().take(25) {
            println!("{:>8.3} ms  {n}", t * 1e3);
        }
        println!(
            "sum of fastest {:.3} ms",
            acc.iter().map(|a| a.1).sum::<f64>() * 1e3
        );
    }
    println!(
        "lenet5 batch {b}: eager {:.3} ms, compiled {:.3} ms, speed-up {:.2}x; capture+compile {compile_ms:.1} ms; {:?}",
        e * 1e3,
        c * 1e3,
        e / c,
        step.stats()
    );
    Ok(())
}
