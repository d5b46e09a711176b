//! Writing an mlfw [`Graph`] as an ONNX model (opset 17): one or a few ONNX nodes per
//! graph op, parameters as initializers under their state-dict names, and the graph's
//! symbolic batch `N` as a named dimension (`dim_param`), so the file runs at any batch.

use std::path::Path;

use mlfw_core::graph::{Graph, NodeKind, SymDim, ValueId};
use mlfw_core::{BinaryOp, CmpOp, Device, Error, Op, ReduceOp, Result, Tensor, UnaryOp};
use mlfw_nn::Module;
use prost::Message;

use super::export_build::Builder;
use super::proto::{ModelProto, OperatorSetIdProto};

/// The opset exported files import.
pub const EXPORT_OPSET: i64 = 17;

/// Converts `graph` into an ONNX model: inputs named as the graph's placeholders,
/// outputs `output` (or `output0`, `output1`, … for several).
///
/// # Errors
/// An op ONNX export does not cover (backward kernels, scatter/index-add, custom
/// ops), naming the node; a symbolic batch that is not dim 0 of the first input.
pub fn export_graph(graph: &Graph) -> Result<ModelProto> {
    let mut b = Builder::new(graph)?;
    let consumers = consumers(graph);
    for (k, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(k);
        match &node.kind {
            NodeKind::Input { .. } => b.input(id),
            NodeKind::Param(t) | NodeKind::Constant(t) => b.initializer(id, t)?,
            NodeKind::Secondary { .. } => {
                if !consumers[k].is_empty() || graph.outputs.contains(&id) {
                    return Err(unsupported(&node.name, "max pooling indices"));
                }
            }
            NodeKind::Op(op) => emit(&mut b, graph, id, op, &consumers[k])
                .map_err(|e| e.context(format!("onnx export: node `{}`", node.name)))?,
        }
    }
    b.outputs()?;
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: EXPORT_OPSET,
        }],
        producer_name: "mlfw".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(b.finish()),
        ..Default::default()
    })
}

/// Writes `graph` as an ONNX file at `path` (atomically: a temporary file, then renamed).
///
/// # Errors
/// As [`export_graph`]; writing the file.
pub fn save_graph(graph: &Graph, path: impl AsRef<Path>) -> Result<()> {
    let bytes = export_graph(graph)?.encode_to_vec();
    mlfw_core::safetensors::write_atomic(path, &bytes)
}

/// Captures `model` on `example` (`[N, …]`, any batch size) with a symbolic batch, in the
/// model's current mode (put it in eval mode first), and writes it as ONNX to `path`.
/// Inputs and outputs are named `input` and `output`.
///
/// # Errors
/// The capture failing (a model whose ops depend on the batch size); as
/// [`save_graph`].
pub fn export_module(model: &dyn Module, example: &Tensor, path: impl AsRef<Path>) -> Result<()> {
    let example = example.to_device(&Device::Cpu)?;
    let graph = mlfw_nn::trace_module(model, &example, true)?;
    save_graph(&graph, path)
}

fn unsupported(node: &str, what: &str) -> Error {
    Error::msg(format!(
        "onnx export: node `{node}`: {what} cannot be exported to ONNX"
    ))
}

/// For each node, the nodes reading it.
fn consumers(g: &Graph) -> Vec<Vec<ValueId>> {
    let mut c = vec![Vec::new(); g.nodes.len()];
    for (k, n) in g.nodes.iter().enumerate() {
        for v in n.inputs() {
            c[v.0].push(ValueId(k));
        }
    }
    c
}

/// Whether an `Expand` can be left to ONNX's implicit broadcasting: every consumer is an
/// elementwise op whose other operands, broadcast with the unexpanded value, give the
/// expanded shape (which is then what the consumer computes anyway).
fn implicit_broadcast(g: &Graph, id: ValueId, src: ValueId, readers: &[ValueId]) -> bool {
    let target = &g.node(id).shape;
    !readers.is_empty()
        && readers.iter().all(|r| {
            let args: Vec<ValueId> = match &g.node(*r).kind {
                NodeKind::Op(Op::Binary(a, b, _)) | NodeKind::Op(Op::Cmp(a, b, _)) => vec![*a, *b],
                NodeKind::Op(Op::Where(c, a, b)) => vec![*c, *a, *b],
                _ => return false,
            };
            let shapes: Vec<&Vec<SymDim>> = args
                .iter()
                .map(|a| {
                    if *a == id {
                        &g.node(src).shape
                    } else {
                        &g.node(*a).shape
                    }
                })
                .collect();
            broadcast(&shapes).as_ref() == Some(target)
        })
}

/// Numpy broadcasting of symbolic shapes (None when not broadcastable).
fn broadcast(shapes: &[&Vec<SymDim>]) -> Option<Vec<SymDim>> {
    let rank = shapes.iter().map(|s| s.len()).max()?;
    let one = SymDim::fixed(1);
    (0..rank)
        .map(|i| {
            let mut out = one;
            for s in shapes {
                let d = if i + s.len() >= rank {
                    s[i + s.len() - rank]
                } else {
                    one
                };
                if d == one || d == out {
                    continue;
                }
                if out != one {
                    return None;
                }
                out = d;
            }
            Some(out)
        })
        .collect()
}

/// Emits the ONNX nodes of one graph op.
fn emit(
    b: &mut Builder,
    g: &Graph,
    id: ValueId,
    op: &Op<ValueId>,
    readers: &[ValueId],
) -> Result<()> {
    let node = g.node(id);
    match op {
        Op::Unary(a, u) => unary(b, id, *a, *u),
        Op::Binary(l, r, o) => {
            let t = match o {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Pow => "Pow",
                BinaryOp::Maximum => "Max",
                BinaryOp::Minimum => "Min",
            };
            let ins = [b.name(*l), b.name(*r)];
            b.node_out(id, t, &ins, vec![])
        }
        Op::Where(c, t, f) => {
            let ins = [b.name(*c), b.name(*t), b.name(*f)];
            b.node_out(id, "Where", &ins, vec![])
        }
        Op::Cmp(l, r, o) => {
            let ins = [b.name(*l), b.name(*r)];
            let t = match o {
                CmpOp::Eq | CmpOp::Ne => "Equal",
                CmpOp::Lt => "Less",
                CmpOp::Le => "LessOrEqual",
                CmpOp::Gt => "Greater",
                CmpOp::Ge => "GreaterOrEqual",
            };
            if *o == CmpOp::Ne {
                let eq = b.node(t, &ins, vec![]);
                b.node_out(id, "Not", &[eq], vec![])
            } else {
                b.node_out(id, t, &ins, vec![])
            }
        }
        Op::Reduce {
            arg,
            op,
            dims,
            keepdim,
        } => {
            let keep = Builder::int("keepdims", *keepdim as i64);
            let axes: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            match op {
                ReduceOp::Sum => {
                    let ax = b.const_i64(&axes);
                    let ins = [b.name(*arg), ax];
                    b.node_out(id, "ReduceSum", &ins, vec![keep])
                }
                ReduceOp::Max | ReduceOp::Min => {
                    let t = if *op == ReduceOp::Max {
                        "ReduceMax"
                    } else {
                        "ReduceMin"
                    };
                    let ins = [b.name(*arg)];
                    b.node_out(id, t, &ins, vec![keep, Builder::ints("axes", &axes)])
                }
                ReduceOp::ArgMax | ReduceOp::ArgMin => {
                    let t = if *op == ReduceOp::ArgMax {
                        "ArgMax"
                    } else {
                        "ArgMin"
                    };
                    let ins = [b.name(*arg)];
                    b.node_out(id, t, &ins, vec![keep, Builder::int("axis", axes[0])])
                }
            }
        }
        Op::Softmax { arg, dim, log } => {
            let ins = [b.name(*arg)];
            let t = if *log { "LogSoftmax" } else { "Softmax" };
            b.node_out(id, t, &ins, vec![Builder::int("axis", *dim as i64)])
        }
        Op::Matmul(l, r) => {
            let ins = [b.name(*l), b.name(*r)];
            b.node_out(id, "MatMul", &ins, vec![])
        }
        Op::Conv2d {
            input,
            weight,
            params: p,
        } => {
            let kshape = &g.node(*weight).shape;
            let k = [kshape[2].fixed as i64, kshape[3].fixed as i64];
            let ins = [b.name(*input), b.name(*weight)];
            let attrs = vec![
                Builder::ints("kernel_shape", &k),
                Builder::ints("strides", &[p.stride.0 as i64, p.stride.1 as i64]),
                Builder::ints("pads", &pads(p.padding)),
                Builder::ints("dilations", &[p.dilation.0 as i64, p.dilation.1 as i64]),
                Builder::int("group", p.groups as i64),
            ];
            b.node_out(id, "Conv", &ins, attrs)
        }
        Op::MaxPool2d {
            input, params: p, ..
        }
        | Op::AvgPool2d { input, params: p } => {
            let max = matches!(op, Op::MaxPool2d { .. });
            let mut attrs = vec![
                Builder::ints("kernel_shape", &[p.kernel.0 as i64, p.kernel.1 as i64]),
                Builder::ints("strides", &[p.stride.0 as i64, p.stride.1 as i64]),
                Builder::ints("pads", &pads(p.padding)),
                Builder::int("ceil_mode", p.ceil_mode as i64),
            ];
            if max {
                attrs.push(Builder::ints(
                    "dilations",
                    &[p.dilation.0 as i64, p.dilation.1 as i64],
                ));
            } else {
                if p.dilation != (1, 1) {
                    return Err(Error::msg(
                        "dilated average pooling has no ONNX opset-17 form",
                    ));
                }
                attrs.push(Builder::int(
                    "count_include_pad",
                    p.count_include_pad as i64,
                ));
            }
            let ins = [b.name(*input)];
            b.node_out(id, if max { "MaxPool" } else { "AveragePool" }, &ins, attrs)
        }
        Op::AdaptiveAvgPool2d { input, out_hw } => {
            let s = &g.node(*input).shape;
            let (h, w) = (s[2].fixed, s[3].fixed);
            let ins = [b.name(*input)];
            if *out_hw == (1, 1) {
                return b.node_out(id, "GlobalAveragePool", &ins, vec![]);
            }
            if s[2].is_symbolic() || s[3].is_symbolic() {
                return Err(Error::msg(
                    "adaptive average pooling of a batch-sized plane cannot be exported",
                ));
            }
            if out_hw.0 % h == 0 && out_hw.1 % w == 0 {
                // Every output cell averages exactly one input cell: a nearest upsampling,
                // written as reshape → expand → reshape.
                let one = SymDim::fixed(1);
                let (rh, rw) = (SymDim::fixed(out_hw.0 / h), SymDim::fixed(out_hw.1 / w));
                let split = b.shape_for_reshape(&[s[0], s[1], s[2], one, s[3], one])?;
                let grid = b.node("Reshape", &[b.name(*input), split], vec![]);
                let big = b.shape_value(&[s[0], s[1], s[2], rh, s[3], rw])?;
                let up = b.node("Expand", &[grid, big], vec![]);
                let out = b.shape_for_reshape(&node.shape)?;
                return b.node_out(id, "Reshape", &[up, out], vec![]);
            }
            if h % out_hw.0 != 0 || w % out_hw.1 != 0 {
                return Err(Error::msg(format!(
                    "adaptive average pooling from {h}x{w} to {}x{} is not a plain average pooling",
                    out_hw.0, out_hw.1
                )));
            }
            let k = [(h / out_hw.0) as i64, (w / out_hw.1) as i64];
            b.node_out(
                id,
                "AveragePool",
                &ins,
                vec![
                    Builder::ints("kernel_shape", &k),
                    Builder::ints("strides", &k),
                ],
            )
        }
        Op::Reshape(a) => {
            let shape = b.shape_for_reshape(&node.shape)?;
            let ins = [b.name(*a), shape];
            b.node_out(id, "Reshape", &ins, vec![])
        }
        Op::Expand(a) => {
            if implicit_broadcast(g, id, *a, readers) && !g.outputs.contains(&id) {
                b.alias(id, *a);
                return Ok(());
            }
            let shape = b.shape_value(&node.shape)?;
            let ins = [b.name(*a), shape];
            b.node_out(id, "Expand", &ins, vec![])
        }
        Op::Permute(a, perm) => {
            let p: Vec<i64> = perm.iter().map(|&d| d as i64).collect();
            let ins = [b.name(*a)];
            b.node_out(id, "Transpose", &ins, vec![Builder::ints("perm", &p)])
        }
        Op::Narrow {
            arg,
            dim,
            start,
            len,
        } => {
            if node.shape[*dim].is_symbolic() {
                return Err(Error::msg(
                    "narrowing the batch dimension cannot be exported",
                ));
            }
            let (s, e, ax) = (
                b.const_i64(&[*start as i64]),
                b.const_i64(&[(*start + *len) as i64]),
                b.const_i64(&[*dim as i64]),
            );
            let ins = [b.name(*arg), s, e, ax];
            b.node_out(id, "Slice", &ins, vec![])
        }
        Op::Copy(a) | Op::ToDevice(a) => {
            let ins = [b.name(*a)];
            b.node_out(id, "Identity", &ins, vec![])
        }
        Op::ToDType(a) => {
            let ins = [b.name(*a)];
            b.node_out(
                id,
                "Cast",
                &ins,
                vec![Builder::int(
                    "to",
                    super::tensor::onnx_type_of(node.dtype) as i64,
                )],
            )
        }
        Op::Cat(ts, d) => {
            let ins: Vec<String> = ts.iter().map(|t| b.name(*t)).collect();
            b.node_out(id, "Concat", &ins, vec![Builder::int("axis", *d as i64)])
        }
        Op::IndexSelect { arg, ids, dim } => {
            let ins = [b.name(*arg), b.name(*ids)];
            b.node_out(id, "Gather", &ins, vec![Builder::int("axis", *dim as i64)])
        }
        Op::Gather { arg, ids, dim } => {
            let ins = [b.name(*arg), b.name(*ids)];
            b.node_out(
                id,
                "GatherElements",
                &ins,
                vec![Builder::int("axis", *dim as i64)],
            )
        }
        Op::FullLike(a, v) => {
            let ins = [b.name(*a)];
            let shape = b.node("Shape", &ins, vec![]);
            let value = Tensor::full(*v, [1usize], node.dtype, &Device::Cpu)?;
            b.node_out(
                id,
                "ConstantOfShape",
                &[shape],
                vec![Builder::tensor_attr("value", &value)?],
            )
        }
        other => Err(Error::msg(format!(
            "op `{}` cannot be exported to ONNX",
            other.name()
        ))),
    }
}

/// ONNX `pads` (`[h_begin, w_begin, h_end, w_end]`) of symmetric padding.
fn pads(p: (usize, usize)) -> [i64; 4] {
    [p.0 as i64, p.1 as i64, p.0 as i64, p.1 as i64]
}

/// One elementwise op of one input.
fn unary(b: &mut Builder, id: ValueId, a: ValueId, u: UnaryOp) -> Result<()> {
    let x = b.name(a);
    let dtype = b.dtype(id);
    let simple = match u {
        UnaryOp::Neg => Some("Neg"),
        UnaryOp::Abs => Some("Abs"),
        UnaryOp::Exp => Some("Exp"),
        UnaryOp::Log => Some("Log"),
        UnaryOp::Sqrt => Some("Sqrt"),
        UnaryOp::Sin => Some("Sin"),
        UnaryOp::Cos => Some("Cos"),
        UnaryOp::Tanh => Some("Tanh"),
        UnaryOp::Sigmoid => Some("Sigmoid"),
        UnaryOp::Erf => Some("Erf"),
        UnaryOp::Relu => Some("Relu"),
        UnaryOp::Sign => Some("Sign"),
        UnaryOp::Recip => Some("Reciprocal"),
        _ => None,
    };
    if let Some(t) = simple {
        return b.node_out(id, t, &[x], vec![]);
    }
    let c = |b: &mut Builder, v: f64| b.const_scalar(v, dtype);
    match u {
        UnaryOp::Rsqrt => {
            let s = b.node("Sqrt", &[x], vec![]);
            b.node_out(id, "Reciprocal", &[s], vec![])
        }
        UnaryOp::Square => b.node_out(id, "Mul", &[x.clone(), x], vec![]),
        UnaryOp::LeakyRelu(s) => b.node_out(
            id,
            "LeakyRelu",
            &[x],
            vec![Builder::float("alpha", s as f32)],
        ),
        UnaryOp::Powf(e) => {
            let e = c(b, e)?;
            b.node_out(id, "Pow", &[x, e], vec![])
        }
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (c(b, lo)?, c(b, hi)?);
            b.node_out(id, "Clip", &[x, lo, hi], vec![])
        }
        UnaryOp::Affine(m, add) => {
            if add == 0.0 {
                let m = c(b, m)?;
                return b.node_out(id, "Mul", &[x, m], vec![]);
            }
            let scaled = if m == 1.0 {
                x
            } else {
                let m = c(b, m)?;
                b.node("Mul", &[x, m], vec![])
            };
            let add = c(b, add)?;
            b.node_out(id, "Add", &[scaled, add], vec![])
        }
        UnaryOp::GeluErf => {
            // x · ½ · (1 + erf(x / √2)), as PyTorch exports GELU before opset 20.
            let r2 = c(b, std::f64::consts::SQRT_2)?;
            let d = b.node("Div", &[x.clone(), r2], vec![]);
            let e = b.node("Erf", &[d], vec![]);
            let one = c(b, 1.0)?;
            let e1 = b.node("Add", &[e, one], vec![]);
            let m = b.node("Mul", &[x, e1], vec![]);
            let half = c(b, 0.5)?;
            b.node_out(id, "Mul", &[m, half], vec![])
        }
        UnaryOp::GeluTanh => {
            // ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
            let three = c(b, 3.0)?;
            let cube = b.node("Pow", &[x.clone(), three], vec![]);
            let k = c(b, 0.044715)?;
            let kc = b.node("Mul", &[cube, k], vec![]);
            let inner = b.node("Add", &[x.clone(), kc], vec![]);
            let s = c(b, (2.0 / std::f64::consts::PI).sqrt())?;
            let scaled = b.node("Mul", &[inner, s], vec![]);
            let t = b.node("Tanh", &[scaled], vec![]);
            let one = c(b, 1.0)?;
            let t1 = b.node("Add", &[t, one], vec![]);
            let m = b.node("Mul", &[x, t1], vec![]);
            let half = c(b, 0.5)?;
            b.node_out(id, "Mul", &[m, half], vec![])
        }
        other => Err(Error::msg(format!(
            "elementwise op {other:?} cannot be exported to ONNX"
        ))),
    }
}
