//! The issuance log: every certificate kubepki signs, one JSON object per line in
//! `<tree>/.kubepki/issued.jsonl`, so an operator can see what was issued, when, and by which
//! command. Appends are synced; the log holds no secrets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::x509::certinfo::CertInfo;

/// Where the log lives, relative to the tree.
pub use crate::model::vocabulary::state::ISSUANCE_LOG as LOG;

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuanceRecord {
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The command that signed it (`init`, `renew`, `sign`, `approve`, `rotate-ca reissue`, ...).
    pub command: String,
    /// The catalog entry, if it is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entry: Option<String>,
    /// Serial, hex.
    pub serial: String,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// SANs.
    pub sans: Vec<String>,
    /// NotBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 fingerprint.
    pub sha256: String,
}

impl IssuanceRecord {
    /// A record of a certificate just signed.
    pub fn new(cert: &CertInfo, entry: Option<&str>, command: &str, now: OffsetDateTime) -> IssuanceRecord {
        IssuanceRecord {
            time: now,
            command: command.into(),
            entry: entry.map(str::to_string),
            serial: cert.serial.clone(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            sans: cert.sans.iter().map(|s| s.to_string()).collect(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            sha256: cert.sha256.clone(),
        }
    }

    /// A record of freshly issued DER.
    pub fn of_der(der: &[u8], entry: Option<&str>, command: &str, now: OffsetDateTime) -> Result<IssuanceRecord> {
        let info = CertInfo::from_der(der).map_err(|e| Error::crypto("reading back an issued certificate", e))?;
        Ok(IssuanceRecord::new(&info, entry, command, now))
    }
}

/// The log of a tree.
pub fn log_path(root: &Path) -> PathBuf {
    root.join(LOG)
}

/// The log's lines for these records.
pub(crate) fn lines(records: &[IssuanceRecord]) -> Result<String> {
    let mut text = String::new();
    for r in records {
        text.push_str(
            &serde_json::to_string(r).map_err(|e| Error::Invalid(format!("encoding the issuance log: {e}")))?,
        );
        text.push('\n');
    }
    Ok(text)
}

/// Append records (one line each) and sync.
pub fn append(root: &Path, records: &[IssuanceRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let path = log_path(root);
    let mut text = String::new();
    for r in records {
        text.push_str(
            &serde_json::to_string(r).map_err(|e| Error::Invalid(format!("encoding the issuance log: {e}")))?,
        );
        text.push('\n');
    }
    crate::disk::store::append_synced(&path, text.as_bytes())
}

/// Refuse, before anything is written, a log that cannot be appended to as a file of the tree
/// (a symbolic link, a directory).
pub fn check_appendable(root: &Path) -> Result<()> {
    let path = log_path(root);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::bad_file(
            &path,
            "a symbolic link: kubepki appends to its logs only as files of the tree (nothing was written)",
        )),
        Ok(m) if !m.is_file() => Err(Error::bad_file(&path, "not a regular file (nothing was written)")),
        _ => Ok(()),
    }
}

/// Read the whole log (an absent log is empty).
pub fn read(root: &Path) -> Result<Vec<IssuanceRecord>> {
    let path = log_path(root);
    let text = match crate::disk::readfile::read_text(&path, crate::disk::readfile::Limit::Document) {
        Ok(t) => t,
        Err(e) if crate::disk::readfile::is_missing(&e) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::bad_file(&path, format!("line {}: {e}", i + 1))))
        .collect()
}
