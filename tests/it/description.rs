//! The description recorded in a tree is its truth: every command uses it, a different one
//! given with --config is refused (showing the difference) unless --update-description.

use crate::support::TestEnv;

const HA: &str = "controlPlaneEndpoint: lb.example.com:6443
apiServerCertSANs: [lb.example.com]
nodes:
  - {name: cp1, role: control-plane, addresses: [127.0.1.1]}
  - {name: cp2, role: control-plane, addresses: [127.0.1.2]}
  - {name: cp3, role: control-plane, addresses: [127.0.1.3]}
  - {name: w1, role: worker, addresses: [127.0.1.11]}
  - {name: w2, role: worker, addresses: [127.0.1.12]}
";

fn recorded(tree: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(tree.join(".kubepki/cluster.json")).unwrap()).unwrap()
}

fn node_names(v: &serde_json::Value) -> Vec<String> {
    v["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn init_without_config_keeps_the_recorded_cluster_even_with_force() {
    let env = TestEnv::new();
    let ha = env.write("ha.yaml", HA);
    let tree = env.init("tree", &["--config", ha.to_str().unwrap()]);
    let before = recorded(&tree);
    let dir = tree.to_str().unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["init", "--dir", dir];
        args.extend_from_slice(extra);
        env.kubepki_ok(&args);
        assert_eq!(recorded(&tree), before, "init {extra:?} changed the recorded description");
        assert!(!tree.join("nodes/node01").exists(), "init {extra:?} made the built-in default's nodes");
        let api = std::fs::read_to_string(tree.join("pki/apiserver.crt")).unwrap();
        let info = kubepki::x509::certinfo::CertInfo::from_pem(&api, &tree.join("pki/apiserver.crt")).unwrap();
        assert!(info.sans.iter().any(|s| s.to_string() == "DNS:lb.example.com"), "init {extra:?} dropped the SAN");
    }
    let out = env.kubepki(&["verify", "--dir", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn another_description_is_refused_with_its_differences_unless_the_user_updates_it() {
    let env = TestEnv::new();
    let ha = env.write("ha.yaml", HA);
    let tree = env.init("tree", &["--config", ha.to_str().unwrap()]);
    let dir = tree.to_str().unwrap();
    let bigger = env.write("bigger.yaml", &format!("{HA}  - {{name: w3, role: worker, addresses: [127.0.1.13]}}\n"));
    let snapshot = crate::support::snapshot(&tree);
    for cmd in [&["verify"][..], &["init"][..], &["renew", "--all"][..], &["graph"][..]] {
        let mut args = cmd.to_vec();
        args.extend_from_slice(&["--dir", dir, "--config", bigger.to_str().unwrap()]);
        let out = env.kubepki(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("records another description"), "{cmd:?}: {err}");
        assert!(err.contains("nodes: w3 (worker, 127.0.1.13) added"), "{cmd:?}: {err}");
        assert!(err.contains("--update-description"), "{cmd:?}: {err}");
    }
    assert_eq!(crate::support::snapshot(&tree), snapshot, "a refused command changed the tree");
    env.kubepki_ok(&["init", "--dir", dir, "--config", bigger.to_str().unwrap(), "--update-description"]);
    assert_eq!(node_names(&recorded(&tree)), ["cp1", "cp2", "cp3", "w1", "w2", "w3"]);
    assert!(tree.join("nodes/w3/var/lib/kubelet/pki/kubelet.crt").is_file());
    // The same description again is no change.
    env.kubepki_ok(&["verify", "--dir", dir, "--config", bigger.to_str().unwrap()]);
}

#[test]
fn a_san_added_is_recorded_and_kept_by_init_force_renew_and_node_add() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let dir = tree.to_str().unwrap();
    let has_san = || {
        let path = tree.join("pki/apiserver.crt");
        let info =
            kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        info.sans.iter().any(|s| s.to_string() == "DNS:lb.example.com")
    };
    // By kubeadm's name, the SAN is every control plane's: the description's apiServerCertSANs.
    env.kubepki_ok(&["san", "add", "apiserver", "lb.example.com", "--dir", dir]);
    assert!(has_san());
    assert_eq!(recorded(&tree)["apiServerCertSANs"], serde_json::json!(["lb.example.com"]));
    // By a certificate's id, that certificate's alone: certSANs.
    env.kubepki_ok(&["san", "add", "apiserver@controlplane", "cp.example.com", "--dir", dir]);
    assert_eq!(recorded(&tree)["certSANs"]["apiserver@controlplane"], serde_json::json!(["cp.example.com"]));
    for args in [&["init"][..], &["init", "--force"][..], &["renew", "--all"][..]] {
        let mut a = args.to_vec();
        a.extend(["--dir", dir]);
        let out = env.kubepki(&a);
        assert_ne!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(has_san(), "{args:?} dropped the SAN");
    }
    env.kubepki_ok(&["node", "add", "node03", "--role", "worker", "--ip", "127.0.0.4", "--dir", dir]);
    assert!(has_san(), "node add dropped the SAN");
    assert!(node_names(&recorded(&tree)).contains(&"node03".to_string()));
    // A control plane added later serves the load balancer's name too, not its neighbour's own.
    env.kubepki_ok(&["node", "add", "cp2", "--role", "control-plane", "--ip", "127.0.0.5", "--dir", dir]);
    let path = tree.join("nodes/cp2/etc/kubernetes/pki/apiserver.crt");
    let cp2 = kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let cp2: Vec<String> = cp2.sans.iter().map(|s| s.to_string()).collect();
    assert!(cp2.contains(&"DNS:lb.example.com".into()) && !cp2.contains(&"DNS:cp.example.com".into()), "{cp2:?}");
    let out = env.kubepki(&["verify", "--dir", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Removed again, it is gone from the certificate and the description.
    env.kubepki_ok(&["san", "remove", "apiserver", "lb.example.com", "--dir", dir]);
    env.kubepki_ok(&["san", "remove", "apiserver@controlplane", "cp.example.com", "--dir", dir]);
    assert!(!has_san());
    assert!(recorded(&tree)["certSANs"].as_object().is_none_or(|m| m.is_empty()));
    assert!(recorded(&tree)["apiServerCertSANs"].as_array().is_none_or(|a| a.is_empty()));
    env.kubepki_ok(&["verify", "--dir", dir]);
}

/// `--update-description` reissues what the change implies and nothing else: a new apiserver
/// SAN reissues the apiserver certificates only; a new endpoint the kubeconfigs that dial it.
/// No CA, key pair or unrelated certificate changes, and `--force` is not needed.
#[test]
fn an_updated_description_reissues_only_what_it_changes() {
    let env = TestEnv::new();
    let ha = env.write("ha.yaml", HA);
    let tree = env.init("tree", &["--config", ha.to_str().unwrap()]);
    let dir = tree.to_str().unwrap();
    let before = crate::support::snapshot(&tree);
    let changed = |before: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>| -> Vec<String> {
        let after = crate::support::snapshot(&tree);
        let mut c: Vec<String> = after
            .iter()
            .filter(|(p, bytes)| !p.to_string_lossy().starts_with(".kubepki") && before.get(*p) != Some(bytes))
            .map(|(p, _)| p.display().to_string())
            .collect();
        c.sort();
        c
    };

    // One more SAN on the apiserver: the three apiserver certificates (one per control plane).
    let more_sans = env.write("more-sans.yaml", &HA.replace("[lb.example.com]", "[lb.example.com, api.example.com]"));
    let out = env.kubepki(&["init", "--dir", dir, "--config", more_sans.to_str().unwrap(), "--update-description"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let c = changed(&before);
    assert!(!c.is_empty());
    assert!(c.iter().all(|p| p.ends_with("pki/apiserver.crt") || p.ends_with("pki/apiserver.key")), "{c:?}");
    assert_eq!(c.iter().filter(|p| p.starts_with("nodes/") && p.ends_with("apiserver.crt")).count(), 3, "{c:?}");
    env.kubepki_ok(&["verify", "--dir", dir]);

    // Another endpoint: the kubeconfigs that dial it, no certificate's key pair elsewhere.
    let before = crate::support::snapshot(&tree);
    let moved = env.write(
        "moved.yaml",
        &HA.replace("[lb.example.com]", "[lb.example.com, api.example.com]")
            .replace("controlPlaneEndpoint: lb.example.com:6443", "controlPlaneEndpoint: api.example.com:6443"),
    );
    let out = env.kubepki(&["init", "--dir", dir, "--config", moved.to_str().unwrap(), "--update-description"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let c = changed(&before);
    assert!(c.iter().any(|p| p.ends_with("admin.conf")), "{c:?}");
    assert!(c.iter().all(|p| p.ends_with(".conf")), "only kubeconfigs dial the endpoint: {c:?}");
    for ca in ["pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "pki/sa.key"] {
        assert_eq!(before.get(std::path::Path::new(ca)), crate::support::snapshot(&tree).get(std::path::Path::new(ca)));
    }
    let admin = std::fs::read_to_string(tree.join("admin.conf")).unwrap();
    assert!(admin.contains("https://api.example.com:6443"), "{admin}");
    env.kubepki_ok(&["verify", "--dir", dir]);

    // Without --update-description, a tree whose leaves no longer match is not rewritten by init.
    let before = crate::support::snapshot(&tree);
    let out = env.kubepki(&["init", "--dir", dir, "--config", ha.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(crate::support::snapshot(&tree), before);
}

/// A command refused records no description: exit 2 changes nothing, the description included.
#[test]
fn a_refused_change_records_no_new_description() {
    let env = TestEnv::new();
    let ha = env.write("ha.yaml", HA);
    let tree = env.init("tree", &["--config", ha.to_str().unwrap()]);
    let dir = tree.to_str().unwrap();
    let more_sans = env.write("more-sans.yaml", &HA.replace("[lb.example.com]", "[lb.example.com, api.example.com]"));
    let before = crate::support::snapshot(&tree);
    let config = more_sans.to_str().unwrap();
    for args in [
        vec!["renew", "--dir", dir, "--config", config, "--update-description"],
        vec!["node", "remove", "no-such-node", "--dir", dir, "--config", config, "--update-description"],
        vec!["rotate-ca", "ca", "finish", "--dir", dir, "--config", config, "--update-description"],
    ] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(crate::support::snapshot(&tree), before, "{args:?} wrote");
    }
    // A reader never writes one.
    env.kubepki_ok(&["rotate-ca", "status", "--dir", dir, "--config", config, "--update-description"]);
    assert_eq!(crate::support::snapshot(&tree), before, "rotate-ca status wrote");
    // Accepted, it is recorded with the change.
    env.kubepki_ok(&["renew", "apiserver", "--dir", dir, "--config", config, "--update-description"]);
    assert!(recorded(&tree).to_string().contains("api.example.com"));
}

/// A description given with --config holds its `certSANs` to what `san add` may record: one
/// host's address, none of another party's names (the field named, nothing made). A recorded
/// one that breaks it is still read (no tree is locked out), and verify reports it.
#[test]
fn given_cert_sans_are_held_to_what_san_add_may_record() {
    let env = TestEnv::new();
    let nodes = "nodes:\n  - {name: cp1, role: control-plane, addresses: [127.0.1.1]}\n  - {name: w1, role: worker, addresses: [127.0.1.11]}\n";
    for (sans, field, problem) in [
        (
            "{kubelet-serving@w1: [w1.example.com, kubernetes]}",
            "certSANs.kubelet-serving@w1[1]",
            "DNS:kubernetes is apiserver@cp1's",
        ),
        ("{apiserver@cp1: [127.0.1.11]}", "certSANs.apiserver@cp1[0]", "IP:127.0.1.11 is kubelet-serving@w1's"),
        ("{apiserver@cp1: ['0.0.0.0']}", "certSANs.apiserver@cp1[0]", "0.0.0.0 is the unspecified address"),
        ("{etcd-server@cp1: ['*.com']}", "certSANs.etcd-server@cp1[0]", "a wildcard over a whole top-level domain"),
    ] {
        let config = env.write("c.yaml", &format!("certSANs: {sans}\n{nodes}"));
        let tree = env.path().join("refused");
        let out = env.kubepki(&["init", "--config", config.to_str().unwrap(), "--dir", tree.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{sans}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("c.yaml: {field}: ")) && err.contains(problem), "{sans}: {err}");
        assert!(!tree.exists(), "{sans}: a refused init made the tree");
    }
    // Recorded by hand in a tree: read as it is, and reported.
    let config = env.write("ok.yaml", &format!("certSANs: {{kubelet-serving@w1: [w1.example.com]}}\n{nodes}"));
    let tree = env.init("tree", &["--config", config.to_str().unwrap()]);
    let mut v = recorded(&tree);
    v["certSANs"]["kubelet-serving@w1"] = serde_json::json!(["w1.example.com", "kubernetes"]);
    std::fs::write(tree.join(".kubepki/cluster.json"), v.to_string()).unwrap();
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"san-profile"), "the certificate lacks the recorded SAN: {codes:?}");
}
