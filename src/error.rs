//! The one error type of kubepki: "could not do it", as opposed to findings
//! (which are data in a report).

use std::path::PathBuf;

/// What went wrong, with the evidence: which file, which field, what was found.
///
/// Messages never contain private key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster description is wrong: `file: field: problem`.
    #[error("{}: {field}: {problem}", file.display())]
    Spec {
        /// The description file (or `<built-in>`).
        file: PathBuf,
        /// The field, as a path (`nodes[1].addresses[0]`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A tree records another description than the one given.
    #[error(
        "{}: the tree records another description than {}:\n  {}\n  pass --update-description to make the given one the tree's (what it changes is reissued), or leave --config out to use the recorded one",
        recorded.display(), given.display(), differences.join("\n  ")
    )]
    DescriptionDiffers {
        /// The recorded description.
        recorded: PathBuf,
        /// The description given.
        given: PathBuf,
        /// What differs, one line each.
        differences: Vec<String>,
    },
    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What kubepki was doing (`read`, `write`, `rename`, ...).
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file exists but is not what it should be (bad PEM, wrong type, key mismatch, ...).
    #[error("{}: {problem}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Writing would replace something that must not be replaced without being asked.
    #[error("refusing to overwrite: {}\n  {reason}\n  {hint}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    WouldClobber {
        /// The files that would be replaced.
        paths: Vec<PathBuf>,
        /// Why they would be replaced.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// Key generation or signing failed in the crypto library.
    #[error("{what}: {detail}")]
    Crypto {
        /// What was being made (`key for apiserver`, `certificate apiserver`).
        what: String,
        /// The library's error.
        detail: String,
    },
    /// Another run is changing the tree, and did not finish in time.
    #[error("{}: another kubepki run is changing this tree ({holder}); waited {}s for it (KUBEPKI_LOCK_WAIT sets how long); nothing was changed", path.display(), waited.as_secs_f64())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as it wrote in the lock file (pid, command, since when).
        holder: String,
        /// How long this run waited.
        waited: std::time::Duration,
    },
    /// Anything else the user asked for that cannot be done, with the reason.
    #[error("{0}")]
    Invalid(String),
}

/// kubepki's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error while doing `action` on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action, source }
    }

    /// A file that is there but wrong: what is wrong with it.
    pub fn bad_file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::BadFile { path: path.into(), problem: problem.into() }
    }

    pub(crate) fn crypto(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Crypto { what: what.into(), detail: detail.to_string() }
    }
}
