//! `Display` in the style of PyTorch's repr: nested brackets, long dims abbreviated with `...`.

use super::Tensor;
use crate::DType;

const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn fmt_val(v: f64, dtype: DType) -> String {
    match dtype {
        DType::Bool => (if v != 0.0 { "True" } else { "False" }).to_string(),
        DType::U8 | DType::I64 => format!("{}", v as i64),
        _ => {
            if v.is_finite() && v == v.trunc() && v.abs() < 1e8 {
                format!("{v:.0}.")
            } else if v.is_finite() && (v.abs() >= 1e8 || (v != 0.0 && v.abs() < 1e-4)) {
                format!("{v:.4e}")
            } else {
                format!("{v:.4}")
            }
        }
    }
}

fn write_dim(
    out: &mut String,
    vals: &[f64],
    dims: &[usize],
    dtype: DType,
    abbreviate: bool,
    indent: usize,
) {
    if dims.is_empty() {
        out.push_str(&fmt_val(vals[0], dtype));
        return;
    }
    let n = dims[0];
    let stride: usize = dims[1..].iter().product();
    let show: Vec<Option<usize>> = if abbreviate && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    out.push('[');
    for (j, i) in show.iter().enumerate() {
        if j > 0 {
            out.push(',');
            if dims.len() > 1 {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 1));
            } else {
                out.push(' ');
            }
        }
        match i {
            Some(i) => write_dim(
                out,
                &vals[i * stride..(i + 1) * stride],
                &dims[1..],
                dtype,
                abbreviate,
                indent + 1,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vals = match self.to_f64_vec() {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<unreadable: {e}>)"),
        };
        let mut s = String::from("tensor(");
        if self.elem_count() == 0 {
            s.push_str("[]");
        } else {
            write_dim(
                &mut s,
                &vals,
                self.dims(),
                self.dtype(),
                self.elem_count() > THRESHOLD,
                7,
            );
        }
        if self.elem_count() == 0 || self.elem_count() > THRESHOLD {
            s.push_str(&format!(", size={}", self.shape()));
        }
        if !matches!(self.dtype(), DType::F32 | DType::I64) {
            s.push_str(&format!(", dtype={}", self.dtype()));
        }
        if !self.device().is_cpu() {
            s.push_str(&format!(", device='{}'", self.device()));
        }
        if self.requires_grad() {
            s.push_str(if self.is_leaf() {
                ", requires_grad=True"
            } else {
                ", grad_fn"
            });
        }
        s.push(')');
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Device, Tensor};

    #[test]
    fn repr_like_pytorch() {
        let t = Tensor::from_vec(vec![1f32, 2.5, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
        assert_eq!(t.to_string(), "tensor([[1., 2.5000],\n        [3., 4.]])");
        let big = Tensor::zeros([2000], DType::I64, &Device::Cpu).unwrap();
        assert_eq!(
            big.to_string(),
            "tensor([0, 0, 0, ..., 0, 0, 0], size=[2000])"
        );
    }
}
