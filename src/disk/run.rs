//! A run of a command that changes a tree: one writer at a time, what a killed run left is
//! recovered before anything is read, and everything replaced or removed is backed up.
//!
//! [`Run::begin`] takes the tree's lock, an exclusive `flock(2)` on `D/.kubepki/lock` (made if
//! need be, with `D`), held until the run is dropped; the kernel releases it if the process
//! dies, so a killed run never leaves a stale lock. While waiting, a second run polls for up
//! to [`LOCK_WAIT`] (10 s, or `$KUBEPKI_LOCK_WAIT` seconds), then fails naming the holder:
//! the holder writes its pid, command and start time into the lock file once it has the lock.
//! Commands that only read a tree take no lock.
//!
//! With the lock held, the run completes the journaled batch a killed run left
//! ([`store::replay_journal`]) and removes its temporaries ([`store::sweep_temporaries`], when
//! the lock file says a run was cut short); only then does the command read the tree. A run that ends (done or failed) empties the lock
//! file; one that was killed leaves its holder's line there, which is how the next run, and
//! `verify` and `check` ([`interrupted`]), know that a run was interrupted. Every command but
//! `init` writes the tree in one journaled batch, so a killed run of it either changed nothing
//! or is completed by that replay: the next run of the same command then reports it completed
//! ([`Run::completed`]) rather than doing it again. From then on, until the run is dropped, every
//! file the store replaces, removes or creates under the tree is first saved in the run's
//! own backup folder ([`crate::disk::backup`]); a run on a tree that holds nothing yet has nothing
//! to back up and keeps no backup (it only notes what it writes, for [`crate::operations::rollout`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use time::OffsetDateTime;

use crate::disk::backup::{self, Backup};
use crate::disk::store;
use crate::error::{Error, Result};

/// The lock file, relative to the tree.
pub const LOCK: &str = crate::model::vocabulary::state::LOCK;

/// How long a run waits for the lock by default.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(20);

/// A command changing a tree: it holds the lock, and backs up what it changes.
#[derive(Debug)]
pub struct Run {
    root: PathBuf,
    lock: File,
    backup: Option<Arc<Backup>>,
    fresh: bool,
    /// The holder line a killed run left in the lock file.
    interrupted: Option<String>,
    /// Whether a journal that run left was replayed.
    replayed: bool,
}

impl Run {
    /// Take the lock of the tree at `root` for `command` (waiting as the module doc says),
    /// complete or sweep what a killed run left, and start backing up.
    /// The tree must exist: a command that changes a tree never makes one by mistake (a
    /// mistyped `--dir`).
    pub fn begin(root: &Path, command: &str) -> Result<Run> {
        if !root.is_dir() {
            return Err(Error::bad_file(root, "no such directory"));
        }
        Run::begin_new(root, command)
    }

    /// [`Run::begin`] for `backup restore` and `backup prune`, which may be how a tree whose
    /// rotation state is damaged is put right: they do not refuse it.
    pub fn begin_backup(root: &Path, command: &str) -> Result<Run> {
        if !root.is_dir() {
            return Err(Error::bad_file(root, "no such directory"));
        }
        Run::begin_with(root, command, false)
    }

    /// [`Run::begin`] for a command that may make the tree (`csr` into a new folder).
    pub fn begin_new(root: &Path, command: &str) -> Result<Run> {
        Run::begin_with(root, command, true)
    }

    /// Take the lock, complete or sweep what a killed run left, then (`check_rotation`) refuse
    /// a tree whose rotation state cannot be read: changing it would go on from a phase
    /// nobody knows.
    fn begin_with(root: &Path, command: &str, check_rotation: bool) -> Result<Run> {
        let had_lock = root.join(LOCK).is_file();
        let mut run = Run::lock(root, command)?;
        run.replayed = root.join(store::JOURNAL).exists();
        store::replay_journal(root)?;
        // Temporaries are left only by a killed run (every failure path removes its own), and
        // a run names itself durably in the lock file before it makes any: a tree whose lock
        // says no run was cut short has none, and is not walked for them (at 5,000 nodes the
        // walk is a quarter of a renew). A tree never locked before is swept.
        if !had_lock || run.interrupted.is_some() || run.replayed {
            store::sweep_temporaries(root)?;
        }
        if check_rotation {
            crate::operations::rotate::check_states(root)?;
        }
        Ok(run)
    }

    /// [`Run::begin`] for `init`, which sweeps temporaries itself (alongside its survey) and
    /// skips both on a tree that holds nothing yet.
    pub fn begin_init(root: &Path) -> Result<Run> {
        let mut run = Run::lock(root, "init")?;
        run.replayed = root.join(store::JOURNAL).exists();
        store::replay_journal(root)?;
        crate::operations::rotate::check_states(root)?;
        Ok(run)
    }

    fn lock(root: &Path, command: &str) -> Result<Run> {
        if root.exists() && !root.is_dir() {
            return Err(Error::bad_file(root, "exists and is not a directory"));
        }
        let wait = wait_limit()?;
        let path = root.join(LOCK);
        // The lock is a file of the tree like any other: not made through a linked `.kubepki`.
        store::LinkGuard::new(Some(root)).check(&path)?;
        store::make_dirs(path.parent().expect("has a parent"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::io(&path, "open the lock", e))?;
        let began = Instant::now();
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(Error::io(&path, "lock", e.into())),
            }
            if began.elapsed() >= wait {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().replace('\n', ", ");
                return Err(Error::Locked {
                    path,
                    holder: if holder.is_empty() { "a run that has not said who it is yet".into() } else { holder },
                    waited: wait,
                });
            }
            std::thread::sleep(POLL);
        }
        let mut before = String::new();
        let _ = file.read_to_string(&mut before);
        let interrupted = Some(before.trim().replace('\n', ", ")).filter(|b| !b.is_empty());
        let now = OffsetDateTime::now_utc();
        let since = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let who =
            format!("pid {}\ncommand kubepki {command}\nsince {since}\nargs {}\n", std::process::id(), args_line());
        // Durable before the run writes anything: after a crash, a temporary of this run is
        // never found beside an empty lock file (see [`Run::begin_new`]).
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(who.as_bytes()))
            .and_then(|_| file.sync_data())
            .map_err(|e| Error::io(&path, "write the lock's holder", e))?;
        let fresh = holds_nothing(root);
        let backup = Some(backup::activate(root, command, !fresh));
        Ok(Run { root: root.to_path_buf(), lock: file, backup, fresh, interrupted, replayed: false })
    }

    /// The tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the tree held nothing when the run began (a first `init`).
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// The run killed before this one, as it named itself in the lock file (pid, command,
    /// since when), if one was.
    pub fn interrupted(&self) -> Option<&str> {
        self.interrupted.as_deref()
    }

    /// Whether a killed run of this very command (the same arguments) was completed when this
    /// run began (its journal replayed): the command is then done, and is not to be done
    /// again. Not for `init`, which commits in many groups and is simply run again.
    pub fn completed(&self) -> bool {
        self.replayed && self.interrupted.as_deref().is_some_and(|h| h.ends_with(&format!("args {}", args_line())))
    }

    /// Every file the run has replaced, removed or created so far, relative to the tree.
    pub fn changed(&self) -> Vec<PathBuf> {
        backup::changed(&self.root)
    }

    /// The run's backup folder, once it has saved something.
    pub fn backup_dir(&self) -> Option<PathBuf> {
        self.backup.as_ref().and_then(|_| backup::current_dir(&self.root))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(b) = &self.backup {
            backup::deactivate(b);
        }
        // The run ended (done or failed, not killed): no holder any more. The lock itself
        // goes with the file.
        let _ = self.lock.set_len(0);
    }
}

/// This process's arguments, as one line.
fn args_line() -> String {
    std::env::args().skip(1).collect::<Vec<_>>().join(" ").replace('\n', " ")
}

/// The longest wait `$KUBEPKI_LOCK_WAIT` may ask for: a day.
const MAX_LOCK_WAIT: f64 = 86_400.0;

/// How long to wait for the lock: `$KUBEPKI_LOCK_WAIT` seconds, else [`LOCK_WAIT`]. A value
/// that is not a number of seconds from 0 to a day is refused, naming it (not taken as the
/// default, nor left to overflow).
fn wait_limit() -> Result<Duration> {
    match std::env::var("KUBEPKI_LOCK_WAIT") {
        Err(std::env::VarError::NotPresent) => Ok(LOCK_WAIT),
        Err(std::env::VarError::NotUnicode(v)) => Err(bad_wait(&v.to_string_lossy(), "not text")),
        Ok(v) => parse_wait(&v),
    }
}

fn parse_wait(value: &str) -> Result<Duration> {
    let seconds: f64 = value.trim().parse().map_err(|_| bad_wait(value, "not a number of seconds"))?;
    if !seconds.is_finite() || !(0.0..=MAX_LOCK_WAIT).contains(&seconds) {
        return Err(bad_wait(value, "out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn bad_wait(value: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "KUBEPKI_LOCK_WAIT={value:?}: {why}: give how many seconds to wait for the lock, from 0 to {MAX_LOCK_WAIT} \
         (e.g. 2.5), or unset it for {}s (nothing was changed)",
        LOCK_WAIT.as_secs()
    ))
}

/// Whether a tree holds nothing but its lock (or does not exist).
pub(crate) fn holds_nothing(root: &Path) -> bool {
    let only = |dir: &Path, allowed: &str| match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.all(|e| e.is_ok_and(|e| e.file_name() == allowed)),
        Err(_) => true,
    };
    only(root, ".kubepki") && only(&root.join(".kubepki"), "lock")
}

/// A run that changed the tree and did not finish, or one changing it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// The run, as it named itself in the lock file (pid, command, since when).
    pub holder: String,
    /// Whether it is still running (holds the lock).
    pub running: bool,
    /// Whether a journaled batch of it is pending (`D/.kubepki-journal`).
    pub journal_pending: bool,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.running {
            write!(
                f,
                "a kubepki run is changing this tree now ({}): what is read may be half old, half new",
                self.holder
            )
        } else {
            write!(
                f,
                "a kubepki run was interrupted ({}){}: run that command again to complete it",
                self.holder,
                if self.journal_pending { ", its last batch pending in .kubepki-journal" } else { "" }
            )
        }
    }
}

/// Whether the tree at `root` is half-written: a run was killed (its holder line is still in
/// the lock file, or its journal is pending), or one is running. Takes no lock (a shared flock
/// is tried and released at once).
pub fn interrupted(root: &Path) -> Option<Interrupted> {
    let journal_pending = root.join(store::JOURNAL).exists();
    let mut holder = String::new();
    let running = match File::open(root.join(LOCK)) {
        Ok(mut f) => {
            let _ = f.read_to_string(&mut holder);
            match flock(&f, FlockOperation::NonBlockingLockShared) {
                Ok(()) => {
                    let _ = flock(&f, FlockOperation::Unlock);
                    false
                }
                Err(_) => true,
            }
        }
        Err(_) => false,
    };
    let holder = holder.trim().replace('\n', ", ");
    if holder.is_empty() && !journal_pending {
        return None;
    }
    let holder = if holder.is_empty() { "a run that did not name itself".into() } else { holder };
    Some(Interrupted { holder, running, journal_pending })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_wait_is_seconds_from_zero_to_a_day_or_refused_by_name() {
        assert_eq!(parse_wait("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_wait(" 0 ").unwrap(), Duration::ZERO);
        for bad in ["1e30", "abc", "-1", "NaN", "inf", "", "86401"] {
            let err = parse_wait(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("KUBEPKI_LOCK_WAIT={bad:?}: ")), "{err}");
        }
    }
}
