//! `load_into`: pretrained weights into a model the caller built (here a hand-written LeNet-5).

mod common;

use common::opts;
use mlfw_core::{Device, Result, Tensor};
use mlfw_data::Dataset;
use mlfw_nn::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module};

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
    fn new(classes: usize, d: &Device) -> Result<Self> {
        Ok(LeNet5 {
            conv1: Conv2d::new(1, 6, 5, Conv2dConfig::default().padding(2), d)?,
            conv2: Conv2d::new(6, 16, 5, Conv2dConfig::default(), d)?,
            pool: MaxPool2d::new(2),
            flatten: Flatten::default(),
            fc1: Linear::new(400, 120, true, d)?,
            fc2: Linear::new(120, 84, true, d)?,
            fc3: Linear::new(84, classes, true, d)?,
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
    mlfw_nn::children!(conv1, conv2, fc1, fc2, fc3);
}

#[test]
fn builtin_lenet5_weights_reach_the_listed_accuracy_offline() {
    let home = tempfile::tempdir().unwrap();
    let model = LeNet5::new(10, &Device::Cpu).unwrap();
    let o = opts(home.path()).offline(true);
    let w = mlfw_hub::load_into(&model, "lenet5", &o, &Device::Cpu).unwrap();

    let test = mlfw_data::MnistMini::new(false).unwrap();
    let idx: Vec<usize> = (0..test.len()).collect();
    let batch = test.get_batch(&idx, &vec![0; idx.len()]).unwrap();
    let (m, s) = (
        w.preprocessing.mean[0] as f64,
        w.preprocessing.std[0] as f64,
    );
    let x = batch.images.affine(1.0 / s, -m / s).unwrap();
    let pred = model
        .forward(&x)
        .unwrap()
        .argmax(1, false)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let labels = batch.labels.to_vec::<i64>().unwrap();
    let hits = pred.iter().zip(&labels).filter(|(a, b)| a == b).count();
    let acc = hits as f64 / labels.len() as f64;
    let listed = w.entry.best_metric().unwrap().accuracy;
    assert!(
        (acc - listed).abs() < 0.0015,
        "accuracy {acc}, index says {listed}"
    );
}

#[test]
fn weights_that_do_not_fit_name_entry_and_keys() {
    let home = tempfile::tempdir().unwrap();
    let model = LeNet5::new(5, &Device::Cpu).unwrap();
    let e = mlfw_hub::load_into(&model, "lenet5", &opts(home.path()), &Device::Cpu).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("lenet5@1") && msg.contains("fc3"), "{msg}");
}
