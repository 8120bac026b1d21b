//! An outside CA: `csr` writes a key and a certificate signing request for every leaf and
//! kubeconfig (as `kubeadm certs generate-csr` does), `sign` signs such requests with the
//! catalog's profile for the file they belong to, and `import` checks the certificates an outside
//! CA returned against the catalog before placing them.
//!
//! The files of the flow, for a leaf kept in files (`pki/apiserver.crt` + `.key`):
//! `pki/apiserver.csr`, the key at its usual place, and the certificate comes back at its usual
//! place. For a kubeconfig `X.conf`: `X.conf.csr`, `X.conf.key`, and `X.conf.crt` comes back;
//! `import` assembles `X.conf` from them and removes the three.
//!
//! Identity, SANs and usages come from the catalog, never from what a request asks for: a
//! request that asks for something else (another CN, O `system:masters`, a CA bit, a SAN the
//! catalog does not have) is refused by name, and nothing is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use rayon::prelude::*;
use rcgen::{CertificateParams, KeyPair};
use serde::Serialize;

use crate::audit::conformance::{deviations, Deviation};
use crate::audit::verify::{verify, Report, VerifyOptions};
use crate::disk::issuance::IssuanceRecord;
use crate::disk::readfile::{read_text, reason, Limit};
use crate::disk::store::{Batch, Mode};
use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, CertProfile, Entry, EntryId, Leaf, Store};
use crate::model::spec::ClusterSpec;
use crate::model::topology::Topology;
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::PrivateKey;
use crate::x509::request::CertificateRequest;

/// The files of the outside-CA flow for one leaf or kubeconfig, relative to the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFiles {
    /// The request: `pki/apiserver.csr`, `admin.conf.csr`.
    pub csr: PathBuf,
    /// The key: `pki/apiserver.key` (its usual place), `admin.conf.key`.
    pub key: PathBuf,
    /// Where the signed certificate goes: `pki/apiserver.crt` (its usual place), `admin.conf.crt`.
    pub cert: PathBuf,
}

impl RequestFiles {
    /// The files of an entry; `None` for CAs and the service-account key pair.
    pub fn of(e: &Entry) -> Option<RequestFiles> {
        Some(match &e.leaf()?.store {
            Store::Files { cert, key } => {
                RequestFiles { csr: cert.with_extension("csr"), key: key.clone(), cert: cert.clone() }
            }
            Store::Kubeconfig { path, .. } => {
                RequestFiles { csr: suffixed(path, ".csr"), key: suffixed(path, ".key"), cert: suffixed(path, ".crt") }
            }
        })
    }
}

fn suffixed(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// Every leaf and kubeconfig of the catalog, with its profile and request files.
fn requestable(catalog: &Catalog) -> impl Iterator<Item = (&Entry, &Leaf, RequestFiles)> {
    catalog.entries.iter().filter_map(|e| Some((e, e.leaf()?, RequestFiles::of(e)?)))
}

/// One key and request written by [`generate_csrs`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrWritten {
    /// The catalog entry.
    pub entry: EntryId,
    /// The CA that is to sign it.
    pub issuer: EntryId,
    /// The files, relative to the tree.
    #[serde(flatten)]
    pub files: RequestFiles,
}

/// What [`generate_csrs`] wrote.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrReport {
    /// The tree.
    pub dir: PathBuf,
    /// One per leaf and kubeconfig.
    pub written: Vec<CsrWritten>,
    /// Where replaced keys and requests were saved (with `force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
}

/// How the leaves of an externally managed CA are renewed without touching the keys in use:
/// new keys and requests beside the tree, signed by that CA, then imported with their keys.
/// `dir` as the user should type it.
pub fn renewal_steps(dir: &str, ca: &str) -> String {
    let staging = format!("{}.requests", dir.trim_end_matches('/'));
    format!(
        "kubepki csr --dir {dir} --ca {ca} --out {staging}, have {ca} sign each request there (its certificate beside \
         it as <name>.crt), then kubepki import --dir {dir} --from {staging}"
    )
}

/// Where [`generate_csrs`] writes, and for which CAs.
#[derive(Clone, Debug, Default)]
pub struct CsrOptions {
    /// Replace existing keys and requests (saved in the run's backup first).
    pub force: bool,
    /// Write keys and requests here, at the tree's paths, instead of in the tree: the keys in
    /// use stay until `import --from` places each new one with its certificate.
    pub out: Option<PathBuf>,
    /// Only the leaves these CAs sign (all when empty).
    pub cas: Vec<String>,
}

/// A new key (the cluster's algorithm) and a request with the catalog's identity, SANs and
/// usages for every leaf and kubeconfig of the catalog (of the CAs `opts.cas` names), in the
/// tree or in `opts.out`. An existing key or request is replaced only with `force` (and saved in
/// the run's backup first, see [`crate::disk::backup`]).
pub fn generate_csrs(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    opts: &CsrOptions,
    _now: OffsetDateTime,
) -> Result<CsrReport> {
    let force = opts.force;
    let cas: Vec<&str> = catalog.cas().map(|e| e.id.as_str()).collect();
    if let Some(bad) = opts.cas.iter().find(|c| !cas.contains(&c.as_str())) {
        return Err(Error::Invalid(format!("--ca {bad}: not a CA of this cluster; its CAs are: {}", cas.join(", "))));
    }
    let root = opts.out.as_deref().unwrap_or(root);
    if root.exists() && !root.is_dir() {
        return Err(Error::bad_file(root, "exists and is not a directory"));
    }
    crate::disk::tree::refuse_linked_dirs(root)?;
    let todo: Vec<_> = requestable(catalog)
        .filter(|(_, l, _)| opts.cas.is_empty() || opts.cas.iter().any(|c| *c == *l.issuer))
        .collect();
    let existing: Vec<PathBuf> = todo
        .iter()
        .flat_map(|(_, _, f)| [&f.key, &f.csr])
        .filter(|p| root.join(p).exists())
        .map(|p| root.join(p))
        .collect();
    if !existing.is_empty() && !force {
        return Err(Error::WouldClobber {
            paths: existing,
            reason: "a key or request is already there: a new key would orphan the certificate or request made for it"
                .into(),
            hint: "pass --force to replace them (the old files are saved under <dir>/.kubepki-backup/)".into(),
        });
    }
    let made: Vec<(String, String)> =
        todo.par_iter().map(|(_, l, _)| request_for(&l.profile, spec)).collect::<Result<Vec<_>>>()?;
    let mut batch = Batch::new();
    let mut written = Vec::with_capacity(todo.len());
    for ((e, p, files), (csr, key)) in todo.into_iter().zip(made) {
        batch.add(root.join(&files.key), key, Mode::Secret);
        batch.add(root.join(&files.csr), csr, Mode::Secret);
        written.push(CsrWritten { entry: e.id.clone(), issuer: p.issuer.clone(), files });
    }
    batch.commit_in(root)?;
    let backup = if existing.is_empty() { None } else { crate::disk::backup::current_dir(root) };
    Ok(CsrReport { dir: root.to_path_buf(), written, backup })
}

/// A fresh key and its request: `(request PEM, key PEM)`.
fn request_for(p: &CertProfile, spec: &ClusterSpec) -> Result<(String, String)> {
    let key = PrivateKey::generate(spec.key_algorithm)?;
    let pair = key_pair(&key)?;
    let mut params = CertificateParams::default();
    // The usages are asked for too, so that an outside CA that copies requested extensions
    // issues what the catalog needs (requests are made for leaves only: no keyCertSign).
    crate::x509::issue::set_profile(&mut params, p, spec.key_algorithm.is_rsa())?;
    let csr = params
        .serialize_request(&pair)
        .and_then(|c| c.pem())
        .map_err(|e| Error::crypto(format!("request for {}", p.subject.cn), e))?;
    Ok((csr, key.to_pem().to_string()))
}

/// rcgen's view of a key, to sign a request with.
fn key_pair(key: &PrivateKey) -> Result<KeyPair> {
    use rustls_pki_types::PrivateKeyDer;
    let fail = |d: &str| Error::crypto("reading back a new key", d);
    let block = ::pem::parse(key.to_pem()).map_err(|e| fail(&e.to_string()))?;
    let der = match block.tag() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(block.contents().to_vec().into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(block.contents().to_vec().into()),
        _ => PrivateKeyDer::Pkcs8(block.contents().to_vec().into()),
    };
    KeyPair::try_from(&der).map_err(|e| fail(&e.to_string()))
}

/// One certificate signed by [`sign_csrs`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedCert {
    /// The catalog entry.
    pub entry: EntryId,
    /// The request, relative to the tree.
    pub csr: PathBuf,
    /// The certificate written, relative to the tree.
    pub cert: PathBuf,
    /// Its subject.
    pub subject: String,
    /// Its serial, hex.
    pub serial: String,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// What [`sign_csrs`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignReport {
    /// The tree.
    pub dir: PathBuf,
    /// The CA that signed.
    pub ca: String,
    /// One per request.
    pub signed: Vec<SignedCert>,
    /// Where the certificates replaced (`--force`) were saved.
    pub backup: Option<PathBuf>,
}

/// Sign requests made for catalog entries with the CA `ca_id` of the tree: usages and validity
/// from the catalog, identity and SANs from the request (which must be the catalog's), the key
/// from the request, never a CA bit. The certificate is written beside the request (`.crt`)
/// and logged. Every request is checked first; any problem refuses them all and writes nothing.
pub fn sign_csrs(
    catalog: &Catalog,
    root: &Path,
    ca_id: &str,
    csrs: &[PathBuf],
    force: bool,
    now: OffsetDateTime,
) -> Result<SignReport> {
    if csrs.is_empty() {
        return Err(Error::Invalid("no request given: name the .csr files to sign".into()));
    }
    let ca_names: Vec<&str> = catalog.cas().map(|e| e.id.as_str()).collect();
    if !ca_names.contains(&ca_id) {
        return Err(Error::Invalid(format!("'{ca_id}' is not a CA of the catalog; CAs are: {}", ca_names.join(", "))));
    }
    let mut problems = Problems::default();
    let mut todo = Vec::new();
    for given in csrs {
        match check_for_signing(catalog, root, ca_id, given, force) {
            Ok(t) if todo.iter().any(|d: &ToSign| d.files.csr == t.files.csr) => {
                problems.push(given, vec!["given twice".into()])
            }
            Ok(t) => todo.push(t),
            Err(p) => problems.push(given, p),
        }
    }
    problems.refuse("refusing to sign; nothing was written")?;
    crate::disk::tree::refuse_linked_dirs(root)?;
    crate::disk::issuance::check_appendable(root)?;
    let ca = crate::disk::tree::load_ca(catalog, root, ca_id, now)?;
    let mut batch = Batch::new();
    let mut records = Vec::new();
    let mut signed = Vec::new();
    for t in todo {
        let mut profile = t.leaf.profile.clone();
        profile.sans = t.request.sans.clone();
        let key = t.request.public_key().map_err(|e| Error::bad_file(root.join(&t.files.csr), e))?;
        let issued = ca.sign(&profile, &key, now)?;
        let record = IssuanceRecord::of_der(&issued.der, Some(&t.entry.id), "sign", now)?;
        signed.push(SignedCert {
            entry: t.entry.id.clone(),
            csr: t.files.csr.clone(),
            cert: t.files.cert.clone(),
            subject: record.subject.clone(),
            serial: record.serial.clone(),
            not_after: issued.not_after,
        });
        records.push(record);
        batch.add(root.join(&t.files.cert), issued.pem, Mode::Public);
    }
    // Logged with the certificates, in one journaled batch: exactly once, across a kill.
    batch.append_after(crate::disk::issuance::log_path(root), crate::disk::issuance::lines(&records)?);
    batch.commit_in(root)?;
    // `--force` replaced certificates in use: the run saved them first (disk::backup).
    let backup = crate::disk::backup::current_dir(root);
    Ok(SignReport { dir: root.to_path_buf(), ca: ca_id.into(), signed, backup })
}

/// A request that passed every check.
struct ToSign<'a> {
    entry: &'a Entry,
    leaf: &'a Leaf,
    files: RequestFiles,
    request: CertificateRequest,
}

fn check_for_signing<'a>(
    catalog: &'a Catalog,
    root: &Path,
    ca_id: &str,
    given: &Path,
    force: bool,
) -> std::result::Result<ToSign<'a>, Vec<String>> {
    let one = |p: String| vec![p];
    let rel = locate(root, given).map_err(one)?;
    let Some((entry, leaf, files)) = requestable(catalog).find(|(_, _, f)| f.csr == rel) else {
        let known: Vec<String> = requestable(catalog).map(|(_, _, f)| f.csr.display().to_string()).collect();
        return Err(one(format!(
            "{} is not a request of the catalog (CAs and sa are never signed here); requests are named: {}",
            rel.display(),
            known.join(", ")
        )));
    };
    let text = read_text(&root.join(&rel), Limit::Pem).map_err(|e| one(format!("cannot read it: {}", reason(&e))))?;
    let request = CertificateRequest::from_pem(&text).map_err(one)?;
    let mut problems = Vec::new();
    if !request.signature_ok {
        problems.push("the request's signature does not verify with its own key (corrupt or tampered)".into());
    }
    if request.asks_ca {
        problems.push(
            "the request asks to be a CA (BasicConstraints CA:TRUE or keyCertSign); kubepki signs no CA from a request"
                .into(),
        );
    }
    if leaf.issuer != ca_id {
        let issuer = &leaf.issuer;
        problems.push(format!("{} is signed by {issuer} in the catalog, not {ca_id}: use --ca {issuer}", entry.id));
    }
    problems.extend(identity_problems(entry, &leaf.profile, &request));
    problems.extend(request.weak_key());
    if let Err(e) = request.public_key() {
        problems.push(e);
    }
    // The key beside the request is the proof it is the tree's own: no key, no certificate.
    let key_path = root.join(&files.key);
    match read_text(&key_path, Limit::Pem) {
        Ok(text) => match PrivateKey::from_pem(&text, &key_path) {
            Ok(k) if k.public_key_raw() != request.public_key_raw.as_slice() => problems.push(format!(
                "the request is not for the key {}: the certificate would be unusable with it",
                files.key.display()
            )),
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        },
        Err(e) if crate::disk::readfile::is_missing(&e) => problems.push(format!(
            "its key {} is not in the tree: kubepki signs only a request for the key beside it (made by kubepki csr)",
            files.key.display()
        )),
        Err(e) => problems.push(format!("its key {} cannot be read: {}", files.key.display(), reason(&e))),
    }
    if !force && root.join(&files.cert).exists() {
        problems.push(format!("{} is already there; pass --force to replace it", files.cert.display()));
    }
    if problems.is_empty() {
        Ok(ToSign { entry, leaf, files, request })
    } else {
        Err(problems)
    }
}

/// How a request breaks the catalog's identity and SANs (its usages are the catalog's to set;
/// a CA wish is refused on its own).
fn identity_problems(entry: &Entry, p: &CertProfile, r: &CertificateRequest) -> Vec<String> {
    deviations(entry, p, r.into())
        .into_iter()
        .filter(|d| !matches!(d, Deviation::CaFlag { .. } | Deviation::SigningUsage(_)))
        .map(|d| format!("the request does not fit {}: {d}", entry.id))
        .collect()
}

/// A file given on the command line, as a path relative to the tree: as given if it exists,
/// else relative to the tree.
fn locate(root: &Path, given: &Path) -> std::result::Result<PathBuf, String> {
    let path = if given.exists() {
        given.to_path_buf()
    } else if root.join(given).exists() {
        root.join(given)
    } else {
        return Err("no such file".into());
    };
    let abs = path.canonicalize().map_err(|e| format!("cannot resolve it: {e}"))?;
    let root_abs = root.canonicalize().map_err(|e| format!("cannot resolve the tree {}: {e}", root.display()))?;
    abs.strip_prefix(&root_abs).map(Path::to_path_buf).map_err(|_| {
        format!(
            "not inside the tree {} (a request is matched to its catalog entry by its place in the tree)",
            root.display()
        )
    })
}

/// Problems found, by file, reported all at once.
#[derive(Default)]
struct Problems(Vec<(PathBuf, String)>);

impl Problems {
    fn push(&mut self, file: &Path, problems: Vec<String>) {
        self.0.extend(problems.into_iter().map(|p| (file.to_path_buf(), p)));
    }

    fn refuse(self, what: &str) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut text = format!("{what}:");
        for (file, problem) in self.0 {
            text.push_str(&format!("\n  {}: {problem}", file.display()));
        }
        Err(Error::Invalid(text))
    }
}

/// One certificate placed by [`import_certs`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placed {
    /// The catalog entry.
    pub entry: EntryId,
    /// Where the certificate came from.
    pub source: PathBuf,
    /// The file it is now part of, relative to the tree (the certificate, or the kubeconfig).
    pub dest: PathBuf,
    /// Its subject.
    pub subject: String,
    /// Its serial, hex.
    pub serial: String,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// What [`import_certs`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The tree.
    pub dir: PathBuf,
    /// The certificates placed.
    pub placed: Vec<Placed>,
    /// Entries with a request in the tree but no certificate back yet.
    pub waiting: Vec<EntryId>,
    /// Copies in node bundles refreshed.
    pub copies: usize,
    /// Spent files removed (requests, a kubeconfig's parts).
    pub removed: Vec<PathBuf>,
    /// The static verify of the tree after the import.
    pub verify: Report,
    /// What each node must receive and restart (see [`crate::operations::rollout`]).
    pub rollout: Vec<crate::operations::rollout::NodeRollout>,
}

/// A certificate an outside CA returned, checked and ready to place.
struct Returned<'a> {
    entry: &'a Entry,
    leaf: &'a Leaf,
    files: RequestFiles,
    source: PathBuf,
    cert_pem: String,
    info: CertInfo,
    key_pem: String,
    /// Whether the key came from `from` (placed with the certificate) rather than the tree.
    key_staged: bool,
}

/// Check the certificates an outside CA returned (`<cert>` beside its `.csr` in the tree,
/// `X.conf.crt`, or the same paths under `from`) against the catalog, and only if every one
/// fits, place them: certificates at their place, kubeconfigs assembled from `X.conf.crt` and
/// `X.conf.key` with the CA, node bundles refreshed, spent requests removed. Then verify.
pub fn import_certs(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    from: Option<&Path>,
    at: OffsetDateTime,
) -> Result<ImportReport> {
    if !root.is_dir() {
        return Err(Error::bad_file(root, "no such directory"));
    }
    crate::disk::tree::refuse_linked_dirs(root)?;
    if let Some(f) = from.filter(|f| !f.is_dir()) {
        return Err(Error::bad_file(f, "no such directory"));
    }
    let mut problems = Problems::default();
    let mut returned = Vec::new();
    let mut waiting = Vec::new();
    for (entry, _, files) in requestable(catalog) {
        let Some(source) = returned_cert(root, from, entry, &files) else {
            if root.join(&files.csr).exists() {
                waiting.push(entry.id.clone());
            }
            continue;
        };
        match check_returned(catalog, root, from, entry, &files, &source, at) {
            Ok(r) => returned.push(r),
            Err(p) => problems.push(&source, p),
        }
    }
    problems.refuse("refusing to import; nothing was changed")?;
    if returned.is_empty() {
        let why = if waiting.is_empty() {
            "no request is waiting (make them with kubepki csr)".to_string()
        } else {
            format!("no certificate came back yet for {}", waiting.join(", "))
        };
        return Err(Error::Invalid(format!(
            "nothing to import in {}: {why}; a certificate goes where its request is, as <name>.crt (pki/apiserver.crt, admin.conf.crt)",
            from.unwrap_or(root).display()
        )));
    }
    let (mut batch, copies) = placement(spec, catalog, root, &returned)?;
    // Spent requests and parts leave with the placement, in one journaled batch: a killed
    // import is completed by the next run, or never happened.
    let mut removed = Vec::new();
    for r in &returned {
        let spent: Vec<&PathBuf> = match r.leaf.store {
            Store::Files { .. } => vec![&r.files.csr],
            Store::Kubeconfig { .. } => vec![&r.files.csr, &r.files.key, &r.files.cert],
        };
        for f in spent.into_iter().filter(|f| root.join(f).exists()) {
            batch.remove(root.join(f));
            removed.push(f.clone());
        }
    }
    batch.commit_in(root)?;
    let placed = returned
        .iter()
        .map(|r| Placed {
            entry: r.entry.id.clone(),
            source: r.source.clone(),
            dest: r.files.cert_home(r.leaf).to_path_buf(),
            subject: r.info.subject.clone(),
            serial: r.info.serial.clone(),
            not_after: r.info.not_after,
        })
        .collect();
    let inventory = crate::disk::inventory::Inventory::load(root, catalog);
    let topology = Topology::build(spec, catalog);
    let verify = verify(spec, catalog, &topology, &inventory, &VerifyOptions::at(at));
    let rollout = crate::operations::rollout::rollout(spec, &crate::disk::backup::changed(root));
    Ok(ImportReport { dir: root.to_path_buf(), placed, waiting, copies, removed, verify, rollout })
}

impl RequestFiles {
    /// The file an imported certificate ends up in: the certificate, or the kubeconfig.
    fn cert_home<'a>(&'a self, l: &'a Leaf) -> &'a Path {
        match &l.store {
            Store::Files { cert, .. } => cert,
            Store::Kubeconfig { path, .. } => path,
        }
    }
}

/// Where the returned certificate of an entry is, if it came back.
fn returned_cert(root: &Path, from: Option<&Path>, entry: &Entry, files: &RequestFiles) -> Option<PathBuf> {
    if let Some(p) = from.map(|f| f.join(&files.cert)).filter(|p| p.is_file()) {
        return Some(p);
    }
    let in_tree = root.join(&files.cert);
    let kubeconfig = matches!(entry.leaf().map(|l| &l.store), Some(Store::Kubeconfig { .. }));
    // A leaf's certificate is always at its place in a complete tree: it is "returned" only
    // while its request is there.
    (in_tree.is_file() && (kubeconfig || root.join(&files.csr).is_file())).then_some(in_tree)
}

fn check_returned<'a>(
    catalog: &Catalog,
    root: &Path,
    from: Option<&Path>,
    entry: &'a Entry,
    files: &RequestFiles,
    source: &Path,
    at: OffsetDateTime,
) -> std::result::Result<Returned<'a>, Vec<String>> {
    let one = |p: String| vec![p];
    let leaf = entry.leaf().ok_or_else(|| one(format!("{} is not a leaf", entry.id)))?;
    let cert_pem = read_text(source, Limit::Pem).map_err(|e| one(format!("cannot read it: {}", reason(&e))))?;
    let info = CertInfo::from_pem(&cert_pem, source).map_err(|e| one(strip(&e.to_string(), source)))?;
    let mut problems = Vec::new();
    let ca_id = &leaf.issuer;
    let ca_file = catalog.get(ca_id).and_then(|e| e.files().first().map(|(f, _)| f.to_path_buf()));
    let ca = ca_file.as_ref().map(|f| (f, root.join(f))).and_then(|(rel, abs)| {
        let text = read_text(&abs, Limit::Pem).ok()?;
        Some((rel, crate::disk::inventory::parse_bundle(&text, rel).ok()?))
    });
    match ca {
        None => problems.push(format!("the CA certificate of {ca_id} is not in the tree to check it against")),
        Some((rel, cas)) if !cas.iter().any(|c| info.is_signed_by(c)) => {
            problems.push(format!("not signed by {ca_id} ({}): issued by {}", rel.display(), info.issuer))
        }
        Some(_) => {}
    }
    // The key made with the request: in `from` when `csr --out` made it there (then placed with
    // its certificate), else in the tree.
    let staged = from.map(|f| f.join(&files.key)).filter(|k| k.is_file());
    let key_path = staged.clone().unwrap_or_else(|| root.join(&files.key));
    let key_pem = match read_text(&key_path, Limit::Pem) {
        Ok(text) => match PrivateKey::from_pem(&text, &key_path) {
            Ok(k) if !k.matches(&info) => {
                problems
                    .push(format!("its public key is not that of {} (the key kubepki csr made)", files.key.display()));
                text
            }
            Ok(_) => text,
            Err(e) => {
                problems.push(e.to_string());
                text
            }
        },
        Err(e) => {
            problems.push(format!("its key {} cannot be read ({e}): it is made by kubepki csr", files.key.display()));
            String::new()
        }
    };
    problems.extend(
        deviations(entry, &leaf.profile, (&info).into()).into_iter().map(|d| format!("does not fit {}: {d}", entry.id)),
    );
    if !info.valid_at(at) {
        problems.push(format!("not valid now: valid from {} to {}", info.not_before, info.not_after));
    }
    if problems.is_empty() {
        Ok(Returned {
            entry,
            leaf,
            files: files.clone(),
            source: source.to_path_buf(),
            cert_pem,
            info,
            key_pem,
            key_staged: staged.is_some(),
        })
    } else {
        Err(problems)
    }
}

fn strip(message: &str, path: &Path) -> String {
    message.strip_prefix(&format!("{}: ", path.display())).unwrap_or(message).to_string()
}

/// The files to write for the returned certificates, and how many of them are bundle copies.
fn placement(spec: &ClusterSpec, catalog: &Catalog, root: &Path, returned: &[Returned]) -> Result<(Batch, usize)> {
    let mut batch = Batch::new();
    // Home path → new bytes, for refreshing the copies in node bundles.
    let mut fresh: HashMap<PathBuf, (Vec<u8>, Mode)> = HashMap::new();
    for r in returned {
        match &r.leaf.store {
            Store::Files { cert, key } => {
                if r.source != root.join(cert) {
                    batch.add(root.join(cert), r.cert_pem.clone(), Mode::Public);
                }
                // A key made beside the tree replaces the one in use with its certificate, in the
                // same batch: never a key without its certificate.
                if r.key_staged {
                    batch.add(root.join(key), r.key_pem.clone(), Mode::Secret);
                }
                fresh.insert(cert.clone(), (r.cert_pem.clone().into_bytes(), Mode::Public));
                fresh.insert(key.clone(), (r.key_pem.clone().into_bytes(), Mode::Secret));
            }
            Store::Kubeconfig { ca, .. } => {
                let ca_file = catalog
                    .get(ca)
                    .and_then(|e| e.files().first().map(|(f, _)| root.join(f)))
                    .ok_or_else(|| Error::Invalid(format!("no CA '{ca}' in the catalog")))?;
                let ca_pem = read_text(&ca_file, Limit::Pem)?;
                for (path, text, mode) in
                    crate::disk::tree::leaf_files(r.leaf, &r.cert_pem, Some(&r.key_pem), &ca_pem, None)
                {
                    batch.add(root.join(&path), text.clone(), mode);
                    fresh.insert(path, (text.into_bytes(), mode));
                }
            }
        }
    }
    let mut copies = 0;
    let bundles = catalog.bundles();
    for node in &spec.nodes {
        for (src, dst, _) in bundles.of(spec, node) {
            if src == dst {
                continue;
            }
            if let Some((bytes, mode)) = fresh.get(&src) {
                if crate::disk::readfile::read(&root.join(&dst), crate::disk::readfile::Limit::Kubeconfig)
                    .is_ok_and(|old| &old == bytes)
                {
                    continue;
                }
                batch.add(root.join(&dst), bytes.clone(), *mode);
                copies += 1;
            }
        }
    }
    Ok((batch, copies))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_catalog() -> (ClusterSpec, Catalog) {
        let spec = ClusterSpec::builtin_default();
        let catalog = Catalog::build(&spec);
        (spec, catalog)
    }

    #[test]
    fn request_files_follow_kubeadm_names() {
        let (_, catalog) = default_catalog();
        let api = RequestFiles::of(catalog.get("apiserver@controlplane").unwrap()).unwrap();
        assert_eq!(api.csr, Path::new("pki/apiserver.csr"));
        assert_eq!(api.key, Path::new("pki/apiserver.key"));
        assert_eq!(api.cert, Path::new("pki/apiserver.crt"));
        let admin = RequestFiles::of(catalog.get("admin.conf").unwrap()).unwrap();
        assert_eq!(admin.csr, Path::new("admin.conf.csr"));
        assert_eq!(admin.key, Path::new("admin.conf.key"));
        assert_eq!(admin.cert, Path::new("admin.conf.crt"));
        assert!(RequestFiles::of(catalog.get("ca").unwrap()).is_none());
        assert!(RequestFiles::of(catalog.get("sa").unwrap()).is_none());
        let n = requestable(&catalog).count();
        assert_eq!(n, catalog.entries.len() - catalog.cas().count() - 1, "every leaf and kubeconfig, not CAs nor sa");
    }

    #[test]
    fn requests_carry_the_catalog_identity_and_verify() {
        let (spec, catalog) = default_catalog();
        let p = catalog.get("apiserver@controlplane").unwrap().cert().unwrap();
        let (csr, key) = request_for(p, &spec).unwrap();
        let r = CertificateRequest::from_pem(&csr).unwrap();
        assert!(r.signature_ok);
        assert!(!r.asks_ca);
        assert_eq!(r.cn, "kube-apiserver");
        assert_eq!(r.sans, p.sans);
        assert_eq!(r.ext_key_usage, [crate::x509::usage::ExtKeyUsage::ServerAuth]);
        let k = PrivateKey::from_pem(&key, "k".as_ref()).unwrap();
        assert_eq!(k.public_key_raw(), r.public_key_raw.as_slice());
        let kubelet = catalog.get("kubelet.conf@node01").unwrap().cert().unwrap();
        let r = CertificateRequest::from_pem(&request_for(kubelet, &spec).unwrap().0).unwrap();
        assert_eq!((r.cn.as_str(), r.orgs.as_slice()), ("system:node:node01", &["system:nodes".to_string()][..]));
    }

    #[test]
    fn identity_that_breaks_the_catalog_is_named() {
        let (spec, catalog) = default_catalog();
        let admin = catalog.get("admin.conf").unwrap();
        let mut p = admin.cert().unwrap().clone();
        p.subject.orgs = vec!["system:masters".into()];
        let r = CertificateRequest::from_pem(&request_for(&p, &spec).unwrap().0).unwrap();
        let problems = identity_problems(admin, admin.cert().unwrap(), &r);
        assert!(problems.iter().any(|p| p.contains("system:masters is only ever in super-admin.conf")), "{problems:?}");
        let sup = catalog.get("super-admin.conf").unwrap();
        let r = CertificateRequest::from_pem(&request_for(sup.cert().unwrap(), &spec).unwrap().0).unwrap();
        assert!(identity_problems(sup, sup.cert().unwrap(), &r).is_empty());
    }
}
