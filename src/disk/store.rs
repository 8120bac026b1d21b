//! The tree on disk: crash-safe writes with the right modes.
//!
//! Every file is written to a temporary file in its own directory, made durable, and renamed
//! over the target; an interrupted run leaves the old file or the new one, never a torn one.
//! Files are written in batches: all temporaries are written and made durable first, then all
//! are renamed, then the directories are made durable.
//!
//! A small batch syncs each temporary and each directory (fsync), on a pool of I/O threads
//! wider than the machine: a sync is a wait on the disk, not work for a core. A large one (a
//! cluster's worth of files) is [staged](stage) — written to temporaries, unsynced, where the
//! files are made and on many threads — and put in place by a [`Committer`], group by group,
//! each group made durable by one `syncfs(2)` per filesystem: the same guarantees (nothing is
//! renamed before it is durable, nothing is reported done before its renames are) for one
//! flush per thousand files instead of two syncs per file. syncfs also flushes whatever else
//! is dirty on that filesystem, which is why small batches do not use it.
//!
//! A batch committed with [`Batch::commit_in`] (or a committer given a root) is all or nothing
//! across a kill: once every temporary is durable, the list of its renames (and of the lines
//! it appends to a log) is written to `<root>/.kubepki-journal` before the first rename and
//! removed after the last step, and [`replay_journal`] completes the batch of a journal that a
//! killed run left. So files written together (a certificate and its key) are never found one
//! without the other, and the log lists each of them exactly once. A batch may also remove
//! files (journaled with the rest).
//!
//! Before a batch's journal is written (or, unjournaled, before its renames), every file it
//! replaces or removes is saved in the backup of the run under way on its tree, if any (see
//! [`crate::disk::backup`] and [`crate::disk::run`]). A test can have the process die at a named point of a
//! journaled commit (`KUBEPKI_FAILPOINT`, see [`failpoint`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// File modes kubeadm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Certificates and public keys: 0644.
    Public,
    /// Private keys, kubeconfigs, CSRs: 0600.
    Secret,
    /// Exactly these permission bits: a file put back as it was (a backup, a restore).
    Bits(u32),
}

impl Mode {
    /// The permission bits.
    pub fn bits(self) -> u32 {
        match self {
            Mode::Public => 0o644,
            Mode::Secret => 0o600,
            Mode::Bits(bits) => bits & 0o7777,
        }
    }
}

/// Directories: 0755.
pub const DIR_MODE: u32 = 0o755;

/// The journal of the batch being renamed, relative to the tree's root.
pub use crate::model::vocabulary::state::JOURNAL;

const JOURNAL_MAGIC: &[u8] = b"kubepki-journal-v2\0";

/// How many files are written and synced at once. Syncs wait on the disk rather than use a
/// core, so more of them than cores keeps the disk busy; beyond a few dozen nothing is gained.
const IO_THREADS: usize = 16;

/// From this many files, a batch is made durable with syncfs(2) rather than a sync per file.
pub const BULK_FILES: usize = 64;

/// Files to write together.
#[derive(Debug, Default)]
pub struct Batch {
    files: Vec<(PathBuf, Vec<u8>, Mode)>,
    /// Bytes to append to a file once the files are in place (a log).
    append: Option<(PathBuf, Vec<u8>)>,
    /// Files to remove once the files are in place.
    remove: Vec<PathBuf>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Add a file (absolute path or relative to the working directory).
    pub fn add(&mut self, path: PathBuf, contents: impl Into<Vec<u8>>, mode: Mode) {
        self.files.push((path, contents.into(), mode));
    }

    /// Once the files are in place, append `bytes` to the file at `path` (made 0644 if need
    /// be) and sync it: a log of what the batch holds. With [`Batch::commit_in`], exactly once
    /// across a kill.
    pub fn append_after(&mut self, path: PathBuf, bytes: impl Into<Vec<u8>>) {
        self.append = Some((path, bytes.into()));
    }

    /// Once the files are in place, remove the file at `path` (if it is there): with
    /// [`Batch::commit_in`], together with the rest across a kill.
    pub fn remove(&mut self, path: PathBuf) {
        self.remove.push(path);
    }

    /// How many files are queued.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Write everything: temporaries (synced), then renames, then directory syncs. A kill
    /// part way leaves every file old or new, but may leave some of the batch renamed and
    /// others not; see [`Batch::commit_in`] for all or nothing.
    pub fn commit(self) -> Result<()> {
        self.commit_with(None)
    }

    /// Like [`Batch::commit`], and all or nothing across a kill: the renames (and the append)
    /// are journaled in `root/.kubepki-journal` (every file of the batch must be under `root`),
    /// and the next `init` on the tree completes them if the run is killed part way.
    pub fn commit_in(self, root: &Path) -> Result<()> {
        self.commit_with(Some(root))
    }

    fn commit_with(self, journal_root: Option<&Path>) -> Result<()> {
        if self.files.is_empty() && self.append.is_none() && self.remove.is_empty() {
            return Ok(());
        }
        if let Some(root) = journal_root {
            let mut paths =
                self.files.iter().map(|(p, _, _)| p).chain(self.append.iter().map(|(p, _)| p)).chain(&self.remove);
            if let Some(p) = paths.find(|p| !p.starts_with(root)) {
                let problem = format!("a journaled batch writes only under {}", root.display());
                return Err(Error::bad_file(p, problem));
            }
        }
        // By directory: each is made (if need be) by the task that writes its files, so that
        // making directories and writing files overlap rather than wait for each other.
        let mut by_dir: BTreeMap<&Path, Vec<usize>> = BTreeMap::new();
        for (i, (path, _, _)) in self.files.iter().enumerate() {
            by_dir.entry(parent(path)).or_default().push(i);
        }
        if self.files.len() >= BULK_FILES {
            return self.commit_bulk(&by_dir, journal_root);
        }
        let mut dirs: Vec<&Path> = by_dir.keys().copied().collect();
        dirs.extend(self.append.iter().map(|(log, _)| parent(log)));
        dirs.extend(self.remove.iter().map(|p| parent(p)));
        dirs.sort_unstable();
        dirs.dedup();
        on_io_pool(|| {
            let files = &self.files;
            let mut written: Vec<(usize, Result<PathBuf>)> = by_dir
                .par_iter()
                .flat_map_iter(|(dir, ids)| match make_dirs(dir) {
                    Err(e) => vec![(ids[0], Err(e))],
                    Ok(()) => ids
                        .iter()
                        .map(|&i| (i, write_temp(&files[i].0, &files[i].1, files[i].2, Flush::Now).map(|(t, _)| t)))
                        .collect(),
                })
                .collect();
            written.sort_unstable_by_key(|(i, _)| *i);
            let (mut temps, mut failure) = (Vec::with_capacity(files.len()), None);
            for (_, w) in written {
                match w {
                    Ok(tmp) => temps.push(tmp),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            let remove_temps = || temps.iter().for_each(|t| drop(fs::remove_file(t)));
            if let Some(e) = failure {
                remove_temps();
                return Err(e);
            }
            let pairs: Vec<(&Path, &Path)> =
                temps.iter().zip(&self.files).map(|(t, (path, _, _))| (t.as_path(), path.as_path())).collect();
            let append = self.append.as_ref().map(|(p, b)| (p.as_path(), b.as_slice()));
            let removes: Vec<&Path> = self.remove.iter().map(PathBuf::as_path).collect();
            // What is replaced or removed is saved first, if a run keeps a backup of this tree.
            let targets: Vec<&Path> = pairs.iter().map(|(_, p)| *p).collect();
            if let Err(e) = crate::disk::backup::save_before_change(&targets, &removes) {
                remove_temps();
                return Err(e);
            }
            if journal_root.is_some() {
                failpoint(Failpoint::BeforeJournal);
            }
            let journal = match journal_root {
                Some(root) if pairs.len() + removes.len() > 1 || append.is_some() => {
                    match write_journal(root, &pairs, append, &removes) {
                        Ok(j) => Some((root, j)),
                        Err(e) => {
                            remove_temps();
                            return Err(e);
                        }
                    }
                }
                _ => None,
            };
            // A failed rename leaves the journal (and the temporaries it names) in place: the
            // next run completes the batch rather than finding half of it.
            let journaled = journal.is_some();
            if journaled {
                failpoint(Failpoint::AfterJournal);
            }
            for (i, (tmp, path)) in pairs.iter().enumerate() {
                if journaled && i == pairs.len() / 2 {
                    failpoint(Failpoint::MidRename);
                }
                fs::rename(tmp, path).map_err(|e| Error::io(*path, "rename into place", e))?;
            }
            if let Some((log, bytes)) = append {
                append_synced(log, bytes)?;
            }
            removes.iter().try_for_each(|p| remove_if_there(p))?;
            dirs.par_iter().try_for_each(|d| sync_dir(d))?;
            if let Some((root, journal)) = journal {
                failpoint(Failpoint::BeforeJournalRemoved);
                fs::remove_file(&journal).map_err(|e| Error::io(&journal, "remove", e))?;
                sync_dir(root)?;
            }
            Ok(())
        })
    }

    /// A large batch: staged on all cores (each directory's files by one task), then put in
    /// place by a [`Committer`] as one group.
    fn commit_bulk(&self, by_dir: &BTreeMap<&Path, Vec<usize>>, journal_root: Option<&Path>) -> Result<()> {
        // Staging is work for cores (nothing waits on the disk): on the global pool.
        let files = &self.files;
        let staged: Vec<Result<Vec<Staged>>> = by_dir
            .par_iter()
            .map(|(_, ids)| stage(ids.iter().map(|&i| (files[i].0.clone(), &files[i].1[..], files[i].2))))
            .collect();
        let mut committer = Committer::new(journal_root);
        let mut failure = None;
        for s in staged {
            match s {
                Ok(s) => committer.add(s),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            return Err(e); // the staged temporaries are removed with the committer
        }
        if let Some((log, bytes)) = &self.append {
            committer.append(log, bytes);
        }
        committer.remove.extend(self.remove.iter().cloned());
        committer.finish()
    }
}

/// A file written to a temporary beside its target: complete, but neither durable nor in
/// place until a [`Committer`] commits it. Dropped uncommitted, its temporary is removed.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    /// The filesystem holding it.
    dev: u64,
    /// Journaled (the journal's to rename) or renamed: not to be removed when dropped.
    settled: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.settled {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write each file to a temporary beside it, unsynced, making its directory (0755) if need
/// be: the first half of a [`Committer`]'s work, to be done where the files are made (on many
/// threads at once). All or nothing: on an error, no temporary is left.
pub fn stage<'a>(files: impl IntoIterator<Item = (PathBuf, &'a [u8], Mode)>) -> Result<Vec<Staged>> {
    let mut staged = Vec::new();
    for (path, contents, mode) in files {
        // Most directories exist: made only when the temporary cannot be created without.
        let (tmp, dev) = match write_temp(&path, contents, mode, Flush::Later) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                make_dirs(parent(&path))?;
                write_temp(&path, contents, mode, Flush::Later)?
            }
            written => written?,
        };
        staged.push(Staged { tmp, path, dev, settled: false });
    }
    Ok(staged)
}

/// Puts [`Staged`] files in place, group by group, each group all or nothing across a kill
/// (with a journal root, as [`Batch::commit_in`]).
///
/// A group is committed in four steps: make durable what was staged, journal the group's
/// renames (and its log append), rename, append. The first step also makes the previous
/// group's renames durable, so one sync per group suffices and each group's journal replaces
/// the previous one; [`Committer::finish`] syncs once more and removes the journal. A group of
/// at least [`BULK_FILES`] files is made durable with one syncfs(2) per filesystem; a smaller
/// one with an fsync per file and per directory, so that a few files do not flush everything
/// else that is dirty on the filesystem.
#[derive(Debug)]
pub struct Committer {
    journal_root: Option<PathBuf>,
    pending: Vec<Staged>,
    append: Option<(PathBuf, Vec<u8>)>,
    /// The filesystems with changes not yet durable, one directory of each.
    dirty_fs: BTreeMap<u64, PathBuf>,
    /// The directories with entries not yet durable (renamed into, or made); `None` when too
    /// many to sync one by one (the filesystems are synced instead).
    dirty_dirs: Option<Vec<PathBuf>>,
    /// Whether the tree's journal names a group of this committer.
    journaled: bool,
    /// Files to remove with the next group.
    remove: Vec<PathBuf>,
}

impl Committer {
    /// A committer for files under `journal_root` (journaled), or anywhere (not journaled).
    pub fn new(journal_root: Option<&Path>) -> Committer {
        Committer {
            journal_root: journal_root.map(Path::to_path_buf),
            pending: Vec::new(),
            append: None,
            dirty_fs: BTreeMap::new(),
            dirty_dirs: Some(Vec::new()),
            journaled: false,
            remove: Vec::new(),
        }
    }

    /// Add staged files to the group being gathered.
    pub fn add(&mut self, staged: Vec<Staged>) {
        self.pending.extend(staged);
    }

    /// Once the group's files are in place, append `bytes` to the file at `path` (see
    /// [`Batch::append_after`]).
    pub fn append(&mut self, path: &Path, bytes: &[u8]) {
        match &mut self.append {
            Some((p, b)) if p == path => b.extend_from_slice(bytes),
            Some(_) => unreachable!("one log per committer"),
            None => self.append = Some((path.to_path_buf(), bytes.to_vec())),
        }
    }

    /// How many staged files the group being gathered holds.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Commit the group gathered so far. On an error before the journal is written, the
    /// group's temporaries are removed; after, they stay for the next run to complete.
    pub fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.append.is_none() && self.remove.is_empty() {
            return Ok(());
        }
        let mut group = std::mem::take(&mut self.pending);
        let removes = std::mem::take(&mut self.remove);
        if let Some(root) = &self.journal_root {
            let mut paths = group.iter().map(|s| &s.path).chain(self.append.iter().map(|(p, _)| p)).chain(&removes);
            if let Some(p) = paths.find(|p| !p.starts_with(root)) {
                let problem = format!("a journaled batch writes only under {}", root.display());
                return Err(Error::bad_file(p, problem));
            }
        }
        // 1. This group's temporaries durable, and the previous group's renames; what the
        //    group replaces or removes saved, if a run keeps a backup of this tree.
        self.make_durable(&group)?;
        let targets: Vec<&Path> = group.iter().map(|s| s.path.as_path()).collect();
        let removes: Vec<&Path> = removes.iter().map(PathBuf::as_path).collect();
        crate::disk::backup::save_before_change(&targets, &removes)?;
        // 2. The journal (replacing the previous group's, whose renames are now durable).
        let append = self.append.take();
        let append = append.as_ref().map(|(p, b)| (p.as_path(), b.as_slice()));
        if let Some(root) = &self.journal_root {
            failpoint(Failpoint::BeforeJournal);
            if group.len() + removes.len() > 1 || append.is_some() || self.journaled {
                let pairs: Vec<(&Path, &Path)> = group.iter().map(|s| (s.tmp.as_path(), s.path.as_path())).collect();
                write_journal(root, &pairs, append, &removes)?;
                self.journaled = true;
                group.iter_mut().for_each(|s| s.settled = true);
                failpoint(Failpoint::AfterJournal);
            }
        }
        let half = if self.journaled { group.len() / 2 } else { usize::MAX };
        // 3. Renames; a failure leaves the journal and its temporaries for the next run.
        // On this thread: a rename is a few microseconds of work, not a wait, and waking a pool
        // for it takes cores from the threads making the next group.
        for (i, s) in group.iter_mut().enumerate() {
            if i == half {
                failpoint(Failpoint::MidRename);
            }
            fs::rename(&s.tmp, &s.path).map_err(|e| Error::io(&s.path, "rename into place", e))?;
            s.settled = true;
            self.dirty(s.dev, parent(&s.path));
        }
        // 4. The log, then what the group removes.
        if let Some((log, bytes)) = append {
            append_synced(log, bytes)?;
        }
        for p in &removes {
            remove_if_there(p)?;
        }
        let mut removed_from: Vec<&Path> = removes.iter().map(|p| parent(p)).collect();
        removed_from.dedup();
        removed_from.iter().try_for_each(|d| sync_dir(d))?;
        Ok(())
    }

    /// Commit the last group, make everything durable and remove the journal.
    pub fn finish(mut self) -> Result<()> {
        self.commit()?;
        self.make_durable(&[])?;
        if let (Some(root), true) = (&self.journal_root, self.journaled) {
            failpoint(Failpoint::BeforeJournalRemoved);
            let journal = root.join(JOURNAL);
            fs::remove_file(&journal).map_err(|e| Error::io(&journal, "remove", e))?;
            sync_dir(root)?;
        }
        Ok(())
    }

    /// Note a directory whose entries are not yet durable.
    fn dirty(&mut self, dev: u64, dir: &Path) {
        self.dirty_fs.entry(dev).or_insert_with(|| dir.to_path_buf());
        match &mut self.dirty_dirs {
            Some(dirs) if dirs.len() >= BULK_FILES => self.dirty_dirs = None,
            Some(dirs) => dirs.push(dir.to_path_buf()),
            None => {}
        }
    }

    /// Make `group`'s temporaries and every dirty directory durable.
    fn make_durable(&mut self, group: &[Staged]) -> Result<()> {
        if group.len() >= BULK_FILES {
            self.dirty_dirs = None;
        }
        for s in group {
            self.dirty(s.dev, parent(&s.tmp));
        }
        let dirty_fs = std::mem::take(&mut self.dirty_fs);
        let Some(mut dirs) = self.dirty_dirs.replace(Vec::new()) else {
            return dirty_fs.values().try_for_each(|d| sync_filesystem(d));
        };
        // A few files: each, with its directory and those made for it (up to the root).
        if let Some(root) = &self.journal_root {
            for i in 0..dirs.len() {
                let mut dir = dirs[i].clone();
                while dir != *root && dir.pop() && dir.starts_with(root) {
                    dirs.push(dir.clone());
                }
            }
        }
        dirs.sort_unstable();
        dirs.dedup();
        on_io_pool(|| {
            group.par_iter().try_for_each(|s| sync_file(&s.tmp))?;
            dirs.par_iter().try_for_each(|d| sync_dir(d))
        })
    }
}

/// The points of a journaled commit where a test may have the process killed (see
/// [`failpoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failpoint {
    /// Temporaries durable and the backup saved; no journal yet: the tree is as before.
    BeforeJournal,
    /// The journal durable; nothing renamed: the next run completes the batch.
    AfterJournal,
    /// Half the renames done.
    MidRename,
    /// Everything renamed, appended and removed; the journal not yet removed: replaying it
    /// must change nothing (no line appended twice).
    BeforeJournalRemoved,
}

/// For tests of kill recovery: when `$KUBEPKI_FAILPOINT` names this point
/// (`before-journal`, `after-journal`, `mid-rename`, `before-journal-removed`), the process
/// dies here at once (`abort`: no destructor runs, no lock is released but by the kernel), as a
/// kill at that instant would leave it. Unset, the check of a static.
fn failpoint(point: Failpoint) {
    static WANTED: OnceLock<Option<Failpoint>> = OnceLock::new();
    let wanted = WANTED.get_or_init(|| {
        let name = std::env::var("KUBEPKI_FAILPOINT").ok()?;
        [
            ("before-journal", Failpoint::BeforeJournal),
            ("after-journal", Failpoint::AfterJournal),
            ("mid-rename", Failpoint::MidRename),
            ("before-journal-removed", Failpoint::BeforeJournalRemoved),
        ]
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| p)
    });
    if *wanted == Some(point) {
        std::process::abort();
    }
}

/// Write one file atomically.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<()> {
    let mut b = Batch::new();
    b.add(path.to_path_buf(), contents, mode);
    b.commit()
}

/// Run `f` on the I/O pool (or here, if the pool cannot be made).
fn on_io_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new().num_threads(IO_THREADS).thread_name(|i| format!("kubepki-io-{i}")).build().ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Create a directory and its parents with mode 0755.
pub fn make_dirs(dir: &Path) -> Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(|e| Error::io(dir, "create directory", e))
}

/// When a temporary is made durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// fsync as it is written.
    Now,
    /// By the caller, with its group ([`Committer`]).
    Later,
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, "sync", e))
}

/// Make everything written to the filesystem holding `dir` durable (syncfs(2)): data,
/// inodes and directories. Write-back errors since the last sync are reported (Linux ≥ 5.8).
fn sync_filesystem(dir: &Path) -> Result<()> {
    let fd = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
    rustix::fs::syncfs(&fd).map_err(|e| Error::io(dir, "sync the filesystem of", e.into()))
}

/// Write `contents` to a new temporary file beside `path`, synced as `sync` says; returns its
/// path and its filesystem's device.
fn write_temp(path: &Path, contents: &[u8], mode: Mode, sync: Flush) -> Result<(PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    static PID: OnceLock<u32> = OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let dir = parent(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(".{name}.kubepki-{pid}-{attempt}.tmp"));
        // The mode is set at creation: a key is never readable by others, not even briefly.
        let file = OpenOptions::new().write(true).create_new(true).mode(mode.bits()).open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&tmp, "create", e)),
        };
        let mut written = file.write_all(contents);
        if !umask_keeps(mode.bits()) {
            // The umask took bits away at creation: put them back (0644 under umask 077).
            written = written.and_then(|_| file.set_permissions(fs::Permissions::from_mode(mode.bits())));
        }
        let written = written.and_then(|_| match sync {
            Flush::Now => file.sync_all().map(|_| 0),
            Flush::Later => file.metadata().map(|m| m.dev()),
        });
        match written {
            Ok(dev) => return Ok((tmp, dev)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::io(path, "write", e));
            }
        }
    }
    Err(Error::io(path, "create a temporary file", std::io::Error::other("too many leftover temporary files")))
}

/// Whether the process's umask leaves `bits` as they are, so that a file created with them
/// has them (read once from /proc; when it cannot be read, no).
fn umask_keeps(bits: u32) -> bool {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(value.trim(), 8).ok()
    });
    umask.is_some_and(|m| m & bits == 0)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync directory", e))
}

/// Whether a file name is one of kubepki's temporaries (`.<name>.kubepki-<pid>-<n>.tmp`).
pub(crate) fn is_temporary(name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name);
    name.starts_with('.') && name.contains(".kubepki-") && name.ends_with(".tmp")
}

/// Write the journal of a batch (its renames, its append and its removals, paths relative to
/// `root`), durably; returns its path. Records: `rename\0<tmp>\0<target>\0`,
/// `append\0<file>\0<length>\0<bytes>` and `remove\0<file>\0`.
fn write_journal(
    root: &Path,
    pairs: &[(&Path, &Path)],
    append: Option<(&Path, &[u8])>,
    removes: &[&Path],
) -> Result<PathBuf> {
    let rel = |p: &Path| p.strip_prefix(root).expect("checked before writing").as_os_str().as_bytes().to_vec();
    let mut text = JOURNAL_MAGIC.to_vec();
    for (tmp, path) in pairs {
        for field in [b"rename".to_vec(), rel(tmp), rel(path)] {
            text.extend_from_slice(&field);
            text.push(0);
        }
    }
    if let Some((log, bytes)) = append {
        for field in [b"append".to_vec(), rel(log), bytes.len().to_string().into_bytes()] {
            text.extend_from_slice(&field);
            text.push(0);
        }
        text.extend_from_slice(bytes);
    }
    for path in removes {
        for field in [b"remove".to_vec(), rel(path)] {
            text.extend_from_slice(&field);
            text.push(0);
        }
    }
    let journal = root.join(JOURNAL);
    let (tmp, _) = write_temp(&journal, &text, Mode::Secret, Flush::Now)?;
    fs::rename(&tmp, &journal).map_err(|e| Error::io(&journal, "rename into place", e))?;
    sync_dir(root)?;
    Ok(journal)
}

/// Append to a file (made 0644 if need be) and sync it.
/// Append to a log of the tree and sync; never through a symbolic link (the log is the
/// tree's own, and a link could point anywhere).
pub(crate) fn append_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    make_dirs(parent(path))?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(Mode::Public.bits())
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                Error::bad_file(path, "a symbolic link: kubepki appends to its logs only as files of the tree")
            }
            _ => Error::io(path, "open for append", e),
        })?;
    f.write_all(bytes).and_then(|_| f.sync_data()).map_err(|e| Error::io(path, "append", e))
}

/// Remove a file; one already gone is fine.
fn remove_if_there(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, "remove", e)),
        _ => Ok(()),
    }
}

/// The next NUL-terminated field of a journal.
fn next_field<'a>(rest: &mut &'a [u8]) -> std::result::Result<&'a Path, String> {
    let end = rest.iter().position(|b| *b == 0).ok_or("a record ends early")?;
    let field = Path::new(std::ffi::OsStr::from_bytes(&rest[..end]));
    *rest = &rest[end + 1..];
    Ok(field)
}

/// What a journal asks for.
enum Step<'a> {
    Rename(&'a Path, &'a Path),
    Append(&'a Path, &'a [u8]),
    Remove(&'a Path),
}

fn parse_journal(body: &[u8]) -> std::result::Result<Vec<Step<'_>>, String> {
    let mut steps = Vec::new();
    let mut rest = body;
    let inside = |p: &Path| !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    while !rest.is_empty() {
        match next_field(&mut rest)?.as_os_str().as_bytes() {
            b"rename" => {
                let (tmp, path) = (next_field(&mut rest)?, next_field(&mut rest)?);
                let temporary = tmp.file_name().is_some_and(|n| is_temporary(n.as_bytes()));
                if !inside(tmp) || !inside(path) || !temporary || tmp.parent() != path.parent() {
                    return Err(format!("'{}' -> '{}' is not a rename kubepki makes", tmp.display(), path.display()));
                }
                steps.push(Step::Rename(tmp, path));
            }
            b"append" => {
                let path = next_field(&mut rest)?;
                let len: usize = next_field(&mut rest)?.to_str().and_then(|n| n.parse().ok()).ok_or("a bad length")?;
                if !inside(path) || rest.len() < len {
                    return Err(format!("an append to '{}' that kubepki does not make", path.display()));
                }
                steps.push(Step::Append(path, &rest[..len]));
                rest = &rest[len..];
            }
            b"remove" => {
                let path = next_field(&mut rest)?;
                if !inside(path) {
                    return Err(format!("a removal of '{}' that kubepki does not make", path.display()));
                }
                steps.push(Step::Remove(path));
            }
            other => return Err(format!("an unknown record '{}'", String::from_utf8_lossy(other))),
        }
    }
    Ok(steps)
}

/// Complete a batch whose run was killed after its journal was written (see
/// [`Batch::commit_in`]): its renames, and its append unless the file already ends with it;
/// returns how many files it put in place. Without a journal, nothing to do. A journal is only
/// obeyed within the tree: every rename must move a kubepki temporary to a file of the same
/// directory under `root`.
pub fn replay_journal(root: &Path) -> Result<usize> {
    let journal = root.join(JOURNAL);
    let text = match fs::read(&journal) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(&journal, "read", e)),
    };
    let bad = |why: &str| Error::bad_file(&journal, format!("{why}; remove it if no kubepki run was interrupted"));
    let body = text.strip_prefix(JOURNAL_MAGIC).ok_or_else(|| bad("not a kubepki journal"))?;
    let steps = parse_journal(body).map_err(|why| bad(&why))?;
    let mut done = 0;
    let mut dirs = BTreeSet::new();
    for step in steps {
        match step {
            Step::Rename(tmp, path) => {
                let (tmp, path) = (root.join(tmp), root.join(path));
                match fs::rename(&tmp, &path) {
                    Ok(()) => done += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // renamed before the kill
                    Err(e) => return Err(Error::io(&path, "rename into place", e)),
                }
                dirs.insert(parent(&path).to_path_buf());
            }
            Step::Remove(path) => {
                let path = root.join(path);
                remove_if_there(&path)?;
                dirs.insert(parent(&path).to_path_buf());
            }
            Step::Append(path, bytes) => {
                let path = root.join(path);
                // Anywhere in the file, not only at its end: another run may have appended
                // since (a journal is never applied twice).
                let there = fs::read(&path).is_ok_and(|t| t.windows(bytes.len().max(1)).any(|w| w == bytes));
                if !there {
                    append_synced(&path, bytes)?;
                    dirs.insert(parent(&path).to_path_buf());
                }
            }
        }
    }
    for dir in &dirs {
        sync_dir(dir)?;
    }
    fs::remove_file(&journal).map_err(|e| Error::io(&journal, "remove", e))?;
    sync_dir(root)?;
    Ok(done)
}

/// Remove temporary files a killed run left behind in a tree (`.<name>.kubepki-*.tmp`).
/// Run [`replay_journal`] first: it needs the temporaries its journal names.
pub fn sweep_temporaries(root: &Path) -> Result<usize> {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&dir, "read directory", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, "read directory", e))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                // Backups grow with every run; a temporary a killed backup left there is
                // harmless (a restore reads only the files a run saved) and not worth a walk.
                if dir != root || entry.file_name() != crate::model::vocabulary::state::BACKUP {
                    stack.push(path);
                }
            } else if is_temporary(entry.file_name().as_bytes()) {
                fs::remove_file(&path).map_err(|e| Error::io(&path, "remove", e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_with_modes_and_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a/b/x.key");
        write_atomic(&key, b"one", Mode::Secret).unwrap();
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.path().join("a/b")).unwrap().mode() & 0o777, 0o755);
        write_atomic(&key, b"two", Mode::Secret).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"two");
        let crt = dir.path().join("x.crt");
        write_atomic(&crt, b"c", Mode::Public).unwrap();
        assert_eq!(fs::metadata(&crt).unwrap().mode() & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary left behind");
    }

    #[test]
    fn failed_batch_leaves_old_files_and_no_temporaries() {
        // A small batch (a sync per file) and a large one (one sync of the filesystem).
        for extra in [0, BULK_FILES] {
            let dir = tempfile::tempdir().unwrap();
            let good = dir.path().join("good.crt");
            write_atomic(&good, b"old", Mode::Public).unwrap();
            // A file where a directory must go makes one write fail.
            fs::write(dir.path().join("blocker"), b"").unwrap();
            let mut b = Batch::new();
            b.add(good.clone(), "new", Mode::Public);
            for i in 0..extra {
                b.add(dir.path().join(format!("n{i}/x.key")), "k", Mode::Secret);
            }
            b.add(dir.path().join("blocker/x.crt"), "x", Mode::Public);
            let err = b.commit().unwrap_err().to_string();
            assert!(err.contains("blocker"), "{err}");
            assert_eq!(fs::read(&good).unwrap(), b"old");
            assert!(!dir.path().join("n0/x.key").exists());
            assert_eq!(sweep_temporaries(dir.path()).unwrap(), 0);
        }
    }

    #[test]
    fn a_journaled_batch_leaves_neither_journal_nor_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut b = Batch::new();
        for i in 0..40 {
            b.add(root.join(format!("nodes/n{i}/pki/x.crt")), format!("cert {i}"), Mode::Public);
            b.add(root.join(format!("nodes/n{i}/pki/x.key")), format!("key {i}"), Mode::Secret);
        }
        assert!(b.len() >= BULK_FILES, "made durable by one sync of the filesystem");
        b.commit_in(root).unwrap();
        assert_eq!(fs::read(root.join("nodes/n39/pki/x.key")).unwrap(), b"key 39");
        assert_eq!(fs::metadata(root.join("nodes/n39/pki/x.key")).unwrap().mode() & 0o777, 0o600);
        assert!(!root.join(JOURNAL).exists());
        assert_eq!(sweep_temporaries(root).unwrap(), 0);

        let mut outside = Batch::new();
        outside.add(root.join("a.crt"), "a", Mode::Public);
        outside.add(dir.path().join("../elsewhere.crt"), "b", Mode::Public);
        let err = outside.commit_in(&root.join("nodes")).unwrap_err().to_string();
        assert!(err.contains("a journaled batch writes only under"), "{err}");
        assert!(!root.join("a.crt").exists());
        assert_eq!(sweep_temporaries(root).unwrap(), 0, "temporaries removed on failure");
    }

    #[test]
    fn a_journal_left_by_a_killed_run_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (crt, key) = (root.join("pki/x.crt"), root.join("pki/x.key"));
        make_dirs(&root.join("pki")).unwrap();
        // Killed after the journal and one of the two renames: the key is in place, the
        // certificate still in its temporary.
        let (t_crt, _) = write_temp(&crt, b"cert", Mode::Public, Flush::Now).unwrap();
        let (t_key, _) = write_temp(&key, b"key", Mode::Secret, Flush::Now).unwrap();
        write_journal(root, &[(&t_crt, &crt), (&t_key, &key)], None, &[]).unwrap();
        fs::rename(&t_key, &key).unwrap();
        assert_eq!(replay_journal(root).unwrap(), 1);
        assert_eq!(fs::read(&crt).unwrap(), b"cert");
        assert_eq!(fs::read(&key).unwrap(), b"key");
        assert!(!root.join(JOURNAL).exists());
        assert_eq!(replay_journal(root).unwrap(), 0, "nothing left to do");
        assert_eq!(sweep_temporaries(root).unwrap(), 0);
    }

    #[test]
    fn a_journaled_append_happens_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let log = root.join(".kubepki/issued.jsonl");
        let mut b = Batch::new();
        b.add(root.join("a.crt"), "a", Mode::Public);
        b.append_after(log.clone(), "line a\n");
        b.commit_in(root).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "line a\n");
        assert_eq!(fs::metadata(&log).unwrap().mode() & 0o777, 0o644);
        // Killed after the renames: before the append, then after it (the journal not yet
        // removed). Either way the line is there once.
        let (t, _) = write_temp(&root.join("b.crt"), b"b", Mode::Public, Flush::Now).unwrap();
        write_journal(root, &[(&t, &root.join("b.crt"))], Some((&log, b"line b\n")), &[]).unwrap();
        fs::rename(&t, root.join("b.crt")).unwrap();
        replay_journal(root).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "line a\nline b\n");
        let (t, _) = write_temp(&root.join("c.crt"), b"c", Mode::Public, Flush::Now).unwrap();
        write_journal(root, &[(&t, &root.join("c.crt"))], Some((&log, b"line c\n")), &[]).unwrap();
        fs::rename(&t, root.join("c.crt")).unwrap();
        append_synced(&log, b"line c\n").unwrap();
        replay_journal(root).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "line a\nline b\nline c\n");
        assert!(!root.join(JOURNAL).exists());
        // Applied, then another run appended after it, then replayed: still once.
        let (t, _) = write_temp(&root.join("d.crt"), b"d", Mode::Public, Flush::Now).unwrap();
        write_journal(root, &[(&t, &root.join("d.crt"))], Some((&log, b"line d\n")), &[]).unwrap();
        fs::rename(&t, root.join("d.crt")).unwrap();
        append_synced(&log, b"line d\n").unwrap();
        append_synced(&log, b"line e\n").unwrap();
        replay_journal(root).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "line a\nline b\nline c\nline d\nline e\n");
    }

    #[test]
    fn a_journaled_removal_happens_with_the_batch_and_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_atomic(&root.join("old/x.crt"), b"x", Mode::Public).unwrap();
        write_atomic(&root.join("old/y.crt"), b"y", Mode::Public).unwrap();
        let mut b = Batch::new();
        b.add(root.join("new.crt"), "n", Mode::Public);
        b.remove(root.join("old/x.crt"));
        b.commit_in(root).unwrap();
        assert!(!root.join("old/x.crt").exists() && root.join("new.crt").exists());
        // Killed after the journal: the replay removes what the batch removes.
        let (t, _) = write_temp(&root.join("z.crt"), b"z", Mode::Public, Flush::Now).unwrap();
        write_journal(root, &[(&t, &root.join("z.crt"))], None, &[&root.join("old/y.crt")]).unwrap();
        assert_eq!(replay_journal(root).unwrap(), 1);
        assert!(!root.join("old/y.crt").exists() && root.join("z.crt").exists());
        // Exact bits are kept (a backup puts a file back as it was).
        write_atomic(&root.join("k.key"), b"k", Mode::Bits(0o640)).unwrap();
        assert_eq!(fs::metadata(root.join("k.key")).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_committer_commits_group_by_group_each_journal_replacing_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let log = root.join(".kubepki/issued.jsonl");
        let files = |group: usize, n: usize| -> Vec<(PathBuf, Vec<u8>, Mode)> {
            (0..n)
                .map(|i| (root.join(format!("g{group}/n{i}/x.key")), format!("{group}.{i}").into(), Mode::Secret))
                .collect()
        };
        let stage_group = |group: usize, n: usize| {
            let f = files(group, n);
            stage(f.iter().map(|(p, b, m)| (p.clone(), &b[..], *m))).unwrap()
        };
        // A large group (one syncfs) and a small one (an fsync each).
        let mut c = Committer::new(Some(root));
        c.add(stage_group(1, BULK_FILES + 1));
        c.append(&log, b"group 1\n");
        c.commit().unwrap();
        assert!(root.join(JOURNAL).exists(), "the journal stays until the next group's sync");
        c.add(stage_group(2, 3));
        c.append(&log, b"group 2\n");
        c.commit().unwrap();
        // Killed here: the journal names group 2, whose renames and append are done.
        c.add(stage_group(3, 2));
        drop(c); // group 3 never committed: its temporaries go
        assert_eq!(replay_journal(root).unwrap(), 0);
        assert_eq!(fs::read_to_string(&log).unwrap(), "group 1\ngroup 2\n", "each line once");
        assert_eq!(fs::read(root.join("g2/n2/x.key")).unwrap(), b"2.2");
        assert_eq!(fs::metadata(root.join("g1/n0/x.key")).unwrap().mode() & 0o777, 0o600);
        assert!(!root.join("g3/n0/x.key").exists());
        assert_eq!(sweep_temporaries(root).unwrap(), 0);

        // Finished: everything in place, no journal.
        let mut c = Committer::new(Some(root));
        c.add(stage_group(4, 2));
        c.append(&log, b"group 4\n");
        c.finish().unwrap();
        assert!(!root.join(JOURNAL).exists());
        assert_eq!(fs::read_to_string(&log).unwrap(), "group 1\ngroup 2\ngroup 4\n");
        assert_eq!(fs::read(root.join("g4/n1/x.key")).unwrap(), b"4.1");

        // Nothing outside the root, and a refused group leaves no temporary.
        let mut c = Committer::new(Some(&root.join("g4")));
        c.add(stage_group(5, 2));
        let err = c.commit().unwrap_err().to_string();
        assert!(err.contains("a journaled batch writes only under"), "{err}");
        assert_eq!(sweep_temporaries(root).unwrap(), 0);
    }

    #[test]
    fn a_journal_is_obeyed_only_within_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let bodies = [
            ("rename\0../.x.kubepki-1-0.tmp\0../x\0", "is not a rename kubepki makes"),
            ("rename\0/tmp/.x.kubepki-1-0.tmp\0/tmp/x\0", "is not a rename kubepki makes"),
            ("rename\0pki/x.crt\0pki/y.crt\0", "is not a rename kubepki makes"),
            ("rename\0pki/.x.kubepki-1-0.tmp\0other/x\0", "is not a rename kubepki makes"),
            (concat!("append\0../log\0", "3", "\0abc"), "an append to '../log' that kubepki does not make"),
            (concat!("append\0log\0", "9", "\0abc"), "an append to 'log' that kubepki does not make"),
            ("delete\0pki/ca.key\0", "an unknown record 'delete'"),
            ("rename\0pki/.x.kubepki-1-0.tmp", "a record ends early"),
        ];
        for (body, problem) in bodies {
            fs::write(root.join(JOURNAL), [JOURNAL_MAGIC, body.as_bytes()].concat()).unwrap();
            let err = replay_journal(root).unwrap_err().to_string();
            assert!(err.contains(problem), "{body:?}: {err}");
        }
        fs::write(root.join(JOURNAL), "rename\0pki/a\0pki/b\0").unwrap();
        let err = replay_journal(root).unwrap_err().to_string();
        assert!(err.contains(".kubepki-journal: not a kubepki journal"), "{err}");
    }
}
