//! `DistributedDataParallel`: PyTorch's DDP semantics over a [`ProcessGroup`].

use crate::group::ProcessGroup;
use mlfw_autograd::hooks::{register_post_accumulate_grad_hook, HookHandle};
use mlfw_core::{DType, Error, Result, Tensor};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A bucket index and its flattened gradients, for the reducer thread.
type Job = (usize, Vec<f32>);

/// Per-step progress of the buckets, shared by the hooks, the reducer thread and `finish`.
#[derive(Default)]
struct State {
    /// Gradients of each bucket produced so far in this step.
    ready: Vec<usize>,
    /// Whether each bucket has been handed to the reducer.
    launched: Vec<bool>,
    /// Each bucket's summed gradients, once reduced.
    reduced: Vec<Option<Result<Vec<f32>>>>,
}

struct Shared {
    state: Mutex<State>,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One bucket: parameter indices (in reverse registration order) and their element count.
#[derive(Debug, Clone)]
struct Bucket {
    params: Vec<usize>,
    elems: usize,
}

/// Averages gradients over the ranks of a process group after each backward pass, the way
/// PyTorch's `DistributedDataParallel` does:
/// - at construction, every parameter is overwritten with rank 0's value (broadcast);
/// - parameters are grouped into buckets of about `bucket_cap_mb` MB in reverse order (the
///   order backward produces their gradients);
/// - a post-accumulate-grad hook counts each bucket's gradients; when a bucket is complete it
///   is flattened and handed to a reducer thread, whose all-reduce overlaps the rest of
///   backward;
/// - [`DistributedDataParallel::finish`], called after backward, reduces what is left (a
///   parameter without a gradient counts as zeros), waits, and writes each averaged gradient.
///
/// Parameters must be f32 (any device: gradients travel through host memory). BatchNorm
/// statistics stay local to each rank, as in PyTorch's DDP.
pub struct DistributedDataParallel {
    pg: Arc<dyn ProcessGroup>,
    params: Vec<Tensor>,
    buckets: Arc<Vec<Bucket>>,
    shared: Arc<Shared>,
    jobs: Mutex<Option<Sender<Job>>>,
    reducer: Option<JoinHandle<()>>,
    _hooks: Vec<HookHandle>,
}

impl DistributedDataParallel {
    /// Wraps `params` (a model's parameters, in registration order) for data-parallel
    /// training on `pg`; broadcasts rank 0's values to every rank.
    ///
    /// # Errors
    /// A parameter that is not f32; `bucket_cap_mb` not positive; the broadcast
    /// failing.
    pub fn new(params: Vec<Tensor>, pg: Arc<dyn ProcessGroup>, bucket_cap_mb: f64) -> Result<Self> {
        if bucket_cap_mb.is_nan() || bucket_cap_mb <= 0.0 {
            return Err(Error::msg(format!(
                "DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}"
            )));
        }
        if let Some(p) = params.iter().find(|p| p.dtype() != DType::F32) {
            return Err(Error::msg(format!(
                "DistributedDataParallel: parameters must be f32, got {} of shape {}",
                p.dtype(),
                p.shape()
            )));
        }
        for p in &params {
            let v = pg.broadcast(p.to_vec::<f32>()?, 0)?;
            let _ng = mlfw_autograd::no_grad();
            p.assign(&Tensor::from_vec(v, p.shape().clone(), &p.device())?)?;
        }
        let buckets = Arc::new(make_buckets(&params, bucket_cap_mb));
        let n = buckets.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: vec![0; n],
                launched: vec![false; n],
                reduced: (0..n).map(|_| None).collect(),
            }),
            done: Condvar::new(),
        });
        let (tx, rx) = channel::<Job>();
        let reducer = {
            let (pg, shared) = (pg.clone(), shared.clone());
            std::thread::Builder::new()
                .name("mlfw-ddp-reducer".into())
                .spawn(move || {
                    while let Ok((b, data)) = rx.recv() {
                        let r = pg.all_reduce_sum(data);
                        shared.lock().reduced[b] = Some(r);
                        shared.done.notify_all();
                    }
                })
                .map_err(|e| Error::msg(format!("DDP: cannot start the reducer thread: {e}")))?
        };
        let mut ddp = DistributedDataParallel {
            pg,
            params,
            buckets,
            shared,
            jobs: Mutex::new(Some(tx)),
            reducer: Some(reducer),
            _hooks: Vec::new(),
        };
        ddp._hooks = ddp.register_hooks()?;
        Ok(ddp)
    }

    /// The process group.
    pub fn process_group(&self) -> &Arc<dyn ProcessGroup> {
        &self.pg
    }

    /// How many buckets the parameters form.
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    fn register_hooks(&self) -> Result<Vec<HookHandle>> {
        let tx = self
            .jobs
            .lock()
            .map_err(|_| Error::msg("DDP: internal lock poisoned"))?
            .clone()
            .ok_or_else(|| Error::msg("DDP: reducer stopped"))?;
        let mut hooks = Vec::with_capacity(self.params.len());
        for (b, bucket) in self.buckets.iter().enumerate() {
            for &i in &bucket.params {
                let (shared, buckets, params) = (
                    self.shared.clone(),
                    self.buckets.clone(),
                    self.params.clone(),
                );
                let tx = Mutex::new(tx.clone());
                hooks.push(register_post_accumulate_grad_hook(
                    &self.params[i],
                    Arc::new(move |_leaf: &Tensor| {
                        let mut st = shared.lock();
                        st.ready[b] += 1;
                        if st.ready[b] == buckets[b].params.len() && !st.launched[b] {
                            st.launched[b] = true;
                            drop(st);
                            let data = flatten(&buckets[b], &params);
                            let sent = match data {
                                Ok(d) => tx.lock().map(|t| t.send((b, d)).is_ok()).unwrap_or(false),
                                Err(e) => {
                                    shared.lock().reduced[b] = Some(Err(e));
                                    true
                                }
                            };
                            if !sent {
                                shared.lock().reduced[b] =
                                    Some(Err(Error::msg("DDP: the reducer thread stopped")));
                            }
                        }
                    }),
                ));
            }
        }
        Ok(hooks)
    }

    /// Call after each backward pass: reduces the buckets the hooks have not launched yet,
    /// waits for every all-reduce, and sets each parameter's gradient to the mean over the
    /// ranks. Every rank must call it once per step.
    ///
    /// # Errors
    /// A collective failing or timing out (naming the rank).
    pub fn finish(&self) -> Result<()> {
        // Buckets not launched by hooks (a parameter without a gradient this step), in order.
        for (b, bucket) in self.buckets.iter().enumerate() {
            let launch = {
                let mut st = self.shared.lock();
                !std::mem::replace(&mut st.launched[b], true)
            };
            if launch {
                let data = flatten(bucket, &self.params)?;
                let jobs = self
                    .jobs
                    .lock()
                    .map_err(|_| Error::msg("DDP: internal lock poisoned"))?;
                jobs.as_ref()
                    .ok_or_else(|| Error::msg("DDP: reducer stopped"))?
                    .send((b, data))
                    .map_err(|_| Error::msg("DDP: the reducer thread stopped"))?;
            }
        }
        let results: Vec<Result<Vec<f32>>> = {
            let mut st = self.shared.lock();
            while st.reduced.iter().any(Option::is_none) {
                st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            let n = st.ready.len();
            st.ready = vec![0; n];
            st.launched = vec![false; n];
            st.reduced
                .iter_mut()
                .map(|r| r.take().expect("checked"))
                .collect()
        };
        let scale = 1.0 / self.pg.world_size() as f32;
        for (bucket, summed) in self.buckets.iter().zip(results) {
            let summed = summed?;
            let mut at = 0;
            for &i in &bucket.params {
                let p = &self.params[i];
                let n = p.elem_count();
                let g: Vec<f32> = summed[at..at + n].iter().map(|v| v * scale).collect();
                at += n;
                p.set_grad(Some(Tensor::from_vec(g, p.shape().clone(), &p.device())?));
            }
        }
        Ok(())
    }
}

impl Drop for DistributedDataParallel {
    fn drop(&mut self) {
        // The hooks hold senders too: remove them first so the reducer's channel closes.
        self._hooks.clear();
        if let Ok(mut j) = self.jobs.lock() {
            j.take();
        }
        if let Some(t) = self.reducer.take() {
            let _ = t.join();
        }
    }
}

/// Buckets of about `cap_mb` MB over the parameters in reverse order.
fn make_buckets(params: &[Tensor], cap_mb: f64) -> Vec<Bucket> {
    let cap = (cap_mb * 1024.0 * 1024.0 / 4.0).max(1.0) as usize;
    let mut out: Vec<Bucket> = Vec::new();
    for i in (0..params.len()).rev() {
        let n = params[i].elem_count();
        match out.last_mut() {
            Some(b) if b.elems + n <= cap || b.params.is_empty() => {
                b.params.push(i);
                b.elems += n;
            }
            _ => out.push(Bucket {
                params: vec![i],
                elems: n,
            }),
        }
    }
    out
}

/// The bucket's gradients, concatenated (zeros for a parameter without one).
fn flatten(bucket: &Bucket, params: &[Tensor]) -> Result<Vec<f32>> {
    let mut v = Vec::with_capacity(bucket.elems);
    for &i in &bucket.params {
        match params[i].grad() {
            Some(g) => v.extend(g.to_dtype(DType::F32)?.to_vec::<f32>()?),
            None => v.resize(v.len() + params[i].elem_count(), 0.0),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_core::Device;

    #[test]
    fn buckets_run_in_reverse_order_up_to_the_cap() {
        let p = |n: usize| Tensor::zeros([n], DType::F32, &Device::Cpu).unwrap();
        // 1 MB = 262144 floats.
        let ps = vec![p(100_000), p(200_000), p(50_000), p(300_000)];
        let b = make_buckets(&ps, 1.0);
        let idx: Vec<Vec<usize>> = b.iter().map(|b| b.params.clone()).collect();
        assert_eq!(idx, vec![vec![3], vec![2, 1], vec![0]]);
        assert_eq!(make_buckets(&ps, 25.0).len(), 1);
    }
}
