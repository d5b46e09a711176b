//! Strided convolutions as stride-1 reads: the input split into its stride phases.
//!
//! With stride `s`, output `(y, x)` reads the padded input at `(s·y + i, s·x + j)`. Writing
//! `i = s·(i/s) + i%s`, that is phase `(i%s, j%s)` — the sub-image `X_ab[u][v] = xpad[s·u +
//! a][s·v + b]` — read at `(y + i/s, x + j/s)`: stride 1 again. So with every channel stored
//! as its phases `[C][a][b][Hq][Wq]` (`Hq = oH + (kH−1)/s`, `Wq = oW + (kW−1)/s`; only the
//! phases the kernel reads, `a < min(s, kH)`), tap `(c, i, j)` of wide output position `p =
//! y·Wq + x` is `xq[off(c, i, j) + p]`, the same access the blocked kernels make in the wide
//! layout of [`super::wide`], with `Wq − oW` garbage columns per row (3×3 stride 2: one; 1×1
//! stride 2: none). The forward and weight-gradient kernels of [`super::blocked`] then run
//! unchanged on ResNet's downsampling layers (3×3 and 1×1, stride 2); the input gradient of
//! a strided convolution keeps the im2col path.

use super::direct::Plan;
use super::geom::Geom;

/// Most output positions per image for which the strided forward takes this path. Measured
/// one thread, batch 32, against im2col + gemm (CPU ms): ResNet's 256→512 3×3 stride 2
/// (4×4 out) 10.2 → 7.1, its 1×1 shortcut 1.08 → 0.89; but 128→256 (8×8 out) 5.9 → 6.7, the
/// 64→128 and 128→256 1×1 shortcuts 0.8 → 1.2 and 0.66 → 0.95 (gemm already runs those
/// well, and few taps leave the kernel's per-block stores and scatter exposed); the
/// weight gradient on phases was no faster (1×1 64→128 1.7 → 1.3, but 256→512 3×3
/// 6.3 → 7.3), so it stays on im2col + gemm.
pub(super) const MAX_POSITIONS: usize = 16;

/// f32 lanes of one AVX-512 register (slack for the kernels' overhanging reads).
const L: usize = 16;

/// The phase layout of one strided convolution's input.
#[derive(Debug, Clone, Copy)]
pub(super) struct Phase {
    /// Stride (both axes).
    s: usize,
    /// Phases stored per axis: `min(s, kH)`, `min(s, kW)`.
    sa: usize,
    sb: usize,
    /// Rows and columns of one phase plane.
    hq: usize,
    /// Row pitch of the phases and of the wide output positions.
    pub(super) wp: usize,
    /// Wide output positions per image, `oH·Wq`.
    pub(super) np: usize,
}

impl Phase {
    /// The phase layout when it suits `g`: equal strides of 2–4, no dilation, one group,
    /// padding smaller than the kernel, at most a quarter of garbage columns.
    pub(super) fn new(g: &Geom) -> Option<Phase> {
        let (s, sw) = g.p.stride;
        let (ph, pw) = g.p.padding;
        if s != sw || !(2..=4).contains(&s) || g.p.dilation != (1, 1) || g.groups != 1 {
            return None;
        }
        if ph >= g.kh || pw >= g.kw || g.oh == 0 || g.ow == 0 {
            return None;
        }
        let (hq, wq) = (g.oh + (g.kh - 1) / s, g.ow + (g.kw - 1) / s);
        if 4 * wq > 5 * g.ow {
            return None;
        }
        Some(Phase {
            s,
            sa: s.min(g.kh),
            sb: s.min(g.kw),
            hq,
            wp: wq,
            np: g.oh * wq,
        })
    }

    /// Elements of one phase plane.
    fn plane(&self) -> usize {
        self.hq * self.wp
    }

    /// Start of tap `(c, i, j)` in one image's phases.
    fn offset(&self, c: usize, i: usize, j: usize) -> usize {
        let ab = (c * self.sa + i % self.s) * self.sb + j % self.s;
        ab * self.plane() + (i / self.s) * self.wp + j / self.s
    }

    /// The taps' offsets (in the weights' `(c, i, j)` order, zero-padded to a multiple of
    /// `taps`) and the image sizes, for register blocks of `block` positions.
    pub(super) fn plan(&self, g: &Geom, block: usize, taps: usize) -> Plan {
        let mut offs = Vec::with_capacity(g.k().next_multiple_of(taps));
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    offs.push(self.offset(c, i, j));
                }
            }
        }
        let np = self.np.next_multiple_of(block);
        let body = g.c * self.sa * self.sb * self.plane();
        let reach = offs.iter().max().copied().unwrap_or(0) + np + L;
        offs.resize(g.k().next_multiple_of(taps), 0);
        Plan {
            offs,
            np,
            img: reach.max(body),
            body,
        }
    }

    /// Writes image `x[C, H, W]` as its phases into `xq` (`plan.img` elements): zeros where
    /// the phases fall in the padding or past the input, and in the slack.
    pub(super) fn fill(&self, x: &[f32], xq: &mut [f32], g: &Geom, plan: &Plan) {
        let (ph, pw) = g.p.padding;
        let (s, wq) = (self.s, self.wp);
        for (c, planes) in xq[..plan.body]
            .chunks_exact_mut(self.sa * self.sb * self.plane())
            .enumerate()
        {
            let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for (ab, dst) in planes.chunks_exact_mut(self.plane()).enumerate() {
                let (a, b) = (ab / self.sb, ab % self.sb);
                for (u, row) in dst.chunks_exact_mut(wq).enumerate() {
                    // Input row s·u + a − ph, columns s·v + b − pw.
                    let r = (s * u + a).checked_sub(ph).filter(|&r| r < g.h);
                    let Some(r) = r else {
                        row.fill(0.0);
                        continue;
                    };
                    // Columns v with 0 ≤ s·v + b − pw < W: v in lo..hi.
                    let lo = pw.saturating_sub(b).div_ceil(s).min(wq);
                    let hi = (g.w + pw).saturating_sub(b).div_ceil(s).clamp(lo, wq);
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let src = &xc[r * g.w + s * lo + b - pw..(r + 1) * g.w];
                    for (d, &v) in row[lo..hi].iter_mut().zip(src.iter().step_by(s)) {
                        *d = v;
                    }
                }
            }
        }
        xq[plan.body..].fill(0.0);
    }
}
