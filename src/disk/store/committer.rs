//! Staging and committing a large batch in journaled groups, one `syncfs(2)` each.

use super::*;

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
/// threads at once). All or nothing: on an error, no temporary is left. A file under a
/// symbolic link to a directory of the tree `guard` guards is refused before it is written.
pub fn stage<'a>(files: impl IntoIterator<Item = (PathBuf, &'a [u8], Mode)>, guard: &LinkGuard) -> Result<Vec<Staged>> {
    let mut staged = Vec::new();
    for (path, contents, mode) in files {
        guard.check(&path)?;
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

/// Rename each staged file into place (on several threads when there are many), marking it
/// settled.
fn rename_all(staged: &mut [Staged]) -> Result<()> {
    let rename = |s: &mut Staged| -> Result<()> {
        fs::rename(&s.tmp, &s.path).map_err(|e| Error::io(&s.path, "rename into place", e))?;
        s.settled = true;
        Ok(())
    };
    if staged.len() < BULK_FILES {
        return staged.iter_mut().try_for_each(rename);
    }
    // On the I/O pool, never the global one: `init` commits from a thread whose producers
    // are global-pool workers blocked on handing it the next group.
    on_io_pool(|| staged.par_iter_mut().try_for_each(rename))
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
    pub(super) remove: Vec<PathBuf>,
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
        // 3. Renames; a failure leaves the journal and its temporaries for the next run. A
        //    large group's on all cores (each rename is a few microseconds of the kernel's
        //    work; thousands of them were most of a rotation phase), in two halves with the
        //    mid-rename failpoint between them.
        let half = if self.journaled { group.len() / 2 } else { group.len() };
        let (first, second) = group.split_at_mut(half);
        rename_all(first)?;
        if !second.is_empty() {
            failpoint(Failpoint::MidRename);
            rename_all(second)?;
        }
        for s in &group {
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
