//! kubeadm's own configuration (`kubeadm.k8s.io/v1beta3` and `v1beta4`, multi-document YAML)
//! read into a kubepki description: the node that runs `kubeadm init` is the one control plane.

use std::path::Path;

use serde_yaml_ng::Value;

use super::{ClusterSpec, EtcdFile, NodeFile, Role, SpecFile, ValidityFile};
use crate::error::{Error, Result};

const GROUP: &str = "kubeadm.k8s.io/";
const VERSIONS: [&str; 2] = ["v1beta3", "v1beta4"];

/// Whether the text has a document whose apiVersion is kubeadm's.
pub(super) fn is_kubeadm_config(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("apiVersion:") && l.contains(GROUP)
    })
}

/// Map kubeadm's fields to kubepki's; the field names in errors are kubeadm's.
pub(super) fn read(text: &str, path: &Path) -> Result<ClusterSpec> {
    let err =
        |field: &str, problem: String| Error::Spec { file: path.to_path_buf(), field: field.to_string(), problem };
    let mut init = None;
    let mut cluster = None;
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| err(&format!("document {}", i + 1), e.to_string()))?;
        let Some(api_version) = str_at(&value, &["apiVersion"]) else { continue };
        let Some(version) = api_version.strip_prefix(GROUP) else { continue };
        let kind = str_at(&value, &["kind"]).unwrap_or_default();
        if !VERSIONS.contains(&version) {
            return Err(err(
                &format!("{kind}.apiVersion"),
                format!("'{api_version}' is not supported (use {GROUP}v1beta3 or {GROUP}v1beta4)"),
            ));
        }
        let slot = match kind {
            "InitConfiguration" => &mut init,
            "ClusterConfiguration" => &mut cluster,
            // Nothing to map from these.
            "JoinConfiguration" | "ResetConfiguration" | "UpgradeConfiguration" => continue,
            _ => {
                return Err(err(
                    &format!("document {}.kind", i + 1),
                    format!("'{kind}' is not a kind of {api_version} (InitConfiguration, ClusterConfiguration, JoinConfiguration, ResetConfiguration, UpgradeConfiguration)"),
                ))
            }
        };
        if slot.is_some() {
            return Err(err(&format!("document {}", i + 1), format!("a second {kind}: which one is meant? Keep one")));
        }
        *slot = Some(value);
    }
    let init = init.unwrap_or(Value::Null);
    let cluster = cluster.unwrap_or(Value::Null);
    let strings = |doc: &Value, kind: &str, p: &[&str]| -> Result<Option<String>> {
        string_field(doc, p).map_err(|problem| err(&format!("{kind}.{}", p.join(".")), problem))
    };
    let lists = |doc: &Value, kind: &str, p: &[&str]| -> Result<Option<Vec<String>>> {
        list_field(doc, p).map_err(|problem| err(&format!("{kind}.{}", p.join(".")), problem))
    };
    let (i, c) = ("InitConfiguration", "ClusterConfiguration");
    let name = match strings(&init, i, &["nodeRegistration", "name"])? {
        Some(n) => n,
        None => hostname().ok_or_else(|| {
            err(&format!("{i}.nodeRegistration.name"), "not set, and this machine's hostname is unknown".into())
        })?,
    };
    let address = strings(&init, i, &["localAPIEndpoint", "advertiseAddress"])?.ok_or_else(|| {
        err(
            &format!("{i}.localAPIEndpoint.advertiseAddress"),
            "required: kubepki does not guess the control plane's address".into(),
        )
    })?;
    let bind_port = match at(&init, &["localAPIEndpoint", "bindPort"]) {
        None => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(other) => {
            return Err(err(&format!("{i}.localAPIEndpoint.bindPort"), format!("{other:?} is not a number")))
        }
    };
    let key_algorithm = strings(&cluster, c, &["encryptionAlgorithm"])?;
    let file = SpecFile {
        cluster_name: strings(&cluster, c, &["clusterName"])?,
        cert_sans: None,
        control_plane_endpoint: strings(&cluster, c, &["controlPlaneEndpoint"])?,
        api_server_port: bind_port,
        service_subnet: strings(&cluster, c, &["networking", "serviceSubnet"])?,
        dns_domain: strings(&cluster, c, &["networking", "dnsDomain"])?,
        api_server_cert_sans: lists(&cluster, c, &["apiServer", "certSANs"])?,
        etcd: Some(EtcdFile {
            server_cert_sans: lists(&cluster, c, &["etcd", "local", "serverCertSANs"])?,
            peer_cert_sans: lists(&cluster, c, &["etcd", "local", "peerCertSANs"])?,
        }),
        key_algorithm,
        validity: Some(ValidityFile {
            ca: strings(&cluster, c, &["caCertificateValidityPeriod"])?,
            leaf: strings(&cluster, c, &["certificateValidityPeriod"])?,
        }),
        ca_layout: None,
        // kubeadm installs no metrics-server.
        addons: Some(vec![]),
        nodes: vec![NodeFile { name, role: Role::ControlPlane, addresses: vec![address], dns_names: vec![] }],
        node_pools: vec![],
    };
    file.resolve(path).map_err(|e| match e {
        Error::Spec { file, field, problem } => Error::Spec { file, field: kubeadm_field(&field), problem },
        other => other,
    })
}

/// kubepki's field name → the kubeadm field it came from.
fn kubeadm_field(field: &str) -> String {
    const MAP: [(&str, &str); 12] = [
        ("nodes[0].name", "InitConfiguration.nodeRegistration.name"),
        ("nodes[0].addresses[0]", "InitConfiguration.localAPIEndpoint.advertiseAddress"),
        ("apiServerPort", "InitConfiguration.localAPIEndpoint.bindPort"),
        ("clusterName", "ClusterConfiguration.clusterName"),
        ("controlPlaneEndpoint", "ClusterConfiguration.controlPlaneEndpoint"),
        ("serviceSubnet", "ClusterConfiguration.networking.serviceSubnet"),
        ("dnsDomain", "ClusterConfiguration.networking.dnsDomain"),
        ("apiServerCertSANs", "ClusterConfiguration.apiServer.certSANs"),
        ("etcd.serverCertSANs", "ClusterConfiguration.etcd.local.serverCertSANs"),
        ("etcd.peerCertSANs", "ClusterConfiguration.etcd.local.peerCertSANs"),
        ("keyAlgorithm", "ClusterConfiguration.encryptionAlgorithm"),
        ("validity.", "ClusterConfiguration."),
    ];
    for (ours, theirs) in MAP {
        if let Some(rest) = field.strip_prefix(ours) {
            let rest = match (ours, rest) {
                ("validity.", "ca") => "caCertificateValidityPeriod",
                ("validity.", "leaf") => "certificateValidityPeriod",
                _ => rest,
            };
            return format!("{theirs}{rest}");
        }
    }
    field.to_string()
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path).and_then(Value::as_str)
}

fn string_field(v: &Value, path: &[&str]) -> std::result::Result<Option<String>, String> {
    match at(v, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("expected a string, found {other:?}")),
    }
}

fn list_field(v: &Value, path: &[&str]) -> std::result::Result<Option<Vec<String>>, String> {
    match at(v, path) {
        None => Ok(None),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("expected strings, found {i:?}")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!("expected a list, found {other:?}")),
    }
}

/// kubeadm's default node name: this machine's hostname, lowercased.
fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim().to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}
