//! One JSON style: every command's `-o json` parses, every key is camelCase, every time is
//! RFC 3339 UTC; `verify` puts its summary first and links name findings by stable ids.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use crate::support::{kubeadm_fixture, run, TestEnv};

/// Maps whose keys are data (entry ids, Kubernetes annotations), not field names.
const DATA_MAPS: [&str; 3] = ["certSANs", "annotations", "labels"];

/// Every key below `v` that is not camelCase, and every time-looking string that is not an
/// RFC 3339 UTC time to the second, with where it is.
fn style_faults(v: &Value, at: &str, faults: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let camel = k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && k.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    faults.push(format!("{at}: key {k:?} is not camelCase"));
                }
                if !DATA_MAPS.contains(&k.as_str()) {
                    style_faults(x, &format!("{at}.{k}"), faults);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| style_faults(x, &format!("{at}[]"), faults)),
        Value::String(s) => {
            let date = s.len() >= 10
                && s.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        *b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if date {
                let ok = time::OffsetDateTime::parse(s, &Rfc3339).is_ok() && s.ends_with('Z') && !s.contains('.');
                if !ok {
                    faults.push(format!("{at}: {s:?} is not an RFC 3339 UTC time"));
                }
            }
        }
        _ => {}
    }
}

/// A PEM request made by openssl with a new P-256 key.
fn openssl_csr(env: &TestEnv, subject: &str) -> String {
    let out = env.path().join("kubelet.csr");
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(env.path().join("kubelet.key"))
        .args(["-subj", subject, "-out"])
        .arg(&out));
    assert!(ok, "{text}");
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn every_command_speaks_one_json_style() {
    use base64::Engine;
    let env = TestEnv::new();
    let tree = env.path().join("t");
    let t = tree.to_str().unwrap();
    let mut outputs: Vec<(String, Value)> = Vec::new();
    let mut json = |args: &[&str]| -> Value {
        let out = env.kubepki(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(2), "kubepki {args:?}: {err}");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("kubepki {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        outputs.push((args.join(" "), v.clone()));
        v
    };
    json(&["init", "--dir", t, "-o", "json"]);
    json(&["plan", "-o", "json"]);
    json(&["verify", "--dir", t, "-o", "json", "--live"]);
    json(&["check", "--dir", t, "-o", "json"]);
    let ca = tree.join("pki/ca.crt");
    let (admin, key) = (tree.join("admin.conf"), tree.join("pki/apiserver.key"));
    json(&["inspect", ca.to_str().unwrap(), admin.to_str().unwrap(), key.to_str().unwrap(), "-o", "json"]);
    json(&["version", "-o", "json"]);
    json(&[
        "explain",
        "-o",
        "json",
        "--dir",
        t,
        "x509: certificate has expired or is not yet valid: current time 2026-01-01T00:00:00Z is after 2025-12-01T00:00:00Z",
    ]);
    json(&["renew", "apiserver", "--dir", t, "--dry-run", "-o", "json"]);
    json(&["renew", "apiserver", "admin.conf", "--dir", t, "-o", "json"]);
    json(&["san", "add", "apiserver", "10.9.9.9", "--dir", t, "--dry-run", "-o", "json"]);
    json(&["san", "add", "apiserver", "10.9.9.9", "--dir", t, "-o", "json"]);
    json(&["san", "remove", "apiserver", "10.9.9.9", "--dir", t, "-o", "json"]);
    json(&["node", "add", "w9", "--role", "worker", "--ip", "127.0.0.9", "--dir", t, "--dry-run", "-o", "json"]);
    json(&["node", "add", "w9", "--role", "worker", "--ip", "127.0.0.9", "--dir", t, "-o", "json"]);
    json(&["node", "remove", "w9", "--dir", t, "--dry-run", "-o", "json"]);
    let removed = json(&["node", "remove", "w9", "--dir", t, "-o", "json"]);
    assert!(removed["stillValid"].as_array().is_some_and(|v| !v.is_empty()), "{removed:#}");
    json(&["rotate-ca", "front-proxy-ca", "start", "--dir", t, "-o", "json"]);
    json(&["rotate-ca", "front-proxy-ca", "reissue", "--dir", t, "--dry-run", "-o", "json"]);
    json(&["rotate-ca", "status", "--dir", t, "-o", "json"]);
    json(&["rotate-ca", "front-proxy-ca", "reissue", "--dir", t, "-o", "json"]);
    json(&["rotate-ca", "front-proxy-ca", "finish", "--dir", t, "-o", "json"]);
    let backups = json(&["backup", "list", "--dir", t, "-o", "json"]);
    let first = backups[0]["id"].as_str().unwrap().to_string();
    json(&["backup", "restore", &first, "--dir", t, "--dry-run", "-o", "json"]);
    json(&["backup", "restore", &first, "--dir", t, "-o", "json"]);

    // The outside-CA flow, in a folder of its own holding the cluster CA.
    let ext = env.path().join("ext");
    let e = ext.to_str().unwrap();
    json(&["csr", "--dir", e, "-o", "json"]);
    for f in ["pki/ca.crt", "pki/ca.key"] {
        std::fs::copy(tree.join(f), ext.join(f)).unwrap();
    }
    let request = ext.join("pki/apiserver.csr");
    json(&["sign", "--dir", e, "--ca", "ca", request.to_str().unwrap(), "-o", "json"]);
    json(&["import", "--dir", e, "-o", "json"]);

    // approve writes Kubernetes' own objects: the same style.
    let pem = openssl_csr(&env, "/O=system:nodes/CN=system:node:node01");
    let object = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "node01-client", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {
            "groups": ["system:bootstrappers", "system:authenticated"],
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
            "username": "system:bootstrap:abcdef",
        },
        "status": {},
    });
    let file = env.write("csr.json", &object.to_string());
    json(&["approve", file.to_str().unwrap(), "--dir", t, "--approve", "kubelet-client", "-o", "json"]);

    let mut faults = Vec::new();
    for (command, v) in &outputs {
        style_faults(v, command, &mut faults);
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
    // The walk sees the times it must check.
    let all = outputs.iter().map(|(_, v)| v.to_string()).collect::<String>();
    for key in ["\"notAfter\"", "\"notBefore\"", "\"at\"", "\"expires\"", "\"time\"", "\"started\""] {
        assert!(all.contains(key), "no {key} in any output");
    }
}

/// The kubeadm tree with two settings of one manifest removed: two findings of one code on one
/// file, besides the fixture's own (loose key modes, one unverified link, expired leaves).
fn tree_with_twin_findings(env: &TestEnv) -> std::path::PathBuf {
    let dir = kubeadm_fixture(env, false);
    let path = dir.join("manifests/kube-apiserver.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: String = text
        .lines()
        .filter(|l| !l.contains("--tls-cert-file=") && !l.contains("--tls-private-key-file="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(cut, text);
    std::fs::write(&path, cut).unwrap();
    dir
}

fn verify_json(env: &TestEnv, dir: &Path) -> (String, Value) {
    let out = env.kubepki(&["verify", "--dir", dir.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let v = serde_json::from_str(&text).unwrap();
    (text, v)
}

#[test]
fn verify_json_opens_with_its_summary_and_links_name_findings_by_stable_ids() {
    let env = TestEnv::new();
    let dir = tree_with_twin_findings(&env);
    let (text, v) = verify_json(&env, &dir);
    assert!(text.starts_with("{\n  \"summary\": {\n    \"links\": {"), "{text}");

    let findings = v["findings"].as_array().unwrap();
    let links = v["links"].as_array().unwrap();
    let count = |list: &[Value], key: &str, value: &str| list.iter().filter(|x| x[key] == value).count();
    let s = &v["summary"];
    assert_eq!(s["links"]["total"], links.len());
    for status in ["ok", "warning", "broken", "unverified", "unknown"] {
        assert_eq!(s["links"][status], count(links, "status", status), "{status}");
    }
    for severity in ["error", "warning", "info"] {
        assert_eq!(s["findings"][severity], count(findings, "severity", severity), "{severity}");
    }
    assert!(s["links"]["broken"].as_u64().unwrap() > 0 && s["findings"]["error"].as_u64().unwrap() > 0, "{s}");

    // Unique, readable, and what each link names is there.
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:#?}");
    assert!(ids.contains(&"expired:pki/apiserver.crt"), "{ids:#?}");
    let twins: Vec<&&str> =
        ids.iter().filter(|i| i.starts_with("setting-unset:manifests/kube-apiserver.yaml:")).collect();
    assert_eq!(twins.len(), 2, "{ids:#?}");
    let mut named = 0;
    for l in links {
        for id in l["findings"].as_array().unwrap() {
            assert!(id.is_string() && unique.contains(id.as_str().unwrap()), "{l}: {id} names no finding");
            named += 1;
        }
    }
    assert!(named > 0);

    // The same tree again: the same ids, and links name the same ones.
    let (_, again) = verify_json(&env, &dir);
    let ids_again: Vec<&str> =
        again["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ids_again);
    assert_eq!(v["links"], again["links"]);
}
