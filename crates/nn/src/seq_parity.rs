//! Runs the sequence-model reference cases (the `tests/fixtures/torch-seq/seq.safetensors`
//! format): recurrent layers, MultiheadAttention and TransformerEncoderLayer with any sizes
//! and options. For each case the module is built from the constructor arguments in the
//! metadata, loaded with `NAME.param.*`, run forward, and `Σ out · gout` run backward; the
//! output, final states, attention weights and every gradient are compared with
//! [`crate::parity::rel_err`] ≤ [`crate::parity::TOLERANCE`].

use crate::parity::{rel_err, TOLERANCE};
use crate::{
    AttnArgs, FfActivation, Gru, Lstm, Module, MultiheadAttention, Rnn, RnnConfig,
    TransformerConfig, TransformerEncoderLayer,
};
use mlfw_autograd::Backward;
use mlfw_core::safetensors::SafeTensorsFile;
use mlfw_core::{Device, Error, Generator, Result, Tensor};
use serde_json::Value;
use std::collections::HashMap;

/// The outcome of one case: every compared tensor with its relative error.
#[derive(Debug, Clone)]
pub struct SeqCase {
    /// Case name.
    pub name: String,
    /// PyTorch module name.
    pub module: String,
    /// `(what, relative error)` per compared tensor.
    pub errs: Vec<(String, f64)>,
    /// Why the case could not run.
    pub error: Option<String>,
}

impl SeqCase {
    /// Ran, and every error within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.errs.iter().all(|(_, e)| *e <= TOLERANCE)
    }
}

impl std::fmt::Display for SeqCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<20} {:<24}", self.name, self.module)?;
        if let Some(e) = &self.error {
            return write!(f, " FAIL ({e})");
        }
        let worst = self.errs.iter().fold(("-", 0.0f64), |w, (n, e)| {
            if *e > w.1 || e.is_nan() {
                (n, *e)
            } else {
                w
            }
        });
        write!(
            f,
            " {} tensors, max rel err {:.2e} ({}) {}",
            self.errs.len(),
            worst.1,
            worst.0,
            if self.passed() { "PASS" } else { "FAIL" }
        )?;
        for (n, e) in self
            .errs
            .iter()
            .filter(|(_, e)| e.is_nan() || *e > TOLERANCE)
        {
            write!(f, "\n    {n}: {e:.2e}")?;
        }
        Ok(())
    }
}

/// Runs every case of a loaded file, sorted by name.
pub fn run(file: &SafeTensorsFile) -> Vec<SeqCase> {
    let mut cases: Vec<(String, Value)> = file
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let j: Value = serde_json::from_str(v).ok()?;
            j.get("module")?;
            Some((k.clone(), j))
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
        .into_iter()
        .map(|(name, meta)| {
            let mut c = SeqCase {
                name: name.clone(),
                module: meta["module"].as_str().unwrap_or("?").to_string(),
                errs: vec![],
                error: None,
            };
            if let Err(e) = run_case(file, &name, &meta, &mut c.errs) {
                c.error = Some(e.to_string());
            }
            c
        })
        .collect()
}

fn uint(m: &Value, k: &str, default: Option<usize>) -> Result<usize> {
    match m[k].as_u64() {
        Some(v) => Ok(v as usize),
        None => {
            default.ok_or_else(|| Error::msg(format!("metadata: `{k}` missing or not an integer")))
        }
    }
}

fn flag(m: &Value, k: &str, default: bool) -> bool {
    m[k].as_bool().unwrap_or(default)
}

fn float(m: &Value, k: &str, default: f64) -> f64 {
    m[k].as_f64().unwrap_or(default)
}

/// What a case's forward pass produced, by fixture suffix (`out`, `h_n`, ...).
type Outputs = Vec<(&'static str, Tensor)>;

fn run_case(
    file: &SafeTensorsFile,
    name: &str,
    m: &Value,
    errs: &mut Vec<(String, f64)>,
) -> Result<()> {
    let opt = |s: &str| file.get(&format!("{name}.{s}")).cloned();
    let get = |s: &str| file.require(&format!("{name}.{s}")).cloned();
    let x = get("input")?.detach().requires_grad_(true)?;
    let call = &m["call"];
    let mut g = Generator::new(0);
    let dev = Device::Cpu;
    let (module, outs): (Box<dyn Module>, Outputs) = match m["module"].as_str().unwrap_or("") {
        kind @ ("RNN" | "LSTM" | "GRU") => {
            let cfg = RnnConfig::new(uint(m, "input_size", None)?, uint(m, "hidden_size", None)?)
                .num_layers(uint(m, "num_layers", Some(1))?)
                .bias(flag(m, "bias", true))
                .batch_first(flag(m, "batch_first", false))
                .dropout(float(m, "dropout", 0.0))
                .bidirectional(flag(m, "bidirectional", false));
            let (h0, c0) = (opt("h0"), opt("c0"));
            match kind {
                "RNN" => {
                    let relu = m["nonlinearity"].as_str() == Some("relu");
                    let mut r = Rnn::new_with(cfg, relu, &dev, &mut g)?;
                    load(&mut r, file, name)?;
                    let (o, h) = r.forward_with(&x, h0.as_ref())?;
                    (Box::new(r), vec![("out", o), ("h_n", h)])
                }
                "LSTM" => {
                    let mut r = Lstm::new_with(cfg, &dev, &mut g)?;
                    load(&mut r, file, name)?;
                    let st = match (&h0, &c0) {
                        (Some(h), Some(c)) => Some((h, c)),
                        (None, None) => None,
                        _ => return Err(Error::msg("LSTM case needs both h0 and c0 or neither")),
                    };
                    let (o, (h, c)) = r.forward_with(&x, st)?;
                    (Box::new(r), vec![("out", o), ("h_n", h), ("c_n", c)])
                }
                _ => {
                    let mut r = Gru::new_with(cfg, &dev, &mut g)?;
                    load(&mut r, file, name)?;
                    let (o, h) = r.forward_with(&x, h0.as_ref())?;
                    (Box::new(r), vec![("out", o), ("h_n", h)])
                }
            }
        }
        "MultiheadAttention" => {
            let mut a = MultiheadAttention::new_with(
                uint(m, "embed_dim", None)?,
                uint(m, "num_heads", None)?,
                flag(m, "bias", true),
                flag(m, "batch_first", false),
                &dev,
                &mut g,
            )?
            .with_dropout(float(m, "dropout", 0.0));
            load(&mut a, file, name)?;
            let (kpm, am) = (opt("key_padding_mask"), opt("attn_mask"));
            let args = AttnArgs {
                key_padding_mask: kpm.as_ref(),
                attn_mask: am.as_ref(),
                need_weights: flag(call, "need_weights", true),
                average_attn_weights: flag(call, "average_attn_weights", true),
                is_causal: flag(call, "is_causal", false),
            };
            let (o, w) = a.forward_with(&x, &x, &x, args)?;
            let mut outs = vec![("out", o)];
            if let Some(w) = w {
                outs.push(("attn_weights", w));
            }
            (Box::new(a), outs)
        }
        "TransformerEncoderLayer" => {
            let mut c = TransformerConfig::new(uint(m, "d_model", None)?, uint(m, "nhead", None)?);
            c.dim_feedforward = uint(m, "dim_feedforward", Some(2048))?;
            c.dropout = float(m, "dropout", 0.1);
            c.layer_norm_eps = float(m, "layer_norm_eps", 1e-5);
            c.batch_first = flag(m, "batch_first", false);
            c.norm_first = flag(m, "norm_first", false);
            c.bias = flag(m, "bias", true);
            c.activation = match m["activation"].as_str().unwrap_or("relu") {
                "relu" => FfActivation::Relu,
                "gelu" => FfActivation::Gelu,
                a => return Err(Error::msg(format!("unknown activation `{a}`"))),
            };
            let mut l = TransformerEncoderLayer::new_with(c, &dev, &mut g)?;
            load(&mut l, file, name)?;
            let am = opt("attn_mask").filter(|_| flag(call, "src_mask", true));
            let kpm = opt("key_padding_mask");
            let o = l.forward_with(
                &x,
                am.as_ref(),
                kpm.as_ref(),
                flag(call, "is_causal", false),
            )?;
            (Box::new(l), vec![("out", o)])
        }
        other => return Err(Error::msg(format!("unknown module `{other}`"))),
    };
    for (what, t) in &outs {
        errs.push((what.to_string(), rel_err(t, &get(what)?)?));
    }
    outs[0].1.mul(&get("gout")?)?.sum_all()?.backward()?;
    let gi = x
        .grad()
        .ok_or_else(|| Error::msg("the input received no gradient"))?;
    errs.push(("grad.input".into(), rel_err(&gi, &get("grad.input")?)?));
    for (k, p) in module.named_parameters() {
        let want = get(&format!("grad.param.{k}"))?;
        let got = p.grad().unwrap_or(p.zeros_like()?);
        errs.push((format!("grad.param.{k}"), rel_err(&got, &want)?));
    }
    Ok(())
}

/// Loads `NAME.param.*` strictly (every key of the module, nothing else) and switches to eval
/// mode (dropout off; the fixtures use dropout 0).
fn load(m: &mut dyn Module, file: &SafeTensorsFile, name: &str) -> Result<()> {
    let prefix = format!("{name}.param.");
    let sd: HashMap<String, Tensor> = file
        .tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k.to_string(), t.clone())))
        .collect();
    m.load_state_dict(&sd, true)?;
    m.eval();
    Ok(())
}
