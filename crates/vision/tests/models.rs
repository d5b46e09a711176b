//! Model zoo: shapes, key names, registry and predict helper.

use image::{DynamicImage, Rgb, RgbImage};
use mlfw_core::{DType, Device, Tensor};
use mlfw_nn::Module;
use mlfw_vision::models::{LeNet5, Mlp, ResNet};
use mlfw_vision::predict::{self, Prediction};
use mlfw_vision::registry::{build_model, model_info, ModelConfig, MODEL_NAMES};

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape.to_vec(), DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn lenet_and_mlp_shapes_and_keys() -> mlfw_core::Result<()> {
    let m = LeNet5::new(10, 1, &Device::Cpu)?;
    assert_eq!(m.forward(&zeros(&[2, 1, 28, 28]))?.dims(), &[2, 10]);
    let keys: Vec<String> = m.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    let e = m.forward(&zeros(&[2, 3, 28, 28])).unwrap_err().to_string();
    assert!(e.contains("[N, 1, 28, 28]"), "{e}");
    assert!(m.forward(&zeros(&[2, 1, 32, 32])).is_err());
    let mlp = Mlp::new(784, &[256, 128], 10, &Device::Cpu)?;
    assert_eq!(mlp.forward(&zeros(&[3, 1, 28, 28]))?.dims(), &[3, 10]);
    assert_eq!(mlp.state_dict()[4].0, "fc3.weight");
    assert!(mlp.forward(&zeros(&[3, 1, 20, 20])).is_err());
    Ok(())
}

#[test]
fn resnet_variants_forward_and_train() -> mlfw_core::Result<()> {
    use mlfw_autograd::Backward;
    let m = ResNet::resnet18_cifar(10, 3, &Device::Cpu)?;
    let x = Tensor::randn(0.0, 1.0, [2, 3, 16, 16], DType::F32, &Device::Cpu)?;
    let y = m.forward(&x)?;
    assert_eq!(y.dims(), &[2, 10]);
    let t = Tensor::from_vec(vec![1i64, 3], [2], &Device::Cpu)?;
    mlfw_nn::functional::cross_entropy(&y, &t)?.backward()?;
    assert!(m.conv1.weight.grad().is_some() && m.fc.weight.grad().is_some());
    let mut r34 = ResNet::resnet34(5, 1, &Device::Cpu)?;
    r34.eval(); // layer4 is 1x1 for a 32x32 input: batch statistics need more than 1 value
    assert_eq!(r34.forward(&zeros(&[1, 1, 32, 32]))?.dims(), &[1, 5]);
    let keys: Vec<String> = r34.state_dict().into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"layer3.5.bn2.running_var".to_string()));
    assert!(keys.contains(&"layer4.0.downsample.1.weight".to_string()));
    assert!(!keys.contains(&"layer1.0.downsample.0.weight".to_string()));
    assert_eq!(
        r34.num_parameters(),
        21_797_672 - 512 * 1000 - 1000 + 512 * 5 + 5 - 64 * 2 * 49
    );
    Ok(())
}

#[test]
fn registry_builds_every_model_and_rejects_unknown_names() -> mlfw_core::Result<()> {
    for name in MODEL_NAMES {
        if *name == "vgg11_bn" {
            continue; // 129M parameters: checked on its own below
        }
        let (m, info) = build_model(name, &ModelConfig::new(7))?;
        let [c, h, w] = info.input_shape;
        let side = if info.any_size { 32 } else { h };
        let _ = w;
        let mut m = m;
        m.eval();
        assert_eq!(
            m.forward(&zeros(&[1, c, side, side]))?.dims(),
            &[1, 7],
            "{name}"
        );
    }
    let e = build_model("resnet152", &ModelConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("unknown model `resnet152`") && e.contains("resnet18_cifar"),
        "{e}"
    );
    let info = model_info("LeNet5", &ModelConfig::new(10).in_channels(3))?;
    assert_eq!((info.input_shape, info.mean.len()), ([3, 28, 28], 3));
    Ok(())
}

#[test]
fn vgg11_bn_keys_follow_torchvision() -> mlfw_core::Result<()> {
    let (m, info) = build_model("vgg11_bn", &ModelConfig::new(10))?;
    assert_eq!(info.input_shape, [3, 224, 224]);
    let sd = m.state_dict();
    let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "features.0.weight",
        "features.1.running_mean",
        "features.4.weight",
        "features.8.weight",
        "features.26.bias",
        "classifier.0.weight",
        "classifier.3.bias",
        "classifier.6.weight",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let shape = |k: &str| sd.iter().find(|(n, _)| n == k).unwrap().1.dims().to_vec();
    assert_eq!(shape("classifier.0.weight"), vec![4096, 25088]);
    assert_eq!(shape("classifier.6.weight"), vec![10, 4096]);
    assert_eq!(m.num_parameters(), 132_868_840 - 4096 * 990 - 990);
    Ok(())
}

#[test]
fn predict_top_k_and_errors() -> mlfw_core::Result<()> {
    let dir = tempfile::tempdir()?;
    let p1 = dir.path().join("a.png");
    let p2 = dir.path().join("b.jpg");
    DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, Rgb([250, 250, 250])))
        .save(&p1)
        .unwrap();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 20, Rgb([10, 10, 10])))
        .save(&p2)
        .unwrap();
    let (mut m, info) = build_model("lenet5", &ModelConfig::new(10))?;
    m.eval();
    let names: Vec<String> = (0..10).map(|i| format!("digit{i}")).collect();
    let out = predict::predict_files(
        m.as_ref(),
        &info,
        &[p1.clone(), p2.clone()],
        3,
        Some(&names),
    )?;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), 3);
    assert!(out[0][0].prob >= out[0][1].prob && out[0][1].prob >= out[0][2].prob);
    let Prediction { class, label, .. } = &out[0][0];
    assert_eq!(label.as_deref(), Some(format!("digit{class}").as_str()));
    // The preprocessed tensor: gray, 28x28, normalized.
    let x = predict::load_images(std::slice::from_ref(&p1), &info)?;
    assert_eq!(x.dims(), &[1, 1, 28, 28]);
    let v = x.to_vec::<f32>()?[0];
    assert!((v - (250.0 / 255.0 - 0.1307) / 0.3081).abs() < 0.02, "{v}");
    // Errors: unreadable file, wrong channels, wrong size, k = 0, another architecture's weights.
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"nope").unwrap();
    let e = predict::predict_files(m.as_ref(), &info, &[bad], 1, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.png"), "{e}");
    let e = predict::predict_batch(m.as_ref(), &zeros(&[1, 3, 28, 28]), &info, 1, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1-channel"), "{e}");
    let e = predict::predict_batch(m.as_ref(), &zeros(&[1, 1, 32, 32]), &info, 1, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("28x28"), "{e}");
    assert!(predict::predict_batch(m.as_ref(), &zeros(&[1, 1, 28, 28]), &info, 0, None).is_err());
    let (r, rinfo) = build_model("resnet18_cifar", &ModelConfig::new(10))?;
    let w = format!(
        "{}/../../tests/fixtures/torch-ref/lenet5_mnist_mini.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = predict::load_weights(r.as_ref(), &rinfo, &w)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("do not fit model `resnet18_cifar`")
            && e.contains("lenet5")
            && e.contains("unexpected keys"),
        "{e}"
    );
    predict::load_weights(m.as_ref(), &info, &w)?;
    Ok(())
}
