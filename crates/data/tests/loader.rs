//! DataLoader: batching, drop_last, seeded per-epoch shuffling, workers, seeded transforms.

use std::sync::Arc;

use mlfw_core::{Device, Tensor};
use mlfw_data::{
    Batch, DataLoader, Dataset, Error, FakeData, ImageFormat, MnistMini, Result, Rng, Sample,
};

fn indices(loader: &DataLoader, epoch: u64) -> Vec<Vec<usize>> {
    loader
        .iter_epoch(epoch)
        .map(|b| b.unwrap().indices)
        .collect()
}

#[test]
fn batches_shapes_and_drop_last() {
    let ds = FakeData::mnist_like(10, 0);
    let loader = DataLoader::new(ds.clone()).batch_size(4);
    assert_eq!(loader.len(), 3);
    let batches: Vec<Batch> = loader.iter_epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].images.dims(), &[4, 1, 28, 28]);
    assert_eq!(batches[0].labels.dims(), &[4]);
    assert_eq!(batches[2].images.dims(), &[2, 1, 28, 28]);
    assert_eq!(batches[0].indices, vec![0, 1, 2, 3]);
    // Batch contents equal the samples' own tensors and labels.
    let s = ds.get(5).unwrap();
    let b = &batches[1];
    let imgs = b.images.to_vec::<f32>().unwrap();
    assert_eq!(
        &imgs[784..2 * 784],
        s.image.to_vec::<f32>().unwrap().as_slice()
    );
    assert_eq!(b.labels.to_vec::<i64>().unwrap()[1], s.label);

    let loader = DataLoader::new(ds).batch_size(4).drop_last(true);
    assert_eq!(loader.len(), 2);
    assert_eq!(loader.iter_epoch(0).count(), 2);
}

#[test]
fn shuffle_is_reproducible_per_epoch_and_covers_everything() {
    let loader = DataLoader::new(FakeData::mnist_like(50, 0))
        .batch_size(8)
        .shuffle(7);
    let e0 = indices(&loader, 0);
    assert_eq!(e0, indices(&loader, 0));
    assert_ne!(e0, indices(&loader, 1));
    let mut all: Vec<usize> = e0.concat();
    assert_ne!(all, (0..50).collect::<Vec<_>>());
    all.sort_unstable();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
    let other = DataLoader::new(FakeData::mnist_like(50, 0))
        .batch_size(8)
        .shuffle(8);
    assert_ne!(e0, indices(&other, 0));
}

#[test]
fn iter_advances_the_epoch_and_set_epoch_resumes() {
    let loader = DataLoader::new(FakeData::mnist_like(20, 0))
        .batch_size(5)
        .shuffle(3);
    let first: Vec<Vec<usize>> = loader.iter().map(|b| b.unwrap().indices).collect();
    let second: Vec<Vec<usize>> = (&loader).into_iter().map(|b| b.unwrap().indices).collect();
    assert_eq!(loader.epoch(), 2);
    assert_eq!(first, indices(&loader, 0));
    assert_eq!(second, indices(&loader, 1));
    loader.set_epoch(1);
    let resumed: Vec<Vec<usize>> = loader.iter().map(|b| b.unwrap().indices).collect();
    assert_eq!(resumed, second);
}

/// Adds a random offset to every pixel, drawn from the per-sample generator.
fn jitter(img: Tensor, rng: &mut Rng) -> Result<Tensor> {
    let shift = rng.next_f32();
    let dims = img.dims().to_vec();
    let v: Vec<f32> = img
        .to_vec::<f32>()?
        .into_iter()
        .map(|p| p + shift)
        .collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

#[test]
fn workers_give_identical_batches_including_augmentation() {
    let ds = FakeData::mnist_like(37, 1).with_transform(jitter);
    let run = |workers: usize| -> Vec<(Vec<usize>, Vec<f32>, Vec<i64>)> {
        let loader = DataLoader::new(ds.clone())
            .batch_size(6)
            .shuffle(11)
            .num_workers(workers)
            .prefetch(1);
        loader
            .iter_epoch(3)
            .map(|b| {
                let b = b.unwrap();
                (
                    b.indices.clone(),
                    b.images.to_vec().unwrap(),
                    b.labels.to_vec().unwrap(),
                )
            })
            .collect()
    };
    let inline = run(0);
    assert_eq!(inline.len(), 7);
    assert_eq!(run(1), inline);
    assert_eq!(run(3), inline);
    // The transform really ran, and depends on the epoch.
    let plain = FakeData::mnist_like(37, 1);
    let i = inline[0].0[0];
    let raw = plain.get(i).unwrap().image.to_vec::<f32>().unwrap();
    assert_ne!(raw[0], inline[0].1[0]);
    let loader = DataLoader::new(ds).batch_size(6).shuffle(11);
    let other_epoch: Vec<f32> = loader
        .iter_epoch(4)
        .flat_map(|b| {
            let b = b.unwrap();
            let pos = b.indices.iter().position(|&j| j == i);
            pos.map(|p| b.images.to_vec::<f32>().unwrap()[p * 784])
        })
        .collect();
    assert_ne!(other_epoch[0], inline[0].1[0]);
}

#[test]
fn u8_format_batches_raw_pixels() {
    let ds = MnistMini::new(false).unwrap().with_format(ImageFormat::U8);
    let loader = DataLoader::new(ds.clone()).batch_size(64).num_workers(2);
    let b = loader.iter_epoch(0).next().unwrap().unwrap();
    assert_eq!(b.images.dtype(), mlfw_core::DType::U8);
    assert_eq!(
        b.images.to_vec::<u8>().unwrap()[..784],
        ds.images().image(0).unwrap()[..]
    );
    assert_eq!(
        loader
            .iter_epoch(0)
            .map(|b| b.unwrap().len())
            .sum::<usize>(),
        1000
    );
}

/// A dataset whose sample 3 fails and whose images differ in shape from index 10 on.
struct Awkward;

impl Dataset for Awkward {
    fn len(&self) -> usize {
        12
    }
    fn get(&self, index: usize) -> Result<Sample> {
        if index == 3 {
            return Err(Error::invalid("sample 3 is broken"));
        }
        let n = if index >= 10 { 5 } else { 4 };
        let image = Tensor::from_vec(vec![index as f32; n], vec![1, 1, n], &Device::Cpu)?;
        Ok(Sample {
            image,
            label: index as i64,
        })
    }
}

#[test]
fn errors_come_out_in_place_and_iteration_goes_on() {
    for workers in [0, 2] {
        let loader = DataLoader::new(Awkward).batch_size(2).num_workers(workers);
        let results: Vec<Result<Batch>> = loader.iter_epoch(0).collect();
        assert_eq!(results.len(), 6);
        let oks: Vec<bool> = results.iter().map(|r| r.is_ok()).collect();
        assert_eq!(
            oks,
            [true, false, true, true, true, true],
            "workers = {workers}"
        );
        assert!(results[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("sample 3 is broken"));
        let b = results[2].as_ref().unwrap();
        assert_eq!(
            b.images.to_vec::<f32>().unwrap(),
            vec![4.0, 4.0, 4.0, 4.0, 5.0, 5.0, 5.0, 5.0]
        );
    }
    let loader = DataLoader::new(Awkward).batch_size(3);
    let msg = loader
        .iter_epoch(0)
        .nth(3)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("sample 9") && msg.contains("sample 10"),
        "{msg}"
    );
}

#[test]
fn zero_batch_size_is_an_error_not_a_panic() {
    let loader = DataLoader::new(FakeData::mnist_like(4, 0)).batch_size(0);
    let r: Vec<Result<Batch>> = loader.iter().collect();
    assert_eq!(r.len(), 1);
    assert!(r[0].is_err());
}

#[test]
fn dropping_mid_epoch_stops_workers() {
    let loader = DataLoader::new(FakeData::mnist_like(10_000, 0))
        .batch_size(16)
        .num_workers(2);
    let mut it = loader.iter();
    assert!(it.next().unwrap().is_ok());
    drop(it); // must return promptly
}

#[test]
fn shared_dataset_through_arc() {
    let ds: Arc<dyn Dataset> = Arc::new(FakeData::mnist_like(9, 2));
    let loader = DataLoader::from_arc(Arc::clone(&ds))
        .batch_size(3)
        .num_workers(1);
    assert_eq!(loader.iter().count(), 3);
    assert_eq!(ds.len(), 9);
}

#[test]
fn fake_data_is_deterministic_and_configurable() {
    let a = FakeData::new(5, [3, 8, 6], 4, 9).unwrap();
    let b = FakeData::new(5, [3, 8, 6], 4, 9).unwrap();
    let (sa, sb) = (a.get(2).unwrap(), b.get(2).unwrap());
    assert_eq!(sa.image.dims(), &[3, 8, 6]);
    assert_eq!(
        sa.image.to_vec::<f32>().unwrap(),
        sb.image.to_vec::<f32>().unwrap()
    );
    assert!((0..4).contains(&sa.label));
    assert!(a.get(5).is_err());
    assert!(FakeData::new(5, [0, 8, 6], 4, 9).is_err());
    assert!(FakeData::new(5, [1, 8, 6], 0, 9).is_err());
    let set = a.to_image_set().unwrap();
    assert_eq!(set.len(), 5);
    assert_eq!(set.label(2), Some(sa.label));
}

/// The same epoch, delivered on `device` by 2 workers, equals the CPU's batches.
fn delivers_on(device: Device) {
    let cpu = DataLoader::new(FakeData::mnist_like(10, 0))
        .batch_size(4)
        .shuffle(5)
        .num_workers(2);
    let dev = DataLoader::new(FakeData::mnist_like(10, 0))
        .batch_size(4)
        .shuffle(5)
        .num_workers(2)
        .to_device(device);
    assert_eq!(dev.device(), device);
    let mut n = 0;
    for (a, b) in cpu.iter_epoch(1).zip(dev.iter_epoch(1)) {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(b.images.device(), device);
        assert_eq!(b.labels.device(), device);
        assert_eq!(a.indices, b.indices);
        let host = |t: &Tensor| t.to(&Device::Cpu).unwrap();
        assert_eq!(
            a.images.to_vec::<f32>().unwrap(),
            host(&b.images).to_vec::<f32>().unwrap()
        );
        assert_eq!(
            a.labels.to_vec::<i64>().unwrap(),
            host(&b.labels).to_vec::<i64>().unwrap()
        );
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn batches_are_delivered_on_the_chosen_device() {
    delivers_on(Device::Cpu);
    match mlfw_cuda::device(0) {
        Ok(d) => delivers_on(d),
        Err(e) => println!("skipping the CUDA half: CUDA not available ({e})"),
    }
}

#[test]
fn an_unavailable_device_is_an_error_per_batch_not_a_panic() {
    if mlfw_cuda::device(7).is_ok() {
        println!("skipping: a CUDA device 7 exists here");
        return;
    }
    let loader = DataLoader::new(FakeData::mnist_like(5, 0))
        .batch_size(2)
        .to_device(Device::Cuda(7));
    let results: Vec<_> = loader.iter_epoch(0).collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.is_err()));
}
