//! ResNet-18 (CIFAR) convolution timings: forward and both backward passes of every distinct
//! 3×3 and 1×1 layer shape at one batch size, and the multiply-add rate they reach.
//!
//! `cargo run --release -p mlfw-core --example bench_conv_resnet -- [batch] [filter]` (default
//! 32; only layers whose name contains `filter`). Each cell: wall-clock ms median / min, and
//! in brackets the process CPU ms (median) — with `MLFW_NUM_THREADS=1` the CPU time is the
//! figure least disturbed by other processes on a shared machine — and GFLOP/s at the
//! median wall time. The 3×3 stride-1 layers take Winograd F(2×2, 3×3) for the forward and
//! input gradient; `MLFW_CONV_WINOGRAD=0` runs them on the blocked kernels for an A/B.

use mlfw_core::{Conv2dParams, DType, Device, Result, Tensor};
use std::time::Instant;

/// CPU time of this process (all threads) in milliseconds.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// (median, min, median CPU) milliseconds of `f` over at least 5 runs (about 1 s) after 1
/// warm-up.
fn time_ms(mut f: impl FnMut() -> Result<()>) -> Result<(f64, f64, f64)> {
    f()?;
    let t = Instant::now();
    f()?;
    let one = t.elapsed().as_secs_f64();
    let reps = ((1.0 / one) as usize).clamp(5, 50);
    let (mut v, mut cpu) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_ms());
        f()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(cpu_ms() - c);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    cpu.sort_by(|a, b| a.total_cmp(b));
    Ok((v[reps / 2], v[0], cpu[reps / 2]))
}

fn main() -> Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32);
    let filter = std::env::args().nth(2).unwrap_or_default();
    let d = Device::Cpu;
    // (name, channels in, out, spatial in, kernel, stride, padding, uses in ResNet-18)
    let layers = [
        ("stem 3→64 3x3 32x32", 3, 64, 32, 3, 1, 1, 1),
        ("64→64 3x3 32x32", 64, 64, 32, 3, 1, 1, 4),
        ("64→128 3x3 s2 32x32", 64, 128, 32, 3, 2, 1, 1),
        ("128→128 3x3 16x16", 128, 128, 16, 3, 1, 1, 3),
        ("128→256 3x3 s2 16x16", 128, 256, 16, 3, 2, 1, 1),
        ("256→256 3x3 8x8", 256, 256, 8, 3, 1, 1, 3),
        ("256→512 3x3 s2 8x8", 256, 512, 8, 3, 2, 1, 1),
        ("512→512 3x3 4x4", 512, 512, 4, 3, 1, 1, 3),
        ("64→128 1x1 s2 32x32", 64, 128, 32, 1, 2, 0, 1),
        ("128→256 1x1 s2 16x16", 128, 256, 16, 1, 2, 0, 1),
        ("256→512 1x1 s2 8x8", 256, 512, 8, 1, 2, 0, 1),
    ];
    println!("ResNet-18 (CIFAR) convolutions, batch {batch}: ms median / min [CPU ms] (GFLOP/s)");
    println!("| layer | uses | forward | backward input | backward weight |");
    println!("|---|---|---|---|---|");
    for (name, c, o, hw, k, s, pad, uses) in layers {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let p = Conv2dParams {
            stride: (s, s),
            padding: (pad, pad),
            ..Conv2dParams::default()
        };
        let x = Tensor::randn(0.0, 1.0, [batch, c, hw, hw], DType::F32, &d)?;
        let w = Tensor::randn(0.0, 0.1, [o, c, k, k], DType::F32, &d)?;
        let y = x.conv2d(&w, None, p)?;
        let gy = y.ones_like()?;
        let flop = 2.0 * y.elem_count() as f64 * (c * k * k) as f64;
        let fwd = time_ms(|| x.conv2d(&w, None, p).map(drop))?;
        let bi = time_ms(|| gy.conv2d_backward_input(&w, p, (hw, hw)).map(drop))?;
        let bw = time_ms(|| x.conv2d_backward_weight(&gy, p, (k, k)).map(drop))?;
        let f = |t: (f64, f64, f64)| {
            format!(
                "{:.2} / {:.2} [{:.2}] ({:.0})",
                t.0,
                t.1,
                t.2,
                flop / t.0 / 1e6
            )
        };
        println!("| {name} | {uses} | {} | {} | {} |", f(fwd), f(bi), f(bw));
    }
    Ok(())
}
