//! Presenting reports: aligned text tables for people, JSON (serde data) for programs.

pub mod backup;
pub mod check;
pub mod explain;
pub mod external;
pub mod html;
pub mod inspect;
pub mod json;
pub mod lifecycle;
pub mod verify;

use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::catalog::{Catalog, Entry, EntryKind, Leaf, Store};
use crate::model::spec::{duration_text, ClusterSpec, Node, Role};
use crate::model::topology::{Link, Topology};
use crate::operations::init::{Action, InitReport};

/// Text for a terminal: every control character but a line feed escaped (`\u{1b}`), so that
/// what a file says (a certificate's CN holding terminal escapes) is shown, never obeyed. The
/// CLI passes every table, and approve's lines on stderr, through it.
pub fn escape_controls(text: &str) -> String {
    crate::error::escape_controls(text)
}

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

/// The plan: what `init` would make, who talks to whom, and which setting of which
/// component names which file.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan<'a> {
    /// The cluster.
    pub cluster: &'a ClusterSpec,
    /// Every entry.
    pub catalog: &'a Catalog,
    /// Every link.
    pub topology: &'a Topology,
    /// Every setting of every component on a node (see [`Plan::new`]).
    pub settings: Vec<crate::model::topology::wiring::Planned>,
}

/// Above this many nodes, the plan's text folds the rows of the workers' own entries and
/// links into one row per kind (JSON always has every one).
pub const SUMMARY_ABOVE: usize = 50;

/// What stands for a worker's name and addresses in a folded row.
const NODE: &str = "<node>";

impl<'a> Plan<'a> {
    /// The plan of a cluster: its catalog, its topology and its components' settings.
    pub fn new(cluster: &'a ClusterSpec, catalog: &'a Catalog, topology: &'a Topology) -> Plan<'a> {
        let settings = crate::model::topology::wiring::planned(&cluster.nodes, topology, catalog);
        Plan { cluster, catalog, topology, settings }
    }

    /// The plan as text: every entry and link, the workers' rows folded for a cluster of more
    /// than 50 nodes.
    pub fn text(&self) -> String {
        self.text_with(false)
    }

    /// The plan as text; `all`: every row even for a large cluster.
    pub fn text_with(&self, all: bool) -> String {
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
        let workers = s.nodes.len() - cps;
        let _ = writeln!(out, "nodes: {} ({} control plane, {} worker)", s.nodes.len(), cps, workers);
        let fold = (!all && s.nodes.len() > SUMMARY_ABOVE).then(|| Fold::new(s));
        if fold.is_some() {
            let _ = writeln!(
                out,
                "{workers} workers folded: in a row marked × N, {NODE} stands for each worker's name and <node ip> for its address (--all lists every row; -o json always does)"
            );
        }
        out.push('\n');
        let rows: Vec<(Option<&Node>, Vec<String>)> = self
            .catalog
            .entries
            .iter()
            .map(|e| (fold.as_ref().and_then(|f| f.worker(e.node())), entry_row(e)))
            .collect();
        let rows = match &fold {
            Some(_) => folded(rows, 0, template_entry),
            None => rows.into_iter().map(|(_, r)| r).collect(),
        };
        out.push_str(&table(&["ENTRY", "FILE", "CN", "O", "ISSUER", "USAGE", "SANS"], &rows));
        out.push('\n');
        let node_of: HashMap<&str, Option<&str>> =
            self.topology.components.iter().map(|c| (c.id.as_str(), c.node.as_deref())).collect();
        let rows: Vec<(Option<&Node>, Vec<String>)> = self
            .topology
            .links
            .iter()
            .map(|l| {
                let worker = fold.as_ref().and_then(|f| {
                    let of = |c: &str| node_of.get(c).copied().flatten();
                    f.worker(of(&l.client)).or_else(|| f.worker(of(&l.server)))
                });
                (worker, link_row(l))
            })
            .collect();
        let rows = match &fold {
            Some(_) => folded(rows, 1, template_link),
            None => rows.into_iter().map(|(_, r)| r).collect(),
        };
        out.push_str(&table(
            &["#", "LINK", "CLIENT PRESENTS", "SERVER PRESENTS", "SERVER TRUSTS", "CLIENT TRUSTS", "DIALS"],
            &rows,
        ));
        out.push('\n');
        let node_of_setting = |p: &crate::model::topology::wiring::Planned| {
            fold.as_ref().and_then(|f| f.worker(node_of.get(p.component.as_str()).copied().flatten()))
        };
        let rows: Vec<(Option<&Node>, Vec<String>)> =
            self.settings.iter().map(|p| (node_of_setting(p), setting_row(p))).collect();
        let rows = match &fold {
            Some(_) => folded(rows, 0, template_setting),
            None => rows.into_iter().map(|(_, r)| r).collect(),
        };
        out.push_str(&table(&["COMPONENT", "SETTING", "VALUE", "ENTRY", "IN", "CIS"], &rows));
        out
    }
}

fn setting_row(p: &crate::model::topology::wiring::Planned) -> Vec<String> {
    vec![
        p.component.clone(),
        p.setting.to_string(),
        p.value.clone(),
        p.entry.as_ref().map(|e| e.to_string()).unwrap_or_default(),
        p.config.clone(),
        p.cis.unwrap_or_default().to_string(),
    ]
}

/// A setting row with the worker's name replaced.
fn template_setting(node: &Node, row: &[String]) -> Vec<String> {
    let name = node.name.as_str();
    let mut out = row.to_vec();
    out[0] = at_node(&row[0], name);
    out[3] = at_node(&row[3], name);
    out
}

fn entry_row(e: &Entry) -> Vec<String> {
    let file = e.files().first().map(|(p, _)| p.display().to_string()).unwrap_or_default();
    match &e.kind {
        EntryKind::Ca { profile: p, .. } | EntryKind::Leaf(Leaf { profile: p, .. }) => vec![
            e.id.to_string(),
            match e.leaf().map(|l| &l.store) {
                Some(Store::Kubeconfig { path, .. }) => path.display().to_string(),
                _ => file,
            },
            p.subject.cn.clone(),
            p.subject.orgs.join(","),
            e.issuer().map_or_else(|| "self".into(), |c| c.to_string()),
            if p.is_ca { "CA".into() } else { p.ext_key_usage.iter().map(|u| u.name()).collect::<Vec<_>>().join("+") },
            p.sans.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","),
        ],
        EntryKind::KeyPair { .. } => {
            vec![e.id.to_string(), file, "-".into(), String::new(), "-".into(), "key pair".into(), String::new()]
        }
    }
}

fn link_row(l: &Link) -> Vec<String> {
    vec![
        l.kind.number().to_string(),
        format!("{} -> {}", l.client, l.server),
        l.client_cert.to_string(),
        l.server_cert.as_ref().map_or_else(|| "(its own)".into(), |e| e.to_string()),
        l.server_trusts.to_string(),
        l.client_trusts.as_ref().map_or_else(|| "(its own)".into(), |e| e.to_string()),
        l.dial.url().trim_start_matches("https://").to_string(),
    ]
}

/// The workers whose rows are folded.
struct Fold<'a> {
    workers: HashMap<&'a str, &'a Node>,
}

impl<'a> Fold<'a> {
    fn new(spec: &'a ClusterSpec) -> Fold<'a> {
        Fold { workers: spec.nodes.iter().filter(|n| n.role == Role::Worker).map(|n| (n.name.as_str(), n)).collect() }
    }

    fn worker(&self, node: Option<&str>) -> Option<&'a Node> {
        node.and_then(|n| self.workers.get(n).copied())
    }
}

/// Rows about a worker folded into one row per shape (the row with the worker's name and
/// addresses replaced by placeholders), in order of first appearance; `count_column` gets
/// `× N`. A shape only one worker has keeps that worker's own row.
fn folded(
    rows: Vec<(Option<&Node>, Vec<String>)>,
    count_column: usize,
    template: fn(&Node, &[String]) -> Vec<String>,
) -> Vec<Vec<String>> {
    let mut order: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new();
    let mut shapes: HashMap<Vec<String>, usize> = HashMap::new();
    let mut out: Vec<Option<usize>> = Vec::new(); // per output row: the group it shows, or none
    let mut plain: Vec<Vec<String>> = Vec::new();
    for (worker, row) in rows {
        match worker {
            None => {
                out.push(None);
                plain.push(row);
            }
            Some(node) => {
                let shape = template(node, &row);
                match shapes.get(&shape) {
                    Some(&g) => order[g].2 += 1,
                    None => {
                        shapes.insert(shape.clone(), order.len());
                        out.push(Some(order.len()));
                        order.push((shape, row, 1));
                    }
                }
            }
        }
    }
    let mut plain = plain.into_iter();
    out.into_iter()
        .map(|slot| match slot {
            None => plain.next().expect("one plain row per slot"),
            Some(g) => {
                let (shape, first, count) = &order[g];
                if *count == 1 {
                    first.clone()
                } else {
                    let mut row = shape.clone();
                    row[count_column] = format!("{} × {count}", row[count_column]);
                    row
                }
            }
        })
        .collect()
}

/// An entry row with the worker's name and addresses replaced.
fn template_entry(node: &Node, row: &[String]) -> Vec<String> {
    let name = node.name.as_str();
    vec![
        at_node(&row[0], name),
        in_bundle(&row[1], name),
        match row[2].strip_prefix("system:node:") {
            Some(n) if n == name => format!("system:node:{NODE}"),
            _ if row[2] == name => NODE.into(),
            _ => row[2].clone(),
        },
        row[3].clone(),
        row[4].clone(),
        row[5].clone(),
        row[6].split(',').filter(|s| !s.is_empty()).map(|s| san(node, s)).collect::<Vec<_>>().join(","),
    ]
}

/// A link row with the worker's name and address replaced.
fn template_link(node: &Node, row: &[String]) -> Vec<String> {
    let name = node.name.as_str();
    let link = row[1].split(" -> ").map(|c| at_node(c, name)).collect::<Vec<_>>().join(" -> ");
    let dial = match row[6].rsplit_once(':') {
        Some((host, port)) => match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) if node.addresses.contains(&ip) => format!("{}:{port}", address_placeholder(node, ip)),
            _ => row[6].clone(),
        },
        None => row[6].clone(),
    };
    vec![row[0].clone(), link, at_node(&row[2], name), at_node(&row[3], name), row[4].clone(), row[5].clone(), dial]
}

/// `kubelet.conf@w1` → `kubelet.conf@<node>`.
fn at_node(text: &str, name: &str) -> String {
    match text.strip_suffix(name).and_then(|t| t.strip_suffix('@')) {
        Some(head) => format!("{head}@{NODE}"),
        None => text.to_string(),
    }
}

/// `nodes/w1/...` → `nodes/<node>/...`.
fn in_bundle(path: &str, name: &str) -> String {
    match path.strip_prefix("nodes/").and_then(|p| p.strip_prefix(name)).and_then(|p| p.strip_prefix('/')) {
        Some(rest) => format!("nodes/{NODE}/{rest}"),
        None => path.to_string(),
    }
}

/// `DNS:w1` → `DNS:<node>`, `DNS:w1.example.com` → `DNS:<node>.example.com`, the node's
/// addresses → `IP:<node ip>`.
fn san(node: &Node, text: &str) -> String {
    if let Some(dns) = text.strip_prefix("DNS:") {
        if dns == node.name {
            return format!("DNS:{NODE}");
        }
        if let Some(rest) = dns.strip_prefix(node.name.as_str()).and_then(|r| r.strip_prefix('.')) {
            return format!("DNS:{NODE}.{rest}");
        }
    }
    match text.strip_prefix("IP:").and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(ip) if node.addresses.contains(&ip) => format!("IP:{}", address_placeholder(node, ip)),
        _ => text.to_string(),
    }
}

/// `<node ip>` for a node's first address, `<node ip 2>` for its second, ...
fn address_placeholder(node: &Node, ip: IpAddr) -> String {
    match node.addresses.iter().position(|a| *a == ip) {
        Some(0) | None => "<node ip>".into(),
        Some(k) => format!("<node ip {}>", k + 1),
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
    out.push_str(&crate::operations::rollout::text(&r.rollout));
    for ca in &r.replaced_cas {
        if ca == crate::model::vocabulary::entry::SA {
            let _ = writeln!(
                out,
                "the service-account key {ca} was made anew: every ServiceAccount token signed by the old key is no \
                 longer accepted once kube-apiserver runs with the new sa.pub (pods get new projected tokens; \
                 legacy token Secrets must be recreated)"
            );
            continue;
        }
        let _ = writeln!(
            out,
            "CA {ca} was made anew, with everything it signs: every node must now receive the new trust \
             (its CA file and every kubeconfig's CA data, from nodes/<node>/); until then they do not trust \
             what it signed"
        );
    }
    out
}

/// Text for HTML and SVG (XML) alike, element content and quoted attribute values: `& < > " '`
/// as references, and control characters but tab and line feed as visible escapes (which XML
/// could not carry as they are). The one escaper of markup: the report page and the graph.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}
