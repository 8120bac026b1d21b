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
    let primary = spec.primary().name.as_str();
    let mut per_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rel in changed {
        if let Some((node, file)) = placed(rel, primary) {
            per_node.entry(node).or_default().insert(file);
        }
    }
    let mut groups: Vec<NodeRollout> = Vec::new();
    let order = spec.nodes.iter().map(|n| n.name.clone()).chain(per_node.keys().cloned()).collect::<Vec<_>>();
    let mut done = BTreeSet::new();
    for node in order {
        let Some(files) = per_node.get(&node) else { continue };
        if !done.insert(node.clone()) {
            continue;
        }
        // A worker runs only the kubelet and kube-proxy.
        let worker = spec.nodes.iter().any(|n| n.name == node && n.role == crate::model::spec::Role::Worker);
        let restart: BTreeSet<&'static str> = files
            .iter()
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
        match groups.iter_mut().find(|g| g.files == files && g.restart == restart && g.also == also) {
            Some(g) => g.nodes.push(node),
            None => groups.push(NodeRollout { nodes: vec![node], files, restart, also }),
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
        let _ = writeln!(out, "  {nodes}: {} file(s): {}", g.files.len(), g.files.join(", "));
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
