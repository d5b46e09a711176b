//! The instruction set of the fused CPU loop ([`super::kernel`]) and its vector execution:
//! [`exec`] runs one instruction over `n` elements of its registers, computing exactly what the eager f32 kernel
//! in `cpu/map.rs` computes for an element (same expression, same rounding).

use crate::params::{BinaryOp, CmpOp, UnaryOp};

/// Most registers (loads + members) a fused group may use.
pub(crate) const MAX_REGS: usize = 64;

/// One instruction of a fused group over registers (destination first): registers
/// `0..loads` hold the loaded inputs, then one register per member in order. Bool values
/// (comparisons, loaded masks) are held as 1.0 / 0.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedInstr {
    /// `d = op(a)`.
    Unary(usize, usize, UnaryOp),
    /// `d = op(a, b)`.
    Binary(usize, usize, usize, BinaryOp),
    /// `d = op(a, b) ? 1 : 0`.
    Cmp(usize, usize, usize, CmpOp),
    /// `d = c != 0 ? t : f`, as `Where(d, c, t, f)`.
    Where(usize, usize, usize, usize),
}
pub(crate) use FusedInstr as Instr;

/// Register `d` for writing and registers `a`, `b` for reading.
///
/// # Safety
/// `d` must be a member register (a scratch block no other register points into, distinct
/// from `a` and `b`), and all three must hold `n` elements.
#[inline(always)]
unsafe fn regs<'a>(
    p: &[*mut f32; MAX_REGS],
    loads: usize,
    d: usize,
    a: usize,
    b: usize,
    n: usize,
) -> (&'a mut [f32], &'a [f32], &'a [f32]) {
    debug_assert!(d >= loads && d != a && d != b);
    let _ = loads;
    // SAFETY: as the caller promises.
    unsafe {
        (
            std::slice::from_raw_parts_mut(p[d], n),
            std::slice::from_raw_parts(p[a], n),
            std::slice::from_raw_parts(p[b], n),
        )
    }
}

/// `dst[j] = f(x[j])`.
#[inline(always)]
unsafe fn map1(
    p: &[*mut f32; MAX_REGS],
    l: usize,
    d: usize,
    a: usize,
    n: usize,
    f: impl Fn(f32) -> f32,
) {
    // SAFETY: forwarded from `exec`'s caller.
    let (dst, x, _) = unsafe { regs(p, l, d, a, a, n) };
    dst.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
}

/// `dst[j] = f(x[j], y[j])`.
#[inline(always)]
unsafe fn map2(
    p: &[*mut f32; MAX_REGS],
    l: usize,
    d: usize,
    a: usize,
    b: usize,
    n: usize,
    f: impl Fn(f32, f32) -> f32,
) {
    // SAFETY: forwarded from `exec`'s caller.
    let (dst, x, y) = unsafe { regs(p, l, d, a, b, n) };
    dst.iter_mut()
        .zip(x)
        .zip(y)
        .for_each(|((o, &p), &q)| *o = f(p, q));
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Runs one instruction over the first `n` elements of the block, with the eager f32
/// kernel's formula for each op.
///
/// # Safety
/// As [`regs`] for the instruction's registers.
#[inline(always)]
pub(super) unsafe fn exec(p: &[*mut f32; MAX_REGS], l: usize, ins: Instr, n: usize) {
    // SAFETY: the registers of `ins` satisfy `regs`'s contract (the caller's promise).
    unsafe {
        match ins {
            Instr::Unary(d, a, op) => match op {
                UnaryOp::Neg => map1(p, l, d, a, n, |x| -x),
                UnaryOp::Abs => map1(p, l, d, a, n, |x| x.abs()),
                UnaryOp::Log => map1(p, l, d, a, n, |x| x.ln()),
                UnaryOp::Sqrt => map1(p, l, d, a, n, |x| x.sqrt()),
                UnaryOp::Rsqrt => map1(p, l, d, a, n, |x| 1.0 / x.sqrt()),
                UnaryOp::Sin => map1(p, l, d, a, n, |x| x.sin()),
                UnaryOp::Cos => map1(p, l, d, a, n, |x| x.cos()),
                UnaryOp::Tanh => map1(p, l, d, a, n, |x| x.tanh()),
                UnaryOp::Sigmoid => map1(p, l, d, a, n, sigmoid),
                UnaryOp::Relu => map1(
                    p,
                    l,
                    d,
                    a,
                    n,
                    |x| if x > 0.0 || x.is_nan() { x } else { 0.0 },
                ),
                UnaryOp::Recip => map1(p, l, d, a, n, |x| 1.0 / x),
                UnaryOp::Square => map1(p, l, d, a, n, |x| x * x),
                UnaryOp::LeakyRelu(s) => {
                    let s = s as f32;
                    map1(p, l, d, a, n, |x| if x > 0.0 { x } else { x * s })
                }
                UnaryOp::Powf(2.0) => map1(p, l, d, a, n, |x| x * x),
                UnaryOp::Powf(e) => {
                    let e = e as f32;
                    map1(p, l, d, a, n, |x| x.powf(e))
                }
                UnaryOp::Clamp(lo, hi) => {
                    let (lo, hi) = (lo as f32, hi as f32);
                    map1(p, l, d, a, n, |x| {
                        if x.is_nan() {
                            x
                        } else {
                            x.max(lo).min(hi)
                        }
                    })
                }
                UnaryOp::Affine(m, c) => {
                    let (m, c) = (m as f32, c as f32);
                    map1(p, l, d, a, n, |x| x * m + c)
                }
                // libm's erf in f64, rounded once: the eager kernel's arithmetic.
                UnaryOp::Erf => map1(p, l, d, a, n, |x| libm::erf(x as f64) as f32),
                // Not fused (see `fuse::unary_ok`); the planner never emits them.
                UnaryOp::Exp | UnaryOp::GeluErf | UnaryOp::GeluTanh | UnaryOp::Sign => {
                    unreachable!("unfused unary op in a fused kernel")
                }
            },
            Instr::Binary(d, a, b, op) => match op {
                BinaryOp::Add => map2(p, l, d, a, b, n, |x, y| x + y),
                BinaryOp::Sub => map2(p, l, d, a, b, n, |x, y| x - y),
                BinaryOp::Mul => map2(p, l, d, a, b, n, |x, y| x * y),
                BinaryOp::Div => map2(p, l, d, a, b, n, |x, y| x / y),
                BinaryOp::Maximum => {
                    map2(
                        p,
                        l,
                        d,
                        a,
                        b,
                        n,
                        |x, y| if x.is_nan() || x > y { x } else { y },
                    )
                }
                BinaryOp::Minimum => {
                    map2(
                        p,
                        l,
                        d,
                        a,
                        b,
                        n,
                        |x, y| if x.is_nan() || x < y { x } else { y },
                    )
                }
                BinaryOp::Pow => map2(p, l, d, a, b, n, |x, y| x.powf(y)),
            },
            Instr::Cmp(d, a, b, op) => {
                let c = |t: bool| if t { 1.0 } else { 0.0 };
                match op {
                    CmpOp::Eq => map2(p, l, d, a, b, n, |x, y| c(x == y)),
                    CmpOp::Ne => map2(p, l, d, a, b, n, |x, y| c(x != y)),
                    CmpOp::Lt => map2(p, l, d, a, b, n, |x, y| c(x < y)),
                    CmpOp::Le => map2(p, l, d, a, b, n, |x, y| c(x <= y)),
                    CmpOp::Gt => map2(p, l, d, a, b, n, |x, y| c(x > y)),
                    CmpOp::Ge => map2(p, l, d, a, b, n, |x, y| c(x >= y)),
                }
            }
            Instr::Where(d, c, t, f) => {
                debug_assert!(d >= l && d != c && d != t && d != f);
                // `d` is disjoint from the three registers read; `c` holds `n` elements.
                let (dst, tv, fv) = regs(p, l, d, t, f, n);
                let cv = std::slice::from_raw_parts(p[c], n);
                dst.iter_mut()
                    .zip(cv)
                    .zip(tv.iter().zip(fv))
                    .for_each(|((o, &c), (&t, &f))| {
                        // A bit mask, not `if c != 0.0 { t } else { f }`: written as a
                        // select, the compiler chose between the two *addresses* and
                        // loaded through vector gathers (4x slower than eager `where`).
                        let m = 0u32.wrapping_sub(u32::from(c != 0.0));
                        *o = f32::from_bits((t.to_bits() & m) | (f.to_bits() & !m));
                    });
            }
        }
    }
}
