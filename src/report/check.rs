//! What `check` found, as `kubeadm certs check-expiration` shows it: kubeadm's certificates and
//! kubeconfigs by kubeadm's names, then its CAs, with kubeadm's columns (and a STATUS column,
//! where kubepki has more to say); then what kubeadm does not list (kubelets, kube-proxy, node
//! bundles), with node bundles' byte-identical copies named once and, above 50 nodes, each
//! kind of a node's file folded into one row.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::audit::check::{CheckEntry, CheckReport, CheckStatus};
use crate::model::vocabulary::{check_expiration, layout};
use crate::report::table;

/// Above this many node bundles, the rows of each kind of a node's file are folded into one.
const FOLD_ABOVE_NODES: usize = 50;

/// kubeadm's columns, and kubepki's STATUS.
const CERTIFICATE_COLUMNS: [&str; 6] =
    ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED", "STATUS"];
const AUTHORITY_COLUMNS: [&str; 5] =
    ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED", "STATUS"];

/// The tables of `check`; with `all`, every row (node bundles' copies, and every node's files
/// however many nodes there are).
pub fn text(r: &CheckReport, all: bool) -> String {
    let mut shown: BTreeSet<usize> = BTreeSet::new();
    let kubeadm_rows = |names: &[(&'static str, String)], shown: &mut BTreeSet<usize>, ca: bool| {
        let mut rows = Vec::new();
        for (name, _) in names {
            for (i, e) in r.entries.iter().enumerate().filter(|(_, e)| e.kubeadm_name == Some(*name)) {
                shown.insert(i);
                let suffix = e.name.strip_prefix(&*e.path.to_string_lossy()).unwrap_or_default();
                let mut row = cells(e, &format!("{name}{suffix}"));
                if ca {
                    row.remove(3);
                }
                rows.push(row);
            }
        }
        rows
    };
    let certificates = kubeadm_rows(&check_expiration::certificates(), &mut shown, false);
    let authorities = kubeadm_rows(&check_expiration::authorities(), &mut shown, true);
    let mut out = String::new();
    if !certificates.is_empty() {
        out.push_str(&table(&CERTIFICATE_COLUMNS, &certificates));
    }
    if !authorities.is_empty() {
        out.push_str(if out.is_empty() { "" } else { "\n" });
        out.push_str(&table(&AUTHORITY_COLUMNS, &authorities));
    }

    // The rest: copies named once, a large cluster's node files folded per kind.
    let rest: Vec<&CheckEntry> = r
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| !shown.contains(i) && (all || e.copy_of.is_none()))
        .map(|(_, e)| e)
        .collect();
    let nodes: BTreeSet<&str> = r.entries.iter().filter_map(|e| node_of(e)).collect();
    let fold = !all && nodes.len() > FOLD_ABOVE_NODES;
    let mut rows = Vec::new();
    let mut folded: BTreeMap<(String, CheckStatus), Vec<&CheckEntry>> = BTreeMap::new();
    for e in rest {
        match node_of(e).filter(|_| fold) {
            Some(node) => folded.entry((kind_of(e, node), e.status)).or_default().push(e),
            None => rows.push(cells(e, &e.name)),
        }
    }
    for ((kind, _), group) in &folded {
        let soonest = group.iter().min_by_key(|e| e.expires).expect("a group has rows");
        let mut row = cells(soonest, &format!("{kind} × {}", group.len()));
        let authorities: BTreeSet<&str> = group.iter().map(|e| e.authority.as_deref().unwrap_or_default()).collect();
        if authorities.len() > 1 {
            row[3] = format!("{} CAs", authorities.len());
        }
        if group.iter().any(|e| e.externally_managed) {
            row[4] = "yes".into();
        }
        rows.push(row);
    }
    if !rows.is_empty() {
        out.push_str(if out.is_empty() { "" } else { "\n" });
        if !out.is_empty() {
            out.push_str("and what kubeadm does not list (kubelets, kube-proxy, node bundles), soonest first:\n");
        }
        out.push_str(&table(&CERTIFICATE_COLUMNS, &rows));
        if fold {
            let _ = writeln!(
                out,
                "({} nodes: each kind of a node's file in one row, with the soonest expiry; --all lists every one)",
                nodes.len()
            );
        }
    }
    if !all {
        out.push_str(&copies(r));
    }

    for e in r.entries.iter().filter(|e| e.problem.is_some() && e.status != CheckStatus::Missing) {
        let _ = writeln!(out, "{}: {}: {}", e.status.word(), e.name, e.problem.as_deref().unwrap_or_default());
    }
    out.push_str(&totals(r));
    out
}

/// A row: kubeadm's columns (its date format and residual time) and the status.
fn cells(e: &CheckEntry, name: &str) -> Vec<String> {
    let when = time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    if e.status == CheckStatus::Missing {
        return vec![
            format!("!MISSING! {name}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "missing".into(),
        ];
    }
    let expires = e.expires.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&when).ok());
    let status = match e.status {
        // How long ago, or how long until: what kubeadm's <invalid> does not say.
        CheckStatus::Expired | CheckStatus::NotYetValid => e.residual.clone().unwrap_or_else(|| e.status.word().into()),
        s => s.word().to_string(),
    };
    vec![
        name.to_string(),
        expires.unwrap_or_default(),
        e.residual_seconds.map(residual).unwrap_or_default(),
        authority(e),
        if e.externally_managed { "yes" } else { "no" }.to_string(),
        status,
    ]
}

/// The CA column: kubeadm's name for a CA at kubeadm's place in the tree (`ca`, `etcd-ca`),
/// else the CA's CN.
fn authority(e: &CheckEntry) -> String {
    let kubeadm = e.authority_file.as_deref().and_then(check_expiration::name_of);
    kubeadm.map(str::to_string).or_else(|| e.authority.clone()).unwrap_or_default()
}

/// The time left as kubeadm prints it (Kubernetes' `ShortHumanDuration`): `45s`, `12m`, `5h`,
/// `364d`, `9y`; `<invalid>` once more than a second past.
pub fn residual(seconds: i64) -> String {
    match seconds {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s if s < 86400 * 365 => format!("{}d", s / 86400),
        s => format!("{}y", s / 86400 / 365),
    }
}

/// The node whose bundle holds the row's file.
fn node_of(e: &CheckEntry) -> Option<&str> {
    let inside = e.path.strip_prefix(layout::NODES).ok()?;
    inside.components().next()?.as_os_str().to_str()
}

/// The row's name with its node's name as `<node>`: one kind of a node's file.
fn kind_of(e: &CheckEntry, node: &str) -> String {
    let prefix = format!("{}/{node}/", layout::NODES);
    match e.name.strip_prefix(&prefix) {
        Some(rest) => format!("{}/<node>/{rest}", layout::NODES),
        None => e.name.clone(),
    }
}

/// The byte-identical copies in node bundles, each file named once above: one line per set of
/// nodes holding the same copies.
fn copies(r: &CheckReport) -> String {
    let mut of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &r.entries {
        if let (Some(source), Some(node)) = (&e.copy_of, node_of(e)) {
            of.entry(source).or_default().insert(node);
        }
    }
    let mut by_nodes: BTreeMap<Vec<&str>, Vec<&str>> = BTreeMap::new();
    for (source, nodes) in of {
        by_nodes.entry(nodes.into_iter().collect()).or_default().push(source);
    }
    if by_nodes.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nnode bundles' copies, byte for byte the files above (--all lists them):\n");
    let mut by_nodes: Vec<(Vec<&str>, Vec<&str>)> = by_nodes.into_iter().collect();
    by_nodes.sort_by_key(|(nodes, _)| std::cmp::Reverse(nodes.len()));
    for (nodes, sources) in &by_nodes {
        let named: Vec<String> = nodes.iter().take(3).map(|n| format!("{}/{n}", layout::NODES)).collect();
        let more = match nodes.len().saturating_sub(named.len()) {
            0 => String::new(),
            n => format!(" and {n} more nodes"),
        };
        let files = if sources.len() == 1 { "file" } else { "files" };
        let _ = writeln!(out, "  {}{more}: {} {files}: {}", named.join(", "), sources.len(), sources.join(", "));
    }
    out
}

/// What is externally managed, and the counts.
fn totals(r: &CheckReport) -> String {
    let mut out = String::new();
    let mut counts = Vec::new();
    for s in CheckStatus::ALL {
        let n = r.count(s);
        if n > 0 || s == CheckStatus::Ok {
            counts.push(format!("{n} {}", s.word()));
        }
    }
    let when = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let at = r.at.to_offset(time::UtcOffset::UTC).format(&when).unwrap_or_default();
    let window = crate::model::spec::duration_text::format(r.warn_within);
    let external = r.entries.iter().filter(|e| e.is_ca && e.externally_managed && !e.path.starts_with("nodes")).count();
    if external > 0 {
        let _ = writeln!(
            out,
            "\n{external} CA(s) externally managed (certificate without its key: kubeadm's external-CA mode): their certificates are renewed outside the tree (kubepki csr, then kubepki import)"
        );
    }
    let _ = writeln!(
        out,
        "\n{}: {} entries at {at} (warning within {window}): {}",
        r.dir.display(),
        r.entries.len(),
        counts.join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_time_reads_as_kubeadm_prints_it() {
        let day = 86400;
        for (seconds, want) in [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (day - 1, "23h"),
            (day, "1d"),
            (364 * day + 3600, "364d"),
            (365 * day, "1y"),
            (3650 * day, "10y"),
            (3649 * day, "9y"),
        ] {
            assert_eq!(residual(seconds), want, "{seconds}");
        }
    }
}
