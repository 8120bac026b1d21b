//! Killed anywhere, recovered: every command that changes a tree, killed at each point of its
//! journaled commit (`KUBEPKI_FAILPOINT`: the process aborts there, as a SIGKILL at that
//! instant would leave it), leaves a tree that `verify` reports as interrupted; the next run
//! of the same command completes it (or the tree is exactly as before and it runs anew), and
//! then the tree is consistent, nothing is pending, and the issuance log lists each
//! certificate exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kubepki::x509::certinfo::CertInfo;
use kubepki::x509::kubeconfig::read as read_kubeconfig;

use crate::support::{files, run, TestEnv};

const POINTS: [&str; 4] = ["before-journal", "after-journal", "mid-rename", "before-journal-removed"];

fn kubepki_in(env: &TestEnv, args: &[&str], failpoint: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    cmd.args(args).current_dir(env.path());
    if let Some(p) = failpoint {
        cmd.env("KUBEPKI_FAILPOINT", p);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The tree's files but what a kill may leave behind to no harm: backups, the lock file, the
/// journal and temporaries.
fn content(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), p))
        .filter(|(rel, _)| {
            let name = rel.file_name().unwrap().to_string_lossy();
            !rel.starts_with(".kubepki-backup")
                && rel != Path::new(".kubepki/lock")
                && rel != Path::new(".kubepki-journal")
                && !(name.starts_with('.') && name.ends_with(".tmp"))
        })
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

/// Nothing pending, no temporary left, and every certificate of the tree (each .crt's first
/// certificate, each kubeconfig's client certificate) in the issuance log exactly once.
fn assert_settled(dir: &Path, what: &str) {
    assert!(!dir.join(".kubepki-journal").exists(), "{what}: a journal is pending");
    let temporaries: Vec<PathBuf> =
        files(dir).into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp")).collect();
    assert!(temporaries.is_empty(), "{what}: temporaries left: {temporaries:?}");
    let log = kubepki::disk::issuance::read(dir).unwrap();
    let mut logged: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &log {
        *logged.entry(r.serial.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = logged.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{what}: logged more than once: {twice:?}");
    let mut serials = BTreeSet::new();
    for p in files(dir) {
        let rel = p.strip_prefix(dir).unwrap();
        if rel.starts_with(".kubepki-backup") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let pem = if name.ends_with(".crt") {
            std::fs::read_to_string(&p).unwrap()
        } else if name.ends_with(".conf") {
            read_kubeconfig(&p).unwrap().cert_pem.unwrap()
        } else {
            continue;
        };
        serials.insert((CertInfo::from_pem(&pem, &p).unwrap().serial, rel.to_path_buf()));
    }
    for (serial, file) in &serials {
        assert_eq!(
            logged.get(serial.as_str()),
            Some(&1),
            "{what}: {} (serial {serial}) is not logged once",
            file.display()
        );
    }
}

/// Kill `args` at every point of its commit, on a copy of the tree `setup` made, and check
/// the recovery. `clean`: whether `verify` finds the finished tree clean.
fn killed_everywhere(env: &TestEnv, name: &str, setup: &Path, args: &[&str], clean: bool) {
    for point in POINTS {
        let what = format!("{} killed {point}", args.join(" "));
        let dir = env.path().join(format!("{name}-{point}"));
        let (ok, out) = run(Command::new("cp").arg("-a").arg(setup).arg(&dir));
        assert!(ok, "{out}");
        let d = dir.to_str().unwrap().to_string();
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &d)).collect();
        let with_dir: Vec<&str> = args.iter().map(String::as_str).chain(["--dir", d.as_str()]).collect();
        let before = content(&dir);

        let out = kubepki_in(env, &with_dir, Some(point));
        assert_eq!(out.status.code(), None, "{what}: not killed: {}", text(&out));
        if point == "before-journal" {
            assert_eq!(content(&dir), before, "{what}: the tree changed before its journal was written");
        }
        // Half-written: verify and check say so, and do not exit 0.
        for reader in [["verify", "--dir", d.as_str()], ["check", "--dir", d.as_str()]] {
            let out = kubepki_in(env, &reader, None);
            assert_ne!(out.status.code(), Some(0), "{what}: {reader:?} exit 0:\n{}", text(&out));
            assert!(text(&out).contains("a kubepki run was interrupted"), "{what}: {reader:?}:\n{}", text(&out));
        }

        // The next run of the same command completes it (or, killed before its journal, runs).
        let out = kubepki_in(env, &with_dir, None);
        assert_ne!(out.status.code(), Some(2), "{what}: the re-run failed:\n{}", text(&out));
        // init (and node add, which is init for one more node) commits in groups and simply
        // runs again; every other command completes its one batch and says so.
        let reruns = args[0] == "init" || (args.len() > 1 && args[0] == "node" && args[1] == "add");
        if point != "before-journal" && !reruns {
            assert!(text(&out).contains("completed the interrupted run of this command"), "{what}:\n{}", text(&out));
        }
        assert_settled(&dir, &what);
        let out = kubepki_in(env, &["verify", "--dir", d.as_str()], None);
        if clean {
            assert_eq!(out.status.code(), Some(0), "{what}: verify after recovery:\n{}", text(&out));
        }
        assert!(!text(&out).contains("interrupted"), "{what}: {}", text(&out));
    }
}

/// A tree of the default cluster, with `then` run on it.
fn tree(env: &TestEnv, name: &str, then: &[&[&str]]) -> PathBuf {
    let dir = env.init(name, &[]);
    for args in then {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--dir", dir.to_str().unwrap()]);
        let out = kubepki_in(env, &a, None);
        assert_ne!(out.status.code(), Some(2), "{a:?}: {}", text(&out));
    }
    dir
}

#[test]
fn renew_san_and_node_remove_killed_anywhere_are_recovered() {
    let env = TestEnv::new();
    let base = tree(&env, "base", &[]);
    killed_everywhere(&env, "renew", &base, &["renew", "--all"], true);
    killed_everywhere(&env, "san", &base, &["san", "add", "apiserver", "lb.example.com"], true);
    killed_everywhere(&env, "node-remove", &base, &["node", "remove", "node02"], true);
    killed_everywhere(
        &env,
        "node-add",
        &base,
        &["node", "add", "node03", "--role", "worker", "--ip", "127.0.0.4"],
        true,
    );
    // init --force replacing a wrong leaf.
    let wrong = tree(&env, "wrong", &[]);
    let other = env.init("other", &[]);
    std::fs::copy(other.join("pki/apiserver.crt"), wrong.join("pki/apiserver.crt")).unwrap();
    killed_everywhere(&env, "init-force", &wrong, &["init", "--force"], true);
}

#[test]
fn every_rotation_phase_killed_anywhere_is_recovered() {
    let env = TestEnv::new();
    let base = tree(&env, "base", &[]);
    let started = tree(&env, "started", &[&["rotate-ca", "ca", "start"]]);
    let reissued = tree(&env, "reissued", &[&["rotate-ca", "ca", "start"], &["rotate-ca", "ca", "reissue"]]);
    killed_everywhere(&env, "start", &base, &["rotate-ca", "ca", "start"], true);
    killed_everywhere(&env, "reissue", &started, &["rotate-ca", "ca", "reissue"], true);
    killed_everywhere(&env, "finish", &reissued, &["rotate-ca", "ca", "finish"], true);
    killed_everywhere(&env, "sa-start", &base, &["rotate-ca", "sa", "start"], true);
    // Killed with its journal pending, status does not claim a phase done and says why.
    let half = env.path().join("half-reissued");
    let (ok, out) = run(Command::new("cp").arg("-a").arg(&started).arg(&half));
    assert!(ok, "{out}");
    let h = half.to_str().unwrap();
    let out = kubepki_in(&env, &["rotate-ca", "ca", "reissue", "--dir", h], Some("after-journal"));
    assert_eq!(out.status.code(), None);
    let out = kubepki_in(&env, &["rotate-ca", "status", "--dir", h], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a kubepki run was interrupted") && text(&out).contains("rotate-ca ca reissue"),
        "{}",
        text(&out)
    );
    // The state follows the work: after a recovered reissue, status says finish is next.
    let dir = env.path().join("reissue-mid-rename");
    let out = kubepki_in(&env, &["rotate-ca", "status", "--dir", dir.to_str().unwrap()], None);
    assert!(text(&out).contains("ca: phase Reissue done (rotation started 20"), "{}", text(&out));
}

#[test]
fn csr_sign_import_and_restore_killed_anywhere_are_recovered() {
    let env = TestEnv::new();
    // An outside CA's flow: leaves removed, requests made, signed by the tree's CAs.
    let external = env.init("external", &[]);
    let leaves = ["pki/apiserver.crt", "pki/apiserver.key", "pki/front-proxy-client.crt", "pki/front-proxy-client.key"];
    for f in leaves {
        std::fs::remove_file(external.join(f)).unwrap();
    }
    killed_everywhere(&env, "csr", &external, &["csr", "--force"], false);
    let requested = tree(&env, "requested", &[]);
    for f in leaves {
        std::fs::remove_file(requested.join(f)).unwrap();
    }
    env.kubepki_ok(&["csr", "--dir", requested.to_str().unwrap(), "--force"]);
    killed_everywhere(&env, "sign", &requested, &["sign", "--ca", "ca", "{dir}/pki/apiserver.csr"], false);
    let d = requested.to_str().unwrap();
    let all: Vec<String> = files(&requested)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "csr"))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    for ca in ["ca", "etcd-ca", "front-proxy-ca"] {
        let mine: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|p| {
                let etcd = p.contains("/etcd/") || p.contains("apiserver-etcd-client");
                let fp = p.contains("front-proxy");
                match ca {
                    "etcd-ca" => etcd,
                    "front-proxy-ca" => fp,
                    _ => !etcd && !fp,
                }
            })
            .collect();
        let mut args = vec!["sign", "--ca", ca, "--dir", d, "--force"];
        args.extend(mine);
        env.kubepki_ok(&args);
    }
    killed_everywhere(&env, "import", &requested, &["import"], true);

    // A restore is a journaled batch too.
    let renewed = tree(&env, "renewed", &[&["renew", "--all"]]);
    let list = env.kubepki_ok(&["backup", "list", "--dir", renewed.to_str().unwrap(), "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    killed_everywhere(&env, "restore", &renewed, &["backup", "restore", &id], true);
}

#[test]
fn a_first_init_killed_anywhere_is_reported_then_completed() {
    let env = TestEnv::new();
    env.write(
        "cluster.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [10.0.0.1]}\nnodePools:\n- {namePattern: \"w-{index:03}\", count: 40, firstAddress: 10.1.0.1}\n",
    );
    for point in POINTS {
        let dir = env.path().join(format!("init-{point}"));
        let d = dir.to_str().unwrap();
        let args = ["init", "--config", "cluster.yaml", "--dir", d, "--quiet"];
        let out = kubepki_in(&env, &args, Some(point));
        assert_eq!(out.status.code(), None, "{point}: not killed: {}", text(&out));
        assert!(!dir.join(".kubepki/cluster.json").exists(), "{point}: recorded before the end");
        for reader in [["verify", "--dir", d], ["check", "--dir", d]] {
            let out = kubepki_in(&env, &reader, None);
            assert_ne!(out.status.code(), Some(0), "{point}: {reader:?} says clean:\n{}", text(&out));
            assert!(text(&out).contains("a kubepki run was interrupted"), "{point}: {}", text(&out));
        }
        let out = kubepki_in(&env, &args, None);
        assert_eq!(out.status.code(), Some(0), "{point}: {}", text(&out));
        assert_settled(&dir, point);
        let out = kubepki_in(&env, &["verify", "--dir", d], None);
        assert_eq!(out.status.code(), Some(0), "{point}: {}", text(&out));
    }
}

#[test]
fn a_large_reissue_and_renew_killed_anywhere_are_recovered() {
    // Batches of 64 files or more are staged and committed in bulk (syncfs): the same
    // guarantees. 60 workers: ~140 files for renew --all.
    let env = TestEnv::new();
    env.write(
        "cluster.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [10.0.0.1]}\nnodePools:\n- {namePattern: \"w-{index:03}\", count: 60, firstAddress: 10.1.0.1}\n",
    );
    let base = env.path().join("base");
    env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", base.to_str().unwrap(), "--quiet"]);
    killed_everywhere(&env, "renew", &base, &["renew", "--all"], true);
    env.kubepki_ok(&["rotate-ca", "ca", "start", "--dir", base.to_str().unwrap()]);
    killed_everywhere(&env, "reissue", &base, &["rotate-ca", "ca", "reissue"], true);
}
