//! A CA is never replaced implicitly: `init --force` keeps every CA, `--replace-ca` is the one
//! way to make one anew; a CA certificate without its key is externally managed (kubeadm's
//! external-CA mode): reported as such, and never signed for nor replaced.

use std::path::Path;
use std::process::Output;

use crate::support::{kubeadm_fixture, snapshot, TestEnv};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of `check -o json` for these paths: (path, externally managed).
fn check_rows(env: &TestEnv, dir: &Path) -> (Option<i32>, Vec<(String, bool)>) {
    let out = env.kubepki(&["check", "--dir", dir.to_str().unwrap(), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["externallyManaged"].as_bool().unwrap()))
        .collect();
    (out.status.code(), rows)
}

fn managed(rows: &[(String, bool)], path: &str) -> bool {
    rows.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("no row {path}: {rows:?}")).1
}

#[test]
fn init_force_keeps_every_ca_and_replaces_only_the_wrong_leaf() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let other = env.init("other", &[]);
    std::fs::copy(other.join("pki/apiserver.crt"), tree.join("pki/apiserver.crt")).unwrap();
    let before = snapshot(&tree);
    let out = env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap(), "--force"]);
    assert!(out.contains("replaced apiserver@controlplane"), "{out}");
    let after = snapshot(&tree);
    for ca in ["pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/etcd/ca.key", "pki/front-proxy-ca.crt", "pki/sa.key"]
    {
        assert_eq!(after[Path::new(ca)], before[Path::new(ca)], "{ca} changed");
    }
    assert_ne!(after[Path::new("pki/apiserver.crt")], before[Path::new("pki/apiserver.crt")]);
    env.kubepki_ok(&["verify", "--dir", tree.to_str().unwrap()]);
}

#[test]
fn a_generated_tree_without_its_ca_key_is_externally_managed() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let d = tree.to_str().unwrap();
    std::fs::remove_file(tree.join("pki/ca.key")).unwrap();
    let ca_before = std::fs::read(tree.join("pki/ca.crt")).unwrap();

    // verify: an info finding, every link ok, exit 0.
    let out = env.kubepki(&["verify", "--dir", d]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("info    externally-managed pki/ca.key"), "{text}");
    assert!(text.contains("20 links: 20 ok") && text.contains("0 error"), "{text}");
    // check: kubeadm's EXTERNALLY MANAGED column, for the CA and what it signed only.
    let (code, rows) = check_rows(&env, &tree);
    assert_eq!(code, Some(0));
    assert!(managed(&rows, "pki/ca.crt") && managed(&rows, "pki/apiserver.crt") && managed(&rows, "admin.conf"));
    assert!(!managed(&rows, "pki/etcd/ca.crt") && !managed(&rows, "pki/etcd/server.crt"));
    let table = env.kubepki_ok(&["check", "--dir", d]);
    assert!(table.contains("EXTERNALLY MANAGED") && table.contains("1 CA(s) externally managed"), "{table}");

    // renew and init of its leaves point to csr and import; nothing is written, no CA made.
    let out = env.kubepki(&["renew", "apiserver", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("externally managed") && stderr(&out).contains("kubepki csr"), "{}", stderr(&out));
    std::fs::remove_file(tree.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(tree.join("pki/apiserver.key")).unwrap();
    let before_init = snapshot(&tree);
    for args in [vec!["init", "--dir", d], vec!["init", "--dir", d, "--force"]] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("apiserver@controlplane cannot be made here: the CA ca is externally managed"), "{err}");
        assert!(err.contains("kubepki csr --dir") && err.contains("kubepki import --dir"), "{err}");
        assert_eq!(snapshot(&tree), before_init, "{args:?} wrote something");
    }
    assert_eq!(std::fs::read(tree.join("pki/ca.crt")).unwrap(), ca_before);
    assert!(!tree.join("pki/ca.key").exists(), "no CA key appeared");
}

#[test]
fn the_kubeadm_tree_without_its_ca_key_is_externally_managed() {
    let env = TestEnv::new();
    let tree = kubeadm_fixture(&env, true);
    let d = tree.to_str().unwrap();
    std::fs::remove_file(tree.join("pki/ca.key")).unwrap();
    let out = env.kubepki(&["verify", "--dir", d, "--at", "2024-06-01"]);
    let text = stdout(&out);
    assert!(text.contains("externally-managed pki/ca.key"), "{text}");
    assert!(!text.contains("missing          pki/ca.key"), "{text}");
    assert!(!text.contains("BROKEN"), "at a time when every certificate is valid, no link is broken: {text}");
    let (_, rows) = check_rows(&env, &tree);
    assert!(managed(&rows, "pki/ca.crt") && managed(&rows, "pki/apiserver.crt"));
    assert!(!managed(&rows, "pki/front-proxy-ca.crt") && !managed(&rows, "pki/etcd/ca.crt"));

    let config = env.write(
        "kubeadm.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: 172.30.1.2}\nnodeRegistration: {name: controlplane}\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
    );
    let before = snapshot(&tree);
    let out = env.kubepki(&["init", "--dir", d, "--config", config.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the CA ca is externally managed"), "{}", stderr(&out));
    assert_eq!(snapshot(&tree), before);
    let out = env.kubepki(&["renew", "apiserver", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("externally managed") && stderr(&out).contains("kubepki import"), "{}", stderr(&out));
    assert_eq!(snapshot(&tree), before);
}
