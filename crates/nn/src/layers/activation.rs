//! Parameter-free layers: activations, Flatten, Identity.

use crate::Module;
use mlfw_core::{Result, Tensor};

macro_rules! activation {
    ($(#[$m:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl Module for $name {
            fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                $body
            }
        }
    };
}

activation!(
    /// `max(x, 0)`.
    Relu, |x| x.relu()
);
activation!(
    /// Hyperbolic tangent.
    Tanh, |x| x.tanh()
);
activation!(
    /// Logistic sigmoid.
    Sigmoid, |x| x.sigmoid()
);
activation!(
    /// Returns its input.
    Identity, |x| Ok(x.clone())
);

/// `x if x > 0 else slope·x` (PyTorch's default slope 0.01 via `default()`).
#[derive(Debug, Clone, Copy)]
pub struct LeakyRelu {
    /// Negative slope.
    pub negative_slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu {
            negative_slope: 0.01,
        }
    }
}

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.negative_slope)
    }
}

/// GELU; exact (erf) by default, tanh approximation with `approximate = true`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gelu {
    /// Use the tanh approximation.
    pub approximate: bool,
}

impl Module for Gelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.approximate {
            x.gelu_tanh()
        } else if crate::fused::gelu::fused_ok(x) {
            crate::fused::gelu::gelu(x)
        } else {
            x.gelu()
        }
    }
}

/// Softmax over `dim`.
#[derive(Debug, Clone, Copy)]
pub struct Softmax {
    /// The normalised dim (negative counts from the end).
    pub dim: isize,
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.dim)
    }
}

/// Log-softmax over `dim`.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax {
    /// The normalised dim.
    pub dim: isize,
}

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.log_softmax(self.dim)
    }
}

/// Merges dims `start..=end` (PyTorch's `nn.Flatten`, default `1..=-1`).
#[derive(Debug, Clone, Copy)]
pub struct Flatten {
    /// First merged dim.
    pub start: isize,
    /// Last merged dim.
    pub end: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1, end: -1 }
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.flatten(self.start, self.end)
            .map_err(|e| e.context("Flatten"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_core::{DType, Device};

    #[test]
    fn activations() {
        let x = Tensor::from_vec(vec![-1f32, 0., 2.], [3], &Device::Cpu).unwrap();
        assert_eq!(
            Relu.forward(&x).unwrap().to_vec::<f32>().unwrap(),
            vec![0., 0., 2.]
        );
        assert_eq!(
            LeakyRelu::default()
                .forward(&x)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![-0.01, 0., 2.]
        );
        assert_eq!(
            Identity.forward(&x).unwrap().to_vec::<f32>().unwrap(),
            vec![-1., 0., 2.]
        );
        let s = Softmax { dim: 0 }
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .item::<f32>()
            .unwrap();
        assert!((s - 1.0).abs() < 1e-6);
        let g = Gelu::default()
            .forward(&x)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!((g[2] - 1.9545).abs() < 1e-3);
        let f = Flatten::default()
            .forward(&Tensor::zeros([2, 3, 4], DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(f.dims(), &[2, 12]);
    }
}
