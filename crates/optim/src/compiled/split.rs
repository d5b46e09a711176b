//! A sample-separable compiled step run as micro-batches, one or more per thread.
//!
//! Eager training splits every op over the threads with a barrier each; LeNet-5's ops are
//! small, so two threads give 1.74× one. A compiled step knows the whole step: when it is
//! sample-separable ([`sample_separable`]: no value mixes samples except sums over the batch
//! and the loss mean's normalizer) each thread runs a plan compiled for its micro-batch, with
//! its own planned buffers, single-threaded (nested [`mlfw_core::parallel`] calls run
//! serially), and the outputs are combined: logits concatenated, the loss and the gradients
//! as `Σ_k (D_k / D)·out_k` (`D_k` the micro-batch's count of targets, `D = Σ_k D_k`).

use mlfw_core::graph::compile::{sample_separable, Combine};
use mlfw_core::graph::{compile_for_batch, Graph, Plan};
use mlfw_core::{DType, Error, Result, Tensor};
use std::sync::{Mutex, PoisonError};

/// Micro-batches below this size are not worth a plan of their own.
const MIN_MICRO: usize = 8;
/// The largest micro-batch chosen automatically: LeNet-5's per-image cost on one thread is
/// lowest at 64–128 samples (they stay in cache), higher at 256 (issue 17's table).
const MAX_MICRO: usize = 128;
/// Plans kept per task (the steady batch and an epoch's smaller last batch).
const PLANS_PER_TASK: usize = 2;

/// How a compiled step splits a batch ([`crate::CompiledStep::with_split`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitMode {
    /// Micro-batches chosen from the batch size and the thread count: one per thread, of at
    /// most 128 samples (then a multiple of the thread count), none below 8 samples.
    Auto,
    /// The whole batch as one plan (bit-identical to eager). The default: in the quiet
    /// sitting of 2026-11-30 (BENCHMARKS.md) the whole-batch replay, with its fused pooling
    /// steps, was as fast as [`SplitMode::Auto`] at batch 256 and faster at batch 64.
    #[default]
    Off,
    /// Micro-batches of this many samples (the last may be smaller).
    MicroBatch(usize),
}

impl SplitMode {
    /// From `MLFW_COMPILE_SPLIT`: unset, empty or `0` → [`SplitMode::Off`]; `auto` →
    /// [`SplitMode::Auto`]; a number `K` → [`SplitMode::MicroBatch`]`(K)`.
    ///
    /// # Errors
    /// Any other value.
    pub fn from_env() -> Result<Self> {
        match std::env::var("MLFW_COMPILE_SPLIT") {
            Err(_) => Ok(SplitMode::Off),
            Ok(v) => match v.trim() {
                "auto" => Ok(SplitMode::Auto),
                "" | "0" => Ok(SplitMode::Off),
                s => s.parse::<usize>().map(SplitMode::MicroBatch).map_err(|_| {
                    Error::msg(format!(
                        "MLFW_COMPILE_SPLIT must be `auto`, 0 (whole batch) or a micro-batch size, got `{v}`"
                    ))
                }),
            },
        }
    }

    /// Micro-batch sizes for a batch of `n` samples on `threads` threads (one entry: the
    /// whole batch, not split).
    pub fn sizes(self, n: usize, threads: usize) -> Vec<usize> {
        let tasks = match self {
            SplitMode::Off => 1,
            SplitMode::MicroBatch(k) => n.div_ceil(k.max(1)),
            SplitMode::Auto if threads < 2 || n < 2 * MIN_MICRO => 1,
            SplitMode::Auto => {
                let t = threads.min(n / MIN_MICRO);
                t * n.div_ceil(t * MAX_MICRO)
            }
        }
        .clamp(1, n.max(1));
        if let SplitMode::MicroBatch(k) = self {
            let k = k.max(1);
            return (0..tasks).map(|i| k.min(n - i * k)).collect();
        }
        (0..tasks)
            .map(|i| n / tasks + usize::from(i < n % tasks))
            .collect()
    }
}

/// The separable step's micro-batch plans and how to combine their outputs.
pub(crate) struct Splitter {
    /// The captured graph with the normalizer appended to its outputs (when it has one).
    graph: Graph,
    combine: Vec<Combine>,
    normalized: bool,
    /// Per task: plans by input shape, most recent last.
    plans: Vec<Mutex<Vec<Plan>>>,
}

impl Splitter {
    /// # Errors
    /// The graph is not sample-separable (the message says why).
    pub fn new(graph: &Graph) -> Result<Self> {
        let s = sample_separable(graph)?;
        let mut graph = graph.clone();
        if let Some(d) = s.normalizer {
            graph.outputs.push(d);
        }
        Ok(Splitter {
            graph,
            combine: s.combine,
            normalized: s.normalizer.is_some(),
            plans: Vec::new(),
        })
    }

    /// Compiles the plans for micro-batches of `sizes` samples now (in parallel) rather than
    /// at the first step that needs them.
    ///
    /// # Errors
    /// As [`compile_for_batch`].
    pub fn prepare(&mut self, sizes: &[usize]) -> Result<()> {
        while self.plans.len() < sizes.len() {
            self.plans.push(Mutex::new(Vec::new()));
        }
        let (graph, plans) = (&self.graph, &self.plans);
        let done: Vec<Result<()>> = mlfw_core::parallel::map(sizes.len(), |k| {
            let mut cache = plans[k].lock().unwrap_or_else(PoisonError::into_inner);
            let have = cache
                .iter()
                .any(|p| p.input_shapes().first().and_then(|s| s.first()) == Some(&sizes[k]));
            if !have {
                cache.push(compile_for_batch(graph, sizes[k])?);
                if cache.len() > PLANS_PER_TASK {
                    cache.remove(0);
                }
            }
            Ok(())
        });
        done.into_iter().collect()
    }

    /// Runs the graph as micro-batches of `sizes` samples (over dim 0 of every input), in
    /// parallel, and combines the outputs. `None` when a micro-batch's normalizer is zero
    /// (all its targets ignored): the caller then runs the whole batch.
    ///
    /// # Errors
    /// As [`Plan::run`].
    pub fn run(&mut self, inputs: &[Tensor], sizes: &[usize]) -> Result<Option<Vec<Tensor>>> {
        while self.plans.len() < sizes.len() {
            self.plans.push(Mutex::new(Vec::new()));
        }
        let mut parts = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for &len in sizes {
            parts.push(
                inputs
                    .iter()
                    .map(|x| x.narrow(0, start, len))
                    .collect::<Result<Vec<_>>>()?,
            );
            start += len;
        }
        let (graph, plans) = (&self.graph, &self.plans);
        let outs: Vec<Result<Vec<Tensor>>> = mlfw_core::parallel::map(sizes.len(), |k| {
            let mut cache = plans[k].lock().unwrap_or_else(PoisonError::into_inner);
            let dims: Vec<&[usize]> = parts[k].iter().map(|x| x.dims()).collect();
            let at = cache.iter().position(|p| {
                p.input_shapes()
                    .iter()
                    .map(|s| s.as_slice())
                    .eq(dims.iter().copied())
            });
            let mut plan = match at {
                Some(i) => cache.remove(i),
                None => compile_for_batch(graph, sizes[k])?,
            };
            let r = plan.run(&parts[k]);
            cache.push(plan);
            if cache.len() > PLANS_PER_TASK {
                cache.remove(0);
            }
            r
        });
        let outs: Vec<Vec<Tensor>> = outs.into_iter().collect::<Result<_>>()?;
        let weights: Vec<f64> = if self.normalized {
            let dk: Vec<f64> = outs
                .iter()
                .map(|o| o.last().map_or(Ok(f64::NAN), |d| d.item_f64()))
                .collect::<Result<_>>()?;
            let d: f64 = dk.iter().sum();
            if dk.iter().any(|v| *v == 0.0 || !v.is_finite()) || d == 0.0 || !d.is_finite() {
                return Ok(None);
            }
            dk.iter().map(|v| v / d).collect()
        } else {
            vec![1.0; outs.len()]
        };
        let ones = vec![1.0; outs.len()];
        // Outputs combined in parallel (each on one thread).
        let (outs, combine) = (&outs, &self.combine);
        mlfw_core::parallel::map(combine.len(), |j| {
            let each: Vec<Tensor> = outs.iter().map(|o| o[j].clone()).collect();
            match combine[j] {
                Combine::Same => Ok(each[0].clone()),
                Combine::Concat => Tensor::cat(&each, 0),
                Combine::Sum => weighted_sum(&each, &ones),
                Combine::NormalizedSum => weighted_sum(&each, &weights),
            }
        })
        .into_iter()
        .collect::<Result<_>>()
        .map(Some)
    }
}

/// `Σ_k w_k·t_k`, accumulated in f64 and rounded once to the tensors' dtype.
fn weighted_sum(ts: &[Tensor], w: &[f64]) -> Result<Tensor> {
    let first = &ts[0];
    if first.dtype() == DType::F32 {
        let mut acc = vec![0f64; first.elem_count()];
        for (t, &wk) in ts.iter().zip(w) {
            for (a, v) in acc.iter_mut().zip(t.to_vec::<f32>()?) {
                *a += wk * v as f64;
            }
        }
        let v: Vec<f32> = acc.into_iter().map(|a| a as f32).collect();
        return Tensor::from_vec(v, first.dims(), &first.device());
    }
    let mut acc = first.to_dtype(DType::F64)?.mul_scalar(w[0])?;
    for (t, &wk) in ts.iter().zip(w).skip(1) {
        acc = acc.add(&t.to_dtype(DType::F64)?.mul_scalar(wk)?)?;
    }
    acc.to_dtype(first.dtype())
}

#[cfg(test)]
mod tests {
    use super::SplitMode;

    #[test]
    fn micro_batch_sizes() {
        let auto = |n, t| SplitMode::Auto.sizes(n, t);
        assert_eq!(auto(64, 2), vec![32, 32]);
        assert_eq!(auto(256, 2), vec![128, 128]);
        assert_eq!(auto(512, 2), vec![128; 4]);
        assert_eq!(auto(65, 2), vec![33, 32]);
        assert_eq!(auto(16, 2), vec![8, 8]);
        assert_eq!(auto(15, 2), vec![15]);
        assert_eq!(auto(64, 1), vec![64]);
        assert_eq!(auto(24, 4), vec![8, 8, 8]);
        assert_eq!(SplitMode::Off.sizes(64, 2), vec![64]);
        assert_eq!(SplitMode::MicroBatch(24).sizes(64, 2), vec![24, 24, 16]);
        assert_eq!(SplitMode::MicroBatch(100).sizes(64, 2), vec![64]);
        assert_eq!(SplitMode::MicroBatch(0).sizes(3, 2), vec![1, 1, 1]);
    }
}
