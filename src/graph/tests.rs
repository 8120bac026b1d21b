use std::path::Path;

use super::svg::{layout, Rect};
use super::*;
use crate::model::catalog::Catalog;
use crate::model::spec::{ClusterSpec, Endpoint, San};
use crate::model::topology::{Link, LinkKind};

fn topology_of(yaml: Option<&str>) -> Topology {
    let spec = match yaml {
        Some(text) => ClusterSpec::from_yaml(text, Path::new("test.yaml")).unwrap(),
        None => ClusterSpec::builtin_default(),
    };
    Topology::build(&spec, &Catalog::build(&spec))
}

const HA: &str = "controlPlaneEndpoint: lb.example:6443\nnodes:\n\
  - {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n\
  - {name: cp2, role: control-plane, addresses: [10.0.0.2]}\n\
  - {name: cp3, role: control-plane, addresses: [10.0.0.3]}\n\
  - {name: w1, role: worker, addresses: [10.0.1.1]}\n";

fn many_workers(n: usize) -> String {
    let mut s = "nodes:\n  - {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n".to_string();
    for i in 1..=n {
        s.push_str(&format!("  - {{name: w{i}, role: worker, addresses: [10.0.1.{i}]}}\n"));
    }
    s
}

/// Check that every tag is closed in order; returns the element names in document order.
fn well_formed(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed <") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
            names.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        // Text between tags must not hold a raw '&' that is not an entity.
        let text = &rest[end + 1..];
        let text = &text[..text.find('<').unwrap_or(text.len())];
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |j| i + j + 1)];
            let numeric = entity
                .strip_prefix("&#")
                .and_then(|n| n.strip_suffix(';'))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            let named = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity);
            assert!(named || numeric, "raw & in text: {text}");
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    names
}

#[test]
fn svg_of_the_default_cluster_is_well_formed_and_shows_every_component_and_link() {
    let t = topology_of(None);
    let svg = render(&t, &BTreeMap::new(), GraphFormat::Svg);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let names = well_formed(&svg);
    assert_eq!(names[0], "svg");
    for forbidden in ["<image", "<script", "<style", "@import", "href=\"http", "<foreignObject"] {
        assert!(!svg.contains(forbidden), "not self-contained: {forbidden}");
    }
    assert_eq!(svg.matches("class=\"component\"").count(), t.components.len());
    for c in &t.components {
        assert!(svg.contains(&format!("data-id=\"{}\"", crate::report::esc(&c.id))), "{}", c.id);
    }
    assert_eq!(t.links.len(), 20);
    assert_eq!(svg.matches("class=\"link\"").count(), 20, "one arrow per link");
    for l in &t.links {
        assert!(svg.contains(&format!("<title>{} (", crate::report::esc(&l.id))), "{}", l.id);
    }
    assert!(svg.contains(">kubelet.conf<") && svg.contains(">apiserver-etcd-client<"), "labelled by credential");
    assert_eq!(svg.matches("data-status=\"unknown\"").count(), 20, "no status: unknown");
    assert_eq!(svg, render(&t, &BTreeMap::new(), GraphFormat::Svg), "deterministic");
}

#[test]
fn arrows_are_coloured_by_status_and_the_legend_names_every_colour() {
    let t = topology_of(None);
    let mut status = BTreeMap::new();
    status.insert(t.links[0].id.clone(), LinkStatus::Ok);
    status.insert(t.links[1].id.clone(), LinkStatus::Warning);
    status.insert(t.links[2].id.clone(), LinkStatus::Broken);
    let svg = render(&t, &status, GraphFormat::Svg);
    for (s, n) in [(LinkStatus::Ok, 1), (LinkStatus::Warning, 1), (LinkStatus::Broken, 1), (LinkStatus::Unknown, 17)] {
        assert_eq!(svg.matches(&format!("data-status=\"{}\"", s.word())).count(), n, "{s:?}");
        assert!(svg.contains(&format!("marker-end=\"url(#arrow-{})\"", s.word())));
        assert!(svg.contains(&format!(">{}</text>", s.word())), "legend lacks {s:?}");
    }
    let broken = svg.lines().find(|l| l.contains("data-status=\"broken\"")).unwrap();
    assert!(
        broken.contains(color(LinkStatus::Broken)) && broken.contains(&crate::report::esc(&t.links[2].id)),
        "{broken}"
    );
}

fn assert_apart(what: &str, rects: &[Rect]) {
    for (i, a) in rects.iter().enumerate() {
        for (j, b) in rects.iter().enumerate().skip(i + 1) {
            assert_eq!(a.overlap(b), 0.0, "{what} {i} and {j} overlap: {a:?} {b:?}");
        }
    }
}

#[test]
fn nothing_overlaps_in_the_default_an_ha_and_a_large_cluster() {
    for yaml in [None, Some(HA), Some(many_workers(20).as_str())] {
        let t = topology_of(yaml);
        let m = Model::build(&t, &BTreeMap::new(), Some(MAX_WORKERS));
        let l = layout(&m);
        assert_apart("components", &l.vertices);
        let groups: Vec<Rect> = l.groups.iter().flatten().copied().collect();
        assert_apart("boxes", &groups);
        for (g, r) in l.groups.iter().enumerate() {
            let Some(r) = r else { continue };
            for (v, x) in m.vertices.iter().enumerate().filter(|(_, x)| x.group == g) {
                let inner = l.vertices[v];
                assert!(
                    inner.x >= r.x && inner.right() <= r.right() && inner.y >= r.y && inner.bottom() <= r.bottom(),
                    "{} outside its box",
                    x.id
                );
            }
        }
        if yaml.is_none() {
            // In the default picture no label covers a component or another label.
            assert_apart("labels", &l.labels);
            for lab in &l.labels {
                assert!(l.vertices.iter().all(|v| v.overlap(lab) == 0.0), "label over a component: {lab:?}");
            }
        }
    }
}

#[test]
fn many_workers_fold_into_one_node_and_keep_every_link() {
    let t = topology_of(Some(&many_workers(12)));
    let svg = render(&t, &BTreeMap::new(), GraphFormat::Svg);
    well_formed(&svg);
    assert!(svg.contains(">+5 more workers<"), "7 workers drawn, 5 folded");
    assert!(svg.contains("worker · w7") && !svg.contains("worker · w8"));
    assert!(svg.contains(">kubelet.conf ×5<") && svg.contains(">apiserver-kubelet-client ×5<"));
    let arrows = svg.matches("class=\"link\"").count();
    assert!(arrows < t.links.len(), "{arrows} arrows for {} links", t.links.len());
    // Every link is behind exactly one arrow (tooltips name a few and count the rest).
    let m = Model::build(&t, &BTreeMap::new(), Some(MAX_WORKERS));
    let mut behind: Vec<&String> = m.edges.iter().flat_map(|e| &e.links).collect();
    behind.sort();
    let mut all: Vec<&String> = t.links.iter().map(|l| &l.id).collect();
    all.sort();
    assert_eq!(behind, all);
    assert!(svg.contains("and 1 more links"), "a ×5 arrow names 4 links and counts the fifth");
    // The text forms fold exactly like the SVG.
    let dot = render(&t, &BTreeMap::new(), GraphFormat::Dot);
    assert_eq!(dot.matches("\" -> \"").count(), arrows);
    assert!(dot.contains("\"+5 more workers\"") && !dot.contains("\"kubelet@w8\" [label"), "{dot}");
    let mm = render(&t, &BTreeMap::new(), GraphFormat::Mermaid);
    assert_eq!(mm.lines().filter(|l| l.contains("->|")).count(), arrows);
}

#[test]
fn dot_and_mermaid_have_every_link_coloured_and_grouped() {
    let t = topology_of(None);
    let mut status = BTreeMap::new();
    status.insert(t.links[0].id.clone(), LinkStatus::Broken);
    let dot = render(&t, &status, GraphFormat::Dot);
    assert!(dot.contains("digraph kubepki {") && dot.trim_end().ends_with('}'));
    for l in &t.links {
        let edge = format!("{} -> {} [", dot_quote(&l.client), dot_quote(&l.server));
        assert_eq!(dot.matches(&edge).count(), 1, "{}", l.id);
    }
    assert_eq!(dot.matches("\" -> \"").count(), t.links.len());
    assert_eq!(dot.matches(&format!(" color=\"{}\"", color(LinkStatus::Broken))).count(), 1);
    assert!(dot.contains("label=\"control plane · controlplane\"") && dot.contains("label=\"worker · node01\""));

    let mm = render(&t, &status, GraphFormat::Mermaid);
    assert!(mm.starts_with("flowchart LR\n"));
    let edges: Vec<&str> = mm.lines().filter(|l| l.contains("->|")).collect();
    assert_eq!(edges.len(), t.links.len());
    assert_eq!(mm.matches("linkStyle ").count(), t.links.len());
    assert!(mm.contains(&format!("linkStyle 0 stroke:{}", color(LinkStatus::Broken))));
    assert!(mm.contains("subgraph") && mm.contains("[\"worker · node02\"]"));
    assert!(edges.iter().any(|l| l.contains("-.->|\"apiserver-etcd-client\"|")), "etcd links dashed");
}

#[test]
fn names_are_escaped_in_every_form() {
    let evil = "a<b>&\"c'#|`\\";
    let component = |id: &str, kind| Component { id: id.into(), kind, node: None };
    let t = Topology {
        components: vec![
            component(evil, ComponentKind::Admin),
            component("srv\"x", ComponentKind::AggregatedApiServer),
        ],
        links: vec![Link {
            id: format!("{evil} -> srv\"x"),
            kind: LinkKind::AdminToApiServer,
            client: evil.into(),
            server: "srv\"x".into(),
            client_cert: crate::model::catalog::EntryId::of_node("kubelet.conf", "cert<&>\""),
            server_cert: None,
            client_trusts: None,
            server_trusts: crate::model::catalog::EntryId::shared("ca"),
            dial: Endpoint { host: San::Dns("x".into()), port: 1 },
            domain: TrustDomain::Cluster,
        }],
    };
    let svg = render(&t, &BTreeMap::new(), GraphFormat::Svg);
    well_formed(&svg);
    assert!(svg.contains("data-id=\"a&lt;b&gt;&amp;&quot;c&#39;#|`\\\""), "{svg}");
    assert!(svg.contains(">kubelet.conf@cert&lt;&amp;&gt;&quot;<"), "{svg}");

    let dot = render(&t, &BTreeMap::new(), GraphFormat::Dot);
    assert!(dot.contains(r#""a<b>&\"c'#|`\\" -> "srv\"x" [label="kubelet.conf@cert<&>\"""#), "{dot}");

    let mm = render(&t, &BTreeMap::new(), GraphFormat::Mermaid);
    assert!(mm.contains("|\"kubelet.conf@cert#lt;#amp;#gt;#quot;\"|"), "{mm}");
    for line in mm.lines().filter(|l| !l.trim_start().starts_with("%%")) {
        let inside: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        for text in inside {
            assert!(!text.contains(['<', '>', '&', '|', '`']), "unescaped in {line}");
        }
    }
}

#[test]
fn broken_and_warning_workers_stay_out_of_the_fold_and_are_named() {
    let t = topology_of(Some(&many_workers(12)));
    let mut status = BTreeMap::new();
    status.insert("kube-apiserver@cp1 -> kubelet@w11".to_string(), LinkStatus::Broken);
    status.insert("kube-proxy@w12 -> kube-apiserver@cp1".to_string(), LinkStatus::Warning);
    for format in [GraphFormat::Svg, GraphFormat::Dot, GraphFormat::Mermaid] {
        let text = render(&t, &status, format);
        assert!(text.contains("worker · w11") && text.contains("worker · w12"), "{format:?}: {text}");
        assert!(text.contains("+3 more workers") && !text.contains("worker · w8"), "{format:?}: {text}");
    }
    // Beyond what can be drawn, the fold says how many of its members are not ok.
    let t = topology_of(Some(&many_workers(60)));
    let status: BTreeMap<String, LinkStatus> = t
        .links
        .iter()
        .filter(|l| l.server.starts_with("kubelet@"))
        .map(|l| (l.id.clone(), LinkStatus::Broken))
        .collect();
    let svg = render(&t, &status, GraphFormat::Svg);
    // 12 broken ones and the first 7 others drawn; the other 41, all broken, folded.
    assert!(svg.contains("+41 more workers (41 not ok)"), "60 broken, 19 drawn");
}

#[test]
fn a_load_balanced_endpoint_is_one_node_between_clients_and_apiservers() {
    let mut yaml = String::from("controlPlaneEndpoint: lb.example:6443\nnodes:\n");
    for i in 1..=3 {
        yaml.push_str(&format!("  - {{name: cp{i}, role: control-plane, addresses: [10.0.0.{i}]}}\n"));
    }
    for i in 1..=20 {
        yaml.push_str(&format!("  - {{name: w{i}, role: worker, addresses: [10.0.1.{i}]}}\n"));
    }
    let t = topology_of(Some(&yaml));
    let m = Model::build(&t, &BTreeMap::new(), Some(MAX_WORKERS));
    let lb = m.vertices.iter().position(|v| v.id == "endpoint lb.example:6443").expect("a load-balancer node");
    let apis: Vec<usize> =
        (0..m.vertices.len()).filter(|&v| m.vertices[v].kind == Some(ComponentKind::ApiServer)).collect();
    assert_eq!(apis.len(), 3);
    // One arrow from the endpoint to each apiserver; none from a worker straight to an apiserver.
    for &a in &apis {
        assert_eq!(m.edges.iter().filter(|e| e.from == lb && e.to == a).count(), 1);
    }
    for e in &m.edges {
        let role = m.groups[m.vertices[e.from].group].role;
        assert!(!(matches!(role, Role::Worker | Role::MoreWorkers) && apis.contains(&e.to)), "{}", e.label);
    }
    // At most one arrow per (box, client kind, server).
    let mut seen = std::collections::BTreeSet::new();
    for e in &m.edges {
        let v = &m.vertices[e.from];
        // The client kind: the component, or in the folded node the credential it presents.
        let kind = if v.kind.is_some() { v.label.clone() } else { e.label.split(" ×").next().unwrap().to_string() };
        assert!(seen.insert((v.group, kind, e.to)), "two arrows from {} to {}", v.id, m.vertices[e.to].id);
    }
    // The hairball is gone: the 3 × 20 kubelet and kube-proxy links are 8 × 2 arrows to the
    // endpoint; 95 arrows in all for 260 links (each apiserver to each drawn kubelet is most of them;
    // metrics-server adds one from each apiserver and one to each drawn kubelet).
    let to_lb = m.edges.iter().filter(|e| e.to == lb && m.groups[m.vertices[e.from].group].role != Role::ControlPlane);
    assert_eq!(to_lb.count(), 2 + 8 * 2, "admin, super-admin, and kubelet and kube-proxy of 8 worker nodes");
    assert!(m.edges.len() <= 95, "{} arrows for {} links", m.edges.len(), t.links.len());
    // Drawn apart from everything else.
    let l = layout(&m);
    for (i, r) in l.vertices.iter().enumerate() {
        if i != lb {
            assert_eq!(r.overlap(&l.vertices[lb]), 0.0, "{} overlaps the endpoint", m.vertices[i].id);
        }
    }
    // The default cluster dials its apiserver's own address: no endpoint node.
    let m = Model::build(&topology_of(None), &BTreeMap::new(), Some(MAX_WORKERS));
    assert!(!m.groups.iter().any(|g| g.role == Role::Endpoint));
}

#[test]
fn five_thousand_workers_draw_under_200_kb_in_every_format() {
    let mut yaml = String::from("controlPlaneEndpoint: lb.example:6443\nnodes:\n");
    for i in 1..=3 {
        yaml.push_str(&format!("  - {{name: cp{i}, role: control-plane, addresses: [10.0.0.{i}]}}\n"));
    }
    yaml.push_str("nodePools:\n  - {namePattern: \"w{index}\", role: worker, count: 5000, firstAddress: 10.1.0.1}\n");
    let t = topology_of(Some(&yaml));
    let mut status: BTreeMap<String, LinkStatus> = t.links.iter().map(|l| (l.id.clone(), LinkStatus::Ok)).collect();
    status.insert("kube-apiserver@cp2 -> kubelet@w4321".into(), LinkStatus::Broken);
    for format in [GraphFormat::Svg, GraphFormat::Dot, GraphFormat::Mermaid] {
        let text = render(&t, &status, format);
        assert!(text.len() < 200_000, "{format:?}: {} bytes", text.len());
        assert!(text.contains("worker · w4321"), "{format:?}: the broken worker is drawn and named");
        assert!(text.contains("+4992 more workers"), "{format:?}");
    }
}

#[test]
fn the_svg_scales_to_its_viewport() {
    let svg = render(&topology_of(None), &BTreeMap::new(), GraphFormat::Svg);
    let head = svg.lines().next().unwrap();
    assert!(head.contains("width=\"100%\"") && head.contains("viewBox=\"0 0 "), "{head}");
    assert!(!head.contains("height=\""), "the height follows the viewBox: {head}");
}
