//! `verify --endpoint` with any credential (a kubeconfig and context, or certificate, key and CA
//! files) against `openssl s_server` holding a wrong certificate: every failure said in words,
//! never in rustls' debug names.

use std::path::Path;
use std::process::Command;

use crate::kubectl::{require_tools, Server};
use crate::support::{run, TestEnv};

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `kubepki verify --endpoint URL ARGS...`: exit code and stdout; rustls' names never show.
fn probe(env: &TestEnv, url: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["verify", "--endpoint", url];
    all.extend_from_slice(args);
    let out = env.kubepki(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for debug in
        ["BadSignature", "OtherError", "CaUsedAsEndEntity", "UnknownIssuer", "NotValidForName", "AlertReceived"]
    {
        assert!(!text.contains(debug), "rustls' {debug} printed:\n{text}");
    }
    (out.status.code(), text)
}

fn assert_says(code_and_text: (Option<i32>, String), code: i32, wants: &[&str]) {
    let (got, text) = code_and_text;
    assert_eq!(got, Some(code), "{text}");
    for want in wants {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
}

/// The SHA-256 of a certificate file, as kubepki prints fingerprints.
fn fingerprint(path: &Path) -> String {
    let (ok, text) = run(Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(path));
    assert!(ok, "{text}");
    text.trim().rsplit('=').next().unwrap().to_string()
}

#[test]
fn every_wrong_server_certificate_is_said_in_words() {
    require_tools();
    let env = TestEnv::new();
    let ours = env.init("ours", &[]);
    let theirs = env.init("theirs", &[]);
    let (ca, admin) = (ours.join("pki/ca.crt"), ours.join("admin.conf"));
    let kubeconfig = ["--kubeconfig", arg(&admin)];

    // Another CA named "kubernetes" signed the server's certificate: both fingerprints.
    let theirs_api = (theirs.join("pki/apiserver.crt"), theirs.join("pki/apiserver.key"));
    let s = Server::start_with(&env, "same-name", "127.0.0.1", &theirs_api.0, &theirs_api.1, &ca);
    assert_says(
        probe(&env, &s.url(), &kubeconfig),
        1,
        &[
            "names CN=kubernetes as its issuer, and the client trusts a CA of that name, but another key signed it",
            &fingerprint(&ca),
            &fingerprint(&theirs_api.0),
            "key id ",
        ],
    );
    drop(s);
    // When the server sends the CA that signed it, its fingerprint is named too.
    let their_ca = theirs.join("pki/ca.crt");
    let s =
        Server::start_sending(&env, "same-name-chain", "127.0.0.1", &theirs_api.0, &theirs_api.1, &ca, &[&their_ca]);
    assert_says(probe(&env, &s.url(), &kubeconfig), 1, &[&format!("signer:  SHA-256 {}", fingerprint(&their_ca))]);
    drop(s);

    // The CA certificate itself served as the server's.
    let s = Server::start_with(&env, "ca-as-leaf", "127.0.0.1", &ca, &ours.join("pki/ca.key"), &ca);
    assert_says(
        probe(&env, &s.url(), &kubeconfig),
        1,
        &["the server presented a CA certificate as its own", "is CA:TRUE"],
    );
    drop(s);

    // A self-signed leaf, as a kubelet makes for itself.
    let (ss_crt, ss_key) = (env.path().join("ss.crt"), env.path().join("ss.key"));
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=node01@1764400000", "-addext", "subjectAltName=DNS:node01"])
        .args(["-addext", "basicConstraints=CA:FALSE", "-keyout"])
        .arg(&ss_key)
        .arg("-out")
        .arg(&ss_crt));
    assert!(ok, "{text}");
    let s = Server::start_with(&env, "self-signed", "127.0.0.1", &ss_crt, &ss_key, &ca);
    assert_says(
        probe(&env, &s.url(), &kubeconfig),
        1,
        &["the server's certificate is self-signed: CN=node01@1764400000", &fingerprint(&ss_crt)],
    );
    drop(s);

    // A client certificate served as a server's: wrong usage.
    let client = (ours.join("pki/apiserver-kubelet-client.crt"), ours.join("pki/apiserver-kubelet-client.key"));
    let s = Server::start_with(&env, "usage", "127.0.0.1", &client.0, &client.1, &ca);
    assert_says(probe(&env, &s.url(), &kubeconfig), 1, &["is not for serving TLS", "[clientAuth], without serverAuth"]);
    drop(s);

    // The right certificate on an address it does not cover: the SAN list.
    let api = (ours.join("pki/apiserver.crt"), ours.join("pki/apiserver.key"));
    let s = Server::start_with(&env, "san", "127.0.0.5", &api.0, &api.1, &ca);
    assert_says(
        probe(&env, &s.url(), &kubeconfig),
        1,
        &["does not cover 127.0.0.5, the address dialled: its SANs are DNS:controlplane", "IP:127.0.0.1"],
    );
}

#[test]
fn kubeconfig_contexts_and_files_as_credentials() {
    require_tools();
    let env = TestEnv::new();
    let ours = env.init("ours", &[]);
    let theirs = env.init("theirs", &[]);
    let (ca, api) = (ours.join("pki/ca.crt"), (ours.join("pki/apiserver.crt"), ours.join("pki/apiserver.key")));
    let s = Server::start_with(&env, "mtls", "127.0.0.1", &api.0, &api.1, &ca);
    let url = s.url();

    // A kubeconfig with two contexts: ours works, theirs is refused by the server.
    let two = env.path().join("two.conf");
    let text = std::fs::read_to_string(ours.join("admin.conf")).unwrap();
    let mut file: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let their: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(theirs.join("admin.conf")).unwrap()).unwrap();
    for (key, name) in [("clusters", "theirs"), ("users", "their-admin"), ("contexts", "their-context")] {
        let mut item = their[key][0].clone();
        item["name"] = name.into();
        if key == "contexts" {
            item["context"]["cluster"] = "theirs".into();
            item["context"]["user"] = "their-admin".into();
        }
        file[key].as_sequence_mut().unwrap().push(item);
    }
    std::fs::write(&two, serde_yaml_ng::to_string(&file).unwrap()).unwrap();
    assert_says(
        probe(&env, &url, &["--kubeconfig", arg(&two)]),
        0,
        &["handshake completed", "context kubernetes-admin@kubernetes"],
    );
    assert_says(
        probe(&env, &url, &["--kubeconfig", arg(&two), "--context", "their-context"]),
        1,
        &["context their-context", "but another key signed it"],
    );
    assert_says(
        probe(&env, &url, &["--kubeconfig", arg(&two), "--context", "nope"]),
        2,
        &["two.conf: no context 'nope'"],
    );

    // Files: a client pair of the tree; one from another CA; none at all.
    let pair =
        |tree: &Path| (tree.join("pki/apiserver-kubelet-client.crt"), tree.join("pki/apiserver-kubelet-client.key"));
    let (crt, key) = pair(&ours);
    let files = |crt: &Path, key: &Path| -> Vec<String> {
        vec!["--cacert".into(), arg(&ca).into(), "--cert".into(), arg(crt).into(), "--key".into(), arg(key).into()]
    };
    let args = files(&crt, &key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_says(probe(&env, &url, &args), 0, &["handshake completed"]);
    let (crt, key) = pair(&theirs);
    let args = files(&crt, &key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_says(
        probe(&env, &url, &args),
        1,
        &["the server refused the client certificate O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client"],
    );
    assert_says(
        probe(&env, &url, &["--cacert", arg(&ca)]),
        1,
        &["the server requires a client certificate and this credential has none"],
    );
    assert_says(probe(&env, &url, &["--cacert", "missing.crt"]), 2, &["missing.crt"]);
    // A key that is not the certificate's: named, before any connection.
    let other_key = ours.join("pki/apiserver-etcd-client.key");
    let args = files(&pair(&ours).0, &other_key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_says(probe(&env, &url, &args), 2, &["apiserver-etcd-client.key: this private key is not the key of"]);
}
