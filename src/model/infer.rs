//! A cluster description read back from a tree, for trees verified without `--config`
//! (kubeadm's, or kubepki's without its description at hand): node names, addresses, the
//! endpoint, the service IP and the extra SANs, taken from the certificates and kubeconfigs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::catalog::{bundle_root, Catalog, EntryId};
use crate::model::spec::{Addon, CaLayout, Cidr, ClusterSpec, Endpoint, KeyAlgorithm, Node, Role, San, Validity};
use crate::model::vocabulary::{entry, layout, DEFAULT_CLUSTER_NAME, DEFAULT_DNS_DOMAIN, DEFAULT_SERVICE_SUBNET};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::BACKDATE;
use crate::x509::kubeconfig;

/// Infer the description of the cluster whose tree is at `root`.
pub fn infer(root: &Path) -> Result<ClusterSpec> {
    if !root.is_dir() {
        return Err(Error::bad_file(root, "no such directory"));
    }
    let ca_path = root.join(layout::crt(layout::CA));
    if !ca_path.is_file() && !root.join(entry::ADMIN_CONF).is_file() {
        return Err(Error::bad_file(root, "not a Kubernetes PKI: neither pki/ca.crt nor admin.conf is there"));
    }
    let admin = kubeconfig::read(&root.join(entry::ADMIN_CONF)).ok();
    let local = kubeconfig::read(&root.join(entry::CONTROLLER_MANAGER_CONF)).ok();
    let apiserver = cert(&root.join(layout::crt(layout::APISERVER)));
    let etcd_server = cert(&root.join(layout::crt(layout::ETCD_SERVER)));

    let service_ip = apiserver.as_ref().and_then(|c| ips(c).next());
    let primary_name = etcd_server
        .as_ref()
        .map(|c| c.subject_cn.clone())
        .or_else(|| kubelet_user(&root.join(entry::KUBELET_CONF)))
        .or_else(|| apiserver.as_ref().and_then(|c| dns(c).next()))
        .ok_or_else(|| {
            Error::bad_file(
                root,
                "cannot tell the control plane's node name (no pki/etcd/server.crt, kubelet.conf or apiserver.crt)",
            )
        })?;
    let local_endpoint = local.as_ref().and_then(|k| Endpoint::parse(k.server.trim_start_matches("https://")).ok());
    let primary_address = match local_endpoint.as_ref().map(|e| &e.host) {
        Some(San::Ip(ip)) => *ip,
        _ => apiserver
            .as_ref()
            .and_then(|c| ips(c).find(|ip| Some(*ip) != service_ip))
            .ok_or_else(|| Error::bad_file(root, "cannot tell the control plane's address"))?,
    };
    let api_server_port = local_endpoint.as_ref().map_or(crate::model::spec::DEFAULT_APISERVER_PORT, |e| e.port);
    let endpoint = admin
        .as_ref()
        .and_then(|k| Endpoint::parse(k.server.trim_start_matches("https://")).ok())
        .unwrap_or(Endpoint { host: San::Ip(primary_address), port: api_server_port });

    let mut nodes = vec![Node {
        name: primary_name.clone(),
        role: Role::ControlPlane,
        addresses: node_addresses(etcd_server.as_ref(), primary_address),
        dns_names: vec![],
    }];
    for (name, dir) in node_dirs(root) {
        if name == primary_name {
            continue;
        }
        let own_api = cert(&dir.join(layout::ETC_KUBERNETES).join(layout::crt(layout::APISERVER)));
        let serving = cert(&dir.join(layout::crt(layout::KUBELET_SERVING)));
        let (role, addresses, dns_names) = match &own_api {
            Some(api) => {
                let first = serving
                    .as_ref()
                    .and_then(|c| ips(c).next())
                    .or_else(|| ips(api).find(|ip| Some(*ip) != service_ip));
                let Some(first) = first else { continue };
                (
                    Role::ControlPlane,
                    node_addresses(
                        cert(&dir.join(layout::ETC_KUBERNETES).join(layout::crt(layout::ETCD_SERVER))).as_ref(),
                        first,
                    ),
                    vec![],
                )
            }
            None => {
                let Some(s) = &serving else { continue };
                let addresses: Vec<IpAddr> = ips(s).collect();
                if addresses.is_empty() {
                    continue;
                }
                (Role::Worker, addresses, dns(s).filter(|d| *d != name).collect())
            }
        };
        nodes.push(Node { name, role, addresses, dns_names });
    }
    nodes.sort_by_key(|n| n.role != Role::ControlPlane);

    let dns_domain = apiserver
        .as_ref()
        .and_then(|c| dns(c).find_map(|d| d.strip_prefix("kubernetes.default.svc.").map(str::to_string)))
        .unwrap_or_else(|| DEFAULT_DNS_DOMAIN.into());
    let service_subnets = vec![match service_ip {
        Some(ip) => {
            manifest_subnet(root).unwrap_or(Cidr { addr: minus_one(ip), prefix: if ip.is_ipv4() { 30 } else { 126 } })
        }
        None => Cidr::parse(DEFAULT_SERVICE_SUBNET).expect("valid"),
    }];
    let ca_layout = if root.join(layout::crt(layout::ETCD_CA)).is_file() || !ca_path.is_file() {
        CaLayout::Kubeadm
    } else {
        CaLayout::Single
    };
    let validity_ca = cert(&ca_path).map_or(Validity::default().ca, |ca| ca.not_after - ca.not_before - BACKDATE);
    // An add-on is the tree's when its certificate is there (kubeadm makes none).
    let addons: Vec<Addon> = [(Addon::MetricsServer, layout::METRICS_SERVER)]
        .into_iter()
        .filter(|(_, file)| root.join(layout::crt(file)).is_file())
        .map(|(a, _)| a)
        .collect();
    // What the tree says, as a description, read like any other: a description is only ever
    // made by validating one.
    let mut value = describe_value(&Parts {
        cluster_name: &admin.as_ref().map_or_else(|| DEFAULT_CLUSTER_NAME.into(), |k| k.cluster.clone()),
        control_plane_endpoint: &endpoint,
        api_server_port,
        service_subnets: &service_subnets,
        dns_domain: &dns_domain,
        api_server_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
        cert_sans: &Default::default(),
        key_algorithm: key_algorithm(root),
        validity: Validity { ca: validity_ca, leaf: Validity::default().leaf },
        ca_layout,
        addons: &addons,
        nodes: &nodes,
    });
    let spec = ClusterSpec::from_json(value.clone(), root)?;
    // Whatever the certificates carry beyond kubeadm's rules is an extra SAN.
    let catalog = Catalog::build(&spec);
    let extra = |id: &EntryId, found: Option<&CertInfo>| -> serde_json::Value {
        let want = catalog.get(id).and_then(|e| e.cert()).map(|p| p.sans.clone()).unwrap_or_default();
        let extra: Vec<String> =
            found.map(|c| c.sans.iter().filter(|s| !want.contains(s)).map(San::value).collect()).unwrap_or_default();
        extra.into()
    };
    let own = |name| EntryId::of_node(name, &primary_name);
    value["apiServerCertSANs"] = extra(&own(entry::APISERVER), apiserver.as_ref());
    value["etcd"]["serverCertSANs"] = extra(&own(entry::ETCD_SERVER), etcd_server.as_ref());
    let peer = cert(&root.join(layout::crt(layout::ETCD_PEER)));
    value["etcd"]["peerCertSANs"] = extra(&own(entry::ETCD_PEER), peer.as_ref());
    ClusterSpec::from_json(value, root)
}

fn cert(path: &Path) -> Option<CertInfo> {
    CertInfo::from_pem(&crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Pem).ok()?, path).ok()
}

fn ips(c: &CertInfo) -> impl Iterator<Item = IpAddr> + '_ {
    c.sans.iter().filter_map(|s| match s {
        San::Ip(ip) => Some(*ip),
        San::Dns(_) => None,
    })
}

fn dns(c: &CertInfo) -> impl Iterator<Item = String> + '_ {
    c.sans.iter().filter_map(|s| match s {
        San::Dns(d) => Some(d.clone()),
        San::Ip(_) => None,
    })
}

/// A control plane's addresses: its advertise address, then the other IP SANs of its etcd
/// server certificate (kubeadm's rule: node addresses, then 127.0.0.1 and ::1).
fn node_addresses(etcd_server: Option<&CertInfo>, first: IpAddr) -> Vec<IpAddr> {
    let mut out = vec![first];
    for ip in etcd_server.into_iter().flat_map(ips) {
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

fn kubelet_user(path: &Path) -> Option<String> {
    let k = kubeconfig::read(path).ok()?;
    k.user.strip_prefix("system:node:").map(str::to_string)
}

fn node_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root.join("nodes")) else { return vec![] };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = root.join(bundle_root(&Node {
                name: name.clone(),
                role: Role::Worker,
                addresses: vec![],
                dns_names: vec![],
            }));
            (name, dir)
        })
        .collect();
    out.sort();
    out
}

/// `--service-cluster-ip-range` from kubeadm's static pod manifest, when the tree has it.
fn manifest_subnet(root: &Path) -> Option<Cidr> {
    let text = crate::disk::readfile::read_text(
        &root.join(layout::MANIFESTS).join("kube-apiserver.yaml"),
        crate::disk::readfile::Limit::Kubeconfig,
    )
    .ok()?;
    let value = text.lines().find_map(|l| l.trim().strip_prefix("- --service-cluster-ip-range="))?;
    Cidr::parse(value.split(',').next()?).ok()
}

fn minus_one(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_sub(1)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_sub(1)).into()),
    }
}

fn key_algorithm(root: &Path) -> KeyAlgorithm {
    cert(&root.join(layout::crt(layout::CA))).and_then(|c| c.key.algorithm()).unwrap_or_default()
}

/// Where `init` records the description a tree was made from.
pub use crate::model::vocabulary::state::CLUSTER as RECORDED;

/// The description of a tree: the one recorded in it by `init` (or a later `node add`), else
/// inferred from its certificates.
pub fn cluster_of_tree(root: &Path) -> Result<ClusterSpec> {
    Ok(resolve(root, None, Resolve::default())?.spec)
}

/// Where the description a command acts on came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Recorded in the tree (`.kubepki/cluster.json`): the tree's truth.
    Recorded,
    /// Given with `--config` (a tree that records none, or `--update-description`).
    Given,
    /// Read back from the tree's certificates and kubeconfigs (a kubeadm tree).
    Inferred,
    /// The built-in default cluster (no tree yet, nothing given).
    BuiltinDefault,
}

/// What a command allows when it asks for a tree's description.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resolve {
    /// The given description replaces a different recorded one (`--update-description`).
    pub update: bool,
    /// The tree may not exist yet (`init`, `plan`, `csr`): then the built-in default applies.
    pub new_tree: bool,
}

/// A description and where it came from.
#[derive(Clone, Debug)]
pub struct Described {
    /// The description.
    pub spec: ClusterSpec,
    /// Where it came from.
    pub source: Source,
}

/// The one policy for which description applies to the tree at `root`: the recorded one is
/// the truth; a given one that differs is refused, showing the difference, unless
/// `update`; without a recorded one, the given one, else the tree read back (a kubeadm tree),
/// else (for a new tree) the built-in default.
pub fn resolve(root: &Path, given: Option<ClusterSpec>, how: Resolve) -> Result<Described> {
    let recorded_path = root.join(RECORDED);
    if recorded_path.is_file() {
        let recorded = load_recorded(&recorded_path)?;
        return match given {
            None => Ok(Described { spec: recorded, source: Source::Recorded }),
            Some(g) => {
                let differences = recorded.differences(&g);
                if differences.is_empty() {
                    Ok(Described { spec: recorded, source: Source::Recorded })
                } else if how.update {
                    Ok(Described { spec: g, source: Source::Given })
                } else {
                    Err(Error::DescriptionDiffers { recorded: recorded_path, given: g.source.clone(), differences })
                }
            }
        };
    }
    if let Some(g) = given {
        return Ok(Described { spec: g, source: Source::Given });
    }
    let is_pki = root.join(layout::crt(layout::CA)).is_file() || root.join(entry::ADMIN_CONF).is_file();
    if how.new_tree && !is_pki {
        return Ok(Described { spec: ClusterSpec::builtin_default(), source: Source::BuiltinDefault });
    }
    Ok(Described { spec: infer(root)?, source: Source::Inferred })
}

/// The recorded description. One recorded before add-ons existed names none, and its tree has
/// none: it gets none (a description written by hand that names none gets every one).
pub fn load_recorded(path: &Path) -> Result<ClusterSpec> {
    let text = crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Document)?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut value @ serde_json::Value::Object(_)) => {
            if value.get("addons").is_none() {
                value["addons"] = serde_json::json!([]);
            }
            ClusterSpec::from_json(value, path)
        }
        _ => ClusterSpec::from_yaml(&text, path),
    }
}

/// Record the description in the tree (JSON, which the description reader takes as YAML).
pub fn record(root: &Path, spec: &ClusterSpec) -> Result<()> {
    let path = root.join(RECORDED);
    let text = describe(spec);
    if crate::disk::readfile::read(&path, crate::disk::readfile::Limit::Document)
        .is_ok_and(|old| old == text.as_bytes())
    {
        return Ok(()); // unchanged: nothing to write, nor to back up
    }
    crate::disk::store::write_atomic(&path, text.as_bytes(), crate::disk::store::Mode::Public)
}

/// A description file that reads back as `spec`.
pub fn describe(spec: &ClusterSpec) -> String {
    let value = describe_value(&Parts {
        cluster_name: &spec.cluster_name,
        control_plane_endpoint: &spec.control_plane_endpoint,
        api_server_port: spec.api_server_port,
        service_subnets: &spec.service_subnets,
        dns_domain: &spec.dns_domain,
        api_server_cert_sans: &spec.api_server_cert_sans,
        etcd_server_cert_sans: &spec.etcd_server_cert_sans,
        etcd_peer_cert_sans: &spec.etcd_peer_cert_sans,
        cert_sans: &spec.cert_sans,
        key_algorithm: spec.key_algorithm,
        validity: spec.validity,
        ca_layout: spec.ca_layout,
        addons: &spec.addons,
        nodes: &spec.nodes,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("serializes");
    text.push('\n');
    text
}

/// What a description says, before it is read (and so validated) into a [`ClusterSpec`].
struct Parts<'a> {
    cluster_name: &'a str,
    control_plane_endpoint: &'a Endpoint,
    api_server_port: u16,
    service_subnets: &'a [Cidr],
    dns_domain: &'a str,
    api_server_cert_sans: &'a [San],
    etcd_server_cert_sans: &'a [San],
    etcd_peer_cert_sans: &'a [San],
    cert_sans: &'a std::collections::BTreeMap<String, Vec<San>>,
    key_algorithm: KeyAlgorithm,
    validity: Validity,
    ca_layout: CaLayout,
    addons: &'a [Addon],
    nodes: &'a [Node],
}

/// A description in kubepki's own format (JSON, which the description reader takes as YAML).
fn describe_value(spec: &Parts) -> serde_json::Value {
    use serde_json::json;
    let bare = San::value;
    let sans = |v: &[San]| v.iter().map(bare).collect::<Vec<_>>();
    let endpoint = match &spec.control_plane_endpoint.host {
        San::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", spec.control_plane_endpoint.port),
        host => format!("{}:{}", bare(host), spec.control_plane_endpoint.port),
    };
    let nodes: Vec<_> = spec
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "role": if n.role == Role::ControlPlane { "control-plane" } else { "worker" },
                "addresses": n.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "dnsNames": n.dns_names,
            })
        })
        .collect();
    json!({
        "clusterName": spec.cluster_name,
        "controlPlaneEndpoint": endpoint,
        "apiServerPort": spec.api_server_port,
        "serviceSubnet": spec.service_subnets.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        "dnsDomain": spec.dns_domain,
        "apiServerCertSANs": sans(spec.api_server_cert_sans),
        "etcd": {"serverCertSANs": sans(spec.etcd_server_cert_sans), "peerCertSANs": sans(spec.etcd_peer_cert_sans)},
        "certSANs": spec.cert_sans.iter().map(|(id, v)| (id.clone(), serde_json::Value::from(sans(v)))).collect::<serde_json::Map<_, _>>(),
        "keyAlgorithm": spec.key_algorithm.name(),
        "validity": {
            "ca": crate::model::spec::duration_text::format(spec.validity.ca),
            "leaf": crate::model::spec::duration_text::format(spec.validity.leaf),
        },
        "caLayout": if spec.ca_layout == CaLayout::Single { "single" } else { "kubeadm" },
        "addons": spec.addons.iter().map(|a| a.name()).collect::<Vec<_>>(),
        "nodes": nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_description_reads_back_the_same() {
        let mut spec = ClusterSpec::from_yaml(
            "clusterName: \"on\"\ncontrolPlaneEndpoint: \"[fd00::1]:7443\"\nserviceSubnet: 10.100.0.0/16,fd00:96::/112\napiServerCertSANs: [lb.example.com, 192.0.2.1]\netcd: {peerCertSANs: [10.9.9.9]}\ncaLayout: single\nkeyAlgorithm: rsa-3072\nvalidity: {ca: 7300d, leaf: 90d}\nnodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.1, \"fd00::10\"]}\n- {name: w, role: worker, addresses: [10.0.0.2], dnsNames: [w.example.com]}\n",
            Path::new("x.yaml"),
        )
        .unwrap();
        let back = ClusterSpec::from_yaml(&describe(&spec), Path::new("cluster.json")).unwrap();
        spec.source = back.source.clone();
        assert_eq!(back, spec);
    }
}
