//! A folder of images as a dataset, the way torchvision users write it: `ImageFolder` over
//! `root/<class>/<file>.png` with a seeded augmentation pipeline (crop, flip, normalize) that
//! runs in `DataLoader` workers. The example writes a tiny two-class folder first (red and
//! blue squares), so it needs nothing on disk.
//!
//! `cargo run -p mlfw-vision --example image_folder [-- ROOT]`

use mlfw_data::{DataLoader, Dataset};
use mlfw_vision::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToTensor};
use mlfw_vision::ImageFolder;

fn main() -> mlfw_core::Result<()> {
    let root = match std::env::args().nth(1) {
        Some(r) => r.into(),
        None => write_demo_folder()?,
    };
    let augment = Compose::new()
        .then(RandomCrop::new(24, 24).padding(2))
        .then(RandomHorizontalFlip::new(0.5))
        .then(ToTensor)
        .then(Normalize::new(vec![0.5; 3], vec![0.25; 3])?);
    let ds = ImageFolder::builder(&root).transform(augment).build()?;
    println!(
        "{}: {} images, classes {:?}",
        root.display(),
        ds.len(),
        ds.classes()
    );
    let loader = DataLoader::new(ds).batch_size(4).shuffle(0).num_workers(2);
    for batch in loader.iter_epoch(0) {
        let b = batch?;
        println!(
            "batch images {:?} (mean {:.3}), labels {:?}",
            b.images.dims(),
            b.images.mean(&[], false)?.item_f64()?,
            b.labels.to_vec::<i64>()?
        );
    }
    Ok(())
}

/// Writes `<tmp>/mlfw-image-folder-<pid>/{blue,red}/<i>.png` (32×32) and returns the root.
fn write_demo_folder() -> mlfw_core::Result<std::path::PathBuf> {
    let root = std::env::temp_dir().join(format!("mlfw-image-folder-{}", std::process::id()));
    for (class, rgb) in [("red", [200u8, 30, 30]), ("blue", [30, 30, 200])] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
        for i in 0..5u8 {
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let shade = ((x + y) as u8).wrapping_mul(i + 1) / 8;
                image::Rgb([rgb[0] ^ shade, rgb[1], rgb[2] ^ shade])
            });
            img.save(dir.join(format!("{i}.png")))
                .map_err(|e| mlfw_core::Error::msg(e.to_string()))?;
        }
    }
    Ok(root)
}
