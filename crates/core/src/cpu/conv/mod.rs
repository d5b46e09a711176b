//! 2-D convolution and its two backward passes on the CPU.
//!
//! Five implementations, chosen once per call by [`Conv2dImpl::choose`] (the model is
//! candle's `cpu_backend/conv2d.rs`), fastest first:
//! - [`winograd`]: Winograd F(2×2, 3×3) for many-channel 3×3 stride-1 f32 layers: forward,
//!   input gradient and weight gradient (`winograd/wgrad.rs`; `MLFW_CONV_WINOGRAD_WGRAD=0`
//!   sends the weight gradient to the blocked or wide path);
//! - [`direct`]: AVX-512 f32 kernels without im2col or gemm, for stride-1 convolutions with
//!   few weights (LeNet-sized), in the wide layout;
//! - [`blocked`]: AVX-512 f32 kernels with output channels in the register lanes, for
//!   stride-1 convolutions with many channels (ResNet's and VGG's 3×3 layers), also in the
//!   wide layout;
//! - [`wide`]: stride-1 convolutions by "wide" im2col (one contiguous copy per `col` row,
//!   images stacked per gemm);
//! - [`im2col`]: the general im2col/col2im path (strides > 1, 1×1 kernels).
//!
//! The last two share the gemm products of [`gemm`]; all four the geometry, per-thread
//! scratch and batch split of [`geom`]. With K = C/g·kH·kW per group and P = oH·oW:
//! - forward: `outᵀ[P, O] = colᵀ[P, K] · Wᵀ[K, O]`, one product per image;
//! - input grad: `dcolᵀ[P, K] = dYᵀ[P, O] · W[O, K]` per image, then col2im adds `dcol` back;
//! - weight grad: `dWᵀ[K, O] = col[K, B·P] · dYᵀ[B·P, O]` over a chunk of B images at once,
//!   chunks summed at the end.
//!
//! The products are written transposed so that gemm's long `m` side is the spatial size P.
//! Images are spread over the thread pool, each thread with its own scratch. f16/bf16
//! compute in f32.

mod blocked;
mod direct;
mod gemm;
mod geom;
mod im2col;
mod phase;
mod wide;
mod winograd;

use super::f32_view::{as_f32, as_f32_mut, as_f32_uninit};
use super::map::{contiguous_cow, to_dtype};
use crate::params::Conv2dParams;
use crate::{CpuStorage, DType, Error, Layout, Result, WithDType};
use blocked::Src;
use geom::{dims4, Geom};
use phase::Phase;
use std::any::TypeId;
use std::mem::MaybeUninit;
use wide::Wide;

/// How one convolution is computed; see the module docs.
#[derive(Debug, Clone, Copy)]
enum Conv2dImpl {
    /// Winograd F(2×2, 3×3) forward, input gradient and weight gradient (f32 only); with the
    /// Winograd weight gradient switched off (`wgrad_on`), the weight gradient on the blocked
    /// kernels when the flag is set, else on the wide im2col path.
    Winograd(Wide, bool),
    /// AVX-512 direct kernels in the wide layout (f32 only).
    Direct(Wide),
    /// AVX-512 blocked direct kernels, output channels in the lanes (f32 only).
    Blocked(Wide),
    /// The blocked forward kernel on the stride phases of the input (strided f32 layers
    /// with small outputs, see [`phase::MAX_POSITIONS`]; both gradients take the im2col
    /// path).
    Strided(Phase),
    /// Wide im2col + gemm.
    Wide(Wide),
    /// General im2col + gemm.
    Im2col,
}

impl Conv2dImpl {
    /// The input layout of the blocked kernels, for the paths that use them.
    fn blocked_src(self) -> Option<Src> {
        match self {
            Conv2dImpl::Blocked(w) | Conv2dImpl::Winograd(w, true) => Some(Src::wide(w)),
            Conv2dImpl::Strided(q) => Some(Src::phase(q)),
            _ => None,
        }
    }

    /// The fastest implementation for geometry `g` with elements of type `T`.
    fn choose<T: 'static>(g: &Geom) -> Self {
        match Wide::new(g) {
            Some(w) if TypeId::of::<T>() == TypeId::of::<f32>() && winograd::usable(g) => {
                Conv2dImpl::Winograd(w, blocked::usable(g))
            }
            Some(w) if TypeId::of::<T>() == TypeId::of::<f32>() && direct::usable(g) => {
                Conv2dImpl::Direct(w)
            }
            Some(w) if TypeId::of::<T>() == TypeId::of::<f32>() && blocked::usable(g) => {
                Conv2dImpl::Blocked(w)
            }
            Some(w) => Conv2dImpl::Wide(w),
            None => match Phase::new(g) {
                Some(q)
                    if TypeId::of::<T>() == TypeId::of::<f32>()
                        && g.np() <= phase::MAX_POSITIONS
                        && blocked::usable(g) =>
                {
                    Conv2dImpl::Strided(q)
                }
                _ => Conv2dImpl::Im2col,
            },
        }
    }
}

fn fwd<T: WithDType>(x: &[T], w: &[T], g: &Geom) -> Vec<T> {
    let len = g.n * g.o * g.np();
    let mut out = Vec::<T>::with_capacity(len);
    fwd_into(x, w, g, &mut out.spare_capacity_mut()[..len]);
    // SAFETY: `fwd_into` writes every element of the slice it is given.
    unsafe { out.set_len(len) };
    out
}

/// Every element of `out` written as all zeros.
fn zeroed<T: WithDType>(out: &mut [MaybeUninit<T>]) -> &mut [T] {
    out.iter_mut().for_each(|e| {
        e.write(T::ZERO);
    });
    // SAFETY: every element was just initialised; `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The forward into `out` (`N·O·oH·oW` elements, written whole): the direct, Winograd and
/// blocked kernels write every element; the gemm paths accumulate into zeros.
fn fwd_into<T: WithDType>(x: &[T], w: &[T], g: &Geom, out: &mut [MaybeUninit<T>]) {
    let imp = Conv2dImpl::choose::<T>(g);
    if let (Some(xf), Some(wf), Some(o)) = (as_f32(x), as_f32(w), as_f32_uninit(out)) {
        let written = match imp {
            Conv2dImpl::Direct(wide) => {
                direct::fwd(xf, wf, None, g, &wide, o);
                true
            }
            Conv2dImpl::Winograd(..) => {
                winograd::fwd(xf, wf, g, o);
                true
            }
            _ => imp
                .blocked_src()
                .map(|src| blocked::fwd(xf, wf, g, &src, o))
                .is_some(),
        };
        if written {
            return;
        }
    }
    let out = zeroed(out);
    match imp {
        Conv2dImpl::Direct(wide)
        | Conv2dImpl::Winograd(wide, _)
        | Conv2dImpl::Blocked(wide)
        | Conv2dImpl::Wide(wide) => wide::fwd(x, w, g, &wide, out),
        Conv2dImpl::Strided(_) | Conv2dImpl::Im2col => im2col::fwd(x, w, g, out),
    }
}

fn bwd_input<T: WithDType + std::ops::AddAssign>(dy: &[T], w: &[T], g: &Geom) -> Vec<T> {
    let len = g.n * g.img();
    let mut dx = Vec::<T>::with_capacity(len);
    bwd_input_into(dy, w, g, &mut dx.spare_capacity_mut()[..len]);
    // SAFETY: `bwd_input_into` writes every element of the slice it is given.
    unsafe { dx.set_len(len) };
    dx
}

/// The input gradient into `dx` (`N·C·H·W` elements, written whole): the Winograd and
/// blocked kernels write every element; the others add into zeros.
fn bwd_input_into<T: WithDType + std::ops::AddAssign>(
    dy: &[T],
    w: &[T],
    g: &Geom,
    dx: &mut [MaybeUninit<T>],
) {
    let imp = Conv2dImpl::choose::<T>(g);
    if let (Conv2dImpl::Winograd(..), Some(dyf), Some(wf)) = (imp, as_f32(dy), as_f32(w)) {
        if let Some(d) = as_f32_uninit(dx) {
            winograd::bwd_input(dyf, wf, g, d);
            return;
        }
    }
    if let (Conv2dImpl::Blocked(_), Some(dyf), Some(wf)) = (imp, as_f32(dy), as_f32(w)) {
        if let Some(d) = as_f32_uninit(dx) {
            // The blocked kernel returns `None` before writing anything when it cannot.
            if blocked::bwd_input(dyf, wf, g, d).is_some() {
                return;
            }
        }
    }
    let dx = zeroed(dx);
    match imp {
        Conv2dImpl::Direct(wide) => {
            if let (Some(dy), Some(w), Some(d)) = (as_f32(dy), as_f32(w), as_f32_mut(dx)) {
                direct::bwd_input(dy, w, g, &wide, d);
            }
        }
        Conv2dImpl::Blocked(wide) | Conv2dImpl::Winograd(wide, _) | Conv2dImpl::Wide(wide) => {
            wide::bwd_input(dy, w, g, &wide, dx)
        }
        Conv2dImpl::Strided(_) | Conv2dImpl::Im2col => im2col::bwd_input(dy, w, g, dx),
    }
}

thread_local! {
    static WGRAD: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// While alive, this thread's f32 weight gradients of Winograd-shaped convolutions (3×3,
/// stride 1, dilation 1, groups 1, padding ≤ 2, ≥ 32 channels in and out, AVX-512 CPUs)
/// take the Winograd weight-gradient kernel (`on`) or the blocked direct one (`!on`),
/// whatever the process default; restores the previous setting when dropped (for A/B runs).
#[must_use = "the setting lasts while the guard lives"]
pub struct WinogradWgrad(Option<bool>);

impl Drop for WinogradWgrad {
    fn drop(&mut self) {
        WGRAD.set(self.0);
    }
}

/// Chooses the Winograd F(2×2, 3×3) weight gradient (`on`) or the blocked direct kernel for
/// this thread until the guard drops (see [`WinogradWgrad`]). Results agree with the blocked
/// kernel's to rounding (both ≤ 1e-6 relative of an f64 reference on ResNet shapes), not bit
/// for bit. Eager steps and compiled plans take the same default, so they stay bit-identical.
pub fn winograd_wgrad(on: bool) -> WinogradWgrad {
    WinogradWgrad(WGRAD.replace(Some(on)))
}

/// Whether this thread's weight gradients take Winograd: the [`winograd_wgrad`] guard's
/// choice, else the process default: on, unless `MLFW_CONV_WINOGRAD_WGRAD=0`.
fn wgrad_on() -> bool {
    static DEFAULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    WGRAD.get().unwrap_or_else(|| {
        *DEFAULT.get_or_init(|| {
            std::env::var("MLFW_CONV_WINOGRAD_WGRAD").map_or(true, |v| v.trim() != "0")
        })
    })
}

fn bwd_weight<T: WithDType + std::ops::Add<Output = T>>(x: &[T], dy: &[T], g: &Geom) -> Vec<T> {
    let out_len = g.o * g.k();
    if g.n == 0 || g.np() == 0 || out_len == 0 {
        return vec![T::ZERO; out_len];
    }
    let imp = Conv2dImpl::choose::<T>(g);
    match imp {
        Conv2dImpl::Direct(wide) => {
            let mut out = vec![T::ZERO; out_len];
            if let (Some(xf), Some(dyf), Some(o)) = (as_f32(x), as_f32(dy), as_f32_mut(&mut out)) {
                o.copy_from_slice(&direct::bwd_weight(xf, dyf, g, &wide));
            }
            out
        }
        Conv2dImpl::Winograd(..) if wgrad_on() => match (as_f32(x), as_f32(dy)) {
            // The f32 result is already a `Vec<T>` (T is f32): handed over, not copied.
            (Some(xf), Some(dyf)) => {
                let dw: Box<dyn std::any::Any> = Box::new(winograd::bwd_weight(xf, dyf, g));
                dw.downcast::<Vec<T>>()
                    .map_or_else(|_| vec![T::ZERO; out_len], |v| *v)
            }
            _ => vec![T::ZERO; out_len],
        },
        Conv2dImpl::Blocked(_) | Conv2dImpl::Winograd(_, true) => {
            match (as_f32(x), as_f32(dy), imp.blocked_src()) {
                // The f32 result is already a `Vec<T>` (T is f32): handed over, not copied.
                (Some(xf), Some(dyf), Some(src)) => {
                    let dw: Box<dyn std::any::Any> =
                        Box::new(blocked::bwd_weight(xf, dyf, g, &src));
                    dw.downcast::<Vec<T>>()
                        .map_or_else(|_| vec![T::ZERO; out_len], |v| *v)
                }
                _ => vec![T::ZERO; out_len],
            }
        }
        Conv2dImpl::Wide(wide) | Conv2dImpl::Winograd(wide, false) => {
            gemm::bwd_weight_chunked(g, |range, acc| {
                wide::bwd_weight_chunk(x, dy, g, &wide, range, acc)
            })
        }
        Conv2dImpl::Strided(_) | Conv2dImpl::Im2col => gemm::bwd_weight_chunked(g, |range, acc| {
            im2col::bwd_weight_chunk(x, dy, g, range, acc)
        }),
    }
}

/// Runs an f32 kernel on half-precision inputs and converts the result back.
fn via_f32(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    f: impl Fn(&CpuStorage, &Layout, &CpuStorage, &Layout) -> Result<CpuStorage>,
) -> Result<CpuStorage> {
    let dt = a.dtype();
    let a32 = to_dtype(a, al, DType::F32);
    let b32 = to_dtype(b, bl, DType::F32);
    let r = f(
        &a32,
        &Layout::contiguous(al.shape().clone()),
        &b32,
        &Layout::contiguous(bl.shape().clone()),
    )?;
    Ok(to_dtype(&r, &Layout::contiguous(r.len()), dt))
}

/// Dispatches a two-input float kernel over dtypes; inputs are made contiguous first.
macro_rules! dispatch {
    ($op:expr, $a:expr, $al:expr, $b:expr, $bl:expr, $kernel:ident, $g:expr, $again:expr) => {
        match ($a, $b) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => Ok(CpuStorage::F32($kernel(
                &contiguous_cow(x, $al),
                &contiguous_cow(y, $bl),
                $g,
            ))),
            (CpuStorage::F64(x), CpuStorage::F64(y)) => Ok(CpuStorage::F64($kernel(
                &contiguous_cow(x, $al),
                &contiguous_cow(y, $bl),
                $g,
            ))),
            (CpuStorage::F16(_), CpuStorage::F16(_))
            | (CpuStorage::BF16(_), CpuStorage::BF16(_)) => via_f32($a, $al, $b, $bl, $again),
            (x, y) if x.dtype() == y.dtype() => Err(Error::UnsupportedDType {
                op: $op,
                dtype: x.dtype(),
            }),
            (x, y) => Err(Error::DTypeMismatch {
                op: $op,
                lhs: x.dtype(),
                rhs: y.dtype(),
            }),
        }
    };
}

/// Per-image epilogue of [`conv2d_direct_each`]: `(image, wide output, (plane stride, row
/// stride), image's chunk of a, image's chunk of b)`.
pub(crate) type DirectEpilogue<'a> =
    &'a (dyn Fn(usize, &[f32], (usize, usize), &mut [f32], &mut [i64]) + Sync);

/// For compiled plans' fused steps (`graph::compile::conv_pool`): when eager would compute
/// this f32 convolution (input `[N, C, H, W]`, weight `[O, C/g, kH, kW]`, both contiguous
/// slices, no bias) on the direct kernels, computes it image by image and hands each image's
/// output to `epi` instead of storing it (see `direct::fwd_each`), then returns `Ok(true)`.
/// Returns `Ok(false)`, running nothing, when eager would take another kernel (whose
/// roundings differ) — the caller then runs the plain op.
///
/// # Errors
/// Inconsistent geometry, or slices whose lengths do not fit it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_direct_each(
    x: &[f32],
    xd: (usize, usize, usize, usize),
    w: &[f32],
    wd: (usize, usize, usize, usize),
    p: &Conv2dParams,
    a: (&mut [f32], usize),
    b: (&mut [i64], usize),
    epi: DirectEpilogue<'_>,
) -> Result<bool> {
    let op = "conv2d (fused epilogue)";
    let g = Geom::new(op, xd, wd, None, p)?;
    if x.len() != g.n * g.img() || w.len() != g.o * g.k() {
        return Err(Error::msg(format!(
            "{op}: slices of {} and {} elements do not fit input {xd:?} and weight {wd:?}",
            x.len(),
            w.len()
        )));
    }
    if a.0.len() != g.n * a.1 || b.0.len() != g.n * b.1 {
        return Err(Error::msg(format!(
            "{op}: outputs of {} and {} elements are not {} images of {} and {}",
            a.0.len(),
            b.0.len(),
            g.n,
            a.1,
            b.1
        )));
    }
    match Conv2dImpl::choose::<f32>(&g) {
        Conv2dImpl::Direct(wide) => {
            direct::fwd_each(x, w, &g, &wide, a, b, epi);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Per-image output gradient writer of [`conv2d_backward_weight_direct_each`]:
/// `(image, its [O, oH, oW] gradient to write)`.
pub(crate) type DenseGrad<'a> = &'a (dyn Fn(usize, &mut [f32]) + Sync);

/// For compiled plans' fused steps (`graph::compile::pool_relu`): when eager would compute
/// this f32 weight gradient (input `x` `[N, C, H, W]` contiguous, weight dims `wd`
/// `[O, C/g, kH, kW]`) on the direct kernels, computes it with each image's output gradient
/// `[O, oH, oW]` written by `dy(i, buf)` into the thread's scratch just before it is read
/// (see `direct::bwd_weight_each`), so the full-size gradient is never stored; bit-identical
/// to eager's `conv2d_backward_weight` on the gradient `dy` writes. With `input_grad =
/// (weight, dx)`, also writes the input gradient `dx` `[N, C, H, W]` from the same
/// per-image gradients, bit-identical to eager's `conv2d_backward_input` (eager takes the
/// direct kernels for both or for neither). Returns `Ok(None)`, running nothing, when eager
/// would take another kernel.
///
/// # Errors
/// Inconsistent geometry, or a slice that does not fit it.
pub(crate) fn conv2d_backward_weight_direct_each(
    x: &[f32],
    xd: (usize, usize, usize, usize),
    wd: (usize, usize, usize, usize),
    p: &Conv2dParams,
    dy: DenseGrad<'_>,
    input_grad: Option<(&[f32], &mut [f32])>,
) -> Result<Option<Vec<f32>>> {
    let op = "conv2d_backward_weight (fused gradient)";
    let g = Geom::new(op, xd, wd, None, p)?;
    if x.len() != g.n * g.img() {
        return Err(Error::msg(format!(
            "{op}: a slice of {} elements does not fit input {xd:?}",
            x.len()
        )));
    }
    if g.n == 0 || g.np() == 0 || g.o * g.k() == 0 {
        return Ok(None);
    }
    match (Conv2dImpl::choose::<f32>(&g), input_grad) {
        (Conv2dImpl::Direct(wide), None) => Ok(Some(direct::bwd_weight_each(x, &g, &wide, dy))),
        (Conv2dImpl::Direct(wide), Some((wt, dx))) => {
            if wt.len() != g.o * g.k() || dx.len() != g.n * g.img() {
                return Err(Error::msg(format!(
                    "{op}: a weight of {} or an input gradient of {} elements does not fit weight {wd:?} and input {xd:?}",
                    wt.len(),
                    dx.len()
                )));
            }
            Ok(Some(direct::bwd_both_each(x, wt, &g, &wide, dy, dx)))
        }
        _ => Ok(None),
    }
}

/// Convolution without bias: input `[N, C, H, W]`, weight `[O, C/g, kH, kW]` → `[N, O, oH, oW]`.
pub(crate) fn conv2d(
    x: &CpuStorage,
    xl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    p: &Conv2dParams,
) -> Result<CpuStorage> {
    let g = Geom::new(
        "conv2d",
        dims4(xl, "conv2d")?,
        dims4(wl, "conv2d")?,
        None,
        p,
    )?;
    dispatch!("conv2d", x, xl, w, wl, fwd, &g, |a, al, b, bl| conv2d(
        a, al, b, bl, p
    ))
}

/// The geometry of an input gradient: grad_out `gl` `[N, O, oH, oW]`, weight `wl`.
fn bwd_input_geom(
    gl: &Layout,
    wl: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<Geom> {
    let op = "conv2d_backward_input";
    let (n, o, oh, ow) = dims4(gl, op)?;
    let (wo, cg, kh, kw) = dims4(wl, op)?;
    if wo != o {
        return Err(Error::msg(format!(
            "{op}: grad_out has {o} channels but the weight has {wo} output channels"
        )));
    }
    let x = (n, cg * p.groups, input_hw.0, input_hw.1);
    Geom::new(op, x, (o, cg, kh, kw), Some((oh, ow)), p)
}

/// Gradient w.r.t. the input: grad_out `[N, O, oH, oW]`, weight → `[N, C, H, W]` for `input_hw`.
pub(crate) fn conv2d_backward_input(
    gy: &CpuStorage,
    gl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CpuStorage> {
    let op = "conv2d_backward_input";
    let g = bwd_input_geom(gl, wl, p, input_hw)?;
    dispatch!(op, gy, gl, w, wl, bwd_input, &g, |a, al, b, bl| {
        conv2d_backward_input(a, al, b, bl, p, input_hw)
    })
}

/// Gradient w.r.t. the weight: input `[N, C, H, W]`, grad_out → `[O, C/g, kH, kW]`.
pub(crate) fn conv2d_backward_weight(
    x: &CpuStorage,
    xl: &Layout,
    gy: &CpuStorage,
    gl: &Layout,
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    let op = "conv2d_backward_weight";
    let (n, c, h, w) = dims4(xl, op)?;
    let (gn, o, oh, ow) = dims4(gl, op)?;
    if gn != n || p.groups == 0 || c % p.groups != 0 {
        return Err(Error::msg(format!(
            "{op}: input {} and grad_out {} do not fit groups {}",
            xl.shape(),
            gl.shape(),
            p.groups
        )));
    }
    let wd = (o, c / p.groups, kernel_hw.0, kernel_hw.1);
    let g = Geom::new(op, (n, c, h, w), wd, Some((oh, ow)), p)?;
    dispatch!(op, x, xl, gy, gl, bwd_weight, &g, |a, al, b, bl| {
        conv2d_backward_weight(a, al, b, bl, p, kernel_hw)
    })
}

/// `out` (f32, any prior contents) seen as uninitialised memory for the kernels above.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the kernels only ever write initialised f32 values through it.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Checks that a caller's output buffer holds exactly `want` elements.
fn check_out(op: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{op} into: output buffer of {got} elements, the result needs {want}"
    )))
}

/// [`conv2d`] for f32 into `out` (the contiguous `[N, O, oH, oW]` result, any prior
/// contents, every element written): the same kernel and arithmetic, so bit-identical.
///
/// # Errors
/// As [`conv2d`]; `out` not of `N·O·oH·oW` elements.
pub(crate) fn conv2d_f32_into(
    x: &[f32],
    xl: &Layout,
    w: &[f32],
    wl: &Layout,
    p: &Conv2dParams,
    out: &mut [f32],
) -> Result<()> {
    let op = "conv2d";
    let g = Geom::new(op, dims4(xl, op)?, dims4(wl, op)?, None, p)?;
    check_out(op, out.len(), g.n * g.o * g.np())?;
    let (x, w) = (contiguous_cow(x, xl), contiguous_cow(w, wl));
    fwd_into(&x, &w, &g, as_uninit(out));
    Ok(())
}

/// [`conv2d_backward_input`] for f32 into `out` (the contiguous `[N, C, H, W]` gradient,
/// any prior contents, every element written), bit-identical to it.
///
/// # Errors
/// As [`conv2d_backward_input`]; `out` not of `N·C·H·W` elements.
pub(crate) fn conv2d_backward_input_f32_into(
    gy: &[f32],
    gl: &Layout,
    w: &[f32],
    wl: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
    out: &mut [f32],
) -> Result<()> {
    let op = "conv2d_backward_input";
    let g = bwd_input_geom(gl, wl, p, input_hw)?;
    check_out(op, out.len(), g.n * g.img())?;
    let (gy, w) = (contiguous_cow(gy, gl), contiguous_cow(w, wl));
    bwd_input_into(&gy, &w, &g, as_uninit(out));
    Ok(())
}
