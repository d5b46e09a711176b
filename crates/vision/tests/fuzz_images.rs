//! Bounded mutation fuzzing of image decoding (PNG, JPEG) under a pixel budget: every mutated
//! file ends in an image or a clean error, never a panic or an abort.

#[path = "../../../tests/common/fuzz.rs"]
mod fuzz;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use mlfw_vision::image_folder::{decode_with_budget, ColorMode};

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

#[test]
fn fuzz_png_and_jpeg() {
    let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(16, 12, |x, y| {
        image::Luma([(x * 13 + y * 7) as u8])
    }));
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(9, 9, |x, y| {
        image::Rgb([x as u8 * 20, y as u8 * 20, 100])
    }));
    let dir = tempfile::tempdir().unwrap();
    for (name, format, ext, seed) in [
        ("png", ImageFormat::Png, "png", 6),
        ("jpeg", ImageFormat::Jpeg, "jpg", 7),
    ] {
        let seeds = vec![encoded(&gray, format), encoded(&rgb, format)];
        let path = dir.path().join(format!("fuzz.{ext}"));
        let r = fuzz::fuzz(name, &seeds, 500, seed, |b| {
            std::fs::write(&path, b).unwrap();
            decode_with_budget(&path, ColorMode::Rgb, Some(1 << 20)).map(|_| ())
        });
        assert_eq!(r.panics, 0, "{r:?}");
        assert!(r.clean_errors > 0, "{r:?}");
    }
}
