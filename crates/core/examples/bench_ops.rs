//! Core kernel timings: LeNet-5 convolutions (forward and both backward passes) and
//! memory-bound elementwise ops and a reduction against a plain memcpy of the same bytes.
//!
//! `cargo run --release -p mlfw-core --example bench_ops -- [batch]` (default 256).

use mlfw_core::{Conv2dParams, DType, Device, Result, Tensor};
use std::time::Instant;

/// (median, min) milliseconds of `f` over about 1 s (at least 5 runs) after 2 warm-ups.
/// On a shared machine the min shows what the code can do; the median what it did.
fn time_ms(mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    f()?;
    f()?;
    let t = Instant::now();
    f()?;
    let one = t.elapsed().as_secs_f64();
    let reps = ((1.0 / one) as usize).clamp(5, 100);
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok((v[reps / 2], v[0]))
}

fn conv_rows(batch: usize) -> Result<()> {
    let d = Device::Cpu;
    let layers = [
        (
            "conv1 1→6 5x5 pad2 28x28",
            [batch, 1, 28, 28],
            [6, 1, 5, 5],
            2,
        ),
        ("conv2 6→16 5x5 14x14", [batch, 6, 14, 14], [16, 6, 5, 5], 0),
    ];
    println!("LeNet-5 convolutions, batch {batch} (ms, median / min)");
    println!("| layer | forward | backward input | backward weight |");
    println!("|---|---|---|---|");
    for (name, xd, wd, pad) in layers {
        let p = Conv2dParams {
            padding: (pad, pad),
            ..Conv2dParams::default()
        };
        let x = Tensor::randn(0.0, 1.0, xd, DType::F32, &d)?;
        let w = Tensor::randn(0.0, 0.1, wd, DType::F32, &d)?;
        let y = x.conv2d(&w, None, p)?;
        let gy = y.ones_like()?;
        let fwd = time_ms(|| x.conv2d(&w, None, p).map(drop))?;
        let bi = time_ms(|| gy.conv2d_backward_input(&w, p, (xd[2], xd[3])).map(drop))?;
        let bw = time_ms(|| x.conv2d_backward_weight(&gy, p, (5, 5)).map(drop))?;
        let f = |t: (f64, f64)| format!("{:.3} / {:.3}", t.0, t.1);
        println!("| {name} | {} | {} | {} |", f(fwd), f(bi), f(bw));
    }
    Ok(())
}

fn memory_rows() -> Result<()> {
    let n = 16 << 20;
    let d = Device::Cpu;
    let a = Tensor::rand(0.0, 1.0, [n], DType::F32, &d)?;
    let b = Tensor::rand(0.0, 1.0, [n], DType::F32, &d)?;
    let src = a.to_vec::<f32>()?;
    let mut dst = vec![0f32; n];
    let (copy_into, _) = time_ms(|| {
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
        Ok(())
    })?;
    let (copy_new, _) = time_ms(|| {
        std::hint::black_box(src.clone());
        Ok(())
    })?;
    println!();
    println!("16M f32 (64 MiB per tensor), median ms; memcpy into a fresh Vec is the baseline");
    println!("| op | ms | × memcpy (fresh) | × memcpy (reused buffer) |");
    println!("|---|---|---|---|");
    let row = |name: &str, (ms, _): (f64, f64)| {
        println!(
            "| {name} | {ms:.2} | {:.2} | {:.2} |",
            ms / copy_new,
            ms / copy_into
        )
    };
    row("memcpy (Vec clone)", (copy_new, 0.0));
    row("memcpy (copy_from_slice)", (copy_into, 0.0));
    row("add", time_ms(|| a.add(&b).map(drop))?);
    row("mul", time_ms(|| a.mul(&b).map(drop))?);
    row("exp", time_ms(|| a.exp().map(drop))?);
    row("sum (all)", time_ms(|| a.sum_all().map(drop))?);
    Ok(())
}

fn main() -> Result<()> {
    let batch = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .map_err(|_| mlfw_core::Error::msg(format!("batch must be an integer, got `{s}`")))?,
        None => 256,
    };
    println!("threads: {}", mlfw_core::parallel::num_threads());
    conv_rows(batch)?;
    memory_rows()
}
