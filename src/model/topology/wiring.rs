//! The wiring: which setting of which component names which file, and which switches must
//! hold for the component's links to be verified. Part of the topology: a setting that names a
//! file says which link and which side of it the file serves, so the catalog entry it must
//! hold is the one the topology already says that side presents or trusts (reference §7).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{ComponentKind, Link, LinkKind};
use crate::model::catalog::{Catalog, Entry, EntryKind, CA, SA};
use crate::model::spec::Node;
use crate::model::vocabulary::layout;

/// Where a node keeps kubeadm's tree.
pub const ETC_KUBERNETES: &str = "/etc/kubernetes";

/// Which side of a link a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// It dials.
    Client,
    /// It is dialled.
    Server,
}

/// Which file of a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The certificate (or the whole kubeconfig).
    Cert,
    /// The private key.
    Key,
}

/// What a setting must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Want {
    /// The file of the credential this side presents on the link.
    Presents {
        /// The link.
        link: LinkKind,
        /// The side.
        side: Side,
        /// Certificate or key.
        part: Part,
    },
    /// The CA file this side trusts on the link.
    Trusts {
        /// The link.
        link: LinkKind,
        /// The side.
        side: Side,
    },
    /// The service-account key pair: the private key (`Key`) or the public key (`Cert`).
    ServiceAccount {
        /// Which half.
        part: Part,
    },
    /// The cluster CA, to sign CSR objects with (the controller-manager's signer).
    SigningCa {
        /// Certificate or key.
        part: Part,
    },
    /// The file of the node's own entry of this name (a member's peer certificate, which no
    /// link of a one-member cluster names).
    Own {
        /// The entry's name (`etcd-peer`).
        name: &'static str,
        /// Certificate or key.
        part: Part,
    },
    /// The CA that signs the node's own entry of this name (what its peers' certificates are
    /// signed by).
    IssuerOf {
        /// The entry's name.
        name: &'static str,
    },
    /// A switch that verification needs: it must be set to this value.
    Equals {
        /// The value.
        value: &'static str,
    },
    /// A switch that turns verification off: it must be absent or false.
    NotTrue,
    /// The lowest TLS version it accepts: 1.2 or above (absent: the component's default). The
    /// value is what the generator writes, in the component's own spelling.
    MinTls {
        /// `VersionTLS12` (Kubernetes), `TLS1.2` (etcd).
        value: &'static str,
    },
    /// The cipher suites it offers: none of the weak ones (absent: Go's defaults, which are not).
    StrongCiphers,
    /// Requests without a credential: must be off. `default_on`: absent means on.
    AnonymousOff {
        /// Whether the component accepts anonymous requests when the setting is absent.
        default_on: bool,
    },
    /// The authorization mode(s): never `AlwaysAllow`. `default_on`: absent means AlwaysAllow.
    NotAlwaysAllow {
        /// Whether the component allows everything when the setting is absent.
        default_on: bool,
    },
    /// When true, the component asks the apiserver for its serving certificate (a CSR) instead
    /// of using the file settings name: noted, and those settings may then be absent.
    ServingBootstrap,
}

/// One setting of a component.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    /// The component kind it belongs to.
    pub component: ComponentKind,
    /// The flag (`--tls-cert-file`) or configuration field (`tlsCertFile`).
    pub name: &'static str,
    /// What it must hold.
    pub want: Want,
    /// Whether the link is left unverified (or broken) when it is absent.
    pub required: bool,
    /// The links a switch decides (a setting that names a file serves the link in its `want`).
    pub switches: &'static [LinkKind],
    /// What it is for.
    pub role: &'static str,
    /// The CIS Kubernetes Benchmark control (v1.8, as kube-bench's `cis-1.8` numbers it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cis: Option<&'static str>,
}

const fn presents(link: LinkKind, side: Side, part: Part) -> Want {
    Want::Presents { link, side, part }
}

const fn trusts(link: LinkKind, side: Side) -> Want {
    Want::Trusts { link, side }
}

const fn setting(
    component: ComponentKind,
    name: &'static str,
    want: Want,
    role: &'static str,
    cis: Option<&'static str>,
) -> Setting {
    Setting { component, name, want, required: true, switches: &[], role, cis }
}

const fn switch(
    name: &'static str,
    want: Want,
    required: bool,
    switches: &'static [LinkKind],
    role: &'static str,
    cis: &'static str,
) -> Setting {
    Setting { component: Etcd, name, want, required, switches, role, cis: Some(cis) }
}

const ETCD_CLIENTS: &[LinkKind] = &[ApiServerToEtcd, LinkKind::HealthcheckToEtcd];
const ETCD_PEERS: &[LinkKind] = &[EtcdPeer];
const ETCD_ALL: &[LinkKind] = &[ApiServerToEtcd, LinkKind::HealthcheckToEtcd, EtcdPeer];
const API_CLIENTS: &[LinkKind] = &[
    AdminToApiServer,
    LinkKind::SuperAdminToApiServer,
    LinkKind::SchedulerToApiServer,
    LinkKind::ControllerManagerToApiServer,
    LinkKind::KubeProxyToApiServer,
    LinkKind::KubeletToApiServer,
];
const KUBELET_CLIENTS: &[LinkKind] = &[ApiServerToKubelet, MetricsServerToKubelet];

/// A setting that decides the links of `switches` without naming a file.
const fn check(
    component: ComponentKind,
    name: &'static str,
    want: Want,
    switches: &'static [LinkKind],
    role: &'static str,
    cis: Option<&'static str>,
) -> Setting {
    Setting { component, name, want, required: false, switches, role, cis }
}

use ComponentKind::{ApiServer, ControllerManager, Etcd, KubeProxy, Kubelet, MetricsServer, Scheduler};
use LinkKind::{
    AdminToApiServer, ApiServerToAggregated, ApiServerToEtcd, ApiServerToKubelet, EtcdPeer, MetricsServerToKubelet,
};
use Part::{Cert, Key};
use Side::{Client, Server};

/// Every setting kubepki knows, by component. The static pod manifests of a control plane
/// carry the flags; the kubelet's carry the configuration fields.
pub const SETTINGS: &[Setting] = &[
    // kube-apiserver: server of links 1–6, client of etcd (7), kubelets (10), extensions (11).
    setting(
        ApiServer,
        "--tls-cert-file",
        presents(AdminToApiServer, Server, Cert),
        "its serving certificate (links 1–6)",
        Some("1.2.25"),
    ),
    setting(
        ApiServer,
        "--tls-private-key-file",
        presents(AdminToApiServer, Server, Key),
        "its serving key",
        Some("1.2.25"),
    ),
    setting(
        ApiServer,
        "--client-ca-file",
        trusts(AdminToApiServer, Server),
        "the CA of every client certificate it accepts (links 1–6)",
        Some("1.2.26"),
    ),
    setting(
        ApiServer,
        "--etcd-certfile",
        presents(ApiServerToEtcd, Client, Cert),
        "its client certificate for etcd (link 7)",
        Some("1.2.24"),
    ),
    setting(
        ApiServer,
        "--etcd-keyfile",
        presents(ApiServerToEtcd, Client, Key),
        "its client key for etcd",
        Some("1.2.24"),
    ),
    setting(
        ApiServer,
        "--etcd-cafile",
        trusts(ApiServerToEtcd, Client),
        "the CA of etcd's serving certificate (link 7)",
        Some("1.2.27"),
    ),
    setting(
        ApiServer,
        "--kubelet-client-certificate",
        presents(ApiServerToKubelet, Client, Cert),
        "its client certificate for kubelets (link 10)",
        Some("1.2.4"),
    ),
    setting(
        ApiServer,
        "--kubelet-client-key",
        presents(ApiServerToKubelet, Client, Key),
        "its client key for kubelets",
        Some("1.2.4"),
    ),
    setting(
        ApiServer,
        "--kubelet-certificate-authority",
        trusts(ApiServerToKubelet, Client),
        "the CA of kubelets' serving certificates; unset, the apiserver does not verify kubelets (link 10)",
        Some("1.2.5"),
    ),
    setting(
        ApiServer,
        "--proxy-client-cert-file",
        presents(ApiServerToAggregated, Client, Cert),
        "its client certificate for aggregated API servers (link 11)",
        None,
    ),
    setting(
        ApiServer,
        "--proxy-client-key-file",
        presents(ApiServerToAggregated, Client, Key),
        "its client key for aggregated API servers",
        None,
    ),
    setting(
        ApiServer,
        "--requestheader-client-ca-file",
        trusts(ApiServerToAggregated, Server),
        "the front-proxy CA aggregated servers are told to trust (link 11)",
        None,
    ),
    setting(
        ApiServer,
        "--service-account-key-file",
        Want::ServiceAccount { part: Cert },
        "checks service-account tokens",
        Some("1.2.23"),
    ),
    setting(
        ApiServer,
        "--service-account-signing-key-file",
        Want::ServiceAccount { part: Key },
        "signs service-account tokens",
        None,
    ),
    // kube-controller-manager: client of link 4; signs CSR objects with the cluster CA.
    setting(
        ControllerManager,
        "--kubeconfig",
        presents(LinkKind::ControllerManagerToApiServer, Client, Cert),
        "its credential (link 4)",
        None,
    ),
    setting(
        ControllerManager,
        "--cluster-signing-cert-file",
        Want::SigningCa { part: Cert },
        "signs CSR objects (kubelet certificates)",
        None,
    ),
    setting(ControllerManager, "--cluster-signing-key-file", Want::SigningCa { part: Key }, "the signer's key", None),
    setting(
        ControllerManager,
        "--root-ca-file",
        trusts(LinkKind::ControllerManagerToApiServer, Client),
        "the CA pods are given to trust the apiserver",
        Some("1.3.5"),
    ),
    setting(
        ControllerManager,
        "--service-account-private-key-file",
        Want::ServiceAccount { part: Key },
        "signs legacy token secrets",
        Some("1.3.4"),
    ),
    setting(
        ControllerManager,
        "--authentication-kubeconfig",
        presents(LinkKind::ControllerManagerToApiServer, Client, Cert),
        "checks who calls its own endpoint",
        None,
    ),
    setting(
        ControllerManager,
        "--authorization-kubeconfig",
        presents(LinkKind::ControllerManagerToApiServer, Client, Cert),
        "checks what callers of its own endpoint may do",
        None,
    ),
    setting(
        ControllerManager,
        "--client-ca-file",
        trusts(LinkKind::ControllerManagerToApiServer, Client),
        "the CA of client certificates at its own endpoint",
        None,
    ),
    setting(
        ControllerManager,
        "--requestheader-client-ca-file",
        trusts(ApiServerToAggregated, Server),
        "the front-proxy CA, for requests the apiserver proxies to it",
        None,
    ),
    // kube-scheduler: client of link 3.
    setting(
        Scheduler,
        "--kubeconfig",
        presents(LinkKind::SchedulerToApiServer, Client, Cert),
        "its credential (link 3)",
        None,
    ),
    setting(
        Scheduler,
        "--authentication-kubeconfig",
        presents(LinkKind::SchedulerToApiServer, Client, Cert),
        "checks who calls its own endpoint",
        None,
    ),
    setting(
        Scheduler,
        "--authorization-kubeconfig",
        presents(LinkKind::SchedulerToApiServer, Client, Cert),
        "checks what callers of its own endpoint may do",
        None,
    ),
    // etcd: server of links 7 and 9, both sides of link 8.
    setting(
        Etcd,
        "--cert-file",
        presents(ApiServerToEtcd, Server, Cert),
        "its serving certificate (links 7, 9)",
        Some("2.1"),
    ),
    setting(Etcd, "--key-file", presents(ApiServerToEtcd, Server, Key), "its serving key", Some("2.1")),
    setting(
        Etcd,
        "--trusted-ca-file",
        trusts(ApiServerToEtcd, Server),
        "the CA of its clients' certificates (links 7, 9)",
        Some("2.7"),
    ),
    switch(
        "--client-cert-auth",
        Want::Equals { value: "true" },
        true,
        ETCD_CLIENTS,
        "without it any client is accepted (links 7, 9)",
        "2.2",
    ),
    Setting {
        switches: ETCD_PEERS,
        ..setting(
            Etcd,
            "--peer-cert-file",
            Want::Own { name: crate::model::vocabulary::entry::ETCD_PEER, part: Cert },
            "its peer certificate (link 8)",
            Some("2.4"),
        )
    },
    Setting {
        switches: ETCD_PEERS,
        ..setting(
            Etcd,
            "--peer-key-file",
            Want::Own { name: crate::model::vocabulary::entry::ETCD_PEER, part: Key },
            "its peer key",
            Some("2.4"),
        )
    },
    Setting {
        switches: ETCD_PEERS,
        ..setting(
            Etcd,
            "--peer-trusted-ca-file",
            Want::IssuerOf { name: crate::model::vocabulary::entry::ETCD_PEER },
            "the CA of its peers' certificates (link 8)",
            None,
        )
    },
    switch(
        "--peer-client-cert-auth",
        Want::Equals { value: "true" },
        true,
        ETCD_PEERS,
        "without it any peer is accepted (link 8)",
        "2.5",
    ),
    switch("--auto-tls", Want::NotTrue, false, ETCD_CLIENTS, "self-signed certificates nobody verifies", "2.3"),
    switch("--peer-auto-tls", Want::NotTrue, false, ETCD_PEERS, "self-signed peer certificates nobody verifies", "2.6"),
    check(
        Etcd,
        "--tls-min-version",
        Want::MinTls { value: "TLS1.2" },
        ETCD_ALL,
        "the oldest TLS version it accepts (etcd 3.5; TLS 1.0 and 1.1 are broken)",
        None,
    ),
    check(Etcd, "--cipher-suites", Want::StrongCiphers, ETCD_ALL, "the cipher suites it offers clients and peers", None),
    // kube-apiserver's TLS and who it lets in (links 1–6).
    check(
        ApiServer,
        "--tls-min-version",
        Want::MinTls { value: "VersionTLS12" },
        API_CLIENTS,
        "the oldest TLS version it accepts (TLS 1.0 and 1.1 are broken)",
        None,
    ),
    check(
        ApiServer,
        "--tls-cipher-suites",
        Want::StrongCiphers,
        API_CLIENTS,
        "the cipher suites it offers (links 1–6)",
        Some("1.2.30"),
    ),
    check(
        ApiServer,
        "--anonymous-auth",
        Want::AnonymousOff { default_on: true },
        API_CLIENTS,
        "requests without a credential are served as system:anonymous (kubeadm leaves it on for health probes; RBAC decides what anonymous may do)",
        Some("1.2.1"),
    ),
    check(
        ApiServer,
        "--authorization-mode",
        Want::NotAlwaysAllow { default_on: true },
        API_CLIENTS,
        "who may do what; AlwaysAllow lets every authenticated client do anything",
        Some("1.2.6"),
    ),
    // The kubelet's KubeletConfiguration (var/lib/kubelet/config.yaml): server of link 10.
    setting(
        Kubelet,
        "authentication.x509.clientCAFile",
        trusts(ApiServerToKubelet, Server),
        "the CA of the apiserver's kubelet-client certificate (link 10); unset, client certificates are not accepted",
        Some("4.2.3"),
    ),
    setting(
        Kubelet,
        "tlsCertFile",
        presents(ApiServerToKubelet, Server, Cert),
        "its serving certificate (link 10); unset, the kubelet signs one itself that nobody can verify",
        Some("4.2.9"),
    ),
    setting(Kubelet, "tlsPrivateKeyFile", presents(ApiServerToKubelet, Server, Key), "its serving key", Some("4.2.9")),
    check(
        Kubelet,
        "serverTLSBootstrap",
        Want::ServingBootstrap,
        KUBELET_CLIENTS,
        "the kubelet asks the apiserver for its serving certificate (a CSR someone must approve)",
        Some("4.2.11"),
    ),
    check(
        Kubelet,
        "authentication.anonymous.enabled",
        Want::AnonymousOff { default_on: false },
        KUBELET_CLIENTS,
        "requests without a credential reach the kubelet's API",
        Some("4.2.1"),
    ),
    check(
        Kubelet,
        "authorization.mode",
        Want::NotAlwaysAllow { default_on: false },
        KUBELET_CLIENTS,
        "who may use the kubelet's API; AlwaysAllow lets anyone who reaches it run commands in pods",
        Some("4.2.2"),
    ),
    check(
        Kubelet,
        "tlsMinVersion",
        Want::MinTls { value: "VersionTLS12" },
        KUBELET_CLIENTS,
        "the oldest TLS version it accepts (TLS 1.0 and 1.1 are broken)",
        None,
    ),
    check(Kubelet, "tlsCipherSuites", Want::StrongCiphers, KUBELET_CLIENTS, "the cipher suites it offers", Some("4.2.12")),
    // kube-proxy's KubeProxyConfiguration: client of link 5.
    setting(
        KubeProxy,
        "clientConnection.kubeconfig",
        presents(LinkKind::KubeProxyToApiServer, Client, Cert),
        "its credential (link 5)",
        None,
    ),
    // metrics-server (the add-on): server of link 11 (the apiserver proxies to it), client of
    // every kubelet (link 12). Its Deployment's args, and its APIService's fields.
    setting(
        MetricsServer,
        "--tls-cert-file",
        presents(ApiServerToAggregated, Server, Cert),
        "its serving certificate (link 11); unset, it self-signs one the apiserver cannot verify",
        None,
    ),
    setting(MetricsServer, "--tls-private-key-file", presents(ApiServerToAggregated, Server, Key), "its serving key", None),
    setting(
        MetricsServer,
        "--requestheader-client-ca-file",
        trusts(ApiServerToAggregated, Server),
        "the front-proxy CA: the apiserver's proxied requests are checked with it (link 11)",
        None,
    ),
    setting(
        MetricsServer,
        "--kubelet-client-certificate",
        presents(MetricsServerToKubelet, Client, Cert),
        "its client certificate for kubelets (link 12)",
        None,
    ),
    setting(
        MetricsServer,
        "--kubelet-client-key",
        presents(MetricsServerToKubelet, Client, Key),
        "its client key for kubelets",
        None,
    ),
    // Unset, metrics-server verifies kubelets with its in-cluster CA (the service account's
    // ca.crt, the cluster CA): still verified, so not required; set, it must hold that CA.
    Setting {
        required: false,
        ..setting(
            MetricsServer,
            "--kubelet-certificate-authority",
            trusts(MetricsServerToKubelet, Client),
            "the CA of kubelets' serving certificates (link 12)",
            None,
        )
    },
    Setting {
        component: MetricsServer,
        name: "--kubelet-insecure-tls",
        want: Want::NotTrue,
        required: false,
        switches: &[MetricsServerToKubelet],
        role: "metrics-server does not verify kubelets' serving certificates (link 12); kubepki's carry the nodes' IP SANs, so --kubelet-certificate-authority does",
        cis: None,
    },
    Setting {
        component: MetricsServer,
        name: "--deprecated-kubelet-completely-insecure",
        want: Want::NotTrue,
        required: false,
        switches: &[MetricsServerToKubelet],
        role: "metrics-server scrapes kubelets over plain HTTP, without TLS or authentication (link 12)",
        cis: None,
    },
    Setting {
        component: MetricsServer,
        name: API_SERVICE_CA_BUNDLE,
        want: trusts(ApiServerToAggregated, Client),
        required: true,
        switches: &[],
        role: "the CA the apiserver verifies metrics-server's serving certificate with (link 11)",
        cis: None,
    },
    Setting {
        component: MetricsServer,
        name: API_SERVICE_INSECURE,
        want: Want::NotTrue,
        required: false,
        switches: &[ApiServerToAggregated],
        role: "the apiserver does not verify metrics-server's serving certificate (link 11)",
        cis: None,
    },
];

/// Whether a cipher suite (Go's name) is weak: every suite `tls.InsecureCipherSuites()` lists
/// (RC4, 3DES, CBC with SHA-256) and CBC with SHA-1, which the CIS Benchmark's list of strong
/// suites (4.2.12) leaves out; NULL ciphers too.
pub fn weak_cipher(name: &str) -> bool {
    let n = name.trim().to_ascii_uppercase();
    ["RC4", "3DES", "_CBC_", "NULL"].iter().any(|w| n.contains(w))
}

/// Whether a minimum TLS version, as Kubernetes (`VersionTLS11`) or etcd (`TLS1.1`) spells
/// it, is below TLS 1.2.
pub fn below_tls12(value: &str) -> bool {
    let v = value.trim().to_ascii_uppercase().replace("VERSION", "").replace(['.', '_'], "");
    matches!(v.as_str(), "TLS10" | "TLS11" | "SSL30")
}

/// The `APIService` field that holds the CA its server's certificate is verified with.
pub const API_SERVICE_CA_BUNDLE: &str = "spec.caBundle";
/// The `APIService` field that turns that verification off.
pub const API_SERVICE_INSECURE: &str = "spec.insecureSkipTLSVerify";

impl ComponentKind {
    /// Its settings (empty for the components kubepki does not configure).
    pub fn settings(self) -> impl Iterator<Item = &'static Setting> {
        SETTINGS.iter().filter(move |s| s.component == self)
    }

    /// The add-on manifest (tree-relative, `kubectl apply -f`) that carries its settings.
    pub fn addon_manifest(self) -> Option<&'static str> {
        match self {
            MetricsServer => Some(layout::METRICS_SERVER_ADDON),
            _ => None,
        }
    }

    /// The component's id on `node`: a component that runs on no node in particular (an
    /// add-on's Deployment) has its one id.
    pub fn id_for(self, node: &Node) -> String {
        match self {
            MetricsServer => self.id_on(None),
            _ => self.id_on(Some(node)),
        }
    }

    /// The name of its static pod manifest, for the control-plane components.
    pub fn manifest(self) -> Option<&'static str> {
        match self {
            ApiServer => Some("kube-apiserver.yaml"),
            Etcd => Some("etcd.yaml"),
            ControllerManager => Some("kube-controller-manager.yaml"),
            Scheduler => Some("kube-scheduler.yaml"),
            _ => None,
        }
    }

    /// The configuration file of the node components, where the node keeps it (relative to
    /// `/`), and the `kind` of the document in it.
    pub fn config_file(self) -> Option<(&'static str, &'static str)> {
        match self {
            Kubelet => Some(("var/lib/kubelet/config.yaml", "KubeletConfiguration")),
            KubeProxy => Some(("var/lib/kube-proxy/config.yaml", "KubeProxyConfiguration")),
            _ => None,
        }
    }
}

impl Setting {
    /// The links of the topology it decides for `component` (a component id): those of its
    /// kinds the component is on.
    pub fn links<'t>(&self, component: &str, topology: &'t super::Topology) -> Vec<&'t Link> {
        let kinds = self.link_kinds();
        topology
            .links
            .iter()
            .filter(|l| kinds.contains(&l.kind) && (l.client == component || l.server == component))
            .collect()
    }

    /// The tree-relative file it must name for its component on `node` (`None` for a switch, or
    /// a file no link or entry of this cluster gives).
    pub fn file(&self, node: &Node, topology: &super::Topology, catalog: &Catalog) -> Option<PathBuf> {
        let component = self.component.id_for(node);
        file_for(self.want, &node.name, &component, &self.links(&component, topology), &topology.links, catalog)
    }

    /// [`Setting::links`] among `on`, the links `component` is on (from [`links_by_component`]:
    /// a cluster of thousands of nodes is not searched once per setting).
    pub fn links_among<'t>(&self, component: &str, on: &[&'t Link]) -> Vec<&'t Link> {
        let kinds = self.link_kinds();
        on.iter()
            .filter(|l| kinds.contains(&l.kind) && (l.client == component || l.server == component))
            .copied()
            .collect()
    }

    /// [`Setting::file`] with the setting's links given (from [`Setting::links_among`]).
    pub fn file_among(
        &self,
        node: &Node,
        links: &[&Link],
        topology: &super::Topology,
        catalog: &Catalog,
    ) -> Option<PathBuf> {
        let component = self.component.id_on(Some(node));
        file_for(self.want, &node.name, &component, links, &topology.links, catalog)
    }

    /// The kinds of link whose verification depends on it.
    pub fn link_kinds(&self) -> Vec<LinkKind> {
        match self.want.link() {
            Some(k) => vec![k],
            None => self.switches.to_vec(),
        }
    }
}

/// One setting as the plan shows it: the component on its node, the file that carries the
/// setting there, the value it must have, and the catalog entry a file setting names.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    /// The component (`kube-apiserver@cp1`, `kubelet@w1`).
    pub component: String,
    /// Where the setting is written, as the node sees it (its static pod manifest or its
    /// configuration file).
    pub config: String,
    /// The flag or field.
    pub setting: &'static str,
    /// What it must hold: a file as the node sees it, or a value.
    pub value: String,
    /// The catalog entry the file holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::model::catalog::EntryId>,
    /// What it is for.
    pub role: &'static str,
    /// The CIS Kubernetes Benchmark control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cis: Option<&'static str>,
}

/// Every setting of every component on a node of the cluster, as [`Planned`] rows, in the
/// topology's order of components.
pub fn planned(nodes: &[Node], topology: &super::Topology, catalog: &Catalog) -> Vec<Planned> {
    let by_name: HashMap<&str, &Node> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let by_component = links_by_component(topology);
    let mut entry_of: HashMap<&Path, &crate::model::catalog::EntryId> = HashMap::new();
    for e in &catalog.entries {
        for (f, _) in e.files() {
            entry_of.insert(f, &e.id);
        }
    }
    let mut out = Vec::new();
    for c in &topology.components {
        let Some(node) = c.node.as_deref().and_then(|n| by_name.get(n)) else { continue };
        let config = match (c.kind.manifest(), c.kind.config_file()) {
            (Some(m), _) => format!("{ETC_KUBERNETES}/manifests/{m}"),
            (None, Some((f, _))) => format!("/{f}"),
            (None, None) => continue,
        };
        let on = by_component.get(c.id.as_str()).map_or(&[][..], Vec::as_slice);
        for s in c.kind.settings() {
            let (value, entry) = match s.want {
                Want::Equals { value } | Want::MinTls { value } => (value.to_string(), None),
                Want::NotTrue | Want::AnonymousOff { .. } | Want::ServingBootstrap => ("false".into(), None),
                Want::StrongCiphers => ("strong suites only, or unset (Go's defaults)".into(), None),
                Want::NotAlwaysAllow { .. } if c.kind == ComponentKind::Kubelet => ("Webhook".into(), None),
                Want::NotAlwaysAllow { .. } => ("Node,RBAC".into(), None),
                _ => {
                    let Some(file) = s.file_among(node, &s.links_among(&c.id, on), topology, catalog) else { continue };
                    (node_path(node, &file), entry_of.get(file.as_path()).map(|id| (*id).clone()))
                }
            };
            out.push(Planned {
                component: c.id.clone(),
                config: config.clone(),
                setting: s.name,
                value,
                entry,
                role: s.role,
                cis: s.cis,
            });
        }
    }
    out
}

/// Every component's links (as client or server), by component id.
pub fn links_by_component(topology: &super::Topology) -> HashMap<&str, Vec<&Link>> {
    let mut out: HashMap<&str, Vec<&Link>> = HashMap::new();
    for l in &topology.links {
        out.entry(l.client.as_str()).or_default().push(l);
        out.entry(l.server.as_str()).or_default().push(l);
    }
    out
}

impl Want {
    /// Whether the setting names a file (else it is a switch that must hold a value).
    pub fn names_file(self) -> bool {
        match self {
            Want::Presents { .. }
            | Want::Trusts { .. }
            | Want::ServiceAccount { .. }
            | Want::SigningCa { .. }
            | Want::Own { .. }
            | Want::IssuerOf { .. } => true,
            Want::Equals { .. }
            | Want::NotTrue
            | Want::MinTls { .. }
            | Want::StrongCiphers
            | Want::AnonymousOff { .. }
            | Want::NotAlwaysAllow { .. }
            | Want::ServingBootstrap => false,
        }
    }

    /// The link a setting that names a file serves.
    pub fn link(self) -> Option<LinkKind> {
        match self {
            Want::Presents { link, .. } | Want::Trusts { link, .. } => Some(link),
            _ => None,
        }
    }
}

/// The tree-relative file a setting of `component` must name: `links` are the links of the
/// setting's kinds the component is on, `all` every link.
pub fn file_for(
    want: Want,
    node: &str,
    component: &str,
    links: &[&Link],
    all: &[Link],
    catalog: &Catalog,
) -> Option<PathBuf> {
    let files = |e: &Entry, part: Part| -> Option<PathBuf> {
        match &e.kind {
            EntryKind::KeyPair { key, public } => Some(if part == Part::Key { key } else { public }.clone()),
            _ => e.cert_and_key_files().map(|(c, k)| if part == Part::Key { k } else { c }.to_path_buf()),
        }
    };
    match want {
        Want::Presents { side, part, .. } => {
            let l = links.iter().find(|l| side_is(l, side, component))?;
            let id = if side == Side::Client { Some(&l.client_cert) } else { l.server_cert.as_ref() }?;
            files(catalog.get(id)?, part)
        }
        // What a side trusts may be set on the other (the apiserver tells aggregated servers),
        // or on a component of no such link (the controller-manager's own endpoint): a CA is
        // the cluster's, whichever link of the kind names it.
        Want::Trusts { side, link } => {
            let l: &Link = links
                .iter()
                .find(|l| side_is(l, side, component))
                .or(links.first())
                .copied()
                .or_else(|| all.iter().find(|l| l.kind == link))?;
            let id = if side == Side::Client { l.client_trusts.as_ref()? } else { &l.server_trusts };
            files(catalog.get(id)?, Part::Cert)
        }
        Want::Own { name, part } => files(catalog.get(&crate::model::catalog::EntryId::of_node(name, node))?, part),
        Want::IssuerOf { name } => {
            let own = catalog.get(&crate::model::catalog::EntryId::of_node(name, node))?;
            files(catalog.get(own.issuer()?)?, Part::Cert)
        }
        Want::ServiceAccount { part } => files(catalog.get(SA)?, part),
        Want::SigningCa { part } => files(catalog.get(CA)?, part),
        switch => {
            debug_assert!(!switch.names_file(), "{switch:?} names a file: give it its arm");
            None
        }
    }
}

fn side_is(l: &Link, side: Side, component: &str) -> bool {
    match side {
        Side::Client => l.client == component,
        Side::Server => l.server == component,
    }
}

/// A tree-relative file as `node` sees it: a file of its bundle (`nodes/<node>/...`) at that
/// path from `/`, anything else at its place in `/etc/kubernetes` (the top of the tree is the
/// primary control plane's, and the node holds a copy).
pub fn node_path(node: &Node, file: &Path) -> String {
    let bundle = Path::new(layout::NODES).join(&node.name);
    match file.strip_prefix(&bundle) {
        Ok(rest) => Path::new("/").join(rest).display().to_string(),
        Err(_) => Path::new(ETC_KUBERNETES).join(file).display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tls_is_told_apart_from_strong() {
        // Go's tls.InsecureCipherSuites(), and CBC with SHA-1.
        for weak in [
            "TLS_RSA_WITH_RC4_128_SHA",
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_RSA_WITH_AES_128_CBC_SHA256",
            "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
            "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
            " tls_ecdhe_rsa_with_aes_256_cbc_sha ",
        ] {
            assert!(weak_cipher(weak), "{weak}");
        }
        // The CIS Benchmark's strong list (4.2.12), and TLS 1.3's.
        for strong in [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
        ] {
            assert!(!weak_cipher(strong), "{strong}");
        }
        for v in ["VersionTLS10", "VersionTLS11", "TLS1.0", "TLS1.1", "versiontls11"] {
            assert!(below_tls12(v), "{v}");
        }
        for v in ["VersionTLS12", "VersionTLS13", "TLS1.2", "TLS1.3", ""] {
            assert!(!below_tls12(v), "{v}");
        }
    }

    #[test]
    fn every_setting_has_one_name_per_component_and_every_control_plane_component_a_manifest() {
        let mut seen = std::collections::BTreeSet::new();
        for s in SETTINGS {
            assert!(seen.insert((s.component, s.name)), "{:?} {} twice", s.component, s.name);
            let manifest = s.component.manifest().or(s.component.addon_manifest());
            assert!(
                manifest.is_some() || s.component.config_file().is_some(),
                "{:?} has settings but no manifest or configuration file",
                s.component
            );
        }
        // Every verification switch of reference §7 is there.
        for (c, n) in [
            (Etcd, "--client-cert-auth"),
            (Etcd, "--peer-client-cert-auth"),
            (ApiServer, "--kubelet-certificate-authority"),
            (Etcd, "--auto-tls"),
        ] {
            assert!(c.settings().any(|s| s.name == n), "{c:?} {n}");
        }
    }
}
