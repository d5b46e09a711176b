//! A lock file per cached `NAME@VERSION`, so concurrent pulls (threads or processes) never
//! interleave their writes. Uses the OS's advisory whole-file lock (`flock` / `LockFileEx`).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive lock, released on drop. The lock file itself is left in place (removing it
/// would race with a process about to lock it).
#[derive(Debug)]
pub struct CacheLock {
    file: File,
    path: PathBuf,
}

impl CacheLock {
    /// Blocks until the lock at `path` is held; creates the file and its folder if needed.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path when its folder cannot be created or the file opened or
    /// locked.
    pub fn acquire(path: &Path) -> Result<CacheLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("opening lock", path, e))?;
        file.lock().map_err(|e| Error::io("locking", path, e))?;
        Ok(CacheLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn excludes_other_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks").join("m@1.lock");
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside) = (path.clone(), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let _l = CacheLock::acquire(&path).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
