//! Auditing a tree link by link: inspect (what a file says), check (expiry of everything),
//! graph (who talks to whom).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{have, kubeadm_fixture, run, TestEnv};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The base64 body lines of a PEM private key, none of which may ever be printed.
fn key_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().filter(|l| !l.starts_with("-----") && l.len() > 8).map(str::to_string).collect()
}

/// A copy of the real kubeadm v1.29 tree (leaves expired 2025-02-03, CAs valid to 2034).
fn fixture_copy(env: &TestEnv) -> PathBuf {
    kubeadm_fixture(env, false)
}

#[test]
fn inspect_shows_certificates_chains_keys_and_kubeconfigs_never_key_material() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let text = env.kubepki_ok(&["inspect", arg(&tree.join("pki/apiserver.crt"))]);
    assert!(text.contains("pki/apiserver.crt: certificate\n"), "{text}");
    for want in ["user \"kube-apiserver\", no groups", "CN=kubernetes", "serverAuth", "IP:10.96.0.1", "364d left"] {
        assert!(text.contains(want), "{want}: {text}");
    }

    let chain = env.path().join("chain.pem");
    let pem = |f: &str| std::fs::read_to_string(tree.join(f)).unwrap();
    std::fs::write(&chain, pem("pki/apiserver.crt") + &pem("pki/ca.crt")).unwrap();
    let text = env.kubepki_ok(&["inspect", arg(&chain)]);
    assert!(text.contains("certificate chain") && text.contains("signed by the next certificate"), "{text}");
    assert!(text.contains("certificate (block 2)") && text.contains("yes"), "{text}");

    let key = tree.join("pki/apiserver.key");
    let text = env.kubepki_ok(&["inspect", arg(&key)]);
    assert!(text.contains("ecdsa-p256 (256 bits), SEC1"), "{text}");
    assert!(text.contains("pki/apiserver.crt (CN kube-apiserver)"), "{text}");
    assert!(text.contains("nodes/controlplane/etc/kubernetes/pki/apiserver.crt"), "{text}");
    let json = env.kubepki_ok(&["inspect", "-o", "json", arg(&key), arg(&tree.join("admin.conf"))]);
    for secret in key_lines(&key) {
        assert!(!text.contains(&secret) && !json.contains(&secret), "key material printed");
    }

    let text = env.kubepki_ok(&["inspect", arg(&tree.join("admin.conf"))]);
    for want in [
        "admin.conf: kubeconfig",
        "current-context     kubernetes-admin@kubernetes",
        "server              https://127.0.0.1:6443",
        "certificate-authority-data:",
        "client-certificate-data:",
        "user \"kubernetes-admin\", groups kubeadm:cluster-admins",
        "embedded ecdsa-p256 key, matches the client certificate",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("LS0t"), "no base64 data in the text");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["kind"], "private-key");
    assert_eq!(v[0]["keys"][0]["algorithm"], "ecdsa-p256");
    assert_eq!(v[1]["kind"], "kubeconfig");
    let user = &v[1]["kubeconfig"]["users"][0];
    assert_eq!(user["clientCertificate"]["certificates"][0]["groups"][0], "kubeadm:cluster-admins");
    assert_eq!(user["keyMatchesCertificate"], true);
}

#[test]
fn inspect_a_csr_made_by_openssl() {
    assert!(have("openssl"), "openssl is not on PATH: this test needs it to make a CSR");
    let env = TestEnv::new();
    let (csr, key) = (env.path().join("x.csr"), env.path().join("x.key"));
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-subj", "/CN=x/O=g", "-addext", "subjectAltName=DNS:x.example,IP:10.0.0.1"])
        .args(["-addext", "extendedKeyUsage=clientAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    assert!(ok, "{text}");
    let text = env.kubepki_ok(&["inspect", arg(&csr), arg(&key)]);
    for want in [
        "x.csr: certificate signing request",
        "identity            user \"x\", groups g",
        "SANs                DNS:x.example, IP:10.0.0.1",
        "ext key usage       clientAuth",
        "ECDSA-P256 (256 bits)",
        "valid (signed by its own key)",
        "x.key: private key",
        "ecdsa-p256 (256 bits), PKCS#8",
        "no certificate found",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // A CSR whose signature was tampered with is shown, and shown to be invalid.
    let mut der = pem::parse(std::fs::read(&csr).unwrap()).unwrap().into_contents();
    let last = der.len() - 3;
    der[last] ^= 0x55;
    let bad = env.path().join("bad.csr");
    std::fs::write(&bad, pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))).unwrap();
    let text = env.kubepki_ok(&["inspect", arg(&bad)]);
    assert!(text.contains("ecdsa-with-SHA256, INVALID"), "{text}");
}

#[test]
fn inspect_refuses_bad_files_by_name_with_exit_2() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let crt = std::fs::read_to_string(tree.join("pki/ca.crt")).unwrap();
    let cases = [
        ("garbage.crt", "this is not a certificate\n".to_string(), "neither PEM, a DER certificate, nor a kubeconfig"),
        ("truncated.crt", crt[..crt.len() / 2].to_string(), "has no matching END line"),
        (
            "cut.crt",
            crt.lines().take(6).chain(["-----END CERTIFICATE-----", ""]).collect::<Vec<_>>().join("\n"),
            "block 1 (CERTIFICATE): not a valid X.509 certificate",
        ),
        ("cut.conf", "apiVersion: v1\nclusters:\n- name: k\n  cluster: {server: [\n".to_string(), "not a kubeconfig"),
        ("nocluster.conf", "apiVersion: v1\nkind: Config\nusers: []\n".to_string(), "it has no clusters"),
    ];
    for (name, contents, want) in cases {
        let f = env.write(name, &contents);
        let out = env.kubepki(&["inspect", arg(&f)]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("kubepki: error: {}: ", f.display())) && err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = env.kubepki(&["inspect", arg(&tree.join("pki/sa.pub"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("sa.pub: block 1 is a PEM block of type 'PUBLIC KEY'"), "{}", stderr(&out));
    let missing = env.path().join("missing.crt");
    let out = env.kubepki(&["inspect", arg(&tree.join("pki/ca.crt")), arg(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.crt: read: No such file"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "nothing printed when a file fails");
}

#[test]
fn check_of_a_fresh_tree_is_clean_and_lists_kubelet_certificates() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let out = env.kubepki(&["check", "--dir", arg(&tree)]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("CERTIFICATE "), "{text}");
    for header in ["EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "STATUS"] {
        assert!(text.lines().next().unwrap().contains(header), "{header}");
    }
    for want in [
        "nodes/node01/var/lib/kubelet/pki/kubelet.crt",
        "nodes/node02/var/lib/kubelet/pki/kubelet.crt",
        "nodes/node02/etc/kubernetes/kubelet.conf",
        "kube-proxy.conf",
        "etcd-server ",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("!MISSING!") && !text.contains("expired"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&env.kubepki_ok(&["check", "--dir", arg(&tree), "-o", "json"])).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert!(entries.len() >= 41, "{}", entries.len());
    assert!(entries.iter().all(|e| e["status"] == "ok"), "{v}");
    let kubelet = entries.iter().find(|e| e["name"] == "nodes/node01/var/lib/kubelet/pki/kubelet.crt").unwrap();
    assert_eq!(kubelet["authority"], "kubernetes");
    assert_eq!(kubelet["authorityFile"], "pki/ca.crt");
    // Sorted by expiry: the ten-year CAs last.
    assert_eq!(entries.last().unwrap()["isCa"], true);
    // Run from the parent without --dir: ./kubernetes is the default.
    let _ = env.init("kubernetes", &[]);
    let text = env.kubepki_ok(&["check"]);
    assert!(text.lines().any(|l| l.starts_with("kubernetes: ")), "default --dir: {text}");
    // A window wider than the leaves' lifetime flags them; 0 flags nothing; later, all expire.
    let out = env.kubepki(&["check", "--dir", arg(&tree), "--warn-within", "400d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("expiring") && !stdout(&out).contains("expired"), "{}", stdout(&out));
    env.kubepki_ok(&["check", "--dir", arg(&tree), "--warn-within", "0"]);
    let out = env.kubepki(&["check", "--dir", arg(&tree), "--at", "2099-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).lines().skip(1).any(|l| l.trim_end().ends_with(" ok")), "{}", stdout(&out));
}

#[test]
fn check_of_the_kubeadm_fixture_finds_expired_leaves_and_good_cas() {
    let env = TestEnv::new();
    let tree = fixture_copy(&env);
    let out = env.kubepki(&["check", "--dir", arg(&tree), "--at", "2025-06-01"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_string()
    };
    for leaf in ["apiserver", "etcd-server", "admin.conf", "super-admin.conf", "scheduler.conf"] {
        let r = row(leaf);
        assert!(r.contains("Feb 03, 2025 07:54 UTC") && r.contains("<invalid>"), "{r}");
        assert!(r.trim_end().ends_with("expired 117d ago"), "{r}");
    }
    assert!(row("etcd-server").contains("etcd-ca"));
    assert!(row("front-proxy-client").contains("front-proxy-ca"));
    for ca in ["ca", "etcd-ca", "front-proxy-ca"] {
        let r = row(ca);
        assert!(r.contains("Feb 01, 2034 07:54 UTC") && r.contains(" 8y ") && r.trim_end().ends_with("ok"), "{r}");
    }
    let reference = row("kubelet.conf -> /var/lib/kubelet/pki/kubelet-client-current.pem");
    if !Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem").exists() {
        assert!(reference.trim_end().ends_with("unchecked"), "{reference}");
        assert!(text.contains("cannot read /var/lib/kubelet/pki/kubelet-client-current.pem"), "{text}");
    }
    assert!(!text.contains("!MISSING!"), "{text}");

    let out = env.kubepki(&["check", "--dir", arg(&tree), "--at", "2024-06-01", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["at"], "2024-06-01T00:00:00Z");
    let api = v["entries"].as_array().unwrap().iter().find(|e| e["name"] == "pki/apiserver.crt").unwrap();
    assert_eq!(api["status"], "ok");
    assert_eq!(api["residual"], "247d");
    assert_eq!(api["authority"], "kubernetes");
}

/// The tables of `check`'s text: each table's rows, split into columns (two spaces or more
/// apart), up to the first line that is not a row.
fn tables(text: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let split = |l: &str| -> Vec<String> {
        l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
    };
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("CERTIFICATE") {
            let header = split(l);
            let mut rows = Vec::new();
            while let Some(r) = lines.peek().filter(|r| !r.is_empty() && r.contains("  ")) {
                rows.push(split(r));
                lines.next();
            }
            out.push((header, rows));
        }
    }
    out
}

#[test]
fn check_reads_like_kubeadm_certs_check_expiration() {
    let env = TestEnv::new();
    let tree = fixture_copy(&env);
    let out = env.kubepki(&["check", "--dir", arg(&tree)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let t = tables(&text);
    // kubeadm's certificates: its names, its order, its columns, <invalid> once expired.
    let (header, rows) = &t[0];
    assert_eq!(
        header,
        &["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED", "STATUS"]
    );
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let kubeadm = [
        "admin.conf",
        "apiserver",
        "apiserver-etcd-client",
        "apiserver-kubelet-client",
        "controller-manager.conf",
        "etcd-healthcheck-client",
        "etcd-peer",
        "etcd-server",
        "front-proxy-client",
        "scheduler.conf",
        "super-admin.conf",
    ];
    assert_eq!(names, kubeadm, "{text}");
    for r in rows {
        assert_eq!(r[1], "Feb 03, 2025 07:54 UTC", "{r:?}");
        assert_eq!(r[2], "<invalid>", "{r:?}");
        assert_eq!(r[4], "no", "{r:?}");
        assert!(r[5].starts_with("expired ") && r[5].ends_with(" ago"), "{r:?}");
    }
    let ca_of = |name: &str| rows.iter().find(|r| r[0] == name).unwrap()[3].clone();
    assert_eq!(
        (ca_of("apiserver"), ca_of("etcd-peer"), ca_of("front-proxy-client")),
        ("ca".into(), "etcd-ca".into(), "front-proxy-ca".into())
    );
    // Then the CAs, in a table of their own.
    let (header, cas) = &t[1];
    assert_eq!(header, &["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED", "STATUS"]);
    let names: Vec<&str> = cas.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["ca", "etcd-ca", "front-proxy-ca"]);
    assert!(cas.iter().all(|r| r[1] == "Feb 01, 2034 07:54 UTC" && r[3] == "no" && r[4] == "ok"), "{cas:?}");

    // The cluster CA's key gone: kubeadm's external-CA mode, for it and what it signed.
    std::fs::remove_file(tree.join("pki/ca.key")).unwrap();
    let text = stdout(&env.kubepki(&["check", "--dir", arg(&tree)]));
    let t = tables(&text);
    for r in &t[0].1 {
        let external = if r[3] == "ca" { "yes" } else { "no" };
        assert_eq!(r[4], external, "{r:?}");
    }
    let managed: Vec<(&str, &str)> = t[1].1.iter().map(|r| (r[0].as_str(), r[3].as_str())).collect();
    assert_eq!(managed, [("ca", "yes"), ("etcd-ca", "no"), ("front-proxy-ca", "no")]);
}

#[test]
fn check_names_node_bundle_copies_once_and_folds_a_large_cluster() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let text = env.kubepki_ok(&["check", "--dir", arg(&tree)]);
    // pki/ca.crt is in every node's bundle, byte for byte: one row, and one line naming them.
    assert!(!text.contains("nodes/node01/etc/kubernetes/pki/ca.crt"), "{text}");
    let line = text.lines().find(|l| l.contains("pki/ca.crt")).expect("the copies' line");
    assert!(line.starts_with("  nodes/controlplane, nodes/node01, nodes/node02: "), "{line}");
    assert_eq!(text.lines().filter(|l| l.starts_with("ca ")).count(), 1, "{text}");
    // A node's own kubelet.conf is no copy.
    assert!(text.contains("\nnodes/node01/etc/kubernetes/kubelet.conf "), "{text}");
    let every = env.kubepki_ok(&["check", "--dir", arg(&tree), "--all"]);
    assert!(every.contains("\nnodes/node01/etc/kubernetes/pki/ca.crt "), "{every}");
    let rows = |t: &str| tables(t).iter().map(|(_, r)| r.len()).sum::<usize>();
    let json: serde_json::Value =
        serde_json::from_str(&env.kubepki_ok(&["check", "--dir", arg(&tree), "-o", "json"])).unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(rows(&every), entries.len());
    let copies = entries.iter().filter(|e| e["copyOf"].is_string()).count();
    assert_eq!(rows(&text), entries.len() - copies);
    let copy = entries.iter().find(|e| e["path"] == "nodes/node02/etc/kubernetes/pki/ca.crt").unwrap();
    assert_eq!(copy["copyOf"], "pki/ca.crt");

    // 60 workers: a row per kind of a node's file, --all for every one.
    let config = env.write(
        "pool.yaml",
        "nodes:\n- {name: cp, role: control-plane, addresses: [127.0.0.1]}\nnodePools:\n- {namePattern: \"w{index:02}\", count: 60, firstAddress: 127.0.1.1}\n",
    );
    let big = env.init("big", &["--config", arg(&config), "--quiet"]);
    let text = env.kubepki_ok(&["check", "--dir", arg(&big)]);
    assert!(text.contains("\nnodes/<node>/etc/kubernetes/kubelet.conf × 60 "), "{text}");
    assert!(text.contains("\nnodes/<node>/var/lib/kubelet/pki/kubelet.crt × 61 "), "{text}");
    assert!(text.contains("(61 nodes: each kind"), "{text}");
    assert!(!text.contains("nodes/w07/"), "{text}");
    // kubeadm's 12, its 3 CAs, kube-proxy.conf, kubelet.conf, metrics-server's 2, the 2 folded.
    assert!(rows(&text) <= 21, "{text}");
    let every = env.kubepki_ok(&["check", "--dir", arg(&big), "--all"]);
    assert!(every.contains("\nnodes/w07/etc/kubernetes/kubelet.conf "), "{every}");
}

#[test]
fn check_shows_a_deleted_file_as_missing() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    std::fs::remove_file(tree.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(tree.join("scheduler.conf")).unwrap();
    let out = env.kubepki(&["check", "--dir", arg(&tree)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // In kubeadm's order, as kubeadm shows them.
    for missing in ["apiserver", "scheduler.conf"] {
        let line = text.lines().find(|l| l.starts_with(&format!("!MISSING! {missing} "))).expect(missing);
        assert!(line.trim_end().ends_with("missing"), "{line}");
    }
    assert!(text.lines().nth(2).unwrap().starts_with("!MISSING! apiserver "), "{text}");
    assert!(text.contains("2 missing"), "{text}");
}

#[test]
fn check_cannot_run_on_nothing_or_on_what_is_not_a_pki() {
    let env = TestEnv::new();
    let nowhere = env.path().join("nowhere");
    let out = env.kubepki(&["check", "--dir", arg(&nowhere)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("{}: ", nowhere.display())), "{}", stderr(&out));
    let empty = env.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = env.kubepki(&["check", "--dir", arg(&empty)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a Kubernetes PKI directory"), "{}", stderr(&out));
    let out = env.kubepki(&["check", "--dir", arg(&empty), "--at", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "bad --at is a usage error");
}

#[test]
fn check_shows_an_unreadable_certificate_and_fails() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    std::fs::write(tree.join("pki/front-proxy-client.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let out = env.kubepki(&["check", "--dir", arg(&tree)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("unreadable: pki/front-proxy-client.crt: PEM block 1 has no matching END line"), "{text}");
}

#[test]
fn graph_draws_every_link_in_svg_dot_and_mermaid() {
    let env = TestEnv::new();
    let svg = env.kubepki_ok(&["graph"]);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("class=\"link\"").count(), 20);
    assert_eq!(svg.matches("class=\"component\"").count(), 15);
    for id in ["kube-apiserver@controlplane", "etcd@controlplane", "kubelet@node02", "kubectl-super-admin"] {
        assert!(svg.contains(&format!("data-id=\"{id}\"")), "{id}");
    }
    let dot = env.kubepki_ok(&["graph", "-o", "dot"]);
    let mermaid = env.kubepki_ok(&["graph", "-o", "mermaid"]);
    let plan: serde_json::Value = serde_json::from_str(&env.kubepki_ok(&["plan", "-o", "json"])).unwrap();
    let links = plan["topology"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 20);
    for l in links {
        let edge = format!("\"{}\" -> \"{}\"", l["client"].as_str().unwrap(), l["server"].as_str().unwrap());
        assert!(dot.contains(&edge), "{edge}");
    }
    assert_eq!(mermaid.lines().filter(|l| l.contains("->|")).count(), 20, "{mermaid}");
    let out = env.path().join("pic.svg");
    assert!(env.kubepki_ok(&["graph", "--out", arg(&out)]).is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), svg);
    let out = env.kubepki(&["graph", "-o", "png"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn graph_colours_each_link_by_the_verify_of_the_tree() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    std::fs::remove_file(tree.join("nodes/node02/var/lib/kubelet/pki/kubelet.crt")).unwrap();
    let dot = env.kubepki_ok(&["graph", "--dir", tree.to_str().unwrap(), "-o", "dot"]);
    let line = |id: &str| {
        dot.lines().find(|l| l.contains(&format!("tooltip=\"{id} ("))).unwrap_or_else(|| panic!("{id}: {dot}"))
    };
    let broken = line("kube-apiserver@controlplane -> kubelet@node02");
    assert!(broken.contains("#c62828") && broken.contains("(broken)"), "{broken}");
    let ok = line("kube-apiserver@controlplane -> kubelet@node01");
    assert!(ok.contains("#2e7d32") && ok.contains("(ok)"), "{ok}");
    // Without a tree, the picture of the description has every link unknown.
    let env2 = TestEnv::new();
    let dot = env2.kubepki_ok(&["graph", "-o", "dot"]);
    assert!(dot.contains("(unknown)") && !dot.contains("(ok)"), "{dot}");
}

#[test]
fn graph_marks_the_component_at_fault_and_lists_the_findings_behind_each_arrow() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    std::fs::remove_file(tree.join("nodes/node02/var/lib/kubelet/pki/kubelet.crt")).unwrap();
    let dir = tree.to_str().unwrap();
    let svg = env.kubepki_ok(&["graph", "--dir", dir]);
    // An element of the SVG (titles span lines): from `start` to its `</g>`.
    let element = |start: &str| {
        let at = svg.find(start).unwrap_or_else(|| panic!("no {start}"));
        let end = at + svg[at..].find("</g>").unwrap();
        svg[at..end].to_string()
    };
    let holder = element("data-id=\"kubelet@node02\"");
    assert!(holder.contains("data-fault=\"true\"") && holder.contains("#c62828"), "{holder}");
    assert!(holder.contains("[1] missing nodes/node02/var/lib/kubelet/pki/kubelet.crt"), "{holder}");
    assert_eq!(svg.matches("data-fault=\"true\"").count(), 1, "only the kubelet holds the missing certificate");
    let arrow = element("<title>kube-apiserver@controlplane -&gt; kubelet@node02");
    assert!(arrow.contains("[1] missing") && arrow.contains("fix: kubepki"), "{arrow}");
    assert!(svg.contains("findings behind the arrows that are not green (1)"), "the panel");
    let dot = env.kubepki_ok(&["graph", "--dir", dir, "-o", "dot"]);
    let node = dot.lines().find(|l| l.contains("\"kubelet@node02\" [label")).unwrap();
    assert!(node.contains("penwidth=3") && node.contains("[1] missing"), "{node}");
    let mermaid = env.kubepki_ok(&["graph", "--dir", dir, "-o", "mermaid"]);
    assert_eq!(mermaid.matches("stroke-width:3px").count(), 1, "{mermaid}");
    assert!(mermaid.contains("%% [1] missing"), "{mermaid}");
}
