//! `explain`'s explanations, for people.

use crate::audit::explain::{Explained, Side, Source};
use std::fmt::Write;
use std::path::Path;

/// The beginning of a text, cut short for a heading.
pub fn excerpt(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    match line.char_indices().nth(100) {
        Some((i, _)) => format!("\"{}...\"", &line[..i]),
        None => format!("\"{line}\""),
    }
}

/// Each error text explained: cause, link, file, certificate and fix.
pub fn text_of(explained: &[Explained], dir: Option<&Path>) -> String {
    let mut out = String::new();
    for (n, x) in explained.iter().enumerate() {
        let m = &x.message;
        let _ = writeln!(out, "{}. {}", n + 1, m.text);
        let _ =
            writeln!(out, "   line {}, {} wording; {} certificate at fault", m.line, source(m.source), side(m.side));
        let _ = writeln!(out, "   cause: {}", x.explanation);
        let Some(tie) = &x.tree else {
            out.push('\n');
            continue;
        };
        let root = dir.unwrap_or(Path::new("."));
        let _ = writeln!(out, "   link:  {}", links(&tie.links));
        for c in &tie.culprits {
            let f = &c.finding;
            let file = c.file.as_ref().map(|p| root.join(p).display().to_string()).unwrap_or_else(|| c.entry.clone());
            let _ = writeln!(out, "   file:  {file} ({})", c.entry);
            if let Some(cert) = &c.certificate {
                let _ = writeln!(
                    out,
                    "   cert:  {}, issued by {}, serial {}, valid {} to {}\n          SHA-256 {}",
                    cert.subject,
                    cert.issuer,
                    cert.serial,
                    cert.not_before.date(),
                    cert.not_after.date(),
                    cert.sha256
                );
            }
            let _ = writeln!(out, "   found: {} ({}): {}; expected {}", f.kind.name(), f.severity, f.found, f.expected);
            if c.links.len() != tie.links.len() {
                let _ = writeln!(out, "   on:    {}", links(&c.links));
            }
            let _ = writeln!(out, "   fix:   {}", f.fix);
        }
        if let Some(note) = &tie.note {
            let _ = writeln!(out, "   tree:  {note}");
        }
        out.push('\n');
    }
    out
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Go => "Go crypto/x509 and crypto/tls",
        Source::Kubectl => "kubectl",
        Source::Openssl => "openssl",
        Source::Curl => "curl",
        Source::Python => "Python ssl/urllib3",
        Source::Etcdctl => "etcdctl",
    }
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Server => "the server's",
        Side::Client => "the client's",
    }
}

fn links(ids: &[String]) -> String {
    match ids {
        [] => "none of the tree's links".into(),
        few if few.len() <= 3 => few.join(", "),
        many => format!("{} (and {} more links)", many[..3].join(", "), many.len() - 3),
    }
}
