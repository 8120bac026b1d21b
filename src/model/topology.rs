//! The topology: the components of a cluster and the TLS links between them (who dials whom,
//! with which credential, trusting which CA, at which address).
//!
//! Data built from the cluster description and the catalog; verify, handshakes, graph, renew
//! and rotate all walk it. The numbers are the rows of the reference table of links.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::model::catalog::{self, Catalog, EntryId, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT};
use crate::model::spec::{Addon, CaLayout, ClusterSpec, Endpoint, Node, San};
use crate::model::vocabulary::entry;

/// What a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentKind {
    /// kube-apiserver (server :6443; client of etcd, kubelets, aggregated API servers).
    ApiServer,
    /// An etcd member (client :2379, peer :2380).
    Etcd,
    /// A kubelet (server :10250; client of the apiserver).
    Kubelet,
    /// kube-scheduler.
    Scheduler,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-proxy.
    KubeProxy,
    /// A person with kubectl and `admin.conf`.
    Admin,
    /// A person with kubectl and the break-glass `super-admin.conf`.
    SuperAdmin,
    /// etcdctl for health checks.
    EtcdHealthcheck,
    /// An aggregated API server kubepki does not issue for (it brings its own certificate).
    AggregatedApiServer,
    /// metrics-server (the add-on): an aggregated API server with kubepki's serving
    /// certificate, and a client of every kubelet. A Deployment, on no node in particular.
    MetricsServer,
}

/// The trust domain a component's links live in (for grouping in pictures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustDomain {
    /// Signed by / trusting the cluster CA.
    Cluster,
    /// etcd's CA.
    Etcd,
    /// The front-proxy CA.
    FrontProxy,
}

/// One running party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Unique id: `kube-apiserver@cp1`, `kubectl-admin`.
    pub id: String,
    /// What it is.
    pub kind: ComponentKind,
    /// The node it runs on, if any.
    pub node: Option<String>,
}

/// The kind of a link: a row of the reference table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// 1: kubectl (admin) → apiserver.
    AdminToApiServer,
    /// 2: kubectl (break-glass) → apiserver.
    SuperAdminToApiServer,
    /// 3: kube-scheduler → apiserver.
    SchedulerToApiServer,
    /// 4: kube-controller-manager → apiserver.
    ControllerManagerToApiServer,
    /// 5: kube-proxy → apiserver.
    KubeProxyToApiServer,
    /// 6: kubelet → apiserver.
    KubeletToApiServer,
    /// 7: apiserver → etcd.
    ApiServerToEtcd,
    /// 8: etcd member ↔ etcd member.
    EtcdPeer,
    /// 9: etcdctl health check → etcd.
    HealthcheckToEtcd,
    /// 10: apiserver → kubelet.
    ApiServerToKubelet,
    /// 11: apiserver → aggregated API server (metrics-server among them).
    ApiServerToAggregated,
    /// 12: metrics-server → kubelet (its scrape of every node).
    MetricsServerToKubelet,
}

impl ComponentKind {
    /// The component's name (`kube-apiserver`, `kubectl-admin`).
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::ApiServer => "kube-apiserver",
            ComponentKind::Etcd => "etcd",
            ComponentKind::Kubelet => "kubelet",
            ComponentKind::Scheduler => "kube-scheduler",
            ComponentKind::ControllerManager => "kube-controller-manager",
            ComponentKind::KubeProxy => "kube-proxy",
            ComponentKind::Admin => "kubectl-admin",
            ComponentKind::SuperAdmin => "kubectl-super-admin",
            ComponentKind::EtcdHealthcheck => "etcdctl-healthcheck",
            ComponentKind::AggregatedApiServer => "aggregated-apiserver",
            ComponentKind::MetricsServer => "metrics-server",
        }
    }

    /// The id of this kind of component on a node (`kube-apiserver@cp1`), or of the one
    /// that runs on no node of the cluster (`kubectl-admin`).
    pub fn id_on(self, node: Option<&Node>) -> String {
        match node {
            Some(n) => format!("{}@{}", self.name(), n.name),
            None => self.name().to_string(),
        }
    }
}

impl LinkKind {
    /// The row number in the reference table.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }
}

/// One TLS connection: a client dials a server; each side presents a certificate and
/// verifies the other's against the CA it trusts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Unique id: `kubelet@node01 -> kube-apiserver@controlplane`.
    pub id: String,
    /// Which row of the reference table.
    pub kind: LinkKind,
    /// The client component.
    pub client: String,
    /// The server component.
    pub server: String,
    /// The catalog entry the client presents.
    pub client_cert: EntryId,
    /// The catalog entry the server presents (`None`: not kubepki's, e.g. an extension's own).
    pub server_cert: Option<EntryId>,
    /// The CA the client verifies the server with (`None`: not kubepki's to say).
    pub client_trusts: Option<EntryId>,
    /// The CA the server verifies client certificates with.
    pub server_trusts: EntryId,
    /// The address the client dials (the server's SANs must cover its host).
    pub dial: Endpoint,
    /// Trust domain of the link.
    pub domain: TrustDomain,
}

/// Components and links of a cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    /// Every component.
    pub components: Vec<Component>,
    /// Every link, in reference-table order.
    pub links: Vec<Link>,
}

impl Topology {
    /// The topology of a cluster; entry ids refer to `catalog`.
    pub fn build(spec: &ClusterSpec, catalog: &Catalog) -> Topology {
        let mut t = Topology { components: Vec::new(), links: Vec::new() };
        let shared = EntryId::shared;
        let own = |name, n: &Node| EntryId::of_node(name, &n.name);
        let ca = shared(catalog::CA);
        let etcd_ca = shared(if catalog.get(catalog::ETCD_CA).is_some() { catalog::ETCD_CA } else { catalog::CA });
        let fp_ca = shared(match spec.ca_layout {
            CaLayout::Kubeadm => catalog::FRONT_PROXY_CA,
            CaLayout::Single => catalog::CA,
        });
        let cps: Vec<&Node> = spec.control_planes().collect();
        let endpoint = &spec.control_plane_endpoint;
        let api = |n: &Node| ComponentKind::ApiServer.id_on(Some(n));
        let etcd = |n: &Node| ComponentKind::Etcd.id_on(Some(n));

        for cp in &cps {
            for kind in [
                ComponentKind::ApiServer,
                ComponentKind::Etcd,
                ComponentKind::Scheduler,
                ComponentKind::ControllerManager,
            ] {
                t.component(kind, Some(*cp));
            }
        }
        for n in &spec.nodes {
            t.component(ComponentKind::Kubelet, Some(n));
            t.component(ComponentKind::KubeProxy, Some(n));
        }
        for kind in [
            ComponentKind::Admin,
            ComponentKind::SuperAdmin,
            ComponentKind::EtcdHealthcheck,
            ComponentKind::AggregatedApiServer,
        ] {
            t.component(kind, None);
        }
        let metrics_server = spec.has(Addon::MetricsServer);
        if metrics_server {
            t.component(ComponentKind::MetricsServer, None);
        }

        // Clients of the apiserver. Those that dial the control-plane endpoint may land on any
        // control plane (a load balancer), so each apiserver's certificate must satisfy them.
        let to_api = |kind, client: ComponentKind, on: Option<&Node>, cert: EntryId, cp: &Node, dial: &Endpoint| {
            let client = client.id_on(on);
            Link {
                id: format!("{client} -> {}", api(cp)),
                kind,
                client,
                server: api(cp),
                client_cert: cert,
                server_cert: Some(own(entry::APISERVER, cp)),
                client_trusts: Some(ca.clone()),
                server_trusts: ca.clone(),
                dial: dial.clone(),
                domain: TrustDomain::Cluster,
            }
        };
        for cp in &cps {
            let cert = shared(entry::ADMIN_CONF);
            t.links.push(to_api(LinkKind::AdminToApiServer, ComponentKind::Admin, None, cert, cp, endpoint));
        }
        for cp in &cps {
            let cert = shared(entry::SUPER_ADMIN_CONF);
            t.links.push(to_api(LinkKind::SuperAdminToApiServer, ComponentKind::SuperAdmin, None, cert, cp, endpoint));
        }
        for cp in &cps {
            let local = spec.local_endpoint(cp);
            let cert = own(entry::SCHEDULER_CONF, cp);
            t.links.push(to_api(LinkKind::SchedulerToApiServer, ComponentKind::Scheduler, Some(cp), cert, cp, &local));
        }
        for cp in &cps {
            let local = spec.local_endpoint(cp);
            let cert = own(entry::CONTROLLER_MANAGER_CONF, cp);
            let kind = LinkKind::ControllerManagerToApiServer;
            t.links.push(to_api(kind, ComponentKind::ControllerManager, Some(cp), cert, cp, &local));
        }
        for n in &spec.nodes {
            for cp in &cps {
                let cert = shared(entry::KUBE_PROXY_CONF);
                t.links.push(to_api(
                    LinkKind::KubeProxyToApiServer,
                    ComponentKind::KubeProxy,
                    Some(n),
                    cert,
                    cp,
                    endpoint,
                ));
            }
        }
        for n in &spec.nodes {
            for cp in &cps {
                let cert = own(entry::KUBELET_CONF, n);
                t.links.push(to_api(LinkKind::KubeletToApiServer, ComponentKind::Kubelet, Some(n), cert, cp, endpoint));
            }
        }

        // etcd. kubeadm points each apiserver at its local member (--etcd-servers=https://127.0.0.1:2379).
        let loopback = |port| Endpoint { host: San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), port };
        let to_etcd = |kind, client: String, cert: &'static str, cp: &Node| Link {
            id: format!("{client} -> {}", etcd(cp)),
            kind,
            client,
            server: etcd(cp),
            client_cert: shared(cert),
            server_cert: Some(own(entry::ETCD_SERVER, cp)),
            client_trusts: Some(etcd_ca.clone()),
            server_trusts: etcd_ca.clone(),
            dial: loopback(ETCD_CLIENT_PORT),
            domain: TrustDomain::Etcd,
        };
        for cp in &cps {
            t.links.push(to_etcd(LinkKind::ApiServerToEtcd, api(cp), entry::APISERVER_ETCD_CLIENT, cp));
        }
        for a in &cps {
            for b in cps.iter().filter(|b| b.name != a.name) {
                t.links.push(Link {
                    id: format!("{} -> {}", etcd(a), etcd(b)),
                    kind: LinkKind::EtcdPeer,
                    client: etcd(a),
                    server: etcd(b),
                    client_cert: own(entry::ETCD_PEER, a),
                    server_cert: Some(own(entry::ETCD_PEER, b)),
                    client_trusts: Some(etcd_ca.clone()),
                    server_trusts: etcd_ca.clone(),
                    dial: Endpoint { host: San::Ip(b.address()), port: ETCD_PEER_PORT },
                    domain: TrustDomain::Etcd,
                });
            }
        }
        for cp in &cps {
            let client = ComponentKind::EtcdHealthcheck.id_on(None);
            t.links.push(to_etcd(LinkKind::HealthcheckToEtcd, client, entry::ETCD_HEALTHCHECK_CLIENT, cp));
        }

        // The apiserver as a client of every kubelet, then of aggregated API servers.
        for cp in &cps {
            for n in &spec.nodes {
                let kubelet = ComponentKind::Kubelet.id_on(Some(n));
                t.links.push(Link {
                    id: format!("{} -> {kubelet}", api(cp)),
                    kind: LinkKind::ApiServerToKubelet,
                    client: api(cp),
                    server: kubelet,
                    client_cert: shared(entry::APISERVER_KUBELET_CLIENT),
                    server_cert: Some(own(entry::KUBELET_SERVING, n)),
                    client_trusts: Some(ca.clone()),
                    server_trusts: ca.clone(),
                    dial: Endpoint { host: San::Ip(n.address()), port: KUBELET_PORT },
                    domain: TrustDomain::Cluster,
                });
            }
        }
        let aggregated = ComponentKind::AggregatedApiServer.id_on(None);
        for cp in &cps {
            t.links.push(Link {
                id: format!("{} -> {aggregated}", api(cp)),
                kind: LinkKind::ApiServerToAggregated,
                client: api(cp),
                server: aggregated.clone(),
                client_cert: shared(entry::FRONT_PROXY_CLIENT),
                server_cert: None,
                client_trusts: None,
                server_trusts: fp_ca.clone(),
                dial: Endpoint { host: San::Dns(aggregated.clone()), port: 443 },
                domain: TrustDomain::FrontProxy,
            });
        }
        if metrics_server {
            t.metrics_server(spec, &cps, &ca, &fp_ca);
        }
        t
    }

    /// metrics-server's links: each apiserver proxies to it (link 11: the front-proxy client
    /// certificate, which metrics-server checks with the front-proxy CA; its serving
    /// certificate, which the apiserver checks with the APIService's `caBundle`, the cluster
    /// CA), and it scrapes every kubelet (link 12: its kubelet client certificate; the kubelet's
    /// serving certificate, checked with the cluster CA, at the node's InternalIP, as
    /// `--kubelet-preferred-address-types=InternalIP` says).
    fn metrics_server(&mut self, spec: &ClusterSpec, cps: &[&Node], ca: &EntryId, fp_ca: &EntryId) {
        use crate::model::vocabulary::metrics_server::{SERVICE_HOST, SERVICE_PORT};
        let ms = ComponentKind::MetricsServer.id_on(None);
        for cp in cps {
            let api = ComponentKind::ApiServer.id_on(Some(cp));
            self.links.push(Link {
                id: format!("{api} -> {ms}"),
                kind: LinkKind::ApiServerToAggregated,
                client: api,
                server: ms.clone(),
                client_cert: EntryId::shared(entry::FRONT_PROXY_CLIENT),
                server_cert: Some(EntryId::shared(entry::METRICS_SERVER)),
                client_trusts: Some(ca.clone()),
                server_trusts: fp_ca.clone(),
                dial: Endpoint { host: San::Dns(SERVICE_HOST.into()), port: SERVICE_PORT },
                domain: TrustDomain::FrontProxy,
            });
        }
        for n in &spec.nodes {
            let kubelet = ComponentKind::Kubelet.id_on(Some(n));
            self.links.push(Link {
                id: format!("{ms} -> {kubelet}"),
                kind: LinkKind::MetricsServerToKubelet,
                client: ms.clone(),
                server: kubelet,
                client_cert: EntryId::shared(entry::METRICS_SERVER_KUBELET_CLIENT),
                server_cert: Some(EntryId::of_node(entry::KUBELET_SERVING, &n.name)),
                client_trusts: Some(ca.clone()),
                server_trusts: ca.clone(),
                dial: Endpoint { host: San::Ip(n.address()), port: KUBELET_PORT },
                domain: TrustDomain::Cluster,
            });
        }
    }

    fn component(&mut self, kind: ComponentKind, node: Option<&Node>) {
        self.components.push(Component { id: kind.id_on(node), kind, node: node.map(|n| n.name.clone()) });
    }
}

pub mod wiring;

#[cfg(test)]
mod tests;
