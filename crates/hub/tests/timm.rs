//! `hf://timm/<arch>.<tag>`: a timm release (timm's `config.json`, `model.safetensors` with
//! timm's names, sha256 from the Hub API) pulled from a loopback endpoint, renamed to the
//! zoo's keys and loaded: the same logits as the zoo model with the same weights.

mod common;

use common::{opts, sha, Route, TestServer};
use mlfw_core::{safetensors, Device, Tensor};
use mlfw_hub::{load_with, pull};
use mlfw_vision::registry::{build_model, ModelConfig};

/// timm's name for a torchvision MobileNetV2 key (written independently of the library's
/// mapping, as a check of it).
fn timm_name(tv: &str) -> String {
    for (from, to) in [
        ("features.0.0.", "conv_stem."),
        ("features.0.1.", "bn1."),
        ("features.18.0.", "conv_head."),
        ("features.18.1.", "bn2."),
        ("classifier.1.", "classifier."),
    ] {
        if let Some(rest) = tv.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    let rest = tv.strip_prefix("features.").unwrap();
    let (i, rest) = rest.split_once(".conv.").unwrap();
    let i: usize = i.parse().unwrap();
    let starts = [1, 2, 4, 7, 11, 14, 17];
    let s = starts.iter().rposition(|&st| st <= i).unwrap();
    let b = i - starts[s];
    let table: &[(&str, &str)] = if i == 1 {
        &[
            ("0.0.", "conv_dw."),
            ("0.1.", "bn1."),
            ("1.", "conv_pw."),
            ("2.", "bn2."),
        ]
    } else {
        &[
            ("0.0.", "conv_pw."),
            ("0.1.", "bn1."),
            ("1.0.", "conv_dw."),
            ("1.1.", "bn2."),
            ("2.", "conv_pwl."),
            ("3.", "bn3."),
        ]
    };
    let (from, to) = table.iter().find(|(f, _)| rest.starts_with(f)).unwrap();
    format!("blocks.{s}.{b}.{to}{}", &rest[from.len()..])
}

#[test]
fn timm_mobilenetv2_release_loads_under_torchvision_names() {
    mlfw_core::manual_seed(5);
    let (mut zoo, _) = build_model("mobilenet_v2", &ModelConfig::new(10)).unwrap();
    zoo.eval();
    let timm_sd: Vec<(String, Tensor)> = zoo
        .state_dict()
        .into_iter()
        .map(|(k, t)| (timm_name(&k), t))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    safetensors::save(&file, &timm_sd, None).unwrap();
    let w = std::fs::read(&file).unwrap();
    let config = serde_json::json!({
        "architecture": "mobilenetv2_100",
        "num_classes": 10,
        "num_features": 1280,
        "pretrained_cfg": {
            "tag": "ra_in1k", "input_size": [3, 64, 64], "interpolation": "bicubic",
            "crop_pct": 0.875, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "num_classes": 10, "classifier": "classifier"
        }
    })
    .to_string();
    let api = serde_json::json!({
        "id": "timm/mobilenetv2_100.ra_in1k",
        "siblings": [
            {"rfilename": "config.json"},
            {"rfilename": "model.safetensors", "lfs": {"sha256": sha(&w), "size": w.len()}}
        ]
    })
    .to_string();
    let repo = "/timm/mobilenetv2_100.ra_in1k";
    let server = TestServer::start(vec![
        (
            &format!("{repo}/resolve/main/config.json"),
            Route::File(config.into_bytes()),
        ),
        (
            &format!("{repo}/resolve/main/model.safetensors"),
            Route::File(w.clone()),
        ),
        (
            &format!("/api/models{repo}/revision/main?blobs=true"),
            Route::File(api.into_bytes()),
        ),
    ]);
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).hf_endpoint(server.url(""));
    let p = pull("hf://timm/mobilenetv2_100.ra_in1k", &o).unwrap();
    let e = &p.model.entry;
    assert_eq!(e.key_map.as_deref(), Some("timm"));
    assert_eq!(e.architecture.model, "mobilenet_v2");
    assert_eq!(e.architecture.input_shape, [3, 64, 64]);
    assert_eq!(e.files[0].sha256, sha(&w));

    let loaded = load_with("mobilenetv2_100.ra_in1k", &o, &Device::Cpu).unwrap();
    let x = Tensor::randn(
        0.0,
        1.0,
        [2, 3, 64, 64],
        mlfw_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let want = zoo.forward(&x).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(
        loaded.model.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        want
    );

    // The zoo's name alone: no registry lists `mobilenet_v2`, so its public timm release is
    // pulled and cached under the zoo's name, with the release's tag as version ...
    let p = pull("mobilenet_v2", &o).unwrap();
    assert_eq!(
        (p.model.entry.name.as_str(), p.model.entry.version.as_str()),
        ("mobilenet_v2", "ra_in1k")
    );
    assert_eq!(p.model.entry.files[0].sha256, sha(&w));
    // ... where an offline load finds it by that name.
    drop(server);
    let offline = opts(home.path()).offline(true);
    let loaded = load_with("mobilenet_v2", &offline, &Device::Cpu).unwrap();
    assert_eq!(
        loaded.model.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        want
    );
    // A model without a known release is still "not found".
    let err = pull("lenet5@9", &o).unwrap_err().to_string();
    assert!(err.contains("no model `lenet5@9`"), "{err}");
}
