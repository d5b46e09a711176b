//! The float32 kernels of [`super::attention`]: forward and backward of softmax attention
//! over `n` independent (batch, head) slices, each slice's matrices read and written in
//! place through a [`Geo`] (row stride plus a per-slice base), so packed `[B, L, 3E]`
//! projections and `[B, L, E]` outputs need no permuted copies.

use super::{mm, Out};
use mlfw_core::parallel;

/// Query rows per block: the block's scores (`RB × S` floats) stay in L1/L2.
const RB: usize = 32;

/// Where slice `n`'s matrix lives in its buffer: element `(i, c)` at
/// `base(n) + i·rs + c`, with `base(n) = (n / heads)·batch + (n % heads)·head + part`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geo {
    pub heads: usize,
    pub batch: usize,
    pub head: usize,
    pub part: usize,
    pub rs: usize,
}

impl Geo {
    /// Contiguous `[n, rows, cols]` slices.
    pub(crate) fn dense(rows: usize, cols: usize) -> Geo {
        Geo {
            heads: 1,
            batch: rows * cols,
            head: 0,
            part: 0,
            rs: cols,
        }
    }

    fn base(&self, n: usize) -> usize {
        (n / self.heads) * self.batch + (n % self.heads) * self.head + self.part
    }
}

/// Sizes: slices `n`, query rows `l`, keys `s`, widths `e` (q, k) and `ev` (v, output).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub n: usize,
    pub l: usize,
    pub s: usize,
    pub e: usize,
    pub ev: usize,
}

/// The matrices of one call: geometry of q, k, v and of the output (or its gradient).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geos {
    pub q: Geo,
    pub k: Geo,
    pub v: Geo,
    pub o: Geo,
}

/// The kernel's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attn {
    pub causal: bool,
    pub scale: f32,
}

impl Attn {
    /// Keys row `i` may see.
    fn visible(&self, i: usize, s: usize) -> usize {
        if self.causal {
            (i + 1).min(s)
        } else {
            s
        }
    }

    /// Scores of query rows `i0..i0 + rows` of slice `n` against its first `cols` keys into
    /// `sc [rows, cols]`.
    #[allow(clippy::too_many_arguments)]
    fn scores(
        &self,
        d: Dims,
        g: &Geos,
        (q, k): (&[f32], &[f32]),
        n: usize,
        i0: usize,
        rows: usize,
        cols: usize,
        sc: &mut [f32],
    ) {
        debug_assert!(g.q.base(n) + (i0 + rows - 1) * g.q.rs + d.e <= q.len());
        debug_assert!(cols == 0 || g.k.base(n) + (cols - 1) * g.k.rs + d.e <= k.len());
        // SAFETY: rows i0..i0+rows ≤ l of q and cols ≤ s of k lie in their buffers (the
        // callers' geometry matches the buffers' shapes); sc is rows×cols and ours.
        unsafe {
            mm(
                (rows, cols, d.e),
                (sc.as_mut_ptr(), cols),
                (q.as_ptr().add(g.q.base(n) + i0 * g.q.rs), g.q.rs, 1),
                (k.as_ptr().add(g.k.base(n)), 1, g.k.rs),
                false,
                self.scale,
            )
        }
    }

    /// Forward: writes the output through `out` (geometry `g.o`) and returns the
    /// log-sum-exp of every query row, `[n, l]`.
    pub(crate) fn forward(
        &self,
        d: Dims,
        g: Geos,
        (q, k, v): (&[f32], &[f32], &[f32]),
        out: &mut [f32],
    ) -> Vec<f32> {
        let mut lse = vec![0f32; d.n * d.l];
        let (po, pl) = (Out::new(out), Out::new(&mut lse));
        parallel::run(d.n, |n| {
            // SAFETY: slice n's lse entries belong to this task only.
            let ln = unsafe { pl.part(n * d.l, d.l) };
            let mut sc = vec![0f32; RB * d.s];
            for i0 in (0..d.l).step_by(RB) {
                let rows = RB.min(d.l - i0);
                let cols = self.visible(i0 + rows - 1, d.s);
                let sc = &mut sc[..rows * cols];
                self.scores(d, &g, (q, k), n, i0, rows, cols, sc);
                for r in 0..rows {
                    let vis = self.visible(i0 + r, d.s);
                    let (seen, hidden) = sc[r * cols..(r + 1) * cols].split_at_mut(vis);
                    hidden.fill(0.0);
                    ln[i0 + r] = softmax_row(seen);
                }
                // SAFETY: slice n's output rows belong to this task only; v's first cols rows
                // lie in its buffer.
                unsafe {
                    mm(
                        (rows, d.ev, cols),
                        (po.at(g.o.base(n) + i0 * g.o.rs), g.o.rs),
                        (sc.as_ptr(), cols, 1),
                        (v.as_ptr().add(g.v.base(n)), g.v.rs, 1),
                        false,
                        1.0,
                    )
                }
            }
        });
        lse
    }

    /// Backward: from the output `o`, its gradient `go` (both with geometry `g.o`) and the
    /// forward's `lse`, writes the gradients of q, k and v through `dq`, `dk`, `dv` (with
    /// the geometry of q, k and v; the caller zeroes them first: k's and v's accumulate).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &self,
        d: Dims,
        g: Geos,
        (q, k, v): (&[f32], &[f32], &[f32]),
        (o, go): (&[f32], &[f32]),
        lse: &[f32],
        (dq, dk, dv): (Out, Out, Out),
    ) {
        parallel::run(d.n, |n| {
            let mut p = vec![0f32; RB * d.s];
            let mut dp = vec![0f32; RB * d.s];
            let (qb, kb, vb, ob) = (g.q.base(n), g.k.base(n), g.v.base(n), g.o.base(n));
            for i0 in (0..d.l).step_by(RB) {
                let rows = RB.min(d.l - i0);
                let cols = self.visible(i0 + rows - 1, d.s);
                let (p, dp) = (&mut p[..rows * cols], &mut dp[..rows * cols]);
                self.scores(d, &g, (q, k), n, i0, rows, cols, p);
                for r in 0..rows {
                    let vis = self.visible(i0 + r, d.s);
                    let (seen, hidden) = p[r * cols..(r + 1) * cols].split_at_mut(vis);
                    hidden.fill(0.0);
                    if !seen.is_empty() {
                        mlfw_core::cpu::exp_shifted_sum(seen, lse[n * d.l + i0 + r]);
                    }
                }
                let gb = go[ob + i0 * g.o.rs..].as_ptr();
                // SAFETY (all four products): p, dp are rows×cols and ours; rows i0..i0+rows
                // of go/q and the first cols rows of k/v lie in their buffers; slice n's
                // gradient rows belong to this task only.
                unsafe {
                    // dV[0..cols] += Pᵀ·dO
                    mm(
                        (cols, d.ev, rows),
                        (dv.at(vb), g.v.rs),
                        (p.as_ptr(), 1, cols),
                        (gb, g.o.rs, 1),
                        true,
                        1.0,
                    );
                    // dP = dO·vᵀ
                    mm(
                        (rows, cols, d.ev),
                        (dp.as_mut_ptr(), cols),
                        (gb, g.o.rs, 1),
                        (v.as_ptr().add(vb), 1, g.v.rs),
                        false,
                        1.0,
                    );
                }
                for r in 0..rows {
                    let at = ob + (i0 + r) * g.o.rs;
                    let dot: f32 = go[at..at + d.ev]
                        .iter()
                        .zip(&o[at..at + d.ev])
                        .map(|(a, b)| a * b)
                        .sum();
                    let pr = &p[r * cols..(r + 1) * cols];
                    for (x, &p) in dp[r * cols..(r + 1) * cols].iter_mut().zip(pr) {
                        *x = p * (*x - dot);
                    }
                }
                unsafe {
                    // dQ = dS·k·scale
                    mm(
                        (rows, d.e, cols),
                        (dq.at(qb + i0 * g.q.rs), g.q.rs),
                        (dp.as_ptr(), cols, 1),
                        (k.as_ptr().add(kb), g.k.rs, 1),
                        false,
                        self.scale,
                    );
                    // dK[0..cols] += dSᵀ·q·scale
                    mm(
                        (cols, d.e, rows),
                        (dk.at(kb), g.k.rs),
                        (dp.as_ptr(), 1, cols),
                        (q.as_ptr().add(qb + i0 * g.q.rs), g.q.rs, 1),
                        true,
                        self.scale,
                    );
                }
            }
        });
    }
}

/// Softmax of one row in place (PyTorch's edge values: a NaN or `+inf` score makes the row
/// NaN); returns the row's log-sum-exp (−inf for an empty row).
fn softmax_row(row: &mut [f32]) -> f32 {
    if row.is_empty() {
        return f32::NEG_INFINITY;
    }
    let m = row.iter().fold(f32::NEG_INFINITY, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(x)
        }
    });
    let sum = mlfw_core::cpu::exp_shifted_sum(row, m) as f32;
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|p| *p *= inv);
    m + sum.ln()
}
