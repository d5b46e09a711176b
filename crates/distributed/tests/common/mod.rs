//! The training run both sides of the exactness check perform.
#![allow(dead_code)]

use mlfw_core::{Device, Result, Tensor};
use mlfw_data::{DataLoader, MnistMini};
use mlfw_distributed::{DistributedDataParallel, ProcessGroup};
use mlfw_nn::functional as F;
use mlfw_optim::{Optimizer, Sgd, SgdConfig};
use mlfw_vision::registry::{build_model, ModelConfig};
use std::sync::Arc;

/// LeNet-5 from seed 0, `steps` SGD steps (lr 0.05, momentum 0.9) on mnist-mini batches of
/// `batch` per rank (this rank's shard of each epoch); returns the final state dict.
pub fn train(
    pg: Arc<dyn ProcessGroup>,
    batch: usize,
    steps: usize,
) -> Result<Vec<(String, Tensor)>> {
    mlfw_core::manual_seed(0);
    let (model, _) = build_model("lenet5", &ModelConfig::new(10))?;
    let ddp = DistributedDataParallel::new(model.parameters(), pg.clone(), 25.0)?;
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.05).momentum(0.9))?;
    let data = MnistMini::new(true).map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
    let loader = DataLoader::new(data)
        .batch_size(batch)
        .shuffle(0)
        .drop_last(true)
        .shard(pg.rank(), pg.world_size())
        .map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
    let mut done = 0;
    'outer: for epoch in 0.. {
        for b in loader.iter_epoch(epoch) {
            let b = b.map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
            let x = b.images.affine(1.0 / 0.3081, -0.1307 / 0.3081)?;
            opt.zero_grad();
            let loss = F::cross_entropy(&model.forward(&x)?, &b.labels.to(&Device::Cpu)?)?;
            mlfw_autograd::backward(&loss, None, false)?;
            ddp.finish()?;
            opt.step()?;
            done += 1;
            if done == steps {
                break 'outer;
            }
        }
    }
    Ok(model.state_dict())
}
