//! The catalog: one entry per CA, certificate, key pair and kubeconfig of a cluster, with its
//! identity, usages, SANs, issuer, files and validity, and the reason for each oddity.
//!
//! This is data with no side effects. Every command (plan, init, check, verify, renew, ...)
//! walks it; nothing about a certificate is written down anywhere else. Entries come in an
//! order where every CA precedes what it signs.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::store::Mode;
use crate::model::spec::{Addon, CaLayout, ClusterSpec, Node, Role, San};
use crate::model::vocabulary::{
    layout, node_user, APISERVER_SERVICE_NAMES, CLUSTER_ADMINS, SYSTEM_MASTERS, SYSTEM_NODES,
};

pub use crate::model::vocabulary::entry::{CA, ETCD_CA, FRONT_PROXY_CA, SA};
use crate::model::vocabulary::{self, entry};

/// The id of a catalog entry: its kubeadm name (`apiserver`, `admin.conf`), and the node for
/// what each node has its own of (`apiserver@cp1`). Written `name` or `name@node`; read back
/// with [`str::parse`], which accepts only the catalog's names.
#[derive(Clone, Debug)]
pub struct EntryId {
    name: &'static str,
    node: Option<String>,
    /// `name` or `name@node`, kept so that an id is a `&str` without allocating.
    text: String,
}

impl EntryId {
    /// A shared entry's id.
    pub fn shared(name: &'static str) -> EntryId {
        EntryId { name, node: None, text: name.to_string() }
    }

    /// The id of a node's own entry.
    pub fn of_node(name: &'static str, node: &str) -> EntryId {
        EntryId { name, node: Some(node.to_string()), text: format!("{name}@{node}") }
    }

    /// The kubeadm name, shared by every node's copy.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The node it belongs to, if it is per node.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// `name` or `name@node`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<EntryId, String> {
        let (name, node) = match s.split_once('@') {
            Some((n, node)) => (n, Some(node)),
            None => (s, None),
        };
        let name = vocabulary::entry::ALL.into_iter().find(|n| *n == name).ok_or_else(|| {
            format!("'{name}' is not a catalog name; names are: {}", vocabulary::entry::ALL.join(", "))
        })?;
        match node {
            None => Ok(EntryId::shared(name)),
            Some(n) if crate::model::spec::is_dns1123_subdomain(n) => Ok(EntryId::of_node(name, n)),
            Some(n) => Err(format!("'{n}' is not a node name")),
        }
    }
}

impl std::ops::Deref for EntryId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::borrow::Borrow<str> for EntryId {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for EntryId {
    fn eq(&self, other: &EntryId) -> bool {
        self.text == other.text
    }
}

impl Eq for EntryId {}

impl std::hash::Hash for EntryId {
    /// As its text, so that maps keyed by ids can be asked with a `&str`.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.text.hash(h)
    }
}

impl PartialOrd for EntryId {
    fn partial_cmp(&self, other: &EntryId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntryId {
    fn cmp(&self, other: &EntryId) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl PartialEq<str> for EntryId {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for EntryId {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl PartialEq<String> for EntryId {
    fn eq(&self, other: &String) -> bool {
        &self.text == other
    }
}

impl Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

pub use crate::x509::usage::{ExtKeyUsage, KeyUsage};

/// The Kubernetes identity of a certificate: user = CN, groups = O.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// Common name (the user).
    pub cn: String,
    /// Organizations (the groups).
    pub orgs: Vec<String>,
}

/// Where a certificate and its key live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Store {
    /// PEM files.
    Files {
        /// The certificate (0644).
        cert: PathBuf,
        /// The private key (0600).
        key: PathBuf,
    },
    /// Embedded in a kubeconfig (0600), next to the CA data and the server URL.
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The cluster's name in the file.
        cluster: String,
        /// The server URL.
        server: String,
        /// The CA entry whose certificate is embedded as `certificate-authority-data`.
        ca: EntryId,
    },
}

/// Everything needed to issue one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertProfile {
    /// CN and O.
    pub subject: Subject,
    /// BasicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Key usage.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usage (empty for CAs).
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// Subject alternative names, duplicates removed, in kubeadm's order.
    pub sans: Vec<San>,
    /// Lifetime.
    #[serde(with = "crate::model::spec::duration_text")]
    pub validity: time::Duration,
}

/// A leaf certificate: what it says, the CA that signs it, and where it and its key live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leaf {
    /// What it says.
    #[serde(flatten)]
    pub profile: CertProfile,
    /// The CA entry that signs it.
    pub issuer: EntryId,
    /// The files.
    pub store: Store,
}

/// Which nodes need a copy of an entry's files in their bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Only the node it belongs to.
    Node,
    /// Only the primary control plane (the break-glass credential is not spread around).
    Primary,
    /// Every control-plane node.
    ControlPlanes,
    /// Every control-plane node; workers get the certificate only (the cluster CA).
    ControlPlanesAndWorkerTrust,
    /// Every node.
    AllNodes,
}

/// What an entry is.
// Entries are built once per run and never moved around in bulk: boxing the profile would
// only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum EntryKind {
    /// A self-signed CA: its certificate and key in PEM files.
    Ca {
        /// What it says.
        #[serde(flatten)]
        profile: CertProfile,
        /// The certificate (0644).
        cert: PathBuf,
        /// The private key (0600).
        key: PathBuf,
    },
    /// A leaf (in PEM files, or a kubeconfig's client certificate), signed by a CA of the catalog.
    Leaf(Leaf),
    /// A bare key pair (the service-account signing key).
    KeyPair {
        /// The private key (0600).
        key: PathBuf,
        /// The PKIX public key (0644).
        public: PathBuf,
    },
}

/// One CA, certificate, key pair or kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Unique id: the kubeadm name, plus `@node` for what each node has its own of.
    pub id: EntryId,
    /// What it is.
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Which node bundles carry it.
    pub audience: Audience,
    /// The break-glass credential: the only entry that may carry `system:masters`.
    pub break_glass: bool,
    /// Set when kubeadm makes no such file (kubepki adds it): what kubeadm does instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeadm_instead: Option<&'static str>,
    /// What it is for, and why it is the way it is.
    pub why: &'static str,
}

impl Entry {
    /// The kubeadm name (`apiserver`, `admin.conf`), shared by the per-node copies.
    pub fn name(&self) -> &'static str {
        self.id.name()
    }

    /// The node it belongs to, if it is per node.
    pub fn node(&self) -> Option<&str> {
        self.id.node()
    }

    /// The certificate profile, unless this is a bare key pair.
    pub fn cert(&self) -> Option<&CertProfile> {
        match &self.kind {
            EntryKind::Ca { profile, .. } | EntryKind::Leaf(Leaf { profile, .. }) => Some(profile),
            EntryKind::KeyPair { .. } => None,
        }
    }

    /// The leaf, unless this is a CA or a bare key pair.
    pub fn leaf(&self) -> Option<&Leaf> {
        match &self.kind {
            EntryKind::Leaf(l) => Some(l),
            EntryKind::Ca { .. } | EntryKind::KeyPair { .. } => None,
        }
    }

    /// The CA entry that signs it (`None` for a self-signed CA or a key pair).
    pub fn issuer(&self) -> Option<&EntryId> {
        self.leaf().map(|l| &l.issuer)
    }

    /// A kubeconfig's cluster name and server URL.
    pub fn kubeconfig_server(&self) -> Option<(&str, &str)> {
        match self.leaf().map(|l| &l.store) {
            Some(Store::Kubeconfig { cluster, server, .. }) => Some((cluster, server)),
            _ => None,
        }
    }

    /// The file that holds its certificate and the one that holds its key (a kubeconfig holds
    /// both); `None` for a bare key pair.
    pub fn cert_and_key_files(&self) -> Option<(&Path, &Path)> {
        match &self.kind {
            EntryKind::Ca { cert, key, .. } | EntryKind::Leaf(Leaf { store: Store::Files { cert, key }, .. }) => {
                Some((cert, key))
            }
            EntryKind::Leaf(Leaf { store: Store::Kubeconfig { path, .. }, .. }) => Some((path, path)),
            EntryKind::KeyPair { .. } => None,
        }
    }

    /// Whether this is a CA.
    pub fn is_ca(&self) -> bool {
        matches!(self.kind, EntryKind::Ca { .. })
    }

    /// The private key that signs, for a CA or the service-account key pair (what a tree can
    /// never make again the same: every node trusts its public half); `None` for a leaf.
    pub fn signing_key(&self) -> Option<&Path> {
        match &self.kind {
            EntryKind::Ca { key, .. } | EntryKind::KeyPair { key, .. } => Some(key),
            EntryKind::Leaf(_) => None,
        }
    }

    /// The files this entry owns, relative to the tree's root, with their modes; the
    /// certificate (or public key) first.
    pub fn files(&self) -> Vec<(&Path, Mode)> {
        match &self.kind {
            EntryKind::Ca { cert, key, .. } | EntryKind::Leaf(Leaf { store: Store::Files { cert, key }, .. }) => {
                vec![(cert, Mode::Public), (key, Mode::Secret)]
            }
            EntryKind::Leaf(Leaf { store: Store::Kubeconfig { path, .. }, .. }) => vec![(path, Mode::Secret)],
            EntryKind::KeyPair { key, public } => vec![(public, Mode::Public), (key, Mode::Secret)],
        }
    }
}

/// Every entry of one cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// CAs first, then everything they sign.
    pub entries: Vec<Entry>,
    /// Id → position in `entries`.
    #[serde(skip)]
    index: HashMap<EntryId, usize>,
    /// Who has each SAN, made when first asked for (see [`parties`]).
    #[serde(skip)]
    owners: std::sync::OnceLock<parties::Owners>,
}

pub use crate::model::vocabulary::{ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT};

impl Catalog {
    /// The catalog of a cluster.
    pub fn build(spec: &ClusterSpec) -> Catalog {
        let mut b = Builder { spec, entries: Vec::new() };
        b.cas();
        b.shared_leaves();
        b.shared_kubeconfigs();
        if spec.has(Addon::MetricsServer) {
            b.metrics_server();
        }
        for node in &spec.nodes {
            if node.role == Role::ControlPlane {
                b.control_plane(node);
            }
            b.node(node);
        }
        let index = b.entries.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
        Catalog { entries: b.entries, index, owners: std::sync::OnceLock::new() }
    }

    /// The entry with this id (`apiserver@cp1`, `admin.conf`).
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.index.get(id).map(|i| &self.entries[*i])
    }

    /// The CAs.
    pub fn cas(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_ca())
    }

    /// The files of a node's bundle: `(home path, path in the bundle, mode)`; the two paths
    /// are the same for files whose home is the bundle. Workers get only the cluster CA's
    /// certificate, never a CA key. For many nodes, [`Catalog::bundles`].
    pub fn bundle(&self, spec: &ClusterSpec, node: &Node) -> Vec<(PathBuf, PathBuf, Mode)> {
        bundle_of(self.entries.iter(), spec, node)
    }

    /// Every node's bundle, from one pass over the catalog: a node's bundle is then worked out
    /// from its own entries and the shared ones, not from the whole catalog (which, for every
    /// node of a large cluster, would be quadratic).
    pub fn bundles(&self) -> Bundles<'_> {
        let mut index = Bundles { catalog: self, shared: Vec::new(), own: HashMap::new() };
        for (i, e) in self.entries.iter().enumerate() {
            match (&e.node(), &e.audience) {
                (Some(n), Audience::Node) => index.own.entry(*n).or_default().push(i),
                _ => index.shared.push(i),
            }
        }
        index
    }
}

/// The node bundles of a catalog (see [`Catalog::bundles`]).
#[derive(Debug)]
pub struct Bundles<'c> {
    catalog: &'c Catalog,
    /// Entries every bundle may draw on: all but the nodes' own.
    shared: Vec<usize>,
    /// Each node's own entries.
    own: HashMap<&'c str, Vec<usize>>,
}

impl Bundles<'_> {
    /// The indices (in the catalog) of the entries that are this node's own.
    pub fn own(&self, node: &str) -> &[usize] {
        self.own.get(node).map_or(&[], Vec::as_slice)
    }

    /// [`Catalog::bundle`] for one node.
    pub fn of(&self, spec: &ClusterSpec, node: &Node) -> Vec<(PathBuf, PathBuf, Mode)> {
        let mut ids: Vec<usize> = self.shared.iter().chain(self.own(&node.name)).copied().collect();
        ids.sort_unstable();
        bundle_of(ids.into_iter().map(|i| &self.catalog.entries[i]), spec, node)
    }

    /// Every file of the tree `spec` describes, relative to its root: each entry's own, then
    /// every node bundle's copies.
    pub fn tree_files<'s>(&'s self, spec: &'s ClusterSpec) -> impl Iterator<Item = PathBuf> + 's {
        let own = self.catalog.entries.iter().flat_map(|e| e.files()).map(|(f, _)| f.to_path_buf());
        own.chain(spec.nodes.iter().flat_map(|n| self.of(spec, n)).map(|(_, dst, _)| dst))
    }
}

/// The bundle of `node` among `entries`, in their order.
fn bundle_of<'e>(
    entries: impl Iterator<Item = &'e Entry>,
    spec: &ClusterSpec,
    node: &Node,
) -> Vec<(PathBuf, PathBuf, Mode)> {
    let is_cp = node.role == Role::ControlPlane;
    let is_primary = node.name == spec.primary().name;
    let base = bundle_root(node);
    let mut out = Vec::new();
    for e in entries {
        let (take, cert_only) = match e.audience {
            Audience::Node => (e.node() == Some(&node.name), false),
            Audience::Primary => (is_primary, false),
            Audience::ControlPlanes => (is_cp, false),
            Audience::ControlPlanesAndWorkerTrust => (true, !is_cp),
            Audience::AllNodes => (true, false),
        };
        if !take {
            continue;
        }
        let files = e.files();
        let files = if cert_only { &files[..1] } else { &files[..] };
        for (f, mode) in files {
            let dest = if f.starts_with(&base) {
                f.to_path_buf()
            } else if f.starts_with(layout::NODES) {
                continue; // another node's own file
            } else {
                base.join(layout::ETC_KUBERNETES).join(f)
            };
            out.push((f.to_path_buf(), dest, *mode));
        }
    }
    out
}

/// `nodes/<name>`: the directory that mirrors a node's filesystem.
pub fn bundle_root(node: &Node) -> PathBuf {
    Path::new(layout::NODES).join(&node.name)
}

const CA_USAGE: [KeyUsage; 3] = [KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment, KeyUsage::KeyCertSign];
const LEAF_USAGE: [KeyUsage; 2] = [KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment];
const SERVER: &[ExtKeyUsage] = &[ExtKeyUsage::ServerAuth];
const CLIENT: &[ExtKeyUsage] = &[ExtKeyUsage::ClientAuth];
const BOTH: &[ExtKeyUsage] = &[ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth];

struct Builder<'a> {
    spec: &'a ClusterSpec,
    entries: Vec<Entry>,
}

/// A client certificate to add (see [`Builder::client`]).
struct Client<'a> {
    name: &'static str,
    node: Option<&'a Node>,
    issuer: &'static str,
    cn: String,
    orgs: &'a [&'a str],
    audience: Audience,
    break_glass: bool,
    kubeadm_instead: Option<&'static str>,
    why: &'static str,
}

/// A leaf to add: the arguments of [`Builder::leaf`] by name.
struct NewLeaf<'a> {
    id: EntryId,
    issuer: &'static str,
    cn: String,
    orgs: &'a [&'a str],
    eku: &'static [ExtKeyUsage],
    sans: Vec<San>,
    store: Store,
    audience: Audience,
    break_glass: bool,
    kubeadm_instead: Option<&'static str>,
    why: &'static str,
}

impl Builder<'_> {
    fn etcd_ca(&self) -> &'static str {
        match self.spec.ca_layout {
            CaLayout::Kubeadm => ETCD_CA,
            CaLayout::Single => CA,
        }
    }

    fn front_proxy_ca(&self) -> &'static str {
        match self.spec.ca_layout {
            CaLayout::Kubeadm => FRONT_PROXY_CA,
            CaLayout::Single => CA,
        }
    }

    /// Where a node's own files of the kubeadm tree live: the top level for the primary
    /// control plane (so the top level is exactly its `/etc/kubernetes`), else its bundle.
    fn home(&self, node: &Node) -> PathBuf {
        if node.name == self.spec.primary().name {
            PathBuf::new()
        } else {
            bundle_root(node).join(layout::ETC_KUBERNETES)
        }
    }

    fn cas(&mut self) {
        let mut cas = vec![(CA, "kubernetes", layout::CA, "The cluster CA: signs the apiserver, every client of the apiserver, and kubelet certificates; trusted by the apiserver (--client-ca-file), kubelets and every kubeconfig.")];
        if self.spec.ca_layout == CaLayout::Kubeadm {
            cas.push((
                ETCD_CA,
                "etcd-ca",
                layout::ETCD_CA,
                "The etcd CA: etcd trusts only what it signs, so a cluster-CA client certificate cannot reach etcd.",
            ));
            cas.push((FRONT_PROXY_CA, "front-proxy-ca", layout::FRONT_PROXY_CA, "The front-proxy CA: aggregated API servers trust it (--requestheader-client-ca-file) to authenticate the apiserver's proxied requests; separate so that no ordinary client certificate can assert request headers."));
        }
        for (id, cn, file, why) in cas {
            self.entries.push(Entry {
                id: EntryId::shared(id),
                kind: EntryKind::Ca {
                    profile: CertProfile {
                        subject: Subject { cn: cn.into(), orgs: vec![] },
                        is_ca: true,
                        key_usage: CA_USAGE.to_vec(),
                        ext_key_usage: vec![],
                        sans: vec![San::Dns(cn.into())],
                        validity: self.spec.validity.ca,
                    },
                    cert: layout::crt(file).into(),
                    key: layout::key(file).into(),
                },
                audience: if id == CA { Audience::ControlPlanesAndWorkerTrust } else { Audience::ControlPlanes },
                break_glass: false,
                kubeadm_instead: None,
                why,
            });
        }
        self.entries.push(Entry {
            id: EntryId::shared(SA),
            kind: EntryKind::KeyPair { key: layout::SA_KEY.into(), public: layout::SA_PUB.into() },
            audience: Audience::ControlPlanes,
            break_glass: false,
            kubeadm_instead: None,
            why: "Service-account token key pair: the controller-manager signs tokens with sa.key, every apiserver checks them with sa.pub. Not a certificate.",
        });
    }

    fn leaf(&mut self, mut l: NewLeaf) {
        // The SANs `san add` recorded for this very certificate.
        l.sans.extend(self.spec.cert_sans.get(l.id.as_str()).into_iter().flatten().cloned());
        self.entries.push(Entry {
            id: l.id,
            kind: EntryKind::Leaf(Leaf {
                profile: CertProfile {
                    subject: Subject { cn: l.cn, orgs: l.orgs.iter().map(|s| s.to_string()).collect() },
                    is_ca: false,
                    key_usage: LEAF_USAGE.to_vec(),
                    ext_key_usage: l.eku.to_vec(),
                    sans: dedup(l.sans),
                    validity: self.spec.validity.leaf,
                },
                issuer: EntryId::shared(l.issuer),
                store: l.store,
            }),
            audience: l.audience,
            break_glass: l.break_glass,
            kubeadm_instead: l.kubeadm_instead,
            why: l.why,
        });
    }

    fn shared_leaves(&mut self) {
        let (etcd_ca, fp_ca) = (self.etcd_ca(), self.front_proxy_ca());
        let shared = [
            (Client { name: entry::APISERVER_KUBELET_CLIENT, node: None, issuer: CA, cn: "kube-apiserver-kubelet-client".into(), orgs: &[CLUSTER_ADMINS], audience: Audience::ControlPlanes, break_glass: false, kubeadm_instead: None,
                why: "The apiserver's client certificate for kubelets (logs, exec, port-forward). O kubeadm:cluster-admins, which kubeadm binds to cluster-admin, so the kubelet authorizes it." },
             layout::APISERVER_KUBELET_CLIENT),
            (Client { name: entry::APISERVER_ETCD_CLIENT, node: None, issuer: etcd_ca, cn: "kube-apiserver-etcd-client".into(), orgs: &[], audience: Audience::ControlPlanes, break_glass: false, kubeadm_instead: None,
                why: "The apiserver's client certificate for etcd, signed by the etcd CA that etcd trusts." },
             layout::APISERVER_ETCD_CLIENT),
            (Client { name: entry::FRONT_PROXY_CLIENT, node: None, issuer: fp_ca, cn: "front-proxy-client".into(), orgs: &[], audience: Audience::ControlPlanes, break_glass: false, kubeadm_instead: None,
                why: "The apiserver's client certificate when it proxies to aggregated API servers (--proxy-client-cert-file); its CN must be in --requestheader-allowed-names." },
             layout::FRONT_PROXY_CLIENT),
            (Client { name: entry::ETCD_HEALTHCHECK_CLIENT, node: None, issuer: etcd_ca, cn: "kube-etcd-healthcheck-client".into(), orgs: &[], audience: Audience::ControlPlanes, break_glass: false, kubeadm_instead: None,
                why: "etcdctl's client certificate for health checks of the local etcd (the liveness probe)." },
             layout::ETCD_HEALTHCHECK_CLIENT),
        ];
        for (client, file) in shared {
            self.client(client, files(file));
        }
    }

    /// A client certificate (clientAuth, no SANs) kept in `store`.
    fn client(&mut self, c: Client, store: Store) {
        let id = match c.node {
            Some(n) => EntryId::of_node(c.name, &n.name),
            None => EntryId::shared(c.name),
        };
        self.leaf(NewLeaf {
            id,
            issuer: c.issuer,
            cn: c.cn,
            orgs: c.orgs,
            eku: CLIENT,
            sans: vec![],
            store,
            audience: c.audience,
            break_glass: c.break_glass,
            kubeadm_instead: c.kubeadm_instead,
            why: c.why,
        });
    }

    /// A client certificate embedded in a kubeconfig that dials `server`: at the top of the
    /// tree when shared, else in the node's home.
    fn kubeconfig(&mut self, c: Client, server: String) {
        let path = match c.node {
            Some(n) => self.home(n).join(c.name),
            None => PathBuf::from(c.name),
        };
        let store =
            Store::Kubeconfig { path, cluster: self.spec.cluster_name.clone(), server, ca: EntryId::shared(CA) };
        self.client(c, store);
    }

    fn shared_kubeconfigs(&mut self) {
        let endpoint = self.spec.control_plane_endpoint.url();
        self.kubeconfig(Client { name: entry::ADMIN_CONF, node: None, issuer: CA, cn: "kubernetes-admin".into(), orgs: &[CLUSTER_ADMINS], audience: Audience::ControlPlanes, break_glass: false, kubeadm_instead: None, why: "Administrators' kubectl. Group kubeadm:cluster-admins is bound to cluster-admin by RBAC, so access can be revoked, unlike system:masters." }, endpoint.clone());
        self.kubeconfig(Client { name: entry::SUPER_ADMIN_CONF, node: None, issuer: CA, cn: "kubernetes-super-admin".into(), orgs: &[SYSTEM_MASTERS], audience: Audience::Primary, break_glass: true, kubeadm_instead: None, why: "Break-glass credential: system:masters bypasses RBAC entirely. Keep it offline; kubepki does not copy it to other nodes." }, endpoint.clone());
        self.kubeconfig(Client { name: entry::KUBE_PROXY_CONF, node: None, issuer: CA, cn: "system:kube-proxy".into(), orgs: &[], audience: Audience::AllNodes, break_glass: false, kubeadm_instead: Some("kube-proxy authenticates with a service-account token"), why: "kube-proxy's client certificate (the classic layout; kubeadm uses a service-account token). Default RBAC binds user system:kube-proxy to system:node-proxier." }, endpoint);
    }

    /// metrics-server's certificates (the add-on). They go into a Secret (`kubectl create
    /// secret`, see `addons/metrics-server.yaml`), not onto a node: kept at the top of the tree
    /// only, beside the CAs the Secret also carries.
    fn metrics_server(&mut self) {
        use crate::model::vocabulary::metrics_server::{NAME, NAMESPACE};
        let svc = format!("{NAME}.{NAMESPACE}.svc");
        let sans = vec![
            San::Dns(NAME.into()),
            San::Dns(format!("{NAME}.{NAMESPACE}")),
            San::Dns(svc.clone()),
            San::Dns(format!("{svc}.{}", self.spec.dns_domain)),
        ];
        let instead = Some("kubeadm installs no metrics-server; its upstream manifest lets it self-sign a serving certificate (--cert-dir) and sets insecureSkipTLSVerify: true on its APIService, and it is usually run with --kubelet-insecure-tls");
        self.leaf(NewLeaf {
            id: EntryId::shared(entry::METRICS_SERVER),
            issuer: CA,
            cn: NAME.into(),
            orgs: &[],
            eku: SERVER,
            sans,
            store: files(layout::METRICS_SERVER),
            audience: Audience::Primary,
            break_glass: false,
            kubeadm_instead: instead,
            why: "metrics-server's serving certificate (--tls-cert-file). The aggregator dials the service by its name metrics-server.kube-system.svc and verifies it with the APIService's caBundle, which holds the cluster CA; not self-signed, so insecureSkipTLSVerify is not needed.",
        });
        self.client(
            Client {
                name: entry::METRICS_SERVER_KUBELET_CLIENT,
                node: None,
                issuer: CA,
                cn: entry::METRICS_SERVER_KUBELET_CLIENT.into(),
                orgs: &[],
                audience: Audience::Primary,
                break_glass: false,
                kubeadm_instead: instead,
                why: "metrics-server's client certificate for kubelets (--kubelet-client-certificate), so kubelets authenticate the scraper by certificate; its user is bound to nodes/metrics and nodes/stats only (addons/metrics-server.yaml).",
            },
            files(layout::METRICS_SERVER_KUBELET_CLIENT),
        );
    }

    fn control_plane(&mut self, node: &Node) {
        let spec = self.spec;
        let home = self.home(node);
        let etcd_ca = self.etcd_ca();
        let mut api_sans = vec![San::Dns(node.name.clone())];
        api_sans.extend(APISERVER_SERVICE_NAMES.map(|d| San::Dns(d.into())));
        api_sans.push(San::Dns(format!("kubernetes.default.svc.{}", spec.dns_domain)));
        api_sans.push(San::Ip(spec.kubernetes_service_ip()));
        api_sans.extend(node.addresses.iter().map(|ip| San::Ip(*ip)));
        api_sans.extend(node.dns_names.iter().map(|d| San::Dns(d.clone())));
        api_sans.push(spec.control_plane_endpoint.host.clone());
        api_sans.extend(spec.api_server_cert_sans.iter().cloned());
        self.leaf(NewLeaf {
            id: EntryId::of_node(entry::APISERVER, &node.name),
            issuer: CA,
            cn: "kube-apiserver".into(),
            orgs: &[],
            eku: SERVER,
            sans: api_sans,
            store: files(home.join(layout::APISERVER)),
            audience: Audience::Node,
            break_glass: false,
            kubeadm_instead: None,
            why: "The apiserver's serving certificate. SANs cover every name a client dials: the node, the in-cluster service names and IP, the advertise address and the control-plane endpoint.",
        });
        let mut etcd_sans = vec![San::Dns(node.name.clone()), San::Dns("localhost".into())];
        etcd_sans.extend(node.addresses.iter().map(|ip| San::Ip(*ip)));
        etcd_sans.push(San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        etcd_sans.push(San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let mut server_sans = etcd_sans.clone();
        server_sans.extend(spec.etcd_server_cert_sans.iter().cloned());
        let mut peer_sans = etcd_sans;
        peer_sans.extend(spec.etcd_peer_cert_sans.iter().cloned());
        self.leaf(NewLeaf {
            id: EntryId::of_node(entry::ETCD_SERVER, &node.name),
            issuer: etcd_ca,
            cn: node.name.clone(),
            orgs: &[],
            eku: BOTH,
            sans: server_sans,
            store: files(home.join(layout::ETCD_SERVER)),
            audience: Audience::Node,
            break_glass: false,
            kubeadm_instead: None,
            why: "etcd's serving certificate. It carries clientAuth too because etcd's gRPC gateway dials etcd itself with it (without it: 'incompatible key usage').",
        });
        self.leaf(NewLeaf {
            id: EntryId::of_node(entry::ETCD_PEER, &node.name),
            issuer: etcd_ca,
            cn: node.name.clone(),
            orgs: &[],
            eku: BOTH,
            sans: peer_sans,
            store: files(home.join(layout::ETCD_PEER)),
            audience: Audience::Node,
            break_glass: false,
            kubeadm_instead: None,
            why: "etcd member-to-member certificate: each member is server and client of the others, so serverAuth and clientAuth.",
        });
        let local = spec.local_endpoint(node).url();
        self.kubeconfig(Client { name: entry::CONTROLLER_MANAGER_CONF, node: Some(node), issuer: CA, cn: "system:kube-controller-manager".into(), orgs: &[], audience: Audience::Node, break_glass: false, kubeadm_instead: None, why: "kube-controller-manager's credential; it dials its own node's apiserver. Default RBAC binds user system:kube-controller-manager." }, local.clone());
        self.kubeconfig(Client { name: entry::SCHEDULER_CONF, node: Some(node), issuer: CA, cn: "system:kube-scheduler".into(), orgs: &[], audience: Audience::Node, break_glass: false, kubeadm_instead: None, why: "kube-scheduler's credential; it dials its own node's apiserver. Default RBAC binds user system:kube-scheduler." }, local);
    }

    fn node(&mut self, node: &Node) {
        let endpoint = self.spec.control_plane_endpoint.url();
        self.kubeconfig(Client { name: entry::KUBELET_CONF, node: Some(node), issuer: CA, cn: node_user(&node.name), orgs: &[SYSTEM_NODES], audience: Audience::Node, break_glass: false, kubeadm_instead: None, why: "The kubelet's client credential: user system:node:<name> in group system:nodes, which the Node authorizer and NodeRestriction admission require." }, endpoint);
        let mut sans = vec![San::Dns(node.name.clone())];
        sans.extend(node.dns_names.iter().map(|d| San::Dns(d.clone())));
        sans.extend(node.addresses.iter().map(|ip| San::Ip(*ip)));
        self.leaf(NewLeaf {
            id: EntryId::of_node(entry::KUBELET_SERVING, &node.name),
            issuer: CA,
            cn: node_user(&node.name),
            orgs: &[SYSTEM_NODES],
            eku: SERVER,
            sans,
            store: files(bundle_root(node).join(layout::KUBELET_SERVING)),
            audience: Audience::Node,
            break_glass: false,
            kubeadm_instead: Some("the kubelet self-signs its serving certificate, so the apiserver cannot verify kubelets (link 10 is unauthenticated on the server side)"),
            why: "The kubelet's serving certificate, CA-signed as the kubernetes.io/kubelet-serving signer would (kubeadm leaves it self-signed), so the apiserver can verify kubelets (--kubelet-certificate-authority).",
        });
    }
}

/// `<base>.crt` and `<base>.key`.
fn files(base: impl AsRef<Path>) -> Store {
    let base = base.as_ref();
    let with = |ext| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    Store::Files { cert: with(".crt"), key: with(".key") }
}

/// Remove duplicate SANs, keeping the first of each.
fn dedup(sans: Vec<San>) -> Vec<San> {
    let mut seen = BTreeSet::new();
    sans.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

mod parties;

#[cfg(test)]
mod tests;
