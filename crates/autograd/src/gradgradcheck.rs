//! Second-order gradient checking: [`gradcheck`] applied to the first-order gradient
//! computed with `create_graph` (PyTorch's `torch.autograd.gradgradcheck`).

use crate::engine::grad_with;
use crate::gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
use mlfw_core::{DType, Error, Generator, Result, Tensor};

/// Checks the second derivatives of `f` in f64 with the five-point difference: the function
/// checked is `(x, v) ↦ ∂⟨f(x), v⟩/∂x` (all inputs that require grad, flattened and
/// concatenated) for a random upstream gradient `v`, its analytic gradient coming from a
/// second backward pass through the recorded first one. The report has one entry per
/// checked input and a last one for `v`.
///
/// # Errors
/// No input requires grad; `f` failing; a derivative rule that is not
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
    // The upstream gradient `v` is checked too (as PyTorch's gradgradcheck does): the
    // first-order gradient of a linear op does not depend on x, but always on v.
    let v = Tensor::rand_with(0.5, 1.5, shape, DType::F64, &inputs[0].device(), &mut gen)?
        .requires_grad_(true)?;
    let k = inputs.len();
    let first_order = |args: &[Tensor]| -> Result<Tensor> {
        let _g = crate::enable_grad();
        let xs: Vec<Tensor> = args[..k]
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
        let v = args[k].to_dtype(out.dtype())?;
        let gs = grad_with(&out, &wanted, Some(&v), true)?;
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
    let mut all = inputs.to_vec();
    all.push(v);
    gradcheck(first_order, &all, opts)
}
