//! GradScaler: scaled backward, unscaling, skipped steps on inf/NaN, backoff and growth, and
//! its state surviving a save and load.

use mlfw_autograd::Backward;
use mlfw_core::{Device, Tensor};
use mlfw_optim::{GradScaler, GradScalerState, Optimizer, Sgd, SgdConfig};

fn param(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, [v.len()], &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

#[test]
fn finite_steps_unscale_and_grow_after_the_interval() {
    let w = param(&[1.0, 2.0]);
    let mut opt = Sgd::new(vec![w.clone()], SgdConfig::new(0.5)).unwrap();
    let mut s = GradScaler::with_state(GradScalerState {
        scale: 1024.0,
        growth_interval: 3,
        ..Default::default()
    })
    .unwrap();
    for i in 0..3 {
        opt.zero_grad();
        let loss = s.scale(&w.sum_all().unwrap()).unwrap();
        assert_eq!(loss.item::<f32>().unwrap(), 1024.0 * (3.0 - i as f32));
        loss.backward().unwrap();
        assert!(s.step(&mut opt, std::slice::from_ref(&w)).unwrap());
        assert_eq!(
            w.grad().unwrap().to_vec::<f32>().unwrap(),
            vec![1.0, 1.0],
            "unscaled"
        );
        s.update();
    }
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![-0.5, 0.5]);
    assert_eq!(s.get_scale(), 2048.0);
    assert_eq!(s.state_dict().growth_tracker, 0);
}

#[test]
fn a_step_with_inf_or_nan_gradients_is_skipped_and_the_scale_backs_off() {
    for bad in [f32::INFINITY, f32::NAN] {
        let w = param(&[1.0, 2.0]);
        let mut opt = Sgd::new(vec![w.clone()], SgdConfig::new(0.5)).unwrap();
        let mut s = GradScaler::new();
        w.set_grad(Some(
            Tensor::from_vec(vec![bad, 1.0], [2], &Device::Cpu).unwrap(),
        ));
        assert!(!s.step(&mut opt, std::slice::from_ref(&w)).unwrap());
        s.update();
        assert_eq!(
            w.to_vec::<f32>().unwrap(),
            vec![1.0, 2.0],
            "weights untouched"
        );
        assert_eq!(s.get_scale(), 32768.0);
    }
}

#[test]
fn state_round_trips_through_json_and_bad_settings_are_errors() {
    let mut s = GradScaler::new();
    s.update();
    s.update();
    let json = serde_json::to_string(&s.state_dict()).unwrap();
    let back: GradScalerState = serde_json::from_str(&json).unwrap();
    let mut r = GradScaler::new();
    r.load_state_dict(back).unwrap();
    assert_eq!(r.state_dict(), s.state_dict());
    assert_eq!(r.state_dict().growth_tracker, 2);
    for bad in [
        GradScalerState {
            scale: 0.0,
            ..Default::default()
        },
        GradScalerState {
            scale: f64::INFINITY,
            ..Default::default()
        },
        GradScalerState {
            growth_factor: 1.0,
            ..Default::default()
        },
        GradScalerState {
            backoff_factor: 1.5,
            ..Default::default()
        },
        GradScalerState {
            growth_interval: 0,
            ..Default::default()
        },
        GradScalerState {
            growth_tracker: 2000,
            ..Default::default()
        },
    ] {
        assert!(GradScaler::with_state(bad).is_err(), "{bad:?}");
    }
    let w = param(&[1.0]);
    let mut s = GradScaler::new();
    s.unscale_(std::slice::from_ref(&w)).unwrap();
    assert!(s.unscale_(&[w]).is_err(), "unscale_ twice in one step");
}
