//! The wiring audited: kubeadm's real static pod manifests, and one seeded wiring defect at a
//! time, each yielding exactly its own finding on the links it decides.

use std::path::Path;

use crate::support::{kubeadm_fixture, TestEnv};

/// `verify --at 2024-06-01` of the tree (its leaves valid then): the findings that are not the
/// fixture's own (loose modes from git, kubeadm's self-signed kubelet serving certificate,
/// kubeadm's unset --kubelet-certificate-authority), and the link statuses by number.
fn new_findings(env: &TestEnv, dir: &Path) -> (Vec<serde_json::Value>, Vec<(u64, String)>) {
    let out = env.kubepki(&["verify", "--dir", dir.to_str().unwrap(), "--at", "2024-06-01", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !["mode", "not-kubeadm", "external"].contains(&f["code"].as_str().unwrap()))
        .filter(|f| !f["found"].as_str().unwrap().starts_with("--kubelet-certificate-authority is not set"))
        .cloned()
        .collect();
    let links = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["number"].as_u64().unwrap(), l["status"].as_str().unwrap().to_string()))
        .collect();
    (findings, links)
}

fn edit(dir: &Path, manifest: &str, from: &str, to: &str) {
    let path = dir.join("manifests").join(manifest);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{manifest} has no {from}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[test]
fn kubeadm_manifests_are_wired_right_and_seeded_defects_are_each_their_own_finding() {
    let env = TestEnv::new();
    let clean = kubeadm_fixture(&env, true);
    let (findings, _) = new_findings(&env, &clean);
    assert!(findings.is_empty(), "{findings:#?}");

    let cases: &[(&str, &str, &str, &str, &str, u64, &str)] = &[
        // The apiserver trusts the cluster CA for etcd: etcd's serving certificate fails.
        (
            "kube-apiserver.yaml",
            "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            "--etcd-cafile=/etc/kubernetes/pki/ca.crt",
            "setting-wrong-file",
            "--etcd-cafile",
            7,
            "broken",
        ),
        (
            "kube-apiserver.yaml",
            "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
            "--tls-cert-file=/etc/kubernetes/pki/gone.crt",
            "setting-no-file",
            "--tls-cert-file",
            1,
            "broken",
        ),
        (
            "kube-apiserver.yaml",
            "    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt\n",
            "",
            "setting-unset",
            "--etcd-certfile",
            7,
            "ok",
        ),
        (
            "etcd.yaml",
            "--client-cert-auth=true",
            "--client-cert-auth=false",
            "unverified",
            "--client-cert-auth",
            9,
            "unverified",
        ),
        (
            "etcd.yaml",
            "    - --data-dir=/var/lib/etcd\n",
            "    - --auto-tls=true\n    - --data-dir=/var/lib/etcd\n",
            "unverified",
            "--auto-tls",
            7,
            "ok",
        ),
    ];
    for (manifest, from, to, code, setting, link, status) in cases {
        let env = TestEnv::new();
        let dir = kubeadm_fixture(&env, true);
        edit(&dir, manifest, from, to);
        let (findings, links) = new_findings(&env, &dir);
        assert_eq!(findings.len(), 1, "{setting}: {findings:#?}");
        let f = &findings[0];
        assert_eq!(f["code"], *code, "{f}");
        assert!(f["found"].as_str().unwrap().starts_with(setting), "{f}");
        assert_eq!(f["file"], format!("manifests/{manifest}"), "{f}");
        assert!(f["fix"].as_str().unwrap().contains(setting), "{f}");
        if *status != "ok" {
            assert!(
                links.iter().any(|(n, s)| n == link && s == status),
                "{setting}: link {link} is not {status}: {links:?}"
            );
        }
    }
}

#[test]
fn a_generated_tree_carries_its_wiring_and_verifies_clean() {
    let env = TestEnv::new();
    let ha = env.write(
        "ha.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [127.0.2.1]}\n- {name: cp2, role: control-plane, addresses: [127.0.2.2]}\n- {name: w1, role: worker, addresses: [127.0.2.11]}\n",
    );
    let tree = env.init("tree", &["--config", ha.to_str().unwrap()]);
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap(), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{:#}", json["findings"]);
    // Each control plane's manifests name its own files, as the node sees them, with every
    // verification on.
    let cp2 = std::fs::read_to_string(tree.join("nodes/cp2/etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    for flag in [
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--advertise-address=127.0.2.2",
        "--tls-min-version=VersionTLS12",
    ] {
        assert!(cp2.contains(flag), "cp2's apiserver lacks {flag}:\n{cp2}");
    }
    let etcd = std::fs::read_to_string(tree.join("manifests/etcd.yaml")).unwrap();
    for flag in [
        "--client-cert-auth=true",
        "--peer-client-cert-auth=true",
        "--initial-cluster=cp1=https://127.0.2.1:2380,cp2=https://127.0.2.2:2380",
    ] {
        assert!(etcd.contains(flag), "etcd lacks {flag}:\n{etcd}");
    }
    assert!(!etcd.contains("auto-tls"));
    let kubelet = std::fs::read_to_string(tree.join("nodes/w1/var/lib/kubelet/config.yaml")).unwrap();
    for line in
        ["clientCAFile: /etc/kubernetes/pki/ca.crt", "tlsCertFile: /var/lib/kubelet/pki/kubelet.crt", "enabled: false"]
    {
        assert!(kubelet.contains(line), "{kubelet}");
    }
    let rbac: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(tree.join("kubepki-rbac.yaml")).unwrap()).unwrap();
    assert_eq!(rbac["items"][0]["roleRef"]["name"], "cluster-admin");
    // A manifest that is there is never replaced: init again keeps an operator's edit, and
    // verify says what the edit broke.
    let path = tree.join("manifests/kube-apiserver.yaml");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    - \"--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt\"\n", "");
    std::fs::write(&path, &edited).unwrap();
    env.kubepki_ok(&["init", "--dir", tree.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--kubelet-certificate-authority is not set"));
}
