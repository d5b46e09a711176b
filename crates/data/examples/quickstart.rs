//! The data ring as a user writes it: pick a dataset, add a transform, iterate batches.
//!
//! Run: `cargo run -p mlfw-data --example quickstart` (works offline: uses mnist-mini).

use mlfw_core::{Device, Tensor};
use mlfw_data::{load_by_name, DataLoader, Dataset, LoadOptions, MnistMini, Rng, Split};

fn main() -> mlfw_data::Result<()> {
    // Every name the registry knows, with its metadata.
    for name in mlfw_data::dataset_names() {
        let info = mlfw_data::dataset_info(name)?;
        println!(
            "{name:14} {} classes, {:?}, mean {:?}",
            info.num_classes,
            info.image_shape(),
            info.mean
        );
    }

    // A transform: normalize with the dataset's statistics, plus a seeded random brightness
    // jitter (the vision ring provides ready-made ones).
    let info = mlfw_data::dataset_info("mnist-mini")?;
    let (mean, std) = (info.mean[0], info.std[0]);
    let normalize = move |img: Tensor, rng: &mut Rng| -> mlfw_data::Result<Tensor> {
        let jitter = 1.0 + 0.1 * (rng.next_f32() - 0.5);
        let dims = img.dims().to_vec();
        let v: Vec<f32> = img
            .to_vec::<f32>()?
            .into_iter()
            .map(|p| (p * jitter - mean) / std)
            .collect();
        Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
    };
    let train = MnistMini::new(true)?.with_transform(normalize);
    println!(
        "train: {} samples; sample 0 has label {}",
        train.len(),
        train.get(0)?.label
    );

    // Batches of 64, reshuffled every epoch from seed 42, loaded by 2 worker threads.
    let loader = DataLoader::new(train)
        .batch_size(64)
        .shuffle(42)
        .drop_last(true)
        .num_workers(2);
    for epoch in 0..2 {
        let mut seen = 0;
        for batch in loader.iter_epoch(epoch) {
            let batch = batch?;
            seen += batch.len();
            if seen == 64 {
                println!(
                    "epoch {epoch}: images {:?}, labels {:?}",
                    batch.images.dims(),
                    batch.labels.dims()
                );
            }
        }
        println!("epoch {epoch}: {seen} samples in {} batches", loader.len());
    }

    // By name, as the command line does; real MNIST is downloaded into $MLFW_HOME/datasets
    // when missing, or read from a folder given with `data_dir`.
    let test = load_by_name("mnist-mini", Split::Test, &LoadOptions::default())?;
    println!("test: {} samples", test.len());
    match load_by_name(
        "mnist",
        Split::Test,
        &LoadOptions::default().download(false),
    ) {
        Ok(ds) => println!("mnist test: {} samples", ds.len()),
        Err(e) => println!("mnist is not available offline:\n{e}"),
    }
    Ok(())
}
