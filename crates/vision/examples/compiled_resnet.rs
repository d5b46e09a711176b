//! ResNet-18 (CIFAR) training steps, eager and compiled (`mlfw_optim::CompiledStep`),
//! alternating in one process so both see the same machine load; prints the median step time
//! of each and the ratio, and with `PROFILE=1` the compiled plan's per-step profile summed by
//! kind (the node name without its number) and its slowest steps.
//! `cargo run --release -p mlfw-vision --example compiled_resnet -- [BATCH] [STEPS]`
//! (`MLFW_NUM_THREADS=1` for a one-thread profile; `MLFW_COMPILE_REWRITE=0` compiles without
//! the plan's rewrites, for A/B runs; `EAGER=0` skips the eager steps; `STEPS=name` lists the profile's steps whose name
//! contains `name`, in plan order; `ALLOCS=1` counts heap allocations per step).

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};
use mlfw_vision::models::ResNet;
use std::collections::HashMap;
use std::time::Instant;

#[path = "common/counting.rs"]
mod counting;
use counting::{per_call, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "common/timing.rs"]
mod timing;
use timing::{median, thread_cpu_s};

/// A step's kind: its name without trailing digits and separators (`conv2d_12` → `conv2d`).
fn kind(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("fused[") {
        let parts: Vec<String> = rest.trim_end_matches(']').split(',').map(kind).collect();
        return format!("fused[{}]", parts.join(","));
    }
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_' || c == '.')
        .to_string()
}

fn main() -> Result<()> {
    mlfw_core::cpu::tune_allocator();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (b, steps) = (
        args.first().copied().unwrap_or(32),
        args.get(1).copied().unwrap_or(5),
    );
    if std::env::var("WGRAD").is_ok() {
        return wgrad_ab(b);
    }
    let eager = std::env::var("EAGER").map_or(true, |v| v != "0");
    let dev = Device::Cpu;
    manual_seed(0);
    let (me, mc) = (
        ResNet::resnet18_cifar(10, 3, &dev)?,
        ResNet::resnet18_cifar(10, 3, &dev)?,
    );
    let cfg = SgdConfig::new(0.01).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(me.parameters(), cfg)?,
        Sgd::new(mc.parameters(), cfg)?,
    );
    let x = Tensor::randn(0.0, 1.0, [b, 3, 32, 32], DType::F32, &dev)?;
    let y = Tensor::randint(0, 10, [b], &dev)?;
    let t = Instant::now();
    let mut step = CompiledStep::new(&mc, &x, &y)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut te, mut tc) = (vec![], vec![]);
    let (mut ce, mut cc) = (vec![], vec![]);
    for i in 0..steps + 1 {
        if eager {
            let t = Instant::now();
            let c0 = thread_cpu_s();
            oe.zero_grad();
            let loss = F::cross_entropy(&me.forward(&x)?, &y)?;
            loss.item_f64()?;
            loss.backward()?;
            oe.step()?;
            if i >= 1 {
                te.push(t.elapsed().as_secs_f64());
                ce.push(thread_cpu_s() - c0);
            }
        }
        let t = Instant::now();
        let c0 = thread_cpu_s();
        step.step(&x, &y, &mut oc)?;
        if i >= 1 {
            tc.push(t.elapsed().as_secs_f64());
            cc.push(thread_cpu_s() - c0);
        }
    }
    if std::env::var("ALLOCS").is_ok() {
        let (nc, bc) = per_call(3, || step.step(&x, &y, &mut oc).map(|_| ()))?;
        let (ne, be) = if eager {
            per_call(3, || {
                oe.zero_grad();
                let loss = F::cross_entropy(&me.forward(&x)?, &y)?;
                loss.item_f64()?;
                loss.backward()?;
                oe.step()
            })?
        } else {
            (0, 0.0)
        };
        println!("heap allocations per step: eager {ne} ({be:.2} MB), compiled {nc} ({bc:.2} MB)");
    }
    if std::env::var("PROFILE").is_ok() {
        let mut acc: Vec<(String, f64)> = step.profile(&x, &y)?;
        for _ in 0..2 {
            for (a, p) in acc.iter_mut().zip(step.profile(&x, &y)?) {
                a.1 = a.1.min(p.1);
            }
        }
        let total: f64 = acc.iter().map(|a| a.1).sum();
        let mut by: HashMap<String, (usize, f64)> = HashMap::new();
        for (n, t) in &acc {
            let e = by.entry(kind(n)).or_default();
            e.0 += 1;
            e.1 += t;
        }
        let mut by: Vec<_> = by.into_iter().collect();
        by.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
        println!(
            "plan profile by kind (fastest of 3 per step; sum {:.1} ms):",
            total * 1e3
        );
        for (k, (n, t)) in by.iter().take(40) {
            println!(
                "{:>8.2} ms {:>5.1}% {n:>4}x  {k}",
                t * 1e3,
                100.0 * t / total
            );
        }
        if let Ok(pat) = std::env::var("STEPS") {
            // The steps whose name contains `STEPS`, in plan order.
            for (n, t) in acc.iter().filter(|a| a.0.contains(&pat)) {
                println!("{:>8.3} ms  {n}", t * 1e3);
            }
        }
        acc.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("slowest steps:");
        for (n, t) in acc.iter().take(15) {
            println!("{:>8.3} ms  {n}", t * 1e3);
        }
    }
    let c = median(tc);
    if eager {
        let e = median(te);
        let (cpu_e, cpu_c) = (median(ce), median(cc));
        println!(
            "main-thread CPU time per step (medians): eager {:.1} ms, compiled {:.1} ms, {:.3}x",
            cpu_e * 1e3,
            cpu_c * 1e3,
            cpu_e / cpu_c
        );
        println!(
            "resnet18_cifar batch {b}: eager {:.1} ms, compiled {:.1} ms, speed-up {:.3}x; capture+compile {compile_ms:.0} ms; {:?}",
            e * 1e3,
            c * 1e3,
            e / c,
            step.stats()
        );
    } else {
        println!(
            "resnet18_cifar batch {b}: compiled {:.1} ms; capture+compile {compile_ms:.0} ms; {:?}",
            c * 1e3,
            step.stats()
        );
    }
    Ok(())
}

/// `WGRAD=1`: ResNet-18 CIFAR's stride-1 3×3 weight gradients at batch `b`, the blocked
/// direct kernel and the Winograd one alternating in this process (20 rounds, medians).
fn wgrad_ab(b: usize) -> Result<()> {
    let p = mlfw_core::Conv2dParams {
        stride: (1, 1),
        padding: (1, 1),
        dilation: (1, 1),
        groups: 1,
    };
    for (c, hw) in [(64, 32), (128, 16), (256, 8), (512, 4)] {
        let x = Tensor::randn(0.0, 1.0, [b, c, hw, hw], DType::F32, &Device::Cpu)?;
        let dy = Tensor::randn(0.0, 1.0, [b, c, hw, hw], DType::F32, &Device::Cpu)?;
        let (mut tb, mut tw) = (vec![], vec![]);
        for _ in 0..20 {
            for (on, ts) in [(false, &mut tb), (true, &mut tw)] {
                let _g = mlfw_core::cpu::winograd_wgrad(on);
                let t = Instant::now();
                x.conv2d_backward_weight(&dy, p, (3, 3))?;
                ts.push(t.elapsed().as_secs_f64());
            }
        }
        let (mb, mw) = (median(tb), median(tw));
        println!(
            "wgrad [{b}, {c}, {hw}, {hw}]: blocked {:.2} ms, winograd {:.2} ms, {:.2}x",
            mb * 1e3,
            mw * 1e3,
            mb / mw
        );
    }
    Ok(())
}
