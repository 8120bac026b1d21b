//! The operator's tools: shell completions and man pages from the clap definitions, `version`,
//! and `check -o prometheus` read by Prometheus' own Python parser.

use std::path::Path;
use std::process::Command;

use crate::support::{kubeadm_fixture, run, TestEnv};

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bash_completes_commands_and_options() {
    let env = TestEnv::new();
    let script = env.path().join("kubepki.bash");
    std::fs::write(&script, env.kubepki_ok(&["completions", "bash"])).unwrap();
    let complete = |words: &str| {
        let (ok, out) = run(Command::new("bash").arg("-c").arg(format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _kubepki kubepki \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\"",
            arg(&script)
        )));
        assert!(ok, "{out}");
        out
    };
    let commands = complete("kubepki ''");
    for want in ["explain", "verify", "completions", "man", "version", "check"] {
        assert!(commands.split_whitespace().any(|w| w == want), "{want} not completed: {commands}");
    }
    let options = complete("kubepki verify --");
    for want in ["--endpoint", "--kubeconfig", "--context", "--cacert", "--cert", "--key"] {
        assert!(options.split_whitespace().any(|w| w == want), "{want} not completed: {options}");
    }
    for shell in ["zsh", "fish"] {
        let text = env.kubepki_ok(&["completions", shell]);
        assert!(text.contains("explain") && text.contains("--kubeconfig"), "{shell}: {text}");
    }
    assert_eq!(env.kubepki(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_for_kubepki_and_every_command() {
    let env = TestEnv::new();
    let page = env.kubepki_ok(&["man"]);
    assert!(page.contains(".TH kubepki 1") && page.contains("explain"), "{page}");
    let dir = env.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    env.kubepki_ok(&["man", "--out", arg(&dir)]);
    for command in ["verify", "explain", "check", "init", "completions", "version"] {
        let text = std::fs::read_to_string(dir.join(format!("kubepki-{command}.1"))).unwrap();
        assert!(text.contains(&format!(".TH kubepki-{command} 1")), "{command}: {text}");
    }
    let verify = std::fs::read_to_string(dir.join("kubepki-verify.1")).unwrap();
    assert!(verify.contains("kubeconfig") && verify.contains("context"), "{verify}");
    let out = env.kubepki(&["man", "--out", "no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir"));
}

#[test]
fn version_names_the_commit_and_the_crypto_backend() {
    let env = TestEnv::new();
    let v: serde_json::Value = serde_json::from_str(&env.kubepki_ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["cryptoBackend"], "aws-lc-rs");
    let (ok, head) =
        run(Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"]));
    if ok {
        let commit = v["commit"].as_str().unwrap();
        assert!(commit.starts_with(head.trim()), "commit {commit}, HEAD {head}");
    }
    let text = env.kubepki_ok(&["version"]);
    assert!(
        text.starts_with(&format!("kubepki {}\n", env!("CARGO_PKG_VERSION"))) && text.contains("aws-lc-rs"),
        "{text}"
    );
}

/// Parse the metrics with prometheus_client's text parser; one JSON line per sample.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
"#;

#[test]
fn check_prometheus_is_x509_certificate_exporters_format() {
    let env = TestEnv::new();
    // The real kubeadm v1.29 tree: leaves expired 2025-02-03, CAs valid to 2034.
    let tree = kubeadm_fixture(&env, false);
    let metrics = env.path().join("kubepki.prom");
    let out =
        env.kubepki(&["check", "--dir", arg(&tree), "--at", "2026-01-01", "-o", "prometheus", "--out", arg(&metrics)]);
    assert_eq!(out.status.code(), Some(0), "metrics written: exit 0 even with expired certificates");
    let (ok, parsed) = run(Command::new("/usr/bin/python3").arg("-c").arg(PARSE).arg(&metrics));
    assert!(
        ok,
        "prometheus_client could not parse the metrics (.ci/run installs python3-prometheus-client):\n{parsed}"
    );
    let samples: Vec<serde_json::Value> = parsed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let families: std::collections::BTreeSet<&str> = samples.iter().map(|s| s["family"].as_str().unwrap()).collect();
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        ["x509_cert_expired", "x509_cert_not_after", "x509_cert_not_before", "x509_read_errors"]
    );
    assert!(samples.iter().all(|s| s["type"] == "gauge"));
    let apiserver = tree.join("pki/apiserver.crt");
    let abs = std::path::absolute(&apiserver).unwrap();
    let sample = |family: &str, path: &Path| {
        samples
            .iter()
            .find(|s| s["name"] == family && s["labels"]["filepath"] == path.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {family} for {}:\n{parsed}", path.display()))
    };
    let expired = sample("x509_cert_expired", &abs);
    assert_eq!(expired["value"], 1.0);
    let labels = &expired["labels"];
    assert_eq!(labels["filename"], "apiserver.crt");
    assert_eq!(labels["subject_CN"], "kube-apiserver");
    assert_eq!(labels["issuer_CN"], "kubernetes");
    // The serial in decimal, as the exporter (Go's big.Int) prints it: checked against openssl's hex.
    let (ok, serial) = run(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&apiserver));
    assert!(ok, "{serial}");
    let hex = serial.trim().trim_start_matches("serial=");
    let (ok, dec) = run(Command::new("/usr/bin/python3").arg("-c").arg(format!("print(int('{hex}', 16))")));
    assert!(ok);
    assert_eq!(labels["serial_number"], dec.trim());
    // NotAfter in Unix seconds: the fixture's leaves expired 2025-02-03.
    let not_after = sample("x509_cert_not_after", &abs)["value"].as_f64().unwrap();
    let day = time::OffsetDateTime::from_unix_timestamp(not_after as i64).unwrap().date();
    assert_eq!(day.to_string(), "2025-02-03");
    let ca = std::path::absolute(tree.join("pki/ca.crt")).unwrap();
    assert_eq!(sample("x509_cert_expired", &ca)["value"], 0.0);
    // A kubeconfig's client certificate: embedded_kind user, embedded_key its user's name.
    let admin = std::path::absolute(tree.join("admin.conf")).unwrap();
    let admin = sample("x509_cert_not_after", &admin);
    assert_eq!(admin["labels"]["embedded_kind"], "user");
    assert_eq!(admin["labels"]["embedded_key"], "kubernetes-admin");
    let errors = samples.iter().find(|s| s["name"] == "x509_read_errors").unwrap();
    assert!(errors["labels"].as_object().unwrap().is_empty());
    // No private key material: the key files are not read into metrics.
    assert!(!std::fs::read_to_string(&metrics).unwrap().contains("PRIVATE"));
}
