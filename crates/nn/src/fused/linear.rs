//! `x·wᵀ + b` (float32 on the CPU) as one op: the bias is added in place into the product's
//! fresh buffer, so a linear layer makes one output tensor instead of two (product, sum) and
//! the graph keeps one. The backward is PyTorch's `linear` backward: `dx = g·w`,
//! `dw = gᵀ·x` and `db = Σ_rows g`, with the leading dims of `x` flattened into rows (one
//! matmul for `dw` where the broadcast matmul makes one per batch entry and sums them).

use mlfw_core::{CpuStorage, Error, Result, Tensor};

/// Whether the fused op applies: a bias, [`super::usable`] tensors, no autocast.
pub(crate) fn fused_ok(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> bool {
    match b {
        Some(b) => super::usable(&[x, w, b]) && mlfw_core::autocast::autocast_dtype().is_none(),
        None => false,
    }
}

/// `x [.., in] · w [out, in]ᵀ + b [out]` → `[.., out]` (shapes checked by the caller,
/// [`crate::functional::linear`]).
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    mlfw_autograd::apply(Linear, &[x.clone(), w.clone(), b.clone()])
}

struct Linear;

impl mlfw_autograd::Function for Linear {
    fn name(&self) -> &str {
        "linear"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let y = inputs[0].matmul(&inputs[1].t()?)?.contiguous()?;
        let b = super::f32s(&inputs[2])?;
        {
            let mut st = y.storage_mut();
            let o = y.layout().offset();
            let n = y.elem_count();
            match st.as_any_mut().downcast_mut::<CpuStorage>() {
                Some(CpuStorage::F32(v)) if !b.is_empty() => {
                    for row in v[o..o + n].chunks_exact_mut(b.len()) {
                        for (a, &c) in row.iter_mut().zip(&b) {
                            *a += c;
                        }
                    }
                }
                _ => return Err(Error::msg("linear: expected a float32 CPU product")),
            }
        }
        Ok(y)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, w, b) = (&inputs[0], &inputs[1], &inputs[2]);
        if mlfw_core::is_grad_enabled() {
            let y = x.matmul(&w.t()?)?.add(b)?;
            return mlfw_autograd::grad_with(&y, inputs, Some(grad), true);
        }
        let (out_f, in_f) = (w.dims()[0], w.dims()[1]);
        let rows = x.elem_count() / in_f.max(1);
        let g2 = grad.reshape([rows, out_f])?;
        let x2 = x.reshape([rows, in_f])?;
        let dx = if x.requires_grad() {
            Some(grad.matmul(w)?)
        } else {
            None
        };
        let dw = if w.requires_grad() {
            // gᵀ·x straight into [out, in] (no transposed copy of a weight-sized result).
            Some(g2.t()?.matmul(&x2)?)
        } else {
            None
        };
        let db = if b.requires_grad() {
            Some(g2.sum(&[0], false)?)
        } else {
            None
        };
        Ok(vec![dx, dw, db])
    }
}

#[cfg(test)]
mod tests {
    use crate::fused::test_util::rand;

    /// The fused op against matmul + add: output bit-identical, gradients within rounding,
    /// for 2-D and 3-D inputs and a frozen weight.
    #[test]
    fn fused_matches_composed() {
        for (xs, frozen) in [
            (vec![5, 7], false),
            (vec![3, 4, 7], false),
            (vec![6, 7], true),
        ] {
            let x = rand(&xs, 1, 0.0);
            let w = rand(&[9, 7], 2, 0.0).requires_grad_(!frozen).unwrap();
            let b = rand(&[9], 3, 0.0);
            let mut gs = xs.clone();
            *gs.last_mut().unwrap() = 9;
            let g = rand(&gs, 4, 0.0).detach();
            let fused = super::linear(&x, &w, &b).unwrap();
            let plain = x.matmul(&w.t().unwrap()).unwrap().add(&b).unwrap();
            assert_eq!(
                fused.to_vec::<f32>().unwrap(),
                plain.to_vec::<f32>().unwrap()
            );
            let inputs = [x.clone(), w.clone(), b.clone()];
            let gf = mlfw_autograd::grad(&fused, &inputs, Some(&g)).unwrap();
            let gp = mlfw_autograd::grad(&plain, &inputs, Some(&g)).unwrap();
            assert_eq!(gf[1].is_none(), frozen);
            for (a, b) in gf.iter().zip(&gp) {
                if let (Some(a), Some(b)) = (a, b) {
                    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
                    let d = a
                        .iter()
                        .zip(&b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0.0, f32::max);
                    assert!(d < 1e-5, "{xs:?}: {d}");
                }
            }
        }
    }
}
