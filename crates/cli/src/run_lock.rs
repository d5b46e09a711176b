//! One writer per run folder: an OS file lock (`flock` / `LockFileEx`) on `DIR/.mlfw.lock`,
//! held for the whole `train` / `train --resume` and released when the process exits, however it
//! exits. The lock file names its holder (pid, host, command, start time) so a second writer is
//! told who is using the folder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{CliError, Result};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".mlfw.lock";

/// A held run-folder lock; released (and its holder note cleared) on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

impl RunLock {
    /// Locks the existing run folder `dir` without waiting, records this process as the
    /// holder, and removes stray temporary files (`.NAME.PID.tmp`) that a killed writer left.
    ///
    /// # Errors
    /// `dir` is not a folder, another process holds it (the message names its pid,
    /// host and command), or the lock file cannot be created.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        if !dir.is_dir() {
            return Err(CliError::msg(format!(
                "{} is not a folder (is it a run folder made by `mlfw train`?)",
                dir.display()
            )));
        }
        let path = dir.join(LOCK_FILE);
        let io = |e: std::io::Error| CliError::msg(format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.replace('\n', ", ")
                };
                return Err(CliError::msg(format!(
                    "{} is in use by another mlfw run ({holder}); wait for it to finish, or \
                     stop it, or choose another folder",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let note = format!(
            "pid {}\nhost {}\ncommand {}\nsince {}\n",
            std::process::id(),
            hostname(),
            std::env::args().collect::<Vec<_>>().join(" "),
            crate::clock::timestamp()
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(note.as_bytes()).map_err(io)?;
        remove_stray_temporaries(dir);
        Ok(RunLock { file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Clear the holder note first: once unlocked, the note would name no holder.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The machine's host name, for the holder note.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

/// Whether `name` is a temporary file of an atomic write: `.NAME.PID.tmp`.
fn is_stray_temporary(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    inner.rsplit_once('.').is_some_and(|(file, pid)| {
        !file.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Removes `.NAME.PID.tmp` files in `dir`; only called under the lock, when no writer is active.
fn remove_stray_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && e.file_name().to_str().is_some_and(is_stray_temporary) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let first = RunLock::acquire(&run).unwrap();
        let e = RunLock::acquire(&run).unwrap_err().message().to_string();
        assert!(
            e.contains("in use") && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(first);
        RunLock::acquire(&run).unwrap();
        assert!(run.join(LOCK_FILE).is_file());
    }

    #[test]
    fn stray_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            ".checkpoint.safetensors.4242.tmp",
            ".config.json.7.tmp",
            "notes.tmp",
            ".x.tmp",
            "config.json",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let _l = RunLock::acquire(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".mlfw.lock", ".x.tmp", "config.json", "notes.tmp"]);
    }
}
