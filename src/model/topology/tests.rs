use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::model::catalog::Catalog;

fn count(spec: &ClusterSpec) -> BTreeMap<u8, usize> {
    let t = Topology::build(spec, &Catalog::build(spec));
    let mut m = BTreeMap::new();
    for l in &t.links {
        *m.entry(l.kind.number()).or_default() += 1;
    }
    m
}

#[test]
fn default_cluster_links() {
    let m = count(&ClusterSpec::builtin_default());
    // 1 control plane, 3 nodes with kubelets and kube-proxies; the apiserver proxies to an
    // extension and to metrics-server, which scrapes the 3 kubelets.
    let want =
        BTreeMap::from([(1, 1), (2, 1), (3, 1), (4, 1), (5, 3), (6, 3), (7, 1), (9, 1), (10, 3), (11, 2), (12, 3)]);
    assert_eq!(m, want);
}

#[test]
fn ha_cluster_links() {
    let spec = ClusterSpec::from_yaml(
        "nodes:\n- {name: a, role: control-plane, addresses: [10.0.0.1]}\n- {name: b, role: control-plane, addresses: [10.0.0.2]}\n- {name: c, role: control-plane, addresses: [10.0.0.3]}\n- {name: w, role: worker, addresses: [10.0.1.1]}\n",
        Path::new("ha.yaml"),
    )
    .unwrap();
    let m = count(&spec);
    // Endpoint clients reach every apiserver; etcd peers form 3*2 ordered pairs; each
    // apiserver dials each of the 4 kubelets.
    let want = BTreeMap::from([
        (1, 3),
        (2, 3),
        (3, 3),
        (4, 3),
        (5, 12),
        (6, 12),
        (7, 3),
        (8, 6),
        (9, 3),
        (10, 12),
        (11, 6),
        (12, 4),
    ]);
    assert_eq!(m, want);
    let t = Topology::build(&spec, &Catalog::build(&spec));
    let peer = t.links.iter().find(|l| l.kind == LinkKind::EtcdPeer).unwrap();
    assert_eq!(peer.dial.url(), "https://10.0.0.2:2380");
    assert_eq!(peer.client_cert, "etcd-peer@a");
    assert_eq!(peer.server_cert.as_deref(), Some("etcd-peer@b"));
}

#[test]
fn metrics_server_is_an_aggregated_server_with_kubepkis_certificate_and_a_client_of_every_kubelet() {
    let spec = ClusterSpec::builtin_default();
    let t = Topology::build(&spec, &Catalog::build(&spec));
    let proxied = t.links.iter().find(|l| l.server == "metrics-server").unwrap();
    assert_eq!(proxied.kind, LinkKind::ApiServerToAggregated);
    assert_eq!(proxied.client_cert, "front-proxy-client");
    assert_eq!(proxied.server_cert.as_deref(), Some("metrics-server"));
    assert_eq!(proxied.client_trusts.as_deref(), Some("ca"), "the APIService's caBundle: the cluster CA");
    assert_eq!(proxied.server_trusts, "front-proxy-ca", "--requestheader-client-ca-file");
    assert_eq!(proxied.dial.url(), "https://metrics-server.kube-system.svc:443");
    let scrapes: Vec<&Link> = t.links.iter().filter(|l| l.kind == LinkKind::MetricsServerToKubelet).collect();
    assert_eq!(scrapes.len(), spec.nodes.len());
    for (l, n) in scrapes.iter().zip(&spec.nodes) {
        assert_eq!(l.server_cert.as_deref(), Some(format!("kubelet-serving@{}", n.name).as_str()));
        assert_eq!(l.client_trusts.as_deref(), Some("ca"));
        assert_eq!(l.dial.host, San::Ip(n.address()), "InternalIP: the kubelet's certificate needs the IP SAN");
        assert_eq!(l.dial.port, 10250);
    }
    // Without the add-on: neither the component nor its links.
    let mut bare = spec.clone();
    bare.addons.clear();
    let t = Topology::build(&bare, &Catalog::build(&bare));
    assert!(t.components.iter().all(|c| c.kind != ComponentKind::MetricsServer));
    assert!(t.links.iter().all(|l| l.client != "metrics-server" && l.server != "metrics-server"));
}
