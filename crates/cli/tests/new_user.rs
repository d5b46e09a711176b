//! What a new user following the README gets wrong, and the one clear message each must get:
//! image-only flags given to a language-model run (refused, never silently dropped), a model
//! name for the wrong command (an ONNX file to `train`, a language model to `graph`), weights
//! of another model (a short message, not every key of a ResNet), an empty class folder,
//! `generate` sampling flags out of range, settings changed when resuming a language model.
//! Each test runs `mlfw` with its own temporary `MLFW_HOME` (see `common`).

mod common;

use std::path::Path;

use common::{command, fails, ok, stderr, strs, train_args};

/// A small text corpus in `dir`, as `text:PATH`.
fn corpus(dir: &Path) -> String {
    let p = dir.join("play.txt");
    std::fs::write(
        &p,
        "ROMEO:\nBut soft, what light?\n\nJULIET:\nO Romeo!\n\n".repeat(40),
    )
    .unwrap();
    format!("text:{}", p.display())
}

/// `train --model char-lstm` on `data` for one step of two windows into `out`, then `extra`.
fn lm_args(data: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--model",
        "char-lstm",
        "--dataset",
        data,
        "--epochs",
        "1",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--quiet",
        "--no-tensorboard",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn language_model_runs_refuse_image_only_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path());
    for (extra, flag) in [
        (&["--amp", "bf16"][..], "--amp bf16"),
        (&["--pretrained"][..], "--pretrained"),
        (&["--val-split", "0.2"][..], "--val-split"),
        (&["--num-classes", "3"][..], "--num-classes"),
    ] {
        let out = dir.path().join(format!("run{}", flag.len()));
        let e = fails(&strs(&lm_args(&data, &out, extra)));
        assert!(
            e.contains(flag) && e.contains("only for image models"),
            "{flag}: {e}"
        );
        assert!(
            !out.exists(),
            "{flag}: a refused run left {}",
            out.display()
        );
    }
    let e = fails(&[
        "bench", "--model", "gpt-mini", "--amp", "f16", "--steps", "1",
    ]);
    assert!(e.contains("--amp") && e.contains("image models"), "{e}");
}

#[test]
fn compile_on_a_language_model_says_it_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path());
    let out = dir.path().join("lstm");
    let o = command()
        .args(lm_args(&data, &out, &["--compile"]))
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("--compile: falling back to eager"), "{e}");
    assert!(out.join("best.safetensors").exists());
    let o = command()
        .args([
            "bench",
            "--model",
            "char-lstm",
            "--compile",
            "--batch-size",
            "2",
            "--steps",
            "1",
            "--warmup",
            "0",
        ])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("--compile: falling back to eager"), "{e}");
}

#[test]
fn a_language_model_run_names_the_flag_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path());
    let out = dir.path().join("lstm");
    ok(&strs(&lm_args(&data, &out, &[])));
    let w = out.join("best.safetensors");
    let w = w.to_str().unwrap();
    let e = fails(&["generate", "--weights", w, "--prompt", "RO", "--top-k", "0"]);
    assert!(
        e.contains("--top-k must be at least 1") && !e.contains("Some("),
        "{e}"
    );
    let e = fails(&[
        "generate",
        "--weights",
        w,
        "--prompt",
        "RO",
        "--temperature",
        "nan",
    ]);
    assert!(e.contains("--temperature") && e.contains("got NaN"), "{e}");
    // Resuming keeps the run's settings: a new --lr would be silently ignored, so it is refused.
    let run = out.to_str().unwrap();
    let e = fails(&["train", "--resume", run, "--lr", "0.5", "--epochs", "2"]);
    assert!(e.contains("--lr cannot change when resuming"), "{e}");
}

#[test]
fn a_model_for_another_command_is_named_as_such() {
    let e = fails(&["train", "--model", "model.onnx", "--epochs", "1"]);
    assert!(
        e.contains("ONNX") && e.contains("mlfw eval") && !e.contains("unknown model"),
        "{e}"
    );
    let e = fails(&["graph", "--model", "char-lstm"]);
    assert!(e.contains("is a language model"), "{e}");
    let e = fails(&[
        "export",
        "--model",
        "gpt-mini",
        "--weights",
        "w.safetensors",
        "-o",
        "m.onnx",
    ]);
    assert!(e.contains("is a language model"), "{e}");
}

#[test]
fn weights_of_another_model_give_a_short_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("lenet");
    ok(&strs(&train_args(&run, "1", "1", &["--no-tensorboard"])));
    let w = run.join("last.safetensors");
    let e = fails(&[
        "eval",
        "--model",
        "resnet18",
        "--weights",
        w.to_str().unwrap(),
    ]);
    assert!(e.contains("missing keys: ") && e.contains(" more ("), "{e}");
    assert!(e.len() < 1500, "{} characters: {e}", e.len());
}

#[test]
fn an_empty_class_folder_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(root.join("cats")).unwrap();
    std::fs::create_dir_all(root.join("dogs")).unwrap();
    std::fs::write(root.join("cats").join("a.png"), b"not checked yet").unwrap();
    let out = dir.path().join("run");
    let e = fails(&strs(&train_args(
        &out,
        "1",
        "1",
        &[
            "--dataset",
            &format!("folder:{}", root.display()),
            "--val-split",
            "0.5",
        ],
    )));
    assert!(
        e.contains("class `dogs` has no image") && e.contains("remove the folder"),
        "{e}"
    );
}

#[test]
fn an_unreadable_image_names_the_flag_that_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    // A valid 1x1 grey PNG per class, and a text file posing as an image.
    let png = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0x3a, 0x7e, 0x9b, 0x55, 0, 0, 0, 0x0a, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1, 0x48, 0xaf, 0xa4, 0x71, 0, 0, 0, 0,
        0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    for class in ["cats", "dogs"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..3 {
            std::fs::write(root.join(class).join(format!("{i}.png")), png).unwrap();
        }
    }
    std::fs::write(root.join("cats").join("notes.jpg"), b"just text").unwrap();
    let data = format!("folder:{}", root.display());
    let e = fails(&strs(&train_args(
        &dir.path().join("run"),
        "1",
        "2",
        &[
            "--dataset",
            &data,
            "--val-split",
            "0.34",
            "--batch-size",
            "8",
        ],
    )));
    assert!(
        e.contains("notes.jpg") && e.contains("--skip-bad-images"),
        "{e}"
    );
}

#[test]
fn eval_refuses_a_batch_of_zero() {
    let e = fails(&["eval", "--pretrained", "--batch-size", "0"]);
    assert!(e.contains("--batch-size must be at least 1"), "{e}");
}

#[test]
fn the_overview_lists_every_command() {
    let help = ok(&["--help"]);
    let first = help.lines().next().unwrap_or_default();
    for c in [
        "train", "eval", "predict", "plot", "data", "hub", "bench", "graph", "export", "generate",
    ] {
        assert!(first.contains(c), "`{c}` missing from: {first}");
    }
}
