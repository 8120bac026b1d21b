//! `kubepki init`: make every file of the catalog that is missing, keep every existing file
//! that is right, and refuse to replace anything else unless forced.
//!
//! The run first finishes a batch that a killed run left half renamed, then surveys the whole
//! tree (on all cores) and decides; only then does it write. It makes the CAs and the
//! service-account key, then the shared certificates and kubeconfigs, then the nodes: each
//! node's certificates and kubeconfigs together with the copies of shared files its bundle
//! needs, on all cores. Each node's files are written to temporaries by the thread that made
//! them ([`store::stage`]) and handed to one writer thread that makes them durable and puts
//! them in place in journaled groups ([`Committer`]) while the next nodes are being made; a
//! node's contents are dropped once staged, so memory does not grow with the cluster. A
//! killed run can simply be run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};

use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::conformance::deviations;
use crate::disk::issuance::{self, IssuanceRecord};
use crate::disk::store::{self, Committer, LinkGuard, Mode, Staged};
use crate::error::{Error, Result};
use crate::model::catalog::{Audience, Bundles, Catalog, Entry, EntryId, EntryKind, Leaf, Store};
use crate::model::spec::{ClusterSpec, Node};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::{Ca, PrivateKey};
use crate::x509::kubeconfig::{self};

/// The most files the writer lets wait while the makers keep it busy: a group costs a sync of
/// the filesystem and one of the journal, so not too few. Whenever the makers leave it
/// waiting, it commits what it has (from [`store::BULK_FILES`]): measured at 1,000 workers,
/// committing only by 1,024 left ~1,000 files and their sync for after the last node was
/// made; committing while waiting made init 23% faster (median of 10).
const GROUP_FILES: usize = 1024;

/// The command named in the issuance log.
const COMMAND: &str = "init";

/// How many nodes' staged files may wait for the writer: bounds the temporaries on disk (and
/// their names in memory) when the disk is slower than the crypto.
const QUEUE_NODES: usize = 256;

/// What `init` may do.
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// Replace leaves, key pairs and kubeconfigs that are present but wrong (old files are
    /// backed up). Never a CA: see `replace_ca`.
    pub force: bool,
    /// Make these CAs anew (catalog ids), whatever is there, and everything they sign: every
    /// node must then receive the new trust.
    pub replace_ca: Vec<String>,
    /// The command logged for what is signed (`node add`); `None`: `init`.
    pub command: Option<&'static str>,
    /// The description was changed by this run (`--update-description`): leaves that are
    /// sound but no longer match it (SANs, identity, a kubeconfig's server) are reissued,
    /// and nothing else that is wrong.
    pub description_changed: bool,
}

/// What happened to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// It was missing and has been made.
    Created,
    /// It was present and right, and was kept.
    Kept,
    /// It was present but wrong, and has been replaced (`--force`).
    Replaced {
        /// Why it was wrong.
        reason: String,
    },
}

/// The outcome of one entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The catalog id.
    pub id: EntryId,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
}

/// What `init` did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// The tree.
    pub dir: PathBuf,
    /// One outcome per catalog entry, in catalog order.
    pub entries: Vec<Outcome>,
    /// Files written into node bundles (copies of shared files).
    pub bundle_files_written: usize,
    /// Where replaced files were saved, if any were.
    pub backup: Option<PathBuf>,
    /// The CAs made anew as asked (`--replace-ca`): every node must receive the new trust.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced_cas: Vec<String>,
    /// What each node must receive and restart (see [`crate::operations::rollout`]), when a run is under
    /// way (the CLI's).
    pub rollout: Vec<crate::operations::rollout::NodeRollout>,
}

/// The phases of a run that report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitPhase {
    /// Reading and checking what is already in the tree: one step per catalog entry.
    Survey,
    /// Making and writing what is missing: one step per certificate or key pair made.
    Generate,
}

/// Where `init` reports how far it has got: a progress bar, a log, or nothing ([`Silent`]).
/// Called from many threads at once.
pub trait Progress: Sync {
    /// A phase begins, with `total` steps.
    fn start(&self, phase: InitPhase, total: u64);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: InitPhase, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What is on disk for one entry.
#[derive(Clone)]
enum Found {
    Missing,
    Good,
    Bad(String),
    /// Half of a leaf is there (a key without its certificate, or the other way round): it
    /// is made anew without `--force`, and the half is backed up first.
    Partial(String),
    /// A sound leaf (its key, its CA, its dates are right) that does not match the
    /// description: made anew when the description was just changed, else refused like `Bad`.
    Stale(String),
}

/// A file to write: path relative to the tree, contents, mode.
type Out = (PathBuf, Vec<u8>, Mode);

/// What is made together: files, and the issuance log's records of the certificates in them
/// (appended once the files are in place).
#[derive(Default)]
struct Unit {
    files: Vec<Out>,
    issued: Vec<IssuanceRecord>,
}

impl Unit {
    fn add(&mut self, (files, issued): (Vec<Out>, Option<IssuanceRecord>)) {
        self.files.extend(files);
        self.issued.extend(issued);
    }

    /// Write the files to their temporaries (where they were made, on the maker's core) for
    /// the writer to commit; their contents are not held any longer.
    fn stage(self, root: &Path, guard: &LinkGuard) -> Result<StagedUnit> {
        let files = self.files.iter().map(|(path, bytes, mode)| (root.join(path), &bytes[..], *mode));
        Ok(StagedUnit { files: store::stage(files, guard)?, issued: self.issued })
    }
}

/// What the writer is handed: a unit's staged files and its records.
struct StagedUnit {
    files: Vec<Staged>,
    issued: Vec<IssuanceRecord>,
}

/// Generate the tree at `root`.
pub fn init(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    opts: &InitOptions,
    now: OffsetDateTime,
) -> Result<InitReport> {
    init_with_progress(spec, catalog, root, opts, now, &Silent)
}

/// [`init`], reporting progress. A run that fails leaves no empty directory behind where
/// there was none: the tree's root, or a node's directory, that it made.
pub fn init_with_progress(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    opts: &InitOptions,
    now: OffsetDateTime,
    progress: &dyn Progress,
) -> Result<InitReport> {
    let new_dirs: Vec<PathBuf> = if root.exists() {
        spec.nodes.iter().map(|n| root.join(crate::model::catalog::bundle_root(n))).filter(|d| !d.exists()).collect()
    } else {
        vec![root.to_path_buf()]
    };
    let made = init_into(spec, catalog, root, opts, now, progress);
    if made.is_err() {
        for dir in &new_dirs {
            remove_empty_dirs(dir);
        }
    }
    made
}

/// Remove `dir` and the directories under it, as far as they are empty (best effort: a
/// directory that holds a file stays, with the file).
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn init_into(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    opts: &InitOptions,
    now: OffsetDateTime,
    progress: &dyn Progress,
) -> Result<InitReport> {
    if root.exists() && !root.is_dir() {
        return Err(Error::bad_file(root, "exists and is not a directory"));
    }
    // 0. A run killed while renaming a batch: complete it, then drop stray temporaries
    //    (alongside the survey, which never reads them).
    crate::disk::tree::refuse_linked_dirs(root)?;
    store::replay_journal(root)?;
    crate::disk::issuance::check_appendable(root)?;

    // 1. Survey: decide everything before writing anything. A tree not yet made holds
    //    nothing to read (nor temporaries to sweep): everything is missing.
    progress.start(InitPhase::Survey, catalog.entries.len() as u64);
    let (found, mut cas) = if !crate::disk::run::holds_nothing(root) {
        let (swept, surveyed) = rayon::join(|| store::sweep_temporaries(root), || survey(root, catalog, now, progress));
        swept?;
        surveyed
    } else {
        progress.advance(catalog.entries.len() as u64);
        (vec![Found::Missing; catalog.entries.len()], HashMap::new())
    };
    progress.finish();
    let mut found = found;
    let replaced_cas = replace_cas(catalog, &opts.replace_ca, &mut found, &mut cas)?;
    refuse_what_may_not_be_replaced(catalog, root, &found, &cas, opts)?;
    let replaced = found.iter().any(|f| matches!(f, Found::Bad(_) | Found::Partial(_) | Found::Stale(_)));
    // Every directory a file of the tree goes into, before anything is made: none may be a
    // symbolic link (each looked at once; the makers' files are then found checked).
    let index = catalog.bundles();
    let guard = LinkGuard::new(Some(root));
    index.tree_files(spec).try_for_each(|f| guard.check(&root.join(f)))?;

    // 2. Make what is missing, and what is partly there (what is replaced, the halves of those
    //    included, is saved first, by the store, in the backup of the run under way: see
    //    crate::disk::run); one writer thread commits it while the rest is being made.
    let todo = found.iter().filter(|f| !matches!(f, Found::Good)).count();
    progress.start(InitPhase::Generate, todo as u64);
    let bundle_files_written = AtomicUsize::new(0);
    let maker = Maker {
        spec,
        catalog,
        root,
        now,
        command: opts.command.unwrap_or(COMMAND),
        found: &found,
        replace_ca: &opts.replace_ca,
        progress,
        bundle_files_written: &bundle_files_written,
        guard: &guard,
    };
    let nodes_begun = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<StagedUnit>(QUEUE_NODES);
        let writer = scope.spawn(move || write_all(rx, root));
        // While the CAs are made (the first key waits for the entropy source to start, on one
        // core), another makes the nodes' directories.
        scope.spawn(|| maker.make_dirs_ahead(&index, &nodes_begun));
        let made = maker.make_all(&mut cas, &index, &nodes_begun, &tx);
        drop(tx);
        let written = writer.join().unwrap_or_else(|_| Err(Error::Invalid("the writer thread panicked".into())));
        // The writer's error comes first: when it stops, the makers stop for want of it.
        written.and(made)
    })?;
    progress.finish();

    let entries = catalog
        .entries
        .iter()
        .zip(found)
        .map(|(e, f)| Outcome {
            id: e.id.clone(),
            action: match f {
                Found::Missing => Action::Created,
                Found::Good => Action::Kept,
                Found::Bad(reason) | Found::Partial(reason) | Found::Stale(reason) => Action::Replaced { reason },
            },
        })
        .collect::<Vec<Outcome>>();
    record(root, spec)?;
    // The components' settings that use these files, where there are none yet.
    let topology = crate::model::topology::Topology::build(spec, catalog);
    crate::operations::wiring::write_missing(spec, catalog, &topology, root)?;
    // A CA made anew is the new trust of metrics-server's APIService too (the manifest is kept).
    for ca in &replaced_cas {
        crate::operations::wiring::metrics_server::trust_new_ca(root, catalog, ca)?;
    }
    // What was replaced was saved by the store, in the backup of the run under way.
    let backup = if replaced { crate::disk::backup::current_dir(root) } else { None };
    Ok(InitReport {
        dir: root.to_path_buf(),
        entries,
        bundle_files_written: bundle_files_written.into_inner(),
        backup,
        replaced_cas,
        rollout: crate::operations::rollout::rollout(spec, &crate::disk::backup::changed(root)),
    })
}

/// Record the description in the tree (the certificates this run signed are logged as they
/// are written, see [`write_all`]).
fn record(root: &Path, spec: &ClusterSpec) -> Result<()> {
    crate::model::infer::record(root, spec)
}

/// Mark the CAs named by `--replace-ca`, and everything they sign, to be made anew; returns
/// their ids. A name that is not a CA of the catalog is an error naming the CAs.
fn replace_cas(
    catalog: &Catalog,
    names: &[String],
    found: &mut [Found],
    cas: &mut HashMap<&str, Ca>,
) -> Result<Vec<String>> {
    let ca_ids: Vec<&str> =
        catalog.entries.iter().filter(|e| e.signing_key().is_some()).map(|e| e.id.as_str()).collect();
    let mut replaced = Vec::new();
    for name in names {
        if !ca_ids.contains(&name.as_str()) {
            return Err(Error::Invalid(format!(
                "--replace-ca {name}: not a CA of this cluster; its CAs (and the service-account key) are: {}",
                ca_ids.join(", ")
            )));
        }
        cas.remove(name.as_str());
        replaced.push(name.clone());
    }
    for (e, f) in catalog.entries.iter().zip(found.iter_mut()) {
        let signed_by =
            |ca: &String| if e.signing_key().is_some() { e.id == *ca } else { e.issuer().is_some_and(|i| i == ca) };
        if let Some(ca) = replaced.iter().find(|c| signed_by(c)) {
            if !matches!(f, Found::Missing) {
                *f = Found::Bad(if e.signing_key().is_some() {
                    "made anew as asked (--replace-ca)".into()
                } else {
                    format!("its CA {ca} is made anew (--replace-ca)")
                });
            }
        }
    }
    replaced.sort();
    replaced.dedup();
    Ok(replaced)
}

/// The private key of a key pair entry, when it is in the tree and readable: kept, whatever
/// becomes of its public key.
fn kept_pair_key(root: &Path, e: &Entry) -> Option<PrivateKey> {
    let EntryKind::KeyPair { key, .. } = &e.kind else { return None };
    let path = root.join(key);
    let text = read_opt(&path).ok()??;
    PrivateKey::from_pem(&text, &path).ok()
}

/// Refuse, writing nothing, to replace a CA that was not named by `--replace-ca` (not even
/// with `--force`), to make anything an externally managed CA signs (its key is not in the
/// tree), and, without `--force`, to replace anything else that is wrong.
fn refuse_what_may_not_be_replaced(
    catalog: &Catalog,
    root: &Path,
    found: &[Found],
    cas: &HashMap<&str, Ca>,
    opts: &InitOptions,
) -> Result<()> {
    let files = |bad: &[(&Entry, &str)]| -> Vec<PathBuf> {
        bad.iter().flat_map(|(e, _)| e.files().into_iter().map(|(f, _)| root.join(f))).collect()
    };
    let reasons =
        |bad: &[(&Entry, &str)]| bad.iter().map(|(e, r)| format!("{}: {r}", e.id)).collect::<Vec<_>>().join("\n  ");
    let bad: Vec<(&Entry, &str)> = catalog
        .entries
        .iter()
        .zip(found)
        .filter_map(|(e, f)| match f {
            Found::Bad(reason) => Some((e, reason.as_str())),
            Found::Stale(reason) if !opts.description_changed => Some((e, reason.as_str())),
            _ => None,
        })
        .collect();
    // A CA, or a service-account key pair whose private key is lost (one whose public key alone
    // is wrong is written again from the private key).
    let replaces_signer = |e: &Entry| e.is_ca() || (e.signing_key().is_some() && kept_pair_key(root, e).is_none());
    let cas_bad: Vec<(&Entry, &str)> = bad
        .iter()
        .copied()
        .filter(|(e, _)| replaces_signer(e) && !opts.replace_ca.iter().any(|c| e.id == *c))
        .collect();
    if !cas_bad.is_empty() {
        let names: Vec<&str> = cas_bad.iter().map(|(e, _)| e.id.as_str()).collect();
        return Err(Error::WouldClobber {
            paths: files(&cas_bad),
            reason: reasons(&cas_bad),
            hint: format!(
                "nothing was written. init never replaces a CA, not even with --force: every node trusts it \
                 (nor the service-account key: every ServiceAccount token is signed by it). \
                 Fix or restore its files (kubepki backup list); on a running cluster rotate it (kubepki rotate-ca {} start); \
                 or replace it explicitly with --replace-ca {}, after which every node must receive the new trust.",
                names[0],
                names.join(" --replace-ca ")
            ),
        });
    }
    // Leaves to make whose CA is in the tree without its key: kubeadm's external-CA mode.
    let external: Vec<(&Entry, &str)> = catalog
        .entries
        .iter()
        .zip(found)
        .filter(|(_, f)| !matches!(f, Found::Good))
        .filter_map(|(e, _)| match e.issuer() {
            Some(ca) if !cas.contains_key(ca.as_str()) && is_external(catalog, found, ca.as_str()) => {
                Some((e, ca.as_str()))
            }
            _ => None,
        })
        .collect();
    if !external.is_empty() {
        let dir = root.display().to_string();
        let mut cas: Vec<&str> = external.iter().map(|(_, ca)| *ca).collect();
        cas.sort();
        cas.dedup();
        return Err(Error::Invalid(format!(
            "nothing was written: {} cannot be made here: {} externally managed (its certificate is in the tree \
             without its key, kubeadm's external-CA mode), so kubepki never signs for it nor makes a new one. \
             Make them outside the tree: {}.",
            external.iter().map(|(e, _)| e.id.as_str()).collect::<Vec<_>>().join(", "),
            format!("{} {}", if cas.len() == 1 { "the CA" } else { "the CAs" }, cas.join(", "))
                + if cas.len() == 1 { " is" } else { " are" },
            cas.iter().map(|ca| crate::operations::external::renewal_steps(&dir, ca)).collect::<Vec<_>>().join("; ")
        )));
    }
    let rest: Vec<(&Entry, &str)> = bad
        .into_iter()
        .filter(|(e, _)| {
            let named = |id: &str| opts.replace_ca.iter().any(|c| c == id);
            let replaced_with_ca = replaces_signer(e) || named(&e.id) || e.issuer().is_some_and(|ca| named(ca));
            !replaced_with_ca
        })
        .collect();
    if !rest.is_empty() && !opts.force {
        return Err(Error::WouldClobber {
            paths: files(&rest),
            reason: reasons(&rest),
            hint: "nothing was written. Fix or remove these files, or run again with --force to replace them (the old files are backed up; CAs are kept).".into(),
        });
    }
    Ok(())
}

/// Whether the CA `id` is kept in the tree without its key (surveyed as good, no signer).
fn is_external(catalog: &Catalog, found: &[Found], id: &str) -> bool {
    catalog.entries.iter().zip(found).any(|(e, f)| e.id == id && matches!(f, Found::Good))
}

/// The CAs first (leaves are checked against them), then every other entry on all cores.
fn survey<'c>(
    root: &Path,
    catalog: &'c Catalog,
    now: OffsetDateTime,
    progress: &dyn Progress,
) -> (Vec<Found>, HashMap<&'c str, Ca>) {
    let mut cas: HashMap<&str, Ca> = HashMap::new();
    let mut external: HashMap<&str, (CertInfo, String)> = HashMap::new();
    let mut ca_found: HashMap<&str, Found> = HashMap::new();
    for entry in &catalog.entries {
        let EntryKind::Ca { cert, key, .. } = &entry.kind else { continue };
        let found = match survey_ca(root, entry, cert, key, now) {
            Ok(SurveyedCa::Usable(ca)) => {
                cas.insert(&entry.id, *ca);
                Found::Good
            }
            Ok(SurveyedCa::External(found)) => {
                external.insert(&entry.id, *found);
                Found::Good
            }
            Ok(SurveyedCa::Missing) => Found::Missing,
            Err(reason) => Found::Bad(reason),
        };
        ca_found.insert(&entry.id, found);
    }
    let found = catalog
        .entries
        .par_iter()
        .map(|entry| {
            let found = match &entry.kind {
                EntryKind::Ca { .. } => ca_found[entry.id.as_str()].clone(),
                EntryKind::Leaf(leaf) => {
                    let issuer = leaf.issuer.as_str();
                    let trust = match (cas.get(issuer), external.get(issuer)) {
                        (Some(ca), _) => Some(Trust { id: &ca.id, info: &ca.info, pem: &ca.cert_pem }),
                        (None, Some((info, pem))) => Some(Trust { id: issuer, info, pem }),
                        (None, None) => None,
                    };
                    survey_leaf(root, entry, leaf, trust, now)
                }
                EntryKind::KeyPair { key, public } => survey_key_pair(root, key, public),
            };
            progress.advance(1);
            found
        })
        .collect();
    (found, cas)
}

/// Makes the missing entries and the node bundles' copies, and hands them to the writer.
struct Maker<'a> {
    spec: &'a ClusterSpec,
    catalog: &'a Catalog,
    root: &'a Path,
    now: OffsetDateTime,
    /// The command logged with each certificate.
    command: &'static str,
    found: &'a [Found],
    /// What `--replace-ca` names: made anew even where its key is in the tree.
    replace_ca: &'a [String],
    progress: &'a dyn Progress,
    bundle_files_written: &'a AtomicUsize,
    /// The directories of the tree checked not to be symbolic links.
    guard: &'a LinkGuard,
}

impl<'a> Maker<'a> {
    fn make_all(
        &self,
        cas: &mut HashMap<&'a str, Ca>,
        index: &Bundles,
        nodes_begun: &AtomicBool,
        tx: &SyncSender<StagedUnit>,
    ) -> Result<()> {
        let entries = &self.catalog.entries;
        let missing = |i: &usize| !matches!(self.found[*i], Found::Good);
        // Shared: what is not one node's own (the sources of the bundles' copies).
        let own = |e: &Entry| e.node().is_some() && e.audience == Audience::Node;

        // CAs and the service-account key pair.
        let roots: Vec<usize> = (0..entries.len()).filter(|i| !is_leaf(&entries[*i])).filter(missing).collect();
        let made: Vec<(Option<Ca>, Vec<Out>, Option<IssuanceRecord>)> =
            roots.par_iter().map(|&i| self.make_root(&entries[i])).collect::<Result<_>>()?;
        let mut shared: HashMap<PathBuf, Vec<u8>> = HashMap::new();
        let mut first = Unit::default();
        for (&i, (ca, files, issued)) in roots.iter().zip(made) {
            if let Some(ca) = ca {
                cas.insert(&entries[i].id, ca);
            }
            first.add((files, issued));
        }
        let cas: &HashMap<&str, Ca> = cas;

        // Shared leaves and kubeconfigs.
        let leaves: Vec<usize> =
            (0..entries.len()).filter(|i| is_leaf(&entries[*i]) && !own(&entries[*i])).filter(missing).collect();
        let made: Vec<(Vec<Out>, Option<IssuanceRecord>)> =
            leaves.par_iter().map(|&i| self.make_leaf(&entries[i], cas)).collect::<Result<_>>()?;
        made.into_iter().for_each(|m| first.add(m));
        for (path, bytes, _) in &first.files {
            shared.insert(path.clone(), bytes.clone());
        }
        // Kept shared files are sources too; but for an externally managed CA's key, which is
        // not there (the CA is kept without it), nor copied to any bundle.
        for (i, e) in entries.iter().enumerate() {
            if !own(e) && !missing(&i) {
                for (f, _) in e.files() {
                    let path = self.root.join(f);
                    match crate::disk::readfile::read(&path, crate::disk::readfile::Limit::Kubeconfig) {
                        Ok(bytes) => drop(shared.insert(f.to_path_buf(), bytes)),
                        Err(err) if e.is_ca() && crate::disk::readfile::is_missing(&err) => {}
                        Err(err) => return Err(err),
                    }
                }
            }
        }
        send(tx, first.stage(self.root, self.guard)?)?;

        // Nodes, on all cores: each node's own entries and its bundle's copies.
        nodes_begun.store(true, Ordering::Relaxed);
        self.spec.nodes.par_iter().try_for_each(|node| {
            let unit = self.make_node(node, index, cas, &shared)?;
            send(tx, unit.stage(self.root, self.guard)?)
        })
    }

    /// Make the directories of the nodes that have entries to make, in order, until the nodes
    /// are begun (their makers make the rest). Only time is at stake: a failure here is left
    /// for the maker of that node to meet and report.
    fn make_dirs_ahead(&self, index: &Bundles, nodes_begun: &AtomicBool) {
        let entries = &self.catalog.entries;
        for node in &self.spec.nodes {
            if nodes_begun.load(Ordering::Relaxed) {
                return;
            }
            if index.own(&node.name).iter().all(|&i| matches!(self.found[i], Found::Good)) {
                continue;
            }
            let mut dirs: Vec<PathBuf> = index.of(self.spec, node).into_iter().map(|(_, dst, _)| dst).collect();
            dirs.extend(index.own(&node.name).iter().flat_map(|&i| entries[i].files()).map(|(f, _)| f.to_path_buf()));
            let mut dirs: Vec<PathBuf> = dirs.iter().filter_map(|f| f.parent()).map(|d| self.root.join(d)).collect();
            dirs.sort_unstable();
            dirs.dedup();
            for dir in dirs {
                if self.guard.check(&dir.join("-")).is_err() || store::make_dirs(&dir).is_err() {
                    return;
                }
            }
        }
    }

    /// A CA (returned, to sign with) or the service-account key pair.
    fn make_root(&self, entry: &Entry) -> Result<(Option<Ca>, Vec<Out>, Option<IssuanceRecord>)> {
        let alg = self.spec.key_algorithm;
        let made = match &entry.kind {
            EntryKind::Ca { profile, cert, key: key_path } => {
                let key = PrivateKey::generate(alg)?;
                let key_pem = key.to_pem().as_bytes().to_vec();
                let ca = Ca::create(&entry.id, profile, key, self.now)?;
                let files = vec![
                    (cert.clone(), ca.cert_pem.as_bytes().to_vec(), Mode::Public),
                    (key_path.clone(), key_pem, Mode::Secret),
                ];
                let issued = IssuanceRecord::new(&ca.info, Some(&entry.id), self.command, self.now);
                (Some(ca), files, Some(issued))
            }
            // Leaves are made after the roots, by make_leaf.
            EntryKind::Leaf(_) => (None, Vec::new(), None),
            EntryKind::KeyPair { key, public } => {
                // A private key in the tree is kept (every ServiceAccount token is signed by
                // it): only its public key is written, unless --replace-ca names the pair.
                let kept = kept_pair_key(self.root, entry).filter(|_| !self.replace_ca.iter().any(|c| *c == *entry.id));
                if let Some(k) = kept {
                    self.progress.advance(1);
                    return Ok((None, vec![(public.clone(), k.public_key_pem().into_bytes(), Mode::Public)], None));
                }
                let k = PrivateKey::generate(alg)?;
                let files = vec![
                    (public.clone(), k.public_key_pem().into_bytes(), Mode::Public),
                    (key.clone(), k.to_pem().as_bytes().to_vec(), Mode::Secret),
                ];
                (None, files, None)
            }
        };
        self.progress.advance(1);
        Ok(made)
    }

    /// A leaf certificate with its key, in files or in a kubeconfig, and its log record.
    fn make_leaf(&self, entry: &Entry, cas: &HashMap<&str, Ca>) -> Result<(Vec<Out>, Option<IssuanceRecord>)> {
        let Some(leaf) = entry.leaf() else { return Ok((Vec::new(), None)) };
        let p = &leaf.profile;
        let ca = &cas[leaf.issuer.as_str()];
        let key = PrivateKey::generate(self.spec.key_algorithm)?;
        let issued = ca.sign_key(p, &key, self.now)?;
        let record = IssuanceRecord::of_der(&issued.der, Some(&entry.id), self.command, self.now)?;
        let trust = match &leaf.store {
            Store::Kubeconfig { ca: trust, .. } => &cas[trust.as_str()].cert_pem,
            Store::Files { .. } => "",
        };
        let files = crate::disk::tree::leaf_files(leaf, &issued.pem, Some(key.to_pem()), trust, None)
            .into_iter()
            .map(|(path, text, mode)| (path, text.into_bytes(), mode))
            .collect();
        self.progress.advance(1);
        Ok((files, Some(record)))
    }

    /// One node's missing entries, and the copies its bundle needs that differ from what is
    /// there.
    fn make_node(
        &self,
        node: &Node,
        index: &Bundles,
        cas: &HashMap<&str, Ca>,
        shared: &HashMap<PathBuf, Vec<u8>>,
    ) -> Result<Unit> {
        let entries = &self.catalog.entries;
        let own = index.own(&node.name);
        let todo: Vec<usize> = own.iter().copied().filter(|&i| !matches!(self.found[i], Found::Good)).collect();
        let made: Vec<(Vec<Out>, Option<IssuanceRecord>)> =
            todo.par_iter().map(|&i| self.make_leaf(&entries[i], cas)).collect::<Result<_>>()?;
        let mut unit = Unit::default();
        made.into_iter().for_each(|m| unit.add(m));
        let mut copies = Vec::new();
        for (src, dst, mode) in index.of(self.spec, node) {
            if src == dst {
                continue;
            }
            let bytes = match unit.files.iter().find(|(p, _, _)| *p == src) {
                Some((_, b, _)) => b.clone(),
                None => match shared.get(&src) {
                    Some(b) => b.clone(),
                    // An externally managed CA's key: no bundle gets a copy.
                    None if self
                        .catalog
                        .entries
                        .iter()
                        .any(|e| e.is_ca() && e.files().iter().any(|(f, _)| *f == src)) =>
                    {
                        continue
                    }
                    None => {
                        let path = self.root.join(&src);
                        crate::disk::readfile::read(&path, crate::disk::readfile::Limit::Kubeconfig)?
                    }
                },
            };
            if crate::disk::readfile::read(&self.root.join(&dst), crate::disk::readfile::Limit::Kubeconfig)
                .is_ok_and(|old| old == bytes)
            {
                continue;
            }
            copies.push((dst, bytes, mode));
        }
        self.bundle_files_written.fetch_add(copies.len(), Ordering::Relaxed);
        unit.files.extend(copies);
        Ok(unit)
    }
}

/// A certificate signed by a CA (not a CA, not a bare key pair).
fn is_leaf(e: &Entry) -> bool {
    e.leaf().is_some()
}

/// Hand staged files to the writer; an error if it has stopped (its own error is the one
/// reported; the files' temporaries are removed).
fn send(tx: &SyncSender<StagedUnit>, unit: StagedUnit) -> Result<()> {
    if unit.files.is_empty() {
        return Ok(());
    }
    tx.send(unit).map_err(|_| Error::Invalid("the writer stopped".into()))
}

/// The writer: commits what it is handed in journaled groups (see [`Committer`] and
/// [`GROUP_FILES`]), each with the issuance log's lines for its certificates (appended once
/// they are in place, exactly once even across a kill); returns how many files. Should it
/// fail, what it has not committed is dropped, temporaries and all, and the makers stop for
/// want of it.
fn write_all(rx: Receiver<StagedUnit>, root: &Path) -> Result<usize> {
    let mut committer = Committer::new(Some(root));
    let log_path = issuance::log_path(root);
    let mut log = String::new();
    let mut written = 0;
    loop {
        // Waiting for the makers is time to commit what is pending: the group left for the
        // end, after the last node is made, is then only what came during the last commit.
        let unit = match rx.try_recv() {
            Ok(unit) => unit,
            Err(TryRecvError::Empty) if committer.pending() >= store::BULK_FILES => {
                commit_with_log(&mut committer, &log_path, &mut log)?;
                continue;
            }
            Err(TryRecvError::Empty) => match rx.recv() {
                Ok(unit) => unit,
                Err(_) => break,
            },
            Err(TryRecvError::Disconnected) => break,
        };
        written += unit.files.len();
        committer.add(unit.files);
        for record in &unit.issued {
            let line =
                serde_json::to_string(record).map_err(|e| Error::Invalid(format!("encoding the issuance log: {e}")))?;
            log.push_str(&line);
            log.push('\n');
        }
        if committer.pending() >= GROUP_FILES {
            commit_with_log(&mut committer, &log_path, &mut log)?;
        }
    }
    if !log.is_empty() {
        committer.append(&log_path, log.as_bytes());
    }
    committer.finish()?;
    Ok(written)
}

/// Commit the pending group with the log lines of its certificates.
fn commit_with_log(committer: &mut Committer, log_path: &Path, log: &mut String) -> Result<()> {
    committer.append(log_path, std::mem::take(log).as_bytes());
    committer.commit()
}

fn read_opt(path: &Path) -> std::result::Result<Option<String>, String> {
    match crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Kubeconfig) {
        Ok(t) => Ok(Some(t)),
        Err(e) if crate::disk::readfile::is_missing(&e) => Ok(None),
        Err(e) => Err(format!("{}: cannot read: {}", path.display(), crate::disk::readfile::reason(&e))),
    }
}

/// What is on disk for a CA.
enum SurveyedCa {
    Missing,
    /// Certificate and key, matching, valid: it signs.
    Usable(Box<Ca>),
    /// A valid certificate without its key (kubeadm's external-CA mode): kept, never replaced,
    /// never signs here.
    External(Box<(CertInfo, String)>),
}

/// A CA as leaves are checked against it.
struct Trust<'a> {
    id: &'a str,
    info: &'a CertInfo,
    pem: &'a str,
}

/// `Err`: present but wrong.
fn survey_ca(
    root: &Path,
    entry: &Entry,
    cert: &Path,
    key: &Path,
    now: OffsetDateTime,
) -> std::result::Result<SurveyedCa, String> {
    let (cert_path, key_path) = (root.join(cert), root.join(key));
    match (read_opt(&cert_path)?, read_opt(&key_path)?) {
        (None, None) => Ok(SurveyedCa::Missing),
        (Some(c), None) => {
            let info = CertInfo::from_pem(&c, &cert_path).map_err(|e| e.to_string())?;
            check_time(&info, now).map_err(|r| format!("{}: {r}", cert_path.display()))?;
            Ok(SurveyedCa::External(Box::new((info, c))))
        }
        (None, Some(_)) => Err(format!("{} is missing but its key exists", cert_path.display())),
        (Some(c), Some(k)) => {
            let key = PrivateKey::from_pem(&k, &key_path).map_err(|e| e.to_string())?;
            let ca = Ca::load(&entry.id, &c, &cert_path, key).map_err(|e| e.to_string())?;
            check_time(&ca.info, now).map_err(|r| format!("{}: {r}", cert_path.display()))?;
            Ok(SurveyedCa::Usable(Box::new(ca)))
        }
    }
}

fn survey_key_pair(root: &Path, key: &Path, public: &Path) -> Found {
    let (key_path, pub_path) = (root.join(key), root.join(public));
    let (k, p) = match (read_opt(&key_path), read_opt(&pub_path)) {
        (Ok(None), Ok(None)) => return Found::Missing,
        (Ok(Some(k)), Ok(Some(p))) => (k, p),
        (Err(e), _) | (_, Err(e)) => return Found::Bad(e),
        // The public key is the private key's: written again from it, without --force.
        (Ok(Some(k)), Ok(None)) => {
            return match PrivateKey::from_pem(&k, &key_path) {
                Ok(_) => {
                    Found::Partial(format!("{} is missing: written from {}", pub_path.display(), key_path.display()))
                }
                Err(e) => Found::Bad(e.to_string()),
            }
        }
        (Ok(None), Ok(Some(_))) => {
            return Found::Bad(format!(
            "{} is missing; {} is there: a new key pair would end every ServiceAccount token signed by the lost key",
            key_path.display(),
            pub_path.display()
        ))
        }
    };
    match PrivateKey::from_pem(&k, &key_path) {
        Err(e) => Found::Bad(e.to_string()),
        Ok(key) if key.public_key_pem().trim() != p.trim() => {
            Found::Bad(format!("{} does not hold the public key of {}", pub_path.display(), key_path.display()))
        }
        Ok(_) => Found::Good,
    }
}

fn survey_leaf(root: &Path, entry: &Entry, leaf: &Leaf, ca: Option<Trust>, now: OffsetDateTime) -> Found {
    if let Store::Files { cert, key } = &leaf.store {
        let there = |p: &Path| root.join(p).symlink_metadata().is_ok();
        if there(cert) != there(key) {
            let missing = if there(cert) { key } else { cert };
            return Found::Partial(format!("{} is missing", root.join(missing).display()));
        }
    }
    match check_leaf(root, entry, leaf, ca, now) {
        Ok(None) => Found::Missing,
        Ok(Some(())) => Found::Good,
        Err(Wrong::Broken(reason)) => Found::Bad(reason),
        Err(Wrong::Stale(reason)) => Found::Stale(reason),
    }
}

/// Why a leaf that is present is not kept.
enum Wrong {
    /// Unusable as it is: unreadable, key or CA wrong, out of its dates.
    Broken(String),
    /// Sound, but not what the description says (SANs, identity, a kubeconfig's server).
    Stale(String),
}

impl From<String> for Wrong {
    fn from(reason: String) -> Self {
        Wrong::Broken(reason)
    }
}

/// `Ok(None)`: missing; `Ok(Some(()))`: right; `Err(_)`: present but wrong.
fn check_leaf(
    root: &Path,
    entry: &Entry,
    leaf: &Leaf,
    ca: Option<Trust>,
    now: OffsetDateTime,
) -> std::result::Result<Option<()>, Wrong> {
    let p = &leaf.profile;
    let (shown, cert_pem, key_pem) = match &leaf.store {
        Store::Files { cert, key } => {
            let (cp, kp) = (root.join(cert), root.join(key));
            match (read_opt(&cp)?, read_opt(&kp)?) {
                (None, None) => return Ok(None),
                (Some(c), Some(k)) => (cp, c, k),
                (Some(_), None) => return Err(format!("{} is missing", kp.display()).into()),
                (None, Some(_)) => return Err(format!("{} is missing", cp.display()).into()),
            }
        }
        Store::Kubeconfig { path, server, .. } => {
            let path = root.join(path);
            let Some(text) = read_opt(&path)? else { return Ok(None) };
            let k = kubeconfig::parse(&text, &path).map_err(|e| e.to_string())?;
            let ca = ca.as_ref().ok_or_else(|| format!("{}: its CA is being created anew", path.display()))?;
            if k.ca_pem.as_deref().map(str::trim) != Some(ca.pem.trim()) {
                return Err(format!(
                    "{}: certificate-authority-data is not the current {} certificate",
                    path.display(),
                    ca.id
                )
                .into());
            }
            if &k.server != server {
                return Err(Wrong::Stale(format!("{}: server is {}, expected {server}", path.display(), k.server)));
            }
            match (k.cert_pem, k.key_pem) {
                (Some(c), Some(key)) => (path, c, key),
                // A client certificate in a file it names, outside the tree (kubeadm's
                // kubelet.conf: the kubelet rotates kubelet-client-current.pem itself): kept,
                // as verify leaves it (an `external` finding).
                (None, _) if k.files[1].as_deref().is_some_and(|f| Path::new(f).is_absolute()) => return Ok(Some(())),
                _ => return Err(format!("{}: no embedded client certificate and key", path.display()).into()),
            }
        }
    };
    let fail = |r: String| format!("{}: {r}", shown.display());
    let info = CertInfo::from_pem(&cert_pem, &shown).map_err(|e| e.to_string())?;
    let key = PrivateKey::from_pem(&key_pem, &shown).map_err(|e| e.to_string())?;
    if !key.matches(&info) {
        return Err(fail("the private key does not match the certificate".into()).into());
    }
    let ca = ca.ok_or_else(|| fail("its CA is being created anew".into()))?;
    if !info.is_signed_by(ca.info) {
        return Err(fail(format!("not signed by the current {}", ca.id)).into());
    }
    check_time(&info, now).map_err(fail)?;
    let diffs: Vec<String> = deviations(entry, p, (&info).into()).iter().map(|d| d.to_string()).collect();
    if !diffs.is_empty() {
        return Err(Wrong::Stale(fail(diffs.join("; "))));
    }
    Ok(Some(()))
}

fn check_time(info: &CertInfo, now: OffsetDateTime) -> std::result::Result<(), String> {
    if now > info.not_after {
        return Err(format!("expired on {}", info.not_after));
    }
    if now < info.not_before {
        return Err(format!("not valid until {}", info.not_before));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_leaves_no_empty_directory_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("tree");
        for d in ["pki/etcd", "nodes/n1/etc/kubernetes/pki", "nodes/n2/var/lib/kubelet/pki"] {
            std::fs::create_dir_all(made.join(d)).unwrap();
        }
        std::fs::write(made.join("nodes/n2/var/lib/kubelet/pki/kubelet.key"), "kept").unwrap();
        remove_empty_dirs(&made);
        assert!(!made.join("pki").exists() && !made.join("nodes/n1").exists());
        assert_eq!(std::fs::read_to_string(made.join("nodes/n2/var/lib/kubelet/pki/kubelet.key")).unwrap(), "kept");

        // A run refused before it made anything (a tree whose pki is a link) leaves nothing.
        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(dir.path(), linked.join("pki")).unwrap();
        let spec = ClusterSpec::builtin_default();
        let catalog = Catalog::build(&spec);
        let err = init(&spec, &catalog, &linked, &InitOptions::default(), OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("pki: a symbolic link (to "), "{err}");
        let left: Vec<_> = std::fs::read_dir(&linked).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["pki"], "no node directory made");
    }
}
