//! A component's configuration inspected: a static pod manifest or a kubelet or kube-proxy
//! configuration file, recognised by content. Each setting of the wiring model it carries is
//! shown with what each file it names holds (certificates: subject, issuer, validity; a key: that
//! it is readable; a kubeconfig: its certificates), and a missing file is said.

use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use serde::Serialize;

use super::FileRef;
use crate::audit::wiring::Manifest;
use crate::model::topology::wiring::{Part, Want};

/// A component's configuration: its TLS settings and the files they name.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    /// The component (`kube-apiserver`, `kubelet`).
    pub component: &'static str,
    /// Every setting of the wiring model for it, set or not.
    pub settings: Vec<SettingView>,
}

/// One setting.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingView {
    /// The flag or field.
    pub name: &'static str,
    /// Its value (`None`: not set).
    pub value: Option<String>,
    /// What it is for.
    pub role: &'static str,
    /// The CIS Kubernetes Benchmark control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cis: Option<&'static str>,
    /// The file it names, read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
}

/// The view of a recognised manifest or configuration file at `path`.
pub(super) fn view(m: &Manifest, path: &Path, at: OffsetDateTime) -> ConfigView {
    let root = root_of(path, m);
    let settings = m
        .component
        .settings()
        .map(|s| {
            let value = m.flags.get(s.name).cloned();
            let file = value.as_deref().filter(|v| s.want.names_file() && !v.is_empty()).map(|reference| {
                let resolved = resolve(reference, path, root.as_ref());
                FileRef::read(reference, resolved, !is_key(s.want), at)
            });
            SettingView { name: s.name, value, role: s.role, cis: s.cis, file }
        })
        .collect();
    ConfigView { component: m.component.name(), settings }
}

fn is_key(want: Want) -> bool {
    matches!(
        want,
        Want::Presents { part: Part::Key, .. }
            | Want::ServiceAccount { .. }
            | Want::SigningCa { part: Part::Key }
            | Want::Own { part: Part::Key, .. }
    )
}

/// Where the absolute paths the file names are, when it sits in a tree: a manifest in
/// `<X>/manifests/` beside `<X>/pki/` names `/etc/kubernetes/...` as `<X>/...`; a
/// configuration file at `<R>/var/lib/kubelet/config.yaml` names `/...` as `<R>/...`.
fn root_of(path: &Path, m: &Manifest) -> Option<(PathBuf, &'static str)> {
    let abs = path.canonicalize().ok()?;
    if let Some((file, _)) = m.component.config_file() {
        let mut root = abs.as_path();
        for _ in Path::new(file).components() {
            root = root.parent()?;
        }
        return abs.ends_with(file).then(|| (root.to_path_buf(), "/"));
    }
    let dir = abs.parent()?;
    let tree = dir.parent()?;
    (dir.file_name()? == "manifests" && tree.join("pki").is_dir()).then(|| (tree.to_path_buf(), "/etc/kubernetes/"))
}

/// A path the file names, on this host or in its tree; relative: beside the file.
fn resolve(reference: &str, path: &Path, root: Option<&(PathBuf, &'static str)>) -> PathBuf {
    let r = Path::new(reference);
    if r.is_relative() {
        return path.parent().unwrap_or(Path::new(".")).join(r);
    }
    match root {
        Some((root, prefix)) => match reference.strip_prefix(prefix) {
            Some(rest) => {
                let inside = root.join(rest);
                // A node bundle holds its own files; shared ones sit at the top of the tree.
                if !inside.exists() && *prefix == "/" {
                    if let Some(top) =
                        top_of_tree(root).and_then(|t| Some(t.join(rest.strip_prefix("etc/kubernetes/")?)))
                    {
                        if top.exists() {
                            return top;
                        }
                    }
                }
                inside
            }
            None => r.to_path_buf(),
        },
        None => r.to_path_buf(),
    }
}

/// `<tree>` for `<tree>/nodes/<node>`.
fn top_of_tree(bundle: &Path) -> Option<PathBuf> {
    let nodes = bundle.parent()?;
    (nodes.file_name()? == "nodes").then(|| nodes.parent().map(Path::to_path_buf)).flatten()
}
