//! `kubepki rotate-ca`: replace a CA (or the service-account key pair) in three phases that a
//! running cluster goes through without losing a connection.
//!
//! - `start`: a new CA is made; every trust point (the CA file, kubeconfigs' CA data, `sa.pub`)
//!   becomes a bundle of old and new. Nothing is signed by the new CA yet.
//! - `reissue`: the new CA becomes the signer (its key is the CA key file; the CA file lists
//!   it first) and every leaf and kubeconfig it must sign is reissued by it.
//! - `finish`: the old CA leaves every bundle.
//!
//! Between phases every node must be updated; a node one phase behind still interoperates,
//! because at every step each side trusts both the CA that signed the other side and the one
//! that will.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::catalog::{CertProfile, EntryKind, Issuer, Store, SA};
use crate::error::{Error, Result};
use crate::issue::{Ca, PrivateKey};
use crate::kubeconfig::Kubeconfig;
use crate::lifecycle::{plan_renew, Applied, RenewOptions, Tree};
use crate::store::{Batch, Mode};

/// The phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The new CA exists and is trusted everywhere; the old one still signs.
    Start,
    /// The new CA signs; both are trusted.
    Reissue,
}

/// What is kept between phases, in `.kubepki/rotation/<ca>/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    phase: Phase,
    #[serde(with = "time::serde::rfc3339")]
    started: OffsetDateTime,
}

fn state_dir(root: &Path, ca: &str) -> PathBuf {
    root.join(".kubepki/rotation").join(ca)
}

fn read_state(root: &Path, ca: &str) -> Result<Option<State>> {
    let path = state_dir(root, ca).join("state.json");
    match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::bad_file(&path, format!("rotation state: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, "read", e)),
    }
}

/// Which phase each rotatable CA is in (`None`: no rotation under way).
pub fn status(tree: &Tree) -> Result<Vec<(String, Option<Phase>)>> {
    rotatable(tree).into_iter().map(|id| Ok((id.clone(), read_state(&tree.root, &id)?.map(|s| s.phase)))).collect()
}

fn rotatable(tree: &Tree) -> Vec<String> {
    tree.catalog.entries.iter().filter(|e| e.is_ca() || e.id == SA).map(|e| e.id.clone()).collect()
}

fn out_of_order(ca: &str, wanted: &str, state: Option<&State>) -> Error {
    let (now, next) = match state.map(|s| s.phase) {
        None => ("no rotation of it is under way".to_string(), "start"),
        Some(Phase::Start) => ("its rotation is in phase start".to_string(), "reissue"),
        Some(Phase::Reissue) => ("its rotation is in phase reissue".to_string(), "finish"),
    };
    Error::Invalid(format!(
        "rotate-ca {ca} {wanted}: {now}; the next valid step is `kubepki rotate-ca {ca} {next}` (nothing was changed)"
    ))
}

/// Files of a CA entry: certificate and key (for `sa`: public and private key).
fn ca_files(tree: &Tree, ca: &str) -> Result<(PathBuf, PathBuf)> {
    let e = tree.catalog.get(ca).ok_or_else(|| {
        Error::Invalid(format!("'{ca}' is not a CA of this cluster; rotatable: {}", rotatable(tree).join(", ")))
    })?;
    match &e.kind {
        EntryKind::Cert(CertProfile { store: Store::Files { cert, key }, is_ca: true, .. }) => {
            Ok((cert.clone(), key.clone()))
        }
        EntryKind::KeyPair { key, public } => Ok((public.clone(), key.clone())),
        _ => Err(Error::Invalid(format!("'{ca}' is not a CA; rotatable: {}", rotatable(tree).join(", ")))),
    }
}

fn read(root: &Path, rel: &Path) -> Result<String> {
    read_at(&root.join(rel))
}

fn read_at(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))
}

/// The PEM blocks of a file, re-encoded one after the other.
fn blocks(text: &str, path: &Path) -> Result<Vec<String>> {
    let parsed = pem::parse_many(text).map_err(|e| Error::bad_file(path, format!("not valid PEM: {e}")))?;
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(parsed.iter().map(|b| pem::encode_config(b, config)).collect())
}

/// Every kubeconfig that trusts `ca`, rewritten with new CA data (client credential kept).
fn kubeconfigs_with_ca_data(tree: &Tree, ca: &str, ca_pem: &str, batch: &mut Batch) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in &tree.catalog.entries {
        let Some(CertProfile { store: Store::Kubeconfig { path, cluster, ca: trust, .. }, subject, .. }) = e.cert()
        else {
            continue;
        };
        if trust != ca {
            continue;
        }
        let full = tree.root.join(path);
        let k = match crate::kubeconfig::read(&full) {
            Ok(k) => k,
            Err(_) => continue, // missing or unreadable: verify reports it; init makes it
        };
        let (Some(cert), Some(key)) = (&k.cert_pem, &k.key_pem) else { continue };
        let user = if k.user.is_empty() { subject.cn.clone() } else { k.user.clone() };
        let text =
            Kubeconfig { cluster, server: &k.server, ca_pem, user: &user, cert_pem: cert, key_pem: key }.render();
        batch.add(full, text, Mode::Secret);
        files.push(path.clone());
    }
    Ok(files)
}

/// Run one phase for `ca` (`ca`, `etcd-ca`, `front-proxy-ca` or `sa`).
pub fn rotate(tree: &Tree, ca: &str, phase: &str, now: OffsetDateTime) -> Result<Applied> {
    let (cert_rel, key_rel) = ca_files(tree, ca)?;
    let state = read_state(&tree.root, ca)?;
    let dir = state_dir(&tree.root, ca);
    let is_sa = ca == SA;
    let mut batch = Batch::new();
    let mut renew_after = false;
    match phase {
        "start" => {
            if state.is_some() {
                return Err(out_of_order(ca, phase, state.as_ref()));
            }
            let current = read(&tree.root, &cert_rel)?;
            let current_blocks = blocks(&current, &tree.root.join(&cert_rel))?;
            if current_blocks.len() != 1 {
                return Err(Error::bad_file(
                    tree.root.join(&cert_rel),
                    format!("holds {} PEM blocks; a rotation starts from a single CA", current_blocks.len()),
                ));
            }
            let old_key = PrivateKey::from_pem(&read(&tree.root, &key_rel)?, &tree.root.join(&key_rel))?;
            let new_key = PrivateKey::generate(old_key.algorithm())?;
            let new_pem = if is_sa {
                new_key.public_key_pem()
            } else {
                let e = tree.catalog.get(ca).expect("checked");
                let p = e.cert().expect("a CA");
                // The old CA must be sound before we build on it.
                Ca::load(ca, &current, &tree.root.join(&cert_rel), PrivateKey::from_pem(old_key.to_pem(), &key_rel)?)?;
                Ca::create(ca, p, PrivateKey::from_pem(new_key.to_pem(), &key_rel)?, now)?.cert_pem
            };
            let new_pem = blocks(&new_pem, Path::new("new"))?.remove(0);
            batch.add(dir.join("new.pem"), new_pem.clone(), Mode::Public);
            batch.add(dir.join("new.key"), new_key.to_pem(), Mode::Secret);
            batch.add(dir.join("old.pem"), current_blocks[0].clone(), Mode::Public);
            let bundle = format!("{}{}", current_blocks[0], new_pem);
            batch.add(tree.root.join(&cert_rel), bundle.clone(), Mode::Public);
            if !is_sa {
                kubeconfigs_with_ca_data(tree, ca, &bundle, &mut batch)?;
            }
            let s = State { phase: Phase::Start, started: now };
            batch.add(dir.join("state.json"), serde_json::to_string_pretty(&s).expect("serializes"), Mode::Public);
        }
        "reissue" => {
            let Some(s) = state.as_ref().filter(|s| s.phase == Phase::Start) else {
                return Err(out_of_order(ca, phase, state.as_ref()));
            };
            let new_pem = read_at(&dir.join("new.pem"))?;
            let old_pem = read_at(&dir.join("old.pem"))?;
            let new_key = read_at(&dir.join("new.key"))?;
            let bundle = format!("{new_pem}{old_pem}");
            batch.add(tree.root.join(&key_rel), new_key, Mode::Secret);
            batch.add(tree.root.join(&cert_rel), bundle.clone(), Mode::Public);
            if !is_sa {
                kubeconfigs_with_ca_data(tree, ca, &bundle, &mut batch)?;
                renew_after = true;
            }
            let s = State { phase: Phase::Reissue, started: s.started };
            batch.add(dir.join("state.json"), serde_json::to_string_pretty(&s).expect("serializes"), Mode::Public);
        }
        "finish" => {
            if state.as_ref().map(|s| s.phase) != Some(Phase::Reissue) {
                return Err(out_of_order(ca, phase, state.as_ref()));
            }
            let new_pem = read_at(&dir.join("new.pem"))?;
            batch.add(tree.root.join(&cert_rel), new_pem.clone(), Mode::Public);
            if !is_sa {
                kubeconfigs_with_ca_data(tree, ca, &new_pem, &mut batch)?;
            }
            // The rotation's files leave the tree with the rest (the store saves them first in
            // the backup of the run under way).
            for name in ["new.pem", "new.key", "old.pem", "state.json"] {
                batch.remove(dir.join(name));
            }
        }
        other => {
            return Err(Error::Invalid(format!(
                "'{other}' is not a phase: start, reissue, finish (or `kubepki rotate-ca status`)"
            )))
        }
    }
    batch.commit_in(&tree.root)?;
    if phase == "finish" {
        crate::backup::remove_empty_parents(&tree.root, &dir.join("state.json"));
    }
    // Reissue every leaf the CA signs, with the new CA now on disk.
    let reloaded = Tree::load(&tree.root, (!tree.inferred).then(|| tree.spec.clone()))?;
    let mut applied = if renew_after {
        let names: Vec<String> = reloaded
            .catalog
            .entries
            .iter()
            .filter(|e| matches!(e.cert(), Some(p) if p.issuer == Issuer::Ca(ca.to_string())))
            .map(|e| e.id.clone())
            .collect();
        plan_renew(&reloaded, &names, false, &RenewOptions::default(), now)?.apply(
            &reloaded,
            &format!("rotate-ca {ca} reissue"),
            now,
        )?
    } else {
        let written = crate::tree::refresh_bundles(&reloaded.spec, &reloaded.catalog, &reloaded.root, false)?;
        Applied {
            changes: vec![],
            notes: vec![],
            backup: None,
            bundle_files_written: written,
            verify: reloaded.verify(now),
        }
    };
    applied.backup = crate::backup::current_dir(&tree.root);
    Ok(applied)
}
