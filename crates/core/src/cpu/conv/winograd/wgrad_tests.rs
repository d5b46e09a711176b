//! The Winograd weight gradient ([`super::wgrad`]) against an f64 reference and against the
//! eager (blocked direct) weight gradient: odd maps, channel counts that are not multiples of
//! 16, paddings 0–2 (unequal too), batch 1, NaN, −0 and all-negative inputs.

use super::super::geom::Geom;
use super::{bwd_weight, usable};
use crate::params::Conv2dParams;

/// A deterministic pseudo-random f32 in [−1, 1).
fn rnd(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn geom(n: usize, c: usize, o: usize, hw: (usize, usize), pad: (usize, usize)) -> Geom {
    let p = Conv2dParams {
        stride: (1, 1),
        padding: pad,
        dilation: (1, 1),
        groups: 1,
    };
    Geom::new("test", (n, c, hw.0, hw.1), (o, c, 3, 3), None, &p).unwrap()
}

/// dW[o, c, a, b] = Σ x[n, c, i + a − ph, j + b − pw] · dy[n, o, i, j], in f64.
fn reference(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f64> {
    let (ph, pw) = (g.p.padding.0 as isize, g.p.padding.1 as isize);
    let mut dw = vec![0f64; g.o * g.c * 9];
    for n in 0..g.n {
        for o in 0..g.o {
            for c in 0..g.c {
                for a in 0..3 {
                    for b in 0..3 {
                        let mut s = 0f64;
                        for i in 0..g.oh {
                            let r = i as isize + a as isize - ph;
                            if r < 0 || r >= g.h as isize {
                                continue;
                            }
                            for j in 0..g.ow {
                                let q = j as isize + b as isize - pw;
                                if q < 0 || q >= g.w as isize {
                                    continue;
                                }
                                let xv = x[((n * g.c + c) * g.h + r as usize) * g.w + q as usize];
                                let dv = dy[((n * g.o + o) * g.oh + i) * g.ow + j];
                                s += xv as f64 * dv as f64;
                            }
                        }
                        dw[(o * g.c + c) * 9 + a * 3 + b] += s;
                    }
                }
            }
        }
    }
    dw
}

/// max |a − b| / max |b|.
fn rel(a: &[f32], b: &[f64]) -> f64 {
    let m = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(b)
        .fold(0f64, |e, (x, y)| e.max((*x as f64 - y).abs()))
        / m
}

fn skip(g: &Geom) -> bool {
    if !usable(g) {
        eprintln!("skipped: the Winograd kernels need AVX-512 (or MLFW_CONV_WINOGRAD=0 is set)");
        return true;
    }
    false
}

#[test]
fn matches_reference_and_eager() {
    let cases = [
        (2, 32, 32, (8, 8), (1, 1)),
        (1, 33, 40, (7, 7), (1, 1)),
        (3, 48, 35, (5, 9), (0, 0)),
        (2, 40, 33, (1, 1), (1, 1)),
        (2, 32, 34, (6, 5), (2, 2)),
        (1, 37, 32, (9, 4), (2, 0)),
        (2, 64, 64, (16, 16), (1, 1)),
        (4, 64, 32, (33, 35), (1, 1)),
    ];
    for (k, &(n, c, o, hw, pad)) in cases.iter().enumerate() {
        let g = geom(n, c, o, hw, pad);
        if skip(&g) {
            return;
        }
        let x = rnd(n * c * hw.0 * hw.1, 2 * k as u64 + 1);
        let dy = rnd(n * o * g.oh * g.ow, 2 * k as u64 + 2);
        let got = bwd_weight(&x, &dy, &g);
        let want = reference(&x, &dy, &g);
        let e = rel(&got, &want);
        assert!(
            e < 2e-6,
            "case {k} ({n}, {c}, {o}, {hw:?}, {pad:?}): {e:.2e} vs f64"
        );
        // The eager (blocked direct) path, to the same tolerance.
        let eager = super::super::bwd_weight(&x, &dy, &g);
        let e2 = rel(&eager, &want);
        assert!(e2 < 2e-6, "case {k}: eager {e2:.2e}");
        println!("case {k}: winograd {e:.2e}, eager {e2:.2e} relative to f64");
    }
}

#[test]
fn nan_negative_zero_and_all_negative() {
    let g = geom(2, 33, 32, (6, 7), (1, 1));
    if skip(&g) {
        return;
    }
    // All-negative input and gradient: the products are positive, the sums exact-ish.
    let x: Vec<f32> = rnd(2 * 33 * 42, 7).iter().map(|v| -v.abs() - 0.1).collect();
    let dy: Vec<f32> = rnd(2 * 32 * 42, 8).iter().map(|v| -v.abs() - 0.1).collect();
    let got = bwd_weight(&x, &dy, &g);
    assert!(rel(&got, &reference(&x, &dy, &g)) < 2e-6);
    assert!(got.iter().all(|v| *v > 0.0));
    // −0 everywhere: every gradient is zero (of either sign), none NaN.
    let zx = vec![-0.0f32; x.len()];
    assert!(bwd_weight(&zx, &dy, &g).iter().all(|v| *v == 0.0));
    // A NaN in channel 3 of the input reaches the weights of channel 3 (for every output
    // channel) and no others... through the 4×4 transforms it may reach every tap of c = 3.
    let mut nx = x.clone();
    nx[3 * 42 + 2 * 7 + 3] = f32::NAN;
    let got = bwd_weight(&nx, &dy, &g);
    for o in 0..32 {
        for c in 0..33 {
            let w = &got[(o * 33 + c) * 9..(o * 33 + c + 1) * 9];
            if c == 3 {
                assert!(w.iter().any(|v| v.is_nan()), "NaN lost at o {o}");
            } else {
                assert!(w.iter().all(|v| v.is_finite()), "NaN leaked to c {c}");
            }
        }
    }
    // A NaN in the gradient reaches the weights of its output channel only.
    let mut ndy = dy.clone();
    ndy[5 * 42 + 9] = f32::NAN;
    let got = bwd_weight(&x, &ndy, &g);
    for o in 0..32 {
        let w = &got[o * 33 * 9..(o + 1) * 33 * 9];
        assert_eq!(w.iter().any(|v| v.is_nan()), o == 5, "o {o}");
    }
}

#[test]
fn back_transform_is_the_adjoint_of_the_weight_transform() {
    // ⟨G g Gᵀ, z⟩ = ⟨g, Gᵀ z G⟩ for random g, z.
    let (g, z) = (rnd(9, 11), rnd(16, 12));
    let gm = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut lhs = 0f64;
    for i in 0..4 {
        for j in 0..4 {
            let mut u = 0f64;
            for a in 0..3 {
                for b in 0..3 {
                    u += gm[i][a] * g[3 * a + b] as f64 * gm[j][b];
                }
            }
            lhs += u * z[4 * i + j] as f64;
        }
    }
    let zz: [f32; 16] = z.clone().try_into().unwrap();
    let back = super::wgrad::back(&zz);
    let rhs: f64 = back
        .iter()
        .zip(&g)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    assert!(
        (lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
}
