//! Every `fix:` is the command that fixes it, and is safe: each defect kind is seeded on a
//! generated tree (expiry on the real kubeadm tree), the fix `verify` suggests is run exactly
//! as printed, and then `verify` no longer reports that kind, and no CA changed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki::model::catalog::{Catalog, EntryKind, Leaf, Store};
use kubepki::model::spec::ClusterSpec;
use kubepki::x509::issue::{Ca, PrivateKey};
use kubepki::x509::kubeconfig::Kubeconfig;
use time::{Duration, OffsetDateTime};

use crate::support::{kubeadm_fixture, TestEnv};

/// A generated tree of the default cluster, with what it takes to seed defects in it.
struct Seeded {
    env: TestEnv,
    root: PathBuf,
    catalog: Catalog,
}

impl Seeded {
    fn new() -> Seeded {
        let env = TestEnv::new();
        let root = env.init("tree", &[]);
        Seeded { env, root, catalog: Catalog::build(&ClusterSpec::builtin_default()) }
    }

    fn ca(&self, id: &str) -> Ca {
        let (cert, key) = self.catalog.get(id).unwrap().cert_and_key_files().unwrap();
        let key = PrivateKey::from_pem(&std::fs::read_to_string(self.root.join(key)).unwrap(), key).unwrap();
        Ca::load(id, &std::fs::read_to_string(self.root.join(cert)).unwrap(), cert, key).unwrap()
    }

    fn leaf(&self, id: &str) -> &Leaf {
        self.catalog.get(id).unwrap().leaf().unwrap()
    }

    /// Write a file at its home and at every copy in the node bundles.
    fn write(&self, rel: &Path, bytes: &[u8]) {
        let mut places = vec![self.root.join(rel)];
        for n in ["controlplane", "node01", "node02"] {
            let copy = self.root.join("nodes").join(n).join("etc/kubernetes").join(rel);
            if !rel.starts_with("nodes") && copy.exists() {
                places.push(copy);
            }
        }
        for p in places {
            std::fs::write(&p, bytes).unwrap();
        }
    }

    /// Reissue a leaf in files with a changed profile, signed by `ca` at `at`; its key kept.
    fn reissue(
        &self,
        id: &str,
        ca: &str,
        at: OffsetDateTime,
        change: impl FnOnce(&mut kubepki::model::catalog::CertProfile),
    ) {
        let leaf = self.leaf(id);
        let mut profile = leaf.profile.clone();
        change(&mut profile);
        let Store::Files { cert, key } = &leaf.store else { panic!("{id} is not in files") };
        let key = PrivateKey::from_pem(&std::fs::read_to_string(self.root.join(key)).unwrap(), key).unwrap();
        let issued = self.ca(ca).sign_key(&profile, &key, at).unwrap();
        self.write(cert, issued.pem.as_bytes());
    }

    /// Rewrite a kubeconfig with another profile, CA data or server.
    fn rewrite_kubeconfig(&self, id: &str, ca_pem: Option<&str>, server: Option<&str>, orgs: Option<&[&str]>) {
        let leaf = self.leaf(id);
        let Store::Kubeconfig { path, cluster, server: catalog_server, .. } = &leaf.store else { panic!() };
        let mut profile = leaf.profile.clone();
        if let Some(o) = orgs {
            profile.subject.orgs = o.iter().map(|s| s.to_string()).collect();
        }
        let key = PrivateKey::generate(kubepki::model::spec::KeyAlgorithm::EcdsaP256).unwrap();
        let ca = self.ca("ca");
        let issued = ca.sign_key(&profile, &key, OffsetDateTime::now_utc()).unwrap();
        let text = Kubeconfig {
            cluster,
            server: server.unwrap_or(catalog_server),
            ca_pem: ca_pem.unwrap_or(&ca.cert_pem),
            user: &profile.subject.cn,
            cert_pem: &issued.pem,
            key_pem: key.to_pem(),
        }
        .render();
        self.write(path, text.as_bytes());
    }
}

/// How to seed one defect.
type Seed = Box<dyn Fn(&Seeded)>;

/// Every CA certificate and key of a tree, byte for byte.
fn cas(root: &Path, catalog: &Catalog) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in &catalog.entries {
        if let EntryKind::Ca { cert, key, .. } = &e.kind {
            for f in [cert, key] {
                out.insert(f.clone(), std::fs::read(root.join(f)).unwrap_or_default());
            }
        }
    }
    out
}

/// The findings of `verify --dir` (and `--at`): (code, fix) pairs.
fn findings(env: &TestEnv, root: &Path, at: Option<&str>) -> Vec<(String, String)> {
    let mut args = vec!["verify", "--dir", root.to_str().unwrap(), "-o", "json"];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    let out = env.kubepki(&args);
    assert_ne!(out.status.code(), Some(2), "verify could not run: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["fix"].as_str().unwrap().to_string()))
        .collect()
}

/// Run a suggested fix exactly as printed, with kubepki on PATH. It must run: exit 0, or 1 when
/// a kubepki command ends with verify's summary of what else is still wrong.
fn run_fix(env: &TestEnv, fix: &str) {
    let bin = Path::new(env!("CARGO_BIN_EXE_kubepki")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh").arg("-c").arg(fix).env("PATH", path).current_dir(env.path()).output().unwrap();
    let ran = out.status.success() || (fix.starts_with("kubepki ") && out.status.code() == Some(1));
    assert!(
        ran,
        "the suggested fix failed: {fix}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Seed, verify, run every suggested fix for `code`, verify again: `code` is gone and no CA
/// changed. Returns the fixes that were run.
fn fixed_by_its_fix(t: &Seeded, code: &str, seed: impl FnOnce(&Seeded)) -> Vec<String> {
    seed(t);
    let before = cas(&t.root, &t.catalog);
    let fixes: Vec<String> = findings(&t.env, &t.root, None)
        .into_iter()
        .filter(|(c, _)| c == code)
        .map(|(_, f)| f)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!fixes.is_empty(), "{code}: the seeded defect was not found");
    for fix in &fixes {
        assert!(!fix.contains("--force") && !fix.contains("--replace-ca"), "{code}: an unsafe fix: {fix}");
        run_fix(&t.env, fix);
    }
    let after = findings(&t.env, &t.root, None);
    assert!(!after.iter().any(|(c, _)| c == code), "{code}: still there after {fixes:?}: {after:?}");
    assert_eq!(cas(&t.root, &t.catalog), before, "{code}: a CA changed after {fixes:?}");
    fixes
}

#[test]
fn mode_is_fixed_by_chmod() {
    let t = Seeded::new();
    let fixes = fixed_by_its_fix(&t, "mode", |t| {
        std::fs::set_permissions(t.root.join("pki/apiserver.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    });
    assert!(fixes.iter().all(|f| f.starts_with("chmod 600 ")), "{fixes:?}");
}

#[test]
fn missing_files_are_made_by_plain_init() {
    let t = Seeded::new();
    let orphan = t.root.join("nodes/node02/var/lib/kubelet/pki/kubelet.key");
    let key = std::fs::read(&orphan).unwrap();
    let fixes = fixed_by_its_fix(&t, "missing", |t| {
        std::fs::remove_file(t.root.join("nodes/node02/var/lib/kubelet/pki/kubelet.crt")).unwrap();
        std::fs::remove_file(t.root.join("scheduler.conf")).unwrap();
    });
    assert!(fixes.iter().all(|f| f.starts_with("kubepki init --dir ")), "{fixes:?}");
    // The key whose certificate was gone was replaced, and is in a backup, byte for byte.
    assert_ne!(std::fs::read(&orphan).unwrap(), key);
    let backups: Vec<PathBuf> =
        std::fs::read_dir(t.root.join(".kubepki-backup")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(
        backups
            .iter()
            .any(|b| std::fs::read(b.join("nodes/node02/var/lib/kubelet/pki/kubelet.key")).ok() == Some(key.clone())),
        "{backups:?}"
    );
}

#[test]
fn broken_leaves_are_fixed_by_renew() {
    let now = OffsetDateTime::now_utc();
    let cases: Vec<(&str, Seed)> = vec![
        (
            "key-mismatch",
            Box::new(|t: &Seeded| {
                let other = PrivateKey::generate(kubepki::model::spec::KeyAlgorithm::EcdsaP256).unwrap();
                t.write(Path::new("pki/apiserver-etcd-client.key"), other.to_pem().as_bytes());
            }),
        ),
        ("wrong-ca", Box::new(move |t: &Seeded| t.reissue("apiserver-etcd-client", "ca", now, |_| {}))),
        (
            "usage",
            Box::new(move |t: &Seeded| {
                t.reissue("apiserver-etcd-client", "etcd-ca", now, |p| {
                    p.ext_key_usage = vec![kubepki::model::catalog::ExtKeyUsage::ServerAuth]
                })
            }),
        ),
        (
            "identity",
            Box::new(move |t: &Seeded| {
                t.reissue("front-proxy-client", "front-proxy-ca", now, |p| p.subject.cn = "intruder".into())
            }),
        ),
        (
            "san-profile",
            Box::new(move |t: &Seeded| {
                t.reissue("kubelet-serving@node01", "ca", now, |p| p.sans.retain(|s| s.to_string() != "DNS:node01"))
            }),
        ),
        (
            "not-yet-valid",
            Box::new(move |t: &Seeded| t.reissue("apiserver-kubelet-client", "ca", now + Duration::days(2), |_| {})),
        ),
        ("unreadable", Box::new(|t: &Seeded| t.write(Path::new("pki/front-proxy-client.crt"), b"not a certificate"))),
        (
            "stale-ca-data",
            Box::new(|t: &Seeded| {
                let other = t.ca("front-proxy-ca").cert_pem;
                t.rewrite_kubeconfig("admin.conf", Some(&other), None, None)
            }),
        ),
        (
            "system-masters",
            Box::new(|t: &Seeded| t.rewrite_kubeconfig("admin.conf", None, None, Some(&["system:masters"]))),
        ),
    ];
    for (code, seed) in cases {
        let t = Seeded::new();
        let fixes = fixed_by_its_fix(&t, code, |t| seed(t));
        assert!(fixes.iter().all(|f| f.starts_with("kubepki renew ")), "{code}: {fixes:?}");
    }
}

#[test]
fn a_missing_san_is_fixed_by_san_add() {
    let t = Seeded::new();
    let now = OffsetDateTime::now_utc();
    let fixes = fixed_by_its_fix(&t, "san-missing", |t| {
        t.reissue("apiserver@controlplane", "ca", now, |p| p.sans.retain(|s| s.to_string() != "IP:127.0.0.1"))
    });
    assert_eq!(fixes.len(), 1, "{fixes:?}");
    assert!(fixes[0].starts_with("kubepki san add apiserver@controlplane 127.0.0.1 --dir "), "{fixes:?}");
}

#[test]
fn a_moved_server_url_is_fixed_by_kubectl_config() {
    let t = Seeded::new();
    let fixes = fixed_by_its_fix(&t, "server-url", |t| {
        t.rewrite_kubeconfig("admin.conf", None, Some("https://127.0.0.9:6443"), None)
    });
    assert!(fixes.iter().all(|f| f.starts_with("kubectl config set-cluster kubernetes --server=")), "{fixes:?}");
}

#[test]
fn a_wrong_sa_pub_is_fixed_by_openssl_from_sa_key() {
    let t = Seeded::new();
    let fixes = fixed_by_its_fix(&t, "public-key-mismatch", |t| {
        let other = PrivateKey::generate(kubepki::model::spec::KeyAlgorithm::Rsa2048).unwrap();
        t.write(Path::new("pki/sa.pub"), other.public_key_pem().as_bytes());
    });
    assert!(fixes.iter().all(|f| f.starts_with("openssl pkey -in ")), "{fixes:?}");
}

#[test]
fn a_stale_bundle_copy_is_refreshed_by_plain_init() {
    let t = Seeded::new();
    let fixes = fixed_by_its_fix(&t, "stale-copy", |t| {
        std::fs::write(t.root.join("nodes/node01/etc/kubernetes/kube-proxy.conf"), b"stale").unwrap();
    });
    assert!(fixes.iter().all(|f| f.starts_with("kubepki init --dir ")), "{fixes:?}");
}

#[test]
fn every_expired_leaf_of_the_real_kubeadm_tree_is_fixed_by_renew() {
    let env = TestEnv::new();
    let root = kubeadm_fixture(&env, true);
    let catalog = Catalog::build(&kubepki::model::infer::infer(&root).unwrap());
    let before = cas(&root, &catalog);
    let fixes: std::collections::BTreeSet<String> =
        findings(&env, &root, None).into_iter().filter(|(c, _)| c == "expired").map(|(_, f)| f).collect();
    assert!(fixes.len() >= 9, "{fixes:?}");
    for fix in &fixes {
        assert!(fix.starts_with("kubepki renew "), "{fix}");
        run_fix(&env, fix);
    }
    let after = findings(&env, &root, None);
    assert!(!after.iter().any(|(c, _)| c == "expired"), "{after:?}");
    assert_eq!(cas(&root, &catalog), before, "a CA changed");

    // What kubeadm does its own way needs no fix; kubepki's file is an option init adds,
    // without --force, leaving kubeadm's kubelet.conf (the kubelet rotates its client
    // certificate) as it is.
    let not_kubeadm: Vec<String> = after.iter().filter(|(c, _)| c == "not-kubeadm").map(|(_, f)| f.clone()).collect();
    assert!(!not_kubeadm.is_empty() && not_kubeadm.iter().all(|f| f.starts_with("none needed: ")), "{not_kubeadm:?}");
    let kubelet_conf = std::fs::read(root.join("kubelet.conf")).unwrap();
    env.kubepki_ok(&["init", "--dir", root.to_str().unwrap()]);
    assert_eq!(std::fs::read(root.join("kubelet.conf")).unwrap(), kubelet_conf);
    assert!(root.join("kube-proxy.conf").is_file());
    assert_eq!(cas(&root, &catalog), before, "a CA changed");
}

impl Seeded {
    /// Sign `id`'s certificate with real openssl from `ca`'s key, with the catalog's subject
    /// and client usage, and `how` (a digest, a serial): what kubepki itself never makes.
    /// `key` replaces the leaf's key when given (a weak one).
    fn openssl_sign(&self, id: &str, ca: &str, key: Option<&Path>, how: &[&str]) {
        let leaf = self.leaf(id);
        let Store::Files { cert, key: home_key } = &leaf.store else { panic!("{id} is not in files") };
        let work = self.env.path().join(format!("openssl-{id}"));
        std::fs::create_dir_all(&work).unwrap();
        if let Some(k) = key {
            self.write(home_key, &std::fs::read(k).unwrap());
        }
        let key = self.root.join(home_key);
        let mut subject = format!("/CN={}", leaf.profile.subject.cn);
        for o in &leaf.profile.subject.orgs {
            subject = format!("/O={o}{subject}");
        }
        let (ca_cert, ca_key) = self.catalog.get(ca).unwrap().cert_and_key_files().unwrap();
        std::fs::write(
            work.join("ext.cnf"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&work).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        openssl(&["req", "-new", "-key", key.to_str().unwrap(), "-subj", &subject, "-out", "req.csr"]);
        let (ca_cert, ca_key) = (self.root.join(ca_cert), self.root.join(ca_key));
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            ca_cert.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-days",
            "300",
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.crt",
        ];
        args.extend(how);
        openssl(&args);
        self.write(cert, &std::fs::read(work.join("leaf.crt")).unwrap());
    }

    /// The serial of a certificate in the tree, in hex as openssl takes it.
    fn serial_hex(&self, rel: &str) -> String {
        let path = self.root.join(rel);
        let info =
            kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        format!("0x{}", info.serial.replace(':', ""))
    }
}

#[test]
fn weak_signatures_keys_serials_and_near_expiry_are_fixed_by_renew() {
    let now = OffsetDateTime::now_utc();
    let cases: Vec<(&str, Seed)> = vec![
        // One year's validity that started 360 days ago: 5 days left, inside the 30-day warning.
        (
            "expiring",
            Box::new(move |t: &Seeded| {
                t.reissue("apiserver-etcd-client", "etcd-ca", now - Duration::days(360), |_| {})
            }),
        ),
        ("sha1", Box::new(|t: &Seeded| t.openssl_sign("apiserver-etcd-client", "etcd-ca", None, &["-sha1"]))),
        (
            "weak-key",
            Box::new(|t: &Seeded| {
                let weak = t.env.path().join("weak.key");
                let out = Command::new("openssl").args(["genrsa", "-out"]).arg(&weak).arg("1024").output().unwrap();
                assert!(out.status.success());
                t.openssl_sign("apiserver-etcd-client", "etcd-ca", Some(&weak), &["-sha256"])
            }),
        ),
        (
            "duplicate-serial",
            Box::new(|t: &Seeded| {
                let serial = t.serial_hex("pki/etcd/healthcheck-client.crt");
                t.openssl_sign("apiserver-etcd-client", "etcd-ca", None, &["-sha256", "-set_serial", &serial])
            }),
        ),
    ];
    for (code, seed) in cases {
        let t = Seeded::new();
        let fixes = fixed_by_its_fix(&t, code, |t| seed(t));
        assert!(fixes.iter().all(|f| f.starts_with("kubepki renew ")), "{code}: {fixes:?}");
    }
}

/// A CA near its end is never reissued in place: its fix starts a rotation, and the rotation's
/// three phases (each what `rotate-ca status` names next) leave CAs that are not expiring. On
/// the real kubeadm tree, whose CAs were made in 2024 (a CA made today would end when the one
/// it replaces does).
#[test]
fn every_expiring_ca_of_the_real_kubeadm_tree_is_fixed_by_its_rotation() {
    let env = TestEnv::new();
    let root = kubeadm_fixture(&env, true);
    let dir = root.to_str().unwrap();
    let ca_end = {
        let path = root.join("pki/ca.crt");
        kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&path).unwrap(), &path).unwrap().not_after
    };
    let at = (ca_end - Duration::days(10)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let ca_fixes = || -> Vec<(String, String)> {
        let out = env.kubepki(&["verify", "--dir", dir, "--at", &at, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "expiring" && f["entry"].as_str().is_some_and(|e| e.ends_with("ca")))
            .map(|f| (f["entry"].as_str().unwrap().to_string(), f["fix"].as_str().unwrap().to_string()))
            .collect()
    };
    let fixes = ca_fixes();
    let names: Vec<&str> = fixes.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["ca", "etcd-ca", "front-proxy-ca"], "{fixes:?}");
    for (ca, fix) in &fixes {
        assert_eq!(fix, &format!("kubepki rotate-ca {ca} start --dir {dir}"));
        run_fix(&env, fix);
        for phase in ["reissue", "finish"] {
            let status = env.kubepki_ok(&["rotate-ca", "status", "--dir", dir]);
            assert!(status.contains(&format!("rotate-ca {ca} {phase}")), "{status}");
            let out = env.kubepki(&["rotate-ca", ca, phase, "--dir", dir]);
            assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    assert!(ca_fixes().is_empty(), "{:?}", ca_fixes());
}

#[test]
fn a_missing_sa_pub_is_written_from_sa_key_by_plain_init_and_a_lost_sa_key_is_never_made_anew() {
    let t = Seeded::new();
    let d = t.root.to_str().unwrap();
    let (key, public) = (t.root.join("pki/sa.key"), t.root.join("pki/sa.pub"));
    let (sa_key, sa_pub) = (std::fs::read(&key).unwrap(), std::fs::read(&public).unwrap());
    let fixes = fixed_by_its_fix(&t, "missing", |_| std::fs::remove_file(&public).unwrap());
    assert!(fixes.iter().all(|f| f.starts_with("kubepki init --dir ")), "{fixes:?}");
    assert_eq!(std::fs::read(&key).unwrap(), sa_key, "the signing key is kept");
    assert_eq!(std::fs::read(&public).unwrap(), sa_pub, "the public key is the key's own again");

    // The private key lost: no command makes a new one unasked, not even init --force (every
    // ServiceAccount token is signed by it); the fix says where it is, and --replace-ca sa is
    // the explicit way.
    std::fs::remove_file(&key).unwrap();
    let found = findings(&t.env, &t.root, None);
    let fix = &found.iter().find(|(c, _)| c == "missing").expect("sa.key reported missing").1;
    assert!(fix.contains("copy it back from a control plane") && !fix.contains("--force"), "{fix}");
    for args in [vec!["init", "--dir", d], vec!["init", "--dir", d, "--force"]] {
        let out = t.env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("would end every ServiceAccount token") && err.contains("--replace-ca sa"), "{err}");
        assert!(!key.exists() && std::fs::read(&public).unwrap() == sa_pub, "{args:?} wrote");
    }
    let out = t.env.kubepki_ok(&["init", "--dir", d, "--replace-ca", "sa"]);
    assert!(out.contains("the service-account key sa was made anew"), "{out}");
    assert_ne!(std::fs::read(&public).unwrap(), sa_pub);
    assert!(key.exists());
}
