//! Launching the fused kernels of [`crate::fused`]: the argument list a generated kernel
//! takes ([`launch_args`]), how an input's layout becomes its [`Walk`], and the launch
//! itself (compiled once per signature, the module loaded once per device).
//!
//! Nothing here has run on a GPU yet; the argument layout is checked against the generated
//! source on the CPU (`tests/fused_launch.rs`), the launch in `tests/cuda/fused_plan.rs`.

use crate::buffer::CudaStorage;
use crate::context::CudaDevice;
use cudarc::driver::{DeviceRepr, PushKernelArg};
use mlfw_core::graph::{FusedGroup, LoadKind};
use mlfw_core::{DType, Error, Layout, Result, Shape, Tensor};
use std::path::PathBuf;
use std::sync::Arc;

/// Most dims a strided load walks after merging (`dims[8]` in the generated `struct Walk`).
pub const WALK_DIMS: usize = 8;

/// How a kernel walks one input: element `i` of the group (row-major over `dims[..rank]`)
/// is at `offset + Σ c_d · strides[d]`. Same C layout as `struct Walk` in the generated
/// source: 8 + 8 u64, a u64, an int and padding to 144 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    pub dims: [u64; WALK_DIMS],
    pub strides: [u64; WALK_DIMS],
    pub offset: u64,
    pub rank: i32,
    pub pad: i32,
}

// SAFETY: plain-old-data with the same C layout as the generated `struct Walk`.
unsafe impl DeviceRepr for Walk {}

/// One argument of a generated fused kernel, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `unsigned long long n`: the element count.
    Count,
    /// `const float*` / `const bool*` of load `i`.
    Input(usize, DType),
    /// The `Walk` of load `i`, by value.
    Walk(usize),
    /// `float*` / `bool*` of store `j` (contiguous).
    Output(usize, DType),
}

/// The arguments of [`fused_source`]`(g)`'s kernel, in order: the count, per load its
/// pointer and walk, per store its pointer.
pub fn launch_args(g: &FusedGroup) -> Vec<Arg> {
    let mut a = vec![Arg::Count];
    for (i, (dt, _)) in g.loads.iter().enumerate() {
        a.push(Arg::Input(i, *dt));
        a.push(Arg::Walk(i));
    }
    for (j, (_, dt)) in g.stores.iter().enumerate() {
        a.push(Arg::Output(j, *dt));
    }
    a
}

/// The load kind and walk of layout `l` read as a group of `shape` (broadcast to it when
/// its shape differs): contiguous from an offset, one broadcast element, or a strided walk
/// over its dims with size-1 dims dropped and contiguous neighbours merged.
///
/// # Errors
/// `l` does not broadcast to `shape`; more than [`WALK_DIMS`] dims remain after merging.
pub fn walk_of(l: &Layout, shape: &[usize]) -> Result<(LoadKind, Walk)> {
    let b;
    let l = if l.dims() == shape {
        l
    } else {
        b = l.broadcast_as(&Shape::new(shape.to_vec()))?;
        &b
    };
    let mut w = Walk {
        dims: [1; WALK_DIMS],
        strides: [0; WALK_DIMS],
        offset: l.offset() as u64,
        rank: 0,
        pad: 0,
    };
    if let Some((s, _)) = l.contiguous_range() {
        w.offset = s as u64;
        return Ok((LoadKind::Contiguous, w));
    }
    if l.strides().iter().all(|&s| s == 0) {
        return Ok((LoadKind::Scalar, w));
    }
    let mut r = 0;
    for (&d, &s) in l.dims().iter().zip(l.strides()) {
        if d == 1 {
            continue;
        }
        if r > 0 && w.strides[r - 1] == (s * d) as u64 {
            w.dims[r - 1] *= d as u64;
            w.strides[r - 1] = s as u64;
        } else if r == WALK_DIMS {
            return Err(Error::msg(format!(
                "fused CUDA kernel: an input view has more than {WALK_DIMS} dims after merging (dims {:?}, strides {:?})",
                l.dims(),
                l.strides()
            )));
        } else {
            w.dims[r] = d as u64;
            w.strides[r] = s as u64;
            r += 1;
        }
    }
    w.rank = r as i32;
    Ok((LoadKind::Strided { rank: shape.len() }, w))
}

/// Where compiled fused kernels are kept: `$MLFW_CUDA_CACHE`, else
/// [`mlfw_core::mlfw_home`]`/kernels` (`$MLFW_HOME/kernels`, by default
/// `~/.cache/mlfw/kernels`).
pub fn kernel_cache_dir() -> PathBuf {
    match std::env::var_os("MLFW_CUDA_CACHE").filter(|v| !v.is_empty()) {
        Some(d) => d.into(),
        None => mlfw_core::mlfw_home().join("kernels"),
    }
}

fn cuda_of<'a>(
    dev: &CudaDevice,
    s: &'a dyn mlfw_core::BackendStorage,
    dt: DType,
) -> Result<&'a CudaStorage> {
    match s.as_any().downcast_ref::<CudaStorage>() {
        Some(c) if c.dev.ordinal == dev.ordinal && c.dtype == dt => Ok(c),
        Some(c) if c.dev.ordinal == dev.ordinal => Err(Error::msg(format!(
            "fused CUDA kernel: expected a {dt} buffer, got {}",
            c.dtype
        ))),
        _ => Err(Error::msg(format!(
            "fused CUDA kernel: every tensor must be on cuda:{}, got one on {:?}",
            dev.ordinal,
            s.device()
        ))),
    }
}

/// Runs fused group `g` on `dev` (see [`mlfw_core::Backend::run_fused`]).
pub(crate) fn run(
    dev: &Arc<CudaDevice>,
    g: &FusedGroup,
    inputs: &[&Tensor],
    outputs: Option<&[Tensor]>,
) -> Result<Vec<Tensor>> {
    if inputs.len() != g.loads.len() {
        return Err(Error::msg(format!(
            "fused CUDA kernel: {} inputs for {} loads",
            inputs.len(),
            g.loads.len()
        )));
    }
    let n: usize = g.shape.iter().product();
    // The real layouts decide the kernel's load kinds (compilation's are a guess).
    let mut real = g.clone();
    let mut walks = Vec::with_capacity(inputs.len());
    for (i, t) in inputs.iter().enumerate() {
        let (kind, w) = walk_of(t.layout(), &g.shape)?;
        real.loads[i] = (t.dtype(), kind);
        walks.push(w);
    }
    let outs: Vec<Tensor> = match outputs {
        Some(o) if o.len() == g.stores.len() => o.to_vec(),
        Some(o) => {
            return Err(Error::msg(format!(
                "fused CUDA kernel: {} output buffers for {} stores",
                o.len(),
                g.stores.len()
            )))
        }
        None => g
            .stores
            .iter()
            .map(|&(_, dt)| {
                Tensor::from_backend_storage(
                    Box::new(CudaStorage::alloc(dev, dt, n)?),
                    g.shape.clone(),
                )
            })
            .collect::<Result<_>>()?,
    };
    if n == 0 {
        return Ok(outs);
    }
    let func = dev.fused_func(&real, || {
        let c = crate::fused::compile_fused(
            &real,
            dev.cc,
            crate::compile::Output::Cubin,
            &kernel_cache_dir(),
        )?;
        Ok((c.module.key.clone(), c.module.image))
    })?;
    let iguards: Vec<_> = inputs.iter().map(|t| t.storage()).collect();
    let oguards: Vec<_> = outs.iter().map(|t| t.storage()).collect();
    let mut ptrs: Vec<u64> = Vec::with_capacity(inputs.len() + outs.len());
    for (gd, (dt, _)) in iguards.iter().zip(&real.loads) {
        ptrs.push(cuda_of(dev, gd.as_ref(), *dt)?.ptr());
    }
    for ((gd, t), (_, dt)) in oguards.iter().zip(&outs).zip(&g.stores) {
        let c = cuda_of(dev, gd.as_ref(), *dt)?;
        let off = t.layout().contiguous_range().map(|(s, _)| s);
        match off {
            Some(s) if c.len >= s + n => ptrs.push(c.ptr_at(s)),
            _ => {
                return Err(Error::msg(
                    "fused CUDA kernel: an output buffer is not contiguous or too small",
                ))
            }
        }
    }
    let count = n as u64;
    let args = launch_args(&real);
    let mut b = dev.stream.launch_builder(&func);
    let (mut pi, nl) = (0, inputs.len());
    for a in &args {
        match *a {
            Arg::Count => b.arg(&count),
            Arg::Input(i, _) => b.arg(&ptrs[i]),
            Arg::Walk(i) => b.arg(&walks[i]),
            Arg::Output(j, _) => {
                pi += 1;
                b.arg(&ptrs[nl + j])
            }
        };
    }
    debug_assert_eq!(pi, outs.len());
    // SAFETY: the arguments follow `launch_args`, which the generated signature matches
    // (checked in tests/fused_launch.rs); every pointer is a live buffer of this device
    // covering the elements its walk or the count reaches.
    unsafe { b.launch(crate::ops::cfg_1d(n)) }
        .map(|_| ())
        .map_err(|e| Error::msg(format!("fused CUDA kernel launch: {e:?}")))?;
    drop((iguards, oguards));
    Ok(outs)
}
