//! No file of a tree is written through a symbolic link to a directory.
//!
//! A link anywhere between a tree's root and a file kubepki writes (`.kubepki/rotation`, a
//! node's `var/lib/kubelet/pki`) would have the file, a new CA key or a kubelet's key, land
//! wherever it points, outside the tree. So before a journaled batch writes anything, every
//! directory between the root and each of its files is looked at (`lstat`), each once per run
//! however many files it holds: a tree of 5,000 node bundles costs a few tens of thousands of
//! `lstat`s, not one per file per level. A directory that is not there is made by kubepki as
//! a directory, and so are those below it: they are not looked at. The root itself may be a
//! link (the tree is wherever the user says it is).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// The directories of one tree found not to be symbolic links (or not there), shared by the
/// threads that write its files.
#[derive(Debug)]
pub struct LinkGuard {
    /// `None`: a batch that is not the tree's (not journaled), nothing checked.
    root: Option<PathBuf>,
    /// By the path's bytes (hashing a `Path` parses its components: slower by far).
    checked: Mutex<HashSet<OsString>>,
}

impl LinkGuard {
    /// A guard for the files written under `root` (`None`: checks nothing).
    pub fn new(root: Option<&Path>) -> LinkGuard {
        LinkGuard { root: root.map(Path::to_path_buf), checked: Mutex::new(HashSet::new()) }
    }

    /// Refuse `path` (under the root) if a directory between the root and it is a symbolic
    /// link, naming the link (nothing was written). A path outside the root is not this
    /// guard's business (a journaled batch refuses it).
    pub fn check(&self, path: &Path) -> Result<()> {
        match self.find(path) {
            Found::Sound => Ok(()),
            Found::Link(at) => Err(linked(&at)),
            Found::NotPlain => Err(Error::bad_file(path, "not a plain path inside the tree (nothing was written)")),
        }
    }

    /// The first directory between the root and `path` that is a symbolic link, if any. Only
    /// the directories below the nearest one already known are looked at, top down, and the
    /// set of known ones is locked twice per call, not once per level (thousands of files are
    /// staged on all cores).
    fn find(&self, path: &Path) -> Found {
        let (Some(root), Some(dir)) = (&self.root, path.parent()) else {
            return Found::Sound;
        };
        let Ok(rel) = dir.strip_prefix(root) else {
            return Found::Sound;
        };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Found::NotPlain;
        }
        // Deepest first: the directories up to the nearest known one.
        let mut unknown: Vec<&Path> = Vec::new();
        {
            let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            let mut at = dir;
            while at != root.as_path() && !checked.contains(at.as_os_str()) {
                unknown.push(at);
                match at.parent() {
                    Some(up) => at = up,
                    None => break,
                }
            }
        }
        let mut fresh = Vec::with_capacity(unknown.len());
        let mut made_by_us = false;
        for at in unknown.into_iter().rev() {
            if !made_by_us {
                match std::fs::symlink_metadata(at) {
                    Ok(m) if m.file_type().is_symlink() => {
                        self.checked.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh);
                        return Found::Link(at.to_path_buf());
                    }
                    Ok(_) => {}
                    // Not there: kubepki makes it, and those below it, as directories.
                    Err(_) => made_by_us = true,
                }
            }
            fresh.push(at.as_os_str().to_os_string());
        }
        self.checked.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh);
        Found::Sound
    }
}

#[cfg(test)]
impl LinkGuard {
    /// Whether `dir` is known sound.
    fn seen(&self, dir: &Path) -> bool {
        self.checked.lock().unwrap_or_else(|e| e.into_inner()).contains(dir.as_os_str())
    }
}

/// What [`LinkGuard::find`] found on the way to a file.
enum Found {
    Sound,
    Link(PathBuf),
    NotPlain,
}

/// The directories between `root` and the files `paths` (relative to it) that are symbolic
/// links, each once, in path order, relative to the root (for `verify`).
pub fn linked_dirs<'a>(root: &Path, paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    use rayon::prelude::*;
    let guard = LinkGuard::new(Some(root));
    // Each directory once (a node bundle's files share a few).
    let mut paths: Vec<&Path> = paths.into_iter().collect();
    paths.sort_unstable_by(|a, b| a.parent().map(Path::as_os_str).cmp(&b.parent().map(Path::as_os_str)));
    paths.dedup_by(|a, b| a.parent() == b.parent());
    // On every core: a tree of 5,000 node bundles has 40,000 directories to look at.
    let mut links: Vec<PathBuf> = paths
        .par_iter()
        .filter_map(|p| match guard.find(&root.join(p)) {
            Found::Link(at) => at.strip_prefix(root).ok().map(Path::to_path_buf),
            _ => None,
        })
        .collect();
    links.sort_unstable();
    links.dedup();
    links
}

/// The refusal of a directory of the tree that is a symbolic link.
pub(crate) fn linked(path: &Path) -> Error {
    let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
    Error::bad_file(
        path,
        format!(
            "a symbolic link (to {to}): kubepki writes only inside the tree, never through a link; \
             make it a directory (nothing was written)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_between_the_root_and_a_file_is_named_once_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("tree"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("nodes/n1/var/lib")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("nodes/n1/var/lib/kubelet")).unwrap();
        let guard = LinkGuard::new(Some(&root));
        guard.check(&root.join("nodes/n1/etc/kubernetes/kubelet.conf")).unwrap();
        let err = guard.check(&root.join("nodes/n1/var/lib/kubelet/pki/kubelet.key")).unwrap_err().to_string();
        assert!(err.contains("nodes/n1/var/lib/kubelet: a symbolic link (to "), "{err}");
        // A directory once found sound is not looked at again; a link is refused every time.
        assert!(guard.seen(&root.join("nodes/n1/var/lib")));
        assert!(!guard.seen(&root.join("nodes/n1/var/lib/kubelet")));
        assert!(guard.check(&root.join("nodes/n1/var/lib/kubelet/x")).is_err());
        // The root itself may be a link; nothing is checked without a root.
        let linked_root = dir.path().join("link");
        std::os::unix::fs::symlink(&root, &linked_root).unwrap();
        LinkGuard::new(Some(&linked_root)).check(&linked_root.join("pki/ca.key")).unwrap();
        LinkGuard::new(None).check(&root.join("nodes/n1/var/lib/kubelet/pki/kubelet.key")).unwrap();
        let files = ["nodes/n1/var/lib/kubelet/pki/a", "nodes/n1/var/lib/kubelet/b", "pki/ca.key"].map(Path::new);
        assert_eq!(linked_dirs(&root, files), [PathBuf::from("nodes/n1/var/lib/kubelet")]);
    }
}
