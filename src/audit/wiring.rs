//! The wiring audited: the components' configuration read where it is present (the control
//! plane's static pod manifests, kubeadm's `manifests/*.yaml` at the top of a tree and
//! `nodes/<cp>/etc/kubernetes/manifests/` for the other control planes; each node's kubelet
//! `KubeletConfiguration` and kube-proxy `KubeProxyConfiguration` in its bundle; or the files
//! of a directory given to `verify --wiring`) for the settings of
//! [`crate::model::topology::wiring`]. Each file a setting names is checked to be the catalog
//! entry the topology says (by content, not by name; a CA file by the chain: it must hold the
//! CA that signed the certificate the other side presents), each verification switch to be on,
//! and TLS not to be weakened (a minimum version below 1.2, weak cipher suites, anonymous
//! access, `AlwaysAllow`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, EntryId, Store};
use crate::model::spec::{ClusterSpec, Node};
use crate::model::topology::wiring::{
    below_tls12, links_by_component, node_path, weak_cipher, Setting, Side, Want, ETC_KUBERNETES,
};
use crate::model::topology::{ComponentKind, Link, Topology};
use crate::model::vocabulary::layout;
use crate::x509::certinfo::CertInfo;

/// A component's configuration, read: a static pod manifest's flags, or the fields of a
/// configuration file (`authentication.x509.clientCAFile`, a list joined by commas).
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The component it configures.
    pub component: ComponentKind,
    /// The file: relative to the tree, or as given (`verify --wiring DIR`).
    pub path: PathBuf,
    /// Every `--flag=value` of its command (`--flag` alone: an empty value), or every field.
    pub flags: BTreeMap<String, String>,
}

/// What is wrong with one setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A required setting is absent.
    Unset,
    /// A verification switch has another value (or a forbidden one is on).
    Off(String),
    /// It names a file that is not in the tree.
    NoFile(String),
    /// It names a file that does not hold what the topology says.
    WrongFile {
        /// The path it names.
        named: String,
        /// The path (as the node sees it) that holds the right entry.
        expected: String,
        /// What the named file holds instead (subjects), when it holds certificates.
        holds: String,
    },
    /// TLS weakened: what is weak about the value.
    Weak(String),
    /// Anonymous requests are accepted (the value, or `unset` where that is the default).
    Anonymous(String),
    /// Authorization allows everything.
    AlwaysAllow(String),
    /// The component asks the apiserver for its serving certificate.
    Bootstrap,
}

/// One setting that is not as it must be, in one manifest.
#[derive(Clone, Debug)]
pub struct Miswired {
    /// The component, on its node (`kubelet@node01`).
    pub component: String,
    /// The manifest.
    pub manifest: PathBuf,
    /// The setting.
    pub setting: &'static Setting,
    /// What is wrong.
    pub problem: Problem,
    /// The value it must have (a path as the node sees it, or a switch's value).
    pub expected: String,
    /// The links whose verification it decides (ids of the topology's links).
    pub links: Vec<String>,
}

/// Where the configuration is read from.
#[derive(Clone, Debug, Default)]
pub enum Sources {
    /// The tree's own: the manifests of every control plane, the configuration files of every
    /// node's bundle.
    #[default]
    Tree,
    /// The files of a directory (a node's `/etc/kubernetes/manifests`, a kubelet's
    /// `config.yaml`), recognised by content, as those of this node (`None`: the primary
    /// control plane).
    Dir(PathBuf, Option<String>),
}

/// A manifest or configuration file is a few kilobytes: a regular file over 1 MiB is not one.
const MAX_CONFIG: u64 = 1 << 20;

fn small_text(path: &Path) -> Option<String> {
    let small = path.metadata().is_ok_and(|m| m.is_file() && m.len() <= MAX_CONFIG);
    small.then(|| std::fs::read_to_string(path).ok()).flatten()
}

const CONTROL_PLANE: [ComponentKind; 4] =
    [ComponentKind::ApiServer, ComponentKind::Etcd, ComponentKind::ControllerManager, ComponentKind::Scheduler];

/// The primary control plane's manifests in the tree (`manifests/*.yaml`), if any.
pub fn read_manifests(root: &Path) -> Vec<Manifest> {
    manifests_in(root, Path::new(layout::MANIFESTS))
}

fn manifests_in(root: &Path, dir: &Path) -> Vec<Manifest> {
    let mut out = Vec::new();
    for kind in CONTROL_PLANE {
        let Some(name) = kind.manifest() else { continue };
        let Some(text) = small_text(&root.join(dir).join(name)) else { continue };
        if let Some(flags) = command_flags(&text) {
            out.push(Manifest { component: kind, path: dir.join(name), flags });
        }
    }
    out
}

/// Every component configuration of the tree, with the node it is on: the primary's
/// manifests at the top, the other control planes' in their bundles, and each node's kubelet
/// and kube-proxy configuration files in its bundle.
pub fn read_tree<'s>(root: &Path, spec: &'s ClusterSpec) -> Vec<(&'s Node, Manifest)> {
    let primary = spec.primary();
    let mut out: Vec<(&Node, Manifest)> = read_manifests(root).into_iter().map(|m| (primary, m)).collect();
    let bundle = |n: &Node| Path::new(layout::NODES).join(&n.name);
    for cp in spec.control_planes().filter(|n| n.name != primary.name) {
        let dir = bundle(cp).join(layout::ETC_KUBERNETES).join(layout::MANIFESTS);
        out.extend(manifests_in(root, &dir).into_iter().map(|m| (cp, m)));
    }
    // Thousands of nodes: their files are read on every core, and each configuration parsed
    // once (node after node holds the same one under its own header comment).
    use rayon::prelude::*;
    type Fields = Option<BTreeMap<String, String>>;
    let parsed: Mutex<HashMap<(String, &str), Fields>> = Mutex::default();
    let fields = |text: &str, doc_kind: &'static str| -> Fields {
        let key = (uncommented(text).to_string(), doc_kind);
        if let Some(known) = locked(&parsed).get(&key) {
            return known.clone();
        }
        let found = config_fields(&key.0, doc_kind);
        locked(&parsed).entry(key).or_insert(found).clone()
    };
    let configs: Vec<(&Node, Manifest)> = spec
        .nodes
        .par_iter()
        .flat_map_iter(|node| {
            let fields = &fields;
            [ComponentKind::Kubelet, ComponentKind::KubeProxy].into_iter().filter_map(move |kind| {
                let (file, doc_kind) = kind.config_file()?;
                let path = bundle(node).join(file);
                let flags = fields(&small_text(&root.join(&path))?, doc_kind)?;
                Some((node, Manifest { component: kind, path, flags }))
            })
        })
        .collect();
    out.extend(configs);
    out
}

/// YAML text without its leading comment lines (`# The kubelet of node01 ...`), which YAML
/// reads the same.
fn uncommented(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    rest
}

/// Every manifest and configuration file in `dir` (not its subdirectories), recognised by
/// content: a Pod running a control-plane component, a `KubeletConfiguration`, a
/// `KubeProxyConfiguration`. Other files are passed over; a directory without one is an error.
pub fn read_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read", e))?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Some(text) = small_text(&path) else { continue };
        if let Some(m) = recognise(&text, &path) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(Error::bad_file(
            dir,
            "holds no static pod manifest of a control-plane component, no KubeletConfiguration and no KubeProxyConfiguration",
        ));
    }
    Ok(out)
}

/// A manifest or configuration file, by content.
pub fn recognise(text: &str, path: &Path) -> Option<Manifest> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let kind = doc.get("kind").and_then(|k| k.as_str())?;
    if kind == "Pod" {
        let container = doc.get("spec")?.get("containers")?.get(0)?;
        let program = container.get("command")?.get(0)?.as_str()?;
        let program = program.rsplit('/').next().unwrap_or(program);
        let component = CONTROL_PLANE.into_iter().find(|k| k.name() == program)?;
        return Some(Manifest { component, path: path.to_path_buf(), flags: command_flags(text)? });
    }
    for component in [ComponentKind::Kubelet, ComponentKind::KubeProxy] {
        if let Some((_, doc_kind)) = component.config_file().filter(|(_, k)| *k == kind) {
            return Some(Manifest { component, path: path.to_path_buf(), flags: config_fields(text, doc_kind)? });
        }
    }
    None
}

/// The flags of a pod's first container's command.
fn command_flags(text: &str) -> Option<BTreeMap<String, String>> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let command = doc.get("spec")?.get("containers")?.get(0)?.get("command")?.as_sequence()?;
    let mut flags = BTreeMap::new();
    for arg in command.iter().filter_map(|a| a.as_str()) {
        if let Some(flag) = arg.strip_prefix("--") {
            let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
            flags.insert(format!("--{name}"), value.to_string());
        }
    }
    Some(flags)
}

/// The fields of a configuration document of this `kind`, by dotted path; a list of scalars
/// joined by commas.
fn config_fields(text: &str, kind: &str) -> Option<BTreeMap<String, String>> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    (doc.get("kind")?.as_str()? == kind).then_some(())?;
    let mut out = BTreeMap::new();
    flatten("", &doc, &mut out);
    Some(out)
}

fn flatten(prefix: &str, v: &serde_yaml_ng::Value, out: &mut BTreeMap<String, String>) {
    use serde_yaml_ng::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                let key = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Sequence(items) => {
            out.insert(prefix.to_string(), items.iter().filter_map(scalar).collect::<Vec<_>>().join(","));
        }
        other => {
            if let Some(s) = scalar(other) {
                out.insert(prefix.to_string(), s);
            }
        }
    }
}

/// Check the tree's wiring (every control plane's manifests, every node's configuration).
pub fn check(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, root: &Path) -> Vec<Miswired> {
    check_sources(spec, catalog, topology, root, &Sources::Tree).unwrap_or_default()
}

/// Check the configuration of `sources` against the model; the files settings name are looked
/// for in the tree at `root`. Errs only for a directory that cannot be read or holds nothing
/// to check, or a node that is not the cluster's.
pub fn check_sources(
    spec: &ClusterSpec,
    catalog: &Catalog,
    topology: &Topology,
    root: &Path,
    sources: &Sources,
) -> Result<Vec<Miswired>> {
    let read: Vec<(&Node, Manifest)> = match sources {
        Sources::Tree => read_tree(root, spec),
        Sources::Dir(dir, node) => {
            let node = match node {
                None => spec.primary(),
                Some(name) => spec
                    .nodes
                    .iter()
                    .find(|n| &n.name == name)
                    .ok_or_else(|| Error::Invalid(format!("--wiring-node: {name} is not a node of the cluster")))?,
            };
            read_dir(dir)?.into_iter().map(|m| (node, m)).collect()
        }
    };
    let files = Files { root, spec, cache: Mutex::default(), certs: Mutex::default() };
    let by_component = links_by_component(topology);
    // Thousands of nodes' files: checked on every core, reported in the order they were read.
    use rayon::prelude::*;
    let mut out: Vec<Miswired> = read
        .par_iter()
        .flat_map_iter(|(node, m)| {
            let on = by_component.get(m.component.id_on(Some(node)).as_str()).map_or(&[][..], Vec::as_slice);
            let mut found = Vec::new();
            for setting in m.component.settings() {
                let model = Model { catalog, topology, on };
                if let Some((problem, expected, links)) = setting_problem(&files, &model, node, m, setting) {
                    let component = m.component.id_on(Some(node));
                    found.push(Miswired { component, manifest: m.path.clone(), setting, problem, expected, links });
                }
            }
            found
        })
        .collect();
    if let Sources::Tree = sources {
        out.extend(addons::check(spec, catalog, topology, root));
    }
    Ok(out)
}

/// What is wrong with one setting of one manifest on `node`, the value it must have, and the
/// links it decides.
fn setting_problem(
    files: &Files<'_>,
    model: &Model<'_>,
    node: &Node,
    m: &Manifest,
    setting: &'static Setting,
) -> Option<(Problem, String, Vec<String>)> {
    let component = m.component.id_on(Some(node));
    let links = setting.links_among(&component, model.on);
    let (catalog, topology) = (model.catalog, model.topology);
    let link_ids = || links.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    let value = m.flags.get(setting.name);
    let on = |v: &str| v.is_empty() || v.eq_ignore_ascii_case("true");
    let problem = match setting.want {
        Want::Equals { value: want } => match value {
            Some(v) if v == want => None,
            Some(v) => Some((Problem::Off(v.clone()), want.to_string())),
            None => Some((Problem::Unset, want.to_string())),
        },
        Want::NotTrue => value.filter(|v| on(v)).map(|_| (Problem::Off("true".into()), "false".into())),
        Want::MinTls { value: want } => value
            .filter(|v| below_tls12(v))
            .map(|v| (Problem::Weak(format!("{v}: TLS 1.0 and 1.1 are accepted")), want.to_string())),
        Want::StrongCiphers => value.and_then(|v| {
            let weak: Vec<&str> = v.split(',').map(str::trim).filter(|c| weak_cipher(c)).collect();
            (!weak.is_empty()).then(|| {
                let strong: Vec<&str> = v.split(',').map(str::trim).filter(|c| !weak_cipher(c)).collect();
                (Problem::Weak(format!("weak suites {}", weak.join(","))), strong.join(","))
            })
        }),
        Want::AnonymousOff { default_on } => match value {
            Some(v) if on(v) => Some((Problem::Anonymous(v.clone()), "false".into())),
            None if default_on => Some((Problem::Anonymous("unset (on by default)".into()), "false".into())),
            _ => None,
        },
        Want::NotAlwaysAllow { default_on } => match value {
            Some(v) if v.split(',').any(|mode| mode.trim() == "AlwaysAllow") => {
                Some((Problem::AlwaysAllow(v.clone()), "Node,RBAC".into()))
            }
            // An authorization configuration file replaces the flag (Kubernetes 1.29+).
            None if default_on && !m.flags.contains_key("--authorization-config") => {
                Some((Problem::AlwaysAllow("unset (AlwaysAllow by default)".into()), "Node,RBAC".into()))
            }
            _ => None,
        },
        Want::ServingBootstrap => value.filter(|v| on(v)).map(|_| (Problem::Bootstrap, "false".into())),
        want => {
            let entry_file = setting.file_among(node, &links, topology, catalog)?;
            let expected = node_path(node, &entry_file);
            match value {
                // A kubelet that bootstraps its serving certificate names no files for it.
                None if bootstraps(m) && matches!(want, Want::Presents { side: Side::Server, .. }) => None,
                None if setting.required => Some((Problem::Unset, expected)),
                None => None,
                Some(v) => files.named_problem(node, v, &entry_file, want, &links, catalog).map(|p| (p, expected)),
            }
        }
    };
    problem.map(|(p, expected)| (p, expected, link_ids()))
}

/// The model a setting is checked against, and the links of its component.
struct Model<'a> {
    catalog: &'a Catalog,
    topology: &'a Topology,
    on: &'a [&'a Link],
}

/// Whether the component gets its serving certificate from the apiserver.
fn bootstraps(m: &Manifest) -> bool {
    m.component.settings().any(|s| s.want == Want::ServingBootstrap && m.flags.get(s.name).is_some_and(|v| v == "true"))
}

/// The tree's files, read once each (by whichever thread asks first).
struct Files<'a> {
    root: &'a Path,
    spec: &'a ClusterSpec,
    cache: Mutex<HashMap<PathBuf, Option<Vec<u8>>>>,
    /// The certificates of a file, parsed once (a CA file every kubelet names).
    certs: Mutex<HashMap<PathBuf, Arc<Vec<CertInfo>>>>,
}

/// The map behind a lock (a thread that panicked holding it left it whole: entries are
/// inserted in one step).
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Files<'_> {
    fn bytes(&self, rel: &Path) -> Option<Vec<u8>> {
        if let Some(known) = locked(&self.cache).get(rel) {
            return known.clone();
        }
        let read = crate::disk::readfile::read(&self.root.join(rel), crate::disk::readfile::Limit::Kubeconfig).ok();
        locked(&self.cache).entry(rel.to_path_buf()).or_insert(read).clone()
    }

    fn certs(&self, rel: &Path) -> Arc<Vec<CertInfo>> {
        if let Some(c) = locked(&self.certs).get(rel) {
            return c.clone();
        }
        let parsed = Arc::new(self.bytes(rel).map(|b| certs(&b)).unwrap_or_default());
        locked(&self.certs).entry(rel.to_path_buf()).or_insert(parsed).clone()
    }

    /// The tree-relative file a path names on `node`: the node's bundle first (a file the
    /// node has of its own), then, for `/etc/kubernetes/...`, the top of the tree (the primary
    /// control plane's, of which each node holds copies).
    fn in_tree(&self, node: &Node, named: &str) -> Option<PathBuf> {
        self.places(node, named).into_iter().find(|p| self.root.join(p).symlink_metadata().is_ok())
    }

    /// Where in the tree a path named on `node` may be, in order: for the primary control
    /// plane, `/etc/kubernetes/X` at the top (`X`); the node's bundle; for a node without a
    /// bundle (a kubeadm tree), the top.
    fn places(&self, node: &Node, named: &str) -> Vec<PathBuf> {
        let path = Path::new(named);
        let Ok(from_root) = path.strip_prefix("/") else { return Vec::new() };
        let top = path.strip_prefix(ETC_KUBERNETES).ok().map(Path::to_path_buf);
        let primary = node.name == self.spec.primary().name;
        let bundled = self.root.join(layout::NODES).join(&node.name).is_dir();
        let mut out = Vec::new();
        if let Some(top) = top.as_ref().filter(|_| primary) {
            out.push(top.clone());
        }
        out.push(Path::new(layout::NODES).join(&node.name).join(from_root));
        if let Some(top) = top.filter(|_| !primary && !bundled) {
            out.push(top);
        }
        out
    }

    /// What is wrong with the file a setting names, if anything: it must be in the tree and
    /// hold what the expected file holds; a CA file must hold the CA that signed the
    /// certificate the other side of the link presents (else the expected CA itself).
    fn named_problem(
        &self,
        node: &Node,
        named: &str,
        expected: &Path,
        want: Want,
        links: &[&Link],
        catalog: &Catalog,
    ) -> Option<Problem> {
        // The file itself, or the node bundle's copy of it, there: right (the file's absence is
        // the entry's finding, a stale copy the copy check's, each reported once, not once per
        // setting that names it).
        let copy = Path::new(layout::NODES).join(&node.name).join(layout::ETC_KUBERNETES).join(expected);
        let there = |p: &Path| self.root.join(p).symlink_metadata().is_ok();
        if self.places(node, named).iter().any(|p| *p == expected || (*p == copy && there(p))) {
            return None;
        }
        let Some(rel) = self.in_tree(node, named) else {
            return Some(Problem::NoFile(named.to_string()));
        };
        let (Some(have), Some(want_bytes)) = (self.bytes(&rel), self.bytes(expected)) else {
            return Some(Problem::NoFile(named.to_string()));
        };
        let holds = match want {
            Want::Trusts { side, .. } => {
                let have_certs = self.certs(&rel);
                match self.other_side(side, links, catalog).as_ref().and_then(|c| c.first()) {
                    Some(other) => have_certs.iter().any(|ca| other.is_signed_by(ca)),
                    None => {
                        let want_certs = self.certs(expected);
                        !have_certs.is_empty() && want_certs.iter().all(|c| have_certs.iter().any(|h| h.der == c.der))
                    }
                }
            }
            _ => have == want_bytes,
        };
        (!holds).then(|| Problem::WrongFile {
            named: named.to_string(),
            expected: expected.display().to_string(),
            holds: certs(&have).iter().map(|c| c.subject.clone()).collect::<Vec<_>>().join("; "),
        })
    }

    /// The certificate the other side of the link presents to a side that trusts a CA file:
    /// a server's clients' certificate, a client's server's; `None` when the tree does not
    /// have it readable (its own finding says so) or the other side is not kubepki's.
    fn other_side(&self, side: Side, links: &[&Link], catalog: &Catalog) -> Option<Arc<Vec<CertInfo>>> {
        let link = links.first()?;
        let id: &EntryId = match side {
            Side::Server => &link.client_cert,
            Side::Client => link.server_cert.as_ref()?,
        };
        match &catalog.get(id)?.leaf()?.store {
            Store::Files { cert, .. } => Some(self.certs(cert)),
            Store::Kubeconfig { path, .. } => {
                let text = String::from_utf8(self.bytes(path)?).ok()?;
                let pem = crate::x509::kubeconfig::parse(&text, path).ok()?.cert_pem?;
                Some(Arc::new(certs(pem.as_bytes())))
            }
        }
    }
}

/// The certificates of a PEM file (none for anything else).
fn certs(bytes: &[u8]) -> Vec<CertInfo> {
    pem::parse_many(bytes)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.tag() == "CERTIFICATE")
                .filter_map(|b| CertInfo::from_der(b.contents()).ok())
                .collect()
        })
        .unwrap_or_default()
}

pub mod addons;

/// What is wrong with a file an add-on's setting names (`/etc/kubernetes/...` at the top of the
/// tree), if anything: it must hold what the expected file holds (a CA file: the expected CA
/// among its certificates).
fn named_problem(root: &Path, named: &str, expected: &Path, want: Want) -> Option<Problem> {
    let Some(rel) = Path::new(named).strip_prefix(ETC_KUBERNETES).ok() else {
        return Some(Problem::NoFile(named.to_string()));
    };
    if rel == expected {
        return None;
    }
    let wrong = || Problem::WrongFile {
        named: named.to_string(),
        expected: expected.display().to_string(),
        holds: String::new(),
    };
    let limit = crate::disk::readfile::Limit::Kubeconfig;
    let (Ok(have), Ok(want_bytes)) =
        (crate::disk::readfile::read(&root.join(rel), limit), crate::disk::readfile::read(&root.join(expected), limit))
    else {
        return Some(Problem::NoFile(named.to_string()));
    };
    let holds = match want {
        Want::Trusts { .. } => {
            let certs = |b: &[u8]| -> Vec<Vec<u8>> {
                pem::parse_many(b).map(|v| v.into_iter().map(|p| p.into_contents()).collect()).unwrap_or_default()
            };
            let have = certs(&have);
            !have.is_empty() && certs(&want_bytes).iter().all(|c| have.contains(c))
        }
        _ => have == want_bytes,
    };
    (!holds).then(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_reads_the_same_without_its_header_comment() {
        let text = "# The kubelet of node01.\n# Second line.\napiVersion: kubelet.config.k8s.io/v1beta1\n\
                    kind: KubeletConfiguration\n# inside\nport: 10250\nauthentication:\n  x509:\n    \
                    clientCAFile: /etc/kubernetes/pki/ca.crt\n";
        let body = uncommented(text);
        assert!(body.starts_with("apiVersion:") && body.contains("# inside"), "{body}");
        let fields = config_fields(text, "KubeletConfiguration").unwrap();
        assert_eq!(config_fields(body, "KubeletConfiguration"), Some(fields.clone()));
        assert_eq!(fields["authentication.x509.clientCAFile"], "/etc/kubernetes/pki/ca.crt");
        assert_eq!(uncommented("# only a comment"), "");
        assert_eq!(uncommented(" # indented\nkind: X\n"), " # indented\nkind: X\n");
    }
}
