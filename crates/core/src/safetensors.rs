//! Reading and writing named tensors in the safetensors format.
//!
//! Files are memory-mapped and validated (header length, JSON, dtypes, offsets inside the
//! data and not overlapping) before any tensor is built; saving writes a temporary file
//! in the same folder and renames it, so a crash never leaves a half-written file.

use crate::{CpuStorage, DType, Device, Error, Result, Tensor};
use half::{bf16, f16};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The tensors of a safetensors file, in the order their data appears, plus its metadata.
#[derive(Debug, Clone, Default)]
pub struct SafeTensorsFile {
    /// `(name, tensor)` pairs in file order.
    pub tensors: Vec<(String, Tensor)>,
    /// The `__metadata__` string map.
    pub metadata: HashMap<String, String>,
}

impl SafeTensorsFile {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor called `name`, or an error naming it.
    ///
    /// # Errors
    /// `Error::Msg` naming `name` when the file holds no such tensor.
    pub fn require(&self, name: &str) -> Result<&Tensor> {
        self.get(name)
            .ok_or_else(|| Error::msg(format!("safetensors: no tensor named `{name}`")))
    }

    /// Tensors by name.
    pub fn into_map(self) -> HashMap<String, Tensor> {
        self.tensors.into_iter().collect()
    }
}

fn dtype_of(d: StDtype) -> Option<DType> {
    Some(match d {
        StDtype::U8 => DType::U8,
        StDtype::BOOL => DType::Bool,
        StDtype::I64 => DType::I64,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::F32 => DType::F32,
        StDtype::F64 => DType::F64,
        _ => return None,
    })
}

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::U8 => StDtype::U8,
        DType::Bool => StDtype::BOOL,
        DType::I64 => StDtype::I64,
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
    }
}

fn decode<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    b.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N bytes")))
        .collect()
}

fn to_storage(v: &TensorView<'_>, name: &str, origin: &str) -> Result<CpuStorage> {
    let b = v.data();
    let dt = dtype_of(v.dtype()).ok_or_else(|| Error::File {
        path: origin.to_string(),
        msg: format!(
            "tensor `{name}` has dtype {:?}, which mlfw does not support",
            v.dtype()
        ),
    })?;
    Ok(match dt {
        DType::U8 => CpuStorage::U8(b.to_vec()),
        DType::Bool => CpuStorage::Bool(b.iter().map(|&x| x != 0).collect()),
        DType::I64 => CpuStorage::I64(decode(b, i64::from_le_bytes)),
        DType::F16 => CpuStorage::F16(decode(b, |x: [u8; 2]| {
            f16::from_bits(u16::from_le_bytes(x))
        })),
        DType::BF16 => CpuStorage::BF16(decode(b, |x: [u8; 2]| {
            bf16::from_bits(u16::from_le_bytes(x))
        })),
        DType::F32 => CpuStorage::F32(decode(b, f32::from_le_bytes)),
        DType::F64 => CpuStorage::F64(decode(b, f64::from_le_bytes)),
    })
}

/// What a PyTorch `torch.save` file given as weights is told.
const PICKLE_HINT: &str = "a PyTorch torch.save (pickle) checkpoint, not safetensors; mlfw does not \
     read pickles (loading one can run code). Convert it once in Python: \
     `safetensors.torch.save_file(torch.load(\"model.pth\"), \"model.safetensors\")` (a state dict)";

/// Parses safetensors bytes; `origin` names the source in errors.
///
/// # Errors
/// `Error::File` naming `origin`: a truncated or malformed header, an unsupported dtype, or data
/// offsets outside the buffer; device errors from the copy to `device`.
pub fn load_bytes(bytes: &[u8], origin: &str, device: &Device) -> Result<SafeTensorsFile> {
    let bad = |msg: String| Error::File {
        path: origin.to_string(),
        msg,
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| {
        // `torch.save` writes a zip archive (before PyTorch 1.6, a bare pickle: protocol 2-5).
        let pickle = bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]);
        if bytes.starts_with(b"PK\x03\x04") || pickle {
            bad(PICKLE_HINT.to_string())
        } else {
            let detail = mismatched_tensor(bytes).map_or(String::new(), |d| format!(": {d}"));
            bad(format!("not a valid safetensors file: {e}{detail}"))
        }
    })?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut named: Vec<(usize, String, TensorView<'_>)> = Vec::new();
    for (name, view) in st.tensors() {
        let start = meta.info(&name).map(|i| i.data_offsets.0).unwrap_or(0);
        named.push((start, name, view));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut tensors = Vec::with_capacity(named.len());
    for (_, name, view) in named {
        let storage = to_storage(&view, &name, origin)?;
        let t = Tensor::from_cpu_storage(storage, view.shape().to_vec(), device)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.push((name, t));
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok(SafeTensorsFile { tensors, metadata })
}

/// For a header whose byte ranges do not fit the tensors' shapes and dtypes (the
/// `safetensors` crate's error names no tensor): the first such tensor, its shape, dtype,
/// `data_offsets` and the bytes it needs. Reads only the header present in `bytes`; `None`
/// when that header cannot be read or every tensor fits.
fn mismatched_tensor(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let mut entries: Vec<(&String, &serde_json::Value)> = header
        .as_object()?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    entries.sort_by_key(|(_, v)| v["data_offsets"][0].as_u64());
    for (name, v) in entries {
        let dtype = v["dtype"].as_str()?;
        let bytes_per = match dtype {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
            _ => continue,
        };
        let shape: Vec<u64> = v["shape"]
            .as_array()?
            .iter()
            .map(|d| d.as_u64())
            .collect::<Option<_>>()?;
        let (s, e) = (
            v["data_offsets"][0].as_u64()?,
            v["data_offsets"][1].as_u64()?,
        );
        let need = shape
            .iter()
            .try_fold(bytes_per, |a: u64, &d| a.checked_mul(d));
        if need != e.checked_sub(s) {
            let need = need.map_or("more than 2^64".to_string(), |b| b.to_string());
            return Some(format!(
                "tensor `{name}` ({dtype}, shape {shape:?}) needs {need} bytes but its data_offsets [{s}, {e}] span {}",
                e.saturating_sub(s)
            ));
        }
    }
    None
}

/// Loads every tensor of a file (memory-mapped while parsing) onto `device`.
///
/// # Errors
/// [`Error::File`] naming the path: not a regular file (checked before opening, so a
/// FIFO never blocks), unreadable, or not valid safetensors.
pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<SafeTensorsFile> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    // Opening a FIFO for reading blocks until a writer appears: refuse anything but a file.
    let meta = std::fs::metadata(path).map_err(|e| Error::File {
        path: origin.clone(),
        msg: format!("cannot open: {e}"),
    })?;
    if !meta.is_file() {
        return Err(Error::File {
            path: origin,
            msg:
                "is not a regular file (a FIFO, socket, device or folder); give a .safetensors file"
                    .into(),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| Error::File {
        path: origin.clone(),
        msg: format!("cannot open: {e}"),
    })?;
    // SAFETY: the map is read-only and dropped before returning; tensors copy their bytes.
    // A file truncated by another process while mapped could fault; mlfw never writes
    // files in place (temp + rename), so its own files cannot change under the map.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::File {
        path: origin.clone(),
        msg: format!("cannot map: {e}"),
    })?;
    load_bytes(&mmap, &origin, device)
}

/// Serialises named tensors (any device; copied to the host) with optional metadata.
///
/// # Errors
/// `Error::Msg` for a tensor of a dtype safetensors cannot hold, or from the serializer (duplicate
/// or invalid names).
pub fn to_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut bufs: Vec<(String, DType, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if bufs.iter().any(|(n, ..)| n == name) {
            return Err(Error::msg(format!(
                "safetensors: duplicate tensor name `{name}`"
            )));
        }
        let host = t.to_device(&Device::Cpu)?.contiguous()?;
        let bytes = {
            let s = host.storage();
            let l = host.layout();
            let cpu = s
                .as_any()
                .downcast_ref::<CpuStorage>()
                .ok_or_else(|| Error::msg("host tensor without host storage"))?;
            let (a, b) = l
                .contiguous_range()
                .ok_or_else(|| Error::msg("contiguous tensor without a range"))?;
            match cpu {
                CpuStorage::U8(v) => v[a..b].to_vec(),
                CpuStorage::Bool(v) => v[a..b].iter().map(|&x| x as u8).collect(),
                CpuStorage::I64(v) => v[a..b].iter().flat_map(|x| x.to_le_bytes()).collect(),
                CpuStorage::F16(v) => v[a..b]
                    .iter()
                    .flat_map(|x| x.to_bits().to_le_bytes())
                    .collect(),
                CpuStorage::BF16(v) => v[a..b]
                    .iter()
                    .flat_map(|x| x.to_bits().to_le_bytes())
                    .collect(),
                CpuStorage::F32(v) => v[a..b].iter().flat_map(|x| x.to_le_bytes()).collect(),
                CpuStorage::F64(v) => v[a..b].iter().flat_map(|x| x.to_le_bytes()).collect(),
            }
        };
        bufs.push((name.clone(), t.dtype(), t.dims().to_vec(), bytes));
    }
    let views = bufs
        .iter()
        .map(|(n, dt, shape, b)| {
            TensorView::new(st_dtype(*dt), shape.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::msg(format!("safetensors: tensor `{n}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, metadata).map_err(|e| Error::msg(format!("safetensors: {e}")))
}

/// Writes bytes to `path` atomically: a temporary file in the same folder, then rename.
///
/// # Errors
/// `Error::Msg` when `path` has no file name; `Error::File` naming the path when the temporary file
/// cannot be written, synced or renamed (the old file is then untouched).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::msg(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let io = |e: std::io::Error| Error::File {
        path: path.display().to_string(),
        msg: format!("cannot write: {e}"),
    };
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

/// Saves named tensors to `path` atomically.
///
/// # Errors
/// As [`to_bytes`] and [`write_atomic`].
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_atomic(path, &to_bytes(tensors, metadata)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_pickles_are_named_with_the_way_to_convert_them() {
        let zip = b"PK\x03\x04\x14\x00\x00\x00archive/data.pkl";
        let legacy = [0x80u8, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20];
        for bytes in [&zip[..], &legacy[..]] {
            let e = load_bytes(bytes, "model.pth", &Device::Cpu)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("model.pth") && e.contains("safetensors.torch.save_file"),
                "{e}"
            );
        }
        let e = load_bytes(b"\x05\x00junk", "x.safetensors", &Device::Cpu).unwrap_err();
        assert!(
            e.to_string().contains("not a valid safetensors file"),
            "{e}"
        );
    }

    #[test]
    fn roundtrip_all_dtypes() {
        let d = Device::Cpu;
        let ts = vec![
            (
                "a".to_string(),
                Tensor::from_vec(vec![1f32, 2., 3.], [3], &d).unwrap(),
            ),
            (
                "b".to_string(),
                Tensor::from_vec(vec![1i64, -2], [2, 1], &d).unwrap(),
            ),
            (
                "c".to_string(),
                Tensor::from_vec(vec![true, false], [2], &d).unwrap(),
            ),
            (
                "d".to_string(),
                Tensor::from_vec(vec![f16::from_f32(0.5)], [1], &d).unwrap(),
            ),
            (
                "e".to_string(),
                Tensor::from_vec(vec![bf16::from_f32(1.5)], [1], &d).unwrap(),
            ),
            (
                "f".to_string(),
                Tensor::from_vec(vec![7u8], [], &d).unwrap(),
            ),
            (
                "g".to_string(),
                Tensor::from_vec(vec![0.25f64, 1.0], [1, 2], &d)
                    .unwrap()
                    .t()
                    .unwrap(),
            ),
        ];
        let bytes = to_bytes(&ts, None).unwrap();
        let back = load_bytes(&bytes, "mem", &d).unwrap();
        for (n, t) in &ts {
            let b = back.require(n).unwrap();
            assert_eq!(b.dims(), t.dims());
            assert_eq!(b.to_f64_vec().unwrap(), t.to_f64_vec().unwrap());
        }
    }

    #[test]
    fn malformed_files_are_errors() {
        let d = Device::Cpu;
        let t = vec![(
            "x".to_string(),
            Tensor::from_vec(vec![1f32; 4], [4], &d).unwrap(),
        )];
        let bytes = to_bytes(&t, None).unwrap();
        // Truncated data.
        assert!(load_bytes(&bytes[..bytes.len() - 3], "f", &d).is_err());
        // Too short for a header length.
        assert!(load_bytes(&bytes[..4], "f", &d).is_err());
        // Lying header length.
        let mut lie = bytes.clone();
        lie[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let e = load_bytes(&lie, "lie.safetensors", &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lie.safetensors"), "{e}");
        // Out-of-bounds offsets.
        let hdr = br#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,64]}}"#;
        let mut oob = (hdr.len() as u64).to_le_bytes().to_vec();
        oob.extend_from_slice(hdr);
        oob.extend_from_slice(&[0u8; 16]);
        let e = load_bytes(&oob, "f", &d).unwrap_err().to_string();
        assert!(
            e.contains(
                "tensor `x` (F32, shape [4]) needs 16 bytes but its data_offsets [0, 64] span 64"
            ),
            "{e}"
        );
        // Overlapping offsets.
        let hdr = br#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
        let mut ov = (hdr.len() as u64).to_le_bytes().to_vec();
        ov.extend_from_slice(hdr);
        ov.extend_from_slice(&[0u8; 12]);
        assert!(load_bytes(&ov, "f", &d).is_err());
        assert!(load("/nonexistent/x.safetensors", &d).is_err());
    }
}
