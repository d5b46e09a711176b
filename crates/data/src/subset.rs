//! `Subset`: a view of some samples of another dataset (PyTorch's `torch.utils.data.Subset`),
//! and a seeded stratified split into two subsets.

use std::sync::Arc;

use crate::collate::Batch;
use crate::dataset::{Dataset, Sample};
use crate::error::{Error, Result};
use crate::info::DatasetInfo;
use crate::rng::Rng;

/// The samples `indices` of `inner`, in that order. Sample `i` is `inner`'s `indices[i]`.
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("len", &self.indices.len())
            .field("of", &self.inner.len())
            .finish()
    }
}

impl Subset {
    /// The samples `indices` of `inner`. Errors: an index `>= inner.len()`.
    ///
    /// # Errors
    /// [`Error::Format`] when an index is `>= inner.len()`.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        let n = inner.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::Format {
                file: "Subset".into(),
                problem: format!("index {bad} is out of range for a dataset of {n} samples"),
            });
        }
        Ok(Subset { inner, indices })
    }

    /// The indices into the inner dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    fn map(&self, index: usize) -> Result<usize> {
        self.indices
            .get(index)
            .copied()
            .ok_or_else(|| Error::Format {
                file: "Subset".into(),
                problem: format!("index {index} is out of range ({} samples)", self.len()),
            })
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        self.inner.get(self.map(index)?)
    }
    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        self.inner.get_seeded(self.map(index)?, seed)
    }
    fn get_batch(&self, indices: &[usize], seeds: &[u64]) -> Result<Batch> {
        let inner = indices
            .iter()
            .map(|&i| self.map(i))
            .collect::<Result<Vec<_>>>()?;
        let mut b = self.inner.get_batch(&inner, seeds)?;
        b.indices = indices.to_vec();
        Ok(b)
    }
    /// The inner dataset's metadata with `train_len` = this subset's length.
    fn info(&self) -> Option<DatasetInfo> {
        self.inner.info().map(|mut i| {
            i.train_len = self.len();
            i.test_len = 0;
            i
        })
    }
}

/// Splits sample positions by label into `(train, val)` index lists: from each class with `n`
/// samples, `round(n · fraction)` go to `val` (at least 1 when `n >= 2`, never all of them),
/// chosen by a shuffle seeded with `seed`; both lists are sorted. `labels[i]` is sample `i`'s
/// class. Errors: `fraction` outside `(0, 1)`.
///
/// # Errors
/// [`Error::Format`] when `fraction` is not strictly between 0 and 1.
pub fn stratified_split(
    labels: &[i64],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Format {
            file: "validation split".into(),
            problem: format!("the fraction is {fraction}; it must lie strictly between 0 and 1"),
        });
    }
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut rng = Rng::new(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (_, mut idx) in by_class {
        rng.shuffle(&mut idx);
        let n = idx.len();
        let k = if n >= 2 {
            ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
        } else {
            0
        };
        val.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeData;

    #[test]
    fn subset_and_split() {
        let labels: Vec<i64> = (0..20).map(|i| i % 2).collect();
        let (t, v) = stratified_split(&labels, 0.1, 3).unwrap();
        assert_eq!((t.len(), v.len()), (18, 2));
        assert!(v.iter().any(|&i| labels[i] == 0) && v.iter().any(|&i| labels[i] == 1));
        assert_eq!(stratified_split(&labels, 0.1, 3).unwrap().1, v, "seeded");
        assert!(stratified_split(&labels, 1.0, 3).is_err());
        let fake: Arc<dyn Dataset> = Arc::new(FakeData::new(10, [1, 4, 4], 3, 0).unwrap());
        let s = Subset::new(fake.clone(), vec![4, 2]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(1).unwrap().label, fake.get(2).unwrap().label);
        assert!(Subset::new(fake, vec![10]).is_err());
    }
}
