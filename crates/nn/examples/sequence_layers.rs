//! The sequence layers as a user would call them: an LSTM over a batch of sequences with
//! initial states, self-attention with a causal mask and padding, a Transformer encoder
//! stack, and sampling from the `char-lstm` language model.
//!
//! ```text
//! cargo run --release -p mlfw-nn --example sequence_layers
//! ```

use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_nn::functional::{generate_square_subsequent_mask, pad_sequence};
use mlfw_nn::lm::{build_lm, generate};
use mlfw_nn::*;

fn main() -> Result<()> {
    let dev = Device::Cpu;
    mlfw_core::manual_seed(0);

    // LSTM: 2 layers, bidirectional, batch-first; h0/c0 are [layers * directions, batch, hidden].
    let lstm = Lstm::new(
        RnnConfig::new(8, 16)
            .num_layers(2)
            .bidirectional(true)
            .batch_first(true),
        &dev,
    )?;
    let x = Tensor::randn(0.0, 1.0, [4, 10, 8], DType::F32, &dev)?;
    let h0 = Tensor::zeros([4, 4, 16], DType::F32, &dev)?;
    let (y, (h_n, c_n)) = lstm.forward_with(&x, Some((&h0, &h0)))?;
    println!(
        "LSTM: out {} h_n {} c_n {}; keys {:?}",
        y.shape(),
        h_n.shape(),
        c_n.shape(),
        lstm.state_dict()
            .iter()
            .take(4)
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    );

    // Variable-length sequences padded to one batch, with a key-padding mask (true = ignore).
    let seqs = [
        Tensor::randn(0.0, 1.0, [3, 16], DType::F32, &dev)?,
        Tensor::randn(0.0, 1.0, [5, 16], DType::F32, &dev)?,
    ];
    let batch = pad_sequence(&seqs, true, 0.0)?; // [2, 5, 16]
    let pad = Tensor::from_vec(
        vec![
            false, false, false, true, true, false, false, false, false, false,
        ],
        [2, 5],
        &dev,
    )?;
    let mha = MultiheadAttention::new(16, 4, true, true, &dev)?;
    let args = AttnArgs {
        key_padding_mask: Some(&pad),
        is_causal: true,
        ..Default::default()
    };
    let (o, w) = mha.forward_with(&batch, &batch, &batch, args)?;
    println!(
        "MultiheadAttention: out {} weights {}",
        o.shape(),
        w.map(|w| w.shape().clone()).unwrap()
    );

    // A 2-layer pre-norm GELU encoder with a float causal mask.
    let mut cfg = TransformerConfig::new(16, 4);
    cfg.dim_feedforward = 32;
    cfg.batch_first = true;
    cfg.norm_first = true;
    cfg.activation = FfActivation::Gelu;
    let layer = TransformerEncoderLayer::new_with(cfg, &dev, &mut mlfw_core::Generator::new(0))?;
    let enc = TransformerEncoder::new(&layer, 2, Some(LayerNorm::new(&[16], &dev)?))?;
    let mask = generate_square_subsequent_mask(5, &dev)?;
    println!(
        "TransformerEncoder: {}",
        enc.forward_with(&batch, Some(&mask), Some(&pad), false)?
            .shape()
    );

    // An untrained char-lstm samples noise; `mlfw train --model char-lstm` makes it Shakespeare.
    let lm = build_lm("char-lstm", 65, &dev)?;
    let ids = generate(lm.as_ref(), &[18, 47, 56], 20, 0.8, Some(10), 0)?;
    println!("char-lstm sampled ids: {ids:?}");
    Ok(())
}
