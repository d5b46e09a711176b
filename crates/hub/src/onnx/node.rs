//! One ONNX node at run time: its attributes by name and its inputs by position.

use mlfw_core::{Device, Error, Result, Tensor};

use super::proto::{attribute_type as at, AttributeProto, NodeProto};
use super::tensor::to_tensor;

/// A node being evaluated: the proto, the values of its inputs (`None` for an omitted
/// optional input), and the model's default-domain opset.
pub struct NodeCtx<'a> {
    pub node: &'a NodeProto,
    pub inputs: Vec<Option<Tensor>>,
    pub opset: i64,
    pub device: Device,
}

impl NodeCtx<'_> {
    /// An error naming the node, its op and the opset.
    pub fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::msg(format!(
            "onnx: {} node `{}` (opset {}): {what}",
            self.node.op_type, self.node.name, self.opset
        ))
    }

    /// Input `k`, which must be present.
    ///
    /// # Errors
    /// `Error::Msg` naming the node when input `k` is absent.
    pub fn input(&self, k: usize) -> Result<&Tensor> {
        self.inputs
            .get(k)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| self.err(format!("input {k} is missing")))
    }

    /// Input `k` when given.
    pub fn opt_input(&self, k: usize) -> Option<&Tensor> {
        self.inputs.get(k).and_then(|t| t.as_ref())
    }

    /// Input `k` as host i64 values (shapes, axes), when given.
    ///
    /// # Errors
    /// Errors of reading input `k` (a malformed initializer).
    pub fn ints_input(&self, k: usize) -> Result<Option<Vec<i64>>> {
        self.opt_input(k)
            .map(|t| t.to_dtype(mlfw_core::DType::I64)?.to_vec::<i64>())
            .transpose()
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// An int attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    /// A float attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    /// An ints attribute, if present.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// A string attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }

    /// A tensor-valued attribute (Constant's `value`, ConstantOfShape's `value`) on the
    /// model's device, or the scalar/list forms Constant also accepts.
    ///
    /// # Errors
    /// `Error::Msg` naming the node when the attribute is missing, holds no tensor, or has an
    /// unsupported type.
    pub fn tensor_attr(&self, name: &str) -> Result<Option<Tensor>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        let dev = &self.device;
        Ok(Some(match a.r#type {
            at::TENSOR => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.err(format!("attribute `{name}` has no tensor")))?;
                to_tensor(t, None, dev)?
            }
            at::FLOAT => Tensor::from_vec(vec![a.f], Vec::<usize>::new(), dev)?,
            at::INT => Tensor::from_vec(vec![a.i], Vec::<usize>::new(), dev)?,
            at::FLOATS => Tensor::from_vec(a.floats.clone(), [a.floats.len()], dev)?,
            at::INTS => Tensor::from_vec(a.ints.clone(), [a.ints.len()], dev)?,
            other => {
                return Err(self.err(format!("attribute `{name}` has unsupported type {other}")))
            }
        }))
    }

    /// Normalizes a possibly negative axis for a tensor of `rank` dims.
    ///
    /// # Errors
    /// `Error::Msg` naming the node when `axis` is outside `-rank..rank`.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= rank as i64 {
            return Err(self.err(format!("axis {axis} is out of range for rank {rank}")));
        }
        Ok(a as usize)
    }
}
