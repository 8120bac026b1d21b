//! The lifecycle of a tree: renew certificates, change SANs, add and remove nodes.
//!
//! Each command first builds a [`Change`] list (what it will do, as a diff of identities,
//! SANs, issuers and validity) without touching the disk; `--dry-run` prints it. Applying
//! backs up the previous files, writes atomically, refreshes node bundles and appends to the
//! issuance log. The tree as a whole is not verified again (at 5,000 nodes that is more than
//! the change itself): the command line does it when asked (`--verify`), or `kubepki verify`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::verify::{verify, Report, VerifyOptions};
use crate::disk::inventory::{Inventory, Problem};
use crate::disk::issuance::IssuanceRecord;
use crate::disk::store::{Batch, Mode};
use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, CertProfile, Entry, EntryId, Store};
use crate::model::spec::{ClusterSpec, KeyAlgorithm, San};
use crate::model::topology::Topology;
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::{Ca, PrivateKey};

/// A tree with its description, catalog and what is on disk.
pub struct Tree {
    /// The tree's root.
    pub root: PathBuf,
    /// The cluster.
    pub spec: ClusterSpec,
    /// Its catalog.
    pub catalog: Catalog,
    /// What is on disk, read when first asked for (see [`Tree::inventory`]).
    inventory: std::sync::OnceLock<Inventory>,
    /// The same without private keys (see [`Tree::certificates`]).
    certificates: std::sync::OnceLock<Inventory>,
    /// Whether the cluster was inferred from the tree (and so is inferred again after a change).
    pub inferred: bool,
}

impl Tree {
    /// Load a tree; the cluster comes from `spec` (a description) or is inferred.
    pub fn load(root: &Path, spec: Option<ClusterSpec>) -> Result<Tree> {
        if !root.is_dir() {
            return Err(Error::bad_file(root, "no such directory"));
        }
        let inferred = spec.is_none();
        let spec = match spec {
            Some(s) => s,
            None => crate::model::infer::cluster_of_tree(root)?,
        };
        let catalog = Catalog::build(&spec);
        Ok(Tree {
            root: root.to_path_buf(),
            spec,
            catalog,
            inventory: std::sync::OnceLock::new(),
            certificates: std::sync::OnceLock::new(),
            inferred,
        })
    }

    /// What is on disk for every entry, read (all of it, on all cores) the first time it is
    /// asked for: a command that needs only some files (a rotation's kubeconfigs) never reads
    /// the rest. Under the run's lock, the tree does not change meanwhile.
    pub fn inventory(&self) -> &Inventory {
        self.inventory.get_or_init(|| Inventory::load(&self.root, &self.catalog))
    }

    /// What is on disk without the private keys (each entry's key is `NotRead`), read when
    /// first asked for, or the whole inventory if that was read: what a change that makes new
    /// keys needs (certificates, kubeconfigs' servers and CA data, modes). A key that is kept
    /// is read by itself ([`existing_key`]).
    pub fn certificates(&self) -> &Inventory {
        match self.inventory.get() {
            Some(all) => all,
            None => self.certificates.get_or_init(|| Inventory::load_without_keys(&self.root, &self.catalog)),
        }
    }

    /// Verify the tree as `kubepki verify` does (load a tree again to verify it after a change).
    pub fn verify(&self, at: OffsetDateTime) -> Report {
        let topology = Topology::build(&self.spec, &self.catalog);
        verify(&self.spec, &self.catalog, &topology, self.inventory(), &VerifyOptions::at(at))
    }

    /// The entries a name designates: an id (`apiserver@cp1`) or a kubeadm name (`apiserver`,
    /// every control plane's). Unknown names are an error that lists the valid ones.
    pub fn select(&self, name: &str) -> Result<Vec<&Entry>> {
        // An id is one entry, found by the catalog's index (a rotation names thousands).
        if let Some(e) = self.catalog.get(name) {
            return Ok(vec![e]);
        }
        let found: Vec<&Entry> = self.catalog.entries.iter().filter(|e| e.name() == name).collect();
        if found.is_empty() {
            let mut names: Vec<&str> = self.catalog.entries.iter().map(|e| e.name()).collect();
            names.dedup();
            return Err(Error::Invalid(format!("'{name}' is not in the catalog; names are: {}", names.join(", "))));
        }
        Ok(found)
    }

    fn ca(&self, cache: &mut HashMap<String, Ca>, id: &str, now: OffsetDateTime) -> Result<()> {
        if !cache.contains_key(id) {
            cache.insert(id.to_string(), crate::disk::tree::load_ca(&self.catalog, &self.root, id, now)?);
        }
        Ok(())
    }
}

/// What a certificate is, for a before/after diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// SANs.
    pub sans: Vec<String>,
    /// NotBefore.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Key algorithm, and whether it is new.
    pub key: String,
    /// The issuer's public key (`sha256:` and the first 8 bytes of the SHA-256 of it): what
    /// tells an old CA from its replacement, which has the same name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_key: Option<String>,
}

/// A short fingerprint of a public key: `sha256:` and the first 8 bytes of its SHA-256, hex.
pub(crate) fn key_fingerprint(public_key_raw: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key_raw);
    let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Summary {
    pub(crate) fn of(c: &CertInfo, key: &str, issuer_key: Option<String>) -> Summary {
        Summary {
            issuer_key,
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            sans: c.sans.iter().map(|s| s.to_string()).collect(),
            not_before: c.not_before,
            not_after: c.not_after,
            key: key.to_string(),
        }
    }
}

/// One entry that a command changes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The catalog entry.
    pub entry: EntryId,
    /// The file that holds its certificate.
    pub file: PathBuf,
    /// Before.
    pub before: Option<Summary>,
    /// After.
    pub after: Summary,
}

/// What a command will do: the changes, and the bytes to write.
#[derive(Debug, Default)]
pub struct Plan {
    /// The changes, in catalog order.
    pub changes: Vec<Change>,
    /// Notes on entries: left alone, or handled differently, and why.
    pub notes: Vec<(EntryId, String)>,
    writes: Vec<(PathBuf, String, Mode)>,
    records: Vec<IssuanceRecord>,
    /// The CAs loaded so far, by id.
    cas: HashMap<String, Ca>,
    /// The CA data kubeconfigs trusting a CA get (by CA id), instead of its file on disk.
    ca_data: HashMap<String, String>,
    /// PEM appended after each certificate a CA signs (by CA id): a cross-signed CA
    /// certificate, during a rotation.
    chain: HashMap<String, String>,
    /// The certificates in each CA's file (by CA id), to name the key that signed what is
    /// replaced.
    ca_certs: HashMap<String, Vec<CertInfo>>,
    /// The description the change records in the tree, with its files (`san add` records the
    /// certificate's SANs).
    description: Option<ClusterSpec>,
}

/// A file to write: path relative to the tree, contents, mode.
pub(crate) type FileOut = (PathBuf, Vec<u8>, Mode);

/// A plan taken apart, to be written with more (a rotation's own files).
pub(crate) struct Parts {
    pub changes: Vec<Change>,
    pub notes: Vec<(EntryId, String)>,
    pub writes: Vec<FileOut>,
    pub records: Vec<IssuanceRecord>,
}

/// A signer given to a plan instead of the CA on disk (a rotation's new CA), with the CA data
/// kubeconfigs get and the chain shipped after each leaf.
pub(crate) struct Signer {
    pub ca: Ca,
    pub ca_data: String,
    pub chain: String,
}

/// The result of applying a plan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// What changed.
    pub changes: Vec<Change>,
    /// Notes on entries: left alone, or handled differently, and why.
    #[serde(serialize_with = "notes_json")]
    pub notes: Vec<(EntryId, String)>,
    /// Where the previous files were saved.
    pub backup: Option<PathBuf>,
    /// Copies refreshed in node bundles.
    pub bundle_files_written: usize,
    /// The static verify of the whole tree afterwards, when the command was asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Report>,
    /// What each node must receive and restart (see [`crate::operations::rollout`]).
    pub rollout: Vec<crate::operations::rollout::NodeRollout>,
}

impl Plan {
    /// The plan as parts: its changes and notes, the files to write (relative to the tree) and
    /// the records of what it signed.
    pub(crate) fn into_parts(self) -> Parts {
        let writes = self.writes.into_iter().map(|(p, t, m)| (p, t.into_bytes(), m)).collect();
        Parts { changes: self.changes, notes: self.notes, writes, records: self.records }
    }

    /// Write the files, the node bundles' copies of them and the log's lines as one journaled
    /// batch (a kill leaves the tree as before, or the journal the next run completes; the
    /// replaced files are saved first in the run's backup).
    pub fn apply(self, tree: &Tree, command: &str) -> Result<Applied> {
        crate::disk::tree::refuse_linked_dirs(&tree.root)?;
        crate::disk::issuance::check_appendable(&tree.root)?;
        let mut writes: Vec<FileOut> = self.writes.into_iter().map(|(p, t, m)| (p, t.into_bytes(), m)).collect();
        // The description, when the change records one, goes with the files.
        if let Some(spec) = &self.description {
            let text = crate::model::infer::describe(spec);
            writes.push((PathBuf::from(crate::model::infer::RECORDED), text.into_bytes(), Mode::Public));
        }
        let (batch, bundle_files_written, _) = one_batch(tree, writes, self.records, command)?;
        batch.commit_in(&tree.root)?;
        let backup = crate::disk::backup::current_dir(&tree.root);
        let rollout = crate::operations::rollout::rollout(&tree.spec, &crate::disk::backup::changed(&tree.root));
        Ok(Applied { rollout, changes: self.changes, notes: self.notes, backup, bundle_files_written, verify: None })
    }

    /// The certificates in the file of CA `id` (all of a bundle), read once.
    fn ca_certs(&mut self, tree: &Tree, id: &str) -> &[CertInfo] {
        self.ca_certs.entry(id.to_string()).or_insert_with(|| {
            let Some(file) = tree.catalog.get(id).and_then(|e| e.files().first().map(|(f, _)| tree.root.join(f)))
            else {
                return Vec::new();
            };
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            pem::parse_many(&text)
                .unwrap_or_default()
                .iter()
                .filter_map(|b| CertInfo::from_der(b.contents()).ok())
                .collect()
        })
    }

    /// Sign `profile` with its CA for `key`, and queue the files of `entry`.
    fn issue(
        &mut self,
        tree: &Tree,
        entry: &Entry,
        profile: &CertProfile,
        key: Key,
        before: Option<&CertInfo>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.issue_all(tree, vec![Job { entry, profile: profile.clone(), key, before }], now)
    }

    /// Issue every job: their CAs loaded first, then signed on all cores, then queued in
    /// the jobs' order.
    fn issue_all(&mut self, tree: &Tree, jobs: Vec<Job<'_>>, now: OffsetDateTime) -> Result<()> {
        for job in &jobs {
            let Some(leaf) = job.entry.leaf() else {
                return Err(Error::Invalid(format!("{} is a CA", job.entry.id)));
            };
            tree.ca(&mut self.cas, &leaf.issuer, now)?;
            self.ca_certs(tree, &leaf.issuer);
        }
        let this = &*self;
        let issued = jobs.into_par_iter().map(|job| this.sign(tree, job, now)).collect::<Result<Vec<Issued>>>()?;
        for i in issued {
            self.writes.extend(i.writes);
            self.records.push(i.record);
            self.changes.push(i.change);
        }
        Ok(())
    }

    /// Sign one job with its CA (loaded by [`Self::issue_all`]): its files, its log record
    /// and its change.
    fn sign(&self, tree: &Tree, job: Job<'_>, now: OffsetDateTime) -> Result<Issued> {
        let Job { entry, profile, key, before } = job;
        let Some(leaf) = entry.leaf() else { return Err(Error::Invalid(format!("{} is a CA", entry.id))) };
        let ca_id = &leaf.issuer;
        let ca = &self.cas[ca_id.as_str()];
        let (key, key_word) = match key {
            Key::New(alg) => (PrivateKey::generate(alg)?, "new"),
            Key::Reuse(k) => (k, "kept"),
        };
        let mut issued = ca.sign_key(&profile, &key, now)?;
        let info = CertInfo::from_der(&issued.der).map_err(|e| Error::crypto("reading back", e))?;
        if let Some(chain) = self.chain.get(ca_id.as_str()) {
            issued.pem.push_str(chain);
        }
        // A kubeconfig embeds its CA's file as it is (a bundle during a rotation) and keeps the
        // server it dials; a leaf in files keeps its key file unless the key is new.
        let (ca_pem, server) = match &leaf.store {
            Store::Kubeconfig { ca: trust, .. } => {
                let ca_pem = self.ca_data.get(trust.as_str()).cloned().unwrap_or_else(|| {
                    tree.certificates()
                        .get(trust)
                        .and_then(|l| l.cert_pem.clone())
                        .or_else(|| self.cas.get(trust.as_str()).map(|c| c.cert_pem.clone()))
                        .unwrap_or_default()
                });
                let server = tree
                    .certificates()
                    .get(&entry.id)
                    .and_then(|l| l.kubeconfig.as_ref().map(|k| k.server.clone()))
                    .filter(|s| !s.is_empty());
                (ca_pem, server)
            }
            Store::Files { .. } => (String::new(), None),
        };
        let key_pem = (key_word == "new" || matches!(leaf.store, Store::Kubeconfig { .. })).then(|| key.to_pem());
        let writes = crate::disk::tree::leaf_files(leaf, &issued.pem, key_pem, &ca_pem, server.as_deref());
        let file = writes[0].0.clone();
        let record = IssuanceRecord::new(&info, Some(&entry.id), "", now);
        let before = before.map(|b| {
            // By key identifier where both say one (as kubeadm's and kubepki's do), else by
            // checking the signature: what is named here is shown, not trusted.
            let signed = |c: &&CertInfo| match (&b.authority_key_id, &c.subject_key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => b.is_signed_by(c),
            };
            let signer = self.ca_certs.get(ca_id.as_str()).and_then(|certs| certs.iter().find(signed));
            Summary::of(b, &b.key.to_string(), signer.map(|c| key_fingerprint(&c.public_key_raw)))
        });
        let change = Change {
            entry: entry.id.clone(),
            file,
            before,
            after: Summary::of(
                &info,
                &format!("{} {}", key_word, info.key),
                Some(key_fingerprint(&ca.info.public_key_raw)),
            ),
        };
        Ok(Issued { writes, record, change })
    }
}

/// One certificate to issue: its entry, its profile, its key and the certificate it replaces.
struct Job<'t> {
    entry: &'t Entry,
    profile: CertProfile,
    key: Key,
    before: Option<&'t CertInfo>,
}

/// What issuing one job gives, queued in the plan in the jobs' order.
struct Issued {
    writes: Vec<(PathBuf, String, Mode)>,
    record: IssuanceRecord,
    change: Change,
}

/// One journaled batch of these files (relative to the tree), the copies in node bundles they
/// imply, and the issuance log's lines for `records` (logged as `command`); returns it with
/// how many copies it holds and every file it writes (relative to the tree).
pub(crate) fn one_batch(
    tree: &Tree,
    writes: Vec<(PathBuf, Vec<u8>, Mode)>,
    records: Vec<IssuanceRecord>,
    command: &str,
) -> Result<(Batch, usize, Vec<PathBuf>)> {
    let fresh: HashMap<&Path, &[u8]> = writes.iter().map(|(p, b, _)| (p.as_path(), b.as_slice())).collect();
    let copies = crate::disk::tree::bundle_copies(&tree.spec, &tree.catalog, &tree.root, &fresh);
    let mut batch = Batch::new();
    let n = copies.len();
    let mut paths = Vec::with_capacity(writes.len() + n);
    for (path, bytes, mode) in writes.into_iter().chain(copies) {
        batch.add(tree.root.join(&path), bytes, mode);
        paths.push(path);
    }
    let records: Vec<IssuanceRecord> = records
        .into_iter()
        .map(|mut r| {
            r.command = command.to_string();
            r
        })
        .collect();
    if !records.is_empty() {
        batch.append_after(crate::disk::issuance::log_path(&tree.root), crate::disk::issuance::lines(&records)?);
    }
    Ok((batch, n, paths))
}

/// Which key a reissued certificate gets.
enum Key {
    New(KeyAlgorithm),
    Reuse(PrivateKey),
}

/// The existing key of an entry, which must match its certificate.
fn existing_key(tree: &Tree, e: &Entry, cert: &CertInfo) -> Result<PrivateKey> {
    let read;
    let loaded = match tree.inventory.get() {
        Some(all) => all.get(&e.id).expect("loaded"),
        None => {
            read = crate::disk::inventory::load_one(&tree.root, e);
            &read
        }
    };
    let facts = loaded.key.as_ref().map_err(|p| problem_error(e, p))?;
    let key = PrivateKey::from_pem(facts.secret_pem(), Path::new(e.id.as_str()))?;
    if !key.matches(cert) {
        let file = e.files().last().map(|(f, _)| f.to_path_buf()).unwrap_or_default();
        return Err(Error::bad_file(
            tree.root.join(file),
            "the key does not match its certificate: renew without --reuse-key",
        ));
    }
    Ok(key)
}

fn problem_error(e: &Entry, p: &Problem) -> Error {
    match p {
        Problem::Missing(path) => {
            Error::bad_file(path, format!("missing, so {} cannot be renewed: run kubepki init to create it", e.id))
        }
        Problem::Unreadable(path, why) => Error::bad_file(path, why.clone()),
        Problem::External(path, why) => Error::bad_file(path, why.clone()),
        Problem::NotRead(path) => Error::bad_file(path, "not read (an inventory without keys)"),
    }
}

/// The profile a renewed certificate gets: the catalog's (the description is the tree's
/// truth: identity, usages, SANs), with every SAN the certificate already had kept in the
/// order it had them (a renewal never drops an address a client may dial).
fn profile_from(e: &Entry, cert: &CertInfo) -> CertProfile {
    let mut p = e.cert().expect("a certificate entry").clone();
    let mut sans = cert.sans.clone();
    sans.extend(p.sans.iter().filter(|s| !cert.sans.contains(s)).cloned());
    p.sans = sans;
    p
}

fn key_algorithm_of(cert: &CertInfo, fallback: KeyAlgorithm) -> KeyAlgorithm {
    cert.key.algorithm().unwrap_or(fallback)
}

/// Options of `renew`.
#[derive(Clone, Debug, Default)]
pub struct RenewOptions {
    /// Keep each certificate's key instead of making a new one.
    pub reuse_key: bool,
    /// Only the certificates of these nodes (empty: every one named).
    pub nodes: Vec<String>,
    /// Only the certificates in these states, as `check` says them (empty: every one named):
    /// `renew --all --status expired,expiring` renews what is due.
    pub statuses: Vec<crate::audit::check::CheckStatus>,
    /// The window that makes a certificate `expiring`.
    pub warn_within: time::Duration,
}

impl RenewOptions {
    /// Whether `e` is among what the options select.
    fn selects(&self, tree: &Tree, e: &Entry, now: OffsetDateTime) -> bool {
        use crate::audit::check::CheckStatus;
        let node = || e.id.node().is_some_and(|n| self.nodes.iter().any(|m| m == n));
        let state = || match &tree.certificates().get(&e.id).expect("loaded").cert {
            Ok(c) => CheckStatus::of(c, now, self.warn_within),
            Err(Problem::Missing(_)) => CheckStatus::Missing,
            Err(Problem::External(..)) => CheckStatus::Unchecked,
            Err(_) => CheckStatus::Unreadable,
        };
        (self.nodes.is_empty() || node()) && (self.statuses.is_empty() || self.statuses.contains(&state()))
    }
}

/// Plan the renewal of these entries (or every leaf and kubeconfig with `all`).
pub fn plan_renew(tree: &Tree, names: &[String], all: bool, opts: &RenewOptions, now: OffsetDateTime) -> Result<Plan> {
    renew_into(Plan::default(), tree, names, all, opts, now)
}

/// Plan the renewal of these entries signed by `signer` rather than by the CA on disk.
pub(crate) fn plan_renew_signed_by(tree: &Tree, names: &[String], signer: Signer, now: OffsetDateTime) -> Result<Plan> {
    let mut plan = Plan::default();
    plan.ca_data.insert(signer.ca.id.clone(), signer.ca_data);
    plan.chain.insert(signer.ca.id.clone(), signer.chain);
    plan.cas.insert(signer.ca.id.clone(), signer.ca);
    renew_into(plan, tree, names, false, &RenewOptions::default(), now)
}

fn renew_into(
    mut plan: Plan,
    tree: &Tree,
    names: &[String],
    all: bool,
    opts: &RenewOptions,
    now: OffsetDateTime,
) -> Result<Plan> {
    let mut targets: Vec<&Entry> = Vec::new();
    if all {
        targets.extend(tree.catalog.entries.iter().filter(|e| e.cert().is_some_and(|p| !p.is_ca)));
    }
    // --all renews what the tree's CAs sign; the leaves of a CA managed outside the tree (its
    // key is not here) are left, with the way to renew them. Named, they are refused (saying so).
    if all {
        let external: Vec<&str> = tree
            .catalog
            .cas()
            .filter_map(|ca| {
                let (cert, key) = ca.cert_and_key_files()?;
                (tree.root.join(cert).is_file() && !tree.root.join(key).exists()).then_some(ca.id.as_str())
            })
            .collect();
        let dir = tree.root.display().to_string();
        for ca in external {
            let signs = |e: &Entry| e.issuer().is_some_and(|i| i.as_str() == ca);
            let left: Vec<String> = targets.iter().filter(|e| signs(e)).map(|e| e.id.to_string()).collect();
            targets.retain(|e| !signs(e));
            if let Some(first) = left.first() {
                let steps = crate::operations::external::renewal_steps(&dir, ca);
                plan.notes.push((
                    first.parse().expect("a catalog id"),
                    format!(
                        "{} leaves of {ca}, managed outside the tree, are not renewed here ({}): {steps}",
                        left.len(),
                        left.join(", ")
                    ),
                ));
            }
        }
    }
    let mut taken: std::collections::HashSet<&str> = targets.iter().map(|e| e.id.as_str()).collect();
    for n in names {
        for e in tree.select(n)? {
            match e.cert() {
                Some(p) if p.is_ca => {
                    return Err(Error::Invalid(format!(
                        "{} is a CA: CAs are rotated, not renewed (kubepki rotate-ca {} start)",
                        e.id, e.id
                    )))
                }
                None => {
                    return Err(Error::Invalid(format!(
                        "{} is a key pair, not a certificate (kubepki rotate-ca sa start)",
                        e.id
                    )))
                }
                Some(_) if !taken.insert(e.id.as_str()) => {}
                Some(_) => targets.push(e),
            }
        }
    }
    if targets.is_empty() {
        return Err(Error::Invalid("nothing to renew: name certificates (see kubepki plan) or use --all".into()));
    }
    // --node and --status narrow what was named; nothing left is no error (nothing is due).
    targets.retain(|e| opts.selects(tree, e, now));
    let mut jobs = Vec::with_capacity(targets.len());
    for e in targets {
        let loaded = tree.certificates().get(&e.id).expect("loaded");
        let cert = match &loaded.cert {
            Ok(c) => c,
            Err(Problem::External(path, _)) => {
                // kubeadm's kubelet.conf points at the kubelet's rotated certificate; when that
                // has expired the kubelet cannot rotate it. Embed a fresh credential, as
                // kubeadm's own kubelet.conf does before the first rotation.
                let profile = e.cert().expect("a certificate").clone();
                jobs.push(Job { entry: e, profile, key: Key::New(tree.spec.key_algorithm), before: None });
                plan.notes.push((e.id.clone(), format!("referred to {}: now embeds a new credential", path.display())));
                continue;
            }
            Err(Problem::Missing(_))
                if e.kubeadm_instead.is_some() && !tree.root.join(crate::model::vocabulary::layout::NODES).is_dir() =>
            {
                plan.notes.push((e.id.clone(), "not in this tree (kubeadm does not make it)".into()));
                continue;
            }
            Err(Problem::Unreadable(path, why)) if !opts.reuse_key => {
                // Nothing of it can be kept: the catalog says what it is; a new key.
                let profile = e.cert().expect("a certificate").clone();
                jobs.push(Job { entry: e, profile, key: Key::New(tree.spec.key_algorithm), before: None });
                plan.notes.push((e.id.clone(), format!("{} was unreadable ({why}): issued anew", path.display())));
                continue;
            }
            Err(p) => return Err(problem_error(e, p)),
        };
        let profile = profile_from(e, cert);
        let key = if opts.reuse_key {
            Key::Reuse(existing_key(tree, e, cert)?)
        } else {
            Key::New(key_algorithm_of(cert, tree.spec.key_algorithm))
        };
        jobs.push(Job { entry: e, profile, key, before: Some(cert) });
    }
    plan.issue_all(tree, jobs, now)?;
    Ok(plan)
}

/// Plan adding (or removing) SANs on the certificates a name designates; the key is kept.
///
/// Only a server certificate of a node has SANs of its own (the description's `certSANs` rule),
/// and what is added is held to the rules of a node's own addresses and names and may not
/// name another party of the cluster (the rule `approve` denies by). Only SANs that are the
/// certificate's own can be removed: those `san add` recorded, or ones the description no
/// longer gives; a built-in one (the description's: node addresses and names, the service IP
/// and names, the endpoint) only with `force`, which drops it from the certificate alone and
/// says so. Every refusal comes before anything is written.
pub fn plan_san(
    tree: &Tree,
    name: &str,
    add: bool,
    addresses: &[String],
    force: bool,
    now: OffsetDateTime,
) -> Result<Plan> {
    let verb = if add { "san add" } else { "san remove" };
    let sans: Vec<San> = addresses
        .iter()
        .map(|a| San::parse(a).map_err(|p| Error::Invalid(format!("address {p}"))))
        .collect::<Result<_>>()?;
    if sans.is_empty() {
        return Err(Error::Invalid("name at least one address (an IP or a DNS name)".into()));
    }
    let topology = Topology::build(&tree.spec, &tree.catalog);
    let mut plan = Plan::default();
    // Named by kubeadm's name alone (`apiserver`, not `apiserver@cp2`), the change is every
    // control plane's, today's and those `node add` makes later: it is the description's own
    // field for that name (apiServerCertSANs, etcd's), not each certificate's.
    let description = plan.description.insert(tree.spec.clone());
    let name_level: Option<Vec<San>> =
        if name.contains('@') { None } else { name_level_sans(description, name).map(|v| v.clone()) };
    let by_name = name_level.is_some();
    for e in tree.select(name)? {
        if !matches!(e.leaf().map(|l| &l.store), Some(Store::Files { .. })) {
            let why = "only leaf certificates in files have";
            return Err(Error::Invalid(format!("{} has no SANs to change ({why})", e.id)));
        }
        crate::model::spec::check_cert_sans_entry(e.id.as_str(), &tree.spec.nodes)
            .map_err(|p| Error::Invalid(format!("{verb}: {p}; nothing written")))?;
        let loaded = tree.certificates().get(&e.id).expect("loaded");
        let cert = loaded.cert.as_ref().map_err(|pr| problem_error(e, pr))?;
        let mut built_in = tree.catalog.built_in_sans(&tree.spec, &e.id);
        if add {
            check_added(tree, e, &built_in, &sans)?;
        }
        if let Some(field) = &name_level {
            // What an earlier `san add NAME` put in the description's field may go the same way.
            built_in.retain(|s| !field.contains(s));
        }
        let mut profile = profile_from(e, cert);
        for s in &sans {
            let has = cert.sans.contains(s);
            if add && has {
                return Err(Error::Invalid(format!("{} already has {s}", e.id)));
            }
            if !add && !has {
                return Err(Error::Invalid(format!("{} has no {s} (it has {})", e.id, join(&cert.sans))));
            }
            if !add {
                if let Some(note) = check_removed(&topology, e, &built_in, s, force)? {
                    plan.notes.push((e.id.clone(), note));
                }
            }
        }
        if add {
            profile.sans.extend(sans.iter().filter(|s| !profile.sans.contains(s)).cloned().collect::<Vec<_>>());
        } else {
            profile.sans.retain(|s| !sans.contains(s));
        }
        // The change is the description's too, so that init, renew and node add keep it: by
        // kubeadm's name, in that name's field; by id, in the certificate's own certSANs (what
        // the catalog does not give it already).
        let description = plan.description.as_mut().expect("set above");
        let recorded = description.cert_sans.entry(e.id.to_string()).or_default();
        if add && !by_name {
            let catalog_sans = &e.cert().expect("a certificate").sans;
            for s in sans.iter().filter(|s| !catalog_sans.contains(s)) {
                if !recorded.contains(s) {
                    recorded.push(s.clone());
                }
            }
        } else {
            // Removed, or now the name's: not this certificate's own any more.
            recorded.retain(|s| !sans.contains(s));
        }
        if recorded.is_empty() {
            description.cert_sans.remove(e.id.as_str());
        }
        if let Some(field) = name_level_sans(description, name).filter(|_| by_name) {
            field.retain(|s| !sans.contains(s));
            if add {
                for s in &sans {
                    if !field.contains(s) {
                        field.push(s.clone());
                    }
                }
            }
        }
        let key = existing_key(tree, e, cert)?;
        plan.issue(tree, e, &profile, Key::Reuse(key), Some(cert), now)?;
    }
    Ok(plan)
}

/// The description's SANs for every certificate of a kubeadm name: `apiServerCertSANs`,
/// `etcdServerCertSANs`, `etcdPeerCertSANs` (none for other names).
fn name_level_sans<'s>(spec: &'s mut ClusterSpec, name: &str) -> Option<&'s mut Vec<San>> {
    use crate::model::vocabulary::entry;
    match name {
        entry::APISERVER => Some(&mut spec.api_server_cert_sans),
        entry::ETCD_SERVER => Some(&mut spec.etcd_server_cert_sans),
        entry::ETCD_PEER => Some(&mut spec.etcd_peer_cert_sans),
        _ => None,
    }
}

/// Whether `san remove` may take `s` from `e`: a SAN that is not built in (recorded by
/// `san add`, or no longer given) unless a link dials it; a built-in one only with `force`,
/// with the note that says so.
fn check_removed(topology: &Topology, e: &Entry, built_in: &[San], s: &San, force: bool) -> Result<Option<String>> {
    let dialed = topology.links.iter().find(|l| l.server_cert.as_deref() == Some(&e.id) && &l.dial.host == s);
    let breaks = dialed.map(|l| format!("{s} is the address {} dials: removing it breaks link {}", l.client, l.id));
    match (built_in.contains(s), breaks, force) {
        (true, breaks, false) => {
            let breaks = breaks.map(|b| format!("; {b}")).unwrap_or_default();
            Err(Error::Invalid(format!(
                "{s} is built in: the description gives it to {} (a node's name or address, the kubernetes \
                 service's names or IP, the endpoint, apiServerCertSANs, etcd's certSANs){breaks}. Only SANs \
                 added with san add can be removed; change the description instead (then kubepki init \
                 --config FILE --update-description), or use --force to drop it from the certificate alone \
                 (verify then reports it, and renew puts it back)",
                e.id
            )))
        }
        (false, Some(b), false) => Err(Error::Invalid(format!("{b}; use --force to remove it anyway"))),
        (true, _, true) => Ok(Some(format!(
            "{s} is built in: dropped from the certificate only, the description still gives it (verify \
             reports it; renew and any later san command put it back)"
        ))),
        _ => Ok(None),
    }
}

/// SANs `san add` may give `e`: each held to the rules of a node's own addresses and names,
/// none naming another party of the cluster (by the rule `approve` denies by).
fn check_added(tree: &Tree, e: &Entry, built_in: &[San], sans: &[San]) -> Result<()> {
    for s in sans {
        crate::model::spec::check_own_san(e.name(), s)
            .map_err(|p| Error::Invalid(format!("san add {}: {s}: {p}; nothing written", e.id)))?;
    }
    let others = tree.catalog.sans_of_others(&e.id, built_in, sans);
    if others.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = others.iter().map(|(s, id)| format!("{s} (of {id})")).collect();
    Err(Error::Invalid(format!(
        "san add {}: {} names another party of the cluster: its key could then answer as that \
         party (approve denies such a request: ServingSANsOfOthers); nothing written",
        e.id,
        list.join(", ")
    )))
}

/// The cluster with node `n` added (`node add`), checked as a node of a description is
/// ([`ClusterSpec::with_node`]); and its name, addresses and DNS names, which its kubelet's
/// serving certificate carries, by the rule that keeps each party's names its own
/// ([`Catalog::sans_of_others`]): not the `kubernetes` service's IP or names, the endpoint,
/// etcd's `localhost`. Errors name the argument (`node add: --ip: ...`).
pub fn spec_with_node(tree: &Tree, n: &crate::model::spec::NewNode) -> Result<ClusterSpec> {
    let spec = tree.spec.with_node(n)?;
    let node = spec.nodes.iter().find(|x| x.name == n.name).expect("the node was added");
    let own = EntryId::of_node(crate::model::vocabulary::entry::KUBELET_SERVING, &node.name);
    let named = std::iter::once((San::Dns(node.name.clone()), "NAME"))
        .chain(node.addresses.iter().map(|ip| (San::Ip(*ip), "--ip")))
        .chain(node.dns_names.iter().map(|d| (San::Dns(d.clone()), "--dns")));
    for (san, field) in named {
        if let Some((s, other)) = tree.catalog.sans_of_others(&own, &[], [&san]).into_iter().next() {
            return Err(Error::Spec {
                file: PathBuf::from("node add"),
                field: field.into(),
                problem: format!(
                    "{s} is {other}'s (another party of the cluster): the node's kubelet serving certificate would name it"
                ),
            });
        }
    }
    Ok(spec)
}

fn join(sans: &[San]) -> String {
    sans.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

/// Notes as JSON: one `{"entry": ..., "note": ...}` each.
pub fn notes_json<S: serde::Serializer>(notes: &[(EntryId, String)], s: S) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Note<'a> {
        entry: &'a EntryId,
        note: &'a str,
    }
    s.collect_seq(notes.iter().map(|(entry, note)| Note { entry, note }))
}

/// The entries a node adds to the catalog (what `node add` issues).
pub fn node_entries(spec: &ClusterSpec, name: &str) -> Vec<EntryId> {
    Catalog::build(spec).entries.into_iter().filter(|e| e.node() == Some(name)).map(|e| e.id).collect()
}

/// What `node remove` retires.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// The node.
    pub node: String,
    /// Where its files were saved (none without a run, or if it had no files).
    pub backup: Option<PathBuf>,
    /// Its certificates, which stay valid until they expire (Kubernetes has no revocation).
    pub still_valid: Vec<StillValid>,
    /// The static verify of the tree without the node, when the command was asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Report>,
    /// What the other nodes must receive and restart (none: the node's files just go).
    pub rollout: Vec<crate::operations::rollout::NodeRollout>,
    /// What retiring a control plane leaves to do: the signing keys its bundle held, to rotate
    /// if its machine is no longer trusted, and its etcd member, to remove from etcd.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cautions: Vec<String>,
}

/// A certificate of a retired node, valid until it expires.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StillValid {
    /// The catalog entry.
    pub entry: EntryId,
    /// Its serial, hex.
    pub serial: String,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The node `name` of the tree, if [`node_remove`] may retire it: one of its nodes, and not the
/// primary control plane.
pub fn removable_node<'t>(tree: &'t Tree, name: &str) -> Result<&'t crate::model::spec::Node> {
    let node = tree.spec.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
        Error::Invalid(format!(
            "no node '{name}'; nodes are: {}",
            tree.spec.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    if node.name == tree.spec.primary().name {
        return Err(Error::Invalid(format!(
            "'{name}' is the primary control plane: the top of the tree is its /etc/kubernetes and holds the shared files"
        )));
    }
    Ok(node)
}

/// Retire a node: its bundle moves to the backup directory; the cluster without it is verified.
pub fn node_remove(tree: &Tree, name: &str, now: OffsetDateTime) -> Result<Removed> {
    let node = removable_node(tree, name)?;
    let still_valid = tree
        .catalog
        .entries
        .iter()
        .filter(|e| e.node() == Some(name))
        .filter_map(|e| {
            let c = tree.certificates().get(&e.id)?.cert.as_ref().ok()?;
            (c.not_after > now).then(|| StillValid {
                entry: e.id.clone(),
                serial: c.serial.clone(),
                not_after: c.not_after,
            })
        })
        .collect();
    // The node's files are removed in one journaled batch; the store saves them first in the
    // backup of the run under way.
    let dir = tree.root.join(crate::model::catalog::bundle_root(node));
    let files = files_under(&dir)?;
    let mut spec = tree.spec.clone();
    spec.nodes.retain(|n| n.name != name);
    let mut batch = Batch::new();
    files.iter().for_each(|f| batch.remove(f.clone()));
    // The description without the node goes with its files.
    batch.add(tree.root.join(crate::model::infer::RECORDED), crate::model::infer::describe(&spec), Mode::Public);
    batch.commit_in(&tree.root)?;
    for f in &files {
        crate::disk::backup::remove_empty_parents(&tree.root, f);
    }
    let backup = crate::disk::backup::current_dir(&tree.root).map(|b| b.join(crate::model::catalog::bundle_root(node)));
    let rest = Tree::load(&tree.root, Some(spec))?;
    let gone = Path::new("nodes").join(name);
    let others: Vec<PathBuf> =
        crate::disk::backup::changed(&tree.root).into_iter().filter(|p| !p.starts_with(&gone)).collect();
    let rollout = crate::operations::rollout::rollout(&rest.spec, &others);
    let cautions = control_plane_cautions(tree, name, &dir, &files);
    Ok(Removed { node: name.into(), backup, still_valid, verify: None, rollout, cautions })
}

/// What retiring the node `name` (its bundle at `dir` held `files`) leaves to the operator: the
/// private keys of the CAs and of the service-account key its bundle held (a control plane's),
/// and its etcd member. Deleting the Node object revokes none of them: etcd accepts its
/// etcd-server and etcd-peer certificates as clients until they expire or etcd-ca is rotated.
fn control_plane_cautions(tree: &Tree, name: &str, dir: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    let held: Vec<&str> = tree
        .catalog
        .entries
        .iter()
        .filter_map(|e| Some((e.id.as_str(), e.signing_key()?)))
        .filter(|(_, key)| files.contains(&dir.join(crate::model::vocabulary::layout::ETC_KUBERNETES).join(key)))
        .map(|(id, _)| id)
        .collect();
    if !held.is_empty() {
        out.push(format!(
            "{name} held the private keys of {}: if its machine is no longer trusted, rotate each \
             (kubepki rotate-ca {} start, then reissue and finish){}",
            held.join(", "),
            held[0],
            if held.len() > 1 { format!("; likewise {}", held[1..].join(", ")) } else { String::new() }
        ));
    }
    let etcd = |id: &str| tree.catalog.get(&format!("{id}@{name}")).is_some();
    if etcd(crate::model::vocabulary::entry::ETCD_SERVER) {
        out.push(format!(
            "{name}'s etcd member stays in the etcd cluster until it is removed: on a remaining control plane, \
             etcdctl member list, then etcdctl member remove <its ID> (a member that never comes back costs quorum); \
             etcd accepts its etcd-server and etcd-peer certificates as clients until they expire or etcd-ca is rotated"
        ));
    }
    out
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&d, "read directory", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&d, "read directory", e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
