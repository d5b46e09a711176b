//! Helpers shared by the ONNX tests.
#![allow(dead_code)]

use mlfw_core::Tensor;

/// Largest `|got − want|` over the largest `|want|` (shapes must agree).
pub fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    let scale = w.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    g.iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// The ONNX checker's graph rules, for files mlfw writes: an opset import, every node's
/// inputs defined before it (graph input, initializer or an earlier node's output), every
/// value defined once, unique node names, and inputs and outputs typed with a shape.
pub fn check_onnx_rules(m: &mlfw_hub::onnx::proto::ModelProto) -> Result<(), String> {
    use std::collections::HashSet;
    if m.ir_version < 3 || m.opset_import.is_empty() {
        return Err("no IR version or opset import".into());
    }
    let g = m.graph.as_ref().ok_or("no graph")?;
    for v in g.input.iter().chain(&g.output) {
        let t = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        if !t.is_some_and(|t| t.elem_type != 0 && t.shape.is_some()) {
            return Err(format!("`{}` has no element type or shape", v.name));
        }
    }
    let (inputs, inits) = (
        g.input.iter().map(|v| v.name.clone()),
        g.initializer.iter().map(|t| t.name.clone()),
    );
    let pre: Vec<String> = inputs.chain(inits).collect();
    let mut seen = HashSet::new();
    if let Some(n) = pre.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(format!("input/initializer `{n}` is defined twice"));
    }
    let mut names = HashSet::new();
    let mut produced: Vec<String> = Vec::new();
    for node in &g.node {
        if !node.name.is_empty() && !names.insert(node.name.clone()) {
            return Err(format!("node name `{}` is used twice", node.name));
        }
        for i in node.input.iter().filter(|i| !i.is_empty()) {
            if !pre.contains(i) && !produced.contains(i) {
                return Err(format!(
                    "node `{}` reads `{i}` before it is defined (not topologically sorted)",
                    node.name
                ));
            }
        }
        for o in &node.output {
            if pre.contains(o) || produced.contains(o) {
                return Err(format!("value `{o}` is defined twice"));
            }
            produced.push(o.clone());
        }
    }
    for o in &g.output {
        if !produced.contains(&o.name) && !pre.contains(&o.name) {
            return Err(format!("output `{}` is never produced", o.name));
        }
    }
    Ok(())
}
