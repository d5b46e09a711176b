//! Gradchecks (f64, five-point differences) of the sequence layers: every recurrent mode over
//! its explicit weights, scaled-dot-product attention with masks, MultiheadAttention over its
//! input and weights, the Transformer layers and the cells; plus the sequence layers' errors.

use mlfw_autograd::{gradcheck, GradcheckOptions};
use mlfw_core::{DType, Device, Generator, Result, Tensor};
use mlfw_nn::functional::{recurrent, scaled_dot_product_attention};
use mlfw_nn::*;

fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::rand_with(-0.9, 0.9, shape, DType::F64, &Device::Cpu, &mut g)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

fn check(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let r =
        gradcheck(f, inputs, GradcheckOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(r.passed(), "{name}:\n{r}");
}

/// Every parameter of `m` as an f64 parameter.
fn to_f64(m: &mut dyn Module) {
    m.visit_tensors_mut("", &mut |_, t, _| {
        *t = t.to_dtype(DType::F64)?.detach().requires_grad_(true)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn recurrent_modes_gradcheck() {
    for (mode, bidir, batch_first) in [
        (RnnMode::RnnTanh, false, true),
        (RnnMode::RnnRelu, true, false),
        (RnnMode::Lstm, true, true),
        (RnnMode::Gru, true, false),
    ] {
        let cfg = RnnConfig::new(3, 2)
            .num_layers(2)
            .bidirectional(bidir)
            .batch_first(batch_first);
        let xs: &[usize] = if batch_first { &[2, 3, 3] } else { &[3, 2, 3] };
        let mut inputs = vec![leaf(xs, 1), leaf(&[2 * cfg.directions(), 2, 2], 2)];
        let lstm = mode == RnnMode::Lstm;
        if lstm {
            inputs.push(leaf(&[2 * cfg.directions(), 2, 2], 3));
        }
        let first_w = inputs.len();
        for (i, (_, s)) in cfg.weight_keys(mode).into_iter().enumerate() {
            inputs.push(leaf(&s, 10 + i as u64));
        }
        check(
            &format!("{mode:?}"),
            |t| {
                let c0 = if lstm { Some(&t[2]) } else { None };
                let r = recurrent(mode, &cfg, &t[first_w..], &t[0], Some(&t[1]), c0, false)?;
                let mut parts = vec![r.output.flatten(0, -1)?, r.h_n.flatten(0, -1)?];
                parts.extend(r.c_n.map(|c| c.flatten(0, -1)).transpose()?);
                Tensor::cat(&parts, 0)
            },
            &inputs,
        );
    }
}

#[test]
fn attention_gradcheck() {
    let (q, k, v) = (
        leaf(&[2, 3, 4], 1),
        leaf(&[2, 5, 4], 2),
        leaf(&[2, 5, 3], 3),
    );
    let mask = leaf(&[3, 5], 4).detach();
    check(
        "sdpa float mask",
        |t| scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&mask), 0.0, false, None),
        &[q.clone(), k, v],
    );
    check(
        "sdpa causal",
        |t| scaled_dot_product_attention(&t[0], &t[0], &t[1], None, 0.0, true, Some(0.7)),
        &[q, leaf(&[2, 3, 2], 5)],
    );
}

#[test]
fn multihead_attention_gradcheck() {
    let mut m =
        MultiheadAttention::new_with(4, 2, true, true, &Device::Cpu, &mut Generator::new(0))
            .unwrap();
    to_f64(&mut m);
    let kpm = Tensor::from_vec(
        vec![false, false, true, false, false, false],
        [2, 3],
        &Device::Cpu,
    )
    .unwrap();
    let x = leaf(&[2, 3, 4], 1);
    let inputs = [
        x,
        m.in_proj_weight.clone(),
        m.in_proj_bias.clone().unwrap(),
        m.out_proj.weight.clone(),
    ];
    check(
        "MultiheadAttention",
        |t| {
            let mut a = m.clone();
            a.in_proj_weight = t[1].clone();
            a.in_proj_bias = Some(t[2].clone());
            a.out_proj.weight = t[3].clone();
            let args = AttnArgs {
                key_padding_mask: Some(&kpm),
                is_causal: true,
                ..Default::default()
            };
            let (o, w) = a.forward_with(&t[0], &t[0], &t[0], args)?;
            Tensor::cat(&[o.flatten(0, -1)?, w.unwrap().flatten(0, -1)?], 0)
        },
        &inputs,
    );
    // Cross-attention with separate key/value, unaveraged weights.
    let (q, kv) = (leaf(&[2, 2, 4], 7), leaf(&[2, 3, 4], 8));
    check(
        "MultiheadAttention cross",
        |t| {
            let args = AttnArgs {
                average_attn_weights: false,
                ..Default::default()
            };
            let (o, w) = m.forward_with(&t[0], &t[1], &t[1], args)?;
            Tensor::cat(&[o.flatten(0, -1)?, w.unwrap().flatten(0, -1)?], 0)
        },
        &[q, kv],
    );
}

#[test]
fn transformer_layers_gradcheck() {
    let mut g = Generator::new(0);
    for (norm_first, act) in [(false, FfActivation::Relu), (true, FfActivation::Gelu)] {
        let mut c = TransformerConfig::new(4, 2);
        c.dim_feedforward = 6;
        c.dropout = 0.0;
        c.norm_first = norm_first;
        c.activation = act;
        c.batch_first = true;
        let mut enc = TransformerEncoderLayer::new_with(c, &Device::Cpu, &mut g).unwrap();
        to_f64(&mut enc);
        check(
            &format!("encoder norm_first={norm_first}"),
            |t| enc.forward_with(&t[0], None, None, true),
            &[leaf(&[2, 3, 4], 1)],
        );
        let mut dec = TransformerDecoderLayer::new_with(c, &Device::Cpu, &mut g).unwrap();
        to_f64(&mut dec);
        let masks = DecoderMasks {
            tgt_is_causal: true,
            ..Default::default()
        };
        check(
            &format!("decoder norm_first={norm_first}"),
            |t| dec.forward_with(&t[0], &t[1], masks),
            &[leaf(&[2, 3, 4], 2), leaf(&[2, 2, 4], 3)],
        );
    }
}

#[test]
fn cells_gradcheck() {
    let mut g = Generator::new(0);
    let mut lstm = LstmCell::new_with(3, 2, true, &Device::Cpu, &mut g).unwrap();
    to_f64(&mut lstm);
    check(
        "LstmCell",
        |t| {
            let (h, c) = lstm.step(&t[0], Some((&t[1], &t[2])))?;
            Tensor::cat(&[h, c], 1)
        },
        &[leaf(&[2, 3], 1), leaf(&[2, 2], 2), leaf(&[2, 2], 3)],
    );
    let mut gru = GruCell::new_with(3, 2, true, &Device::Cpu, &mut g).unwrap();
    to_f64(&mut gru);
    check(
        "GruCell",
        |t| gru.step(&t[0], Some(&t[1])),
        &[leaf(&[2, 3], 4), leaf(&[2, 2], 5)],
    );
    let mut rnn = RnnCell::new_with(3, 2, false, &Device::Cpu, &mut g).unwrap();
    to_f64(&mut rnn);
    check("RnnCell", |t| rnn.step(&t[0], None), &[leaf(&[3], 6)]);
    let mut relu = RnnCell::new_with(3, 2, true, &Device::Cpu, &mut g)
        .unwrap()
        .relu();
    to_f64(&mut relu);
    check(
        "RnnCell relu",
        |t| relu.step(&t[0], Some(&t[1])),
        &[leaf(&[2, 3], 7), leaf(&[2, 2], 8)],
    );
}

#[test]
fn cells_match_layers() {
    // A one-layer LSTM is the cell applied step by step, with the same weights.
    let mut g = Generator::new(3);
    let layer = Lstm::new_with(RnnConfig::new(3, 4), &Device::Cpu, &mut g).unwrap();
    let cell = LstmCell::new_with(3, 4, true, &Device::Cpu, &mut g).unwrap();
    let sd: std::collections::HashMap<String, Tensor> = layer
        .state_dict()
        .into_iter()
        .map(|(k, t)| (k.trim_end_matches("_l0").to_string(), t))
        .collect();
    cell.load_state_dict(&sd, true).unwrap();
    let x = Tensor::randn(0.0, 1.0, [5, 2, 3], DType::F32, &Device::Cpu).unwrap();
    let (out, _) = layer.forward_with(&x, None).unwrap();
    let mut st: Option<(Tensor, Tensor)> = None;
    for t in 0..5 {
        let (h, c) = cell
            .step(&x.select(0, t).unwrap(), st.as_ref().map(|(h, c)| (h, c)))
            .unwrap();
        let d = h
            .sub(&out.select(0, t).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max(&[0, 1], false)
            .unwrap();
        assert!(d.item::<f32>().unwrap() < 1e-5);
        st = Some((h, c));
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dev = Device::Cpu;
    let m = MultiheadAttention::new(8, 2, true, true, &dev).unwrap();
    let x = Tensor::zeros([2, 5, 8], DType::F32, &dev).unwrap();
    let wrong_shape = Tensor::zeros([4, 5], DType::Bool, &dev).unwrap();
    let args = AttnArgs {
        attn_mask: Some(&wrong_shape),
        ..Default::default()
    };
    let e = m.forward_with(&x, &x, &x, args).unwrap_err().to_string();
    assert!(
        e.contains("attn_mask") && e.contains("[5, 5]") && e.contains("[4, 5]"),
        "{e}"
    );
    let wrong_dtype = Tensor::zeros([2, 5], DType::I64, &dev).unwrap();
    let args = AttnArgs {
        key_padding_mask: Some(&wrong_dtype),
        ..Default::default()
    };
    let e = m.forward_with(&x, &x, &x, args).unwrap_err().to_string();
    assert!(e.contains("key_padding_mask") && e.contains("int64"), "{e}");
    let e = m
        .forward(&Tensor::zeros([2, 5, 7], DType::F32, &dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("query") && e.contains("[2, 5, 7]"), "{e}");
    let gru = Gru::new(RnnConfig::new(3, 4).num_layers(2), &dev).unwrap();
    let h0 = Tensor::zeros([1, 2, 4], DType::F32, &dev).unwrap();
    let e = gru
        .forward_with(
            &Tensor::zeros([5, 2, 3], DType::F32, &dev).unwrap(),
            Some(&h0),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("h0") && e.contains("[2, 2, 4]") && e.contains("[1, 2, 4]"),
        "{e}"
    );
    assert!(MultiheadAttention::new(6, 4, true, true, &dev).is_err());
}

#[test]
fn fused_lstm_matches_composed_to_second_order() {
    // Float32 on the CPU takes the fused op; float64 the composed ops. Both must agree on
    // the output, the gradient and (through create_graph) the gradient of the gradient.
    let m32 = Lstm::new_with(
        RnnConfig::new(3, 4).num_layers(2).bidirectional(true),
        &Device::Cpu,
        &mut Generator::new(1),
    )
    .unwrap();
    let mut m64 = m32.clone();
    to_f64(&mut m64);
    let x64 = leaf(&[5, 2, 3], 9);
    let x32 = x64
        .to_dtype(DType::F32)
        .unwrap()
        .detach()
        .requires_grad_(true)
        .unwrap();
    let run = |m: &Lstm, x: &Tensor| -> Vec<Vec<f64>> {
        let (y, (h, c)) = m.forward_with(x, None).unwrap();
        let loss = y
            .square()
            .unwrap()
            .sum_all()
            .unwrap()
            .add(&h.add(&c).unwrap().sum_all().unwrap())
            .unwrap();
        let gx = mlfw_autograd::grad_with(&loss, std::slice::from_ref(x), None, true).unwrap()[0]
            .clone()
            .unwrap();
        let s = gx.square().unwrap().sum_all().unwrap();
        let gxx = mlfw_autograd::grad(&s, std::slice::from_ref(x), None).unwrap()[0]
            .clone()
            .unwrap();
        [y, gx, gxx]
            .iter()
            .map(|t| t.to_f64_vec().unwrap())
            .collect()
    };
    let (a, b) = (run(&m32, &x32), run(&m64, &x64));
    for (what, (u, v)) in ["out", "grad", "grad of grad"].iter().zip(a.iter().zip(&b)) {
        let scale = v.iter().fold(0f64, |m, x| m.max(x.abs())) + 1e-6;
        let err = u.iter().zip(v).fold(0f64, |m, (p, q)| m.max((p - q).abs())) / scale;
        assert!(err < 1e-4, "{what}: rel err {err}");
    }
}
