//! Compiling the kernel modules with NVRTC: the one function the device code and the tests
//! share, so what CI compiles is exactly what runs on a GPU.
//!
//! For a device, modules are compiled to a cubin for its own architecture (`sm_XY`): a
//! cubin carries no PTX ISA version, so a newer NVRTC than the driver (NVRTC 13.5 writes
//! PTX ISA 9.5, which a CUDA 13.0 driver refuses) cannot make it unloadable. The NVRTC
//! library is opened at run time; its absence is an error, never a panic.

use crate::kernels::{source, suffix};
use mlfw_core::{DType, Error, Result};
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The per-dtype kernel modules; `cast` and `fill` hold every dtype at once.
pub const PER_DTYPE_MODULES: [&str; 7] = [
    "elementwise",
    "reduce",
    "index",
    "pool",
    "conv",
    "optim",
    "random",
];

/// Every module variant a device may compile: `(module, dtype)` (51 in all).
pub fn module_variants() -> Vec<(&'static str, Option<DType>)> {
    let mut v = vec![("cast", None), ("fill", None)];
    for m in PER_DTYPE_MODULES {
        for dt in crate::kernels::ALL {
            v.push((m, Some(dt)));
        }
    }
    v
}

/// What NVRTC produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// PTX for `compute_XY` (assembled by the driver when loaded).
    Ptx,
    /// A cubin for `sm_XY` (loaded as is).
    Cubin,
}

/// A compiled module: its key (`module` or `module_dtype`), the image to load, and NVRTC's
/// log (empty when there was nothing to say).
#[derive(Debug, Clone)]
pub struct CompiledModule {
    pub key: String,
    pub image: Vec<u8>,
    pub log: String,
    pub output: Output,
}

/// True when libnvrtc can be opened (never panics).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen candidate library names.
    catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
}

/// NVRTC's version `(major, minor)`.
///
/// # Errors
/// libnvrtc missing or lacking `nvrtcVersion`; `nvrtcVersion` returning a failure.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    if !nvrtc_available() {
        return Err(Error::msg("libnvrtc not found"));
    }
    let (mut a, mut b) = (0, 0);
    // SAFETY: two out-pointers to live ints.
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        cudarc::nvrtc::sys::nvrtcVersion(&mut a, &mut b)
    }))
    .map_err(|_| Error::msg("libnvrtc has no nvrtcVersion"))?;
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::msg(format!("nvrtcVersion failed: {r:?}")));
    }
    Ok((a, b))
}

/// Compiles kernel module `module` (for `dt` when it is per-dtype) for compute capability
/// `arch` as PTX or a cubin.
///
/// # Errors
/// Libnvrtc missing or lacking a symbol; an unknown module; a compilation error
/// (the message holds NVRTC's log).
pub fn compile_module(
    module: &str,
    dt: Option<DType>,
    arch: (i32, i32),
    output: Output,
) -> Result<CompiledModule> {
    if !nvrtc_available() {
        return Err(Error::msg(
            "CUDA kernels cannot be compiled: libnvrtc not found (install the CUDA runtime compiler or add its folder to LD_LIBRARY_PATH)",
        ));
    }
    let key = match dt {
        Some(dt) => format!("{module}_{}", suffix(dt)),
        None => module.to_string(),
    };
    let src = CString::new(source(module, dt)?)
        .map_err(|_| Error::msg(format!("kernel module {key} contains a NUL byte")))?;
    let name = CString::new(format!("{key}.cu")).expect("module names have no NUL");
    let arch_opt = match output {
        Output::Ptx => format!("--gpu-architecture=compute_{}{}", arch.0, arch.1),
        Output::Cubin => format!("--gpu-architecture=sm_{}{}", arch.0, arch.1),
    };
    // The random module must not contract a*b+c into fma: it matches the CPU bit for bit.
    let fmad = format!("--fmad={}", module != "random");
    let opts = [arch_opt, fmad];
    catch_unwind(AssertUnwindSafe(|| run_nvrtc(&src, &name, &opts, output)))
        .map_err(|_| Error::msg("NVRTC panicked (a symbol missing in libnvrtc?)"))?
        .map(|(image, log)| CompiledModule {
            key: key.clone(),
            image,
            log,
            output,
        })
        .map_err(|e| e.context(format!("NVRTC, kernel module {key}")))
}

/// Compiles a generated source (entry points named inside it) as module `key`, with
/// `--fmad=false` so generated arithmetic rounds as the CPU's does.
///
/// # Errors
/// Libnvrtc missing or lacking a symbol; a NUL byte in the source; a compilation
/// error (the message holds NVRTC's log).
pub fn compile_source(
    key: &str,
    source: &str,
    arch: (i32, i32),
    output: Output,
) -> Result<CompiledModule> {
    if !nvrtc_available() {
        return Err(Error::msg(
            "CUDA kernels cannot be compiled: libnvrtc not found",
        ));
    }
    let src = CString::new(source)
        .map_err(|_| Error::msg(format!("kernel source {key} contains a NUL byte")))?;
    let name = CString::new(format!("{key}.cu"))
        .map_err(|_| Error::msg(format!("kernel name {key} contains a NUL byte")))?;
    let arch_opt = match output {
        Output::Ptx => format!("--gpu-architecture=compute_{}{}", arch.0, arch.1),
        Output::Cubin => format!("--gpu-architecture=sm_{}{}", arch.0, arch.1),
    };
    let opts = [arch_opt, "--fmad=false".to_string()];
    catch_unwind(AssertUnwindSafe(|| run_nvrtc(&src, &name, &opts, output)))
        .map_err(|_| Error::msg("NVRTC panicked (a symbol missing in libnvrtc?)"))?
        .map(|(image, log)| CompiledModule {
            key: key.to_string(),
            image,
            log,
            output,
        })
        .map_err(|e| e.context(format!("NVRTC, generated kernel {key}")))
}

/// One NVRTC program: create, compile, read the log and the image, destroy.
fn run_nvrtc(
    src: &CString,
    name: &CString,
    opts: &[String],
    output: Output,
) -> Result<(Vec<u8>, String)> {
    use cudarc::nvrtc::{result, sys};
    let prog = result::create_program(src, Some(name))
        .map_err(|e| Error::msg(format!("creating the program: {e:?}")))?;
    // SAFETY: `prog` is live until destroyed at the end; buffers are sized by NVRTC.
    unsafe {
        let compiled = result::compile_program(prog, opts);
        let log = result::get_program_log(prog)
            .map(|l| c_chars_to_string(&l))
            .unwrap_or_default();
        let image = match compiled {
            Err(e) => Err(Error::msg(format!("compilation failed ({e:?}):\n{log}"))),
            Ok(()) => match output {
                Output::Ptx => result::get_ptx(prog)
                    .map(|p| p.iter().map(|&c| c as u8).collect::<Vec<u8>>())
                    .map_err(|e| Error::msg(format!("reading the PTX: {e:?}"))),
                Output::Cubin => {
                    let mut size = 0usize;
                    let mut buf: Vec<c_char> = Vec::new();
                    let r = sys::nvrtcGetCUBINSize(prog, &mut size);
                    let r = if r == sys::nvrtcResult::NVRTC_SUCCESS {
                        buf.resize(size, 0);
                        sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr())
                    } else {
                        r
                    };
                    if r == sys::nvrtcResult::NVRTC_SUCCESS {
                        Ok(buf.iter().map(|&c| c as u8).collect())
                    } else {
                        Err(Error::msg(format!("reading the cubin: {r:?}")))
                    }
                }
            },
        };
        let _ = result::destroy_program(prog);
        Ok((image?, log))
    }
}

fn c_chars_to_string(v: &[c_char]) -> String {
    let bytes: Vec<u8> = v.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).trim().to_string()
}
