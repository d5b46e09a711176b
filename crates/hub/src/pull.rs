//! Pulling a model into the cache: resolve it in the registries, then fetch each file
//! (resumable, sha256-verified, atomically renamed) under the model version's lock.

use std::path::Path;

use mlfw_data::download::{download_file_sized, part_path, sha256_file, Checksum};

use crate::cache::{self, CachedModel, Manifest};
use crate::error::{Error, Result};
use crate::index::{parse_spec, Entry, FileEntry};
use crate::options::{Ctx, HubOptions};
use crate::registry::{Location, Registry};
use crate::source::Source;

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The model as it now lies in the cache.
    pub model: CachedModel,
    /// Names of the files fetched by this call (empty when the cache already held them).
    pub fetched: Vec<String>,
}

/// Pulls `spec` into the cache and returns it.
///
/// `spec` is `NAME`, `NAME@VERSION`, or a registry address holding a single model
/// (`hf://owner/repo[@rev]`, an index URL or folder). Registries are searched in order:
/// `opts.registry`, then the built-in one. A verified cached copy is kept unless
/// `opts.force`; in offline mode only the cache and the built-in registry are used. A zoo
/// model that no registry lists (`resnet18`, `vit_b_16`, ...) is pulled from its public timm
/// release ([`mlfw_vision::timm_keys::default_release`]) and cached under the model's name.
///
/// # Errors
/// The model is in no registry ([`Error::NotFound`]), offline and not cached
/// ([`Error::NotCached`]), an unknown architecture, an unsafe file name, an HTTP status or
/// network error (naming the URL), a checksum mismatch (after which nothing is cached).
pub fn pull(spec: &str, opts: &HubOptions) -> Result<Pulled> {
    let ctx = Ctx::new(opts)?;
    pull_with(spec, &ctx)
}

pub(crate) fn pull_with(spec: &str, ctx: &Ctx) -> Result<Pulled> {
    if ctx.offline && !ctx.force {
        if let Some(model) = cached_for_spec(spec, ctx)? {
            model.verify()?;
            return Ok(Pulled {
                model,
                fetched: Vec::new(),
            });
        }
    }
    let (registry, entry) = resolve(spec, ctx)?;
    install(&registry, &entry, ctx)
}

/// The cached copy `spec` names, if `spec` is `NAME[@VERSION]` and one is cached.
pub(crate) fn cached_for_spec(spec: &str, ctx: &Ctx) -> Result<Option<CachedModel>> {
    if spec.contains("://") {
        return Ok(None);
    }
    let (name, version) = parse_spec(spec)?;
    cache::find(ctx, name, version)
}

/// Finds `spec`'s entry: in the registry it names, or the first configured registry that
/// lists it (offline: the built-in one only).
pub(crate) fn resolve(spec: &str, ctx: &Ctx) -> Result<(Registry, Entry)> {
    if spec.contains("://") {
        let source = Source::parse(spec)?;
        if ctx.offline && source != Source::Builtin {
            return Err(Error::NotCached {
                spec: spec.to_string(),
                dir: ctx.hub_dir(),
            });
        }
        let reg = Registry::open(&source, ctx)?;
        let mut names: Vec<&str> = reg.index.models.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        names.dedup();
        let entry = match names.as_slice() {
            [one] => reg.index.find(one, None).cloned(),
            _ => None,
        }
        .ok_or_else(|| {
            Error::invalid(format!(
                "{source} lists {} models ({}); name one: pass the registry with --registry \
                 (MLFW_HUB_REGISTRY) and pull NAME",
                names.len(),
                names.join(", ")
            ))
        })?;
        return Ok((reg, entry));
    }
    let (name, version) = parse_spec(spec)?;
    let mut searched = Vec::new();
    let mut available = Vec::new();
    let mut first_error = None;
    for source in &ctx.sources {
        if ctx.offline && *source != Source::Builtin {
            continue;
        }
        searched.push(source.to_string());
        match Registry::open(source, ctx) {
            Ok(reg) => {
                if let Some(e) = reg.index.find(name, version) {
                    let e = e.clone();
                    return Ok((reg, e));
                }
                available.extend(reg.index.models.iter().map(|e| e.id()));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if ctx.offline {
        return Err(Error::NotCached {
            spec: spec.to_string(),
            dir: ctx.hub_dir(),
        });
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if version.is_none() {
        if let Some(release) = mlfw_vision::timm_keys::default_release(name) {
            return default_release(name, release, ctx);
        }
    }
    available.sort();
    available.dedup();
    Err(Error::NotFound {
        spec: spec.to_string(),
        searched,
        available,
    })
}

/// A zoo model no registry lists, pulled from its public timm release (`release`, see
/// [`mlfw_vision::timm_keys::default_release`]) and cached under the zoo's name (`resnet18`)
/// with the release's tag as its version (`tv_in1k`), so `--pretrained` and offline loads
/// find it by the model's name. The file's sha256 and size come from the Hub API.
fn default_release(name: &str, release: &str, ctx: &Ctx) -> Result<(Registry, Entry)> {
    let (reg, mut entry) = resolve(release, ctx).map_err(|e| {
        Error::invalid(format!(
            "`{name}` is in no registry, so its public release {release} was tried: {e}"
        ))
    })?;
    if entry.architecture.model != name {
        return Err(Error::invalid(format!(
            "{release} builds `{}`, not `{name}`",
            entry.architecture.model
        )));
    }
    entry.version = release
        .rsplit_once('.')
        .map_or("timm", |(_, tag)| tag)
        .to_string();
    entry.name = name.to_string();
    Ok((reg, entry))
}

/// Fetches `entry`'s files from `registry` into `HOME/hub/NAME/VERSION` under its lock.
pub(crate) fn install(registry: &Registry, entry: &Entry, ctx: &Ctx) -> Result<Pulled> {
    crate::arch::check(entry)?;
    let dir = cache::model_dir(ctx, &entry.name, &entry.version)?;
    let _lock = cache::lock(ctx, &entry.name, &entry.version)?;
    let locations = entry
        .files
        .iter()
        .map(|f| registry.locate(f, ctx))
        .collect::<Result<Vec<_>>>()?;
    if !ctx.force {
        if let Some(c) = cache::read(ctx, &entry.name, &entry.version)? {
            if same_files(&c.entry, entry) && c.verify().is_ok() {
                return Ok(Pulled {
                    model: c,
                    fetched: Vec::new(),
                });
            }
        }
    }
    // The manifest goes first: from here until it is rewritten the version is incomplete.
    remove_if_exists(&dir.join(cache::MANIFEST))?;
    let mut fetched = Vec::new();
    let result = (|| {
        for (f, loc) in entry.files.iter().zip(&locations) {
            let dest = dir.join(&f.name);
            if ctx.force {
                remove_if_exists(&dest)?;
                remove_if_exists(&part_path(&dest))?;
            } else if dest.is_file()
                && std::fs::metadata(&dest).is_ok_and(|m| m.len() == f.size)
                && sha256_file(&dest)? == f.sha256.to_ascii_lowercase()
            {
                continue;
            }
            fetch_file(loc, f, &dest, ctx)?;
            fetched.push(f.name.clone());
        }
        crate::arch::check_weights(entry, &dir.join(&entry.weights()?.name))?;
        let mut pulled = entry.clone();
        for (f, loc) in pulled.files.iter_mut().zip(&locations) {
            f.url = loc.to_string();
        }
        cache::write_manifest(
            &dir,
            &Manifest {
                entry: pulled,
                source: registry.source.to_string(),
                pulled_at: cache::now(),
            },
        )
    })();
    if let Err(e) = result {
        clean_failed(&dir);
        return Err(e);
    }
    let model = cache::read(ctx, &entry.name, &entry.version)?.ok_or_else(|| {
        Error::invalid(format!(
            "{}: files changed while pulling {}",
            dir.display(),
            entry.id()
        ))
    })?;
    Ok(Pulled { model, fetched })
}

/// Whether two entries list the same files with the same digests.
fn same_files(a: &Entry, b: &Entry) -> bool {
    a.files.len() == b.files.len()
        && a.files.iter().zip(&b.files).all(|(x, y)| {
            x.name == y.name && x.sha256.eq_ignore_ascii_case(&y.sha256) && x.size == y.size
        })
}

/// Fetches one file to `dest` through `DEST.part`, verified, then renamed.
fn fetch_file(loc: &Location, f: &FileEntry, dest: &Path, ctx: &Ctx) -> Result<()> {
    let checksum = Checksum::sha256(&f.sha256);
    match loc {
        Location::Url(url) => {
            let urls = std::slice::from_ref(url);
            download_file_sized(urls, dest, checksum, Some(f.size), &ctx.download)?;
        }
        Location::Path(src) => {
            mlfw_data::memory::require_regular_file(src)?;
            let len = std::fs::metadata(src).map_err(|e| Error::io("reading", src, e))?;
            check_size(f, len.len(), &src.display().to_string())?;
            let part = part_path(dest);
            create_parent(dest)?;
            std::fs::copy(src, &part).map_err(|e| Error::io("copying", src, e))?;
            verify_and_rename(&part, dest, &checksum, &src.display().to_string())?;
        }
        Location::Embedded(bytes) => {
            check_size(f, bytes.len() as u64, &format!("builtin:{}", f.name))?;
            let part = part_path(dest);
            create_parent(dest)?;
            std::fs::write(&part, bytes).map_err(|e| Error::io("writing", &part, e))?;
            verify_and_rename(&part, dest, &checksum, &format!("builtin:{}", f.name))?;
        }
    }
    Ok(())
}

/// Errors unless a source holds exactly the `size` bytes the index declares for `f`.
fn check_size(f: &FileEntry, len: u64, origin: &str) -> Result<()> {
    if len == f.size {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{origin} holds {len} bytes, but the index declares {} for `{}` (files[].size)",
        f.size, f.name
    )))
}

fn create_parent(dest: &Path) -> Result<()> {
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating", d, e))?;
    }
    Ok(())
}

fn verify_and_rename(part: &Path, dest: &Path, checksum: &Checksum, origin: &str) -> Result<()> {
    if let Err(e) = checksum.verify(part, origin) {
        let _ = std::fs::remove_file(part);
        return Err(e.into());
    }
    std::fs::rename(part, dest).map_err(|e| Error::io("renaming", part, e))
}

fn remove_if_exists(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", p, e)),
        _ => Ok(()),
    }
}

/// After a failed pull: drops every file (`.part`s too: a transfer is resumed only within
/// one pull, by its retries), then the version and name folders if empty, so nothing of a
/// failed pull stays in the cache.
fn clean_failed(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    if std::fs::remove_dir(dir).is_ok() {
        if let Some(name_dir) = dir.parent() {
            let _ = std::fs::remove_dir(name_dir);
        }
    }
}
