//! Disk → inventory: what a file holds, recognised by its content (a PEM tag, a kubeconfig's
//! YAML, a DER certificate), never by its name, and every certificate of a tree.
//!
//! A file is one of: certificates (one, or a chain), certificate signing requests, private
//! keys (alone or next to their certificate, as in kubelet-client-current.pem), or a
//! kubeconfig. What a private key is never leaves this module: only its algorithm, size and
//! which certificates it belongs to.

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::*;

use crate::disk::readfile::Limit;
use crate::error::{Error, Result};
use crate::model::spec::{KeyAlgorithm, San};
use crate::x509::certinfo::CertInfo;
use crate::x509::issue::PrivateKey;
use crate::x509::request::CertificateRequest;
use crate::x509::usage::{KeyUsage, PublicKeyKind};

/// The directory `init --force` saves replaced files in; never part of the tree's inventory.
pub use crate::model::vocabulary::state::BACKUP as BACKUP_DIR;

/// What one file holds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// The file, as named.
    pub path: PathBuf,
    /// What kind of file it is.
    pub kind: FileKind,
    /// The certificates, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertView>,
    /// The certificate signing requests, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<CsrView>,
    /// The private keys: what they are, never what they hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyView>,
    /// The kubeconfig.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<KubeconfigView>,
    /// A component's configuration (a static pod manifest, a kubelet's or kube-proxy's
    /// configuration file): its TLS settings and what the files they name hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<config::ConfigView>,
    /// The SHA-256 of the file's bytes: what tells a byte-for-byte copy without reading it again.
    #[serde(skip)]
    pub sha256: Vec<u8>,
}

/// What kind of file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// One certificate (PEM or DER).
    Certificate,
    /// Several certificates (a chain or a bundle).
    CertificateChain,
    /// One or more certificate signing requests.
    CertificateRequest,
    /// A private key.
    PrivateKey,
    /// Certificates and their key in one file (kubelet-client-current.pem).
    CertificateAndKey,
    /// A kubeconfig.
    Kubeconfig,
    /// A component's configuration: a static pod manifest, a `KubeletConfiguration`, a
    /// `KubeProxyConfiguration`.
    Configuration,
}

impl FileKind {
    /// How a person would call it.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Certificate => "certificate",
            FileKind::CertificateChain => "certificate chain",
            FileKind::CertificateRequest => "certificate signing request",
            FileKind::PrivateKey => "private key",
            FileKind::CertificateAndKey => "certificate and private key",
            FileKind::Kubeconfig => "kubeconfig",
            FileKind::Configuration => "component configuration",
        }
    }
}

/// Whether a certificate is valid at the instant asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertValidity {
    /// NotBefore ≤ now ≤ NotAfter.
    Valid,
    /// Past NotAfter.
    Expired,
    /// Before NotBefore.
    NotYetValid,
}

/// One certificate with what it means for Kubernetes and for the instant asked about.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertView {
    /// Where it was found in its file: `block 1`, `clusters[kubernetes].certificate-authority-data`.
    pub source: String,
    /// The Kubernetes user it authenticates as (the CN).
    pub user: String,
    /// The Kubernetes groups (the O values).
    pub groups: Vec<String>,
    /// The issuer's CN.
    pub issuer_cn: String,
    /// Valid, expired or not yet valid.
    pub validity: CertValidity,
    /// `364d left`, `expired 660d ago`, `valid in 2h`.
    pub time_left: String,
    /// NotAfter minus the instant, in seconds (negative once expired).
    pub seconds_left: i64,
    /// In a chain: whether the next certificate of the file signed this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by_next: Option<bool>,
    /// Everything the certificate says.
    #[serde(flatten)]
    pub info: std::sync::Arc<CertInfo>,
}

/// One certificate signing request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrView {
    /// Where it was found in its file.
    pub source: String,
    /// The whole subject.
    pub subject: String,
    /// The user asked for (the CN).
    pub user: String,
    /// The groups asked for (the O values).
    pub groups: Vec<String>,
    /// DNS and IP SANs of the extension request.
    pub sans: Vec<San>,
    /// Other SANs (email, URI, ...), as text.
    pub other_sans: Vec<String>,
    /// Key usage asked for.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usage asked for (by name, others by OID).
    pub ext_key_usage: Vec<String>,
    /// `RSA-2048`, `ECDSA-P256`, ...
    pub key_algorithm: PublicKeyKind,
    /// Key size in bits.
    pub key_bits: usize,
    /// The signature algorithm.
    pub signature_algorithm: String,
    /// Whether the request is signed by the key it carries (proof of possession).
    pub signature_valid: bool,
    /// Why its key is too weak to certify, if it is.
    pub weak_key: Option<String>,
}

/// A private key: what it is and where its certificates are. Never its material.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    /// Where it was found in its file.
    pub source: String,
    /// `ecdsa-p256`, `rsa-2048`, ...
    pub algorithm: KeyAlgorithm,
    /// Key size in bits.
    pub bits: usize,
    /// `PKCS#1`, `SEC1` or `PKCS#8`.
    pub format: &'static str,
    /// Where certificates were looked for (a kubeadm/kubepki tree, or the key's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched: Option<PathBuf>,
    /// The certificates whose public key is this key's.
    pub matches: Vec<KeyMatch>,
}

/// A certificate a key belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMatch {
    /// The file (relative to where the search started).
    pub path: PathBuf,
    /// Where in the file.
    pub source: String,
    /// The certificate's CN.
    pub subject_cn: String,
}

/// A kubeconfig: every cluster, user and context, and every certificate in it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigView {
    /// `current-context` (empty when unset).
    pub current_context: String,
    /// Every context.
    pub contexts: Vec<ContextView>,
    /// Every cluster.
    pub clusters: Vec<ClusterView>,
    /// Every user.
    pub users: Vec<UserView>,
}

/// A kubeconfig context.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextView {
    /// Its name.
    pub name: String,
    /// The cluster it names.
    pub cluster: String,
    /// The user it names.
    pub user: String,
}

/// A kubeconfig cluster.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// Its name.
    pub name: String,
    /// The server URL.
    pub server: String,
    /// The CA certificates the client trusts (`None`: the system's roots).
    pub certificate_authority: Option<CertSource>,
}

/// A kubeconfig user.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Its name.
    pub name: String,
    /// The client certificate, if the user has one.
    pub client_certificate: Option<CertSource>,
    /// The client key: embedded (what it is) or a file reference.
    pub client_key: Option<KeySource>,
    /// Whether the embedded client key belongs to the embedded client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_matches_certificate: Option<bool>,
    /// Other ways it authenticates (`token`, `exec`, ...), by field name only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_auth: Vec<String>,
}

/// Where a kubeconfig's certificate comes from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum CertSource {
    /// `...-data`: embedded.
    Embedded {
        /// The certificates.
        certificates: Vec<CertView>,
    },
    /// A file reference, as kubelet.conf has after bootstrap.
    File(FileRef),
}

/// Where a kubeconfig's client key comes from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum KeySource {
    /// `client-key-data`.
    Embedded {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },
    /// `client-key`.
    File(FileRef),
}

/// A file a kubeconfig or a component's setting refers to.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    /// The path as written in the kubeconfig.
    pub reference: String,
    /// Where it was looked for (relative references are relative to the kubeconfig).
    pub resolved: PathBuf,
    /// Whether it could be read.
    pub readable: bool,
    /// Why it could not be read (the system's error) or understood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The certificates in it (for certificate references).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertView>,
}

impl FileRef {
    /// The file `reference` names, found at `resolved`, read: whether it can be, and with
    /// `certificates`, those it holds (whatever form they take); a key is only opened. The one
    /// reader of referenced files (kubeconfigs' and configurations').
    pub(crate) fn read(reference: &str, resolved: PathBuf, certificates: bool, at: OffsetDateTime) -> FileRef {
        let mut r = FileRef {
            reference: reference.into(),
            resolved: resolved.clone(),
            readable: false,
            problem: None,
            certificates: vec![],
        };
        match crate::disk::readfile::read(&resolved, Limit::Kubeconfig) {
            Err(e) => r.problem = Some(crate::disk::readfile::reason(&e)),
            Ok(_) if !certificates => r.readable = true,
            Ok(bytes) => {
                r.readable = true;
                match read_bytes(&resolved, &bytes, sha256(&bytes), &Refs::Host, at) {
                    Ok(found) => {
                        r.certificates = found.all_certificates().into_iter().cloned().collect();
                        if r.certificates.is_empty() {
                            r.problem = Some(format!("holds no certificate ({})", found.kind.describe()));
                        }
                    }
                    Err(e) => r.problem = Some(e.to_string()),
                }
            }
        }
        r
    }
}

/// Inspect one file at instant `at`: recognise it by content, parse it, and for a lone
/// private key find the certificates it belongs to (see [`key_search_root`]).
pub fn inspect(path: &Path, at: OffsetDateTime) -> Result<FileReport> {
    let mut report = read(path, &Refs::Host, at)?;
    if report.kind == FileKind::PrivateKey {
        let key = read_key_only(path)?;
        let (root, recursive) = key_search_root(path);
        let mut matches = Vec::new();
        for (file, found) in scan(&root, recursive, at) {
            let Ok(found) = found else { continue };
            for c in found.all_certificates() {
                if key.matches(&c.info) {
                    let rel = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
                    matches.push(KeyMatch {
                        path: rel,
                        source: c.source.clone(),
                        subject_cn: c.info.subject_cn.clone(),
                    });
                }
            }
        }
        report.keys[0].searched = Some(root);
        report.keys[0].matches = matches;
    }
    Ok(report)
}

/// How a kubeconfig's absolute file references are resolved.
#[derive(Clone, Debug)]
pub enum Refs {
    /// As they are, on this host.
    Host,
    /// Inside this directory, which mirrors a node's filesystem (`nodes/<node>/` of a
    /// kubepki tree); then on the host.
    Under(PathBuf),
}

/// Read and parse one file, recognised by its content; `at` is the instant validity is
/// judged at. Private keys are described but not matched (see [`inspect`]).
pub fn read(path: &Path, refs: &Refs, at: OffsetDateTime) -> Result<FileReport> {
    let bytes = crate::disk::readfile::read(path, Limit::Kubeconfig)?;
    read_bytes(path, &bytes, sha256(&bytes), refs, at)
}

/// The SHA-256 of a file's bytes.
pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

/// [`read`] of bytes already read from `path`.
fn read_bytes(path: &Path, bytes: &[u8], sha256: Vec<u8>, refs: &Refs, at: OffsetDateTime) -> Result<FileReport> {
    let bad = |p: String| Error::bad_file(path, p);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the file is empty".into()));
    }
    let report = |kind, certificates, requests, keys, kubeconfig| FileReport {
        sha256: sha256.clone(),
        path: path.to_path_buf(),
        kind,
        certificates,
        requests,
        keys,
        kubeconfig,
        configuration: None,
    };
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains("-----BEGIN ") {
            let (certificates, requests, keys) = read_pem(text, path, at)?;
            let kind = match (certificates.len(), requests.is_empty(), keys.is_empty()) {
                (0, false, true) => FileKind::CertificateRequest,
                (0, true, false) => FileKind::PrivateKey,
                (1, true, true) => FileKind::Certificate,
                (_, true, true) => FileKind::CertificateChain,
                (n, true, false) if n > 0 => FileKind::CertificateAndKey,
                _ => return Err(bad("mixes certificate requests with other PEM blocks".into())),
            };
            return Ok(report(kind, certificates, requests, keys, None));
        }
        let configuration =
            ["kind: Pod", "KubeletConfiguration", "KubeProxyConfiguration"].iter().any(|k| text.contains(k));
        if let Some(m) = configuration.then(|| crate::audit::wiring::recognise(text, path)).flatten() {
            let mut r = report(FileKind::Configuration, vec![], vec![], vec![], None);
            r.configuration = Some(config::view(&m, path, at));
            return Ok(r);
        }
        if looks_like_kubeconfig(text) {
            let view = read_kubeconfig(text, path, refs, at)?;
            return Ok(report(FileKind::Kubeconfig, vec![], vec![], vec![], Some(view)));
        }
    }
    match CertInfo::from_der(bytes) {
        Ok(info) => Ok(report(FileKind::Certificate, vec![view(info, "DER".into(), at)], vec![], vec![], None)),
        Err(e) if bytes.first() == Some(&0x30) => Err(bad(format!("DER that is {e} (truncated or corrupt?)"))),
        Err(_) => Err(bad("neither PEM, a DER certificate, nor a kubeconfig".into())),
    }
}

impl FileReport {
    /// Every certificate of the file: its own, and those embedded in or referenced by a
    /// kubeconfig (CA data first, then client certificates).
    pub fn all_certificates(&self) -> Vec<&CertView> {
        let mut out: Vec<&CertView> = self.certificates.iter().collect();
        if let Some(k) = &self.kubeconfig {
            let sources = k.clusters.iter().filter_map(|c| c.certificate_authority.as_ref());
            for s in sources.chain(k.users.iter().filter_map(|u| u.client_certificate.as_ref())) {
                out.extend(s.certificates());
            }
        }
        out
    }
}

impl CertSource {
    /// The certificates (none for an unreadable file reference).
    pub fn certificates(&self) -> &[CertView] {
        match self {
            CertSource::Embedded { certificates } => certificates,
            CertSource::File(f) => &f.certificates,
        }
    }
}

/// A certificate as seen at instant `at`; `source` says where in its file it was.
pub fn view(info: CertInfo, source: String, at: OffsetDateTime) -> CertView {
    let (validity, time_left) = time_left(info.not_before, info.not_after, at);
    CertView {
        source,
        user: info.subject_cn.clone(),
        groups: info.orgs.clone(),
        issuer_cn: issuer_cn(&info),
        validity,
        time_left,
        seconds_left: (info.not_after - at).whole_seconds(),
        signed_by_next: None,
        info: std::sync::Arc::new(info),
    }
}

/// CertValidity at `at`, and the time left as people say it: `364d left`, `expired 660d ago`,
/// `valid in 3h`.
pub fn time_left(not_before: OffsetDateTime, not_after: OffsetDateTime, at: OffsetDateTime) -> (CertValidity, String) {
    if at > not_after {
        (CertValidity::Expired, format!("expired {} ago", span(at - not_after)))
    } else if at < not_before {
        (CertValidity::NotYetValid, format!("valid in {}", span(not_before - at)))
    } else {
        (CertValidity::Valid, format!("{} left", span(not_after - at)))
    }
}

/// A duration in its largest whole unit: `364d`, `23h`, `5m`, `0m`.
pub fn span(d: ::time::Duration) -> String {
    if d.whole_days() > 0 {
        format!("{}d", d.whole_days())
    } else if d.whole_hours() > 0 {
        format!("{}h", d.whole_hours())
    } else {
        format!("{}m", d.whole_minutes())
    }
}

fn issuer_cn(info: &CertInfo) -> String {
    X509Certificate::from_der(&info.der)
        .ok()
        .and_then(|(_, x)| x.issuer().iter_common_name().next().and_then(|a| a.as_str().ok().map(str::to_string)))
        .unwrap_or_default()
}

/// Every PEM block of a text: certificates, requests and keys; anything else is an error.
fn read_pem(text: &str, path: &Path, at: OffsetDateTime) -> Result<(Vec<CertView>, Vec<CsrView>, Vec<KeyView>)> {
    let bad = |p: String| Error::bad_file(path, p);
    let blocks = ::pem::parse_many(text).map_err(|e| bad(format!("not valid PEM (damaged base64?): {e}")))?;
    let begun = text.matches("-----BEGIN ").count();
    if blocks.len() < begun {
        return Err(bad(format!("PEM block {} has no matching END line (truncated?)", blocks.len() + 1)));
    }
    let (mut certs, mut csrs, mut keys) = (Vec::new(), Vec::new(), Vec::<(PrivateKey, KeyView)>::new());
    for (i, block) in blocks.iter().enumerate() {
        let source = format!("block {}", i + 1);
        let at_block = |e: String| bad(format!("block {} ({}): {e}", i + 1, block.tag()));
        match block.tag() {
            "CERTIFICATE" => {
                let info = CertInfo::from_der(block.contents()).map_err(at_block)?;
                certs.push(view(info, source, at));
            }
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                csrs.push(read_csr(block.contents(), source).map_err(at_block)?);
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                let key = PrivateKey::from_pem(&::pem::encode(block), path)?;
                let v = key_view(&key, block.tag(), source);
                keys.push((key, v));
            }
            other => {
                return Err(bad(format!(
                "{source} is a PEM block of type '{other}', expected CERTIFICATE, CERTIFICATE REQUEST or a private key"
            )))
            }
        }
    }
    for i in 1..certs.len() {
        let signed = certs[i - 1].info.is_signed_by(&certs[i].info);
        certs[i - 1].signed_by_next = Some(signed);
    }
    // A key next to its certificates (kubelet-client-current.pem): which of them it belongs to.
    let keys = keys
        .into_iter()
        .map(|(key, mut v)| {
            v.matches = certs
                .iter()
                .filter(|c| key.matches(&c.info))
                .map(|c| KeyMatch {
                    path: path.to_path_buf(),
                    source: c.source.clone(),
                    subject_cn: c.info.subject_cn.clone(),
                })
                .collect();
            v
        })
        .collect();
    Ok((certs, csrs, keys))
}

fn key_view(key: &PrivateKey, tag: &str, source: String) -> KeyView {
    let format = match tag {
        "RSA PRIVATE KEY" => "PKCS#1",
        "EC PRIVATE KEY" => "SEC1",
        _ => "PKCS#8",
    };
    let bits = match key.algorithm() {
        KeyAlgorithm::EcdsaP256 => 256,
        KeyAlgorithm::EcdsaP384 => 384,
        KeyAlgorithm::Rsa2048 => 2048,
        KeyAlgorithm::Rsa3072 => 3072,
        KeyAlgorithm::Rsa4096 => 4096,
    };
    KeyView { source, algorithm: key.algorithm(), bits, format, searched: None, matches: Vec::new() }
}

/// The one private key of a file known to hold exactly one.
fn read_key_only(path: &Path) -> Result<PrivateKey> {
    let text = crate::disk::readfile::read_text(path, Limit::Pem)?;
    PrivateKey::from_pem(&text, path)
}

fn read_csr(der: &[u8], source: String) -> std::result::Result<CsrView, String> {
    let r = CertificateRequest::from_der(der)?;
    let weak_key = r.weak_key();
    Ok(CsrView {
        source,
        subject: r.subject,
        user: r.cn,
        groups: r.orgs,
        sans: r.sans,
        other_sans: r.other_sans,
        key_usage: r.key_usage,
        ext_key_usage: r.ext_key_usage.iter().map(|u| u.name().to_string()).chain(r.other_ext_key_usage).collect(),
        key_bits: r.key.bits(),
        key_algorithm: r.key,
        signature_algorithm: r.signature_algorithm,
        signature_valid: r.signature_ok,
        weak_key,
    })
}

/// Whether a text is a YAML mapping with `apiVersion` or `clusters` at the top (or the JSON
/// form kubectl also reads).
fn looks_like_kubeconfig(text: &str) -> bool {
    let json = text.trim_start().starts_with('{') && (text.contains("\"apiVersion\"") || text.contains("\"clusters\""));
    json || text.lines().any(|l| l.starts_with("apiVersion:") || l.starts_with("clusters:"))
}

fn read_kubeconfig(text: &str, path: &Path, refs: &Refs, at: OffsetDateTime) -> Result<KubeconfigView> {
    let bad = |p: String| Error::bad_file(path, p);
    let file = crate::x509::kubeconfig::parse_file(text, path)?;
    let mut view = KubeconfigView {
        current_context: file.current_context.clone(),
        contexts: file
            .contexts
            .iter()
            .map(|c| ContextView { name: c.name.clone(), cluster: c.value.cluster.clone(), user: c.value.user.clone() })
            .collect(),
        clusters: Vec::new(),
        users: Vec::new(),
    };
    let ctx = Embedded { path, refs, at };
    for c in &file.clusters {
        let (name, f) = (&c.name, &c.value);
        if f.server.is_empty() {
            return Err(bad(format!("cluster '{name}' has no server")));
        }
        let label = format!("clusters[{name}]");
        view.clusters.push(ClusterView {
            name: name.clone(),
            server: f.server.clone(),
            certificate_authority: ctx.cert_source(
                &label,
                "certificate-authority",
                f.ca_data.clone(),
                f.ca_file.clone(),
            )?,
        });
    }
    for u in &file.users {
        let (name, f) = (&u.name, &u.value);
        let label = format!("users[{name}]");
        let cert = ctx.cert_source(&label, "client-certificate", f.cert_data.clone(), f.cert_file.clone())?;
        let mut key_matches_certificate = None;
        let client_key = match (&f.key_data, &f.key_file) {
            (Some(data), _) => {
                let pem = ctx.decode(&format!("{label}.client-key-data"), data)?;
                let key = PrivateKey::from_pem(&pem, path)
                    .map_err(|_| bad(format!("{label}.client-key-data is not a readable private key")))?;
                if let Some(CertSource::Embedded { certificates }) = &cert {
                    key_matches_certificate = certificates.first().map(|c| key.matches(&c.info));
                }
                Some(KeySource::Embedded { algorithm: key.algorithm() })
            }
            (None, Some(reference)) => Some(KeySource::File(ctx.file_ref(reference, false))),
            (None, None) => None,
        };
        view.users.push(UserView {
            name: name.clone(),
            client_certificate: cert,
            client_key,
            key_matches_certificate,
            other_auth: f.other_auth(),
        });
    }
    Ok(view)
}

/// What reading a kubeconfig's embedded data and references needs.
struct Embedded<'a> {
    path: &'a Path,
    refs: &'a Refs,
    at: OffsetDateTime,
}

impl Embedded<'_> {
    fn decode(&self, field: &str, data: &str) -> Result<String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| Error::bad_file(self.path, format!("{field} is not valid base64")))?;
        String::from_utf8(bytes).map_err(|_| Error::bad_file(self.path, format!("{field} is not PEM text")))
    }

    /// `<field>-data` (embedded) or `<field>` (a file reference).
    fn cert_source(
        &self,
        label: &str,
        field: &str,
        data: Option<String>,
        file: Option<String>,
    ) -> Result<Option<CertSource>> {
        let field = format!("{label}.{field}");
        if let Some(data) = data {
            let pem = self.decode(&format!("{field}-data"), &data)?;
            let blocks = ::pem::parse_many(&pem)
                .map_err(|e| Error::bad_file(self.path, format!("{field}-data is not valid PEM: {e}")))?;
            if blocks.is_empty() {
                return Err(Error::bad_file(self.path, format!("{field}-data holds no PEM block")));
            }
            let mut certificates = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                if b.tag() != "CERTIFICATE" {
                    return Err(Error::bad_file(
                        self.path,
                        format!("{field}-data holds a PEM block of type '{}', expected CERTIFICATE", b.tag()),
                    ));
                }
                let info = CertInfo::from_der(b.contents())
                    .map_err(|e| Error::bad_file(self.path, format!("{field}-data: {e}")))?;
                let source =
                    if blocks.len() == 1 { format!("{field}-data") } else { format!("{field}-data[{}]", i + 1) };
                certificates.push(view(info, source, self.at));
            }
            return Ok(Some(CertSource::Embedded { certificates }));
        }
        Ok(file.map(|reference| CertSource::File(self.file_ref(&reference, true))))
    }

    /// Resolve and read a file reference; `certs`: collect the certificates in it.
    fn file_ref(&self, reference: &str, certs: bool) -> FileRef {
        FileRef::read(reference, resolve_ref(self.path, reference, self.refs), certs, self.at)
    }
}

/// Where a kubeconfig's file reference points: relative to the kubeconfig's directory, or
/// absolute (inside the node's mirrored filesystem first, for a kubepki tree).
fn resolve_ref(kubeconfig: &Path, reference: &str, refs: &Refs) -> PathBuf {
    let r = Path::new(reference);
    if r.is_relative() {
        return kubeconfig.parent().unwrap_or(Path::new(".")).join(r);
    }
    if let Refs::Under(root) = refs {
        let inside = root.join(r.strip_prefix("/").unwrap_or(r));
        if inside.exists() {
            return inside;
        }
    }
    r.to_path_buf()
}

/// Where to look for a key's certificates: the kubeadm/kubepki tree the key is in (the
/// nearest ancestor with `pki/` and kubeconfigs or `nodes/`; else the nearest with `pki/`),
/// searched recursively; else the key's own directory only. Returns `(dir, recursive)`.
pub fn key_search_root(key: &Path) -> (PathBuf, bool) {
    let dir = match key.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let abs = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let has_pki = |a: &Path| a.join("pki").is_dir();
    let is_tree = |a: &Path| {
        has_pki(a)
            && (a.join("nodes").is_dir()
                || std::fs::read_dir(a)
                    .is_ok_and(|rd| rd.flatten().any(|e| e.path().extension().is_some_and(|x| x == "conf"))))
    };
    if let Some(root) = abs.ancestors().find(|a| is_tree(a)).or_else(|| abs.ancestors().find(|a| has_pki(a))) {
        return (root.to_path_buf(), true);
    }
    (abs, false)
}

/// Every `*.crt`, `*.pem` and `*.conf` file under `dir` (recursive: all depths; else the
/// directory itself), in path order, skipping `.kubepki-backup/` and symlinked directories,
/// each read with [`read`] (absolute kubeconfig references resolved inside `nodes/<node>/`
/// for files there). A file that cannot be read or understood is an `Err` in the list.
pub fn scan(dir: &Path, recursive: bool, at: OffsetDateTime) -> Vec<(PathBuf, Result<FileReport>)> {
    let mut files = collect(dir, recursive);
    files.par_sort_unstable();
    // Reading and parsing dominate, file by file: on every core, in the sorted order. A file
    // whose report does not depend on where it is (certificates only, or a kubeconfig as
    // kubepki writes it: all embedded, no file to resolve) that another file holds byte for
    // byte (a CA's copy, kube-proxy.conf's, in every node bundle) is read once: its report is
    // the other's, under its own name.
    // By the SHA-256 of the bytes, taken once per file (the report keeps it).
    let seen: std::sync::Mutex<std::collections::HashMap<Vec<u8>, FileReport>> = Default::default();
    files
        .into_par_iter()
        .map(|f| {
            let refs = node_root(dir, &f).map_or(Refs::Host, Refs::Under);
            let bytes = match crate::disk::readfile::read(&f, Limit::Kubeconfig) {
                Ok(b) => b,
                Err(e) => return (f, Err(e)),
            };
            // Only reports that hold anywhere are remembered: bytes seen before are such a file.
            let digest = sha256(&bytes);
            let known = seen.lock().unwrap_or_else(|p| p.into_inner()).get(&digest).cloned();
            if let Some(mut r) = known {
                r.path = f.clone();
                return (f, Ok(r));
            }
            let same_anywhere = std::str::from_utf8(&bytes).is_ok_and(|t| {
                let certificates =
                    t.contains("-----BEGIN CERTIFICATE-----") && !t.contains("PRIVATE KEY") && !t.contains("REQUEST");
                certificates || crate::x509::kubeconfig::rendered(t).is_some()
            });
            let r = read_bytes(&f, &bytes, digest, &refs, at);
            if let (true, Ok(report)) = (same_anywhere, &r) {
                seen.lock().unwrap_or_else(|p| p.into_inner()).insert(report.sha256.clone(), report.clone());
            }
            (f, r)
        })
        .collect()
}

/// The files of `dir` by a certificate's or kubeconfig's name, and those of its
/// subdirectories when `recursive` (each subdirectory on any core: thousands of node bundles).
fn collect(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let (mut out, mut subdirs) = (Vec::new(), Vec::new());
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if recursive && e.file_name() != BACKUP_DIR {
                subdirs.push(p);
            }
        // Not only regular files: a device or FIFO by a certificate's name is reported
        // (unreadable), not passed over.
        } else if p.extension().is_some_and(|x| x == "crt" || x == "pem" || x == "conf")
            && !(ft.is_symlink() && p.is_dir())
        {
            out.push(p);
        }
    }
    out.par_extend(subdirs.into_par_iter().flat_map_iter(|d| collect(&d, recursive)));
    out
}

/// `<tree>/nodes/<node>` for a file under it.
fn node_root(tree: &Path, file: &Path) -> Option<PathBuf> {
    let rel = file.strip_prefix(tree).ok()?;
    let mut parts = rel.components();
    (parts.next()?.as_os_str() == "nodes").then_some(())?;
    let node = parts.next()?;
    Some(tree.join("nodes").join(node))
}

pub mod config;

#[cfg(test)]
mod tests;
