//! A batch: files written together, all or nothing (see the module above for what a kill
//! leaves).

use super::*;

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
        // Nothing of the tree written through a symbolic link, checked before anything is.
        let guard = LinkGuard::new(journal_root);
        let mut paths =
            self.files.iter().map(|(p, _, _)| p).chain(self.append.iter().map(|(p, _)| p)).chain(&self.remove);
        paths.try_for_each(|p| guard.check(p))?;
        // By directory: each is made (if need be) by the task that writes its files, so that
        // making directories and writing files overlap rather than wait for each other.
        let mut by_dir: BTreeMap<&Path, Vec<usize>> = BTreeMap::new();
        for (i, (path, _, _)) in self.files.iter().enumerate() {
            by_dir.entry(parent(path)).or_default().push(i);
        }
        if self.files.len() >= BULK_FILES {
            return self.commit_bulk(&by_dir, journal_root, &guard);
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
    fn commit_bulk(
        &self,
        by_dir: &BTreeMap<&Path, Vec<usize>>,
        journal_root: Option<&Path>,
        guard: &LinkGuard,
    ) -> Result<()> {
        // Staging is work for cores (nothing waits on the disk): on the global pool.
        let files = &self.files;
        let staged: Vec<Result<Vec<Staged>>> = by_dir
            .par_iter()
            .map(|(_, ids)| stage(ids.iter().map(|&i| (files[i].0.clone(), &files[i].1[..], files[i].2)), guard))
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
