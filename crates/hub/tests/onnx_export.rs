//! ONNX export: every zoo model, captured with a symbolic batch and written as ONNX,
//! loads back through the importer and gives the eager model's logits at other batch sizes.

mod onnx_common;

use mlfw_core::{DType, Device, Tensor};
use mlfw_hub::onnx::proto::ModelProto;
use mlfw_hub::onnx::{export_module, Dim, OnnxModel, EXPORT_OPSET};
use mlfw_vision::registry::{build_model, ModelConfig, MODEL_NAMES};
use onnx_common::{check_onnx_rules, rel_err};
use prost::Message;

#[test]
fn every_zoo_model_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for &name in MODEL_NAMES {
        mlfw_core::manual_seed(7);
        let (mut model, info) = build_model(name, &ModelConfig::new(10)).unwrap();
        model.train(false);
        // Small inputs keep the big models quick; fixed-size models get their own.
        let [c, h, w] = info.input_shape;
        let (h, w) = if info.any_size {
            (h.min(32).max(info.min_size), w.min(32).max(info.min_size))
        } else {
            (h, w)
        };
        let path = dir.path().join(format!("{name}.onnx"));
        let x = Tensor::randn(0.0, 1.0, [2, c, h, w], DType::F32, &Device::Cpu).unwrap();
        export_module(model.as_ref(), &x, &path).unwrap_or_else(|e| panic!("{name}: {e}"));

        let proto = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        check_onnx_rules(&proto).unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = OnnxModel::load(&path, &Device::Cpu).unwrap();
        assert_eq!(m.opset(), EXPORT_OPSET);
        let input = &m.inputs()[0];
        assert_eq!(input.name, "input");
        assert_eq!(
            input.dims,
            vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(c),
                Dim::Fixed(h),
                Dim::Fixed(w)
            ],
            "{name}"
        );
        assert_eq!(m.outputs()[0].name, "output");
        // Initializers carry the state-dict names.
        let keys: Vec<String> = model.state_dict().into_iter().map(|(k, _)| k).collect();
        for (k, _) in model.named_parameters() {
            assert!(
                m.initializers().iter().any(|(n, _)| *n == k),
                "{name}: no initializer `{k}`"
            );
        }
        for (n, _) in m.initializers() {
            assert!(
                keys.contains(n) || n.starts_with("onnx_const"),
                "{name}: unexpected initializer `{n}`"
            );
        }
        for batch in [1, 3] {
            let x = Tensor::randn(0.0, 1.0, [batch, c, h, w], DType::F32, &Device::Cpu).unwrap();
            let want = {
                let _g = mlfw_autograd::no_grad();
                model.forward(&x).unwrap()
            };
            let got = m.run(&[x]).unwrap().remove(0);
            let e = rel_err(&got, &want);
            println!("{name} batch {batch}: relative error {e:.2e}");
            assert!(e < 1e-5, "{name} batch {batch}: relative error {e}");
        }
    }
}
