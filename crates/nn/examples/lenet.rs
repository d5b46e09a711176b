//! Writing a model as a struct with named fields (PyTorch's `class Model(nn.Module)`):
//! LeNet-5, its parameter names, a forward pass, a loss, and a state-dict round trip.
//!
//! `cargo run -p mlfw-nn --example lenet`

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_nn::{functional as F, Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module};

/// LeNet-5 for 28×28 grey images: two conv/pool stages and three fully connected layers.
struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    flatten: Flatten,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl LeNet5 {
    fn new(device: &Device) -> Result<Self> {
        Ok(LeNet5 {
            conv1: Conv2d::new(1, 6, 5, Conv2dConfig::default().padding(2), device)?,
            conv2: Conv2d::new(6, 16, 5, Conv2dConfig::default(), device)?,
            pool: MaxPool2d::new(2),
            flatten: Flatten::default(),
            fc1: Linear::new(16 * 5 * 5, 120, true, device)?,
            fc2: Linear::new(120, 84, true, device)?,
            fc3: Linear::new(84, 10, true, device)?,
        })
    }
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.pool.forward(&self.conv1.forward(x)?.relu()?)?;
        let x = self.pool.forward(&self.conv2.forward(&x)?.relu()?)?;
        let x = self.flatten.forward(&x)?;
        let x = self.fc1.forward(&x)?.relu()?;
        let x = self.fc2.forward(&x)?.relu()?;
        self.fc3.forward(&x)
    }
    // Names children after the fields: keys read conv1.weight, fc3.bias, ...
    // (pool and flatten hold no tensors, so they need not be listed).
    mlfw_nn::children!(conv1, conv2, fc1, fc2, fc3);
}

fn main() -> Result<()> {
    mlfw_core::manual_seed(0);
    let device = Device::Cpu;
    let model = LeNet5::new(&device)?;
    for (name, p) in model.named_parameters() {
        println!("{name:<12} {:?}", p.dims());
    }
    println!("{} parameters", model.num_parameters());

    let x = Tensor::randn(0.0, 1.0, [4, 1, 28, 28], DType::F32, &device)?;
    let y = Tensor::from_vec(vec![3i64, 1, 4, 1], [4], &device)?;
    let logits = model.forward(&x)?;
    let loss = F::cross_entropy(&logits, &y)?;
    F::check_finite(&loss, "lenet example")?;
    loss.backward()?;
    println!(
        "loss {:.4}, |grad fc3.weight| sum {:.4}",
        loss.item_f64()?,
        model
            .fc3
            .weight
            .grad()
            .map_or(Ok(0.0), |g| g.abs()?.sum_all()?.item_f64())?
    );

    let path = std::env::temp_dir().join("mlfw_lenet_example.safetensors");
    model.save(&path)?;
    let restored = LeNet5::new(&device)?;
    restored.load(&path)?;
    println!(
        "saved and reloaded {} tensors via {}",
        restored.state_dict().len(),
        path.display()
    );
    Ok(())
}
