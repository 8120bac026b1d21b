//! What to roll out after a command changed a tree: for each node, the files that changed at
//! their place on that node (`nodes/<node>/X` is `/X` there; the top of the tree is the first
//! control plane's `/etc/kubernetes`), and what must restart or reload to read them, from the
//! wiring of kubeadm's components (which flag names which file).
//!
//! The files come from the run's backup ([`crate::disk::backup`]), which sees every file the run
//! replaced, removed or created; kubepki's own state (`.kubepki/`) is not on any node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::spec::ClusterSpec;

/// What one node (or several with the same change) must receive and restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRollout {
    /// The nodes (one, or every node with exactly this change).
    pub nodes: Vec<String>,
    /// The files to copy onto each, at their paths there (`/etc/kubernetes/pki/ca.crt`).
    pub files: Vec<String>,
    /// The files to delete from each (a restore that removes what the runs it undoes made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Whether the node is gone from the tree: its every file removed (a restore undoing the
    /// `node add` that made it). Nothing of it is copied nor restarted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// What must restart (static pods: move the manifest out and back) or reload to read them.
    pub restart: Vec<&'static str>,
    /// Anything else (`admin.conf`: copy to `~/.kube/config` where it is used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

/// The components that read a file of a node, by its path there (kubeadm's wiring).
fn readers(file: &str) -> Vec<&'static str> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let in_etcd = file.contains("/pki/etcd/");
    let mut r = Vec::new();
    match name {
        "kubelet.conf" => r.push("kubelet"),
        "kubelet.crt" | "kubelet.key" if file.contains("/var/lib/kubelet/") => r.push("kubelet"),
        "kube-proxy.conf" => r.push("kube-proxy"),
        "controller-manager.conf" => r.push("kube-controller-manager"),
        "scheduler.conf" => r.push("kube-scheduler"),
        "ca.crt" if in_etcd => r.extend(["etcd", "kube-apiserver"]),
        "ca.crt" => r.extend(["kube-apiserver", "kube-controller-manager", "kubelet"]),
        "ca.key" if !in_etcd => r.push("kube-controller-manager"),
        "server.crt" | "server.key" | "peer.crt" | "peer.key" if in_etcd => r.push("etcd"),
        "healthcheck-client.crt" | "healthcheck-client.key" if in_etcd => r.push("etcd"),
        "sa.key" => r.extend(["kube-apiserver", "kube-controller-manager"]),
        "sa.pub" => r.push("kube-apiserver"),
        "front-proxy-ca.crt" => r.extend(["kube-apiserver", "kube-controller-manager"]),
        n if n.starts_with("apiserver") || n.starts_with("front-proxy-client") => r.push("kube-apiserver"),
        _ => {}
    }
    r
}

/// Whether metrics-server's Secret or manifest holds this file of the primary control plane
/// (its certificates, the CAs it trusts, the manifest itself).
fn metrics_server_reads(file: &str) -> bool {
    let Some(rel) = file.strip_prefix("/etc/kubernetes/") else { return false };
    rel.starts_with("pki/metrics-server")
        || rel == crate::model::vocabulary::layout::METRICS_SERVER_ADDON
        || rel == "pki/ca.crt"
        || rel == "pki/front-proxy-ca.crt"
}

/// Whether only a control plane has this file (its static pods' credentials).
fn control_plane_file(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    file.contains("/pki/etcd/")
        || name.starts_with("apiserver")
        || name.starts_with("front-proxy")
        || matches!(name, "controller-manager.conf" | "scheduler.conf" | "admin.conf" | "super-admin.conf" | "sa.key")
}

/// Where a file of the tree goes: `(node, path on it)`; `None` for kubepki's own files.
fn placed(rel: &Path, primary: &str) -> Option<(String, String)> {
    let text = rel.to_string_lossy();
    if text.starts_with(".kubepki") {
        return None;
    }
    let mut parts = rel.components();
    if rel.starts_with("nodes") {
        parts.next();
        let node = parts.next()?.as_os_str().to_string_lossy().into_owned();
        let rest: PathBuf = parts.collect();
        return Some((node, format!("/{}", rest.display())));
    }
    Some((primary.to_string(), format!("/etc/kubernetes/{text}")))
}

/// The rollout of these changed files (relative to the tree), nodes with the same change
/// grouped, in the order of the description.
pub fn rollout(spec: &ClusterSpec, changed: &[PathBuf]) -> Vec<NodeRollout> {
    rollout_of_change(spec, changed, &[], &[])
}

/// The rollout of a change that copies `copied` files, deletes `removed` ones and leaves the
/// nodes `gone` without a file (relative to the tree; nodes by name), for the cluster `spec`
/// as it was before the change: a gone node is said to be gone, with what was removed, and
/// nothing to restart; a node the description does not know (a restore that brings back a
/// removed node) runs what its files say (a control plane's certificates, or a worker's).
pub fn rollout_of_change(
    spec: &ClusterSpec,
    copied: &[PathBuf],
    removed: &[PathBuf],
    gone: &[String],
) -> Vec<NodeRollout> {
    let primary = spec.primary().name.as_str();
    let mut per_node: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (rel, deleted) in copied.iter().map(|p| (p, false)).chain(removed.iter().map(|p| (p, true))) {
        if let Some((node, file)) = placed(rel, primary) {
            let (to_copy, to_remove) = per_node.entry(node).or_default();
            if deleted { to_remove } else { to_copy }.insert(file);
        }
    }
    let mut groups: Vec<NodeRollout> = Vec::new();
    let order = spec.nodes.iter().map(|n| n.name.clone()).chain(per_node.keys().cloned()).collect::<Vec<_>>();
    let mut done = BTreeSet::new();
    for node in order {
        let Some((files, removed)) = per_node.get(&node) else { continue };
        if !done.insert(node.clone()) {
            continue;
        }
        let removed: Vec<String> = removed.iter().cloned().collect();
        if gone.contains(&node) {
            let (files, restart, also) = (Vec::new(), Vec::new(), Vec::new());
            groups.push(NodeRollout { nodes: vec![node], files, removed, gone: true, restart, also });
            continue;
        }
        // A worker runs only the kubelet and kube-proxy.
        let worker = match spec.nodes.iter().find(|n| n.name == node) {
            Some(n) => n.role == crate::model::spec::Role::Worker,
            None => !files.iter().chain(&removed).any(|f| control_plane_file(f)),
        };
        let restart: BTreeSet<&'static str> = files
            .iter()
            .chain(&removed)
            .flat_map(|f| readers(f))
            .filter(|c| !worker || matches!(*c, "kubelet" | "kube-proxy"))
            .collect();
        let mut also: Vec<String> = files
            .iter()
            .filter(|f| f.ends_with("/admin.conf"))
            .map(|f| format!("{f}: copy to ~/.kube/config wherever it is used"))
            .collect();
        if node == primary && spec.has(crate::model::spec::Addon::MetricsServer) {
            if let Some(f) = files.iter().find(|f| metrics_server_reads(f)) {
                also.push(format!(
                    "{f}{}: metrics-server reads it from its Secret: make the Secret anew and apply {} again (the commands in its header), then restart metrics-server (kubectl -n kube-system rollout restart deployment metrics-server)",
                    if files.iter().filter(|f| metrics_server_reads(f)).count() > 1 { " and the others" } else { "" },
                    crate::model::vocabulary::layout::METRICS_SERVER_ADDON,
                ));
            }
        }
        let files: Vec<String> = files.iter().cloned().collect();
        let restart: Vec<&'static str> = restart.into_iter().collect();
        let same = |g: &&mut NodeRollout| {
            !g.gone && g.files == files && g.removed == removed && g.restart == restart && g.also == also
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.nodes.push(node),
            None => groups.push(NodeRollout { nodes: vec![node], files, removed, gone: false, restart, also }),
        }
    }
    groups
}

/// The rollout as text: one block per group of nodes.
pub fn text(groups: &[NodeRollout]) -> String {
    use std::fmt::Write;
    if groups.is_empty() {
        return "roll out: nothing (no node's file changed)\n".into();
    }
    let mut out = String::from("roll out, per node:\n");
    for g in groups {
        let nodes = if g.nodes.len() > 4 {
            format!("{}, ... {} ({} nodes)", g.nodes[..2].join(", "), g.nodes[g.nodes.len() - 1], g.nodes.len())
        } else {
            g.nodes.join(", ")
        };
        if g.gone {
            let _ = writeln!(
                out,
                "  {nodes}: gone from the tree: its {} file(s) removed ({}); the node is no longer in the cluster \
                 the tree describes: stop its kubelet and kube-proxy, and delete it (kubectl delete node {nodes})",
                g.removed.len(),
                g.removed.join(", ")
            );
            continue;
        }
        if !g.files.is_empty() {
            let _ = writeln!(out, "  {nodes}: {} file(s): {}", g.files.len(), g.files.join(", "));
        } else {
            let _ = writeln!(out, "  {nodes}:");
        }
        if !g.removed.is_empty() {
            let _ = writeln!(out, "    remove: {}", g.removed.join(", "));
        }
        if g.restart.is_empty() {
            let _ = writeln!(out, "    restart: nothing (no component reads them)");
        } else {
            let _ = writeln!(out, "    restart: {}", g.restart.join(", "));
        }
        for a in &g.also {
            let _ = writeln!(out, "    also: {a}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_to_their_node_and_name_their_readers() {
        let spec = ClusterSpec::builtin_default();
        let changed: Vec<PathBuf> = [
            "pki/apiserver.crt",
            "nodes/controlplane/etc/kubernetes/pki/apiserver.crt",
            "admin.conf",
            "nodes/node01/etc/kubernetes/kubelet.conf",
            "nodes/node02/etc/kubernetes/kubelet.conf",
            ".kubepki/cluster.json",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let r = rollout(&spec, &changed);
        assert_eq!(r.len(), 2, "{r:#?}");
        assert_eq!(r[0].nodes, ["controlplane"]);
        assert_eq!(r[0].files, ["/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/apiserver.crt"]);
        assert_eq!(r[0].restart, ["kube-apiserver"]);
        assert_eq!(r[0].also.len(), 1);
        assert_eq!(r[1].nodes, ["node01", "node02"], "the same change, grouped");
        assert_eq!(r[1].restart, ["kubelet"]);
        let r = rollout(&spec, &[PathBuf::from("nodes/node01/etc/kubernetes/pki/ca.crt")]);
        assert_eq!(r[0].restart, ["kubelet"], "a worker runs no apiserver");
        assert!(readers("/etc/kubernetes/pki/etcd/ca.crt").contains(&"etcd"));
        assert_eq!(readers("/etc/kubernetes/pki/ca.crt"), ["kube-apiserver", "kube-controller-manager", "kubelet"]);
    }

    #[test]
    fn a_gone_node_is_said_gone_and_an_unknown_one_runs_what_its_files_say() {
        let spec = ClusterSpec::builtin_default();
        let removed = [PathBuf::from("nodes/node02/etc/kubernetes/kubelet.conf")];
        let r = rollout_of_change(&spec, &[], &removed, &["node02".to_string()]);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert!(r[0].gone && r[0].files.is_empty() && r[0].restart.is_empty(), "{r:#?}");
        assert_eq!(r[0].removed, ["/etc/kubernetes/kubelet.conf"]);
        assert!(text(&r).contains("node02: gone from the tree: its 1 file(s) removed"), "{}", text(&r));
        // Removed from a node that stays: said to remove, its readers restarted.
        let r = rollout_of_change(&spec, &[], &removed, &[]);
        assert!(!r[0].gone && r[0].removed.len() == 1 && r[0].restart == ["kubelet"], "{r:#?}");
        // Not in the description: a worker's files are a worker's.
        let copied = [PathBuf::from("nodes/w9/etc/kubernetes/pki/ca.crt")];
        assert_eq!(rollout_of_change(&spec, &copied, &[], &[])[0].restart, ["kubelet"]);
        let copied = [
            PathBuf::from("nodes/cp9/etc/kubernetes/pki/ca.crt"),
            PathBuf::from("nodes/cp9/etc/kubernetes/pki/apiserver.crt"),
        ];
        assert!(rollout_of_change(&spec, &copied, &[], &[])[0].restart.contains(&"kube-apiserver"));
    }

    #[test]
    fn metrics_servers_files_say_to_make_its_secret_anew() {
        let spec = ClusterSpec::builtin_default();
        let r = rollout(&spec, &[PathBuf::from("pki/metrics-server.crt"), PathBuf::from("pki/metrics-server.key")]);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!(r[0].nodes, ["controlplane"]);
        assert_eq!(r[0].also.len(), 1, "{r:#?}");
        assert!(r[0].also[0].contains("make the Secret anew") && r[0].also[0].contains("addons/metrics-server.yaml"));
        // Without the add-on, or for a worker's copy of the CA: nothing about it.
        let mut bare = spec.clone();
        bare.addons.clear();
        assert!(rollout(&bare, &[PathBuf::from("pki/ca.crt")])[0].also.is_empty());
        assert!(rollout(&spec, &[PathBuf::from("nodes/node01/etc/kubernetes/pki/ca.crt")])[0].also.is_empty());
    }
}
