//! `approve`: Kubernetes CertificateSigningRequest objects decided by their signer's rules and
//! the policies given, signed by the tree's cluster CA, checked with openssl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::support::{run, TestEnv};

const CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const SERVING: &str = "kubernetes.io/kubelet-serving";

/// A PEM request made by openssl with a new P-256 key.
fn openssl_csr(env: &TestEnv, name: &str, subject: &str, sans: Option<&str>) -> String {
    let out = env.path().join(format!("{name}.csr"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(env.path().join(format!("{name}.key")))
        .args(["-subj", subject, "-out"])
        .arg(&out);
    if let Some(s) = sans {
        cmd.args(["-addext", &format!("subjectAltName={s}")]);
    }
    let (ok, text) = run(&mut cmd);
    assert!(ok, "{text}");
    std::fs::read_to_string(out).unwrap()
}

/// A CertificateSigningRequest as `kubectl get csr -o yaml` shows it.
fn object(name: &str, signer: &str, pem: &str, usages: &[&str], expiration: Option<u64>) -> Value {
    let mut spec = json!({
        // As a kubelet's TLS bootstrap makes them.
        "groups": ["system:bootstrappers", "system:authenticated"],
        "request": B64.encode(pem),
        "signerName": signer,
        "usages": usages,
        "username": "system:bootstrap:abcdef",
    });
    if let Some(e) = expiration {
        spec["expirationSeconds"] = json!(e);
    }
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": spec,
        "status": {},
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
}

/// Run `approve` on a document written as YAML; returns (output, objects written, stderr).
fn approve(env: &TestEnv, tree: &Path, doc: &Value, extra: &[&str]) -> (Output, Value, String) {
    let file = env.write("csrs.yaml", &serde_yaml_ng::to_string(doc).unwrap());
    let mut args = vec!["approve", file.to_str().unwrap(), "--dir", tree.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = env.kubepki(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(2), "approve could not run: {stderr}");
    let written: Value = serde_yaml_ng::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    (out, written, stderr)
}

/// The certificate of an approved object, written to a file.
fn certificate(env: &TestEnv, obj: &Value, name: &str) -> PathBuf {
    let pem = B64.decode(obj["status"]["certificate"].as_str().expect("a certificate")).unwrap();
    let path = env.path().join(format!("{name}.crt"));
    std::fs::write(&path, pem).unwrap();
    path
}

fn openssl_text(args: &[&str], cert: &Path) -> String {
    let (ok, text) = run(Command::new("openssl").args(args).arg(cert));
    assert!(ok, "{text}");
    text
}

fn condition(obj: &Value) -> &Value {
    let conditions = obj["status"]["conditions"].as_array().expect("conditions");
    assert_eq!(conditions.len(), 1, "{obj}");
    &conditions[0]
}

#[test]
fn a_valid_kubelet_client_request_is_approved_and_openssl_verifies_it() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let pem = openssl_csr(&env, "kubelet", "/O=system:nodes/CN=system:node:node01", None);
    let doc = object("on", CLIENT_KUBELET, &pem, &["digital signature", "key encipherment", "client auth"], None);
    let (out, written, stderr) = approve(&env, &tree, &doc, &["--approve", "kubelet-client"]);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("name: \"on\""), "a YAML 1.1 reader must see a string:\n{stdout}");
    assert!(stdout.contains("status: \"True\""), "{stdout}");
    assert_eq!(written["metadata"]["name"], "on");
    assert_eq!(written["spec"], doc["spec"], "the request itself is untouched");
    let c = condition(&written);
    assert_eq!(
        (c["type"].as_str(), c["status"].as_str(), c["reason"].as_str()),
        (Some("Approved"), Some("True"), Some("KubepkiApprove"))
    );
    assert!(c["message"].as_str().unwrap().contains("policy kubelet-client"), "{c}");

    let cert = certificate(&env, &written, "kubelet");
    let ca = tree.join("pki/ca.crt");
    let (ok, text) = run(Command::new("openssl").arg("verify").arg("-CAfile").arg(&ca).arg(&cert));
    assert!(ok, "openssl verify: {text}");
    let subject = openssl_text(&["x509", "-noout", "-subject", "-in"], &cert);
    assert!(subject.contains("O = system:nodes, CN = system:node:node01"), "{subject}");
    let ext = openssl_text(&["x509", "-noout", "-ext", "basicConstraints,extendedKeyUsage", "-in"], &cert);
    assert!(ext.contains("CA:FALSE") && ext.contains("TLS Web Client Authentication"), "{ext}");
    // Issued for the request's key.
    let key = kubepki::x509::issue::PrivateKey::from_pem(
        &std::fs::read_to_string(env.path().join("kubelet.key")).unwrap(),
        Path::new("k"),
    )
    .unwrap();
    let info = kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&cert).unwrap(), &cert).unwrap();
    assert!(key.matches(&info));
    assert!(
        stderr.contains(
            "on (kubernetes.io/kube-apiserver-client-kubelet, system:node:node01): approved (policy kubelet-client)"
        ),
        "{stderr}"
    );
    let log: Vec<_> =
        kubepki::disk::issuance::read(&tree).unwrap().into_iter().filter(|r| r.command != "init").collect();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].command.as_str(), log[0].serial.as_str()), ("approve", info.serial.as_str()));
}

#[test]
fn rules_broken_are_denied_with_the_rule_in_a_list() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let masters = openssl_csr(&env, "masters", "/O=system:masters/CN=mallory", None);
    let with_sans = openssl_csr(&env, "sans", "/O=system:nodes/CN=system:node:node01", Some("DNS:node01"));
    let valid = openssl_csr(&env, "valid", "/O=system:nodes/CN=system:node:node02", None);
    let doc = list(vec![
        object("masters", CLIENT, &masters, &["digital signature", "client auth"], None),
        object("yes", CLIENT_KUBELET, &with_sans, &["digital signature", "client auth"], None),
        object("fine", CLIENT_KUBELET, &valid, &["digital signature", "client auth"], None),
    ]);
    // The valid request is approved: only the rules stop these two.
    let (out, written, stderr) = approve(&env, &tree, &doc, &["--approve", "kubelet-client"]);
    assert_eq!(out.status.code(), Some(1), "some were denied: {stderr}");
    assert_eq!(written["kind"], "List");
    let items = written["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);

    let c = condition(&items[0]);
    assert_eq!((c["type"].as_str(), c["reason"].as_str()), (Some("Denied"), Some("SystemMasters")));
    assert!(c["message"].as_str().unwrap().contains("never O system:masters"), "{c}");
    assert!(items[0]["status"].get("certificate").is_none());

    assert_eq!(items[1]["metadata"]["name"], "yes");
    let c = condition(&items[1]);
    assert_eq!((c["type"].as_str(), c["reason"].as_str()), (Some("Denied"), Some("KubeletClientSANs")));
    assert!(c["message"].as_str().unwrap().contains("no SANs allowed; got DNS:node01"), "{c}");
    assert!(items[1]["status"].get("certificate").is_none());

    assert_eq!(condition(&items[2])["type"], "Approved");
    assert!(
        stderr.contains("masters (kubernetes.io/kube-apiserver-client, mallory): DENIED SystemMasters"),
        "{stderr}"
    );
    assert!(stderr.contains("3 requests: 1 approved, 2 denied, 0 left pending"), "{stderr}");
    let approved = kubepki::disk::issuance::read(&tree).unwrap().into_iter().filter(|r| r.command == "approve").count();
    assert_eq!(approved, 1, "only the approved one is logged");
}

#[test]
fn kubelet_serving_with_an_unknown_address_is_left_pending() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let usages = ["digital signature", "key encipherment", "server auth"];
    let known = openssl_csr(&env, "known", "/O=system:nodes/CN=system:node:node01", Some("DNS:node01,IP:127.0.0.2"));
    let unknown = openssl_csr(&env, "unknown", "/O=system:nodes/CN=system:node:node01", Some("DNS:node01,IP:10.9.9.9"));
    let mut known_obj = object("known", SERVING, &known, &usages, None);
    known_obj["spec"]["username"] = json!("system:node:node01");
    known_obj["spec"]["groups"] = json!(["system:nodes", "system:authenticated"]);
    let mut unknown_obj = object("unknown", SERVING, &unknown, &usages, None);
    unknown_obj["spec"]["username"] = json!("system:node:node01");
    // The typed list the API returns: items without kind.
    let mut items = vec![known_obj, unknown_obj.clone()];
    for i in &mut items {
        i.as_object_mut().unwrap().remove("kind");
    }
    let doc = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequestList", "items": items});

    let (out, written, stderr) = approve(&env, &tree, &doc, &["--approve", "kubelet-serving-known-addresses"]);
    assert_eq!(out.status.code(), Some(1), "one is left pending: {stderr}");
    assert_eq!(written["kind"], "CertificateSigningRequestList");
    assert_eq!(condition(&written["items"][0])["type"], "Approved");
    let cert = certificate(&env, &written["items"][0], "serving");
    let sans = openssl_text(&["x509", "-noout", "-ext", "subjectAltName", "-in"], &cert);
    assert!(sans.contains("DNS:node01") && sans.contains("IP Address:127.0.0.2"), "{sans}");
    assert_eq!(written["items"][1], doc["items"][1], "left pending: untouched");
    assert!(stderr.contains("unknown (kubernetes.io/kubelet-serving, system:node:node01): left pending: kubelet-serving-known-addresses: IP:10.9.9.9 not known for node01"), "{stderr}");

    // Without any policy nothing is approved.
    let (out, written, stderr) = approve(&env, &tree, &unknown_obj, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(written, unknown_obj);
    assert!(stderr.contains("left pending: no --approve policy given"), "{stderr}");
}

#[test]
fn expiration_seconds_bounds_the_lifetime_and_json_stays_json() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let pem = openssl_csr(&env, "short", "/O=system:nodes/CN=system:node:node02", None);
    let doc = object("short", CLIENT_KUBELET, &pem, &["digital signature", "client auth"], Some(3600));
    let file = env.write("csr.json", &serde_json::to_string_pretty(&doc).unwrap());
    let out_file = env.path().join("approved.json");
    let out = env.kubepki(&[
        "approve",
        file.to_str().unwrap(),
        "--dir",
        tree.to_str().unwrap(),
        "--approve",
        "kubelet-client",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the objects go to --out");
    let text = std::fs::read_to_string(&out_file).unwrap();
    let written: Value = serde_json::from_str(&text).expect("JSON in, JSON out");
    assert_eq!(written["kind"], "CertificateSigningRequest");
    let cert = certificate(&env, &written, "short");
    let info = kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&cert).unwrap(), &cert).unwrap();
    assert_eq!(info.not_after - info.not_before, time::Duration::hours(1) + kubepki::x509::issue::BACKDATE);

    // Without expirationSeconds: the cluster's leaf validity.
    let mut long = doc.clone();
    long["spec"].as_object_mut().unwrap().remove("expirationSeconds");
    let (_, written, stderr) = approve(&env, &tree, &long, &["--approve", "kubelet-client", "-o", "yaml"]);
    let cert = certificate(&env, &written, "long");
    let info = kubepki::x509::certinfo::CertInfo::from_pem(&std::fs::read_to_string(&cert).unwrap(), &cert).unwrap();
    assert_eq!(
        info.not_after - info.not_before,
        time::Duration::days(365) + kubepki::x509::issue::BACKDATE,
        "{stderr}"
    );

    // Below Kubernetes' minimum of 600 s.
    let mut short = doc.clone();
    short["spec"]["expirationSeconds"] = json!(599);
    let (_, written, _) = approve(&env, &tree, &short, &["--approve", "kubelet-client"]);
    assert_eq!(condition(&written)["reason"], "ExpirationTooShort");
}

#[test]
fn a_request_whose_signature_does_not_verify_is_denied() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let pem = openssl_csr(&env, "bad", "/O=system:nodes/CN=system:node:node01", None);
    let mut der = pem::parse(&pem).unwrap().into_contents();
    *der.last_mut().unwrap() ^= 0x01;
    let bad = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let doc = object("bad", CLIENT_KUBELET, &bad, &["digital signature", "client auth"], None);
    let (out, written, stderr) = approve(&env, &tree, &doc, &["--approve", "kubelet-client"]);
    assert_eq!(out.status.code(), Some(1));
    let c = condition(&written);
    assert_eq!((c["type"].as_str(), c["reason"].as_str()), (Some("Denied"), Some("BadSignature")));
    assert!(written["status"].get("certificate").is_none());
    assert!(stderr.contains("DENIED BadSignature"), "{stderr}");
    assert!(kubepki::disk::issuance::read(&tree).unwrap().iter().all(|r| r.command == "init"));

    // Already decided objects are left alone.
    let (out, again, stderr) = approve(&env, &tree, &written, &["--approve", "kubelet-client"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(again, written);
    assert!(stderr.contains("untouched: already denied"), "{stderr}");
}

#[test]
fn what_is_not_a_csr_object_is_refused() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let file = env.write("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n");
    let out = env.kubepki(&["approve", file.to_str().unwrap(), "--dir", tree.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kind Pod, expected CertificateSigningRequest"), "{stderr}");
}

/// Issue 12, point 1: every request the issue found signed, in one list, under both policies.
/// None is signed; each is denied by its rule, naming it (or, for a stranger, left pending).
#[test]
fn what_a_careful_admin_would_not_sign_is_never_signed() {
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let node01 = "/O=system:nodes/CN=system:node:node01";
    let serving = ["digital signature", "key encipherment", "server auth"];
    let client = ["digital signature", "client auth"];
    let by = |mut o: Value, user: &str| {
        o["spec"]["username"] = json!(user);
        o["spec"]["groups"] = json!(["system:authenticated"]);
        o
    };
    let apiserver_sans = "DNS:node01,DNS:kubernetes.default.svc,IP:10.96.0.1,IP:127.0.0.1";
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            by(
                object("impersonate", SERVING, &openssl_csr(&env, "a", node01, Some(apiserver_sans)), &serving, None),
                "system:node:node01",
            ),
            "ServingSANsOfOthers",
            "DNS:kubernetes.default.svc (of apiserver@controlplane)",
        ),
        (
            by(
                object(
                    "other-node",
                    SERVING,
                    &openssl_csr(&env, "b", node01, Some("DNS:node02,IP:127.0.0.3")),
                    &serving,
                    None,
                ),
                "system:node:node01",
            ),
            "ServingSANsOfOthers",
            "DNS:node02 (of kubelet-serving@node02)",
        ),
        (
            by(
                object(
                    "legacy",
                    "kubernetes.io/legacy-unknown",
                    &openssl_csr(&env, "c", "/CN=alice", None),
                    &client,
                    None,
                ),
                "alice",
            ),
            "LegacyUnknown",
            "never signs",
        ),
        (
            by(
                object(
                    "cluster-admins",
                    CLIENT,
                    &openssl_csr(&env, "d", "/O=kubeadm:cluster-admins/CN=alice", None),
                    &client,
                    None,
                ),
                "alice",
            ),
            "ReservedGroup",
            "never O 'kubeadm:cluster-admins'",
        ),
        (
            by(
                object(
                    "kcm",
                    CLIENT,
                    &openssl_csr(&env, "e", "/CN=system:kube-controller-manager", None),
                    &client,
                    None,
                ),
                "system:kube-controller-manager",
            ),
            "ReservedIdentity",
            "never CN 'system:kube-controller-manager'",
        ),
        (
            by(
                object("node-via-client", CLIENT, &openssl_csr(&env, "f", node01, None), &client, None),
                "system:node:node01",
            ),
            "ReservedIdentity",
            "never CN 'system:node:node01'",
        ),
        (
            by(
                object("not-the-node", SERVING, &openssl_csr(&env, "g", node01, Some("DNS:node01")), &serving, None),
                "system:node:node02",
            ),
            "RequesterMismatch",
            "spec.username is 'system:node:node02'",
        ),
        (
            by(
                object("not-the-node-client", CLIENT_KUBELET, &openssl_csr(&env, "h", node01, None), &client, None),
                "mallory",
            ),
            "RequesterMismatch",
            "made by the node itself",
        ),
        (
            {
                let mut o =
                    object("no-username", SERVING, &openssl_csr(&env, "i", node01, Some("DNS:node01")), &serving, None);
                o["spec"].as_object_mut().unwrap().remove("username");
                o
            },
            "MalformedField",
            "spec.username: required",
        ),
        (
            {
                let mut o = by(
                    object("string-expiry", CLIENT_KUBELET, &openssl_csr(&env, "j", node01, None), &client, None),
                    "system:node:node01",
                );
                o["spec"]["expirationSeconds"] = json!("1");
                o
            },
            "MalformedField",
            "spec.expirationSeconds: a string (\"1\")",
        ),
    ];
    let stranger = by(
        object(
            "stranger",
            CLIENT_KUBELET,
            &openssl_csr(&env, "k", "/O=system:nodes/CN=system:node:intruder", None),
            &client,
            None,
        ),
        "system:node:intruder",
    );
    let mut items: Vec<Value> = cases.iter().map(|(o, _, _)| o.clone()).collect();
    items.push(stranger);
    let doc = list(items);
    let (out, written, stderr) =
        approve(&env, &tree, &doc, &["--approve", "kubelet-client", "--approve", "kubelet-serving-known-addresses"]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let items = written["items"].as_array().unwrap();
    for (i, (_, reason, says)) in cases.iter().enumerate() {
        let c = condition(&items[i]);
        let name = items[i]["metadata"]["name"].as_str().unwrap();
        assert_eq!((c["type"].as_str(), c["reason"].as_str()), (Some("Denied"), Some(*reason)), "{name}: {c}");
        assert!(c["message"].as_str().unwrap().contains(says), "{name}: {c}");
        assert!(items[i]["status"].get("certificate").is_none(), "{name}");
    }
    assert_eq!(items[cases.len()], doc["items"][cases.len()], "a node not in the cluster: left pending, untouched");
    assert!(stderr.contains("left pending: kubelet-client: intruder is not a node of the cluster"), "{stderr}");
    assert!(stderr.contains("11 requests: 0 approved, 10 denied, 1 left pending"), "{stderr}");
    assert!(kubepki::disk::issuance::read(&tree).unwrap().iter().all(|r| r.command == "init"), "nothing signed");

    // There is no policy that approves every valid request.
    let file = env.write("csrs.yaml", &serde_yaml_ng::to_string(&doc).unwrap());
    let out =
        env.kubepki(&["approve", file.to_str().unwrap(), "--dir", tree.to_str().unwrap(), "--approve", "all-valid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'all-valid'"));
    assert!(out.stdout.is_empty());
}
