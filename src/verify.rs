//! `kubepki verify`: the tree × the catalog × the topology → a report of findings.
//!
//! Findings are data, not errors: `Err` means "could not check". Each finding says how bad it
//! is, which link or file, what was expected, what was found, and the command that fixes it.

use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken (e.g. kubeadm's self-signed kubelet serving certificate).
    Info,
    /// Works now, but is a risk or will break (expiring soon, loose file mode, weak key).
    Warning,
    /// A connection fails or a credential is wrong.
    Error,
}

/// One thing wrong (or worth knowing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// A stable code: `expired`, `not-yet-valid`, `san-missing`, `wrong-ca`, `usage`, ...
    pub code: &'static str,
    /// The link it breaks, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The file it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
    /// The command (or action) that fixes it.
    pub fix: String,
}

/// The verdict on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Both directions check out.
    Ok,
    /// It works, with warnings.
    Warning,
    /// The handshake fails (or would).
    Broken,
    /// Not checked (no tree, or a side that is not kubepki's to check).
    Unknown,
}
