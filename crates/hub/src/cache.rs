//! The local cache: `HOME/hub/NAME/VERSION/` holds an entry's files plus `.mlfw-entry.json`
//! (the entry as pulled, written last: its presence marks a complete pull). Locks live in
//! `HOME/hub/.locks/`, transfers in progress as `FILE.part` beside their destination.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::{self, compare_versions, Entry};
use crate::lock::CacheLock;
use crate::options::Ctx;

/// The manifest's file name inside a version folder (a leading `.` keeps it apart from any
/// entry file, whose names cannot start with `.`).
pub const MANIFEST: &str = ".mlfw-entry.json";

/// What `.mlfw-entry.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// The entry, its file URLs resolved to where they were fetched from.
    pub entry: Entry,
    /// The registry it came from.
    pub source: String,
    /// Seconds since the Unix epoch when the pull finished.
    pub pulled_at: u64,
}

/// A model version in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedModel {
    /// The entry as pulled (file URLs resolved).
    pub entry: Entry,
    /// The registry it came from (`builtin`, an index URL, `hf://...`, a folder).
    pub source: String,
    /// Its folder, `HOME/hub/NAME/VERSION`.
    pub dir: PathBuf,
    /// Total size of its files in bytes.
    pub size: u64,
    /// Seconds since the Unix epoch when it was pulled.
    pub pulled_at: u64,
}

impl CachedModel {
    /// The path of the state-dict file.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the entry lists no `.safetensors` file or several.
    pub fn weights_path(&self) -> Result<PathBuf> {
        Ok(self.dir.join(&self.entry.weights()?.name))
    }

    /// Paths of all its files, in entry order.
    pub fn files(&self) -> Vec<PathBuf> {
        self.entry
            .files
            .iter()
            .map(|f| self.dir.join(&f.name))
            .collect()
    }

    /// Re-hashes every file; errors name the file and both digests.
    ///
    /// # Errors
    /// [`Error::Data`] holding a checksum error naming the file and both digests; [`Error::Data`]
    /// I/O errors naming a file that cannot be read.
    pub fn verify(&self) -> Result<()> {
        for f in &self.entry.files {
            let p = self.dir.join(&f.name);
            let actual = mlfw_data::download::sha256_file(&p)?;
            if actual != f.sha256.to_ascii_lowercase() {
                return Err(Error::Data(mlfw_data::Error::Checksum {
                    source: p.display().to_string(),
                    expected: format!("sha256:{}", f.sha256),
                    actual: format!("sha256:{actual}"),
                }));
            }
        }
        Ok(())
    }
}

/// `HOME/hub/NAME/VERSION`.
pub(crate) fn model_dir(ctx: &Ctx, name: &str, version: &str) -> Result<PathBuf> {
    index::check_name("model name", name)?;
    index::check_name("version", version)?;
    Ok(ctx.hub_dir().join(name).join(version))
}

/// Takes the lock of `NAME@VERSION`.
pub(crate) fn lock(ctx: &Ctx, name: &str, version: &str) -> Result<CacheLock> {
    index::check_name("model name", name)?;
    index::check_name("version", version)?;
    CacheLock::acquire(
        &ctx.hub_dir()
            .join(".locks")
            .join(format!("{name}@{version}.lock")),
    )
}

/// The cached `NAME@VERSION` if its pull completed and every file has its listed size.
pub(crate) fn read(ctx: &Ctx, name: &str, version: &str) -> Result<Option<CachedModel>> {
    let dir = model_dir(ctx, name, version)?;
    let mpath = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&mpath) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", &mpath, e)),
    };
    let origin = mpath.display().to_string();
    let value = serde_json::from_str(&text)
        .map_err(|e| Error::index(&origin, "", format!("not valid JSON: {e}")))?;
    let m: Manifest = index::from_value(value, &origin)?;
    m.entry.validate(&origin, "entry")?;
    if m.entry.name != name || m.entry.version != version {
        return Ok(None);
    }
    let mut size = 0;
    for f in &m.entry.files {
        match std::fs::metadata(dir.join(&f.name)) {
            Ok(md) if md.len() == f.size => size += md.len(),
            _ => return Ok(None),
        }
    }
    Ok(Some(CachedModel {
        entry: m.entry,
        source: m.source,
        dir,
        size,
        pulled_at: m.pulled_at,
    }))
}

/// Writes the manifest (atomically), marking the pull complete.
pub(crate) fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(m)
        .map_err(|e| Error::invalid(format!("serializing manifest: {e}")))?;
    mlfw_core::safetensors::write_atomic(dir.join(MANIFEST), text.as_bytes())?;
    Ok(())
}

fn subdirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| index::check_name("name", n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The complete cached versions of `name`, oldest first.
pub(crate) fn versions(ctx: &Ctx, name: &str) -> Result<Vec<CachedModel>> {
    index::check_name("model name", name)?;
    let mut out = Vec::new();
    for v in subdirs(&ctx.hub_dir().join(name)) {
        if let Ok(Some(m)) = read(ctx, name, &v) {
            out.push(m);
        }
    }
    out.sort_by(|a, b| compare_versions(&a.entry.version, &b.entry.version));
    Ok(out)
}

/// Every complete cached model version, by name then version.
pub(crate) fn all(ctx: &Ctx) -> Result<Vec<CachedModel>> {
    let mut out = Vec::new();
    for name in subdirs(&ctx.hub_dir()) {
        out.extend(versions(ctx, &name)?);
    }
    Ok(out)
}

/// The cached `NAME@VERSION`, or `NAME`'s newest complete cached version.
pub(crate) fn find(ctx: &Ctx, name: &str, version: Option<&str>) -> Result<Option<CachedModel>> {
    match version {
        Some(v) => read(ctx, name, v),
        None => Ok(versions(ctx, name)?.pop()),
    }
}

/// Removes `NAME@VERSION`'s folder (or every version of `NAME`), each under its lock, then
/// `NAME`'s folder if empty. Returns the folders removed; none is an error naming the model.
pub(crate) fn remove(ctx: &Ctx, name: &str, version: Option<&str>) -> Result<Vec<PathBuf>> {
    index::check_name("model name", name)?;
    let name_dir = ctx.hub_dir().join(name);
    let targets = match version {
        Some(v) => {
            index::check_name("version", v)?;
            vec![v.to_string()]
        }
        None => subdirs(&name_dir),
    };
    let mut removed = Vec::new();
    for v in targets {
        let dir = name_dir.join(&v);
        if !dir.exists() {
            continue;
        }
        let _lock = lock(ctx, name, &v)?;
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io("removing", &dir, e))?;
        removed.push(dir);
    }
    let _ = std::fs::remove_dir(&name_dir);
    if removed.is_empty() {
        let spec = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
        return Err(Error::invalid(format!(
            "model `{spec}` is not in the cache ({})",
            ctx.hub_dir().display()
        )));
    }
    Ok(removed)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
