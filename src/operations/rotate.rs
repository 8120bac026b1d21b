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

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::disk::issuance::IssuanceRecord;
use crate::disk::store::Mode;
use crate::error::{Error, Result};
use crate::model::catalog::{EntryId, EntryKind, Leaf, Store, SA};
use crate::operations::lifecycle::{
    key_fingerprint, one_batch, plan_renew_signed_by, Applied, Change, Signer, Summary, Tree,
};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::{Ca, PrivateKey};

/// The phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The new CA exists and is trusted everywhere; the old one still signs.
    Start,
    /// The new CA signs; both are trusted.
    Reissue,
}

/// A phase to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Make the new CA and trust both everywhere.
    Start,
    /// Sign with the new CA: reissue everything it signs (cross-signed for old trust).
    Reissue,
    /// Drop the old CA from every bundle.
    Finish,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Start => "start",
            Step::Reissue => "reissue",
            Step::Finish => "finish",
        })
    }
}

impl std::str::FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Step, String> {
        match s {
            "start" => Ok(Step::Start),
            "reissue" => Ok(Step::Reissue),
            "finish" => Ok(Step::Finish),
            other => Err(format!("'{other}' is not a phase: start, reissue, finish (or `kubepki rotate-ca status`)")),
        }
    }
}

/// What is kept between phases, in `.kubepki/rotation/<ca>/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    phase: Phase,
    #[serde(with = "time::serde::rfc3339")]
    started: OffsetDateTime,
    /// When `reissue` ran (absent before it, and in states written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    reissued: Option<OffsetDateTime>,
}

/// How long the kubelet may keep a projected ServiceAccount token before refreshing it (at 80 %
/// of its lifetime, and at the latest after 24 hours).
const TOKEN_REFRESH: time::Duration = time::Duration::hours(24);

fn state_dir(root: &Path, ca: &str) -> PathBuf {
    root.join(crate::model::vocabulary::state::ROTATION).join(ca)
}

fn read_state(root: &Path, ca: &str) -> Result<Option<State>> {
    let path = state_dir(root, ca).join("state.json");
    match crate::disk::readfile::read_text(&path, crate::disk::readfile::Limit::Document) {
        Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| Error::bad_file(&path, format!("rotation state: {e}"))),
        Err(e) if crate::disk::readfile::is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuse a tree whose rotation state cannot be read: every `.kubepki/rotation/<ca>/state.json`
/// there is must parse (a tree whose rotation stands nobody knows where is neither clean nor
/// safe to change). The error names the file and the problem.
pub fn check_states(root: &Path) -> Result<()> {
    let dir = root.join(crate::model::vocabulary::state::ROTATION);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut cas: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cas.sort();
    for ca in cas {
        read_state(root, &ca).map_err(|e| match e {
            Error::BadFile { path, problem } => Error::BadFile {
                path,
                problem: format!(
                    "{problem}: the rotation of {ca} cannot be followed; restore the file from a backup \
                     (kubepki backup list) before changing the tree"
                ),
            },
            other => other,
        })?;
    }
    Ok(())
}

/// Where the rotation of one CA stands.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// The CA (or `sa`).
    pub ca: String,
    /// The last phase done (`None`: no rotation under way).
    pub phase: Option<Phase>,
    /// When its `start` ran.
    #[serde(with = "crate::report::json::rfc3339_option")]
    pub started: Option<OffsetDateTime>,
    /// The next command.
    pub next: Option<String>,
    /// What the last phase changed, which every node must have (and have restarted) before
    /// the next phase: from the backup of that phase's run.
    pub roll_out_first: Vec<crate::operations::rollout::NodeRollout>,
}

/// Where each rotatable CA stands.
pub fn status(tree: &Tree) -> Result<Vec<RotationStatus>> {
    let backups = crate::disk::backup::list(&tree.root)?;
    rotatable(tree)
        .into_iter()
        .map(|ca| {
            let state = read_state(&tree.root, &ca)?;
            let phase = state.as_ref().map(|s| s.phase);
            let (done, next) = match phase {
                None => return Ok(RotationStatus { ca, phase, started: None, next: None, roll_out_first: vec![] }),
                Some(Phase::Start) => ("start", "reissue"),
                Some(Phase::Reissue) => ("reissue", "finish"),
            };
            let command = format!("rotate-ca {ca} {done}");
            let changed: Vec<PathBuf> = backups
                .iter()
                .rev()
                .find(|b| b.command.as_deref() == Some(command.as_str()))
                .map(|b| b.saved.iter().chain(&b.created).cloned().collect())
                .unwrap_or_default();
            Ok(RotationStatus {
                next: Some(format!("kubepki rotate-ca {ca} {next}")),
                started: state.map(|s| s.started),
                roll_out_first: crate::operations::rollout::rollout(&tree.spec, &changed),
                ca,
                phase,
            })
        })
        .collect()
}

fn rotatable(tree: &Tree) -> Vec<String> {
    tree.catalog.entries.iter().filter(|e| e.is_ca() || e.id == SA).map(|e| e.id.to_string()).collect()
}

fn out_of_order(ca: &str, wanted: Step, state: Option<&State>) -> Error {
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
        EntryKind::Ca { cert, key, .. } => Ok((cert.clone(), key.clone())),
        EntryKind::KeyPair { key, public } => Ok((public.clone(), key.clone())),
        EntryKind::Leaf(_) => {
            Err(Error::Invalid(format!("'{ca}' is not a CA; rotatable: {}", rotatable(tree).join(", "))))
        }
    }
}

fn read(root: &Path, rel: &Path) -> Result<String> {
    read_at(&root.join(rel))
}

/// The key of the CA `ca` being rotated; missing beside its certificate, the CA is managed
/// outside the tree, and said so.
fn read_ca_key(root: &Path, ca: &str, cert_rel: &Path, key_rel: &Path) -> Result<PrivateKey> {
    let path = root.join(key_rel);
    match read_at(&path) {
        Ok(pem) => PrivateKey::from_pem(&pem, &path),
        Err(e) if crate::disk::readfile::is_missing(&e) && root.join(cert_rel).is_file() => Err(
            crate::disk::tree::externally_managed(root, ca, &path, "rotate it (its key is kept where it is managed)"),
        ),
        Err(e) => Err(e),
    }
}

fn read_at(path: &Path) -> Result<String> {
    crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Pem)
}

/// The PEM blocks of a file, re-encoded one after the other.
fn blocks(text: &str, path: &Path) -> Result<Vec<String>> {
    let parsed = pem::parse_many(text).map_err(|e| Error::bad_file(path, format!("not valid PEM: {e}")))?;
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(parsed.iter().map(|b| pem::encode_config(b, config)).collect())
}

/// Every kubeconfig that trusts `ca`, rewritten with new CA data (client credential kept;
/// with `first_only`, its certificate without the chain shipped after it): `(path, text, mode)`.
/// Only those kubeconfigs are read (in parallel), not the rest of the tree.
fn kubeconfigs_with_ca_data(
    tree: &Tree,
    ca: &str,
    ca_pem: &str,
    first_only: bool,
) -> Result<Vec<(PathBuf, Vec<u8>, Mode)>> {
    let trusting: Vec<(&Leaf, &Path)> = tree
        .catalog
        .entries
        .iter()
        .filter_map(|e| match e.leaf() {
            Some(leaf @ Leaf { store: Store::Kubeconfig { path, ca: trust, .. }, .. }) if trust == ca => {
                Some((leaf, path.as_path()))
            }
            _ => None,
        })
        .collect();
    let rewritten = trusting
        .par_iter()
        .map(|(leaf, path)| {
            let full = tree.root.join(path);
            // As the tree is when the command began (under its lock): missing or unreadable
            // parts are verify's to report, and init's to make.
            let Ok(k) = crate::x509::kubeconfig::read(&full) else { return Ok(Vec::new()) };
            let (Some(cert), Some(key)) = (&k.cert_pem, &k.key_pem) else { return Ok(Vec::new()) };
            let cert =
                if first_only { blocks(cert, &full)?.into_iter().next().unwrap_or_default() } else { cert.clone() };
            // The credential and the server it dials are kept; the CA data is new.
            let files = crate::disk::tree::leaf_files(leaf, &cert, Some(key), ca_pem, Some(&k.server));
            Ok(files.into_iter().map(|(p, text, mode)| (p, text.into_bytes(), mode)).collect())
        })
        .collect::<Result<Vec<Vec<_>>>>()?;
    Ok(rewritten.into_iter().flatten().collect())
}

/// A CA certificate a phase makes or puts in place, as a change (`before`: the CA it follows).
fn ca_change(tree: &Tree, ca: &str, file: PathBuf, before: Option<&CertInfo>, after: &CertInfo, key: &str) -> Change {
    let entry = tree.catalog.get(ca).map(|e| e.id.clone()).expect("a CA of the catalog");
    let issuer_key = |c: &CertInfo| {
        let by = [before, Some(after)].into_iter().flatten().find(|ca| c.is_signed_by(ca));
        by.map(|ca| key_fingerprint(&ca.public_key_raw))
    };
    Change {
        entry,
        file,
        before: before.map(|b| Summary::of(b, &b.key.to_string(), issuer_key(b))),
        after: Summary::of(after, &format!("{key} {}", after.key), issuer_key(after)),
    }
}

/// Every certificate file `ca` signs that ships a chain after its certificate (the cross-signed
/// CA of a rotation), rewritten without it.
fn leaves_without_chain(tree: &Tree, ca: &str) -> Result<Vec<(PathBuf, Vec<u8>, Mode)>> {
    let signed: Vec<&Path> = tree
        .catalog
        .entries
        .iter()
        .filter_map(|e| match e.leaf() {
            Some(Leaf { store: Store::Files { cert, .. }, issuer, .. }) if *issuer == ca => Some(cert.as_path()),
            _ => None,
        })
        .collect();
    let rewritten = signed
        .par_iter()
        .map(|cert| {
            let full = tree.root.join(cert);
            let Ok(text) = std::fs::read_to_string(&full) else { return Ok(None) };
            let found = blocks(&text, &full)?;
            Ok((found.len() > 1).then(|| (cert.to_path_buf(), found[0].clone().into_bytes(), Mode::Public)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(rewritten.into_iter().flatten().collect())
}

/// Run one phase for `ca` (`ca`, `etcd-ca`, `front-proxy-ca` or `sa`), as one journaled batch:
/// the phase's files, the node bundles' copies, the issuance log's lines and the phase state
/// land together, or not at all (see [`crate::disk::store`]).
pub fn rotate(tree: &Tree, ca: &str, phase: Step, now: OffsetDateTime) -> Result<Applied> {
    run_phase(tree, ca, phase, now, false)
}

/// What one phase would do, writing nothing: the certificates it would reissue (with the key
/// of the CA that signs them before and after: the new CA has the old one's name) and, per
/// node, the files it would change.
pub fn rotate_dry_run(tree: &Tree, ca: &str, phase: Step, now: OffsetDateTime) -> Result<Applied> {
    run_phase(tree, ca, phase, now, true)
}

/// metrics-server's `APIService` is a trust point of the CA that signs its certificate: its
/// `caBundle` follows the CA file (the add-on's manifest, when the tree has it).
fn api_service_ca_bundle(tree: &Tree, ca: &str, pem: &str) -> Result<Option<(PathBuf, Vec<u8>, Mode)>> {
    let rewritten = crate::operations::wiring::metrics_server::ca_bundle_rewritten(&tree.root, &tree.catalog, ca, pem)?;
    Ok(rewritten.map(|(path, text)| (path, text, Mode::Public)))
}

fn run_phase(tree: &Tree, ca: &str, phase: Step, now: OffsetDateTime, dry_run: bool) -> Result<Applied> {
    crate::disk::tree::refuse_linked_dirs(&tree.root)?;
    crate::disk::issuance::check_appendable(&tree.root)?;
    let (cert_rel, key_rel) = ca_files(tree, ca)?;
    let state = read_state(&tree.root, ca)?;
    let dir = PathBuf::from(crate::model::vocabulary::state::ROTATION).join(ca);
    let is_sa = ca == SA;
    let command = format!("rotate-ca {ca} {phase}");
    let mut writes: Vec<(PathBuf, Vec<u8>, Mode)> = Vec::new();
    let mut records: Vec<IssuanceRecord> = Vec::new();
    let mut removes: Vec<PathBuf> = Vec::new();
    let (mut changes, mut notes) = (Vec::new(), Vec::new());
    let state_file =
        |s: &State| (dir.join("state.json"), serde_json::to_vec_pretty(s).expect("serializes"), Mode::Public);
    match phase {
        Step::Start => {
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
            let old_key = read_ca_key(&tree.root, ca, &cert_rel, &key_rel)?;
            let new_key = PrivateKey::generate(old_key.algorithm())?;
            let new_pem = if is_sa {
                new_key.public_key_pem()
            } else {
                let e = tree.catalog.get(ca).expect("checked");
                let p = e.cert().expect("a CA");
                // The old CA must be sound before we build on it.
                let old = Ca::load(
                    ca,
                    &current,
                    &tree.root.join(&cert_rel),
                    PrivateKey::from_pem(old_key.to_pem(), &key_rel)?,
                )?;
                let new = Ca::create(ca, p, PrivateKey::from_pem(new_key.to_pem(), &key_rel)?, now)?;
                records.push(IssuanceRecord::new(&new.info, Some(ca), "", now));
                changes.push(ca_change(tree, ca, dir.join("new.pem"), Some(&old.info), &new.info, "new"));
                new.cert_pem
            };
            let new_pem = blocks(&new_pem, Path::new("new"))?.remove(0);
            let bundle = format!("{}{}", current_blocks[0], new_pem);
            writes.push((dir.join("new.pem"), new_pem.clone().into_bytes(), Mode::Public));
            writes.push((dir.join("new.key"), new_key.to_pem().as_bytes().to_vec(), Mode::Secret));
            writes.push((dir.join("old.pem"), current_blocks[0].clone().into_bytes(), Mode::Public));
            writes.push((cert_rel.clone(), bundle.clone().into_bytes(), Mode::Public));
            if !is_sa {
                writes.extend(kubeconfigs_with_ca_data(tree, ca, &bundle, false)?);
                writes.extend(api_service_ca_bundle(tree, ca, &bundle)?);
            }
            writes.push(state_file(&State { phase: Phase::Start, started: now, reissued: None }));
        }
        Step::Reissue => {
            let Some(s) = state.as_ref().filter(|s| s.phase == Phase::Start) else {
                return Err(out_of_order(ca, phase, state.as_ref()));
            };
            let root = &tree.root;
            let new_pem = read_at(&root.join(&dir).join("new.pem"))?;
            let old_pem = read_at(&root.join(&dir).join("old.pem"))?;
            let new_key = read_at(&root.join(&dir).join("new.key"))?;
            let bundle = format!("{new_pem}{old_pem}");
            writes.push((key_rel.clone(), new_key.clone().into_bytes(), Mode::Secret));
            writes.push((cert_rel.clone(), bundle.clone().into_bytes(), Mode::Public));
            if !is_sa {
                // The new CA signs every leaf of the old one; each ships the new CA's
                // certificate cross-signed by the old key after it, so that a party that
                // still trusts only the old CA verifies it until `finish`.
                let key_path = root.join(&dir).join("new.key");
                let old_key = read_ca_key(root, ca, &cert_rel, &key_rel)?;
                let old = Ca::load(ca, &old_pem, &root.join(&dir).join("old.pem"), old_key)?;
                let new_ca = Ca::load(
                    ca,
                    &new_pem,
                    &root.join(&dir).join("new.pem"),
                    PrivateKey::from_pem(&new_key, &key_path)?,
                )?;
                let profile = tree.catalog.get(ca).and_then(|e| e.cert()).expect("a CA").clone();
                let cross = old.cross_sign(&profile, &PrivateKey::from_pem(&new_key, &key_path)?, now)?;
                records.push(IssuanceRecord::of_der(&cross.der, Some(ca), "", now)?);
                let cross_info = CertInfo::from_der(&cross.der).map_err(|e| Error::crypto("reading back", e))?;
                let names: Vec<String> = tree
                    .catalog
                    .entries
                    .iter()
                    .filter(|e| e.issuer().is_some_and(|i| *i == ca))
                    .map(|e| e.id.to_string())
                    .collect();
                let signer = Signer { ca: new_ca, ca_data: bundle.clone(), chain: cross.pem.clone() };
                let parts = plan_renew_signed_by(tree, &names, signer, now)?.into_parts();
                changes.push(ca_change(
                    tree,
                    ca,
                    dir.join("cross.pem"),
                    None,
                    &cross_info,
                    "the new CA's, cross-signed",
                ));
                changes.extend(parts.changes);
                notes = parts.notes;
                writes.extend(parts.writes);
                records.extend(parts.records);
                writes.push((dir.join("cross.pem"), cross.pem.into_bytes(), Mode::Public));
            }
            if is_sa {
                notes.push((
                    EntryId::shared(SA),
                    format!(
                        "before finish: kube-apiserver runs with the two-key sa.pub and kube-controller-manager with \
                         the new sa.key; then wait {h} h (the kubelet refreshes projected tokens within {h} h) and \
                         recreate legacy token Secrets: finish drops the old key, and every token it signed with it",
                        h = TOKEN_REFRESH.whole_hours()
                    ),
                ));
            }
            writes.push(state_file(&State { phase: Phase::Reissue, started: s.started, reissued: Some(now) }));
        }
        Step::Finish => {
            if state.as_ref().map(|s| s.phase) != Some(Phase::Reissue) {
                return Err(out_of_order(ca, phase, state.as_ref()));
            }
            let since = state.as_ref().and_then(|s| s.reissued).map(|r| now - r);
            if let (true, Some(since)) = (is_sa, since.filter(|d| *d < TOKEN_REFRESH)) {
                notes.push((
                    EntryId::shared(SA),
                    format!(
                        "finished {} after reissue, within the {} h the kubelet may keep a projected token: pods \
                         whose token was not refreshed yet, and legacy token Secrets, are refused once kube-apiserver \
                         runs with the new sa.pub alone",
                        crate::audit::inspect::span(since),
                        TOKEN_REFRESH.whole_hours()
                    ),
                ));
            }
            let new_pem = read_at(&tree.root.join(&dir).join("new.pem"))?;
            writes.push((cert_rel.clone(), new_pem.clone().into_bytes(), Mode::Public));
            if !is_sa {
                let old_path = tree.root.join(&dir).join("old.pem");
                let old = CertInfo::from_pem(&read_at(&old_path)?, &old_path)?;
                let new = CertInfo::from_pem(&new_pem, &tree.root.join(&dir).join("new.pem"))?;
                changes.push(ca_change(tree, ca, cert_rel.clone(), Some(&old), &new, "the new CA's, alone"));
                writes.extend(kubeconfigs_with_ca_data(tree, ca, &new_pem, true)?);
                writes.extend(api_service_ca_bundle(tree, ca, &new_pem)?);
                writes.extend(leaves_without_chain(tree, ca)?);
            }
            // The rotation's files leave the tree with the rest (saved first in the backup).
            for name in ["new.pem", "new.key", "old.pem", "cross.pem", "state.json"] {
                if tree.root.join(&dir).join(name).exists() {
                    removes.push(dir.join(name));
                }
            }
        }
    }
    let (mut batch, bundle_files_written, mut paths) = one_batch(tree, writes, records, &command)?;
    if dry_run {
        paths.extend(removes);
        return Ok(Applied {
            rollout: crate::operations::rollout::rollout(&tree.spec, &paths),
            changes,
            notes,
            backup: None,
            bundle_files_written,
            verify: None,
        });
    }
    drop(paths);
    for r in &removes {
        batch.remove(tree.root.join(r));
    }
    batch.commit_in(&tree.root)?;
    if let Some(r) = removes.first() {
        crate::disk::backup::remove_empty_parents(&tree.root, &tree.root.join(r));
    }
    Ok(Applied {
        rollout: crate::operations::rollout::rollout(&tree.spec, &crate::disk::backup::changed(&tree.root)),
        changes,
        notes,
        backup: crate::disk::backup::current_dir(&tree.root),
        bundle_files_written,
        verify: None,
    })
}
