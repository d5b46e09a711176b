//! Captured graphs run bit-identically to eager execution: every zoo model's inference
//! graph, and LeNet-5's whole training step (forward, loss, backward), also at batch sizes
//! other than the captured one.

use mlfw_core::{DType, Device, Generator, Tensor};
use mlfw_nn::{functional as F, trace_module, trace_train_step};
use mlfw_vision::registry::{build_model, model_info, ModelConfig, MODEL_NAMES};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::randn_with(0.0, 1.0, shape, DType::F32, &Device::Cpu, &mut g).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn every_zoo_model_inference_graph_is_bit_identical_to_eager() {
    for name in MODEL_NAMES {
        let cfg = ModelConfig::new(10);
        let info = model_info(name, &cfg).unwrap();
        let (mut model, _) = build_model(name, &cfg).unwrap();
        model.eval();
        let [c, hw, _] = info.input_shape;
        let hw = if info.any_size {
            info.min_size.max(32)
        } else {
            hw
        };
        let x = randn(&[2, c, hw, hw], 1);
        let _ng = mlfw_autograd::no_grad();
        let g = trace_module(model.as_ref(), &x, true).unwrap();
        assert!(g.warnings.is_empty(), "{name}: {:?}", g.warnings);
        for (b, seed) in [(2, 2), (3, 3)] {
            let x = randn(&[b, c, hw, hw], seed);
            let eager = model.forward(&x).unwrap();
            let run = g.run(std::slice::from_ref(&x)).unwrap();
            assert_eq!(bits(&eager), bits(&run[0]), "{name} at batch {b}");
        }
    }
}

#[test]
fn lenet5_training_step_graph_is_bit_identical_to_eager() {
    let (model, _) = build_model("lenet5", &ModelConfig::new(10)).unwrap();
    let x = randn(&[4, 1, 28, 28], 5);
    let t = Tensor::from_vec(vec![1i64, 7, 3, 0], [4], &Device::Cpu).unwrap();
    let g = trace_train_step(model.as_ref(), &x, &t, true).unwrap();
    assert_eq!(g.outputs.len(), 1 + model.parameters().len());
    for (b, seed) in [(4, 6), (7, 7)] {
        let x = randn(&[b, 1, 28, 28], seed);
        let t =
            Tensor::from_vec((0..b as i64).map(|i| i % 10).collect(), [b], &Device::Cpu).unwrap();
        let loss = F::cross_entropy(&model.forward(&x).unwrap(), &t).unwrap();
        let grads = mlfw_autograd::grad(&loss, &model.parameters(), None).unwrap();
        let run = g.run(&[x, t]).unwrap();
        assert_eq!(bits(&loss), bits(&run[0]), "loss at batch {b}");
        for (i, gr) in grads.iter().enumerate() {
            assert_eq!(
                bits(gr.as_ref().unwrap()),
                bits(&run[i + 1]),
                "grad {i} at batch {b}"
            );
        }
    }
    let text = g.to_string();
    assert!(
        text.contains("conv2d_backward_weight") && text.contains("max_pool2d_backward"),
        "{text}"
    );
    assert!(g.to_dot().starts_with("digraph"));
}

#[test]
fn second_order_gradients_match_pytorch() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch-ref/higher_order.safetensors"
    );
    let f = mlfw_core::safetensors::load(path, &Device::Cpu).unwrap();
    let cases = mlfw_vision::parity_second_order::run_file(&f, 1e-4).unwrap();
    assert_eq!(cases.len(), 23);
    for c in &cases {
        assert!(c.passed, "{}: {:.3e}", c.name, c.max_rel_err);
    }
}
