//! Where a [`Learner`](super::Learner)'s batches come from: any [`BatchSource`] — a
//! [`DataLoader`] (images and labels, an epoch = one pass over the dataset), or a source that
//! draws its batches, such as the language-model trainer's random text windows
//! ([`crate::lm_train::TextWindows`]: an epoch = a fixed number of steps).

use mlfw_core::Tensor;
use mlfw_data::DataLoader;

use crate::error::Result;

/// A batch as a source yields it: `(input, target)` — the input before the learner's input
/// transform, the targets on any device (the learner moves them to the model's).
pub type SourceBatch = (Tensor, Tensor);

/// The stretch of an epoch the learner asks a source for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The epoch (0-based).
    pub epoch: u64,
    /// The first batch wanted (its index in the epoch; non-zero when resuming mid-epoch).
    pub start: usize,
    /// One past the last batch wanted (at most [`BatchSource::len`]).
    pub end: usize,
    /// Optimizer steps the run had taken before batch `start`.
    pub global_step: u64,
}

/// A source of batches for training or validation.
///
/// Exact resume needs the batches of a [`Span`] to depend only on the span (and the source's
/// own settings such as its seed), never on what was drawn before.
pub trait BatchSource {
    /// Batches in one epoch (the learner's default steps per epoch).
    fn len(&self) -> usize;

    /// Whether an epoch has no batch.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples the source holds (images, or tokens of a corpus), for the learner's header line.
    fn samples(&self) -> usize;

    /// The batches `span.start..span.end` of epoch `span.epoch`, in order.
    ///
    /// Errors: each batch that cannot be built comes out as an error in its place.
    fn batches(&self, span: Span) -> Box<dyn Iterator<Item = Result<SourceBatch>>>;

    /// How much a validation batch with targets `target` counts in the mean validation loss:
    /// by default its sample count (`target`'s first dimension), so the mean is over samples.
    /// A source whose batches all count the same (PyTorch's language-model recipe: the mean
    /// of the batch losses) returns 1.
    fn weight(&self, target: &Tensor) -> f64 {
        target.dims().first().copied().unwrap_or(1) as f64
    }
}

impl BatchSource for DataLoader {
    fn len(&self) -> usize {
        DataLoader::len(self)
    }

    fn samples(&self) -> usize {
        self.dataset().len()
    }

    /// The loader's epoch `span.epoch` (its order depends only on the seed and the epoch); the
    /// batches before `span.start` are loaded and skipped.
    fn batches(&self, span: Span) -> Box<dyn Iterator<Item = Result<SourceBatch>>> {
        Box::new(
            self.iter_epoch(span.epoch)
                .take(span.end)
                .skip(span.start)
                .map(|b| b.map(|b| (b.images, b.labels)).map_err(Into::into)),
        )
    }
}
