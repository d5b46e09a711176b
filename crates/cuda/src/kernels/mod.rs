//! CUDA C sources of every kernel, compiled at run time with NVRTC (once per device and
//! module, on first use; see `CudaDevice::func`).
//!
//! A module is the [`common`] header, then a per-dtype prelude (`typedef ... T;` plus the
//! conversion macros `lda/sta` to/from the compute type `ACC` and `ldd/std_` to/from double),
//! then the module body. Per-dtype modules are keyed `"{module}_{suffix}"`; `cast` and `fill`
//! hold all dtypes at once.

pub mod common;
mod conv;
mod elementwise;
#[cfg(test)]
mod host_emulation;
#[cfg(test)]
mod host_emulation_nn;
mod index;
mod optim;
mod pool;
mod random;
mod reduce;

use mlfw_core::{DType, Error, Result};

/// Short dtype name used in module keys and conversion function names.
pub fn suffix(dt: DType) -> &'static str {
    match dt {
        DType::U8 => "u8",
        DType::Bool => "bool",
        DType::I64 => "i64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

/// The C type a dtype is stored as in kernels.
pub fn ctype(dt: DType) -> &'static str {
    match dt {
        DType::U8 | DType::Bool => "u8",
        DType::I64 => "i64",
        DType::F16 | DType::BF16 => "u16",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// The per-dtype prelude: `T`, `ACC`, conversion and comparison macros, `atomic_add`.
pub fn prelude(dt: DType) -> String {
    let s = suffix(dt);
    let float = dt.is_float();
    let acc = match dt {
        DType::F16 | DType::BF16 | DType::F32 => "float",
        _ => "double",
    };
    let mut p = format!(
        "typedef {ct} T;\ntypedef {acc} ACC;\n#define IS_FLOAT {f}\n#define IS_BOOL {b}\n\
         #define lda(x) lda_{s}(x)\n#define sta(x) sta_{s}(x)\n#define ldd(x) ldd_{s}(x)\n#define std_(x) std_{s}(x)\n",
        ct = ctype(dt),
        f = float as u8,
        b = (dt == DType::Bool) as u8,
    );
    if float {
        p += "typedef ACC CMPT;\n#define CMPV(x) lda(x)\n#define ISNAN(x) (lda(x) != lda(x))\n";
        p += "typedef double SUMT;\n#define SUM_LOAD(x) ldd(x)\n#define SUM_STORE(s) std_(s)\n";
    } else {
        p += "typedef T CMPT;\n#define CMPV(x) (x)\n#define ISNAN(x) false\n";
        p += "typedef u64 SUMT;\n#define SUM_LOAD(x) ((u64)(x))\n#define SUM_STORE(s) ((T)(i64)(s))\n";
    }
    p += if acc == "float" {
        "#define ACC_NEG_INF neg_inf_f()\n"
    } else {
        "#define ACC_NEG_INF neg_inf_d()\n"
    };
    p += match dt {
        DType::F32 | DType::F64 => {
            "__device__ __forceinline__ void atomic_add(T* p, T v) { atomicAdd(p, v); }\n"
        }
        DType::I64 => {
            "__device__ __forceinline__ void atomic_add(T* p, T v) { atomicAdd((u64*)p, (u64)v); }\n"
        }
        _ => "",
    };
    let small_add = match dt {
        DType::F16 | DType::BF16 => Some("sta(lda(cur) + lda(v))"),
        DType::U8 => Some("(T)(cur + v)"),
        DType::Bool => Some("(T)((cur | v) ? 1 : 0)"),
        _ => None,
    };
    if let Some(add) = small_add {
        // 1- and 2-byte atomics: compare-and-swap on the aligned 32-bit word holding the element.
        // Buffers are padded to 8 bytes (alloc.rs), so the word is always inside the allocation.
        p += &format!(
            r#"__device__ __forceinline__ void atomic_add(T* p, T v) {{
  u64 a = (u64)p;
  u32* w = (u32*)(a & ~3ULL);
  u32 shift = (u32)(a & 3ULL) * 8u;
  u32 mask = ((sizeof(T) == 2) ? 0xffffu : 0xffu) << shift;
  u32 old = *w, assumed;
  do {{
    assumed = old;
    T cur = (T)((assumed & mask) >> shift);
    T nw = {add};
    u32 nv = (assumed & ~mask) | ((((u32)nw) << shift) & mask);
    old = atomicCAS(w, assumed, nv);
  }} while (assumed != old);
}}
"#
        );
    }
    p
}

/// Every dtype a kernel module is compiled for.
pub const ALL: [DType; 7] = [
    DType::U8,
    DType::Bool,
    DType::I64,
    DType::F16,
    DType::BF16,
    DType::F32,
    DType::F64,
];

/// `cast_{src}_{dst}(n, x, lx, y)` for every pair of dtypes.
fn cast_source() -> String {
    let mut s = String::new();
    for &a in &ALL {
        for &b in &ALL {
            let (sa, sb) = (suffix(a), suffix(b));
            // i64 -> f32 rounds once, as Rust's `as f32` does; all else goes through double,
            // which is exact for the inputs and rounds once on the way out.
            let conv = match (a, b) {
                _ if a == b => "v".to_string(),
                (DType::I64, DType::F32) => "(float)v".to_string(),
                (DType::F32, DType::F16) => "f_to_f16(v)".to_string(),
                (DType::F32, DType::BF16) => "f_to_bf16(v)".to_string(),
                _ => format!("std_{sb}(ldd_{sa}(v))"),
            };
            s += &format!(
                "extern \"C\" __global__ void cast_{sa}_{sb}(u64 n, const {ca}* x, Lay lx, {cb}* y) {{\n  GRID_LOOP(i, n) {{ {ca} v = x[lidx(lx, i)]; y[i] = {conv}; }}\n}}\n",
                ca = ctype(a),
                cb = ctype(b),
            );
        }
    }
    s
}

const FILL: &str = r#"
#define FILL(name, TY) extern "C" __global__ void name(u64 n, TY v, TY* y) { GRID_LOOP(i, n) y[i] = v; }
FILL(fill1, u8)
FILL(fill2, u16)
FILL(fill4, u32)
FILL(fill8, u64)
"#;

/// Full source of module `module` (for `dt` when the module is per-dtype).
pub fn source(module: &str, dt: Option<DType>) -> Result<String> {
    let per_dtype = |body: &str| -> Result<String> {
        let dt = dt.ok_or_else(|| Error::msg(format!("kernel module {module} needs a dtype")))?;
        Ok(format!("{}\n{}\n{}", common::COMMON, prelude(dt), body))
    };
    match module {
        "cast" => Ok(format!("{}\n{}", common::COMMON, cast_source())),
        "fill" => Ok(format!("{}\n{}", common::COMMON, FILL)),
        "elementwise" => per_dtype(elementwise::SRC),
        "reduce" => per_dtype(reduce::SRC),
        "index" => per_dtype(index::SRC),
        "pool" => per_dtype(pool::SRC),
        "conv" => per_dtype(conv::SRC),
        "optim" => per_dtype(optim::SRC),
        "random" => per_dtype(random::SRC),
        other => Err(Error::msg(format!("unknown kernel module {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sources cannot be compiled without a GPU; at least check that they assemble and
    /// that braces balance (a cheap guard against editing slips).
    #[test]
    fn sources_assemble_and_balance() {
        let modules = crate::compile::PER_DTYPE_MODULES;
        for dt in ALL {
            for m in modules {
                let s = source(m, Some(dt)).unwrap();
                let open = s.matches('{').count();
                let close = s.matches('}').count();
                assert_eq!(open, close, "{m}_{}", suffix(dt));
                let po = s.matches('(').count();
                let pc = s.matches(')').count();
                assert_eq!(po, pc, "parens in {m}_{}", suffix(dt));
            }
        }
        for m in ["cast", "fill"] {
            let s = source(m, None).unwrap();
            assert_eq!(s.matches('{').count(), s.matches('}').count(), "{m}");
        }
        assert!(source("cast", None).unwrap().contains("cast_i64_f32"));
    }

    /// With `MLFW_DUMP_KERNELS=<dir>`, writes every module's full source there (for
    /// `device/syntax_check.sh`, which compiles them with g++ and a CUDA shim).
    #[test]
    fn dump_sources_when_asked() {
        let Ok(dir) = std::env::var("MLFW_DUMP_KERNELS") else {
            return;
        };
        std::fs::create_dir_all(&dir).unwrap();
        for m in [
            "elementwise",
            "reduce",
            "index",
            "pool",
            "conv",
            "optim",
            "random",
        ] {
            for dt in ALL {
                let path = format!("{dir}/{m}_{}.cu", suffix(dt));
                std::fs::write(path, source(m, Some(dt)).unwrap()).unwrap();
            }
        }
        for m in ["cast", "fill"] {
            std::fs::write(format!("{dir}/{m}.cu"), source(m, None).unwrap()).unwrap();
        }
    }
}
