//! Large clusters (not timed): a 300-node pool generated complete and kept on re-run, and an
//! `init` killed hard part way, twice, then completed by running it again.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubepki::{
    model::catalog::Catalog, model::catalog::EntryKind, model::catalog::Store, model::spec::ClusterSpec,
    x509::certinfo::CertInfo, x509::issue::PrivateKey, x509::kubeconfig::read as read_kubeconfig,
};

use crate::support::{files, run, snapshot, wait_until, TestEnv};

fn pool(workers: usize) -> String {
    format!(
        "nodes:\n- {{name: cp1, role: control-plane, addresses: [10.0.0.1]}}\n\
         nodePools:\n- {{namePattern: \"worker-{{index:04}}\", role: worker, count: {workers}, firstAddress: 10.1.0.1}}\n"
    )
}

/// Entries of a cluster with one control plane: 3 CAs, sa, 4 shared leaves, 3 shared
/// kubeconfigs, metrics-server's 2, 7 for the control plane, 2 per worker.
fn entries(workers: usize) -> usize {
    20 + 2 * workers
}

#[test]
fn a_300_node_pool_is_generated_complete_and_kept_on_rerun() {
    let env = TestEnv::new();
    let config = env.write("cluster.yaml", &pool(300));
    let out = env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "tree"]);
    let n = entries(300);
    assert!(out.contains(&format!("{n} created, 0 kept, 0 replaced")), "{out}");
    let tree = env.path().join("tree");
    let spec = ClusterSpec::load(&config).unwrap();
    let catalog = Catalog::build(&spec);
    for node in &spec.nodes {
        for (_, dst, _) in catalog.bundle(&spec, node) {
            assert!(tree.join(&dst).is_file(), "{} is missing from {}'s bundle", dst.display(), node.name);
        }
    }
    assert_consistent(&tree, &catalog);

    // openssl's own verdict on a sample: serving certs as servers, kubelet.conf's as clients.
    let sample: Vec<usize> = (1..=300).step_by(23).collect();
    let pem_dir = env.path().join("client-certs");
    std::fs::create_dir(&pem_dir).unwrap();
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for i in &sample {
        let node = tree.join(format!("nodes/worker-{i:04}"));
        servers.push(node.join("var/lib/kubelet/pki/kubelet.crt"));
        let conf = read_kubeconfig(&node.join("etc/kubernetes/kubelet.conf")).unwrap();
        let pem = pem_dir.join(format!("worker-{i:04}.crt"));
        std::fs::write(&pem, conf.cert_pem.unwrap()).unwrap();
        clients.push(pem);
    }
    for (purpose, files) in [("sslserver", &servers), ("sslclient", &clients)] {
        let (ok, text) = run(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(tree.join("pki/ca.crt"))
            .args(["-purpose", purpose])
            .args(files.iter()));
        assert!(ok, "{text}");
        assert_eq!(text.lines().filter(|l| l.ends_with(": OK")).count(), sample.len(), "{text}");
    }

    let before = snapshot(&tree);
    let out = env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "tree"]);
    assert!(out.contains(&format!("0 created, {n} kept, 0 replaced; 0 files copied")), "{out}");
    assert_eq!(snapshot(&tree), before, "a re-run changed files");
}

#[test]
fn an_init_killed_part_way_is_completed_by_the_next_run() {
    let env = TestEnv::new();
    let workers = 3000;
    let config = env.write("cluster.yaml", &pool(workers));
    let tree = env.path().join("tree");
    // Killed once soon after the first files land, then (the re-run) half way through.
    for nodes_seen in [1, workers / 2] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubepki"))
            .args(["init", "--config", "cluster.yaml", "--dir", "tree"])
            .current_dir(env.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut exited = None;
        wait_until("files in the tree", Duration::from_secs(120), || {
            exited = child.try_wait().unwrap();
            exited.is_some() || std::fs::read_dir(tree.join("nodes")).is_ok_and(|d| d.count() >= nodes_seen)
        });
        assert!(exited.is_none(), "init finished ({exited:?}) before it could be killed: make the cluster larger");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_nothing_torn(&tree);
    }
    let out = env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "tree"]);
    assert!(out.contains(" created, "), "{out}");
    let leftovers = files(&tree).into_iter().filter(|p| is_temporary(p)).collect::<Vec<_>>();
    assert!(leftovers.is_empty(), "temporaries not swept: {leftovers:?}");
    assert!(!tree.join(".kubepki-journal").exists());
    let spec = ClusterSpec::load(&config).unwrap();
    let catalog = Catalog::build(&spec);
    assert_consistent(&tree, &catalog);
    let n = entries(workers);
    let out = env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "tree"]);
    assert!(out.contains(&format!("0 created, {n} kept, 0 replaced; 0 files copied")), "{out}");
    // The issuance log lists every certificate of the tree once (the sa key pair is not one),
    // whichever run made it.
    let log = kubepki::disk::issuance::read(&tree).unwrap();
    let logged: BTreeSet<&str> = log.iter().filter_map(|r| r.entry.as_deref()).collect();
    let certs: BTreeSet<&str> = catalog.entries.iter().filter(|e| e.cert().is_some()).map(|e| e.id.as_str()).collect();
    assert_eq!(log.len(), n - 1, "one line per certificate");
    assert_eq!(logged, certs);
}

/// Every file of the catalog is there, every key matches its certificate, and every
/// certificate is signed by its CA; every kubeconfig trusts the cluster CA.
fn assert_consistent(tree: &Path, catalog: &Catalog) {
    let read = |f: &Path| std::fs::read_to_string(tree.join(f)).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    let mut cas = std::collections::HashMap::new();
    for e in catalog.cas() {
        let EntryKind::Ca { cert, .. } = &e.kind else { continue };
        cas.insert(e.id.clone(), (read(cert), CertInfo::from_pem(&read(cert), cert).unwrap()));
    }
    for e in &catalog.entries {
        let (cert_pem, key_pem, shown) = match &e.kind {
            EntryKind::KeyPair { key, public } => {
                let k = PrivateKey::from_pem(&read(key), key).unwrap();
                assert_eq!(k.public_key_pem().trim(), read(public).trim(), "{}", public.display());
                continue;
            }
            EntryKind::Ca { cert, key, .. } => (read(cert), read(key), cert.clone()),
            EntryKind::Leaf(l) => match &l.store {
                Store::Files { cert, key } => (read(cert), read(key), cert.clone()),
                Store::Kubeconfig { path, .. } => {
                    let k = read_kubeconfig(&tree.join(path)).unwrap();
                    assert_eq!(k.ca_pem.as_deref().map(str::trim), Some(cas["ca"].0.trim()), "{}", path.display());
                    (k.cert_pem.unwrap(), k.key_pem.unwrap(), path.clone())
                }
            },
        };
        let info = CertInfo::from_pem(&cert_pem, &shown).unwrap();
        let key = PrivateKey::from_pem(&key_pem, &shown).unwrap();
        assert!(key.matches(&info), "{}: the key does not match", shown.display());
        let issuer = e.issuer().unwrap_or(&e.id).as_str();
        assert!(info.is_signed_by(&cas[issuer].1), "{}: not signed by {issuer}", shown.display());
    }
}

/// Every file in the tree is whole: each certificate parses, each key loads, each kubeconfig
/// parses with its embedded certificate and key. Temporaries of the killed run may remain.
fn assert_nothing_torn(tree: &Path) {
    for path in files(tree) {
        let backup = path.strip_prefix(tree).is_ok_and(|p| p.starts_with(".kubepki-backup"));
        if is_temporary(&path) || path.ends_with(".kubepki-journal") || path.ends_with(".kubepki/lock") || backup {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".crt") {
            CertInfo::from_pem(&text, &path).unwrap();
        } else if name.ends_with(".key") {
            PrivateKey::from_pem(&text, &path).unwrap();
        } else if name.ends_with(".conf") {
            let k = read_kubeconfig(&path).unwrap();
            CertInfo::from_pem(&k.cert_pem.unwrap(), &path).unwrap();
            PrivateKey::from_pem(&k.key_pem.unwrap(), &path).unwrap();
        } else if name.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if name.ends_with(".jsonl") {
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        } else if name == "sa.pub" {
            assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n") && text.ends_with("-----END PUBLIC KEY-----\n"));
        } else {
            panic!("unexpected file {}", path.display());
        }
    }
}

fn is_temporary(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name.starts_with('.') && name.contains(".kubepki-") && name.ends_with(".tmp")
}
