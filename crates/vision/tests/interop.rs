//! Interop with PyTorch: trained LeNet-5 weights and torchvision's ResNet-18 (fixtures in the
//! workspace's `tests/fixtures/`).

use mlfw_core::{safetensors, Device, Tensor};
use mlfw_data::{Dataset, MnistMini};
use mlfw_nn::Module;
use mlfw_vision::models::{LeNet5, ResNet};
use mlfw_vision::parity::{self, max_rel_error};
use mlfw_vision::transforms::Normalize;

fn fixture(rel: &str) -> String {
    format!("{}/../../tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn lenet5_trained_by_pytorch_reproduces_logits_and_accuracy() -> mlfw_core::Result<()> {
    let _g = mlfw_autograd::no_grad();
    let mut model = LeNet5::new(10, 1, &Device::Cpu)?;
    model.load(fixture("torch-ref/lenet5_mnist_mini.safetensors").as_ref())?;
    model.eval();
    let test = MnistMini::new(false)?;
    let idx: Vec<usize> = (0..test.len()).collect();
    let batch = test.get_batch(&idx, &vec![0; idx.len()])?;
    let x = Normalize::new(vec![0.1307], vec![0.3081])?.normalize(&batch.images)?;
    let logits = model.forward(&x)?;
    let want = safetensors::load(
        fixture("torch-ref/lenet5_mnist_mini_t10k_logits.safetensors"),
        &Device::Cpu,
    )?;
    let err = max_rel_error(&logits, want.require("t10k_logits")?)?;
    eprintln!("max relative error {err:.3e}");
    assert!(err <= 1e-4, "max relative error {err}");
    let pred = logits.argmax(1, false)?;
    let acc = pred.count_eq(&batch.labels)? / idx.len() as f64;
    assert!((acc - 0.9690).abs() < 1e-9, "accuracy {acc}");
    Ok(())
}

#[test]
fn resnet18_keys_and_shapes_match_torchvision() -> mlfw_core::Result<()> {
    let want = parity::read_keys_file(fixture("torchvision/resnet18_keys.txt"))?;
    let model = ResNet::resnet18(10, 3, &Device::Cpu)?;
    assert_eq!(parity::model_keys(&model), want);
    // BatchNorms also carry num_batches_tracked, as in PyTorch.
    let sd = model.state_dict();
    assert_eq!(sd[5].0, "bn1.num_batches_tracked");
    assert_eq!(sd.len(), want.len() + 20);
    Ok(())
}

#[test]
fn resnet18_formula_weights_reproduce_torchvision_logits() -> mlfw_core::Result<()> {
    let _g = mlfw_autograd::no_grad();
    let io = safetensors::load(
        fixture("torchvision/resnet18_formula_io.safetensors"),
        &Device::Cpu,
    )?;
    let phase: f64 = io
        .metadata
        .get("phase")
        .map_or(Ok(0.0), |p| p.parse())
        .unwrap();
    let keys = parity::read_keys_file(fixture("torchvision/resnet18_keys.txt"))?;
    let mut model = ResNet::resnet18(10, 3, &Device::Cpu)?;
    model.load_state_dict(&parity::formula_state_dict(&keys, phase)?, true)?;
    model.eval();
    let input = io.require("input")?;
    let formula = parity::formula_input(input.dims(), phase)?;
    assert!(
        max_rel_error(input, &formula)? < 1e-6,
        "the fixture input is the formula input"
    );
    let logits = model.forward(input)?;
    let err = max_rel_error(&logits, io.require("logits_f64")?)?;
    eprintln!("max relative error {err:.3e}");
    assert!(err <= 1e-4, "max relative error {err}");
    // The same through set_formula_weights (model order == keys-file order).
    let m2 = ResNet::resnet18(10, 3, &Device::Cpu)?;
    parity::set_formula_weights(&m2, phase)?;
    let mut m2 = m2;
    m2.eval();
    assert!(max_rel_error(&m2.forward(input)?, &logits)? < 1e-6);
    Ok(())
}

#[test]
fn weights_of_another_architecture_are_a_clear_error() -> mlfw_core::Result<()> {
    let model = ResNet::resnet18_cifar(10, 3, &Device::Cpu)?;
    let e = model
        .load(fixture("torch-ref/lenet5_mnist_mini.safetensors").as_ref())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing keys") && e.contains("unexpected keys"),
        "{e}"
    );
    let _ = Tensor::zeros([1], mlfw_core::DType::F32, &Device::Cpu)?;
    Ok(())
}
