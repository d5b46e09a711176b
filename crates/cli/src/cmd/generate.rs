//! `mlfw generate`: sample text from a trained language model's weights. The run folder next
//! to the weights supplies the model name (`config.json`) and the vocabulary (`vocab.json`),
//! so no dataset is needed; the same `--seed` gives the same text.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use mlfw_core::Device;
use mlfw_nn::lm::{build_lm, generate};

use crate::error::{CliError, Result};
use crate::lm_train::read_vocab;
use crate::run_dir;

/// Arguments of `mlfw generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Weights of a language-model run (e.g. runs/NAME/best.safetensors).
    #[arg(long)]
    pub weights: PathBuf,
    /// Text to continue (every character must be in the run's vocabulary).
    #[arg(long, default_value = "\n")]
    pub prompt: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 300)]
    pub tokens: usize,
    /// Softmax temperature (0 = always the most likely character).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Sample only among the k most likely characters.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model [default: the run's, from config.json beside the weights].
    #[arg(long)]
    pub model: Option<String>,
    /// Run folder holding vocab.json [default: the folder of --weights].
    #[arg(long)]
    pub run: Option<PathBuf>,
}

/// Runs `mlfw generate`: prints the prompt followed by the sampled text.
///
/// # Errors
/// No vocabulary or run settings beside the weights; an unknown model; weights that cannot be
/// loaded; an empty prompt or one with characters outside the vocabulary; sampling failing.
pub fn run(a: GenerateArgs) -> Result<()> {
    let dir = match &a.run {
        Some(d) => d.clone(),
        None => a
            .weights
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let vocab = read_vocab(&dir)?;
    let model = match &a.model {
        Some(m) => m.clone(),
        None => run_dir::read_config(&dir)?.model,
    };
    let mut m = build_lm(&model, vocab.len(), &Device::Cpu)?;
    m.load(&a.weights)
        .map_err(|e| CliError::msg(format!("{}: {e}", a.weights.display())))?;
    m.eval();
    let prompt = vocab.encode(&a.prompt, "--prompt")?;
    if prompt.is_empty() {
        return Err(CliError::msg("--prompt must not be empty"));
    }
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        return Err(CliError::msg(format!(
            "--temperature must be a finite value >= 0 (0: always the most likely character), got {}",
            a.temperature
        )));
    }
    if a.top_k == Some(0) {
        return Err(CliError::msg(
            "--top-k must be at least 1 (leave it out to sample from every character)",
        ));
    }
    let ids = generate(
        m.as_ref(),
        &prompt,
        a.tokens,
        a.temperature,
        a.top_k,
        a.seed,
    )?;
    let text = vocab.decode(&ids)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}{}", a.prompt, text)?;
    Ok(())
}
