//! Element types and the trait that ties a Rust scalar type to its [`DType`].

use crate::CpuStorage;
use half::{bf16, f16};

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// Unsigned byte (images).
    U8,
    /// Boolean masks (one byte per element).
    Bool,
    /// 64-bit signed integers (class indices, argmax).
    I64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Single precision, the default float.
    F32,
    /// Double precision.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::U8 | DType::Bool => 1,
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// True for f16, bf16, f32, f64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// PyTorch's name for the dtype (`float32`, `int64`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::Bool => "bool",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Rust scalar type that can be a tensor element.
pub trait WithDType:
    Copy + Send + Sync + 'static + Default + PartialOrd + std::fmt::Debug + std::fmt::Display
{
    /// The matching dtype.
    const DTYPE: DType;
    /// Zero of this type.
    const ZERO: Self;
    /// One of this type.
    const ONE: Self;
    /// Converts to f64 (exact for every type but i64 beyond 2^53).
    fn to_f64(self) -> f64;
    /// Converts from f64 (rounding to nearest; saturating for integers; `!= 0` for bool).
    fn from_f64(v: f64) -> Self;
    /// Wraps a vec as host storage.
    fn to_cpu_storage(v: Vec<Self>) -> CpuStorage;
    /// Borrows host storage as a slice if the dtype matches.
    fn cpu_slice(s: &CpuStorage) -> Option<&[Self]>;
    /// Borrows host storage mutably if the dtype matches.
    fn cpu_slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

macro_rules! with_dtype {
    ($t:ty, $dt:ident, $zero:expr, $one:expr, $to:expr, $from:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$dt;
            const ZERO: Self = $zero;
            const ONE: Self = $one;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                $to(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            fn to_cpu_storage(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$dt(v)
            }
            fn cpu_slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$dt(v) => Some(v),
                    _ => None,
                }
            }
            fn cpu_slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$dt(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

with_dtype!(u8, U8, 0, 1, |v: u8| v as f64, |v: f64| v as u8);
with_dtype!(
    bool,
    Bool,
    false,
    true,
    |v: bool| v as u8 as f64,
    |v: f64| v != 0.0
);
with_dtype!(i64, I64, 0, 1, |v: i64| v as f64, |v: f64| v as i64);
with_dtype!(
    f16,
    F16,
    f16::ZERO,
    f16::ONE,
    |v: f16| v.to_f64(),
    f16::from_f64
);
with_dtype!(
    bf16,
    BF16,
    bf16::ZERO,
    bf16::ONE,
    |v: bf16| v.to_f64(),
    bf16::from_f64
);
with_dtype!(f32, F32, 0.0, 1.0, |v: f32| v as f64, |v: f64| v as f32);
with_dtype!(f64, F64, 0.0, 1.0, |v: f64| v, |v: f64| v);

/// Float element types: the ones transcendental ops are defined for.
pub trait FloatDType: WithDType + num_traits::Float {}
impl FloatDType for f16 {}
impl FloatDType for bf16 {}
impl FloatDType for f32 {}
impl FloatDType for f64 {}
