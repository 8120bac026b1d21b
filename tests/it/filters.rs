//! `--node` and `--status`: what verify and check show, and what renew selects, at any size.

use crate::support::{kubeadm_fixture, TestEnv};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn verify_shows_one_nodes_links_and_one_state() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let dir = tree.to_str().unwrap();
    // node02's kubelet serving certificate from another CA: its links break, node01's do not.
    let other = env.init("other", &[]);
    for f in ["kubelet.crt", "kubelet.key"] {
        let rel = format!("nodes/node02/var/lib/kubelet/pki/{f}");
        std::fs::copy(other.join(&rel), tree.join(&rel)).unwrap();
    }
    let all = json(&env.kubepki(&["verify", "--dir", dir, "-o", "json"]));
    assert!(all["summary"]["links"]["broken"].as_u64().unwrap() > 0);

    let out = env.kubepki(&["verify", "--dir", dir, "--node", "node01", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "node01 is fine: {}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    let links = v["links"].as_array().unwrap();
    assert!(!links.is_empty());
    assert!(links.iter().all(|l| l["id"].as_str().unwrap().contains("@node01")), "{links:?}");
    assert_eq!(v["summary"]["links"]["total"].as_u64().unwrap() as usize, links.len());

    let out = env.kubepki(&["verify", "--dir", dir, "--node", "node02", "--status", "broken", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let links = v["links"].as_array().unwrap();
    assert!(!links.is_empty());
    assert!(links.iter().all(|l| l["status"] == "broken" && l["id"].as_str().unwrap().contains("@node02")));
    // Every finding shown is on a link shown, and every link's findings are shown.
    let ids: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    for l in links {
        for f in l["findings"].as_array().unwrap() {
            assert!(ids.contains(&f.as_str().unwrap()), "{f} not shown");
        }
    }
    assert!(v["summary"]["links"]["total"].as_u64().unwrap() < all["summary"]["links"]["total"].as_u64().unwrap());

    let out = env.kubepki(&["verify", "--dir", dir, "--node", "node99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node node99: no such node"));
    let out = env.kubepki(&["verify", "--dir", dir, "--status", "sad"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("states are: ok, warning, broken"));
}

#[test]
fn check_shows_one_bundle_and_one_state() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let dir = tree.to_str().unwrap();
    // Two years on, every leaf has expired and no CA has.
    let at = (time::OffsetDateTime::now_utc() + time::Duration::days(730)).date().to_string();
    let v = json(&env.kubepki(&["check", "--dir", dir, "--at", &at, "--node", "node01", "-o", "json"]));
    let entries = v["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["path"].as_str().unwrap().starts_with("nodes/node01/")), "{entries:?}");
    let out = env.kubepki(&["check", "--dir", dir, "--at", &at, "--status", "ok", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "the CAs are ok, and only they are shown");
    let v = json(&out);
    let entries = v["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["isCa"] == true), "{entries:?}");
    let out = env.kubepki(&["check", "--dir", dir, "--node", "node99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such node bundle"));
}

#[test]
fn renew_selects_what_is_due_and_one_nodes_certificates() {
    let env = TestEnv::new();
    // The real kubeadm tree: every leaf expired; nothing else is due.
    let root = kubeadm_fixture(&env, true);
    let dir = root.to_str().unwrap();
    let v = json(&env.kubepki(&["renew", "--all", "--status", "expired", "--dry-run", "--dir", dir, "-o", "json"]));
    let due = v["changes"].as_array().unwrap().len();
    assert!(due >= 9, "{v}");
    env.kubepki(&["renew", "--all", "--status", "expired,expiring", "--dir", dir]);
    let v = json(&env.kubepki(&["renew", "--all", "--status", "expired", "--dry-run", "--dir", dir, "-o", "json"]));
    assert_eq!(v["changes"].as_array().unwrap().len(), 0, "nothing is due after: {v}");

    // A generated tree: --node node01 renews node01's certificates and nothing else.
    let tree = env.init("tree", &[]);
    let before = crate::support::snapshot(&tree);
    env.kubepki_ok(&["renew", "--all", "--node", "node01", "--dir", tree.to_str().unwrap()]);
    let after = crate::support::snapshot(&tree);
    let changed: Vec<String> = after
        .iter()
        .filter(|(p, b)| !p.to_string_lossy().starts_with(".kubepki") && before.get(*p) != Some(b))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(!changed.is_empty());
    assert!(changed.iter().all(|p| p.starts_with("nodes/node01/")), "{changed:?}");
}
