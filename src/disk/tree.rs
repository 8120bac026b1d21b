//! Operations on a whole tree shared by the lifecycle commands: refreshing the node bundles'
//! copies from their sources, loading a CA to sign with, and refusing a tree whose own
//! directories are symbolic links.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::disk::readfile::{is_missing, read, read_text, Limit};
use crate::disk::store::Mode;
use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, EntryKind, Leaf, Store};
use crate::model::spec::ClusterSpec;
use crate::x509::issue::{Ca, PrivateKey};

/// The directories of a tree that hold keys or kubepki's state.
const OWN_DIRS: [&str; 5] = ["pki", "pki/etcd", "nodes", ".kubepki", ".kubepki-backup"];

/// Refuse a tree whose key directories are symbolic links: kubepki would write CA keys
/// wherever they point, outside the tree. (The tree's root itself may be a link.) Checked
/// first, before anything is read; every other directory a file is written into is checked by
/// the store as it writes ([`crate::disk::store::LinkGuard`]).
pub fn refuse_linked_dirs(root: &Path) -> Result<()> {
    for dir in OWN_DIRS {
        let path = root.join(dir);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(crate::disk::store::linked(&path));
        }
    }
    Ok(())
}

/// The copies in the node bundles of the sources a change writes, `fresh` (relative path →
/// the bytes about to be written), that exist and differ from them: `(copy, bytes, mode)`,
/// paths relative to the tree. Copies of sources the change leaves alone are not its business
/// (a stale one is `init`'s, as verify says), and are not read; a missing one is `init`'s too.
pub fn bundle_copies(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    fresh: &HashMap<&Path, &[u8]>,
) -> Vec<(PathBuf, Vec<u8>, Mode)> {
    let bundles = catalog.bundles();
    let mut candidates = Vec::new();
    for node in &spec.nodes {
        for (src, dst, mode) in bundles.of(spec, node) {
            if let Some(bytes) = fresh.get(src.as_path()).filter(|_| src != dst) {
                candidates.push((dst, bytes, mode));
            }
        }
    }
    // Each copy looked at on all cores (thousands of nodes hold one each); one of another
    // size differs, and is not read. One that cannot be looked at or read is left alone.
    let differs = |path: &Path, bytes: &[u8]| match std::fs::metadata(path) {
        Ok(m) if m.len() != bytes.len() as u64 => true,
        Ok(_) => read(path, Limit::Kubeconfig).is_ok_and(|old| old != bytes),
        Err(_) => false,
    };
    candidates
        .into_par_iter()
        .filter(|(dst, bytes, _)| differs(&root.join(dst), bytes))
        .map(|(dst, bytes, mode)| (dst, bytes.to_vec(), mode))
        .collect()
}

/// What a leaf is on disk, given its certificate and key: the certificate (0644) and the key
/// (0600; `None`: the key file is kept as it is), or the kubeconfig (0600) that embeds both with
/// `ca_pem` and the server it dials (`server`, else the catalog's). The one place an entry and
/// its issued material become files.
pub fn leaf_files(
    leaf: &Leaf,
    cert_pem: &str,
    key_pem: Option<&str>,
    ca_pem: &str,
    server: Option<&str>,
) -> Vec<(PathBuf, String, Mode)> {
    match &leaf.store {
        Store::Files { cert, key } => {
            let mut out = vec![(cert.clone(), cert_pem.to_string(), Mode::Public)];
            if let Some(k) = key_pem {
                out.push((key.clone(), k.to_string(), Mode::Secret));
            }
            out
        }
        Store::Kubeconfig { path, cluster, server: catalog_server, .. } => {
            let text = crate::x509::kubeconfig::Kubeconfig {
                cluster,
                server: server.unwrap_or(catalog_server),
                ca_pem,
                user: &leaf.profile.subject.cn,
                cert_pem,
                key_pem: key_pem.unwrap_or_default(),
            }
            .render();
            vec![(path.clone(), text, Mode::Secret)]
        }
    }
}

/// The refusal of what needs the key of the CA `id`, whose certificate is in the tree without
/// its key (`key_path`): kubeadm's external-CA mode. `what` is what kubepki cannot do
/// (`sign for it`, `rotate it`).
pub fn externally_managed(root: &Path, id: &str, key_path: &Path, what: &str) -> Error {
    let steps = crate::operations::external::renewal_steps(&root.display().to_string(), id);
    Error::bad_file(
        key_path,
        format!(
            "missing: the CA {id} is externally managed (its certificate is in the tree without its key, \
             kubeadm's external-CA mode), so kubepki cannot {what}. Renew what it signs outside the tree: {steps}"
        ),
    )
}

/// A CA of the tree, able to sign: its key on disk, matching its certificate, not expired.
pub fn load_ca(catalog: &Catalog, root: &Path, id: &str, now: OffsetDateTime) -> Result<Ca> {
    let e =
        catalog.get(id).filter(|e| e.is_ca()).ok_or_else(|| Error::Invalid(format!("no CA '{id}' in the catalog")))?;
    let EntryKind::Ca { cert, key, .. } = &e.kind else {
        return Err(Error::Invalid(format!("{id} is not a CA")));
    };
    let (cert_path, key_path) = (root.join(cert), root.join(key));
    let cert_pem = read_text(&cert_path, Limit::Pem)?;
    let key_pem = match read_text(&key_path, Limit::Pem) {
        Ok(k) => k,
        Err(e) if is_missing(&e) && cert_path.is_file() => {
            return Err(externally_managed(root, id, &key_path, "sign for it"));
        }
        Err(Error::Io { path, source, .. }) => {
            return Err(Error::Io {
                path,
                action: "read the CA key (signing needs it: restore it, or with an outside CA sign there and run kubepki import)",
                source,
            })
        }
        Err(e) => return Err(e),
    };
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
