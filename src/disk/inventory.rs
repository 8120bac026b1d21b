//! What is on disk for each catalog entry: the certificate, whether the key is there and
//! which public key it holds, a kubeconfig's embedded CA and server, and file modes. Loaded
//! once; verify, check and the live handshakes read from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::disk::readfile::Limit;
use crate::model::catalog::{Catalog, Entry, EntryId, EntryKind, Leaf, Store};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::PrivateKey;
use crate::x509::kubeconfig;

/// Why something could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The file does not exist.
    Missing(PathBuf),
    /// It exists but cannot be read or parsed.
    Unreadable(PathBuf, String),
    /// The kubeconfig refers to a file outside the tree (a kubelet's rotated certificate).
    External(PathBuf, String),
    /// Not read: the inventory was loaded without private keys
    /// ([`Inventory::load_without_keys`]).
    NotRead(PathBuf),
}

impl Problem {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            Problem::Missing(p) | Problem::Unreadable(p, _) | Problem::External(p, _) | Problem::NotRead(p) => p,
        }
    }
}

/// A private key as far as checks need it: its public half (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFacts {
    /// The raw public key.
    pub public_key_raw: Vec<u8>,
    /// The PEM of the key (kept to build TLS configs for live handshakes; never printed).
    pem: String,
}

impl KeyFacts {
    /// The key's PEM, for handing to a TLS library. Never log it.
    pub fn secret_pem(&self) -> &str {
        &self.pem
    }
}

/// One entry as found on disk.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The certificate (for a kubeconfig: its client certificate).
    pub cert: Result<CertInfo, Problem>,
    /// The certificate's PEM (for live handshakes).
    pub cert_pem: Option<String>,
    /// The private key.
    pub key: Result<KeyFacts, Problem>,
    /// For a kubeconfig: the server it dials and the CA certificates it trusts.
    pub kubeconfig: Option<KubeconfigFacts>,
    /// For a key pair: the raw public key of the `.pub` file.
    pub public_key: Option<Result<Vec<u8>, Problem>>,
    /// Permission bits of each file that exists.
    pub modes: Vec<(PathBuf, u32)>,
}

/// What a kubeconfig says besides its client credential.
#[derive(Clone, Debug)]
pub struct KubeconfigFacts {
    /// The file.
    pub path: PathBuf,
    /// `server`.
    pub server: String,
    /// The embedded CA certificates (a bundle during rotation), or why there are none.
    pub ca: Result<Vec<CertInfo>, Problem>,
    /// The embedded CA PEM text.
    pub ca_pem: Option<String>,
    /// `insecure-skip-tls-verify: true` on its cluster.
    pub insecure_skip_tls_verify: bool,
}

/// Everything loaded, by entry id.
#[derive(Debug, Default)]
pub struct Inventory {
    /// The tree.
    pub root: PathBuf,
    /// Entry id → what is on disk.
    pub entries: HashMap<EntryId, Loaded>,
}

impl Inventory {
    /// Load every entry of the catalog from `root` (in parallel; parsing dominates).
    pub fn load(root: &Path, catalog: &Catalog) -> Inventory {
        Inventory::load_with(root, catalog, Keys::Parsed)
    }

    /// [`Inventory::load`] without the private keys: each entry's `key` is
    /// [`Problem::NotRead`]. For commands that make new keys (renew, a rotation's reissue):
    /// checking thousands of keys is a third of reading a tree.
    pub fn load_without_keys(root: &Path, catalog: &Catalog) -> Inventory {
        Inventory::load_with(root, catalog, Keys::NotRead)
    }

    fn load_with(root: &Path, catalog: &Catalog, keys: Keys) -> Inventory {
        let bundles = Bundles::default();
        let entries = catalog.entries.par_iter().map(|e| (e.id.clone(), load_entry(root, e, &bundles, keys))).collect();
        Inventory { root: root.to_path_buf(), entries }
    }

    /// What was found for an entry.
    pub fn get(&self, id: &str) -> Option<&Loaded> {
        self.entries.get(id)
    }
}

fn read(root: &Path, rel: &Path) -> Result<(String, u32), Problem> {
    let path = root.join(rel);
    let limit = if rel.extension().is_some_and(|x| x == "conf") { Limit::Kubeconfig } else { Limit::Pem };
    match crate::disk::readfile::read_with_mode(&path, limit) {
        Ok((bytes, mode)) => String::from_utf8(bytes)
            .map(|t| (t, mode))
            .map_err(|_| Problem::Unreadable(rel.into(), "not text (PEM expected)".into())),
        Err(e) if crate::disk::readfile::is_missing(&e) => Err(Problem::Missing(rel.into())),
        Err(e) => Err(Problem::Unreadable(rel.into(), crate::disk::readfile::reason(&e))),
    }
}

fn parse_cert(text: &str, rel: &Path) -> Result<CertInfo, Problem> {
    CertInfo::from_pem(text, rel).map_err(|e| Problem::Unreadable(rel.into(), strip_path(&e.to_string(), rel)))
}

fn parse_key(text: &str, rel: &Path) -> Result<KeyFacts, Problem> {
    PrivateKey::from_pem(text, rel)
        .map(|k| KeyFacts { public_key_raw: k.public_key_raw().to_vec(), pem: text.to_string() })
        .map_err(|e| Problem::Unreadable(rel.into(), strip_path(&e.to_string(), rel)))
}

/// Errors from lower layers start with the path; the problem carries it separately.
fn strip_path(message: &str, rel: &Path) -> String {
    message.strip_prefix(&format!("{}: ", rel.display())).unwrap_or(message).to_string()
}

/// The CA bundles read so far, by their PEM text: the thousands of kubeconfigs of a tree embed
/// the same few, each parsed once.
#[derive(Default)]
struct Bundles(std::sync::Mutex<HashMap<String, Vec<CertInfo>>>);

impl Bundles {
    /// [`parse_bundle`], once per text (failures are not kept: their problem names the file).
    fn parse(&self, text: &str, rel: &Path) -> Result<Vec<CertInfo>, Problem> {
        let lock = || self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(certs) = lock().get(text) {
            return Ok(certs.clone());
        }
        let certs = parse_bundle(text, rel)?;
        lock().insert(text.to_string(), certs.clone());
        Ok(certs)
    }
}

/// What is on disk for one entry, its key read and checked (a key a change keeps).
pub(crate) fn load_one(root: &Path, e: &Entry) -> Loaded {
    load_entry(root, e, &Bundles::default(), Keys::Parsed)
}

/// Whether private keys are read and checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    Parsed,
    NotRead,
}

fn load_entry(root: &Path, e: &Entry, bundles: &Bundles, keys: Keys) -> Loaded {
    let mut modes = Vec::new();
    match &e.kind {
        EntryKind::Ca { cert, key, .. } | EntryKind::Leaf(Leaf { store: Store::Files { cert, key }, .. }) => {
            let c = read(root, cert);
            let k = match keys {
                Keys::Parsed => read(root, key),
                Keys::NotRead => Err(Problem::NotRead(key.clone())),
            };
            for (r, rel) in [(&c, cert), (&k, key)] {
                if let Ok((_, m)) = r {
                    modes.push((rel.clone(), *m));
                }
            }
            let cert_pem = c.as_ref().ok().map(|(t, _)| t.clone());
            Loaded {
                cert: c.and_then(|(t, _)| parse_cert(&t, cert)),
                cert_pem,
                key: k.and_then(|(t, _)| parse_key(&t, key)),
                kubeconfig: None,
                public_key: None,
                modes,
            }
        }
        EntryKind::Leaf(Leaf { store: Store::Kubeconfig { path, .. }, .. }) => {
            load_kubeconfig(root, path, bundles, keys)
        }
        EntryKind::KeyPair { key, public } => {
            let k = read(root, key);
            let p = read(root, public);
            for (r, rel) in [(&k, key), (&p, public)] {
                if let Ok((_, m)) = r {
                    modes.push((rel.clone(), *m));
                }
            }
            Loaded {
                cert: Err(Problem::Unreadable(public.clone(), "a key pair has no certificate".into())),
                cert_pem: None,
                key: k.and_then(|(t, _)| parse_key(&t, key)),
                kubeconfig: None,
                public_key: Some(p.and_then(|(t, _)| parse_public_key(&t, public))),
                modes,
            }
        }
    }
}

fn load_kubeconfig(root: &Path, rel: &Path, bundles: &Bundles, keys: Keys) -> Loaded {
    let missing = |p: Problem| Loaded {
        cert: Err(p.clone()),
        cert_pem: None,
        key: Err(p),
        kubeconfig: None,
        public_key: None,
        modes: vec![],
    };
    let (text, mode) = match read(root, rel) {
        Ok(x) => x,
        Err(p) => return missing(p),
    };
    let k = match kubeconfig::parse(&text, rel) {
        Ok(k) => k,
        Err(e) => {
            let mut l = missing(Problem::Unreadable(rel.into(), strip_path(&e.to_string(), rel)));
            l.modes.push((rel.into(), mode));
            return l;
        }
    };
    let absent = |what: &str, file: &Option<String>| match file {
        Some(f) => Problem::External(PathBuf::from(f), format!("{} refers to {what} file {f}", rel.display())),
        None => Problem::Unreadable(rel.into(), format!("no {what} data")),
    };
    let cert = match &k.cert_pem {
        Some(pem) => parse_cert(pem, rel),
        None => Err(absent("client-certificate", &k.files[1])),
    };
    let key = match &k.key_pem {
        Some(_) if keys == Keys::NotRead => Err(Problem::NotRead(rel.into())),
        Some(pem) => parse_key(pem, rel),
        None => Err(absent("client-key", &k.files[2])),
    };
    let ca = match &k.ca_pem {
        Some(pem) => bundles.parse(pem, rel),
        None => Err(absent("certificate-authority", &k.files[0])),
    };
    Loaded {
        cert,
        cert_pem: k.cert_pem.clone(),
        key,
        kubeconfig: Some(KubeconfigFacts {
            path: rel.into(),
            server: k.server.clone(),
            ca,
            ca_pem: k.ca_pem.clone(),
            insecure_skip_tls_verify: k.insecure_skip_tls_verify,
        }),
        public_key: None,
        modes: vec![(rel.into(), mode)],
    }
}

/// Every certificate of a PEM bundle.
pub fn parse_bundle(text: &str, rel: &Path) -> Result<Vec<CertInfo>, Problem> {
    let blocks = pem::parse_many(text).map_err(|e| Problem::Unreadable(rel.into(), format!("not valid PEM: {e}")))?;
    let certs: Vec<CertInfo> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertInfo::from_der(b.contents()).map_err(|e| Problem::Unreadable(rel.into(), e)))
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(Problem::Unreadable(rel.into(), "no certificate in the CA data".into()));
    }
    Ok(certs)
}

/// The raw public key of a PEM `PUBLIC KEY` (PKIX) file.
fn parse_public_key(text: &str, rel: &Path) -> Result<Vec<u8>, Problem> {
    use x509_parser::prelude::FromDer;
    let bad = |m: &str| Problem::Unreadable(rel.into(), m.to_string());
    let block = pem::parse(text).map_err(|_| bad("not PEM"))?;
    if block.tag() != "PUBLIC KEY" {
        return Err(bad(&format!("a PEM block of type '{}', expected PUBLIC KEY", block.tag())));
    }
    let (_, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(block.contents()).map_err(|_| bad("not a public key"))?;
    Ok(spki.subject_public_key.data.to_vec())
}
