//! ONNX import: PyTorch's and onnxruntime's outputs reproduced for the fixtures; malformed
//! files, unsupported ops and hostile external data are clear errors.

mod onnx_common;

use std::path::{Path, PathBuf};

use mlfw_core::{DType, Device, Tensor};
use mlfw_hub::onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TypeProto, TypeProtoTensor, ValueInfoProto,
};
use mlfw_hub::onnx::OnnxModel;
use onnx_common::rel_err;
use prost::Message;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(name)
}

#[test]
fn fixtures_match_their_reference_outputs() {
    for name in ["lenet5", "resnet_small", "ops"] {
        let m = OnnxModel::load(fixture(&format!("{name}.onnx")), &Device::Cpu).unwrap();
        let io =
            mlfw_core::safetensors::load(fixture(&format!("{name}_io.safetensors")), &Device::Cpu)
                .unwrap();
        let input = io.get("input").or(io.get("x")).unwrap().clone();
        let outs = m.run(&[input]).unwrap();
        for (spec, got) in m.outputs().iter().zip(&outs) {
            let want = io.get(&spec.name).or(io.get("output")).unwrap();
            let e = rel_err(got, want);
            assert!(e < 1e-4, "{name} `{}`: relative error {e}", spec.name);
        }
    }
}

#[test]
fn imported_model_captures_as_a_graph_with_a_symbolic_batch() {
    let m = OnnxModel::load(fixture("resnet_small.onnx"), &Device::Cpu).unwrap();
    assert_eq!(m.opset(), 17);
    assert_eq!(m.inputs()[0].name, "input");
    let x = Tensor::randn(0.0, 1.0, [2, 3, 32, 32], DType::F32, &Device::Cpu).unwrap();
    let g = m.to_graph(&[x]).unwrap();
    assert!(g.batch.is_some());
    let x5 = Tensor::randn(0.0, 1.0, [5, 3, 32, 32], DType::F32, &Device::Cpu).unwrap();
    let a = g.run(std::slice::from_ref(&x5)).unwrap();
    let b = m.run(&[x5]).unwrap();
    assert!(rel_err(&a[0], &b[0]) < 1e-6);
}

fn model_with(node: NodeProto, inits: Vec<TensorProto>) -> ModelProto {
    let vi = |n: &str| ValueInfoProto {
        name: n.into(),
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![node],
            initializer: inits,
            input: vec![vi("x")],
            output: vec![vi("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("my_{op}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec!["y".into()],
        ..Default::default()
    }
}

fn load_err(m: &ModelProto, base: Option<&Path>) -> String {
    match OnnxModel::from_bytes(&m.encode_to_vec(), base, &Device::Cpu) {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_op_names_op_node_and_opset() {
    let e = load_err(&model_with(node("NonMaxSuppression", &["x"]), vec![]), None);
    assert!(
        e.contains("NonMaxSuppression")
            && e.contains("my_NonMaxSuppression")
            && e.contains("opset 17"),
        "{e}"
    );
    let mut n = node("Relu", &["x"]);
    n.domain = "com.microsoft".into();
    let e = load_err(&model_with(n, vec![]), None);
    assert!(e.contains("com.microsoft"), "{e}");
}

#[test]
fn unsupported_attributes_are_errors_not_wrong_results() {
    let mut n = node("Conv", &["x", "w"]);
    n.attribute.push(mlfw_hub::onnx::proto::AttributeProto {
        name: "pads".into(),
        r#type: 7,
        ints: vec![0, 0, 1, 1],
        ..Default::default()
    });
    let w = TensorProto {
        name: "w".into(),
        dims: vec![1, 1, 1, 1],
        data_type: 1,
        float_data: vec![1.0],
        ..Default::default()
    };
    let m =
        OnnxModel::from_bytes(&model_with(n, vec![w]).encode_to_vec(), None, &Device::Cpu).unwrap();
    let x = Tensor::ones([1, 1, 3, 3], DType::F32, &Device::Cpu).unwrap();
    let e = m.run(&[x]).unwrap_err().to_string();
    assert!(
        e.contains("asymmetric pads") && e.contains("my_Conv"),
        "{e}"
    );
}

#[test]
fn truncated_and_garbage_files_are_errors() {
    let bytes = std::fs::read(fixture("lenet5.onnx")).unwrap();
    for cut in [1, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        let r = OnnxModel::from_bytes(&bytes[..cut], None, &Device::Cpu);
        assert!(r.is_err(), "a file cut at {cut} bytes loaded");
    }
    // A length prefix claiming ~4 GiB: refused, nothing allocated for it.
    let e = OnnxModel::from_bytes(b"\x3a\xff\xff\xff\xff\x0f", None, &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("not a valid ONNX"), "{e}");
}

#[test]
fn huge_declared_shapes_are_refused_before_allocating() {
    let big = TensorProto {
        name: "w".into(),
        dims: vec![1 << 40, 1 << 40],
        data_type: 1,
        raw_data: vec![0; 8],
        ..Default::default()
    };
    let e = load_err(&model_with(node("Relu", &["x"]), vec![big]), None);
    assert!(e.contains("impossibly large") || e.contains("needs"), "{e}");
    let short = TensorProto {
        name: "w".into(),
        dims: vec![1 << 20],
        data_type: 1,
        raw_data: vec![0; 8],
        ..Default::default()
    };
    let e = load_err(&model_with(node("Relu", &["x"]), vec![short]), None);
    assert!(e.contains("`w`"), "{e}");
}

fn external(location: &str, offset: u64, length: u64) -> TensorProto {
    let kv = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    TensorProto {
        name: "w".into(),
        dims: vec![2, 2],
        data_type: 1,
        data_location: 1,
        external_data: vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", length.to_string()),
        ],
        ..Default::default()
    }
}

#[test]
fn external_data_is_read_from_the_models_folder_only() {
    let dir = tempfile::tempdir().unwrap();
    let vals = [1f32, -2.0, 3.0, -4.0];
    let mut blob = vec![0u8; 4];
    blob.extend(vals.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.path().join("weights.bin"), &blob).unwrap();
    let add = node("Add", &["x", "w"]);
    let m = model_with(add.clone(), vec![external("weights.bin", 4, 16)]);
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let model = OnnxModel::load(&path, &Device::Cpu).unwrap();
    let y = model
        .run(&[Tensor::zeros([2, 2], DType::F32, &Device::Cpu).unwrap()])
        .unwrap();
    assert_eq!(y[0].to_vec::<f32>().unwrap(), vals);

    let outside = model_with(add.clone(), vec![external("../weights.bin", 0, 16)]);
    let e = load_err(&outside, Some(dir.path()));
    assert!(e.contains("outside the model's folder"), "{e}");
    let abs = model_with(add.clone(), vec![external("/etc/passwd", 0, 16)]);
    assert!(load_err(&abs, Some(dir.path())).contains("outside"));
    let short = model_with(add.clone(), vec![external("weights.bin", 8, 16)]);
    let e = load_err(&short, Some(dir.path()));
    assert!(e.contains("too short"), "{e}");
    let lying = model_with(add, vec![external("weights.bin", 0, 1 << 40)]);
    let e = load_err(&lying, Some(dir.path()));
    assert!(e.contains("declares"), "{e}");
}

#[test]
fn a_huge_constant_of_shape_is_refused() {
    let shape = TensorProto {
        name: "s".into(),
        dims: vec![3],
        data_type: 7,
        int64_data: vec![1 << 30, 1 << 30, 1 << 20],
        ..Default::default()
    };
    let m = model_with(node("ConstantOfShape", &["s"]), vec![shape]);
    let m = OnnxModel::from_bytes(&m.encode_to_vec(), None, &Device::Cpu).unwrap();
    let x = Tensor::zeros([1], DType::F32, &Device::Cpu).unwrap();
    let e = m.run(&[x]).unwrap_err().to_string();
    assert!(e.contains("ConstantOfShape") && e.contains("memory"), "{e}");
}

#[test]
fn the_rules_check_catches_an_unsorted_graph() {
    let mut m = model_with(node("Relu", &["t"]), vec![]);
    let g = m.graph.as_mut().unwrap();
    g.node.push(NodeProto {
        op_type: "Relu".into(),
        name: "late".into(),
        input: vec!["x".into()],
        output: vec!["t".into()],
        ..Default::default()
    });
    for v in g.input.iter_mut().chain(g.output.iter_mut()) {
        v.r#type = Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: 1,
                shape: Some(Default::default()),
            }),
            ..Default::default()
        });
    }
    let e = onnx_common::check_onnx_rules(&m).unwrap_err();
    assert!(e.contains("topologically"), "{e}");
    // The importer refuses it too, naming the node.
    let model = OnnxModel::from_bytes(&m.encode_to_vec(), None, &Device::Cpu).unwrap();
    let e = model
        .run(&[Tensor::zeros([1], DType::F32, &Device::Cpu).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("my_Relu") && e.contains("before"), "{e}");
}

#[test]
fn corrupted_files_never_panic() {
    let bytes = std::fs::read(fixture("resnet_small.onnx")).unwrap();
    let x = Tensor::zeros([1, 3, 32, 32], DType::F32, &Device::Cpu).unwrap();
    // Flip bits in the graph's nodes and attributes (the file's start), and anywhere.
    let mut state = 12345u64;
    for k in 0..800 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let span = if k % 4 == 0 {
            bytes.len()
        } else {
            4096.min(bytes.len())
        };
        let pos = (state >> 33) as usize % span;
        let mut b = bytes.clone();
        b[pos] ^= 1 << ((state >> 29) & 7);
        let r = std::panic::catch_unwind(|| {
            if let Ok(m) = OnnxModel::from_bytes(&b, None, &Device::Cpu) {
                let _ = m.run(std::slice::from_ref(&x));
            }
        });
        assert!(r.is_ok(), "panic with byte {pos} flipped");
    }
}
