//! ONNX interop: load `.onnx` files into runnable models ([`OnnxModel`]) and write mlfw
//! graphs as ONNX ([`export_graph`], [`export_module`]).
//!
//! Import runs each ONNX node with mlfw's tensor ops, so a model runs on any device and
//! matches PyTorch's ONNX export within float rounding. The operators covered are those
//! PyTorch emits for the model zoo and common layers at opsets 13–18 ([`SUPPORTED_OPS`]);
//! any other is an error naming the op, its node and the opset. External data files are
//! read from the model's folder only; declared sizes are checked against the bytes present
//! before anything is allocated.
//!
//! The protobuf messages are the official `onnx.proto` ones (field numbers and types) as
//! prost structs, checked in (`proto.rs`): no `protoc` at build time.

mod export;
mod export_build;
mod model;
mod node;
mod ops;
mod ops_shape;
pub mod proto;
mod supported;
mod tensor;

pub use export::{export_graph, export_module, save_graph, EXPORT_OPSET};
pub use model::{Dim, OnnxModel, ValueSpec};
pub use supported::SUPPORTED as SUPPORTED_OPS;
pub use tensor::{dtype_of, from_tensor, onnx_type_of, to_tensor};
