//! The picture of who talks to whom: the components of a [`Topology`] grouped by role
//! (people and tools, each control plane, each worker, extensions), one arrow per link
//! from client to server, labelled with the credential the client presents and coloured by
//! the link's [`LinkStatus`].
//!
//! Three forms: a self-contained SVG laid out here (no external program, font, stylesheet or
//! script; see `graph/svg.rs`), and Graphviz DOT and Mermaid text for embedding elsewhere.
//! Every name is escaped for the form it goes into.

mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::audit::verify::LinkStatus;
use crate::model::catalog::EntryId;
use crate::model::topology::{Component, ComponentKind, Topology, TrustDomain};

/// The form of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    /// A self-contained SVG image.
    Svg,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// The picture of `topology`; `status` is keyed by [`crate::model::topology::Link::id`] (a link missing
/// from it is [`LinkStatus::Unknown`]).
pub fn render(topology: &Topology, status: &BTreeMap<String, LinkStatus>, format: GraphFormat) -> String {
    match format {
        GraphFormat::Svg => svg::render(&Model::build(topology, status, Some(MAX_WORKERS))),
        GraphFormat::Dot => dot(&Model::build(topology, status, None)),
        GraphFormat::Mermaid => mermaid(&Model::build(topology, status, None)),
    }
}

/// Workers drawn one by one in the SVG; beyond that, the rest become one node.
const MAX_WORKERS: usize = 8;

/// What a box of the picture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// kubectl, etcdctl: no node.
    Tools,
    /// A control-plane node.
    ControlPlane,
    /// The aggregated API server.
    Extensions,
    /// A worker node.
    Worker,
    /// Workers folded into one node.
    MoreWorkers,
}

/// A box around components.
#[derive(Clone, Debug)]
struct Group {
    role: Role,
    /// The node's name (empty for tools and extensions).
    node: String,
}

impl Group {
    fn title(&self) -> String {
        match self.role {
            Role::Tools => "people / tools".into(),
            Role::ControlPlane => format!("control plane · {}", self.node),
            Role::Extensions => "extensions".into(),
            Role::Worker => format!("worker · {}", self.node),
            Role::MoreWorkers => "more workers".into(),
        }
    }
}

/// A component (or a node standing for folded ones).
#[derive(Clone, Debug)]
struct Vertex {
    /// The component id (or `+N more workers`).
    id: String,
    /// What to write in it.
    label: String,
    kind: Option<ComponentKind>,
    group: usize,
}

/// A link (or several folded into one arrow).
#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    /// The credential the client presents (`kubelet.conf`, `apiserver-etcd-client`), `×N` when folded.
    label: String,
    status: LinkStatus,
    domain: TrustDomain,
    /// The ids of the links it stands for.
    links: Vec<String>,
}

/// Groups, vertices and edges: what every form draws.
#[derive(Clone, Debug)]
struct Model {
    groups: Vec<Group>,
    vertices: Vec<Vertex>,
    edges: Vec<Edge>,
    /// How many components and links the topology has (before folding).
    counts: (usize, usize),
}

impl Model {
    /// The model; with `max_workers`, workers beyond `max_workers - 1` fold into one vertex
    /// once there are more than `max_workers` of them.
    fn build(t: &Topology, status: &BTreeMap<String, LinkStatus>, max_workers: Option<usize>) -> Model {
        let cps: Vec<&str> = t
            .components
            .iter()
            .filter(|c| c.kind == ComponentKind::ApiServer)
            .filter_map(|c| c.node.as_deref())
            .collect();
        let mut workers: Vec<&str> = Vec::new();
        for c in &t.components {
            if let Some(n) = c.node.as_deref() {
                if !cps.contains(&n) && !workers.contains(&n) {
                    workers.push(n);
                }
            }
        }
        let shown = match max_workers {
            Some(max) if workers.len() > max => max - 1,
            _ => workers.len(),
        };
        let mut groups = vec![Group { role: Role::Tools, node: String::new() }];
        groups.extend(cps.iter().map(|n| Group { role: Role::ControlPlane, node: n.to_string() }));
        groups.push(Group { role: Role::Extensions, node: String::new() });
        groups.extend(workers[..shown].iter().map(|n| Group { role: Role::Worker, node: n.to_string() }));
        let folded = workers.len() - shown;
        if folded > 0 {
            groups.push(Group { role: Role::MoreWorkers, node: String::new() });
        }
        let group_of = |c: &Component| -> usize {
            let role = match (c.kind, c.node.as_deref()) {
                (ComponentKind::AggregatedApiServer, _) => Role::Extensions,
                (_, None) => Role::Tools,
                (_, Some(n)) if cps.contains(&n) => Role::ControlPlane,
                (_, Some(n)) if workers[..shown].contains(&n) => Role::Worker,
                _ => Role::MoreWorkers,
            };
            let node = c.node.as_deref().unwrap_or_default();
            groups
                .iter()
                .position(|g| {
                    g.role == role
                        && (g.node == node || matches!(role, Role::Tools | Role::Extensions | Role::MoreWorkers))
                })
                .expect("every role has its group")
        };
        let mut vertices: Vec<Vertex> = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        let more = format!("+{folded} more worker{}", if folded == 1 { "" } else { "s" });
        for c in &t.components {
            let group = group_of(c);
            if groups[group].role == Role::MoreWorkers {
                let v = match vertices.iter().position(|v| v.id == more) {
                    Some(v) => v,
                    None => {
                        vertices.push(Vertex { id: more.clone(), label: more.clone(), kind: None, group });
                        vertices.len() - 1
                    }
                };
                index.insert(&c.id, v);
                continue;
            }
            index.insert(&c.id, vertices.len());
            vertices.push(Vertex { id: c.id.clone(), label: short_name(c.kind).into(), kind: Some(c.kind), group });
        }
        let mut edges: Vec<Edge> = Vec::new();
        for l in &t.links {
            let (Some(&from), Some(&to)) = (index.get(l.client.as_str()), index.get(l.server.as_str())) else {
                continue;
            };
            let client_node = t.components.iter().find(|c| c.id == l.client).and_then(|c| c.node.as_deref());
            let label = credential(&l.client_cert, client_node);
            let s = status.get(&l.id).copied().unwrap_or(LinkStatus::Unknown);
            match edges.iter_mut().find(|e| e.from == from && e.to == to && e.label == label) {
                Some(e) => {
                    e.links.push(l.id.clone());
                    e.status = worst(e.status, s);
                }
                None => edges.push(Edge { from, to, label, status: s, domain: l.domain, links: vec![l.id.clone()] }),
            }
        }
        for e in &mut edges {
            if e.links.len() > 1 {
                e.label = format!("{} ×{}", e.label, e.links.len());
            }
        }
        Model { groups, vertices, edges, counts: (t.components.len(), t.links.len()) }
    }
}

/// The name written in a component's box (its node is the box around it).
fn short_name(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::ApiServer => "kube-apiserver",
        ComponentKind::Etcd => "etcd",
        ComponentKind::Kubelet => "kubelet",
        ComponentKind::Scheduler => "kube-scheduler",
        ComponentKind::ControllerManager => "kube-controller-manager",
        ComponentKind::KubeProxy => "kube-proxy",
        ComponentKind::Admin => "kubectl (admin)",
        ComponentKind::SuperAdmin => "kubectl (super-admin)",
        ComponentKind::EtcdHealthcheck => "etcdctl (healthcheck)",
        ComponentKind::AggregatedApiServer => "aggregated API server",
    }
}

/// A catalog entry id as a label: `kubelet.conf@node01` presented by node01's kubelet is
/// just `kubelet.conf` (the arrow starts in node01's box).
fn credential(entry: &EntryId, client_node: Option<&str>) -> String {
    match (entry.node(), client_node) {
        (Some(node), Some(n)) if node == n => entry.name().to_string(),
        _ => entry.to_string(),
    }
}

/// The worse of two statuses: broken, then warning, then unknown, then ok.
fn worst(a: LinkStatus, b: LinkStatus) -> LinkStatus {
    let rank = |s| match s {
        LinkStatus::Ok => 0,
        LinkStatus::Unknown => 1,
        LinkStatus::Warning => 2,
        LinkStatus::Broken => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The colour of a status.
fn color(s: LinkStatus) -> &'static str {
    match s {
        LinkStatus::Ok => "#2e7d32",
        LinkStatus::Warning => "#e67700",
        LinkStatus::Broken => "#c62828",
        LinkStatus::Unknown => "#8a9099",
    }
}

fn status_word(s: LinkStatus) -> &'static str {
    match s {
        LinkStatus::Ok => "ok",
        LinkStatus::Warning => "warning",
        LinkStatus::Broken => "broken",
        LinkStatus::Unknown => "unknown",
    }
}

/// What a trust domain is called in legends.
fn domain_word(d: TrustDomain) -> &'static str {
    match d {
        TrustDomain::Cluster => "cluster CA",
        TrustDomain::Etcd => "etcd CA",
        TrustDomain::FrontProxy => "front-proxy CA",
    }
}

/// A DOT double-quoted string.
fn dot_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "// kubepki: who talks to whom. Arrows go from client to server, labelled with the");
    let _ = writeln!(out, "// credential the client presents; colour = link status (green ok, orange warning,");
    let _ = writeln!(out, "// red broken, grey unknown); line = trust domain (solid cluster CA, dashed etcd CA,");
    let _ = writeln!(out, "// dotted front-proxy CA).");
    let _ = writeln!(out, "digraph kubepki {{");
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];");
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];");
    for (gi, g) in m.groups.iter().enumerate() {
        let members: Vec<&Vertex> = m.vertices.iter().filter(|v| v.group == gi).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  subgraph cluster_{gi} {{");
        let _ = writeln!(out, "    label={};", dot_quote(&g.title()));
        for v in members {
            let _ = writeln!(out, "    {} [label={}];", dot_quote(&v.id), dot_quote(&v.label));
        }
        let _ = writeln!(out, "  }}");
    }
    for e in &m.edges {
        let style = match e.domain {
            TrustDomain::Cluster => "solid",
            TrustDomain::Etcd => "dashed",
            TrustDomain::FrontProxy => "dotted",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, color={}, fontcolor={}, style={style}, tooltip={}];",
            dot_quote(&m.vertices[e.from].id),
            dot_quote(&m.vertices[e.to].id),
            dot_quote(&e.label),
            dot_quote(color(e.status)),
            dot_quote(color(e.status)),
            dot_quote(&format!("{} ({})", e.links.join(", "), status_word(e.status))),
        );
    }
    let _ = writeln!(out, "}}");
    out
}

/// Text inside a Mermaid `"..."` label: entity codes for what Mermaid would read as syntax.
fn mermaid_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn mermaid(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "flowchart LR");
    let _ =
        writeln!(out, "  %% kubepki: who talks to whom. Arrows go from client to server, labelled with the credential");
    let _ = writeln!(
        out,
        "  %% the client presents; colour = link status (green ok, orange warning, red broken, grey unknown);"
    );
    let _ = writeln!(out, "  %% dashed = etcd CA, dotted = front-proxy CA.");
    for (gi, g) in m.groups.iter().enumerate() {
        let members: Vec<usize> = (0..m.vertices.len()).filter(|&v| m.vertices[v].group == gi).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  subgraph g{gi}[\"{}\"]", mermaid_text(&g.title()));
        for v in members {
            let _ = writeln!(out, "    n{v}[\"{}\"]", mermaid_text(&m.vertices[v].label));
        }
        let _ = writeln!(out, "  end");
    }
    for e in &m.edges {
        let arrow = match e.domain {
            TrustDomain::Cluster => "-->",
            TrustDomain::Etcd | TrustDomain::FrontProxy => "-.->",
        };
        let _ = writeln!(out, "  n{} {arrow}|\"{}\"| n{}", e.from, mermaid_text(&e.label), e.to);
    }
    for (i, e) in m.edges.iter().enumerate() {
        let _ = writeln!(out, "  linkStyle {i} stroke:{},stroke-width:2px,color:{}", color(e.status), color(e.status));
    }
    out
}

#[cfg(test)]
mod tests;
