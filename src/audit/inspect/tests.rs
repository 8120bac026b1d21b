use ::time::macros::datetime;

use super::*;
use crate::model::catalog::Catalog;
use crate::model::spec::ClusterSpec;
use crate::x509::issue::Ca;
use crate::x509::kubeconfig::Kubeconfig;

const NOW: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);

/// A cluster CA and the apiserver's certificate and key, issued at [`NOW`].
struct Pki {
    ca: Ca,
    leaf_pem: String,
    leaf_key: PrivateKey,
}

fn pki() -> Pki {
    let catalog = Catalog::build(&ClusterSpec::builtin_default());
    let profile = |id: &str| catalog.get(id).unwrap().cert().unwrap().clone();
    let ca = Ca::create("ca", &profile("ca"), PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(), NOW).unwrap();
    let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let leaf = ca.sign_key(&profile("apiserver@controlplane"), &leaf_key, NOW).unwrap();
    Pki { ca, leaf_pem: leaf.pem, leaf_key }
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, contents).unwrap();
    p
}

fn err(path: &Path) -> String {
    read(path, &Refs::Host, NOW).unwrap_err().to_string()
}

#[test]
fn time_left_says_how_long_in_its_largest_unit() {
    let nb = datetime!(2024-01-01 0:00 UTC);
    let na = datetime!(2025-01-01 0:00 UTC);
    assert_eq!(time_left(nb, na, datetime!(2024-01-02 0:00 UTC)), (CertValidity::Valid, "365d left".into()));
    assert_eq!(time_left(nb, na, datetime!(2024-12-31 23:00 UTC)), (CertValidity::Valid, "1h left".into()));
    assert_eq!(time_left(nb, na, datetime!(2026-11-26 0:00 UTC)), (CertValidity::Expired, "expired 694d ago".into()));
    assert_eq!(time_left(nb, na, datetime!(2023-12-31 23:58 UTC)), (CertValidity::NotYetValid, "valid in 2m".into()));
}

#[test]
fn a_certificate_carries_its_identity_and_time_left() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "apiserver.crt", &p.leaf_pem);
    let r = read(&f, &Refs::Host, NOW + ::time::Duration::days(100)).unwrap();
    assert_eq!(r.kind, FileKind::Certificate);
    let c = &r.certificates[0];
    assert_eq!((c.user.as_str(), c.issuer_cn.as_str()), ("kube-apiserver", "kubernetes"));
    assert_eq!(c.time_left, "265d left");
    assert_eq!(c.info.ext_key_usage, [crate::x509::usage::ExtKeyUsage::ServerAuth]);
    assert!(c.info.sans.contains(&San::Ip("10.96.0.1".parse().unwrap())));
    assert_eq!(c.signed_by_next, None);
}

#[test]
fn a_chain_says_whether_each_link_is_signed_by_the_next() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "chain.pem", format!("{}{}", p.leaf_pem, p.ca.cert_pem));
    let r = read(&good, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kind, FileKind::CertificateChain);
    assert_eq!(r.certificates.iter().map(|c| c.signed_by_next).collect::<Vec<_>>(), [Some(true), None]);
    let bad = write(dir.path(), "reversed.pem", format!("{}{}", p.ca.cert_pem, p.leaf_pem));
    let r = read(&bad, &Refs::Host, NOW).unwrap();
    assert_eq!(r.certificates[0].signed_by_next, Some(false));
}

#[test]
fn der_is_recognised_by_content_whatever_the_name() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "cert.txt", &p.ca.info.der);
    let r = read(&f, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kind, FileKind::Certificate);
    assert!(r.certificates[0].info.is_ca);
    let cut = write(dir.path(), "cut.der", &p.ca.info.der[..p.ca.info.der.len() / 2]);
    let e = err(&cut);
    assert!(e.starts_with(&format!("{}: DER", cut.display())) && e.contains("truncated or corrupt"), "{e}");
}

#[test]
fn a_key_finds_its_certificates_in_its_tree_and_never_shows_itself() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write(&tree, "pki/apiserver.crt", &p.leaf_pem);
    write(&tree, "pki/ca.crt", &p.ca.cert_pem);
    write(&tree, "nodes/cp/etc/kubernetes/pki/apiserver.crt", &p.leaf_pem);
    write(&tree, "admin.conf", "apiVersion: v1\nkind: Config\nclusters: [{name: k, cluster: {server: https://x}}]\n");
    let key = write(&tree, "pki/apiserver.key", p.leaf_key.to_pem());
    let r = inspect(&key, NOW).unwrap();
    assert_eq!(r.kind, FileKind::PrivateKey);
    let k = &r.keys[0];
    assert_eq!((k.algorithm, k.bits, k.format), (KeyAlgorithm::EcdsaP256, 256, "SEC1"));
    assert_eq!(k.searched.as_deref(), Some(tree.canonicalize().unwrap().as_path()));
    let paths: Vec<_> = k.matches.iter().map(|m| m.path.display().to_string()).collect();
    assert_eq!(paths, ["nodes/cp/etc/kubernetes/pki/apiserver.crt", "pki/apiserver.crt"]);
    let json = serde_json::to_string(&r).unwrap();
    let body: String = p.leaf_key.to_pem().lines().filter(|l| !l.starts_with("-----")).collect();
    for chunk in body.as_bytes().chunks(16) {
        assert!(!json.contains(std::str::from_utf8(chunk).unwrap()), "key material in {json}");
    }
    assert!(!format!("{r:?}").contains(&body[..16]));
}

#[test]
fn the_search_root_is_the_tree_above_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("t");
    write(&tree, "admin.conf", "x");
    let deep = write(&tree, "nodes/n1/var/lib/kubelet/pki/kubelet.key", "x");
    std::fs::create_dir_all(tree.join("pki")).unwrap();
    assert_eq!(key_search_root(&deep), (tree.canonicalize().unwrap(), true));
    let alone = write(dir.path(), "loose/x.key", "x");
    assert_eq!(key_search_root(&alone), (dir.path().join("loose").canonicalize().unwrap(), false));
}

#[test]
fn a_certificate_with_its_key_in_one_file_is_matched_in_place() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "kubelet-client-current.pem", format!("{}{}", p.leaf_pem, p.leaf_key.to_pem()));
    let r = read(&f, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kind, FileKind::CertificateAndKey);
    assert_eq!(r.keys[0].matches.len(), 1);
    let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let f = write(dir.path(), "mismatch.pem", format!("{}{}", p.leaf_pem, other.to_pem()));
    assert!(read(&f, &Refs::Host, NOW).unwrap().keys[0].matches.is_empty());
}

fn kubeconfig(p: &Pki, key: &PrivateKey) -> String {
    Kubeconfig {
        cluster: "kubernetes",
        server: "https://127.0.0.1:6443",
        ca_pem: &p.ca.cert_pem,
        user: "kube-apiserver",
        cert_pem: &p.leaf_pem,
        key_pem: key.to_pem(),
    }
    .render()
}

#[test]
fn a_kubeconfig_shows_every_certificate_and_whether_its_key_fits() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "x.yaml", kubeconfig(&p, &p.leaf_key));
    let r = read(&f, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kind, FileKind::Kubeconfig);
    let k = r.kubeconfig.as_ref().unwrap();
    assert_eq!(k.current_context, "kube-apiserver@kubernetes");
    assert_eq!(k.clusters[0].server, "https://127.0.0.1:6443");
    let certs = r.all_certificates();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].source, "clusters[kubernetes].certificate-authority-data");
    assert!(certs[0].info.is_ca);
    assert_eq!(certs[1].source, "users[kube-apiserver].client-certificate-data");
    assert_eq!(k.users[0].key_matches_certificate, Some(true));
    assert!(matches!(k.users[0].client_key, Some(KeySource::Embedded { algorithm: KeyAlgorithm::EcdsaP256 })));

    let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let f = write(dir.path(), "y.conf", kubeconfig(&p, &other));
    let r = read(&f, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kubeconfig.unwrap().users[0].key_matches_certificate, Some(false));
}

#[test]
fn kubeconfig_file_references_are_shown_and_resolved() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("nodes/n1");
    write(&node, "var/lib/kubelet/pki/kubelet-client-current.pem", format!("{}{}", p.leaf_pem, p.leaf_key.to_pem()));
    write(&node, "etc/kubernetes/ca.crt", &p.ca.cert_pem);
    let conf = write(
        &node,
        "etc/kubernetes/kubelet.conf",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: 'https://x:6443', certificate-authority: ca.crt}\n\
         users:\n- name: u\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /nowhere/key.pem\n\
         contexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n",
    );
    let r = read(&conf, &Refs::Under(node.clone()), NOW).unwrap();
    let k = r.kubeconfig.as_ref().unwrap();
    let CertSource::File(ca) = k.clusters[0].certificate_authority.as_ref().unwrap() else { panic!("{k:?}") };
    assert_eq!(ca.resolved, node.join("etc/kubernetes/ca.crt"));
    assert!(ca.readable && ca.certificates[0].info.is_ca);
    let CertSource::File(cert) = k.users[0].client_certificate.as_ref().unwrap() else { panic!("{k:?}") };
    assert_eq!(cert.resolved, node.join("var/lib/kubelet/pki/kubelet-client-current.pem"));
    assert_eq!(cert.certificates[0].user, "kube-apiserver");
    let Some(KeySource::File(key)) = &k.users[0].client_key else { panic!("{k:?}") };
    assert!(!key.readable && key.problem.is_some(), "{key:?}");
    assert_eq!(key.reference, "/nowhere/key.pem");

    // On the host, the absolute reference is taken as it is.
    let r = read(&conf, &Refs::Host, NOW).unwrap();
    let CertSource::File(cert) = r.kubeconfig.unwrap().users[0].client_certificate.clone().unwrap() else { panic!() };
    assert_eq!(cert.resolved, Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem"));
}

#[test]
fn bad_files_are_refused_by_name_with_the_reason() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(PathBuf, &str)> = vec![
        (write(d, "empty.crt", "\n"), "the file is empty"),
        (write(d, "garbage.crt", "hello world\n"), "neither PEM, a DER certificate, nor a kubeconfig"),
        (write(d, "truncated.crt", &p.leaf_pem[..p.leaf_pem.len() / 2]), "has no matching END line"),
        (write(d, "pub.pem", p.leaf_key.public_key_pem()), "type 'PUBLIC KEY', expected CERTIFICATE"),
        (
            write(d, "corrupt.crt", p.leaf_pem.replacen("MII", "MIA", 1)),
            "block 1 (CERTIFICATE): not a valid X.509 certificate",
        ),
        (write(d, "pod.yaml", "apiVersion: v1\nkind: Pod\n"), "a YAML document of kind 'Pod'"),
        (write(d, "notyaml.conf", "apiVersion: v1\nclusters: [\n"), "not a kubeconfig: not YAML"),
        (write(d, "noclusters.conf", "apiVersion: v1\nkind: Config\n"), "it has no clusters"),
        (
            write(
                d,
                "dangling.conf",
                "apiVersion: v1\nclusters: [{name: k, cluster: {server: s}}]\ncontexts: [{name: c, context: {cluster: k, user: nobody}}]\n",
            ),
            "context 'c' names user 'nobody', which is missing",
        ),
        (
            write(d, "b64.conf", "apiVersion: v1\nclusters: [{name: k, cluster: {server: s, certificate-authority-data: '@@@'}}]\n"),
            "clusters[k].certificate-authority-data is not valid base64",
        ),
    ];
    for (path, want) in cases {
        let e = err(&path);
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        assert!(e.contains(want), "{}: {e}", path.display());
    }
    let missing = d.join("missing.crt");
    assert!(matches!(read(&missing, &Refs::Host, NOW), Err(Error::Io { .. })));
}

#[test]
fn a_scan_skips_backups_and_reads_by_content() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pki/ca.crt", &p.ca.cert_pem);
    write(dir.path(), ".kubepki-backup/2024/pki/ca.crt", &p.ca.cert_pem);
    write(dir.path(), "pki/ca.key", "not looked at");
    write(dir.path(), "bad.conf", "nonsense");
    let found = scan(dir.path(), true, NOW);
    let names: Vec<_> = found.iter().map(|(p, _)| p.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
    assert_eq!(names, ["bad.conf", "pki/ca.crt"]);
    assert!(found[0].1.is_err() && found[1].1.is_ok());
}

#[test]
fn a_json_kubeconfig_is_recognised_too() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "config",
        r#"{"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "k", "cluster": {"server": "https://x:6443"}}]}"#,
    );
    let r = read(&f, &Refs::Host, NOW).unwrap();
    assert_eq!(r.kind, FileKind::Kubeconfig);
    assert!(r.kubeconfig.unwrap().clusters[0].certificate_authority.is_none());
}
