//! Backups: every run that changes a tree has a folder of its own holding every file it
//! replaced or removed (byte for byte, with its mode) and the list of those it created;
//! `backup restore ID` puts the tree back as it was before that run.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{files, TestEnv};

/// Every file of the tree with its bytes and mode, but for what a restore leaves alone: the
/// backups themselves, the lock and the issuance log (history).
fn state(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    files(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), p))
        .filter(|(rel, _)| {
            !rel.starts_with(".kubepki-backup")
                && rel != Path::new(".kubepki/lock")
                && rel != Path::new(".kubepki/issued.jsonl")
        })
        .map(|(rel, p)| {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            (rel, (std::fs::read(&p).unwrap(), mode))
        })
        .collect()
}

fn backups(env: &TestEnv, dir: &Path) -> Vec<serde_json::Value> {
    let out = env.kubepki_ok(&["backup", "list", "--dir", dir.to_str().unwrap(), "-o", "json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn three_rotation_phases_back_to_back_each_have_a_backup_and_the_first_restores_the_tree() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let original = state(&dir);
    for phase in ["start", "reissue", "finish"] {
        env.kubepki_ok(&["rotate-ca", "sa", phase, "--dir", d]);
    }
    assert_ne!(state(&dir), original);
    let list = backups(&env, &dir);
    let ids: Vec<&str> = list.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "one folder per run, even within one second: {ids:?}");
    let commands: Vec<&str> = list.iter().map(|b| b["command"].as_str().unwrap()).collect();
    assert_eq!(commands, ["rotate-ca sa start", "rotate-ca sa reissue", "rotate-ca sa finish"]);
    // `start` replaced sa.pub, `reissue` sa.key: each backup holds the original, byte for
    // byte and with its mode.
    for (id, f) in [(ids[0], "pki/sa.pub"), (ids[1], "pki/sa.key")] {
        let saved = dir.join(".kubepki-backup").join(id).join(f);
        assert_eq!(std::fs::read(&saved).unwrap(), original[Path::new(f)].0, "{f}");
        let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, original[Path::new(f)].1, "{f}");
    }

    // A dry run writes nothing; the restore gives back the original tree.
    let before_restore = state(&dir);
    let out = env.kubepki_ok(&["backup", "restore", ids[0], "--dir", d, "--dry-run"]);
    assert!(out.contains("would put back pki/sa.key"), "{out}");
    assert_eq!(state(&dir), before_restore);
    let out = env.kubepki_ok(&["backup", "restore", ids[0], "--dir", d]);
    assert!(out.contains("undid") && out.contains("saved in"), "{out}");
    assert!(
        out.contains("roll out, per node:\n  controlplane: ") && out.contains("/etc/kubernetes/pki/sa.key"),
        "{out}"
    );
    assert_eq!(state(&dir), original, "the restore gives back the tree byte for byte");
    env.kubepki_ok(&["verify", "--dir", d]);
    // The restore was backed up too: restoring its own backup goes back to after `finish`.
    let list = backups(&env, &dir);
    assert_eq!(list.len(), 4);
    let restore_id = list[3]["id"].as_str().unwrap().to_string();
    assert!(list[3]["command"].as_str().unwrap().starts_with("backup restore"));
    env.kubepki_ok(&["backup", "restore", &restore_id, "--dir", d]);
    assert_eq!(state(&dir), before_restore);
}

#[test]
fn a_full_ca_rotation_is_undone_by_restoring_its_first_backup() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let original = state(&dir);
    for phase in ["start", "reissue", "finish"] {
        env.kubepki_ok(&["rotate-ca", "ca", phase, "--dir", d]);
    }
    env.kubepki_ok(&["renew", "--all", "--dir", d]);
    let list = backups(&env, &dir);
    assert_eq!(list.len(), 4);
    // Removed (the rotation's state) and replaced files are all there.
    let finish = &list[2];
    let saved: Vec<&str> = finish["saved"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(saved.contains(&".kubepki/rotation/ca/new.key"), "{saved:?}");
    let out = env.kubepki_ok(&["backup", "restore", list[0]["id"].as_str().unwrap(), "--dir", d]);
    assert!(out.contains("undid"), "{out}");
    assert_eq!(state(&dir), original);
    assert!(!dir.join(".kubepki/rotation").exists());
}

#[test]
fn node_remove_saves_the_node_and_restore_brings_it_back() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let original = state(&dir);
    let out = env.kubepki_ok(&["node", "remove", "node02", "--dir", d]);
    assert!(out.contains("saved in"), "{out}");
    assert!(!dir.join("nodes/node02").exists());
    let list = backups(&env, &dir);
    let saved: Vec<&str> = list[0]["saved"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(saved.contains(&"nodes/node02/var/lib/kubelet/pki/kubelet.key"), "{saved:?}");
    env.kubepki_ok(&["backup", "restore", list[0]["id"].as_str().unwrap(), "--dir", d]);
    assert_eq!(state(&dir), original);
}

#[test]
fn a_replaced_file_is_saved_with_its_own_mode_and_an_unknown_id_is_refused() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    // A key left readable by others is saved as it was found.
    let key = dir.join("pki/apiserver.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let old = std::fs::read(&key).unwrap();
    env.kubepki_ok(&["renew", "apiserver", "--dir", d]);
    let list = backups(&env, &dir);
    let saved = dir.join(".kubepki-backup").join(list[0]["id"].as_str().unwrap()).join("pki/apiserver.key");
    assert_eq!(std::fs::read(&saved).unwrap(), old);
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o7777, 0o600, "the new key is 0600");

    let out = env.kubepki(&["backup", "restore", "no-such-backup", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no backup 'no-such-backup'") && err.contains(list[0]["id"].as_str().unwrap()), "{err}");
}

#[test]
fn prune_keeps_the_newest_backups_which_still_restore_and_finishes_what_a_killed_prune_left() {
    let env = TestEnv::new();
    let dir = env.init("tree", &[]);
    let d = dir.to_str().unwrap();
    let base = dir.join(".kubepki-backup");
    let mut before_finish = state(&dir);
    for phase in ["start", "reissue", "finish"] {
        if phase == "finish" {
            before_finish = state(&dir);
        }
        env.kubepki_ok(&["rotate-ca", "sa", phase, "--dir", d]);
    }
    let ids: Vec<String> = backups(&env, &dir).iter().map(|b| b["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 3);

    // A dry run names what would go and deletes nothing.
    let out = env.kubepki_ok(&["backup", "prune", "--keep", "2", "--dir", d, "--dry-run"]);
    assert!(out.contains(&format!("would remove {} (kubepki rotate-ca sa start;", ids[0])), "{out}");
    assert!(!out.contains(&format!("remove {}", ids[1])), "{out}");
    assert_eq!(backups(&env, &dir).len(), 3);

    // A prune killed after taking the oldest folder out of the list: the folder is no backup
    // any more, and the next prune deletes it.
    std::fs::rename(base.join(&ids[0]), base.join(format!(".pruning-{}", ids[0]))).unwrap();
    assert_eq!(backups(&env, &dir).len(), 2);
    let out = env.kubepki_ok(&["backup", "prune", "--before", &ids[1], "--dir", d]);
    assert!(out.contains("deleted 1 folder(s) an interrupted prune") && out.contains("nothing to remove"), "{out}");
    assert!(!base.join(format!(".pruning-{}", ids[0])).exists());

    let out = env.kubepki_ok(&["backup", "prune", "--keep", "1", "--dir", d]);
    assert!(out.contains(&format!("removed {}", ids[1])) && out.contains("kept 1 backup(s)"), "{out}");
    assert!(!base.join(&ids[1]).exists());
    let left: Vec<String> = backups(&env, &dir).iter().map(|b| b["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(left, [ids[2].clone()], "pruning adds no backup of its own");

    // The backup kept still puts the tree back as it was before its run.
    env.kubepki_ok(&["backup", "restore", &ids[2], "--dir", d]);
    assert_eq!(state(&dir), before_finish);

    let out = env.kubepki(&["backup", "prune", "--before", "no-such-backup", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no backup 'no-such-backup'"));
    let out = env.kubepki(&["backup", "prune", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "--keep or --before is required");
}
