//! The topology: the components of a cluster and the TLS links between them (who dials whom,
//! with which credential, trusting which CA, at which address).
//!
//! Data built from the cluster description and the catalog; verify, handshakes, graph, renew
//! and rotate all walk it. The numbers are the rows of the reference table of links.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::catalog::{self, Catalog, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBELET_PORT};
use crate::spec::{CaLayout, ClusterSpec, Endpoint, Node, San};

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
    /// An aggregated API server (metrics-server and the like).
    AggregatedApiServer,
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
    /// 11: apiserver → aggregated API server.
    ApiServerToAggregated,
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
    pub client_cert: String,
    /// The catalog entry the server presents (`None`: not kubepki's, e.g. an extension's own).
    pub server_cert: Option<String>,
    /// The CA the client verifies the server with (`None`: not kubepki's to say).
    pub client_trusts: Option<String>,
    /// The CA the server verifies client certificates with.
    pub server_trusts: String,
    /// The address the client dials (the server's SANs must cover its host).
    pub dial: Endpoint,
    /// Trust domain of the link.
    pub domain: TrustDomain,
}

/// Components and links of a cluster.
#[derive(Clone, Debug, Serialize)]
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
        let etcd_ca = if catalog.get(catalog::ETCD_CA).is_some() { catalog::ETCD_CA } else { catalog::CA };
        let fp_ca = match spec.ca_layout {
            CaLayout::Kubeadm => catalog::FRONT_PROXY_CA,
            CaLayout::Single => catalog::CA,
        };
        let cps: Vec<&Node> = spec.control_planes().collect();
        let endpoint = &spec.control_plane_endpoint;
        let api = |n: &Node| format!("kube-apiserver@{}", n.name);
        let etcd = |n: &Node| format!("etcd@{}", n.name);

        for cp in &cps {
            t.component(&api(cp), ComponentKind::ApiServer, Some(*cp));
            t.component(&etcd(cp), ComponentKind::Etcd, Some(*cp));
            t.component(&format!("kube-scheduler@{}", cp.name), ComponentKind::Scheduler, Some(*cp));
            t.component(&format!("kube-controller-manager@{}", cp.name), ComponentKind::ControllerManager, Some(*cp));
        }
        for n in &spec.nodes {
            t.component(&format!("kubelet@{}", n.name), ComponentKind::Kubelet, Some(n));
            t.component(&format!("kube-proxy@{}", n.name), ComponentKind::KubeProxy, Some(n));
        }
        t.component("kubectl-admin", ComponentKind::Admin, None);
        t.component("kubectl-super-admin", ComponentKind::SuperAdmin, None);
        t.component("etcdctl-healthcheck", ComponentKind::EtcdHealthcheck, None);
        t.component("aggregated-apiserver", ComponentKind::AggregatedApiServer, None);

        // Clients of the apiserver. Those that dial the control-plane endpoint may land on any
        // control plane (a load balancer), so each apiserver's certificate must satisfy them.
        let to_api = |kind, client: String, cert: String, cp: &Node, dial: &Endpoint| Link {
            id: format!("{client} -> {}", api(cp)),
            kind,
            client,
            server: api(cp),
            client_cert: cert,
            server_cert: Some(format!("apiserver@{}", cp.name)),
            client_trusts: Some(catalog::CA.into()),
            server_trusts: catalog::CA.into(),
            dial: dial.clone(),
            domain: TrustDomain::Cluster,
        };
        for cp in &cps {
            t.links.push(to_api(LinkKind::AdminToApiServer, "kubectl-admin".into(), "admin.conf".into(), cp, endpoint));
        }
        for cp in &cps {
            t.links.push(to_api(
                LinkKind::SuperAdminToApiServer,
                "kubectl-super-admin".into(),
                "super-admin.conf".into(),
                cp,
                endpoint,
            ));
        }
        for cp in &cps {
            let local = spec.local_endpoint(cp);
            t.links.push(to_api(
                LinkKind::SchedulerToApiServer,
                format!("kube-scheduler@{}", cp.name),
                format!("scheduler.conf@{}", cp.name),
                cp,
                &local,
            ));
        }
        for cp in &cps {
            let local = spec.local_endpoint(cp);
            t.links.push(to_api(
                LinkKind::ControllerManagerToApiServer,
                format!("kube-controller-manager@{}", cp.name),
                format!("controller-manager.conf@{}", cp.name),
                cp,
                &local,
            ));
        }
        for n in &spec.nodes {
            for cp in &cps {
                t.links.push(to_api(
                    LinkKind::KubeProxyToApiServer,
                    format!("kube-proxy@{}", n.name),
                    "kube-proxy.conf".into(),
                    cp,
                    endpoint,
                ));
            }
        }
        for n in &spec.nodes {
            for cp in &cps {
                t.links.push(to_api(
                    LinkKind::KubeletToApiServer,
                    format!("kubelet@{}", n.name),
                    format!("kubelet.conf@{}", n.name),
                    cp,
                    endpoint,
                ));
            }
        }

        // etcd. kubeadm points each apiserver at its local member (--etcd-servers=https://127.0.0.1:2379).
        let loopback = |port| Endpoint { host: San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), port };
        let to_etcd = |kind, client: String, cert: &str, cp: &Node| Link {
            id: format!("{client} -> {}", etcd(cp)),
            kind,
            client,
            server: etcd(cp),
            client_cert: cert.into(),
            server_cert: Some(format!("etcd-server@{}", cp.name)),
            client_trusts: Some(etcd_ca.into()),
            server_trusts: etcd_ca.into(),
            dial: loopback(ETCD_CLIENT_PORT),
            domain: TrustDomain::Etcd,
        };
        for cp in &cps {
            t.links.push(to_etcd(LinkKind::ApiServerToEtcd, api(cp), "apiserver-etcd-client", cp));
        }
        for a in &cps {
            for b in cps.iter().filter(|b| b.name != a.name) {
                t.links.push(Link {
                    id: format!("{} -> {}", etcd(a), etcd(b)),
                    kind: LinkKind::EtcdPeer,
                    client: etcd(a),
                    server: etcd(b),
                    client_cert: format!("etcd-peer@{}", a.name),
                    server_cert: Some(format!("etcd-peer@{}", b.name)),
                    client_trusts: Some(etcd_ca.into()),
                    server_trusts: etcd_ca.into(),
                    dial: Endpoint { host: San::Ip(b.address()), port: ETCD_PEER_PORT },
                    domain: TrustDomain::Etcd,
                });
            }
        }
        for cp in &cps {
            t.links.push(to_etcd(
                LinkKind::HealthcheckToEtcd,
                "etcdctl-healthcheck".into(),
                "etcd-healthcheck-client",
                cp,
            ));
        }

        // The apiserver as a client of every kubelet, then of aggregated API servers.
        for cp in &cps {
            for n in &spec.nodes {
                t.links.push(Link {
                    id: format!("{} -> kubelet@{}", api(cp), n.name),
                    kind: LinkKind::ApiServerToKubelet,
                    client: api(cp),
                    server: format!("kubelet@{}", n.name),
                    client_cert: "apiserver-kubelet-client".into(),
                    server_cert: Some(format!("kubelet-serving@{}", n.name)),
                    client_trusts: Some(catalog::CA.into()),
                    server_trusts: catalog::CA.into(),
                    dial: Endpoint { host: San::Ip(n.address()), port: KUBELET_PORT },
                    domain: TrustDomain::Cluster,
                });
            }
        }
        for cp in &cps {
            t.links.push(Link {
                id: format!("{} -> aggregated-apiserver", api(cp)),
                kind: LinkKind::ApiServerToAggregated,
                client: api(cp),
                server: "aggregated-apiserver".into(),
                client_cert: "front-proxy-client".into(),
                server_cert: None,
                client_trusts: None,
                server_trusts: fp_ca.into(),
                dial: Endpoint { host: San::Dns("aggregated-apiserver".into()), port: 443 },
                domain: TrustDomain::FrontProxy,
            });
        }
        t
    }

    fn component(&mut self, id: &str, kind: ComponentKind, node: Option<&Node>) {
        self.components.push(Component { id: id.into(), kind, node: node.map(|n| n.name.clone()) });
    }
}

#[cfg(test)]
mod tests;
