//! Backups: nothing a command replaces or removes is lost, and a tree can be put back as it
//! was before any run.
//!
//! Each run of a command that changes a tree (a [`Run`](crate::disk::run::Run)) has its own backup
//! folder, `D/.kubepki-backup/<id>/`, made with `create_dir` the first time the run replaces,
//! removes or creates a file (so two runs never share one, even within a millisecond), and
//! holding `.kubepki-run.json` (sequence number, command, pid, time). Before the store puts a
//! batch in place ([`crate::disk::store`] calls [`save_before_change`] before it journals the batch),
//! every file the batch replaces or removes gets a second name (a hard link) in the folder at
//! its path in the tree, made durable: the same bytes and mode, at no cost, since the store
//! never changes a file in place but renames a new one over it (a copy where no link can be
//! made); every file it creates is listed in the
//! folder's `.kubepki-created`. Only the first version a run meets is kept: the folder holds
//! the tree as it was before the run, for the files the run touched.
//!
//! A run killed part way leaves a folder that may list a file it did not get to change: the
//! copy is then the file as it still is, which restoring puts back unchanged.
//!
//! [`restore`] puts the tree back as it was before a run: it undoes that run and every later
//! one, newest first (the oldest copy of each file wins; files created since are removed), as
//! one journaled batch of a run of its own, which is itself backed up. Not backed up, and not
//! restored: the issuance log (history: what was signed stays signed), the lock file and the
//! journal.
//!
//! [`prune`] removes the oldest backups (a tree changed often at thousands of nodes gains tens
//! of thousands of folders per run): each folder is first renamed out of the list
//! (`.pruning-<id>`, atomic, made durable), then deleted, so a killed prune leaves every backup
//! whole or gone; the next prune finishes what it left.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::disk::store::{self, Batch, Mode};
use crate::error::{Error, Result};

/// Where backups live, relative to the tree.
pub const BACKUP_DIR: &str = crate::model::vocabulary::state::BACKUP;
/// A backup folder's description of its run.
const RUN_FILE: &str = ".kubepki-run.json";
/// A backup folder's list of the files its run created (one path per line).
const CREATED_FILE: &str = ".kubepki-created";
/// The name a backup folder takes while [`prune`] deletes it.
const PRUNING: &str = ".pruning-";

/// Files of the tree that are never backed up nor restored.
fn is_kept_out(rel: &Path) -> bool {
    rel.starts_with(BACKUP_DIR)
        || rel == Path::new(crate::disk::issuance::LOG)
        || rel == Path::new(crate::disk::run::LOCK)
        || rel == Path::new(store::JOURNAL)
}

/// What a backup folder says of its run.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunFile {
    seq: u64,
    command: String,
    pid: u32,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
}

/// The backup of one run, filled as the run changes the tree.
#[derive(Debug)]
pub(crate) struct Backup {
    root: PathBuf,
    command: String,
    /// Whether files are saved (else only noted as changed: a tree that held nothing).
    keep: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    dir: Option<PathBuf>,
    seen: HashSet<PathBuf>,
}

/// The backups of the runs under way in this process, one per tree.
fn active() -> &'static Mutex<Vec<Arc<Backup>>> {
    static ACTIVE: OnceLock<Mutex<Vec<Arc<Backup>>>> = OnceLock::new();
    ACTIVE.get_or_init(Default::default)
}

/// Keep a backup of what is changed under `root` from now on (until [`deactivate`]).
pub(crate) fn activate(root: &Path, command: &str, keep: bool) -> Arc<Backup> {
    let b = Arc::new(Backup { root: root.to_path_buf(), command: command.into(), keep, state: Mutex::default() });
    active().lock().unwrap_or_else(|p| p.into_inner()).push(b.clone());
    b
}

/// Stop keeping `b`.
pub(crate) fn deactivate(b: &Arc<Backup>) {
    active().lock().unwrap_or_else(|p| p.into_inner()).retain(|x| !Arc::ptr_eq(x, b));
}

/// The backup folder of the run under way on `root`, if it has saved anything.
pub(crate) fn current_dir(root: &Path) -> Option<PathBuf> {
    let b = active().lock().unwrap_or_else(|p| p.into_inner()).iter().find(|b| b.root == root).cloned()?;
    let dir = b.state.lock().unwrap_or_else(|p| p.into_inner()).dir.clone();
    dir
}

/// Every file the run under way on `root` has replaced, removed or created so far, relative
/// to the tree (backups, the lock, the log and the journal aside).
pub(crate) fn changed(root: &Path) -> Vec<PathBuf> {
    let found = active().lock().unwrap_or_else(|p| p.into_inner()).iter().find(|b| b.root == root).cloned();
    let Some(b) = found else { return Vec::new() };
    let mut all: Vec<PathBuf> = b.state.lock().unwrap_or_else(|p| p.into_inner()).seen.iter().cloned().collect();
    all.sort();
    all
}

/// Save what a batch is about to replace (`targets` that exist) or remove, and list the
/// `targets` it creates, in the backup of the run under way on their tree (if any).
pub(crate) fn save_before_change(targets: &[&Path], removes: &[&Path]) -> Result<()> {
    let Some(first) = targets.first().or(removes.first()) else { return Ok(()) };
    let found = active()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|b| first.starts_with(&b.root) && !first.starts_with(b.root.join(BACKUP_DIR)))
        .cloned();
    match found {
        Some(b) => b.save(targets.iter().chain(removes)),
        None => Ok(()),
    }
}

impl Backup {
    fn save<'a>(&self, paths: impl Iterator<Item = &'a &'a Path>) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut new: Vec<&Path> = Vec::new();
        for path in paths {
            let Ok(rel) = path.strip_prefix(&self.root) else { continue };
            if is_kept_out(rel) || !state.seen.insert(rel.to_path_buf()) || !self.keep {
                continue;
            }
            new.push(rel);
        }
        if new.is_empty() {
            return Ok(());
        }
        let dir = match &state.dir {
            Some(d) => d.clone(),
            None => {
                let d = self.make_dir()?;
                state.dir = Some(d.clone());
                d
            }
        };
        // A second name for each file, in the folder: the store never changes a file in
        // place (it renames a new one over it), so the folder keeps the old bytes and mode
        // at no cost. A file that is not there yet is one the run creates; where a link
        // cannot be made, a copy.
        let pairs: Vec<(PathBuf, PathBuf)> = new.iter().map(|rel| (self.root.join(rel), dir.join(rel))).collect();
        let linked = store::link_durably(&pairs)?;
        let mut batch = Batch::new();
        let mut created = String::new();
        for (((from, to), rel), outcome) in pairs.iter().zip(&new).zip(linked) {
            match outcome {
                store::Linked::Yes => {}
                store::Linked::Missing => {
                    created.push_str(&rel.to_string_lossy());
                    created.push('\n');
                }
                store::Linked::No => match fs::symlink_metadata(from) {
                    Ok(m) if m.is_file() => {
                        let bytes = crate::disk::readfile::read(from, crate::disk::readfile::Limit::Document)?;
                        batch.add(to.clone(), bytes, Mode::Bits(m.mode()));
                    }
                    Ok(_) => {} // not a file: the change itself will fail and say so
                    Err(e) => return Err(Error::io(from, "look at for the backup", e)),
                },
            }
        }
        batch.commit()?;
        if !created.is_empty() {
            store::append_synced(&dir.join(CREATED_FILE), created.as_bytes())?;
        }
        Ok(())
    }

    /// A new folder of its own for this run.
    fn make_dir(&self) -> Result<PathBuf> {
        let base = self.root.join(BACKUP_DIR);
        // Never a backup (keys among it) written through a linked `.kubepki-backup`.
        store::LinkGuard::new(Some(&self.root)).check(&base.join(RUN_FILE))?;
        store::make_dirs(&base)?;
        let seq = last_seq(&base) + 1;
        let now = OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        for n in 1..1000 {
            let name = if n == 1 { stamp.clone() } else { format!("{stamp}-{n}") };
            let dir = base.join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let run = RunFile { seq, command: self.command.clone(), pid: std::process::id(), time: now };
                    let text = serde_json::to_string_pretty(&run).expect("serializes");
                    store::write_atomic(&dir.join(RUN_FILE), text.as_bytes(), Mode::Public)?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&dir, "create the backup folder", e)),
            }
        }
        Err(Error::io(&base, "create the backup folder", std::io::Error::other("too many backups of one instant")))
    }
}

/// The highest sequence number of the backups in `base` (0 if none).
fn last_seq(base: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(base) else { return 0 };
    entries
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join(RUN_FILE)).ok())
        .filter_map(|t| serde_json::from_str::<RunFile>(&t).ok())
        .map(|r| r.seq)
        .max()
        .unwrap_or(0)
}

/// One backup folder.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupInfo {
    /// Its name under `.kubepki-backup/`.
    pub id: String,
    /// The order of its run among the tree's runs (0: a folder made before runs were numbered).
    pub seq: u64,
    /// The command that made it.
    pub command: Option<String>,
    /// When.
    #[serde(with = "crate::report::json::rfc3339_option")]
    pub time: Option<OffsetDateTime>,
    /// Files saved (replaced or removed by the run), relative to the tree.
    pub saved: Vec<PathBuf>,
    /// Files the run created.
    pub created: Vec<PathBuf>,
}

/// The tree's backups, oldest first.
pub fn list(root: &Path) -> Result<Vec<BackupInfo>> {
    let base = root.join(BACKUP_DIR);
    let entries = match fs::read_dir(&base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(&base, "read directory", e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&base, "read directory", e))?;
        // A folder's name starting with a dot is no backup: one a prune is deleting.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        out.push(read_one(&entry.path())?);
    }
    out.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
    Ok(out)
}

fn read_one(dir: &Path) -> Result<BackupInfo> {
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let run_path = dir.join(RUN_FILE);
    let run: Option<RunFile> = match fs::read_to_string(&run_path) {
        Ok(t) => Some(serde_json::from_str(&t).map_err(|e| Error::bad_file(&run_path, e.to_string()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&run_path, "read", e)),
    };
    let created_path = dir.join(CREATED_FILE);
    let created = match fs::read_to_string(&created_path) {
        Ok(t) => t.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Error::io(&created_path, "read", e)),
    };
    let mut saved = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| Error::io(&d, "read directory", e))? {
            let entry = entry.map_err(|e| Error::io(&d, "read directory", e))?;
            let path = entry.path();
            let rel = path.strip_prefix(dir).expect("under the folder").to_path_buf();
            let Ok(kind) = entry.file_type() else { continue };
            let temporary = rel.file_name().is_some_and(|n| store::is_temporary(n.as_encoded_bytes()));
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && rel != Path::new(RUN_FILE) && rel != Path::new(CREATED_FILE) && !temporary {
                // Only plain files: a link planted in a backup is never followed by a restore.
                saved.push(rel);
            }
        }
    }
    saved.sort();
    Ok(BackupInfo {
        id,
        seq: run.as_ref().map_or(0, |r| r.seq),
        command: run.as_ref().map(|r| r.command.clone()),
        time: run.as_ref().map(|r| r.time),
        saved,
        created,
    })
}

/// What restoring a backup does.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The runs undone, newest first.
    pub undone: Vec<BackupInfo>,
    /// Files put back as they were (with their modes).
    pub put_back: Vec<PathBuf>,
    /// Files removed (created by the runs undone).
    pub removed: Vec<PathBuf>,
    /// Nodes whose bundle the restore removes whole (added by the runs undone): gone from the
    /// tree.
    pub removed_nodes: Vec<String>,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// Where the files the restore replaced were saved.
    pub backup: Option<PathBuf>,
    /// What each node must receive and restart (filled by the caller, who knows the cluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollout: Vec<crate::operations::rollout::NodeRollout>,
}

/// Put the tree back as it was before the run of backup `id`: that run and every later one
/// are undone, newest first, in one journaled batch (backed up, if a run is under way).
pub fn restore(root: &Path, id: &str, dry_run: bool) -> Result<RestoreReport> {
    let all = list(root)?;
    let runs = &all[position(&all, root, id)?..];
    // Oldest first: the first version met of each file is the one from before `id`.
    let mut target: BTreeMap<PathBuf, Option<PathBuf>> = BTreeMap::new();
    for b in runs {
        let dir = root.join(BACKUP_DIR).join(&b.id);
        for rel in &b.saved {
            target.entry(rel.clone()).or_insert_with(|| Some(dir.join(rel)));
        }
        for rel in &b.created {
            target.entry(rel.clone()).or_insert(None);
        }
    }
    for b in runs {
        check_created(&root.join(BACKUP_DIR).join(&b.id), root, &target)?;
    }
    let mut batch = Batch::new();
    let (mut put_back, mut removed) = (Vec::new(), Vec::new());
    for (rel, source) in &target {
        if is_kept_out(rel) {
            continue;
        }
        let path = root.join(rel);
        match source {
            Some(src) => {
                let meta = fs::metadata(src).map_err(|e| Error::io(src, "read the backup", e))?;
                let bytes = fs::read(src).map_err(|e| Error::io(src, "read the backup", e))?;
                let same = fs::symlink_metadata(&path).is_ok_and(|m| m.mode() & 0o7777 == meta.mode() & 0o7777)
                    && fs::read(&path).is_ok_and(|now| now == bytes);
                if !same {
                    batch.add(path, bytes, Mode::Bits(meta.mode()));
                    put_back.push(rel.clone());
                }
            }
            None if path.exists() => {
                batch.remove(path);
                removed.push(rel.clone());
            }
            None => {}
        }
    }
    let undone = runs.iter().rev().cloned().collect();
    let removed_nodes = emptied_nodes(root, &removed);
    if !dry_run {
        batch.commit_in(root)?;
        for rel in &removed {
            remove_empty_parents(root, &root.join(rel));
        }
    }
    Ok(RestoreReport {
        undone,
        put_back,
        removed,
        removed_nodes,
        dry_run,
        backup: current_dir(root),
        rollout: Vec::new(),
    })
}

/// The nodes whose bundle (`nodes/<node>/`) holds no file but those of `removed`: after the
/// restore, nothing of them is left. Only the bundles `removed` touches are looked at.
fn emptied_nodes(root: &Path, removed: &[PathBuf]) -> Vec<String> {
    use crate::model::vocabulary::layout::NODES;
    let removed: HashSet<&Path> = removed.iter().map(PathBuf::as_path).collect();
    let mut nodes: Vec<String> = removed
        .iter()
        .filter_map(|p| p.strip_prefix(NODES).ok()?.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes.retain(|node| {
        let bundle = Path::new(NODES).join(node);
        let mut stack = vec![bundle];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(root.join(&d)) else { continue };
            for e in entries.flatten() {
                let rel = d.join(e.file_name());
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(rel),
                    _ if removed.contains(rel.as_path()) => {}
                    _ => return false,
                }
            }
        }
        true
    });
    nodes
}

/// Refuse a backup folder whose list of created files (`.kubepki-created`, which a restore
/// removes) names what no run of kubepki creates and lists: a path that is not a plain one
/// inside the tree (`../x`, `/x`), or a signing key (a CA's key, the service-account key, or a
/// node bundle's copy of one) that the restore would remove (`target`: the version each file
/// is put back to, `None` removed). A damaged list is an error naming the file and line, not a
/// line skipped or a CA key deleted.
fn check_created(dir: &Path, root: &Path, target: &BTreeMap<PathBuf, Option<PathBuf>>) -> Result<()> {
    let path = dir.join(CREATED_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&path, "read", e)),
    };
    let keys = signing_keys();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let rel = Path::new(line);
        let plain = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        let problem = if !plain {
            "is not a path inside the tree"
        } else if is_signing_key(rel, &keys) && matches!(target.get(rel), Some(None)) && root.join(rel).exists() {
            "is a key that signs (a CA's or the service-account key): a restore never removes one on the \
             strength of this list"
        } else {
            continue;
        };
        return Err(Error::bad_file(
            &path,
            format!(
                "line {}: '{line}' {problem}; the list is damaged: nothing was changed (remove the line if the \
                 backup is otherwise sound)",
                n + 1
            ),
        ));
    }
    Ok(())
}

/// The signing keys of a tree, relative to it: every CA's key and the service-account key, as
/// the catalog places them (kubeadm's layout: the same for every cluster).
fn signing_keys() -> Vec<PathBuf> {
    let catalog = crate::model::catalog::Catalog::build(&crate::model::spec::ClusterSpec::builtin_default());
    catalog.entries.iter().filter_map(|e| e.signing_key()).map(Path::to_path_buf).collect()
}

/// Whether `rel` is one of `keys` or a node bundle's copy of one
/// (`nodes/<node>/etc/kubernetes/<key>`).
fn is_signing_key(rel: &Path, keys: &[PathBuf]) -> bool {
    use crate::model::vocabulary::layout;
    let top = match rel.strip_prefix(layout::NODES) {
        Ok(under) => {
            let mut parts = under.components();
            parts.next();
            parts.as_path().strip_prefix(layout::ETC_KUBERNETES).ok()
        }
        Err(_) => Some(rel),
    };
    top.is_some_and(|t| keys.iter().any(|k| k == t))
}

/// Where backup `id` is in `all` (the list of the tree at `root`), or an error naming the
/// backups there are.
fn position(all: &[BackupInfo], root: &Path, id: &str) -> Result<usize> {
    all.iter().position(|b| b.id == id).ok_or_else(|| {
        let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
        Error::Invalid(format!(
            "no backup '{id}' in {}; backups are: {}",
            root.join(BACKUP_DIR).display(),
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        ))
    })
}

/// Which backups [`prune`] keeps.
#[derive(Clone, Debug)]
pub enum Keep {
    /// The newest N.
    Newest(usize),
    /// This backup and every later one.
    From(String),
}

/// One backup, in short.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    /// Its name under `.kubepki-backup/`.
    pub id: String,
    /// The command that made it.
    pub command: Option<String>,
    /// When.
    #[serde(with = "crate::report::json::rfc3339_option")]
    pub time: Option<OffsetDateTime>,
    /// How many files it saved.
    pub saved: usize,
    /// How many files its run created.
    pub created: usize,
}

impl From<&BackupInfo> for BackupSummary {
    fn from(b: &BackupInfo) -> Self {
        BackupSummary {
            id: b.id.clone(),
            command: b.command.clone(),
            time: b.time,
            saved: b.saved.len(),
            created: b.created.len(),
        }
    }
}

/// What pruning did, or would do.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// The backups removed, oldest first.
    pub removed: Vec<BackupSummary>,
    /// The backups kept, oldest first: `backup restore` of each still works.
    pub kept: Vec<BackupSummary>,
    /// Folders a killed prune had begun to delete, deleted now.
    pub leftovers: usize,
    /// Whether nothing was removed (`--dry-run`).
    pub dry_run: bool,
}

/// Remove the oldest backups of the tree at `root`, keeping what `keep` says. Restoring a kept
/// backup needs only it and the later ones, so every kept backup still restores. Each removed
/// folder leaves the list atomically (renamed to `.pruning-<id>`, the rename made durable)
/// before it is deleted; what a killed prune left is deleted first.
pub fn prune(root: &Path, keep: &Keep, dry_run: bool) -> Result<PruneReport> {
    let base = root.join(BACKUP_DIR);
    if fs::symlink_metadata(&base).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::bad_file(&base, "is not a directory (a link?): refusing to delete anything through it"));
    }
    let all = list(root)?;
    let cut = match keep {
        Keep::Newest(n) => all.len().saturating_sub(*n),
        Keep::From(id) => position(&all, root, id)?,
    };
    let (gone, kept) = all.split_at(cut);
    let summary = |bs: &[BackupInfo]| bs.iter().map(BackupSummary::from).collect::<Vec<_>>();
    let mut report = PruneReport { removed: summary(gone), kept: summary(kept), leftovers: 0, dry_run };
    if dry_run {
        return Ok(report);
    }
    let pruning = |id: &str| base.join(format!("{PRUNING}{id}"));
    let mut left: Vec<PathBuf> = match fs::read_dir(&base) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_name().as_encoded_bytes().starts_with(PRUNING.as_bytes()))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    report.leftovers = left.len();
    for b in gone {
        let from = base.join(&b.id);
        fs::rename(&from, pruning(&b.id)).map_err(|e| Error::io(&from, "take out of the backups", e))?;
        left.push(pruning(&b.id));
    }
    if !gone.is_empty() {
        store::sync_file(&base)?;
    }
    for dir in &left {
        fs::remove_dir_all(dir).map_err(|e| Error::io(dir, "delete", e))?;
    }
    Ok(report)
}

/// Remove the directories left empty above a removed file, up to the tree's root.
pub(crate) fn remove_empty_parents(root: &Path, removed: &Path) {
    let mut dir = removed.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
        if fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_within_one_millisecond_get_folders_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        store::write_atomic(&root.join("pki/sa.key"), b"one", Mode::Secret).unwrap();
        let mut ids = Vec::new();
        for (n, text) in ["two", "three", "four"].iter().enumerate() {
            let b = activate(root, &format!("run {n}"), true);
            store::write_atomic(&root.join("pki/sa.key"), text.as_bytes(), Mode::Secret).unwrap();
            ids.push(current_dir(root).unwrap());
            deactivate(&b);
        }
        ids.dedup();
        assert_eq!(ids.len(), 3, "{ids:?}");
        let list = list(root).unwrap();
        assert_eq!(list.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(fs::read(root.join(BACKUP_DIR).join(&list[0].id).join("pki/sa.key")).unwrap(), b"one");
        assert_eq!(fs::read(root.join(BACKUP_DIR).join(&list[2].id).join("pki/sa.key")).unwrap(), b"three");
        // Restoring the first gives back the first version; the restore is a run of its own.
        let b = activate(root, "restore", true);
        let r = restore(root, &list[0].id, false).unwrap();
        deactivate(&b);
        assert_eq!(r.undone.len(), 3);
        assert_eq!(fs::read(root.join("pki/sa.key")).unwrap(), b"one");
        assert_eq!(fs::metadata(root.join("pki/sa.key")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(self::list(root).unwrap().len(), 4);
    }
}
