//! Say what to roll out: every command that changes a tree ends with, per node, the files that
//! changed at their place there and what must restart to read them; `rotate-ca status` says
//! what the next phase needs rolled out first.

use serde_json::Value;

use crate::support::TestEnv;

fn json(env: &TestEnv, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let out = env.kubepki(&a);
    assert_ne!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The group of `node` in a rollout: (files, restart).
fn group(rollout: &Value, node: &str) -> (Vec<String>, Vec<String>) {
    let g = rollout
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["nodes"].as_array().unwrap().iter().any(|n| n == node))
        .unwrap_or_else(|| panic!("{node} not in {rollout:#}"));
    let strings = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    (strings(&g["files"]), strings(&g["restart"]))
}

#[test]
fn renew_says_which_node_gets_which_file_and_what_restarts() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let r = json(&env, &["renew", "apiserver", "--dir", d]);
    assert_eq!(r["rollout"].as_array().unwrap().len(), 1, "{r:#}");
    let (files, restart) = group(&r["rollout"], "controlplane");
    assert_eq!(files, ["/etc/kubernetes/pki/apiserver.crt", "/etc/kubernetes/pki/apiserver.key"]);
    assert_eq!(restart, ["kube-apiserver"]);
    assert!(!r["changes"].as_array().unwrap().is_empty());

    let r = json(&env, &["renew", "kubelet.conf", "--dir", d]);
    let (files, restart) = group(&r["rollout"], "node02");
    assert_eq!(files, ["/etc/kubernetes/kubelet.conf"]);
    assert_eq!(restart, ["kubelet"]);
    let nodes = r["rollout"].as_array().unwrap().iter().flat_map(|g| g["nodes"].as_array().unwrap().clone()).count();
    assert_eq!(nodes, 3, "every node's kubelet.conf: {r:#}");

    let text = env.kubepki_ok(&["renew", "admin.conf", "--dir", d]);
    assert!(text.contains("roll out, per node:\n  controlplane: 1 file(s): /etc/kubernetes/admin.conf"), "{text}");
    assert!(text.contains("also: /etc/kubernetes/admin.conf: copy to ~/.kube/config"), "{text}");
}

#[test]
fn a_rotation_says_what_each_phase_needs_rolled_out_first() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let r = json(&env, &["rotate-ca", "ca", "start", "--dir", d]);
    // The change is the new CA: same name, another key.
    let changes = r["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{r:#}");
    assert_eq!(changes[0]["entry"], "ca");
    assert_ne!(changes[0]["before"]["issuerKey"], changes[0]["after"]["issuerKey"], "{r:#}");
    let (files, restart) = group(&r["rollout"], "node01");
    assert_eq!(
        files,
        ["/etc/kubernetes/kube-proxy.conf", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt"]
    );
    assert_eq!(restart, ["kube-proxy", "kubelet"], "a worker runs no control plane");
    let (_, restart) = group(&r["rollout"], "controlplane");
    assert!(restart.contains(&"kube-apiserver".to_string()) && restart.contains(&"kube-scheduler".to_string()));

    let status = json(&env, &["rotate-ca", "status", "--dir", d]);
    let ca = status.as_array().unwrap().iter().find(|s| s["ca"] == "ca").unwrap();
    assert_eq!(ca["phase"], "start");
    assert_eq!(ca["next"], "kubepki rotate-ca ca reissue");
    assert!(ca["started"].as_str().unwrap().starts_with("20"));
    assert_eq!(ca["rollOutFirst"], r["rollout"], "what start changed is what reissue needs first");
    let text = env.kubepki_ok(&["rotate-ca", "status", "--dir", d]);
    assert!(text.contains("ca: phase Start done (rotation started 20"), "{text}");
    assert!(text.contains("before it, every node must have what that phase changed"), "{text}");

    let r = json(&env, &["rotate-ca", "ca", "reissue", "--dir", d]);
    let (files, _) = group(&r["rollout"], "controlplane");
    assert!(
        files.contains(&"/etc/kubernetes/pki/ca.key".to_string())
            && files.contains(&"/etc/kubernetes/pki/apiserver.crt".to_string())
    );
    let (files, _) = group(&r["rollout"], "node02");
    assert!(files.contains(&"/var/lib/kubelet/pki/kubelet.crt".to_string()), "{files:?}");
    let r = json(&env, &["rotate-ca", "ca", "finish", "--dir", d]);
    let changes = r["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "the CA file holds the new CA alone: {r:#}");
    assert_eq!(changes[0]["file"], "pki/ca.crt");
}

#[test]
fn a_rotation_dry_run_shows_the_real_diff_with_the_issuers_key() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["rotate-ca", "ca", "start", "--dir", d]);
    let before = crate::support::snapshot(&dir);
    let text = env.kubepki_ok(&["rotate-ca", "ca", "reissue", "--dir", d, "--dry-run"]);
    assert_eq!(crate::support::snapshot(&dir), before, "a dry run wrote something");
    // The CN stays the same; the key that signs changes, and says so.
    let block = text.split("would reissue apiserver@controlplane").nth(1).expect("apiserver in the diff");
    let issuers: Vec<&str> = block.lines().filter(|l| l.contains("issuer")).take(2).collect();
    assert!(issuers[0].starts_with("  - issuer    CN=kubernetes (key sha256:"), "{text}");
    assert!(issuers[1].starts_with("  + issuer    CN=kubernetes (key sha256:"), "{text}");
    assert_ne!(issuers[0].split("key ").nth(1), issuers[1].split("key ").nth(1));
    assert!(text.contains("would change, per node:") && text.contains("/etc/kubernetes/pki/ca.key"), "{text}");
    let r = json(&env, &["rotate-ca", "ca", "reissue", "--dir", d, "--dry-run"]);
    assert!(r["changes"].as_array().unwrap().len() >= 10, "{r:#}");
    assert!(!r["rollout"].as_array().unwrap().is_empty());
}
