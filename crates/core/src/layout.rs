//! A view's geometry: shape, strides (in elements) and offset into shared storage.
//!
//! Invariant: every index reachable through the layout, `offset + Σ i_k·stride_k` with
//! `i_k < shape_k`, lies inside the storage; views are built only through the checked
//! methods here, which keep that true. A stride of 0 repeats an element (broadcast).

use crate::{Error, Result, Shape};

/// Shape, strides and start offset of a tensor view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// A contiguous row-major layout starting at `offset`.
    pub fn contiguous_with_offset(shape: impl Into<Shape>, offset: usize) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// A contiguous row-major layout starting at 0.
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        Self::contiguous_with_offset(shape, 0)
    }

    /// Builds a layout from raw parts (the caller guarantees the invariant).
    pub fn from_parts(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    /// The dims.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// Start offset in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// True when elements are laid out row-major without gaps (size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// `Some((start, end))` when the view is one contiguous run of storage.
    pub fn contiguous_range(&self) -> Option<(usize, usize)> {
        self.is_contiguous()
            .then(|| (self.offset, self.offset + self.elem_count()))
    }

    /// Largest storage index the view touches, plus one (0 for empty views).
    pub fn max_index_exclusive(&self) -> usize {
        if self.elem_count() == 0 {
            return 0;
        }
        self.offset
            + self
                .dims()
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// Narrows `dim` to `start..start+len`.
    ///
    /// # Errors
    /// `Error::Msg` when `dim >= rank` or `start + len` exceeds the dim's size.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        let size = self.dims()[dim];
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::msg(format!(
                "narrow: range {start}..{} out of bounds for dim {dim} of size {size} (shape {})",
                start.saturating_add(len),
                self.shape
            )));
        }
        let mut dims = self.dims().to_vec();
        dims[dim] = len;
        let offset = if len == 0 {
            self.offset
        } else {
            self.offset + start * self.strides[dim]
        };
        Ok(Layout {
            shape: Shape::new(dims),
            strides: self.strides.clone(),
            offset,
        })
    }

    /// Reorders dims: output dim i is input dim `perm[i]`. `perm` must be a permutation.
    ///
    /// # Errors
    /// `Error::Msg` when `perm` is not a permutation of `0..rank`.
    pub fn permute(&self, perm: &[usize]) -> Result<Self> {
        let rank = self.shape.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::msg(format!(
                "permute: {perm:?} is not a permutation of the {rank} dims of shape {}",
                self.shape
            )));
        }
        let dims = perm.iter().map(|&p| self.dims()[p]).collect();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Ok(Layout {
            shape: Shape::new(dims),
            strides,
            offset: self.offset,
        })
    }

    /// Broadcasts to `shape` (NumPy rules; new leading dims and size-1 dims get stride 0).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `shape` has fewer dims, or a dim of size other than 1 differs
    /// from `shape`'s.
    pub fn broadcast_as(&self, shape: &Shape) -> Result<Self> {
        let (src, dst) = (self.dims(), shape.dims());
        if dst.len() < src.len() {
            return Err(Error::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape.clone(),
                rhs: shape.clone(),
            });
        }
        let lead = dst.len() - src.len();
        let mut strides = vec![0; dst.len()];
        for i in 0..src.len() {
            if src[i] == dst[lead + i] {
                strides[lead + i] = if src[i] == 1 { 0 } else { self.strides[i] };
            } else if src[i] == 1 {
                strides[lead + i] = 0;
            } else {
                return Err(Error::ShapeMismatch {
                    op: "broadcast_to",
                    lhs: self.shape.clone(),
                    rhs: shape.clone(),
                });
            }
        }
        Ok(Layout {
            shape: shape.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// A view with a new shape of the same element count, if the strides allow one without copying.
    pub fn reshape_view(&self, shape: &Shape) -> Option<Self> {
        if self.is_contiguous() {
            return Some(Layout::contiguous_with_offset(shape.clone(), self.offset));
        }
        // Group the old dims into runs that are contiguous among themselves, then map the
        // new dims onto those runs (as PyTorch's computeStride does).
        let old_d = self.dims();
        let old_s = &self.strides;
        let new_d = shape.dims();
        let mut new_s = vec![0usize; new_d.len()];
        let mut view_d = new_d.len() as isize - 1;
        let mut chunk_base_stride = *old_s.last().unwrap_or(&1);
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for tensor_d in (0..old_d.len()).rev() {
            tensor_numel *= old_d[tensor_d];
            if tensor_d == 0
                || (old_d[tensor_d - 1] != 1
                    && old_s[tensor_d - 1] != tensor_numel * chunk_base_stride)
            {
                while view_d >= 0 && (view_numel < tensor_numel || new_d[view_d as usize] == 1) {
                    new_s[view_d as usize] = view_numel * chunk_base_stride;
                    view_numel *= new_d[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = old_s[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout {
            shape: shape.clone(),
            strides: new_s,
            offset: self.offset,
        })
    }

    /// Iterates the storage index of every element in row-major order.
    pub fn strided_index(&self) -> crate::strided::StridedIndex<'_> {
        crate::strided::StridedIndex::new(self)
    }

    /// The view as contiguous blocks: (block length, iterator of block starts).
    pub fn blocks(&self) -> crate::strided::Blocks {
        crate::strided::Blocks::new(self)
    }
}
