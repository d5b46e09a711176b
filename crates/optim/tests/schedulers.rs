//! Learning-rate schedules against values PyTorch produces for the same settings.

use mlfw_core::{DType, Device, Tensor};
use mlfw_optim::sched::*;
use mlfw_optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn opt(lr: f64) -> Sgd {
    let p = Tensor::zeros([1], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    Sgd::new(vec![p], SgdConfig::new(lr).momentum(0.9)).unwrap()
}

fn trace(s: impl LrSchedule + 'static, lr: f64, n: usize) -> Vec<f64> {
    let mut o = opt(lr);
    let mut sc = Scheduler::new(s, &mut o).unwrap();
    let mut v = vec![o.lr()];
    for _ in 1..n {
        sc.step(&mut o).unwrap();
        v.push(o.lr());
    }
    v
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12 * y.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

#[test]
fn step_multistep_exponential() {
    close(
        &trace(StepLR::new(2, 0.1), 0.1, 5),
        &[0.1, 0.1, 0.01, 0.01, 0.001],
    );
    close(
        &trace(MultiStepLR::new(vec![3, 1], 0.5), 1.0, 5),
        &[1.0, 0.5, 0.5, 0.25, 0.25],
    );
    close(
        &trace(ExponentialLR { gamma: 0.9 }, 1.0, 3),
        &[1.0, 0.9, 0.81],
    );
}

#[test]
fn cosine_and_linear_warmup() {
    let v = trace(
        CosineAnnealingLR {
            t_max: 10,
            eta_min: 0.001,
        },
        0.1,
        11,
    );
    // torch: CosineAnnealingLR(opt(lr=0.1), T_max=10, eta_min=0.001)
    close(
        &[v[0], v[3], v[5], v[10]],
        &[0.1, 0.07959536998847742, 0.0505, 0.001],
    );
    let w = trace(LinearLR::default(), 0.3, 7);
    close(&w, &[0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3]);
}

#[test]
fn one_cycle_matches_pytorch() {
    // torch: OneCycleLR(opt, max_lr=0.1, total_steps=10)
    let v = trace(OneCycleLR::new(0.1, 10), 0.5, 11);
    close(&v[..3], &[0.004, 0.052, 0.1]);
    assert!((v[9] - 4e-7).abs() < 1e-15, "{}", v[9]);
    let mid = 4e-7 + (0.1 - 4e-7) / 2.0 * ((std::f64::consts::PI * 3.0 / 7.0).cos() + 1.0);
    close(&[v[5]], &[mid]);
    // momentum cycles 0.95 -> 0.85 -> 0.95
    let mut o = opt(0.1);
    let mut s = Scheduler::new(OneCycleLR::new(0.1, 10), &mut o).unwrap();
    assert_eq!(o.momentum(), Some(0.95));
    s.step(&mut o).unwrap();
    s.step(&mut o).unwrap();
    assert!((o.momentum().unwrap() - 0.85).abs() < 1e-12);
    for _ in 0..8 {
        s.step(&mut o).unwrap();
    }
    assert!(
        s.step(&mut o).is_err(),
        "stepping past total_steps is an error"
    );
    // Adam's beta1 is cycled
    let p = Tensor::zeros([1], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let mut a = Adam::new(vec![p], AdamConfig::new(1e-3)).unwrap();
    Scheduler::new(OneCycleLR::new(0.01, 5), &mut a).unwrap();
    assert_eq!(a.momentum(), Some(0.95));
}

#[test]
fn sequential_chained_and_state() {
    let s = SequentialLR::new(
        vec![
            Box::new(LinearLR {
                start_factor: 0.5,
                end_factor: 1.0,
                total_iters: 2,
            }),
            Box::new(ExponentialLR { gamma: 0.5 }),
        ],
        vec![2],
    )
    .unwrap();
    close(&trace(s, 1.0, 5), &[0.5, 0.75, 1.0, 0.5, 0.25]);
    assert!(SequentialLR::new(vec![Box::new(ExponentialLR { gamma: 0.5 })], vec![2]).is_err());
    let c = ChainedScheduler::new(vec![
        Box::new(StepLR::new(2, 0.1)),
        Box::new(ExponentialLR { gamma: 0.5 }),
    ]);
    close(&trace(c, 1.0, 3), &[1.0, 0.5, 0.025]);
    let mut o = opt(0.1);
    let mut s = Scheduler::new(StepLR::new(1, 0.5), &mut o).unwrap();
    s.step(&mut o).unwrap();
    let saved = s.state_dict();
    let mut o2 = opt(0.1);
    let mut s2 = Scheduler::new(StepLR::new(1, 0.5), &mut o2).unwrap();
    s2.load_state_dict(&saved, &mut o2).unwrap();
    assert_eq!(s2.last_epoch(), 1);
    assert_eq!(o2.lr(), 0.05);
    assert!(Scheduler::new(ExponentialLR { gamma: 0.5 }, &mut o2)
        .unwrap()
        .load_state_dict(&saved, &mut o2)
        .is_err());
}
