//! The learner on a source of drawn batches — the language-model set-up of `mlfw train`
//! (`lm_train::TextWindows`, best = lowest validation loss, perplexity, clipped step) with a
//! small embedding + linear model: a resumed run ends bit-identical to an uninterrupted one,
//! `best.safetensors` follows the lowest validation loss, `perplexity.csv` has a row per epoch.

use std::sync::Arc;

use mlfw_cli::learner::{BatchSource, ClippedStep, Learner, Monitor, Span};
use mlfw_cli::lm_train::{lm_loss, TextWindows, SEQ_LEN, VAL_BATCHES};
use mlfw_core::Device;
use mlfw_data::TextDataset;
use mlfw_nn::{Embedding, Linear, Module, Sequential};
use mlfw_optim::{AdamConfig, Optim};

fn corpus() -> Arc<TextDataset> {
    let text = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nO Romeo, Romeo!\n\n"
        .repeat(30);
    Arc::new(TextDataset::from_text(&text, "play").unwrap())
}

/// Next-character logits `[B, T, V]` from an embedding and a linear layer, Adam, 3 steps of
/// 2 windows per epoch, gradients clipped to 1.
fn learner(data: &Arc<TextDataset>) -> Learner {
    mlfw_core::manual_seed(5);
    let v = data.vocab.len();
    let model = Sequential::new()
        .append(Embedding::new(v, 16, &Device::Cpu).unwrap())
        .append(Linear::new(16, v, true, &Device::Cpu).unwrap());
    let opt = Optim::new(model.parameters(), AdamConfig::new(0.05)).unwrap();
    let train = TextWindows::train(Arc::clone(data), 2, 3, 11, Device::Cpu);
    let val = TextWindows::val(Arc::clone(data), 2, Device::Cpu);
    Learner::new(Box::new(model), Box::new(opt), train, val)
        .loss(lm_loss)
        .step(ClippedStep { max_norm: 1.0 })
        .monitor(Monitor::ValLoss)
        .unit("tokens", "tokens/s")
        .perplexity()
        .console(true, false)
}

fn weights(model: &dyn Module) -> Vec<(String, Vec<f32>)> {
    let mut w: Vec<_> = model
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec::<f32>().unwrap()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn text_windows_depend_only_on_the_step() {
    let data = corpus();
    let train = TextWindows::train(Arc::clone(&data), 2, 3, 11, Device::Cpu);
    assert_eq!(train.len(), 3);
    let span = |start, global_step| Span {
        epoch: 0,
        start,
        end: 3,
        global_step,
    };
    let all: Vec<_> = train.batches(span(0, 6)).map(|b| b.unwrap()).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].0.dims(), &[2, SEQ_LEN]);
    // Resuming at batch 1 of the same epoch draws batches 1 and 2 again.
    let rest: Vec<_> = train.batches(span(1, 7)).map(|b| b.unwrap()).collect();
    for (a, b) in all[1..].iter().zip(&rest) {
        assert_eq!(a.0.to_vec::<i64>().unwrap(), b.0.to_vec::<i64>().unwrap());
        assert_eq!(a.1.to_vec::<i64>().unwrap(), b.1.to_vec::<i64>().unwrap());
    }
    // Another global step, other windows.
    let other: Vec<_> = train.batches(span(0, 0)).map(|b| b.unwrap()).collect();
    assert_ne!(
        all[0].0.to_vec::<i64>().unwrap(),
        other[0].0.to_vec::<i64>().unwrap()
    );
    let val = TextWindows::val(data, 2, Device::Cpu);
    assert_eq!(val.len(), VAL_BATCHES);
    assert_eq!(val.weight(&all[0].1), 1.0);
}

#[test]
fn resumed_language_model_fit_ends_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let data = corpus();
    let mut straight = learner(&data).epochs(3).run_dir(&a).unwrap();
    let sa = straight.fit().unwrap();

    let mut first = learner(&data).epochs(1).run_dir(&b).unwrap();
    first.fit().unwrap();
    drop(first);
    let mut resumed = learner(&data).epochs(3).resume(&b).unwrap();
    let sb = resumed.fit().unwrap();

    assert_eq!(weights(straight.model()), weights(resumed.model()));
    assert_eq!((sa.steps, sa.loss), (sb.steps, sb.loss));
    let h = resumed.history();
    assert_eq!(h.len(), 3);
    // Best = lowest validation loss (stored negated); the summary's best accuracy is the
    // best of the epochs' accuracies.
    let lowest = h.iter().map(|r| r.val_loss).fold(f64::INFINITY, f64::min);
    assert_eq!(resumed.progress().best_acc, -lowest);
    let best_acc = h.iter().map(|r| r.val_acc).fold(0.0, f64::max);
    assert_eq!(sb.best_accuracy, best_acc);
    // Accuracy counts every next-character target: 3 steps x 2 windows x 128 per epoch.
    for r in h {
        let correct = r.train_acc * (3 * 2 * SEQ_LEN) as f64;
        assert!((correct - correct.round()).abs() < 1e-9, "{}", r.train_acc);
    }
    let csv = std::fs::read_to_string(b.join("perplexity.csv")).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,train_perplexity,val_perplexity");
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(
        lines[3],
        format!("3,{:.4},{:.4}", h[2].train_loss.exp(), h[2].val_loss.exp())
    );
    for f in [
        "best.safetensors",
        "last.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(b.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn lm_loss_refuses_logits_that_are_not_3d() {
    let logits = mlfw_core::Tensor::zeros([4, 5], mlfw_core::DType::F32, &Device::Cpu).unwrap();
    let y = mlfw_core::Tensor::from_vec(vec![0i64; 4], [4], &Device::Cpu).unwrap();
    let e = lm_loss(&logits, &y).unwrap_err().to_string();
    assert!(e.contains("[batch, time, vocab]"), "{e}");
    let logits = logits.reshape([1, 4, 5]).unwrap();
    let y = y.reshape([1, 4]).unwrap();
    let l = lm_loss(&logits, &y).unwrap().item_f64().unwrap();
    assert!((l - 5f64.ln()).abs() < 1e-6, "{l}");
}
