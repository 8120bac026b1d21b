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
//!
//! Nothing of a tree is written, nor removed, through a symbolic link to a directory: before a
//! journaled batch (or a staged file of the tree) writes anything, every directory between the
//! tree's root and its files is checked, once each (see [`LinkGuard`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Result};

mod batch;
mod committer;
mod journal;
mod links;

pub use batch::Batch;
pub use committer::{stage, Committer, Staged};
pub use journal::replay_journal;
use journal::write_journal;
pub(crate) use links::linked;
pub use links::{linked_dirs, LinkGuard};

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
pub(crate) fn on_io_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
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

/// Make every directory of `dirs` (0755) and the missing ones above them: each once, parents
/// before children, the directories of one depth on all of the pool's threads. (A recursive
/// create per directory tries each missing level twice, and thousands of node folders in a
/// backup share most of theirs.)
fn make_dir_tree(dirs: &[&Path]) -> Result<()> {
    let mut all: BTreeSet<&Path> = BTreeSet::new();
    for dir in dirs {
        for above in dir.ancestors().take_while(|a| !a.as_os_str().is_empty()) {
            if !all.insert(above) {
                break; // and so are all above it
            }
        }
    }
    let mut by_depth: BTreeMap<usize, Vec<&Path>> = BTreeMap::new();
    for dir in all {
        by_depth.entry(dir.components().count()).or_default().push(dir);
    }
    by_depth.values().try_for_each(|level| {
        level.par_iter().try_for_each(|dir| match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Err(e) if !(e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir()) => {
                Err(Error::io(dir, "create directory", e))
            }
            _ => Ok(()),
        })
    })
}

/// When a temporary is made durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// fsync as it is written.
    Now,
    /// By the caller, with its group ([`Committer`]).
    Later,
}

/// Make a file (or a directory: its entries, a rename in it) durable.
pub(crate) fn sync_file(path: &Path) -> Result<()> {
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

/// What became of a pair given to [`link_durably`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Linked {
    /// The new name is made.
    Yes,
    /// There is no existing file to link.
    Missing,
    /// It could not be linked (another filesystem, one without hard links, not a file): the
    /// caller copies it, or not.
    No,
}

/// Link each `(existing, new)` pair (a second name for the same file: its bytes and mode, no
/// copy) and make the new names durable; says, pair by pair, what became of it. Nothing is
/// looked at first: the link says whether the file is there.
pub(crate) fn link_durably(pairs: &[(PathBuf, PathBuf)]) -> Result<Vec<Linked>> {
    let mut dirs: Vec<&Path> = pairs.iter().map(|(_, new)| parent(new)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    // On the I/O pool: `init` saves from a thread the global pool's workers may be waiting on.
    let linked = on_io_pool(|| {
        make_dir_tree(&dirs)?;
        pairs
            .par_iter()
            .map(|pair| match fs::hard_link(&pair.0, &pair.1) {
                Ok(()) => Ok(Linked::Yes),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::io(&pair.1, "link", e)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Linked::Missing),
                Err(_) => Ok(Linked::No),
            })
            .collect::<Result<Vec<_>>>()
    })?;
    // Many folders: one sync of the filesystem costs less than one per folder.
    match dirs.first() {
        Some(first) if dirs.len() >= 64 => sync_filesystem(first)?,
        _ => dirs.iter().try_for_each(|d| sync_dir(d))?,
    }
    Ok(linked)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, "sync directory", e))
}

/// Whether a file name is one of kubepki's temporaries (`.<name>.kubepki-<pid>-<n>.tmp`).
pub(crate) fn is_temporary(name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name);
    name.starts_with('.') && name.contains(".kubepki-") && name.ends_with(".tmp")
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
    fn a_directory_tree_is_made_once_each_and_a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/nodes/n1")).unwrap();
        let wanted = [root.join("b/nodes/n1/etc/pki"), root.join("b/nodes/n2/var/lib"), root.join("b/nodes/n1/etc")];
        let refs: Vec<&Path> = wanted.iter().map(PathBuf::as_path).collect();
        make_dir_tree(&refs).unwrap();
        for w in &wanted {
            assert!(w.is_dir(), "{}", w.display());
            assert_eq!(fs::metadata(w).unwrap().mode() & 0o777, 0o755);
        }
        fs::write(root.join("b/file"), "x").unwrap();
        let err = make_dir_tree(&[root.join("b/file/below").as_path()]).unwrap_err().to_string();
        assert!(err.contains("b/file"), "{err}");
    }

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
            stage(f.iter().map(|(p, b, m)| (p.clone(), &b[..], *m)), &LinkGuard::new(Some(root))).unwrap()
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
