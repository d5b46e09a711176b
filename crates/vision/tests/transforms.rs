//! Transforms on images and tensors: values, shapes, seeding, errors.

use image::{DynamicImage, Rgb, RgbImage};
use mlfw_core::{DType, Device, Tensor};
use mlfw_vision::transforms::*;

fn ramp_rgb(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 10) as u8, (y * 10) as u8, 200])
    }))
}

fn t3(v: Vec<f32>, c: usize, h: usize, w: usize) -> Tensor {
    Tensor::from_vec(v, [c, h, w], &Device::Cpu).unwrap()
}

#[test]
fn to_tensor_is_chw_in_unit_range() -> mlfw_core::Result<()> {
    let x = ToTensor
        .apply_seeded(Img::Image(ramp_rgb(4, 3)), 0)?
        .into_tensor()?;
    assert_eq!(x.dims(), &[3, 3, 4]);
    assert_eq!(x.dtype(), DType::F32);
    let v = x.to_vec::<f32>()?;
    assert!((v[1] - 10.0 / 255.0).abs() < 1e-7); // R at (x=1, y=0)
    assert!((v[12 + 4] - 10.0 / 255.0).abs() < 1e-7); // G at (x=0, y=1)
    assert!((v[24] - 200.0 / 255.0).abs() < 1e-7); // B
                                                   // u8 tensors too.
    let u = Tensor::from_vec(vec![0u8, 255], [1, 1, 2], &Device::Cpu)?;
    assert_eq!(
        ToTensor
            .apply_seeded(Img::Tensor(u), 0)?
            .into_tensor()?
            .to_vec::<f32>()?,
        vec![0.0, 1.0]
    );
    Ok(())
}

#[test]
fn normalize_per_channel_and_errors() -> mlfw_core::Result<()> {
    let n = Normalize::new(vec![0.5, 0.0], vec![0.5, 2.0])?;
    let x = t3(vec![1.0, 0.0, 4.0, 2.0], 2, 1, 2);
    let y = n.apply_seeded(Img::Tensor(x), 0)?.into_tensor()?;
    assert_eq!(y.to_vec::<f32>()?, vec![1.0, -1.0, 2.0, 1.0]);
    assert!(Normalize::new(vec![0.5], vec![0.0]).is_err());
    assert!(Normalize::new(vec![0.5, 0.5], vec![1.0]).is_err());
    let three = t3(vec![0.0; 3], 3, 1, 1);
    let e = n
        .apply_seeded(Img::Tensor(three), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 channels"), "{e}");
    assert!(n.apply_seeded(Img::Image(ramp_rgb(2, 2)), 0).is_err());
    Ok(())
}

#[test]
fn resize_matches_torchvision_bilinear() -> mlfw_core::Result<()> {
    // torch: F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=False) of [0, 1] row
    // along width: [0, 0.25, 0.75, 1].
    let x = t3(vec![0.0, 1.0], 1, 1, 2);
    let y = Resize::exact(1, 4)
        .apply_seeded(Img::Tensor(x), 0)?
        .into_tensor()?;
    assert_eq!(y.to_vec::<f32>()?, vec![0.0, 0.25, 0.75, 1.0]);
    // Antialiased 4 -> 2 (torch antialias=True): weights [3/7, 3/7, 1/7] per output.
    let x = t3(vec![0.0, 1.0, 2.0, 3.0], 1, 1, 4);
    let y = Resize::exact(1, 2)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?
        .to_vec::<f32>()?;
    assert!(
        (y[0] - 5.0 / 7.0).abs() < 1e-6 && (y[1] - 16.0 / 7.0).abs() < 1e-6,
        "{y:?}"
    );
    let y = Resize::exact(1, 2)
        .antialias(false)
        .apply_seeded(Img::Tensor(x), 0)?
        .into_tensor()?;
    assert_eq!(y.to_vec::<f32>()?, vec![0.5, 2.5]);
    // Shorter side, aspect kept; images stay images.
    let img = Resize::new(10)
        .apply_seeded(Img::Image(ramp_rgb(40, 20)), 0)?
        .into_image()?;
    assert_eq!((img.width(), img.height()), (20, 10));
    Ok(())
}

#[test]
fn crops_and_padding() -> mlfw_core::Result<()> {
    let x = t3((0..25).map(|v| v as f32).collect(), 1, 5, 5);
    let c = CenterCrop::new(3, 3)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert_eq!(
        c.to_vec::<f32>()?,
        vec![6., 7., 8., 11., 12., 13., 16., 17., 18.]
    );
    // Larger than the image: zero-padded around it.
    let c = CenterCrop::new(7, 7)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert_eq!(c.dims(), &[1, 7, 7]);
    assert_eq!(c.to_vec::<f32>()?[8], 0.0);
    let r = RandomCrop::new(5, 5).padding(2);
    let a = r
        .apply_seeded(Img::Tensor(x.clone()), 3)?
        .into_tensor()?
        .to_vec::<f32>()?;
    let b = r
        .apply_seeded(Img::Tensor(x.clone()), 3)?
        .into_tensor()?
        .to_vec::<f32>()?;
    assert_eq!(a, b, "same seed, same crop");
    let outs: std::collections::HashSet<Vec<u32>> = (0..40)
        .map(|s| {
            r.apply_seeded(Img::Tensor(x.clone()), s)
                .unwrap()
                .into_tensor()
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect();
    assert!(outs.len() > 5, "crops vary with the seed");
    let e = RandomCrop::new(6, 6)
        .apply_seeded(Img::Tensor(x.clone()), 0)
        .unwrap_err();
    assert!(e.to_string().contains("pad_if_needed"));
    let p = RandomCrop::new(6, 6)
        .pad_if_needed(true)
        .apply_seeded(Img::Tensor(x), 0)?;
    assert_eq!(p.into_tensor()?.dims(), &[1, 6, 6]);
    Ok(())
}

#[test]
fn flips_and_batches() -> mlfw_core::Result<()> {
    let x = Tensor::from_vec(
        (0..8).map(|v| v as f32).collect::<Vec<_>>(),
        [2, 1, 2, 2],
        &Device::Cpu,
    )?;
    let f = RandomHorizontalFlip::new(1.0)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert_eq!(f.to_vec::<f32>()?, vec![1., 0., 3., 2., 5., 4., 7., 6.]);
    let v = RandomVerticalFlip::new(1.0)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert_eq!(v.to_vec::<f32>()?, vec![2., 3., 0., 1., 6., 7., 4., 5.]);
    let n = RandomHorizontalFlip::new(0.0)
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert_eq!(n.to_vec::<f32>()?, x.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn rotation_and_affine() -> mlfw_core::Result<()> {
    // 90° counter-clockwise of a 3x3: top row becomes left column read bottom-up.
    let x = t3((0..9).map(|v| v as f32).collect(), 1, 3, 3);
    let r = RandomRotation::rotate(Img::Tensor(x.clone()), 90.0, Interpolation::Nearest, -1.0)?;
    assert_eq!(
        r.into_tensor()?.to_vec::<f32>()?,
        vec![2., 5., 8., 1., 4., 7., 0., 3., 6.]
    );
    // Zero range is the identity; fill shows up for a 45° turn of the corners.
    let id = RandomRotation::new(0.0)?
        .apply_seeded(Img::Tensor(x.clone()), 1)?
        .into_tensor()?;
    assert_eq!(id.to_vec::<f32>()?, x.to_vec::<f32>()?);
    let t = t3(vec![1.0; 16], 1, 4, 4);
    let r = RandomRotation::rotate(Img::Tensor(t), 45.0, Interpolation::Nearest, 9.0)?;
    assert!(r.into_tensor()?.to_vec::<f32>()?.contains(&9.0));
    let a = RandomAffine::new(10.0)?
        .translate(0.1, 0.1)?
        .scale(0.9, 1.1)?
        .shear(-5.0, 5.0)?
        .fill(0.5);
    let img = a.apply_seeded(Img::Image(ramp_rgb(16, 16)), 4)?;
    assert!(matches!(img, Img::Image(_)));
    let y1 = a
        .apply_seeded(Img::Tensor(x.clone()), 4)?
        .into_tensor()?
        .to_vec::<f32>()?;
    let y2 = a
        .apply_seeded(Img::Tensor(x), 4)?
        .into_tensor()?
        .to_vec::<f32>()?;
    assert_eq!(y1, y2);
    assert!(RandomAffine::new(-1.0).is_err());
    Ok(())
}

#[test]
fn grayscale_weights_and_channels() -> mlfw_core::Result<()> {
    let x = t3(vec![1.0, 0.0, 0.0], 3, 1, 1);
    let g = Grayscale::new(1)?
        .apply_seeded(Img::Tensor(x.clone()), 0)?
        .into_tensor()?;
    assert!((g.to_vec::<f32>()?[0] - 0.299).abs() < 1e-6);
    let g3 = Grayscale::new(3)?
        .apply_seeded(Img::Tensor(x), 0)?
        .into_tensor()?;
    assert_eq!(g3.dims(), &[3, 1, 1]);
    let img = Grayscale::default()
        .apply_seeded(Img::Image(ramp_rgb(3, 3)), 0)?
        .into_image()?;
    assert_eq!(img.color(), image::ColorType::L8);
    assert!(Grayscale::new(2).is_err());
    Ok(())
}

#[test]
fn compose_is_reproducible_and_feeds_the_data_ring() -> mlfw_core::Result<()> {
    let t = Compose::new()
        .then(RandomCrop::new(24, 24).padding(2))
        .then(RandomHorizontalFlip::new(0.5))
        .then(RandomRotation::new(10.0)?)
        .then(ToTensor)
        .then(Normalize::new(vec![0.5; 3], vec![0.5; 3])?);
    let a = t
        .apply_seeded(Img::Image(ramp_rgb(28, 28)), 11)?
        .into_tensor()?;
    let b = t
        .apply_seeded(Img::Image(ramp_rgb(28, 28)), 11)?
        .into_tensor()?;
    assert_eq!(a.dims(), &[3, 24, 24]);
    assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    // As a data-ring transform on an MNIST-like dataset, through the loader.
    let ds = mlfw_data::FakeData::mnist_like(8, 1).with_transform(
        Compose::new()
            .then(RandomCrop::new(28, 28).padding(2))
            .then(Normalize::new(vec![0.1307], vec![0.3081])?),
    );
    let loader = mlfw_data::DataLoader::new(ds)
        .batch_size(4)
        .shuffle(3)
        .num_workers(2);
    let batches: Vec<_> = loader
        .iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(mlfw_core::Error::from)?;
    assert_eq!(batches[0].images.dims(), &[4, 1, 28, 28]);
    let again: Vec<_> = loader
        .iter_epoch(0)
        .collect::<Result<Vec<_>, _>>()
        .map_err(mlfw_core::Error::from)?;
    assert_eq!(
        batches[1].images.to_vec::<f32>()?,
        again[1].images.to_vec::<f32>()?
    );
    Ok(())
}
