//! Second-order gradient checking: [`gradcheck`] applied to the first-order gradient
//! computed with `create_graph` (PyTorch's `torch.autograd.gradgradcheck`).

use crate::engine::grad_with;
use crate::gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
use mlfw_core::{DType, Error, Generator, Result, Tensor};

/// Checks the second derivatives of `f` in f64 with the five-point difference: the function
/// checked is `x ↦ ∂⟨f(x), v⟩/∂x` (all inputs that require grad, flattened and concatenated)
/// for a fixed random `v`, its analytic gradient coming from a second backward pass through
/// the recorded first one.
///
/// Errors: no input requires grad; `f` failing; a derivative rule that is not
/// differentiable (its error names the op).
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor], opts: GradcheckOptions) -> Result<GradcheckReport>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let checked: Vec<bool> = inputs.iter().map(|t| t.requires_grad()).collect();
    if !checked.iter().any(|&c| c) {
        return Err(Error::msg("gradgradcheck: no input requires grad"));
    }
    let probe: Vec<Tensor> = inputs
        .iter()
        .map(|t| match t.dtype().is_float() {
            true => t.detach().to_dtype(DType::F64),
            false => Ok(t.clone()),
        })
        .collect::<Result<_>>()?;
    let shape = {
        let _ng = crate::no_grad();
        f(&probe)?.shape().clone()
    };
    let mut gen = Generator::new(opts.seed.wrapping_add(1));
    let v = Tensor::rand_with(0.5, 1.5, shape, DType::F64, &inputs[0].device(), &mut gen)?;
    let first_order = |args: &[Tensor]| -> Result<Tensor> {
        let _g = crate::enable_grad();
        let xs: Vec<Tensor> = args
            .iter()
            .zip(&checked)
            .map(|(a, &c)| match c && !a.requires_grad() {
                true => a.detach().requires_grad_(true),
                false => Ok(a.clone()),
            })
            .collect::<Result<_>>()?;
        let out = f(&xs)?;
        let wanted: Vec<Tensor> = xs
            .iter()
            .zip(&checked)
            .filter(|(_, &c)| c)
            .map(|(x, _)| x.clone())
            .collect();
        let gs = grad_with(&out, &wanted, Some(&v.to_dtype(out.dtype())?), true)?;
        let flat = gs
            .into_iter()
            .zip(&wanted)
            .map(|(g, x)| {
                let g = match g {
                    Some(g) => g,
                    None => x.zeros_like()?,
                };
                g.reshape([x.elem_count()])
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&flat, 0)
    };
    gradcheck(first_order, inputs, opts)
}
