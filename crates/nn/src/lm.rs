//! Character-level language models of the zoo (the models of PyTorch's recipe in
//! `bench/torch_text.py`, with the same keys): `char-lstm` and `gpt-mini`.
//! Both map token ids `[batch, seq]` (i64) to logits `[batch, seq, vocab]`.

use crate::{
    Embedding, FfActivation, LayerNorm, Linear, Lstm, Module, RnnConfig, TransformerConfig,
    TransformerEncoder, TransformerEncoderLayer,
};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// The language models by name.
pub const LM_NAMES: [&str; 2] = ["char-lstm", "gpt-mini"];

/// The canonical name of a language model (`char_lstm`, `charlstm`, `gpt_mini` accepted), if `name` is one.
pub fn lm_canonical(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "char-lstm" | "charlstm" | "lstm" => Some("char-lstm"),
        "gpt-mini" | "gptmini" | "gpt" => Some("gpt-mini"),
        _ => None,
    }
}

/// A language model: token ids in, next-token logits out.
pub trait LanguageModel: Module {
    /// The longest context the model accepts (`None`: any length).
    fn context(&self) -> Option<usize>;

    /// The logits `[vocab]` of the token after `ids` (non-empty). `cache` carries state
    /// between calls on one growing sequence (start with `None`); models without one re-read
    /// the last `context()` ids.
    fn next_logits(&self, ids: &[i64], cache: &mut Option<Vec<Tensor>>) -> Result<Tensor> {
        let _ = cache;
        let start = self.context().map_or(0, |c| ids.len().saturating_sub(c));
        let ctx = &ids[start..];
        let x = Tensor::from_vec(ctx.to_vec(), [1, ctx.len()], &Device::Cpu)?;
        self.forward(&x)?.select(0, 0)?.select(0, -1)
    }
}

/// Samples `tokens` ids after `prompt` (non-empty): logits / `temperature` (0 = greedy),
/// restricted to the `top_k` most likely (when given), drawn from a generator seeded with
/// `seed` — the same arguments give the same text. Runs without recording gradients.
///
/// # Errors
/// `Error::Msg` for an empty prompt, a negative `temperature` or `top_k = Some(0)`; errors of
/// the model's forward (a fixed-context model sees only the last `context` ids).
pub fn generate(
    model: &dyn LanguageModel,
    prompt: &[i64],
    tokens: usize,
    temperature: f64,
    top_k: Option<usize>,
    seed: u64,
) -> Result<Vec<i64>> {
    if prompt.is_empty() {
        return Err(Error::msg("generate: the prompt must not be empty"));
    }
    if !(temperature >= 0.0 && temperature.is_finite()) {
        return Err(Error::msg(format!(
            "generate: temperature must be a finite value >= 0, got {temperature}"
        )));
    }
    if top_k == Some(0) {
        return Err(Error::msg(
            "generate: top_k must be at least 1 (None: no limit)",
        ));
    }
    let _g = mlfw_autograd::no_grad();
    let mut g = Generator::new(seed);
    let (mut ids, mut cache) = (prompt.to_vec(), None);
    for _ in 0..tokens {
        let logits = model
            .next_logits(&ids, &mut cache)?
            .to_dtype(DType::F64)?
            .to_vec::<f64>()?;
        ids.push(sample(&logits, temperature, top_k, &mut g) as i64);
    }
    Ok(ids[prompt.len()..].to_vec())
}

/// One draw from `softmax(logits / temperature)` over the `top_k` largest logits.
fn sample(logits: &[f64], temperature: f64, top_k: Option<usize>, g: &mut Generator) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if temperature == 0.0 {
        return order[0];
    }
    order.truncate(top_k.unwrap_or(order.len()).min(order.len()));
    let top = logits[order[0]];
    let w: Vec<f64> = order
        .iter()
        .map(|&i| ((logits[i] - top) / temperature).exp())
        .collect();
    let mut u = g.next_f64() * w.iter().sum::<f64>();
    for (k, wk) in w.iter().enumerate() {
        if u < *wk {
            return order[k];
        }
        u -= wk;
    }
    order[order.len() - 1]
}

/// Builds `name` (see [`LM_NAMES`]) for `vocab` tokens from the global generator.
///
/// # Errors
/// `Error::Msg` naming the valid names for an unknown `name`.
pub fn build_lm(name: &str, vocab: usize, device: &Device) -> Result<Box<dyn LanguageModel>> {
    match lm_canonical(name) {
        Some("char-lstm") => Ok(Box::new(CharLstm::new(vocab, device)?)),
        Some("gpt-mini") => Ok(Box::new(GptMini::new(vocab, 128, device)?)),
        _ => Err(Error::msg(format!(
            "unknown language model `{name}`; valid: {}",
            LM_NAMES.join(", ")
        ))),
    }
}

fn check_ids(x: &Tensor, what: &str) -> Result<()> {
    if x.rank() != 2 || x.dtype() != DType::I64 {
        return Err(Error::msg(format!(
            "{what}: expected token ids [batch, seq] of int64, got {} of {}",
            x.shape(),
            x.dtype()
        )));
    }
    Ok(())
}

/// `char-lstm`: embedding 64 → 2-layer LSTM 256 (batch-first) → linear to the vocabulary.
/// Keys `emb.weight`, `rnn.weight_ih_l0`, ..., `out.weight`, `out.bias`.
#[derive(Debug, Clone)]
pub struct CharLstm {
    /// Token embedding `[vocab, 64]`.
    pub emb: Embedding,
    /// The recurrent stack.
    pub rnn: Lstm,
    /// Output projection `[vocab, 256]`.
    pub out: Linear,
}

impl CharLstm {
    /// A model for `vocab` tokens from the global generator.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(vocab: usize, device: &Device) -> Result<Self> {
        Ok(CharLstm {
            emb: Embedding::new(vocab, 64, device)?,
            rnn: Lstm::new(
                RnnConfig::new(64, 256).num_layers(2).batch_first(true),
                device,
            )?,
            out: Linear::new(256, vocab, true, device)?,
        })
    }
}

impl Module for CharLstm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_ids(x, "char-lstm")?;
        self.out.forward(&self.rnn.forward(&self.emb.forward(x)?)?)
    }
    crate::children!(emb, rnn, out);
}

impl LanguageModel for CharLstm {
    fn context(&self) -> Option<usize> {
        None
    }

    /// Feeds only the new token after the first call (the cache holds `h` and `c`).
    fn next_logits(&self, ids: &[i64], cache: &mut Option<Vec<Tensor>>) -> Result<Tensor> {
        let new = match cache {
            Some(_) => &ids[ids.len() - 1..],
            None => ids,
        };
        let x = Tensor::from_vec(new.to_vec(), [1, new.len()], &Device::Cpu)?;
        let state = cache.as_ref().map(|c| (&c[0], &c[1]));
        let (y, (h, c)) = self.rnn.forward_with(&self.emb.forward(&x)?, state)?;
        *cache = Some(vec![h, c]);
        self.out.forward(&y.select(0, 0)?.select(0, -1)?)
    }
}

/// `gpt-mini`: token + learned position embeddings (d 128), 4 pre-norm causal Transformer
/// blocks (4 heads, MLP 512, GELU, no dropout), a final LayerNorm and a linear head. Keys
/// `tok.weight`, `pos.weight`, `blocks.layers.{i}.*`, `ln.*`, `out.*`.
#[derive(Debug, Clone)]
pub struct GptMini {
    /// Token embedding `[vocab, 128]`.
    pub tok: Embedding,
    /// Position embedding `[context, 128]`.
    pub pos: Embedding,
    /// The blocks.
    pub blocks: TransformerEncoder,
    /// Final normalisation.
    pub ln: LayerNorm,
    /// Output projection.
    pub out: Linear,
}

impl GptMini {
    /// A model for `vocab` tokens and up to `context` positions, from the global generator.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(vocab: usize, context: usize, device: &Device) -> Result<Self> {
        let d = 128;
        let mut c = TransformerConfig::new(d, 4);
        c.dim_feedforward = 512;
        c.dropout = 0.0;
        c.activation = FfActivation::Gelu;
        c.batch_first = true;
        c.norm_first = true;
        let tok = Embedding::new(vocab, d, device)?;
        let pos = Embedding::new(context, d, device)?;
        let seed = mlfw_core::random::with_global(|g| g.next_below(u64::MAX));
        let layer = TransformerEncoderLayer::new_with(c, device, &mut Generator::new(seed))?;
        Ok(GptMini {
            tok,
            pos,
            blocks: TransformerEncoder::new(&layer, 4, None)?,
            ln: LayerNorm::new(&[d], device)?,
            out: Linear::new(d, vocab, true, device)?,
        })
    }
}

impl Module for GptMini {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_ids(x, "gpt-mini")?;
        let (t, ctx) = (x.dims()[1], self.pos.weight.dims()[0]);
        if t > ctx {
            return Err(Error::msg(format!(
                "gpt-mini: sequence of {t} tokens is longer than the context {ctx}"
            )));
        }
        let pos = Tensor::arange(0.0, t as f64, 1.0, DType::I64, &x.device())?;
        let h = self.tok.forward(x)?.add(&self.pos.forward(&pos)?)?;
        let h = self.blocks.forward_with(&h, None, None, true)?;
        self.out.forward(&self.ln.forward(&h)?)
    }
    crate::children!(tok, pos, blocks, ln, out);
}

impl LanguageModel for GptMini {
    fn context(&self) -> Option<usize> {
        Some(self.pos.weight.dims()[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_keys() {
        let m = build_lm("char-lstm", 65, &Device::Cpu).unwrap();
        let x = Tensor::zeros([2, 5], DType::I64, &Device::Cpu).unwrap();
        assert_eq!(m.forward(&x).unwrap().dims(), &[2, 5, 65]);
        assert_eq!(m.state_dict()[1].0, "rnn.weight_ih_l0");
        let g = build_lm("gpt_mini", 65, &Device::Cpu).unwrap();
        assert_eq!(g.forward(&x).unwrap().dims(), &[2, 5, 65]);
        let keys: Vec<String> = g.state_dict().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"blocks.layers.3.self_attn.in_proj_weight".to_string()));
        assert_eq!(g.context(), Some(128));
        let e = g
            .forward(&Tensor::zeros([1, 129], DType::I64, &Device::Cpu).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("129"));
        // Sampling is reproducible from the seed; the LSTM's cached steps match a full re-run.
        let a = generate(m.as_ref(), &[1, 2, 3], 20, 0.8, Some(5), 7).unwrap();
        assert_eq!(
            a,
            generate(m.as_ref(), &[1, 2, 3], 20, 0.8, Some(5), 7).unwrap()
        );
        let ids = [1i64, 2, 3, 4];
        let full = m
            .forward(&Tensor::from_vec(ids.to_vec(), [1, 4], &Device::Cpu).unwrap())
            .unwrap();
        let mut cache = None;
        m.next_logits(&ids[..3], &mut cache).unwrap();
        let step = m.next_logits(&ids, &mut cache).unwrap();
        let d = step
            .sub(&full.select(0, 0).unwrap().select(0, 3).unwrap())
            .unwrap()
            .abs()
            .unwrap();
        assert!(d.to_vec::<f32>().unwrap().iter().all(|v| *v < 1e-5));
        assert_eq!(
            generate(g.as_ref(), &[5; 140], 3, 0.0, None, 0)
                .unwrap()
                .len(),
            3
        );
    }
}
