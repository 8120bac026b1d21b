//! The command line: plan, init, re-runs, refusals, bad input.

use std::path::Path;

use crate::support::{kubeadm_fixture, snapshot, TestEnv};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plan_writes_nothing_and_lists_files_and_links() {
    let env = TestEnv::new();
    let text = env.kubepki_ok(&["plan"]);
    assert!(text.contains("pki/apiserver.crt"), "{text}");
    assert!(text.contains("kubelet@node01 -> kube-apiserver@controlplane"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&env.kubepki_ok(&["plan", "-o", "json"])).unwrap();
    let entries = json["catalog"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 24, "22 and metrics-server's 2");
    let api = entries.iter().find(|e| e["id"] == "apiserver@controlplane").unwrap();
    assert_eq!(api["subject"]["cn"], "kube-apiserver");
    assert_eq!(api["issuer"], "ca");
    assert_eq!(api["kind"], "leaf");
    assert!(api["sans"].as_array().unwrap().contains(&"IP:10.96.0.1".into()));
    assert_eq!(json["topology"]["links"].as_array().unwrap().len(), 20);
    assert_eq!(std::fs::read_dir(env.path()).unwrap().count(), 0, "plan wrote something");
}

#[test]
fn init_defaults_to_kubernetes_in_the_working_directory() {
    let env = TestEnv::new();
    let out = env.kubepki_ok(&["init"]);
    assert!(out.contains("24 created, 0 kept, 0 replaced"), "{out}");
    assert!(env.path().join("kubernetes/pki/ca.crt").is_file());
    assert!(env.path().join("kubernetes/nodes/node02/etc/kubernetes/kubelet.conf").is_file());
    // The description is recorded, and every certificate signed is logged.
    let recorded =
        kubepki::model::spec::ClusterSpec::load(&env.path().join("kubernetes/.kubepki/cluster.json")).unwrap();
    assert_eq!(recorded.nodes, kubepki::model::spec::ClusterSpec::builtin_default().nodes);
    let log = kubepki::disk::issuance::read(&env.path().join("kubernetes")).unwrap();
    assert_eq!(log.len(), 23, "23 certificates (the sa key pair is not one)");
    assert!(log
        .iter()
        .any(|r| r.entry.as_deref() == Some("apiserver@controlplane") && r.sans.contains(&"IP:10.96.0.1".into())));
    env.kubepki_ok(&["init"]);
    assert_eq!(
        kubepki::disk::issuance::read(&env.path().join("kubernetes")).unwrap().len(),
        23,
        "a re-run signs nothing"
    );
}

#[test]
fn rerun_keeps_everything_and_fills_gaps() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let before = snapshot(&tree);
    let out = env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap()]);
    assert!(out.contains("0 created, 24 kept, 0 replaced; 0 files copied"), "{out}");
    assert_eq!(snapshot(&tree), before, "a re-run changed files");

    // A lost leaf, a lost kubeconfig and a lost bundle copy are made again; nothing else moves.
    for f in ["pki/apiserver.key", "pki/apiserver.crt", "scheduler.conf", "nodes/node01/etc/kubernetes/pki/ca.crt"] {
        std::fs::remove_file(tree.join(f)).unwrap();
    }
    let out = env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap()]);
    // Copies: the new apiserver.crt, .key and scheduler.conf into the primary's bundle, and
    // the lost ca.crt into node01's.
    assert!(out.contains("2 created, 22 kept, 0 replaced; 4 files copied"), "{out}");
    let after = snapshot(&tree);
    for (path, bytes) in before.iter().filter(|(p, _)| !p.starts_with(".kubepki")) {
        let name = path.to_str().unwrap();
        let changed = after[path] != *bytes;
        let expected = name.ends_with("/apiserver.crt")
            || name.ends_with("/apiserver.key")
            || name.ends_with("scheduler.conf")
            || name == "pki/apiserver.crt"
            || name == "pki/apiserver.key";
        assert_eq!(changed, expected, "{name}");
    }
    assert_eq!(after[Path::new("nodes/node01/etc/kubernetes/pki/ca.crt")], before[Path::new("pki/ca.crt")]);
    let copy = Path::new("nodes/controlplane/etc/kubernetes/pki/apiserver.crt");
    assert_eq!(after[copy], after[Path::new("pki/apiserver.crt")], "the bundle follows its source");
}

#[test]
fn an_existing_ca_is_never_replaced_without_replace_ca() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let other = env.init("other", &[]);
    // A CA whose key belongs to another CA: refused, named, nothing written.
    std::fs::copy(other.join("pki/ca.key"), tree.join("pki/ca.key")).unwrap();
    let before = snapshot(&tree);
    let out = env.kubepki(&["init", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(err.contains("pki/ca.crt") && err.contains("does not match its certificate"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(snapshot(&tree), before, "a refused run wrote something");

    // --force never replaces a CA: refused, naming --replace-ca and rotate-ca.
    let out = env.kubepki(&["init", "--dir", tree.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("init never replaces a CA, not even with --force"), "{err}");
    assert!(err.contains("--replace-ca ca") && err.contains("kubepki rotate-ca ca start"), "{err}");
    assert_eq!(snapshot(&tree), before, "a refused run wrote something");

    // With --replace-ca ca: the CA and everything it signed are made anew, the old files backed
    // up, and the message says every node needs the new trust.
    let out = env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap(), "--replace-ca", "ca"]);
    assert!(out.contains("replaced ca:"), "{out}");
    assert!(out.contains("previous files saved in"), "{out}");
    assert!(out.contains("CA ca was made anew") && out.contains("every node must now receive the new trust"), "{out}");
    let after = snapshot(&tree);
    assert_ne!(after[Path::new("pki/ca.crt")], before[Path::new("pki/ca.crt")]);
    assert_ne!(after[Path::new("admin.conf")], before[Path::new("admin.conf")], "leaves of the old CA are reissued");
    assert_eq!(after[Path::new("pki/etcd/ca.crt")], before[Path::new("pki/etcd/ca.crt")], "the good etcd CA is kept");
    let backup: Vec<_> = after.keys().filter(|p| p.starts_with(".kubepki-backup")).collect();
    assert!(backup.iter().any(|p| p.ends_with("pki/ca.key")), "{backup:?}");
    let out = env.kubepki(&["init", "--dir", tree.to_str().unwrap(), "--replace-ca", "nope"]);
    assert!(
        stderr(&out)
            .contains("--replace-ca nope: not a CA of this cluster; its CAs (and the service-account key) are: ca, "),
        "{}",
        stderr(&out)
    );
    // And the result is consistent: a plain re-run keeps all of it.
    let out = env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap()]);
    assert!(out.contains("0 created, 24 kept"), "{out}");
}

#[test]
fn a_stale_kubeconfig_is_refused_not_overwritten() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let other = env.init("other", &[]);
    std::fs::copy(other.join("admin.conf"), tree.join("admin.conf")).unwrap();
    let out = env.kubepki(&["init", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("admin.conf: certificate-authority-data is not the current ca certificate"), "{err}");
}

#[test]
fn expired_kubeadm_tree_is_refused_by_name() {
    let env = TestEnv::new();
    let tree = kubeadm_fixture(&env, false);
    let config = env.write(
        "kubeadm.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 172.30.1.2}\nnodeRegistration: {name: controlplane}\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
    );
    let before = snapshot(&tree);
    let out = env.kubepki(&["init", "--dir", tree.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("pki/apiserver.crt: expired on 2025-02-03"), "{err}");
    assert!(!err.contains("ca: "), "the fixture's CAs are valid until 2034: {err}");
    assert_eq!(snapshot(&tree), before);
}

#[test]
fn bad_input_is_named_and_writes_nothing() {
    let env = TestEnv::new();
    let cases = [
        (
            "nodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.300]}\n",
            "nodes[0].addresses[0]: '10.0.0.300' is not an IP address",
        ),
        (
            "controlPlaneEndpoint: \"lb:70000\"\nnodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.1]}\n",
            "controlPlaneEndpoint: 'lb:70000': port '70000'",
        ),
        ("colour: blue\n", "unknown field `colour`"),
        (
            "nodes:\n- {name: UPPER, role: worker, addresses: [10.0.0.1]}\n",
            "nodes[0].name: 'UPPER' is not a valid node name",
        ),
        ("{{{", "bad.yaml"),
    ];
    for (text, want) in cases {
        let config = env.write("bad.yaml", text);
        let dir = env.path().join("never");
        let out = env.kubepki(&["init", "--config", config.to_str().unwrap(), "--dir", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = stderr(&out);
        assert!(err.starts_with("kubepki: error: ") && err.contains("bad.yaml"), "{err}");
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!dir.exists(), "{text:?}: wrote {}", dir.display());
    }
    let out = env.kubepki(&["init", "--key-algorithm", "dsa-1024"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unsupported key algorithm 'dsa-1024'"), "{}", stderr(&out));
    let out = env.kubepki(&["plan", "--config", "/nonexistent/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/cluster.yaml: read: No such file"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(env.path()).unwrap().count(), 1, "only bad.yaml");
}

#[test]
fn single_ca_layout_and_kubeadm_config_input() {
    let env = TestEnv::new();
    let config = env
        .write("single.yaml", "caLayout: single\nnodes:\n- {name: cp, role: control-plane, addresses: [127.0.0.1]}\n");
    let tree = env.init("single", &["--config", config.to_str().unwrap()]);
    assert!(!tree.join("pki/etcd/ca.crt").exists() && !tree.join("pki/front-proxy-ca.crt").exists());
    // check and verify know it is a one-CA tree (the description is recorded in it).
    let out = env.kubepki(&["check", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let (ok, text) = crate::support::run(
        std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(tree.join("pki/ca.crt"))
            .arg(tree.join("pki/etcd/server.crt"))
            .arg(tree.join("pki/front-proxy-client.crt")),
    );
    assert!(ok, "{text}");

    let kubeadm = env.write(
        "kubeadm.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 10.1.2.3, bindPort: 7443}\nnodeRegistration: {name: master-1}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: RSA-2048\napiServer: {certSANs: [k8s.internal]}\n",
    );
    let tree = env.init("kubeadm", &["--config", kubeadm.to_str().unwrap()]);
    let admin = kubepki::x509::kubeconfig::read(&tree.join("admin.conf")).unwrap();
    assert_eq!(admin.server, "https://10.1.2.3:7443");
    let key = std::fs::read_to_string(tree.join("pki/apiserver.key")).unwrap();
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let crt = tree.join("pki/apiserver.crt");
    let info = kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&crt).unwrap(), &crt).unwrap();
    assert!(info.sans.contains(&kubepki::model::spec::San::Dns("k8s.internal".into())));
    assert!(info.sans.contains(&kubepki::model::spec::San::Dns("master-1".into())));
}
