//! Issue 12's adversarial cases, each a regression test at the command line: nothing signed
//! that should not be, no secret printed, nothing read without bound, no panic, nothing half
//! applied.

use std::path::{Path, PathBuf};

use crate::support::{snapshot, TestEnv};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every path under a tree, directories included.
fn paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn node_add_with_an_address_no_node_can_have_writes_nothing() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let (files, all) = (snapshot(&dir), paths(&dir));
    let bad: &[(&[&str], &str)] = &[
        (&["--ip", "0.0.0.0"], "--ip: 0.0.0.0 is the unspecified address"),
        (&["--ip", "::"], "--ip: :: is the unspecified address"),
        (&["--ip", "224.0.0.1"], "--ip: 224.0.0.1 is a multicast address"),
        (&["--ip", "ff02::1"], "--ip: ff02::1 is a multicast address"),
        (&["--ip", "255.255.255.255"], "--ip: 255.255.255.255 is the broadcast address"),
        (&["--ip", "::ffff:127.0.0.9"], "--ip: ::ffff:127.0.0.9 is an IPv4 address written as IPv6: write 127.0.0.9"),
        (&["--ip", "127.0.0.9", "--dns", "*.evil.com"], "--dns: '*.evil.com' is a wildcard"),
    ];
    for role in ["worker", "control-plane"] {
        for (args, expected) in bad {
            let mut argv = vec!["node", "add", "n3", "--role", role, "--dir", d];
            argv.extend_from_slice(args);
            let out = env.kubepki(&argv);
            assert_eq!(out.status.code(), Some(2), "{role} {args:?}");
            assert!(
                stderr(&out).contains(&format!("kubepki: error: node add: {expected}")),
                "{role}: {}",
                stderr(&out)
            );
            assert_eq!(paths(&dir), all, "{role} {args:?}: no file or directory made");
            assert_eq!(snapshot(&dir), files, "{role} {args:?}: nothing changed");
        }
    }
    // The tree is still usable, and a good node is logged as what made it.
    for args in
        [vec!["verify", "--dir", d], vec!["node", "add", "n3", "--role", "worker", "--ip", "127.0.0.9", "--dir", d]]
    {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let log = kubepki::disk::issuance::read(&dir).unwrap();
    let added: Vec<&str> = log.iter().filter(|r| r.command == "node add").map(|r| r.subject.as_str()).collect();
    assert_eq!(added.len(), 2, "kubelet client and serving: {added:?}");
    assert!(added.iter().all(|s| s.contains("system:node:n3")), "{added:?}");
    assert!(log.iter().filter(|r| r.command == "init").all(|r| !r.subject.contains("n3")));
}

/// `--config pki/ca.key` printed the whole key in the YAML error.
#[test]
fn no_command_prints_a_key_given_as_its_config() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let key_path = dir.join("pki/ca.key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let k = key_path.to_str().unwrap();
    let out_dir = env.path().join("out");
    for args in [
        vec!["plan", "--config", k],
        vec!["init", "--config", k, "--dir", out_dir.to_str().unwrap()],
        vec!["graph", "--config", k],
        vec!["csr", "--config", k, "--dir", out_dir.to_str().unwrap()],
        vec!["verify", "--config", k, "--dir", dir.to_str().unwrap()],
    ] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(shown.contains(k), "{args:?}: names the file: {shown}");
        for line in &body {
            for piece in line.as_bytes().chunks(16).map(|c| std::str::from_utf8(c).unwrap()) {
                assert!(!shown.contains(piece), "{args:?} shows key material {piece}: {shown}");
            }
        }
    }
    assert!(!out_dir.exists(), "nothing made");
}

/// A 50 MB `clusterName` was echoed whole; control characters were printed raw.
#[test]
fn echoed_input_is_cut_short_and_escaped() {
    let env = TestEnv::new();
    let long = "a".repeat(5_000_000);
    let config = env.write(
        "long.yaml",
        &format!("clusterName: \"{long}\"\nnodes:\n- {{name: cp, role: control-plane, addresses: [10.0.0.1]}}\n"),
    );
    let out = env.kubepki(&["plan", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.len() < 1_000, "{} bytes", err.len());
    assert!(err.contains("long.yaml: clusterName: "), "{err}");
    let config = env.write(
        "esc.yaml",
        "clusterName: \"evil\\e[2J\\0\"\nnodes:\n- {name: cp, role: control-plane, addresses: [\"10.0.0.1\\e[31m\"]}\n",
    );
    let out = env.kubepki(&["plan", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}') && !err.contains('\0'), "{err:?}");
    assert!(err.contains("\\u{1b}"), "{err}");
}

/// `validity: {ca: 3000000d}` passed plan and made init panic, leaving 13 empty directories.
#[test]
fn a_validity_too_long_is_refused_before_anything_is_made() {
    let env = TestEnv::new();
    let config = env.write(
        "long.yaml",
        "validity: {ca: 3000000d}\nnodes:\n- {name: cp, role: control-plane, addresses: [10.0.0.1]}\n",
    );
    let dir = env.path().join("tree");
    for args in [
        vec!["plan", "--config", config.to_str().unwrap()],
        vec!["init", "--config", config.to_str().unwrap(), "--dir", dir.to_str().unwrap()],
    ] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("validity.ca: '3000000d' is longer than 36500 days"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    assert!(!dir.exists());
}

/// Run kubepki, killed (and the test failed) if it takes longer than `limit`.
fn kubepki_within(env: &TestEnv, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .current_dir(env.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = std::time::Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    crate::support::wait_until(&format!("kubepki {args:?}"), limit, || waiter.is_finished());
    assert!(start.elapsed() < limit, "pid {pid}");
    waiter.join().unwrap()
}

/// `inspect /dev/zero` read 4.3 GB; a FIFO with no writer hung; a kubeconfig whose
/// `client-certificate` is `/dev/zero` took 4.8 GB via inspect and 6.5 GB via check.
#[test]
fn only_regular_files_are_read_and_no_more_than_their_kind_holds() {
    let env = TestEnv::new();
    let fifo = env.path().join("fifo");
    let (ok, text) = crate::support::run(std::process::Command::new("mkfifo").arg(&fifo));
    assert!(ok, "{text}");
    let sparse = env.path().join("sparse.crt");
    std::fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
    let limit = std::time::Duration::from_secs(20);
    for (path, says) in [
        ("/dev/zero", "/dev/zero: a character device: kubepki reads regular files only"),
        ("/dev/urandom", "/dev/urandom: a character device: kubepki reads regular files only"),
        (fifo.to_str().unwrap(), "fifo: a FIFO: kubepki reads regular files only"),
        (sparse.to_str().unwrap(), "sparse.crt: 2147483648 bytes or more: larger than a kubeconfig can be"),
    ] {
        let out = kubepki_within(&env, &["inspect", path], limit);
        assert_eq!(out.status.code(), Some(2), "{path}");
        assert!(stderr(&out).contains(says), "{path}: {}", stderr(&out));
    }
    // A kubeconfig that refers to a device, in inspect and in a tree that check reads.
    let dir = env.init("tree", &[]);
    let conf = dir.join("admin.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let referring: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("client-certificate-data:") {
                "    client-certificate: /dev/zero".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&conf, referring).unwrap();
    let out = kubepki_within(&env, &["inspect", conf.to_str().unwrap(), "-o", "json"], limit);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("a character device: kubepki reads regular files only"), "{shown}{}", stderr(&out));
    let out = kubepki_within(&env, &["check", "--dir", dir.to_str().unwrap()], limit);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("admin.conf -> /dev/zero: cannot read /dev/zero: a character device"), "{shown}");

    // A file of the tree itself that is a device: every command says so, at once.
    let ca = dir.join("pki/front-proxy-ca.crt");
    std::fs::remove_file(&ca).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &ca).unwrap();
    let d = dir.to_str().unwrap();
    for args in [
        vec!["init", "--dir", d],
        vec!["verify", "--dir", d],
        vec!["check", "--dir", d],
        vec!["renew", "--all", "--dir", d],
    ] {
        let out = kubepki_within(&env, &args, limit);
        assert!(!out.status.success(), "{args:?}");
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(shown.contains("a character device: kubepki reads regular files only"), "{args:?}: {shown}");
    }
}

/// The issuance log as a symbolic link was appended through.
#[test]
fn the_issuance_log_is_never_appended_through_a_symlink() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let log = dir.join(".kubepki/issued.jsonl");
    let elsewhere = env.path().join("elsewhere.jsonl");
    std::fs::write(&elsewhere, "").unwrap();
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &log).unwrap();
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    for args in [
        vec!["renew", "admin.conf", "--dir", d],
        vec!["node", "add", "n3", "--role", "worker", "--ip", "127.0.0.9", "--dir", d],
    ] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("issued.jsonl: a symbolic link"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "", "nothing appended through the link");
        assert_eq!(snapshot(&dir), before, "{args:?}: nothing written");
    }
}

fn openssl(args: &[&str]) -> String {
    let (ok, text) = crate::support::run(std::process::Command::new("openssl").args(args));
    assert!(ok, "openssl {args:?}: {text}");
    text
}

/// An RSA-1024 request was reported as "signature INVALID" instead of "weak key".
#[test]
fn a_short_rsa_key_is_named_weak_not_a_bad_signature() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let csr = env.path().join("weak.csr");
    let key = env.path().join("weak.key");
    let (k, c) = (key.to_str().unwrap(), csr.to_str().unwrap());
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        k,
        "-subj",
        "/O=system:nodes/CN=system:node:node01",
        "-out",
        c,
    ]);
    let text = env.kubepki_ok(&["inspect", c]);
    assert!(text.contains("RSA-1024 (1024 bits), WEAK: the key is RSA-1024"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption, valid (signed by its own key)"), "{text}");
    // approve denies it for its key.
    let pem = std::fs::read_to_string(&csr).unwrap();
    use base64::Engine;
    let doc = serde_json::json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "weak"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
        "request": base64::engine::general_purpose::STANDARD.encode(pem), "usages": ["digital signature", "client auth"],
        "username": "system:node:node01"}});
    let file = env.write("weak.json", &doc.to_string());
    let out = env.kubepki(&[
        "approve",
        file.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--approve",
        "kubelet-client",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("DENIED WeakKey: the key is RSA-1024"), "{}", stderr(&out));
}

/// `sign` with no key on disk signed a request for any key; `sign --force` replaced the live
/// `pki/apiserver.crt` without a backup.
#[test]
fn sign_needs_the_key_beside_the_request_and_backs_up_what_it_replaces() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["csr", "--dir", d, "--force"]);
    let csr = dir.join("pki/apiserver.csr");
    let key = dir.join("pki/apiserver.key");
    let live = std::fs::read(dir.join("pki/apiserver.crt")).unwrap();

    // A stranger's request in place of the tree's, and no key beside it.
    let stranger = env.path().join("stranger.key");
    let subject = "/CN=kube-apiserver";
    let sans = "subjectAltName=DNS:controlplane,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:127.0.0.1";
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        stranger.to_str().unwrap(),
        "-subj",
        subject,
        "-addext",
        sans,
        "-out",
        csr.to_str().unwrap(),
    ]);
    std::fs::remove_file(&key).unwrap();
    let before = snapshot(&dir);
    let out = env.kubepki(&["sign", "--dir", d, "--ca", "ca", "--force", csr.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("its key pki/apiserver.key is not in the tree"), "{}", stderr(&out));
    assert_eq!(snapshot(&dir), before, "nothing written");

    // With the key of the request beside it, --force replaces the live certificate and saves it.
    std::fs::copy(&stranger, &key).unwrap();
    let text = env.kubepki_ok(&["sign", "--dir", d, "--ca", "ca", "--force", csr.to_str().unwrap()]);
    let saved = text.lines().find_map(|l| l.strip_prefix("the certificates replaced were saved in ")).expect(&text);
    assert_eq!(std::fs::read(Path::new(saved).join("pki/apiserver.crt")).unwrap(), live);
    assert_ne!(std::fs::read(dir.join("pki/apiserver.crt")).unwrap(), live);
}

/// `D/pki` as a symbolic link was followed: CA keys written outside the tree.
#[test]
fn a_tree_whose_pki_is_a_symlink_is_refused() {
    let env = TestEnv::new();
    let dir = env.path().join("tree");
    let outside = env.path().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("pki")).unwrap();
    let out = env.kubepki(&["init", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tree/pki: a symbolic link (to "), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "no key written outside the tree");
    let made: Vec<PathBuf> = paths(&dir).into_iter().filter(|p| !p.starts_with(dir.join(".kubepki"))).collect();
    assert_eq!(made, [dir.join("pki")], "nothing made but the run's lock");
}

/// pkilint: every EC certificate carried keyEncipherment, which RFC 5480 prohibits.
#[test]
fn ec_certificates_carry_no_key_encipherment_and_kubeadms_that_do_are_accepted() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let certs: Vec<PathBuf> =
        crate::support::files(&dir).into_iter().filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
    assert!(certs.len() > 20, "{}", certs.len());
    for c in &certs {
        let ku = openssl(&["x509", "-noout", "-ext", "keyUsage", "-in", c.to_str().unwrap()]);
        assert!(ku.contains("Digital Signature") && !ku.contains("Key Encipherment"), "{}: {ku}", c.display());
    }
    // A leaf as kubeadm writes it for an EC key (with keyEncipherment) is fine by the audit.
    let pki = dir.join("pki");
    let ext = env.write("ext.cnf", "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n");
    let p = |f: &str| pki.join(f).to_str().unwrap().to_string();
    let req = env.path().join("fp.csr");
    openssl(&[
        "req",
        "-new",
        "-key",
        &p("front-proxy-client.key"),
        "-subj",
        "/CN=front-proxy-client",
        "-out",
        req.to_str().unwrap(),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        req.to_str().unwrap(),
        "-CA",
        &p("front-proxy-ca.crt"),
        "-CAkey",
        &p("front-proxy-ca.key"),
        "-days",
        "200",
        "-set_serial",
        "0x4a3b2c1d0e0f1a2b3c4d",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        &p("front-proxy-client.crt"),
    ]);
    let ku = openssl(&["x509", "-noout", "-ext", "keyUsage", "-in", &p("front-proxy-client.crt")]);
    assert!(ku.contains("Key Encipherment"), "{ku}");
    std::fs::copy(
        pki.join("front-proxy-client.crt"),
        dir.join("nodes/controlplane/etc/kubernetes/pki/front-proxy-client.crt"),
    )
    .unwrap();
    let out = env.kubepki(&["verify", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A certificate whose CN holds terminal escapes is shown, not obeyed (found by the long
/// property run: `inspect` printed what a certificate's subject held).
#[test]
fn what_a_certificate_says_is_shown_escaped() {
    let env = TestEnv::new();
    let (key, crt) = (env.path().join("esc.key"), env.path().join("esc.crt"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=evil\u{1b}[2Jx",
        "-days",
        "1",
        "-out",
        crt.to_str().unwrap(),
    ]);
    let text = env.kubepki_ok(&["inspect", crt.to_str().unwrap()]);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("CN=evil\\u{1b}[2Jx"), "{text}");
}
