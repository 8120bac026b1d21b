//! `kubepki verify`: the tree × the catalog × the topology → a report of findings.
//!
//! Findings are data, not errors: `Err` means "could not check". Each finding says how bad it
//! is, which link or file, what was expected, what was found, and the command that fixes it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::finding::FixTarget;
pub use crate::audit::finding::{FindingKind, Severity};
use crate::disk::inventory::{Inventory, KubeconfigFacts, Loaded, Problem};
use crate::disk::store::Mode;
use crate::model::catalog::{Catalog, Entry, EntryId, EntryKind, Leaf};
use crate::model::spec::{ClusterSpec, San};
use crate::model::topology::{Link, Topology};
use crate::model::vocabulary::layout;

mod certs;

/// One thing wrong (or worth knowing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Its stable id within the report: `<code>:<file or entry>` (`expired:pki/apiserver.crt`),
    /// with `:` and 8 hex digits of a SHA-256 of what it says when that alone is not unique
    /// (one per setting of a manifest). The same tree gives the same ids; links name findings
    /// by it.
    pub id: String,
    /// How bad (the kind's severity).
    pub severity: Severity,
    /// What it is; its stable name in JSON: `expired`, `san-missing`, `wrong-ca`, `usage`, ...
    #[serde(rename = "code")]
    pub kind: FindingKind,
    /// The catalog entry it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryId>,
    /// The links it affects.
    pub links: Vec<String>,
    /// The file it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
    /// The command (or action) that fixes it.
    pub fix: String,
    /// Whether it makes a TLS handshake on its links fail.
    pub breaks: bool,
}

impl Finding {
    /// What it is about, as shown: its file, else its entry.
    pub fn subject(&self) -> String {
        self.file
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| self.entry.as_ref().map(|e| e.to_string()))
            .unwrap_or_default()
    }
}

/// The verdict on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Both directions check out.
    Ok,
    /// It works, with warnings.
    Warning,
    /// The handshake fails (or would).
    Broken,
    /// The handshake succeeds, but a side does not verify the other (a component's setting).
    Unverified,
    /// Not checked (no tree, or a side that is not kubepki's to check).
    Unknown,
}

impl LinkStatus {
    /// Every state, from the best.
    pub const ALL: [LinkStatus; 5] =
        [LinkStatus::Ok, LinkStatus::Warning, LinkStatus::Broken, LinkStatus::Unverified, LinkStatus::Unknown];

    /// Its name, as JSON and `--status` spell it.
    pub fn word(self) -> &'static str {
        match self {
            LinkStatus::Ok => "ok",
            LinkStatus::Warning => "warning",
            LinkStatus::Broken => "broken",
            LinkStatus::Unverified => "unverified",
            LinkStatus::Unknown => "unknown",
        }
    }
}

/// What `verify` looks at.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The instant certificates must be valid at.
    pub at: OffsetDateTime,
    /// Certificates expiring within this are warned about.
    pub warn_within: time::Duration,
    /// Where the components' configuration is read (the tree's own, or a directory).
    pub wiring: crate::audit::wiring::Sources,
}

impl VerifyOptions {
    /// Valid at `at`, warning 30 days ahead.
    pub fn at(at: OffsetDateTime) -> VerifyOptions {
        VerifyOptions { at, warn_within: time::Duration::days(30), wiring: Default::default() }
    }
}

/// The verdict on one link, and the findings that explain it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkVerdict {
    /// The link's id.
    pub id: String,
    /// Its row in the reference table.
    pub number: u8,
    /// The verdict.
    pub status: LinkStatus,
    /// Indexes into [`Report::findings`] (not in JSON, which has `findings`: their ids).
    #[serde(skip)]
    pub findings: Vec<usize>,
    /// The ids of those findings ([`Finding::id`]), as JSON names them.
    #[serde(rename = "findings")]
    pub finding_ids: Vec<String>,
}

/// How many links and findings of each kind: the first thing `verify -o json` says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Links by status.
    pub links: LinkCounts,
    /// Findings by severity.
    pub findings: SeverityCounts,
}

/// Links by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkCounts {
    /// Every link of the topology.
    pub total: usize,
    /// Both directions check out.
    pub ok: usize,
    /// Working, with warnings.
    pub warning: usize,
    /// The handshake fails (or would).
    pub broken: usize,
    /// A side does not verify the other.
    pub unverified: usize,
    /// Not checked.
    pub unknown: usize,
}

/// Findings by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeverityCounts {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Information.
    pub info: usize,
}

impl Summary {
    /// The counts of links and findings.
    pub fn of(links: &[LinkVerdict], findings: &[Finding]) -> Summary {
        let status = |s: LinkStatus| links.iter().filter(|l| l.status == s).count();
        let severity = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        Summary {
            links: LinkCounts {
                total: links.len(),
                ok: status(LinkStatus::Ok),
                warning: status(LinkStatus::Warning),
                broken: status(LinkStatus::Broken),
                unverified: status(LinkStatus::Unverified),
                unknown: status(LinkStatus::Unknown),
            },
            findings: SeverityCounts {
                error: severity(Severity::Error),
                warning: severity(Severity::Warning),
                info: severity(Severity::Info),
            },
        }
    }
}

/// The report of `verify`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The counts of links and findings.
    pub summary: Summary,
    /// The tree.
    pub dir: PathBuf,
    /// The instant checked.
    #[serde(with = "crate::report::json::rfc3339")]
    pub at: OffsetDateTime,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// Every link of the topology.
    pub links: Vec<LinkVerdict>,
}

impl Report {
    /// Whether anything at warning level or worse was found.
    pub fn has_problems(&self) -> bool {
        self.findings.iter().any(|f| f.severity >= Severity::Warning)
    }

    /// Link id → status, for pictures.
    pub fn statuses(&self) -> BTreeMap<String, LinkStatus> {
        self.links.iter().map(|l| (l.id.clone(), l.status)).collect()
    }
}

/// Which part of a report to show (`verify --node`, `--status`).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Links with a side on one of these nodes, and findings about their files (empty: all).
    pub nodes: Vec<String>,
    /// Links in one of these states (empty: all).
    pub statuses: Vec<LinkStatus>,
}

impl Filter {
    /// Whether it keeps everything.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.statuses.is_empty()
    }

    /// The links of `topology` with a side (its client or its server) on one of the nodes;
    /// `None`: every link (no node asked for).
    fn links_on_nodes<'t>(&self, topology: &'t Topology) -> Option<HashSet<&'t str>> {
        if self.nodes.is_empty() {
            return None;
        }
        let on: HashSet<&str> = topology
            .components
            .iter()
            .filter(|c| c.node.as_ref().is_some_and(|n| self.nodes.contains(n)))
            .map(|c| c.id.as_str())
            .collect();
        let touching = |l: &&'t Link| on.contains(l.client.as_str()) || on.contains(l.server.as_str());
        Some(topology.links.iter().filter(touching).map(|l| l.id.as_str()).collect())
    }

    /// Whether a finding with no kept link is about one of the nodes (its entry, or a file
    /// in its bundle); never when states are asked for, which are links'.
    fn keeps_unlinked(&self, f: &Finding) -> bool {
        self.statuses.is_empty()
            && self.nodes.iter().any(|n| {
                f.entry.as_ref().and_then(EntryId::node) == Some(n.as_str())
                    || f.file.as_ref().is_some_and(|p| p.starts_with(Path::new(layout::NODES).join(n)))
            })
    }
}

impl Report {
    /// The part of the report of `topology` that `filter` keeps: its links, the findings on
    /// them (and, for nodes, the findings about the nodes' files), and the counts of that part.
    pub fn filtered(self, filter: &Filter, topology: &Topology) -> Report {
        if filter.is_empty() {
            return self;
        }
        let on_nodes = filter.links_on_nodes(topology);
        let keeps = |l: &LinkVerdict| {
            on_nodes.as_ref().is_none_or(|ids| ids.contains(l.id.as_str()))
                && (filter.statuses.is_empty() || filter.statuses.contains(&l.status))
        };
        let mut links: Vec<LinkVerdict> = self.links.into_iter().filter(keeps).collect();
        let kept: HashSet<&str> = links.iter().map(|l| l.id.as_str()).collect();
        let mut index = HashMap::new();
        let mut findings = Vec::new();
        for (i, f) in self.findings.into_iter().enumerate() {
            if f.links.iter().any(|l| kept.contains(l.as_str())) || filter.keeps_unlinked(&f) {
                index.insert(i, findings.len());
                findings.push(f);
            }
        }
        for l in &mut links {
            l.findings = l.findings.iter().filter_map(|i| index.get(i).copied()).collect();
        }
        Report { summary: Summary::of(&links, &findings), dir: self.dir, at: self.at, findings, links }
    }
}

/// Check the tree against the catalog and the topology.
pub fn verify(
    spec: &ClusterSpec,
    catalog: &Catalog,
    topology: &Topology,
    inventory: &Inventory,
    opts: &VerifyOptions,
) -> Report {
    let mut dialed: HashMap<EntryId, BTreeSet<San>> = HashMap::new();
    for l in &topology.links {
        if let Some(server) = &l.server_cert {
            dialed.entry(server.clone()).or_default().insert(l.dial.host.clone());
        }
    }
    let mut c = Checker {
        spec,
        catalog,
        inv: inventory,
        opts,
        findings: Vec::new(),
        by_entry: HashMap::new(),
        by_link: HashMap::new(),
        san_missing: HashMap::new(),
        kubepki_tree: inventory.root.join("nodes").is_dir(),
        dialed: &dialed,
    };
    // Each entry on every core (signature checks dominate), its findings filed in the
    // catalog's order: the same findings, in the same order, as one entry after the other.
    let parts: Vec<Checker> = catalog
        .entries
        .par_iter()
        .map(|e| {
            let mut part = c.part();
            part.entry(e);
            part
        })
        .collect();
    for part in parts {
        c.absorb(part);
    }
    c.duplicate_serials();
    c.bundle_copies();
    c.linked_dirs();
    let mut verdicts = Vec::with_capacity(topology.links.len());
    for l in &topology.links {
        c.link(l);
    }
    c.wiring(topology);
    // Attach entry findings to the links that use the entry, and derive each link's status.
    for l in &topology.links {
        let mut ids: Vec<usize> = Vec::new();
        for e in link_entries(l) {
            ids.extend(c.by_entry.get(e).into_iter().flatten());
        }
        ids.extend(c.by_link.get(&l.id).into_iter().flatten());
        ids.sort_unstable();
        ids.dedup();
        let status = status_of(ids.iter().map(|i| &c.findings[*i]));
        verdicts.push(LinkVerdict {
            id: l.id.clone(),
            number: l.kind.number(),
            status,
            findings: ids,
            finding_ids: Vec::new(),
        });
    }
    // Findings name the links they affect.
    for v in &verdicts {
        for i in &v.findings {
            c.findings[*i].links.push(v.id.clone());
        }
    }
    // Most severe first, stable otherwise; remap the links' indexes.
    let mut order: Vec<usize> = (0..c.findings.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(c.findings[*i].severity));
    let mut new_index = vec![0; order.len()];
    for (new, old) in order.iter().enumerate() {
        new_index[*old] = new;
    }
    let mut findings: Vec<Option<Finding>> = c.findings.into_iter().map(Some).collect();
    let mut findings: Vec<Finding> = order.iter().map(|i| findings[*i].take().expect("each once")).collect();
    assign_ids(&mut findings);
    for v in &mut verdicts {
        for i in &mut v.findings {
            *i = new_index[*i];
        }
        v.findings.sort_unstable();
        v.finding_ids = v.findings.iter().map(|i| findings[*i].id.clone()).collect();
    }
    let summary = Summary::of(&verdicts, &findings);
    Report { summary, dir: inventory.root.clone(), at: opts.at, findings, links: verdicts }
}

/// Give each finding its id: `<code>:<subject>`, made unique by a short hash of what it says
/// (its links, expected and found) where needed, and by a counter if two say the same.
fn assign_ids(findings: &mut [Finding]) {
    let base = |f: &Finding| format!("{}:{}", f.kind.name(), f.subject());
    let mut count: HashMap<String, usize> = HashMap::new();
    for f in findings.iter() {
        *count.entry(base(f)).or_default() += 1;
    }
    let mut seen: HashSet<String> = HashSet::new();
    for f in findings.iter_mut() {
        let b = base(f);
        let first = if count[&b] == 1 {
            b
        } else {
            let said = format!("{}\n{}\n{}", f.links.join(","), f.expected, f.found);
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, said.as_bytes());
            let hex: String = digest.as_ref()[..4].iter().map(|x| format!("{x:02x}")).collect();
            format!("{b}:{hex}")
        };
        let (mut id, mut n) = (first.clone(), 1);
        while !seen.insert(id.clone()) {
            n += 1;
            id = format!("{first}-{n}");
        }
        f.id = id;
    }
}

/// The catalog entries a link depends on: both certificates and both trusted CAs.
fn link_entries(l: &Link) -> impl Iterator<Item = &str> {
    [Some(l.client_cert.as_str()), l.server_cert.as_deref(), Some(l.server_trusts.as_str()), l.client_trusts.as_deref()]
        .into_iter()
        .flatten()
}

/// A link's status from its findings. A link whose server brings its own certificate (an
/// aggregated API server) is judged on kubepki's half: the client certificate and the CA the
/// server trusts.
fn status_of<'a>(findings: impl Iterator<Item = &'a Finding>) -> LinkStatus {
    let mut status = LinkStatus::Ok;
    for f in findings {
        let s = if f.breaks {
            LinkStatus::Broken
        } else if f.kind == FindingKind::Unverified {
            LinkStatus::Unverified
        } else if f.severity >= Severity::Warning {
            LinkStatus::Warning
        } else if f.kind.unchecked() {
            LinkStatus::Unknown
        } else {
            continue;
        };
        status = match (status, s) {
            (LinkStatus::Broken, _) | (_, LinkStatus::Broken) => LinkStatus::Broken,
            (LinkStatus::Unverified, _) | (_, LinkStatus::Unverified) => LinkStatus::Unverified,
            (LinkStatus::Warning, _) | (_, LinkStatus::Warning) => LinkStatus::Warning,
            (LinkStatus::Ok, LinkStatus::Ok) => LinkStatus::Ok,
            _ => LinkStatus::Unknown,
        };
    }
    status
}

struct Checker<'a> {
    spec: &'a ClusterSpec,
    catalog: &'a Catalog,
    inv: &'a Inventory,
    opts: &'a VerifyOptions,
    findings: Vec<Finding>,
    /// Entry id → findings about it (they affect every link that uses it).
    by_entry: HashMap<EntryId, Vec<usize>>,
    /// Link id → findings about that link only (a SAN that does not cover its address).
    by_link: HashMap<String, Vec<usize>>,
    /// (server entry, address) → its san-missing finding.
    san_missing: HashMap<(EntryId, San), usize>,
    /// Whether the tree has kubepki's node directories (else it is, e.g., kubeadm's).
    kubepki_tree: bool,
    /// Server entry → the hosts its clients dial (checked per link, not per profile).
    dialed: &'a HashMap<EntryId, BTreeSet<San>>,
}

/// The parts of a finding, before it is filed: its kind says the rest.
struct New {
    kind: FindingKind,
    file: Option<PathBuf>,
    expected: String,
    found: String,
}

impl Checker<'_> {
    /// A checker of the same tree with no findings yet: one part of the work.
    fn part(&self) -> Self {
        Checker {
            findings: Vec::new(),
            by_entry: HashMap::new(),
            by_link: HashMap::new(),
            san_missing: HashMap::new(),
            ..*self
        }
    }

    /// File a part's findings after these, as if this checker had found them.
    fn absorb(&mut self, part: Self) {
        let offset = self.findings.len();
        self.findings.extend(part.findings);
        for (id, found) in part.by_entry {
            self.by_entry.entry(id).or_default().extend(found.into_iter().map(|i| i + offset));
        }
        for (id, found) in part.by_link {
            self.by_link.entry(id).or_default().extend(found.into_iter().map(|i| i + offset));
        }
        self.san_missing.extend(part.san_missing.into_iter().map(|(k, i)| (k, i + offset)));
    }

    fn file(&mut self, entry: Option<&EntryId>, n: New) -> usize {
        self.file_with(entry, n, &[], None)
    }

    /// A finding about a file that is a symbolic link to `link` (or is under none).
    fn file_at(&mut self, entry: Option<&EntryId>, n: New, link: Option<&Path>) -> usize {
        self.file_with(entry, n, &[], link)
    }

    /// [`Self::file`], with the SANs its fix names.
    fn file_naming(&mut self, entry: Option<&EntryId>, n: New, sans: &[San]) -> usize {
        self.file_with(entry, n, sans, None)
    }

    fn file_with(&mut self, entry: Option<&EntryId>, n: New, sans: &[San], link: Option<&Path>) -> usize {
        let i = self.push_with(entry, n, sans, link);
        if let Some(e) = entry {
            self.by_entry.entry(e.clone()).or_default().push(i);
        }
        i
    }

    /// A finding with its fix (which may name the address a link dials).
    fn push(&mut self, entry: Option<&EntryId>, n: New, sans: &[San]) -> usize {
        self.push_with(entry, n, sans, None)
    }

    fn push_with(&mut self, entry: Option<&EntryId>, n: New, sans: &[San], link: Option<&Path>) -> usize {
        let catalog_entry = entry.and_then(|id| self.catalog.get(id));
        let target =
            FixTarget { dir: &self.inv.root, entry: catalog_entry, file: n.file.as_deref(), sans, setting: None, link };
        self.findings.push(Finding {
            id: String::new(),
            severity: n.kind.severity(),
            kind: n.kind,
            entry: entry.cloned(),
            links: Vec::new(),
            fix: n.kind.fix(target),
            breaks: n.kind.breaks_handshake(),
            file: n.file,
            expected: n.expected,
            found: n.found,
        });
        self.findings.len() - 1
    }

    fn entry(&mut self, e: &Entry) {
        let Some(loaded) = self.inv.get(&e.id) else { return };
        self.modes(e, loaded);
        match &e.kind {
            EntryKind::KeyPair { .. } => self.key_pair(e, loaded),
            EntryKind::Ca { profile, .. } | EntryKind::Leaf(Leaf { profile, .. }) => self.cert(e, profile, loaded),
        }
    }

    fn modes(&mut self, e: &Entry, loaded: &Loaded) {
        for (file, mode) in &loaded.modes {
            let secret = e.files().iter().any(|(f, m)| f == file && *m == Mode::Secret);
            if secret && mode & 0o077 != 0 {
                // A key that is a symbolic link: its mode is the target's, outside the tree.
                let path = self.inv.root.join(file);
                let link = std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.file_type().is_symlink())
                    .then(|| std::fs::canonicalize(&path).ok())
                    .flatten();
                let whose = match &link {
                    Some(to) => format!(" (a symbolic link to {}, outside the tree)", to.display()),
                    None => String::new(),
                };
                let readers = if mode & 0o004 != 0 { "everyone" } else { "its group" };
                let new = New {
                    kind: FindingKind::Mode,
                    file: Some(file.clone()),
                    expected: "mode 0600 (readable by its owner only)".into(),
                    found: format!("mode {mode:04o}: readable by {readers}{whose}"),
                };
                self.file_at(None, new, link.as_deref());
            }
        }
    }

    fn key_pair(&mut self, e: &Entry, loaded: &Loaded) {
        let EntryKind::KeyPair { key, public } = &e.kind else { return };
        let (Ok(k), Some(Ok(p))) = (&loaded.key, &loaded.public_key) else {
            let problem = match (&loaded.key, &loaded.public_key) {
                (Err(p), _) | (_, Some(Err(p))) => p.clone(),
                _ => Problem::Missing(public.clone()),
            };
            self.problem(e, &problem);
            return;
        };
        if &k.public_key_raw != p {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::PublicKeyMismatch,
                    file: Some(public.clone()),
                    expected: format!("the public key of {}", key.display()),
                    found: "another public key: service-account tokens signed with sa.key fail to verify".into(),
                },
            );
        }
    }

    /// A CA whose certificate is in the tree without its key: kubeadm's external-CA mode. Its
    /// certificates are signed outside the tree; nothing is broken.
    fn externally_managed(&mut self, e: &Entry, key: &std::path::Path) {
        self.file(
            Some(&e.id),
            New {
                kind: FindingKind::ExternallyManaged,
                file: Some(key.to_path_buf()),
                expected: format!("{} (the key of {}), or a CA managed outside the tree", key.display(), e.id),
                found: "no key: the CA is externally managed (kubeadm's external-CA mode)".into(),
            },
        );
    }

    /// A file that is missing, unreadable, or outside the tree.
    fn problem(&mut self, e: &Entry, p: &Problem) {
        let i = match p {
            Problem::Missing(path) if e.kubeadm_instead.is_some() && !self.kubepki_tree => {
                let i = self.file(
                    Some(&e.id),
                    New {
                        kind: FindingKind::NotKubeadm,
                        file: Some(path.clone()),
                        expected: format!("{} (kubepki adds it)", path.display()),
                        found: format!("absent, as kubeadm makes it: {}", e.kubeadm_instead.unwrap_or_default()),
                    },
                );
                i
            }
            Problem::Missing(path) => self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::Missing,
                    file: Some(path.clone()),
                    expected: format!("{} ({})", path.display(), e.id),
                    found: "no such file".into(),
                },
            ),
            Problem::Unreadable(path, why) => self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::Unreadable,
                    file: Some(path.clone()),
                    expected: "a valid PEM certificate, key or kubeconfig".into(),
                    found: why.clone(),
                },
            ),
            Problem::External(path, why) => self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::External,
                    file: Some(path.clone()),
                    expected: "embedded client certificate and key".into(),
                    found: format!("{why} (outside the tree; not checked)"),
                },
            ),
            // Never from the inventory verify loads (keys and all); said, not hidden, if it were.
            Problem::NotRead(path) => self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::Unreadable,
                    file: Some(path.clone()),
                    expected: "a valid PEM certificate, key or kubeconfig".into(),
                    found: "not read (an inventory without keys was verified)".into(),
                },
            ),
        };
        let _ = i;
    }

    /// A kubeconfig trusts its embedded CA data: it must hold the current CA certificate.
    fn kubeconfig_trust(&mut self, e: &Entry, k: &KubeconfigFacts, ca_id: &str, server: &str) {
        match &k.ca {
            Err(problem) => self.problem(e, problem),
            Ok(cas) => {
                if let Some(current) = self.ca_info(ca_id) {
                    if !cas.iter().any(|c| c.der == current.der) {
                        self.file(
                            Some(&e.id),
                            New {
                                kind: FindingKind::StaleCaData,
                                file: Some(k.path.clone()),
                                expected: format!(
                                    "certificate-authority-data holding {ca_id} (SHA-256 {})",
                                    short(&current.sha256)
                                ),
                                found: format!(
                                    "{} other CA certificate(s): {}",
                                    cas.len(),
                                    cas.iter()
                                        .map(|c| format!("{} (SHA-256 {})", c.subject, short(&c.sha256)))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            },
                        );
                    }
                }
            }
        }
        if k.insecure_skip_tls_verify {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::InsecureSkipTlsVerify,
                    file: Some(k.path.clone()),
                    expected: format!("the server verified with its certificate-authority-data ({ca_id})"),
                    found: "insecure-skip-tls-verify: true: the client would not verify the server, and client-go \
                            refuses it beside CA data (kubectl: specifying a root certificates file with the insecure \
                            flag is not allowed)"
                        .into(),
                },
            );
        }
        if k.server != server {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::ServerUrl,
                    file: Some(k.path.clone()),
                    expected: format!("server {server}"),
                    found: format!("server {}", k.server),
                },
            );
        }
    }

    fn duplicate_serials(&mut self) {
        let mut seen: HashMap<(Vec<u8>, String), String> = HashMap::new();
        let mut dups = Vec::new();
        for e in &self.catalog.entries {
            let Some(Ok(info)) = self.inv.get(&e.id).map(|l| &l.cert) else { continue };
            if let Some(first) = seen.insert((info.issuer_raw.clone(), info.serial.clone()), e.id.to_string()) {
                dups.push((e.id.clone(), first, info.serial.clone(), info.issuer.clone()));
            }
        }
        for (id, first, serial, issuer) in dups {
            self.file(
                Some(&id),
                New {
                    kind: FindingKind::DuplicateSerial,
                    file: self.catalog.get(&id).and_then(|e| e.files().first().map(|(f, _)| f.to_path_buf())),
                    expected: format!("a serial unique under {issuer}"),
                    found: format!("serial {serial}, also used by {first}"),
                },
            );
        }
    }

    /// Node bundles hold copies of shared files: each must equal its source (each source read
    /// once; the copies, one per node, compared on every core).
    fn bundle_copies(&mut self) {
        if !self.kubepki_tree {
            return;
        }
        use crate::disk::readfile::{read, Limit};
        let inv = self.inv;
        let root = &inv.root;
        let bundles = self.catalog.bundles();
        let spec = self.spec;
        let copies: Vec<(PathBuf, PathBuf)> = spec
            .nodes
            .par_iter()
            .flat_map_iter(|node| bundles.of(spec, node).into_iter().filter(|(src, dst, _)| src != dst))
            .map(|(src, dst, _)| (src, dst))
            .collect();
        let mut sources: HashMap<&Path, Option<Vec<u8>>> = HashMap::new();
        for (src, _) in &copies {
            sources.entry(src).or_insert_with(|| read(&root.join(src), Limit::Kubeconfig).ok());
        }
        let stale: Vec<(&PathBuf, &PathBuf, &str)> = copies
            .par_iter()
            .filter_map(|(src, dst)| {
                let source = sources[src.as_path()].as_ref()?; // the source's own finding
                match read(&root.join(dst), Limit::Kubeconfig) {
                    Ok(copy) if &copy == source => None,
                    Ok(_) => Some((dst, src, "differs from")),
                    Err(_) => Some((dst, src, "is missing; the source is")),
                }
            })
            .collect();
        for (dst, src, how) in stale {
            self.file(
                None,
                New {
                    kind: FindingKind::StaleCopy,
                    file: Some(dst.clone()),
                    expected: format!("a copy of {}", src.display()),
                    found: format!("{} {how} {}", dst.display(), src.display()),
                },
            );
        }
    }

    /// The directories of the tree that are symbolic links, between its root and the files of
    /// the catalog, the node bundles' copies and kubepki's state (each directory looked at once).
    fn linked_dirs(&mut self) {
        let root = &self.inv.root;
        let bundles = self.catalog.bundles();
        // kubepki's own state: a rotation's folder (each CA's, as there are) and the backups.
        let rotation = Path::new(".kubepki/rotation");
        let mut state = vec![rotation.join("-/-"), PathBuf::from(".kubepki-backup/-")];
        if let Ok(rd) = std::fs::read_dir(root.join(rotation)) {
            state.extend(rd.flatten().map(|e| rotation.join(e.file_name()).join("-")));
        }
        let files: Vec<PathBuf> = bundles.tree_files(self.spec).chain(state).collect();
        for dir in crate::disk::store::linked_dirs(root, files.iter().map(PathBuf::as_path)) {
            let to = std::fs::canonicalize(root.join(&dir)).ok();
            let points = match &to {
                Some(t) => format!("a symbolic link to {}", t.display()),
                None => "a symbolic link to nothing".into(),
            };
            let new = New {
                kind: FindingKind::LinkedDirectory,
                file: Some(dir),
                expected: "a directory of the tree".into(),
                found: format!("{points}: every command that changes the tree refuses it"),
            };
            self.file_at(None, new, to.as_deref());
        }
    }

    /// What only this link can show: the server's SANs against the address the client dials,
    /// and trust that no entry finding already explains.
    fn link(&mut self, l: &Link) {
        let Some(server_id) = &l.server_cert else { return };
        let Some(Ok(server)) = self.inv.get(server_id).map(|x| &x.cert) else { return };
        if !covers(&server.sans, &l.dial.host) {
            // One finding per certificate and address, naming every link that dials it.
            let key = (server_id.clone(), l.dial.host.clone());
            let i = match self.san_missing.get(&key) {
                Some(i) => *i,
                None => {
                    let file =
                        self.catalog.get(server_id).and_then(|e| e.files().first().map(|(f, _)| f.to_path_buf()));
                    let new = New {
                        kind: FindingKind::SanMissing,
                        file,
                        expected: format!("a SAN for {} (the address {} dials)", l.dial.host, l.client),
                        found: format!("SANs {}", join(&server.sans)),
                    };
                    let i = self.push(Some(server_id), new, &[]);
                    self.san_missing.insert(key, i);
                    i
                }
            };
            self.by_link.entry(l.id.clone()).or_default().push(i);
        }
    }
}

impl Checker<'_> {
    /// The components' settings (the static pod manifests in the tree, where there are some):
    /// each finding is about the links the setting decides.
    fn wiring(&mut self, topology: &Topology) {
        use crate::audit::wiring::Problem;
        use crate::model::topology::wiring::Want;
        let sources = &self.opts.wiring;
        // A directory that cannot be read was refused before verify ran (the CLI reads it first).
        let miswired = crate::audit::wiring::check_sources(self.spec, self.catalog, topology, &self.inv.root, sources)
            .unwrap_or_default();
        for m in miswired {
            let name = m.setting.name;
            let (kind, found) = match &m.problem {
                Problem::Unset if matches!(m.setting.want, Want::Trusts { .. } | Want::Equals { .. }) => {
                    (FindingKind::Unverified, format!("{name} is not set: {}", m.setting.role))
                }
                Problem::Unset => (FindingKind::SettingUnset, format!("{name} is not set ({})", m.setting.role)),
                Problem::Off(v) => (FindingKind::Unverified, format!("{name}={v}: {}", m.setting.role)),
                Problem::NoFile(p) => (FindingKind::SettingNoFile, format!("{name}={p}: no such file in the tree")),
                Problem::WrongFile { named, expected, holds } => (
                    FindingKind::SettingWrongFile,
                    match (&m.setting.want, holds.is_empty()) {
                        (Want::Trusts { .. }, false) => format!(
                            "{name}={named}, which holds {holds}: not the CA that signs the other side's certificate ({expected} holds it)"
                        ),
                        _ => format!("{name}={named}, which does not hold what {expected} holds"),
                    },
                ),
                Problem::Weak(why) => (FindingKind::WeakTls, format!("{name}={why}")),
                Problem::Anonymous(v) => (FindingKind::AnonymousAuth, format!("{name}={v}: {}", m.setting.role)),
                Problem::AlwaysAllow(v) => (FindingKind::AlwaysAllow, format!("{name}={v}: {}", m.setting.role)),
                Problem::Bootstrap => (
                    FindingKind::External,
                    format!(
                        "{name}=true: {}; its certificate is not the tree's and is not checked (kubepki approve --approve kubelet-serving-known-addresses signs such requests)",
                        m.setting.role
                    ),
                ),
            };
            let cis = m.setting.cis.map(|c| format!(" (CIS Kubernetes Benchmark {c})")).unwrap_or_default();
            let setting = (m.manifest.as_path(), name, m.expected.as_str());
            let target = FixTarget {
                dir: &self.inv.root,
                entry: None,
                file: Some(&m.manifest),
                sans: &[],
                setting: Some(setting),
                link: None,
            };
            self.findings.push(Finding {
                id: String::new(),
                severity: kind.severity(),
                kind,
                entry: None,
                links: Vec::new(),
                fix: kind.fix(target),
                breaks: kind.breaks_handshake(),
                file: Some(m.manifest.clone()),
                expected: format!("{} {name}={}{cis}", m.component, m.expected),
                found,
            });
            let i = self.findings.len() - 1;
            for l in &m.links {
                self.by_link.entry(l.clone()).or_default().push(i);
            }
        }
    }
}

/// Whether a certificate's SANs cover a host: IPs exactly, DNS names case-insensitively with
/// a leading `*.` matching one label.
pub fn covers(sans: &[San], host: &San) -> bool {
    sans.iter().any(|s| match (s, host) {
        (San::Ip(a), San::Ip(b)) => a == b,
        (San::Dns(pattern), San::Dns(name)) => {
            let (p, n) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
            match p.strip_prefix("*.") {
                Some(suffix) => n.split_once('.').is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                None => p == n,
            }
        }
        _ => false,
    })
}

fn join(sans: &[San]) -> String {
    sans.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(23).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_coverage() {
        let sans = [San::Dns("*.example.com".into()), San::Ip("10.0.0.1".parse().unwrap()), San::Dns("Node01".into())];
        assert!(covers(&sans, &San::Dns("api.example.com".into())));
        assert!(!covers(&sans, &San::Dns("a.b.example.com".into())));
        assert!(!covers(&sans, &San::Dns("example.com".into())));
        assert!(covers(&sans, &San::Ip("10.0.0.1".parse().unwrap())));
        assert!(!covers(&sans, &San::Dns("10.0.0.1".into())));
        assert!(covers(&sans, &San::Dns("node01".into())));
    }
}
