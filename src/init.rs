//! `kubepki init`: make every file of the catalog that is missing, keep every existing file
//! that is right, and refuse to replace anything else unless forced.
//!
//! The run first surveys the whole tree and decides; only then does it write, CAs first,
//! then leaves and kubeconfigs, then the node bundles, each in crash-safe batches. A killed
//! run can simply be run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::catalog::{Catalog, CertProfile, Entry, EntryKind, Issuer, Store};
use crate::certinfo::CertInfo;
use crate::error::{Error, Result};
use crate::issue::{Ca, PrivateKey};
use crate::kubeconfig::{self, Kubeconfig};
use crate::spec::ClusterSpec;
use crate::store::{self, Batch, Mode};

/// How many entries are made and written per batch: bounds memory on large clusters.
const CHUNK: usize = 512;

/// What `init` may do.
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// Replace files that are present but wrong, CAs included (old files are backed up).
    pub force: bool,
}

/// What happened to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// It was missing and has been made.
    Created,
    /// It was present and right, and was kept.
    Kept,
    /// It was present but wrong, and has been replaced (`--force`).
    Replaced {
        /// Why it was wrong.
        reason: String,
    },
}

/// The outcome of one entry.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The catalog id.
    pub id: String,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
}

/// What `init` did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// The tree.
    pub dir: PathBuf,
    /// One outcome per catalog entry, in catalog order.
    pub entries: Vec<Outcome>,
    /// Files written into node bundles (copies of shared files).
    pub bundle_files_written: usize,
    /// Where replaced files were saved, if any were.
    pub backup: Option<PathBuf>,
}

/// What is on disk for one entry.
enum Found {
    Missing,
    Good,
    Bad(String),
}

/// Generate the tree at `root`.
pub fn init(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    opts: &InitOptions,
    now: OffsetDateTime,
) -> Result<InitReport> {
    if root.exists() && !root.is_dir() {
        return Err(Error::bad_file(root, "exists and is not a directory"));
    }
    store::sweep_temporaries(root)?;

    // 1. Survey: decide everything before writing anything.
    let mut cas: HashMap<&str, Ca> = HashMap::new();
    let mut decisions: Vec<(&Entry, Found)> = Vec::with_capacity(catalog.entries.len());
    for entry in &catalog.entries {
        let found = match &entry.kind {
            EntryKind::Cert(p) if p.is_ca => match survey_ca(root, entry, p, now) {
                Ok(Some(ca)) => {
                    cas.insert(&entry.id, ca);
                    Found::Good
                }
                Ok(None) => Found::Missing,
                Err(reason) => Found::Bad(reason),
            },
            EntryKind::Cert(p) => {
                let Issuer::Ca(issuer) = &p.issuer else { unreachable!("leaves have a CA") };
                survey_leaf(root, p, cas.get(issuer.as_str()), now)
            }
            EntryKind::KeyPair { key, public } => survey_key_pair(root, key, public),
        };
        decisions.push((entry, found));
    }
    let bad: Vec<_> = decisions
        .iter()
        .filter_map(|(e, f)| match f {
            Found::Bad(reason) => Some((*e, reason.clone())),
            _ => None,
        })
        .collect();
    if !bad.is_empty() && !opts.force {
        return Err(Error::WouldClobber {
            paths: bad.iter().flat_map(|(e, _)| e.files().into_iter().map(|(f, _)| root.join(f))).collect(),
            reason: bad.iter().map(|(e, r)| format!("{}: {r}", e.id)).collect::<Vec<_>>().join("\n  "),
            hint: "nothing was written. Fix or remove these files, or run again with --force to replace them (the old files are backed up).".into(),
        });
    }

    // 2. Back up what will be replaced.
    let backup = if bad.is_empty() { None } else { Some(back_up(root, bad.iter().map(|(e, _)| *e), now)?) };

    // 3. CAs and the service-account key pair.
    let mut batch = Batch::new();
    for (entry, found) in &decisions {
        if matches!(found, Found::Good) {
            continue;
        }
        match &entry.kind {
            EntryKind::Cert(p) if p.is_ca => {
                let key = PrivateKey::generate(spec.key_algorithm)?;
                let key_pem = key.to_pem().to_string();
                let ca = Ca::create(&entry.id, p, key, now)?;
                let Store::Files { cert, key: key_path } = &p.store else { unreachable!("CAs are files") };
                batch.add(root.join(cert), ca.cert_pem.clone(), Mode::Public);
                batch.add(root.join(key_path), key_pem, Mode::Secret);
                cas.insert(&entry.id, ca);
            }
            EntryKind::KeyPair { key, public } => {
                let k = PrivateKey::generate(spec.key_algorithm)?;
                batch.add(root.join(public), k.public_key_pem(), Mode::Public);
                batch.add(root.join(key), k.to_pem(), Mode::Secret);
            }
            EntryKind::Cert(_) => {}
        }
    }
    batch.commit()?;

    // 4. Leaves and kubeconfigs, made in parallel, written a chunk at a time.
    let todo: Vec<(&Entry, &CertProfile)> = decisions
        .iter()
        .filter(|(_, f)| !matches!(f, Found::Good))
        .filter_map(|(e, _)| e.cert().filter(|p| !p.is_ca).map(|p| (*e, p)))
        .collect();
    for chunk in todo.chunks(CHUNK) {
        let made: Vec<Vec<(PathBuf, String, Mode)>> =
            chunk.par_iter().map(|(_, p)| make_leaf(root, p, &cas, spec, now)).collect::<Result<_>>()?;
        let mut batch = Batch::new();
        for (path, text, mode) in made.into_iter().flatten() {
            batch.add(path, text, mode);
        }
        batch.commit()?;
    }

    // 5. Node bundles: copies of shared files, refreshed when they differ.
    let bundle_files_written = write_bundles(spec, catalog, root)?;

    let entries = decisions
        .into_iter()
        .map(|(e, f)| Outcome {
            id: e.id.clone(),
            action: match f {
                Found::Missing => Action::Created,
                Found::Good => Action::Kept,
                Found::Bad(reason) => Action::Replaced { reason },
            },
        })
        .collect();
    Ok(InitReport { dir: root.to_path_buf(), entries, bundle_files_written, backup })
}

fn make_leaf(
    root: &Path,
    p: &CertProfile,
    cas: &HashMap<&str, Ca>,
    spec: &ClusterSpec,
    now: OffsetDateTime,
) -> Result<Vec<(PathBuf, String, Mode)>> {
    let Issuer::Ca(issuer) = &p.issuer else { unreachable!("leaves have a CA") };
    let ca = &cas[issuer.as_str()];
    let key = PrivateKey::generate(spec.key_algorithm)?;
    let issued = ca.sign_key(p, &key, now)?;
    Ok(match &p.store {
        Store::Files { cert, key: key_path } => vec![
            (root.join(cert), issued.pem, Mode::Public),
            (root.join(key_path), key.to_pem().to_string(), Mode::Secret),
        ],
        Store::Kubeconfig { path, cluster, server, ca: trust } => {
            let text = Kubeconfig {
                cluster,
                server,
                ca_pem: &cas[trust.as_str()].cert_pem,
                user: &p.subject.cn,
                cert_pem: &issued.pem,
                key_pem: key.to_pem(),
            }
            .render();
            vec![(root.join(path), text, Mode::Secret)]
        }
    })
}

fn write_bundles(spec: &ClusterSpec, catalog: &Catalog, root: &Path) -> Result<usize> {
    let mut cache: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    let mut written = 0;
    for nodes in spec.nodes.chunks(CHUNK) {
        let mut batch = Batch::new();
        for node in nodes {
            for (src, dst, mode) in catalog.bundle(spec, node) {
                if src == dst {
                    continue;
                }
                if !cache.contains_key(&src) {
                    let path = root.join(&src);
                    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
                    cache.insert(src.clone(), bytes);
                }
                let bytes = &cache[&src];
                let dst = root.join(dst);
                if std::fs::read(&dst).is_ok_and(|old| &old == bytes) {
                    continue;
                }
                batch.add(dst, bytes.clone(), mode);
            }
        }
        written += batch.len();
        batch.commit()?;
    }
    Ok(written)
}

/// Copy the files of entries about to be replaced to `.kubepki-backup/<time>/`.
fn back_up<'a>(root: &Path, entries: impl Iterator<Item = &'a Entry>, now: OffsetDateTime) -> Result<PathBuf> {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let dir = root.join(".kubepki-backup").join(stamp);
    let mut batch = Batch::new();
    for e in entries {
        for (f, mode) in e.files() {
            if let Ok(bytes) = std::fs::read(root.join(f)) {
                batch.add(dir.join(f), bytes, mode);
            }
        }
    }
    batch.commit()?;
    Ok(dir)
}

fn read_opt(path: &Path) -> std::result::Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// `Ok(None)`: missing; `Ok(Some)`: a usable CA; `Err`: present but wrong.
fn survey_ca(
    root: &Path,
    entry: &Entry,
    p: &CertProfile,
    now: OffsetDateTime,
) -> std::result::Result<Option<Ca>, String> {
    let Store::Files { cert, key } = &p.store else { unreachable!("CAs are files") };
    let (cert_path, key_path) = (root.join(cert), root.join(key));
    match (read_opt(&cert_path)?, read_opt(&key_path)?) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(format!("{} is missing (a CA certificate without its key cannot sign)", key_path.display()))
        }
        (None, Some(_)) => Err(format!("{} is missing but its key exists", cert_path.display())),
        (Some(c), Some(k)) => {
            let key = PrivateKey::from_pem(&k, &key_path).map_err(|e| e.to_string())?;
            let ca = Ca::load(&entry.id, &c, &cert_path, key).map_err(|e| e.to_string())?;
            check_time(&ca.info, now).map_err(|r| format!("{}: {r}", cert_path.display()))?;
            Ok(Some(ca))
        }
    }
}

fn survey_key_pair(root: &Path, key: &Path, public: &Path) -> Found {
    let (key_path, pub_path) = (root.join(key), root.join(public));
    let (k, p) = match (read_opt(&key_path), read_opt(&pub_path)) {
        (Ok(None), Ok(None)) => return Found::Missing,
        (Ok(Some(k)), Ok(Some(p))) => (k, p),
        (Err(e), _) | (_, Err(e)) => return Found::Bad(e),
        _ => return Found::Bad(format!("{} and {} must both exist", key_path.display(), pub_path.display())),
    };
    match PrivateKey::from_pem(&k, &key_path) {
        Err(e) => Found::Bad(e.to_string()),
        Ok(key) if key.public_key_pem().trim() != p.trim() => {
            Found::Bad(format!("{} does not hold the public key of {}", pub_path.display(), key_path.display()))
        }
        Ok(_) => Found::Good,
    }
}

fn survey_leaf(root: &Path, p: &CertProfile, ca: Option<&Ca>, now: OffsetDateTime) -> Found {
    match check_leaf(root, p, ca, now) {
        Ok(None) => Found::Missing,
        Ok(Some(())) => Found::Good,
        Err(reason) => Found::Bad(reason),
    }
}

/// `Ok(None)`: missing; `Ok(Some(()))`: right; `Err(reason)`: present but wrong.
fn check_leaf(
    root: &Path,
    p: &CertProfile,
    ca: Option<&Ca>,
    now: OffsetDateTime,
) -> std::result::Result<Option<()>, String> {
    let (shown, cert_pem, key_pem) = match &p.store {
        Store::Files { cert, key } => {
            let (cp, kp) = (root.join(cert), root.join(key));
            match (read_opt(&cp)?, read_opt(&kp)?) {
                (None, None) => return Ok(None),
                (Some(c), Some(k)) => (cp, c, k),
                (Some(_), None) => return Err(format!("{} is missing", kp.display())),
                (None, Some(_)) => return Err(format!("{} is missing", cp.display())),
            }
        }
        Store::Kubeconfig { path, server, .. } => {
            let path = root.join(path);
            let Some(text) = read_opt(&path)? else { return Ok(None) };
            let k = kubeconfig::parse(&text, &path).map_err(|e| e.to_string())?;
            let ca = ca.ok_or_else(|| format!("{}: its CA is being created anew", path.display()))?;
            if k.ca_pem.as_deref().map(str::trim) != Some(ca.cert_pem.trim()) {
                return Err(format!(
                    "{}: certificate-authority-data is not the current {} certificate",
                    path.display(),
                    ca.id
                ));
            }
            if &k.server != server {
                return Err(format!("{}: server is {}, expected {server}", path.display(), k.server));
            }
            match (k.cert_pem, k.key_pem) {
                (Some(c), Some(key)) => (path, c, key),
                _ => return Err(format!("{}: no embedded client certificate and key", path.display())),
            }
        }
    };
    let fail = |r: String| format!("{}: {r}", shown.display());
    let info = CertInfo::from_pem(&cert_pem, &shown).map_err(|e| e.to_string())?;
    let key = PrivateKey::from_pem(&key_pem, &shown).map_err(|e| e.to_string())?;
    if !key.matches(&info) {
        return Err(fail("the private key does not match the certificate".into()));
    }
    let ca = ca.ok_or_else(|| fail("its CA is being created anew".into()))?;
    if !info.is_signed_by(&ca.info) {
        return Err(fail(format!("not signed by the current {}", ca.id)));
    }
    check_time(&info, now).map_err(fail)?;
    let diffs = info.differences_from(p);
    if !diffs.is_empty() {
        return Err(fail(diffs.join("; ")));
    }
    Ok(Some(()))
}

fn check_time(info: &CertInfo, now: OffsetDateTime) -> std::result::Result<(), String> {
    if now > info.not_after {
        return Err(format!("expired on {}", info.not_after));
    }
    if now < info.not_before {
        return Err(format!("not valid until {}", info.not_before));
    }
    Ok(())
}
