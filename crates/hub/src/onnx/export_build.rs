//! The ONNX graph being built by the exporter: value names, initializers, nodes, and
//! shape operands (fixed, or computed from the batch size at run time).

use std::collections::{HashMap, HashSet};

use mlfw_core::graph::{Graph, NodeKind, SymDim, ValueId};
use mlfw_core::{DType, Device, Error, Result, Tensor};

use super::proto::{
    attribute_type as at, AttributeProto, DimValue, Dimension, GraphProto, NodeProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use super::tensor::{from_tensor, onnx_type_of};

/// A scalar constant of the graph's dtype, as export writes it.
fn scalar_tensor(v: f64, dtype: DType) -> Result<Tensor> {
    Tensor::full(v, Vec::<usize>::new(), dtype, &Device::Cpu)
}

/// Maps from graph values to ONNX value names.
type Names = HashMap<ValueId, String>;

/// The name of the symbolic batch dimension in exported files.
pub const BATCH_DIM: &str = "N";

pub(super) struct Builder<'g> {
    g: &'g Graph,
    graph: GraphProto,
    names: Names,
    taken: HashSet<String>,
    counter: usize,
    /// The graph input whose dim 0 is the batch size `N`.
    batch_input: Option<String>,
    /// `N` as a 1-D int64 tensor of one element, once computed.
    batch_value: Option<String>,
}

impl<'g> Builder<'g> {
    /// # Errors
    /// None in practice: the graph's names are always valid.
    pub fn new(g: &'g Graph) -> Result<Self> {
        let mut names = HashMap::new();
        let mut taken: HashSet<String> = g.nodes.iter().map(|n| n.name.clone()).collect();
        // Op outputs of the graph are named `output` / `outputK` directly.
        let many = g.outputs.len() > 1;
        for (i, o) in g.outputs.iter().enumerate() {
            let first = g.outputs.iter().position(|x| x == o) == Some(i);
            if first && matches!(g.node(*o).kind, NodeKind::Op(_)) {
                let n = if many {
                    format!("output{i}")
                } else {
                    "output".to_string()
                };
                if taken.insert(n.clone()) {
                    names.insert(*o, n);
                }
            }
        }
        let batch_input = g
            .inputs
            .iter()
            .map(|i| g.node(*i))
            .find(|n| n.shape.first() == Some(&SymDim { batch: 1, fixed: 0 }))
            .map(|n| n.name.clone());
        Ok(Builder {
            g,
            graph: GraphProto {
                name: "mlfw".into(),
                ..Default::default()
            },
            names,
            taken,
            counter: 0,
            batch_input,
            batch_value: None,
        })
    }

    /// The ONNX name of value `id`.
    pub fn name(&self, id: ValueId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.g.node(id).name.clone())
    }

    pub fn dtype(&self, id: ValueId) -> DType {
        self.g.node(id).dtype
    }

    /// Makes `id` another name for `src`'s value (no node).
    pub fn alias(&mut self, id: ValueId, src: ValueId) {
        let n = self.name(src);
        self.names.insert(id, n);
    }

    fn value_info(&self, name: String, id: ValueId) -> ValueInfoProto {
        let node = self.g.node(id);
        let dim = node
            .shape
            .iter()
            .map(|d| Dimension {
                value: Some(if d.is_symbolic() {
                    DimValue::DimParam(if *d == (SymDim { batch: 1, fixed: 0 }) {
                        BATCH_DIM.into()
                    } else {
                        d.to_string()
                    })
                } else {
                    DimValue::DimValue(d.fixed as i64)
                }),
                denotation: String::new(),
            })
            .collect();
        ValueInfoProto {
            name,
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: onnx_type_of(node.dtype),
                    shape: Some(TensorShapeProto { dim }),
                }),
                denotation: String::new(),
            }),
            doc_string: String::new(),
        }
    }

    pub fn input(&mut self, id: ValueId) {
        let vi = self.value_info(self.name(id), id);
        self.graph.input.push(vi);
    }

    /// # Errors
    /// Errors of [`from_tensor`] (a tensor that cannot be copied to the host).
    pub fn initializer(&mut self, id: ValueId, t: &Tensor) -> Result<()> {
        let name = self.name(id);
        self.graph.initializer.push(from_tensor(&name, t)?);
        Ok(())
    }

    fn fresh(&mut self, base: &str) -> String {
        loop {
            self.counter += 1;
            let n = format!("{base}_{}", self.counter);
            if self.taken.insert(n.clone()) {
                return n;
            }
        }
    }

    fn push(&mut self, op: &str, ins: &[String], out: String, attribute: Vec<AttributeProto>) {
        self.graph.node.push(NodeProto {
            name: format!("{op}:{out}"),
            op_type: op.into(),
            input: ins.to_vec(),
            output: vec![out],
            attribute,
            ..Default::default()
        });
    }

    /// Adds a node with a fresh output; returns the output's name.
    pub fn node(&mut self, op: &str, ins: &[String], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&format!("onnx_{}", op.to_lowercase()));
        self.push(op, ins, out.clone(), attrs);
        out
    }

    /// Adds a node computing graph value `id`.
    ///
    /// # Errors
    /// None in practice (a `Result` for the exporter's `?` chains).
    pub fn node_out(
        &mut self,
        id: ValueId,
        op: &str,
        ins: &[String],
        attrs: Vec<AttributeProto>,
    ) -> Result<()> {
        let out = self.name(id);
        self.push(op, ins, out, attrs);
        Ok(())
    }

    /// A 1-D int64 initializer.
    pub fn const_i64(&mut self, v: &[i64]) -> String {
        let name = self.fresh("onnx_const");
        let t = Tensor::from_vec(v.to_vec(), [v.len()], &mlfw_core::Device::Cpu)
            .and_then(|t| from_tensor(&name, &t));
        if let Ok(t) = t {
            self.graph.initializer.push(t);
        }
        name
    }

    /// A scalar initializer of `dtype`.
    ///
    /// # Errors
    /// Errors of [`from_tensor`].
    pub fn const_scalar(&mut self, v: f64, dtype: DType) -> Result<String> {
        let name = self.fresh("onnx_const");
        self.graph
            .initializer
            .push(from_tensor(&name, &scalar_tensor(v, dtype)?)?);
        Ok(name)
    }

    /// `N` as a 1-D int64 tensor, computed once from the batch input's shape.
    fn batch(&mut self) -> Result<String> {
        if let Some(n) = &self.batch_value {
            return Ok(n.clone());
        }
        let input = self.batch_input.clone().ok_or_else(|| {
            Error::msg("onnx export: a shape depends on the batch size, but no input has the batch size N as dim 0")
        })?;
        let shape = self.node(
            "Shape",
            &[input],
            vec![Self::int("start", 0), Self::int("end", 1)],
        );
        self.batch_value = Some(shape.clone());
        Ok(shape)
    }

    /// A 1-D int64 value holding `dims` for the run's batch size.
    ///
    /// # Errors
    /// Errors of [`from_tensor`] for the constant parts.
    pub fn shape_value(&mut self, dims: &[SymDim]) -> Result<String> {
        if dims.iter().all(|d| !d.is_symbolic()) {
            return Ok(self.const_i64(&dims.iter().map(|d| d.fixed as i64).collect::<Vec<_>>()));
        }
        let mut parts = Vec::with_capacity(dims.len());
        for d in dims {
            if !d.is_symbolic() {
                parts.push(self.const_i64(&[d.fixed as i64]));
                continue;
            }
            let mut v = self.batch()?;
            if d.batch != 1 {
                let a = self.const_i64(&[d.batch as i64]);
                v = self.node("Mul", &[v, a], vec![]);
            }
            if d.fixed != 0 {
                let c = self.const_i64(&[d.fixed as i64]);
                v = self.node("Add", &[v, c], vec![]);
            }
            parts.push(v);
        }
        Ok(self.node("Concat", &parts, vec![Self::int("axis", 0)]))
    }

    /// Reshape's target: fixed, or with `-1` for the one batch-dependent dim.
    ///
    /// # Errors
    /// `Error::Msg` for a target shape with a 0 dim.
    pub fn shape_for_reshape(&mut self, dims: &[SymDim]) -> Result<String> {
        if dims.iter().any(|d| !d.is_symbolic() && d.fixed == 0) {
            return Err(Error::msg(
                "reshape to a shape with a 0 dim cannot be exported",
            ));
        }
        if dims.iter().filter(|d| d.is_symbolic()).count() == 1 {
            let v: Vec<i64> = dims
                .iter()
                .map(|d| if d.is_symbolic() { -1 } else { d.fixed as i64 })
                .collect();
            return Ok(self.const_i64(&v));
        }
        self.shape_value(dims)
    }

    /// Declares the graph outputs (adding an Identity where an output is not an op's own).
    ///
    /// # Errors
    /// None in practice (a `Result` for the exporter's `?` chains).
    pub fn outputs(&mut self) -> Result<()> {
        let many = self.g.outputs.len() > 1;
        for (i, o) in self.g.outputs.clone().into_iter().enumerate() {
            let want = if many {
                format!("output{i}")
            } else {
                "output".to_string()
            };
            let name = self.name(o);
            let name = if name == want
                || self.graph.output.iter().any(|v| v.name == name)
                || !self.names.contains_key(&o)
            {
                if name == want {
                    name
                } else {
                    let out = if self.taken.insert(want.clone()) {
                        want
                    } else {
                        self.fresh("output")
                    };
                    self.push("Identity", &[name], out.clone(), vec![]);
                    out
                }
            } else {
                name
            };
            let vi = self.value_info(name, o);
            self.graph.output.push(vi);
        }
        Ok(())
    }

    pub fn finish(self) -> GraphProto {
        self.graph
    }

    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: at::INT,
            i: v,
            ..Default::default()
        }
    }

    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: at::FLOAT,
            f: v,
            ..Default::default()
        }
    }

    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: at::INTS,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    /// # Errors
    /// Errors of [`from_tensor`].
    pub fn tensor_attr(name: &str, t: &Tensor) -> Result<AttributeProto> {
        Ok(AttributeProto {
            name: name.into(),
            r#type: at::TENSOR,
            t: Some(from_tensor(name, t)?),
            ..Default::default()
        })
    }
}
