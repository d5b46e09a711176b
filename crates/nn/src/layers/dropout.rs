//! Dropout layer.

use crate::{functional, Module};
use mlfw_core::{Error, Generator, Result, Tensor};
use std::sync::Mutex;

/// Zeroes elements with probability `p` in training mode and scales the rest by `1/(1−p)`;
/// the identity in eval mode (PyTorch's `nn.Dropout`). Draws from its own seeded
/// [`Generator`] when made with [`Dropout::with_seed`], else from the global one.
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    training: bool,
    generator: Option<Mutex<Generator>>,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1]`, drawing from the global generator.
    ///
    /// # Errors
    /// `Error::Msg` when `p` is outside `[0, 1]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::msg(format!(
                "Dropout: probability must be in [0, 1], got {p}"
            )));
        }
        Ok(Dropout {
            p,
            training: true,
            generator: None,
        })
    }

    /// Dropout with its own generator seeded with `seed` (reproducible masks).
    ///
    /// # Errors
    /// `Error::Msg` when `p` is outside `[0, 1]`.
    pub fn with_seed(p: f64, seed: u64) -> Result<Self> {
        let mut d = Self::new(p)?;
        d.generator = Some(Mutex::new(Generator::new(seed)));
        Ok(d)
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.generator {
            Some(g) => {
                let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
                functional::dropout(x, self.p, self.training, Some(&mut g))
            }
            None => functional::dropout(x, self.p, self.training, None),
        }
    }
    fn set_own_training(&mut self, on: bool) {
        self.training = on;
    }
    fn own_training(&self) -> Option<bool> {
        Some(self.training)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_core::{DType, Device};

    #[test]
    fn train_only_and_seeded() {
        let x = Tensor::ones([64], DType::F32, &Device::Cpu).unwrap();
        let a = Dropout::with_seed(0.5, 9)
            .unwrap()
            .forward(&x)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let b = Dropout::with_seed(0.5, 9)
            .unwrap()
            .forward(&x)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(a, b);
        assert!(a.contains(&0.0) && a.contains(&2.0));
        let mut d = Dropout::new(0.5).unwrap();
        d.eval();
        assert_eq!(
            d.forward(&x).unwrap().to_vec::<f32>().unwrap(),
            vec![1.0; 64]
        );
        assert!(Dropout::new(-0.1).is_err());
    }
}
