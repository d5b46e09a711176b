//! Evaluation of a classifier over a loader: loss, accuracy and the confusion matrix.

use mlfw_core::Device;
use mlfw_data::DataLoader;
use mlfw_nn::{functional as F, Module};

use crate::data::Normalize;
use crate::error::Result;

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// Mean cross-entropy over all samples.
    pub loss: f64,
    /// Fraction of samples classified correctly.
    pub accuracy: f64,
    /// Number of samples.
    pub samples: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
}

impl EvalResult {
    /// Accuracy of each class (NaN for a class without samples).
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(i, row)| row[i] as f64 / row.iter().sum::<u64>() as f64)
            .collect()
    }
}

/// Runs `model` in evaluation mode without gradients over one pass of `loader`, then puts it
/// back in training mode if it was.
///
/// # Errors
/// A batch the loader cannot build; a model or loss that rejects its shapes.
pub fn evaluate(
    model: &mut dyn Module,
    loader: &DataLoader,
    norm: &Normalize,
    device: &Device,
    num_classes: usize,
) -> Result<EvalResult> {
    let was_training = model.is_training();
    model.train(false);
    let _guard = mlfw_autograd::no_grad();
    let mut confusion = vec![vec![0u64; num_classes]; num_classes];
    let (mut loss_sum, mut samples) = (0.0f64, 0usize);
    for batch in loader.iter_epoch(0) {
        let batch = batch?;
        let n = batch.len();
        let logits = model.forward(&norm.apply(&batch.images)?)?;
        let labels = batch.labels.to(device)?;
        loss_sum += F::cross_entropy(&logits, &labels)?.item_f64()? * n as f64;
        let pred = logits.argmax(1, false)?.to_vec::<i64>()?;
        let truth = batch.labels.to_vec::<i64>()?;
        for (&t, &p) in truth.iter().zip(&pred) {
            if let (Some(row), true) = (confusion.get_mut(t as usize), (p as usize) < num_classes) {
                row[p as usize] += 1;
            }
        }
        samples += n;
    }
    model.train(was_training);
    let correct: u64 = (0..num_classes).map(|i| confusion[i][i]).sum();
    Ok(EvalResult {
        loss: loss_sum / samples.max(1) as f64,
        accuracy: correct as f64 / samples.max(1) as f64,
        samples,
        confusion,
    })
}
