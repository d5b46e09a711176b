//! The fused CPU loop: one pass over a group's elements in blocks that stay in L1, each
//! block loading its inputs (any strided layout, broadcasts included), running the group's
//! instructions as vector loops over the block, and storing the materialized values.
//! Blocks are spread over core's thread pool ([`crate::parallel`]).
//!
//! Every instruction computes exactly what the eager f32 kernel in `cpu/map.rs` computes
//! for an element (same expression, same rounding), so a fused group is bit-identical to
//! running its nodes one by one.

use super::instr::{exec, Instr, MAX_REGS};
#[cfg(target_arch = "x86_64")]
use crate::cpu::avx512;
use crate::{CpuStorage, Error, Layout, Result, Shape, Tensor};
use std::cell::RefCell;

/// Elements per block (8 KiB per register; measured faster than 512 on LeNet-5).
pub(crate) const BLOCK: usize = 2048;

/// Elements below which a group runs on the calling thread only.
const PAR_MIN: usize = 1 << 14;

/// A compiled group: loads into registers `0..loads`, then instructions, then stores.
#[derive(Debug, Clone)]
pub(crate) struct FusedKernel {
    /// Elements of the group's shape.
    pub len: usize,
    /// The group's shape (inputs of other shapes are broadcast to it).
    pub shape: Vec<usize>,
    /// Registers in all (loads first).
    pub regs: usize,
    pub instrs: Vec<Instr>,
    /// For each store: the register it writes out.
    pub stores: Vec<usize>,
    /// For each store: whether the output is bool (else f32).
    pub store_bool: Vec<bool>,
}

/// An input as the loop sees it.
enum Src<'a> {
    F32(&'a [f32], Walk),
    Bool(&'a [bool], Walk),
}

/// How a load walks its layout: contiguous from an offset, one broadcast scalar, or a
/// general strided walk over coalesced dims.
enum Walk {
    Contiguous(usize),
    Scalar(usize),
    /// Coalesced dims and strides (the first `rank`; at most 8 after coalescing).
    Strided {
        dims: [usize; 8],
        strides: [usize; 8],
        rank: usize,
        offset: usize,
    },
    /// More than 8 dims remain after coalescing: not fused.
    TooDeep,
}

impl Walk {
    fn new(l: &Layout) -> Walk {
        if let Some((s, _)) = l.contiguous_range() {
            return Walk::Contiguous(s);
        }
        if l.strides().iter().all(|&s| s == 0) {
            return Walk::Scalar(l.offset());
        }
        // Drop size-1 dims and merge dims that are contiguous with each other.
        let (mut dims, mut strides, mut r) = ([0usize; 8], [0usize; 8], 0);
        for (&d, &s) in l.dims().iter().zip(l.strides()) {
            if d == 1 {
                continue;
            }
            if r > 0 && strides[r - 1] == s * d {
                dims[r - 1] *= d;
                strides[r - 1] = s;
            } else if r == 8 {
                return Walk::TooDeep;
            } else {
                dims[r] = d;
                strides[r] = s;
                r += 1;
            }
        }
        Walk::Strided {
            dims,
            strides,
            rank: r,
            offset: l.offset(),
        }
    }

    /// Calls `run(j, pos, len, stride)` for the runs of the elements `start..start + len`
    /// of the view: element `j + t` of the block is at `pos + t * stride` for `t < len`.
    #[inline(always)]
    fn runs(&self, start: usize, len: usize, mut run: impl FnMut(usize, usize, usize, usize)) {
        match self {
            Walk::Contiguous(s) => run(0, s + start, len, 1),
            Walk::Scalar(o) => run(0, *o, len, 0),
            Walk::TooDeep => unreachable!("refused in `FusedKernel::run`"),
            Walk::Strided {
                dims,
                strides,
                rank,
                offset,
            } => {
                let r = *rank;
                let mut idx = [0usize; 8];
                let mut rem = start;
                for d in (0..r).rev() {
                    idx[d] = rem % dims[d];
                    rem /= dims[d];
                }
                let mut pos: usize = offset + (0..r).map(|d| idx[d] * strides[d]).sum::<usize>();
                let (last, st) = (dims[r - 1], strides[r - 1]);
                let mut j = 0;
                while j < len {
                    let n = (last - idx[r - 1]).min(len - j);
                    run(j, pos, n, st);
                    j += n;
                    // Advance the odometer past the run.
                    idx[r - 1] += n;
                    pos += n * st;
                    let mut d = r - 1;
                    while idx[d] == dims[d] && d > 0 {
                        pos -= idx[d] * strides[d];
                        idx[d] = 0;
                        d -= 1;
                        idx[d] += 1;
                        pos += strides[d];
                    }
                }
            }
        }
    }

    /// True when [`Walk::each`] can walk the layout.
    fn fits(&self) -> bool {
        !matches!(self, Walk::TooDeep | Walk::Strided { rank: 0, .. })
    }
}

/// A raw output slice shared by the tasks, which write disjoint ranges.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut u8,
    bool_: bool,
}
// SAFETY: tasks write disjoint element ranges of each output; the buffers outlive `run`.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

thread_local! {
    /// Per-thread registers, reused by every group on this thread (no allocation per run).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl FusedKernel {
    /// Runs the kernel: `inputs` (one per load, CPU f32 or bool, shaped like the group or
    /// broadcast to it) into `outputs` (one per store, CPU f32 or bool, contiguous, at
    /// least `len` elements).
    pub(crate) fn run(&self, inputs: &[&Tensor], outputs: &[&Tensor]) -> Result<()> {
        let mut oguards: Vec<_> = outputs.iter().map(|t| t.storage_mut()).collect();
        let mut outs = Vec::with_capacity(outputs.len());
        for g in oguards.iter_mut() {
            match g.as_any_mut().downcast_mut::<CpuStorage>() {
                Some(CpuStorage::F32(v)) if v.len() >= self.len => outs.push(Out {
                    ptr: v.as_mut_ptr() as *mut u8,
                    bool_: false,
                }),
                Some(CpuStorage::Bool(v)) if v.len() >= self.len => outs.push(Out {
                    ptr: v.as_mut_ptr() as *mut u8,
                    bool_: true,
                }),
                _ => return Err(Error::msg("fused kernel: outputs must be CPU f32 or bool")),
            }
        }
        self.run_into(inputs, &outs)
    }

    /// Runs the kernel into new contiguous tensors (one per store, of the group's shape),
    /// written once without being zeroed first.
    pub(crate) fn run_new(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let mut f: Vec<Vec<f32>> = Vec::new();
        let mut b: Vec<Vec<bool>> = Vec::new();
        let mut outs = Vec::with_capacity(self.store_bool.len());
        for &is_bool in &self.store_bool {
            if is_bool {
                b.push(Vec::with_capacity(self.len));
                let v = b.last_mut().expect("just pushed");
                outs.push(Out {
                    ptr: v.as_mut_ptr() as *mut u8,
                    bool_: true,
                });
            } else {
                f.push(Vec::with_capacity(self.len));
                let v = f.last_mut().expect("just pushed");
                outs.push(Out {
                    ptr: v.as_mut_ptr() as *mut u8,
                    bool_: false,
                });
            }
        }
        self.run_into(inputs, &outs)?;
        let (mut fi, mut bi) = (f.into_iter(), b.into_iter());
        self.store_bool
            .iter()
            .map(|&is_bool| {
                let storage = if is_bool {
                    let mut v = bi.next().expect("one vec per bool store");
                    // SAFETY: `run_into` wrote all `len` elements (every block of 0..len
                    // stores every output), and the capacity is `len`.
                    unsafe { v.set_len(self.len) };
                    CpuStorage::Bool(v)
                } else {
                    let mut v = fi.next().expect("one vec per f32 store");
                    // SAFETY: as above.
                    unsafe { v.set_len(self.len) };
                    CpuStorage::F32(v)
                };
                Tensor::from_backend_storage(Box::new(storage), self.shape.clone())
            })
            .collect()
    }

    fn run_into(&self, inputs: &[&Tensor], outs: &[Out]) -> Result<()> {
        let guards: Vec<_> = inputs.iter().map(|t| t.storage()).collect();
        let mut srcs = Vec::with_capacity(inputs.len());
        for (t, g) in inputs.iter().zip(&guards) {
            let walk = if t.dims() == self.shape.as_slice() {
                Walk::new(t.layout())
            } else {
                Walk::new(&t.layout().broadcast_as(&Shape::new(self.shape.clone()))?)
            };
            if !walk.fits() {
                return Err(Error::msg(
                    "fused kernel: an input has an unsupported layout",
                ));
            }
            match g.as_any().downcast_ref::<CpuStorage>() {
                Some(CpuStorage::F32(v)) => srcs.push(Src::F32(v, walk)),
                Some(CpuStorage::Bool(v)) => srcs.push(Src::Bool(v, walk)),
                _ => return Err(Error::msg("fused kernel: inputs must be CPU f32 or bool")),
            }
        }
        let chunk = if self.len < PAR_MIN {
            self.len.max(1)
        } else {
            crate::parallel::chunk_len(self.len, PAR_MIN / 2).next_multiple_of(BLOCK)
        };
        let tasks = self.len.div_ceil(chunk);
        let srcs = &srcs;
        crate::parallel::run(tasks, |t| {
            let (s, e) = (t * chunk, ((t + 1) * chunk).min(self.len));
            SCRATCH.with(|sc| {
                let mut sc = sc.borrow_mut();
                if sc.len() < self.regs * BLOCK {
                    sc.resize(self.regs * BLOCK, 0.0);
                }
                self.blocks(&mut sc, srcs, outs, s, e);
            });
        });
        Ok(())
    }

    /// The blocks of elements `s..e`, with AVX-512 code where the CPU has it (the loops
    /// are the same; only the vector width differs, and no FMA contraction happens, so
    /// results are identical).
    fn blocks(&self, sc: &mut [f32], srcs: &[Src], outs: &[Out], s: usize, e: usize) {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: AVX-512F/VL/BW/DQ were detected at run time.
            unsafe { self.blocks_avx512(sc, srcs, outs, s, e) };
            return;
        }
        self.blocks_generic(sc, srcs, outs, s, e);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    unsafe fn blocks_avx512(&self, sc: &mut [f32], srcs: &[Src], outs: &[Out], s: usize, e: usize) {
        self.blocks_generic(sc, srcs, outs, s, e);
    }

    #[inline(always)]
    fn blocks_generic(&self, sc: &mut [f32], srcs: &[Src], outs: &[Out], s: usize, e: usize) {
        // A broadcast scalar is the same in every block: its register is filled once per
        // task (`block` leaves it alone).
        for (i, src) in srcs.iter().enumerate() {
            let r = &mut sc[i * BLOCK..(i + 1) * BLOCK];
            match src {
                Src::F32(v, Walk::Scalar(o)) => r.fill(v[*o]),
                Src::Bool(v, Walk::Scalar(o)) => r.fill(if v[*o] { 1.0 } else { 0.0 }),
                _ => {}
            }
        }
        let mut b = s;
        while b < e {
            let n = BLOCK.min(e - b);
            self.block(sc, srcs, outs, b, n);
            b += n;
        }
    }

    /// One block of `n` elements from element `start`.
    #[inline(always)]
    fn block(&self, sc: &mut [f32], srcs: &[Src], outs: &[Out], start: usize, n: usize) {
        assert!(self.regs <= MAX_REGS && self.regs * BLOCK <= sc.len() && n <= BLOCK);
        let base = sc.as_mut_ptr();
        // Register r lives at ptrs[r]: a scratch block, or, for a contiguous f32 input,
        // the input itself (read in place, never written).
        let mut ptrs = [std::ptr::null_mut::<f32>(); MAX_REGS];
        for (r, p) in ptrs.iter_mut().enumerate().take(self.regs) {
            // SAFETY: r * BLOCK + BLOCK <= sc.len() (asserted).
            *p = unsafe { base.add(r * BLOCK) };
        }
        for (i, src) in srcs.iter().enumerate() {
            match src {
                Src::F32(v, Walk::Contiguous(o)) => {
                    ptrs[i] = v[o + start..o + start + n].as_ptr() as *mut f32;
                    continue;
                }
                // Filled once per task by `blocks_generic`.
                Src::F32(_, Walk::Scalar(_)) | Src::Bool(_, Walk::Scalar(_)) => continue,
                _ => {}
            }
            // SAFETY: register i is a scratch block of BLOCK >= n elements, written only here.
            let r = unsafe { std::slice::from_raw_parts_mut(ptrs[i], n) };
            match src {
                Src::F32(v, w) => w.runs(start, n, |j, p, len, st| {
                    let o = &mut r[j..j + len];
                    match st {
                        0 => {
                            let x = v[p];
                            o.fill(x)
                        }
                        1 => o.copy_from_slice(&v[p..p + len]),
                        _ => gather(o, v, p, st),
                    }
                }),
                Src::Bool(v, w) => w.runs(start, n, |j, p, len, st| {
                    let f = |b: bool| if b { 1.0 } else { 0.0 };
                    let o = &mut r[j..j + len];
                    match st {
                        0 => o.fill(f(v[p])),
                        1 => o
                            .iter_mut()
                            .zip(&v[p..p + len])
                            .for_each(|(o, &b)| *o = f(b)),
                        _ => o
                            .iter_mut()
                            .enumerate()
                            .for_each(|(t, o)| *o = f(v[p + t * st])),
                    }
                }),
            }
        }
        let loads = srcs.len();
        for ins in &self.instrs {
            // SAFETY: every instruction writes a member register (index >= loads: a scratch
            // block of its own) and reads registers holding n valid elements.
            unsafe { exec(&ptrs, loads, *ins, n) };
        }
        for (o, &r) in outs.iter().zip(&self.stores) {
            // SAFETY: register r holds n elements; this task alone writes elements
            // start..start + n of each output, and every output holds at least `len`.
            unsafe {
                let v = std::slice::from_raw_parts(ptrs[r], n);
                if o.bool_ {
                    let d = std::slice::from_raw_parts_mut((o.ptr as *mut bool).add(start), n);
                    d.iter_mut().zip(v).for_each(|(d, &x)| *d = x != 0.0);
                } else {
                    let d = std::slice::from_raw_parts_mut((o.ptr as *mut f32).add(start), n);
                    d.copy_from_slice(v);
                }
            }
        }
    }
}

/// `o[t] = v[p + t * st]` (a strided run). Kept out of line: inlined, the compiler merged
/// the broadcast case (`st == 0`) into this loop and ran it as vector gathers of one
/// address, which made the bias and ReLU-mask groups 2–4× slower than eager.
#[inline(never)]
fn gather(o: &mut [f32], v: &[f32], p: usize, st: usize) {
    o.iter_mut()
        .enumerate()
        .for_each(|(t, o)| *o = v[p + t * st]);
}
