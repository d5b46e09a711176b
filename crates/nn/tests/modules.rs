//! Module trees: names, modes, state dicts, devices, gradients through layers.

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_nn::*;
use std::collections::HashMap;

struct Block {
    conv1: Conv2d,
    bn1: BatchNorm2d,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn1.forward(&self.conv1.forward(x)?)?.relu()
    }
    children!(conv1, bn1);
}

struct Net {
    stem: Linear,
    layer1: Sequential,
    drop: Dropout,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.drop.forward(&self.stem.forward(x)?)
    }
    children!(stem, layer1, drop);
}

fn net() -> Net {
    let d = Device::Cpu;
    let block = Block {
        conv1: Conv2d::new(3, 4, 3, Conv2dConfig::default().bias(false), &d).unwrap(),
        bn1: BatchNorm::new_2d(4, &d).unwrap(),
    };
    Net {
        stem: Linear::new(4, 4, true, &d).unwrap(),
        layer1: Sequential::new().append(block).append(Relu),
        drop: Dropout::new(0.5).unwrap(),
    }
}

#[test]
fn dotted_names_and_counts() {
    let m = net();
    let keys: Vec<String> = m.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "stem.weight",
            "stem.bias",
            "layer1.0.conv1.weight",
            "layer1.0.bn1.weight",
            "layer1.0.bn1.bias",
            "layer1.0.bn1.running_mean",
            "layer1.0.bn1.running_var",
            "layer1.0.bn1.num_batches_tracked"
        ]
    );
    assert_eq!(m.named_parameters().len(), 5);
    assert_eq!(m.named_buffers().len(), 3);
    assert_eq!(m.num_parameters(), 16 + 4 + 4 * 3 * 9 + 4 + 4);
    assert!(m
        .parameters()
        .iter()
        .all(|p| p.requires_grad() && p.is_leaf()));
    let nbt = &m.state_dict()[7].1;
    assert_eq!(nbt.dtype(), DType::I64);
    assert_eq!(nbt.rank(), 0);
}

#[test]
fn train_eval_propagates() {
    let mut m = net();
    assert!(m.is_training());
    m.eval();
    assert!(!m.is_training());
    let x = Tensor::ones([2, 4], DType::F32, &Device::Cpu).unwrap();
    let a = m.forward(&x).unwrap().to_vec::<f32>().unwrap();
    let b = m.stem.forward(&x).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, b, "dropout is the identity in eval mode");
    m.train(true);
    assert!(m.is_training());
}

#[test]
fn state_dict_round_trip_and_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    let a = net();
    a.save(&path).unwrap();
    let b = net();
    b.load(&path).unwrap();
    for ((ka, ta), (kb, tb)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert_eq!(ka, kb);
        assert_eq!(ta.to_f64_vec().unwrap(), tb.to_f64_vec().unwrap(), "{ka}");
    }
    let mut sd: HashMap<String, Tensor> = a.state_dict().into_iter().collect();
    // PyTorch-style checkpoints without num_batches_tracked load strictly
    sd.remove("layer1.0.bn1.num_batches_tracked");
    b.load_state_dict(&sd, true).unwrap();
    sd.remove("stem.bias");
    sd.insert(
        "head.weight".into(),
        Tensor::zeros([2], DType::F32, &Device::Cpu).unwrap(),
    );
    let e = b.load_state_dict(&sd, true).unwrap_err().to_string();
    assert!(
        e.contains("missing keys: stem.bias") && e.contains("unexpected keys: head.weight"),
        "{e}"
    );
    let r = b.load_state_dict(&sd, false).unwrap();
    assert_eq!(r.missing, ["stem.bias"]);
    assert_eq!(r.unexpected, ["head.weight"]);
    sd.insert(
        "stem.weight".into(),
        Tensor::zeros([4, 5], DType::F32, &Device::Cpu).unwrap(),
    );
    let e = b.load_state_dict(&sd, false).unwrap_err().to_string();
    assert!(
        e.contains("stem.weight: checkpoint [4, 5] vs model [4, 4]"),
        "{e}"
    );
}

#[test]
fn gradients_reach_parameters_and_to_device_is_a_no_op_on_cpu() {
    let mut m = Sequential::new()
        .append(Linear::new(3, 5, true, &Device::Cpu).unwrap())
        .append(LayerNorm::new(&[5], &Device::Cpu).unwrap())
        .append(Gelu::default())
        .append(Linear::new(5, 2, true, &Device::Cpu).unwrap());
    let before = m.parameters()[0].id();
    m.to_device(&Device::Cpu).unwrap();
    assert_eq!(m.parameters()[0].id(), before);
    let x = Tensor::randn(0.0, 1.0, [4, 3], DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 1, 0], [4], &Device::Cpu).unwrap();
    CrossEntropyLoss::new()
        .forward(&m.forward(&x).unwrap(), &y)
        .unwrap()
        .backward()
        .unwrap();
    for (n, p) in m.named_parameters() {
        let g = p.grad().unwrap_or_else(|| panic!("{n} has no grad"));
        assert_eq!(g.shape(), p.shape());
    }
    m.zero_grad();
    assert!(m.parameters().iter().all(|p| p.grad().is_none()));
    let e = m
        .forward(&Tensor::ones([4, 2], DType::F32, &Device::Cpu).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("Sequential layer 0") && e.to_string().contains("Linear(3, 5)"),
        "{e}"
    );
}

#[test]
fn batchnorm1d_momentum_none_is_cumulative() {
    let bn = BatchNorm::new_1d(1, &Device::Cpu).unwrap().momentum(None);
    for v in [1.0f32, 3.0] {
        let x = Tensor::from_vec(vec![v - 1.0, v + 1.0], [2, 1], &Device::Cpu).unwrap();
        bn.forward(&x).unwrap();
    }
    // cumulative average of batch means 1 and 3 (starting from 0 with factor 1): 2
    assert!((bn.running_mean.as_ref().unwrap().item::<f32>().unwrap() - 2.0).abs() < 1e-6);
}

/// MultiheadAttention's fused self-attention path (no weights asked) gives the composed
/// path's output (weights asked), causal or not, batch-first or not.
#[test]
fn mha_fused_path_matches_composed() {
    for (batch_first, causal) in [(true, true), (false, false)] {
        let mha = MultiheadAttention::new(16, 4, true, batch_first, &Device::Cpu).unwrap();
        let x = Tensor::randn(0.0, 1.0, [3, 7, 16], DType::F32, &Device::Cpu).unwrap();
        let args = |need_weights| AttnArgs {
            need_weights,
            is_causal: causal,
            ..Default::default()
        };
        let (fused, w) = mha.forward_with(&x, &x, &x, args(false)).unwrap();
        let (plain, _) = mha.forward_with(&x, &x, &x, args(true)).unwrap();
        assert!(w.is_none());
        let (a, b) = (
            fused.to_vec::<f32>().unwrap(),
            plain.to_vec::<f32>().unwrap(),
        );
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "batch_first={batch_first} causal={causal}: {d}");
    }
}
