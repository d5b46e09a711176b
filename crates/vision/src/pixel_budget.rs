//! The pixel budget: the most pixels an image file may declare before it is decoded, like
//! Pillow's `Image.MAX_IMAGE_PIXELS`. A 300-byte JPEG can claim 23000 x 23000 pixels; decoding
//! it would take gigabytes, so its header is checked first.
//!
//! The default is [`DEFAULT_MAX_IMAGE_PIXELS`] (Pillow's value); set the environment variable
//! [`MAX_IMAGE_PIXELS_ENV`] to a larger count to read larger images, or to `0` for no limit.

use mlfw_core::{Error, Result};

/// Default pixel budget: Pillow's `MAX_IMAGE_PIXELS` (about 0.25 GB of 24-bit pixels).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The environment variable that sets the pixel budget (`0`: no limit).
pub const MAX_IMAGE_PIXELS_ENV: &str = "MLFW_MAX_IMAGE_PIXELS";

/// The pixel budget in force: [`MAX_IMAGE_PIXELS_ENV`] if set, else the default; `None` when
/// the variable is `0` (no limit).
///
/// # Errors
/// The variable is set but is not a whole number.
pub fn max_image_pixels() -> Result<Option<u64>> {
    match std::env::var(MAX_IMAGE_PIXELS_ENV) {
        Err(_) => Ok(Some(DEFAULT_MAX_IMAGE_PIXELS)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(Error::msg(format!(
                "{MAX_IMAGE_PIXELS_ENV}={v:?} is not a whole number of pixels (0: no limit)"
            ))),
        },
    }
}

///
/// Errors: [`Error::File`] naming `origin`, the declared size, the budget and how to raise it.
///
/// # Errors
/// Errors unless a `width` x `height` image fits in `budget` pixels (`None`: no limit).
pub fn check_pixels(origin: &str, width: u32, height: u32, budget: Option<u64>) -> Result<()> {
    let pixels = width as u64 * height as u64;
    match budget {
        Some(max) if pixels > max => Err(Error::File {
            path: origin.to_string(),
            msg: format!(
                "image declares {width}x{height} = {pixels} pixels, more than the limit of \
                 {max}; if the file is trusted, raise the limit with \
                 {MAX_IMAGE_PIXELS_ENV}={pixels} (0: no limit)"
            ),
        }),
        _ => Ok(()),
    }
}

/// Decoder limits for an image of at most `budget` pixels: room for 4 channels of 16 bits
/// per pixel, plus the decoder's own working memory.
pub fn decoder_limits(budget: Option<u64>) -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = budget.map(|p| p.saturating_mul(8).saturating_add(64 << 20));
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_and_names_the_variable() {
        check_pixels("a.png", 100, 100, Some(10_000)).unwrap();
        check_pixels("a.png", 100_000, 100_000, None).unwrap();
        let e = check_pixels("big.jpg", 23000, 23000, Some(DEFAULT_MAX_IMAGE_PIXELS))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("big.jpg") && e.contains("23000x23000") && e.contains(MAX_IMAGE_PIXELS_ENV),
            "{e}"
        );
    }
}
