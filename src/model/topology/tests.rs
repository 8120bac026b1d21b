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
    // 1 control plane, 3 nodes with kubelets and kube-proxies.
    let want = BTreeMap::from([(1, 1), (2, 1), (3, 1), (4, 1), (5, 3), (6, 3), (7, 1), (9, 1), (10, 3), (11, 1)]);
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
    let want =
        BTreeMap::from([(1, 3), (2, 3), (3, 3), (4, 3), (5, 12), (6, 12), (7, 3), (8, 6), (9, 3), (10, 12), (11, 3)]);
    assert_eq!(m, want);
    let t = Topology::build(&spec, &Catalog::build(&spec));
    let peer = t.links.iter().find(|l| l.kind == LinkKind::EtcdPeer).unwrap();
    assert_eq!(peer.dial.url(), "https://10.0.0.2:2380");
    assert_eq!(peer.client_cert, "etcd-peer@a");
    assert_eq!(peer.server_cert.as_deref(), Some("etcd-peer@b"));
}
