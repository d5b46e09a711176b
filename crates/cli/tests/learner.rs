//! The training library without the `mlfw` binary: `Learner::fit` on a small fake dataset —
//! exact resume from a run folder, NaN stop, early stopping, a custom training step, and a fit
//! without a run folder writing nothing.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use mlfw_cli::learner::{
    Callback, Control, EarlyStopping, Learner, StandardStep, Step, StepOutput, TrainStep,
};
use mlfw_cli::metrics::EpochMetrics;
use mlfw_core::Device;
use mlfw_data::{DataLoader, FakeData};
use mlfw_nn::Module;
use mlfw_optim::sched::{Scheduler, StepLR};
use mlfw_optim::{Sgd, SgdConfig};
use mlfw_vision::models::LeNet5;

/// A fresh learner: seeded LeNet-5, SGD with momentum and a per-epoch StepLR, 96 training
/// and 32 validation fake MNIST images.
fn learner() -> Learner {
    mlfw_core::manual_seed(7);
    let model = LeNet5::new(10, 1, &Device::Cpu).unwrap();
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.05).momentum(0.9)).unwrap();
    let sched = Scheduler::new(StepLR::new(1, 0.5), &mut opt).unwrap();
    let train = DataLoader::new(FakeData::mnist_like(96, 0))
        .batch_size(16)
        .shuffle(3);
    let val = DataLoader::new(FakeData::mnist_like(32, 1)).batch_size(32);
    Learner::new(Box::new(model), Box::new(opt), train, val)
        .scheduler(sched, false)
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
fn resumed_fit_ends_bit_identical_to_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut straight = learner().epochs(3).run_dir(&a).unwrap();
    let sa = straight.fit().unwrap();

    let mut first = learner().epochs(1).run_dir(&b).unwrap();
    first.fit().unwrap();
    drop(first); // releases the folder's lock
    let mut resumed = learner().epochs(3).resume(&b).unwrap();
    assert_eq!(resumed.progress().epoch, 1);
    let sb = resumed.fit().unwrap();

    assert_eq!(weights(straight.model()), weights(resumed.model()));
    assert_eq!(sa.steps, sb.steps);
    assert_eq!(sa.steps, 18);
    let loss = |h: &[EpochMetrics]| {
        h.iter()
            .map(|r| (r.train_loss, r.val_loss, r.lr))
            .collect::<Vec<_>>()
    };
    assert_eq!(loss(straight.history()), loss(resumed.history()));
    for f in [
        "metrics.csv",
        "last.safetensors",
        "best.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(b.join(f).is_file(), "{f} missing");
    }
    // The folder stays locked while a learner holds it.
    assert!(learner().resume(&b).is_err());
}

#[test]
fn non_finite_loss_stops_the_fit_without_updating_the_weights() {
    let mut l = learner().loss(|out, y| {
        let ce = mlfw_nn::functional::cross_entropy(out, y)?;
        ce.mul_scalar(f64::NAN)
    });
    let before = weights(l.model());
    let err = l.fit().unwrap_err();
    assert!(
        err.message().contains("training diverged"),
        "{}",
        err.message()
    );
    assert_eq!(weights(l.model()), before);
}

#[test]
fn early_stopping_and_callbacks_end_the_fit() {
    struct StopAfterFirst;
    impl Callback for StopAfterFirst {
        fn on_epoch_end(
            &mut self,
            _: &EpochMetrics,
            _: &dyn Module,
        ) -> mlfw_cli::error::Result<Control> {
            Ok(Control::Stop)
        }
    }
    let mut l = learner().epochs(5).callback(StopAfterFirst);
    assert_eq!(l.fit().unwrap().epochs, 1);
    // A metric of one's own over the validation batches (32 images per epoch).
    struct CountVal(Rc<Cell<usize>>);
    impl Callback for CountVal {
        fn on_val_batch(
            &mut self,
            out: &mlfw_core::Tensor,
            y: &mlfw_core::Tensor,
        ) -> mlfw_cli::error::Result<()> {
            assert_eq!(out.dims()[0], y.dims()[0]);
            self.0.set(self.0.get() + y.dims()[0]);
            Ok(())
        }
    }
    let seen = Rc::new(Cell::new(0));
    learner()
        .epochs(2)
        .callback(CountVal(Rc::clone(&seen)))
        .fit()
        .unwrap();
    assert_eq!(seen.get(), 64);
    // Patience 1 with a min_delta no loss change can beat: stops after the second epoch.
    let mut l = learner()
        .epochs(5)
        .callback(EarlyStopping::new(1, 1e9).unwrap());
    assert_eq!(l.fit().unwrap().epochs, 2);
}

#[test]
fn a_custom_step_runs_every_batch_and_no_run_folder_writes_nothing() {
    let calls = Rc::new(Cell::new(0usize));
    let seen = Rc::clone(&calls);
    let mut inner = StandardStep;
    let step = move |s: Step<'_>| -> mlfw_cli::error::Result<StepOutput> {
        seen.set(seen.get() + 1);
        inner.step(s)
    };
    let cwd_before: Vec<_> = std::fs::read_dir(".").unwrap().collect();
    let mut l = learner().epochs(2).max_steps(4).step(step);
    let s = l.fit().unwrap();
    assert_eq!(calls.get(), 8);
    assert_eq!(s.steps, 8);
    assert_eq!(s.run_dir, Path::new(""));
    assert_eq!(std::fs::read_dir(".").unwrap().count(), cwd_before.len());
}
