//! Shapes, dimension resolution and broadcasting rules.

use crate::{Error, Result};

/// The sizes of a tensor's dimensions, outermost first.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// Builds a shape from its dims.
    pub fn new(dims: Vec<usize>) -> Self {
        Shape(dims)
    }

    /// The dims as a slice.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.0.len()];
        let mut acc = 1;
        for i in (0..self.0.len()).rev() {
            strides[i] = acc;
            acc *= self.0[i];
        }
        strides
    }

    /// Resolves a possibly negative dim (`-1` = last) for `op`.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` when `dim` is outside `-rank..rank`.
    pub fn dim(&self, dim: isize, op: &'static str) -> Result<usize> {
        resolve_dim(dim, self.rank(), op)
    }

    /// The NumPy broadcast of two shapes.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` (named `op`) when two aligned dims differ and neither is 1.
    pub fn broadcast_with(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let (a, b) = (self.dims(), other.dims());
        let rank = a.len().max(b.len());
        let mut out = vec![0; rank];
        for i in 0..rank {
            let da = if i + a.len() >= rank {
                a[i + a.len() - rank]
            } else {
                1
            };
            let db = if i + b.len() >= rank {
                b[i + b.len() - rank]
            } else {
                1
            };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: self.clone(),
                    rhs: other.clone(),
                });
            };
        }
        Ok(Shape(out))
    }
}

/// Resolves `dim` in `-rank..rank` to `0..rank`.
///
/// # Errors
/// `Error::DimOutOfRange` when `dim` is outside `-rank..rank`.
pub fn resolve_dim(dim: isize, rank: usize, op: &'static str) -> Result<usize> {
    let r = rank as isize;
    if dim >= r || dim < -r {
        return Err(Error::DimOutOfRange { op, dim, rank });
    }
    Ok(if dim < 0 {
        (dim + r) as usize
    } else {
        dim as usize
    })
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(v: &Vec<usize>) -> Self {
        Shape(v.clone())
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(v: &[usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(vec![])
    }
}
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(vec![d])
    }
}
