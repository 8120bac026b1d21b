//! One writer at a time: every command that changes a tree takes its lock, waits a bounded
//! time for another, then fails naming the holder; read-only commands take none; runs that
//! race never mix.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{snapshot, TestEnv};

fn pool(workers: usize) -> String {
    format!(
        "nodes:\n- {{name: cp1, role: control-plane, addresses: [10.0.0.1]}}\n\
         nodePools:\n- {{namePattern: \"worker-{{index:04}}\", role: worker, count: {workers}, firstAddress: 10.1.0.1}}\n"
    )
}

/// kubepki with a short wait for the lock.
fn impatient(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .env("KUBEPKI_LOCK_WAIT", "0.2")
        .current_dir(env.path())
        .output()
        .unwrap()
}

/// Start kubepki in the background, patient for the lock.
fn spawn(env: &TestEnv, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .env("KUBEPKI_LOCK_WAIT", "300")
        .current_dir(env.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn ok(child: std::process::Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_writer_waits_then_fails_naming_the_holder_and_readers_go_ahead() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["csr", "--dir", d, "--force"]); // requests to sign and import
    std::fs::write(env.path().join("csr.yaml"), "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    let held = kubepki::disk::run::Run::begin(&dir, "test-holder").unwrap();
    let before = snapshot(&dir);
    let writers: Vec<Vec<&str>> = vec![
        vec!["init", "--dir", d],
        vec!["init", "--dir", d, "--force"],
        vec!["renew", "--all", "--dir", d],
        vec!["san", "add", "apiserver", "lb.example.com", "--dir", d],
        vec!["node", "add", "node03", "--role", "worker", "--ip", "127.0.0.4", "--dir", d],
        vec!["node", "remove", "node02", "--dir", d],
        vec!["rotate-ca", "ca", "start", "--dir", d],
        vec!["csr", "--dir", d, "--force"],
        vec!["sign", "--ca", "ca", "--dir", d, "pki/apiserver.csr"],
        vec!["import", "--dir", d],
        vec!["approve", "csr.yaml", "--dir", d],
        vec!["backup", "restore", "x", "--dir", d],
        vec!["backup", "prune", "--keep", "0", "--dir", d],
    ];
    let pid = format!("pid {}", std::process::id());
    for args in &writers {
        let out = impatient(&env, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(".kubepki/lock: another kubepki run is changing this tree"), "{args:?}: {err}");
        assert!(
            err.contains(&pid) && err.contains("kubepki test-holder") && err.contains("since 20"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(snapshot(&dir), before, "a refused run changed the tree");
    // Readers need no lock.
    for args in [
        vec!["verify", "--dir", d],
        vec!["check", "--dir", d],
        vec!["plan"],
        vec!["graph", "--dir", d, "-o", "dot"],
        vec!["rotate-ca", "status", "--dir", d],
        vec!["renew", "--all", "--dir", d, "--dry-run"],
        vec!["backup", "list", "--dir", d],
        vec!["backup", "prune", "--keep", "0", "--dir", d, "--dry-run"],
    ] {
        let out = impatient(&env, &args);
        assert_ne!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A writer never makes the tree it was pointed at by mistake.
    let out = impatient(&env, &["renew", "--all", "--dir", "no-such-tree"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-tree: no such directory"));
    assert!(!env.path().join("no-such-tree").exists());
    drop(held);
    // Released: the next writer goes ahead (exit 1: csr --force left keys that no longer match).
    let out = impatient(&env, &["renew", "apiserver", "--dir", d]);
    assert_ne!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reissued apiserver@controlplane"));
}

/// Each certificate of the tree is logged once, and the tree is one consistent PKI.
fn assert_one_pki(env: &TestEnv, dir: &Path) {
    let log = kubepki::disk::issuance::read(dir).unwrap();
    let serials: BTreeSet<&str> = log.iter().map(|r| r.serial.as_str()).collect();
    assert_eq!(serials.len(), log.len(), "a serial logged twice");
    let out = env.kubepki(&["verify", "--dir", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(" 0 broken"), "{text}");
}

#[test]
fn two_inits_into_one_new_folder_make_one_tree() {
    let env = TestEnv::new();
    env.write("cluster.yaml", &pool(300));
    let args = ["init", "--config", "cluster.yaml", "--dir", "tree", "--quiet"];
    let (a, b) = (spawn(&env, &args), spawn(&env, &args));
    let outs = [ok(a, "first init"), ok(b, "second init")];
    let n = 20 + 2 * 300; // as scale.rs counts
    assert!(outs.iter().any(|o| o.contains(&format!("{n} created, 0 kept"))), "{outs:?}");
    assert!(outs.iter().any(|o| o.contains(&format!("0 created, {n} kept"))), "{outs:?}");
    let dir = env.path().join("tree");
    assert_eq!(kubepki::disk::issuance::read(&dir).unwrap().len(), n - 1, "one line per certificate");
    assert_one_pki(&env, &dir);
}

#[test]
fn renew_all_racing_a_rotation_start_never_mixes() {
    let env = TestEnv::new();
    env.write("cluster.yaml", &pool(300));
    env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "tree", "--quiet"]);
    let dir = env.path().join("tree");
    let renew = spawn(&env, &["renew", "--all", "--dir", "tree"]);
    let start = spawn(&env, &["rotate-ca", "ca", "start", "--dir", "tree"]);
    ok(renew, "renew --all");
    ok(start, "rotate-ca ca start");
    // Whichever ran first, every kubeconfig trusts what ca.crt holds (old and new).
    let bundle = std::fs::read_to_string(dir.join("pki/ca.crt")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    for name in
        ["admin.conf", "nodes/worker-0150/etc/kubernetes/kubelet.conf", "nodes/worker-0300/etc/kubernetes/kubelet.conf"]
    {
        let k = kubepki::x509::kubeconfig::read(&dir.join(name)).unwrap();
        assert_eq!(k.ca_pem.as_deref().map(str::trim), Some(bundle.trim()), "{name}");
    }
    assert_one_pki(&env, &dir);
}
