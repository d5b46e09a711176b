//! Fused softmax attention (float32 on the CPU) as one differentiable op, in the manner of
//! FlashAttention (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention
//! with IO-Awareness", algorithm 1–2): the `[L, S]` score and weight matrices of each
//! (batch, head) slice live only in a small per-task scratch block; the op keeps the output
//! and one log-sum-exp per query row, and the backward recomputes the weights from them.
//!
//! Per slice `n` and block of `RB` query rows (causal: only the key columns a row may see):
//! forward `S = q·kᵀ·scale`, `P = softmax(S)`, `O = P·v`, `lse = max + ln Σ exp`;
//! backward `P = exp(S − lse)`, `dV += Pᵀ·dO`, `dP = dO·vᵀ`, `dS = P∘(dP − rowsum(dO∘O))`,
//! `dQ = dS·k·scale`, `dK += dSᵀ·q·scale`. Memory per attention call: the output and
//! `[N, L]` floats, against three to four `[N, L, S]` tensors for the composed ops — for
//! gpt-mini (32 × 4 heads × 128 × 128) 8 MB saved per tensor and layer.
//!
//! Edge values follow PyTorch's softmax: a `+inf` or NaN score makes its row NaN; a row that
//! sees no key (empty `S`) gives zeros. Under `create_graph` the backward re-runs the
//! composed ops and differentiates them, so higher-order gradients stay available.

use super::{f32s, Out};
use mlfw_core::parallel;
use mlfw_core::{DType, Device, Error, Result, Tensor};
use std::sync::Mutex;

/// Query rows per block: the block's scores (`RB × S` floats) stay in L1/L2.
const RB: usize = 32;

/// Whether the fused op applies: [`super::usable`] tensors of rank ≥ 2 with equal batch dims.
pub(crate) fn fused_ok(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    let batch = |t: &Tensor| t.dims()[..t.rank() - 2].to_vec();
    super::usable(&[q, k, v])
        && [q, k, v].iter().all(|t| t.rank() >= 2)
        && batch(q) == batch(k)
        && batch(k) == batch(v)
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
        causal,
        scale: scale as f32,
        lse: Mutex::new(None),
    };
    let inputs = [q.contiguous()?, k.contiguous()?, v.contiguous()?];
    mlfw_autograd::apply(f, &inputs)
}

struct FusedAttention {
    causal: bool,
    scale: f32,
    /// `[N, L]` log-sum-exp of each query row's scores, for the backward.
    lse: Mutex<Option<Vec<f32>>>,
}

/// Sizes of one call: slices `n`, query rows `l`, keys `s`, widths `e` (q, k) and `ev` (v).
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    l: usize,
    s: usize,
    e: usize,
    ev: usize,
}

fn dims(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Dims> {
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
    Ok(Dims { n, l, s, e, ev })
}

/// `dst[m×n] (row stride dst_rs) = [dst +] alpha·A·B` with `A[i,p] = a[i·a_rs + p·a_cs]`
/// and `B[p,j] = b[p·b_rs + j·b_cs]`, on this thread.
///
/// # Safety
/// Every index reached must lie inside the buffers behind the pointers.
#[allow(clippy::too_many_arguments)]
unsafe fn mm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    (a, a_rs, a_cs): (*const f32, usize, usize),
    (b, b_rs, b_cs): (*const f32, usize, usize),
    accumulate: bool,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::ptr::write_bytes(dst.add(i * dst_rs), 0, n);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        1.0,
        alpha,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

impl FusedAttention {
    /// Keys row `i` may see.
    fn visible(&self, i: usize, s: usize) -> usize {
        if self.causal {
            (i + 1).min(s)
        } else {
            s
        }
    }

    /// The scores of query rows `i0..i0 + rows` of one slice against its first `cols` keys,
    /// `[rows, cols]` into `sc`.
    fn scores(
        &self,
        d: Dims,
        q: &[f32],
        k: &[f32],
        i0: usize,
        rows: usize,
        cols: usize,
        sc: &mut [f32],
    ) {
        // SAFETY: q holds l·e floats (rows i0..i0+rows ≤ l), k holds s·e (cols ≤ s), sc holds
        // rows·cols.
        unsafe {
            mm(
                (rows, cols, d.e),
                sc.as_mut_ptr(),
                cols,
                (q.as_ptr().add(i0 * d.e), d.e, 1),
                (k.as_ptr(), 1, d.e),
                false,
                self.scale,
            )
        }
    }
}

impl mlfw_autograd::Function for FusedAttention {
    fn name(&self) -> &str {
        "fused_attention"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let d = dims(&inputs[0], &inputs[1], &inputs[2])?;
        let (q, k, v) = (f32s(&inputs[0])?, f32s(&inputs[1])?, f32s(&inputs[2])?);
        let mut out = vec![0f32; d.n * d.l * d.ev];
        let mut lse = vec![0f32; d.n * d.l];
        let (po, pl) = (Out::new(&mut out), Out::new(&mut lse));
        parallel::run(d.n, |n| {
            let qn = &q[n * d.l * d.e..(n + 1) * d.l * d.e];
            let kn = &k[n * d.s * d.e..(n + 1) * d.s * d.e];
            let vn = &v[n * d.s * d.ev..(n + 1) * d.s * d.ev];
            // SAFETY: slice n's output rows and lse entries belong to this task only.
            let on = unsafe { po.part(n * d.l * d.ev, d.l * d.ev) };
            let ln = unsafe { pl.part(n * d.l, d.l) };
            let mut sc = vec![0f32; RB * d.s];
            for i0 in (0..d.l).step_by(RB) {
                let rows = RB.min(d.l - i0);
                let cols = self.visible(i0 + rows - 1, d.s);
                let sc = &mut sc[..rows * cols];
                self.scores(d, qn, kn, i0, rows, cols, sc);
                for r in 0..rows {
                    let vis = self.visible(i0 + r, d.s);
                    let row = &mut sc[r * cols..(r + 1) * cols];
                    let (seen, hidden) = row.split_at_mut(vis);
                    hidden.fill(0.0);
                    // NaN-propagating max: a NaN score makes the row NaN, as PyTorch.
                    let m = seen.iter().fold(f32::NEG_INFINITY, |m, &x| {
                        if x.is_nan() || m.is_nan() {
                            f32::NAN
                        } else {
                            m.max(x)
                        }
                    });
                    if seen.is_empty() {
                        ln[i0 + r] = f32::NEG_INFINITY;
                        continue;
                    }
                    let sum = mlfw_core::cpu::exp_shifted_sum(seen, m) as f32;
                    let inv = 1.0 / sum;
                    seen.iter_mut().for_each(|p| *p *= inv);
                    ln[i0 + r] = m + sum.ln();
                }
                // SAFETY: sc is rows×cols, vn holds s·ev floats (cols ≤ s), on rows i0..i0+rows.
                unsafe {
                    mm(
                        (rows, d.ev, cols),
                        on.as_mut_ptr().add(i0 * d.ev),
                        d.ev,
                        (sc.as_ptr(), cols, 1),
                        (vn.as_ptr(), d.ev, 1),
                        false,
                        1.0,
                    )
                }
            }
        });
        *self.lse.lock().unwrap_or_else(|e| e.into_inner()) = Some(lse);
        let mut shape = inputs[0].dims().to_vec();
        let r = shape.len();
        shape[r - 1] = d.ev;
        Tensor::from_vec(out, shape, &Device::Cpu)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            return composed_backward(inputs, grad, self.causal, self.scale as f64);
        }
        let guard = self.lse.lock().unwrap_or_else(|e| e.into_inner());
        let lse = guard
            .as_ref()
            .ok_or_else(|| Error::msg("fused_attention: backward without a forward"))?;
        let d = dims(&inputs[0], &inputs[1], &inputs[2])?;
        let (q, k, v) = (f32s(&inputs[0])?, f32s(&inputs[1])?, f32s(&inputs[2])?);
        let (o, go) = (f32s(output)?, f32s(&grad.contiguous()?)?);
        let mut dq = vec![0f32; d.n * d.l * d.e];
        let mut dk = vec![0f32; d.n * d.s * d.e];
        let mut dv = vec![0f32; d.n * d.s * d.ev];
        let (pq, pk, pv) = (Out::new(&mut dq), Out::new(&mut dk), Out::new(&mut dv));
        parallel::run(d.n, |n| {
            let (le, se, sv, lv) = (d.l * d.e, d.s * d.e, d.s * d.ev, d.l * d.ev);
            let (qn, kn, vn) = (&q[n * le..][..le], &k[n * se..][..se], &v[n * sv..][..sv]);
            let (on, gn, lsen) = (
                &o[n * lv..][..lv],
                &go[n * lv..][..lv],
                &lse[n * d.l..][..d.l],
            );
            // SAFETY: slice n's gradient rows belong to this task only.
            let (dqn, dkn, dvn) = unsafe {
                (
                    pq.part(n * le, le),
                    pk.part(n * se, se),
                    pv.part(n * sv, sv),
                )
            };
            let mut p = vec![0f32; RB * d.s];
            let mut dp = vec![0f32; RB * d.s];
            for i0 in (0..d.l).step_by(RB) {
                let rows = RB.min(d.l - i0);
                let cols = self.visible(i0 + rows - 1, d.s);
                let (p, dp) = (&mut p[..rows * cols], &mut dp[..rows * cols]);
                self.scores(d, qn, kn, i0, rows, cols, p);
                for r in 0..rows {
                    let vis = self.visible(i0 + r, d.s);
                    let row = &mut p[r * cols..(r + 1) * cols];
                    let (seen, hidden) = row.split_at_mut(vis);
                    hidden.fill(0.0);
                    if !seen.is_empty() {
                        mlfw_core::cpu::exp_shifted_sum(seen, lsen[i0 + r]);
                    }
                }
                let gb = gn[i0 * d.ev..].as_ptr();
                let qb = qn[i0 * d.e..].as_ptr();
                // SAFETY (all four products): p, dp are rows×cols; gn/on rows i0..i0+rows of
                // width ev; vn, kn, dvn, dkn hold s rows (cols ≤ s); dqn rows i0..i0+rows.
                unsafe {
                    // dV[0..cols] += Pᵀ·dO
                    mm(
                        (cols, d.ev, rows),
                        dvn.as_mut_ptr(),
                        d.ev,
                        (p.as_ptr(), 1, cols),
                        (gb, d.ev, 1),
                        true,
                        1.0,
                    );
                    // dP = dO·vᵀ
                    mm(
                        (rows, cols, d.ev),
                        dp.as_mut_ptr(),
                        cols,
                        (gb, d.ev, 1),
                        (vn.as_ptr(), 1, d.ev),
                        false,
                        1.0,
                    );
                }
                for r in 0..rows {
                    let i = i0 + r;
                    let dot: f32 = gn[i * d.ev..(i + 1) * d.ev]
                        .iter()
                        .zip(&on[i * d.ev..(i + 1) * d.ev])
                        .map(|(a, b)| a * b)
                        .sum();
                    let (pr, dr) = (
                        &p[r * cols..(r + 1) * cols],
                        &mut dp[r * cols..(r + 1) * cols],
                    );
                    for (d, &p) in dr.iter_mut().zip(pr) {
                        *d = p * (*d - dot);
                    }
                }
                unsafe {
                    // dQ = dS·k·scale
                    mm(
                        (rows, d.e, cols),
                        dqn.as_mut_ptr().add(i0 * d.e),
                        d.e,
                        (dp.as_ptr(), cols, 1),
                        (kn.as_ptr(), d.e, 1),
                        false,
                        self.scale,
                    );
                    // dK[0..cols] += dSᵀ·q·scale
                    mm(
                        (cols, d.e, rows),
                        dkn.as_mut_ptr(),
                        d.e,
                        (dp.as_ptr(), 1, cols),
                        (qb, d.e, 1),
                        true,
                        self.scale,
                    );
                }
            }
        });
        let dev = Device::Cpu;
        Ok(vec![
            Some(Tensor::from_vec(dq, inputs[0].dims(), &dev)?),
            Some(Tensor::from_vec(dk, inputs[1].dims(), &dev)?),
            Some(Tensor::from_vec(dv, inputs[2].dims(), &dev)?),
        ])
    }
}

/// The backward under `create_graph`: the composed attention re-run on the inputs and
/// differentiated with a recorded graph.
fn composed_backward(
    inputs: &[Tensor],
    grad: &Tensor,
    causal: bool,
    scale: f64,
) -> Result<Vec<Option<Tensor>>> {
    let (l, s) = (
        inputs[0].dims()[inputs[0].rank() - 2],
        inputs[1].dims()[inputs[1].rank() - 2],
    );
    let bias = if causal {
        Some(crate::attention::causal_bias(
            l,
            s,
            DType::F32,
            &Device::Cpu,
        )?)
    } else {
        None
    };
    let (out, _) = crate::attention::composed(
        &inputs[0],
        &inputs[1],
        &inputs[2],
        bias.as_ref(),
        0.0,
        false,
        Some(scale),
    )?;
    mlfw_autograd::grad_with(&out, inputs, Some(grad), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attention::{attention, Mask};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let mut g = mlfw_core::Generator::new(seed);
        Tensor::randn_with(0.0, 1.0, shape, DType::F32, &Device::Cpu, &mut g)
            .unwrap()
            .requires_grad_(true)
            .unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

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
            let q = rand(&[2, 3, l, 4], 1);
            let k = rand(&[2, 3, s, 4], 2);
            let v = rand(&[2, 3, s, 6], 3);
            let g = rand(&[2, 3, l, 6], 4).detach();
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
            let hk = mlfw_autograd::grad(&h, &[k.clone()], None).unwrap();
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
}
