//! What `inspect` found in each file, for people (never key material).

use crate::{
    audit::inspect::CertSource, audit::inspect::CertView, audit::inspect::CsrView, audit::inspect::FileReport,
    audit::inspect::KeySource, audit::inspect::KeyView, audit::inspect::KubeconfigView,
};
use std::fmt::Write;
use time::OffsetDateTime;

/// Lines of `label  value`, indented.
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, indent: usize, label: &str, value: impl std::fmt::Display) {
        let pad = " ".repeat(indent);
        let _ = writeln!(self.text, "{pad}{label:<19} {value}");
    }

    fn head(&mut self, indent: usize, title: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{}{title}", " ".repeat(indent));
    }
}

/// What one file holds, field by field.
pub fn text(r: &FileReport) -> String {
    let mut o = Out { text: String::new() };
    o.head(0, format_args!("{}: {}", r.path.display(), r.kind.describe()));
    let many = r.certificates.len() > 1;
    for c in &r.certificates {
        if many {
            o.head(2, format_args!("certificate ({})", c.source));
        }
        cert(&mut o, if many { 4 } else { 2 }, c);
    }
    for c in &r.requests {
        csr(&mut o, 2, c);
    }
    for k in &r.keys {
        key(&mut o, 2, k);
    }
    if let Some(k) = &r.kubeconfig {
        kubeconfig(&mut o, k);
    }
    if let Some(c) = &r.configuration {
        configuration(&mut o, c);
    }
    o.text
}

/// A component's TLS settings, each named file with what it holds (one line per certificate).
fn configuration(o: &mut Out, c: &crate::audit::inspect::config::ConfigView) {
    let when = time::macros::format_description!("[year]-[month]-[day]");
    o.line(2, "component", c.component);
    for s in &c.settings {
        let cis = s.cis.map(|id| format!("  [CIS {id}]")).unwrap_or_default();
        match (&s.value, &s.file) {
            (None, _) => o.line(2, s.name, format_args!("(not set){cis}")),
            (Some(v), None) => o.line(2, s.name, format_args!("{v}{cis}")),
            (Some(_), Some(f)) => {
                o.line(2, s.name, format_args!("{}{cis}", reference(f)));
                for x in &f.certificates {
                    let to = x.info.not_after.format(&when).unwrap_or_default();
                    o.line(
                        4,
                        "",
                        format_args!(
                            "{}, issued by {}, valid to {to} ({})",
                            x.info.subject, x.info.issuer, x.time_left
                        ),
                    );
                }
            }
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn identity(user: &str, groups: &[String]) -> String {
    match groups {
        [] => format!("user \"{user}\", no groups"),
        _ => format!("user \"{user}\", groups {}", groups.join(", ")),
    }
}

fn cert(o: &mut Out, i: usize, c: &CertView) {
    let when = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let fmt = |t: OffsetDateTime| t.to_offset(time::UtcOffset::UTC).format(&when).unwrap_or_default();
    let x = &c.info;
    o.line(i, "subject", &x.subject);
    o.line(i, "identity", identity(&c.user, &c.groups));
    o.line(i, "issuer", &x.issuer);
    o.line(i, "serial", &x.serial);
    o.line(i, "validity", format_args!("{} to {} ({})", fmt(x.not_before), fmt(x.not_after), c.time_left));
    o.line(i, "key", format_args!("{} ({} bits), signed with {}", x.key, x.key.bits(), x.signature_algorithm));
    o.line(i, "key usage", list(&x.key_usage.iter().map(|u| u.name().to_string()).collect::<Vec<_>>()));
    o.line(i, "ext key usage", list(&x.ext_key_usage_names()));
    let sans: Vec<String> = x.sans.iter().map(|s| s.to_string()).chain(x.other_sans.iter().cloned()).collect();
    o.line(i, "SANs", list(&sans));
    let ca = match (x.is_ca, x.path_len) {
        (false, _) => "no".to_string(),
        (true, None) => "yes".to_string(),
        (true, Some(n)) => format!("yes, path length {n}"),
    };
    o.line(i, "CA", ca);
    o.line(i, "SHA-256", &x.sha256);
    if let Some(s) = c.signed_by_next {
        o.line(i, "chain", if s { "signed by the next certificate" } else { "NOT signed by the next certificate" });
    }
}

fn csr(o: &mut Out, i: usize, c: &CsrView) {
    o.line(i, "subject", &c.subject);
    o.line(i, "identity", identity(&c.user, &c.groups));
    let sans: Vec<String> = c.sans.iter().map(|s| s.to_string()).chain(c.other_sans.iter().cloned()).collect();
    o.line(i, "SANs", list(&sans));
    o.line(i, "key usage", list(&c.key_usage.iter().map(|u| u.name().to_string()).collect::<Vec<_>>()));
    o.line(i, "ext key usage", list(&c.ext_key_usage));
    match &c.weak_key {
        Some(why) => o.line(i, "key", format_args!("{} ({} bits), WEAK: {why}", c.key_algorithm, c.key_bits)),
        None => o.line(i, "key", format_args!("{} ({} bits)", c.key_algorithm, c.key_bits)),
    }
    let verdict = if c.signature_valid { "valid (signed by its own key)" } else { "INVALID" };
    o.line(i, "signature", format_args!("{}, {verdict}", c.signature_algorithm));
}

fn key(o: &mut Out, i: usize, k: &KeyView) {
    o.line(i, "key", format_args!("{} ({} bits), {}", k.algorithm, k.bits, k.format));
    let matches: Vec<String> = k
        .matches
        .iter()
        .map(|m| match m.source.as_str() {
            "block 1" => format!("{} (CN {})", m.path.display(), m.subject_cn),
            source => format!("{} ({source}, CN {})", m.path.display(), m.subject_cn),
        })
        .collect();
    match matches.split_first() {
        None => o.line(i, "matches", "no certificate found"),
        Some((first, rest)) => {
            o.line(i, "matches", first);
            for m in rest {
                o.line(i, "", m);
            }
        }
    }
    if let Some(s) = &k.searched {
        o.line(i, "searched", s.display());
    }
}

fn kubeconfig(o: &mut Out, k: &KubeconfigView) {
    let current = if k.current_context.is_empty() { "(none)" } else { &k.current_context };
    o.line(2, "current-context", current);
    for c in &k.contexts {
        o.line(2, "context", format_args!("{}: cluster {}, user {}", c.name, c.cluster, c.user));
    }
    for c in &k.clusters {
        o.head(2, format_args!("cluster {}", c.name));
        o.line(4, "server", &c.server);
        match &c.certificate_authority {
            None => o.line(4, "CA", "none (the system's trusted roots)"),
            Some(s) => source(o, 4, "certificate-authority", s),
        }
    }
    for u in &k.users {
        o.head(2, format_args!("user {}", u.name));
        match &u.client_certificate {
            None => o.line(4, "client cert", "none"),
            Some(s) => source(o, 4, "client-certificate", s),
        }
        match &u.client_key {
            None => {}
            Some(KeySource::Embedded { algorithm }) => {
                let fit = match u.key_matches_certificate {
                    Some(true) => ", matches the client certificate",
                    Some(false) => ", does NOT match the client certificate",
                    None => "",
                };
                o.line(4, "client-key-data", format_args!("embedded {algorithm} key{fit}"));
            }
            Some(KeySource::File(f)) => o.line(4, "client-key", reference(f)),
        }
        if !u.other_auth.is_empty() {
            o.line(4, "other auth", u.other_auth.join(", "));
        }
    }
}

fn source(o: &mut Out, i: usize, field: &str, s: &CertSource) {
    match s {
        CertSource::Embedded { certificates } => {
            for c in certificates {
                o.head(i, format_args!("{}:", c.source.rsplit('.').next().unwrap_or(field)));
                cert(o, i + 2, c);
            }
        }
        CertSource::File(f) => {
            o.line(i, field, reference(f));
            for c in &f.certificates {
                cert(o, i + 2, c);
            }
        }
    }
}

fn reference(f: &crate::audit::inspect::FileRef) -> String {
    let state = match (&f.problem, f.readable) {
        (Some(p), false) => format!("not readable here: {p}"),
        (Some(p), true) => format!("readable, but {p}"),
        (None, _) => "readable".into(),
    };
    let at = if f.resolved.as_os_str() == f.reference.as_str() {
        String::new()
    } else {
        format!(", at {}", f.resolved.display())
    };
    format!("file {} ({state}{at})", f.reference)
}
