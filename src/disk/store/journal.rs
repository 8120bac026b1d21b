//! The journal of a batch: its renames, its log lines and its removals, written before the
//! first rename and replayed by the next run after a kill.

use super::*;

/// Write the journal of a batch (its renames, its append and its removals, paths relative to
/// `root`), durably; returns its path. Records: `rename\0<tmp>\0<target>\0`,
/// `append\0<file>\0<length>\0<bytes>` and `remove\0<file>\0`.
pub(super) fn write_journal(
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
