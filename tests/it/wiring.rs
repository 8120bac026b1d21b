//! The wiring audited: kubeadm's real static pod manifests, a generated tree's manifests and
//! kubelet and kube-proxy configuration, and one seeded wiring defect at a time, each yielding
//! exactly its own finding on the links it decides.

use std::path::Path;

use crate::support::{kubeadm_fixture, TestEnv};

/// `verify` of the tree with extra arguments (the kubeadm fixture: `--at 2024-06-01`, when its
/// leaves were valid): the exit code, every finding, and the link statuses by number.
fn verify_json(env: &TestEnv, dir: &Path, extra: &[&str]) -> (i32, Vec<serde_json::Value>, Vec<(u64, String)>) {
    let mut args = vec!["verify", "--dir", dir.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let out = env.kubepki(&args);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let links = json["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["number"].as_u64().unwrap(), l["status"].as_str().unwrap().to_string()))
        .collect();
    (out.status.code().unwrap(), json["findings"].as_array().unwrap().clone(), links)
}

/// Whether a finding is one the kubeadm fixture has of its own: loose modes from git,
/// kubeadm's self-signed kubelet serving certificate and rotated client credential, kubeadm's
/// unset --kubelet-certificate-authority, and its apiserver's anonymous access (kubeadm leaves
/// --anonymous-auth unset, on, for its liveness probe).
fn fixtures_own(f: &serde_json::Value) -> bool {
    let found = f["found"].as_str().unwrap();
    ["mode", "not-kubeadm", "external"].contains(&f["code"].as_str().unwrap())
        || found.starts_with("--kubelet-certificate-authority is not set")
        || (f["code"] == "anonymous-auth" && found.starts_with("--anonymous-auth=unset"))
}

/// The kubeadm fixture's findings that are not its own (above), and the link statuses.
fn new_findings(env: &TestEnv, dir: &Path) -> (Vec<serde_json::Value>, Vec<(u64, String)>) {
    let (_, findings, links) = verify_json(env, dir, &["--at", "2024-06-01"]);
    (findings.into_iter().filter(|f| !fixtures_own(f)).collect(), links)
}

/// Replace `from` by `to` in the tree's file `rel` (which must hold `from`).
fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{rel} has no {from}:\n{text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// One seeded defect: the file and the edit, the finding it must yield (its code, the setting
/// its text starts with), and the link that must then have that status ("ok": not checked).
struct Case {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    code: &'static str,
    setting: &'static str,
    link: u64,
    status: &'static str,
}

const fn case(
    file: &'static str,
    from: &'static str,
    to: &'static str,
    code: &'static str,
    setting: &'static str,
    link: u64,
    status: &'static str,
) -> Case {
    Case { file, from, to, code, setting, link, status }
}

/// The finding is exactly the case's: its code, setting, file and a fix naming the setting;
/// the link has the case's status.
fn assert_case(c: &Case, findings: &[serde_json::Value], links: &[(u64, String)], file: &str) {
    assert_eq!(findings.len(), 1, "{} in {}: {findings:#?}", c.to, c.file);
    let f = &findings[0];
    assert_eq!(f["code"], c.code, "{f}");
    assert!(f["found"].as_str().unwrap().starts_with(c.setting), "{f}");
    assert_eq!(f["file"], file, "{f}");
    // A note (a kubelet that bootstraps its serving certificate) needs no fix.
    if c.code != "external" {
        assert!(f["fix"].as_str().unwrap().contains(c.setting.split('=').next().unwrap()), "{f}");
    }
    if c.status != "ok" {
        assert!(
            links.iter().any(|(n, s)| *n == c.link && s == c.status),
            "{}: link {} is not {}: {links:?}",
            c.setting,
            c.link,
            c.status
        );
    }
}

#[test]
fn kubeadm_manifests_are_wired_right_and_seeded_defects_are_each_their_own_finding() {
    let env = TestEnv::new();
    let clean = kubeadm_fixture(&env, true);
    let (findings, _) = new_findings(&env, &clean);
    assert!(findings.is_empty(), "{findings:#?}");
    // The fixture's own wiring findings: exactly link 10 unverified, and anonymous access noted.
    let (_, all, links) = verify_json(&env, &clean, &["--at", "2024-06-01"]);
    let wiring: Vec<&serde_json::Value> = all.iter().filter(|f| f["file"] == "manifests/kube-apiserver.yaml").collect();
    assert_eq!(wiring.len(), 2, "{wiring:#?}");
    assert!(wiring.iter().any(|f| f["code"] == "anonymous-auth" && f["severity"] == "info"));
    assert!(links.iter().all(|(n, s)| (*n == 10) == (s == "unverified")), "{links:?}");

    let api = "manifests/kube-apiserver.yaml";
    let cases = [
        // The apiserver trusts the cluster CA for etcd: etcd's serving certificate fails.
        case(
            api,
            "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            "--etcd-cafile=/etc/kubernetes/pki/ca.crt",
            "setting-wrong-file",
            "--etcd-cafile",
            7,
            "broken",
        ),
        case(
            api,
            "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
            "--tls-cert-file=/etc/kubernetes/pki/gone.crt",
            "setting-no-file",
            "--tls-cert-file",
            1,
            "broken",
        ),
        case(api, "    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt\n", "", "setting-unset", "--etcd-certfile", 7, "ok"),
        case(
            "manifests/etcd.yaml",
            "--client-cert-auth=true",
            "--client-cert-auth=false",
            "unverified",
            "--client-cert-auth",
            9,
            "unverified",
        ),
        case(
            "manifests/etcd.yaml",
            "    - --data-dir=/var/lib/etcd\n",
            "    - --auto-tls=true\n    - --data-dir=/var/lib/etcd\n",
            "unverified",
            "--auto-tls",
            7,
            "ok",
        ),
        // TLS weakened: each its own finding, the links it serves warned about.
        case(
            api,
            "    - --secure-port=6443\n",
            "    - --secure-port=6443\n    - --tls-min-version=VersionTLS10\n",
            "weak-tls",
            "--tls-min-version=VersionTLS10",
            1,
            "warning",
        ),
        case(
            api,
            "    - --secure-port=6443\n",
            "    - --secure-port=6443\n    - --tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_3DES_EDE_CBC_SHA\n",
            "weak-tls",
            "--tls-cipher-suites=weak suites TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            3,
            "warning",
        ),
        case(
            "manifests/etcd.yaml",
            "    - --data-dir=/var/lib/etcd\n",
            "    - --cipher-suites=TLS_ECDHE_RSA_WITH_RC4_128_SHA\n    - --data-dir=/var/lib/etcd\n",
            "weak-tls",
            "--cipher-suites=weak suites TLS_ECDHE_RSA_WITH_RC4_128_SHA",
            8,
            "ok",
        ),
        case(api, "--authorization-mode=Node,RBAC", "--authorization-mode=AlwaysAllow", "always-allow", "--authorization-mode=AlwaysAllow", 6, "warning"),
    ];
    for c in &cases {
        let env = TestEnv::new();
        let dir = kubeadm_fixture(&env, true);
        edit(&dir, c.file, c.from, c.to);
        let (findings, links) = new_findings(&env, &dir);
        assert_case(c, &findings, &links, c.file);
    }
}

/// A kubeadm kubeconfig that skips verifying the server: its own finding, the links through it
/// broken (client-go refuses the flag beside CA data), and the printed fix removes it.
#[test]
fn insecure_skip_tls_verify_in_a_kubeconfig_is_found_and_fixed() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let (code, findings, _) = verify_json(&env, &tree, &[]);
    assert!(findings.is_empty() && code == 0, "{findings:#?}");
    // At its home and its copy in the control plane's bundle.
    for copy in ["admin.conf", "nodes/controlplane/etc/kubernetes/admin.conf"] {
        edit(&tree, copy, "\n    server:", "\n    insecure-skip-tls-verify: true\n    server:");
    }
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap(), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f["code"], "insecure-skip-tls-verify", "{f}");
    assert_eq!(f["file"], "admin.conf", "{f}");
    assert_eq!(f["entry"], "admin.conf", "{f}");
    let admin_links: Vec<&serde_json::Value> =
        json["links"].as_array().unwrap().iter().filter(|l| l["number"] == 1).collect();
    assert!(!admin_links.is_empty() && admin_links.iter().all(|l| l["status"] == "broken"), "{admin_links:?}");
    // The fix, run as printed (its first command), makes the kubeconfig as the catalog says.
    let fix = f["fix"].as_str().unwrap();
    let command = fix.split(" (or ").next().unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..2], ["kubepki", "renew"], "{fix}");
    env.kubepki_ok(&words[1..]);
    assert!(!std::fs::read_to_string(tree.join("admin.conf")).unwrap().contains("insecure"));
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The default cluster's generated tree: each seeded defect in a kubelet's or kube-proxy's
/// configuration is exactly its own finding.
#[test]
fn kubelet_and_kube_proxy_configuration_defects_are_each_their_own_finding() {
    let kubelet = |n: &'static str| -> &'static str {
        match n {
            "controlplane" => "nodes/controlplane/var/lib/kubelet/config.yaml",
            "node01" => "nodes/node01/var/lib/kubelet/config.yaml",
            _ => "nodes/node02/var/lib/kubelet/config.yaml",
        }
    };
    let cases = [
        // The kubelet trusts the front-proxy CA for clients: the apiserver's kubelet-client
        // certificate (signed by the cluster CA) is refused.
        case(
            kubelet("controlplane"),
            "clientCAFile: /etc/kubernetes/pki/ca.crt",
            "clientCAFile: /etc/kubernetes/pki/front-proxy-ca.crt",
            "setting-wrong-file",
            "authentication.x509.clientCAFile",
            10,
            "broken",
        ),
        // node01 serves node02's certificate (copied into its bundle below).
        case(
            kubelet("node01"),
            "tlsCertFile: /var/lib/kubelet/pki/kubelet.crt",
            "tlsCertFile: /var/lib/kubelet/pki/node02.crt",
            "setting-wrong-file",
            "tlsCertFile",
            10,
            "broken",
        ),
        case(
            kubelet("node02"),
            "anonymous:\n    enabled: false",
            "anonymous:\n    enabled: true",
            "anonymous-auth",
            "authentication.anonymous.enabled=true",
            10,
            "ok",
        ),
        case(kubelet("node02"), "mode: Webhook", "mode: AlwaysAllow", "always-allow", "authorization.mode=AlwaysAllow", 10, "warning"),
        case(
            kubelet("node01"),
            "tlsMinVersion: VersionTLS12",
            "tlsMinVersion: VersionTLS10",
            "weak-tls",
            "tlsMinVersion=VersionTLS10",
            10,
            "warning",
        ),
        case(
            kubelet("node01"),
            "tlsMinVersion: VersionTLS12",
            "tlsMinVersion: VersionTLS12\ntlsCipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256]",
            "weak-tls",
            "tlsCipherSuites=weak suites TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
            10,
            "warning",
        ),
        case(
            kubelet("node02"),
            "serverTLSBootstrap: false\ntlsCertFile: /var/lib/kubelet/pki/kubelet.crt\ntlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key\n",
            "serverTLSBootstrap: true\n",
            "external",
            "serverTLSBootstrap=true",
            10,
            "unknown",
        ),
        case(
            "nodes/node01/var/lib/kube-proxy/config.yaml",
            "kubeconfig: /etc/kubernetes/kube-proxy.conf",
            "kubeconfig: /etc/kubernetes/kubelet.conf",
            "setting-wrong-file",
            "clientConnection.kubeconfig",
            5,
            "broken",
        ),
    ];
    let env = TestEnv::new();
    let pristine = env.init("pristine", &[]);
    let (code, findings, _) = verify_json(&env, &pristine, &[]);
    assert!(code == 0 && findings.is_empty(), "{findings:#?}");
    for (i, c) in cases.iter().enumerate() {
        let tree = env.path().join(format!("t{i}"));
        let (ok, out) = crate::support::run(std::process::Command::new("cp").arg("-a").arg(&pristine).arg(&tree));
        assert!(ok, "{out}");
        std::fs::copy(
            tree.join("nodes/node02/var/lib/kubelet/pki/kubelet.crt"),
            tree.join("nodes/node01/var/lib/kubelet/pki/node02.crt"),
        )
        .unwrap();
        edit(&tree, c.file, c.from, c.to);
        let (_, findings, links) = verify_json(&env, &tree, &[]);
        assert_case(c, &findings, &links, c.file);
    }
}

/// `verify --wiring DIR` audits the manifests of another directory (a node's
/// /etc/kubernetes/manifests beside a tree kept elsewhere), naming its files; a directory with
/// nothing to audit is refused, naming it.
#[test]
fn verify_wiring_audits_another_directory() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let elsewhere = env.path().join("etc-kubernetes-manifests");
    std::fs::create_dir(&elsewhere).unwrap();
    for f in ["kube-apiserver.yaml", "etcd.yaml"] {
        std::fs::copy(tree.join("manifests").join(f), elsewhere.join(f)).unwrap();
    }
    std::fs::copy(tree.join("nodes/node01/var/lib/kubelet/config.yaml"), elsewhere.join("config.yaml")).unwrap();
    std::fs::write(elsewhere.join("README"), "not a manifest").unwrap();
    let w = elsewhere.to_str().unwrap();
    let (code, findings, _) = verify_json(&env, &tree, &["--wiring", w, "--wiring-node", "node01"]);
    // The control plane's manifests audited as node01's: node01 is no control plane, so its
    // bundle has no etcd CA: the files they name are not there for it.
    assert_eq!(code, 1, "{findings:#?}");
    let (code, findings, _) = verify_json(&env, &tree, &["--wiring", w]);
    assert!(code == 0 && findings.is_empty(), "{findings:#?}");
    // An edit there is found there, not in the tree.
    let abs = elsewhere.canonicalize().unwrap();
    edit(&abs, "etcd.yaml", "--peer-client-cert-auth=true", "--peer-client-cert-auth=false");
    let (_, findings, _) = verify_json(&env, &tree, &["--wiring", w]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["file"], abs.join("etcd.yaml").to_str().unwrap(), "{:#}", findings[0]);
    assert!(findings[0]["fix"].as_str().unwrap().contains(abs.join("etcd.yaml").to_str().unwrap()));
    // Nothing to audit, or a node that is not the cluster's: exit 2, naming what.
    let empty = env.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap(), "--wiring", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(empty.to_str().unwrap()) && err.contains("no static pod manifest"), "{err}");
    let out = env.kubepki(&["verify", "--dir", tree.to_str().unwrap(), "--wiring", w, "--wiring-node", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope is not a node"));
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

/// `plan` lists, per component on a node, each setting, the file it names as the node sees it
/// and the entry that file holds (or a switch's value), in its configuration file, with the
/// CIS id; the text table has the same rows.
#[test]
fn plan_lists_every_components_settings_and_the_files_they_name() {
    let env = TestEnv::new();
    let json: serde_json::Value = serde_json::from_str(&env.kubepki_ok(&["plan", "-o", "json"])).unwrap();
    let settings = json["settings"].as_array().unwrap();
    let row = |component: &str, setting: &str| {
        settings
            .iter()
            .find(|s| s["component"] == component && s["setting"] == setting)
            .unwrap_or_else(|| panic!("no {setting} of {component}"))
            .clone()
    };
    let r = row("kubelet@node01", "tlsCertFile");
    assert_eq!(r["value"], "/var/lib/kubelet/pki/kubelet.crt");
    assert_eq!(r["entry"], "kubelet-serving@node01");
    assert_eq!(r["config"], "/var/lib/kubelet/config.yaml");
    assert_eq!(r["cis"], "4.2.9");
    let r = row("kube-apiserver@controlplane", "--etcd-cafile");
    assert_eq!((r["value"].as_str(), r["entry"].as_str()), (Some("/etc/kubernetes/pki/etcd/ca.crt"), Some("etcd-ca")));
    assert_eq!(r["config"], "/etc/kubernetes/manifests/kube-apiserver.yaml");
    let r = row("etcd@controlplane", "--peer-client-cert-auth");
    assert_eq!((r["value"].as_str(), r.get("entry")), (Some("true"), None));
    let r = row("kube-proxy@node02", "clientConnection.kubeconfig");
    assert_eq!(
        (r["value"].as_str(), r["entry"].as_str()),
        (Some("/etc/kubernetes/kube-proxy.conf"), Some("kube-proxy.conf"))
    );
    // Every component on a node has all of its settings; the people and tools none.
    let kinds = [("kube-apiserver@", 18), ("etcd@", 12), ("kubelet@", 8), ("kube-proxy@", 1)];
    for (prefix, per) in kinds {
        let n = settings.iter().filter(|s| s["component"].as_str().unwrap().starts_with(prefix)).count();
        let components = if prefix.starts_with("kube-apiserver") || prefix.starts_with("etcd") { 1 } else { 3 };
        assert_eq!(n, per * components, "{prefix}");
    }
    let text = env.kubepki_ok(&["plan"]);
    let line = text.lines().find(|l| l.starts_with("kubelet@node01") && l.contains("tlsCertFile")).unwrap();
    for cell in ["/var/lib/kubelet/pki/kubelet.crt", "kubelet-serving@node01", "/var/lib/kubelet/config.yaml", "4.2.9"]
    {
        assert!(line.contains(cell), "{line}");
    }
}

/// `inspect` on a static pod manifest or a kubelet's configuration shows its TLS settings and
/// what each file they name holds (subject, issuer, expiry), looked for in the tree; a missing
/// file is said.
#[test]
fn inspect_shows_a_components_settings_and_what_their_files_hold() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let inspect = |file: &Path| -> serde_json::Value {
        let out = env.kubepki_ok(&["inspect", file.to_str().unwrap(), "-o", "json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
    };
    let setting = |report: &serde_json::Value, name: &str| {
        report["configuration"]["settings"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone()
    };
    let etcd = inspect(&tree.join("manifests/etcd.yaml"));
    assert_eq!(etcd["kind"], "configuration");
    assert_eq!(etcd["configuration"]["component"], "etcd");
    let cert = setting(&etcd, "--cert-file");
    assert_eq!(cert["value"], "/etc/kubernetes/pki/etcd/server.crt");
    assert_eq!(cert["file"]["resolved"], tree.join("pki/etcd/server.crt").to_str().unwrap());
    let held = &cert["file"]["certificates"][0];
    assert_eq!(held["subjectCn"], "controlplane", "{held}");
    assert!(held["issuer"].as_str().unwrap().contains("CN=etcd-ca"), "{held}");
    assert!(held["notAfter"].is_string());
    assert_eq!(setting(&etcd, "--client-cert-auth")["value"], "true");
    assert!(setting(&etcd, "--auto-tls")["value"].is_null());

    // A kubelet's configuration in a worker's bundle: its own serving certificate, the
    // cluster CA from the bundle's copy.
    let kubelet = inspect(&tree.join("nodes/node01/var/lib/kubelet/config.yaml"));
    assert_eq!(kubelet["configuration"]["component"], "kubelet");
    let serving = setting(&kubelet, "tlsCertFile");
    assert_eq!(serving["file"]["certificates"][0]["subjectCn"], "system:node:node01");
    let ca = setting(&kubelet, "authentication.x509.clientCAFile");
    assert_eq!(ca["file"]["resolved"], tree.join("nodes/node01/etc/kubernetes/pki/ca.crt").to_str().unwrap());
    assert_eq!(ca["file"]["certificates"][0]["subjectCn"], "kubernetes");

    // A file that is gone is said to be, in JSON and in the text.
    std::fs::remove_file(tree.join("pki/etcd/peer.crt")).unwrap();
    let peer = setting(&inspect(&tree.join("manifests/etcd.yaml")), "--peer-cert-file");
    assert_eq!(peer["file"]["readable"], false, "{peer}");
    assert!(peer["file"]["problem"].as_str().unwrap().contains("No such file"), "{peer}");
    let text = env.kubepki_ok(&["inspect", tree.join("manifests/etcd.yaml").to_str().unwrap()]);
    assert!(text.contains("component configuration") && text.contains("component           etcd"), "{text}");
    let line = text.lines().find(|l| l.trim_start().starts_with("--peer-cert-file")).unwrap();
    assert!(line.contains("not readable here"), "{line}");
    let line = text.lines().find(|l| l.trim_start().starts_with("--cert-file")).unwrap();
    assert!(line.contains("[CIS 2.1]"), "{line}");
    assert!(text.contains("CN=controlplane, issued by CN=etcd-ca, valid to "), "{text}");
}
