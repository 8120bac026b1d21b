//! `report`: the whole PKI on one self-contained HTML page: the summary counts, the picture of
//! who talks to whom, `verify`'s findings (filterable by severity, node and link), the links
//! that are not ok, an expiry timeline of every certificate (CAs included), where each CA's
//! rotation stands, and the catalog of what is on disk.
//!
//! The page is built from the library's own reports ([`Report`], [`CheckReport`],
//! [`RotationStatus`]), never from another command's text. It loads nothing: no URL appears in
//! it, its Content-Security-Policy forbids every fetch, and allows only its own script and
//! stylesheet (by their SHA-256), so even text that escaped escaping could not run. Every
//! string from a file (a CN, a SAN, a path) is escaped for HTML where it is written.
//!
//! Large clusters fold as the picture does: beyond [`FOLD_NODES`] nodes, the per-node copies of
//! one file become one row of the timeline and of the catalog (`nodes/<node>/... × 5000`,
//! spanning the earliest NotBefore to the latest NotAfter), except rows that are not ok
//! (up to [`MAX_TROUBLED`]); the findings and links tables list at most [`MAX_ROWS`] rows each
//! and say how many more there are.

mod rows;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use base64::Engine;
use time::OffsetDateTime;

use crate::audit::check::{CheckEntry, CheckReport, CheckStatus};
use crate::audit::verify::{LinkStatus, Report, Severity};
use crate::graph::{render_report, GraphFormat};
use crate::model::catalog::Catalog;
use crate::model::topology::Topology;
use crate::operations::rotate::RotationStatus;
use crate::report::esc;
use rows::{fold, node_of_path, Row};

/// The page's stylesheet and scripts, real files beside this one.
const CSS: &str = include_str!("html/page.css");
/// Runs first: records errors (and blocked content) into the page, where a test reads them.
const GUARD_JS: &str = include_str!("html/guard.js");
/// Filters, the URL fragment, and the self-test that counts what the page shows.
const PAGE_JS: &str = include_str!("html/page.js");

/// Nodes beyond which per-node copies fold into one row per file.
pub const FOLD_NODES: usize = 8;
/// Rows that are not ok kept out of a fold, at most.
pub const MAX_TROUBLED: usize = 50;
/// Rows of the findings table and of the links table, at most.
pub const MAX_ROWS: usize = 1000;
/// Links and nodes of one finding the filters match, at most (an expired CA has every link).
pub const MAX_ATTR_ITEMS: usize = 100;

/// What the page shows: the library's reports on one tree at one instant.
pub struct Page<'a> {
    /// Who talks to whom.
    pub topology: &'a Topology,
    /// The catalog (to name the entry each file is).
    pub catalog: &'a Catalog,
    /// `verify`'s report.
    pub verify: &'a Report,
    /// `check`'s report: every certificate with its expiry.
    pub check: &'a CheckReport,
    /// Where each CA's rotation stands.
    pub rotation: &'a [RotationStatus],
    /// The kubepki version that wrote it.
    pub version: &'a str,
}

/// The counts of a verify report, as the page's summary shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Links by status word (`ok`, `warning`, `broken`, `unverified`, `unknown`).
    pub links: Vec<(&'static str, usize)>,
    /// Findings by severity word (`error`, `warning`, `info`).
    pub findings: Vec<(&'static str, usize)>,
}

impl Counts {
    /// Count `r`'s links and findings.
    pub fn of(r: &Report) -> Counts {
        let mut c = Counts::default();
        for s in LINK_STATUSES {
            c.links.push((s.word(), r.links.iter().filter(|l| l.status == s).count()));
        }
        for s in SEVERITIES {
            c.findings.push((severity_word(s), r.findings.iter().filter(|f| f.severity == s).count()));
        }
        c
    }

    /// `52 links: 50 ok, 2 broken; findings: 1 error, 0 warning, 0 info`.
    pub fn text(&self) -> String {
        let links: Vec<String> = self.links.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let findings: Vec<String> = self.findings.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let total: usize = self.links.iter().map(|(_, v)| v).sum();
        format!("{total} links: {}; findings: {}", links.join(", "), findings.join(", "))
    }
}

const LINK_STATUSES: [LinkStatus; 5] =
    [LinkStatus::Ok, LinkStatus::Warning, LinkStatus::Broken, LinkStatus::Unverified, LinkStatus::Unknown];
const SEVERITIES: [Severity; 3] = [Severity::Error, Severity::Warning, Severity::Info];

/// The page.
pub fn render(p: &Page) -> String {
    let mut o = String::with_capacity(64 * 1024);
    head(&mut o, p);
    summary(&mut o, p);
    let _ = writeln!(o, "<section id=\"graph\"><h2>Who talks to whom</h2>");
    o.push_str(&render_report(p.topology, p.verify, GraphFormat::Svg));
    let _ = writeln!(o, "</section>");
    findings(&mut o, p);
    links(&mut o, p);
    let rows = fold(&p.check.entries);
    let _ = writeln!(
        o,
        "<section id=\"expiry\"><h2>Expiry timeline</h2><p class=\"note\">Every certificate from NotBefore to \
         NotAfter (the dashed line: the instant checked, {}; shaded: the next {}); CAs in dark blue, leaves in teal; expired in red, expiring in \
         orange. Folded rows span their members' earliest NotBefore to latest NotAfter, the mark at the earliest \
         NotAfter.</p>",
        esc(&date_time(p.check.at)),
        esc(&crate::model::spec::duration_text::format(p.check.warn_within)),
    );
    o.push_str(&timeline::svg(&rows, p.check.at, p.check.warn_within));
    let _ = writeln!(o, "</section>");
    rotation(&mut o, p);
    catalog(&mut o, p, &rows);
    let _ = writeln!(o, "<pre id=\"selftest\" hidden></pre>");
    let _ = writeln!(o, "<script>{PAGE_JS}</script>\n</body>\n</html>");
    o
}

fn head(o: &mut String, p: &Page) {
    let title = format!("kubepki report: {}", p.verify.dir.display());
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src {} {}; style-src {}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n\
         <script>{GUARD_JS}</script>\n</head>\n<body>",
        csp_hash(GUARD_JS),
        csp_hash(PAGE_JS),
        csp_hash(CSS),
        esc(&title)
    );
    let _ = writeln!(
        o,
        "<header><h1>{}</h1><p>verified at {} by kubepki {}</p></header>",
        esc(&title),
        esc(&date_time(p.verify.at)),
        esc(p.version)
    );
}

/// `'sha256-…'`: the CSP source that allows exactly this inline script or stylesheet.
fn csp_hash(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

fn summary(o: &mut String, p: &Page) {
    let c = Counts::of(p.verify);
    let _ = writeln!(o, "<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
    let _ = writeln!(o, "<div class=\"card\"><h3>links ({})</h3><dl>", p.verify.links.len());
    for (k, v) in &c.links {
        let _ = writeln!(o, "<dt class=\"s-{k}\">{k}</dt><dd data-count=\"links-{k}\">{v}</dd>");
    }
    let _ = writeln!(o, "</dl></div>\n<div class=\"card\"><h3>findings ({})</h3><dl>", p.verify.findings.len());
    for (k, v) in &c.findings {
        let _ = writeln!(o, "<dt class=\"s-{k}\">{k}</dt><dd data-count=\"findings-{k}\">{v}</dd>");
    }
    let _ = writeln!(o, "</dl></div>\n<div class=\"card\"><h3>certificates ({})</h3><dl>", p.check.entries.len());
    for s in CheckStatus::ALL {
        let n = p.check.count(s);
        if n > 0 || s == CheckStatus::Ok {
            let k = s.word().replace(' ', "-");
            let _ = writeln!(o, "<dt class=\"c-{k}\">{}</dt><dd data-count=\"certs-{k}\">{n}</dd>", s.word());
        }
    }
    let _ = writeln!(o, "</dl></div></div></section>");
}

/// The nodes a finding is about: its entry's, its file's (`nodes/<node>/...`), and those of
/// its links' two sides.
fn finding_nodes(f: &crate::audit::verify::Finding, node_of_link: &BTreeMap<&str, Vec<&str>>) -> BTreeSet<String> {
    let mut nodes: BTreeSet<String> = f.entry.as_ref().and_then(|e| e.node()).map(str::to_string).into_iter().collect();
    nodes.extend(f.file.as_deref().and_then(node_of_path));
    for l in &f.links {
        nodes.extend(node_of_link.get(l.as_str()).into_iter().flatten().map(|n| n.to_string()));
    }
    nodes
}

fn findings(o: &mut String, p: &Page) {
    let node_of: BTreeMap<&str, &str> =
        p.topology.components.iter().filter_map(|c| Some((c.id.as_str(), c.node.as_deref()?))).collect();
    let node_of_link: BTreeMap<&str, Vec<&str>> = p
        .topology
        .links
        .iter()
        .map(|l| {
            (l.id.as_str(), [&l.client, &l.server].iter().filter_map(|c| node_of.get(c.as_str()).copied()).collect())
        })
        .collect();
    let shown = &p.verify.findings[..p.verify.findings.len().min(MAX_ROWS)];
    let rows: Vec<BTreeSet<String>> = shown.iter().map(|f| finding_nodes(f, &node_of_link)).collect();
    let all_nodes: BTreeSet<&String> = rows.iter().flatten().collect();
    let _ = writeln!(o, "<section id=\"findings\"><h2>Findings ({})</h2>", p.verify.findings.len());
    let _ = writeln!(
        o,
        "<form class=\"filters\" id=\"filters\"><label>severity <select id=\"f-severity\"><option value=\"\">all</option>\
         <option>error</option><option>warning</option><option>info</option></select></label> \
         <label>node <select id=\"f-node\"><option value=\"\">all</option>"
    );
    for n in &all_nodes {
        let _ = write!(o, "<option>{}</option>", esc(n));
    }
    let _ = writeln!(
        o,
        "</select></label> <label>link <input id=\"f-link\" type=\"search\" placeholder=\"part of a link id\"></label> \
         <output id=\"f-shown\"></output></form>"
    );
    let _ = writeln!(
        o,
        "<table class=\"rows\" id=\"findings-table\"><thead><tr><th>severity</th><th>code</th><th>file or entry</th>\
         <th>links</th><th>expected</th><th>found</th><th>fix</th></tr></thead><tbody>"
    );
    for (f, nodes) in shown.iter().zip(&rows) {
        let sev = severity_word(f.severity);
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let links = match f.links.len() {
            0 => String::new(),
            1 => f.links[0].clone(),
            n => format!("{} and {} more", f.links[0], n - 1),
        };
        let _ = writeln!(
            o,
            "<tr class=\"s-{sev}\" data-severity=\"{sev}\" data-nodes=\"{}\" data-links=\"{}\"><td>{sev}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&nodes[..nodes.len().min(MAX_ATTR_ITEMS)].join(" ")),
            esc(&f.links[..f.links.len().min(MAX_ATTR_ITEMS)].join("\n")),
            esc(f.kind.name()),
            esc(&f.subject()),
            esc(&links),
            esc(&f.expected),
            esc(&f.found),
            esc(&f.fix)
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    more(o, p.verify.findings.len(), shown.len(), "findings", "kubepki verify");
    if p.verify.findings.is_empty() {
        let _ = writeln!(o, "<p class=\"note\">No findings: every link checks out.</p>");
    }
    let _ = writeln!(o, "</section>");
}

fn links(o: &mut String, p: &Page) {
    let not_ok: Vec<_> = p.verify.links.iter().filter(|l| l.status != LinkStatus::Ok).collect();
    let shown = &not_ok[..not_ok.len().min(MAX_ROWS)];
    let _ = writeln!(
        o,
        "<section id=\"links\"><h2>Links that are not ok ({} of {})</h2>\
         <table class=\"rows\" id=\"links-table\"><thead><tr><th>#</th><th>link</th><th>status</th><th>findings</th>\
         </tr></thead><tbody>",
        not_ok.len(),
        p.verify.links.len()
    );
    for l in shown {
        let codes: BTreeSet<&str> = l.findings.iter().map(|i| p.verify.findings[*i].kind.name()).collect();
        let s = l.status.word();
        let _ = writeln!(
            o,
            "<tr class=\"s-{s}\" data-status=\"{s}\" data-link=\"{}\"><td>{}</td><td>{}</td><td>{s}</td><td>{}</td></tr>",
            esc(&l.id),
            l.number,
            esc(&l.id),
            esc(&codes.into_iter().collect::<Vec<_>>().join(", "))
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    more(o, not_ok.len(), shown.len(), "links", "kubepki verify --all");
    let _ = writeln!(o, "</section>");
}

fn more(o: &mut String, total: usize, shown: usize, what: &str, command: &str) {
    if total > shown {
        let _ = writeln!(
            o,
            "<p class=\"note\" data-more=\"{}\">and {} more {what}: <code>{command}</code> lists them all</p>",
            total - shown,
            total - shown
        );
    }
}

fn rotation(o: &mut String, p: &Page) {
    let _ = writeln!(
        o,
        "<section id=\"rotation\"><h2>CA rotation</h2><table class=\"rows\"><thead><tr><th>CA</th><th>phase done</th>\
         <th>started</th><th>next</th><th>before the next phase, roll out</th></tr></thead><tbody>"
    );
    for r in p.rotation {
        let (word, phase) = match r.phase {
            Some(crate::operations::rotate::Phase::Start) => ("start", "start"),
            Some(crate::operations::rotate::Phase::Reissue) => ("reissue", "reissue"),
            None => ("none", "none: no rotation under way"),
        };
        let roll: Vec<String> =
            r.roll_out_first.iter().map(|n| format!("{}: {} file(s)", n.nodes.join(", "), n.files.len())).collect();
        let _ = writeln!(
            o,
            "<tr data-ca=\"{}\" data-phase=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&r.ca),
            word,
            esc(&r.ca),
            phase,
            esc(&r.started.map(date_time).unwrap_or_default()),
            esc(r.next.as_deref().unwrap_or("")),
            esc(&roll.join("; "))
        );
    }
    let _ = writeln!(o, "</tbody></table></section>");
}

fn catalog(o: &mut String, p: &Page, rows: &[Row]) {
    // The catalog entry each file is (its per-node copies are the same entry's).
    let mut entry_of: BTreeMap<std::path::PathBuf, String> = BTreeMap::new();
    for e in &p.catalog.entries {
        for (file, _) in e.files() {
            entry_of.insert(file.to_path_buf(), e.id.to_string());
        }
    }
    let _ = writeln!(
        o,
        "<section id=\"catalog\"><h2>Catalog: what is on disk ({} certificates and files, {} rows)</h2>\
         <table class=\"rows\" id=\"catalog-table\"><thead><tr><th>file</th><th>entry</th><th>CN (user)</th>\
         <th>O (groups)</th><th>issuer</th><th>SANs</th><th>usages</th><th>key</th><th>not before</th><th>not after</th>\
         <th>status</th></tr></thead><tbody>",
        p.check.entries.len(),
        rows.len()
    );
    for r in rows {
        let e = r.first;
        let c = e.certificate.as_ref();
        let s = r.status.word().replace(' ', "-");
        let entry = if r.count == 1 { entry_of.get(&e.path).cloned().unwrap_or_default() } else { String::new() };
        let usages: Vec<String> = c
            .map(|c| {
                c.key_usage.iter().map(|u| u.to_string()).chain(c.ext_key_usage.iter().map(|u| u.to_string())).collect()
            })
            .unwrap_or_default();
        let sans: Vec<String> = c.map(|c| c.sans.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        let like = if r.count > 1 { format!(" (first of {}; the others alike)", r.count) } else { String::new() };
        let _ = writeln!(
            o,
            "<tr class=\"c-{s}\" data-status=\"{s}\" data-count=\"{}\"{}><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.count,
            if e.is_ca { " data-ca=\"true\"" } else { "" },
            esc(&r.name),
            esc(&entry),
            esc(c.map_or("", |c| c.subject_cn.as_str())),
            esc(&like),
            esc(&c.map(|c| c.orgs.join(", ")).unwrap_or_default()),
            esc(c.map_or("", |c| c.issuer.as_str())),
            esc(&sans.join(", ")),
            esc(&usages.join(", ")),
            esc(&c.map(|c| c.key.to_string()).unwrap_or_default()),
            esc(&r.not_before.map(date_time).unwrap_or_default()),
            esc(&r.expiry_text()),
            esc(&status_text(r, e)),
        );
    }
    let _ = writeln!(o, "</tbody></table></section>");
}

fn status_text(r: &Row, e: &CheckEntry) -> String {
    let mut s = r.status.word().to_string();
    if let Some(problem) = e.problem.as_deref().filter(|_| r.count == 1) {
        s.push_str(": ");
        s.push_str(problem);
    }
    if r.count > 1 && r.not_ok > 0 {
        s.push_str(&format!(" ({} not ok)", r.not_ok));
    }
    s
}

/// `2027-11-30 02:19 UTC`.
pub(crate) fn date_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

#[cfg(test)]
mod tests;
