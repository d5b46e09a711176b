//! Iteration over the storage indices of a strided view.
//!
//! [`StridedIndex`] yields one storage index per element in row-major order; [`Blocks`]
//! groups the innermost contiguous dims into runs so that kernels can work on slices.
//! Scalars (rank 0) yield one element; empty views yield nothing.

use crate::Layout;

/// Storage index of every element of a layout, row-major.
pub struct StridedIndex<'a> {
    next: Option<usize>,
    multi: Vec<usize>,
    dims: &'a [usize],
    strides: &'a [usize],
}

impl<'a> StridedIndex<'a> {
    pub(crate) fn new(l: &'a Layout) -> Self {
        let next = if l.elem_count() == 0 {
            None
        } else {
            Some(l.offset())
        };
        StridedIndex {
            next,
            multi: vec![0; l.dims().len()],
            dims: l.dims(),
            strides: l.strides(),
        }
    }
}

impl Iterator for StridedIndex<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let cur = self.next?;
        let mut idx = cur;
        let mut d = self.dims.len();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            if self.multi[d] + 1 < self.dims[d] {
                self.multi[d] += 1;
                idx += self.strides[d];
                self.next = Some(idx);
                break;
            }
            idx -= self.multi[d] * self.strides[d];
            self.multi[d] = 0;
        }
        Some(cur)
    }
}

/// A layout split into equal contiguous runs of storage.
pub struct Blocks {
    /// Elements per run.
    pub block_len: usize,
    outer_dims: Vec<usize>,
    outer_strides: Vec<usize>,
    offset: usize,
    count: usize,
}

impl Blocks {
    pub(crate) fn new(l: &Layout) -> Self {
        let dims = l.dims();
        let strides = l.strides();
        let mut block_len = 1;
        let mut k = dims.len();
        while k > 0 {
            let (d, s) = (dims[k - 1], strides[k - 1]);
            if d == 1 || s == block_len {
                block_len *= d;
                k -= 1;
            } else {
                break;
            }
        }
        let outer_dims = dims[..k].to_vec();
        let outer_strides = strides[..k].to_vec();
        let count = if l.elem_count() == 0 {
            0
        } else {
            outer_dims.iter().product()
        };
        Blocks {
            block_len,
            outer_dims,
            outer_strides,
            offset: l.offset(),
            count,
        }
    }

    /// Number of runs.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Start of the `i`-th run (row-major order).
    #[inline]
    pub fn start(&self, mut i: usize) -> usize {
        let mut off = self.offset;
        for k in (0..self.outer_dims.len()).rev() {
            let d = self.outer_dims[k];
            off += (i % d) * self.outer_strides[k];
            i /= d;
        }
        off
    }

    /// Iterates the run starts in order.
    pub fn starts(&self) -> impl Iterator<Item = usize> + '_ {
        let l = Layout::from_parts(
            crate::Shape::new(self.outer_dims.clone()),
            self.outer_strides.clone(),
            self.offset,
        );
        let n = self.count;
        // Materialising the outer index is cheap next to the runs themselves.
        let v: Vec<usize> = if n == 0 {
            vec![]
        } else {
            l.strided_index().collect()
        };
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    #[test]
    fn strided_transpose_and_scalar_and_empty() {
        let l = Layout::contiguous([2, 3]).permute(&[1, 0]).unwrap();
        assert_eq!(
            l.strided_index().collect::<Vec<_>>(),
            vec![0, 3, 1, 4, 2, 5]
        );
        let s = Layout::contiguous(Shape::new(vec![]));
        assert_eq!(s.strided_index().collect::<Vec<_>>(), vec![0]);
        let e = Layout::contiguous([2, 0]);
        assert_eq!(e.strided_index().count(), 0);
        assert_eq!(e.blocks().count(), 0);
    }

    #[test]
    fn blocks_of_narrowed_view() {
        let l = Layout::contiguous([3, 4]).narrow(1, 1, 2).unwrap();
        let b = l.blocks();
        assert_eq!(b.block_len, 2);
        assert_eq!(b.starts().collect::<Vec<_>>(), vec![1, 5, 9]);
        assert_eq!(
            (0..3).map(|i| b.start(i)).collect::<Vec<_>>(),
            vec![1, 5, 9]
        );
    }

    #[test]
    fn reshape_view_of_transposed_needs_copy() {
        let l = Layout::contiguous([2, 3]).permute(&[1, 0]).unwrap();
        assert!(l.reshape_view(&Shape::new(vec![6])).is_none());
        let n = Layout::contiguous([4, 6]).narrow(1, 0, 3).unwrap();
        let v = n.reshape_view(&Shape::new(vec![2, 2, 3])).unwrap();
        assert_eq!(v.strides(), &[12, 6, 1]);
    }
}
