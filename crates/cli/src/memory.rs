//! How much memory a batch will take, measured rather than guessed: the binary's allocator
//! counts bytes only while a measurement runs (one relaxed load per allocation otherwise), and
//! [`check_model_batch`] runs the model on one image to learn its per-image cost before a
//! batch size is believed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use mlfw_core::{DType, Device, Tensor};
use mlfw_nn::Module;

use crate::error::{CliError, Result};

/// The system allocator, counting live bytes while [`measure_peak`] runs.
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn record(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated besides.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the most bytes it held allocated at once (on the
/// host; memory freed inside `f` that was allocated before it counts against the peak).
pub fn measure_peak<T>(f: impl FnOnce() -> T) -> (T, u64) {
    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (out, PEAK.load(Ordering::SeqCst).max(0) as u64)
}

/// Errors, naming `--batch-size`, unless `batch` images of shape `input` fit through `model`
/// (on the CPU). The model runs on 1 and on 3 images in evaluation mode, keeping the autograd
/// graph when `training` (a training step peaks a little above its forward graph); the
/// difference gives the cost per image, the rest the fixed cost, and both are scaled to the
/// batch. Other devices are not measured (their memory is not the host's). The model's mode
/// and state are left as they were (evaluation mode updates no statistics, draws no numbers).
pub fn check_model_batch(
    model: &mut dyn Module,
    input: [usize; 3],
    batch: usize,
    training: bool,
    device: &Device,
) -> Result<()> {
    if *device != Device::Cpu || batch <= 3 {
        return Ok(());
    }
    let was_training = model.is_training();
    model.train(false);
    let run = |n: usize| -> Result<u64> {
        let x = Tensor::zeros([n, input[0], input[1], input[2]], DType::F32, device)?;
        let (out, peak) = measure_peak(|| {
            let _g = (!training).then(mlfw_autograd::no_grad);
            model.forward(&x).map(|y| y.dims().to_vec())
        });
        out?;
        Ok(peak)
    };
    // A first run allocates the kernels' one-time caches, which would blur the difference.
    let peaks = run(1).and_then(|_| Ok((run(1)?, run(3)?)));
    model.train(was_training);
    let (one, three) = peaks?;
    let per_image = three.saturating_sub(one) / 2;
    let fixed = one.saturating_sub(per_image);
    // Backward frees the graph as it makes gradients: a whole training step's peak per image
    // was within 1% of the forward graph's for LeNet-5 (190 KB) and ResNet-18 CIFAR (19.8 MB);
    // 9/8 leaves some margin.
    let (num, den) = if training { (9u128, 8u128) } else { (1, 1) };
    let need = (per_image as u128 * batch as u128 + fixed as u128) * num / den;
    let what = format!(
        "--batch-size {batch} (about {} per image, measured)",
        mlfw_data::memory::human_bytes((per_image as u128 * num / den) as u64)
    );
    mlfw_data::memory::check_fits(u64::try_from(need).ok(), &what, "lower --batch-size")
        .map_err(|e| CliError::msg(e.to_string()))
}

/// Peak resident set size (VmHWM) in MB, where `/proc` has it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_measured() {
        let (_, peak) = measure_peak(|| {
            let v = vec![1u8; 1 << 20];
            std::hint::black_box(&v);
        });
        // Unit tests are built from main.rs too, so the counting allocator is installed.
        assert!(peak >= 1 << 20, "{peak}");
    }
}
