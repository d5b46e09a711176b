//! User-defined differentiable ops, like `torch.autograd.Function`: a forward and a
//! backward, recorded in the graph as an [`mlfw_core::Op::Custom`] node.

use mlfw_core::{CustomOp, Op, Result, Tensor};
use std::any::Any;
use std::sync::Arc;

/// A differentiable op defined by the user.
///
/// `forward` runs with recording off; `backward` receives the op's inputs, its output and
/// the output's gradient, and returns one gradient (or `None`) per input.
pub trait Function: Send + Sync + 'static {
    /// Name for messages.
    fn name(&self) -> &str;
    /// Computes the output from the inputs.
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor>;
    /// Gradients of the inputs given the output gradient `grad`.
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>>;
}

/// The graph node that holds a [`Function`].
pub(crate) struct FunctionNode {
    f: Arc<dyn Function>,
}

impl FunctionNode {
    pub(crate) fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let gs = self.f.backward(inputs, output, grad)?;
        if gs.len() != inputs.len() {
            return Err(mlfw_core::Error::msg(format!(
                "custom op `{}`: backward returned {} gradients for {} inputs",
                self.f.name(),
                gs.len(),
                inputs.len()
            )));
        }
        for (g, x) in gs.iter().zip(inputs) {
            if let Some(g) = g {
                if g.shape() != x.shape() {
                    return Err(mlfw_core::Error::ShapeMismatch {
                        op: "custom op backward",
                        lhs: x.shape().clone(),
                        rhs: g.shape().clone(),
                    });
                }
            }
        }
        Ok(gs)
    }
}

impl CustomOp for FunctionNode {
    fn name(&self) -> &str {
        self.f.name()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Runs `f` on `inputs`, recording it for backward when an input requires grad.
///
/// # Errors
/// Whatever `f.forward` returns. (Backward checks `f.backward`'s count and shapes.)
pub fn apply(f: impl Function, inputs: &[Tensor]) -> Result<Tensor> {
    let out = {
        let _g = crate::no_grad();
        f.forward(inputs)?
    };
    let track = mlfw_core::is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
    if !track {
        return Ok(out);
    }
    let node = FunctionNode { f: Arc::new(f) };
    Ok(Tensor::with_op(
        &out,
        Op::Custom(Arc::new(node), inputs.to_vec()),
    ))
}

type ForwardFn = dyn Fn(&[Tensor]) -> Result<Tensor> + Send + Sync;
type BackwardFn = dyn Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync;

struct ClosureFunction {
    name: String,
    fwd: Box<ForwardFn>,
    bwd: Box<BackwardFn>,
}

impl Function for ClosureFunction {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        (self.fwd)(inputs)
    }
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        (self.bwd)(inputs, output, grad)
    }
}

/// A custom op from two closures: `forward(inputs)` and `backward(inputs, output, grad)`.
///
/// ```
/// use mlfw_autograd::{custom_op, Backward};
/// use mlfw_core::{Device, Tensor};
/// // y = x³ with a hand-written derivative 3x².
/// let x = Tensor::from_vec(vec![2f64], [1], &Device::Cpu)?.requires_grad_(true)?;
/// let y = custom_op(
///     "cube",
///     |xs| xs[0].powf(3.0),
///     |xs, _y, g| Ok(vec![Some(g.mul(&xs[0].square()?.mul_scalar(3.0)?)?)]),
///     &[x.clone()],
/// )?;
/// y.sum_all()?.backward()?;
/// assert_eq!(x.grad().unwrap().to_vec::<f64>()?, vec![12.0]);
/// # Ok::<(), mlfw_core::Error>(())
/// ```
///
/// # Errors
/// As [`apply`]; the `forward` or `backward` closure's own errors.
pub fn custom_op<F, B>(name: &str, forward: F, backward: B, inputs: &[Tensor]) -> Result<Tensor>
where
    F: Fn(&[Tensor]) -> Result<Tensor> + Send + Sync + 'static,
    B: Fn(&[Tensor], &Tensor, &Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
{
    apply(
        ClosureFunction {
            name: name.to_string(),
            fwd: Box::new(forward),
            bwd: Box::new(backward),
        },
        inputs,
    )
}
