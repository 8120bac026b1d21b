//! The one way kubepki reads a file it was pointed at (a certificate, a key, a kubeconfig, a
//! file a kubeconfig refers to, a description, CSR objects, a log to explain): regular files
//! only, and no more bytes than a file of that kind can hold.
//!
//! A FIFO, a device (`/dev/zero`, `/dev/urandom`), a socket or a directory is refused by
//! name without being read; opening never waits (a FIFO with no writer would block `open`),
//! and a file larger than its kind's limit is refused before it is read, and read no further
//! than the limit if it grows meanwhile.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// What a file is expected to be, and so how large it may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// PEM or DER: certificates (a bundle of CAs too), keys, requests. 4 MiB: a whole system
    /// trust store is a few hundred KiB.
    Pem,
    /// A kubeconfig (embedded data included), or any file `inspect` is given. 16 MiB.
    Kubeconfig,
    /// A cluster description, CSR objects, the issuance log, a log to explain: 256 MiB
    /// (100,000 nodes written out one by one take ~10 MiB).
    Document,
}

impl Limit {
    /// The most bytes a file of this kind may have.
    pub fn bytes(self) -> u64 {
        match self {
            Limit::Pem => 4 << 20,
            Limit::Kubeconfig => 16 << 20,
            Limit::Document => 256 << 20,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::Pem => "a certificate or key file",
            Limit::Kubeconfig => "a kubeconfig",
            Limit::Document => "a document",
        }
    }
}

/// Read a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: Limit) -> Result<Vec<u8>> {
    Ok(read_with_mode(path, limit)?.0)
}

/// [`read`], and the file's permission bits, from the same open file (no second lookup).
pub fn read_with_mode(path: &Path, limit: Limit) -> Result<(Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let (file, meta) = open(path, limit)?;
    // Room for the whole file (and the byte that would say it grew): read in one call, not
    // in growing steps.
    let mut bytes = Vec::with_capacity(meta.len().min(limit.bytes()) as usize + 1);
    file.take(limit.bytes() + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, "read", e))?;
    if bytes.len() as u64 > limit.bytes() {
        return Err(too_large(path, limit, bytes.len() as u64));
    }
    Ok((bytes, meta.permissions().mode() & 0o777))
}

/// [`read`], as UTF-8 text.
pub fn read_text(path: &Path, limit: Limit) -> Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|_| Error::bad_file(path, "not text (UTF-8 expected)"))
}

/// Read standard input, at most `limit` bytes, as text.
pub fn read_stdin(limit: Limit) -> Result<String> {
    String::from_utf8(read_stdin_bytes(limit)?).map_err(|_| Error::bad_file("<stdin>", "not text (UTF-8 expected)"))
}

/// Read standard input, at most `limit` bytes.
pub fn read_stdin_bytes(limit: Limit) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit.bytes() + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("<stdin>", "read", e))?;
    if bytes.len() as u64 > limit.bytes() {
        return Err(too_large(Path::new("<stdin>"), limit, bytes.len() as u64));
    }
    Ok(bytes)
}

/// Open without waiting (`O_NONBLOCK`: a FIFO with no writer opens at once), then insist on a
/// regular file no larger than the limit.
fn open(path: &Path, limit: Limit) -> Result<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, "read", e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    let t = meta.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    };
    if let Some(kind) = kind {
        return Err(Error::bad_file(path, format!("{kind}: kubepki reads regular files only")));
    }
    if meta.len() > limit.bytes() {
        return Err(too_large(path, limit, meta.len()));
    }
    Ok((file, meta))
}

/// Why a read failed, without the path (for a report whose row names the file).
pub fn reason(e: &Error) -> String {
    match e {
        Error::BadFile { problem, .. } => crate::error::safe_text(problem),
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Whether a read failed because there is no such file.
pub fn is_missing(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn too_large(path: &Path, limit: Limit, len: u64) -> Error {
    Error::bad_file(
        path,
        format!("{} bytes or more: larger than {} can be ({} MiB at most)", len, limit.what(), limit.bytes() >> 20),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_a_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.crt");
        std::fs::write(&small, "text").unwrap();
        assert_eq!(read_text(&small, Limit::Pem).unwrap(), "text");
        let sparse = dir.path().join("sparse.crt");
        File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
        let err = read(&sparse, Limit::Kubeconfig).unwrap_err().to_string();
        assert!(
            err.contains("sparse.crt: 2147483648 bytes or more: larger than a kubeconfig can be (16 MiB at most)"),
            "{err}"
        );
        for (path, kind) in
            [("/dev/zero", "a character device"), ("/dev/urandom", "a character device"), ("/", "a directory")]
        {
            let err = read(Path::new(path), Limit::Pem).unwrap_err().to_string();
            assert_eq!(err, format!("{path}: {kind}: kubepki reads regular files only"));
        }
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let err = read(&fifo, Limit::Pem).unwrap_err().to_string();
        assert!(err.ends_with("fifo: a FIFO: kubepki reads regular files only"), "{err}");
        let missing = read(&dir.path().join("none"), Limit::Pem).unwrap_err().to_string();
        assert!(missing.contains("none: read: No such file"), "{missing}");
    }
}
