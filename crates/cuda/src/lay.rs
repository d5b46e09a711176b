//! Layouts as kernels see them: a fixed-size `#[repr(C)]` struct passed by value, with
//! adjacent dims merged where every operand allows it (so most views reach the kernel as one
//! contiguous run, which takes the `contig` fast path).

use cudarc::driver::DeviceRepr;
use mlfw_core::{Error, Layout, Result};

/// Most dims a kernel layout holds (after merging); matches `MAXD` in the CUDA header.
pub(crate) const MAXD: usize = 12;

/// A view for a kernel: element `i` (row-major over `dims`) lives at `off + Σ c_d · st[d]`.
/// Mirrors `struct Lay` in [`crate::kernels::common`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lay {
    pub off: u64,
    pub rank: u32,
    /// 1 when the view is one contiguous run starting at `off`.
    pub contig: u32,
    pub dims: [u64; MAXD],
    pub st: [u64; MAXD],
}

// SAFETY: plain-old-data with the same C layout as the CUDA struct.
unsafe impl DeviceRepr for Lay {}

impl Lay {
    fn build(dims: &[usize], st: &[usize], off: usize) -> Result<Lay> {
        if dims.len() > MAXD {
            return Err(Error::msg(format!(
                "CUDA kernels take views of at most {MAXD} non-mergeable dims, got {} (dims {dims:?}, strides {st:?}); make the tensor contiguous first",
                dims.len()
            )));
        }
        let mut l = Lay {
            off: off as u64,
            rank: dims.len() as u32,
            contig: 0,
            dims: [1; MAXD],
            st: [0; MAXD],
        };
        for (i, (&d, &s)) in dims.iter().zip(st).enumerate() {
            l.dims[i] = d as u64;
            l.st[i] = s as u64;
        }
        let mut acc = 1;
        let mut contig = true;
        for (&d, &s) in dims.iter().zip(st).rev() {
            if d != 1 && s != acc {
                contig = false;
            }
            acc *= d;
        }
        l.contig = contig as u32;
        Ok(l)
    }

    /// The layout exactly as given (no merging): for kernels that need per-dim coordinates.
    ///
    /// # Errors
    /// More than `MAXD` dims.
    pub fn exact(l: &Layout) -> Result<Lay> {
        Lay::build(l.dims(), l.strides(), l.offset())
    }

    /// One layout with mergeable dims merged.
    ///
    /// # Errors
    /// More than `MAXD` dims left after merging (as [`Lay::joint`]).
    pub fn of(l: &Layout) -> Result<Lay> {
        Ok(Lay::joint(&[l])?[0])
    }

    /// Layouts of equal shape, merged jointly (a dim pair merges only when it does in all).
    ///
    /// # Errors
    /// More than `MAXD` dims left after merging.
    pub fn joint(ls: &[&Layout]) -> Result<Vec<Lay>> {
        let dims = ls[0].dims();
        // Keep dims of size != 1 (size-1 dims contribute nothing to addresses).
        let keep: Vec<usize> = (0..dims.len()).filter(|&d| dims[d] != 1).collect();
        let mut md: Vec<usize> = Vec::new();
        let mut ms: Vec<Vec<usize>> = vec![Vec::new(); ls.len()];
        for &d in &keep {
            let mergeable = !md.is_empty()
                && ls
                    .iter()
                    .zip(&ms)
                    .all(|(l, s)| *s.last().unwrap() == l.strides()[d] * dims[d]);
            if mergeable {
                *md.last_mut().unwrap() *= dims[d];
                for (l, s) in ls.iter().zip(ms.iter_mut()) {
                    *s.last_mut().unwrap() = l.strides()[d];
                }
            } else {
                md.push(dims[d]);
                for (l, s) in ls.iter().zip(ms.iter_mut()) {
                    s.push(l.strides()[d]);
                }
            }
        }
        ls.iter()
            .zip(&ms)
            .map(|(l, s)| Lay::build(&md, s, l.offset()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_contiguous_and_keeps_broadcast() {
        let l = Layout::contiguous([2, 3, 4]);
        let k = Lay::of(&l).unwrap();
        assert_eq!((k.rank, k.contig, k.dims[0], k.st[0]), (1, 1, 24, 1));
        let t = l.permute(&[0, 2, 1]).unwrap();
        let k = Lay::of(&t).unwrap();
        assert_eq!(k.rank, 3);
        assert_eq!(k.contig, 0);
        let b = Layout::contiguous([3])
            .broadcast_as(&[2, 3].into())
            .unwrap();
        let c = Layout::contiguous([2, 3]);
        let j = Lay::joint(&[&b, &c]).unwrap();
        assert_eq!((j[0].rank, j[0].st[0], j[0].st[1]), (2, 0, 1));
        assert_eq!(j[1].contig, 1);
        let s = Layout::contiguous(Vec::<usize>::new());
        let k = Lay::of(&s).unwrap();
        assert_eq!((k.rank, k.contig), (0, 1));
    }
}
