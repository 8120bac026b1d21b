//! The golden path: `init` on the default cluster and on a 3 control-plane + 3 worker HA
//! cluster, for every key algorithm; every certificate checked by `openssl verify` against its
//! issuer with the right purpose, and its identity, usages and SANs against the reference.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki::{
    model::spec::ClusterSpec, model::spec::KeyAlgorithm, x509::certinfo::CertInfo,
    x509::kubeconfig::read as read_kubeconfig,
};

use crate::support::{files, run, TestEnv};

const HA: &str = r#"
controlPlaneEndpoint: k8s.example.com:6443
apiServerCertSANs: [api.example.com, 192.0.2.50]
nodes:
  - {name: cp1, role: control-plane, addresses: ["10.0.0.1"]}
  - {name: cp2, role: control-plane, addresses: ["10.0.0.2"]}
  - {name: cp3, role: control-plane, addresses: ["10.0.0.3", "fd00::3"]}
  - {name: w1, role: worker, addresses: ["10.0.1.1"]}
  - {name: w2, role: worker, addresses: ["10.0.1.2"]}
  - {name: w3, role: worker, addresses: ["10.0.1.3"], dnsNames: [w3.example.com]}
"#;

/// What the reference tables say a certificate is: CN, O, EKU (empty for a CA), SANs.
struct Expect {
    file: String,
    issuer: &'static str,
    cn: String,
    orgs: &'static [&'static str],
    eku: &'static [&'static str],
    sans: Vec<String>,
}

fn expect(
    file: &str,
    issuer: &'static str,
    cn: &str,
    orgs: &'static [&'static str],
    eku: &'static [&'static str],
    sans: &[&str],
) -> Expect {
    // The reference: duplicate SANs removed, the first kept.
    let mut seen = BTreeSet::new();
    let sans = sans.iter().filter(|s| seen.insert(**s)).map(|s| s.to_string()).collect();
    Expect { file: file.into(), issuer, cn: cn.into(), orgs, eku, sans }
}

const S: &[&str] = &["serverAuth"];
const C: &[&str] = &["clientAuth"];
const SC: &[&str] = &["serverAuth", "clientAuth"];

/// Reference §2-§3 for the primary control plane of a cluster (the top of the tree).
fn kubeadm_table(node: &str, ip: &str, endpoint_san: Option<&str>, extra_api: &[&str]) -> Vec<Expect> {
    let mut api = vec![
        format!("DNS:{node}"),
        "DNS:kubernetes".into(),
        "DNS:kubernetes.default".into(),
        "DNS:kubernetes.default.svc".into(),
        "DNS:kubernetes.default.svc.cluster.local".into(),
        "IP:10.96.0.1".into(),
        format!("IP:{ip}"),
    ];
    api.extend(endpoint_san.map(String::from));
    api.extend(extra_api.iter().map(|s| s.to_string()));
    let etcd =
        [format!("DNS:{node}"), "DNS:localhost".into(), format!("IP:{ip}"), "IP:127.0.0.1".into(), "IP:::1".into()];
    let etcd: Vec<&str> = etcd.iter().map(String::as_str).collect();
    let api: Vec<&str> = api.iter().map(String::as_str).collect();
    vec![
        expect("pki/ca.crt", "pki/ca.crt", "kubernetes", &[], &[], &["DNS:kubernetes"]),
        expect("pki/etcd/ca.crt", "pki/etcd/ca.crt", "etcd-ca", &[], &[], &["DNS:etcd-ca"]),
        expect("pki/front-proxy-ca.crt", "pki/front-proxy-ca.crt", "front-proxy-ca", &[], &[], &["DNS:front-proxy-ca"]),
        expect("pki/apiserver.crt", "pki/ca.crt", "kube-apiserver", &[], S, &api),
        expect(
            "pki/apiserver-kubelet-client.crt",
            "pki/ca.crt",
            "kube-apiserver-kubelet-client",
            &["kubeadm:cluster-admins"],
            C,
            &[],
        ),
        expect("pki/front-proxy-client.crt", "pki/front-proxy-ca.crt", "front-proxy-client", &[], C, &[]),
        expect("pki/etcd/server.crt", "pki/etcd/ca.crt", node, &[], SC, &etcd),
        expect("pki/etcd/peer.crt", "pki/etcd/ca.crt", node, &[], SC, &etcd),
        expect("pki/etcd/healthcheck-client.crt", "pki/etcd/ca.crt", "kube-etcd-healthcheck-client", &[], C, &[]),
        expect("pki/apiserver-etcd-client.crt", "pki/etcd/ca.crt", "kube-apiserver-etcd-client", &[], C, &[]),
        expect("admin.conf", "pki/ca.crt", "kubernetes-admin", &["kubeadm:cluster-admins"], C, &[]),
        expect("super-admin.conf", "pki/ca.crt", "kubernetes-super-admin", &["system:masters"], C, &[]),
        expect("controller-manager.conf", "pki/ca.crt", "system:kube-controller-manager", &[], C, &[]),
        expect("scheduler.conf", "pki/ca.crt", "system:kube-scheduler", &[], C, &[]),
        expect("kubelet.conf", "pki/ca.crt", &format!("system:node:{node}"), &["system:nodes"], C, &[]),
        expect("kube-proxy.conf", "pki/ca.crt", "system:kube-proxy", &[], C, &[]),
    ]
}

/// The certificate of a file: a PEM certificate, or a kubeconfig's embedded client cert
/// (written next to the test's scratch files so openssl can read it).
fn cert_file(tree: &Path, scratch: &Path, file: &str) -> PathBuf {
    let path = tree.join(file);
    if !file.ends_with(".conf") {
        return path;
    }
    let k = read_kubeconfig(&path).unwrap();
    let ca = std::fs::read_to_string(tree.join("pki/ca.crt")).unwrap();
    assert_eq!(k.ca_pem.as_deref().map(str::trim), Some(ca.trim()), "{file}: CA data is pki/ca.crt");
    let out = scratch.join(file.replace('/', "_") + ".crt");
    std::fs::write(&out, k.cert_pem.unwrap()).unwrap();
    out
}

fn openssl_verify(ca: &Path, cert: &Path, purpose: &str) {
    let (ok, text) =
        run(Command::new("openssl").args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"]).arg(ca).arg(cert));
    assert!(ok && text.contains(": OK"), "openssl verify -purpose {purpose} {}: {text}", cert.display());
}

fn check(tree: &Path, scratch: &Path, e: &Expect, alg: KeyAlgorithm) {
    let cert = cert_file(tree, scratch, &e.file);
    let info = CertInfo::from_pem(&std::fs::read_to_string(&cert).unwrap(), &cert).unwrap();
    let what = format!("{alg} {}", e.file);
    assert_eq!(info.subject_cn, e.cn, "{what}: CN");
    assert_eq!(info.orgs, e.orgs, "{what}: O");
    let eku: Vec<&str> = info.ext_key_usage.iter().map(|u| u.name()).collect();
    assert_eq!(eku, e.eku, "{what}: EKU");
    let sans: Vec<String> = info.sans.iter().map(|s| s.to_string()).collect();
    assert_eq!(sans, e.sans, "{what}: SANs");
    let is_ca = e.eku.is_empty();
    assert_eq!(info.is_ca, is_ca, "{what}: CA flag");
    // keyEncipherment for RSA keys only (RFC 5480 §3 prohibits it for EC keys).
    let ku: &[&str] = match (is_ca, alg.is_rsa()) {
        (true, true) => &["digitalSignature", "keyEncipherment", "keyCertSign"],
        (true, false) => &["digitalSignature", "keyCertSign"],
        (false, true) => &["digitalSignature", "keyEncipherment"],
        (false, false) => &["digitalSignature"],
    };
    let key_usage: Vec<&str> = info.key_usage.iter().map(|u| u.name()).collect();
    assert_eq!(key_usage, ku, "{what}: key usage");
    let want_alg = match alg {
        KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
        KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        KeyAlgorithm::Rsa2048 => "RSA-2048",
        KeyAlgorithm::Rsa3072 => "RSA-3072",
        KeyAlgorithm::Rsa4096 => "RSA-4096",
    };
    assert_eq!(info.key.to_string(), want_alg, "{what}: key");
    let days = (info.not_after - info.not_before).whole_minutes();
    let want = if is_ca { 3650 } else { 365 } * 24 * 60 + 5;
    assert_eq!(
        days,
        want,
        "{what}: validity is {}/365 days plus the 5-minute backdate",
        if is_ca { 3650 } else { 365 }
    );
    assert!(info.serial.len() >= 16, "{what}: serial {} has fewer than 64 bits", info.serial);
    let purpose = if is_ca || e.eku.contains(&"serverAuth") { "sslserver" } else { "sslclient" };
    openssl_verify(&tree.join(e.issuer), &cert, purpose);
    if e.eku == SC {
        openssl_verify(&tree.join(e.issuer), &cert, "sslclient");
    }
    // Wrong purpose must fail: a client certificate is no server certificate.
    if e.eku == C {
        let (ok, _) = run(Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(tree.join(e.issuer))
            .arg(&cert));
        assert!(!ok, "{what}: openssl accepted a client certificate as a server");
    }
}

/// Every key is in kubeadm's PEM form, loads in openssl, and matches its certificate.
fn check_keys(tree: &Path, alg: KeyAlgorithm) {
    let header = if alg.is_rsa() { "-----BEGIN RSA PRIVATE KEY-----" } else { "-----BEGIN EC PRIVATE KEY-----" };
    for key in walk(tree).into_iter().filter(|p| p.extension().is_some_and(|e| e == "key")) {
        let text = std::fs::read_to_string(&key).unwrap();
        assert!(text.starts_with(header), "{}: {}", key.display(), text.lines().next().unwrap_or(""));
        let (ok, from_key) = run(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key));
        assert!(ok, "openssl cannot load {}: {from_key}", key.display());
        let cert = key.with_extension(if key.ends_with("sa.key") { "pub" } else { "crt" });
        let (ok, from_cert) = if key.ends_with("sa.key") {
            (true, std::fs::read_to_string(&cert).unwrap())
        } else {
            run(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(&cert))
        };
        assert!(ok);
        assert_eq!(from_key.trim(), from_cert.trim(), "{} does not match {}", key.display(), cert.display());
    }
}

/// Every PKI file of a tree (kubepki's own state in `.kubepki/` aside).
fn walk(dir: &Path) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|p| !p.strip_prefix(dir).unwrap().starts_with(".kubepki")).collect()
}

/// Modes: keys and kubeconfigs 0600, certificates and public keys 0644, directories 0755
/// (less what the umask takes away: it may only narrow them).
fn check_modes(tree: &Path, umask: u32) {
    for p in walk(tree) {
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        let manifest = p.parent().is_some_and(|d| d.ends_with("manifests"));
        let want = match p.extension().and_then(|e| e.to_str()) {
            Some("key" | "conf") => 0o600,
            Some("yaml") if manifest => 0o600,
            Some("crt" | "pub" | "yaml") => 0o644,
            other => panic!("unexpected file {} ({other:?})", p.display()),
        };
        assert_eq!(mode, want, "{}: mode {mode:o}", p.display());
        assert!(!std::fs::read(&p).unwrap().contains(&b'\r'), "{}: CRLF line endings", p.display());
        let dir = p.parent().unwrap();
        assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o755 & !umask, "{}", dir.display());
    }
}

fn serials(tree: &Path, scratch: &Path) -> Vec<String> {
    walk(tree)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "crt" || e == "conf"))
        .map(|p| {
            let rel = p.strip_prefix(tree).unwrap().display().to_string();
            let c = cert_file(tree, scratch, &rel);
            CertInfo::from_pem(&std::fs::read_to_string(&c).unwrap(), &c).unwrap().serial
        })
        .collect()
}

fn golden_default(alg: KeyAlgorithm) {
    let env = TestEnv::new();
    let tree = env.init("tree", &["--key-algorithm", alg.name()]);
    let mut table = kubeadm_table("controlplane", "127.0.0.1", None, &[]);
    for (node, ip) in [("node01", "127.0.0.2"), ("node02", "127.0.0.3")] {
        let base = format!("nodes/{node}");
        table.push(expect(
            &format!("{base}/etc/kubernetes/kubelet.conf"),
            "pki/ca.crt",
            &format!("system:node:{node}"),
            &["system:nodes"],
            C,
            &[],
        ));
        table.push(Expect {
            file: format!("{base}/var/lib/kubelet/pki/kubelet.crt"),
            issuer: "pki/ca.crt",
            cn: format!("system:node:{node}"),
            orgs: &["system:nodes"],
            eku: S,
            sans: vec![format!("DNS:{node}"), format!("IP:{ip}")],
        });
        // The node's bundle trusts the cluster CA.
        assert_eq!(
            std::fs::read(tree.join(&base).join("etc/kubernetes/pki/ca.crt")).unwrap(),
            std::fs::read(tree.join("pki/ca.crt")).unwrap()
        );
    }
    let scratch = env.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    for e in &table {
        check(&tree, &scratch, e, alg);
    }
    check_keys(&tree, alg);
    check_modes(&tree, 0o022);
    let all = serials(&tree, &scratch);
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len() - bundle_copies(&tree), "serials are unique (copies aside)");
}

/// How many certificate-carrying files in the tree are bundle copies of another file.
fn bundle_copies(tree: &Path) -> usize {
    let mut seen = BTreeSet::new();
    let mut copies = 0;
    for p in walk(tree).into_iter().filter(|p| p.extension().is_some_and(|e| e == "crt" || e == "conf")) {
        if !seen.insert(std::fs::read(&p).unwrap()) {
            copies += 1;
        }
    }
    copies
}

fn golden_ha(alg: KeyAlgorithm) {
    let env = TestEnv::new();
    let config = env.write("ha.yaml", HA);
    let tree = env.init("tree", &["--config", config.to_str().unwrap(), "--key-algorithm", alg.name()]);
    let scratch = env.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut table =
        kubeadm_table("cp1", "10.0.0.1", Some("DNS:k8s.example.com"), &["DNS:api.example.com", "IP:192.0.2.50"]);
    // The other control planes: their own kubeadm tree in their bundle, sharing CAs and
    // shared client certificates with the primary.
    for (node, ips) in [("cp2", vec!["10.0.0.2"]), ("cp3", vec!["10.0.0.3", "fd00::3"])] {
        let base = format!("nodes/{node}/etc/kubernetes");
        for shared in
            ["pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/sa.key", "pki/apiserver-etcd-client.crt", "admin.conf"]
        {
            assert_eq!(
                std::fs::read(tree.join(&base).join(shared)).unwrap(),
                std::fs::read(tree.join(shared)).unwrap(),
                "{node} {shared}"
            );
        }
        assert!(!tree.join(&base).join("super-admin.conf").exists(), "the break-glass kubeconfig stays on the primary");
        let mut api: Vec<String> = vec![
            format!("DNS:{node}"),
            "DNS:kubernetes".into(),
            "DNS:kubernetes.default".into(),
            "DNS:kubernetes.default.svc".into(),
            "DNS:kubernetes.default.svc.cluster.local".into(),
            "IP:10.96.0.1".into(),
        ];
        api.extend(ips.iter().map(|ip| format!("IP:{ip}")));
        api.extend(["DNS:k8s.example.com".into(), "DNS:api.example.com".into(), "IP:192.0.2.50".into()]);
        table.push(Expect {
            file: format!("{base}/pki/apiserver.crt"),
            issuer: "pki/ca.crt",
            cn: "kube-apiserver".into(),
            orgs: &[],
            eku: S,
            sans: api,
        });
        let mut etcd: Vec<String> = vec![format!("DNS:{node}"), "DNS:localhost".into()];
        etcd.extend(ips.iter().map(|ip| format!("IP:{ip}")));
        etcd.extend(["IP:127.0.0.1".into(), "IP:::1".into()]);
        for f in ["server", "peer"] {
            table.push(Expect {
                file: format!("{base}/pki/etcd/{f}.crt"),
                issuer: "pki/etcd/ca.crt",
                cn: node.into(),
                orgs: &[],
                eku: SC,
                sans: etcd.clone(),
            });
        }
        table.push(expect(
            &format!("{base}/controller-manager.conf"),
            "pki/ca.crt",
            "system:kube-controller-manager",
            &[],
            C,
            &[],
        ));
        table.push(expect(
            &format!("{base}/kubelet.conf"),
            "pki/ca.crt",
            &format!("system:node:{node}"),
            &["system:nodes"],
            C,
            &[],
        ));
        // A control plane's local kubeconfigs dial its own apiserver.
        let k = read_kubeconfig(&tree.join(&base).join("scheduler.conf")).unwrap();
        assert_eq!(k.server, format!("https://{}:6443", ips[0]));
    }
    for (node, ip) in [("w1", "10.0.1.1"), ("w3", "10.0.1.3")] {
        let mut sans = vec![format!("DNS:{node}")];
        if node == "w3" {
            sans.push("DNS:w3.example.com".into());
        }
        sans.push(format!("IP:{ip}"));
        table.push(Expect {
            file: format!("nodes/{node}/var/lib/kubelet/pki/kubelet.crt"),
            issuer: "pki/ca.crt",
            cn: format!("system:node:{node}"),
            orgs: &["system:nodes"],
            eku: S,
            sans,
        });
        let k = read_kubeconfig(&tree.join(format!("nodes/{node}/etc/kubernetes/kubelet.conf"))).unwrap();
        assert_eq!(k.server, "https://k8s.example.com:6443");
        assert!(!tree.join(format!("nodes/{node}/etc/kubernetes/pki/ca.key")).exists(), "no CA key on a worker");
    }
    for e in &table {
        check(&tree, &scratch, e, alg);
    }
    check_keys(&tree, alg);
    check_modes(&tree, 0o022);
    // Every certificate of the catalog is on disk.
    let spec = ClusterSpec::from_yaml(HA, Path::new("ha.yaml")).unwrap();
    for e in &kubepki::model::catalog::Catalog::build(&spec).entries {
        for (f, _) in e.files() {
            assert!(tree.join(f).is_file(), "{} missing", f.display());
        }
    }
}

#[test]
fn golden_default_ecdsa_p256() {
    golden_default(KeyAlgorithm::EcdsaP256);
}

#[test]
fn golden_default_ecdsa_p384() {
    golden_default(KeyAlgorithm::EcdsaP384);
}

#[test]
fn golden_default_rsa_2048() {
    golden_default(KeyAlgorithm::Rsa2048);
}

#[test]
fn golden_default_rsa_3072() {
    golden_default(KeyAlgorithm::Rsa3072);
}

#[test]
fn golden_default_rsa_4096() {
    golden_default(KeyAlgorithm::Rsa4096);
}

#[test]
fn golden_ha_ecdsa_p256() {
    golden_ha(KeyAlgorithm::EcdsaP256);
}

#[test]
fn golden_ha_ecdsa_p384() {
    golden_ha(KeyAlgorithm::EcdsaP384);
}

#[test]
fn golden_ha_rsa_2048() {
    golden_ha(KeyAlgorithm::Rsa2048);
}

#[test]
fn golden_ha_rsa_3072() {
    golden_ha(KeyAlgorithm::Rsa3072);
}

#[test]
fn golden_ha_rsa_4096() {
    golden_ha(KeyAlgorithm::Rsa4096);
}

/// Files' modes do not depend on the umask kubepki runs under (files are created with their
/// mode, and given it back when the umask took bits away), in a small tree (fsync per file)
/// and a large one (staged, syncfs); directories are 0755 or narrower, as the umask says.
#[test]
fn modes_are_kubeadms_whatever_the_umask() {
    let env = TestEnv::new();
    let config = env.write(
        "pool.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n\
         nodePools:\n- {namePattern: \"w{index:03}\", role: worker, count: 40, firstAddress: 10.1.0.1}\n",
    );
    for (umask, bits) in [("077", 0o077), ("027", 0o027), ("000", 0)] {
        for (name, extra) in [("default", vec![]), ("pool", vec!["--config", config.to_str().unwrap()])] {
            let tree = env.path().join(format!("{name}-{umask}"));
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!("umask {umask} && exec \"$0\" \"$@\"")).arg(env!("CARGO_BIN_EXE_kubepki"));
            cmd.args(["init", "--quiet", "--dir", tree.to_str().unwrap()]).args(&extra);
            let (ok, out) = run(&mut cmd);
            assert!(ok, "umask {umask}: {out}");
            check_modes(&tree, bits);
        }
    }
}
