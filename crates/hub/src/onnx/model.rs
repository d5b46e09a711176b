//! [`OnnxModel`]: an `.onnx` file loaded into a runnable model on mlfw's ops.

use std::collections::HashMap;
use std::path::Path;

use mlfw_core::graph::{Capture, Graph};
use mlfw_core::{DType, Device, Error, Result, Tensor};
use mlfw_nn::{Module, TensorKind};
use prost::Message;

use super::node::NodeCtx;
use super::ops;
use super::proto::{DimValue, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use super::supported;
use super::tensor::{dtype_of, to_tensor};

/// One dimension of a declared input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic size (`batch`, `N`), or an unnamed unknown one (`?`).
    Symbolic(String),
}

/// A graph input or output as the file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSpec {
    /// The value's name.
    pub name: String,
    /// Its element type (as loaded: integer types become i64).
    pub dtype: DType,
    /// Its shape; empty when the file declares none.
    pub dims: Vec<Dim>,
}

/// A model loaded from ONNX: the graph's nodes run on mlfw tensors, on the device the
/// initializers live on ([`Module::to_device`] moves them). Inputs and outputs are named
/// as in the file.
///
/// ```no_run
/// use mlfw_core::{Device, DType, Tensor};
/// let m = mlfw_hub::onnx::OnnxModel::load("lenet5.onnx", &Device::Cpu)?;
/// let x = Tensor::zeros([2, 1, 28, 28], DType::F32, &Device::Cpu)?;
/// let logits = &m.run(&[x])?[0]; // [2, 10]
/// # Ok::<(), mlfw_core::Error>(())
/// ```
#[derive(Clone)]
pub struct OnnxModel {
    nodes: Vec<NodeProto>,
    initializers: Vec<(String, Tensor)>,
    inputs: Vec<ValueSpec>,
    outputs: Vec<ValueSpec>,
    opset: i64,
    device: Device,
    /// For each node, the values last read by it (freed after it runs).
    frees: Vec<Vec<String>>,
}

impl OnnxModel {
    /// Reads and checks an `.onnx` file; external data files are read from its folder.
    ///
    /// # Errors
    /// The file unreadable; a malformed or truncated protobuf; an operator that is
    /// not supported (named with its node and the opset); initializers whose data
    /// disagrees with their shape, or external data outside the model's folder.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::msg(format!("onnx: reading {}: {e}", path.display())))?;
        let base = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        Self::from_bytes(&bytes, base, device)
            .map_err(|e| e.context(format!("loading {}", path.display())))
    }

    /// Parses a model from its protobuf bytes; `base` is where external data files are.
    ///
    /// # Errors
    /// As [`OnnxModel::load`].
    pub fn from_bytes(bytes: &[u8], base: Option<&Path>, device: &Device) -> Result<Self> {
        let model = ModelProto::decode(bytes)
            .map_err(|e| Error::msg(format!("onnx: not a valid ONNX protobuf ({e})")))?;
        Self::from_proto(&model, base, device)
    }

    /// Builds a model from a decoded `ModelProto`.
    ///
    /// # Errors
    /// As [`OnnxModel::load`].
    pub fn from_proto(model: &ModelProto, base: Option<&Path>, device: &Device) -> Result<Self> {
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| Error::msg("onnx: the model imports no default-domain opset"))?;
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| Error::msg("onnx: the model has no graph"))?;
        check_ops(graph, opset)?;
        let mut initializers = Vec::with_capacity(graph.initializer.len());
        for t in &graph.initializer {
            let v = to_tensor(t, base, device)
                .map_err(|e| e.context(format!("onnx: initializer `{}`", t.name)))?;
            initializers.push((t.name.clone(), v));
        }
        let init_names: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|v| !init_names.contains(v.name.as_str()))
            .map(spec)
            .collect::<Result<_>>()?;
        let outputs = graph.output.iter().map(spec).collect::<Result<_>>()?;
        let frees = last_reads(graph);
        Ok(OnnxModel {
            frees,
            nodes: graph.node.clone(),
            initializers,
            inputs,
            outputs,
            opset,
            device: *device,
        })
    }

    /// The graph inputs (initializers excluded), in [`OnnxModel::run`]'s argument order.
    pub fn inputs(&self) -> &[ValueSpec] {
        &self.inputs
    }

    /// The graph outputs, in [`OnnxModel::run`]'s result order.
    pub fn outputs(&self) -> &[ValueSpec] {
        &self.outputs
    }

    /// The default-domain opset the file imports.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// The initializers (weights), by their names in the file.
    pub fn initializers(&self) -> &[(String, Tensor)] {
        &self.initializers
    }

    /// Runs the graph on `inputs` (one per [`OnnxModel::inputs`], same order), returning
    /// the outputs in order.
    ///
    /// # Errors
    /// A wrong number of inputs, a wrong dtype or rank or fixed dim (naming the
    /// input), or a node failing (naming it, its op and the opset).
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            let names: Vec<&str> = self.inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::msg(format!(
                "onnx: expected {} inputs ({}), got {}",
                names.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        let mut values: HashMap<&str, Tensor> = HashMap::new();
        for (n, t) in &self.initializers {
            values.insert(n, t.clone());
        }
        for (s, x) in self.inputs.iter().zip(inputs) {
            check_input(s, x)?;
            values.insert(&s.name, x.clone());
        }
        let device = inputs.first().map_or(self.device, |x| x.device());
        for (node, frees) in self.nodes.iter().zip(&self.frees) {
            let ins = node
                .input
                .iter()
                .map(|n| {
                    if n.is_empty() {
                        return Ok(None);
                    }
                    values.get(n.as_str()).cloned().map(Some).ok_or_else(|| {
                        Error::msg(format!(
                            "onnx: node `{}` ({}) reads `{n}` before anything produces it",
                            node.name, node.op_type
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let ctx = NodeCtx {
                node,
                inputs: ins,
                opset: self.opset,
                device,
            };
            let outs = ops::eval(&ctx).map_err(|e| {
                let msg = e.to_string();
                if msg.contains(&format!("node `{}`", node.name)) {
                    e
                } else {
                    ctx.err(msg)
                }
            })?;
            let mut outs = outs.into_iter();
            for name in &node.output {
                let v = outs.next();
                if name.is_empty() {
                    continue;
                }
                let v = v.ok_or_else(|| ctx.err(format!("output `{name}` is not produced")))?;
                values.insert(name, v);
            }
            for f in frees {
                values.remove(f.as_str());
            }
        }
        self.outputs
            .iter()
            .map(|s| {
                values.get(s.name.as_str()).cloned().ok_or_else(|| {
                    Error::msg(format!("onnx: output `{}` is never produced", s.name))
                })
            })
            .collect()
    }

    /// Captures the model as an mlfw [`Graph`] on `example` inputs (placeholders named as
    /// the ONNX inputs, parameters named as the initializers). When every input's dim 0 is
    /// symbolic in the file, so is the graph's batch.
    ///
    /// # Errors
    /// As [`OnnxModel::run`], and those of [`Capture::run`].
    pub fn to_graph(&self, example: &[Tensor]) -> Result<Graph> {
        let symbolic = !self.inputs.is_empty()
            && self
                .inputs
                .iter()
                .all(|s| matches!(s.dims.first(), Some(Dim::Symbolic(_))));
        let mut cap = Capture::new();
        for (s, x) in self.inputs.iter().zip(example) {
            cap = cap.input(&s.name, x);
        }
        cap.params(self.initializers.iter().cloned())
            .symbolic_batch(symbolic)
            .run(|xs| self.run(xs))
    }
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("opset", &self.opset)
            .field("nodes", &self.nodes.len())
            .field("initializers", &self.initializers.len())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// For each node, the values it is the last to read (graph outputs are never freed), so a
/// run keeps only live intermediates.
fn last_reads(graph: &GraphProto) -> Vec<Vec<String>> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (k, n) in graph.node.iter().enumerate() {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            last.insert(i, k);
        }
    }
    let mut frees = vec![Vec::new(); graph.node.len()];
    for (name, k) in last {
        if !graph.output.iter().any(|o| o.name == name) {
            frees[k].push(name.to_string());
        }
    }
    frees
}

/// Every node's op must be one the importer runs, in the default domain.
fn check_ops(graph: &GraphProto, opset: i64) -> Result<()> {
    for n in &graph.node {
        let known = (n.domain.is_empty() || n.domain == "ai.onnx")
            && supported::SUPPORTED.contains(&n.op_type.as_str());
        if !known {
            let dom = if n.domain.is_empty() {
                String::new()
            } else {
                format!(" of domain `{}`", n.domain)
            };
            return Err(Error::msg(format!(
                "onnx: unsupported op `{}`{dom} (node `{}`, opset {opset}); supported: {}",
                n.op_type,
                n.name,
                supported::SUPPORTED.join(", ")
            )));
        }
    }
    Ok(())
}

fn spec(v: &ValueInfoProto) -> Result<ValueSpec> {
    let tt = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let dtype = match tt {
        Some(t) => {
            dtype_of(t.elem_type).map_err(|e| e.context(format!("onnx: value `{}`", v.name)))?
        }
        None => DType::F32,
    };
    let dims = tt
        .and_then(|t| t.shape.as_ref())
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                    Some(DimValue::DimParam(p)) => Dim::Symbolic(p.clone()),
                    _ => Dim::Symbolic("?".into()),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ValueSpec {
        name: v.name.clone(),
        dtype,
        dims,
    })
}

fn check_input(s: &ValueSpec, x: &Tensor) -> Result<()> {
    let shape = || {
        let d: Vec<String> = s
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Symbolic(p) => p.clone(),
            })
            .collect();
        format!("[{}]", d.join(", "))
    };
    if x.dtype() != s.dtype {
        return Err(Error::msg(format!(
            "onnx: input `{}` must be {}, got {}",
            s.name,
            s.dtype,
            x.dtype()
        )));
    }
    if s.dims.is_empty() {
        return Ok(());
    }
    let fits = x.rank() == s.dims.len()
        && s.dims
            .iter()
            .zip(x.dims())
            .all(|(d, &n)| !matches!(d, Dim::Fixed(f) if *f != n));
    if !fits {
        return Err(Error::msg(format!(
            "onnx: input `{}` must have shape {}, got {}",
            s.name,
            shape(),
            x.shape()
        )));
    }
    Ok(())
}

/// An ONNX model as a [`Module`]: `forward` runs the single-input graph and returns its
/// first output; the initializers are its buffers (so `to_device` moves them).
impl Module for OnnxModel {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(std::slice::from_ref(x))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::msg("onnx: the model has no outputs"))
    }

    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        for (n, t) in &self.initializers {
            f(n, t, TensorKind::Buffer);
        }
    }

    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        for (n, t) in &mut self.initializers {
            f(n, t, TensorKind::Buffer)?;
        }
        if let Some((_, t)) = self.initializers.first() {
            self.device = t.device();
        }
        Ok(())
    }
}
