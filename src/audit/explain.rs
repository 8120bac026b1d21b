//! `kubepki explain`: the TLS error texts operators paste (kubectl, client-go, kube-apiserver,
//! the kubelet, etcd, etcdctl, openssl, curl, Python's ssl and urllib3) recognised and said in
//! plain words; with a tree, each tied to the link it happens on, the file and certificate at
//! fault, and the fix.
//!
//! Recognising is pure text work (`recognise`). Tying uses `verify`'s report of the tree: the
//! links the text's evidence points at (the address dialled, the names a certificate is valid
//! for, the candidate CA's name, a subject CN, a file), then the findings on those links whose
//! codes explain that cause, on the side whose certificate was refused. The fix is the
//! finding's own, so `explain` and `verify` never disagree on what to do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::finding::{FindingKind, Severity};
use crate::audit::verify::{Finding, LinkVerdict, Report};
use crate::disk::inventory::Inventory;
use crate::model::catalog::Catalog;
use crate::model::spec::San;
use crate::model::topology::{Link, LinkKind, Topology};
use crate::x509::certinfo::CertInfo;

mod recognise;

/// What an error message means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// The certificate was not signed by a CA the verifier trusts.
    UnknownAuthority,
    /// The server's certificate does not cover the name or address dialled.
    NameMismatch,
    /// An IP address was dialled and the certificate has no IP SANs at all.
    NoIpSans,
    /// The certificate has a CN and no SANs.
    LegacyCommonName,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate's extended key usage does not allow this use.
    IncompatibleUsage,
    /// The issuer is not a CA.
    NotACa,
    /// A self-signed certificate that is not itself trusted.
    SelfSigned,
    /// The signature does not verify with the issuer's key (same name, another key).
    SignatureFailure,
    /// The peer does not trust the CA of the certificate sent to it.
    RemoteUnknownCa,
    /// The peer refused the certificate sent to it.
    RemoteBadCertificate,
    /// The peer refused the certificate's usage (a client certificate without clientAuth).
    RemoteUnsupportedCertificate,
    /// The server wanted a client certificate and got none.
    RemoteCertificateRequired,
    /// The peer found the certificate sent to it expired.
    RemoteExpired,
    /// A private key that does not belong to the certificate.
    KeyMismatch,
    /// The apiserver did not authenticate the request (TLS completed).
    Unauthorized,
    /// The client gave up without a reason (etcdctl: the server refused the handshake, or is
    /// not there); the server's log has the reason.
    NoReason,
}

/// Whose certificate is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The server's certificate (or the CA the client trusts it with).
    Server,
    /// The client's certificate (or the CA the server trusts clients with).
    Client,
}

/// Which software's wording matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Go's crypto/x509 or crypto/tls: kubectl, client-go, the apiserver, the kubelet, etcd.
    Go,
    /// kubectl's own messages.
    Kubectl,
    /// openssl (verify, s_client).
    Openssl,
    /// curl.
    Curl,
    /// Python's ssl module (also through urllib3 and the kubernetes client).
    Python,
    /// etcdctl (etcd's Go client).
    Etcdctl,
}

/// The program a line is from, as its wording shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    /// etcd or etcdctl (`rejected connection from`, clientv3's retries).
    Etcd,
    /// kubectl (`Unable to connect to the server`, `You must be logged in`).
    Kubectl,
    /// metrics-server (its scraper's `Failed to scrape node`, `scraper.go`).
    #[serde(rename = "metrics-server")]
    MetricsServer,
}

/// What the text says around a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `host:port` dialled (a URL or urllib3's pool on the line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The name or address the certificate was checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The names the certificate is valid for, as Go lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub valid_for: Vec<String>,
    /// The CA Go tried (`candidate authority certificate "kubernetes"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Whether that candidate's key failed to verify the signature (same name, another key).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signature_mismatch: bool,
    /// The verifier's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_time: Option<String>,
    /// The certificate's NotAfter, as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The certificate's NotBefore, as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// The subject CN openssl printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    /// The file openssl verify named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The remote address a server names (`rejected connection from "ADDR"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The program the line is from, when the wording says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<Program>,
    #[serde(skip)]
    cause: Option<Cause>,
    #[serde(skip)]
    unknown_reason: bool,
}

impl Evidence {
    /// Whether the program the line is from plays this link's client or server.
    fn hints(&self, l: &Link) -> bool {
        match self.program {
            Some(Program::Etcd) => {
                matches!(l.kind, LinkKind::ApiServerToEtcd | LinkKind::EtcdPeer | LinkKind::HealthcheckToEtcd)
            }
            Some(Program::Kubectl) => matches!(l.kind, LinkKind::AdminToApiServer | LinkKind::SuperAdminToApiServer),
            Some(Program::MetricsServer) => {
                let ms = crate::model::topology::ComponentKind::MetricsServer.name();
                l.client == ms || l.server == ms
            }
            None => false,
        }
    }

    fn merge(&mut self, other: &Evidence) {
        let fill = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        };
        fill(&mut self.address, &other.address);
        fill(&mut self.subject_cn, &other.subject_cn);
        fill(&mut self.file, &other.file);
        fill(&mut self.peer, &other.peer);
        if self.program.is_none() {
            self.program = other.program;
        }
    }
}

/// One recognised message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The line of the input it is on (from 1).
    pub line: usize,
    /// The message as printed.
    pub text: String,
    /// What it means.
    pub cause: Cause,
    /// Whose certificate is at fault.
    pub side: Side,
    /// Whose wording it is.
    pub source: Source,
    /// Whether the process that printed it was the server (it logged a refused connection).
    pub server_view: bool,
    /// What the text says around it.
    pub evidence: Evidence,
}

impl Message {
    fn same_as(&self, other: &Message) -> bool {
        self.cause == other.cause && self.side == other.side && self.evidence == other.evidence
    }
}

/// Every TLS error message in a text, in order, repeats kept once.
pub fn recognise(text: &str) -> Vec<Message> {
    recognise::messages(text)
}

/// The cause in plain words.
pub fn plain(m: &Message) -> String {
    let e = &m.evidence;
    let whose = match m.side {
        Side::Server => "the server's certificate",
        Side::Client => "the client's certificate",
    };
    let verifier = match m.side {
        Side::Server => "the client",
        Side::Client => "the server",
    };
    let host = e.host.as_deref().unwrap_or("the address dialled");
    match m.cause {
        Cause::UnknownAuthority => match (&e.authority, e.signature_mismatch) {
            (Some(ca), true) => format!(
                "{whose} names \"{ca}\" as its issuer, and {verifier} trusts a CA of that name, but with another key: \
                 the certificate comes from another CA with the same name (a cluster initialised again, or files from \
                 another cluster)"
            ),
            (Some(ca), false) => format!("{whose} was not signed by the CA {verifier} trusts (it tried \"{ca}\")"),
            _ => format!("{whose} was not signed by any CA {verifier} trusts"),
        },
        Cause::NameMismatch if !e.valid_for.is_empty() => format!(
            "the server's certificate does not cover {host}, the name or address the client checked: it is valid for {}",
            e.valid_for.join(", ")
        ),
        Cause::NameMismatch => format!("the server's certificate does not cover {host}, the name or address the client checked"),
        Cause::NoIpSans => format!(
            "the client dialled the IP address {host}, and the server's certificate has no IP address among its SANs \
             (only DNS names; a kubelet's self-signed serving certificate is like that)"
        ),
        Cause::LegacyCommonName => {
            "the server's certificate has its name only in the CN and no SANs; Go ignores the CN since 1.15".into()
        }
        Cause::Expired => match (&e.not_after, &e.current_time) {
            (Some(after), Some(now)) => format!("{whose} expired at {after} (the verifier's clock said {now})"),
            _ => format!("{whose} has expired (or the verifier's clock is wrong)"),
        },
        Cause::NotYetValid => match (&e.not_before, &e.current_time) {
            (Some(before), Some(now)) => {
                format!("{whose} is valid only from {before} (the verifier's clock said {now}): issued in the future, or a clock is wrong")
            }
            _ => format!("{whose} is not valid yet: issued in the future, or a clock is wrong"),
        },
        Cause::IncompatibleUsage => match m.side {
            Side::Server => "the server's certificate lacks the serverAuth extended key usage".into(),
            Side::Client => "the client's certificate lacks the clientAuth extended key usage".into(),
        },
        Cause::NotACa => format!("the certificate that signed {whose} is not a CA (no CA:TRUE basic constraint)"),
        Cause::SelfSigned => format!("{whose} is self-signed and {verifier} does not trust it"),
        Cause::SignatureFailure => format!(
            "{whose}'s signature does not verify with the key of the CA of that name: it comes from another CA with \
             the same name"
        ),
        Cause::RemoteUnknownCa => match m.side {
            Side::Client => "the server refused the client's certificate: it does not trust the CA that signed it".into(),
            Side::Server => "the client refused the server's certificate: it does not trust the CA that signed it".into(),
        },
        Cause::RemoteBadCertificate => match m.side {
            Side::Client => "the server refused the client's certificate (an untrusted CA, expired, or not for this use)".into(),
            Side::Server => {
                "the client refused the server's certificate (Go clients say \"bad certificate\" for any failed check: \
                 an untrusted CA, a name not covered, expired)"
                    .into()
            }
        },
        Cause::RemoteUnsupportedCertificate => {
            "the server refused the client's certificate for its usage: it lacks clientAuth".into()
        }
        Cause::RemoteCertificateRequired => {
            "the server requires a client certificate and the client sent none (no credential configured, or not \
             one from a CA the server asked for)"
                .into()
        }
        Cause::RemoteExpired => match m.side {
            Side::Client => "the server refused the client's certificate as expired".into(),
            Side::Server => "the client refused the server's certificate as expired".into(),
        },
        Cause::KeyMismatch => "the private key does not belong to the certificate it is paired with".into(),
        Cause::NoReason => {
            "the client gave up without a reason: the server refused the TLS handshake (etcd does not tell its \
             clients why), or nothing answered; the server's log says which (etcd: `rejected connection from ...`, \
             which explain reads too)"
                .into()
        }
        Cause::Unauthorized => {
            "the TLS handshake worked but the apiserver did not authenticate the request: the client certificate is \
             from a CA not in its --client-ca-file, expired, or there is no credential"
                .into()
        }
    }
}

impl Cause {
    fn is_remote_alert(self) -> bool {
        matches!(
            self,
            Cause::RemoteUnknownCa
                | Cause::RemoteBadCertificate
                | Cause::RemoteUnsupportedCertificate
                | Cause::RemoteCertificateRequired
                | Cause::RemoteExpired
        )
    }

    /// The kinds of verify's findings that explain this cause.
    fn finding_kinds(self) -> &'static [FindingKind] {
        use FindingKind as K;
        match self {
            Cause::UnknownAuthority
            | Cause::SelfSigned
            | Cause::SignatureFailure
            | Cause::NotACa
            | Cause::RemoteUnknownCa => &[K::WrongCa, K::StaleCaData, K::Missing, K::Unreadable],
            Cause::RemoteBadCertificate => {
                &[K::WrongCa, K::StaleCaData, K::Expired, K::NotYetValid, K::Usage, K::SanMissing, K::KeyMismatch]
            }
            Cause::NameMismatch | Cause::NoIpSans | Cause::LegacyCommonName => &[K::SanMissing, K::SanProfile],
            Cause::Expired | Cause::RemoteExpired => &[K::Expired],
            Cause::NotYetValid => &[K::NotYetValid],
            Cause::IncompatibleUsage | Cause::RemoteUnsupportedCertificate => &[K::Usage],
            Cause::RemoteCertificateRequired => &[K::Missing, K::External, K::Unreadable],
            Cause::KeyMismatch => &[K::KeyMismatch],
            Cause::Unauthorized => &[K::WrongCa, K::Expired, K::NotYetValid, K::Identity, K::Missing],
            Cause::NoReason => &[
                K::WrongCa,
                K::StaleCaData,
                K::Expired,
                K::NotYetValid,
                K::Usage,
                K::SanMissing,
                K::KeyMismatch,
                K::Missing,
                K::Unreadable,
            ],
        }
    }
}

/// A message explained, and tied to a tree when one was given.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explained {
    /// The message.
    #[serde(flatten)]
    pub message: Message,
    /// The cause in plain words.
    pub explanation: String,
    /// What the tree says about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Tie>,
}

/// A message tied to a tree.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tie {
    /// The links the text points at (those with a culprit, if any has one).
    pub links: Vec<String>,
    /// The files at fault, with verify's finding and fix for each.
    pub culprits: Vec<Culprit>,
    /// When the tree shows nothing wrong there: what that means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A file at fault.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Culprit {
    /// The catalog entry.
    pub entry: String,
    /// The file, relative to the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The certificate in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertSummary>,
    /// verify's finding.
    pub finding: Finding,
    /// The links of the text it breaks.
    pub links: Vec<String>,
}

/// A certificate, as an operator finds it again.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// SHA-256 of the DER, hex with colons.
    pub sha256: String,
    /// NotBefore.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A tree as `explain` looks at it: its links, its files and verify's report on them.
pub struct TreeView<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The topology.
    pub topology: &'a Topology,
    /// What is on disk.
    pub inventory: &'a Inventory,
    /// verify's report.
    pub report: &'a Report,
}

/// Explain each message; with a tree, tie each to it.
pub fn explain(messages: Vec<Message>, tree: Option<&TreeView<'_>>) -> Vec<Explained> {
    messages
        .into_iter()
        .map(|m| {
            let tree = tree.map(|t| t.tie(&m));
            Explained { explanation: plain(&m), message: m, tree }
        })
        .collect()
}

impl TreeView<'_> {
    fn tie(&self, m: &Message) -> Tie {
        let candidates = self.candidates(m);
        let by_id: BTreeMap<&str, &LinkVerdict> = self.report.links.iter().map(|v| (v.id.as_str(), v)).collect();
        let kinds = m.cause.finding_kinds();
        let mut culprits: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for l in &candidates {
            let Some(v) = by_id.get(l.id.as_str()) else { continue };
            for &i in &v.findings {
                let f = &self.report.findings[i];
                if kinds.contains(&f.kind)
                    && f.severity >= Severity::Warning
                    && (m.cause == Cause::NoReason || on_side(f, l, m.side))
                {
                    culprits.entry(i).or_default().push(l.id.clone());
                }
            }
        }
        // The program a line is from (kubectl, etcd) prefers its links, when they have a culprit.
        let hinted =
            |id: &String| self.topology.links.iter().find(|l| &l.id == id).is_some_and(|l| m.evidence.hints(l));
        if culprits.values().any(|links| links.iter().any(hinted)) {
            culprits.retain(|_, links| links.iter().any(hinted));
        }
        let culprits: Vec<Culprit> =
            culprits.into_iter().map(|(i, links)| self.culprit(&self.report.findings[i], links)).collect();
        let mut links: Vec<String> = if culprits.is_empty() {
            candidates.iter().map(|l| l.id.clone()).collect()
        } else {
            culprits.iter().flat_map(|c| c.links.iter().cloned()).collect()
        };
        let mut seen = std::collections::HashSet::new();
        links.retain(|l| seen.insert(l.clone()));
        let note = culprits.is_empty().then(|| self.nothing_wrong(m, &candidates));
        Tie { links, culprits, note }
    }

    fn culprit(&self, f: &Finding, links: Vec<String>) -> Culprit {
        let entry = f.entry.as_ref().map(|e| e.to_string()).unwrap_or_default();
        let certificate = self.inventory.get(&entry).and_then(|l| l.cert.as_ref().ok()).map(|c| CertSummary {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            sha256: c.sha256.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
        });
        Culprit { entry, file: f.file.clone(), certificate, finding: f.clone(), links }
    }

    /// The tree is fine where the text points: the process runs with other files.
    fn nothing_wrong(&self, m: &Message, candidates: &[&Link]) -> String {
        let Some(l) = candidates.first() else { return "no link of the tree matches the text".into() };
        let entries: Vec<&str> = match m.side {
            Side::Server => [l.server_cert.as_deref(), l.client_trusts.as_deref()].into_iter().flatten().collect(),
            Side::Client => {
                [Some(l.client_cert.as_str()), Some(l.server_trusts.as_str())].into_iter().flatten().collect()
            }
        };
        let files: Vec<String> = entries
            .iter()
            .filter_map(|id| self.catalog.get(id))
            .filter_map(|e| e.files().first().map(|(f, _)| f.display().to_string()))
            .collect();
        format!(
            "verify finds nothing wrong with the tree's files for this: the process that printed it does not run with \
             them (another tree, an old copy); compare what it uses with {} and deploy those",
            files.join(" and ")
        )
    }

    /// The links the evidence points at; each clue narrows only if something is left.
    fn candidates(&self, m: &Message) -> Vec<&Link> {
        let e = &m.evidence;
        let mut links: Vec<&Link> = self.topology.links.iter().collect();
        let narrow = |links: &mut Vec<&Link>, keep: &dyn Fn(&Link) -> bool| {
            let kept: Vec<&Link> = links.iter().copied().filter(|l| keep(l)).collect();
            if !kept.is_empty() {
                *links = kept;
            }
        };
        if let Some(file) = &e.file {
            let ids = self.entries_with_file(file);
            narrow(&mut links, &|l| link_entries(l).any(|id| ids.contains(&id)));
        }
        if let Some(cn) = &e.subject_cn {
            let ids = self.entries_where(|c| &c.subject_cn == cn);
            narrow(&mut links, &|l| link_entries(l).any(|id| ids.contains(&id)));
        }
        if !e.valid_for.is_empty() {
            let names: Vec<San> = e.valid_for.iter().map(|n| San::guess(n)).collect();
            let ids = self.entries_where(|c| names.iter().all(|n| c.sans.contains(n)));
            narrow(&mut links, &|l| l.server_cert.as_deref().is_some_and(|s| ids.contains(&s)));
        }
        if let Some(ca) = &e.authority {
            let ids = self.entries_where(|c| c.is_ca && &c.subject_cn == ca);
            narrow(&mut links, &|l| {
                let trust = match m.side {
                    Side::Server => l.client_trusts.as_deref(),
                    Side::Client => Some(l.server_trusts.as_str()),
                };
                trust.is_some_and(|t| ids.contains(&t))
            });
        }
        let (host, port) = split_address(e.address.as_deref());
        if let Some(h) = e.host.as_deref().or(host.as_deref()) {
            let h = San::guess(h);
            narrow(&mut links, &|l| l.dial.host == h);
        }
        if let Some(p) = port {
            narrow(&mut links, &|l| l.dial.port == p);
        }
        // metrics-server's own lines are about its links (its scrape of a kubelet dials the
        // address the apiserver dials too).
        if e.program == Some(Program::MetricsServer) {
            narrow(&mut links, &|l| e.hints(l));
        }
        links
    }

    fn entries_where(&self, keep: impl Fn(&CertInfo) -> bool) -> Vec<&str> {
        self.catalog
            .entries
            .iter()
            .filter(|e| self.inventory.get(&e.id).and_then(|l| l.cert.as_ref().ok()).is_some_and(&keep))
            .map(|e| e.id.as_str())
            .collect()
    }

    fn entries_with_file(&self, file: &str) -> Vec<&str> {
        let file = std::path::Path::new(file);
        self.catalog
            .entries
            .iter()
            .filter(|e| e.files().iter().any(|(f, _)| file.ends_with(f) || self.inventory.root.join(f) == file))
            .map(|e| e.id.as_str())
            .collect()
    }
}

/// Whether a finding is about the side whose certificate was refused.
fn on_side(f: &Finding, l: &Link, side: Side) -> bool {
    let Some(entry) = f.entry.as_ref() else { return false };
    match side {
        Side::Server => {
            l.server_cert.as_ref() == Some(entry)
                || l.client_trusts.as_ref() == Some(entry)
                || (f.kind == FindingKind::StaleCaData && *entry == l.client_cert)
        }
        Side::Client => *entry == l.client_cert || *entry == l.server_trusts,
    }
}

fn link_entries(l: &Link) -> impl Iterator<Item = &str> {
    [Some(l.client_cert.as_str()), l.server_cert.as_deref(), Some(l.server_trusts.as_str()), l.client_trusts.as_deref()]
        .into_iter()
        .flatten()
}

/// `host:port`, `[v6]:port` or `host` → host and port.
fn split_address(address: Option<&str>) -> (Option<String>, Option<u16>) {
    let Some(a) = address else { return (None, None) };
    if let Some(rest) = a.strip_prefix('[') {
        let (host, port) = rest.split_once(']').unwrap_or((rest, ""));
        return (Some(host.to_string()), port.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (Some(h.to_string()), p.parse().ok()),
        _ => (Some(a.to_string()), None),
    }
}

#[cfg(test)]
mod tests;
