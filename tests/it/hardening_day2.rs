//! Issue 14's adversarial cases against the day-2 commands: writing through symbolic links,
//! bad settings, secrets in argument errors, damaged state, and what a restore trusts.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use crate::support::{files, snapshot, TestEnv};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `verify -o json`'s findings of one code.
fn findings(env: &TestEnv, dir: &str, code: &str) -> Vec<Value> {
    let out = env.kubepki(&["verify", "--dir", dir, "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify's JSON");
    let all = report["findings"].as_array().unwrap().clone();
    all.into_iter().filter(|f| f["code"] == code).collect()
}

/// Run a finding's fix as a shell would, in the env's directory.
fn run_fix(env: &TestEnv, finding: &Value) {
    let fix = finding["fix"].as_str().unwrap();
    let ok = std::process::Command::new("sh").arg("-c").arg(fix).current_dir(env.path()).status().unwrap();
    assert!(ok.success(), "{fix}");
}

/// Every file under `dir` with its bytes (a directory outside the tree).
fn contents(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut all: Vec<_> = files(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    all.sort();
    all
}

/// `rotate-ca ca start` wrote the new CA key into the directory `.kubepki/rotation` linked to;
/// `renew` wrote node01's new kubelet key where its `var/lib/kubelet/pki` pointed.
#[test]
fn nothing_is_written_through_a_symlinked_directory_and_verify_names_it() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    let outside = env.path().join("outside");
    std::fs::create_dir(&outside).unwrap();

    // The rotation's folder.
    symlink(&outside, dir.join(".kubepki/rotation")).unwrap();
    let before = snapshot(&dir);
    let out = env.kubepki(&["rotate-ca", "ca", "start", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(".kubepki/rotation: a symbolic link (to "), "{}", stderr(&out));
    assert!(files(&outside).is_empty(), "nothing written where the link points");
    assert_eq!(snapshot(&dir), before, "nothing changed in the tree");
    let found = findings(&env, d, "linked-directory");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["file"], ".kubepki/rotation");
    assert_eq!(found[0]["severity"], "error");
    run_fix(&env, &found[0]);
    assert!(!dir.join(".kubepki/rotation").is_symlink());
    assert_eq!(env.kubepki(&["verify", "--dir", d]).status.code(), Some(0), "fixed");

    // A node bundle's directory, deep down.
    let pki = dir.join("nodes/node01/var/lib/kubelet/pki");
    let kept = env.path().join("kubelet-pki");
    std::fs::rename(&pki, &kept).unwrap();
    symlink(&kept, &pki).unwrap();
    let held = contents(&kept);
    for args in [
        vec!["renew", "--all", "--dir", d],
        vec!["renew", "kubelet-serving", "--node", "node01", "--dir", d],
        vec!["init", "--force", "--dir", d],
    ] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("nodes/node01/var/lib/kubelet/pki: a symbolic link (to "),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(contents(&kept), held, "{args:?}: the key where the link points is untouched");
    }
    let found = findings(&env, d, "linked-directory");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["file"], "nodes/node01/var/lib/kubelet/pki");
    run_fix(&env, &found[0]);
    assert_eq!(env.kubepki(&["verify", "--dir", d]).status.code(), Some(0), "fixed");
    env.kubepki_ok(&["renew", "--all", "--dir", d]);
    assert_eq!(contents(&kept), held, "the old folder is left alone");

    // kubepki's own state: not even the lock is made where the link points.
    let state = env.path().join("state");
    std::fs::rename(dir.join(".kubepki"), &state).unwrap();
    std::fs::remove_file(state.join("lock")).unwrap();
    symlink(&state, dir.join(".kubepki")).unwrap();
    let held = contents(&state);
    let out = env.kubepki(&["renew", "--all", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(".kubepki: a symbolic link (to "), "{}", stderr(&out));
    assert_eq!(contents(&state), held, "no lock, nothing else");
}

/// verify's fix for a key readable by others was `chmod 600` on the path, which for a key
/// that is a symbolic link changes the file outside the tree.
#[test]
fn the_fix_for_a_linked_key_readable_by_others_is_no_chmod_through_the_link() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    let key = dir.join("nodes/node01/var/lib/kubelet/pki/kubelet.key");
    let elsewhere = env.path().join("kubelet.key");
    std::fs::rename(&key, &elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
    symlink(&elsewhere, &key).unwrap();

    let found = findings(&env, d, "mode");
    assert_eq!(found.len(), 1, "{found:?}");
    let fix = found[0]["fix"].as_str().unwrap();
    assert!(!fix.contains("chmod"), "{fix}");
    assert!(found[0]["found"].as_str().unwrap().contains("a symbolic link to "), "{}", found[0]["found"]);
    run_fix(&env, &found[0]);
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&elsewhere), 0o644, "the file outside the tree is not changed");
    assert!(!key.is_symlink());
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read(&key).unwrap(), std::fs::read(&elsewhere).unwrap());
    assert_eq!(env.kubepki(&["verify", "--dir", d]).status.code(), Some(0), "fixed");
}

/// Whether `text` shows any line of the body of the PEM key `key`.
fn shows_key(text: &str, key: &str) -> bool {
    key.lines().filter(|l| !l.starts_with("-----")).any(|l| text.contains(l) || text.contains(&l[..20]))
}

/// clap's "unexpected argument" error quoted a private key given as an argument, whole, twice;
/// explain took text starting with `-` for an option.
#[test]
fn an_argument_error_never_prints_a_private_key() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    let key = std::fs::read_to_string(dir.join("pki/ca.key")).unwrap();
    let key = key.trim_end();
    let admin = std::fs::read_to_string(dir.join("admin.conf")).unwrap();
    let key_data = admin.lines().find_map(|l| l.trim().strip_prefix("client-key-data: ")).unwrap().to_string();

    // explain takes it as its text: its own refusal, through its own filter.
    let out = env.kubepki(&["explain", key]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no TLS error message kubepki recognises"), "{}", stderr(&out));
    assert!(!shows_key(&stderr(&out), key), "{}", stderr(&out));
    // Only its first word may start with '-': options after the text are still options.
    let said = env.kubepki_ok(&["explain", "x509: certificate signed by unknown authority", "-o", "json"]);
    assert!(serde_json::from_str::<Value>(&said).is_ok(), "{said}");

    let argvs: Vec<Vec<&str>> = vec![
        vec!["verify", key],
        vec!["verify", "--dir", d, key],
        vec!["check", "--dir", d, key],
        vec!["node", "add", key, "--role", "worker", "--ip", "10.0.0.9", "--dir", d],
        vec!["renew", "--all", "--dir", d, "--node", key],
        vec!["init", "--dir", d, &key_data],
        vec!["backup", "list", "--dir", d, &key_data],
    ];
    for argv in argvs {
        let out = env.kubepki(&argv);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", argv[0]);
        assert!(!shows_key(&err, key), "{}: {err}", argv[0]);
        assert!(!err.contains(&key_data[..40]), "{}: {err}", argv[0]);
        assert!(err.contains("not shown"), "{}: {err}", argv[0]);
        assert!(
            err.contains("Usage: kubepki ") || err.contains("kubepki: error:"),
            "{}: the rest is kept: {err}",
            argv[0]
        );
    }
    let out = env.kubepki(&["verify", key]);
    assert!(stderr(&out).contains("error: unexpected argument '<ec private key not shown>' found"), "{}", stderr(&out));
    assert!(stderr(&out).contains("For more information, try '--help'."), "{}", stderr(&out));
}

/// A 70-letter node name was shown as `<70 characters of base64 not shown>`, without saying
/// what is wrong with it.
#[test]
fn a_bad_node_name_is_shown_and_says_why() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let name = "a".repeat(70);
    let out =
        env.kubepki(&["node", "add", &name, "--role", "worker", "--ip", "10.0.0.9", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("'{name}' is not a valid node name: a label is 70 characters long, more than 63")),
        "{err}"
    );
}

/// `KUBEPKI_LOCK_WAIT=1e30` panicked (exit 101); `abc` and `-1` were taken as 10 s.
#[test]
fn a_bad_lock_wait_is_refused_naming_it() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let before = snapshot(&dir);
    for value in ["1e30", "abc", "-1"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubepki"))
            .args(["san", "add", "apiserver", "x.example", "--dir", dir.to_str().unwrap()])
            .env("KUBEPKI_LOCK_WAIT", value)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains(&format!("kubepki: error: KUBEPKI_LOCK_WAIT=\"{value}\": ")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(snapshot(&dir), before, "{value}: nothing changed");
    }
}

/// With the cluster CA's key gone from the top and from the control plane's bundle,
/// `init --force` and `rotate-ca ca start` failed with a bare `pki/ca.key: read: No such file`.
#[test]
fn an_externally_managed_ca_is_said_so_by_init_and_rotate_ca() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    std::fs::remove_file(dir.join("pki/ca.key")).unwrap();
    std::fs::remove_file(dir.join("nodes/controlplane/etc/kubernetes/pki/ca.key")).unwrap();
    let before = snapshot(&dir);
    // Nothing to make: everything is kept, and no CA key appears.
    for args in [vec!["init", "--dir", d], vec!["init", "--force", "--dir", d]] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("0 created"), "{args:?}");
        assert_eq!(snapshot(&dir), before, "{args:?}");
    }
    let out = env.kubepki(&["rotate-ca", "ca", "start", "--dir", d]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the CA ca is externally managed") && err.contains("cannot rotate it"), "{err}");
    assert!(
        err.contains(&format!("kubepki csr --dir {d}")) && err.contains(&format!("kubepki import --dir {d}")),
        "{err}"
    );
    assert!(!err.contains("No such file"), "{err}");
    assert_eq!(snapshot(&dir), before);
}

/// The id of the newest backup of a tree.
fn newest_backup(env: &TestEnv, d: &str) -> String {
    let list: Value = serde_json::from_str(&env.kubepki_ok(&["backup", "list", "--dir", d, "-o", "json"])).unwrap();
    list.as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_string()
}

/// `backup restore` removed `pki/ca.key` when a `.kubepki-created` listed it, and skipped
/// `../victim` and `/abs` silently.
#[test]
fn a_restore_refuses_a_damaged_created_list() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["node", "add", "w3", "--role", "worker", "--ip", "10.0.0.33", "--dir", d]);
    let id = newest_backup(&env, d);
    let created = dir.join(".kubepki-backup").join(&id).join(".kubepki-created");
    let sound = std::fs::read_to_string(&created).unwrap();
    let lines = sound.lines().count();
    let victim = env.path().join("victim");
    std::fs::write(&victim, "not the tree's").unwrap();
    let damage = [
        ("pki/ca.key", "is a key that signs"),
        ("pki/sa.key", "is a key that signs"),
        ("pki/etcd/ca.key", "is a key that signs"),
        ("nodes/controlplane/etc/kubernetes/pki/front-proxy-ca.key", "is a key that signs"),
        ("../victim", "is not a path inside the tree"),
        (victim.to_str().unwrap(), "is not a path inside the tree"),
    ];
    let before = snapshot(&dir);
    for (line, problem) in damage {
        std::fs::write(&created, format!("{sound}{line}\n")).unwrap();
        for dry in [true, false] {
            let mut args = vec!["backup", "restore", id.as_str(), "--dir", d];
            if dry {
                args.push("--dry-run");
            }
            let out = env.kubepki(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{line}: {err}");
            let named = format!(".kubepki-created: line {}: '{line}' {problem}", lines + 1);
            assert!(err.contains(&named), "{line}: {err}");
        }
        let mut now = snapshot(&dir);
        now.remove(created.strip_prefix(&dir).unwrap());
        let mut was = before.clone();
        was.remove(created.strip_prefix(&dir).unwrap());
        assert_eq!(now, was, "{line}: nothing changed");
        assert!(victim.exists());
    }
    // Sound again, it restores: the node's files go, the CA keys stay.
    std::fs::write(&created, &sound).unwrap();
    env.kubepki_ok(&["backup", "restore", &id, "--dir", d]);
    assert!(!dir.join("nodes/w3/var/lib/kubelet/pki/kubelet.key").exists());
    assert!(dir.join("pki/ca.key").exists() && dir.join("pki/sa.key").exists());
}

/// A damaged `.kubepki/rotation/ca/state.json` during a rotation: verify and check reported
/// the tree clean (exit 0), and `renew --all` went ahead; only `rotate-ca status` said so.
#[test]
fn a_damaged_rotation_state_is_reported_and_no_change_goes_ahead_on_it() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["rotate-ca", "ca", "start", "--dir", d]);
    let start = newest_backup(&env, d);
    let state = dir.join(".kubepki/rotation/ca/state.json");
    std::fs::write(&state, "{\"phase\": \"sta").unwrap();
    let before = snapshot(&dir);
    for args in [vec!["verify", "--dir", d], vec!["verify", "--dir", d, "-o", "json"], vec!["check", "--dir", d]] {
        let out = env.kubepki(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: not clean");
        let err = stderr(&out);
        assert!(err.contains(".kubepki/rotation/ca/state.json: rotation state: "), "{args:?}: {err}");
    }
    let changes = [
        vec!["renew", "--all", "--dir", d],
        vec!["renew", "--all", "--dir", d, "--dry-run"],
        vec!["node", "add", "w3", "--role", "worker", "--ip", "10.0.0.33", "--dir", d],
        vec!["san", "add", "apiserver", "x.example", "--dir", d],
        vec!["rotate-ca", "etcd-ca", "start", "--dir", d],
        vec!["init", "--dir", d],
    ];
    for args in changes {
        let out = env.kubepki(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(".kubepki/rotation/ca/state.json: rotation state: "), "{args:?}: {err}");
        assert_eq!(snapshot(&dir), before, "{args:?}: nothing changed");
    }
    // A restore is how it is put right: it is not refused.
    env.kubepki_ok(&["backup", "restore", &start, "--dir", d]);
    assert!(!state.exists());
    assert_eq!(env.kubepki(&["verify", "--dir", d]).status.code(), Some(0));
}

/// Restoring the backup of `node add w3 --role worker` printed `w3: 7 file(s): ... restart:
/// kube-apiserver, kube-controller-manager, kube-proxy, kubelet` (files just removed, on a
/// worker that runs neither), while its dry run printed `restart: kube-proxy, kubelet`.
#[test]
fn a_restore_rolls_out_what_it_does_the_same_in_its_dry_run() {
    let env = TestEnv::new();
    let dir = env.init("k", &[]);
    let d = dir.to_str().unwrap();
    env.kubepki_ok(&["node", "add", "w3", "--role", "worker", "--ip", "10.0.0.33", "--dir", d]);
    let id = newest_backup(&env, d);
    let rollout = |dry: bool| -> String {
        let mut args = vec!["backup", "restore", id.as_str(), "--dir", d];
        if dry {
            args.push("--dry-run");
        }
        let text = env.kubepki_ok(&args);
        text[text.find("roll out").expect("a roll-out")..].replace("(dry run: nothing written)\n", "")
    };
    let json = |dry: bool| -> Value {
        let mut args = vec!["backup", "restore", id.as_str(), "--dir", d, "-o", "json"];
        if dry {
            args.push("--dry-run");
        }
        serde_json::from_str::<Value>(&env.kubepki_ok(&args)).unwrap()["rollout"].clone()
    };
    let dry_json = json(true);
    let dry = rollout(true);
    let real = rollout(false);
    assert_eq!(real, dry, "the dry run says what the restore does");
    assert!(real.contains("w3: gone from the tree: its 7 file(s) removed ("), "{real}");
    assert!(real.contains("/var/lib/kubelet/pki/kubelet.key"), "{real}");
    for wrong in ["kube-apiserver", "kube-controller-manager", "w3: 7 file(s)"] {
        assert!(!real.contains(wrong), "{wrong}: {real}");
    }
    assert_eq!(dry_json[0]["nodes"], serde_json::json!(["w3"]));
    assert_eq!(dry_json[0]["gone"], true);
    assert_eq!(dry_json[0]["removed"].as_array().unwrap().len(), 7);
    assert!(dry_json[0]["restart"].as_array().unwrap().is_empty());
    assert!(!dir.join("nodes/w3").exists());

    // Brought back (a restore of its removal): a worker again, restarting what a worker runs.
    env.kubepki_ok(&["node", "remove", "node02", "--dir", d]);
    let id = newest_backup(&env, d);
    let text = env.kubepki_ok(&["backup", "restore", &id, "--dir", d]);
    assert!(text.contains("  node02: 7 file(s): ") && text.contains("    restart: kube-proxy, kubelet\n"), "{text}");
}
