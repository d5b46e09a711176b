//! ResNet-50, MobileNetV2 and EfficientNet-B0 against torchvision: state-dict keys and shapes
//! (`tests/fixtures/torchvision/<model>_keys.txt`) and eval-mode logits with the fixtures'
//! formula weights (`<model>_formula_io.safetensors`, 2×3×64×64 inputs).

use mlfw_core::{safetensors, Device};
use mlfw_vision::parity::{self, max_rel_error};
use mlfw_vision::registry::{build_model, ModelConfig};

fn fixture(rel: &str) -> String {
    format!("{}/../../tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Keys match the fixture list; the formula weights (loaded strictly, by key) reproduce
/// torchvision's logits within 1e-4; eval mode is deterministic.
fn check(name: &str) -> mlfw_core::Result<()> {
    let _g = mlfw_autograd::no_grad();
    let keys = parity::read_keys_file(fixture(&format!("torchvision/{name}_keys.txt")))?;
    let io = safetensors::load(
        fixture(&format!("torchvision/{name}_formula_io.safetensors")),
        &Device::Cpu,
    )?;
    let phase: f64 = io
        .metadata
        .get("phase")
        .map_or(Ok(0.0), |p| p.parse())
        .unwrap();
    let (mut model, _) = build_model(name, &ModelConfig::new(10))?;
    assert_eq!(parity::model_keys(model.as_ref()), keys, "{name} keys");
    model.load_state_dict(&parity::formula_state_dict(&keys, phase)?, true)?;
    model.eval();
    let input = io.require("input")?;
    let logits = model.forward(input)?;
    let err = max_rel_error(&logits, io.require("logits_f64")?)?;
    eprintln!("{name}: max relative error {err:.3e}");
    assert!(err <= 1e-4, "{name}: max relative error {err}");
    assert_eq!(
        model.forward(input)?.to_vec::<f32>()?,
        logits.to_vec::<f32>()?,
        "{name}: eval mode (dropout, stochastic depth) is the identity"
    );
    Ok(())
}

#[test]
fn resnet50_matches_torchvision() -> mlfw_core::Result<()> {
    check("resnet50")
}

#[test]
fn mobilenet_v2_matches_torchvision() -> mlfw_core::Result<()> {
    check("mobilenet_v2")
}

#[test]
fn efficientnet_b0_matches_torchvision() -> mlfw_core::Result<()> {
    check("efficientnet_b0")
}

#[test]
fn vit_b_16_matches_torchvision() -> mlfw_core::Result<()> {
    check("vit_b_16")
}

#[test]
fn parameter_counts_match_torchvision() -> mlfw_core::Result<()> {
    // torchvision's counts at 1000 classes.
    for (name, want) in [
        ("resnet50", 25_557_032),
        ("mobilenet_v2", 3_504_872),
        ("efficientnet_b0", 5_288_548),
        ("vit_b_16", 86_567_656),
    ] {
        let (m, _) = build_model(name, &ModelConfig::new(1000))?;
        assert_eq!(m.num_parameters(), want, "{name}");
    }
    Ok(())
}
