//! The tree against the real client: kubectl (client-go's TLS) reads kubepki's kubeconfigs and
//! dials `openssl s_server`, which presents the tree's apiserver certificate and demands a client
//! certificate from a given CA. A handshake that completes proves the kubeconfig's CA data, client
//! certificate and key and the apiserver certificate fit together; the failures prove kubectl and the
//! server really check what the tree claims (the CA, the SANs, the client's issuer).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{free_port, have, run, wait_for_port, wait_until, Guard, TestEnv};

/// Every kubeconfig of the default tree, with the CN of the client certificate it embeds.
const KUBECONFIGS: &[(&str, &str)] = &[
    ("admin.conf", "kubernetes-admin"),
    ("super-admin.conf", "kubernetes-super-admin"),
    ("controller-manager.conf", "system:kube-controller-manager"),
    ("scheduler.conf", "system:kube-scheduler"),
    ("kubelet.conf", "system:node:controlplane"),
    ("kube-proxy.conf", "system:kube-proxy"),
    ("nodes/node01/etc/kubernetes/kubelet.conf", "system:node:node01"),
];

pub(crate) fn require_tools() {
    assert!(have("kubectl"), "kubectl is not on PATH: the kubectl tests need it (.ci/run installs it)");
    assert!(have("openssl"), "openssl is not on PATH: the kubectl tests need `openssl s_server`");
}

/// A running `openssl s_server -www` requiring a client certificate.
pub(crate) struct Server {
    pub(crate) guard: Guard,
    ip: String,
    port: u16,
}

impl Server {
    /// Serve `tree`'s apiserver certificate and key on `ip`, accepting only client certificates
    /// signed by `client_ca`.
    fn start(env: &TestEnv, name: &str, ip: &str, tree: &Path, client_ca: &Path) -> Server {
        Server::start_with(env, name, ip, &tree.join("pki/apiserver.crt"), &tree.join("pki/apiserver.key"), client_ca)
    }

    /// Serve this certificate and key on `ip`, accepting only client certificates signed by `client_ca`.
    pub(crate) fn start_with(env: &TestEnv, name: &str, ip: &str, cert: &Path, key: &Path, client_ca: &Path) -> Server {
        Server::start_sending(env, name, ip, cert, key, client_ca, &[])
    }

    /// The same, sending these CA certificates after its own (`-cert_chain`).
    pub(crate) fn start_sending(
        env: &TestEnv,
        name: &str,
        ip: &str,
        cert: &Path,
        key: &Path,
        client_ca: &Path,
        chain: &[&Path],
    ) -> Server {
        // free_port releases the port before s_server binds it: a parallel test may take it in
        // between, so a bind failure is retried on a fresh port.
        for attempt in 0..5 {
            let port = free_port(ip);
            let mut cmd = Command::new("openssl");
            cmd.arg("s_server")
                .arg("-accept")
                .arg(format!("{ip}:{port}"))
                .arg("-cert")
                .arg(cert)
                .arg("-key")
                .arg(key)
                .arg("-CAfile")
                .arg(client_ca)
                .args(chain.iter().flat_map(|c| [std::ffi::OsStr::new("-cert_chain"), c.as_os_str()]))
                .args(["-Verify", "1", "-verify_return_error", "-www"]);
            for c in chain {
                cmd.arg("-cert_chain").arg(c);
            }
            let log = env.path().join(format!("{name}.{attempt}.log"));
            let mut guard = Guard::spawn(name, cmd, &log);
            // s_server prints ACCEPT once it listens, or exits (status 0!) when it cannot bind.
            let mut exited = false;
            wait_until(&format!("{name} to listen on {ip}:{port}"), Duration::from_secs(20), || {
                exited = matches!(guard.child.try_wait(), Ok(Some(_)));
                exited || guard.log_text().contains("ACCEPT")
            });
            if exited {
                let text = guard.log_text();
                if text.contains("Address already in use") {
                    continue;
                }
                panic!("{name} exited before listening on {ip}:{port}:\n{text}");
            }
            wait_for_port(&mut guard, ip, port);
            return Server { guard, ip: ip.into(), port };
        }
        panic!("{name}: no free port on {ip} after 5 attempts");
    }

    pub(crate) fn url(&self) -> String {
        format!("https://{}:{}", self.ip, self.port)
    }
}

/// Run kubectl with this kubeconfig, isolated from the user's own configuration and proxies.
pub(crate) fn kubectl(env: &TestEnv, kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(env.path().join("kube-cache"))
        .args(args)
        .env("HOME", env.path())
        .env_remove("KUBECONFIG");
    for proxy in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    run(&mut cmd)
}

/// `kubectl get --raw /healthz` against `server`, the kubeconfig's server address replaced by the
/// server's (the certificate is still checked against the name in `--server`, or `extra`'s
/// `--tls-server-name`).
pub(crate) fn healthz(env: &TestEnv, kubeconfig: &Path, server: &mut Server, extra: &[&str]) -> (bool, String) {
    let url = server.url();
    let mut args = vec!["--server", &url, "--request-timeout", "20s"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["get", "--raw", "/healthz"]);
    let result = kubectl(env, kubeconfig, &args);
    // A refusal must come from the TLS checks, never from a server that died.
    server.guard.assert_running();
    result
}

/// The handshake completed with this kubeconfig, and the server saw the expected client certificate.
fn assert_handshake(env: &TestEnv, kubeconfig: &Path, server: &mut Server, extra: &[&str], client_cn: &str) {
    let (ok, out) = healthz(env, kubeconfig, server, extra);
    let context = format!("{} {extra:?} against {}", kubeconfig.display(), server.url());
    assert!(ok, "kubectl failed with {context}:\n{out}\n--- server log:\n{}", server.guard.log_text());
    // s_server -www answers any GET with its status page, which shows the verified client certificate.
    assert!(out.contains("s_server") && out.contains("Ciphers"), "not s_server's status page with {context}:\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "client certificate not verified with {context}:\n{out}");
    let subject = format!("CN={client_cn}\n");
    assert!(out.contains(&subject), "client certificate is not {subject:?} with {context}:\n{out}");
}

/// kubectl failed with this kubeconfig, saying `expected`.
fn assert_refused(env: &TestEnv, kubeconfig: &Path, server: &mut Server, extra: &[&str], expected: &str) {
    let (ok, out) = healthz(env, kubeconfig, server, extra);
    let context = format!("{} {extra:?} against {}", kubeconfig.display(), server.url());
    assert!(!ok, "kubectl succeeded with {context}, expected {expected:?}:\n{out}");
    assert!(out.contains(expected), "kubectl with {context} failed without {expected:?}:\n{out}");
}

#[test]
fn admin_conf_completes_mtls_with_apiserver_cert() {
    require_tools();
    let env = TestEnv::new();
    for (tree, extra) in [("ecdsa", &[][..]), ("rsa", &["--key-algorithm", "rsa-2048"][..])] {
        let dir = env.init(tree, extra);
        let mut server = Server::start(&env, &format!("s_server-{tree}"), "127.0.0.1", &dir, &dir.join("pki/ca.crt"));
        for (conf, cn) in KUBECONFIGS {
            assert_handshake(&env, &dir.join(conf), &mut server, &[], cn);
        }
    }
}

#[test]
fn kubectl_refuses_server_with_unknown_ca() {
    require_tools();
    let env = TestEnv::new();
    let ours = env.init("ours", &[]);
    let theirs = env.init("theirs", &[]);
    // Their apiserver certificate (issuer also named "kubernetes", another key); the server would
    // accept our client certificate, so only kubectl's check of the server can fail.
    let mut server = Server::start(&env, "s_server-theirs", "127.0.0.1", &theirs, &ours.join("pki/ca.crt"));
    assert_refused(&env, &ours.join("admin.conf"), &mut server, &[], "x509: certificate signed by unknown authority");
    // The control: their own admin.conf trusts that server, and is refused by it.
    assert_refused(
        &env,
        &theirs.join("admin.conf"),
        &mut server,
        &[],
        "remote error: tls: unknown certificate authority",
    );
}

#[test]
fn server_refuses_client_cert_from_other_ca() {
    require_tools();
    let env = TestEnv::new();
    let ours = env.init("ours", &[]);
    let theirs = env.init("theirs", &[]);
    let other_cas = [ours.join("pki/front-proxy-ca.crt"), ours.join("pki/etcd/ca.crt"), theirs.join("pki/ca.crt")];
    for (i, ca) in other_cas.iter().enumerate() {
        let mut server = Server::start(&env, &format!("s_server-other-ca-{i}"), "127.0.0.1", &ours, ca);
        assert_refused(
            &env,
            &ours.join("admin.conf"),
            &mut server,
            &[],
            "remote error: tls: unknown certificate authority",
        );
    }
}

#[test]
fn kubectl_checks_the_san() {
    require_tools();
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let admin = dir.join("admin.conf");
    // 127.0.0.5 is loopback on Linux but not among the apiserver certificate's SANs.
    let mut server = Server::start(&env, "s_server-127.0.0.5", "127.0.0.5", &dir, &dir.join("pki/ca.crt"));
    assert_refused(
        &env,
        &admin,
        &mut server,
        &[],
        "x509: certificate is valid for 10.96.0.1, 127.0.0.1, not 127.0.0.5",
    );
    assert_refused(
        &env,
        &admin,
        &mut server,
        &["--tls-server-name", "node01"],
        "x509: certificate is valid for controlplane, kubernetes, kubernetes.default, kubernetes.default.svc, \
         kubernetes.default.svc.cluster.local, not node01",
    );
    // The same server, checked against each SAN instead of the address dialled, is accepted.
    for san in [
        "controlplane",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.96.0.1",
        "127.0.0.1",
    ] {
        assert_handshake(&env, &admin, &mut server, &["--tls-server-name", san], "kubernetes-admin");
    }
}

#[test]
fn kubeconfig_with_boolean_looking_names_is_read_by_kubectl() {
    require_tools();
    let env = TestEnv::new();
    // "on" is a string in the description (quoted) but a boolean to a YAML 1.1 reader such as
    // kubectl's, unless kubepki quotes it in the kubeconfig.
    let description = env.write(
        "on.yaml",
        "clusterName: \"on\"\n\
         nodes:\n  \
           - name: controlplane\n    \
             role: control-plane\n    \
             addresses: [\"127.0.0.1\"]\n",
    );
    let dir = env.init("tree", &["--config", description.to_str().unwrap()]);
    let admin = dir.join("admin.conf");
    for (path, expected) in [
        ("{.clusters[0].name}", "on"),
        ("{.contexts[0].context.cluster}", "on"),
        ("{.contexts[0].name}", "kubernetes-admin@on"),
        ("{.current-context}", "kubernetes-admin@on"),
    ] {
        let (ok, out) = kubectl(&env, &admin, &["config", "view", "-o", &format!("jsonpath={path}")]);
        assert!(ok, "kubectl config view {path} failed:\n{out}");
        assert_eq!(out, expected, "kubectl reads {path} of {} as {out:?}", admin.display());
    }
    let mut server = Server::start(&env, "s_server-on", "127.0.0.1", &dir, &dir.join("pki/ca.crt"));
    assert_handshake(&env, &admin, &mut server, &[], "kubernetes-admin");
}
