//! Image transforms, composable and seeded, in the manner of `torchvision.transforms`.
//!
//! Every transform works on an [`Img`]: an `image::DynamicImage` (8-bit, like a PIL image) or
//! a tensor `[C, H, W]` / `[N, C, H, W]` of any dtype (u8 or float, like torchvision's tensor
//! transforms; one random draw per call, shared by a batch). Geometric transforms return the
//! same kind they were given; [`ToTensor`] turns an image into an f32 `[C, H, W]` tensor in
//! `[0, 1]`; [`Normalize`] needs a float tensor.
//!
//! Randomness comes only from the [`Rng`] passed in, so a per-sample seed makes results
//! reproducible. Each transform (and [`Compose`]) also implements `mlfw_data::Transform`, so it
//! can be handed to a dataset and runs in `DataLoader` workers with the loader's per-sample seed.
//!
//! ```
//! use mlfw_vision::transforms::*;
//! let t = Compose::new()
//!     .then(RandomCrop::new(28, 28).padding(4))
//!     .then(RandomHorizontalFlip::new(0.5))
//!     .then(ToTensor)
//!     .then(Normalize::new(vec![0.5; 3], vec![0.25; 3])?);
//! let img = image::DynamicImage::new_rgb8(32, 32);
//! let x = t.apply_seeded(Img::Image(img), 7)?.into_tensor()?;
//! assert_eq!(x.dims(), &[3, 28, 28]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

mod affine;
mod color;
mod crop;
mod flip;
pub(crate) mod planar;
mod resize;

pub use affine::{Interpolation, RandomAffine, RandomRotation};
pub use color::{Grayscale, Normalize, ToTensor};
pub use crop::{CenterCrop, Pad, RandomCrop};
pub use flip::{RandomHorizontalFlip, RandomVerticalFlip};
pub use resize::{Resize, Size};

pub use mlfw_data::Rng;

use image::DynamicImage;
use mlfw_core::{Result, Tensor};
use planar::Planar;
use std::sync::Arc;

/// What a transform takes and returns: an 8-bit image or a tensor.
#[derive(Debug, Clone)]
pub enum Img {
    /// An 8-bit image (gray, gray+alpha, RGB or RGBA), like a PIL image.
    Image(DynamicImage),
    /// A `[C, H, W]` or `[N, C, H, W]` tensor.
    Tensor(Tensor),
}

impl Img {
    /// The tensor: as is for a tensor, an f32 `[C, H, W]` in `[0, 1]` for an image.
    ///
    /// # Errors
    /// Device errors only (converting an image allocates the tensor).
    pub fn into_tensor(self) -> Result<Tensor> {
        match self {
            Img::Tensor(t) => Ok(t),
            img @ Img::Image(_) => match color::to_tensor(img)? {
                Img::Tensor(t) => Ok(t),
                Img::Image(_) => unreachable!("to_tensor returns a tensor"),
            },
        }
    }

    /// The image: as is for an image; a u8 `[C, H, W]` tensor (C in 1..=4) becomes an image,
    /// a float tensor is read as `[0, 1]` values.
    ///
    /// # Errors
    /// `Error::Msg` for a tensor that is not `[C, H, W]` with 1 to 4 channels.
    pub fn into_image(self) -> Result<DynamicImage> {
        match self {
            Img::Image(i) => Ok(i),
            Img::Tensor(t) => {
                let mut p = Planar::from_tensor(&t, "into_image")?;
                if t.dtype().is_float() {
                    p.data.iter_mut().for_each(|v| *v *= 255.0);
                }
                p.into_image()
            }
        }
    }

    /// `(channels, height, width)`.
    ///
    /// # Errors
    /// `Error::Msg` for a tensor of fewer than 3 dims.
    pub fn chw(&self) -> Result<(usize, usize, usize)> {
        match self {
            Img::Image(i) => Ok((channels_of(i), i.height() as usize, i.width() as usize)),
            Img::Tensor(t) => {
                let d = t.dims();
                if d.len() < 3 {
                    return Err(mlfw_core::Error::msg(format!(
                        "expected an image tensor [C, H, W], got shape {}",
                        t.shape()
                    )));
                }
                let r = d.len();
                Ok((d[r - 3], d[r - 2], d[r - 1]))
            }
        }
    }
}

fn channels_of(i: &DynamicImage) -> usize {
    i.color().channel_count() as usize
}

impl From<DynamicImage> for Img {
    fn from(i: DynamicImage) -> Self {
        Img::Image(i)
    }
}

impl From<Tensor> for Img {
    fn from(t: Tensor) -> Self {
        Img::Tensor(t)
    }
}

/// Runs `f` on the pixels of `x` and returns the same kind of value.
pub(crate) fn map_planar(
    x: Img,
    op: &str,
    f: impl FnOnce(Planar) -> Result<Planar>,
) -> Result<Img> {
    match x {
        Img::Image(i) => Ok(Img::Image(f(Planar::from_image(&i))?.into_image()?)),
        Img::Tensor(t) => Ok(Img::Tensor(f(Planar::from_tensor(&t, op)?)?.into_tensor()?)),
    }
}

/// An image transform (torchvision's `transforms.*`): maps an [`Img`] to an [`Img`],
/// drawing any randomness from `rng` only.
pub trait ImageTransform: Send + Sync {
    /// Transforms `x`.
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img>;

    /// Transforms `x` with a fresh generator seeded with `seed` (reproducible).
    fn apply_seeded(&self, x: Img, seed: u64) -> Result<Img> {
        self.apply_img(x, &mut Rng::new(seed))
    }
}

impl<T: ImageTransform + ?Sized> ImageTransform for Arc<T> {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        (**self).apply_img(x, rng)
    }
}

impl<T: ImageTransform + ?Sized> ImageTransform for Box<T> {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        (**self).apply_img(x, rng)
    }
}

/// Transforms applied in order, sharing one generator (torchvision's `Compose`).
#[derive(Clone, Default)]
pub struct Compose {
    steps: Vec<Arc<dyn ImageTransform>>,
}

impl Compose {
    /// An empty pipeline (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    pub fn then(mut self, t: impl ImageTransform + 'static) -> Self {
        self.steps.push(Arc::new(t));
        self
    }

    /// Appends an already shared step.
    pub fn then_arc(mut self, t: Arc<dyn ImageTransform>) -> Self {
        self.steps.push(t);
        self
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there is no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl std::fmt::Debug for Compose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compose({} steps)", self.steps.len())
    }
}

impl ImageTransform for Compose {
    fn apply_img(&self, mut x: Img, rng: &mut Rng) -> Result<Img> {
        for s in &self.steps {
            x = s.apply_img(x, rng)?;
        }
        Ok(x)
    }
}

/// Implements `mlfw_data::Transform` (tensor in, tensor out) for vision transforms.
macro_rules! data_transform {
    ($($t:ty),*) => {$(
        impl mlfw_data::Transform for $t {
            fn apply(&self, image: Tensor, rng: &mut Rng) -> mlfw_data::Result<Tensor> {
                Ok(self.apply_img(Img::Tensor(image), rng)?.into_tensor()?)
            }
        }
    )*};
}

data_transform!(
    Compose,
    ToTensor,
    Normalize,
    Grayscale,
    Resize,
    CenterCrop,
    RandomCrop,
    Pad,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    RandomAffine,
    RandomRotation
);
