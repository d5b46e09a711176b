//! timm's state-dict names → torchvision's (mlfw's), for loading the `timm/*` safetensors
//! releases on Hugging Face into the zoo.
//!
//! | timm architecture | zoo model | names |
//! |---|---|---|
//! | `resnet18`, `resnet34`, `resnet50` | same | identical |
//! | `mobilenetv2_100` | `mobilenet_v2` | `conv_stem`, `blocks.S.B.*`, `conv_head`, `classifier` → `features.N.*`, `classifier.1` |
//! | `efficientnet_b0` | `efficientnet_b0` | the same scheme, `blocks.S.B` → `features.{S+1}.B.block.*` |
//! | `vit_base_patch16_224` | `vit_b_16` | `patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`, `head` → `conv_proj`, `class_token`, `encoder.pos_embedding`, `encoder.layers.encoder_layer_N.{ln_1,self_attention.in_proj_*,self_attention.out_proj,ln_2,mlp.0,mlp.3}`, `encoder.ln`, `heads.head` |

use mlfw_core::{Error, Result, Tensor};
use std::collections::HashMap;

/// The zoo model a timm architecture name builds, for the architectures mlfw can map.
pub fn zoo_name(timm_arch: &str) -> Option<&'static str> {
    Some(match timm_arch {
        "resnet18" => "resnet18",
        "resnet34" => "resnet34",
        "resnet50" => "resnet50",
        "mobilenetv2_100" => "mobilenet_v2",
        "efficientnet_b0" => "efficientnet_b0",
        "vit_base_patch16_224" => "vit_b_16",
        _ => return None,
    })
}

/// The public ImageNet-1k release on Hugging Face (`hf://timm/<arch>.<tag>`, safetensors)
/// that `mlfw hub pull NAME` and `--pretrained` use for zoo model `model` when no registry
/// lists it. The ResNets are torchvision's own weights as timm republished them (`tv_in1k`);
/// MobileNetV2 and EfficientNet-B0 are timm's RandAugment recipes (`ra_in1k`, top-1 72.97% and
/// 77.69% in timm's results tables); ViT-B/16 is the AugReg-2 ImageNet-21k → 1k fine-tune.
pub fn default_release(model: &str) -> Option<&'static str> {
    Some(match model {
        "resnet18" => "hf://timm/resnet18.tv_in1k",
        "resnet34" => "hf://timm/resnet34.tv_in1k",
        "resnet50" => "hf://timm/resnet50.tv_in1k",
        "mobilenet_v2" => "hf://timm/mobilenetv2_100.ra_in1k",
        "efficientnet_b0" => "hf://timm/efficientnet_b0.ra_in1k",
        "vit_b_16" => "hf://timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
        _ => return None,
    })
}

/// torchvision's ViT-B/16 key of timm key `key` (`vit_base_patch16_224`), or `None`.
fn vit_key(key: &str) -> Option<String> {
    let top = [
        ("cls_token", "class_token"),
        ("pos_embed", "encoder.pos_embedding"),
        ("patch_embed.proj.", "conv_proj."),
        ("norm.", "encoder.ln."),
        ("head.", "heads.head."),
    ];
    for (from, to) in top {
        if key == from {
            return Some(to.to_string());
        }
        if from.ends_with('.') {
            if let Some(rest) = key.strip_prefix(from) {
                return Some(format!("{to}{rest}"));
            }
        }
    }
    let rest = key.strip_prefix("blocks.")?;
    let (n, inner) = rest.split_once('.')?;
    let n: usize = n.parse().ok()?;
    let renamed = match inner {
        "attn.qkv.weight" => "self_attention.in_proj_weight".to_string(),
        "attn.qkv.bias" => "self_attention.in_proj_bias".to_string(),
        _ => rename(
            inner,
            &[
                ("norm1", "ln_1"),
                ("norm2", "ln_2"),
                ("attn.proj", "self_attention.out_proj"),
                ("mlp.fc1", "mlp.0"),
                ("mlp.fc2", "mlp.3"),
            ],
        )?,
    };
    Some(format!("encoder.layers.encoder_layer_{n}.{renamed}"))
}

/// torchvision's MobileNetV2 feature index of timm's `blocks.S.0` (stages of 1, 2, 3, 4, 3,
/// 3, 1 blocks after the stem).
const MBV2_STAGE_START: [usize; 7] = [1, 2, 4, 7, 11, 14, 17];

/// Layer renames inside a timm block: (timm module, torchvision module).
const DS_MBV2: [(&str, &str); 4] = [
    ("conv_dw", "0.0"),
    ("bn1", "0.1"),
    ("conv_pw", "1"),
    ("bn2", "2"),
];
const IR_MBV2: [(&str, &str); 6] = [
    ("conv_pw", "0.0"),
    ("bn1", "0.1"),
    ("conv_dw", "1.0"),
    ("bn2", "1.1"),
    ("conv_pwl", "2"),
    ("bn3", "3"),
];
const DS_EFF: [(&str, &str); 6] = [
    ("conv_dw", "0.0"),
    ("bn1", "0.1"),
    ("se.conv_reduce", "1.fc1"),
    ("se.conv_expand", "1.fc2"),
    ("conv_pw", "2.0"),
    ("bn2", "2.1"),
];
const IR_EFF: [(&str, &str); 8] = [
    ("conv_pw", "0.0"),
    ("bn1", "0.1"),
    ("conv_dw", "1.0"),
    ("bn2", "1.1"),
    ("se.conv_reduce", "2.fc1"),
    ("se.conv_expand", "2.fc2"),
    ("conv_pwl", "3.0"),
    ("bn3", "3.1"),
];

/// `rest` (`conv_dw.weight`) renamed by `table`, or `None`.
fn rename(rest: &str, table: &[(&str, &str)]) -> Option<String> {
    table.iter().find_map(|(from, to)| {
        rest.strip_prefix(from)
            .filter(|t| t.starts_with('.'))
            .map(|t| format!("{to}{t}"))
    })
}

/// The torchvision key of timm key `key` of zoo model `model`, or `None` when the key has
/// no counterpart. Stem, head and classifier names are shared by both mobile models.
pub fn torchvision_key(model: &str, key: &str) -> Option<String> {
    let (last, body_prefix) = match model {
        "resnet18" | "resnet34" | "resnet50" => return Some(key.to_string()),
        "mobilenet_v2" => (18, "conv"),
        "efficientnet_b0" => (8, "block"),
        "vit_b_16" => return vit_key(key),
        _ => return None,
    };
    let top = [
        ("conv_stem.", "features.0.0.".to_string()),
        ("bn1.", "features.0.1.".to_string()),
        ("conv_head.", format!("features.{last}.0.")),
        ("bn2.", format!("features.{last}.1.")),
        ("classifier.", "classifier.1.".to_string()),
    ];
    for (from, to) in &top {
        if let Some(rest) = key.strip_prefix(from) {
            return Some(format!("{to}{rest}"));
        }
    }
    let rest = key.strip_prefix("blocks.")?;
    let mut parts = rest.splitn(3, '.');
    let stage: usize = parts.next()?.parse().ok()?;
    let block: usize = parts.next()?.parse().ok()?;
    let inner = parts.next()?;
    let table: &[(&str, &str)] = match (model, stage) {
        ("mobilenet_v2", 0) => &DS_MBV2,
        ("mobilenet_v2", _) => &IR_MBV2,
        (_, 0) => &DS_EFF,
        _ => &IR_EFF,
    };
    let renamed = rename(inner, table)?;
    Some(match model {
        "mobilenet_v2" => {
            let idx = MBV2_STAGE_START.get(stage)? + block;
            format!("features.{idx}.{body_prefix}.{renamed}")
        }
        _ => format!("features.{}.{block}.{body_prefix}.{renamed}", stage + 1),
    })
}

/// A timm state dict renamed to zoo model `model`'s keys.
///
/// # Errors
/// A model mlfw has no map for, a key without a counterpart (naming it), two keys mapping to one.
pub fn to_torchvision(model: &str, sd: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::with_capacity(sd.len());
    for (k, v) in sd {
        let t = torchvision_key(model, &k).ok_or_else(|| {
            Error::msg(format!(
                "timm key `{k}` has no {model} counterpart (is this a timm {model} checkpoint?)"
            ))
        })?;
        if out.insert(t.clone(), v).is_some() {
            return Err(Error::msg(format!("two timm keys map to `{t}`")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{build_model, ModelConfig};

    #[test]
    fn known_timm_names() {
        for (model, timm, tv) in [
            ("efficientnet_b0", "conv_stem.weight", "features.0.0.weight"),
            (
                "efficientnet_b0",
                "blocks.0.0.se.conv_reduce.bias",
                "features.1.0.block.1.fc1.bias",
            ),
            (
                "efficientnet_b0",
                "blocks.1.0.conv_pwl.weight",
                "features.2.0.block.3.0.weight",
            ),
            (
                "efficientnet_b0",
                "blocks.5.3.bn3.running_var",
                "features.6.3.block.3.1.running_var",
            ),
            (
                "efficientnet_b0",
                "bn2.num_batches_tracked",
                "features.8.1.num_batches_tracked",
            ),
            (
                "efficientnet_b0",
                "classifier.weight",
                "classifier.1.weight",
            ),
            (
                "mobilenet_v2",
                "blocks.0.0.conv_pw.weight",
                "features.1.conv.1.weight",
            ),
            (
                "mobilenet_v2",
                "blocks.3.2.conv_dw.weight",
                "features.9.conv.1.0.weight",
            ),
            (
                "mobilenet_v2",
                "blocks.6.0.bn3.bias",
                "features.17.conv.3.bias",
            ),
            ("mobilenet_v2", "conv_head.weight", "features.18.0.weight"),
            (
                "resnet50",
                "layer1.0.downsample.0.weight",
                "layer1.0.downsample.0.weight",
            ),
        ] {
            assert_eq!(
                torchvision_key(model, timm).as_deref(),
                Some(tv),
                "{model} {timm}"
            );
        }
        assert_eq!(
            torchvision_key("mobilenet_v2", "blocks.1.0.se.conv_reduce.weight"),
            None
        );
        assert_eq!(zoo_name("mobilenetv2_100"), Some("mobilenet_v2"));
    }

    #[test]
    fn every_vit_key_is_reached() -> Result<()> {
        // timm's ViT-B/16 names, written out independently of the map: each lands on exactly
        // one torchvision key, and every torchvision key is reached.
        let (m, _) = build_model("vit_b_16", &ModelConfig::new(10))?;
        let mut want: Vec<String> = m.state_dict().into_iter().map(|(k, _)| k).collect();
        let mut timm: Vec<String> = ["cls_token", "pos_embed", "patch_embed.proj.weight"]
            .iter()
            .chain(&["patch_embed.proj.bias", "norm.weight", "norm.bias"])
            .chain(&["head.weight", "head.bias"])
            .map(|s| s.to_string())
            .collect();
        for n in 0..12 {
            for l in [
                "norm1",
                "attn.qkv",
                "attn.proj",
                "norm2",
                "mlp.fc1",
                "mlp.fc2",
            ] {
                for p in ["weight", "bias"] {
                    timm.push(format!("blocks.{n}.{l}.{p}"));
                }
            }
        }
        let mut mapped: Vec<String> = timm
            .iter()
            .map(|k| torchvision_key("vit_b_16", k).unwrap_or_else(|| panic!("{k}")))
            .collect();
        mapped.sort();
        want.sort();
        assert_eq!(mapped, want);
        assert_eq!(
            torchvision_key("vit_b_16", "blocks.11.attn.qkv.bias").as_deref(),
            Some("encoder.layers.encoder_layer_11.self_attention.in_proj_bias")
        );
        assert_eq!(torchvision_key("vit_b_16", "blocks.x.norm1.weight"), None);
        assert_eq!(zoo_name("vit_base_patch16_224"), Some("vit_b_16"));
        for model in [
            "resnet18",
            "resnet50",
            "mobilenet_v2",
            "efficientnet_b0",
            "vit_b_16",
        ] {
            let spec = default_release(model).unwrap();
            let arch = spec
                .trim_start_matches("hf://timm/")
                .split('.')
                .next()
                .unwrap();
            assert_eq!(zoo_name(arch), Some(model), "{spec}");
        }
        Ok(())
    }

    #[test]
    fn every_zoo_key_is_reached() -> Result<()> {
        // Every torchvision key has exactly one timm name mapping onto it.
        for model in ["mobilenet_v2", "efficientnet_b0"] {
            let (m, _) = build_model(model, &ModelConfig::new(10))?;
            let tv: Vec<String> = m.state_dict().into_iter().map(|(k, _)| k).collect();
            let stage_blocks: &[usize] = if model == "mobilenet_v2" {
                &[1, 2, 3, 4, 3, 3, 1]
            } else {
                &[1, 2, 2, 3, 3, 4, 1]
            };
            let mut timm = vec![];
            for stem in [
                "conv_stem.weight",
                "conv_head.weight",
                "classifier.weight",
                "classifier.bias",
            ] {
                timm.push(stem.to_string());
            }
            for bn in ["bn1", "bn2"] {
                for s in [
                    "weight",
                    "bias",
                    "running_mean",
                    "running_var",
                    "num_batches_tracked",
                ] {
                    timm.push(format!("{bn}.{s}"));
                }
            }
            for (s, &n) in stage_blocks.iter().enumerate() {
                for b in 0..n {
                    let (convs, bns): (&[&str], &[&str]) = if s == 0 {
                        (&["conv_dw", "conv_pw"], &["bn1", "bn2"])
                    } else {
                        (&["conv_pw", "conv_dw", "conv_pwl"], &["bn1", "bn2", "bn3"])
                    };
                    timm.extend(convs.iter().map(|c| format!("blocks.{s}.{b}.{c}.weight")));
                    for bn in bns {
                        for p in [
                            "weight",
                            "bias",
                            "running_mean",
                            "running_var",
                            "num_batches_tracked",
                        ] {
                            timm.push(format!("blocks.{s}.{b}.{bn}.{p}"));
                        }
                    }
                    if model == "efficientnet_b0" {
                        for c in ["conv_reduce", "conv_expand"] {
                            for p in ["weight", "bias"] {
                                timm.push(format!("blocks.{s}.{b}.se.{c}.{p}"));
                            }
                        }
                    }
                }
            }
            let mut mapped: Vec<String> = timm
                .iter()
                .map(|k| torchvision_key(model, k).unwrap())
                .collect();
            let mut want = tv.clone();
            mapped.sort();
            want.sort();
            assert_eq!(mapped, want, "{model}");
        }
        Ok(())
    }
}
