use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::*;
use crate::model::spec::ClusterSpec;
use crate::model::topology::Topology;

fn ha() -> ClusterSpec {
    ClusterSpec::from_yaml(
        r#"
controlPlaneEndpoint: lb.example.com:6443
apiServerCertSANs: [api.example.com]
nodes:
  - {name: cp1, role: control-plane, addresses: ["10.0.0.1", "fd00::1"]}
  - {name: cp2, role: control-plane, addresses: ["10.0.0.2"]}
  - {name: cp3, role: control-plane, addresses: ["10.0.0.3"]}
  - {name: w1, role: worker, addresses: ["10.0.1.1"], dnsNames: [w1.example.com]}
  - {name: w2, role: worker, addresses: ["10.0.1.2"]}
  - {name: w3, role: worker, addresses: ["10.0.1.3"]}
"#,
        Path::new("ha.yaml"),
    )
    .unwrap()
}

fn single() -> ClusterSpec {
    let mut s = ClusterSpec::builtin_default();
    s.ca_layout = CaLayout::Single;
    s
}

fn specs() -> Vec<ClusterSpec> {
    vec![ClusterSpec::builtin_default(), ha(), single()]
}

#[test]
fn every_issuer_exists_and_comes_first() {
    for spec in specs() {
        let c = Catalog::build(&spec);
        let mut seen = BTreeSet::new();
        for e in &c.entries {
            if let Some(ca) = e.issuer() {
                assert!(seen.contains(ca.as_str()), "{} is signed by {ca}, which does not come before it", e.id);
                assert!(c.get(ca).unwrap().is_ca(), "{} is signed by {ca}, which is not a CA", e.id);
            }
            seen.insert(e.id.as_str());
        }
    }
}

#[test]
fn ids_and_files_are_unique() {
    for spec in specs() {
        let c = Catalog::build(&spec);
        let ids: BTreeSet<_> = c.entries.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), c.entries.len());
        let files: Vec<_> = c.entries.iter().flat_map(|e| e.files()).map(|(f, _)| f).collect();
        let unique: BTreeSet<_> = files.iter().collect();
        assert_eq!(unique.len(), files.len(), "a file is owned by two entries");
    }
}

#[test]
fn the_primary_control_plane_is_exactly_kubeadms_tree() {
    let c = Catalog::build(&ClusterSpec::builtin_default());
    let top: BTreeSet<String> = c
        .entries
        .iter()
        .flat_map(|e| e.files())
        .map(|(f, _)| f.display().to_string())
        // kubepki's additions: kube-proxy's kubeconfig and the metrics-server add-on's certificates.
        .filter(|f| !f.starts_with("nodes/") && f != "kube-proxy.conf" && !f.starts_with("pki/metrics-server"))
        .collect();
    let kubeadm: BTreeSet<String> = [
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
        "kubelet.conf",
        "pki/ca.crt",
        "pki/ca.key",
        "pki/apiserver.crt",
        "pki/apiserver.key",
        "pki/apiserver-kubelet-client.crt",
        "pki/apiserver-kubelet-client.key",
        "pki/apiserver-etcd-client.crt",
        "pki/apiserver-etcd-client.key",
        "pki/front-proxy-ca.crt",
        "pki/front-proxy-ca.key",
        "pki/front-proxy-client.crt",
        "pki/front-proxy-client.key",
        "pki/etcd/ca.crt",
        "pki/etcd/ca.key",
        "pki/etcd/server.crt",
        "pki/etcd/server.key",
        "pki/etcd/peer.crt",
        "pki/etcd/peer.key",
        "pki/etcd/healthcheck-client.crt",
        "pki/etcd/healthcheck-client.key",
        "pki/sa.key",
        "pki/sa.pub",
    ]
    .map(String::from)
    .into();
    assert_eq!(top, kubeadm);
}

#[test]
fn reference_identities() {
    let c = Catalog::build(&ClusterSpec::builtin_default());
    let id = |id: &str| {
        let p = c.get(id).unwrap().cert().unwrap();
        (p.subject.cn.as_str(), p.subject.orgs.join(","), p.ext_key_usage.clone())
    };
    use ExtKeyUsage::*;
    assert_eq!(id("ca"), ("kubernetes", String::new(), vec![]));
    assert_eq!(id("apiserver@controlplane"), ("kube-apiserver", String::new(), vec![ServerAuth]));
    assert_eq!(
        id("apiserver-kubelet-client"),
        ("kube-apiserver-kubelet-client", "kubeadm:cluster-admins".into(), vec![ClientAuth])
    );
    assert_eq!(id("etcd-server@controlplane"), ("controlplane", String::new(), vec![ServerAuth, ClientAuth]));
    assert_eq!(id("etcd-peer@controlplane"), ("controlplane", String::new(), vec![ServerAuth, ClientAuth]));
    assert_eq!(id("etcd-healthcheck-client"), ("kube-etcd-healthcheck-client", String::new(), vec![ClientAuth]));
    assert_eq!(id("apiserver-etcd-client"), ("kube-apiserver-etcd-client", String::new(), vec![ClientAuth]));
    assert_eq!(id("front-proxy-client"), ("front-proxy-client", String::new(), vec![ClientAuth]));
    assert_eq!(id("admin.conf"), ("kubernetes-admin", "kubeadm:cluster-admins".into(), vec![ClientAuth]));
    assert_eq!(id("super-admin.conf"), ("kubernetes-super-admin", "system:masters".into(), vec![ClientAuth]));
    assert_eq!(
        id("controller-manager.conf@controlplane"),
        ("system:kube-controller-manager", String::new(), vec![ClientAuth])
    );
    assert_eq!(id("scheduler.conf@controlplane"), ("system:kube-scheduler", String::new(), vec![ClientAuth]));
    assert_eq!(id("kubelet.conf@node01"), ("system:node:node01", "system:nodes".into(), vec![ClientAuth]));
    assert_eq!(id("kubelet-serving@node01"), ("system:node:node01", "system:nodes".into(), vec![ServerAuth]));
    assert_eq!(id("kube-proxy.conf"), ("system:kube-proxy", String::new(), vec![ClientAuth]));
    for e in &c.entries {
        let Some(p) = e.cert() else { continue };
        let want: &[KeyUsage] = if p.is_ca { &CA_USAGE } else { &LEAF_USAGE };
        assert_eq!(p.key_usage, want, "{}", e.id);
        assert_eq!(p.validity, crate::model::spec::DAY * if p.is_ca { 3650 } else { 365 });
        if p.is_ca {
            assert_eq!(p.sans, [San::Dns(p.subject.cn.clone())], "a CA has one DNS SAN equal to its CN");
        }
    }
}

#[test]
fn apiserver_and_etcd_sans_follow_kubeadms_rules() {
    let spec = ha();
    let c = Catalog::build(&spec);
    let sans = |id: &str| c.get(id).unwrap().cert().unwrap().sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        sans("apiserver@cp1"),
        [
            "DNS:cp1",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "IP:10.96.0.1",
            "IP:10.0.0.1",
            "IP:fd00::1",
            "DNS:lb.example.com",
            "DNS:api.example.com"
        ]
    );
    assert_eq!(sans("etcd-server@cp2"), ["DNS:cp2", "DNS:localhost", "IP:10.0.0.2", "IP:127.0.0.1", "IP:::1"]);
    assert_eq!(sans("kubelet-serving@w1"), ["DNS:w1", "DNS:w1.example.com", "IP:10.0.1.1"]);
}

/// RBAC identities that default Kubernetes (and kubeadm) roles bind.
fn bound_by_default_rbac(cn: &str, orgs: &[String]) -> bool {
    let group = |g: &str| orgs.iter().any(|o| o == g);
    match cn {
        "system:kube-controller-manager" | "system:kube-scheduler" | "system:kube-proxy" => orgs.is_empty(),
        _ if cn.starts_with("system:node:") => orgs == ["system:nodes"],
        _ => group("kubeadm:cluster-admins") || group("system:masters"),
    }
}

#[test]
fn links_are_satisfiable_on_paper() {
    for spec in specs() {
        let c = Catalog::build(&spec);
        let t = Topology::build(&spec, &c);
        let components: BTreeSet<_> = t.components.iter().map(|x| x.id.as_str()).collect();
        for l in &t.links {
            assert!(components.contains(l.client.as_str()) && components.contains(l.server.as_str()), "{}", l.id);
            let client = c.get(&l.client_cert).unwrap_or_else(|| panic!("{}: no {}", l.id, l.client_cert));
            let cp = client.cert().unwrap();
            assert!(cp.ext_key_usage.contains(&ExtKeyUsage::ClientAuth), "{}: client lacks clientAuth", l.id);
            assert_eq!(client.issuer(), Some(&l.server_trusts), "{}: server does not trust the client's CA", l.id);
            assert!(c.get(&l.server_trusts).unwrap().is_ca());
            if let Some(server) = &l.server_cert {
                let se = c.get(server).unwrap();
                let sp = se.cert().unwrap();
                assert!(sp.ext_key_usage.contains(&ExtKeyUsage::ServerAuth), "{}: server lacks serverAuth", l.id);
                assert!(sp.sans.contains(&l.dial.host), "{}: {} not in the server's SANs", l.id, l.dial.host);
                assert_eq!(se.issuer(), l.client_trusts.as_ref(), "{}", l.id);
            }
            // Clients of the apiserver carry identities that default RBAC binds.
            if l.server.starts_with("kube-apiserver@") {
                assert!(bound_by_default_rbac(&cp.subject.cn, &cp.subject.orgs), "{}: {:?}", l.id, cp.subject);
            }
        }
    }
}

#[test]
fn system_masters_only_in_super_admin() {
    for spec in specs() {
        let c = Catalog::build(&spec);
        for e in &c.entries {
            if e.cert().is_some_and(|p| p.subject.orgs.iter().any(|o| o == "system:masters")) {
                assert_eq!(e.id, "super-admin.conf");
            }
        }
    }
}

#[test]
fn bundles_hold_what_each_node_needs_and_no_more() {
    let spec = ha();
    let c = Catalog::build(&spec);
    let bundle = |name: &str| {
        let node = spec.nodes.iter().find(|n| n.name == name).unwrap();
        c.bundle(&spec, node).into_iter().map(|(_, d, _)| d.display().to_string()).collect::<BTreeSet<_>>()
    };
    let w1 = bundle("w1");
    let want: BTreeSet<String> = [
        "nodes/w1/etc/kubernetes/pki/ca.crt",
        "nodes/w1/etc/kubernetes/kubelet.conf",
        "nodes/w1/etc/kubernetes/kube-proxy.conf",
        "nodes/w1/var/lib/kubelet/pki/kubelet.crt",
        "nodes/w1/var/lib/kubelet/pki/kubelet.key",
    ]
    .map(String::from)
    .into();
    assert_eq!(w1, want, "a worker gets the CA certificate, never a CA key");
    let cp2 = bundle("cp2");
    for f in ["pki/ca.key", "pki/etcd/ca.key", "pki/sa.key", "pki/apiserver.crt", "pki/etcd/peer.key", "admin.conf"] {
        assert!(cp2.contains(&format!("nodes/cp2/etc/kubernetes/{f}")), "cp2 lacks {f}");
    }
    assert!(!cp2.contains("nodes/cp2/etc/kubernetes/super-admin.conf"), "break-glass stays on the primary");
    assert!(bundle("cp1").contains("nodes/cp1/etc/kubernetes/super-admin.conf"));
    // Same-named files in a bundle come from one source each.
    let mut sources: HashMap<String, usize> = HashMap::new();
    for n in &spec.nodes {
        for (_, d, _) in c.bundle(&spec, n) {
            *sources.entry(d.display().to_string()).or_default() += 1;
        }
    }
    assert!(sources.values().all(|n| *n == 1));
    // The one-pass index gives every node the same bundle, in the same order.
    let bundles = c.bundles();
    for n in &spec.nodes {
        assert_eq!(bundles.of(&spec, n), c.bundle(&spec, n), "{}", n.name);
        let own: Vec<&str> = bundles.own(&n.name).iter().map(|&i| c.entries[i].id.as_str()).collect();
        assert!(!own.is_empty() && own.iter().all(|id| c.get(id).unwrap().node() == Some(&*n.name)));
    }
}

#[test]
fn single_ca_layout_signs_everything_with_one_ca() {
    let c = Catalog::build(&single());
    assert_eq!(c.cas().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["ca"]);
    for e in &c.entries {
        if let Some(ca) = e.issuer() {
            assert_eq!(ca, "ca", "{}", e.id);
        }
    }
}

#[test]
fn properties_set_by_the_builder_not_by_name_matching() {
    let c = Catalog::build(&crate::model::spec::ClusterSpec::builtin_default());
    let glass: Vec<&str> = c.entries.iter().filter(|e| e.break_glass).map(|e| e.id.as_str()).collect();
    assert_eq!(glass, ["super-admin.conf"]);
    let mut added: Vec<&str> = c.entries.iter().filter(|e| e.kubeadm_instead.is_some()).map(|e| e.name()).collect();
    added.dedup();
    added.sort_unstable();
    added.dedup();
    assert_eq!(added, ["kube-proxy.conf", "kubelet-serving", "metrics-server", "metrics-server-kubelet-client"]);
}

#[test]
fn entry_ids_read_back_as_written_and_refuse_other_names() {
    let c = Catalog::build(&crate::model::spec::ClusterSpec::builtin_default());
    for e in &c.entries {
        let back: EntryId = e.id.to_string().parse().unwrap();
        assert_eq!(back, e.id);
        assert_eq!((back.name(), back.node()), (e.name(), e.node()));
        assert_eq!(c.get(&e.id).map(|x| &x.id), Some(&e.id), "the index finds {}", e.id);
    }
    for bad in ["apiserver-x", "kubelet.conf@Node_01", "", "@node01"] {
        assert!(bad.parse::<EntryId>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn metrics_server_serves_its_service_names_and_scrapes_with_a_client_certificate() {
    let c = Catalog::build(&ClusterSpec::builtin_default());
    let serving = c.get("metrics-server").unwrap();
    let p = serving.cert().unwrap();
    assert_eq!(p.subject.cn, "metrics-server");
    assert_eq!(p.ext_key_usage, [ExtKeyUsage::ServerAuth]);
    for name in ["metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"] {
        assert!(p.sans.contains(&San::Dns(name.into())), "{name}");
    }
    assert_eq!(serving.issuer().map(|i| i.as_str()), Some("ca"), "the APIService's caBundle holds the cluster CA");
    assert_eq!(serving.cert_and_key_files().unwrap().0, Path::new("pki/metrics-server.crt"));
    let client = c.get("metrics-server-kubelet-client").unwrap();
    assert_eq!(client.cert().unwrap().ext_key_usage, [ExtKeyUsage::ClientAuth]);
    assert_eq!(client.issuer().map(|i| i.as_str()), Some("ca"), "kubelets trust the cluster CA for clients");
    assert_eq!(serving.audience, Audience::Primary, "a Secret's content, not a node's file");
    // A cluster without the add-on has neither.
    let mut bare = ClusterSpec::builtin_default();
    bare.addons.clear();
    let c = Catalog::build(&bare);
    assert!(c.get("metrics-server").is_none() && c.get("metrics-server-kubelet-client").is_none());
}
