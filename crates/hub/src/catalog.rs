//! `list`, `info` and `rm`: what the registries offer and what the cache holds.

use std::path::PathBuf;

use crate::cache::{self, CachedModel};
use crate::error::Result;
use crate::index::{parse_spec, Entry, Metric};
use crate::options::{Ctx, HubOptions};
use crate::registry::Registry;
use crate::source::Source;

/// One model version in [`list`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ListItem {
    /// `NAME`.
    pub name: String,
    /// `VERSION`.
    pub version: String,
    /// The registry's entry, else the cached one.
    pub entry: Entry,
    /// The registry listing it (`builtin`, a URL, `hf://...`), else where it was pulled from.
    pub source: String,
    /// Whether a registry read by this call lists it.
    pub in_registry: bool,
    /// Its cache folder, when pulled.
    pub cached: Option<PathBuf>,
    /// Total size of its files in bytes.
    pub size: u64,
    /// SHA-256 of its weights file.
    pub sha256: String,
    /// Its best accuracy, with dataset and split.
    pub accuracy: Option<Metric>,
}

/// [`list`]'s answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Registry and cached models, by name then version.
    pub models: Vec<ListItem>,
    /// Registries that could not be read (each message names it); the list is still given.
    pub warnings: Vec<String>,
}

fn item(
    entry: &Entry,
    source: String,
    in_registry: bool,
    cached: Option<&CachedModel>,
) -> ListItem {
    let weights = entry.weights().ok();
    ListItem {
        name: entry.name.clone(),
        version: entry.version.clone(),
        entry: entry.clone(),
        source,
        in_registry,
        cached: cached.map(|c| c.dir.clone()),
        size: entry.files.iter().map(|f| f.size).sum(),
        sha256: weights.map(|w| w.sha256.clone()).unwrap_or_default(),
        accuracy: entry.best_metric().cloned(),
    }
}

/// Every model of the registries (`opts.registry`, then built-in; offline: built-in only)
/// and of the cache. An unreadable registry becomes a warning, not an error.
///
/// # Errors
/// [`crate::Error::Invalid`] for a malformed `opts.registry`; [`crate::Error::Io`] when the cache
/// folder cannot
/// be read (unreadable registries are warnings, not errors).
pub fn list(opts: &HubOptions) -> Result<Listing> {
    let ctx = Ctx::new(opts)?;
    let cached = cache::all(&ctx)?;
    let mut out = Listing::default();
    for source in &ctx.sources {
        if ctx.offline && *source != Source::Builtin {
            continue;
        }
        match Registry::open(source, &ctx) {
            Ok(reg) => {
                for e in &reg.index.models {
                    if out
                        .models
                        .iter()
                        .any(|m| m.name == e.name && m.version == e.version)
                    {
                        continue;
                    }
                    let c = cached
                        .iter()
                        .find(|c| c.entry.name == e.name && c.entry.version == e.version);
                    out.models.push(item(e, source.to_string(), true, c));
                }
            }
            Err(e) => out.warnings.push(format!("registry {source}: {e}")),
        }
    }
    for c in &cached {
        if !out
            .models
            .iter()
            .any(|m| m.name == c.entry.name && m.version == c.entry.version)
        {
            out.models
                .push(item(&c.entry, c.source.clone(), false, Some(c)));
        }
    }
    out.models.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| crate::index::compare_versions(&a.version, &b.version))
    });
    Ok(out)
}

/// [`info`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The registry's entry, else the cached one.
    pub entry: Entry,
    /// Where the entry came from.
    pub source: String,
    /// Whether a registry read by this call lists it.
    pub in_registry: bool,
    /// The cached copy, if pulled.
    pub cached: Option<CachedModel>,
}

/// Details of `spec` (`NAME[@VERSION]`): the registry entry (newest version unless named)
/// and the cached copy. Falls back to the cache when no registry is reachable or lists it.
///
/// # Errors
/// [`crate::Error::UnsafeName`] for a malformed `spec`; [`crate::Error::NotFound`] (listing what
/// the registries
/// hold) when none lists it and it is not cached; [`crate::Error::NotCached`] offline; a registry's
/// error
/// when it is unreachable and nothing is cached.
pub fn info(spec: &str, opts: &HubOptions) -> Result<Info> {
    let ctx = Ctx::new(opts)?;
    match crate::pull::resolve(spec, &ctx) {
        Ok((reg, entry)) => {
            let cached = cache::read(&ctx, &entry.name, &entry.version)?;
            Ok(Info {
                entry,
                source: reg.source.to_string(),
                in_registry: true,
                cached,
            })
        }
        Err(e) => match crate::pull::cached_for_spec(spec, &ctx)? {
            Some(c) => Ok(Info {
                entry: c.entry.clone(),
                source: c.source.clone(),
                in_registry: false,
                cached: Some(c),
            }),
            None => Err(e),
        },
    }
}

/// Removes `spec` from the cache: `NAME@VERSION`, or every version of `NAME`. Returns the
/// folders removed; errors when none was cached.
///
/// # Errors
/// [`crate::Error::UnsafeName`] for a malformed `spec`; [`crate::Error::Invalid`] naming the cache
/// folder when
/// nothing matches; [`crate::Error::Io`] naming a folder that cannot be removed.
pub fn rm(spec: &str, opts: &HubOptions) -> Result<Vec<PathBuf>> {
    let ctx = Ctx::new(opts)?;
    let (name, version) = parse_spec(spec)?;
    cache::remove(&ctx, name, version)
}
