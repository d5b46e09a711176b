//! CUDA micro-benchmarks: device-to-device add on 256M floats (TB/s) and 8192³ matmuls
//! (TFLOP/s) through mlfw, against cublasSgemm called directly. Prints a table; without CUDA
//! it prints why and exits cleanly.
//!
//! `cargo run --release -p mlfw-cuda --example bench [-- --quick]`

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::CudaContext;
use mlfw_core::{DType, Device, Result, Tensor};
use std::time::Instant;

/// Median seconds of `iters` timed runs of `f` after `warm` warm-up runs, synchronising each.
fn time(
    warm: usize,
    iters: usize,
    sync: &dyn Fn() -> Result<()>,
    f: &mut dyn FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warm {
        f()?;
    }
    sync()?;
    let mut ts = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        sync()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.total_cmp(b));
    Ok(ts[ts.len() / 2])
}

fn cublas_sgemm_direct(n: usize, warm: usize, iters: usize) -> std::result::Result<f64, String> {
    let ctx = CudaContext::new(0).map_err(|e| format!("{e:?}"))?;
    let stream = ctx.default_stream();
    let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("{e:?}"))?;
    let a = stream
        .alloc_zeros::<f32>(n * n)
        .map_err(|e| format!("{e:?}"))?;
    let b = stream
        .alloc_zeros::<f32>(n * n)
        .map_err(|e| format!("{e:?}"))?;
    let mut c = stream
        .alloc_zeros::<f32>(n * n)
        .map_err(|e| format!("{e:?}"))?;
    let cfg = GemmConfig {
        transa: cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N,
        transb: cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N,
        m: n as i32,
        n: n as i32,
        k: n as i32,
        alpha: 1.0f32,
        lda: n as i32,
        ldb: n as i32,
        beta: 0.0f32,
        ldc: n as i32,
    };
    let mut run = || -> Result<()> {
        // SAFETY: all three buffers hold n*n floats, matching the config.
        unsafe { blas.gemm(cfg, &a, &b, &mut c) }
            .map_err(|e| mlfw_core::Error::msg(format!("{e:?}")))
    };
    let sync = || {
        stream
            .synchronize()
            .map_err(|e| mlfw_core::Error::msg(format!("{e:?}")))
    };
    time(warm, iters, &sync, &mut run).map_err(|e| e.to_string())
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let dev = match mlfw_cuda::device(0) {
        Ok(d) => d,
        Err(e) => {
            println!("bench: {e}");
            return Ok(());
        }
    };
    println!("{}", mlfw_cuda::device_info(0)?);
    let backend = dev.backend()?;
    let sync = || backend.synchronize();
    let (warm, iters) = if quick { (2, 5) } else { (5, 20) };
    let mut rows: Vec<(String, String)> = Vec::new();

    // Device-to-device add: reads 2 arrays, writes 1.
    let n = if quick { 1 << 26 } else { 1 << 28 };
    let a = Tensor::full(1.0, [n], DType::F32, &dev)?;
    let b = Tensor::full(2.0, [n], DType::F32, &dev)?;
    let t = time(warm, iters, &sync, &mut || a.add(&b).map(|_| ()))?;
    rows.push((
        format!("add f32, {}M elements", n >> 20),
        format!("{:.2} TB/s", 3.0 * 4.0 * n as f64 / t / 1e12),
    ));
    drop((a, b));

    let m = if quick { 4096 } else { 8192 };
    let flops = 2.0 * (m as f64).powi(3);
    let x = Tensor::rand(-1.0, 1.0, [m, m], DType::F32, &dev)?;
    let y = Tensor::rand(-1.0, 1.0, [m, m], DType::F32, &dev)?;
    mlfw_cuda::set_allow_tf32(false);
    let t = time(warm, iters, &sync, &mut || x.matmul(&y).map(|_| ()))?;
    rows.push((
        format!("matmul f32 {m}³ (mlfw)"),
        format!("{:.1} TFLOP/s", flops / t / 1e12),
    ));
    match cublas_sgemm_direct(m, warm, iters) {
        Ok(t) => rows.push((
            format!("cublasSgemm {m}³ (direct)"),
            format!("{:.1} TFLOP/s", flops / t / 1e12),
        )),
        Err(e) => rows.push((format!("cublasSgemm {m}³ (direct)"), format!("failed: {e}"))),
    }
    mlfw_cuda::set_allow_tf32(true);
    let t = time(warm, iters, &sync, &mut || x.matmul(&y).map(|_| ()))?;
    rows.push((
        format!("matmul tf32 {m}³ (mlfw)"),
        format!("{:.1} TFLOP/s", flops / t / 1e12),
    ));
    mlfw_cuda::set_allow_tf32(false);
    let (xb, yb) = (x.to_dtype(DType::BF16)?, y.to_dtype(DType::BF16)?);
    let t = time(warm, iters, &sync, &mut || xb.matmul(&yb).map(|_| ()))?;
    rows.push((
        format!("matmul bf16 {m}³ (mlfw)"),
        format!("{:.1} TFLOP/s", flops / t / 1e12),
    ));

    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!(
        "\n| {:w$} | result |\n|{}|--------|",
        "benchmark",
        "-".repeat(w + 2)
    );
    for (k, v) in rows {
        println!("| {k:w$} | {v} |");
    }
    let _ = Device::Cpu;
    Ok(())
}
