//! Clients outside the tree survive a CA rotation: at `reissue` every reissued leaf ships the
//! new CA cross-signed by the old key after it, so a kubeconfig copied to a laptop before
//! `start` (it trusts only the old CA) and an etcd client holding the old etcd CA still verify
//! the servers, with real kubectl, Python's `kubernetes` client and real etcd; after `finish`
//! the old CA is gone everywhere, and those old clients are refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::kubectl::{healthz, Server};
use crate::support::{files, free_port, have, run, wait_for_port, Guard, TestEnv};

/// Debian's python (python3-kubernetes installs there; a python3 earlier on PATH may lack it).
const PYTHON: &str = "/usr/bin/python3";

/// `GET /healthz` with the Python client: the kubeconfig's credentials and CA, the server's
/// address replaced; prints the body.
const PY_HEALTHZ: &str = r#"
import sys
from kubernetes import client, config
cfg = client.Configuration()
config.load_kube_config(config_file=sys.argv[1], client_configuration=cfg)
cfg.host = sys.argv[2]
cfg.retries = False
api = client.ApiClient(cfg)
r = api.call_api('/healthz', 'GET', _preload_content=False, _request_timeout=20)
print(r[0].data.decode())
"#;

fn python_healthz(kubeconfig: &Path, url: &str) -> (bool, String) {
    run(Command::new(PYTHON)
        .args(["-c", PY_HEALTHZ])
        .arg(kubeconfig)
        .arg(url)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy"))
}

fn pem_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    pem::parse_many(&text).unwrap().iter().map(pem::encode).collect()
}

fn require_tools() {
    assert!(have("kubectl") && have("openssl"), "kubectl and openssl are needed (.ci/run installs them)");
    let (ok, out) = run(Command::new(PYTHON).args(["-c", "import kubernetes"]));
    assert!(
        ok,
        "{PYTHON} cannot import kubernetes (Debian: apt-get install python3-kubernetes; .ci/run installs it): {out}"
    );
}

#[test]
fn a_kubeconfig_from_before_start_works_after_reissue_with_kubectl_and_python() {
    require_tools();
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let d = tree.to_str().unwrap();
    let laptop = env.path().join("laptop.conf");
    std::fs::copy(tree.join("admin.conf"), &laptop).unwrap();
    let old_ca = std::fs::read_to_string(tree.join("pki/ca.crt")).unwrap();
    env.kubepki_ok(&["rotate-ca", "ca", "start", "--dir", d]);
    env.kubepki_ok(&["rotate-ca", "ca", "reissue", "--dir", d]);

    // The apiserver's certificate is the new CA's, followed by the new CA cross-signed by the old.
    let served = pem_blocks(&tree.join("pki/apiserver.crt"));
    assert_eq!(served.len(), 2, "leaf and cross-signed CA");
    let chain = env.path().join("chain.pem");
    std::fs::write(&chain, &served[1]).unwrap();
    let mut server = Server::start_sending(
        &env,
        "apiserver-reissued",
        "127.0.0.1",
        &tree.join("pki/apiserver.crt"),
        &tree.join("pki/apiserver.key"),
        &tree.join("pki/ca.crt"),
        &[&chain],
    );
    let url = server.url();
    // kubectl (Go) with the pre-start kubeconfig: only the old CA in its CA data.
    let (ok, out) = healthz(&env, &laptop, &mut server, &[]);
    assert!(
        ok && out.contains("Verify return code: 0 (ok)"),
        "kubectl, pre-start admin.conf:\n{out}\n{}",
        server.guard.log_text()
    );
    // The reissued admin.conf (its client certificate followed by the chain) is accepted too.
    let (ok, out) = healthz(&env, &tree.join("admin.conf"), &mut server, &[]);
    assert!(ok && out.contains("CN=kubernetes-admin"), "kubectl, reissued admin.conf:\n{out}");
    // Python's client (OpenSSL) with the pre-start kubeconfig.
    let (ok, out) = python_healthz(&laptop, &url);
    assert!(ok && out.contains("s_server"), "python, pre-start admin.conf:\n{out}\n{}", server.guard.log_text());
    drop(server);

    // finish: the old CA is gone everywhere, the chain too.
    env.kubepki_ok(&["rotate-ca", "ca", "finish", "--dir", d]);
    let old_body = old_ca.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    for f in files(&tree) {
        let rel = f.strip_prefix(&tree).unwrap();
        if rel.starts_with(".kubepki-backup") {
            continue;
        }
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".crt") {
            assert_eq!(pem_blocks(&f).len(), 1, "{}: one certificate", rel.display());
            assert!(!std::fs::read_to_string(&f).unwrap().replace('\n', "").contains(&old_body), "{}", rel.display());
        } else if name.ends_with(".conf") {
            let k = kubepki::x509::kubeconfig::read(&f).unwrap();
            assert!(!k.ca_pem.unwrap().replace('\n', "").contains(&old_body), "{}: old CA data", rel.display());
            assert_eq!(k.cert_pem.unwrap().matches("BEGIN CERTIFICATE").count(), 1, "{}", rel.display());
        }
    }
    assert!(!tree.join(".kubepki/rotation").exists());
    let mut server = Server::start_with(
        &env,
        "apiserver-finished",
        "127.0.0.1",
        &tree.join("pki/apiserver.crt"),
        &tree.join("pki/apiserver.key"),
        &tree.join("pki/ca.crt"),
    );
    let (ok, out) = healthz(&env, &laptop, &mut server, &[]);
    assert!(!ok && out.contains("x509: certificate signed by unknown authority"), "{out}");
    let (ok, out) = python_healthz(&laptop, &server.url());
    assert!(!ok && out.contains("CERTIFICATE_VERIFY_FAILED"), "{out}");
    let (ok, out) = healthz(&env, &tree.join("admin.conf"), &mut server, &[]);
    assert!(ok, "the new admin.conf: {out}");
}

/// One etcd member of the tree's control plane (127.0.0.1) on fresh ports.
fn etcd(env: &TestEnv, tree: &Path, name: &str) -> (Guard, String) {
    let pki = tree.join("nodes/controlplane/etc/kubernetes/pki/etcd");
    let file = |n: &str| pki.join(n).to_str().unwrap().to_string();
    let (client, peer) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let client_url = format!("https://127.0.0.1:{client}");
    let peer_url = format!("https://127.0.0.1:{peer}");
    let mut cmd = Command::new("etcd");
    cmd.args(["--name", "controlplane"])
        .arg("--data-dir")
        .arg(env.path().join(format!("{name}.etcd")))
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("controlplane={peer_url}")])
        .arg("--client-cert-auth")
        .args([
            "--trusted-ca-file",
            &file("ca.crt"),
            "--cert-file",
            &file("server.crt"),
            "--key-file",
            &file("server.key"),
        ])
        .arg("--peer-client-cert-auth")
        .args(["--peer-trusted-ca-file", &file("ca.crt"), "--peer-cert-file", &file("peer.crt")])
        .args(["--peer-key-file", &file("peer.key")]);
    let mut guard = Guard::spawn(name, cmd, &env.path().join(format!("{name}.log")));
    wait_for_port(&mut guard, "127.0.0.1", client);
    (guard, client_url)
}

fn etcdctl_health(url: &str, cacert: &Path, cert: &Path, key: &Path) -> (bool, String) {
    run(Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={url}"))
        .arg("--cacert")
        .arg(cacert)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["--dial-timeout=3s", "--command-timeout=3s", "endpoint", "health"]))
}

/// Poll until `etcdctl endpoint health` says healthy (a member takes about a second).
fn healthy(url: &str, cacert: &Path, cert: &Path, key: &Path, guard: &mut Guard) -> String {
    let start = Instant::now();
    loop {
        guard.assert_running();
        let (ok, out) = etcdctl_health(url, cacert, cert, key);
        if ok && out.contains("is healthy") {
            return out;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not healthy: {out}\n{}", guard.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_etcd_client_holding_the_old_etcd_ca_works_after_reissue() {
    assert!(have("etcd") && have("etcdctl"), "etcd and etcdctl are needed (.ci/run installs them)");
    let env = TestEnv::new();
    let tree = env.init("tree", &[]);
    let d = tree.to_str().unwrap();
    // The client as it was before the rotation: the old etcd CA, its old certificate.
    let keep = |from: &str, to: &str| -> PathBuf {
        let p = env.path().join(to);
        std::fs::copy(tree.join(from), &p).unwrap();
        p
    };
    let old_ca = keep("pki/etcd/ca.crt", "old-etcd-ca.crt");
    let old_cert = keep("pki/apiserver-etcd-client.crt", "old-client.crt");
    let old_key = keep("pki/apiserver-etcd-client.key", "old-client.key");
    env.kubepki_ok(&["rotate-ca", "etcd-ca", "start", "--dir", d]);
    env.kubepki_ok(&["rotate-ca", "etcd-ca", "reissue", "--dir", d]);
    assert_eq!(pem_blocks(&tree.join("pki/etcd/server.crt")).len(), 2, "leaf and cross-signed CA");

    let (mut guard, url) = etcd(&env, &tree, "etcd-reissued");
    healthy(&url, &old_ca, &old_cert, &old_key, &mut guard);
    // The reissued client (its chain after it) with the old CA only works too.
    let (ok, out) = etcdctl_health(
        &url,
        &old_ca,
        &tree.join("pki/apiserver-etcd-client.crt"),
        &tree.join("pki/apiserver-etcd-client.key"),
    );
    assert!(ok && out.contains("is healthy"), "{out}\n{}", guard.log_text());
    drop(guard);

    env.kubepki_ok(&["rotate-ca", "etcd-ca", "finish", "--dir", d]);
    let (mut guard, url) = etcd(&env, &tree, "etcd-finished");
    let (cert, key) = (tree.join("pki/apiserver-etcd-client.crt"), tree.join("pki/apiserver-etcd-client.key"));
    healthy(&url, &tree.join("pki/etcd/ca.crt"), &cert, &key, &mut guard);
    // The old CA is gone: a client that trusts only it is refused.
    let (ok, out) = etcdctl_health(&url, &old_ca, &cert, &key);
    assert!(!ok, "the old etcd CA still verifies the server after finish: {out}");
}
