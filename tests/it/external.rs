//! An outside CA: csr → sign → import, and every refusal leaves the tree as it was.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{content_files, run, TestEnv};

/// Every file under a tree with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let with_mode = |p: PathBuf| {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        (p.strip_prefix(dir).unwrap().to_path_buf(), (std::fs::read(&p).unwrap(), mode))
    };
    content_files(dir).into_iter().map(with_mode).collect()
}

/// A leaf or kubeconfig of the default cluster, as `plan -o json` describes it.
struct Leaf {
    issuer: String,
    /// Its files at home (certificate and key, or the kubeconfig).
    files: Vec<String>,
    /// Its request.
    csr: String,
}

fn leaves(env: &TestEnv) -> Vec<Leaf> {
    let plan: serde_json::Value = serde_json::from_str(&env.kubepki_ok(&["plan", "-o", "json"])).unwrap();
    let mut out = Vec::new();
    for e in plan["catalog"]["entries"].as_array().unwrap() {
        if e["kind"] != "leaf" {
            continue;
        }
        let store = &e["store"];
        let s = |k: &str| store[k].as_str().unwrap().to_string();
        let (files, csr) = if store["type"] == "files" {
            (vec![s("cert"), s("key")], s("cert").replace(".crt", ".csr"))
        } else {
            (vec![s("path")], format!("{}.csr", s("path")))
        };
        out.push(Leaf { issuer: e["issuer"].as_str().unwrap().into(), files, csr });
    }
    out
}

/// A tree with its CAs and sa only (the leaves removed), then `kubepki csr` run on it.
fn external_tree(env: &TestEnv, name: &str) -> (PathBuf, Vec<Leaf>) {
    let tree = env.init(name, &[]);
    let leaves = leaves(env);
    for l in &leaves {
        for f in &l.files {
            std::fs::remove_file(tree.join(f)).unwrap();
        }
    }
    env.kubepki_ok(&["csr", "--dir", tree.to_str().unwrap()]);
    (tree, leaves)
}

fn sign(env: &TestEnv, tree: &Path, ca: &str, csrs: &[&str]) -> Output {
    let mut args = vec!["sign", "--dir", tree.to_str().unwrap(), "--ca", ca];
    let paths: Vec<String> = csrs.iter().map(|c| tree.join(c).to_str().unwrap().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    env.kubepki(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command failed with exit 2, said `expected`, and the tree is as it was.
fn refused(out: &Output, expected: &str, tree: &Path, before: &BTreeMap<PathBuf, (Vec<u8>, u32)>) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    assert!(stderr(out).contains(expected), "expected '{expected}' in:\n{}", stderr(out));
    assert!(snapshot(tree) == *before, "the tree changed");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn csr_sign_import_round_trip_verifies_clean() {
    let env = TestEnv::new();
    let (tree, leaves) = external_tree(&env, "tree");
    let dir = tree.to_str().unwrap();
    assert_eq!(leaves.len(), 20);
    for (f, m) in [("pki/apiserver.csr", 0o600), ("pki/apiserver.key", 0o600), ("admin.conf.csr", 0o600)] {
        assert_eq!(mode(&tree.join(f)), m, "{f}");
    }
    assert!(tree.join("nodes/node01/etc/kubernetes/kubelet.conf.key").is_file());

    // A second run would orphan the keys: refused, nothing changed.
    let before = snapshot(&tree);
    refused(&env.kubepki(&["csr", "--dir", dir]), "refusing to overwrite", &tree, &before);

    let mut by_ca: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in &leaves {
        by_ca.entry(l.issuer.as_str()).or_default().push(l.csr.as_str());
    }
    assert_eq!(by_ca.keys().copied().collect::<Vec<_>>(), ["ca", "etcd-ca", "front-proxy-ca"]);
    for (ca, csrs) in &by_ca {
        let out = sign(&env, &tree, ca, csrs);
        assert!(out.status.success(), "sign --ca {ca}: {}", stderr(&out));
    }
    assert!(tree.join("pki/apiserver.crt").is_file());
    assert!(tree.join("admin.conf.crt").is_file());
    let log = std::fs::read_to_string(tree.join(".kubepki/issued.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"command\":\"sign\"")).count(), 20, "{log}");
    assert!(log.contains("\"entry\":\"apiserver@controlplane\""), "{log}");

    let out = env.kubepki(&["import", "--dir", dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import: {}\n{text}", stderr(&out));
    assert!(text.contains("20 imported"), "{text}");
    assert!(text.contains("roll out, per node:") && text.contains("/etc/kubernetes/pki/apiserver.crt"), "{text}");
    assert!(text.contains("node01, node02: ") && text.contains("restart: kube-proxy, kubelet"), "{text}");
    assert!(text.contains("20 links: 20 ok, 0 warning, 0 broken"), "{text}");
    for spent in ["admin.conf.key", "admin.conf.csr", "admin.conf.crt", "pki/apiserver.csr"] {
        assert!(!tree.join(spent).exists(), "{spent} left behind");
    }
    assert_eq!(mode(&tree.join("admin.conf")), 0o600);
    let out = env.kubepki(&["verify", "--dir", dir]);
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));
    // The node bundles carry the new files.
    assert_eq!(
        std::fs::read(tree.join("pki/apiserver.crt")).unwrap(),
        std::fs::read(tree.join("nodes/controlplane/etc/kubernetes/pki/apiserver.crt")).unwrap()
    );
}

#[test]
fn sign_refuses_bad_requests_and_writes_nothing() {
    let env = TestEnv::new();
    let (tree, _) = external_tree(&env, "tree");
    let before = snapshot(&tree);

    // Wrong CA for the entry, and a request that is not the catalog's.
    refused(
        &sign(&env, &tree, "etcd-ca", &["pki/apiserver.csr"]),
        "apiserver@controlplane is signed by ca in the catalog, not etcd-ca",
        &tree,
        &before,
    );
    refused(
        &sign(&env, &tree, "root-ca", &["pki/apiserver.csr"]),
        "'root-ca' is not a CA of the catalog",
        &tree,
        &before,
    );
    std::fs::copy(tree.join("pki/apiserver.csr"), tree.join("pki/extra.csr")).unwrap();
    let before = snapshot(&tree);
    refused(
        &sign(&env, &tree, "ca", &["pki/extra.csr"]),
        "pki/extra.csr is not a request of the catalog",
        &tree,
        &before,
    );
    // One bad request among good ones: none is signed.
    refused(
        &sign(&env, &tree, "ca", &["pki/apiserver.csr", "admin.conf.csr", "pki/extra.csr"]),
        "is not a request of the catalog",
        &tree,
        &before,
    );

    // A signature that does not verify: one byte of it flipped.
    let csr = tree.join("pki/front-proxy-client.csr");
    let block = pem::parse(std::fs::read_to_string(&csr).unwrap()).unwrap();
    let mut der = block.contents().to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    std::fs::write(&csr, pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))).unwrap();
    let before = snapshot(&tree);
    refused(
        &sign(&env, &tree, "front-proxy-ca", &["pki/front-proxy-client.csr"]),
        "signature does not verify",
        &tree,
        &before,
    );

    // A request for the right key and name that asks to be a CA.
    let key = tree.join("pki/front-proxy-client.key");
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(&key)
        .args([
            "-subj",
            "/CN=front-proxy-client",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "extendedKeyUsage=clientAuth",
            "-out",
        ])
        .arg(&csr));
    assert!(ok, "{text}");
    let before = snapshot(&tree);
    let out = sign(&env, &tree, "front-proxy-ca", &["pki/front-proxy-client.csr"]);
    refused(&out, "the request asks to be a CA", &tree, &before);
    assert_eq!(stderr(&out).lines().count(), 2, "the CA bit is the only problem: {}", stderr(&out));

    // O=system:masters on anything but super-admin.conf.
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(tree.join("admin.conf.key"))
        .args(["-subj", "/O=system:masters/CN=kubernetes-admin", "-out"])
        .arg(tree.join("admin.conf.csr")));
    assert!(ok, "{text}");
    let before = snapshot(&tree);
    refused(
        &sign(&env, &tree, "ca", &["admin.conf.csr"]),
        "O=system:masters is only ever in super-admin.conf",
        &tree,
        &before,
    );

    // The CA's key must be there.
    std::fs::remove_file(tree.join("pki/ca.key")).unwrap();
    let before = snapshot(&tree);
    refused(&sign(&env, &tree, "ca", &["pki/apiserver.csr"]), "pki/ca.key", &tree, &before);
}

/// Sign a request with openssl and the tree's front-proxy CA: a CA that does not check the catalog.
fn openssl_sign(env: &TestEnv, tree: &Path, key: &str, subject: &str, eku: &str, out: &str) {
    let csr = env.path().join("outside.csr");
    let ext = env.write("outside.ext", &format!("basicConstraints=CA:FALSE\nextendedKeyUsage={eku}\n"));
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(tree.join(key))
        .args(["-subj", subject, "-out"])
        .arg(&csr));
    assert!(ok, "{text}");
    let (ok, text) = run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-set_serial", "0x4242", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(tree.join("pki/front-proxy-ca.crt"))
        .arg("-CAkey")
        .arg(tree.join("pki/front-proxy-ca.key"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(tree.join(out)));
    assert!(ok, "{text}");
}

#[test]
fn import_refuses_what_does_not_fit_and_changes_nothing() {
    let env = TestEnv::new();
    let (tree, _) = external_tree(&env, "tree");
    let dir = tree.to_str().unwrap();
    let out = sign(&env, &tree, "front-proxy-ca", &["pki/front-proxy-client.csr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good_cert = std::fs::read(tree.join("pki/front-proxy-client.crt")).unwrap();
    let good_key = std::fs::read(tree.join("pki/front-proxy-client.key")).unwrap();

    // The certificate is for another key than the one on disk.
    std::fs::copy(tree.join("pki/apiserver-kubelet-client.key"), tree.join("pki/front-proxy-client.key")).unwrap();
    let before = snapshot(&tree);
    refused(
        &env.kubepki(&["import", "--dir", dir]),
        "pki/front-proxy-client.crt: its public key is not that of pki/front-proxy-client.key",
        &tree,
        &before,
    );
    std::fs::write(tree.join("pki/front-proxy-client.key"), &good_key).unwrap();

    // Signed by another front-proxy CA (same name, another key).
    let other = env.init("other", &[]);
    for f in ["pki/front-proxy-client.csr", "pki/front-proxy-client.key"] {
        std::fs::copy(tree.join(f), other.join(f)).unwrap();
    }
    let out = env.kubepki(&[
        "sign",
        "--dir",
        other.to_str().unwrap(),
        "--ca",
        "front-proxy-ca",
        "--force",
        other.join("pki/front-proxy-client.csr").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::copy(other.join("pki/front-proxy-client.crt"), tree.join("pki/front-proxy-client.crt")).unwrap();
    let before = snapshot(&tree);
    refused(
        &env.kubepki(&["import", "--dir", dir]),
        "not signed by front-proxy-ca (pki/front-proxy-ca.crt)",
        &tree,
        &before,
    );

    // The right CA and key, the wrong CN.
    openssl_sign(&env, &tree, "pki/front-proxy-client.key", "/CN=intruder", "clientAuth", "pki/front-proxy-client.crt");
    let before = snapshot(&tree);
    refused(
        &env.kubepki(&["import", "--dir", dir]),
        "does not fit front-proxy-client: CN is 'intruder', expected 'front-proxy-client'",
        &tree,
        &before,
    );

    // The right CA, key and name, and a usage the catalog does not give it.
    openssl_sign(
        &env,
        &tree,
        "pki/front-proxy-client.key",
        "/CN=front-proxy-client",
        "clientAuth,serverAuth",
        "pki/front-proxy-client.crt",
    );
    let before = snapshot(&tree);
    refused(
        &env.kubepki(&["import", "--dir", dir]),
        "does not fit front-proxy-client: extended key usage has extra serverAuth",
        &tree,
        &before,
    );

    // The right one goes in; the rest is reported as still waiting, and verify says what is missing.
    std::fs::write(tree.join("pki/front-proxy-client.crt"), &good_cert).unwrap();
    let out = env.kubepki(&["import", "--dir", dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}\n{text}", stderr(&out));
    assert!(text.contains("1 imported"), "{text}");
    assert!(text.contains("still waiting for a certificate: apiserver-kubelet-client"), "{text}");
    assert!(!tree.join("pki/front-proxy-client.csr").exists());
    // Nothing more came back: nothing to import.
    let before = snapshot(&tree);
    refused(&env.kubepki(&["import", "--dir", dir]), "nothing to import", &tree, &before);
}

#[test]
fn import_takes_certificates_from_another_directory() {
    let env = TestEnv::new();
    let (tree, _) = external_tree(&env, "tree");
    for (ca, csr) in [("front-proxy-ca", "pki/front-proxy-client.csr"), ("ca", "admin.conf.csr")] {
        let out = sign(&env, &tree, ca, &[csr]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let from = env.path().join("returned");
    for f in ["pki/front-proxy-client.crt", "admin.conf.crt"] {
        std::fs::create_dir_all(from.join(f).parent().unwrap()).unwrap();
        std::fs::rename(tree.join(f), from.join(f)).unwrap();
    }
    let out = env.kubepki(&["import", "--dir", tree.to_str().unwrap(), "--from", from.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 imported"), "{}\n{text}", stderr(&out));
    assert_eq!(
        std::fs::read(tree.join("pki/front-proxy-client.crt")).unwrap(),
        std::fs::read(from.join("pki/front-proxy-client.crt")).unwrap()
    );
    let admin = kubepki::x509::kubeconfig::read(&tree.join("admin.conf")).unwrap();
    assert_eq!(admin.user, "kubernetes-admin");
    let cert = kubepki::x509::certinfo::CertInfo::from_pem(admin.cert_pem.as_deref().unwrap(), Path::new("admin.conf"))
        .unwrap();
    let key =
        kubepki::x509::issue::PrivateKey::from_pem(admin.key_pem.as_deref().unwrap(), Path::new("admin.conf")).unwrap();
    assert!(key.matches(&cert), "the kubeconfig holds the key kubepki csr made for the certificate");
    assert!(!tree.join("admin.conf.key").exists() && !tree.join("admin.conf.csr").exists());
    assert!(from.join("admin.conf.crt").exists(), "--from is left as it was");
}

#[test]
fn csr_force_replaces_keys_and_keeps_the_old_ones() {
    let env = TestEnv::new();
    let (tree, _) = external_tree(&env, "tree");
    let old_key = std::fs::read(tree.join("pki/apiserver.key")).unwrap();
    let out = env.kubepki_ok(&["csr", "--dir", tree.to_str().unwrap(), "--force"]);
    assert!(out.contains("replaced keys and CSRs saved under"), "{out}");
    assert_ne!(std::fs::read(tree.join("pki/apiserver.key")).unwrap(), old_key);
    // The csr run that made the keys has a backup (of what it created), and this one its own.
    let mut backups: Vec<PathBuf> =
        std::fs::read_dir(tree.join(".kubepki-backup")).unwrap().map(|e| e.unwrap().path()).collect();
    backups.sort();
    assert_eq!(backups.len(), 2);
    let saved = backups[1].join("pki/apiserver.key");
    assert_eq!(std::fs::read(&saved).unwrap(), old_key);
    assert_eq!(mode(&saved), 0o600);
}
