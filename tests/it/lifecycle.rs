//! renew, san, node, rotate-ca: each shows its change, backs up, writes atomically, logs what
//! it signed, and leaves a tree that verifies clean; a CA rotation never breaks a link, even
//! between nodes one phase apart.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki::{
    audit::handshake::live, audit::handshake::live_between, audit::verify::LinkStatus, disk::inventory::Inventory,
    model::topology::Topology, operations::lifecycle::Tree, x509::certinfo::CertInfo,
};
use time::OffsetDateTime;

use crate::support::{kubeadm_fixture, run, snapshot, TestEnv};

fn cert(path: &Path) -> CertInfo {
    CertInfo::from_pem(&std::fs::read_to_string(path).unwrap(), path).unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const KUBEADM_CERTS: [(&str, &str); 9] = [
    ("pki/apiserver.crt", "pki/ca.crt"),
    ("pki/apiserver-kubelet-client.crt", "pki/ca.crt"),
    ("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt"),
    ("pki/apiserver-etcd-client.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/server.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/peer.crt", "pki/etcd/ca.crt"),
    ("pki/etcd/healthcheck-client.crt", "pki/etcd/ca.crt"),
    ("pki/ca.crt", "pki/ca.crt"),
    ("pki/etcd/ca.crt", "pki/etcd/ca.crt"),
];

#[test]
fn renew_all_brings_an_expired_kubeadm_cluster_back() {
    let env = TestEnv::new();
    let dir = kubeadm_fixture(&env, true);
    let d = dir.to_str().unwrap();
    let before: Vec<CertInfo> = KUBEADM_CERTS.iter().map(|(c, _)| cert(&dir.join(c))).collect();
    let admin_before = kubepki::x509::kubeconfig::read(&dir.join("admin.conf")).unwrap();

    // The dry run shows the change and writes nothing.
    let snap = snapshot(&dir);
    let text = env.kubepki_ok(&["renew", "--all", "--dir", d, "--dry-run"]);
    assert!(text.contains("would reissue apiserver@controlplane (pki/apiserver.crt)"), "{text}");
    assert!(text.contains("  - validity  2024-02-04 .. 2025-02-03"), "{text}");
    assert_eq!(snapshot(&dir), snap);

    // Without --verify the change is not followed by a verify of the whole tree.
    let copy = dir.with_extension("copy");
    let (ok, out) = run(Command::new("cp").arg("-a").arg(&dir).arg(&copy));
    assert!(ok, "{out}");
    let out = env.kubepki(&["renew", "--all", "--dir", copy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("the whole tree is not verified again here: kubepki verify --dir"), "{text}");
    // status changes nothing, so there is nothing to verify after it: said, not ignored.
    let out = env.kubepki(&["rotate-ca", "status", "--verify", "--dir", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--verify goes with a phase"), "{}", stderr(&out));

    let out = env.kubepki(&["renew", "--all", "--verify", "--dir", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    // Every certificate is good again; what is left is kubeadm's wiring: its apiserver does not
    // verify kubelets (--kubelet-certificate-authority unset), a warning, so exit 1.
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("0 error, 1 warning"), "verify after renew: {text}");
    assert!(text.contains("--kubelet-certificate-authority is not set"), "verify after renew: {text}");
    for ((file, ca), old) in KUBEADM_CERTS.iter().zip(&before) {
        let new = cert(&dir.join(file));
        assert_eq!(
            (&new.subject, &new.orgs, &new.sans, &new.ext_key_usage),
            (&old.subject, &old.orgs, &old.sans, &old.ext_key_usage),
            "{file}"
        );
        assert!(new.valid_at(OffsetDateTime::now_utc()), "{file}");
        let (ok, text) = run(Command::new("openssl").args(["verify", "-CAfile"]).arg(dir.join(ca)).arg(dir.join(file)));
        assert!(ok, "{file}: {text}");
        if file.ends_with("ca.crt") {
            assert_eq!(new.der, old.der, "CAs are never renewed");
        } else {
            assert_ne!(new.public_key_raw, old.public_key_raw, "{file}: a new key by default");
        }
    }
    let admin = kubepki::x509::kubeconfig::read(&dir.join("admin.conf")).unwrap();
    assert_eq!(admin.server, admin_before.server);
    let admin_cert = CertInfo::from_pem(admin.cert_pem.as_deref().unwrap(), Path::new("admin.conf")).unwrap();
    assert_eq!(admin_cert.orgs, ["kubeadm:cluster-admins"]);
    // kubeadm's kubelet.conf pointed at the kubelet's rotated (expired) file: now it embeds one.
    let kubelet = kubepki::x509::kubeconfig::read(&dir.join("kubelet.conf")).unwrap();
    assert!(kubelet.cert_pem.is_some() && kubelet.key_pem.is_some());
    // Backed up, logged, and no node bundles appeared in a kubeadm tree.
    let backups: Vec<_> = snapshot(&dir).into_keys().filter(|p| p.starts_with(".kubepki-backup")).collect();
    assert!(backups.iter().any(|p| p.ends_with("pki/apiserver.crt")), "{backups:?}");
    let log = kubepki::disk::issuance::read(&dir).unwrap();
    assert_eq!(log.len(), 12, "{log:#?}");
    assert!(log.iter().all(|r| r.command == "renew"));
    assert!(!dir.join("nodes").exists());
}

#[test]
fn renew_refuses_without_a_usable_ca_key_and_changes_nothing() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    std::fs::rename(dir.join("pki/ca.key"), env.path().join("ca.key.away")).unwrap();
    let snap = snapshot(&dir);
    let out = env.kubepki(&["renew", "apiserver", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    // A CA certificate without its key is externally managed: renew points to csr and import.
    let err = stderr(&out);
    assert!(err.contains("pki/ca.key: missing: the CA ca is externally managed"), "{err}");
    assert!(err.contains("kubepki csr --dir") && err.contains("kubepki import --dir"), "{err}");
    assert_eq!(snapshot(&dir), snap);
    // A key of another CA.
    let other = env.init("other", &[]);
    std::fs::copy(other.join("pki/ca.key"), dir.join("pki/ca.key")).unwrap();
    let out = env.kubepki(&["renew", "admin.conf", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not match its certificate"), "{}", stderr(&out));
    let out = env.kubepki(&["renew", "no-such-cert", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'no-such-cert' is not in the catalog; names are: ca, etcd-ca"), "{}", stderr(&out));
    let out = env.kubepki(&["renew", "ca", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CAs are rotated, not renewed"), "{}", stderr(&out));
}

#[test]
fn renew_reuse_key_and_every_kubelet_conf() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let snap = snapshot(&dir);
    let text = env.kubepki_ok(&["renew", "kubelet.conf", "apiserver", "--reuse-key", "--dir", d]);
    assert!(text.contains("reissued kubelet.conf@node02"), "{text}");
    let after = snapshot(&dir);
    assert_eq!(after[Path::new("pki/apiserver.key")], snap[Path::new("pki/apiserver.key")], "key kept");
    assert_ne!(after[Path::new("pki/apiserver.crt")], snap[Path::new("pki/apiserver.crt")]);
    for n in ["node01", "node02"] {
        let p = PathBuf::from(format!("nodes/{n}/etc/kubernetes/kubelet.conf"));
        assert_ne!(after[&p], snap[&p], "{n}'s kubelet.conf renewed");
    }
    assert_eq!(
        after[Path::new("nodes/controlplane/etc/kubernetes/pki/apiserver.crt")],
        after[Path::new("pki/apiserver.crt")],
        "the bundle copy follows"
    );
    let log = kubepki::disk::issuance::read(&dir).unwrap();
    assert_eq!(log.iter().filter(|r| r.command == "init").count(), 23, "init logs each certificate it signs");
    assert_eq!(log.iter().filter(|r| r.command == "renew").count(), 4);
}

#[test]
fn san_add_and_remove() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let old = cert(&dir.join("pki/apiserver.crt"));
    let text = env.kubepki_ok(&["san", "add", "apiserver", "lb.example.com", "192.0.2.10", "--dir", d]);
    assert!(text.contains("+ SANs"), "{text}");
    let new = cert(&dir.join("pki/apiserver.crt"));
    let mut want = old.sans.clone();
    want.extend([
        kubepki::model::spec::San::Dns("lb.example.com".into()),
        kubepki::model::spec::San::Ip("192.0.2.10".parse().unwrap()),
    ]);
    assert_eq!(new.sans, want);
    assert_eq!(new.public_key_raw, old.public_key_raw, "same key");
    assert_eq!(new.issuer, old.issuer);
    env.kubepki_ok(&["san", "remove", "apiserver", "lb.example.com", "--dir", d]);
    assert!(!cert(&dir.join("pki/apiserver.crt"))
        .sans
        .contains(&kubepki::model::spec::San::Dns("lb.example.com".into())));
    // Removing the address clients dial would break them.
    let out = env.kubepki(&["san", "remove", "apiserver", "127.0.0.1", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("breaks link"), "{}", stderr(&out));
    let out = env.kubepki(&["san", "add", "apiserver", "not a name", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.kubepki(&["san", "add", "admin.conf", "x.example.com", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.kubepki(&["verify", "--dir", d]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn node_add_and_remove() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let text =
        env.kubepki_ok(&["node", "add", "node03", "--role", "worker", "--ip", "127.0.0.4", "--dir", d, "--dry-run"]);
    assert!(text.contains("kubelet.conf@node03") && text.contains("kubelet-serving@node03"), "{text}");
    assert!(!dir.join("nodes/node03").exists());
    let text = env.kubepki_ok(&["node", "add", "node03", "--role", "worker", "--ip", "127.0.0.4", "--dir", d]);
    assert!(text.contains("2 created"), "{text}");
    let serving = cert(&dir.join("nodes/node03/var/lib/kubelet/pki/kubelet.crt"));
    assert_eq!(serving.subject_cn, "system:node:node03");
    assert!(dir.join("nodes/node03/etc/kubernetes/pki/ca.crt").is_file());
    let text =
        env.kubepki_ok(&["node", "add", "cp2", "--role", "control-plane", "--ip", "127.0.0.5", "--verify", "--dir", d]);
    assert!(text.contains("0 error, 0 warning"), "{text}");
    assert_eq!(cert(&dir.join("nodes/cp2/etc/kubernetes/pki/etcd/peer.crt")).subject_cn, "cp2");
    assert!(dir.join("nodes/cp2/etc/kubernetes/pki/ca.key").is_file());
    let out = env.kubepki(&["node", "add", "node04", "--role", "worker", "--ip", "127.0.0.4", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("node add: --ip: address 127.0.0.4 is used by another node ('node03')"),
        "{}",
        stderr(&out)
    );
    let text = env.kubepki_ok(&["node", "remove", "node03", "--dir", d]);
    assert!(text.contains("stay valid until they expire"), "{text}");
    assert!(!dir.join("nodes/node03").exists());
    let out = env.kubepki(&["node", "remove", "controlplane", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.kubepki(&["verify", "--dir", d]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

fn live_all_ok(tree: &Path, what: &str) {
    let t = Tree::load(tree, None).unwrap();
    let at = OffsetDateTime::now_utc();
    let report = t.verify(at);
    assert!(!report.has_problems(), "{what}: {:#?}", report.findings);
    let topology = Topology::build(&t.spec, &t.catalog);
    let inventory = Inventory::load(tree, &t.catalog);
    for r in live(&topology, &inventory, &report, at) {
        assert_eq!(r.ok, Some(true), "{what}: {} {:?}", r.link, r.error);
    }
    assert!(report.links.iter().all(|l| l.status == LinkStatus::Ok), "{what}");
}

/// Clients with one phase's files against servers with the other's, both ways.
fn live_mixed(a: &Path, b: &Path, what: &str) {
    let ta = Tree::load(a, None).unwrap();
    let tb = Tree::load(b, None).unwrap();
    let topology = Topology::build(&ta.spec, &ta.catalog);
    let (ia, ib) = (Inventory::load(a, &ta.catalog), Inventory::load(b, &tb.catalog));
    let at = OffsetDateTime::now_utc();
    for (clients, servers, dir) in [(&ia, &ib, "old clients, new servers"), (&ib, &ia, "new clients, old servers")] {
        for r in live_between(&topology, clients, servers, at) {
            assert_eq!(r.ok, Some(true), "{what}, {dir}: {} {:?}", r.link, r.error);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let (ok, text) = run(Command::new("cp").arg("-a").arg(from).arg(to));
    assert!(ok, "{text}");
}

#[test]
fn rotating_every_ca_never_breaks_a_link() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    for ca in ["ca", "etcd-ca", "front-proxy-ca", "sa"] {
        // Out of order: named, with the next valid step, and nothing changed.
        let snap = snapshot(&dir);
        for phase in ["reissue", "finish"] {
            let out = env.kubepki(&["rotate-ca", ca, phase, "--dir", d]);
            assert_eq!(out.status.code(), Some(2));
            assert!(
                stderr(&out).contains(&format!("next valid step is `kubepki rotate-ca {ca} start`")),
                "{}",
                stderr(&out)
            );
        }
        assert_eq!(snapshot(&dir), snap);
        let old_ca = std::fs::read(dir.join(if ca == "sa" { "pki/sa.pub".into() } else { ca_file(ca) })).unwrap();
        let mut previous = env.path().join(format!("{ca}-before"));
        copy_tree(&dir, &previous);
        for phase in ["start", "reissue", "finish"] {
            let out = env.kubepki(&["rotate-ca", ca, phase, "--dir", d]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{ca} {phase}: {text}{}", stderr(&out));
            let status = env.kubepki_ok(&["rotate-ca", "status", "--dir", d]);
            live_all_ok(&dir, &format!("{ca} after {phase}"));
            live_mixed(&previous, &dir, &format!("{ca} {phase}"));
            let snapshot_dir = env.path().join(format!("{ca}-{phase}"));
            copy_tree(&dir, &snapshot_dir);
            previous = snapshot_dir;
            if phase != "finish" {
                assert!(status.contains(&format!("{ca}: phase")), "{status}");
            }
        }
        let new_ca = std::fs::read(dir.join(if ca == "sa" { "pki/sa.pub".into() } else { ca_file(ca) })).unwrap();
        assert_ne!(new_ca, old_ca, "{ca} was replaced");
        assert_eq!(
            String::from_utf8(new_ca).unwrap().matches("-----BEGIN").count(),
            1,
            "{ca}: the old one left the bundle"
        );
        let out = env.kubepki(&["rotate-ca", ca, "finish", "--dir", d]);
        assert_eq!(out.status.code(), Some(2), "a finished rotation cannot finish twice");
    }
    let log = kubepki::disk::issuance::read(&dir).unwrap();
    assert!(log.iter().any(|r| r.command == "rotate-ca etcd-ca reissue"));
}

fn ca_file(ca: &str) -> String {
    match ca {
        "ca" => "pki/ca.crt",
        "etcd-ca" => "pki/etcd/ca.crt",
        _ => "pki/front-proxy-ca.crt",
    }
    .into()
}

/// Retiring a control plane says what deleting its Node object does not revoke: the signing
/// keys its bundle held, and its etcd member (whose certificates etcd still accepts).
#[test]
fn retiring_a_control_plane_names_the_keys_it_held_and_its_etcd_member() {
    let env = TestEnv::new();
    let config = env.write(
        "two.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [127.0.0.1]}\n\
         - {name: cp2, role: control-plane, addresses: [127.0.0.2]}\n\
         - {name: w1, role: worker, addresses: [127.0.0.3]}\n",
    );
    let dir = env.init("tree", &["--config", config.to_str().unwrap()]);
    let d = dir.to_str().unwrap();
    let out = env.kubepki_ok(&["node", "remove", "cp2", "--dir", d]);
    assert!(out.contains("cp2 held the private keys of ca, etcd-ca, front-proxy-ca, sa"), "{out}");
    assert!(out.contains("kubepki rotate-ca ca start"), "{out}");
    assert!(out.contains("etcdctl member remove"), "{out}");
    let json = env.kubepki_ok(&["node", "remove", "w1", "--dir", d, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("cautions").is_none(), "a worker holds no signing key nor etcd member: {json}");
}

/// The service-account key's rotation says how long to wait before `finish`, and `finish` run
/// sooner says what it breaks (tokens the kubelet has not refreshed, legacy token Secrets).
#[test]
fn a_service_account_key_rotation_says_what_finishing_early_breaks() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["rotate-ca", "sa", "start", "--dir", d]);
    let out = env.kubepki_ok(&["rotate-ca", "sa", "reissue", "--dir", d]);
    assert!(out.contains("then wait 24 h") && out.contains("legacy token Secrets"), "{out}");
    let json = env.kubepki_ok(&["rotate-ca", "sa", "finish", "--dir", d, "-o", "json"]);
    assert!(json.contains("within the 24 h the kubelet may keep a projected token"), "{json}");
    // A CA's rotation has no such note.
    env.kubepki_ok(&["rotate-ca", "front-proxy-ca", "start", "--dir", d]);
    env.kubepki_ok(&["rotate-ca", "front-proxy-ca", "reissue", "--dir", d]);
    let out = env.kubepki_ok(&["rotate-ca", "front-proxy-ca", "finish", "--dir", d]);
    assert!(!out.contains("projected token"), "{out}");
}
