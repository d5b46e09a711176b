//! The backward engine: topological order over recorded ops, gradient accumulation,
//! and release of saved tensors as soon as backward is done with them.

use crate::rules::op_backward;
use mlfw_core::{Error, OpState, Result, Tensor, TensorId};
use std::collections::{HashMap, HashSet};

/// Nodes reachable from `root` through tensors that require grad, inputs before users.
fn topo_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen: HashSet<TensorId> = HashSet::new();
    // Iterative post-order DFS: (tensor, children pushed?).
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        let op = t.op();
        stack.push((t, true));
        if let Some(op) = op {
            for i in op.inputs() {
                if i.requires_grad() && !seen.contains(&i.id()) {
                    stack.push((i.clone(), false));
                }
            }
        }
    }
    order
}

fn accumulate(map: &mut HashMap<TensorId, Tensor>, id: TensorId, g: Tensor) -> Result<()> {
    let new = match map.remove(&id) {
        Some(prev) => prev.add(&g)?,
        None => g,
    };
    map.insert(id, new);
    Ok(())
}

/// Runs backward from `root` with upstream gradient `grad` (None: `root` must have one
/// element, and gets 1). With `capture`, returns the gradients of those tensors instead of
/// accumulating into leaves' `.grad`. With `create_graph`, the rules' ops are recorded, so
/// the gradients can be differentiated again (the graph is then always retained).
fn run(
    root: &Tensor,
    grad: Option<&Tensor>,
    retain_graph: bool,
    capture: Option<&[Tensor]>,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    let retain_graph = retain_graph || create_graph;
    if !root.requires_grad() {
        return Err(Error::msg(
            "backward: tensor does not require grad and has no recorded op (did you forget requires_grad_ or run under no_grad?)",
        ));
    }
    let seed = match grad {
        None => {
            if root.elem_count() != 1 {
                return Err(Error::msg(format!(
                    "backward: grad can be implicitly created only for scalar outputs, got shape {}; pass an explicit gradient",
                    root.shape()
                )));
            }
            root.ones_like()?
        }
        Some(g) => {
            if g.shape() != root.shape() {
                return Err(Error::ShapeMismatch {
                    op: "backward (supplied gradient)",
                    lhs: root.shape().clone(),
                    rhs: g.shape().clone(),
                });
            }
            if g.dtype() != root.dtype() || g.device() != root.device() {
                return Err(Error::msg(format!(
                    "backward: gradient is {} on {}, expected {} on {}",
                    g.dtype(),
                    g.device(),
                    root.dtype(),
                    root.device()
                )));
            }
            if create_graph {
                g.clone()
            } else {
                g.detach()
            }
        }
    };
    let _guard = if create_graph {
        crate::enable_grad()
    } else {
        crate::no_grad()
    };
    let mut order: Vec<Option<Tensor>> = topo_order(root).into_iter().map(Some).collect();
    let wanted: HashSet<TensorId> = capture
        .map(|c| c.iter().map(|t| t.id()).collect())
        .unwrap_or_default();
    let mut captured: HashMap<TensorId, Tensor> = HashMap::new();
    let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
    grads.insert(root.id(), seed);
    for slot in order.iter_mut().rev() {
        let node = slot.take().expect("each node visited once");
        let Some(g) = grads.remove(&node.id()) else {
            continue;
        };
        if wanted.contains(&node.id()) {
            captured.insert(node.id(), g.clone());
        }
        match node.op_state() {
            OpState::None => {
                if capture.is_none() {
                    let total = match node.grad() {
                        Some(prev) => prev.add(&g)?,
                        None => g,
                    };
                    node.set_grad(Some(total));
                    crate::hooks::run(&node);
                }
            }
            OpState::Freed(name) => {
                return Err(Error::msg(format!(
                    "backward: trying to backward through the graph a second time (the saved tensors of `{name}` were freed); use retain_graph=true on the first backward"
                )))
            }
            OpState::Recorded(op) => {
                let inputs = op.inputs();
                let gs = op_backward(&op, &node, &g).map_err(|e| e.context(format!("backward of {}", op.name())))?;
                for (inp, gi) in inputs.into_iter().zip(gs) {
                    if let Some(gi) = gi {
                        if inp.requires_grad() {
                            let gi = if gi.dtype() != inp.dtype() { gi.to_dtype(inp.dtype())? } else { gi };
                            accumulate(&mut grads, inp.id(), gi)?;
                        }
                    }
                }
                if !retain_graph {
                    node.free_op();
                }
            }
        }
    }
    Ok(capture
        .map(|c| c.iter().map(|t| captured.remove(&t.id())).collect())
        .unwrap_or_default())
}

/// Backpropagates from `root`, accumulating into the `.grad` of every leaf that requires
/// grad. `grad` is the upstream gradient (required unless `root` has one element).
/// Without `retain_graph` the graph's saved tensors are freed, and a second backward
/// through it is an error.
///
/// # Errors
/// `root` does not require grad; no `grad` for a non-scalar root, or one of the wrong
/// shape, dtype or device; a second backward through a freed graph; a rule failing.
pub fn backward(root: &Tensor, grad: Option<&Tensor>, retain_graph: bool) -> Result<()> {
    run(root, grad, retain_graph, None, false).map(|_| ())
}

/// [`backward`] with `create_graph = true`: the gradients accumulated into `.grad` are
/// themselves recorded (PyTorch's `loss.backward(create_graph=True)`); the graph is kept.
///
/// # Errors
/// As [`backward`].
pub fn backward_create_graph(root: &Tensor, grad: Option<&Tensor>) -> Result<()> {
    run(root, grad, true, None, true).map(|_| ())
}

/// Gradients of `output` w.r.t. `inputs` (torch.autograd.grad), without touching `.grad`.
/// `None` for an input that `output` does not depend on. The graph is retained.
///
/// # Errors
/// `output` does not require grad; a `grad_output` of the wrong shape, dtype or
/// device (or none for a non-scalar output); a rule failing.
pub fn grad(
    output: &Tensor,
    inputs: &[Tensor],
    grad_output: Option<&Tensor>,
) -> Result<Vec<Option<Tensor>>> {
    run(output, grad_output, true, Some(inputs), false)
}

/// [`grad`] with a choice of `create_graph` (torch.autograd.grad's flag): when true, the
/// returned gradients are recorded tensors that can be differentiated again (Hessian-vector
/// products, gradient penalties).
///
/// ```
/// use mlfw_core::{Device, Tensor};
/// let x = Tensor::from_vec(vec![4f64], [1], &Device::Cpu)?.requires_grad_(true)?;
/// let y = x.square()?.sum_all()?;
/// let dy = mlfw_autograd::grad_with(&y, &[x.clone()], None, true)?[0].clone().unwrap();
/// assert_eq!(dy.to_vec::<f64>()?, vec![8.0]);
/// let d2y = mlfw_autograd::grad(&dy.sum_all()?, &[x], None)?[0].clone().unwrap();
/// assert_eq!(d2y.to_vec::<f64>()?, vec![2.0]);
/// # Ok::<(), mlfw_core::Error>(())
/// ```
///
/// # Errors
/// As [`grad`]: `output` does not require grad; a `grad_output` whose shape, dtype or device
/// differs from `output`'s; a backward rule failing.
pub fn grad_with(
    output: &Tensor,
    inputs: &[Tensor],
    grad_output: Option<&Tensor>,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    run(output, grad_output, true, Some(inputs), create_graph)
}

/// `tensor.backward()` as a method.
pub trait Backward {
    /// Backward from a one-element tensor, freeing the graph.
    fn backward(&self) -> Result<()>;
    /// Backward with an explicit upstream gradient.
    fn backward_with(&self, grad: &Tensor, retain_graph: bool) -> Result<()>;
    /// Backward from a one-element tensor, keeping the graph for another pass.
    fn backward_retain(&self) -> Result<()>;
}

impl Backward for Tensor {
    fn backward(&self) -> Result<()> {
        backward(self, None, false)
    }
    fn backward_with(&self, grad: &Tensor, retain_graph: bool) -> Result<()> {
        backward(self, Some(grad), retain_graph)
    }
    fn backward_retain(&self) -> Result<()> {
        backward(self, None, true)
    }
}
