//! LeNet-5 and a multi-layer perceptron.

use super::check_input;
use mlfw_core::{Device, Error, Pool2dParams, Result, Tensor};
use mlfw_nn::{Conv2d, Conv2dConfig, Linear, Module};

/// LeNet-5 as in the PyTorch fixtures: `conv1 = Conv2d(C, 6, 5, padding=2)`,
/// `conv2 = Conv2d(6, 16, 5)`, `fc1 400→120`, `fc2 120→84`, `fc3 84→classes`; forward
/// `relu(conv1) → max_pool 2 → relu(conv2) → max_pool 2 → flatten → relu(fc1) → relu(fc2) → fc3`.
/// Input `[N, C, 28, 28]`, output logits `[N, classes]`.
#[derive(Debug, Clone)]
pub struct LeNet5 {
    /// `Conv2d(C, 6, 5, padding=2)`.
    pub conv1: Conv2d,
    /// `Conv2d(6, 16, 5)`.
    pub conv2: Conv2d,
    /// `Linear(400, 120)`.
    pub fc1: Linear,
    /// `Linear(120, 84)`.
    pub fc2: Linear,
    /// `Linear(84, classes)`.
    pub fc3: Linear,
}

impl LeNet5 {
    /// A LeNet-5 for `in_channels`-channel 28×28 images and `num_classes` classes, with
    /// PyTorch's default initialisation (global generator).
    ///
    /// # Errors
    /// `Error::Msg` when `in_channels` or `num_classes` is 0.
    pub fn new(num_classes: usize, in_channels: usize, device: &Device) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::msg(
                "LeNet5: num_classes and in_channels must be positive",
            ));
        }
        Ok(LeNet5 {
            conv1: Conv2d::new(
                in_channels,
                6,
                5,
                Conv2dConfig::default().padding(2),
                device,
            )?,
            conv2: Conv2d::new(6, 16, 5, Conv2dConfig::default(), device)?,
            fc1: Linear::new(400, 120, true, device)?,
            fc2: Linear::new(120, 84, true, device)?,
            fc3: Linear::new(84, num_classes, true, device)?,
        })
    }
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.conv1.in_channels();
        check_input(x, "LeNet5", c, 28, Some((28, 28)))?;
        let pool = Pool2dParams::new(2);
        let h = self.conv1.forward(x)?.relu()?.max_pool2d(pool)?;
        let h = self.conv2.forward(&h)?.relu()?.max_pool2d(pool)?;
        let h = h.flatten(1, -1)?;
        let h = self.fc1.forward(&h)?.relu()?;
        let h = self.fc2.forward(&h)?.relu()?;
        self.fc3.forward(&h)
    }
    mlfw_nn::children!(conv1, conv2, fc1, fc2, fc3);
}

/// A multi-layer perceptron: flatten → (`fcK` → ReLU)* → last `fc` (logits). Keys `fc1`, `fc2`, ...
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    names: Vec<String>,
}

impl Mlp {
    /// `in_features → hidden[0] → ... → num_classes`, PyTorch's default initialisation.
    ///
    /// # Errors
    /// `Error::Msg` when a size is 0.
    pub fn new(
        in_features: usize,
        hidden: &[usize],
        num_classes: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut sizes = vec![in_features];
        sizes.extend_from_slice(hidden);
        sizes.push(num_classes);
        if sizes.contains(&0) {
            return Err(Error::msg(format!(
                "Mlp: layer sizes must be positive, got {sizes:?}"
            )));
        }
        let layers = sizes
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], true, device))
            .collect::<Result<Vec<_>>>()?;
        let names = (1..=layers.len()).map(|i| format!("fc{i}")).collect();
        Ok(Mlp { layers, names })
    }

    /// Input features expected after flattening.
    pub fn in_features(&self) -> usize {
        self.layers[0].in_features()
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = self.in_features();
        if x.rank() < 2 || x.elem_count() / x.dims()[0].max(1) != n {
            return Err(Error::msg(format!(
                "Mlp: expected input [N, ...] with {n} features per sample, got {}",
                x.shape()
            )));
        }
        let mut h = x.flatten(1, -1)?;
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        for (n, l) in self.names.iter().zip(&self.layers) {
            f(n, l);
        }
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        for (n, l) in self.names.iter().zip(self.layers.iter_mut()) {
            f(n, l)?;
        }
        Ok(())
    }
}
