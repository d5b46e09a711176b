//! CUDA code for the fused groups of a compiled plan ([`mlfw_core::graph::FusedGroup`]):
//! one NVRTC kernel per group, named and cached by its signature.
//!
//! The source is a grid-stride loop: each thread loads its element of every input
//! (contiguous, a broadcast scalar, or through a strided walk), runs the group's
//! instructions in registers and stores the materialized values. Float constants are
//! written as exact bit patterns and `--fmad=false` keeps `a * b + c` unfused, so the
//! arithmetic ops round as the CPU loop does (`sqrtf`, `logf`, `tanhf`, ... follow CUDA's
//! own accuracy).
//!
//! [`compile_fused`] keeps compiled images on disk under `<cache_dir>/fused/`, keyed by
//! the signature, the architecture, the output kind and the NVRTC version, so a second
//! run loads instead of compiling. Launching the kernels and capturing the replay into a
//! CUDA graph live in [`crate::fused_run`] and `graph.rs` (not yet run on a GPU).

use crate::compile::{nvrtc_available, nvrtc_version, CompiledModule, Output};
use mlfw_core::graph::{FusedGroup, FusedInstr, LoadKind};
use mlfw_core::{BinaryOp, CmpOp, DType, Error, Result, UnaryOp};
use std::fmt::Write;
use std::path::Path;

/// A generated kernel: its entry name (`fused_<signature hash>`) and CUDA C source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusedSource {
    pub name: String,
    pub source: String,
}

/// The exact f32 `x` as a CUDA expression.
fn lit(x: f64) -> String {
    format!("__int_as_float(0x{:08x})", (x as f32).to_bits())
}

fn ctype(d: DType) -> Result<&'static str> {
    match d {
        DType::F32 => Ok("float"),
        DType::Bool => Ok("bool"),
        _ => Err(Error::msg(format!(
            "fused CUDA kernel: unsupported dtype {d}"
        ))),
    }
}

fn unary(op: UnaryOp, a: &str) -> Result<String> {
    use UnaryOp as U;
    Ok(match op {
        U::Neg => format!("-{a}"),
        U::Abs => format!("fabsf({a})"),
        U::Log => format!("logf({a})"),
        U::Sqrt => format!("sqrtf({a})"),
        U::Rsqrt => format!("1.0f / sqrtf({a})"),
        U::Sin => format!("sinf({a})"),
        U::Cos => format!("cosf({a})"),
        U::Tanh => format!("tanhf({a})"),
        U::Erf => format!("erff({a})"),
        U::Sigmoid => {
            format!("({a} >= 0.0f ? 1.0f / (1.0f + expf(-{a})) : expf({a}) / (1.0f + expf({a})))")
        }
        U::Relu => format!("(({a} > 0.0f || isnan({a})) ? {a} : 0.0f)"),
        U::Recip => format!("1.0f / {a}"),
        U::Square => format!("{a} * {a}"),
        U::LeakyRelu(s) => format!("({a} > 0.0f ? {a} : {a} * {})", lit(s)),
        U::Powf(2.0) => format!("{a} * {a}"),
        U::Powf(e) => format!("powf({a}, {})", lit(e)),
        U::Clamp(lo, hi) => format!(
            "(isnan({a}) ? {a} : fminf(fmaxf({a}, {}), {}))",
            lit(lo),
            lit(hi)
        ),
        U::Affine(m, c) => format!("{a} * {} + {}", lit(m), lit(c)),
        other => {
            return Err(Error::msg(format!(
                "fused CUDA kernel: unary {other:?} is not fused"
            )))
        }
    })
}

fn binary(op: BinaryOp, a: &str, b: &str) -> String {
    match op {
        BinaryOp::Add => format!("{a} + {b}"),
        BinaryOp::Sub => format!("{a} - {b}"),
        BinaryOp::Mul => format!("{a} * {b}"),
        BinaryOp::Div => format!("{a} / {b}"),
        BinaryOp::Maximum => format!("((isnan({a}) || {a} > {b}) ? {a} : {b})"),
        BinaryOp::Minimum => format!("((isnan({a}) || {a} < {b}) ? {a} : {b})"),
        BinaryOp::Pow => format!("powf({a}, {b})"),
    }
}

fn cmp(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// FNV-1a, 64 bits: a stable name for a source text.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

const PRELUDE: &str = r#"struct Walk { unsigned long long dims[8]; unsigned long long strides[8]; unsigned long long offset; int rank; };
__device__ __forceinline__ unsigned long long walk(const Walk& w, unsigned long long i) {
    unsigned long long p = w.offset;
    for (int d = w.rank - 1; d >= 0; --d) { p += (i % w.dims[d]) * w.strides[d]; i /= w.dims[d]; }
    return p;
}
"#;

/// The kernel for `g`. Its parameters: `n` (elements), then per load a pointer and its
/// `Walk`, then per store a pointer; outputs are contiguous.
///
/// # Errors
/// A dtype other than f32/bool, or an op the CPU loop does not fuse either.
pub fn fused_source(g: &FusedGroup) -> Result<FusedSource> {
    let mut params = vec!["unsigned long long n".to_string()];
    let mut body = String::new();
    for (i, (dt, kind)) in g.loads.iter().enumerate() {
        params.push(format!("const {}* __restrict__ in{i}", ctype(*dt)?));
        params.push(format!("Walk w{i}"));
        let at = match kind {
            LoadKind::Contiguous => format!("in{i}[w{i}.offset + i]"),
            LoadKind::Scalar => format!("in{i}[w{i}.offset]"),
            LoadKind::Strided { .. } => format!("in{i}[walk(w{i}, i)]"),
        };
        let v = match dt {
            DType::Bool => format!("({at} ? 1.0f : 0.0f)"),
            _ => at,
        };
        let _ = writeln!(body, "        const float r{i} = {v};");
    }
    for ins in &g.instrs {
        let (d, e) = match *ins {
            FusedInstr::Unary(d, a, op) => (d, unary(op, &format!("r{a}"))?),
            FusedInstr::Binary(d, a, b, op) => (d, binary(op, &format!("r{a}"), &format!("r{b}"))),
            FusedInstr::Cmp(d, a, b, op) => (d, format!("(r{a} {} r{b}) ? 1.0f : 0.0f", cmp(op))),
            FusedInstr::Where(d, c, t, f) => (d, format!("r{c} != 0.0f ? r{t} : r{f}")),
        };
        let _ = writeln!(body, "        const float r{d} = {e};");
    }
    for (j, (r, dt)) in g.stores.iter().enumerate() {
        params.push(format!("{}* __restrict__ out{j}", ctype(*dt)?));
        let v = match dt {
            DType::Bool => format!("r{r} != 0.0f"),
            _ => format!("r{r}"),
        };
        let _ = writeln!(body, "        out{j}[i] = {v};");
    }
    let sig = format!("({})\n{body}", params.join(", "));
    let name = format!("fused_{:016x}", fnv(&sig));
    let source = format!(
        "{PRELUDE}\nextern \"C\" __global__ void {name}({}) {{\n    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;\n         i += (unsigned long long)gridDim.x * blockDim.x) {{\n{body}    }}\n}}\n",
        params.join(", ")
    );
    Ok(FusedSource { name, source })
}

/// A compiled fused kernel and whether it came from the disk cache.
#[derive(Debug, Clone)]
pub struct CompiledFused {
    pub module: CompiledModule,
    pub from_cache: bool,
}

/// Compiles `g`'s kernel with NVRTC for compute capability `arch`, or loads it from
/// `<cache_dir>/fused/` when an earlier run compiled the same signature with the same
/// NVRTC. New images are written to a temporary file and renamed into place.
///
/// # Errors
/// Libnvrtc missing; a compilation error (with NVRTC's log); the cache folder
/// cannot be created or written.
pub fn compile_fused(
    g: &FusedGroup,
    arch: (i32, i32),
    output: Output,
    cache_dir: &Path,
) -> Result<CompiledFused> {
    let src = fused_source(g)?;
    if !nvrtc_available() {
        return Err(Error::msg(
            "fused CUDA kernels cannot be compiled: libnvrtc not found",
        ));
    }
    let (major, minor) = nvrtc_version()?;
    let ext = match output {
        Output::Ptx => "ptx",
        Output::Cubin => "cubin",
    };
    let dir = cache_dir.join("fused");
    let file = dir.join(format!(
        "{}-sm{}{}-nvrtc{major}.{minor}.{ext}",
        src.name, arch.0, arch.1
    ));
    if let Ok(image) = std::fs::read(&file) {
        if !image.is_empty() {
            return Ok(CompiledFused {
                module: CompiledModule {
                    key: src.name,
                    image,
                    log: String::new(),
                    output,
                },
                from_cache: true,
            });
        }
    }
    let module = crate::compile::compile_source(&src.name, &src.source, arch, output)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::msg(format!("creating {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.{}.tmp", src.name, std::process::id()));
    std::fs::write(&tmp, &module.image)
        .and_then(|_| std::fs::rename(&tmp, &file))
        .map_err(|e| Error::msg(format!("writing {}: {e}", file.display())))?;
    Ok(CompiledFused {
        module,
        from_cache: false,
    })
}
