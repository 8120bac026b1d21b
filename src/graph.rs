//! The picture of who talks to whom: the components of a [`Topology`] grouped by role
//! (people and tools, each control plane, each worker, extensions), one arrow per link
//! from client to server, labelled with the credential the client presents and coloured by
//! the link's [`LinkStatus`].
//!
//! Three forms: a self-contained SVG laid out here (no external program, font, stylesheet or
//! script; see `graph/svg.rs`), and Graphviz DOT and Mermaid text for embedding elsewhere.
//! Every name is escaped for the form it goes into. All three draw the same model, so they fold
//! alike: beyond 8 workers the rest become one node, except those with a link
//! that is broken or has a warning, which stay drawn and named. Clients that dial a
//! control-plane endpoint that is not one apiserver's own address reach the apiservers through
//! one load-balancer node (client → endpoint → each apiserver), one arrow per client.

mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::audit::finding::Severity;
use crate::audit::verify::{Finding, LinkStatus, Report};
use crate::model::catalog::EntryId;
use crate::model::spec::Endpoint;
use crate::model::topology::{Component, ComponentKind, Link, LinkKind, Topology, TrustDomain};

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
    draw(&Model::build(topology, status, Some(MAX_WORKERS)), format)
}

/// The picture of `topology` as `verify` judged it: each arrow coloured by its link's status,
/// the findings behind every arrow that is not green in its tooltip and in a numbered list
/// beside the picture, and each component that holds a certificate at fault marked.
pub fn render_report(topology: &Topology, report: &Report, format: GraphFormat) -> String {
    let mut m = Model::build(topology, &report.statuses(), Some(MAX_WORKERS));
    m.annotate(topology, report);
    draw(&m, format)
}

fn draw(m: &Model, format: GraphFormat) -> String {
    match format {
        GraphFormat::Svg => svg::render(m),
        GraphFormat::Dot => dot(m),
        GraphFormat::Mermaid => mermaid(m),
    }
}

/// Findings named in one arrow's or component's tooltip; beyond that, a count.
const TOOLTIP_NOTES: usize = 3;

impl Model {
    /// verify's findings on the picture: behind each arrow that is not green, and on the
    /// components holding the certificates they are about.
    fn annotate(&mut self, t: &Topology, report: &Report) {
        let links: BTreeMap<&str, &Link> = t.links.iter().map(|l| (l.id.as_str(), l)).collect();
        let mut note_of: BTreeMap<usize, usize> = BTreeMap::new(); // finding → note
        let mut by_link: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, f) in report.findings.iter().enumerate() {
            if f.severity < Severity::Warning {
                continue;
            }
            for l in &f.links {
                by_link.entry(l.as_str()).or_default().push(i);
            }
            // The component that holds the certificate: the side of a link that presents it.
            let Some(entry) = f.entry.as_deref() else { continue };
            let status = if f.breaks { LinkStatus::Broken } else { LinkStatus::Warning };
            for l in f.links.iter().filter_map(|id| links.get(id.as_str())) {
                let holder = if l.client_cert == entry {
                    Some(&l.client)
                } else if l.server_cert.as_deref() == Some(entry) {
                    Some(&l.server)
                } else {
                    None
                };
                let Some(v) = holder.and_then(|c| self.index.get(c)).copied() else { continue };
                let n = *note_of.entry(i).or_insert_with(|| {
                    self.notes.push(note(f));
                    self.notes.len() - 1
                });
                let fault = self.vertices[v].fault.get_or_insert((status, Vec::new()));
                fault.0 = worst(fault.0, status);
                if !fault.1.contains(&n) {
                    fault.1.push(n);
                }
            }
        }
        for e in &mut self.edges {
            if e.status == LinkStatus::Ok {
                continue;
            }
            for l in &e.links {
                for &i in by_link.get(l.as_str()).into_iter().flatten() {
                    let n = *note_of.entry(i).or_insert_with(|| {
                        self.notes.push(note(&report.findings[i]));
                        self.notes.len() - 1
                    });
                    if !e.notes.contains(&n) {
                        e.notes.push(n);
                    }
                }
            }
        }
    }

    /// Notes as tooltip lines: `[n] text`, a few, then a count.
    fn note_lines(&self, notes: &[usize]) -> Vec<String> {
        let mut out: Vec<String> =
            notes.iter().take(TOOLTIP_NOTES).map(|&n| format!("[{}] {}", n + 1, self.notes[n])).collect();
        if notes.len() > TOOLTIP_NOTES {
            out.push(format!("and {} more findings", notes.len() - TOOLTIP_NOTES));
        }
        out
    }
}

/// A finding in one line: what, where, and the fix.
fn note(f: &Finding) -> String {
    format!("{} {}: {}; fix: {}", f.kind.name(), f.subject(), f.found, f.fix)
}

/// Workers drawn one by one; beyond that, the rest become one node.
const MAX_WORKERS: usize = 8;

/// Workers with a broken or warning link drawn besides those, at most (the rest stay folded,
/// counted in the folded node's name).
const MAX_TROUBLED: usize = 12;

/// Link ids named in a tooltip; beyond that, a count.
const TOOLTIP_LINKS: usize = 4;

/// What a box of the picture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// kubectl, etcdctl: no node.
    Tools,
    /// A control-plane node.
    ControlPlane,
    /// The control-plane endpoint, a load balancer in front of the apiservers.
    Endpoint,
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
            Role::Endpoint => "control-plane endpoint".into(),
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
    /// The worst finding on a certificate this component holds, and its notes.
    fault: Option<(LinkStatus, Vec<usize>)>,
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
    /// The findings behind it (indexes into [`Model::notes`]).
    notes: Vec<usize>,
}

/// Groups, vertices and edges: what every form draws.
#[derive(Clone, Debug)]
struct Model {
    groups: Vec<Group>,
    vertices: Vec<Vertex>,
    edges: Vec<Edge>,
    /// How many components and links the topology has (before folding).
    counts: (usize, usize),
    /// Component id → its vertex.
    index: BTreeMap<String, usize>,
    /// verify's findings behind the arrows that are not green, numbered from 1 in pictures.
    notes: Vec<String>,
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
        let node_of: BTreeMap<&str, &str> =
            t.components.iter().filter_map(|c| Some((c.id.as_str(), c.node.as_deref()?))).collect();
        // Workers on a link that is broken or has a warning: kept out of the fold.
        let mut troubled: Vec<&str> = Vec::new();
        for l in &t.links {
            if matches!(status.get(&l.id), Some(LinkStatus::Broken | LinkStatus::Warning)) {
                for c in [l.client.as_str(), l.server.as_str()] {
                    if let Some(n) = node_of.get(c).filter(|n| !cps.contains(n)) {
                        if !troubled.contains(n) {
                            troubled.push(n);
                        }
                    }
                }
            }
        }
        let shown: Vec<&str> = match max_workers {
            Some(max) if workers.len() > max => {
                let kept: Vec<&str> = troubled.iter().copied().take(MAX_TROUBLED).collect();
                let mut first = workers.iter().filter(|w| !kept.contains(w)).take(max - 1);
                let first: Vec<&str> = first.by_ref().copied().collect();
                workers.iter().copied().filter(|w| first.contains(w) || kept.contains(w)).collect()
            }
            _ => workers.clone(),
        };
        let endpoints = lb_endpoints(t);
        let mut groups = vec![Group { role: Role::Tools, node: String::new() }];
        groups.extend(cps.iter().map(|n| Group { role: Role::ControlPlane, node: n.to_string() }));
        if !endpoints.is_empty() {
            groups.push(Group { role: Role::Endpoint, node: String::new() });
        }
        groups.push(Group { role: Role::Extensions, node: String::new() });
        groups.extend(shown.iter().map(|n| Group { role: Role::Worker, node: n.to_string() }));
        let folded = workers.len() - shown.len();
        let folded_troubled = troubled.iter().filter(|n| !shown.contains(n)).count();
        if folded > 0 {
            groups.push(Group { role: Role::MoreWorkers, node: String::new() });
        }
        let group_of = |c: &Component| -> usize {
            let role = match (c.kind, c.node.as_deref()) {
                (ComponentKind::AggregatedApiServer | ComponentKind::MetricsServer, _) => Role::Extensions,
                (_, None) => Role::Tools,
                (_, Some(n)) if cps.contains(&n) => Role::ControlPlane,
                (_, Some(n)) if shown.contains(&n) => Role::Worker,
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
        let mut more = format!("+{folded} more worker{}", if folded == 1 { "" } else { "s" });
        if folded_troubled > 0 {
            more.push_str(&format!(" ({folded_troubled} not ok)"));
        }
        for c in &t.components {
            let group = group_of(c);
            if groups[group].role == Role::MoreWorkers {
                let v = match vertices.iter().position(|v| v.id == more) {
                    Some(v) => v,
                    None => {
                        vertices.push(Vertex { id: more.clone(), label: more.clone(), kind: None, group, fault: None });
                        vertices.len() - 1
                    }
                };
                index.insert(&c.id, v);
                continue;
            }
            index.insert(&c.id, vertices.len());
            vertices.push(Vertex {
                id: c.id.clone(),
                label: short_name(c.kind).into(),
                kind: Some(c.kind),
                group,
                fault: None,
            });
        }
        // One vertex per load-balanced endpoint, in the endpoint's group.
        let mut lb_vertex: Vec<(&Endpoint, usize)> = Vec::new();
        if let Some(group) = groups.iter().position(|g| g.role == Role::Endpoint) {
            for e in &endpoints {
                lb_vertex.push((e, vertices.len()));
                let hostport = e.url().trim_start_matches("https://").to_string();
                vertices.push(Vertex {
                    id: format!("endpoint {hostport}"),
                    label: hostport,
                    kind: None,
                    group,
                    fault: None,
                });
            }
        }
        let mut edges: Vec<Edge> = Vec::new();
        let mut add = |from: usize, to: usize, label: String, s: LinkStatus, domain: TrustDomain, id: &str| match edges
            .iter_mut()
            .find(|e| e.from == from && e.to == to && e.label == label)
        {
            Some(e) => {
                e.links.push(id.to_string());
                e.status = worst(e.status, s);
            }
            None => {
                edges.push(Edge { from, to, label, status: s, domain, links: vec![id.to_string()], notes: Vec::new() })
            }
        };
        for l in &t.links {
            let (Some(&from), Some(&to)) = (index.get(l.client.as_str()), index.get(l.server.as_str())) else {
                continue;
            };
            let client_node = node_of.get(l.client.as_str()).copied();
            let label = credential(&l.client_cert, client_node);
            let s = status.get(&l.id).copied().unwrap_or(LinkStatus::Unknown);
            match lb_vertex.iter().find(|(e, _)| **e == l.dial) {
                Some(&(_, lb)) if via_endpoint(t, l) => {
                    add(from, lb, label, s, l.domain, &l.id);
                    add(lb, to, format!("TLS pass-through :{}", l.dial.port), s, l.domain, &l.id);
                }
                _ => add(from, to, label, s, l.domain, &l.id),
            }
        }
        let lbs: Vec<usize> = lb_vertex.iter().map(|(_, v)| *v).collect();
        for e in &mut edges {
            // Through a load balancer, one client's links to every apiserver are one connection:
            // count the clients.
            let n = if lbs.contains(&e.from) || lbs.contains(&e.to) {
                let mut clients: Vec<&str> = e.links.iter().filter_map(|l| l.split(" -> ").next()).collect();
                clients.sort_unstable();
                clients.dedup();
                clients.len()
            } else {
                e.links.len()
            };
            if n > 1 {
                e.label = format!("{} ×{n}", e.label);
            }
        }
        let index = index.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Model { groups, vertices, edges, counts: (t.components.len(), t.links.len()), index, notes: Vec::new() }
    }
}

/// Links to an apiserver that dial the control-plane endpoint rather than its own address.
fn via_endpoint(t: &Topology, l: &Link) -> bool {
    matches!(
        l.kind,
        LinkKind::AdminToApiServer
            | LinkKind::SuperAdminToApiServer
            | LinkKind::KubeProxyToApiServer
            | LinkKind::KubeletToApiServer
    ) && t.components.iter().any(|c| c.id == l.server && c.kind == ComponentKind::ApiServer)
}

/// The endpoints clients dial that are no apiserver's own address (the scheduler and
/// controller-manager dial their apiserver's own): each is a load balancer.
fn lb_endpoints(t: &Topology) -> Vec<&Endpoint> {
    let own: Vec<&Endpoint> = t
        .links
        .iter()
        .filter(|l| matches!(l.kind, LinkKind::SchedulerToApiServer | LinkKind::ControllerManagerToApiServer))
        .map(|l| &l.dial)
        .collect();
    let mut out: Vec<&Endpoint> = Vec::new();
    for l in t.links.iter().filter(|l| via_endpoint(t, l)) {
        if !own.contains(&&l.dial) && !out.contains(&&l.dial) {
            out.push(&l.dial);
        }
    }
    out
}

impl Edge {
    /// The links an arrow stands for, for a tooltip: a few named, the rest counted.
    fn links_text(&self) -> String {
        let mut names: Vec<&str> = self.links.iter().take(TOOLTIP_LINKS).map(String::as_str).collect();
        let more = self.links.len().saturating_sub(TOOLTIP_LINKS);
        let tail = format!("and {more} more links");
        if more > 0 {
            names.push(&tail);
        }
        names.join("\n")
    }
}

/// The name written in a component's box (its node is the box around it): its name, but for
/// the tools, named by what they run as whom.
fn short_name(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Admin => "kubectl (admin)",
        ComponentKind::SuperAdmin => "kubectl (super-admin)",
        ComponentKind::EtcdHealthcheck => "etcdctl (healthcheck)",
        ComponentKind::AggregatedApiServer => "aggregated API server",
        other => other.name(),
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

/// The worse of two statuses: broken, then unverified, then warning, then unknown, then ok.
fn worst(a: LinkStatus, b: LinkStatus) -> LinkStatus {
    let rank = |s| match s {
        LinkStatus::Ok => 0,
        LinkStatus::Unknown => 1,
        LinkStatus::Warning => 2,
        LinkStatus::Unverified => 3,
        LinkStatus::Broken => 4,
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
        LinkStatus::Unverified => "#8e24aa",
        LinkStatus::Unknown => "#8a9099",
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
            match &v.fault {
                Some((status, notes)) => {
                    let _ = writeln!(
                        out,
                        "    {} [label={}, color={}, penwidth=3, tooltip={}];",
                        dot_quote(&v.id),
                        dot_quote(&v.label),
                        dot_quote(color(*status)),
                        dot_quote(&m.note_lines(notes).join("; "))
                    );
                }
                None => {
                    let _ = writeln!(out, "    {} [label={}];", dot_quote(&v.id), dot_quote(&v.label));
                }
            }
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
            dot_quote(&format!("{} ({}){}", e.links_text().replace('\n', ", "), e.status.word(), {
                let notes = m.note_lines(&e.notes);
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("; {}", notes.join("; "))
                }
            })),
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
    for (v, x) in m.vertices.iter().enumerate() {
        if let Some((status, _)) = &x.fault {
            let _ = writeln!(out, "  style n{v} stroke:{},stroke-width:3px", color(*status));
        }
    }
    for (i, n) in m.notes.iter().enumerate() {
        let _ = writeln!(out, "  %% [{}] {}", i + 1, n.replace('\n', " "));
    }
    out
}

#[cfg(test)]
mod tests;
