//! `verify`'s report, live handshakes and endpoint probes, for people.

use crate::audit::handshake::EndpointReport;
use crate::audit::verify::{LinkStatus, Report};
use std::fmt::Write;

/// The live handshakes, one line per link.
pub fn live_text(live: &[crate::audit::handshake::LiveResult]) -> String {
    let mut out = String::from("live handshakes (rustls over loopback TCP):\n");
    for l in live {
        let verdict = match l.ok {
            Some(true) => "ok".to_string(),
            Some(false) => format!("FAILED: {}", l.error.as_deref().unwrap_or("")),
            None => "not run (not kubepki's to check)".to_string(),
        };
        let _ = writeln!(out, "  {}: {verdict}", l.link);
    }
    let ok = live.iter().filter(|l| l.ok == Some(true)).count();
    let failed = live.iter().filter(|l| l.ok == Some(false)).count();
    let _ = writeln!(out, "{ok} handshakes completed, {failed} failed, {} not run", live.len() - ok - failed);
    out
}

/// What a probe of a running endpoint found, in words.
pub fn endpoint_text(r: &EndpointReport) -> String {
    let mut out =
        format!("{} as {}: {}\n", r.endpoint, r.credential, if r.ok { "handshake completed" } else { "FAILED" });
    for line in &r.explanation {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(c) = &r.server_certificate {
        let sans: Vec<String> = c.sans.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(
            out,
            "  server presented: {} issued by {}, SANs {}, valid until {}",
            c.subject,
            c.issuer,
            sans.join(", "),
            c.not_after.date()
        );
    }
    out
}

/// The report for a terminal: the links that are not OK (or all), then the findings.
/// `verify`'s report: links that are not ok (every link with `all`), each finding with its
/// fix, and the totals.
pub fn text(r: &Report, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "verify {} at {}", r.dir.display(), r.at.date());
    let rows: Vec<Vec<String>> = r
        .links
        .iter()
        .filter(|l| all || l.status != LinkStatus::Ok)
        .map(|l| {
            let codes: Vec<&str> = l.findings.iter().map(|i| r.findings[*i].kind.name()).collect();
            vec![l.number.to_string(), l.id.clone(), word(l.status).into(), codes.join(",")]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&crate::report::table(&["#", "LINK", "STATUS", "FINDINGS"], &rows));
    }
    if !r.findings.is_empty() {
        out.push('\n');
    }
    for f in &r.findings {
        let what = f.subject();
        let links = match f.links.len() {
            0 => String::new(),
            1 => format!("  [{}]", f.links[0]),
            n => format!("  [{} and {} more links]", f.links[0], n - 1),
        };
        let _ = writeln!(out, "{:<7} {:<16} {what}{links}", f.severity.to_string(), f.kind.name());
        let _ = writeln!(out, "        expected: {}", f.expected);
        let _ = writeln!(out, "        found:    {}", f.found);
        let _ = writeln!(out, "        fix:      {}", f.fix);
    }
    let (l, f) = (&r.summary.links, &r.summary.findings);
    let _ = writeln!(
        out,
        "\n{} links: {} ok, {} warning, {} broken, {} unverified, {} unknown; findings: {} error, {} warning, {} info",
        l.total, l.ok, l.warning, l.broken, l.unverified, l.unknown, f.error, f.warning, f.info
    );
    out
}

fn word(s: LinkStatus) -> &'static str {
    match s {
        LinkStatus::Ok => "ok",
        LinkStatus::Warning => "warning",
        LinkStatus::Broken => "BROKEN",
        LinkStatus::Unverified => "UNVERIFIED",
        LinkStatus::Unknown => "unknown",
    }
}
