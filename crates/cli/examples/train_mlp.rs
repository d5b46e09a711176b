//! A complete small training run through the library: an MLP on a synthetic two-class problem
//! (points inside the unit circle) as a custom dataset, AdamW, a warm-up + cosine schedule
//! stepped per batch, gradient clipping in a custom training step, and a run folder whose
//! checkpoint a second `Learner` resumes.
//!
//! `cargo run -p mlfw-cli --example train_mlp`

use std::cell::Cell;
use std::rc::Rc;

use mlfw_autograd::Backward;
use mlfw_cli::learner::{Learner, Step, StepOutput};
use mlfw_core::{DType, Device, Generator, Tensor};
use mlfw_data::{DataLoader, Dataset, Sample};
use mlfw_nn::{Linear, Module, Relu, Sequential};
use mlfw_optim::sched::{CosineAnnealingLR, LinearLR, LrSchedule, Scheduler, SequentialLR};
use mlfw_optim::{clip_grad_norm, AdamConfig, AdamW};

/// `len` seeded points in `[-1.5, 1.5]²`; label 1 inside the unit circle.
struct Circle {
    points: Vec<[f32; 2]>,
}

impl Circle {
    fn new(len: usize, seed: u64) -> mlfw_core::Result<Self> {
        let mut g = Generator::new(seed);
        let xs = Tensor::rand_with(-1.5, 1.5, [len, 2], DType::F32, &Device::Cpu, &mut g)?;
        let v = xs.to_vec::<f32>()?;
        Ok(Circle {
            points: v.chunks(2).map(|p| [p[0], p[1]]).collect(),
        })
    }
}

impl Dataset for Circle {
    fn len(&self) -> usize {
        self.points.len()
    }
    fn get(&self, index: usize) -> mlfw_data::Result<Sample> {
        let p = self
            .points
            .get(index)
            .ok_or_else(|| mlfw_data::Error::invalid(format!("Circle: no point {index}")))?;
        Ok(Sample {
            image: Tensor::from_vec(p.to_vec(), [2], &Device::Cpu)?,
            label: (p[0] * p[0] + p[1] * p[1] < 1.0) as i64,
        })
    }
}

/// A fresh learner: the same seed builds the same model, so a resumed one matches.
fn learner(steps: Rc<Cell<usize>>) -> mlfw_cli::error::Result<Learner> {
    let mut g = Generator::new(42);
    let device = Device::Cpu;
    let model = Sequential::new()
        .append(Linear::new_with(2, 32, true, &device, &mut g)?)
        .append(Relu)
        .append(Linear::new_with(32, 2, true, &device, &mut g)?);
    let params = model.parameters();
    let mut opt = AdamW::new(model.parameters(), AdamConfig::adamw(0.02))?;
    let warmup_cosine: Vec<Box<dyn LrSchedule>> = vec![
        Box::new(LinearLR {
            start_factor: 0.1,
            end_factor: 1.0,
            total_iters: 10,
        }),
        Box::new(CosineAnnealingLR {
            t_max: 70,
            eta_min: 1e-4,
        }),
    ];
    let sched = Scheduler::new(SequentialLR::new(warmup_cosine, vec![10])?, &mut opt)?;
    // The training step, written out: the standard one plus the gradient norm clipped to 1
    // between backward and the update. A non-finite loss skips the update (the learner stops).
    let clipped = move |s: Step<'_>| -> mlfw_cli::error::Result<StepOutput> {
        steps.set(steps.get() + 1);
        s.optimizer.zero_grad();
        let output = s.model.forward(s.input)?;
        let loss = (s.loss)(&output, s.target)?;
        let lv = loss.item_f64()?;
        if lv.is_finite() {
            loss.backward()?;
            clip_grad_norm(&params, 1.0, 2.0)?;
            s.optimizer.step()?;
        }
        Ok(StepOutput { output, loss: lv })
    };
    let train = DataLoader::new(Circle::new(256, 0)?)
        .batch_size(32)
        .shuffle(1);
    let val = DataLoader::new(Circle::new(128, 1)?).batch_size(128);
    Ok(Learner::new(Box::new(model), Box::new(opt), train, val)
        .scheduler(sched, true)
        .step(clipped)
        .names("mlp", "circle"))
}

fn main() -> mlfw_cli::error::Result<()> {
    let dir = std::env::temp_dir().join(format!("mlfw-train-mlp-{}", std::process::id()));
    let steps = Rc::new(Cell::new(0));
    // 5 epochs of 8 steps, then a second learner resumes the run folder to 10 epochs.
    let first = learner(Rc::clone(&steps))?.epochs(5).run_dir(&dir)?.fit()?;
    let summary = learner(Rc::clone(&steps))?.epochs(10).resume(&dir)?.fit()?;
    println!(
        "accuracy {:.3} after 5 epochs, {:.3} after resuming to 10 ({} steps, {} in this process); run folder {}",
        first.accuracy,
        summary.accuracy,
        summary.steps,
        steps.get(),
        dir.display()
    );
    Ok(())
}
