//! The add-ons' wiring audited: `addons/metrics-server.yaml` (as `init` writes it, or as the
//! operator changed it) read for metrics-server's settings: its Deployment's container args, and
//! its `APIService`'s `caBundle` (by content: it must hold the CA that signs metrics-server's
//! serving certificate) and `insecureSkipTLSVerify`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use super::{named_problem, Miswired, Problem};
use crate::model::catalog::Catalog;
use crate::model::spec::{Addon, ClusterSpec};
use crate::model::topology::wiring::{node_path, Want, API_SERVICE_CA_BUNDLE, API_SERVICE_INSECURE};
use crate::model::topology::{ComponentKind, Topology};
use crate::model::vocabulary::{layout, metrics_server};
use crate::x509::certinfo::CertInfo;

/// metrics-server's manifest, read: its container's flags and its APIService's fields (`None`:
/// the object is not in the file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsServerManifest {
    /// Every `--flag=value` of the Deployment's container (`--flag` alone: an empty value).
    pub flags: Option<BTreeMap<String, String>>,
    /// The APIService's `spec.caBundle` (base64, as written) and `spec.insecureSkipTLSVerify`.
    pub api_service: Option<(Option<String>, bool)>,
}

/// Read `addons/metrics-server.yaml` of the tree, if it is there and is YAML.
pub fn read_metrics_server(root: &Path) -> Option<MetricsServerManifest> {
    let path = root.join(layout::METRICS_SERVER_ADDON);
    // A manifest is tens of kilobytes: a regular file over 1 MiB is not one.
    let small = path.metadata().is_ok_and(|m| m.is_file() && m.len() <= 1 << 20);
    let text = small.then(|| std::fs::read_to_string(&path).ok()).flatten()?;
    let mut out = MetricsServerManifest::default();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let Ok(doc) = serde_yaml_ng::Value::deserialize(doc) else { return None };
        let kind = doc.get("kind").and_then(|k| k.as_str());
        let name = doc.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str());
        match (kind, name) {
            (Some("Deployment"), Some(metrics_server::NAME)) => out.flags = Some(container_flags(&doc)),
            (Some("APIService"), Some(metrics_server::API_SERVICE)) => {
                let spec = doc.get("spec");
                let field = |f: &str| spec.and_then(|s| s.get(f));
                let bundle = field("caBundle").and_then(|b| b.as_str()).map(str::to_string);
                let insecure = field("insecureSkipTLSVerify")
                    .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
                out.api_service = Some((bundle, insecure));
            }
            _ => {}
        }
    }
    Some(out)
}

use serde::Deserialize as _;

/// The CA certificates (PEM) the tree's metrics-server `APIService` trusts: its `caBundle`,
/// decoded (`None`: no manifest, no APIService, no `caBundle`, or not base64).
pub fn api_service_ca_pem(root: &Path) -> Option<Vec<u8>> {
    let (bundle, _) = read_metrics_server(root)?.api_service?;
    let compact: String = bundle?.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).ok()
}

/// The flags of the metrics-server container (its command and args).
fn container_flags(doc: &serde_yaml_ng::Value) -> BTreeMap<String, String> {
    let containers = doc
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.as_sequence());
    let container = containers.and_then(|cs| {
        cs.iter().find(|c| c.get("name").and_then(|n| n.as_str()) == Some(metrics_server::NAME)).or(cs.first())
    });
    let mut flags = BTreeMap::new();
    for list in ["command", "args"] {
        let args = container.and_then(|c| c.get(list)).and_then(|a| a.as_sequence());
        for arg in args.into_iter().flatten().filter_map(|a| a.as_str()) {
            if let Some(flag) = arg.strip_prefix("--") {
                let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
                flags.insert(format!("--{name}"), value.to_string());
            }
        }
    }
    flags
}

/// Check metrics-server's manifest against the model (nothing when the cluster has no
/// metrics-server or the tree no manifest of it).
pub fn check(spec: &ClusterSpec, catalog: &Catalog, topology: &Topology, root: &Path) -> Vec<Miswired> {
    if !spec.has(Addon::MetricsServer) {
        return Vec::new();
    }
    let Some(m) = read_metrics_server(root) else { return Vec::new() };
    let node = spec.primary();
    let component = ComponentKind::MetricsServer.id_for(node);
    let insecure = m.api_service.as_ref().is_some_and(|(_, insecure)| *insecure);
    let mut out = Vec::new();
    for setting in ComponentKind::MetricsServer.settings() {
        let value: Option<String> = match setting.name {
            API_SERVICE_CA_BUNDLE => match &m.api_service {
                None => continue,
                Some((bundle, _)) => bundle.clone().filter(|b| !b.trim().is_empty()),
            },
            API_SERVICE_INSECURE => match &m.api_service {
                None => continue,
                Some((_, insecure)) => insecure.then(|| "true".to_string()),
            },
            flag => match &m.flags {
                None => continue,
                Some(flags) => flags.get(flag).cloned(),
            },
        };
        let problem = match setting.want {
            Want::Equals { value: want } => match &value {
                Some(v) if v == want => None,
                Some(v) => Some((Problem::Off(v.clone()), want.to_string())),
                None => Some((Problem::Unset, want.to_string())),
            },
            Want::NotTrue => match &value {
                Some(v) if v.is_empty() || v == "true" => Some((Problem::Off("true".into()), "false".into())),
                _ => None,
            },
            want => {
                let Some(entry_file) = setting.file(node, topology, catalog) else { continue };
                let expected = node_path(node, &entry_file);
                if setting.name == API_SERVICE_CA_BUNDLE {
                    let expected = format!("$(base64 -w0 {expected})");
                    match &value {
                        // Verification is off: that is the finding, not the bundle.
                        None if insecure => None,
                        None => {
                            let holds = entry_file.display().to_string();
                            Some((
                                Problem::WrongFile { named: "(none)".into(), expected: holds, holds: String::new() },
                                expected,
                            ))
                        }
                        Some(b) => {
                            let server =
                                setting.links(&component, topology).first().and_then(|l| l.server_cert.clone());
                            let server_file = server
                                .and_then(|id| catalog.get(&id))
                                .and_then(|e| e.cert_and_key_files())
                                .map(|(c, _)| c.to_path_buf());
                            bundle_problem(root, b, &entry_file, server_file.as_deref()).map(|p| (p, expected))
                        }
                    }
                } else {
                    match &value {
                        None if setting.required => Some((Problem::Unset, expected)),
                        None => None,
                        Some(v) => named_problem(root, v, &entry_file, want).map(|p| (p, expected)),
                    }
                }
            }
        };
        if let Some((problem, expected)) = problem {
            let links = setting.links(&component, topology).iter().map(|l| l.id.clone()).collect();
            out.push(Miswired {
                component: component.clone(),
                manifest: layout::METRICS_SERVER_ADDON.into(),
                setting,
                problem,
                expected,
                links,
            });
        }
    }
    out
}

/// What is wrong with a `caBundle` (base64 of PEM): it must hold a CA that verifies the
/// certificate metrics-server serves (`server_file`, its chain included: during a rotation the
/// old CA verifies the new one's leaf through the cross-signed CA). Without that file to judge
/// by, it must hold the CA file the topology names.
fn bundle_problem(root: &Path, bundle: &str, ca_file: &Path, server_file: Option<&Path>) -> Option<Problem> {
    let certs = |b: &[u8]| -> Vec<Vec<u8>> {
        pem::parse_many(b)
            .map(|v| v.into_iter().filter(|p| p.tag() == "CERTIFICATE").map(|p| p.into_contents()).collect())
            .unwrap_or_default()
    };
    let read = |f: &Path| crate::disk::readfile::read(&root.join(f), crate::disk::readfile::Limit::Pem).ok();
    let compact: String = bundle.chars().filter(|c| !c.is_whitespace()).collect();
    let have = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()).map(|b| certs(&b));
    let named = match &have {
        Ok(c) => format!("(base64 of {} certificate{})", c.len(), if c.len() == 1 { "" } else { "s" }),
        Err(_) => "(not base64)".to_string(),
    };
    let wrong =
        || Problem::WrongFile { named: named.clone(), expected: ca_file.display().to_string(), holds: String::new() };
    let Ok(have) = have else { return Some(wrong()) };
    let parse =
        |ders: &[Vec<u8>]| -> Vec<CertInfo> { ders.iter().filter_map(|d| CertInfo::from_der(d).ok()).collect() };
    let chain = server_file.and_then(read).map(|b| parse(&certs(&b))).filter(|c| !c.is_empty());
    let holds = match chain {
        Some(chain) => {
            let roots = parse(&have);
            let leaf = &chain[0];
            // The leaf, signed by a root, or by a CA of its chain that a root signed.
            roots.iter().any(|r| leaf.is_signed_by(r))
                || chain[1..].iter().any(|i| leaf.is_signed_by(i) && roots.iter().any(|r| i.is_signed_by(r)))
        }
        None => {
            let Some(want) = read(ca_file) else { return Some(Problem::NoFile(ca_file.display().to_string())) };
            let want = certs(&want);
            !have.is_empty() && !want.is_empty() && want.iter().all(|c| have.contains(c))
        }
    };
    (!holds).then(wrong)
}
