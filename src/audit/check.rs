//! `kubepki check`: every CA, certificate, kubelet certificate and kubeconfig certificate of
//! a tree with its expiry, the time left and its CA, as `kubeadm certs check-expiration`
//! shows them (and what kubeadm leaves out: kubelet certificates, node kubeconfigs, files
//! that kubeconfigs refer to), at an instant the caller gives.
//!
//! Findings are data: an expired or missing certificate is a status in the report; `Err`
//! means the tree could not be checked at all.

use rayon::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::inspect::{self, CertSource, CertView, FileKind, FileReport};
use crate::error::{Error, Result};
use crate::model::catalog::Catalog;
use crate::model::spec::ClusterSpec;
use crate::model::vocabulary::check_expiration;
use crate::x509::certinfo::CertInfo;

mod prometheus;

pub use prometheus::render as prometheus;

/// What to check against.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The instant to judge validity at.
    pub at: OffsetDateTime,
    /// Certificates that expire within this are flagged.
    pub warn_within: time::Duration,
    /// Files (relative to the tree) that must exist; see [`kubeadm_expected`].
    pub expected: Vec<PathBuf>,
}

/// The verdict on one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// Valid, and not expiring within the warning window.
    Ok,
    /// Valid, but expires within the warning window.
    Expiring,
    /// Past its NotAfter.
    Expired,
    /// Before its NotBefore.
    NotYetValid,
    /// An expected file is not there.
    Missing,
    /// The file is there but is not a certificate or kubeconfig kubepki can read.
    Unreadable,
    /// A file a kubeconfig refers to that is not in the tree and cannot be read here (the
    /// node's own file, e.g. kubelet-client-current.pem): shown, not counted as a failure.
    Unchecked,
}

impl CheckStatus {
    /// Every state, in the order tables count them.
    pub const ALL: [CheckStatus; 7] = [
        CheckStatus::Ok,
        CheckStatus::Expiring,
        CheckStatus::Expired,
        CheckStatus::NotYetValid,
        CheckStatus::Missing,
        CheckStatus::Unreadable,
        CheckStatus::Unchecked,
    ];

    /// The state of a certificate at `at`: expired, not yet valid, expiring within
    /// `warn_within`, or ok.
    pub fn of(info: &CertInfo, at: OffsetDateTime, warn_within: time::Duration) -> CheckStatus {
        match inspect::time_left(info.not_before, info.not_after, at).0 {
            inspect::CertValidity::Expired => CheckStatus::Expired,
            inspect::CertValidity::NotYetValid => CheckStatus::NotYetValid,
            inspect::CertValidity::Valid if info.not_after - at <= warn_within => CheckStatus::Expiring,
            inspect::CertValidity::Valid => CheckStatus::Ok,
        }
    }

    /// Whether this status makes the check fail (exit 1).
    pub fn fails(self) -> bool {
        !matches!(self, CheckStatus::Ok | CheckStatus::Unchecked)
    }

    /// The word for tables.
    pub fn word(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Expiring => "expiring",
            CheckStatus::Expired => "expired",
            CheckStatus::NotYetValid => "not yet valid",
            CheckStatus::Missing => "missing",
            CheckStatus::Unreadable => "unreadable",
            CheckStatus::Unchecked => "unchecked",
        }
    }
}

/// One row: one certificate (or a missing or unreadable file).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckEntry {
    /// The file relative to the tree, plus where in it when that matters:
    /// `pki/apiserver.crt`, `kubelet.conf -> /var/lib/kubelet/pki/kubelet-client-current.pem`.
    pub name: String,
    /// The file, relative to the tree.
    pub path: PathBuf,
    /// The verdict.
    pub status: CheckStatus,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Subject CN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339_option", skip_serializing_if = "Option::is_none")]
    pub expires: Option<OffsetDateTime>,
    /// NotAfter minus the instant, in seconds (negative once expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residual_seconds: Option<i64>,
    /// `364d`, `expired 660d ago`, `valid in 2h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residual: Option<String>,
    /// The CN of the CA that signed it: a CA of the tree whose signature verifies, else the
    /// issuer's CN as the certificate names it; `self-signed` for a root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Where that CA is in the tree (`None`: not found in the tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority_file: Option<PathBuf>,
    /// Why it is missing, unreadable or unchecked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// kubeadm's EXTERNALLY MANAGED: a CA whose certificate is in the tree without its key
    /// (kubeadm's external-CA mode), or a certificate signed by one. Renewed outside the tree
    /// (`kubepki csr`, then `kubepki import`), never by `renew` or `init`.
    pub externally_managed: bool,
    /// kubeadm's name for it (`apiserver`, `admin.conf`, `etcd-ca`), when it is the
    /// certificate of a file `kubeadm certs check-expiration` lists (see
    /// [`crate::model::vocabulary::check_expiration`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeadm_name: Option<&'static str>,
    /// For a node bundle's copy that is byte for byte the file at the top of the tree
    /// (`nodes/node01/etc/kubernetes/pki/ca.crt`), the name of that file's row (`pki/ca.crt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
    /// The certificate itself (for the Prometheus metrics: issuer, serial, NotBefore).
    #[serde(skip)]
    pub certificate: Option<std::sync::Arc<CertInfo>>,
    /// For a certificate inside a kubeconfig: `("user", name)` or `("cluster", name)`.
    #[serde(skip)]
    pub embedded: Option<(&'static str, String)>,
}

/// The report of `check`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The tree.
    pub dir: PathBuf,
    /// The instant checked at.
    #[serde(with = "crate::report::json::rfc3339")]
    pub at: OffsetDateTime,
    /// The warning window.
    #[serde(with = "crate::model::spec::duration_text")]
    pub warn_within: time::Duration,
    /// Every row, soonest expiry first (rows without an expiry, such as missing files, first).
    pub entries: Vec<CheckEntry>,
}

impl CheckReport {
    /// Whether nothing fails (every certificate valid and not expiring, nothing missing).
    pub fn clean(&self) -> bool {
        !self.entries.iter().any(|e| e.status.fails())
    }

    /// How many rows have this status.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }
}

impl CheckReport {
    /// The rows of files in these nodes' bundles (`nodes/<node>/`) and in these states
    /// (each empty: all).
    pub fn filtered(mut self, nodes: &[String], statuses: &[CheckStatus]) -> CheckReport {
        let bundles: Vec<PathBuf> =
            nodes.iter().map(|n| Path::new(crate::model::vocabulary::layout::NODES).join(n)).collect();
        self.entries.retain(|e| {
            (bundles.is_empty() || bundles.iter().any(|b| e.path.starts_with(b)))
                && (statuses.is_empty() || statuses.contains(&e.status))
        });
        self
    }
}

/// The files kubeadm makes on its first control plane, from the catalog of the built-in
/// default cluster: every certificate and kubeconfig at the top of the tree, except
/// kube-proxy.conf (kubeadm gives kube-proxy a service-account token).
pub fn kubeadm_expected() -> Vec<PathBuf> {
    let catalog = Catalog::build(&ClusterSpec::builtin_default());
    catalog
        .entries
        .iter()
        .filter(|e| e.cert().is_some() && e.kubeadm_instead.is_none())
        .filter_map(|e| e.files().first().map(|(p, _)| p.to_path_buf()))
        .filter(|p| !p.starts_with("nodes"))
        .collect()
}

/// The files expected in a tree: every certificate and kubeconfig of the description recorded
/// in it (a kubepki tree: every node's files, one CA or three), else kubeadm's.
pub fn expected_in(dir: &Path) -> Vec<PathBuf> {
    let recorded = dir.join(crate::model::infer::RECORDED);
    match crate::model::infer::load_recorded(&recorded) {
        Ok(spec) => Catalog::build(&spec)
            .entries
            .iter()
            .filter(|e| e.cert().is_some())
            .filter_map(|e| e.files().first().map(|(p, _)| p.to_path_buf()))
            .collect(),
        Err(_) => kubeadm_expected(),
    }
}

/// Check every certificate of the tree at `dir`.
pub fn check(dir: &Path, opts: &CheckOptions) -> Result<CheckReport> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "read the directory", e))?;
    if !meta.is_dir() {
        return Err(Error::bad_file(dir, "not a directory"));
    }
    let has_conf = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "read the directory", e))?
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "conf"));
    if !dir.join("pki").is_dir() && !has_conf {
        return Err(Error::bad_file(
            dir,
            "not a Kubernetes PKI directory: it has no pki/ and no kubeconfigs (*.conf); \
             point --dir at a kubepki tree or a kubeadm /etc/kubernetes",
        ));
    }
    let files = inspect::scan(dir, true, opts.at);
    let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).to_path_buf();
    let cas = cas_of(&files, dir);
    // Each certificate's CA is found by its signature: on every core, file by file.
    let mut entries: Vec<CheckEntry> = files
        .par_iter()
        .flat_map_iter(|(path, found)| {
            let name = rel(path).display().to_string();
            let mut rows = Vec::new();
            match found {
                Ok(report) => rows_of(report, &name, &rel(path), &cas, opts, &mut rows),
                Err(_) if skip_unreadable(path) => {}
                Err(e) => rows.push(CheckEntry {
                    problem: Some(problem_of(e)),
                    ..blank(name, rel(path), CheckStatus::Unreadable)
                }),
            }
            rows
        })
        .collect();
    let present: BTreeSet<PathBuf> = files.iter().map(|(p, _)| rel(p)).collect();
    for want in &opts.expected {
        if !present.contains(want) && !dir.join(want).exists() {
            entries.push(CheckEntry {
                kubeadm_name: check_expiration::name_of(want),
                problem: Some("expected, not found".into()),
                ..blank(want.display().to_string(), want.clone(), CheckStatus::Missing)
            });
        }
    }
    let digests: std::collections::HashMap<PathBuf, Vec<u8>> =
        files.iter().filter_map(|(p, r)| Some((rel(p), r.as_ref().ok()?.sha256.clone()))).collect();
    drop(cas);
    // The scan's reports (every certificate of the tree) freed on another core meanwhile.
    rayon::join(
        move || drop(files),
        || {
            entries.par_sort_by(|a, b| {
                (a.expires.is_some(), a.expires, &a.name).cmp(&(b.expires.is_some(), b.expires, &b.name))
            });
            mark_externally_managed(dir, &mut entries);
            mark_copies(dir, &digests, &mut entries);
        },
    );
    Ok(CheckReport { dir: dir.to_path_buf(), at: opts.at, warn_within: opts.warn_within, entries })
}

/// Mark the rows of CAs kept without their key at the top of the tree (kubeadm's CA files),
/// their copies, and the certificates they signed.
fn mark_externally_managed(dir: &Path, entries: &mut [CheckEntry]) {
    const KUBEADM_CA_FILES: [&str; 3] = ["pki/ca.crt", "pki/front-proxy-ca.crt", "pki/etcd/ca.crt"];
    let external: Vec<Vec<u8>> = KUBEADM_CA_FILES
        .iter()
        .map(Path::new)
        .filter(|c| !dir.join(c.with_extension("key")).exists())
        .filter_map(|c| crate::disk::readfile::read(&dir.join(c), crate::disk::readfile::Limit::Pem).ok())
        .collect();
    if external.is_empty() {
        return;
    }
    let mut cache: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    for e in entries {
        let file = if e.is_ca { Some(&e.path) } else { e.authority_file.as_ref() };
        if let Some(f) = file {
            e.externally_managed = *cache.entry(f.clone()).or_insert_with(|| {
                crate::disk::readfile::read(&dir.join(f), crate::disk::readfile::Limit::Kubeconfig)
                    .is_ok_and(|b| external.contains(&b))
            });
        }
    }
}

/// Mark the rows of node bundles' copies that are byte for byte the file at the top of the
/// tree (`nodes/<n>/etc/kubernetes/<f>` and `<f>`), with the name of that file's row.
fn mark_copies(dir: &Path, digests: &std::collections::HashMap<PathBuf, Vec<u8>>, entries: &mut [CheckEntry]) {
    // The digest taken when the scan read the file, else the file read again.
    let read = |p: &Path| match digests.get(p) {
        Some(d) => Some(d.clone()),
        None => crate::disk::readfile::read(&dir.join(p), crate::disk::readfile::Limit::Kubeconfig)
            .ok()
            .map(|b| inspect::sha256(&b)),
    };
    let mut top: std::collections::HashMap<PathBuf, Option<Vec<u8>>> = std::collections::HashMap::new();
    let mut same: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    for e in entries.iter_mut() {
        let Ok(inside) = e.path.strip_prefix(crate::model::vocabulary::layout::NODES) else { continue };
        let mut parts = inside.components();
        let _node = parts.next();
        let Ok(source) = parts.as_path().strip_prefix(crate::model::vocabulary::layout::ETC_KUBERNETES) else {
            continue;
        };
        let (source, path) = (source.to_path_buf(), e.path.clone());
        let copy = *same.entry(path.clone()).or_insert_with(|| {
            let original = top.entry(source.clone()).or_insert_with(|| read(&source));
            original.is_some() && *original == read(&path)
        });
        if copy {
            let suffix = e.name.strip_prefix(&*path.to_string_lossy()).unwrap_or_default();
            e.copy_of = Some(format!("{}{suffix}", source.display()));
        }
    }
}

/// A `*.pem` holding only keys is not a certificate; an unreadable one without a
/// certificate in it (an unsupported key) is left alone too.
fn skip_unreadable(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "pem")
        && crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Pem)
            .is_ok_and(|t| !t.contains("CERTIFICATE") && t.contains("PRIVATE KEY"))
}

/// The problem of an error, without the path (the row names the file).
fn problem_of(e: &Error) -> String {
    match e {
        Error::BadFile { problem, .. } => problem.clone(),
        Error::Io { action, source, .. } => format!("cannot {action}: {source}"),
        other => other.to_string(),
    }
}

pub(crate) fn blank(name: String, path: PathBuf, status: CheckStatus) -> CheckEntry {
    CheckEntry {
        name,
        path,
        status,
        is_ca: false,
        subject_cn: None,
        expires: None,
        residual_seconds: None,
        residual: None,
        authority: None,
        authority_file: None,
        problem: None,
        externally_managed: false,
        kubeadm_name: None,
        copy_of: None,
        certificate: None,
        embedded: None,
    }
}

/// A CA of the tree: the file it is in, and what it says.
struct TreeCa<'a> {
    file: PathBuf,
    info: &'a CertInfo,
}

/// Every CA certificate in the tree, each once (first file wins), files before kubeconfigs;
/// their files relative to `dir`.
fn cas_of<'a>(files: &'a [(PathBuf, Result<FileReport>)], dir: &Path) -> Vec<TreeCa<'a>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    // Shallowest first: the tree's own pki/ca.crt before the copies in node bundles. Only
    // the files that hold a CA, each key taken once.
    let holds_ca = |r: &Result<FileReport>| r.as_ref().is_ok_and(|r| r.all_certificates().iter().any(|c| c.info.is_ca));
    let mut files: Vec<&(PathBuf, Result<FileReport>)> = files.iter().filter(|(_, r)| holds_ca(r)).collect();
    files.sort_by_cached_key(|(p, _)| (p.components().count(), p.clone()));
    for pass in [false, true] {
        for (path, found) in files.iter().map(|f| (&f.0, &f.1)) {
            let Ok(r) = found else { continue };
            if (r.kind == FileKind::Kubeconfig) != pass {
                continue;
            }
            for c in r.all_certificates() {
                if c.info.is_ca && seen.insert(c.info.sha256.clone()) {
                    out.push(TreeCa { file: path.strip_prefix(dir).unwrap_or(path).to_path_buf(), info: &c.info });
                }
            }
        }
    }
    out
}

fn rows_of(r: &FileReport, name: &str, path: &Path, cas: &[TreeCa], opts: &CheckOptions, out: &mut Vec<CheckEntry>) {
    if r.kind == FileKind::CertificateRequest || r.kind == FileKind::PrivateKey {
        return;
    }
    let row = |label: String, c: &CertView| row(label, path, c, cas, opts);
    // kubeadm reads a file's first certificate (a kubeconfig's: its user's).
    let kubeadm_name = check_expiration::name_of(path);
    let many = r.certificates.len() > 1;
    for (i, c) in r.certificates.iter().enumerate() {
        let label = if many { format!("{name} [{}]", i + 1) } else { name.to_string() };
        out.push(CheckEntry { kubeadm_name: kubeadm_name.filter(|_| i == 0), ..row(label, c) });
    }
    let Some(k) = &r.kubeconfig else { return };
    // The CA data only when it is not a CA file of the tree (then it is checked there).
    for cl in &k.clusters {
        if let Some(CertSource::Embedded { certificates }) = &cl.certificate_authority {
            for c in certificates {
                let in_file =
                    |ca: &TreeCa| ca.info.sha256 == c.info.sha256 && ca.file.extension().is_some_and(|x| x != "conf");
                if !cas.iter().any(in_file) {
                    let embedded = Some(("cluster", cl.name.clone()));
                    out.push(CheckEntry { embedded, ..row(format!("{name} ({})", c.source), c) });
                }
            }
        }
    }
    let one_user = k.users.len() == 1;
    for u in &k.users {
        let label = if one_user { name.to_string() } else { format!("{name} [{}]", u.name) };
        let row =
            |label: String, c: &CertView| CheckEntry { embedded: Some(("user", u.name.clone())), ..row(label, c) };
        match &u.client_certificate {
            Some(CertSource::Embedded { certificates }) => out.extend(certificates.iter().enumerate().map(|(i, c)| {
                CheckEntry { kubeadm_name: kubeadm_name.filter(|_| one_user && i == 0), ..row(label.clone(), c) }
            })),
            Some(CertSource::File(f)) => {
                let label = format!("{label} -> {}", f.reference);
                if f.certificates.is_empty() {
                    let status = if f.readable { CheckStatus::Unreadable } else { CheckStatus::Unchecked };
                    let problem = match &f.problem {
                        Some(p) if !f.readable => format!("cannot read {}: {p}", f.resolved.display()),
                        Some(p) => format!("{}: {p}", f.resolved.display()),
                        None => format!("{}: holds no certificate", f.resolved.display()),
                    };
                    out.push(CheckEntry { problem: Some(problem), ..blank(label.clone(), path.to_path_buf(), status) });
                }
                out.extend(f.certificates.iter().map(|c| row(label.clone(), c)));
            }
            None => {}
        }
    }
}

/// [`CertInfo::is_signed_by`], remembered per (certificate, CA) pair on each thread: a tree
/// holds the same certificate many times (a CA in every node bundle and kubeconfig), and a
/// signature check costs more than the rest of a row.
fn signed_by(cert: &CertInfo, ca: &CertInfo) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static MEMO: RefCell<HashMap<(String, String), bool>> = RefCell::new(HashMap::new());
    }
    if cert.issuer_raw != ca.subject_raw {
        return false;
    }
    let key = (cert.sha256.clone(), ca.sha256.clone());
    if let Some(known) = MEMO.with(|m| m.borrow().get(&key).copied()) {
        return known;
    }
    let signed = cert.is_signed_by(ca);
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() > 100_000 {
            m.clear();
        }
        m.insert(key, signed);
    });
    signed
}

fn row(name: String, path: &Path, c: &CertView, cas: &[TreeCa], opts: &CheckOptions) -> CheckEntry {
    let left = c.info.not_after - opts.at;
    let status = CheckStatus::of(&c.info, opts.at, opts.warn_within);
    let residual = match c.validity {
        inspect::CertValidity::Valid => inspect::span(left),
        _ => c.time_left.clone(),
    };
    let self_signed = signed_by(&c.info, &c.info);
    let signer = if self_signed { None } else { cas.iter().find(|ca| signed_by(&c.info, ca.info)) };
    let (authority, authority_file) = match signer {
        _ if self_signed => ("self-signed".to_string(), None),
        Some(ca) => (ca.info.subject_cn.clone(), Some(ca.file.clone())),
        None => (c.issuer_cn.clone(), None),
    };
    CheckEntry {
        is_ca: c.info.is_ca,
        subject_cn: Some(c.info.subject_cn.clone()),
        expires: Some(c.info.not_after),
        residual_seconds: Some(left.whole_seconds()),
        residual: Some(residual),
        authority: Some(authority),
        authority_file,
        certificate: Some(c.info.clone()),
        ..blank(name, path.to_path_buf(), status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_expected_is_the_kubeadm_top_level() {
        let mut got: Vec<String> = kubeadm_expected().iter().map(|p| p.display().to_string()).collect();
        got.sort();
        let mut want = vec![
            "admin.conf",
            "super-admin.conf",
            "controller-manager.conf",
            "scheduler.conf",
            "kubelet.conf",
            "pki/ca.crt",
            "pki/apiserver.crt",
            "pki/apiserver-kubelet-client.crt",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-client.crt",
            "pki/apiserver-etcd-client.crt",
            "pki/etcd/ca.crt",
            "pki/etcd/server.crt",
            "pki/etcd/peer.crt",
            "pki/etcd/healthcheck-client.crt",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn only_findings_fail() {
        assert!(!CheckStatus::Ok.fails());
        assert!(!CheckStatus::Unchecked.fails());
        for s in [
            CheckStatus::Expiring,
            CheckStatus::Expired,
            CheckStatus::NotYetValid,
            CheckStatus::Missing,
            CheckStatus::Unreadable,
        ] {
            assert!(s.fails(), "{s:?}");
        }
    }
}
