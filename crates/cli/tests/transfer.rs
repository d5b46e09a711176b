//! Transfer learning end to end: a generated two-class image folder, stand-in "pretrained"
//! ResNet-18 weights (1000 classes) in a local hub registry in a temporary folder, and
//! `mlfw train --pretrained --num-classes 2 --freeze backbone` replacing the head and
//! fine-tuning it to a fixed accuracy in seconds; then eval/predict with the folder's class
//! names, and the bad-input errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{clean_failure, command, stderr, stdout};
use mlfw_core::{safetensors, Device, Tensor};
use mlfw_vision::registry::{build_model, ModelConfig};

/// A tiny deterministic generator (the test must not depend on the framework's RNG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// A 40×40 RGB image of stripes (horizontal or vertical) with random period, phase, colours
/// and noise.
fn stripes(horizontal: bool, rng: &mut Lcg) -> image::RgbImage {
    let period = 4 + rng.below(5);
    let phase = rng.below(period);
    let fg = [
        rng.below(256) as u8,
        rng.below(256) as u8,
        rng.below(256) as u8,
    ];
    let bg = fg.map(|c| c.wrapping_add(96 + rng.below(64) as u8));
    image::RgbImage::from_fn(40, 40, |x, y| {
        let t = if horizontal { y } else { x };
        let base = if (t + phase) % period < period / 2 {
            fg
        } else {
            bg
        };
        let n = rng.below(41) as i32 - 20;
        image::Rgb(base.map(|c| (c as i32 + n).clamp(0, 255) as u8))
    })
}

/// `root/{train,val}/{horizontal,vertical}/NN.png`: `n_train` and `n_val` images per class.
fn make_folder(root: &Path, n_train: usize, n_val: usize) {
    let mut rng = Lcg(7);
    for (split, n) in [("train", n_train), ("val", n_val)] {
        for (class, horizontal) in [("horizontal", true), ("vertical", false)] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                stripes(horizontal, &mut rng)
                    .save(dir.join(format!("{i:02}.png")))
                    .unwrap();
            }
        }
    }
}

/// A local hub registry holding stand-in "pretrained" ResNet-18 weights for 1000 classes
/// (seeded random initialisation, `trained_by: placeholder`); returns the registry folder
/// and the weights.
fn standin_registry(dir: &Path) -> (PathBuf, HashMap<String, Tensor>) {
    let reg = dir.join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    // The global generator is shared by the tests running in parallel in this process.
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (m, _) = {
        let _g = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        mlfw_core::manual_seed(1234);
        build_model("resnet18", &ModelConfig::new(1000)).unwrap()
    };
    let file = reg.join("resnet18-standin.safetensors");
    m.save(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let index = serde_json::json!({
        "format_version": 1,
        "models": [{
            "name": "resnet18",
            "version": "1",
            "description": "stand-in ImageNet weights for tests",
            "architecture": {"model": "resnet18", "num_classes": 1000, "input_shape": [3, 64, 64]},
            "preprocessing": {"size": [64, 64], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "files": [{
                "name": "resnet18-standin.safetensors",
                "url": "resnet18-standin.safetensors",
                "sha256": mlfw_data::download::sha256_bytes(&bytes),
                "size": bytes.len(),
            }],
            "license": "MIT OR Apache-2.0",
            "trained_by": "placeholder",
        }]
    });
    std::fs::write(reg.join("index.json"), index.to_string()).unwrap();
    (reg, m.state_dict().into_iter().collect())
}

fn mlfw(registry: &Path, args: &[&str]) -> std::process::Output {
    command()
        .env("MLFW_HUB_REGISTRY", registry)
        .args(args)
        .output()
        .expect("run mlfw")
}

fn ok(registry: &Path, args: &[&str]) -> String {
    let o = mlfw(registry, args);
    assert!(o.status.success(), "mlfw {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

#[test]
fn fine_tunes_a_pretrained_resnet18_on_an_image_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("stripes");
    make_folder(&data, 24, 10);
    let (reg, standin) = standin_registry(tmp.path());
    let run = tmp.path().join("run");
    let dataset = format!("folder:{}", data.display());
    let t = Instant::now();
    let out = ok(
        &reg,
        &[
            "train",
            "--model",
            "resnet18",
            "--pretrained",
            "--dataset",
            &dataset,
            "--num-classes",
            "2",
            "--image-size",
            "32",
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
            "--lr-backbone",
            "0.0005",
            "--epochs",
            "6",
            "--batch-size",
            "8",
            "--workers",
            "1",
            "--json",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    let secs = t.elapsed().as_secs_f64();
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let acc = summary["best_accuracy"].as_f64().unwrap();
    eprintln!("fine-tuning: best val accuracy {acc:.3} in {secs:.1}s");
    assert!(acc >= 0.85, "val accuracy {acc} < 0.85: {summary}");
    assert!(secs < 120.0, "took {secs:.1}s");
    let last = safetensors::load(run.join("last.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(last.require("fc.weight").unwrap().dims(), &[2, 512]);
    let c1 = last
        .require("conv1.weight")
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_ne!(
        c1,
        standin["conv1.weight"].to_vec::<f32>().unwrap(),
        "the backbone trains"
    );
    // Two parameter groups with their own learning rates: head 0.001, backbone 0.0005.
    let ckpt = safetensors::load(run.join("checkpoint.safetensors"), &Device::Cpu).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&ckpt.metadata["mlfw.checkpoint"]).unwrap();
    let opt_json = meta["optimizer"].as_str().unwrap();
    let opt: serde_json::Value = serde_json::from_str(opt_json).unwrap();
    let lrs: Vec<f64> = opt["param_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, [0.001, 0.0005], "{opt_json}");

    // --freeze backbone: the backbone stays the stand-in's, bit for bit; only the head trains.
    let frozen = tmp.path().join("frozen");
    ok(
        &reg,
        &[
            "train",
            "--model",
            "resnet18",
            "--pretrained",
            "--dataset",
            &dataset,
            "--image-size",
            "32",
            "--freeze",
            "backbone",
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--workers",
            "1",
            "--quiet",
            "--out",
            frozen.to_str().unwrap(),
        ],
    );
    let f = safetensors::load(frozen.join("last.safetensors"), &Device::Cpu).unwrap();
    let get = |k: &str| f.require(k).unwrap().to_vec::<f32>().unwrap();
    for k in [
        "conv1.weight",
        "layer4.1.conv2.weight",
        "layer2.0.bn1.weight",
    ] {
        assert_eq!(get(k), standin[k].to_vec::<f32>().unwrap(), "{k} changed");
    }
    assert_eq!(f.require("fc.weight").unwrap().dims(), &[2, 512]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(frozen.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["freeze"], "backbone");
    assert_eq!(cfg["input_shape"], serde_json::json!([3, 32, 32]));

    // Evaluation and prediction name the folder's classes.
    let best = run.join("best.safetensors");
    let w = best.to_str().unwrap();
    let common = [
        "--model",
        "resnet18",
        "--weights",
        w,
        "--dataset",
        &dataset,
        "--image-size",
        "32",
    ];
    let eval = ok(&reg, &[&["eval"][..], &common[..]].concat());
    assert!(
        eval.contains("horizontal") && eval.contains("vertical"),
        "{eval}"
    );
    let img = data.join("val/vertical/03.png");
    let pred = ok(
        &reg,
        &[
            &["predict", img.to_str().unwrap(), "--topk", "1"][..],
            &common[..],
        ]
        .concat(),
    );
    assert!(
        pred.contains("vertical") || pred.contains("horizontal"),
        "{pred}"
    );
}

#[test]
fn folder_and_pretrained_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, _) = standin_registry(tmp.path());
    let run = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let train = |dataset: &str, extra: &[&str], out: &str| {
        let mut a = vec![
            "train",
            "--model",
            "resnet18",
            "--dataset",
            dataset,
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--batch-size",
            "4",
            "--workers",
            "1",
            "--quiet",
            "--out",
            out,
        ];
        a.extend_from_slice(extra);
        mlfw(&reg, &a)
    };

    // No class folders.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = clean_failure(&train(
        &format!("folder:{}", empty.display()),
        &["--val-split", "0.5"],
        &run("r1"),
    ));
    assert!(e.contains("no class sub-folder"), "{e}");

    // An empty class.
    let flat = tmp.path().join("flat");
    make_folder(&flat, 3, 0);
    let flat_train = flat.join("train");
    std::fs::create_dir_all(flat_train.join("zebra")).unwrap();
    let ds = format!("folder:{}", flat_train.display());
    let e = clean_failure(&train(&ds, &["--val-split", "0.5"], &run("r2")));
    assert!(e.contains("zebra") && e.contains("no image"), "{e}");
    std::fs::remove_dir(flat_train.join("zebra")).unwrap();

    // A flat folder without --val-split.
    let e = clean_failure(&train(&ds, &[], &run("r3")));
    assert!(e.contains("--val-split"), "{e}");

    // --num-classes that is not the folder's.
    let e = clean_failure(&train(
        &ds,
        &["--val-split", "0.5", "--num-classes", "3"],
        &run("r4"),
    ));
    assert!(
        e.contains("--num-classes 3") && e.contains("2 classes"),
        "{e}"
    );

    // An unreadable image: named, or skipped with --skip-bad-images.
    let bad = flat_train.join("vertical/bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let e = clean_failure(&train(&ds, &["--val-split", "0.5"], &run("r5")));
    assert!(e.contains("bad.png"), "{e}");
    let o = train(
        &ds,
        &["--val-split", "0.5", "--skip-bad-images"],
        &run("r6"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.png"), "the skipped file is named");

    // Pretrained weights with another class count and no head replacement (eval).
    let w = [
        "--model",
        "resnet18",
        "--pretrained",
        "--dataset",
        &ds,
        "--val-split",
        "0.5",
        "--image-size",
        "32",
    ];
    let e = clean_failure(&mlfw(&reg, &[&["eval"][..], &w[..]].concat()));
    assert!(
        e.contains("1000 classes") && e.contains("2 are needed"),
        "{e}"
    );

    // A bad --freeze value and --lr-backbone with a frozen backbone.
    let e = clean_failure(&train(
        &ds,
        &["--val-split", "0.5", "--freeze", "head"],
        &run("r7"),
    ));
    assert!(e.contains("valid values: none, backbone"), "{e}");
    let e = clean_failure(&train(
        &ds,
        &[
            "--val-split",
            "0.5",
            "--freeze",
            "backbone",
            "--lr-backbone",
            "0.1",
        ],
        &run("r8"),
    ));
    assert!(e.contains("lr_backbone"), "{e}");
}
