//! Fused softmax attention (float32 on the CPU) as one differentiable op, in the manner of
//! FlashAttention (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention
//! with IO-Awareness", algorithms 1–2): the `[L, S]` score and weight matrices of each
//! (batch, head) slice live only in a small per-task scratch block; the op keeps the output
//! and one log-sum-exp per query row, and the backward recomputes the weights from them
//! (kernels in [`super::attention_kernel`]).
//!
//! Memory per attention call: the output and `[N, L]` floats, against three to four
//! `[N, L, S]` tensors for the composed ops — for gpt-mini (32 × 4 heads × 128 × 128) 8 MB
//! per tensor and layer. Self-attention can also run on the packed projection `[B, L, 3E]`
//! directly ([`fused_self_attention`]): no per-head copies of q, k, v, the output comes out
//! as `[B, L, E]`, and the gradient as one `[B, L, 3E]` tensor.
//!
//! Edge values follow PyTorch's softmax: a `+inf` or NaN score makes its row NaN; a row that
//! sees no key (empty `S`) gives zeros. Under `create_graph` the backward re-runs the
//! composed ops and differentiates them, so higher-order gradients stay available.

use super::attention_kernel::{Attn, Dims, Geo, Geos};
use super::{f32s, Out};
use mlfw_core::{DType, Device, Error, Result, Tensor};
use std::sync::Mutex;

/// Whether the fused op applies: [`super::usable_noted`] tensors of rank ≥ 2 with equal batch dims.
pub(crate) fn fused_ok(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    let batch = |t: &Tensor| t.dims()[..t.rank() - 2].to_vec();
    let fits =
        [q, k, v].iter().all(|t| t.rank() >= 2) && batch(q) == batch(k) && batch(k) == batch(v);
    super::usable_noted("attention", &[q, k, v], fits)
}

/// `softmax(q·kᵀ·scale [+ causal mask])·v` for `q [.., L, E]`, `k [.., S, E]`,
/// `v [.., S, Ev]` with equal batch dims (see [`fused_ok`]) → `[.., L, Ev]`. `causal` lets
/// query row `i` see keys `0..=i` (PyTorch's `is_causal`, top-left aligned).
pub(crate) fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
    scale: f64,
) -> Result<Tensor> {
    let f = FusedAttention {
        attn: Attn {
            causal,
            scale: scale as f32,
        },
        packed_heads: None,
        lse: Mutex::new(None),
    };
    let inputs = [q.contiguous()?, k.contiguous()?, v.contiguous()?];
    mlfw_autograd::apply(f, &inputs)
}

/// Self-attention of `heads` heads on the packed projection `qkv [B, L, 3E]` (q, k, v
/// side by side, PyTorch's `in_proj` layout) → `[B, L, E]` (heads side by side, ready for
/// the output projection). Errors when `qkv` is not float32 on the CPU, not 3-D, or `3E`
/// is not divisible by `3·heads`.
pub(crate) fn fused_self_attention(
    qkv: &Tensor,
    heads: usize,
    causal: bool,
    scale: Option<f64>,
) -> Result<Tensor> {
    let [_, _, e3] = *qkv.dims() else {
        return Err(Error::msg(format!(
            "fused self-attention: expected qkv [B, L, 3E], got {}",
            qkv.shape()
        )));
    };
    if heads == 0 || e3 % (3 * heads) != 0 || !super::usable(&[qkv]) {
        return Err(Error::msg(format!(
            "fused self-attention: qkv {} of {} on {} does not split into 3 x {heads} float32 CPU heads",
            qkv.shape(),
            qkv.dtype(),
            qkv.device()
        )));
    }
    let hd = e3 / 3 / heads;
    let f = FusedAttention {
        attn: Attn {
            causal,
            scale: scale.unwrap_or(1.0 / (hd as f64).sqrt()) as f32,
        },
        packed_heads: Some(heads),
        lse: Mutex::new(None),
    };
    mlfw_autograd::apply(f, &[qkv.contiguous()?])
}

struct FusedAttention {
    attn: Attn,
    /// `Some(heads)`: one packed input `[B, L, 3E]`; `None`: q, k, v `[.., L, E]` apart.
    packed_heads: Option<usize>,
    /// `[N, L]` log-sum-exp of each query row's scores, for the backward.
    lse: Mutex<Option<Vec<f32>>>,
}

impl FusedAttention {
    /// Sizes and geometries for `inputs`, and the output's shape.
    fn layout(&self, inputs: &[Tensor]) -> Result<(Dims, Geos, Vec<usize>)> {
        if let Some(h) = self.packed_heads {
            let [b, l, e3] = *inputs[0].dims() else {
                return Err(Error::msg("fused self-attention: expected qkv [B, L, 3E]"));
            };
            let (e, hd) = (e3 / 3, e3 / 3 / h);
            let g = |part: usize, rs: usize| Geo {
                heads: h,
                batch: l * rs,
                head: hd,
                part,
                rs,
            };
            let geos = Geos {
                q: g(0, e3),
                k: g(e, e3),
                v: g(2 * e, e3),
                o: g(0, e),
            };
            let d = Dims {
                n: b * h,
                l,
                s: l,
                e: hd,
                ev: hd,
            };
            return Ok((d, geos, vec![b, l, e]));
        }
        let (q, k, v) = (&inputs[0], &inputs[1], &inputs[2]);
        let r = q.rank();
        let (l, e) = (q.dims()[r - 2], q.dims()[r - 1]);
        let (s, ek) = (k.dims()[r - 2], k.dims()[r - 1]);
        let (sv, ev) = (v.dims()[r - 2], v.dims()[r - 1]);
        if ek != e || sv != s {
            return Err(Error::msg(format!(
                "attention: query {} and key {} must share the last dim, key {} and value {} the sequence dim",
                q.shape(),
                k.shape(),
                k.shape(),
                v.shape()
            )));
        }
        let n = q.dims()[..r - 2].iter().product();
        let geos = Geos {
            q: Geo::dense(l, e),
            k: Geo::dense(s, e),
            v: Geo::dense(s, ev),
            o: Geo::dense(l, ev),
        };
        let mut shape = q.dims().to_vec();
        shape[r - 1] = ev;
        Ok((Dims { n, l, s, e, ev }, geos, shape))
    }
}

impl mlfw_autograd::Function for FusedAttention {
    fn name(&self) -> &str {
        "fused_attention"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let (d, g, shape) = self.layout(inputs)?;
        let mut out = vec![0f32; d.n * d.l * d.ev];
        let lse = if self.packed_heads.is_some() {
            let qkv = f32s(&inputs[0])?;
            self.attn.forward(d, g, (&qkv, &qkv, &qkv), &mut out)
        } else {
            let (q, k, v) = (f32s(&inputs[0])?, f32s(&inputs[1])?, f32s(&inputs[2])?);
            self.attn.forward(d, g, (&q, &k, &v), &mut out)
        };
        *self.lse.lock().unwrap_or_else(|e| e.into_inner()) = Some(lse);
        Tensor::from_vec(out, shape, &Device::Cpu)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            return self.composed_backward(inputs, grad);
        }
        let guard = self.lse.lock().unwrap_or_else(|e| e.into_inner());
        let lse = guard
            .as_ref()
            .ok_or_else(|| Error::msg("fused_attention: backward without a forward"))?;
        let (d, g, _) = self.layout(inputs)?;
        let (o, go) = (f32s(output)?, f32s(&grad.contiguous()?)?);
        let dev = Device::Cpu;
        if self.packed_heads.is_some() {
            let qkv = f32s(&inputs[0])?;
            let mut dqkv = vec![0f32; qkv.len()];
            let p = Out::new(&mut dqkv);
            let m = (&qkv[..], &qkv[..], &qkv[..]);
            self.attn.backward(d, g, m, (&o, &go), lse, (p, p, p));
            return Ok(vec![Some(Tensor::from_vec(dqkv, inputs[0].dims(), &dev)?)]);
        }
        let (q, k, v) = (f32s(&inputs[0])?, f32s(&inputs[1])?, f32s(&inputs[2])?);
        let mut dq = vec![0f32; q.len()];
        let mut dk = vec![0f32; k.len()];
        let mut dv = vec![0f32; v.len()];
        let outs = (Out::new(&mut dq), Out::new(&mut dk), Out::new(&mut dv));
        self.attn.backward(d, g, (&q, &k, &v), (&o, &go), lse, outs);
        Ok(vec![
            Some(Tensor::from_vec(dq, inputs[0].dims(), &dev)?),
            Some(Tensor::from_vec(dk, inputs[1].dims(), &dev)?),
            Some(Tensor::from_vec(dv, inputs[2].dims(), &dev)?),
        ])
    }
}

impl FusedAttention {
    /// The backward under `create_graph`: the composed attention re-run on the inputs and
    /// differentiated with a recorded graph.
    fn composed_backward(&self, inputs: &[Tensor], grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let out = match self.packed_heads {
            Some(h) => {
                let qkv = &inputs[0];
                let [b, l, e3] = *qkv.dims() else {
                    return Err(Error::msg("fused self-attention: expected qkv [B, L, 3E]"));
                };
                let e = e3 / 3;
                let head = |i: usize| -> Result<Tensor> {
                    qkv.narrow(2, i * e, e)?
                        .reshape([b, l, h, e / h])?
                        .permute(&[0, 2, 1, 3])
                };
                let o = self.composed(&head(0)?, &head(1)?, &head(2)?)?;
                o.permute(&[0, 2, 1, 3])?.reshape([b, l, e])?
            }
            None => self.composed(&inputs[0], &inputs[1], &inputs[2])?,
        };
        mlfw_autograd::grad_with(&out, inputs, Some(grad), true)
    }

    fn composed(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (l, s) = (q.dims()[q.rank() - 2], k.dims()[k.rank() - 2]);
        let bias = if self.attn.causal {
            Some(crate::composed::causal_bias(
                l,
                s,
                DType::F32,
                &Device::Cpu,
            )?)
        } else {
            None
        };
        let scale = Some(self.attn.scale as f64);
        crate::composed::attention_weights(q, k, v, bias.as_ref(), scale)?.matmul(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::{attention, Mask};
    use crate::fused::test_util::{max_diff, rand};

    /// The fused op against the composed ops: output and the three gradients, with and
    /// without the causal mask, `L ≠ S`, several row blocks, batch dims of rank 2.
    #[test]
    fn fused_matches_composed() {
        for (l, s, causal) in [
            (5, 7, false),
            (5, 7, true),
            (70, 70, true),
            (33, 9, false),
            (40, 3, true),
        ] {
            let q = rand(&[2, 3, l, 4], 1, 0.0);
            let k = rand(&[2, 3, s, 4], 2, 0.0);
            let v = rand(&[2, 3, s, 6], 3, 0.0);
            let g = rand(&[2, 3, l, 6], 4, 0.0).detach();
            let mask = if causal { Mask::Causal } else { Mask::None };
            let fused = attention(&q, &k, &v, mask, 0.0, false, None, false)
                .unwrap()
                .0;
            let bias = crate::attention::causal_bias(l, s, DType::F32, &Device::Cpu).unwrap();
            let b = if causal { Some(&bias) } else { None };
            let plain = crate::attention::composed(&q, &k, &v, b, 0.0, false, None)
                .unwrap()
                .0;
            assert!(
                max_diff(&fused, &plain) < 2e-6,
                "output l={l} s={s} causal={causal}"
            );
            let inputs = [q.clone(), k.clone(), v.clone()];
            let gf = mlfw_autograd::grad(&fused, &inputs, Some(&g)).unwrap();
            let gp = mlfw_autograd::grad(&plain, &inputs, Some(&g)).unwrap();
            for (i, (a, b)) in gf.iter().zip(&gp).enumerate() {
                let d = max_diff(a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!(d < 1e-5, "grad {i} l={l} s={s} causal={causal}: {d}");
            }
            // Second order (create_graph) goes through the composed ops.
            let g2 = mlfw_autograd::grad_with(&fused, &inputs, Some(&g), true).unwrap();
            let h = g2[0].as_ref().unwrap().square().unwrap().sum_all().unwrap();
            let hk = mlfw_autograd::grad(&h, std::slice::from_ref(&k), None).unwrap();
            assert!(hk[0].is_some());
        }
    }

    /// PyTorch's softmax at the edges: a `+inf` or NaN score makes its row NaN, the others
    /// stay finite.
    #[test]
    fn fused_edges_follow_softmax() {
        let dev = Device::Cpu;
        let q = Tensor::from_vec(
            vec![1f32, 0.0, f32::INFINITY, 0.0, f32::NAN, 0.0],
            [3, 2],
            &dev,
        )
        .unwrap();
        let k = Tensor::from_vec(vec![1f32, 0.0, 0.0, 1.0], [2, 2], &dev).unwrap();
        let o = attention(&q, &k, &k, Mask::None, 0.0, false, None, false)
            .unwrap()
            .0;
        let o = o.to_vec::<f32>().unwrap();
        assert!(o[0].is_finite() && o[1].is_finite());
        assert!(o[2..].iter().all(|x| x.is_nan()), "{o:?}");
    }

    /// The packed self-attention against the composed ops on the same projection: output
    /// and the gradient of `qkv`, with and without the causal mask, several row blocks.
    #[test]
    fn packed_matches_composed() {
        for (b, l, h, hd, causal) in [(2, 5, 2, 4, true), (1, 70, 3, 8, true), (2, 9, 1, 6, false)]
        {
            let e = h * hd;
            let qkv = rand(&[b, l, 3 * e], 7, 0.0);
            let g = rand(&[b, l, e], 8, 0.0).detach();
            let fused = fused_self_attention(&qkv, h, causal, None).unwrap();
            let head = |i: usize| {
                qkv.narrow(2, i * e, e)
                    .unwrap()
                    .reshape([b, l, h, hd])
                    .unwrap()
                    .permute(&[0, 2, 1, 3])
                    .unwrap()
            };
            let bias = crate::attention::causal_bias(l, l, DType::F32, &Device::Cpu).unwrap();
            let bias = causal.then_some(&bias);
            let plain =
                crate::attention::composed(&head(0), &head(1), &head(2), bias, 0.0, false, None)
                    .unwrap()
                    .0
                    .permute(&[0, 2, 1, 3])
                    .unwrap()
                    .reshape([b, l, e])
                    .unwrap();
            assert!(max_diff(&fused, &plain) < 2e-6, "output b={b} l={l} h={h}");
            let gf = mlfw_autograd::grad(&fused, std::slice::from_ref(&qkv), Some(&g)).unwrap();
            let gp = mlfw_autograd::grad(&plain, std::slice::from_ref(&qkv), Some(&g)).unwrap();
            let d = max_diff(gf[0].as_ref().unwrap(), gp[0].as_ref().unwrap());
            assert!(d < 1e-5, "grad b={b} l={l} h={h}: {d}");
            let g2 = mlfw_autograd::grad_with(&fused, std::slice::from_ref(&qkv), Some(&g), true)
                .unwrap();
            assert_eq!(g2[0].as_ref().unwrap().dims(), qkv.dims());
        }
        assert!(fused_self_attention(&rand(&[2, 3, 10], 1, 0.0), 2, false, None).is_err());
    }
}
