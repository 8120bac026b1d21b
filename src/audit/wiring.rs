//! The wiring audited: the control plane's static pod manifests in a tree (`manifests/*.yaml`,
//! as kubeadm writes them) read for the settings of [`crate::model::topology::wiring`]; each
//! file a setting names is checked to be the catalog entry the topology says (by content, not
//! by name), and each verification switch to be on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::catalog::Catalog;
use crate::model::spec::ClusterSpec;
use crate::model::topology::wiring::{node_path, Setting, Want, ETC_KUBERNETES};
use crate::model::topology::{ComponentKind, Topology};
use crate::model::vocabulary::layout;

/// A static pod manifest, read: the component and its flags.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The component it runs.
    pub component: ComponentKind,
    /// The file, relative to the tree.
    pub path: PathBuf,
    /// Every `--flag=value` of its command (`--flag` alone: an empty value).
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
    },
}

/// One setting that is not as it must be, in one manifest.
#[derive(Clone, Debug)]
pub struct Miswired {
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

/// The primary control plane's manifests in the tree (`manifests/*.yaml`), if any.
pub fn read_manifests(root: &Path) -> Vec<Manifest> {
    let dir = root.join(layout::MANIFESTS);
    let mut out = Vec::new();
    for kind in
        [ComponentKind::ApiServer, ComponentKind::Etcd, ComponentKind::ControllerManager, ComponentKind::Scheduler]
    {
        let Some(name) = kind.manifest() else { continue };
        let path = dir.join(name);
        // A manifest is a few kilobytes: a regular file over 1 MiB is not one.
        let small = path.metadata().is_ok_and(|m| m.is_file() && m.len() <= 1 << 20);
        let Some(text) = small.then(|| std::fs::read_to_string(&path).ok()).flatten() else { continue };
        if let Some(flags) = command_flags(&text) {
            out.push(Manifest { component: kind, path: Path::new(layout::MANIFESTS).join(name), flags });
        }
    }
    out
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

/// Check the primary control plane's manifests against the model.
pub fn check(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, root: &Path) -> Vec<Miswired> {
    let node = spec.primary();
    let mut out = Vec::new();
    for m in read_manifests(root) {
        for setting in m.component.settings() {
            let component = m.component.id_on(Some(node));
            let link_ids = setting.links(&component, topology).iter().map(|l| l.id.clone()).collect();
            let value = m.flags.get(setting.name);
            let problem = match setting.want {
                Want::Equals { value: want } => match value {
                    Some(v) if v == want => None,
                    Some(v) => Some((Problem::Off(v.clone()), want.to_string())),
                    None => Some((Problem::Unset, want.to_string())),
                },
                Want::NotTrue => match value {
                    Some(v) if v.is_empty() || v == "true" => Some((Problem::Off("true".into()), "false".into())),
                    _ => None,
                },
                want => {
                    let Some(entry_file) = setting.file(node, topology, catalog) else { continue };
                    let expected = node_path(node, &entry_file);
                    match value {
                        None if setting.required => Some((Problem::Unset, expected)),
                        None => None,
                        Some(v) => named_problem(root, v, &entry_file, want).map(|p| (p, expected)),
                    }
                }
            };
            if let Some((problem, expected)) = problem {
                out.push(Miswired { manifest: m.path.clone(), setting, problem, expected, links: link_ids });
            }
        }
    }
    out.extend(addons::check(spec, catalog, topology, root));
    out
}

pub mod addons;

/// What is wrong with the file a setting names, if anything: it must be in the tree and hold
/// what the expected file holds (a CA file: the expected CA among its certificates).
fn named_problem(root: &Path, named: &str, expected: &Path, want: Want) -> Option<Problem> {
    let Some(rel) = Path::new(named).strip_prefix(ETC_KUBERNETES).ok() else {
        return Some(Problem::NoFile(named.to_string()));
    };
    if rel == expected {
        return None;
    }
    let wrong = || Problem::WrongFile { named: named.to_string(), expected: expected.display().to_string() };
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
