//! The one error type of kubepki: "could not do it", as opposed to findings
//! (which are data in a report).
//!
//! Every message is made safe in one place, its `Display` (see [`safe_text`]): errors quote
//! what they were given (a YAML parser quotes the scalar it could not read, a resolver the
//! value of a field), and what they were given may be a private key, 50 MB of one line, or
//! terminal escapes. Shown, a message never holds private key material, no quoted token longer
//! than [`MAX_TOKEN`] characters, and no control character other than a line feed.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, with the evidence: which file, which field, what was found.
///
/// Messages never contain private key material.
#[non_exhaustive]
pub enum Error {
    /// The cluster description is wrong: `file: field: problem`.
    Spec {
        /// The description file (or `<built-in>`).
        file: PathBuf,
        /// The field, as a path (`nodes[1].addresses[0]`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A tree records another description than the one given.
    DescriptionDiffers {
        /// The recorded description.
        recorded: PathBuf,
        /// The description given.
        given: PathBuf,
        /// What differs, one line each.
        differences: Vec<String>,
    },
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What kubepki was doing (`read`, `write`, `rename`, ...).
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file exists but is not what it should be (bad PEM, wrong type, key mismatch, ...).
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Writing would replace something that must not be replaced without being asked.
    WouldClobber {
        /// The files that would be replaced.
        paths: Vec<PathBuf>,
        /// Why they would be replaced.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// Key generation or signing failed in the crypto library.
    Crypto {
        /// What was being made (`key for apiserver`, `certificate apiserver`).
        what: String,
        /// The library's error.
        detail: String,
    },
    /// Another run is changing the tree, and did not finish in time.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as it wrote in the lock file (pid, command, since when).
        holder: String,
        /// How long this run waited.
        waited: std::time::Duration,
    },
    /// Anything else the user asked for that cannot be done, with the reason.
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

    /// The message as built, before it is made safe to show.
    fn raw(&self) -> String {
        match self {
            Error::Spec { file, field, problem } => format!("{}: {field}: {problem}", file.display()),
            Error::DescriptionDiffers { recorded, given, differences } => format!(
                "{}: the tree records another description than {}:\n  {}\n  pass --update-description to make the given one the tree's (what it changes is reissued), or leave --config out to use the recorded one",
                recorded.display(),
                given.display(),
                differences.join("\n  ")
            ),
            Error::Io { path, action, source } => format!("{}: {action}: {source}", path.display()),
            Error::BadFile { path, problem } => format!("{}: {problem}", path.display()),
            Error::WouldClobber { paths, reason, hint } => format!(
                "refusing to overwrite: {}\n  {reason}\n  {hint}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            Error::Crypto { what, detail } => format!("{what}: {detail}"),
            Error::Locked { path, holder, waited } => format!(
                "{}: another kubepki run is changing this tree ({holder}); waited {}s for it (KUBEPKI_LOCK_WAIT sets how long); nothing was changed",
                path.display(),
                waited.as_secs_f64()
            ),
            Error::Invalid(message) => message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&safe_text(&self.raw()))
    }
}

/// As shown: the variant and the safe message (never the raw fields, which may quote a key).
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Error::Spec { .. } => "Spec",
            Error::DescriptionDiffers { .. } => "DescriptionDiffers",
            Error::Io { .. } => "Io",
            Error::BadFile { .. } => "BadFile",
            Error::WouldClobber { .. } => "WouldClobber",
            Error::Crypto { .. } => "Crypto",
            Error::Locked { .. } => "Locked",
            Error::Invalid(_) => "Invalid",
        };
        write!(f, "{variant}({:?})", self.to_string())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The longest run of characters without a space shown as it is; longer runs are cut to their
/// first [`TOKEN_KEPT`] characters and their length.
pub(crate) const MAX_TOKEN: usize = 256;
const TOKEN_KEPT: usize = 64;
/// Runs of base64 at least this long are not shown at all: key material, a certificate or a
/// kubeconfig's embedded data, never something a person needs to read in an error.
const BASE64_RUN: usize = 48;
/// The longest message shown whole.
const MAX_MESSAGE: usize = 16 * 1024;

/// A message safe to show: private keys (PEM blocks, and long base64 runs that could be one)
/// replaced by a note, over-long tokens cut short, control characters escaped (a line feed
/// is kept: messages have lines). Used by [`Error`]'s `Display` and by every message that
/// quotes a request (approve's denials), and by the binary for what its argument parser
/// says (an argument may be a whole private key).
pub fn safe_text(raw: &str) -> String {
    let without_keys = redact_private_keys(raw);
    let mut out = String::with_capacity(without_keys.len().min(MAX_MESSAGE));
    let mut rest = without_keys.as_str();
    while !rest.is_empty() {
        if out.len() >= MAX_MESSAGE {
            out.push_str(&format!("… (message cut: {} more bytes)", rest.len()));
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        push_token(&mut out, token);
        let mut ws = after.chars();
        if let Some(c) = ws.next() {
            push_escaped(&mut out, c);
        }
        rest = ws.as_str();
    }
    out
}

/// One token (no whitespace): base64 runs elided, then cut short, then escaped.
fn push_token(out: &mut String, token: &str) {
    let mut shown = String::new();
    let mut run = String::new();
    let flush = |shown: &mut String, run: &mut String| {
        if looks_like_base64(run) {
            shown.push_str(&format!("<{} characters of base64 not shown>", run.len()));
        } else {
            shown.push_str(run);
        }
        run.clear();
    };
    for c in token.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=') {
            run.push(c);
        } else {
            flush(&mut shown, &mut run);
            shown.push(c);
        }
    }
    flush(&mut shown, &mut run);
    let count = shown.chars().count();
    if count > MAX_TOKEN {
        for c in shown.chars().take(TOKEN_KEPT) {
            push_escaped(out, c);
        }
        out.push_str(&format!("… ({count} characters)"));
    } else {
        for c in shown.chars() {
            push_escaped(out, c);
        }
    }
}

/// A long run of the base64 alphabet that looks like encoded data (a key's body, a
/// kubeconfig's `client-key-data`): not a path (paths are runs too, `/etc/kubernetes/pki`, but
/// of short segments, where base64 has a `/` in 64 characters on average), and mixed as
/// encoded bytes are (upper and lower case letters and digits: 48 random base64 characters
/// lack one of them about once in three thousand), so that harmless input such as a
/// 70-letter name is shown as it is.
fn looks_like_base64(run: &str) -> bool {
    let mixed = |f: fn(&u8) -> bool| run.as_bytes().iter().any(f);
    run.len() >= BASE64_RUN
        && run.split('/').any(|segment| segment.len() >= 24)
        && mixed(u8::is_ascii_uppercase)
        && mixed(u8::is_ascii_lowercase)
        && mixed(u8::is_ascii_digit)
}

/// Text for a terminal: every control character but a line feed escaped (`\u{1b}`), so that
/// what a certificate or a request says (a CN with ESC sequences) cannot drive the terminal.
/// Used for every table a command prints, and for approve's lines on stderr.
pub(crate) fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() && c != '\n' {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// Every PEM private key block (`-----BEGIN ... PRIVATE KEY-----` to its END line, or to the
/// end of the text if it has none) replaced by a note. Works on escaped text too (a parser that
/// quotes `\n` as two characters).
fn redact_private_keys(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let label_end = rest[start + 11..].find("-----").map(|i| start + 11 + i);
        let Some(label_end) = label_end else { break };
        let label = &rest[start + 11..label_end];
        if !label.contains("PRIVATE KEY") {
            out.push_str(&rest[..label_end + 5]);
            rest = &rest[label_end + 5..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(&format!("<{} not shown>", label.to_lowercase()));
        let end_marker = format!("-----END {label}-----");
        rest = match rest[label_end..].find(&end_marker) {
            Some(i) => &rest[label_end + i + end_marker.len()..],
            // Cut short (or quoted in part, as an argument parser quotes `--name` up to its
            // `=`): the block goes on as long as a key's body can, base64 and line breaks
            // (escaped or not), and what follows is shown.
            None => {
                let body = &rest[label_end + 5..];
                let len =
                    body.find(|c: char| !(c.is_ascii_alphanumeric() || "+/=\\\n\r".contains(c))).unwrap_or(body.len());
                &body[len..]
            }
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIGnB5sZpG0k7m0Y3o2xWm1uQx9wZrQ0s6Xq4e1y2n3AoAoGCCqGSM49\nAwEHoUQDQgAEc2hG0Qv1pYfJmXq0t9Kc8Yw==\n-----END EC PRIVATE KEY-----\n";

    #[test]
    fn a_private_key_is_never_shown_raw_or_escaped() {
        let escaped = format!("invalid type: string {:?}, expected a map", KEY);
        for raw in [KEY.to_string(), escaped, format!("x: {}", &KEY[..80])] {
            let shown = safe_text(&raw);
            assert!(!shown.contains("MHcCAQEE"), "{shown}");
            assert!(!shown.contains("AwEHoUQD"), "{shown}");
            assert!(shown.contains("<ec private key not shown>"), "{shown}");
        }
        // A key quoted in part, in a message that goes on: the rest is shown.
        let quoted = format!("unexpected argument '{}' found\n\nUsage: kubepki verify", &KEY[..120]);
        assert_eq!(
            safe_text(&quoted),
            "unexpected argument '<ec private key not shown>' found\n\nUsage: kubepki verify"
        );
        let e = Error::Spec { file: "ca.key".into(), field: "document".into(), problem: KEY.into() };
        assert!(!e.to_string().contains("MHcC") && !format!("{e:?}").contains("MHcC"), "{e}");
        // Certificates are not secret, but their bodies are no use in a message either.
        let b64 = "TUlJQ3lEQ0NBYkNnQXdJQkFnSUJBREFOQmdrcWhraUc5dzBCQVFzRkFEQVZNUk13RVFZRFZRUURFd3ByZFdKbGNtNWxkR1Z6";
        assert_eq!(safe_text(&format!("bad data '{b64}'")), "bad data '<96 characters of base64 not shown>'");
        // Harmless input of the same alphabet is shown: it is not encoded data.
        let name = "a".repeat(70);
        assert_eq!(safe_text(&format!("'{name}' is bad")), format!("'{name}' is bad"));
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(safe_text(hex), hex);
    }

    #[test]
    fn long_input_is_cut_and_control_characters_escaped() {
        let long = "é-".repeat(10_000_000 / 3);
        let shown = safe_text(&format!("clusterName: \"{long}\" must be short"));
        assert!(shown.len() < 400, "{}", shown.len());
        assert!(shown.ends_with("characters) must be short"), "{shown}");
        assert_eq!(safe_text("a\0b\u{1b}[31mred\r\n  next"), "a\\u{0}b\\u{1b}[31mred\\r\n  next");
        let many = "word ".repeat(10_000);
        assert!(safe_text(&many).len() < MAX_MESSAGE + 100);
        let path = "/tmp/.tmpAbCdEf/kubernetes/nodes/node01/etc/kubernetes/pki/ca/x/y/z.crt";
        assert_eq!(safe_text(path), path, "paths are shown whole");
        assert_eq!(
            safe_text("nodes[0].addresses[1]: 10.0.0.1 is used by another node ('a')"),
            "nodes[0].addresses[1]: 10.0.0.1 is used by another node ('a')"
        );
    }
}
