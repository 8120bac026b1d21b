//! The cluster description: what the user writes (a kubepki YAML file, or kubeadm's own
//! `InitConfiguration` + `ClusterConfiguration`), read into one validated [`ClusterSpec`].
//!
//! The file as typed ([`SpecFile`]) is kept apart from the resolved description that every
//! command acts on ([`ClusterSpec`]): validation turns one into the other and names the file,
//! the field and the problem for anything wrong.

mod kubeadm;
mod names;
mod pools;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::vocabulary::{DEFAULT_CLUSTER_NAME, DEFAULT_DNS_DOMAIN, DEFAULT_SERVICE_SUBNET};
pub use names::{dns1123_subdomain_problem, is_dns1123_label, is_dns1123_subdomain, is_san_dns_name};
pub use pools::MAX_NODES;

/// The default port of kube-apiserver.
pub use crate::model::vocabulary::DEFAULT_APISERVER_PORT;
/// A day, the unit of certificate validity.
pub const DAY: time::Duration = time::Duration::days(1);

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl San {
    /// An IP if the text parses as one, else a DNS name (not validated).
    pub fn guess(text: &str) -> San {
        match text.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(text.to_string()),
        }
    }

    /// Parse a SAN given by the user: an IP, or a valid DNS name (wildcards allowed).
    pub fn parse(text: &str) -> std::result::Result<San, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        if looks_like_ip(text) {
            return Err(format!("'{text}' is not a valid IP address"));
        }
        if is_san_dns_name(text) {
            Ok(San::Dns(text.to_ascii_lowercase()))
        } else {
            Err(format!("'{text}' is neither an IP address nor a valid DNS name"))
        }
    }

    /// The address alone, as a user types it (`10.0.0.1`, `lb.example.com`).
    pub fn value(&self) -> String {
        match self {
            San::Dns(d) => d.clone(),
            San::Ip(ip) => ip.to_string(),
        }
    }
}

fn looks_like_ip(text: &str) -> bool {
    let dotted_digits = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    dotted_digits || text.contains(':')
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

impl From<San> for String {
    fn from(s: San) -> String {
        s.to_string()
    }
}

/// The key algorithms kubeadm accepts (and kubepki's default, ECDSA P-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(into = "&'static str")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (kubepki's default: fast, accepted everywhere).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048 with SHA-256 (kubeadm's default).
    Rsa2048,
    /// RSA 3072 with SHA-256.
    Rsa3072,
    /// RSA 4096 with SHA-256.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order shown to users.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name used on the command line and in kubepki files.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// Parse a kubepki name (`ecdsa-p256`) or a kubeadm `encryptionAlgorithm` (`ECDSA-P256`).
    pub fn parse(text: &str) -> std::result::Result<KeyAlgorithm, String> {
        let lower = text.trim().to_ascii_lowercase();
        KeyAlgorithm::ALL.into_iter().find(|a| a.name() == lower).ok_or_else(|| {
            let names: Vec<_> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
            format!("unsupported key algorithm '{text}' (supported: {})", names.join(", "))
        })
    }

    /// Whether this is an RSA algorithm.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096)
    }
}

impl From<KeyAlgorithm> for &'static str {
    fn from(a: KeyAlgorithm) -> &'static str {
        a.name()
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many CAs the cluster has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CaLayout {
    /// kubeadm's three CAs: `ca`, `etcd-ca`, `front-proxy-ca`.
    #[default]
    Kubeadm,
    /// One CA for everything (the classic "one CA for the cluster" setup).
    Single,
}

/// A cluster add-on whose certificates and wiring kubepki makes, as it does a component's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Addon {
    /// metrics-server, the aggregated API server of `kubectl top` and autoscaling: its serving
    /// certificate (trusted through its `APIService`'s `caBundle`), its client certificate for
    /// kubelets, and its manifest (`addons/metrics-server.yaml`).
    MetricsServer,
}

impl Addon {
    /// Every add-on.
    pub const ALL: [Addon; 1] = [Addon::MetricsServer];

    /// Its name in descriptions (`metrics-server`).
    pub fn name(self) -> &'static str {
        match self {
            Addon::MetricsServer => "metrics-server",
        }
    }

    /// The add-ons a kubepki description gets when it names none: every one.
    pub fn defaults() -> Vec<Addon> {
        Addon::ALL.to_vec()
    }
}

/// What a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// kube-apiserver, etcd, scheduler, controller-manager, and a kubelet.
    ControlPlane,
    /// A kubelet and kube-proxy.
    Worker,
}

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// The node name (RFC 1123 subdomain), as the kubelet registers it.
    pub name: String,
    /// Control plane or worker.
    pub role: Role,
    /// The node's addresses; the first is the one others dial (and a control plane's
    /// advertise address).
    pub addresses: Vec<IpAddr>,
    /// Extra DNS names the node answers to.
    pub dns_names: Vec<String>,
}

impl fmt::Display for Node {
    /// `w1 (worker, 10.0.1.1, fd00::11, w1.example.com)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.role == Role::ControlPlane { "control-plane" } else { "worker" };
        write!(f, "{} ({role}", self.name)?;
        for a in &self.addresses {
            write!(f, ", {a}")?;
        }
        for d in &self.dns_names {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

impl Node {
    /// The address others dial: the first one.
    pub fn address(&self) -> IpAddr {
        self.addresses[0]
    }
}

/// An `host:port` a client dials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The host: an IP or a DNS name.
    pub host: San,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// `https://host:port`, with brackets around an IPv6 address.
    pub fn url(&self) -> String {
        match &self.host {
            San::Ip(IpAddr::V6(ip)) => format!("https://[{ip}]:{}", self.port),
            San::Ip(ip) => format!("https://{ip}:{}", self.port),
            San::Dns(d) => format!("https://{d}:{}", self.port),
        }
    }

    /// Parse `host`, `host:port` or `[v6]:port`.
    pub fn parse(text: &str) -> std::result::Result<Endpoint, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| format!("'{text}': missing ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(format!("'{text}': unexpected '{after}' after ']'")),
            }
        } else if text.matches(':').count() > 1 {
            (text, None) // a bare IPv6 address
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        let port = match port {
            None => DEFAULT_APISERVER_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("'{text}': port '{p}' is not a number from 1 to 65535")),
            },
        };
        if host.is_empty() {
            return Err(format!("'{text}': no host"));
        }
        Ok(Endpoint { host: San::parse(host)?, port })
    }
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parse `10.96.0.0/12` or `fd00::/108`.
    pub fn parse(text: &str) -> std::result::Result<Cidr, String> {
        let bad = || format!("'{text}' is not a CIDR (like 10.96.0.0/12)");
        let (a, p) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("'{text}': prefix /{prefix} is longer than /{max}"));
        }
        Ok(Cidr { addr, prefix })
    }

    /// The first usable address (network + 1): the `kubernetes` service IP.
    pub fn first_host(&self) -> std::result::Result<IpAddr, String> {
        let host_bits = if self.addr.is_ipv4() { 32 } else { 128 } - u32::from(self.prefix);
        if host_bits < 2 {
            return Err(format!("{self} is too small to hold the kubernetes service IP"));
        }
        Ok(match self.addr {
            IpAddr::V4(a) => {
                let mask = if host_bits == 32 { 0 } else { u32::MAX << host_bits };
                IpAddr::V4(((u32::from(a) & mask) + 1).into())
            }
            IpAddr::V6(a) => {
                let mask = if host_bits == 128 { 0 } else { u128::MAX << host_bits };
                IpAddr::V6(((u128::from(a) & mask) + 1).into())
            }
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// Validity periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validity {
    /// CA certificates (default 3650 days).
    #[serde(with = "duration_text")]
    pub ca: time::Duration,
    /// Leaf certificates (default 365 days).
    #[serde(with = "duration_text")]
    pub leaf: time::Duration,
}

impl Default for Validity {
    fn default() -> Self {
        Validity { ca: DAY * 3650, leaf: DAY * 365 }
    }
}

/// The resolved, validated description of a cluster: what every command acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Where it came from (a path, or `<built-in default>`).
    #[serde(skip)]
    pub source: PathBuf,
    /// `clusterName` (kubeadm default `kubernetes`): the cluster's name in kubeconfigs.
    pub cluster_name: String,
    /// Where clients outside the control plane dial the apiserver.
    pub control_plane_endpoint: Endpoint,
    /// The port each apiserver listens on (the "local endpoint").
    pub api_server_port: u16,
    /// Service subnets; the first address of the first is the `kubernetes` service IP.
    pub service_subnets: Vec<Cidr>,
    /// The cluster DNS domain (`cluster.local`).
    pub dns_domain: String,
    /// Extra SANs on every apiserver certificate.
    #[serde(rename = "apiServerCertSANs")]
    pub api_server_cert_sans: Vec<San>,
    /// Extra SANs on every etcd server certificate.
    #[serde(rename = "etcdServerCertSANs")]
    pub etcd_server_cert_sans: Vec<San>,
    /// Extra SANs on every etcd peer certificate.
    #[serde(rename = "etcdPeerCertSANs")]
    pub etcd_peer_cert_sans: Vec<San>,
    /// Extra SANs of one server certificate (`san add`): its entry id (`apiserver@cp1`,
    /// `etcd-server@cp1`, `etcd-peer@cp1`, `kubelet-serving@w1`) → SANs.
    #[serde(rename = "certSANs")]
    pub cert_sans: std::collections::BTreeMap<String, Vec<San>>,
    /// The algorithm of every key kubepki makes.
    pub key_algorithm: KeyAlgorithm,
    /// Validity of CAs and leaves.
    pub validity: Validity,
    /// One CA or kubeadm's three.
    pub ca_layout: CaLayout,
    /// The add-ons kubepki makes the certificates and wiring of (a description that names none
    /// gets every one; kubeadm's configuration, a tree read back without their files, and a
    /// description recorded before add-ons existed get none).
    pub addons: Vec<Addon>,
    /// The nodes, control planes first in the order written, then workers.
    pub nodes: Vec<Node>,
    /// Private: a `ClusterSpec` is only ever made by validating a description
    /// ([`ClusterSpec::from_yaml`], [`ClusterSpec::from_json`], [`SpecFile::resolve`]).
    #[serde(skip)]
    validated: Validated,
}

/// The proof that a description was validated: only this module can make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Validated;

impl ClusterSpec {
    /// The built-in default cluster: control plane `controlplane` at 127.0.0.1, workers
    /// `node01` at 127.0.0.2 and `node02` at 127.0.0.3 (all loopback, so it can be run live).
    pub fn builtin_default() -> ClusterSpec {
        let file = SpecFile {
            nodes: vec![
                NodeFile::new("controlplane", Role::ControlPlane, "127.0.0.1"),
                NodeFile::new("node01", Role::Worker, "127.0.0.2"),
                NodeFile::new("node02", Role::Worker, "127.0.0.3"),
            ],
            ..SpecFile::default()
        };
        file.resolve(Path::new("<built-in default>")).expect("the built-in default is valid")
    }

    /// Read a description file: kubepki's own format, or kubeadm's configuration
    /// (recognised by `apiVersion: kubeadm.k8s.io/...`).
    ///
    /// A description given this way is also held to what `san add` may record: each `certSANs`
    /// SAN an address of one host, and none another party's (a recorded description is read
    /// as it is, so that a tree recorded before is never locked out: `verify` reports it).
    pub fn load(path: &Path) -> Result<ClusterSpec> {
        let text = crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Document)?;
        let spec = ClusterSpec::from_yaml(&text, path)?;
        spec.check_cert_sans_are_own()?;
        Ok(spec)
    }

    /// Every `certSANs` SAN by the rules `san add` refuses by ([`check_own_san`],
    /// [`crate::model::catalog::Catalog::sans_of_others`]); errors name `certSANs.<id>[i]`.
    fn check_cert_sans_are_own(&self) -> Result<()> {
        if self.cert_sans.is_empty() {
            return Ok(());
        }
        let r = Resolver { file: &self.source };
        let catalog = crate::model::catalog::Catalog::build(self);
        for (id, sans) in &self.cert_sans {
            let entry: crate::model::catalog::EntryId =
                id.parse().map_err(|p: String| r.err(format!("certSANs.{id}"), p))?;
            let built_in = catalog.built_in_sans(self, id);
            let others = catalog.sans_of_others(&entry, &built_in, sans);
            for (i, s) in sans.iter().enumerate() {
                let field = format!("certSANs.{id}[{i}]");
                check_own_san(entry.name(), s).map_err(|p| r.err(&field, p))?;
                if let Some((_, other)) = others.iter().find(|(o, _)| o == s) {
                    return Err(r.err(field, format!("{s} is {other}'s: another party of the cluster")));
                }
            }
        }
        Ok(())
    }

    /// Read a description given as JSON (kubepki's own format); `source` names it in errors.
    pub fn from_json(value: serde_json::Value, source: &Path) -> Result<ClusterSpec> {
        let file: SpecFile = serde_json::from_value(value).map_err(|e| Error::Spec {
            file: source.to_path_buf(),
            field: "document".into(),
            problem: e.to_string(),
        })?;
        file.resolve(source)
    }

    /// Parse a description from text; `path` is used in error messages.
    pub fn from_yaml(text: &str, path: &Path) -> Result<ClusterSpec> {
        if kubeadm::is_kubeadm_config(text) {
            return kubeadm::read(text, path);
        }
        let file: SpecFile = serde_yaml_ng::from_str(text).map_err(|e| Error::Spec {
            file: path.to_path_buf(),
            field: e.location().map_or("document".into(), |l| format!("line {}", l.line())),
            problem: e.to_string(),
        })?;
        file.resolve(path)
    }

    /// How `other` differs from this description, one line per difference (empty: the same
    /// cluster, wherever each was read from).
    pub fn differences(&self, other: &ClusterSpec) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: {a} -> {b}"));
            }
        };
        let sans = |v: &[San]| format!("[{}]", v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "));
        field("clusterName", self.cluster_name.clone(), other.cluster_name.clone());
        field("controlPlaneEndpoint", self.control_plane_endpoint.url(), other.control_plane_endpoint.url());
        field("apiServerPort", self.api_server_port.to_string(), other.api_server_port.to_string());
        let subnets = |v: &[Cidr]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
        field("serviceSubnet", subnets(&self.service_subnets), subnets(&other.service_subnets));
        field("dnsDomain", self.dns_domain.clone(), other.dns_domain.clone());
        field("apiServerCertSANs", sans(&self.api_server_cert_sans), sans(&other.api_server_cert_sans));
        field("etcd.serverCertSANs", sans(&self.etcd_server_cert_sans), sans(&other.etcd_server_cert_sans));
        field("etcd.peerCertSANs", sans(&self.etcd_peer_cert_sans), sans(&other.etcd_peer_cert_sans));
        for id in self.cert_sans.keys().chain(other.cert_sans.keys()).collect::<std::collections::BTreeSet<_>>() {
            let of = |s: &ClusterSpec| sans(s.cert_sans.get(id).map_or(&[][..], |v| v.as_slice()));
            field(&format!("certSANs.{id}"), of(self), of(other));
        }
        field("keyAlgorithm", self.key_algorithm.name().into(), other.key_algorithm.name().into());
        let days = |d: time::Duration| duration_text::format(d);
        field("validity.ca", days(self.validity.ca), days(other.validity.ca));
        field("validity.leaf", days(self.validity.leaf), days(other.validity.leaf));
        field("caLayout", format!("{:?}", self.ca_layout), format!("{:?}", other.ca_layout));
        let addons = |v: &[Addon]| format!("[{}]", v.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "));
        field("addons", addons(&self.addons), addons(&other.addons));
        for n in &self.nodes {
            match other.nodes.iter().find(|o| o.name == n.name) {
                None => out.push(format!("nodes: {} removed", n.name)),
                Some(o) if o != n => out.push(format!("nodes: {} changed ({n} -> {o})", n.name)),
                Some(_) => {}
            }
        }
        for o in other.nodes.iter().filter(|o| !self.nodes.iter().any(|n| n.name == o.name)) {
            out.push(format!("nodes: {o} added"));
        }
        out
    }

    /// Whether the cluster has this add-on.
    pub fn has(&self, addon: Addon) -> bool {
        self.addons.contains(&addon)
    }

    /// The control-plane nodes, in order.
    pub fn control_planes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::ControlPlane)
    }

    /// The first control-plane node: its files are the top level of the tree (kubeadm's
    /// `/etc/kubernetes` of the node where `kubeadm init` ran).
    pub fn primary(&self) -> &Node {
        self.control_planes().next().expect("validated: at least one control plane")
    }

    /// The IP of the `kubernetes` service (first address of the first service subnet).
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        self.service_subnets[0].first_host().expect("validated")
    }

    /// `https://<advertise address>:<port>`: how a control plane's own components dial it.
    pub fn local_endpoint(&self, node: &Node) -> Endpoint {
        Endpoint { host: San::Ip(node.address()), port: self.api_server_port }
    }

    /// The cluster with one more node (`node add`), checked exactly as a node of a description
    /// is (name, addresses, DNS names, duplicates, the number of nodes); errors name the
    /// command line's arguments (`node add: --ip: ...`).
    pub fn with_node(&self, n: &NewNode) -> Result<ClusterSpec> {
        let r = Resolver { file: Path::new("node add") };
        let mut seen = Seen::default();
        for node in &self.nodes {
            seen.push(node.clone());
        }
        let file = NodeFile {
            name: n.name.clone(),
            role: n.role,
            addresses: n.addresses.clone(),
            dns_names: n.dns_names.clone(),
        };
        check_node(&r, &mut seen, NodeFields::CommandLine, file)?;
        let mut out = self.clone();
        out.nodes = seen.nodes;
        out.nodes.sort_by_key(|x| x.role != Role::ControlPlane); // stable: control planes first
        Ok(out)
    }
}

/// A node to add to a cluster, as given on the command line.
#[derive(Clone, Debug)]
pub struct NewNode {
    /// Its name.
    pub name: String,
    /// Control plane or worker.
    pub role: Role,
    /// Its addresses (at least one).
    pub addresses: Vec<String>,
    /// Extra DNS names.
    pub dns_names: Vec<String>,
}

/// The kubepki description file as typed. Every field is optional; see [`ClusterSpec`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecFile {
    cluster_name: Option<String>,
    control_plane_endpoint: Option<String>,
    api_server_port: Option<i64>,
    service_subnet: Option<String>,
    dns_domain: Option<String>,
    #[serde(rename = "apiServerCertSANs")]
    api_server_cert_sans: Option<Vec<String>>,
    #[serde(rename = "certSANs")]
    cert_sans: Option<std::collections::BTreeMap<String, Vec<String>>>,
    etcd: Option<EtcdFile>,
    key_algorithm: Option<String>,
    validity: Option<ValidityFile>,
    ca_layout: Option<String>,
    addons: Option<Vec<String>>,
    #[serde(default)]
    nodes: Vec<NodeFile>,
    #[serde(default)]
    node_pools: Vec<pools::NodePoolFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EtcdFile {
    #[serde(rename = "serverCertSANs")]
    server_cert_sans: Option<Vec<String>>,
    #[serde(rename = "peerCertSANs")]
    peer_cert_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidityFile {
    ca: Option<String>,
    leaf: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeFile {
    name: String,
    role: Role,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    dns_names: Vec<String>,
}

impl NodeFile {
    fn new(name: &str, role: Role, address: &str) -> NodeFile {
        NodeFile { name: name.into(), role, addresses: vec![address.into()], dns_names: vec![] }
    }
}

/// Collects the field path for errors while resolving.
struct Resolver<'a> {
    file: &'a Path,
}

impl Resolver<'_> {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Spec { file: self.file.to_path_buf(), field: field.into(), problem: problem.into() }
    }

    fn sans(&self, field: &str, list: Option<Vec<String>>) -> Result<Vec<San>> {
        let mut out = Vec::new();
        for (i, s) in list.unwrap_or_default().iter().enumerate() {
            out.push(San::parse(s).map_err(|p| self.err(format!("{field}[{i}]"), p))?);
        }
        Ok(out)
    }
}

impl SpecFile {
    /// Validate and resolve defaults; `file` names the source in errors.
    pub fn resolve(self, file: &Path) -> Result<ClusterSpec> {
        let r = Resolver { file };
        let cluster_name = self.cluster_name.unwrap_or_else(|| DEFAULT_CLUSTER_NAME.into());
        check_name(&r, "clusterName", &cluster_name)?;
        let api_server_port = match self.api_server_port {
            None => DEFAULT_APISERVER_PORT,
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => return Err(r.err("apiServerPort", format!("{p} is not a port (1 to 65535)"))),
        };
        let service_subnets = parse_subnets(&r, self.service_subnet.as_deref())?;
        let dns_domain = self.dns_domain.unwrap_or_else(|| DEFAULT_DNS_DOMAIN.into());
        if !is_dns1123_subdomain(&dns_domain) {
            return Err(r.err("dnsDomain", format!("'{dns_domain}' is not a valid DNS domain")));
        }
        let etcd = self.etcd.unwrap_or_default();
        let key_algorithm = match self.key_algorithm {
            None => KeyAlgorithm::default(),
            Some(a) => KeyAlgorithm::parse(&a).map_err(|p| r.err("keyAlgorithm", p))?,
        };
        let validity = resolve_validity(&r, self.validity.unwrap_or_default())?;
        let ca_layout = match self.ca_layout.as_deref() {
            None | Some("kubeadm") => CaLayout::Kubeadm,
            Some("single") => CaLayout::Single,
            Some(other) => return Err(r.err("caLayout", format!("'{other}' is not 'kubeadm' or 'single'"))),
        };
        let addons = resolve_addons(&r, self.addons)?;
        let nodes = resolve_nodes(&r, self.nodes, self.node_pools)?;
        let primary = nodes[0].address();
        let control_plane_endpoint = match self.control_plane_endpoint {
            None => Endpoint { host: San::Ip(primary), port: api_server_port },
            Some(e) => Endpoint::parse(&e).map_err(|p| r.err("controlPlaneEndpoint", p))?,
        };
        Ok(ClusterSpec {
            source: file.to_path_buf(),
            cluster_name,
            control_plane_endpoint,
            api_server_port,
            service_subnets,
            dns_domain,
            api_server_cert_sans: r.sans("apiServerCertSANs", self.api_server_cert_sans)?,
            etcd_server_cert_sans: r.sans("etcd.serverCertSANs", etcd.server_cert_sans)?,
            etcd_peer_cert_sans: r.sans("etcd.peerCertSANs", etcd.peer_cert_sans)?,
            cert_sans: resolve_cert_sans(&r, self.cert_sans.unwrap_or_default(), &nodes)?,
            key_algorithm,
            validity,
            ca_layout,
            addons,
            nodes,
            validated: Validated,
        })
    }
}

/// `addons`: absent, every add-on; each named once.
fn resolve_addons(r: &Resolver, names: Option<Vec<String>>) -> Result<Vec<Addon>> {
    let Some(names) = names else { return Ok(Addon::defaults()) };
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("addons[{i}]");
        let addon = Addon::ALL.into_iter().find(|a| a.name() == name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Addon::ALL.iter().map(|a| a.name()).collect();
            r.err(&field, format!("{name:?} is not an add-on kubepki knows ({})", known.join(", ")))
        })?;
        if out.contains(&addon) {
            return Err(r.err(field, format!("{} is named twice", addon.name())));
        }
        out.push(addon);
    }
    out.sort();
    Ok(out)
}

/// `certSANs`: each key a server certificate of a node of the cluster, each value its SANs.
fn resolve_cert_sans(
    r: &Resolver,
    map: std::collections::BTreeMap<String, Vec<String>>,
    nodes: &[Node],
) -> Result<std::collections::BTreeMap<String, Vec<San>>> {
    let mut out = std::collections::BTreeMap::new();
    for (id, sans) in map {
        let field = format!("certSANs.{id}");
        check_cert_sans_entry(&id, nodes).map_err(|p| r.err(&field, p))?;
        let sans = r.sans(&field, Some(sans))?;
        if !sans.is_empty() {
            out.insert(id, sans);
        }
    }
    Ok(out)
}

/// Whether certificate `id` (`apiserver@cp1`) may have SANs of its own (`certSANs`, what
/// `san add` records): a server certificate of a node of the cluster (`apiserver`,
/// `etcd-server`, `etcd-peer` of a control plane; `kubelet-serving` of any node). The one rule
/// of the description's `certSANs` and of `san add`; the problem, for the caller to place.
pub fn check_cert_sans_entry(id: &str, nodes: &[Node]) -> std::result::Result<(), String> {
    use crate::model::vocabulary::entry;
    let (name, node) = id.split_once('@').unwrap_or((id, ""));
    let control_plane_only = [entry::APISERVER, entry::ETCD_SERVER, entry::ETCD_PEER].contains(&name);
    if !has_own_sans(name) {
        return Err(format!(
            "{id} is not a server certificate of a node (apiserver, etcd-server, etcd-peer, kubelet-serving): only those have SANs of their own"
        ));
    }
    match nodes.iter().find(|n| n.name == node) {
        None => Err(format!("no node '{node}' in this cluster")),
        Some(n) if control_plane_only && n.role != Role::ControlPlane => {
            Err(format!("'{node}' is not a control plane"))
        }
        Some(_) => Ok(()),
    }
}

/// Whether certificates of this catalog name (`kubelet-serving`) are server certificates of a
/// node, the ones that have SANs of their own (see [`check_cert_sans_entry`]).
pub fn has_own_sans(name: &str) -> bool {
    use crate::model::vocabulary::entry;
    [entry::APISERVER, entry::ETCD_SERVER, entry::ETCD_PEER, entry::KUBELET_SERVING].contains(&name)
}

/// A SAN `san add` gives one server certificate, held to the rules of a node's own addresses
/// and names: an address of one host (not `0.0.0.0`, `::`, multicast, broadcast, IPv4 written
/// as IPv6); a kubelet's DNS names are its own, one by one (no wildcard); another server's
/// wildcard covers the names of one domain of at least two labels (`*.example.com`, not
/// `*.com`: that is every name of a top-level domain).
pub fn check_own_san(entry_name: &str, san: &San) -> std::result::Result<(), String> {
    match san {
        San::Ip(ip) => check_one_host(*ip, "a SAN of one server"),
        San::Dns(d) if entry_name == crate::model::vocabulary::entry::KUBELET_SERVING => check_node_dns_name(d),
        San::Dns(d) => match d.strip_prefix("*.") {
            Some(domain) if domain.split('.').filter(|l| !l.is_empty()).count() < 2 => {
                Err(format!("'{d}' is a wildcard over a whole top-level domain: name a domain of your own"))
            }
            _ => Ok(()),
        },
    }
}

/// Names that end up as YAML scalars and in certificates: printable, no control characters.
fn check_name(r: &Resolver, field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 253 || name.chars().any(|c| c.is_control()) {
        return Err(r.err(field, format!("{name:?} must be 1 to 253 printable characters")));
    }
    Ok(())
}

fn parse_subnets(r: &Resolver, text: Option<&str>) -> Result<Vec<Cidr>> {
    let text = text.unwrap_or(DEFAULT_SERVICE_SUBNET);
    let mut out = Vec::new();
    for part in text.split(',') {
        let cidr = Cidr::parse(part).map_err(|p| r.err("serviceSubnet", p))?;
        let first = cidr.first_host().map_err(|p| r.err("serviceSubnet", p))?;
        if cidr.addr.is_multicast() || first.is_multicast() {
            return Err(r.err("serviceSubnet", format!("{cidr} is not a unicast range for services")));
        }
        if let IpAddr::V6(v6) = first {
            if v6.to_ipv4_mapped().is_some() {
                return Err(r.err("serviceSubnet", format!("{cidr} is IPv4 written as IPv6: write it as IPv4")));
            }
        }
        out.push(cidr);
    }
    if out.len() > 2 || (out.len() == 2 && out[0].addr.is_ipv4() == out[1].addr.is_ipv4()) {
        return Err(r.err("serviceSubnet", "at most one IPv4 and one IPv6 subnet (dual stack)"));
    }
    Ok(out)
}

fn resolve_validity(r: &Resolver, v: ValidityFile) -> Result<Validity> {
    let d = Validity::default();
    let parse = |field: &str, t: Option<String>, default| match t {
        None => Ok(default),
        Some(t) => duration_text::parse(&t).map_err(|p| r.err(field, p)),
    };
    let validity = Validity { ca: parse("validity.ca", v.ca, d.ca)?, leaf: parse("validity.leaf", v.leaf, d.leaf)? };
    if validity.leaf > validity.ca {
        return Err(r.err("validity.leaf", "a leaf cannot be valid longer than its CA"));
    }
    Ok(validity)
}

fn resolve_nodes(r: &Resolver, nodes: Vec<NodeFile>, pools: Vec<pools::NodePoolFile>) -> Result<Vec<Node>> {
    let mut seen = Seen::default();
    for (i, n) in nodes.into_iter().enumerate() {
        explicit_node(r, &mut seen, i, n)?;
    }
    for (i, pool) in pools.into_iter().enumerate() {
        node_pool(r, &mut seen, i, pool)?;
    }
    let mut out = seen.nodes;
    if out.is_empty() {
        return Err(r.err("nodes", "the cluster needs at least one node with role: control-plane (none given)"));
    }
    if !out.iter().any(|n| n.role == Role::ControlPlane) {
        return Err(r.err("nodes", "the cluster needs at least one node with role: control-plane"));
    }
    out.sort_by_key(|n| n.role != Role::ControlPlane); // stable: control planes first
    Ok(out)
}

/// The nodes so far, with their names and addresses for finding duplicates.
#[derive(Default)]
struct Seen {
    nodes: Vec<Node>,
    names: BTreeSet<String>,
    /// Address → index of the node that has it.
    addresses: BTreeMap<IpAddr, usize>,
}

impl Seen {
    /// The node already using `ip`, if any.
    fn address_owner(&self, ip: &IpAddr) -> Option<&str> {
        self.addresses.get(ip).map(|&i| self.nodes[i].name.as_str())
    }

    fn push(&mut self, node: Node) {
        let index = self.nodes.len();
        for ip in &node.addresses {
            self.addresses.insert(*ip, index);
        }
        self.names.insert(node.name.clone());
        self.nodes.push(node);
    }
}

/// Where a node's fields come from, to name them in errors.
#[derive(Clone, Copy)]
enum NodeFields {
    /// `nodes[i]` of a description.
    Description(usize),
    /// `node add NAME --ip ... --dns ...`.
    CommandLine,
}

impl NodeFields {
    fn node(self) -> String {
        match self {
            NodeFields::Description(i) => format!("nodes[{i}]"),
            NodeFields::CommandLine => "NAME".into(),
        }
    }

    fn name(self) -> String {
        match self {
            NodeFields::Description(i) => format!("nodes[{i}].name"),
            NodeFields::CommandLine => "NAME".into(),
        }
    }

    fn addresses(self) -> String {
        match self {
            NodeFields::Description(i) => format!("nodes[{i}].addresses"),
            NodeFields::CommandLine => "--ip".into(),
        }
    }

    fn address(self, j: usize) -> String {
        match self {
            NodeFields::Description(i) => format!("nodes[{i}].addresses[{j}]"),
            NodeFields::CommandLine => "--ip".into(),
        }
    }

    fn dns_name(self, j: usize) -> String {
        match self {
            NodeFields::Description(i) => format!("nodes[{i}].dnsNames[{j}]"),
            NodeFields::CommandLine => "--dns".into(),
        }
    }
}

fn explicit_node(r: &Resolver, seen: &mut Seen, i: usize, n: NodeFile) -> Result<()> {
    check_node(r, seen, NodeFields::Description(i), n)
}

/// The one check of a node given by name (a description's `nodes`, or `node add`).
fn check_node(r: &Resolver, seen: &mut Seen, fields: NodeFields, n: NodeFile) -> Result<()> {
    if let Some(why) = dns1123_subdomain_problem(&n.name) {
        return Err(r.err(fields.name(), format!("'{}' is not a valid node name: {why} ({NODE_NAME_RULE})", n.name)));
    }
    if seen.names.contains(&n.name) {
        return Err(r.err(fields.name(), format!("duplicate node name '{}'", n.name)));
    }
    if n.addresses.is_empty() {
        return Err(r.err(fields.addresses(), "a node needs at least one IP address"));
    }
    let mut ips = Vec::new();
    for (j, a) in n.addresses.iter().enumerate() {
        let field = fields.address(j);
        let ip: IpAddr = a.trim().parse().map_err(|_| r.err(&field, format!("'{a}' is not an IP address")))?;
        check_address(ip).map_err(|p| r.err(&field, p))?;
        if let Some(owner) = seen.address_owner(&ip).or_else(|| ips.contains(&ip).then_some(n.name.as_str())) {
            return Err(r.err(field, format!("address {ip} is used by another node ('{owner}')")));
        }
        ips.push(ip);
    }
    let mut dns = Vec::new();
    for (j, d) in n.dns_names.iter().enumerate() {
        check_node_dns_name(d).map_err(|p| r.err(fields.dns_name(j), p))?;
        dns.push(d.to_ascii_lowercase());
    }
    check_total(r, seen, &fields.node())?;
    seen.push(Node { name: n.name, role: n.role, addresses: ips, dns_names: dns });
    Ok(())
}

/// A node's own DNS name: a valid name, and not a wildcard (a kubelet answers for itself only).
fn check_node_dns_name(d: &str) -> std::result::Result<(), String> {
    if d.contains('*') {
        return Err(format!("'{d}' is a wildcard: a node's DNS names are its own, one by one"));
    }
    if !is_san_dns_name(d) {
        return Err(format!("'{d}' is not a valid DNS name"));
    }
    Ok(())
}

/// Expand a pool into nodes, checking every generated name and address.
fn node_pool(r: &Resolver, seen: &mut Seen, i: usize, pool: pools::NodePoolFile) -> Result<()> {
    let field = |f: &str| format!("nodePools[{i}].{f}");
    let pattern = pools::Pattern::parse(&pool.name_pattern, false).map_err(|p| r.err(field("namePattern"), p))?;
    let count = match usize::try_from(pool.count) {
        Ok(c) if c <= MAX_NODES => c,
        _ => return Err(r.err(field("count"), format!("{} is not a node count (0 to {MAX_NODES})", pool.count))),
    };
    if count > 1 && !pattern.has_index() {
        return Err(r.err(
            field("namePattern"),
            format!("'{}' has no {{index}}, so the {count} nodes would share one name", pool.name_pattern),
        ));
    }
    let first_index = u64::try_from(pool.first_index)
        .map_err(|_| r.err(field("firstIndex"), format!("{} is negative", pool.first_index)))?;
    let mut firsts = Vec::new();
    let items = pool.first_address.items();
    if items.is_empty() {
        return Err(r.err(field("firstAddress"), "a pool needs at least one first address"));
    }
    for (suffix, a) in items {
        let f = field(&format!("firstAddress{suffix}"));
        let ip: IpAddr = a.trim().parse().map_err(|_| r.err(&f, format!("'{a}' is not an IP address")))?;
        check_address(ip).map_err(|p| r.err(&f, p))?;
        if count > 0 && pools::nth_address(ip, count as u64 - 1).is_none() {
            return Err(
                r.err(field("count"), format!("{count} consecutive addresses from {ip} run past the last address"))
            );
        }
        firsts.push((f, ip));
    }
    let dns_patterns = pool
        .dns_names
        .iter()
        .enumerate()
        .map(|(j, d)| pools::Pattern::parse(d, true).map_err(|p| r.err(field(&format!("dnsNames[{j}]")), p)))
        .collect::<Result<Vec<_>>>()?;
    if seen.nodes.len() + count > MAX_NODES {
        return Err(r.err(field("count"), format!("the description would have more than {MAX_NODES} nodes")));
    }
    for k in 0..count as u64 {
        let index = first_index + k;
        let name = pattern.render(index, "");
        if let Some(why) = dns1123_subdomain_problem(&name) {
            return Err(r.err(
                field("namePattern"),
                format!("'{name}' (index {index}) is not a valid node name: {why} ({NODE_NAME_RULE})"),
            ));
        }
        if seen.names.contains(&name) {
            return Err(r.err(field("namePattern"), format!("duplicate node name '{name}' (index {index})")));
        }
        let mut addresses = Vec::with_capacity(firsts.len());
        for (f, first) in &firsts {
            let ip = pools::nth_address(*first, k).expect("the range was checked");
            check_address(ip).map_err(|p| r.err(field("count"), format!("node '{name}' (index {index}): {p}")))?;
            if let Some(owner) = seen.address_owner(&ip).or_else(|| addresses.contains(&ip).then_some(name.as_str())) {
                return Err(r.err(f, format!("address {ip} of '{name}' is used by another node ('{owner}')")));
            }
            addresses.push(ip);
        }
        let mut dns_names = Vec::with_capacity(dns_patterns.len());
        for (j, p) in dns_patterns.iter().enumerate() {
            let d = p.render(index, &name).to_ascii_lowercase();
            check_node_dns_name(&d)
                .map_err(|p| r.err(field(&format!("dnsNames[{j}]")), format!("{p} (for '{name}')")))?;
            dns_names.push(d);
        }
        seen.push(Node { name, role: pool.role, addresses, dns_names });
    }
    Ok(())
}

const NODE_NAME_RULE: &str = "lowercase RFC 1123: labels of 1 to 63 of a-z, 0-9, '-', joined by '.'";

/// An address a node can have: one host, written one way. Not the unspecified address
/// (`0.0.0.0`, `::`: every host), multicast, or the broadcast address; not an IPv4 address
/// written as IPv6 (`::ffff:10.0.0.1` is 10.0.0.1, which would then be two nodes' address).
fn check_address(ip: IpAddr) -> std::result::Result<(), String> {
    check_one_host(ip, "a node address")
}

/// [`check_address`], for an address that is to be `what` (`a node address`).
fn check_one_host(ip: IpAddr, what: &str) -> std::result::Result<(), String> {
    let why = match ip {
        _ if ip.is_unspecified() => "the unspecified address (every host)",
        _ if ip.is_multicast() => "a multicast address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the broadcast address",
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            return Err(format!(
                "{ip} is an IPv4 address written as IPv6: write {}",
                v6.to_ipv4_mapped().expect("mapped")
            ))
        }
        _ => return Ok(()),
    };
    Err(format!("{ip} is {why}: it cannot be {what}"))
}

fn check_total(r: &Resolver, seen: &Seen, field: &str) -> Result<()> {
    if seen.nodes.len() >= MAX_NODES {
        return Err(r.err(field, format!("the description would have more than {MAX_NODES} nodes")));
    }
    Ok(())
}

/// Durations as text: Go's form (`8760h0m0s`, as kubeadm writes them) plus days (`365d`).
pub mod duration_text {
    use serde::Serializer;

    /// The longest validity kubepki accepts: 100 years. A certificate cannot outlive
    /// 9999-12-31 (RFC 5280), and no cluster needs a CA for longer than its people.
    pub const MAX: time::Duration = time::Duration::days(36_500);

    /// Parse `365d`, `8760h`, `8760h0m0s`, `90m`, `1d12h`: at least an hour, at most [`MAX`].
    pub fn parse(text: &str) -> Result<time::Duration, String> {
        let bad = || format!("'{text}' is not a duration (like 365d, 8760h or 8760h0m0s)");
        let too_long = || format!("'{text}' is longer than {} days (100 years)", MAX.whole_days());
        let mut total: i64 = 0;
        let mut number = String::new();
        let mut seen = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit: i64 = match c {
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            if number.is_empty() {
                return Err(bad());
            }
            let n: i64 = number.parse().map_err(|_| too_long())?;
            number.clear();
            total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(too_long)?;
            seen = true;
        }
        if !number.is_empty() || !seen {
            return Err(bad());
        }
        let total = time::Duration::seconds(total);
        if total < time::Duration::hours(1) {
            return Err(format!("'{text}' is shorter than one hour"));
        }
        if total > MAX {
            return Err(too_long());
        }
        Ok(total)
    }

    /// Format as days when whole, else hours.
    pub fn format(d: time::Duration) -> String {
        if d.whole_seconds() % 86_400 == 0 {
            format!("{}d", d.whole_days())
        } else {
            format!("{}h", d.whole_hours())
        }
    }

    pub(crate) fn serialize<S: Serializer>(d: &time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }
}

#[cfg(test)]
mod tests;
