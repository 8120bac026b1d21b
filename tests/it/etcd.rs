//! Prove the etcd part of the generated PKI against a real etcd (Debian's 3.4, installed by
//! `.ci/run`): each member runs the command of its node's generated static pod manifest
//! (`nodes/<cp>/etc/kubernetes/manifests/etcd.yaml`), with only what a test must change
//! rewritten (the host path `/etc/kubernetes` to the node's bundle, the data directory, the
//! ports to free ones); members talk to each other over peer TLS with their own node's files,
//! the kube-apiserver's client credential as its generated manifest names it and the
//! healthcheck's are accepted, and certificates from the wrong authority are refused, in both
//! directions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{free_port, run, wait_for_port, Guard, TestEnv};

/// How long a cluster may take to become healthy (measured: about one second).
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// etcd and etcdctl must be installed: CI installs them, so a missing one is a failure, not a skip.
pub(crate) fn require_etcd() {
    for program in ["etcd", "etcdctl"] {
        assert!(
            crate::support::have(program),
            "`{program}` is not on PATH: these tests need etcd 3.4 (Debian: apt-get install etcd-server etcd-client; \
             .ci/run installs it)"
        );
    }
}

/// One etcd member: a control-plane node of the description, with its own ports.
pub(crate) struct Member {
    name: &'static str,
    ip: &'static str,
    client_port: u16,
    peer_port: u16,
}

impl Member {
    fn new(name: &'static str, ip: &'static str) -> Member {
        Member { name, ip, client_port: free_port(ip), peer_port: free_port(ip) }
    }

    pub(crate) fn client_url(&self) -> String {
        format!("https://{}:{}", self.ip, self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("https://{}:{}", self.ip, self.peer_port)
    }
}

/// A description with these control planes, `kubepki init` on it; returns the tree.
fn init_tree(env: &TestEnv, members: &[Member]) -> PathBuf {
    let mut yaml = String::from("nodes:\n");
    for m in members {
        yaml.push_str(&format!("  - {{name: {}, role: control-plane, addresses: [\"{}\"]}}\n", m.name, m.ip));
    }
    let config = env.write("cluster.yaml", &yaml);
    env.init("tree", &["--config", config.to_str().unwrap()])
}

/// The command of a node's generated static pod manifest `manifest`: the program and its
/// arguments, as the kubelet would run them.
fn manifest_command(tree: &Path, node: &str, manifest: &str) -> Vec<String> {
    let path = tree.join("nodes").join(node).join("etc/kubernetes/manifests").join(manifest);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pod: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let command = pod["spec"]["containers"][0]["command"].as_sequence().expect("a command");
    command.iter().map(|a| a.as_str().expect("a string").to_owned()).collect()
}

/// A manifest's `--flag=value`.
fn flag<'a>(command: &'a [String], name: &str) -> Option<&'a str> {
    command.iter().find_map(|a| a.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

/// What a test must change in a member's generated etcd command to run it here: the node's
/// `/etc/kubernetes` is its bundle in the tree, the data directory is the test's, and each
/// member's well-known ports (2379, 2380, the metrics port) are free ones on its address.
/// Everything else, the TLS flags first, is the manifest's.
fn runnable(command: &[String], tree: &Path, node: &str, data: &Path, members: &[Member], metrics: u16) -> Vec<String> {
    let etc = tree.join("nodes").join(node).join("etc/kubernetes");
    let etc = etc.to_str().unwrap();
    command[1..]
        .iter()
        .map(|arg| {
            if arg.starts_with("--data-dir=") {
                return format!("--data-dir={}", data.display());
            }
            if arg.starts_with("--listen-metrics-urls=") {
                let me = members.iter().find(|m| m.name == node).unwrap();
                return format!("--listen-metrics-urls=http://{}:{metrics}", me.ip);
            }
            let mut arg = arg.replace("=/etc/kubernetes/", &format!("={etc}/"));
            for m in members {
                arg = arg
                    .replace(&format!("https://{}:2379", m.ip), &m.client_url())
                    .replace(&format!("https://{}:2380", m.ip), &m.peer_url());
            }
            arg
        })
        .collect()
}

/// Start every member of a new cluster, each from its node's generated manifest (see
/// [`runnable`]); wait until each listens for clients.
fn start_cluster(env: &TestEnv, tree: &Path, members: &[Member]) -> Vec<Guard> {
    let mut guards: Vec<Guard> = members
        .iter()
        .map(|m| {
            let generated = manifest_command(tree, m.name, "etcd.yaml");
            assert_eq!(generated[0], "etcd");
            // The manifest wires the member's own files and turns on both verifications.
            for (name, value) in [
                ("--name", m.name.to_string()),
                ("--client-cert-auth", "true".into()),
                ("--peer-client-cert-auth", "true".into()),
                ("--cert-file", "/etc/kubernetes/pki/etcd/server.crt".into()),
                ("--peer-cert-file", "/etc/kubernetes/pki/etcd/peer.crt".into()),
                ("--trusted-ca-file", "/etc/kubernetes/pki/etcd/ca.crt".into()),
                ("--peer-trusted-ca-file", "/etc/kubernetes/pki/etcd/ca.crt".into()),
            ] {
                assert_eq!(flag(&generated, name), Some(value.as_str()), "{name} in {}'s manifest", m.name);
            }
            let data = env.path().join(format!("{}.etcd", m.name));
            let args = runnable(&generated, tree, m.name, &data, members, free_port(m.ip));
            // Only paths and addresses changed: every TLS flag is the manifest's, re-rooted.
            for (before, after) in generated[1..].iter().zip(&args) {
                if before.contains("/etc/kubernetes/") {
                    let file = Path::new(after.split_once('=').unwrap().1);
                    assert!(file.is_file(), "{} ({before}) is missing from {}'s bundle", file.display(), m.name);
                } else if !before.contains("://") && !before.starts_with("--data-dir=") {
                    assert_eq!(before, after);
                }
            }
            let mut cmd = Command::new("etcd");
            cmd.args(&args);
            Guard::spawn(&format!("etcd {}", m.name), cmd, &env.path().join(format!("{}.log", m.name)))
        })
        .collect();
    for (guard, m) in guards.iter_mut().zip(members) {
        wait_for_port(guard, m.ip, m.client_port);
    }
    guards
}

/// A client identity: the CA that must have signed the server, and the client's own pair.
pub(crate) struct Client {
    pub(crate) cacert: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Client {
    /// A client that trusts the etcd CA and presents `pki/<pair>.{crt,key}` of the tree.
    pub(crate) fn etcd(tree: &Path, pair: &str) -> Client {
        let pki = tree.join("pki");
        Client {
            cacert: pki.join("etcd/ca.crt"),
            cert: pki.join(format!("{pair}.crt")),
            key: pki.join(format!("{pair}.key")),
        }
    }

    /// The kube-apiserver's etcd credential, as its generated manifest on `node` names it
    /// (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`), in that node's bundle.
    pub(crate) fn apiserver(tree: &Path, node: &str) -> Client {
        let command = manifest_command(tree, node, "kube-apiserver.yaml");
        let etc = tree.join("nodes").join(node).join("etc/kubernetes");
        let file = |name: &str| {
            let named = flag(&command, name).unwrap_or_else(|| panic!("{name} is not in {node}'s apiserver manifest"));
            etc.join(named.strip_prefix("/etc/kubernetes/").expect("a file of /etc/kubernetes"))
        };
        Client { cacert: file("--etcd-cafile"), cert: file("--etcd-certfile"), key: file("--etcd-keyfile") }
    }

    /// etcdctl (API v3) against these endpoints; short timeouts so that a refusal returns fast.
    pub(crate) fn etcdctl(&self, endpoints: &[String], args: &[&str]) -> (bool, String) {
        run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .arg("--cacert")
            .arg(&self.cacert)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .args(["--dial-timeout=2s", "--command-timeout=2s"])
            .args(args))
    }
}

/// The members' logs, for a failure message.
fn logs(guards: &[Guard]) -> String {
    guards.iter().map(|g| format!("--- {} ({})\n{}", g.name, g.log.display(), g.log_text())).collect()
}

/// Poll `etcdctl endpoint health` on every member until all are healthy; fail with the last
/// answer and the members' logs otherwise, or as soon as a member exits.
fn wait_healthy(guards: &mut [Guard], members: &[Member], client: &Client) {
    let endpoints: Vec<String> = members.iter().map(Member::client_url).collect();
    let start = Instant::now();
    loop {
        for g in guards.iter_mut() {
            g.assert_running();
        }
        let (ok, out) = client.etcdctl(&endpoints, &["endpoint", "health"]);
        if ok && out.matches("is healthy").count() == members.len() {
            return;
        }
        assert!(
            start.elapsed() < HEALTHY_WITHIN,
            "etcd not healthy after {HEALTHY_WITHIN:?}; last `etcdctl endpoint health`:\n{out}\n{}",
            logs(guards)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until `guard`'s log, past its first `since` bytes, has a line containing every one of
/// `needles`; returns that line.
pub(crate) fn wait_for_log_line(guard: &mut Guard, since: usize, needles: &[&str]) -> String {
    let start = Instant::now();
    let timeout = Duration::from_secs(10);
    loop {
        let text = guard.log_text();
        let new = text.get(since..).unwrap_or_default();
        if let Some(line) = new.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            start.elapsed() < timeout,
            "no line with {needles:?} in {}'s log after {timeout:?}; log since the request:\n{new}",
            guard.name
        );
        guard.assert_running();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A single member on its own address, started and healthy, for the refusal tests.
pub(crate) fn single_member(env: &TestEnv, ip: &'static str) -> (PathBuf, Member, Guard) {
    let members = [Member::new("cp1", ip)];
    let tree = init_tree(env, &members);
    let mut guards = start_cluster(env, &tree, &members);
    wait_healthy(&mut guards, &members, &Client::etcd(&tree, "etcd/healthcheck-client"));
    let [member] = members;
    (tree, member, guards.pop().unwrap())
}

#[test]
fn three_member_cluster_with_generated_certs() {
    require_etcd();
    let env = TestEnv::new();
    let members =
        [Member::new("cp1", "127.0.0.11"), Member::new("cp2", "127.0.0.12"), Member::new("cp3", "127.0.0.13")];
    let tree = init_tree(&env, &members);
    let mut guards = start_cluster(&env, &tree, &members);

    // The health check's identity, as kubeadm's etcd liveness probe would use it.
    let healthcheck = Client::etcd(&tree, "etcd/healthcheck-client");
    wait_healthy(&mut guards, &members, &healthcheck);

    let all: Vec<String> = members.iter().map(Member::client_url).collect();
    let (ok, out) = healthcheck.etcdctl(&all[..1], &["member", "list"]);
    assert!(ok, "member list failed:\n{out}\n{}", logs(&guards));
    assert_eq!(out.lines().count(), 3, "member list should show 3 members:\n{out}");
    for m in &members {
        let line = out.lines().find(|l| l.contains(&format!(", {}, ", m.name)));
        let line = line.unwrap_or_else(|| panic!("{} missing from member list:\n{out}", m.name));
        assert!(line.contains("started"), "{} is not started:\n{out}", m.name);
        assert!(line.contains(&m.peer_url()) && line.contains(&m.client_url()), "{} has wrong URLs:\n{out}", m.name);
    }

    // The kube-apiserver of cp1, with the files its generated manifest names, writes on
    // member 1; cp3's reads on member 3: the value got there over peer TLS.
    let apiserver = Client::apiserver(&tree, "cp1");
    let (ok, out) = apiserver.etcdctl(&all[0..1], &["put", "kubepki", "proven"]);
    assert!(ok && out.trim() == "OK", "put on cp1 failed:\n{out}\n{}", logs(&guards));
    let (ok, out) = Client::apiserver(&tree, "cp3").etcdctl(&all[2..3], &["get", "kubepki", "--print-value-only"]);
    assert!(ok, "get on cp3 failed:\n{out}\n{}", logs(&guards));
    assert_eq!(out.trim(), "proven", "cp3 should read what cp1 wrote");

    // Every TLS handshake went through: no member refused a peer's or a client's certificate.
    // (Bare "EOF" rejections are connections closed before a handshake, e.g. the port probe.)
    for g in &mut guards {
        g.assert_running();
        let text = g.log_text();
        let refused: Vec<&str> =
            text.lines().filter(|l| l.contains("rejected connection") && l.contains("certificate")).collect();
        assert!(refused.is_empty(), "{} refused a certificate:\n{}", g.name, refused.join("\n"));
    }
}

#[test]
fn client_cert_from_cluster_ca_is_refused() {
    require_etcd();
    let env = TestEnv::new();
    let (tree, member, mut guard) = single_member(&env, "127.0.0.21");
    let endpoint = [member.client_url()];

    // Signed by the cluster CA ("kubernetes"), not the etcd CA: etcd must refuse it.
    let kubelet_client = Client::etcd(&tree, "apiserver-kubelet-client");
    let since = guard.log_text().len();
    let (ok, out) = kubelet_client.etcdctl(&endpoint, &["put", "kubepki", "intruder"]);
    assert!(!ok, "etcd accepted a client certificate signed by the cluster CA:\n{out}");
    let line = wait_for_log_line(
        &mut guard,
        since,
        &["rejected connection from", "tls: failed to verify client", "certificate signed by unknown authority"],
    );
    eprintln!("etcd's refusal: {line}");

    // The same request with the etcd CA's client identity works: the refusal was about the CA.
    let apiserver = Client::etcd(&tree, "apiserver-etcd-client");
    let (ok, out) = apiserver.etcdctl(&endpoint, &["put", "kubepki", "proven"]);
    assert!(ok && out.trim() == "OK", "put with apiserver-etcd-client failed:\n{out}\n{}", guard.log_text());
    let (ok, out) = apiserver.etcdctl(&endpoint, &["get", "kubepki", "--print-value-only"]);
    assert!(ok && out.trim() == "proven", "the refused put must not have landed:\n{out}");
}

#[test]
fn server_identity_checked_by_client() {
    require_etcd();
    let env = TestEnv::new();
    let (tree, member, mut guard) = single_member(&env, "127.0.0.22");
    let endpoint = [member.client_url()];

    // A valid etcd client identity, but trusting the cluster CA: the server's certificate
    // (signed by the etcd CA) must not be accepted by the client.
    let client = Client { cacert: tree.join("pki/ca.crt"), ..Client::etcd(&tree, "apiserver-etcd-client") };
    let since = guard.log_text().len();
    let (ok, out) = client.etcdctl(&endpoint, &["put", "kubepki", "unverified"]);
    assert!(!ok, "etcdctl accepted a server certificate it should not trust:\n{out}");
    // The client hangs up with an alert; the server logs it.
    let line = wait_for_log_line(&mut guard, since, &["rejected connection from", "bad certificate"]);
    eprintln!("etcd's view of the client's refusal: {line}");

    let (ok, out) = Client::etcd(&tree, "apiserver-etcd-client").etcdctl(&endpoint, &["get", "kubepki"]);
    assert!(ok && !out.contains("unverified"), "the unverified put must not have landed:\n{out}");
}

/// `verify --endpoint --as` against a real etcd: it completes with the right credential, and
/// explains a refused client certificate and a server certificate from an untrusted CA.
#[test]
fn verify_endpoint_explains_handshakes_with_a_real_etcd() {
    require_etcd();
    let env = TestEnv::new();
    let (tree, member, _guard) = single_member(&env, "127.0.0.23");
    let config = env.path().join("cluster.yaml");
    let probe = |credential: &str| {
        let out = env.kubepki(&[
            "verify",
            "--dir",
            tree.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--endpoint",
            &member.client_url(),
            "--as",
            credential,
        ]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = probe("apiserver-etcd-client");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("handshake completed") && text.contains("issued by CN=etcd-ca"), "{text}");

    // A client that trusts the cluster CA cannot verify etcd's server certificate.
    let (code, text) = probe("apiserver-kubelet-client");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("was issued by CN=etcd-ca, which the client does not trust"), "{text}");

    // The right trust, but a client certificate etcd does not trust: etcd refuses it.
    let (ok, out) = run(Command::new("cp")
        .arg(tree.join("pki/apiserver-kubelet-client.crt"))
        .arg(tree.join("pki/apiserver-etcd-client.crt")));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("cp")
        .arg(tree.join("pki/apiserver-kubelet-client.key"))
        .arg(tree.join("pki/apiserver-etcd-client.key")));
    assert!(ok, "{out}");
    let (code, text) = probe("apiserver-etcd-client");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "the server refused the client certificate O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client"
        ),
        "{text}"
    );
}
