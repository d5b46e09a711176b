//! Host buffers: one `Vec` per dtype, plus the macros that dispatch generic kernels over them.

use crate::{DType, Error, Result, WithDType};
use half::{bf16, f16};

/// A host buffer of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    U8(Vec<u8>),
    Bool(Vec<bool>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Applies `$body` to the vec inside any variant, giving a value of one type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_cpu_vec {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::CpuStorage::U8($v) => $body,
            $crate::CpuStorage::Bool($v) => $body,
            $crate::CpuStorage::I64($v) => $body,
            $crate::CpuStorage::F16($v) => $body,
            $crate::CpuStorage::BF16($v) => $body,
            $crate::CpuStorage::F32($v) => $body,
            $crate::CpuStorage::F64($v) => $body,
        }
    };
}

/// Applies `$body` (producing a `Vec` of the same type) to any variant, rewrapping it.
#[macro_export]
#[doc(hidden)]
macro_rules! map_cpu_vec {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::CpuStorage::U8($v) => $crate::CpuStorage::U8($body),
            $crate::CpuStorage::Bool($v) => $crate::CpuStorage::Bool($body),
            $crate::CpuStorage::I64($v) => $crate::CpuStorage::I64($body),
            $crate::CpuStorage::F16($v) => $crate::CpuStorage::F16($body),
            $crate::CpuStorage::BF16($v) => $crate::CpuStorage::BF16($body),
            $crate::CpuStorage::F32($v) => $crate::CpuStorage::F32($body),
            $crate::CpuStorage::F64($v) => $crate::CpuStorage::F64($body),
        }
    };
}

/// Like [`map_cpu_vec`] for float variants only; other dtypes give `UnsupportedDType`.
#[macro_export]
#[doc(hidden)]
macro_rules! map_cpu_float {
    ($s:expr, $op:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::CpuStorage::F16($v) => $crate::CpuStorage::F16($body),
            $crate::CpuStorage::BF16($v) => $crate::CpuStorage::BF16($body),
            $crate::CpuStorage::F32($v) => $crate::CpuStorage::F32($body),
            $crate::CpuStorage::F64($v) => $crate::CpuStorage::F64($body),
            other => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: other.dtype(),
                })
            }
        }
    };
}

impl CpuStorage {
    /// The dtype of the buffer.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::Bool(_) => DType::Bool,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_cpu_vec!(self, v => v.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` copies of `value` converted to `dtype`.
    pub fn full(n: usize, value: f64, dtype: DType) -> CpuStorage {
        fn f<T: WithDType>(n: usize, v: f64) -> Vec<T> {
            vec![T::from_f64(v); n]
        }
        match dtype {
            DType::U8 => CpuStorage::U8(f(n, value)),
            DType::Bool => CpuStorage::Bool(f(n, value)),
            DType::I64 => CpuStorage::I64(f(n, value)),
            DType::F16 => CpuStorage::F16(f(n, value)),
            DType::BF16 => CpuStorage::BF16(f(n, value)),
            DType::F32 => CpuStorage::F32(f(n, value)),
            DType::F64 => CpuStorage::F64(f(n, value)),
        }
    }

    /// The buffer as a slice of `T`, if that is its dtype.
    ///
    /// # Errors
    /// `Error::DTypeMismatch` when `T` is not the storage's dtype.
    pub fn as_slice<T: WithDType>(&self) -> Result<&[T]> {
        T::cpu_slice(self).ok_or(Error::DTypeMismatch {
            op: "as_slice",
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }

    /// The buffer as a mutable slice of `T`, if that is its dtype.
    ///
    /// # Errors
    /// `Error::DTypeMismatch` when `T` is not the storage's dtype.
    pub fn as_mut_slice<T: WithDType>(&mut self) -> Result<&mut [T]> {
        let dt = self.dtype();
        T::cpu_slice_mut(self).ok_or(Error::DTypeMismatch {
            op: "as_mut_slice",
            lhs: dt,
            rhs: T::DTYPE,
        })
    }
}
