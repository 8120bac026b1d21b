//! The tree on disk: crash-safe writes with the right modes.
//!
//! Every file is written to a temporary file in its own directory, fsynced, and renamed over
//! the target; an interrupted run leaves the old file or the new one, never a torn one.
//! Files are written in batches: all temporaries are written and synced first, then all are
//! renamed, then each directory is synced once, so a batch costs one sync per file and one per
//! directory rather than a sync between every step.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File modes kubeadm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Certificates and public keys: 0644.
    Public,
    /// Private keys, kubeconfigs, CSRs: 0600.
    Secret,
}

impl Mode {
    /// The permission bits.
    pub fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Secret => 0o600,
        }
    }
}

/// Directories: 0755.
pub const DIR_MODE: u32 = 0o755;

/// Files to write together.
#[derive(Debug, Default)]
pub struct Batch {
    files: Vec<(PathBuf, Vec<u8>, Mode)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Add a file (absolute path or relative to the working directory).
    pub fn add(&mut self, path: PathBuf, contents: impl Into<Vec<u8>>, mode: Mode) {
        self.files.push((path, contents.into(), mode));
    }

    /// How many files are queued.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write everything: temporaries (synced), then renames, then directory syncs.
    pub fn commit(self) -> Result<()> {
        let mut temps: Vec<(PathBuf, &Path)> = Vec::with_capacity(self.files.len());
        let result = (|| {
            for (path, contents, mode) in &self.files {
                let dir = parent(path);
                make_dirs(dir)?;
                let tmp = write_temp(path, dir, contents, *mode)?;
                temps.push((tmp, path));
            }
            let mut dirs = BTreeSet::new();
            for (tmp, path) in &temps {
                fs::rename(tmp, path).map_err(|e| Error::io(*path, "rename into place", e))?;
                dirs.insert(parent(path).to_path_buf());
            }
            for dir in dirs {
                sync_dir(&dir)?;
            }
            Ok(())
        })();
        if result.is_err() {
            for (tmp, _) in &temps {
                let _ = fs::remove_file(tmp);
            }
        }
        result
    }
}

/// Write one file atomically.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    let mut b = Batch::new();
    b.add(path.to_path_buf(), contents, mode);
    b.commit()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Create a directory and its parents with mode 0755.
pub fn make_dirs(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|e| Error::io(dir, "create directory", e))
}

fn write_temp(path: &Path, dir: &Path, contents: &[u8], mode: Mode) -> Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(".{name}.kubepki-{}-{attempt}.tmp", std::process::id()));
        // The mode is set at creation: a key is never readable by others, not even briefly.
        let file = OpenOptions::new().write(true).create_new(true).mode(mode.bits()).open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&tmp, "create", e)),
        };
        let written = file
            .write_all(contents)
            .and_then(|_| file.set_permissions(fs::Permissions::from_mode(mode.bits())))
            .and_then(|_| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(path, "write", e));
        }
        return Ok(tmp);
    }
    Err(Error::io(path, "create a temporary file", std::io::Error::other("too many leftover temporary files")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync directory", e))
}

/// Remove temporary files a killed run left behind in a tree (`.<name>.kubepki-*.tmp`).
pub fn sweep_temporaries(root: &Path) -> Result<usize> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, "read directory", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, "read directory", e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if name.starts_with('.') && name.contains(".kubepki-") && name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(|e| Error::io(&path, "remove", e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_with_modes_and_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a/b/x.key");
        write_atomic(&key, b"one", Mode::Secret).unwrap();
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.path().join("a/b")).unwrap().mode() & 0o777, 0o755);
        write_atomic(&key, b"two", Mode::Secret).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"two");
        let crt = dir.path().join("x.crt");
        write_atomic(&crt, b"c", Mode::Public).unwrap();
        assert_eq!(fs::metadata(&crt).unwrap().mode() & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary left behind");
    }

    #[test]
    fn failed_batch_leaves_old_files_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.crt");
        write_atomic(&good, b"old", Mode::Public).unwrap();
        // A file where a directory must go makes the second write fail.
        fs::write(dir.path().join("blocker"), b"").unwrap();
        let mut b = Batch::new();
        b.add(good.clone(), "new", Mode::Public);
        b.add(dir.path().join("blocker/x.crt"), "x", Mode::Public);
        let err = b.commit().unwrap_err().to_string();
        assert!(err.contains("blocker"), "{err}");
        assert_eq!(fs::read(&good).unwrap(), b"old");
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 0);
    }
}
