//! Transfer learning on zoo models: finding the classifier head, loading pretrained weights
//! with the head replaced, freezing the backbone, and splitting parameters into head and
//! backbone (for per-group learning rates).
//!
//! The head of every zoo model is its last parameterised layer (`fc` for ResNet,
//! `classifier.1` for MobileNetV2 and EfficientNet, `classifier.6` for VGG, `fc3` for LeNet-5
//! and the MLP), so [`head_prefix`] finds it from the state-dict order alone.

use mlfw_core::{Error, Result, Tensor};
use mlfw_nn::{LoadReport, Module};
use std::collections::HashMap;

/// The key prefix of `m`'s classifier head: its last parameter's key without the final
/// component (`fc.bias` → `fc`).
///
/// # Errors
/// A model without parameters.
pub fn head_prefix(m: &dyn Module) -> Result<String> {
    let (last, _) = m
        .named_parameters()
        .pop()
        .ok_or_else(|| Error::msg("the model has no parameters, so no classifier head"))?;
    Ok(match last.rsplit_once('.') {
        Some((prefix, _)) => prefix.to_string(),
        None => last,
    })
}

/// Whether state-dict `key` belongs to the layer `prefix` (`fc.weight` to `fc`, not `fc2.weight`).
pub fn is_under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The number of classes a state dict's head produces: the first dimension of
/// `<head>.weight`.
///
/// # Errors
/// No such key, or it is not at least 1-D.
pub fn head_classes(sd: &HashMap<String, Tensor>, head: &str) -> Result<usize> {
    let key = format!("{head}.weight");
    sd.get(&key)
        .and_then(|t| t.dims().first().copied())
        .ok_or_else(|| Error::msg(format!("the weights have no `{key}` (the classifier head)")))
}

/// Loads `sd` into `m` except the classifier head under `head`, which keeps its fresh
/// initialisation (the head-replacement step of fine-tuning). Every other key must match in
/// name and shape.
///
/// # Errors
/// A missing or unexpected key outside the head, a shape mismatch.
pub fn load_backbone(
    m: &dyn Module,
    sd: &HashMap<String, Tensor>,
    head: &str,
) -> Result<LoadReport> {
    let body: HashMap<String, Tensor> = sd
        .iter()
        .filter(|(k, _)| !is_under(k, head))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let report = m.load_state_dict(&body, false)?;
    let missing: Vec<&String> = report
        .missing
        .iter()
        .filter(|k| !is_under(k, head))
        .collect();
    if !missing.is_empty() || !report.unexpected.is_empty() {
        return Err(Error::msg(format!(
            "the weights do not fit this model's backbone: missing keys {missing:?}, unexpected keys {:?}",
            report.unexpected
        )));
    }
    Ok(report)
}

/// Named parameters, `(key, tensor)` in state-dict order.
pub type NamedParams = Vec<(String, Tensor)>;

/// `m`'s parameters split into `(head, backbone)`, each in state-dict order.
pub fn split_parameters(m: &dyn Module, head: &str) -> (NamedParams, NamedParams) {
    m.named_parameters()
        .into_iter()
        .partition(|(k, _)| is_under(k, head))
}

/// Freezes every parameter outside the head `head`: they stop requiring gradients, so a
/// backward pass computes none for them (nor for the layers before the first trainable one).
/// Returns how many parameter tensors were frozen. Call it after [`Module::to_device`], which
/// makes every parameter trainable again.
///
/// # Errors
/// None in practice: every parameter is a float leaf that may stop requiring gradients.
pub fn freeze_backbone(m: &dyn Module, head: &str) -> Result<usize> {
    let (_, backbone) = split_parameters(m, head);
    for (_, p) in &backbone {
        p.set_requires_grad(false)?;
    }
    Ok(backbone.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{build_model, ModelConfig};

    #[test]
    fn heads_of_the_zoo() -> Result<()> {
        for (name, head) in [
            ("lenet5", "fc3"),
            ("mlp", "fc3"),
            ("resnet18", "fc"),
            ("mobilenet_v2", "classifier.1"),
            ("efficientnet_b0", "classifier.1"),
        ] {
            let (m, _) = build_model(name, &ModelConfig::new(4))?;
            assert_eq!(head_prefix(m.as_ref())?, head, "{name}");
        }
        assert!(is_under("fc.weight", "fc") && !is_under("fc2.weight", "fc"));
        Ok(())
    }

    #[test]
    fn backbone_loads_and_freezes() -> Result<()> {
        let (src, _) = build_model("lenet5", &ModelConfig::new(10))?;
        let sd: HashMap<String, Tensor> = src.state_dict().into_iter().collect();
        let (m, _) = build_model("lenet5", &ModelConfig::new(3))?;
        assert_eq!(head_classes(&sd, "fc3")?, 10);
        assert!(
            m.load_state_dict(&sd, true).is_err(),
            "10-class head into 3"
        );
        load_backbone(m.as_ref(), &sd, "fc3")?;
        let (a, b) = (&m.state_dict()[0].1, &sd["conv1.weight"]);
        assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
        assert_eq!(freeze_backbone(m.as_ref(), "fc3")?, 8);
        let trainable: Vec<String> = m
            .named_parameters()
            .into_iter()
            .filter(|(_, p)| p.requires_grad())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(trainable, ["fc3.weight", "fc3.bias"]);
        // No gradient is computed for a frozen parameter.
        let x = Tensor::ones(
            [2, 1, 28, 28],
            mlfw_core::DType::F32,
            &mlfw_core::Device::Cpu,
        )?;
        mlfw_autograd::Backward::backward(&m.forward(&x)?.sum_all()?)?;
        let params: HashMap<String, Tensor> = m.named_parameters().into_iter().collect();
        assert!(params["conv1.weight"].grad().is_none() && params["fc1.weight"].grad().is_none());
        assert!(params["fc3.weight"].grad().is_some());
        let (other, _) = build_model("resnet18", &ModelConfig::new(3))?;
        assert!(load_backbone(other.as_ref(), &sd, "fc").is_err());
        Ok(())
    }
}
