//! Property tests over every parser and decider of outside input (issue 12): the cluster
//! description and kubeadm's configuration, durations, kubeconfigs, PEM and DER certificates,
//! keys and requests, files given to `inspect`, and CSR objects with their policies.
//!
//! Every property: no panic; bounded (each case within [`CASE_TIME`], every message shown at
//! most [`MAX_SHOWN`] bytes, with no control character and no key material); a refusal names
//! what it refused (the file, or the field). For the signer: nothing is signed that the rules
//! of reference §4, as kubepki tightens them, forbid; checked by an oracle written apart from
//! `approve`.
//!
//! `cargo test` runs [`CASES`] cases per property; `PROPTEST_CASES=N` runs N (README).

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::model::catalog::Catalog;
use crate::model::spec::{duration_text, ClusterSpec, KeyAlgorithm, Role};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::{Ca, PrivateKey};
use crate::x509::request::CertificateRequest;

/// Cases per property in `cargo test`.
const CASES: u32 = 48;
/// The longest a case may take (a debug build on a busy 2-core machine).
const CASE_TIME: Duration = Duration::from_secs(20);
/// The longest message shown (`error::MAX_MESSAGE` and its note).
const MAX_SHOWN: usize = 16 * 1024 + 64;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(CASES);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A private key whose body must never be shown.
fn secret_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap())
}

/// Pieces of the key's base64 body: none may appear in anything shown.
fn key_pieces() -> Vec<String> {
    let body: String = secret_key().to_pem().lines().filter(|l| !l.starts_with("-----")).collect();
    body.as_bytes().chunks(12).filter(|c| c.len() == 12).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect()
}

/// A message is safe to show: bounded, no control character but a line feed, no key piece.
fn assert_shown_safely(message: &str) {
    assert!(message.len() <= MAX_SHOWN, "{} bytes", message.len());
    assert!(!message.chars().any(|c| c.is_control() && c != '\n'), "{message:?}");
    for piece in key_pieces() {
        assert!(!message.contains(&piece), "key material in {message}");
    }
}

/// A tree of the default cluster, removed when the test ends (a property that needs one runs
/// its cases with a [`TestRunner`] of its own, inside the test).
fn default_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::builtin_default();
    let catalog = Catalog::build(&spec);
    crate::operations::init::init(&spec, &catalog, dir.path(), &Default::default(), time::OffsetDateTime::now_utc())
        .unwrap();
    dir
}

fn run<S: Strategy>(strategy: S, case: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    if let Err(e) = TestRunner::new(config()).run(&strategy, case) {
        panic!("{e}");
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < CASE_TIME, "took {:?}", start.elapsed());
    out
}

/// Values a person or an attacker might write in any field.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}",
        "[a-z0-9.*_-]{0,30}",
        proptest::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9]{1,22}[dhms]{1,2}",
        prop::sample::select(vec![
            "0.0.0.0",
            "::",
            "::ffff:10.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "10.0.0.1",
            "10.0.0.2",
            "fd00::1",
            "*.evil.com",
            "kubernetes.default.svc",
            "3000000d",
            "87600000h",
            "36500d",
            "8760h0m0s",
            "1h",
            "10.96.0.0/12",
            "224.0.0.0/4",
            "ff00::/8",
            "fd00::/108",
            "lb.example.com:6443",
            "[::1]:0",
            "on",
            "",
            "\u{1b}[2J\u{0}",
        ])
        .prop_map(str::to_string),
        Just(secret_key().to_pem().to_string()),
        (1usize..300).prop_map(|n| "x".repeat(n * 100)),
    ]
}

/// A YAML scalar: JSON quoting is valid YAML.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

/// Mostly a value that fits the field, sometimes anything.
fn or_anything(fits: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = String> {
    prop_oneof![9 => fits, 1 => value()]
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof!["10\\.0\\.[0-9]\\.[1-9]", "fd00::[1-9a-f]{1,2}"]
}

prop_compose! {
    fn node_yaml()(name in or_anything("[a-z][a-z0-9-]{0,8}".boxed()), cp in any::<bool>(),
                   addresses in prop_oneof![6 => prop::collection::vec(or_anything(address().boxed()), 1..3), 1 => Just(vec![])],
                   dns in prop::collection::vec(or_anything("[a-z]{1,6}\\.example\\.com".boxed()), 0..2)) -> String {
        let role = if cp { "control-plane" } else { "worker" };
        format!("- {{name: {}, role: {role}, addresses: {}, dnsNames: {}}}\n", q(&name), list(&addresses), list(&dns))
    }
}

prop_compose! {
    fn pool_yaml()(pattern in prop_oneof![Just("w{index}".to_string()), Just("n-{index:03}".to_string()), value()],
                   count in prop_oneof![4 => 0i64..6, 1 => Just(-1), 1 => Just(200_000), 1 => Just(i64::MAX)],
                   first in prop::collection::vec(or_anything(address().boxed()), 1..3), first_index in -2i64..4,
                   dns in prop::collection::vec(prop_oneof![Just("{name}.x".to_string()), Just("*.{name}".to_string()), value()], 0..2))
                   -> String {
        format!("- {{namePattern: {}, count: {count}, firstAddress: {}, firstIndex: {first_index}, dnsNames: {}}}\n",
            q(&pattern), list(&first), list(&dns))
    }
}

prop_compose! {
    /// A kubepki description: each field present or not, with any value.
    fn description()(fields in prop::collection::vec((0usize..10, value()), 0..2),
                     good in prop::collection::vec((0usize..10, any::<prop::sample::Index>()), 0..6),
                     nodes in prop::collection::vec(node_yaml(), 0..4),
                     pools in prop::collection::vec(pool_yaml(), 0..2),
                     good_first in any::<bool>()) -> String {
        const NAMES: [&str; 10] = ["clusterName", "controlPlaneEndpoint", "apiServerPort", "serviceSubnet", "dnsDomain",
            "apiServerCertSANs", "keyAlgorithm", "validity", "caLayout", "etcd"];
        // Values that fit each field.
        const GOOD: [&[&str]; 10] = [&["kubernetes", "prod", "on"], &["lb.example.com:6443", "10.0.0.1", "[fd00::1]:443"],
            &["6443", "443"], &["10.96.0.0/12", "10.100.0.0/16,fd00:10::/108", "fd00::/108"], &["cluster.local", "corp.local"],
            &["api.example.com", "192.0.2.10"], &["ecdsa-p256", "ecdsa-p384"], &["3650d", "87600h0m0s", "36500d"],
            &["kubeadm", "single"], &["etcd.example.com", "10.9.9.9"]];
        let mut text = String::new();
        let mut seen = std::collections::BTreeSet::new();
        let good = good.into_iter().map(|(i, pick)| (i, pick.get(GOOD[i]).to_string()));
        for (i, v) in good.chain(fields) {
            if !seen.insert(i) { continue }
            let value = match NAMES[i] {
                "apiServerCertSANs" => list(&[v]),
                "validity" => format!("{{ca: {}, leaf: {}}}", q(&v), q("365d")),
                "etcd" => format!("{{serverCertSANs: {}}}", list(&[v])),
                "apiServerPort" => v.chars().filter(char::is_ascii_digit).take(12).collect::<String>().parse::<i64>().map_or_else(|_| q(&v), |n| n.to_string()),
                _ => q(&v),
            };
            text.push_str(&format!("{}: {value}\n", NAMES[i]));
        }
        text.push_str("nodes:\n");
        if good_first {
            text.push_str("- {name: cp, role: control-plane, addresses: [\"10.0.0.1\"]}\n");
        }
        for n in nodes { text.push_str(&n); }
        if !pools.is_empty() {
            text.push_str("nodePools:\n");
            for p in pools { text.push_str(&p); }
        }
        text
    }
}

prop_compose! {
    /// kubeadm's configuration: its documents, in any order, with any values.
    fn kubeadm_config()(name in or_anything("[a-z][a-z0-9-]{0,8}".boxed()), address in or_anything(address().boxed()),
                        validity in or_anything(prop::sample::select(vec!["87600h0m0s", "3650d", "36500d"]).prop_map(str::to_string).boxed()),
                        subnet in or_anything(Just("10.96.0.0/12".to_string()).boxed()),
                        sans in prop::collection::vec(value(), 0..3), kinds in prop_oneof![
                            3 => Just(vec!["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]),
                            1 => prop::collection::vec(prop::sample::select(vec!["InitConfiguration", "ClusterConfiguration",
                                "JoinConfiguration", "KubeletConfiguration", "InitConfig"]), 1..4)],
                        version in prop_oneof![3 => prop::sample::select(vec!["v1beta3", "v1beta4"]), 1 => Just("v1beta2")]) -> String {
        let mut docs = Vec::new();
        for kind in kinds {
            let group = if kind == "KubeletConfiguration" { "kubelet.config.k8s.io/v1beta1".to_string() } else { format!("kubeadm.k8s.io/{version}") };
            let body = match kind {
                "InitConfiguration" => format!("nodeRegistration: {{name: {}}}\nlocalAPIEndpoint: {{advertiseAddress: {}, bindPort: 6443}}\n", q(&name), q(&address)),
                "ClusterConfiguration" => format!("caCertificateValidityPeriod: {}\nnetworking: {{serviceSubnet: {}}}\napiServer: {{certSANs: {}}}\n", q(&validity), q(&subnet), list(&sans)),
                _ => String::new(),
            };
            docs.push(format!("apiVersion: {group}\nkind: {kind}\n{body}"));
        }
        docs.join("---\n")
    }
}

/// What every resolved description holds, checked apart from the resolver.
fn assert_sound(spec: &ClusterSpec) {
    assert!(!spec.nodes.is_empty() && spec.nodes[0].role == Role::ControlPlane);
    let mut names = std::collections::BTreeSet::new();
    let mut addresses = std::collections::BTreeSet::new();
    for n in &spec.nodes {
        assert!(crate::model::spec::is_dns1123_subdomain(&n.name), "{}", n.name);
        assert!(names.insert(&n.name), "duplicate {}", n.name);
        assert!(!n.addresses.is_empty());
        for ip in &n.addresses {
            assert!(addresses.insert(*ip), "duplicate {ip}");
            assert!(!ip.is_unspecified() && !ip.is_multicast(), "{ip}");
            assert_ne!(*ip, IpAddr::from([255, 255, 255, 255]));
            if let IpAddr::V6(v6) = ip {
                assert!(v6.to_ipv4_mapped().is_none(), "{ip}");
            }
        }
        assert!(n.dns_names.iter().all(|d| !d.contains('*')), "{:?}", n.dns_names);
    }
    let v = spec.validity;
    assert!(time::Duration::hours(1) <= v.leaf && v.leaf <= v.ca && v.ca <= duration_text::MAX, "{v:?}");
    assert!(spec.service_subnets.iter().all(|s| !s.addr.is_multicast()));
    let catalog = Catalog::build(spec);
    crate::model::topology::Topology::build(spec, &catalog);
}

fn assert_refusal_names(err: &crate::error::Error, file: &str) {
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("{file}: ")), "{shown}");
    assert_shown_safely(&shown);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn descriptions_resolve_soundly_or_are_refused_by_field(text in description()) {
        match timed(|| ClusterSpec::from_yaml(&text, Path::new("cluster.yaml"))) {
            Ok(spec) => assert_sound(&spec),
            Err(e) => assert_refusal_names(&e, "cluster.yaml"),
        }
    }

    #[test]
    fn any_text_as_a_description_is_refused_by_file(text in proptest::collection::vec(any::<char>(), 0..200).prop_map(String::from_iter)) {
        if let Err(e) = timed(|| ClusterSpec::from_yaml(&text, Path::new("c.yaml"))) {
            assert_refusal_names(&e, "c.yaml");
        }
    }

    #[test]
    fn kubeadm_configs_resolve_soundly_or_are_refused_by_field(text in kubeadm_config()) {
        match timed(|| ClusterSpec::from_yaml(&text, Path::new("kubeadm.yaml"))) {
            Ok(spec) => assert_sound(&spec),
            Err(e) => assert_refusal_names(&e, "kubeadm.yaml"),
        }
    }

    #[test]
    fn durations_are_bounded(text in prop_oneof![value(), "[0-9dhms ]{0,30}"]) {
        if let Ok(d) = duration_text::parse(&text) {
            prop_assert!(time::Duration::hours(1) <= d && d <= duration_text::MAX);
        }
    }
}

/// A CA, a leaf it signed, a request and a kubeconfig: real inputs to mutate.
struct Samples {
    cert_der: Vec<u8>,
    csr_der: Vec<u8>,
    kubeconfig: String,
}

fn samples() -> &'static Samples {
    static S: OnceLock<Samples> = OnceLock::new();
    S.get_or_init(|| {
        let spec = ClusterSpec::builtin_default();
        let catalog = Catalog::build(&spec);
        let profile = |id: &str| catalog.get(id).and_then(|e| e.cert()).unwrap().clone();
        let now = time::OffsetDateTime::now_utc();
        let ca = Ca::create("ca", &profile("ca"), PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(), now).unwrap();
        let leaf = ca.sign_key(&profile("apiserver@controlplane"), secret_key(), now).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["node01".into(), "127.0.0.2".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:node01");
        let pair = rcgen::KeyPair::generate().unwrap();
        let csr_der = params.serialize_request(&pair).unwrap().der().to_vec();
        let kubeconfig = crate::x509::kubeconfig::Kubeconfig {
            cluster: "kubernetes",
            server: "https://127.0.0.1:6443",
            ca_pem: &ca.cert_pem,
            user: "kubernetes-admin",
            cert_pem: &leaf.pem,
            key_pem: secret_key().to_pem(),
        }
        .render();
        Samples { cert_der: leaf.der, csr_der, kubeconfig }
    })
}

/// Bytes changed the ways a file gets damaged: flipped, cut short, grown, replaced.
fn mutated(original: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len();
    prop_oneof![
        prop::collection::vec((0..len, any::<u8>()), 1..8).prop_map(move |flips| {
            let mut b = original.to_vec();
            for (i, x) in flips {
                b[i] = x;
            }
            b
        }),
        (0..len).prop_map(move |n| original[..n].to_vec()),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(move |tail| [original, &tail].concat()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn pem_of(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn certificates_in_der_or_pem_never_panic(der in mutated(samples().cert_der.as_slice())) {
        let _ = timed(|| CertInfo::from_der(&der));
        if let Err(e) = CertInfo::from_pem(&pem_of("CERTIFICATE", &der), Path::new("x.crt")) {
            assert_refusal_names(&e, "x.crt");
        }
    }

    #[test]
    fn a_request_that_verifies_says_what_its_key_signed(der in mutated(samples().csr_der.as_slice())) {
        let original = CertificateRequest::from_der(&samples().csr_der).unwrap();
        if let Ok(r) = timed(|| CertificateRequest::from_der(&der)) {
            if r.signature_ok {
                prop_assert_eq!((&r.cn, &r.orgs, &r.sans), (&original.cn, &original.orgs, &original.sans));
                prop_assert_eq!(&r.public_key_raw, &original.public_key_raw);
            }
        }
    }

    #[test]
    fn keys_never_panic_nor_show_their_material(
        der in mutated(pem::parse(secret_key().to_pem()).unwrap().into_contents().leak()),
        tag in prop::sample::select(vec!["EC PRIVATE KEY", "PRIVATE KEY", "RSA PRIVATE KEY", "CERTIFICATE"]),
    ) {
        if let Err(e) = timed(|| PrivateKey::from_pem(&pem_of(tag, &der), Path::new("x.key"))) {
            assert_refusal_names(&e, "x.key");
        }
    }

    #[test]
    fn kubeconfigs_never_panic_and_refusals_name_the_file(
        text in mutated(samples().kubeconfig.as_bytes()).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ) {
        if let Err(e) = timed(|| crate::x509::kubeconfig::parse(&text, Path::new("admin.conf"))) {
            assert_refusal_names(&e, "admin.conf");
        }
    }

    #[test]
    fn kubeconfigs_read_without_yaml_read_as_yaml_reads_them(
        text in mutated(samples().kubeconfig.as_bytes()).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ) {
        if let Some(fast) = crate::x509::kubeconfig::rendered(&text) {
            let yaml = crate::x509::kubeconfig::from_yaml(&text, Path::new("admin.conf"));
            prop_assert_eq!(format!("{:?}", Some(fast)), format!("{:?}", yaml.ok()));
        }
    }

    #[test]
    fn inspect_reads_any_file_or_names_it(
        bytes in prop_oneof![
            mutated(samples().cert_der.as_slice()),
            mutated(samples().kubeconfig.as_bytes()),
            mutated(secret_key().to_pem().as_bytes()),
        ],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        let at = time::OffsetDateTime::now_utc();
        match timed(|| crate::audit::inspect::read(&path, &crate::audit::inspect::Refs::Host, at)) {
            // JSON is data: what the file says, escaped as JSON escapes it (the table of it
            // passes `error::escape_controls`); never key material.
            Ok(report) => {
                let json = serde_json::to_string(&report).unwrap();
                assert!(!json.chars().any(|c| c < ' '), "{json}");
                assert_shown_safely(&crate::error::escape_controls(&json));
            }
            Err(e) => assert_refusal_names(&e, &path.display().to_string()),
        }
    }
}

mod signer {
    //! `approve` on CSR objects made of every identity, group, SAN, usage, requester and
    //! lifetime in play, against a real tree; every certificate it signs checked by an oracle.

    use super::*;
    use crate::x509::usage::ExtKeyUsage;
    use serde_json::{json, Value};

    const NODES: [(&str, &str); 3] = [("controlplane", "127.0.0.1"), ("node01", "127.0.0.2"), ("node02", "127.0.0.3")];
    const SIGNERS: [&str; 5] = [
        "kubernetes.io/kube-apiserver-client",
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
        "kubernetes.io/legacy-unknown",
        "example.com/other",
    ];
    const CNS: [&str; 9] = [
        "system:node:node01",
        "system:node:controlplane",
        "system:node:intruder",
        "system:node:",
        "system:kube-controller-manager",
        "kubernetes-admin",
        "alice",
        "",
        "kube-apiserver",
    ];
    const ORGS: [&str; 5] =
        ["system:nodes", "system:masters", "kubeadm:cluster-admins", "devs", "system:authenticated"];
    const SANS: [&str; 9] = [
        "node01",
        "127.0.0.2",
        "controlplane",
        "127.0.0.1",
        "node02",
        "kubernetes.default.svc",
        "10.96.0.1",
        "10.9.9.9",
        "node01.example.com",
    ];
    const DS: &str = "digital signature";
    const KE: &str = "key encipherment";
    const CLIENT: &str = "client auth";
    const SERVER: &str = "server auth";
    const USAGES: [&str; 6] =
        ["digital signature", "key encipherment", "client auth", "server auth", "cert sign", "code signing"];

    prop_compose! {
        fn request_object()(
            signer in prop_oneof![4 => prop::sample::select(SIGNERS[1..3].to_vec()), 1 => prop::sample::select(SIGNERS.to_vec())],
            cn in prop_oneof![3 => prop::sample::select(CNS[..3].to_vec()), 1 => prop::sample::select(CNS.to_vec())],
            orgs in prop_oneof![3 => Just(vec!["system:nodes"]), 1 => prop::sample::subsequence(ORGS.to_vec(), 0..=2)],
            sans in prop_oneof![
                2 => prop::sample::subsequence(SANS[..2].to_vec(), 0..=2),
                1 => prop::sample::subsequence(SANS[2..4].to_vec(), 0..=2),
                2 => prop::sample::subsequence(SANS.to_vec(), 0..=3),
            ],
            usages in prop_oneof![
                3 => prop::sample::select(vec![vec![DS, CLIENT], vec![DS, KE, CLIENT], vec![DS, SERVER], vec![DS, KE, SERVER]]),
                1 => prop::sample::subsequence(USAGES.to_vec(), 0..=4),
            ],
            ca in prop::bool::weighted(0.1),
            username in prop_oneof![
                4 => Just(None),
                1 => prop_oneof![Just(Value::Null), Just(json!("system:bootstrap:abcdef")), Just(json!("mallory")), Just(json!(7)),
                    prop::sample::select(CNS.to_vec()).prop_map(|c| json!(c))].prop_map(Some),
            ],
            bootstrapper in any::<bool>(),
            expiration in prop_oneof![
                4 => Just(Value::Null), 2 => (0i64..100_000_000).prop_map(|s| json!(s)), 1 => Just(json!("3600")), 1 => Just(json!(1.5)),
            ],
        ) -> Value {
            // `None`: made by the identity it asks for.
            let username = username.unwrap_or_else(|| json!(cn));
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::default();
            for o in &orgs {
                params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
            }
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
            params.subject_alt_names = sans.iter().map(|s| match s.parse() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName((*s).try_into().unwrap()),
            }).collect();
            if ca {
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            }
            let pem = params.serialize_request(&key).unwrap().pem().unwrap();
            let groups = if bootstrapper { json!(["system:bootstrappers", "system:authenticated"]) } else { json!(["system:authenticated"]) };
            json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "r"},
                "spec": {"signerName": signer, "request": B64.encode(pem), "usages": usages, "username": username,
                    "groups": groups, "expirationSeconds": expiration}})
        }
    }

    prop_compose! {
        /// What a kubelet asks for, with one thing (or none) changed.
        fn kubelet_request()(
            serving in any::<bool>(),
            node in prop::sample::select(vec!["node01", "controlplane", "intruder"]),
            sans in prop::sample::subsequence(SANS.to_vec(), 1..=3),
            change in 0usize..6,
            expiration in prop_oneof![Just(Value::Null), (600i64..100_000_000).prop_map(|s| json!(s))],
        ) -> Value {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name.push(rcgen::DnType::OrganizationName, if change == 1 { "system:masters" } else { "system:nodes" });
            let cn = format!("system:node:{node}");
            params.distinguished_name.push(rcgen::DnType::CommonName, cn.as_str());
            if serving || change == 2 {
                params.subject_alt_names = sans.iter().map(|s| match s.parse() {
                    Ok(ip) => rcgen::SanType::IpAddress(ip),
                    Err(_) => rcgen::SanType::DnsName((*s).try_into().unwrap()),
                }).collect();
            }
            let pem = params.serialize_request(&key).unwrap().pem().unwrap();
            let (signer, usages) = if serving {
                ("kubernetes.io/kubelet-serving", json!([DS, KE, SERVER]))
            } else {
                ("kubernetes.io/kube-apiserver-client-kubelet", json!([DS, CLIENT]))
            };
            let (username, groups) = match change {
                3 => (json!("system:bootstrap:abcdef"), json!(["system:bootstrappers"])),
                4 => (json!("system:node:node02"), json!(["system:nodes"])),
                _ => (json!(cn), json!(["system:nodes"])),
            };
            let usages = if change == 5 { json!([DS, KE, SERVER, CLIENT]) } else { usages };
            json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "k"},
                "spec": {"signerName": signer, "request": B64.encode(pem), "usages": usages, "username": username,
                    "groups": groups, "expirationSeconds": expiration}})
        }
    }

    /// Why a certificate must not have been signed, by the rules (reference §4 as kubepki
    /// tightens them), written apart from `approve`.
    fn forbidden(obj: &Value, cert: &CertInfo) -> Option<String> {
        let spec = &obj["spec"];
        let signer = spec["signerName"].as_str().unwrap_or_default();
        let username = spec["username"].as_str().unwrap_or_default();
        let groups: Vec<&str> = spec["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let node = cert.subject_cn.strip_prefix("system:node:").unwrap_or_default();
        let Some((_, address)) = NODES.iter().find(|(n, _)| *n == node) else {
            return Some(format!("CN {} is not a node of the cluster", cert.subject_cn));
        };
        if cert.orgs != ["system:nodes"] {
            return Some(format!("O {:?}", cert.orgs));
        }
        if cert.is_ca || cert.key_usage.iter().any(|u| u.is_a_cas()) {
            return Some("a CA".into());
        }
        let bootstrapper = username.starts_with("system:bootstrap:") && groups.contains(&"system:bootstrappers");
        let sans: Vec<String> = cert.sans.iter().map(|s| s.to_string()).collect();
        match signer {
            "kubernetes.io/kube-apiserver-client-kubelet" => {
                if username != cert.subject_cn && !bootstrapper {
                    return Some(format!("requested by {username}"));
                }
                if !sans.is_empty() || cert.ext_key_usage != [ExtKeyUsage::ClientAuth] {
                    return Some(format!("client: SANs {sans:?}, EKU {:?}", cert.ext_key_usage));
                }
            }
            "kubernetes.io/kubelet-serving" => {
                if username != cert.subject_cn {
                    return Some(format!("requested by {username}"));
                }
                let own = [format!("DNS:{node}"), format!("IP:{address}")];
                if sans.is_empty()
                    || sans.iter().any(|s| !own.contains(s))
                    || cert.ext_key_usage != [ExtKeyUsage::ServerAuth]
                {
                    return Some(format!("serving: SANs {sans:?}, EKU {:?}", cert.ext_key_usage));
                }
            }
            other => return Some(format!("signed for {other}")),
        }
        let lifetime = cert.not_after - cert.not_before - crate::x509::issue::BACKDATE;
        let asked = spec["expirationSeconds"].as_i64().map_or(time::Duration::MAX, time::Duration::seconds);
        if lifetime > time::Duration::days(365).min(asked) {
            return Some(format!("valid for {lifetime}"));
        }
        None
    }

    #[test]
    fn nothing_is_signed_that_the_rules_forbid() {
        let tree = default_tree();
        run(prop::collection::vec(prop_oneof![request_object(), kubelet_request()], 1..4), |objects| {
            let spec = ClusterSpec::builtin_default();
            let catalog = Catalog::build(&spec);
            let mut doc = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            let policies = [
                crate::operations::approve::Policy::KubeletClient,
                crate::operations::approve::Policy::KubeletServingKnownAddresses,
            ];
            let now = time::OffsetDateTime::now_utc();
            let report =
                timed(|| crate::operations::approve::approve(&spec, &catalog, tree.path(), &mut doc, &policies, now))
                    .unwrap();
            for (i, outcome) in report.requests.iter().enumerate() {
                let obj = &doc["items"][i];
                match &outcome.verdict {
                    crate::operations::approve::Verdict::Approved { .. } => {
                        let pem = B64.decode(obj["status"]["certificate"].as_str().unwrap()).unwrap();
                        let cert = CertInfo::from_pem(std::str::from_utf8(&pem).unwrap(), Path::new("issued")).unwrap();
                        prop_assert!(forbidden(obj, &cert).is_none(), "{:?}: {}", forbidden(obj, &cert), obj["spec"]);
                    }
                    crate::operations::approve::Verdict::Denied(d) => {
                        prop_assert!(!d.reason.is_empty() && !d.message.is_empty());
                        assert_shown_safely(&d.message);
                        prop_assert!(obj["status"].get("certificate").is_none());
                        if d.reason == "MalformedField" {
                            prop_assert!(d.message.starts_with("spec"), "{}", d.message);
                        }
                    }
                    crate::operations::approve::Verdict::Pending { why } => {
                        prop_assert!(!why.is_empty());
                        prop_assert!(obj["status"].get("certificate").is_none());
                    }
                    crate::operations::approve::Verdict::Decided { .. } => {
                        prop_assert!(false, "nothing was decided before")
                    }
                }
            }
            Ok(())
        });
    }
}

mod sign {
    //! `sign` on requests placed where the catalog's are, with every identity, group, SAN set,
    //! CA bit, CA and key beside them in play; every certificate it writes checked against the
    //! catalog by an oracle, and a refusal changes nothing and names the request.

    use super::*;
    use crate::model::spec::San;
    use crate::operations::external::RequestFiles;

    const ENTRIES: [&str; 5] =
        ["apiserver@controlplane", "admin.conf", "super-admin.conf", "front-proxy-client", "apiserver-etcd-client"];

    /// One case: which entry, and what of its request differs from the catalog's.
    #[derive(Debug, Clone)]
    struct Case {
        entry: &'static str,
        cn: Option<&'static str>,
        orgs: Option<Vec<&'static str>>,
        drop_san: bool,
        extra_san: bool,
        ca: bool,
        wrong_ca: bool,
        key: u8,
    }

    prop_compose! {
        fn case()(entry in prop::sample::select(ENTRIES.to_vec()),
                  cn in prop_oneof![3 => Just(None), 1 => prop::sample::select(vec!["kubernetes-admin", "kube-apiserver", "mallory"]).prop_map(Some)],
                  orgs in prop_oneof![3 => Just(None), 1 => prop::sample::select(vec![vec![], vec!["system:masters"], vec!["kubeadm:cluster-admins"]]).prop_map(Some)],
                  drop_san in prop::bool::weighted(0.15), extra_san in prop::bool::weighted(0.15), ca in prop::bool::weighted(0.1),
                  wrong_ca in prop::bool::weighted(0.1), key in prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)]) -> Case {
            Case { entry, cn, orgs, drop_san, extra_san, ca, wrong_ca, key }
        }
    }

    #[test]
    fn sign_writes_only_the_catalogs_certificate_for_the_key_beside_it() {
        let tree = default_tree();
        run(case(), |c| {
            let root = tree.path();
            let catalog = Catalog::build(&ClusterSpec::builtin_default());
            let entry = catalog.get(c.entry).unwrap();
            let leaf = entry.leaf().unwrap();
            let files = RequestFiles::of(entry).unwrap();
            let p = &leaf.profile;
            // The request.
            let pair = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::default();
            let orgs: Vec<String> =
                c.orgs.clone().map_or_else(|| p.subject.orgs.clone(), |o| o.iter().map(|s| s.to_string()).collect());
            for o in &orgs {
                params.distinguished_name.push(rcgen::DnType::OrganizationName, o.as_str());
            }
            params.distinguished_name.push(rcgen::DnType::CommonName, c.cn.unwrap_or(&p.subject.cn));
            let mut sans = p.sans.clone();
            if c.drop_san && !sans.is_empty() {
                sans.pop();
            }
            if c.extra_san {
                sans.push(San::Dns("evil.example.com".into()));
            }
            params.subject_alt_names = sans
                .iter()
                .map(|s| match s {
                    San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
                    San::Dns(d) => rcgen::SanType::DnsName(d.as_str().try_into().unwrap()),
                })
                .collect();
            if c.ca {
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            }
            std::fs::write(root.join(&files.csr), params.serialize_request(&pair).unwrap().pem().unwrap()).unwrap();
            // The key beside it: the request's, another, or none.
            let key_path = root.join(&files.key);
            let _ = std::fs::remove_file(&key_path);
            match c.key {
                0 => std::fs::write(&key_path, pair.serialize_pem()).unwrap(),
                1 => std::fs::write(&key_path, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap(),
                _ => {}
            }
            let ca = if c.wrong_ca { "etcd-ca" } else { leaf.issuer.as_str() };
            let cert_path = root.join(&files.cert);
            let before = std::fs::read(&cert_path).ok();
            let now = time::OffsetDateTime::now_utc();
            match timed(|| {
                crate::operations::external::sign_csrs(&catalog, root, ca, &[root.join(&files.csr)], true, now)
            }) {
                Ok(_) => {
                    let cert = CertInfo::from_pem(&std::fs::read_to_string(&cert_path).unwrap(), &cert_path).unwrap();
                    let set = |v: &[San]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
                    prop_assert_eq!(&cert.subject_cn, &p.subject.cn);
                    prop_assert_eq!(&cert.orgs, &p.subject.orgs);
                    prop_assert_eq!(set(&cert.sans), set(&p.sans));
                    prop_assert_eq!(&cert.ext_key_usage, &p.ext_key_usage);
                    prop_assert!(!cert.is_ca && !cert.key_usage.iter().any(|u| u.is_a_cas()));
                    prop_assert!(!cert.orgs.iter().any(|o| o == "system:masters") || c.entry == "super-admin.conf");
                    prop_assert_eq!(&cert.public_key_raw, &pair.public_key_raw().to_vec(), "for the key beside it");
                    prop_assert_eq!(c.key, 0);
                    prop_assert_eq!(ca, leaf.issuer.as_str());
                }
                Err(e) => {
                    let shown = e.to_string();
                    prop_assert!(
                        shown.contains(&files.csr.display().to_string()) || shown.contains("is not a CA"),
                        "{}",
                        shown
                    );
                    assert_shown_safely(&shown);
                    prop_assert_eq!(std::fs::read(&cert_path).ok(), before, "nothing written");
                }
            }
            Ok(())
        });
    }
}

mod explain {
    //! `explain` on texts made of the messages real clients and servers print, mixed with any
    //! text: no panic, each case bounded, every explanation said in words; with a tree, tied
    //! to it.

    use super::*;
    use crate::audit::explain::{explain, recognise, TreeView};

    const MESSAGES: [&str; 14] = [
        "x509: certificate is valid for kubernetes, kubernetes.default, 10.96.0.1, not 10.0.0.9",
        "x509: certificate signed by unknown authority",
        "remote error: tls: unknown certificate authority",
        "remote error: tls: unsupported certificate",
        "remote error: tls: bad certificate",
        "tls: failed to verify client certificate: x509: certificate has expired or is not yet valid",
        "x509: certificate has expired or is not yet valid: current time 2026-01-01T00:00:00Z is after 2025-01-01T00:00:00Z",
        "verify error:num=20:unable to get local issuer certificate",
        "verify error:num=10:certificate has expired",
        "x509: cannot validate certificate for 127.0.0.2 because it doesn't contain any IP SANs",
        "rejected connection from \"127.0.0.1:5000\" (error \"tls: failed to verify client certificate: x509: certificate specifies an incompatible key usage\")",
        "context deadline exceeded",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain",
        "curl: (60) SSL certificate problem: unable to get local issuer certificate",
    ];

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(MESSAGES.to_vec()).prop_map(str::to_string),
            1 => value(),
            1 => "[ -~]{0,80}",
        ]
    }

    #[test]
    fn any_text_is_explained_or_passed_over_in_bounded_time() {
        let tree = default_tree();
        let spec = ClusterSpec::builtin_default();
        let catalog = Catalog::build(&spec);
        let topology = crate::model::topology::Topology::build(&spec, &catalog);
        let inventory = crate::disk::inventory::Inventory::load(tree.path(), &catalog);
        let at = time::OffsetDateTime::now_utc();
        let report = crate::audit::verify::verify(
            &spec,
            &catalog,
            &topology,
            &inventory,
            &crate::audit::verify::VerifyOptions::at(at),
        );
        let view = TreeView { catalog: &catalog, topology: &topology, inventory: &inventory, report: &report };
        let texts = prop::collection::vec((piece(), prop::sample::select(vec![" ", "\n", ": ", "\r\n", ""])), 0..12)
            .prop_map(|parts| parts.into_iter().map(|(p, sep)| p + sep).collect::<String>());
        run(texts, |text| {
            let messages = timed(|| recognise(&text));
            prop_assert!(messages.len() <= text.len() / 8 + 1, "{} messages in {} bytes", messages.len(), text.len());
            for explained in timed(|| explain(messages.clone(), None)).iter().chain(&explain(messages, Some(&view))) {
                prop_assert!(!explained.explanation.is_empty());
                // Explanations quote the message's evidence (a host, a time): bounded by the text.
                prop_assert!(explained.explanation.len() <= 2048 + 2 * text.len(), "{}", explained.explanation.len());
                for piece in key_pieces() {
                    prop_assert!(!serde_json::to_string(explained).unwrap().contains(&piece));
                }
            }
            Ok(())
        });
    }
}
