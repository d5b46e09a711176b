//! NAdam against torch.optim.NAdam: 6 steps on fixed parameters and gradients, two settings
//! (fixture and its script: tests/fixtures/nadam_trace.{json,py}); plus resume of its state.

use mlfw_core::{Device, Tensor};
use mlfw_optim::{NAdam, NAdamConfig, Optimizer};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nadam_trace.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensors(vals: &Value, shapes: &[Vec<usize>]) -> Vec<Tensor> {
    vals.as_array()
        .unwrap()
        .iter()
        .zip(shapes)
        .map(|(v, s)| Tensor::from_vec(floats(v), s.clone(), &Device::Cpu).unwrap())
        .collect()
}

fn config(c: &Value) -> NAdamConfig {
    let f = |k: &str| c[k].as_f64().unwrap();
    NAdamConfig::new(f("lr"))
        .betas(
            c["betas"][0].as_f64().unwrap(),
            c["betas"][1].as_f64().unwrap(),
        )
        .eps(f("eps"))
        .weight_decay(f("weight_decay"))
        .momentum_decay(f("momentum_decay"))
}

fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| ((g - w).abs() / w.abs().max(1e-3)) as f64)
        .fold(0.0, f64::max)
}

#[test]
fn nadam_matches_pytorch_trace() {
    let fx = fixture();
    let shapes: Vec<Vec<usize>> = fx["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect()
        })
        .collect();
    for (name, run) in fx["runs"].as_object().unwrap() {
        let params: Vec<Tensor> = tensors(&fx["init"], &shapes)
            .into_iter()
            .map(|t| t.requires_grad_(true).unwrap())
            .collect();
        let mut opt = NAdam::new(params.clone(), config(&run["config"])).unwrap();
        for (step, (grads, want)) in fx["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(run["params"].as_array().unwrap())
            .enumerate()
        {
            for (p, g) in params.iter().zip(tensors(grads, &shapes)) {
                p.set_grad(Some(g));
            }
            opt.step().unwrap();
            for (i, (p, w)) in params.iter().zip(want.as_array().unwrap()).enumerate() {
                let err = max_rel_err(&p.to_vec::<f32>().unwrap(), &floats(w));
                assert!(
                    err < 1e-5,
                    "{name}: step {} parameter {i}: relative error {err:.2e}",
                    step + 1
                );
            }
        }
    }
}

#[test]
fn nadam_state_round_trips_and_resumes_identically() {
    let mk = || Tensor::from_vec(vec![0.5f32, -1.0, 2.0], [3], &Device::Cpu).unwrap();
    let grad = || Tensor::from_vec(vec![0.1f32, 0.2, -0.3], [3], &Device::Cpu).unwrap();
    let (a, b) = (
        mk().requires_grad_(true).unwrap(),
        mk().requires_grad_(true).unwrap(),
    );
    let mut oa = NAdam::new(vec![a.clone()], NAdamConfig::new(0.01)).unwrap();
    for _ in 0..3 {
        a.set_grad(Some(grad()));
        oa.step().unwrap();
    }
    b.assign(&a.detach()).unwrap();
    let mut ob = NAdam::new(vec![b.clone()], NAdamConfig::new(0.01)).unwrap();
    ob.load_state_dict(&oa.state_dict().unwrap()).unwrap();
    for _ in 0..2 {
        a.set_grad(Some(grad()));
        b.set_grad(Some(grad()));
        oa.step().unwrap();
        ob.step().unwrap();
    }
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    assert!(NAdam::new(
        vec![mk().requires_grad_(true).unwrap()],
        NAdamConfig::new(-1.0)
    )
    .is_err());
    assert!(NAdam::new(
        vec![mk().requires_grad_(true).unwrap()],
        NAdamConfig::new(0.1).betas(1.0, 0.9)
    )
    .is_err());
}
