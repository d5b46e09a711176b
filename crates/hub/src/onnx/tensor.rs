//! `TensorProto` ⇄ [`Tensor`]: element types, inline data (raw bytes or typed fields) and
//! external data files. Every declared size is checked against the bytes actually present
//! before anything is allocated.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use half::{bf16, f16};
use mlfw_core::{DType, Device, Error, Result, Tensor};

use super::proto::{data_type as dt, TensorProto};

/// The mlfw dtype an ONNX element type loads as (INT32 and INT8 widen to i64).
///
/// # Errors
/// `Error::Msg` listing the supported types for another ONNX element type.
pub fn dtype_of(onnx: i32) -> Result<DType> {
    Ok(match onnx {
        dt::FLOAT => DType::F32,
        dt::DOUBLE => DType::F64,
        dt::FLOAT16 => DType::F16,
        dt::BFLOAT16 => DType::BF16,
        dt::INT64 | dt::INT32 | dt::INT8 => DType::I64,
        dt::UINT8 => DType::U8,
        dt::BOOL => DType::Bool,
        other => {
            return Err(Error::msg(format!(
                "onnx: element type {other} is not supported (float, double, float16, bfloat16, int64, int32, int8, uint8, bool are)"
            )))
        }
    })
}

/// The ONNX element type of an mlfw dtype.
pub fn onnx_type_of(d: DType) -> i32 {
    match d {
        DType::F32 => dt::FLOAT,
        DType::F64 => dt::DOUBLE,
        DType::F16 => dt::FLOAT16,
        DType::BF16 => dt::BFLOAT16,
        DType::I64 => dt::INT64,
        DType::U8 => dt::UINT8,
        DType::Bool => dt::BOOL,
    }
}

/// Bytes per element as stored in `raw_data`.
fn raw_size(onnx: i32) -> usize {
    match onnx {
        dt::DOUBLE | dt::INT64 => 8,
        dt::FLOAT | dt::INT32 => 4,
        dt::FLOAT16 | dt::BFLOAT16 => 2,
        _ => 1,
    }
}

/// The dims of `t` as sizes, and their product, checked (no negative sizes, no overflow).
fn dims_of(t: &TensorProto) -> Result<(Vec<usize>, usize)> {
    let mut count = 1usize;
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        let d = usize::try_from(d)
            .map_err(|_| Error::msg(format!("onnx: tensor `{}` has a negative dim {d}", t.name)))?;
        count = count.checked_mul(d).ok_or_else(|| {
            Error::msg(format!(
                "onnx: tensor `{}` declares an impossibly large shape {:?}",
                t.name, t.dims
            ))
        })?;
        dims.push(d);
    }
    Ok((dims, count))
}

/// Loads a `TensorProto` onto `device`. `base` is the model file's folder, where external
/// data files must lie.
///
/// # Errors
/// An unsupported element type; data whose size disagrees with the dims; an
/// external file outside `base`, missing, or shorter than the declared offset + length.
pub fn to_tensor(t: &TensorProto, base: Option<&Path>, device: &Device) -> Result<Tensor> {
    let dtype = dtype_of(t.data_type)?;
    let (dims, count) = dims_of(t)?;
    let want_bytes = count
        .checked_mul(raw_size(t.data_type))
        .ok_or_else(|| Error::msg(format!("onnx: tensor `{}` is impossibly large", t.name)))?;
    let external;
    let raw: Option<&[u8]> = if t.data_location == 1 {
        external = read_external(t, base, want_bytes)?;
        Some(&external)
    } else if !t.raw_data.is_empty() || count == 0 {
        Some(&t.raw_data)
    } else {
        None
    };
    let bad = |got: usize| {
        Error::msg(format!(
            "onnx: tensor `{}` has {got} values (or bytes) where its shape {dims:?} needs {count}",
            t.name
        ))
    };
    let cpu = Device::Cpu;
    let host = if let Some(raw) = raw {
        if raw.len() != want_bytes {
            return Err(bad(raw.len()));
        }
        from_raw(t.data_type, raw, &dims, &cpu)?
    } else {
        let typed_len = match t.data_type {
            dt::FLOAT => t.float_data.len(),
            dt::DOUBLE => t.double_data.len(),
            dt::INT64 => t.int64_data.len(),
            _ => t.int32_data.len(),
        };
        if typed_len != count {
            return Err(bad(typed_len));
        }
        match t.data_type {
            dt::FLOAT => Tensor::from_slice(&t.float_data, dims, &cpu)?,
            dt::DOUBLE => Tensor::from_slice(&t.double_data, dims, &cpu)?,
            dt::INT64 => Tensor::from_slice(&t.int64_data, dims, &cpu)?,
            dt::FLOAT16 | dt::BFLOAT16 => {
                let bits: Vec<u8> = t
                    .int32_data
                    .iter()
                    .flat_map(|&v| (v as u16).to_le_bytes())
                    .collect();
                from_raw(t.data_type, &bits, &dims, &cpu)?
            }
            _ => {
                let v: Vec<i64> = t.int32_data.iter().map(|&v| v as i64).collect();
                Tensor::from_vec(v, dims, &cpu)?.to_dtype(dtype)?
            }
        }
    };
    host.to_device(device)
}

/// Decodes little-endian raw bytes (length already checked).
fn from_raw(ty: i32, raw: &[u8], dims: &[usize], dev: &Device) -> Result<Tensor> {
    fn le<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect()
    }
    let dims = dims.to_vec();
    match ty {
        dt::FLOAT => Tensor::from_vec(le(raw, f32::from_le_bytes), dims, dev),
        dt::DOUBLE => Tensor::from_vec(le(raw, f64::from_le_bytes), dims, dev),
        dt::INT64 => Tensor::from_vec(le(raw, i64::from_le_bytes), dims, dev),
        dt::INT32 => Tensor::from_vec(le(raw, |b| i32::from_le_bytes(b) as i64), dims, dev),
        dt::FLOAT16 => Tensor::from_vec(le(raw, f16::from_le_bytes), dims, dev),
        dt::BFLOAT16 => Tensor::from_vec(le(raw, bf16::from_le_bytes), dims, dev),
        dt::INT8 => Tensor::from_vec(raw.iter().map(|&b| b as i8 as i64).collect(), dims, dev),
        dt::UINT8 => Tensor::from_vec(raw.to_vec(), dims, dev),
        dt::BOOL => Tensor::from_vec(raw.iter().map(|&b| b != 0).collect(), dims, dev),
        other => Err(Error::msg(format!(
            "onnx: element type {other} is not supported"
        ))),
    }
}

/// Reads a tensor's bytes from its external data file, which must be inside `base`.
fn read_external(t: &TensorProto, base: Option<&Path>, want: usize) -> Result<Vec<u8>> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let name = &t.name;
    let location = get("location")
        .ok_or_else(|| Error::msg(format!("onnx: external tensor `{name}` has no location")))?;
    let num = |k: &str| -> Result<Option<u64>> {
        get(k)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    Error::msg(format!(
                        "onnx: external tensor `{name}` has a bad {k} `{v}`"
                    ))
                })
            })
            .transpose()
    };
    let offset = num("offset")?.unwrap_or(0);
    let length = num("length")?.unwrap_or(want as u64);
    if length != want as u64 {
        return Err(Error::msg(format!(
            "onnx: external tensor `{name}` declares {length} bytes where its shape needs {want}"
        )));
    }
    let base = base.ok_or_else(|| {
        Error::msg(format!(
            "onnx: tensor `{name}` uses external data, but the model was not loaded from a file"
        ))
    })?;
    let rel = Path::new(location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::msg(format!(
            "onnx: external data `{location}` of tensor `{name}` is outside the model's folder {}",
            base.display()
        )));
    }
    let path = base.join(rel);
    let io = |e: std::io::Error| {
        Error::msg(format!(
            "onnx: reading external data {} for `{name}`: {e}",
            path.display()
        ))
    };
    // Symlinks must not lead out of the folder either.
    let (real, real_base) = (
        path.canonicalize().map_err(io)?,
        base.canonicalize().map_err(io)?,
    );
    if !real.starts_with(&real_base) {
        return Err(Error::msg(format!(
            "onnx: external data `{location}` of tensor `{name}` resolves outside the model's folder {}",
            base.display()
        )));
    }
    let mut f = File::open(&real).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(Error::msg(format!(
            "onnx: external data {} is {size} bytes, too short for `{name}` ({length} bytes at offset {offset})",
            path.display()
        )));
    }
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![0u8; want];
    f.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// Writes `t` (any device) as a `TensorProto` named `name` with little-endian `raw_data`.
///
/// # Errors
/// Device errors copying `t` to the host.
pub fn from_tensor(name: &str, t: &Tensor) -> Result<TensorProto> {
    let t = t.to_device(&Device::Cpu)?;
    let raw: Vec<u8> = match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec::<i64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F16 => t
            .to_vec::<f16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::BF16 => t
            .to_vec::<bf16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::U8 => t.to_vec::<u8>()?,
        DType::Bool => t.to_vec::<bool>()?.iter().map(|&b| b as u8).collect(),
    };
    Ok(TensorProto {
        dims: t.dims().iter().map(|&d| d as i64).collect(),
        data_type: onnx_type_of(t.dtype()),
        name: name.to_string(),
        raw_data: raw,
        ..Default::default()
    })
}
