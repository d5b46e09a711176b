//! Fused f32 batch-norm kernels on host slices: statistics, normalise + affine (+ ReLU), and
//! the training backward, each one or two passes over the data instead of the eight or so
//! full-tensor passes (and as many saved intermediates) of the composite formula.
//!
//! Every tensor is seen as `[N, C, S]` (`S` the product of the spatial dims, contiguous); the
//! statistics are per channel `c` over the `N·S` values of that channel, as PyTorch's
//! `torch.nn.functional.batch_norm`. Sums are accumulated per plane in f32 lanes and added up
//! in f64, and the variance is the mean squared deviation from the mean (two passes over
//! each channel, the second from cache), so no cancellation as in `E[x²] − E[x]²`.
//!
//! Callers (`mlfw_nn::functional::batch_norm`) check shapes; these functions return an error
//! on inconsistent lengths rather than panicking.

use crate::parallel::{for_each_chunk_mut, map, num_threads};
use crate::{CpuStorage, DType, Device, Error, Result, Tensor};
use std::mem::MaybeUninit;

/// True when this CPU has AVX-512F: the row kernels below are then compiled for it (the
/// crate's baseline is SSE2, four lanes); detected once.
fn avx512() -> bool {
    static YES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    {
        *YES.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        *YES.get_or_init(|| false)
    }
}

/// Defines `$name` (the body compiled for the baseline) and `$fast` (the same body compiled
/// with AVX-512F, used when [`avx512`] holds), and a dispatcher `$pick` calling the right one.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $pick:ident / $name:ident / $fast:ident ($($a:ident : $t:ty),*) $(-> $r:ty)? $body:block) => {
        #[inline(always)]
        fn $name($($a: $t),*) $(-> $r)? $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $fast($($a: $t),*) $(-> $r)? { $name($($a),*) }
        $(#[$m])*
        fn $pick($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            if avx512() {
                // SAFETY: AVX-512F was detected on this CPU.
                return unsafe { $fast($($a),*) };
            }
            $name($($a),*)
        }
    };
}

/// Calls `f` with `t`'s elements as one f32 slice when `t` is a contiguous f32 tensor on the
/// CPU (no copy); `None` otherwise (other dtypes, devices, or strided views).
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    if t.device() != Device::Cpu || t.dtype() != DType::F32 || !t.is_contiguous() {
        return None;
    }
    let (start, len) = (t.layout().offset(), t.elem_count());
    let s = t.storage();
    match s.as_any().downcast_ref::<CpuStorage>()? {
        CpuStorage::F32(v) => v.get(start..start + len).map(f),
        _ => None,
    }
}

/// Elements under which a kernel stays on one thread.
const PAR_ELEMS: usize = 1 << 15;

/// `[N, C, S]` with its lengths checked against `len`.
#[derive(Debug, Clone, Copy)]
pub struct BnShape {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Elements per channel plane (product of the spatial dims; 1 for `[N, C]`).
    pub s: usize,
}

impl BnShape {
    /// The `[N, C, S]` view of `dims` (`[N, C, *]`, rank ≥ 2).
    ///
    /// # Errors
    /// `Error::Msg` for fewer than 2 dims (`[N, C, *]` expected).
    pub fn of(dims: &[usize]) -> Result<BnShape> {
        match dims {
            [n, c, rest @ ..] => Ok(BnShape {
                n: *n,
                c: *c,
                s: rest.iter().product(),
            }),
            _ => Err(Error::msg(format!(
                "batch_norm: expected [N, C, *], got {dims:?}"
            ))),
        }
    }
    fn len(&self) -> usize {
        self.n * self.c * self.s
    }
    fn check(&self, what: &str, len: usize) -> Result<()> {
        if len != self.len() {
            return Err(Error::msg(format!(
                "batch_norm: {what} has {len} elements, expected {} for {self:?}",
                self.len()
            )));
        }
        Ok(())
    }
    fn check_c(&self, what: &str, len: usize) -> Result<()> {
        if len != self.c {
            return Err(Error::msg(format!(
                "batch_norm: {what} has {len} elements, expected {} channels",
                self.c
            )));
        }
        Ok(())
    }
    /// Values per channel.
    fn m(&self) -> usize {
        self.n * self.s
    }
}

/// Sum of `a` in f64 (f32 lanes of 16 first, so the compiler vectorises).
#[inline(always)]
fn sum_body(a: &[f32]) -> f64 {
    let mut acc = [0f32; 16];
    let mut chunks = a.chunks_exact(16);
    for c in &mut chunks {
        for (s, &v) in acc.iter_mut().zip(c) {
            *s += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// `Σ f(a_i, b_i)` over two slices, f64 result (lanes of 16 as in [`sum_body`]).
#[inline(always)]
fn sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0f32; 16];
    let (mut ca, mut cb) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((s, &u), &v) in acc.iter_mut().zip(x).zip(y) {
            *s += f(u, v);
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&u, &v)| f(u, v))
        .sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

multiversion! {
    /// Sum of `a` in f64.
    fn sum / sum_base / sum_avx512(a: &[f32]) -> f64 { sum_body(a) }
}

multiversion! {
    /// `Σ (a − m)²`.
    fn sq_dev / sq_dev_base / sq_dev_avx512(a: &[f32], m: f32) -> f64 {
        sum2(a, a, |u, _| (u - m) * (u - m))
    }
}

multiversion! {
    /// `(Σ g', Σ (x − m)·g')` with `g' = g`, or `g` masked to `y > 0` when `y` is given.
    fn grad_sums / grad_sums_base / grad_sums_avx512(
        x: &[f32],
        g: &[f32],
        y: Option<&[f32]>,
        m: f32,
        buf: &mut [f32]
    ) -> (f64, f64) {
        match y {
            None => (sum_body(g), sum2(x, g, |u, v| (u - m) * v)),
            Some(y) => {
                for ((d, &v), &o) in buf.iter_mut().zip(g).zip(y) {
                    *d = if o > 0.0 { v } else { 0.0 };
                }
                (sum_body(buf), sum2(x, buf, |u, v| (u - m) * v))
            }
        }
    }
}

multiversion! {
    /// `dst = src·a + b`, clamped at 0 when `relu`.
    fn affine_row / affine_row_base / affine_row_avx512(
        dst: &mut [MaybeUninit<f32>],
        src: &[f32],
        a: f32,
        b: f32,
        relu: bool
    ) {
        if relu {
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write((v * a + b).max(0.0));
            }
        } else {
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write(v * a + b);
            }
        }
    }
}

multiversion! {
    /// `dst = k·(g' − a − (x − m)·b)`, `g'` = `g` masked to `y > 0` when `y` is given.
    fn dx_row / dx_row_base / dx_row_avx512(
        dst: &mut [MaybeUninit<f32>],
        xs: &[f32],
        gs: &[f32],
        ys: Option<&[f32]>,
        coef: (f32, f32, f32, f32)
    ) {
        let (k, a, b, m) = coef;
        match ys {
            None => {
                for ((d, &u), &v) in dst.iter_mut().zip(xs).zip(gs) {
                    d.write(k * (v - a - (u - m) * b));
                }
            }
            Some(ys) => {
                for (((d, &u), &v), &o) in dst.iter_mut().zip(xs).zip(gs).zip(ys) {
                    let v = if o > 0.0 { v } else { 0.0 };
                    d.write(k * (v - a - (u - m) * b));
                }
            }
        }
    }
}

/// Channel `c`'s planes of `x` (`[N, C, S]`).
fn planes<'a>(x: &'a [f32], sh: &BnShape, c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
    let (cs, s) = (sh.c * sh.s, sh.s);
    (0..sh.n).map(move |i| &x[i * cs + c * s..i * cs + (c + 1) * s])
}

/// Runs `f(c)` for every channel over the pool (channel ranges per task) and collects.
fn per_channel<R: Send>(sh: &BnShape, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let tasks = if sh.len() >= PAR_ELEMS {
        (num_threads() * 4).min(sh.c).max(1)
    } else {
        1
    };
    let per = sh.c.div_ceil(tasks.max(1)).max(1);
    map(sh.c.div_ceil(per), |t| {
        (t * per..((t + 1) * per).min(sh.c))
            .map(&f)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Per-channel batch mean and biased variance of `x[N, C, S]`.
///
/// # Errors
/// `x` not of `N·C·S` elements; `N·S = 0`.
pub fn stats(x: &[f32], sh: BnShape) -> Result<(Vec<f32>, Vec<f32>)> {
    sh.check("input", x.len())?;
    if sh.m() == 0 {
        return Err(Error::msg("batch_norm: no values per channel"));
    }
    let m = sh.m() as f64;
    let r = per_channel(&sh, |c| {
        let mean = planes(x, &sh, c).map(sum).sum::<f64>() / m;
        let mf = mean as f32;
        let var = planes(x, &sh, c).map(|p| sq_dev(p, mf)).sum::<f64>() / m;
        (mean as f32, var as f32)
    });
    Ok(r.into_iter().unzip())
}

/// `y = x·scale[c] + shift[c]`, then `max(y, 0)` when `relu`: normalisation and affine in one
/// pass (`scale = weight/√(var+ε)`, `shift = bias − mean·scale`).
///
/// # Errors
/// Lengths inconsistent with `sh`.
pub fn apply(x: &[f32], sh: BnShape, scale: &[f32], shift: &[f32], relu: bool) -> Result<Vec<f32>> {
    let mut y = Vec::with_capacity(x.len());
    apply_into(
        x,
        sh,
        scale,
        shift,
        relu,
        &mut y.spare_capacity_mut()[..x.len()],
    )?;
    // SAFETY: `apply_into` wrote every one of the first `x.len()` elements.
    unsafe { y.set_len(x.len()) };
    Ok(y)
}

/// [`apply`] into `y` (`x.len()` elements, every one written).
///
/// # Errors
/// Lengths inconsistent with `sh`, or `y` not of `x`'s length.
pub fn apply_into(
    x: &[f32],
    sh: BnShape,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
    y: &mut [MaybeUninit<f32>],
) -> Result<()> {
    sh.check("input", x.len())?;
    sh.check_c("scale", scale.len())?;
    sh.check_c("shift", shift.len())?;
    sh.check("output buffer", y.len())?;
    over_planes(y, &sh, |row, dst| {
        let c = row % sh.c;
        affine_row(
            dst,
            &x[row * sh.s..(row + 1) * sh.s],
            scale[c],
            shift[c],
            relu,
        );
    });
    Ok(())
}

/// Calls `f(plane index n·C + c, plane)` for every `S`-element plane of `out`, over the pool.
fn over_planes<T: Send>(out: &mut [T], sh: &BnShape, f: impl Fn(usize, &mut [T]) + Sync) {
    if sh.s == 0 || out.is_empty() {
        return;
    }
    let rows = sh.n * sh.c;
    let per = if out.len() >= PAR_ELEMS {
        rows.div_ceil(num_threads() * 4).max(1)
    } else {
        rows
    };
    for_each_chunk_mut(out, per * sh.s, |ci, chunk| {
        for (k, plane) in chunk.chunks_mut(sh.s).enumerate() {
            f(ci * per + k, plane);
        }
    });
}

/// Gradients of training-mode batch norm, `y = (x − mean)·rstd·weight + bias`, with the
/// batch statistics `mean` and `rstd = 1/√(var+ε)` differentiated too (PyTorch's
/// `native_batch_norm_backward`): with `x̂ = (x − mean)·rstd` and `M = N·S`,
/// `dx = weight·rstd·(g − Σg/M − x̂·Σ(g·x̂)/M)`, `dweight = Σ g·x̂`, `dbias = Σ g`.
/// `weight` `None` means 1. With `relu_out` (the output `y` of a batch norm followed by
/// ReLU), `g` is first masked to `y > 0`: the ReLU's backward fused in.
/// Returns `(dx, dweight, dbias)`; `dx` only when `need_dx`.
///
/// # Errors
/// Lengths inconsistent with `sh`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn backward_train(
    x: &[f32],
    g: &[f32],
    sh: BnShape,
    mean: &[f32],
    rstd: &[f32],
    weight: Option<&[f32]>,
    relu_out: Option<&[f32]>,
    need_dx: bool,
) -> Result<(Option<Vec<f32>>, Vec<f32>, Vec<f32>)> {
    if !need_dx {
        let (dw, db) = backward_train_into(x, g, sh, mean, rstd, weight, relu_out, None)?;
        return Ok((None, dw, db));
    }
    let mut dx = Vec::with_capacity(x.len());
    let (dw, db) = backward_train_into(
        x,
        g,
        sh,
        mean,
        rstd,
        weight,
        relu_out,
        Some(&mut dx.spare_capacity_mut()[..x.len()]),
    )?;
    // SAFETY: `backward_train_into` wrote every one of the first `x.len()` elements.
    unsafe { dx.set_len(x.len()) };
    Ok((Some(dx), dw, db))
}

/// [`backward_train`] writing `dx` into a caller's buffer (`x.len()` elements, every one
/// written) when one is given; returns `(dweight, dbias)`.
///
/// # Errors
/// Lengths inconsistent with `sh`, or `dx` not of `x`'s length.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn backward_train_into(
    x: &[f32],
    g: &[f32],
    sh: BnShape,
    mean: &[f32],
    rstd: &[f32],
    weight: Option<&[f32]>,
    relu_out: Option<&[f32]>,
    dx: Option<&mut [MaybeUninit<f32>]>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    sh.check("input", x.len())?;
    sh.check("grad_output", g.len())?;
    if let Some(y) = relu_out {
        sh.check("output", y.len())?;
    }
    if let Some(d) = &dx {
        sh.check("dx buffer", d.len())?;
    }
    // Σg and Σ g·(x − mean) per channel (g masked to y > 0 under a fused ReLU).
    thread_local! {
        /// The masked gradient of one plane (overwritten whole by `grad_sums`), kept per
        /// thread so that a step allocates none.
        static MASKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let sums = per_channel(&sh, |c| {
        let mc = mean[c];
        let (mut sg, mut sgx) = (0f64, 0f64);
        MASKED.with_borrow_mut(|buf| {
            buf.resize(if relu_out.is_some() { sh.s } else { 0 }, 0.0);
            for (i, (xp, gp)) in planes(x, &sh, c).zip(planes(g, &sh, c)).enumerate() {
                let yp = relu_out.map(|y| &y[i * sh.c * sh.s + c * sh.s..][..sh.s]);
                let (a, b) = grad_sums(xp, gp, yp, mc, &mut buf[..]);
                sg += a;
                sgx += b;
            }
        });
        (sg, sgx)
    });
    let db: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
    let dw: Vec<f32> = sums
        .iter()
        .zip(rstd)
        .map(|(s, &r)| (s.1 * r as f64) as f32)
        .collect();
    let Some(dx) = dx else {
        return Ok((dw, db));
    };
    let m = sh.m() as f64;
    // dx = k·(g − a − (x − mean)·b) per channel, k = w·rstd, a = Σg/M, b = rstd²·Σg(x−mean)/M.
    let coef: Vec<(f32, f32, f32, f32)> = (0..sh.c)
        .map(|c| {
            let r = rstd[c] as f64;
            let k = weight.map_or(1.0, |w| w[c] as f64) * r;
            let a = sums[c].0 / m;
            let b = r * r * sums[c].1 / m;
            (k as f32, a as f32, b as f32, mean[c])
        })
        .collect();
    over_planes(dx, &sh, |row, dst| {
        let span = row * sh.s..(row + 1) * sh.s;
        let ys = relu_out.map(|y| &y[span.clone()]);
        dx_row(dst, &x[span.clone()], &g[span], ys, coef[row % sh.c]);
    });
    Ok((dw, db))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_stats(x: &[f32], sh: BnShape) -> (Vec<f64>, Vec<f64>) {
        let m = sh.m() as f64;
        let mut mean = vec![0f64; sh.c];
        let mut var = vec![0f64; sh.c];
        for c in 0..sh.c {
            for p in planes(x, &sh, c) {
                mean[c] += p.iter().map(|&v| v as f64).sum::<f64>();
            }
            mean[c] /= m;
            for p in planes(x, &sh, c) {
                var[c] += p.iter().map(|&v| (v as f64 - mean[c]).powi(2)).sum::<f64>();
            }
            var[c] /= m;
        }
        (mean, var)
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2000) as f32 / 1000.0 - 1.0 + 3.0
            })
            .collect()
    }

    #[test]
    fn stats_match_f64_reference_on_odd_shapes() {
        for sh in [
            BnShape { n: 3, c: 5, s: 7 },
            BnShape { n: 2, c: 17, s: 33 },
            BnShape { n: 64, c: 3, s: 1 },
            BnShape { n: 8, c: 70, s: 64 },
        ] {
            let x = data(sh.len(), sh.c as u32);
            let (m, v) = stats(&x, sh).unwrap();
            let (rm, rv) = naive_stats(&x, sh);
            for c in 0..sh.c {
                assert!((m[c] as f64 - rm[c]).abs() < 1e-5, "{sh:?} mean {c}");
                assert!((v[c] as f64 - rv[c]).abs() < 1e-5, "{sh:?} var {c}");
            }
        }
    }

    #[test]
    fn apply_with_relu_clamps() {
        let sh = BnShape { n: 2, c: 2, s: 3 };
        let x = [1., -1., 2., 0., 1., 2., 3., 4., 5., -3., -2., -1.];
        let y = apply(&x, sh, &[2.0, -1.0], &[0.5, 0.0], true).unwrap();
        let want = [2.5, 0., 4.5, 0., 0., 0., 6.5, 8.5, 10.5, 3., 2., 1.];
        assert_eq!(y, want);
        let y = apply(&x, sh, &[2.0, -1.0], &[0.5, 0.0], false).unwrap();
        assert_eq!(y[4], -1.0);
    }

    #[test]
    fn backward_matches_finite_differences() {
        // Loss L = Σ r·y for a fixed random r; dL/dx by central differences in f64 vs the kernel.
        let sh = BnShape { n: 3, c: 2, s: 5 };
        let x = data(sh.len(), 7);
        let r = data(sh.len(), 9);
        let w = [1.5f32, -0.7];
        let eps = 1e-5f64;
        let loss = |x: &[f64]| -> f64 {
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let (mean, var) = naive_stats(&xf, sh);
            let _ = xf;
            let mut l = 0.0;
            for i in 0..sh.n {
                for c in 0..sh.c {
                    for s in 0..sh.s {
                        let at = (i * sh.c + c) * sh.s + s;
                        let xh = (x[at] - mean[c]) / (var[c] + eps).sqrt();
                        l += r[at] as f64 * xh * w[c] as f64;
                    }
                }
            }
            l
        };
        let (mean, var) = stats(&x, sh).unwrap();
        let rstd: Vec<f32> = var.iter().map(|&v| 1.0 / (v + eps as f32).sqrt()).collect();
        let (dx, dw, db) = backward_train(&x, &r, sh, &mean, &rstd, Some(&w), None, true).unwrap();
        let dx = dx.unwrap();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for at in 0..sh.len() {
            let h = 1e-3;
            let (mut a, mut b) = (x64.clone(), x64.clone());
            a[at] += h;
            b[at] -= h;
            // Stats in the closure go through f32, so use a loose tolerance.
            let fd = (loss(&a) - loss(&b)) / (2.0 * h);
            assert!(
                (fd - dx[at] as f64).abs() < 2e-2,
                "dx[{at}]: {fd} vs {}",
                dx[at]
            );
        }
        for c in 0..sh.c {
            let sg: f64 = planes(&r, &sh, c).flatten().map(|&v| v as f64).sum();
            assert!((sg - db[c] as f64).abs() < 1e-4);
            let sgx: f64 = planes(&r, &sh, c)
                .flatten()
                .zip(planes(&x, &sh, c).flatten())
                .map(|(&g, &u)| g as f64 * (u - mean[c]) as f64 * rstd[c] as f64)
                .sum();
            assert!((sgx - dw[c] as f64).abs() < 1e-3);
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        let sh = BnShape { n: 2, c: 3, s: 4 };
        assert!(stats(&[0.0; 5], sh).is_err());
        assert!(apply(&[0.0; 24], sh, &[1.0; 2], &[0.0; 3], false).is_err());
        assert!(BnShape::of(&[4]).is_err());
    }
}
