//! What every convolution path shares: the checked geometry, per-thread scratch, and the
//! split of a batch over the thread pool.

use crate::parallel::{for_each_chunk_mut, num_threads};
use crate::params::Conv2dParams;
use crate::{Error, Layout, Result, WithDType};
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

/// Multiply-adds under which a convolution stays on one thread.
pub(super) const PAR_WORK: usize = 1 << 18;

/// The geometry of one convolution, checked for consistency.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geom {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) groups: usize,
    pub(super) p: Conv2dParams,
}

impl Geom {
    /// Builds and checks the geometry from input `[n, c, h, w]`, weight `[o, c/g, kh, kw]` and
    /// (when known) output `[oh, ow]`.
    pub(super) fn new(
        op: &str,
        (n, c, h, w): (usize, usize, usize, usize),
        (o, cg, kh, kw): (usize, usize, usize, usize),
        out: Option<(usize, usize)>,
        p: &Conv2dParams,
    ) -> Result<Self> {
        let g = p.groups;
        if g == 0 || cg * g != c || o % g != 0 || kh == 0 || kw == 0 {
            return Err(Error::msg(format!(
                "{op}: inconsistent geometry: input channels {c}, weight [{o}, {cg}, {kh}, {kw}], groups {g}"
            )));
        }
        if p.dilation.0 == 0 || p.dilation.1 == 0 {
            return Err(Error::msg(format!("{op}: dilation must be positive")));
        }
        let (oh, ow) = p.out_hw((h, w), (kh, kw)).ok_or_else(|| {
            Error::msg(format!(
                "{op}: input {h}x{w} is smaller than the dilated kernel {kh}x{kw} (padding {:?})",
                p.padding
            ))
        })?;
        if let Some(got) = out {
            if got != (oh, ow) {
                return Err(Error::msg(format!(
                    "{op}: grad_out spatial size {got:?} does not match the expected {:?}",
                    (oh, ow)
                )));
            }
        }
        Ok(Geom {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh,
            ow,
            groups: g,
            p: *p,
        })
    }
    /// Output positions per image.
    pub(super) fn np(&self) -> usize {
        self.oh * self.ow
    }
    /// Rows of `col` per group.
    pub(super) fn k(&self) -> usize {
        self.c / self.groups * self.kh * self.kw
    }
    /// Output channels per group.
    pub(super) fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Elements of one input image.
    pub(super) fn img(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Rows of `col` for all groups.
    pub(super) fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Total multiply-adds.
    pub(super) fn work(&self) -> usize {
        self.n * self.o * self.np() * self.k()
    }
    /// True when `col` is the image itself (1×1 kernel, stride 1, no padding).
    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == (1, 1) && self.p.padding == (0, 0)
    }
}

/// The four dimensions of a 4-D layout, or an error naming `op`.
pub(super) fn dims4(l: &Layout, op: &str) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [a, b, c, d] => Ok((a, b, c, d)),
        _ => Err(Error::msg(format!(
            "{op}: expected a 4-D tensor, got {}",
            l.shape()
        ))),
    }
}

/// Lends `f` this thread's reusable scratch of at least `len` elements. Contents are stale:
/// callers overwrite what they read. The buffer is taken out while lent, so a nested call
/// (should one ever happen) just allocates its own.
pub(super) fn with_scratch<T: WithDType, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    thread_local! {
        static BUFS: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::new(HashMap::new());
    }
    let key = TypeId::of::<T>();
    let mut buf: Vec<T> = BUFS
        .with(|b| b.borrow_mut().remove(&key))
        .and_then(|b| b.downcast::<Vec<T>>().ok())
        .map(|b| *b)
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, T::ZERO);
    }
    let r = f(&mut buf[..len]);
    BUFS.with(|b| b.borrow_mut().insert(key, Box::new(buf)));
    r
}

/// Images per pool task when a convolution runs image by image: about four tasks a thread
/// when the batch and the work are large enough to split, else the whole batch in one.
pub(super) fn images_per_task(g: &Geom) -> usize {
    let threads = num_threads();
    if threads > 1 && g.n >= threads && g.work() >= PAR_WORK {
        g.n.div_ceil(threads * 4).max(1)
    } else {
        g.n
    }
}

/// Runs `f(image index, its chunk of out, scratch)` over the batch: images spread over the
/// pool when the batch and the work are big enough, else on this thread.
pub(super) fn over_batch<T, U, F>(g: &Geom, out: &mut [U], out_img: usize, scratch: usize, f: F)
where
    T: WithDType,
    U: Send,
    F: Fn(usize, &mut [U], &mut [T]) + Send + Sync,
{
    if out_img == 0 || g.n == 0 {
        return;
    }
    let per = images_per_task(g);
    for_each_chunk_mut(out, per * out_img, |ci, chunk| {
        with_scratch(scratch, |buf| {
            for (k, o) in chunk.chunks_mut(out_img).enumerate() {
                f(ci * per + k, o, buf);
            }
        })
    });
}
