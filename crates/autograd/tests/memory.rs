//! Memory stays flat over 1,000 training steps (its own test binary, so no other test
//! allocates concurrently while RSS is measured).

use mlfw_autograd::{no_grad, Backward};
use mlfw_core::{DType, Device, Tensor};

fn rss_kb() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

#[test]
fn thousand_training_steps_do_not_grow_memory() {
    let d = Device::Cpu;
    mlfw_core::manual_seed(0);
    let w1 = Tensor::randn(0.0, 0.1, [32, 64], DType::F32, &d)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let w2 = Tensor::randn(0.0, 0.1, [64, 10], DType::F32, &d)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let x = Tensor::randn(0.0, 1.0, [16, 32], DType::F32, &d).unwrap();
    let mut after_warmup = 0;
    for step in 0..1000 {
        let loss = x
            .matmul(&w1)
            .unwrap()
            .relu()
            .unwrap()
            .matmul(&w2)
            .unwrap()
            .log_softmax(1)
            .unwrap()
            .mean_all()
            .unwrap();
        loss.backward().unwrap();
        {
            let _g = no_grad();
            for w in [&w1, &w2] {
                let g = w.grad().unwrap();
                w.assign(&w.sub(&g.mul_scalar(0.01).unwrap()).unwrap())
                    .unwrap();
                w.zero_grad();
            }
        }
        if step == 100 {
            after_warmup = rss_kb();
        }
    }
    let end = rss_kb();
    assert!(
        end <= after_warmup + 4096,
        "RSS grew from {after_warmup} kB to {end} kB"
    );
}
