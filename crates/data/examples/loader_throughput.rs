//! Loader throughput: one epoch of 60,000 MNIST-shaped FakeData images at batch 64.
//!
//! Run: `cargo run --release -p mlfw-data --example loader_throughput [-- WORKERS...]`

use std::time::Instant;

use mlfw_data::{DataLoader, FakeData, ImageDataset};

fn main() -> mlfw_data::Result<()> {
    let workers: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![0, 1, 2]
        } else {
            args
        }
    };
    let fake = FakeData::mnist_like(60_000, 0);
    // FakeData generates pixels on the fly; also measure an in-memory dataset (the MNIST case).
    let info = mlfw_data::dataset_info("fake")?;
    let in_memory = ImageDataset::new(fake.to_image_set()?, info);
    for (name, ds) in [
        (
            "FakeData (generated per sample)",
            Box::new(fake) as Box<dyn mlfw_data::Dataset>,
        ),
        ("in-memory u8 -> f32 (MNIST-like)", Box::new(in_memory)),
    ] {
        let ds: std::sync::Arc<dyn mlfw_data::Dataset> = ds.into();
        for &w in &workers {
            let loader = DataLoader::from_arc(ds.clone())
                .batch_size(64)
                .shuffle(0)
                .num_workers(w);
            let start = Instant::now();
            let mut images = 0usize;
            for batch in loader.iter() {
                images += batch?.len();
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{name:34} workers={w}: {images} images in {secs:.3} s/epoch = {:.0} images/s",
                images as f64 / secs
            );
        }
    }
    Ok(())
}
