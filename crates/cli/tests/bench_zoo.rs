//! `mlfw bench` runs every zoo model (one tiny step each: this checks that each model
//! benches and reports, not how fast).

mod common;

use common::ok;
use mlfw_vision::registry::MODEL_NAMES;

#[test]
fn bench_runs_every_zoo_model() {
    for &model in MODEL_NAMES {
        // Small inputs where the model takes any size; ViT-B/16 needs its 224×224.
        // (`--input C H W`; `C,H,W` works too, see below.)
        let input = match model {
            "lenet5" | "mlp" => ["1", "28", "28"],
            "vit_b_16" => ["3", "224", "224"],
            _ => ["3", "32", "32"],
        };
        let out = ok(&[
            "bench",
            "--model",
            model,
            "--batch-size",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--input",
            input[0],
            input[1],
            input[2],
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["model"], model, "{v}");
        for key in ["train_images_per_s", "infer_images_per_s"] {
            assert!(v[key].as_f64().unwrap() > 0.0, "{model}: {key} in {v}");
        }
    }
}

/// `--input` as the help writes it (`C,H,W`) and as separate numbers give the same run; a
/// wrong count is a clear error.
#[test]
fn input_takes_commas_or_spaces() {
    let base = [
        "bench",
        "--model",
        "lenet5",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--json",
    ];
    for input in [vec!["1,28,28"], vec!["1", "28", "28"]] {
        let mut args: Vec<&str> = base.to_vec();
        args.push("--input");
        args.extend(input);
        let v: serde_json::Value = serde_json::from_str(ok(&args).trim()).unwrap();
        assert_eq!(v["model"], "lenet5");
    }
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--input", "1,28"]);
    let err = common::fails(&args);
    assert!(err.contains("three numbers C,H,W"), "{err}");
}
