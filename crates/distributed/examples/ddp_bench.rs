//! Data-parallel training throughput and the time spent waiting for gradient all-reduces.
//!
//! ```text
//! MLFW_NUM_THREADS=2 cargo run --release -p mlfw-distributed --features mpi --example ddp_bench -- lenet5 64
//! MLFW_NUM_THREADS=1 mpirun -np 2 target/release/examples/ddp_bench lenet5 32
//! ```
//! Arguments: model (a zoo name), batch per rank, steps (default 30). Random inputs; SGD with
//! momentum. Rank 0 prints images/s over all ranks and the median time `finish()` waited.

use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_distributed::{init_from_env, DistributedDataParallel};
use mlfw_nn::functional as F;
use mlfw_optim::{Optimizer, Sgd, SgdConfig};
use mlfw_vision::registry::{build_model, model_info, ModelConfig};
use std::time::Instant;

fn main() -> Result<()> {
    mlfw_core::cpu::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("lenet5", String::as_str);
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    let pg = init_from_env()?;
    let cfg = ModelConfig::new(10);
    let info = model_info(name, &cfg)?;
    let [c, h, w] = info.input_shape;
    let (h, w) = if info.any_size { (32, 32) } else { (h, w) };
    mlfw_core::manual_seed(pg.rank() as u64);
    let (model, _) = build_model(name, &cfg)?;
    let ddp = DistributedDataParallel::new(model.parameters(), pg.clone(), 25.0)?;
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.01).momentum(0.9))?;
    let x = Tensor::randn(0.0, 1.0, [batch, c, h, w], DType::F32, &Device::Cpu)?;
    let y = Tensor::randint(0, 10, [batch], &Device::Cpu)?;
    let (mut step_s, mut wait_s) = (Vec::new(), Vec::new());
    for i in 0..steps + 3 {
        let t = Instant::now();
        opt.zero_grad();
        let loss = F::cross_entropy(&model.forward(&x)?, &y)?;
        mlfw_autograd::backward(&loss, None, false)?;
        let t1 = Instant::now();
        ddp.finish()?;
        let waited = t1.elapsed().as_secs_f64();
        opt.step()?;
        if i >= 3 {
            step_s.push(t.elapsed().as_secs_f64());
            wait_s.push(waited);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (s, wt) = (med(&mut step_s), med(&mut wait_s));
    let world = pg.world_size();
    let slowest = pg.all_gather_f64(s)?.into_iter().fold(0.0, f64::max);
    if pg.rank() == 0 {
        println!(
            "{name} batch {batch}/rank x {world} ranks ({} threads each): {:.1} img/s, step {:.2} ms, all-reduce wait {:.2} ms ({} params, {} buckets)",
            mlfw_core::parallel::num_threads(),
            (batch * world) as f64 / slowest,
            slowest * 1e3,
            wt * 1e3,
            model.num_parameters(),
            ddp.num_buckets()
        );
    }
    Ok(())
}
