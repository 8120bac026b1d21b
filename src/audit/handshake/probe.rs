//! Probing a running server with any credential: a catalog entry of the tree, a kubeconfig
//! (any context), or certificate, key and CA files. The outcome is explained in words from the
//! certificates themselves (the server's against the CAs the client trusts, the client's
//! against what the server said), never in rustls' debug names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use serde::Serialize;
use time::OffsetDateTime;

use super::{provider, server_name, unix, FixedTime, TIMEOUT};
use crate::audit::verify::covers;
use crate::disk::inventory::Inventory;
use crate::disk::readfile::{read_text, reason, Limit};
use crate::error::{Error, Result};
use crate::model::catalog::Catalog;
use crate::model::spec::{Endpoint, San};
use crate::model::topology::Topology;
use crate::x509::certinfo::CertInfo;
use crate::x509::usage::ExtKeyUsage;

/// What a client presents and trusts. Its `Debug` shows no key.
pub struct Credential {
    /// How it was named (`admin.conf`, `kubeconfig ~/.kube/config context c`, `client.crt`).
    pub name: String,
    /// The server URL the credential comes with (a kubeconfig's), if any.
    pub server: Option<String>,
    chain: Vec<CertificateDer<'static>>,
    /// The client key and the file it is in.
    key: Option<(PrivateKeyDer<'static>, PathBuf)>,
    /// The client certificate, if there is one.
    pub certificate: Option<CertInfo>,
    /// The CA certificates the client trusts.
    pub trusts: Vec<CertInfo>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("name", &self.name).field("server", &self.server).finish_non_exhaustive()
    }
}

impl Credential {
    /// A client of the tree, by catalog name: its certificate and key, trusting its
    /// kubeconfig's CA data or the CA of the links it is client on.
    pub fn from_catalog(
        name: &str,
        catalog: &Catalog,
        topology: &Topology,
        inventory: &Inventory,
    ) -> Result<Credential> {
        let entry = catalog
            .entries
            .iter()
            .find(|e| e.id == name)
            .or_else(|| catalog.entries.iter().find(|e| e.name() == name))
            .ok_or_else(|| {
                Error::Invalid(format!("--as {name}: no such credential in the catalog (see `kubepki plan`)"))
            })?;
        let loaded = inventory.get(&entry.id).ok_or_else(|| Error::Invalid(format!("{}: not loaded", entry.id)))?;
        let trusts = topology.links.iter().find(|l| l.client_cert == entry.id).and_then(|l| l.client_trusts.clone());
        let (ca_pem, ca_source) = match (&loaded.kubeconfig, &trusts) {
            (Some(k), _) => (k.ca_pem.clone().unwrap_or_default(), k.path.clone()),
            (None, Some(ca)) => {
                let pem = inventory.get(ca).and_then(|l| l.cert_pem.clone());
                let file = catalog.get(ca).and_then(|e| e.files().first().map(|(f, _)| f.to_path_buf()));
                let file = inventory.root.join(file.unwrap_or_default());
                (pem.ok_or_else(|| Error::bad_file(&file, format!("CA {ca} is missing or unreadable")))?, file)
            }
            (None, None) => return Err(Error::Invalid(format!("{} is not a client on any link", entry.id))),
        };
        let cert = loaded.cert.as_ref().map_err(|p| Error::bad_file(p.path(), super::describe(p)))?;
        let key = loaded.key.as_ref().map_err(|p| Error::bad_file(p.path(), super::describe(p)))?;
        let files = entry.files();
        let path = files.get(1).or(files.first()).map(|(f, _)| inventory.root.join(f)).unwrap_or_default();
        Ok(Credential {
            name: entry.id.to_string(),
            server: None,
            chain: vec![CertificateDer::from(cert.der.clone())],
            key: Some((private_key(key.secret_pem(), &path)?, path)),
            certificate: Some(cert.clone()),
            trusts: cas(&ca_pem, &ca_source)?,
        })
    }

    /// The user and cluster of a kubeconfig's context (its current one if `None`); files it
    /// refers to are read relative to it.
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> Result<Credential> {
        let text = read_text(path, Limit::Kubeconfig)?;
        let k = crate::x509::kubeconfig::parse_context(&text, path, context)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let referenced = |i: usize, what: &str| -> Result<Option<(String, PathBuf)>> {
            match &k.files[i] {
                None => Ok(None),
                Some(f) => {
                    let p = base.join(f);
                    let text = read_text(&p, Limit::Pem).map_err(|e| {
                        Error::bad_file(&p, format!("cannot read {what} of {}: {}", path.display(), reason(&e)))
                    })?;
                    Ok(Some((text, p)))
                }
            }
        };
        let (ca_pem, ca_src) = match (&k.ca_pem, referenced(0, "certificate-authority")?) {
            (Some(pem), _) => (pem.clone(), path.to_path_buf()),
            (None, Some(found)) => found,
            (None, None) => {
                return Err(Error::bad_file(path, "the context's cluster has no certificate-authority(-data)"))
            }
        };
        let cert = match (&k.cert_pem, referenced(1, "client-certificate")?) {
            (Some(pem), _) => Some((pem.clone(), path.to_path_buf())),
            (None, found) => found,
        };
        let key = match (&k.key_pem, referenced(2, "client-key")?) {
            (Some(pem), _) => Some((pem.clone(), path.to_path_buf())),
            (None, found) => found,
        };
        let name = format!(
            "{} (context {})",
            path.display(),
            context.map(str::to_string).unwrap_or_else(|| k.context.clone())
        );
        Credential::assemble(name, Some(k.server.clone()), (ca_pem, ca_src), cert, key)
    }

    /// Files: a client certificate and key (both or neither) and the CA to trust the server with.
    pub fn from_files(cert: Option<&Path>, key: Option<&Path>, cacert: &Path) -> Result<Credential> {
        let read = |p: &Path| read_text(p, Limit::Pem).map(|t| (t, p.to_path_buf()));
        let name = cert.map(|c| c.display().to_string()).unwrap_or_else(|| "no client certificate".into());
        let cert = cert.map(read).transpose()?;
        let key = key.map(read).transpose()?;
        Credential::assemble(name, None, read(cacert)?, cert, key)
    }

    fn assemble(
        name: String,
        server: Option<String>,
        ca: (String, PathBuf),
        cert: Option<(String, PathBuf)>,
        key: Option<(String, PathBuf)>,
    ) -> Result<Credential> {
        let trusts = cas(&ca.0, &ca.1)?;
        let (chain, certificate, key) = match (cert, key) {
            (None, None) => (Vec::new(), None, None),
            (Some((pem, path)), Some((key_pem, key_path))) => {
                let chain = certificates(&pem, &path)?;
                let first = CertInfo::from_der(&chain[0]).map_err(|e| Error::bad_file(&path, e))?;
                (chain, Some(first), Some((private_key(&key_pem, &key_path)?, key_path)))
            }
            (Some((_, path)), None) | (None, Some((_, path))) => {
                return Err(Error::bad_file(path, "a client certificate needs its key, and a key its certificate"))
            }
        };
        Ok(Credential { name, server, chain, key, certificate, trusts })
    }
}

fn certificates(pem_text: &str, source: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let blocks = pem::parse_many(pem_text).map_err(|e| Error::bad_file(source, format!("not valid PEM: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(Error::bad_file(source, "no CERTIFICATE block"));
    }
    Ok(certs)
}

fn cas(pem_text: &str, source: &Path) -> Result<Vec<CertInfo>> {
    certificates(pem_text, source)?
        .iter()
        .map(|d| CertInfo::from_der(d).map_err(|e| Error::bad_file(source, e)))
        .collect()
}

fn private_key(pem_text: &str, source: &Path) -> Result<PrivateKeyDer<'static>> {
    let blocks = pem::parse_many(pem_text).map_err(|_| Error::bad_file(source, "the key is not valid PEM"))?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| Error::bad_file(source, "no PRIVATE KEY block"))?;
    Ok(match block.tag() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(block.contents().to_vec().into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(block.contents().to_vec().into()),
        _ => PrivateKeyDer::Pkcs8(block.contents().to_vec().into()),
    })
}

/// Why a probe failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProbeFailure {
    /// Nothing accepted the TCP connection.
    Connect,
    /// The server's certificate is from a CA the client does not trust.
    UnknownIssuer,
    /// ... from another CA with the same name as the trusted one.
    SameNameOtherKey,
    /// The server's certificate is self-signed.
    SelfSigned,
    /// The server presented a CA certificate as its own.
    CaAsLeaf,
    /// The server's certificate has expired.
    Expired,
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate lacks serverAuth.
    ServerUsage,
    /// The server's certificate does not cover the host.
    Name,
    /// The server's certificate was refused for another reason.
    ServerCertificate,
    /// The server refused the client's certificate (or its CA).
    ClientRefused,
    /// The server refused the client certificate's usage.
    ClientUsage,
    /// The server wanted a client certificate.
    ClientCertificateRequired,
    /// Anything else during the handshake.
    Handshake,
}

/// The result of connecting to a running server.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointReport {
    /// `https://host:port`.
    pub endpoint: String,
    /// The credential used.
    pub credential: String,
    /// Whether the handshake completed.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<ProbeFailure>,
    /// What happened, in words, with what to do.
    pub explanation: Vec<String>,
    /// The certificate the server presented, if it presented one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<CertInfo>,
}

/// A verifier that records what the server presented and what rustls' WebPKI verifier said,
/// deferring every decision to it unchanged.
#[derive(Debug)]
struct Recording {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Mutex<Option<(Vec<Vec<u8>>, bool)>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.to_vec()).collect();
        *self.seen.lock().expect("not poisoned") = Some((chain, result.is_ok()));
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connect to `endpoint` (`https://host:port` or `host:port`) with `credential` and explain the outcome.
pub fn probe_endpoint(endpoint: &str, credential: &Credential, at: OffsetDateTime) -> Result<EndpointReport> {
    let hostport = endpoint.trim_start_matches("https://").trim_end_matches('/');
    let target = Endpoint::parse(hostport).map_err(|e| Error::Invalid(format!("--endpoint {endpoint}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for ca in &credential.trusts {
        roots
            .add(CertificateDer::from(ca.der.clone()))
            .map_err(|e| Error::Invalid(format!("{}: CA {} cannot be used: {e}", credential.name, ca.subject)))?;
    }
    let tls = |e: rustls::Error| Error::Invalid(format!("TLS configuration for {}: {e}", credential.name));
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::Invalid(format!("{}: {e}", credential.name)))?;
    let recorder = Arc::new(Recording { inner, seen: Mutex::new(None) });
    let builder = ClientConfig::builder_with_details(provider(), Arc::new(FixedTime(unix(at))))
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone());
    let config = match &credential.key {
        Some((key, file)) => {
            builder.with_client_auth_cert(credential.chain.clone(), key.clone_key()).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => Error::bad_file(
                    file,
                    format!(
                        "this private key is not the key of the client certificate of {} (its public half differs)",
                        credential.name
                    ),
                ),
                other => tls(other),
            })?
        }
        None => builder.with_no_client_auth(),
    };
    let outcome = connect(&target, Arc::new(config));
    let seen = recorder.seen.lock().expect("not poisoned").clone();
    let presented: Vec<CertInfo> = seen
        .as_ref()
        .map(|(chain, _)| chain.iter().filter_map(|d| CertInfo::from_der(d).ok()).collect())
        .unwrap_or_default();
    let server_refused = seen.as_ref().is_some_and(|(_, ok)| !ok);
    let (failure, explanation) = match &outcome {
        Ok(()) => (
            None,
            vec![format!(
                "the handshake completed: the server accepted {} and presented a certificate valid for {}",
                credential.name, target.host
            )],
        ),
        Err(_) if server_refused && !presented.is_empty() => {
            let (f, words) = server_certificate(&presented, &credential.trusts, &target.host, at);
            (Some(f), words)
        }
        Err(e) => {
            let (f, words) = other_failure(e, credential, at);
            (Some(f), words)
        }
    };
    Ok(EndpointReport {
        endpoint: target.url(),
        credential: credential.name.clone(),
        ok: outcome.is_ok(),
        failure,
        explanation,
        server_certificate: presented.into_iter().next(),
    })
}

/// What failed, as the client saw it.
enum Failed {
    Connect(std::io::Error),
    Tls(rustls::Error),
    Io(std::io::Error),
}

fn connect(target: &Endpoint, config: Arc<ClientConfig>) -> std::result::Result<(), Failed> {
    let host = match &target.host {
        San::Ip(ip) => ip.to_string(),
        San::Dns(d) => d.clone(),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), target.port))
        .map_err(Failed::Connect)?
        .next()
        .ok_or_else(|| Failed::Connect(std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))?;
    let mut sock = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(Failed::Connect)?;
    sock.set_read_timeout(Some(TIMEOUT)).ok();
    let mut conn = ClientConnection::new(config, server_name(&target.host)).map_err(Failed::Tls)?;
    let io = |e: std::io::Error| match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(t) => Failed::Tls(t.clone()),
        None => Failed::Io(e),
    };
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(io)?;
    }
    // TLS 1.3: the server judges the client's certificate after the client finishes; make it speak once.
    conn.writer().write_all(b"GET /healthz HTTP/1.0\r\n\r\n").map_err(io)?;
    conn.complete_io(&mut sock).map_err(io)?;
    let mut buf = [0u8; 1];
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    match tls.read(&mut buf) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Why the client refused the server's certificate, read from the certificates.
fn server_certificate(
    chain: &[CertInfo],
    trusts: &[CertInfo],
    host: &San,
    at: OffsetDateTime,
) -> (ProbeFailure, Vec<String>) {
    let leaf = &chain[0];
    let fp = |c: &CertInfo| format!("{} (SHA-256 {})", c.subject, c.sha256);
    let trusted = trusts.iter().map(fp).collect::<Vec<_>>().join(", ");
    let self_signed = leaf.issuer_raw == leaf.subject_raw && leaf.is_signed_by(leaf);
    let signer = trusts.iter().find(|ca| leaf.is_signed_by(ca));
    if leaf.is_ca && (!self_signed || trusts.iter().any(|ca| ca.der == leaf.der)) {
        return (
            ProbeFailure::CaAsLeaf,
            vec![
                format!("the server presented a CA certificate as its own: {} is CA:TRUE", fp(leaf)),
                "a server needs a leaf certificate (CA:FALSE, serverAuth) signed by the CA; a CA certificate is only for checking others".into(),
            ],
        );
    }
    if self_signed {
        return (
            ProbeFailure::SelfSigned,
            vec![
                format!("the server's certificate is self-signed: {}", fp(leaf)),
                format!("the client trusts {trusted}, which did not sign it (a kubelet makes such a certificate for itself unless its serving certificate is CA-signed)"),
            ],
        );
    }
    if signer.is_none() {
        let same_name: Vec<&CertInfo> = trusts.iter().filter(|ca| ca.subject_raw == leaf.issuer_raw).collect();
        let issuing = chain[1..].iter().find(|c| leaf.is_signed_by(c));
        if let Some(ca) = same_name.first() {
            let mut words = vec![
                format!("the server's certificate {} names {} as its issuer, and the client trusts a CA of that name, but another key signed it", fp(leaf), leaf.issuer),
                format!("trusted: {} (SHA-256 {}, key id {})", ca.subject, ca.sha256, key_id(&ca.der, false).unwrap_or_else(|| "none".into())),
                format!(
                    "signer:  {}key id {}",
                    issuing.map(|c| format!("SHA-256 {}, ", c.sha256)).unwrap_or_default(),
                    key_id(&leaf.der, true).unwrap_or_else(|| "not stated".into())
                ),
                "the server runs with a certificate from another CA of the same name (a CA made again, or files from another cluster): reissue it from the trusted CA, or trust the CA that issued it".into(),
            ];
            if issuing.is_none() {
                words[2].push_str(" (the server did not send its CA)");
            }
            return (ProbeFailure::SameNameOtherKey, words);
        }
        return (
            ProbeFailure::UnknownIssuer,
            vec![
                format!(
                    "the server's certificate {} was issued by {}, which the client does not trust",
                    fp(leaf),
                    leaf.issuer
                ),
                format!("the client trusts {trusted}"),
            ],
        );
    }
    if at > leaf.not_after {
        return (
            ProbeFailure::Expired,
            vec![format!("the server's certificate {} expired on {} (checked at {})", fp(leaf), leaf.not_after, at)],
        );
    }
    if at < leaf.not_before {
        return (
            ProbeFailure::NotYetValid,
            vec![format!(
                "the server's certificate {} is valid only from {} (checked at {})",
                fp(leaf),
                leaf.not_before,
                at
            )],
        );
    }
    if !leaf.allows(ExtKeyUsage::ServerAuth) {
        return (
            ProbeFailure::ServerUsage,
            vec![format!(
                "the server's certificate {} is not for serving TLS: its extended key usage is [{}], without serverAuth",
                fp(leaf),
                ekus(leaf)
            )],
        );
    }
    if !covers(&leaf.sans, host) {
        let sans = leaf.sans.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
        return (
            ProbeFailure::Name,
            vec![
                format!(
                    "the server's certificate does not cover {}, the address dialled: its SANs are {sans}",
                    bare(host)
                ),
                "dial a name or address among them, or reissue the certificate with this one (`kubepki san add`)"
                    .into(),
            ],
        );
    }
    (ProbeFailure::ServerCertificate, vec![format!("the client refused the server's certificate {} (a check kubepki does not name: an unsupported algorithm or extension)", fp(leaf))])
}

/// A certificate's extended key usages, as X.509 tools name them.
fn ekus(c: &CertInfo) -> String {
    c.ext_key_usage
        .iter()
        .map(|u| u.to_string())
        .chain(c.other_ext_key_usage.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A host as dialled: `127.0.0.5`, `api.example.com` (no `IP:`/`DNS:` prefix).
fn bare(host: &San) -> String {
    match host {
        San::Ip(ip) => ip.to_string(),
        San::Dns(d) => d.clone(),
    }
}

/// The key identifier a certificate states for its issuer (`authority`) or for itself, hex with colons.
fn key_id(der: &[u8], authority: bool) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, x) = X509Certificate::from_der(der).ok()?;
    let bytes: Vec<u8> = x.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(a) if authority => a.key_identifier.as_ref().map(|k| k.0.to_vec()),
        ParsedExtension::SubjectKeyIdentifier(k) if !authority => Some(k.0.to_vec()),
        _ => None,
    })?;
    Some(bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

/// Failures after the server's certificate was accepted (or before one was seen).
fn other_failure(e: &Failed, credential: &Credential, at: OffsetDateTime) -> (ProbeFailure, Vec<String>) {
    let client =
        credential.certificate.as_ref().map(|c| format!("{} issued by {} (SHA-256 {})", c.subject, c.issuer, c.sha256));
    let mine = client.clone().unwrap_or_else(|| "no client certificate".into());
    let expired = credential.certificate.as_ref().is_some_and(|c| !c.valid_at(at));
    let no_client_auth = credential.certificate.as_ref().is_some_and(|c| !c.allows(ExtKeyUsage::ClientAuth));
    let refused = |why: &str| {
        let mut words = vec![format!("the server refused the client certificate {mine}: {why}")];
        if expired {
            words.push("that certificate is outside its validity period".into());
        }
        if no_client_auth {
            words.push("that certificate lacks the clientAuth extended key usage".into());
        }
        words.push("check the CA the server trusts for clients (kube-apiserver --client-ca-file, etcd --trusted-ca-file, kubelet's clientCAFile) against the certificate's issuer".into());
        (ProbeFailure::ClientRefused, words)
    };
    match e {
        Failed::Connect(io) => (
            ProbeFailure::Connect,
            vec![format!("nothing accepted the TCP connection ({}): is the server running and listening there?", io.kind())],
        ),
        Failed::Tls(rustls::Error::AlertReceived(alert)) => match alert {
            AlertDescription::UnknownCA => refused("it does not trust the CA that signed it"),
            AlertDescription::BadCertificate | AlertDescription::CertificateUnknown | AlertDescription::DecryptError => {
                refused("it did not accept it")
            }
            AlertDescription::CertificateExpired => refused("it is expired"),
            AlertDescription::UnsupportedCertificate => (
                ProbeFailure::ClientUsage,
                vec![format!(
                    "the server refused the client certificate {mine} for its usage: extended key usage [{}], clientAuth needed",
                    credential.certificate.as_ref().map(ekus).unwrap_or_default()
                )],
            ),
            AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure if credential.certificate.is_none() => (
                ProbeFailure::ClientCertificateRequired,
                vec!["the server requires a client certificate and this credential has none (give --cert/--key, or a kubeconfig user with one)".into()],
            ),
            other => (ProbeFailure::Handshake, vec![format!("the server ended the handshake with the alert \"{}\"", alert_words(*other))]),
        },
        Failed::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof || io.kind() == std::io::ErrorKind::ConnectionReset => {
            if credential.certificate.is_none() {
                (
                    ProbeFailure::ClientCertificateRequired,
                    vec!["the server closed the connection: it probably requires a client certificate, and this credential has none".into()],
                )
            } else {
                let mut r = refused("it closed the connection without saying why (etcd does that; its log has the reason)");
                r.0 = ProbeFailure::ClientRefused;
                r
            }
        }
        Failed::Io(io) => (ProbeFailure::Handshake, vec![format!("the connection failed during the handshake: {io}")]),
        Failed::Tls(t) => (ProbeFailure::Handshake, vec![format!("the handshake failed: {}", tls_words(t))]),
    }
}

fn alert_words(a: AlertDescription) -> String {
    // rustls names alerts in CamelCase (`ProtocolVersion`): words instead.
    let name = format!("{a:?}");
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn tls_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        rustls::Error::PeerIncompatible(_) => {
            "the server and client have no TLS version, cipher suite or signature scheme in common".into()
        }
        rustls::Error::InvalidMessage(_) => "the server's answer is not TLS (is it plain HTTP?)".into(),
        rustls::Error::InvalidCertificate(_) => "the server's certificate was refused".into(),
        _ => "the TLS library refused the connection".into(),
    }
}
