//! Presenting reports: aligned text tables for people, JSON (serde data) for programs.

use std::fmt::Write;

use serde::Serialize;

use crate::catalog::{Catalog, EntryKind, Issuer, Store};
use crate::certinfo::eku_name;
use crate::init::{Action, InitReport};
use crate::spec::{duration_text, ClusterSpec};
use crate::topology::Topology;

/// An aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The plan: what `init` would make, and who talks to whom.
#[derive(Serialize)]
pub struct Plan<'a> {
    /// The cluster.
    pub cluster: &'a ClusterSpec,
    /// Every entry.
    pub catalog: &'a Catalog,
    /// Every link.
    pub topology: &'a Topology,
}

impl Plan<'_> {
    /// The plan as text.
    pub fn text(&self) -> String {
        let s = self.cluster;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cluster {}  endpoint {}  CAs: {:?}  keys: {}  validity: CA {}, leaf {}",
            s.cluster_name,
            s.control_plane_endpoint.url(),
            s.ca_layout,
            s.key_algorithm,
            duration_text::format(s.validity.ca),
            duration_text::format(s.validity.leaf)
        );
        let cps = s.control_planes().count();
        let _ = writeln!(out, "nodes: {} ({} control plane, {} worker)\n", s.nodes.len(), cps, s.nodes.len() - cps);
        let mut rows = Vec::new();
        for e in &self.catalog.entries {
            let file = e.files().first().map(|(p, _)| p.display().to_string()).unwrap_or_default();
            match &e.kind {
                EntryKind::Cert(p) => rows.push(vec![
                    e.id.clone(),
                    match &p.store {
                        Store::Files { .. } => file,
                        Store::Kubeconfig { path, .. } => path.display().to_string(),
                    },
                    p.subject.cn.clone(),
                    p.subject.orgs.join(","),
                    match &p.issuer {
                        Issuer::SelfSigned => "self".into(),
                        Issuer::Ca(c) => c.clone(),
                    },
                    if p.is_ca {
                        "CA".into()
                    } else {
                        p.ext_key_usage.iter().map(|u| eku_name(*u)).collect::<Vec<_>>().join("+")
                    },
                    p.sans.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","),
                ]),
                EntryKind::KeyPair { .. } => rows.push(vec![
                    e.id.clone(),
                    file,
                    "-".into(),
                    String::new(),
                    "-".into(),
                    "key pair".into(),
                    String::new(),
                ]),
            }
        }
        out.push_str(&table(&["ENTRY", "FILE", "CN", "O", "ISSUER", "USAGE", "SANS"], &rows));
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .topology
            .links
            .iter()
            .map(|l| {
                vec![
                    l.kind.number().to_string(),
                    format!("{} -> {}", l.client, l.server),
                    l.client_cert.clone(),
                    l.server_cert.clone().unwrap_or_else(|| "(its own)".into()),
                    l.server_trusts.clone(),
                    l.client_trusts.clone().unwrap_or_else(|| "(its own)".into()),
                    l.dial.url().trim_start_matches("https://").to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["#", "LINK", "CLIENT PRESENTS", "SERVER PRESENTS", "SERVER TRUSTS", "CLIENT TRUSTS", "DIALS"],
            &rows,
        ));
        out
    }
}

/// The init report as text.
pub fn init_text(r: &InitReport) -> String {
    let count = |f: &dyn Fn(&Action) -> bool| r.entries.iter().filter(|o| f(&o.action)).count();
    let created = count(&|a| *a == Action::Created);
    let kept = count(&|a| *a == Action::Kept);
    let replaced = count(&|a| matches!(a, Action::Replaced { .. }));
    let mut out = String::new();
    for o in &r.entries {
        if let Action::Replaced { reason } = &o.action {
            let _ = writeln!(out, "replaced {}: {reason}", o.id);
        }
    }
    let _ = writeln!(
        out,
        "{}: {created} created, {kept} kept, {replaced} replaced; {} files copied into node bundles",
        r.dir.display(),
        r.bundle_files_written
    );
    if let Some(b) = &r.backup {
        let _ = writeln!(out, "previous files saved in {}", b.display());
    }
    out
}
