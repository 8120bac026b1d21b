//! `explain` on texts the real tools print: kubectl (client-go), etcd and etcdctl, `openssl verify`
//! and `s_client`, curl and Python's `kubernetes` client, each run against a tree with one seeded
//! defect; `explain --dir` must name the link, the file at fault and verify's fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki::model::catalog::{Catalog, CertProfile, Leaf, Store};
use kubepki::model::spec::ClusterSpec;
use kubepki::x509::issue::{Ca, PrivateKey};
use kubepki::x509::usage::ExtKeyUsage;
use time::OffsetDateTime;

use crate::kubectl::{kubectl, require_tools, Server};
use crate::support::{have, run, TestEnv};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tree of `spec` and the means to seed a defect in it.
struct Seeded {
    root: PathBuf,
    catalog: Catalog,
}

impl Seeded {
    fn new(root: PathBuf, spec: &ClusterSpec) -> Seeded {
        Seeded { root, catalog: Catalog::build(spec) }
    }

    fn ca(&self, id: &str) -> Ca {
        let e = self.catalog.get(id).unwrap();
        let (cert, key) = e.cert_and_key_files().unwrap();
        let key = PrivateKey::from_pem(&std::fs::read_to_string(self.root.join(key)).unwrap(), key).unwrap();
        Ca::load(id, &std::fs::read_to_string(self.root.join(cert)).unwrap(), cert, key).unwrap()
    }

    /// Reissue a leaf kept in files, same key, with a changed profile, signer or time; written at
    /// its home and every node-bundle copy, as a node with the defect holds it.
    fn reissue(&self, id: &str, ca: &Ca, at: OffsetDateTime, change: impl FnOnce(&mut CertProfile)) {
        let e = self.catalog.get(id).unwrap();
        let mut profile = e.cert().unwrap().clone();
        change(&mut profile);
        let Some(Leaf { store: Store::Files { cert, key }, .. }) = e.leaf() else { panic!("{id} is not in files") };
        let key = PrivateKey::from_pem(&std::fs::read_to_string(self.root.join(key)).unwrap(), key).unwrap();
        let issued = ca.sign_key(&profile, &key, at).unwrap();
        self.write(cert, issued.pem.as_bytes());
    }

    fn write(&self, rel: &Path, bytes: &[u8]) {
        let mut places = vec![self.root.join(rel)];
        for node in std::fs::read_dir(self.root.join("nodes")).unwrap() {
            let copy = node.unwrap().path().join("etc/kubernetes").join(rel);
            if copy.exists() {
                places.push(copy);
            }
        }
        for p in places {
            std::fs::write(p, bytes).unwrap();
        }
    }
}

/// The default tree (controlplane 127.0.0.1, node01 127.0.0.2, node02 127.0.0.3).
fn default_tree(env: &TestEnv, name: &str) -> Seeded {
    Seeded::new(env.init(name, &[]), &ClusterSpec::builtin_default())
}

/// `kubepki explain --dir TREE` on a captured text (through stdin); the text output.
fn explain(env: &TestEnv, tree: &Path, text: &str) -> String {
    let captured = env.path().join("captured.txt");
    std::fs::write(&captured, text).unwrap();
    let out = env.kubepki(&["explain", "--dir", arg(tree), "--file", arg(&captured)]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "explain failed on:\n{text}\n{}{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The explanation names every one of `wants`.
fn assert_explains(env: &TestEnv, tree: &Path, text: &str, wants: &[&str]) -> String {
    let out = explain(env, tree, text);
    for want in wants {
        assert!(out.contains(want), "explain of\n{text}\nlacks {want:?}:\n{out}");
    }
    out
}

/// The fix `verify` gives for its finding of this kind on this file (relative to the tree):
/// explain must repeat it, not make up its own.
fn verify_fix(env: &TestEnv, tree: &Path, code: &str, file: &str) -> String {
    let out = env.kubepki(&["verify", "--dir", arg(tree), "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["code"] == code && f["file"] == file)
        .unwrap_or_else(|| panic!("verify has no {code} finding on {file}: {report:#}"));
    f["fix"].as_str().unwrap().to_string()
}

/// An empty kubeconfig, so kubectl runs on flags alone.
fn no_kubeconfig(env: &TestEnv) -> PathBuf {
    env.write("empty.kubeconfig", "apiVersion: v1\nkind: Config\n")
}

fn curl(args: &[&str]) -> String {
    let (ok, text) = run(Command::new("curl").args(["-sS", "--max-time", "10"]).args(args));
    assert!(!ok, "curl succeeded:\n{text}");
    text
}

/// Python's kubernetes client (urllib3 underneath) listing namespaces with a kubeconfig.
fn python_kubernetes(kubeconfig: &Path, url: &str) -> String {
    let script = format!(
        "from kubernetes import client, config\n\
         config.load_kube_config({kubeconfig:?})\n\
         c = client.Configuration.get_default_copy()\n\
         c.host = {url:?}\n\
         c.retries = 0\n\
         client.CoreV1Api(client.ApiClient(c)).list_namespace(_request_timeout=10)\n",
        kubeconfig = arg(kubeconfig)
    );
    let (ok, text) = run(Command::new("/usr/bin/python3").arg("-c").arg(script));
    assert!(!ok, "python's kubernetes client succeeded:\n{text}");
    text
}

fn require_more_tools() {
    require_tools();
    assert!(have("curl"), "curl is not on PATH (.ci/run installs it)");
    let (ok, text) = run(Command::new("/usr/bin/python3").args(["-c", "import kubernetes"]));
    assert!(ok, "python3-kubernetes is not installed (.ci/run installs it): {text}");
}

const ADMIN_LINK: &str = "kubectl-admin -> kube-apiserver@controlplane";

#[test]
fn server_certificate_from_a_same_name_ca() {
    require_more_tools();
    let env = TestEnv::new();
    let ours = default_tree(&env, "ours");
    let theirs = default_tree(&env, "theirs");
    // Their CA is also named "kubernetes": our apiserver certificate signed by it.
    ours.reissue("apiserver@controlplane", &theirs.ca("ca"), now(), |_| {});
    let (crt, key) = (ours.root.join("pki/apiserver.crt"), ours.root.join("pki/apiserver.key"));
    let mut server = Server::start_with(&env, "s_server", "127.0.0.1", &crt, &key, &ours.root.join("pki/ca.crt"));
    let url = server.url();
    let fix = verify_fix(&env, &ours.root, "wrong-ca", "pki/apiserver.crt");
    let file = format!("{}/pki/apiserver.crt (apiserver@controlplane)", ours.root.display());

    let (ok, text) = kubectl(&env, &ours.root.join("admin.conf"), &["--server", &url, "get", "--raw", "/healthz"]);
    assert!(!ok && text.contains("candidate authority certificate \"kubernetes\""), "{text}");
    let out =
        assert_explains(&env, &ours.root, &text, &[ADMIN_LINK, &file, "same name, another key", &fix, "SHA-256 "]);
    assert!(out.contains("comes from another CA with the same name"), "{out}");

    let text = python_kubernetes(&ours.root.join("admin.conf"), &url);
    assert!(text.contains("CERTIFICATE_VERIFY_FAILED"), "{text}");
    assert_explains(&env, &ours.root, &text, &[ADMIN_LINK, &file, &fix]);

    let text = curl(&["--cacert", arg(&ours.root.join("pki/ca.crt")), &url]);
    assert!(text.contains("SSL certificate problem"), "{text}");
    assert_explains(&env, &ours.root, &text, &[&file, &fix]);

    let (ok, text) =
        run(Command::new("openssl").arg("verify").arg("-CAfile").arg(ours.root.join("pki/ca.crt")).arg(&crt));
    assert!(!ok, "{text}");
    assert_explains(&env, &ours.root, &text, &[&file, "wrong-ca", &fix]);

    let hostport = url.trim_start_matches("https://");
    let (_, text) = run(Command::new("openssl")
        .args(["s_client", "-connect", hostport, "-verify_return_error", "-CAfile"])
        .arg(ours.root.join("pki/ca.crt"))
        .stdin(std::process::Stdio::null()));
    assert!(text.contains("verify error:num="), "{text}");
    assert_explains(&env, &ours.root, &text, &[&file, &fix]);
    server.guard.assert_running();

    // JSON: the same, as data.
    let captured = env.path().join("captured.txt");
    let out = env.kubepki(&["explain", "-o", "json", "--dir", arg(&ours.root), "--file", arg(&captured)]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["cause"], "unknown-authority", "{v:#}");
    assert_eq!(v[0]["tree"]["culprits"][0]["finding"]["code"], "wrong-ca", "{v:#}");
    assert_eq!(v[0]["tree"]["culprits"][0]["file"], "pki/apiserver.crt", "{v:#}");
}

#[test]
fn expired_server_certificate_and_missing_san() {
    require_more_tools();
    let env = TestEnv::new();
    let tree = default_tree(&env, "tree");
    let ca = tree.ca("ca");
    tree.reissue("apiserver@controlplane", &ca, now() - time::Duration::days(400), |_| {});
    let fix = verify_fix(&env, &tree.root, "expired", "pki/apiserver.crt");
    let (crt, key) = (tree.root.join("pki/apiserver.crt"), tree.root.join("pki/apiserver.key"));
    let admin = tree.root.join("admin.conf");
    let file = format!("{}/pki/apiserver.crt", tree.root.display());
    {
        let server =
            Server::start_with(&env, "s_server-expired", "127.0.0.1", &crt, &key, &tree.root.join("pki/ca.crt"));
        let (ok, text) = kubectl(&env, &admin, &["--server", &server.url(), "get", "--raw", "/healthz"]);
        assert!(!ok && text.contains("x509: certificate has expired or is not yet valid: current time"), "{text}");
        let out = assert_explains(&env, &tree.root, &text, &[ADMIN_LINK, &file, "expired (error)", &fix]);
        assert!(out.contains("the server's certificate expired at "), "{out}");
        let text = curl(&["--cacert", arg(&tree.root.join("pki/ca.crt")), &server.url()]);
        assert!(text.contains("certificate has expired"), "{text}");
        assert_explains(&env, &tree.root, &text, &[&file, "expired (error)", &fix]);
    }

    // Valid again, but without 127.0.0.1, the address every kubeconfig dials.
    tree.reissue("apiserver@controlplane", &ca, now(), |p| p.sans.retain(|s| s.to_string() != "IP:127.0.0.1"));
    let fix = verify_fix(&env, &tree.root, "san-missing", "pki/apiserver.crt");
    let server = Server::start_with(&env, "s_server-san", "127.0.0.1", &crt, &key, &tree.root.join("pki/ca.crt"));
    let (ok, text) = kubectl(&env, &admin, &["--server", &server.url(), "get", "--raw", "/healthz"]);
    assert!(!ok && text.contains("x509: certificate is valid for 10.96.0.1, not 127.0.0.1"), "{text}");
    let out = assert_explains(&env, &tree.root, &text, &[ADMIN_LINK, &file, "san-missing", &fix]);
    assert!(out.contains("does not cover 127.0.0.1"), "{out}");
    let text = python_kubernetes(&admin, &server.url());
    assert!(text.contains("hostname '127.0.0.1' doesn't match either of"), "{text}");
    assert_explains(&env, &tree.root, &text, &[ADMIN_LINK, &file, "san-missing", &fix]);
}

/// The apiserver's link to a kubelet, played by kubectl with the apiserver's kubelet-client pair
/// against `openssl s_server` holding node01's kubelet serving certificate on node01's address.
fn as_apiserver_to_kubelet(env: &TestEnv, tree: &Seeded, name: &str) -> String {
    let kubelet = tree.root.join("nodes/node01/var/lib/kubelet/pki");
    let server = Server::start_with(
        env,
        name,
        "127.0.0.2",
        &kubelet.join("kubelet.crt"),
        &kubelet.join("kubelet.key"),
        &tree.root.join("pki/ca.crt"),
    );
    let pki = tree.root.join("pki");
    let (ok, text) = kubectl(
        env,
        &no_kubeconfig(env),
        &[
            "--server",
            &server.url(),
            "--certificate-authority",
            arg(&pki.join("ca.crt")),
            "--client-certificate",
            arg(&pki.join("apiserver-kubelet-client.crt")),
            "--client-key",
            arg(&pki.join("apiserver-kubelet-client.key")),
            "get",
            "--raw",
            "/healthz",
        ],
    );
    assert!(!ok, "kubectl succeeded:\n{text}");
    text
}

#[test]
fn kubelet_client_certificate_from_the_wrong_ca_and_with_the_wrong_usage() {
    require_more_tools();
    let env = TestEnv::new();
    let tree = default_tree(&env, "tree");
    let link = "kube-apiserver@controlplane -> kubelet@node01";
    let file = format!("{}/pki/apiserver-kubelet-client.crt (apiserver-kubelet-client)", tree.root.display());

    tree.reissue("apiserver-kubelet-client", &tree.ca("front-proxy-ca"), now(), |_| {});
    let text = as_apiserver_to_kubelet(&env, &tree, "s_server-kubelet-ca");
    let fix = verify_fix(&env, &tree.root, "wrong-ca", "pki/apiserver-kubelet-client.crt");
    assert!(text.contains("remote error: tls: unknown certificate authority"), "{text}");
    let out = assert_explains(&env, &tree.root, &text, &[link, &file, "wrong-ca", &fix]);
    assert!(out.contains("the server refused the client's certificate"), "{out}");

    tree.reissue("apiserver-kubelet-client", &tree.ca("ca"), now(), |p| {
        p.ext_key_usage = vec![ExtKeyUsage::ServerAuth]
    });
    let text = as_apiserver_to_kubelet(&env, &tree, "s_server-kubelet-usage");
    let fix = verify_fix(&env, &tree.root, "usage", "pki/apiserver-kubelet-client.crt");
    assert!(text.contains("remote error: tls: unsupported certificate"), "{text}");
    let out = assert_explains(&env, &tree.root, &text, &[link, &file, "usage (error)", &fix]);
    assert!(out.contains("lacks clientAuth"), "{out}");
}

#[test]
fn self_signed_kubelet_serving_certificate_without_ip_sans() {
    require_more_tools();
    let env = TestEnv::new();
    let tree = default_tree(&env, "tree");
    // What a kubelet makes for itself without serverTLSBootstrap: self-signed, a DNS name only.
    let kubelet = tree.root.join("nodes/node01/var/lib/kubelet/pki");
    let (ok, text) = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
        .args(["-subj", "/CN=node01@1764400000", "-addext", "subjectAltName=DNS:node01", "-keyout"])
        .arg(kubelet.join("kubelet.key"))
        .arg("-out")
        .arg(kubelet.join("kubelet.crt")));
    assert!(ok, "{text}");
    let text = as_apiserver_to_kubelet(&env, &tree, "s_server-self-signed");
    let fix = verify_fix(&env, &tree.root, "san-missing", "nodes/node01/var/lib/kubelet/pki/kubelet.crt");
    assert!(
        text.contains("x509: cannot validate certificate for 127.0.0.2 because it doesn't contain any IP SANs"),
        "{text}"
    );
    let file = format!("{}/nodes/node01/var/lib/kubelet/pki/kubelet.crt", tree.root.display());
    let out = assert_explains(
        &env,
        &tree.root,
        &text,
        &["kube-apiserver@controlplane -> kubelet@node01", &file, "san-missing", &fix],
    );
    assert!(out.contains("no IP address among its SANs"), "{out}");
}

#[test]
fn etcd_refuses_a_client_certificate_from_the_cluster_ca() {
    crate::etcd::require_etcd();
    let env = TestEnv::new();
    let (root, member, mut guard) = crate::etcd::single_member(&env, "127.0.0.24");
    let spec = ClusterSpec::load(&env.path().join("cluster.yaml")).unwrap();
    let tree = Seeded::new(root, &spec);
    tree.reissue("apiserver-etcd-client", &tree.ca("ca"), now(), |_| {});
    let since = guard.log_text().len();
    let client = crate::etcd::Client::etcd(&tree.root, "apiserver-etcd-client");
    let (ok, etcdctl_text) = client.etcdctl(&[member.client_url()], &["put", "kubepki", "refused"]);
    assert!(!ok, "{etcdctl_text}");
    let line = crate::etcd::wait_for_log_line(&mut guard, since, &["rejected connection from", "unknown authority"]);
    let fix = verify_fix(&env, &tree.root, "wrong-ca", "pki/apiserver-etcd-client.crt");
    let file = format!("{}/pki/apiserver-etcd-client.crt (apiserver-etcd-client)", tree.root.display());
    let out = assert_explains(&env, &tree.root, &line, &["kube-apiserver@cp1 -> etcd@cp1", &file, "wrong-ca", &fix]);
    assert!(out.contains("the client's certificate was not signed by any CA the server trusts"), "{out}");
    // etcdctl itself is told nothing: explain says where the reason is, and still finds the culprit.
    assert!(etcdctl_text.contains("context deadline exceeded"), "{etcdctl_text}");
    let out = assert_explains(&env, &tree.root, &etcdctl_text, &["kube-apiserver@cp1 -> etcd@cp1", &file, &fix]);
    assert!(out.contains("rejected connection from"), "{out}");
}

/// An HTTPS server that answers every request as the apiserver does a credential it does not
/// authenticate: 401 with a Status object. Prints its port.
const UNAUTHORIZED_SERVER: &str = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer((sys.argv[1], 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
"#;

#[test]
fn kubectl_unauthorized_with_a_client_certificate_from_another_ca() {
    require_more_tools();
    let env = TestEnv::new();
    let ours = default_tree(&env, "ours");
    let theirs = default_tree(&env, "theirs");
    // admin.conf trusting our CA, with their client certificate and key.
    let admin = ours.root.join("admin.conf");
    let mut conf: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&admin).unwrap()).unwrap();
    let their: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(theirs.root.join("admin.conf")).unwrap()).unwrap();
    conf["users"][0]["user"] = their["users"][0]["user"].clone();
    std::fs::write(&admin, serde_yaml_ng::to_string(&conf).unwrap()).unwrap();
    let fix = verify_fix(&env, &ours.root, "wrong-ca", "admin.conf");

    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c").arg(UNAUTHORIZED_SERVER).arg("127.0.0.1");
    cmd.arg(ours.root.join("pki/apiserver.crt")).arg(ours.root.join("pki/apiserver.key"));
    let mut server = crate::support::Guard::spawn("401 server", cmd, &env.path().join("401.log"));
    let mut port = String::new();
    crate::support::wait_until("the 401 server's port", std::time::Duration::from_secs(20), || {
        server.assert_running();
        port = server.log_text().lines().find_map(|l| l.strip_prefix("PORT ")).unwrap_or_default().to_string();
        !port.is_empty()
    });
    let url = format!("https://127.0.0.1:{port}");
    let (ok, text) = kubectl(&env, &admin, &["--server", &url, "get", "--raw", "/healthz"]);
    assert!(!ok && text.contains("You must be logged in to the server (Unauthorized)"), "{text}");
    let out = assert_explains(
        &env,
        &ours.root,
        &text,
        &[ADMIN_LINK, &format!("{}/admin.conf", ours.root.display()), "wrong-ca", &fix],
    );
    assert!(out.contains("did not authenticate"), "{out}");
}

#[test]
fn unrecognised_text_and_bad_input_exit_2() {
    let env = TestEnv::new();
    let out = env.kubepki(&["explain", "the", "cluster", "is", "fine"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no TLS error message kubepki recognises") && err.contains("the cluster is fine"), "{err}");
    let out = env.kubepki(&["explain", "--file", "no-such.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.log"), "the error names the file");
    // Without a tree: the cause alone, from stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(["explain", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"E1129 12:00:00.000000  1 x.go:1] remote error: tls: bad certificate\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1. remote error: tls: bad certificate") && text.contains("the server refused"), "{text}");
}
