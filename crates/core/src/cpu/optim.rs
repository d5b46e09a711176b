//! Fused in-place optimizer updates on host buffers.
//!
//! Each update follows torch.optim's single-tensor path operation by operation (same order,
//! hyper-parameters rounded to the element type as PyTorch's scalar arguments are), so a
//! float32 run tracks PyTorch's to the last few ulps. f32 and f64 run natively; f16 and
//! bf16 are widened to f32 for the arithmetic and rounded back, as PyTorch's CPU kernels do.

use super::map::contiguous_cow;
use crate::parallel::{chunk_len, run, PAR_THRESHOLD};
use crate::params::OptimUpdate;
use crate::{CpuStorage, Error, Layout, Result};
use half::{bf16, f16};
use num_traits::Float;

/// Runs `u` on parameter `p` (contiguous, first `gl.elem_count()` elements) with gradient
/// `g` (any layout) and state buffers (contiguous, parameter-sized).
pub(crate) fn optim_update(
    p: &mut CpuStorage,
    g: &CpuStorage,
    gl: &Layout,
    state: &mut [&mut CpuStorage],
    u: &OptimUpdate,
) -> Result<()> {
    let n = gl.elem_count();
    let want = expected_state(u);
    if state.len() != want {
        return Err(Error::msg(format!(
            "optimizer step: {u:?} needs {want} state buffers, got {}",
            state.len()
        )));
    }
    if p.len() < n || state.iter().any(|s| s.len() < n) {
        return Err(Error::msg(
            "optimizer step: parameter or state buffer smaller than the gradient",
        ));
    }
    if g.dtype() != p.dtype() || state.iter().any(|s| s.dtype() != p.dtype()) {
        return Err(Error::DTypeMismatch {
            op: "optimizer step",
            lhs: p.dtype(),
            rhs: g.dtype(),
        });
    }
    match p {
        CpuStorage::F32(pv) => {
            let gv = contiguous_cow(f32_slice(g)?, gl);
            let mut st: Vec<&mut [f32]> = Vec::with_capacity(state.len());
            for s in state.iter_mut() {
                match &mut **s {
                    CpuStorage::F32(v) => st.push(&mut v[..n]),
                    _ => unreachable!("dtype checked above"),
                }
            }
            par_update(&mut pv[..n], &gv, &mut st, u);
        }
        CpuStorage::F64(pv) => {
            let gv = match g {
                CpuStorage::F64(v) => contiguous_cow(v, gl),
                _ => unreachable!("dtype checked above"),
            };
            let mut st: Vec<&mut [f64]> = Vec::with_capacity(state.len());
            for s in state.iter_mut() {
                match &mut **s {
                    CpuStorage::F64(v) => st.push(&mut v[..n]),
                    _ => unreachable!("dtype checked above"),
                }
            }
            par_update(&mut pv[..n], &gv, &mut st, u);
        }
        CpuStorage::F16(_) | CpuStorage::BF16(_) => widened(p, g, gl, state, u, n)?,
        other => {
            return Err(Error::UnsupportedDType {
                op: "optimizer step",
                dtype: other.dtype(),
            })
        }
    }
    Ok(())
}

fn f32_slice(s: &CpuStorage) -> Result<&[f32]> {
    s.as_slice::<f32>()
}

/// Number of state buffers an update reads and writes.
fn expected_state(u: &OptimUpdate) -> usize {
    match *u {
        OptimUpdate::Sgd { momentum, .. } => (momentum != 0.0) as usize,
        OptimUpdate::Adam { amsgrad, .. } => 2 + amsgrad as usize,
        OptimUpdate::RmsProp {
            momentum, centered, ..
        } => 1 + (momentum > 0.0) as usize + centered as usize,
        OptimUpdate::Adagrad { .. } => 1,
    }
}

/// Half-precision path: widen everything to f32, update, round back.
fn widened(
    p: &mut CpuStorage,
    g: &CpuStorage,
    gl: &Layout,
    state: &mut [&mut CpuStorage],
    u: &OptimUpdate,
    n: usize,
) -> Result<()> {
    fn widen(s: &CpuStorage, n: usize) -> Vec<f32> {
        match s {
            CpuStorage::F16(v) => v[..n].iter().map(|x| x.to_f32()).collect(),
            CpuStorage::BF16(v) => v[..n].iter().map(|x| x.to_f32()).collect(),
            _ => unreachable!("half dtypes only"),
        }
    }
    fn narrow(dst: &mut CpuStorage, src: &[f32]) {
        match dst {
            CpuStorage::F16(v) => v
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = f16::from_f32(*s)),
            CpuStorage::BF16(v) => v
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = bf16::from_f32(*s)),
            _ => unreachable!("half dtypes only"),
        }
    }
    let gv: Vec<f32> = match g {
        CpuStorage::F16(v) => contiguous_cow(v, gl).iter().map(|x| x.to_f32()).collect(),
        CpuStorage::BF16(v) => contiguous_cow(v, gl).iter().map(|x| x.to_f32()).collect(),
        _ => unreachable!("dtype checked by the caller"),
    };
    let mut pw = widen(p, n);
    let mut sw: Vec<Vec<f32>> = state.iter().map(|s| widen(s, n)).collect();
    {
        let mut refs: Vec<&mut [f32]> = sw.iter_mut().map(|v| v.as_mut_slice()).collect();
        par_update(&mut pw, &gv, &mut refs, u);
    }
    narrow(p, &pw);
    for (dst, src) in state.iter_mut().zip(&sw) {
        narrow(dst, src);
    }
    Ok(())
}

/// `torch.lerp(a, b, w)` as ATen computes it (two formulas for numerical accuracy).
#[inline]
fn lerp<T: Float>(a: T, b: T, w: T) -> T {
    let half = T::from(0.5).unwrap_or(w);
    if w.abs() < half {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::one() - w)
    }
}

/// A raw pointer the update's tasks share; each task touches a disjoint index range.
struct Shared<T>(*mut T);
// SAFETY: only used to hand disjoint sub-slices of one `&mut [T]` to the tasks of `run`.
unsafe impl<T: Send> Sync for Shared<T> {}
impl<T> Shared<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// [`update`] split over the thread pool in index ranges (every element's arithmetic is
/// independent of the others, so the result is the same bit for bit). A parameter streams
/// its value, gradient and state from memory once per step — VGG-11's 120 M parameters are
/// 2.4 GB with momentum —, so this pass is bandwidth-bound and one core alone does not
/// saturate the memory system.
fn par_update<T: Float + Send + Sync>(p: &mut [T], g: &[T], st: &mut [&mut [T]], u: &OptimUpdate) {
    let n = p.len();
    if n < PAR_THRESHOLD {
        return update(p, g, st, u);
    }
    // Chunks of whole cache lines (16 f32), about four per thread.
    let chunk = chunk_len(n, PAR_THRESHOLD).next_multiple_of(16);
    let pp = Shared(p.as_mut_ptr());
    let sp: Vec<Shared<T>> = st.iter_mut().map(|s| Shared(s.as_mut_ptr())).collect();
    run(n.div_ceil(chunk), |i| {
        let (a, b) = (i * chunk, ((i + 1) * chunk).min(n));
        // SAFETY: `a..b` lies inside `p` and every state buffer (each holds `n` elements, the
        // caller checked), the tasks' ranges are disjoint, and the buffers stay mutably
        // borrowed by this function until `run` returns.
        let pc = unsafe { std::slice::from_raw_parts_mut(pp.get().add(a), b - a) };
        let mut sc: Vec<&mut [T]> = sp
            .iter()
            .map(|s| unsafe { std::slice::from_raw_parts_mut(s.get().add(a), b - a) })
            .collect();
        update(pc, &g[a..b], &mut sc, u);
    });
}

/// The update on plain slices (`st` as documented on [`OptimUpdate`]).
fn update<T: Float>(p: &mut [T], g: &[T], st: &mut [&mut [T]], u: &OptimUpdate) {
    let c = |v: f64| T::from(v).unwrap_or_else(T::nan);
    match *u {
        OptimUpdate::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            maximize,
            first_step,
        } => {
            let (lr, m, wd, damp) = (c(lr), c(momentum), c(weight_decay), c(1.0 - dampening));
            let mut buf = st.first_mut();
            if let Some(b) = buf
                .as_mut()
                .filter(|_| !maximize && weight_decay == 0.0 && !nesterov && !first_step)
            {
                // The common case (plain momentum) without per-element branches or bounds
                // checks, so it vectorizes; the same operations in the same order as below.
                let (b, g) = (&mut b[..p.len()], &g[..p.len()]);
                for ((pi, &gi), bi) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                    let nb = *bi * m + damp * gi;
                    *bi = nb;
                    *pi = *pi + (-lr) * nb;
                }
                return;
            }
            for i in 0..p.len() {
                let mut d = if maximize { -g[i] } else { g[i] };
                if weight_decay != 0.0 {
                    d = d + wd * p[i];
                }
                if let Some(b) = buf.as_mut() {
                    let nb = if first_step { d } else { b[i] * m + damp * d };
                    b[i] = nb;
                    d = if nesterov { d + m * nb } else { nb };
                }
                p[i] = p[i] + (-lr) * d;
            }
        }
        OptimUpdate::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad: _,
            decoupled,
            maximize,
            step,
        } => {
            let step = step.max(1) as f64;
            let bc1 = 1.0 - beta1.powf(step);
            let bc2 = 1.0 - beta2.powf(step);
            let step_size = c(lr / bc1);
            let bc2_sqrt = c(bc2.sqrt());
            let (w1, b2, w2, wd, eps) = (
                c(1.0 - beta1),
                c(beta2),
                c(1.0 - beta2),
                c(weight_decay),
                c(eps),
            );
            let decay = c(1.0 - lr * weight_decay);
            let (ms, rest) = st.split_at_mut(1);
            let (vs, maxs) = rest.split_at_mut(1);
            let (m, v) = (&mut *ms[0], &mut *vs[0]);
            let mut vmax = maxs.first_mut();
            for i in 0..p.len() {
                let mut gi = if maximize { -g[i] } else { g[i] };
                if weight_decay != 0.0 {
                    if decoupled {
                        p[i] = p[i] * decay;
                    } else {
                        gi = gi + wd * p[i];
                    }
                }
                m[i] = lerp(m[i], gi, w1);
                v[i] = v[i] * b2 + w2 * (gi * gi);
                let vv = match vmax.as_mut() {
                    Some(mx) => {
                        mx[i] = if mx[i] > v[i] || mx[i].is_nan() {
                            mx[i]
                        } else {
                            v[i]
                        };
                        mx[i]
                    }
                    None => v[i],
                };
                let denom = vv.sqrt() / bc2_sqrt + eps;
                p[i] = p[i] + (-step_size) * (m[i] / denom);
            }
        }
        OptimUpdate::RmsProp {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            maximize,
        } => {
            let (lr, a, wa, eps, wd, mom) = (
                c(lr),
                c(alpha),
                c(1.0 - alpha),
                c(eps),
                c(weight_decay),
                c(momentum),
            );
            let (sq, rest) = st.split_at_mut(1);
            let sq = &mut *sq[0];
            let (mut buf, mut gavg) = match (momentum > 0.0, centered) {
                (true, true) => {
                    let (b, ga) = rest.split_at_mut(1);
                    (Some(&mut *b[0]), Some(&mut *ga[0]))
                }
                (true, false) => (Some(&mut *rest[0]), None),
                (false, true) => (None, Some(&mut *rest[0])),
                (false, false) => (None, None),
            };
            for i in 0..p.len() {
                let mut gi = if maximize { -g[i] } else { g[i] };
                if weight_decay != 0.0 {
                    gi = gi + wd * p[i];
                }
                sq[i] = sq[i] * a + wa * (gi * gi);
                let avg = match gavg.as_mut() {
                    Some(ga) => {
                        ga[i] = lerp(ga[i], gi, wa);
                        (sq[i] + (-T::one()) * (ga[i] * ga[i])).sqrt()
                    }
                    None => sq[i].sqrt(),
                } + eps;
                match buf.as_mut() {
                    Some(b) => {
                        b[i] = b[i] * mom + gi / avg;
                        p[i] = p[i] + (-lr) * b[i];
                    }
                    None => p[i] = p[i] + (-lr) * (gi / avg),
                }
            }
        }
        OptimUpdate::Adagrad {
            lr,
            lr_decay,
            weight_decay,
            eps,
            maximize,
            step,
        } => {
            let clr = c(lr / (1.0 + (step.max(1) - 1) as f64 * lr_decay));
            let (wd, eps) = (c(weight_decay), c(eps));
            let sum = &mut *st[0];
            for i in 0..p.len() {
                let mut gi = if maximize { -g[i] } else { g[i] };
                if weight_decay != 0.0 {
                    gi = gi + wd * p[i];
                }
                sum[i] = sum[i] + gi * gi;
                let std = sum[i].sqrt() + eps;
                p[i] = p[i] + (-clr) * (gi / std);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Vec<f64>, g: &[f64], st: &mut [Vec<f64>], u: OptimUpdate) {
        let mut ps = CpuStorage::F64(p.clone());
        let gs = CpuStorage::F64(g.to_vec());
        let mut ss: Vec<CpuStorage> = st.iter().map(|v| CpuStorage::F64(v.clone())).collect();
        let mut refs: Vec<&mut CpuStorage> = ss.iter_mut().collect();
        optim_update(&mut ps, &gs, &Layout::contiguous(g.len()), &mut refs, &u).unwrap();
        *p = ps.as_slice::<f64>().unwrap().to_vec();
        for (d, s) in st.iter_mut().zip(&ss) {
            *d = s.as_slice::<f64>().unwrap().to_vec();
        }
    }

    #[test]
    fn sgd_momentum_matches_hand_computation() {
        let mut p = vec![1.0, -2.0];
        let g = [0.5, 0.25];
        let mut st = vec![vec![0.0, 0.0]];
        let mut u = OptimUpdate::Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
            first_step: true,
        };
        run(&mut p, &g, &mut st, u);
        assert_eq!(st[0], vec![0.5, 0.25]);
        assert!((p[0] - 0.95).abs() < 1e-15);
        if let OptimUpdate::Sgd { first_step, .. } = &mut u {
            *first_step = false;
        }
        run(&mut p, &g, &mut st, u);
        assert!((st[0][0] - 0.95).abs() < 1e-15);
        assert!((p[0] - 0.855).abs() < 1e-15);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let mut p = vec![1.0, 1.0];
        let g = [0.3, -4.0];
        let mut st = vec![vec![0.0; 2], vec![0.0; 2]];
        let u = OptimUpdate::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 0.0,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            maximize: false,
            step: 1,
        };
        run(&mut p, &g, &mut st, u);
        assert!(
            (p[0] - 0.99).abs() < 1e-12 && (p[1] - 1.01).abs() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn adagrad_and_rmsprop() {
        let mut p = vec![1.0];
        let mut st = vec![vec![0.0]];
        let u = OptimUpdate::Adagrad {
            lr: 0.1,
            lr_decay: 0.0,
            weight_decay: 0.0,
            eps: 1e-10,
            maximize: false,
            step: 1,
        };
        run(&mut p, &[2.0], &mut st, u);
        assert!((p[0] - 0.9).abs() < 1e-9 && st[0][0] == 4.0);
        let mut p = vec![1.0];
        let mut st = vec![vec![0.0]];
        let u = OptimUpdate::RmsProp {
            lr: 0.01,
            alpha: 0.99,
            eps: 0.0,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        };
        run(&mut p, &[2.0], &mut st, u);
        // square_avg = 0.01 * 4 = 0.04, step = 0.01 * 2 / 0.2 = 0.1
        assert!((p[0] - 0.9).abs() < 1e-12, "{p:?}");
    }

    /// Parameters large enough to be split over the pool, stepped through `optim_update`
    /// (f32), against the same update written out element by element in PyTorch's order.
    #[test]
    fn split_sgd_and_adam_match_the_elementwise_update() {
        let n = 3 * PAR_THRESHOLD + 37;
        let v = |seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let (p0, g, b0) = (v(1), v(2), v(3));
        let step = |u: OptimUpdate, st: Vec<Vec<f32>>| {
            let mut ps = CpuStorage::F32(p0.clone());
            let mut ss: Vec<CpuStorage> = st.into_iter().map(CpuStorage::F32).collect();
            let mut refs: Vec<&mut CpuStorage> = ss.iter_mut().collect();
            let gs = CpuStorage::F32(g.clone());
            optim_update(&mut ps, &gs, &Layout::contiguous(n), &mut refs, &u).unwrap();
            let st: Vec<Vec<f32>> = ss
                .iter()
                .map(|s| s.as_slice::<f32>().unwrap().to_vec())
                .collect();
            (ps.as_slice::<f32>().unwrap().to_vec(), st)
        };
        let sgd = |nesterov: bool, weight_decay: f64| OptimUpdate::Sgd {
            lr: 0.01,
            momentum: 0.9,
            dampening: 0.1,
            nesterov,
            weight_decay,
            maximize: false,
            first_step: false,
        };
        // Plain momentum (the branch-free loop) and the general loop (Nesterov, decay).
        for (nesterov, wd) in [(false, 0.0), (true, 0.0), (false, 1e-4)] {
            let (p, st) = step(sgd(nesterov, wd), vec![b0.clone()]);
            let (lr, m, damp, wd32) = (0.01f32, 0.9f32, 0.9f32, wd as f32);
            for i in 0..n {
                let d = if wd != 0.0 { g[i] + wd32 * p0[i] } else { g[i] };
                let nb = b0[i] * m + damp * d;
                let d = if nesterov { d + m * nb } else { nb };
                assert_eq!(st[0][i].to_bits(), nb.to_bits(), "buffer {i}");
                assert_eq!(p[i].to_bits(), (p0[i] + (-lr) * d).to_bits(), "param {i}");
            }
        }
        let adam = OptimUpdate::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            maximize: false,
            step: 3,
        };
        let (p, st) = step(adam, vec![b0.clone(), v(4).iter().map(|x| x * x).collect()]);
        let (mut pr, mut m, mut vv) = (
            p0.clone(),
            b0.clone(),
            v(4).iter().map(|x| x * x).collect::<Vec<f32>>(),
        );
        update(&mut pr, &g, &mut [&mut m[..], &mut vv[..]], &adam);
        assert!(p.iter().zip(&pr).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(st[0]
            .iter()
            .zip(&m)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(st[1]
            .iter()
            .zip(&vv)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn wrong_state_count_is_an_error() {
        let mut p = CpuStorage::F32(vec![1.0]);
        let g = CpuStorage::F32(vec![1.0]);
        let u = OptimUpdate::Adagrad {
            lr: 0.1,
            lr_decay: 0.0,
            weight_decay: 0.0,
            eps: 1e-10,
            maximize: false,
            step: 1,
        };
        assert!(optim_update(&mut p, &g, &Layout::contiguous(1), &mut [], &u).is_err());
    }
}
