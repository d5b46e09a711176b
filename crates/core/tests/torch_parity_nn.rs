//! Forward and backward parity of conv2d and pooling against PyTorch fixtures: the shared
//! `ops.safetensors` and this crate's `fixtures/pool_edge.safetensors` (ceil_mode,
//! count_include_pad, dilation, adaptive edge cases; made by `fixtures/gen_pool_edge.py`).

mod common;

use common::assert_close;
use mlfw_core::{safetensors, Conv2dParams, Device, Pool2dParams, Tensor};
use serde_json::Value;

const OPS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/torch-ref/ops.safetensors"
);
const POOL_EDGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/pool_edge.safetensors"
);
const TOL: f64 = 1e-4;

/// A metadata parameter as a pair (ints are square).
fn pair(m: &Value, key: &str, default: usize) -> (usize, usize) {
    match m.get(key) {
        Some(Value::Number(v)) => {
            let v = v.as_u64().unwrap() as usize;
            (v, v)
        }
        Some(Value::Array(a)) => (
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        ),
        None | Some(Value::Null) => (default, default),
        Some(other) => panic!("unexpected {key}: {other}"),
    }
}

/// Every case whose op is `op`: (name, metadata).
fn cases(f: &safetensors::SafeTensorsFile, op: &str) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = f
        .metadata
        .iter()
        .filter_map(|(k, s)| {
            let m: Value = serde_json::from_str(s).ok()?;
            (m.get("op")?.as_str()? == op).then(|| (k.clone(), m))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Every case of `op` in every fixture file, with the file it lives in.
fn all_cases(op: &str) -> Vec<(safetensors::SafeTensorsFile, String, Value)> {
    let mut out = Vec::new();
    for path in [OPS, POOL_EDGE] {
        let f = safetensors::load(path, &Device::Cpu).expect("fixture file");
        for (name, m) in cases(&f, op) {
            out.push((f.clone(), name, m));
        }
    }
    assert!(!out.is_empty(), "no {op} cases");
    out
}

#[test]
fn conv2d_matches_torch() {
    let cs = all_cases("conv2d");
    assert!(cs.len() >= 4, "expected conv2d cases, got {}", cs.len());
    for (f, name, m) in cs {
        let t = |s: &str| f.require(&format!("{name}.{s}")).unwrap().clone();
        let p = Conv2dParams {
            stride: pair(&m, "stride", 1),
            padding: pair(&m, "padding", 0),
            dilation: pair(&m, "dilation", 1),
            groups: m.get("groups").and_then(Value::as_u64).unwrap_or(1) as usize,
        };
        let (x, w) = (t("in0"), t("in1"));
        let bias = f.get(&format!("{name}.in2")).cloned();
        let out = x.conv2d(&w, bias.as_ref(), p).unwrap();
        assert_close(&out, &t("out"), TOL, &format!("{name} forward"));
        let gout = t("gout");
        let (h, wd) = (x.dims()[2], x.dims()[3]);
        let (kh, kw) = (w.dims()[2], w.dims()[3]);
        let gx = gout.conv2d_backward_input(&w, p, (h, wd)).unwrap();
        assert_close(&gx, &t("grad0"), TOL, &format!("{name} grad input"));
        let gw = x.conv2d_backward_weight(&gout, p, (kh, kw)).unwrap();
        assert_close(&gw, &t("grad1"), TOL, &format!("{name} grad weight"));
    }
}

fn pool_params(m: &Value) -> Pool2dParams {
    let kernel = pair(m, "kernel", 1);
    Pool2dParams {
        kernel,
        stride: match m.get("stride") {
            None | Some(Value::Null) => kernel,
            _ => pair(m, "stride", 1),
        },
        padding: pair(m, "padding", 0),
        dilation: pair(m, "dilation", 1),
        ceil_mode: m.get("ceil_mode").and_then(Value::as_bool).unwrap_or(false),
        count_include_pad: m
            .get("count_include_pad")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    }
}

#[test]
fn max_pool2d_matches_torch() {
    let cs = all_cases("max_pool2d");
    assert!(
        cs.len() >= 6,
        "expected the edge cases too, got {}",
        cs.len()
    );
    for (f, name, m) in cs {
        let t = |s: &str| f.require(&format!("{name}.{s}")).unwrap().clone();
        let x = t("in0");
        let (out, idx) = x.max_pool2d_with_indices(pool_params(&m)).unwrap();
        assert_close(&out, &t("out"), TOL, &format!("{name} forward"));
        let gx = t("gout").max_pool2d_backward(&idx, x.shape()).unwrap();
        assert_close(&gx, &t("grad0"), TOL, &format!("{name} grad input"));
    }
}

#[test]
fn avg_pool2d_matches_torch() {
    let cs = all_cases("avg_pool2d");
    assert!(
        cs.len() >= 5,
        "expected the edge cases too, got {}",
        cs.len()
    );
    for (f, name, m) in cs {
        let t = |s: &str| f.require(&format!("{name}.{s}")).unwrap().clone();
        let x = t("in0");
        let p = pool_params(&m);
        assert_close(
            &x.avg_pool2d(p).unwrap(),
            &t("out"),
            TOL,
            &format!("{name} forward"),
        );
        let gx = t("gout").avg_pool2d_backward(p, x.shape()).unwrap();
        assert_close(&gx, &t("grad0"), TOL, &format!("{name} grad input"));
    }
}

#[test]
fn adaptive_avg_pool2d_matches_torch() {
    let cs = all_cases("adaptive_avg_pool2d");
    assert!(
        cs.len() >= 4,
        "expected the edge cases too, got {}",
        cs.len()
    );
    for (f, name, m) in cs {
        let t = |s: &str| f.require(&format!("{name}.{s}")).unwrap().clone();
        let x = t("in0");
        let out_hw = pair(&m, "output", 1);
        let out: Tensor = x.adaptive_avg_pool2d(out_hw).unwrap();
        assert_close(&out, &t("out"), TOL, &format!("{name} forward"));
        let gx = t("gout").adaptive_avg_pool2d_backward(x.shape()).unwrap();
        assert_close(&gx, &t("grad0"), TOL, &format!("{name} grad input"));
    }
}
