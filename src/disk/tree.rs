//! Operations on a whole tree shared by the lifecycle commands: backing files up before they
//! are replaced, refreshing the node bundles' copies from their sources, and refusing a tree
//! whose own directories are symbolic links.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::disk::store::{Batch, Mode};
use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, EntryKind};
use crate::model::spec::ClusterSpec;
use crate::x509::issue::{Ca, PrivateKey};

/// The directories of a tree that hold keys or kubepki's state.
const OWN_DIRS: [&str; 5] = ["pki", "pki/etcd", "nodes", ".kubepki", ".kubepki-backup"];

/// Refuse a tree whose key directories are symbolic links: kubepki would write CA keys
/// wherever they point, outside the tree. (The tree's root itself may be a link.)
pub fn refuse_linked_dirs(root: &Path) -> Result<()> {
    for dir in OWN_DIRS {
        let path = root.join(dir);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            let to = std::fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(Error::bad_file(
                &path,
                format!("a symbolic link (to {to}): kubepki writes keys only inside the tree; make it a directory (nothing was written)"),
            ));
        }
    }
    Ok(())
}

/// Where the previous files of a run at `now` are saved.
pub fn backup_dir(root: &Path, now: OffsetDateTime) -> PathBuf {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    root.join(crate::model::vocabulary::state::BACKUP).join(stamp)
}

/// Copy these files (relative to `root`), if they exist, into the backup directory of `now`,
/// keeping their modes. Returns the directory.
pub fn back_up<'a>(
    root: &Path,
    files: impl IntoIterator<Item = (&'a Path, Mode)>,
    now: OffsetDateTime,
) -> Result<PathBuf> {
    let dir = backup_dir(root, now);
    let mut batch = Batch::new();
    for (f, mode) in files {
        match crate::disk::readfile::read(&root.join(f), crate::disk::readfile::Limit::Kubeconfig) {
            Ok(bytes) => batch.add(dir.join(f), bytes, mode),
            Err(e) if crate::disk::readfile::is_missing(&e) => {}
            Err(e) => return Err(e),
        }
    }
    batch.commit()?;
    Ok(dir)
}

/// Refresh the node bundles' copies of shared files from their sources; returns how many
/// files were written. With `create`, missing copies are made (init); without, only copies
/// that exist are brought up to date (a lifecycle command on a tree without bundles, such
/// as kubeadm's, adds none).
pub fn refresh_bundles(spec: &ClusterSpec, catalog: &Catalog, root: &Path, create: bool) -> Result<usize> {
    let mut cache: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    let mut written = 0;
    let bundles = catalog.bundles();
    for nodes in spec.nodes.chunks(512) {
        let mut batch = Batch::new();
        for node in nodes {
            for (src, dst, mode) in bundles.of(spec, node) {
                if src == dst {
                    continue;
                }
                if !cache.contains_key(&src) {
                    let path = root.join(&src);
                    match crate::disk::readfile::read(&path, crate::disk::readfile::Limit::Kubeconfig) {
                        Ok(bytes) => cache.insert(src.clone(), bytes),
                        Err(e) if crate::disk::readfile::is_missing(&e) => continue,
                        Err(e) => return Err(e),
                    };
                }
                let bytes = &cache[&src];
                let dst = root.join(dst);
                match crate::disk::readfile::read(&dst, crate::disk::readfile::Limit::Kubeconfig) {
                    Ok(old) if &old == bytes => continue,
                    Err(_) if !create => continue,
                    _ => {}
                }
                batch.add(dst, bytes.clone(), mode);
            }
        }
        written += batch.len();
        batch.commit()?;
    }
    Ok(written)
}

/// A CA of the tree, able to sign: its key on disk, matching its certificate, not expired.
pub fn load_ca(catalog: &Catalog, root: &Path, id: &str, now: OffsetDateTime) -> Result<Ca> {
    let e =
        catalog.get(id).filter(|e| e.is_ca()).ok_or_else(|| Error::Invalid(format!("no CA '{id}' in the catalog")))?;
    let EntryKind::Ca { cert, key, .. } = &e.kind else {
        return Err(Error::Invalid(format!("{id} is not a CA")));
    };
    let (cert_path, key_path) = (root.join(cert), root.join(key));
    let pem = crate::disk::readfile::Limit::Pem;
    let cert_pem = crate::disk::readfile::read_text(&cert_path, pem)?;
    let key_pem = crate::disk::readfile::read_text(&key_path, pem).map_err(|e| match e {
        Error::Io { path, source, .. } => Error::Io {
            path,
            action: "read the CA key (signing needs it: restore it, or with an outside CA sign there and run kubepki import)",
            source,
        },
        other => other,
    })?;
    let ca = Ca::load(id, &cert_pem, &cert_path, PrivateKey::from_pem(&key_pem, &key_path)?)?;
    if ca.info.not_after < now {
        return Err(Error::bad_file(
            cert_path,
            format!(
                "the CA {id} expired on {}: rotate it first (kubepki rotate-ca {id} start)",
                ca.info.not_after.date()
            ),
        ));
    }
    Ok(ca)
}
