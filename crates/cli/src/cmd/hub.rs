//! `mlfw hub pull|list|info|rm|export`: thin wrappers over mlfw-hub.

use std::path::PathBuf;

use clap::Subcommand;
use mlfw_hub::{ExportOptions, HubOptions, WeightsChoice};

use crate::error::Result;

/// Subcommands of `mlfw hub`.
#[derive(Subcommand, Debug)]
pub enum HubCommand {
    /// Download a model's weights into the cache (sha256-verified).
    Pull {
        /// NAME or NAME@VERSION.
        name: String,
        /// Download again even if cached.
        #[arg(long)]
        force: bool,
        /// Registry: index.json URL, local folder, or hf://owner/repo [default: built in].
        #[arg(long)]
        registry: Option<String>,
    },
    /// List the registry's models and what is cached.
    List {
        /// Registry: index.json URL, local folder, or hf://owner/repo [default: built in].
        #[arg(long)]
        registry: Option<String>,
    },
    /// Show a model's entry: architecture, preprocessing, files, metrics, license.
    Info {
        /// NAME or NAME@VERSION.
        name: String,
        /// Registry: index.json URL, local folder, or hf://owner/repo [default: built in].
        #[arg(long)]
        registry: Option<String>,
    },
    /// Remove a model (all versions, or NAME@VERSION) from the cache.
    Rm {
        /// NAME or NAME@VERSION.
        name: String,
    },
    /// Turn a training run folder into a registry entry (weights + index.json) in DIR.
    Export {
        /// The run folder (made by `mlfw train`).
        #[arg(long)]
        run: PathBuf,
        /// Model name in the registry.
        #[arg(long)]
        name: String,
        /// Output folder; host it with any static file server.
        #[arg(long)]
        out: PathBuf,
        /// Version of the entry.
        #[arg(long, default_value = "1")]
        version: String,
        /// Export last.safetensors instead of best.safetensors.
        #[arg(long)]
        last: bool,
        /// License of the weights [default: MIT OR Apache-2.0].
        #[arg(long)]
        license: Option<String>,
        /// Base URL the folder will be served from (absolute file URLs in index.json).
        #[arg(long)]
        base_url: Option<String>,
    },
}

fn options(registry: Option<String>) -> HubOptions {
    let opts = HubOptions::from_env();
    match registry {
        Some(r) => opts.registry(r),
        None => opts,
    }
}

/// Runs a `hub` subcommand.
///
/// # Errors
/// The hub operation failing: an unknown model or version, an unreachable or invalid registry,
/// a download or checksum failure, or a cache folder that cannot be written or removed.
pub fn run(cmd: HubCommand) -> Result<()> {
    match cmd {
        HubCommand::Pull {
            name,
            force,
            registry,
        } => {
            let p = mlfw_hub::pull(&name, &options(registry).force(force))?;
            let what = if p.fetched.is_empty() {
                "already cached"
            } else {
                "pulled"
            };
            println!("{} {what}: {}", p.model.entry.id(), p.model.dir.display());
        }
        HubCommand::List { registry } => {
            let l = mlfw_hub::list(&options(registry))?;
            for w in &l.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{:<24} {:<16} {:>8}  {:<8} cached",
                "model", "architecture", "accuracy", "dataset"
            );
            for m in &l.models {
                let (acc, ds) = m.accuracy.as_ref().map_or(("-".into(), "-".into()), |a| {
                    (format!("{:.4}", a.accuracy), a.dataset.clone())
                });
                let cached = m
                    .cached
                    .as_ref()
                    .map_or("no".to_string(), |p| p.display().to_string());
                println!(
                    "{:<24} {:<16} {acc:>8}  {ds:<8} {cached}",
                    format!("{}@{}", m.name, m.version),
                    m.entry.architecture.model
                );
            }
        }
        HubCommand::Info { name, registry } => {
            let i = mlfw_hub::info(&name, &options(registry))?;
            let e = &i.entry;
            println!("{} ({})", e.id(), i.source);
            if !e.description.is_empty() {
                println!("  {}", e.description);
            }
            let a = &e.architecture;
            println!(
                "  architecture: {} ({} classes, input {:?})",
                a.model, a.num_classes, a.input_shape
            );
            let p = &e.preprocessing;
            println!(
                "  preprocessing: resize {:?}, mean {:?}, std {:?}",
                p.size, p.mean, p.std
            );
            for f in &e.files {
                println!("  file: {} ({} bytes, sha256 {})", f.name, f.size, f.sha256);
            }
            for m in &e.metrics {
                println!("  accuracy {:.4} on {} {}", m.accuracy, m.dataset, m.split);
            }
            println!("  license: {}", e.license);
            if let Some(c) = &e.train_command {
                println!("  trained with: {c}");
            }
            match &i.cached {
                Some(c) => println!("  cached in {}", c.dir.display()),
                None => println!("  not cached (mlfw hub pull {})", e.name),
            }
        }
        HubCommand::Rm { name } => {
            let removed = mlfw_hub::rm(&name, &HubOptions::from_env())?;
            if removed.is_empty() {
                println!("{name} is not in the cache");
            }
            for p in removed {
                println!("removed {}", p.display());
            }
        }
        HubCommand::Export {
            run,
            name,
            out,
            version,
            last,
            license,
            base_url,
        } => {
            let opts = ExportOptions {
                version,
                weights: if last {
                    WeightsChoice::Last
                } else {
                    WeightsChoice::Best
                },
                license,
                base_url,
                ..Default::default()
            };
            let x = mlfw_hub::export(&run, &name, &out, &opts)?;
            println!(
                "exported {} to {} (index {})",
                x.entry.id(),
                x.weights.display(),
                x.index.display()
            );
        }
    }
    Ok(())
}
