//! Your own dataset: implement `Dataset` (`len` and `get`, plus `get_seeded` when samples are
//! random), then batch, shuffle and load it in worker threads with `DataLoader` — every epoch
//! reproducible from the seed, whatever the number of workers.
//!
//! `cargo run -p mlfw-data --example custom_dataset`

use mlfw_core::{Device, Tensor};
use mlfw_data::{DataLoader, Dataset, Error, Result, Rng, Sample};

/// Noisy sine waves: sample `i` is a `[1, 1, 32]` signal of frequency `1 + i % 3` (the label)
/// with a random phase drawn from the sample's seed (an augmentation).
struct Waves {
    len: usize,
}

impl Dataset for Waves {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.get_seeded(index, 0)
    }

    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        if index >= self.len {
            return Err(Error::invalid(format!(
                "Waves: index {index} out of range (len {})",
                self.len
            )));
        }
        let label = (index % 3) as i64;
        let mut rng = Rng::new(seed);
        let phase = rng.next_f32() * std::f32::consts::TAU;
        let f = (label + 1) as f32;
        let x: Vec<f32> = (0..32)
            .map(|t| (f * t as f32 / 32.0 * std::f32::consts::TAU + phase).sin())
            .collect();
        Ok(Sample {
            image: Tensor::from_vec(x, [1, 1, 32], &Device::Cpu)?,
            label,
        })
    }
}

fn main() -> Result<()> {
    let loader = DataLoader::new(Waves { len: 10 })
        .batch_size(4)
        .shuffle(1)
        .num_workers(2);
    for epoch in 0..2 {
        for batch in loader.iter_epoch(epoch) {
            let b = batch?;
            println!(
                "epoch {epoch}: signals {:?}, labels {:?}, samples {:?}",
                b.images.dims(),
                b.labels.to_vec::<i64>()?,
                b.indices
            );
        }
    }
    // Same seed, other worker count: the same batches, bit for bit.
    let serial = DataLoader::new(Waves { len: 10 }).batch_size(4).shuffle(1);
    let a: Vec<Vec<f32>> = serial
        .iter_epoch(1)
        .map(|b| b.and_then(|b| Ok(b.images.to_vec::<f32>()?)))
        .collect::<Result<_>>()?;
    let b: Vec<Vec<f32>> = loader
        .iter_epoch(1)
        .map(|b| b.and_then(|b| Ok(b.images.to_vec::<f32>()?)))
        .collect::<Result<_>>()?;
    println!("0 and 2 workers give identical epochs: {}", a == b);
    Ok(())
}
