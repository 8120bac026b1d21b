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

/// Renewing on a running cluster whose CA is managed outside the tree: verify's fix is run as
/// printed (requests and new keys beside the tree, for that CA's leaves only; the keys in use
/// untouched), the outside CA signs them, and `import --from` puts each new key in with its
/// certificate: every link verifies, the other CAs' leaves are as they were.
#[test]
fn an_externally_managed_ca_s_leaves_are_renewed_beside_the_tree_and_imported_with_their_keys() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let d = tree.to_str().unwrap();
    let outside = env.path().join("outside-ca.key");
    std::fs::rename(tree.join("pki/ca.key"), &outside).unwrap();
    std::fs::remove_file(tree.join("nodes/controlplane/etc/kubernetes/pki/ca.key")).unwrap();
    let before = snapshot(&tree);
    let leaf_files = |s: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>| -> Vec<(String, Vec<u8>)> {
        s.iter()
            .filter(|(p, _)| !p.starts_with(".kubepki") && !p.starts_with(".kubepki-backup"))
            .map(|(p, b)| (p.display().to_string(), b.clone()))
            .collect()
    };

    let out = env.kubepki(&["verify", "--dir", d, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fix = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "externally-managed")
        .and_then(|f| f["fix"].as_str())
        .expect("an externally-managed finding with a fix")
        .to_string();
    assert!(!fix.contains("--force"), "{fix}");
    // "none needed; to renew what it signs: kubepki csr ... --out S, have ca sign ..., then kubepki import ... --from S"
    let csr_cmd = fix.split("to renew what it signs: ").nth(1).unwrap().split(", have").next().unwrap();
    let import_cmd = fix.split("then ").last().unwrap();
    let words = |c: &str| c.split_whitespace().skip(1).map(str::to_string).collect::<Vec<_>>();
    let csr_args = words(csr_cmd);
    env.kubepki_ok(&csr_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(leaf_files(&snapshot(&tree)), leaf_files(&before), "csr --out touched the tree");
    let staging = std::path::PathBuf::from(&csr_args[csr_args.iter().position(|a| a == "--out").unwrap() + 1]);
    assert!(staging.join("pki/apiserver.key").is_file() && staging.join("admin.conf.csr").is_file());
    assert!(!staging.join("pki/etcd/server.csr").exists(), "only the leaves of ca");

    // The outside CA signs each request (here: kubepki sign, in a workspace holding its key).
    std::fs::create_dir_all(staging.join(".kubepki")).unwrap();
    std::fs::copy(tree.join(".kubepki/cluster.json"), staging.join(".kubepki/cluster.json")).unwrap();
    std::fs::copy(tree.join("pki/ca.crt"), staging.join("pki/ca.crt")).unwrap();
    std::fs::copy(&outside, staging.join("pki/ca.key")).unwrap();
    let csrs: Vec<String> = crate::support::files(&staging)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "csr"))
        .map(|p| p.display().to_string())
        .collect();
    let mut sign = vec!["sign", "--dir", staging.to_str().unwrap(), "--ca", "ca"];
    sign.extend(csrs.iter().map(String::as_str));
    env.kubepki_ok(&sign);
    std::fs::remove_file(staging.join("pki/ca.key")).unwrap();

    let out = env.kubepki(&words(import_cmd).iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("20 links: 20 ok"), "{text}");
    let after = snapshot(&tree);
    assert_ne!(
        after.get(std::path::Path::new("pki/apiserver.key")),
        before.get(std::path::Path::new("pki/apiserver.key"))
    );
    for same in ["pki/etcd/server.key", "pki/etcd/server.crt", "pki/front-proxy-client.key", "pki/ca.crt"] {
        assert_eq!(after.get(std::path::Path::new(same)), before.get(std::path::Path::new(same)), "{same}");
    }
    assert!(!tree.join("pki/ca.key").exists(), "still externally managed");
}

/// `renew --all` renews what the tree's own CAs sign and leaves an externally managed CA's
/// leaves as they are, saying how to renew them; named, one of them is refused.
#[test]
fn renew_all_renews_what_the_tree_can_sign_and_names_the_way_for_the_rest() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let d = tree.to_str().unwrap();
    std::fs::remove_file(tree.join("pki/ca.key")).unwrap();
    std::fs::remove_file(tree.join("nodes/controlplane/etc/kubernetes/pki/ca.key")).unwrap();
    let before = snapshot(&tree);
    let out = env.kubepki_ok(&["renew", "--all", "--dir", d]);
    assert!(out.contains("reissued etcd-server@controlplane") && out.contains("reissued front-proxy-client"), "{out}");
    assert!(out.contains("15 leaves of ca, managed outside the tree, are not renewed here"), "{out}");
    assert!(out.contains("kubepki csr --dir") && out.contains("--ca ca --out"), "{out}");
    let after = snapshot(&tree);
    let p = |f: &str| std::path::PathBuf::from(f);
    assert_ne!(after[&p("pki/etcd/server.crt")], before[&p("pki/etcd/server.crt")]);
    assert_eq!(after[&p("pki/apiserver.crt")], before[&p("pki/apiserver.crt")]);
    assert_eq!(after[&p("pki/apiserver.key")], before[&p("pki/apiserver.key")]);
    env.kubepki_ok(&["verify", "--dir", d]);
    assert_eq!(env.kubepki(&["renew", "apiserver", "--dir", d]).status.code(), Some(2));
}
