//! Real TLS handshakes (rustls over loopback TCP) for the links of a cluster, and against a
//! running server, with the reason when one fails.
//!
//! For each link, a server is bound on 127.0.0.1 with the server side's certificate, key and
//! trusted client CA; the client side connects with its certificate, trusting what it trusts
//! (a kubeconfig: its embedded CA data), and names the host it would dial. Time is the
//! instant being verified, not the wall clock.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rayon::prelude::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig, ServerConnection};
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::verify::{LinkStatus, Report};
use crate::disk::inventory::{Inventory, Loaded};
use crate::model::catalog::Catalog;
use crate::model::spec::San;
use crate::model::topology::{Link, Topology};
use crate::x509::certinfo::CertInfo;

/// How long one handshake may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one live handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveResult {
    /// The link's id.
    pub link: String,
    /// `true`: both sides completed the handshake; `false`: it failed; `None`: not run (a side
    /// that is not kubepki's, or a file outside the tree).
    pub ok: Option<bool>,
    /// What failed, as the client saw it and as the server saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A fixed instant for rustls' certificate checks.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

fn unix(at: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(at.unix_timestamp().max(0) as u64))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Run every link's handshake, in parallel. Links the static report could not check
/// (status unknown: a file outside the tree, a part kubeadm does not make) are not run.
pub fn live(topology: &Topology, inventory: &Inventory, report: &Report, at: OffsetDateTime) -> Vec<LiveResult> {
    let unknown: std::collections::HashSet<&str> =
        report.links.iter().filter(|l| l.status == LinkStatus::Unknown).map(|l| l.id.as_str()).collect();
    run_links(topology, inventory, inventory, &unknown, at)
}

/// Every link's handshake with the client side's files from one tree and the server side's
/// from another: components of a cluster caught between two phases of a change.
pub fn live_between(
    topology: &Topology,
    clients: &Inventory,
    servers: &Inventory,
    at: OffsetDateTime,
) -> Vec<LiveResult> {
    run_links(topology, clients, servers, &Default::default(), at)
}

fn run_links(
    topology: &Topology,
    clients: &Inventory,
    servers: &Inventory,
    unknown: &std::collections::HashSet<&str>,
    at: OffsetDateTime,
) -> Vec<LiveResult> {
    topology
        .links
        .par_iter()
        .map(|l| {
            if unknown.contains(l.id.as_str()) {
                return LiveResult { link: l.id.clone(), ok: None, error: None };
            }
            let (ok, error) = match prepare(l, clients, servers, at) {
                Prepared::Skip => (None, None),
                Prepared::Fail(e) => (Some(false), Some(e)),
                Prepared::Ready(client, server, name) => match shake(client, server, name) {
                    Ok(()) => (Some(true), None),
                    Err(e) => (Some(false), Some(e)),
                },
            };
            LiveResult { link: l.id.clone(), ok, error }
        })
        .collect()
}

enum Prepared {
    Skip,
    Fail(String),
    Ready(Arc<ClientConfig>, Arc<ServerConfig>, ServerName<'static>),
}

fn prepare(l: &Link, clients: &Inventory, servers: &Inventory, at: OffsetDateTime) -> Prepared {
    let Some(client) = clients.get(&l.client_cert) else { return Prepared::Skip };
    let result = (|| -> Result<Prepared, String> {
        let server_roots = roots_of(servers.get(&l.server_trusts), &l.server_trusts)?;
        let (client_chain, client_key) = load_credential(client, &l.client_cert)?;
        // The server side: the catalog's certificate, or, for a server that brings its own (an
        // aggregated API server), a throwaway one the client is told to trust: the half that
        // is kubepki's (the client certificate against the server's trusted CA) is proven.
        let (server_chain, server_key, own_root) = match &l.server_cert {
            Some(id) => {
                let server = servers.get(id).ok_or_else(|| format!("{id}: not in the catalog"))?;
                let (chain, key) = load_credential(server, id)?;
                (chain, key, None)
            }
            None => {
                let (chain, key) = throwaway_server(&l.dial.host)?;
                let mut roots = RootCertStore::empty();
                roots.add(chain[0].clone()).map_err(|e| e.to_string())?;
                (chain, key, Some(roots))
            }
        };
        // A kubeconfig trusts its embedded CA data; other clients the CA of the catalog.
        let client_roots = match (own_root, &client.kubeconfig, &l.client_trusts) {
            (Some(roots), _, _) => roots,
            (None, Some(k), _) => roots_from_pem(k.ca_pem.as_deref().unwrap_or(""), "certificate-authority-data")?,
            (None, None, Some(ca)) => roots_of(clients.get(ca), ca)?,
            (None, None, None) => return Ok(Prepared::Skip),
        };
        let server_id = l.server_cert.as_deref().unwrap_or(&l.server);
        let time = Arc::new(FixedTime(unix(at)));
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(server_roots), provider())
            .build()
            .map_err(|e| format!("server's client CA {}: {e}", l.server_trusts))?;
        let server_config = ServerConfig::builder_with_details(provider(), time.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(server_chain, server_key)
            .map_err(|e| format!("server {server_id}: {e}"))?;
        let client_config = ClientConfig::builder_with_details(provider(), time)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(client_roots)
            .with_client_auth_cert(client_chain, client_key)
            .map_err(|e| format!("client {}: {e}", l.client_cert))?;
        Ok(Prepared::Ready(Arc::new(client_config), Arc::new(server_config), server_name(&l.dial.host)))
    })();
    result.unwrap_or_else(Prepared::Fail)
}

fn server_name(host: &San) -> ServerName<'static> {
    match host {
        San::Ip(ip) => ServerName::IpAddress((*ip).into()),
        San::Dns(d) => ServerName::try_from(d.clone())
            .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())),
    }
}

/// A self-signed server certificate for a server kubepki does not issue for.
fn throwaway_server(host: &San) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let params = rcgen::CertificateParams::new(vec![match host {
        San::Dns(d) => d.clone(),
        San::Ip(ip) => ip.to_string(),
    }])
    .map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into())))
}

fn roots_of(loaded: Option<&Loaded>, id: &str) -> Result<RootCertStore, String> {
    let pem = loaded.and_then(|l| l.cert_pem.as_deref()).ok_or_else(|| format!("CA {id} is missing or unreadable"))?;
    roots_from_pem(pem, id)
}

fn roots_from_pem(pem_text: &str, what: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for block in pem::parse_many(pem_text).map_err(|e| format!("{what}: {e}"))? {
        if block.tag() == "CERTIFICATE" {
            roots.add(CertificateDer::from(block.contents().to_vec())).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err(format!("{what}: no CA certificate"));
    }
    Ok(roots)
}

fn load_credential(l: &Loaded, id: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert = l.cert.as_ref().map_err(|p| format!("{id}: {}", describe(p)))?;
    let key = l.key.as_ref().map_err(|p| format!("{id}: {}", describe(p)))?;
    let block = pem::parse(key.secret_pem()).map_err(|_| format!("{id}: key is not PEM"))?;
    let der = match block.tag() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(block.contents().to_vec().into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(block.contents().to_vec().into()),
        _ => PrivateKeyDer::Pkcs8(block.contents().to_vec().into()),
    };
    Ok((vec![CertificateDer::from(cert.der.clone())], der))
}

fn describe(p: &crate::disk::inventory::Problem) -> String {
    match p {
        crate::disk::inventory::Problem::Missing(path) => format!("{} is missing", path.display()),
        crate::disk::inventory::Problem::Unreadable(path, why) => format!("{}: {why}", path.display()),
        crate::disk::inventory::Problem::External(_, why) => why.clone(),
    }
}

/// One handshake over loopback TCP; the error names the side that failed.
fn shake(client: Arc<ClientConfig>, server: Arc<ServerConfig>, name: ServerName<'static>) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server_side = std::thread::spawn(move || -> Result<(), String> {
        let (mut sock, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        sock.set_read_timeout(Some(TIMEOUT)).ok();
        let mut conn = ServerConnection::new(server).map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        // Answer one byte so the client knows the server accepted its certificate (TLS 1.3
        // clients finish before the server has judged them).
        conn.writer().write_all(b"k").map_err(|e| e.to_string())?;
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        Ok(())
    });
    let client_result = (|| -> Result<(), String> {
        let mut sock = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        sock.set_read_timeout(Some(TIMEOUT)).ok();
        let mut conn = ClientConnection::new(client, name).map_err(|e| e.to_string())?;
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).map_err(|e| e.to_string())?;
        Ok(())
    })();
    let server_result = server_side.join().unwrap_or_else(|_| Err("server thread panicked".into()));
    match (client_result, server_result) {
        (Ok(()), Ok(())) => Ok(()),
        (c, s) => Err(format!(
            "client: {}; server: {}",
            c.err().unwrap_or_else(|| "ok".into()),
            s.err().unwrap_or_else(|| "ok".into())
        )),
    }
}

/// The result of connecting to a running server.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointReport {
    /// `https://host:port`.
    pub endpoint: String,
    /// The credential used.
    pub credential: String,
    /// Whether the handshake completed.
    pub ok: bool,
    /// The TLS error, as rustls reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why, in words, with what to do.
    pub explanation: Vec<String>,
    /// The certificate the server presented, if it presented one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<CertInfo>,
}

/// A server-certificate verifier that records what the server presented, then defers every
/// decision to rustls' WebPKI verifier unchanged.
#[derive(Debug)]
struct Recording {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().expect("not poisoned") = Some(end_entity.to_vec());
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connect to `host:port` as catalog entry `credential` (its certificate and key, trusting
/// what that client trusts) and explain the outcome.
pub fn probe_endpoint(
    endpoint: &str,
    credential: &str,
    catalog: &Catalog,
    topology: &Topology,
    inventory: &Inventory,
    at: OffsetDateTime,
) -> crate::error::Result<EndpointReport> {
    let err = |m: String| crate::Error::Invalid(m);
    let hostport = endpoint.trim_start_matches("https://").trim_end_matches('/');
    let target = crate::model::spec::Endpoint::parse(hostport).map_err(|e| err(format!("--endpoint: {e}")))?;
    let entry = catalog
        .entries
        .iter()
        .find(|e| e.id == credential)
        .or_else(|| catalog.entries.iter().find(|e| e.name() == credential))
        .ok_or_else(|| err(format!("--as {credential}: no such credential in the catalog (see `kubepki plan`)")))?;
    let loaded = inventory.get(&entry.id).ok_or_else(|| err(format!("{}: not loaded", entry.id)))?;
    // What the client trusts: its kubeconfig's CA data, or the CA of the links it is client on.
    let trusts = topology.links.iter().find(|l| l.client_cert == entry.id).and_then(|l| l.client_trusts.clone());
    let roots = match (&loaded.kubeconfig, &trusts) {
        (Some(k), _) => roots_from_pem(k.ca_pem.as_deref().unwrap_or(""), "certificate-authority-data"),
        (None, Some(ca)) => roots_of(inventory.get(ca), ca),
        (None, None) => Err(format!("{} is not a client on any link", entry.id)),
    }
    .map_err(err)?;
    let (chain, key) = load_credential(loaded, &entry.id).map_err(err)?;
    let client_cert = loaded.cert.as_ref().ok().cloned();
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| err(e.to_string()))?;
    let recorder = Arc::new(Recording { inner, seen: Mutex::new(None) });
    let config = ClientConfig::builder_with_details(provider(), Arc::new(FixedTime(unix(at))))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_client_auth_cert(chain, key)
        .map_err(|e| err(e.to_string()))?;
    let outcome = connect(&target, Arc::new(config));
    let server_certificate =
        recorder.seen.lock().expect("not poisoned").as_ref().and_then(|der| CertInfo::from_der(der).ok());
    let explanation = explain(&outcome, &target.host, server_certificate.as_ref(), client_cert.as_ref(), &entry.id);
    Ok(EndpointReport {
        endpoint: target.url(),
        credential: entry.id.to_string(),
        ok: outcome.is_ok(),
        error: outcome.err(),
        explanation,
        server_certificate,
    })
}

fn connect(target: &crate::model::spec::Endpoint, config: Arc<ClientConfig>) -> Result<(), String> {
    let host = match &target.host {
        San::Ip(ip) => ip.to_string(),
        San::Dns(d) => d.clone(),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), target.port))
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {host}: no address"))?;
    let mut sock = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_read_timeout(Some(TIMEOUT)).ok();
    let mut conn = ClientConnection::new(config, server_name(&target.host)).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    // TLS 1.3: the server judges our certificate after we finish; make it speak once.
    conn.writer().write_all(b"GET /health HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1];
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    match tls.read(&mut buf) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn explain(
    outcome: &Result<(), String>,
    host: &San,
    server: Option<&CertInfo>,
    client: Option<&CertInfo>,
    credential: &str,
) -> Vec<String> {
    let Err(e) = outcome else {
        return vec![format!(
            "the handshake completed: the server accepted {credential} and presented a certificate valid for {host}"
        )];
    };
    let mut out = Vec::new();
    let sans = server.map(|s| s.sans.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    if e.contains("NotValidForName") || e.contains("not valid for name") {
        out.push(format!("the server's certificate does not cover {host}: its SANs are {sans}"));
        out.push(
            "dial an address in its SANs, or add this one: kubepki init --force after adding it to the description"
                .into(),
        );
    } else if e.contains("UnknownIssuer") || e.contains("unknown issuer") {
        let issuer = server.map(|s| s.issuer.clone()).unwrap_or_default();
        out.push(format!(
            "the server's certificate was issued by {issuer}, which the CA {credential} trusts did not sign"
        ));
        out.push("the server uses a certificate from another CA, or the client's CA data is stale".into());
    } else if e.contains("Expired") || e.contains("expired") {
        out.push(format!(
            "the server's certificate is expired (not after {})",
            server.map(|s| s.not_after.to_string()).unwrap_or_default()
        ));
    } else if e.contains("UnknownCA")
        || e.contains("unknown ca")
        || e.contains("BadCertificate")
        || e.contains("bad certificate")
        || e.contains("CertificateUnknown")
        || e.contains("DecryptError")
    {
        let issuer = client.map(|c| c.issuer.clone()).unwrap_or_default();
        out.push(format!("the server refused the client certificate of {credential} (issued by {issuer})"));
        out.push("the server does not trust that CA (check its --client-ca-file / --trusted-ca-file), or the certificate is expired".into());
    } else if e.contains("UnsupportedCertificate") || e.contains("unsupported certificate") {
        out.push(format!("the server refused {credential}: its certificate lacks clientAuth"));
    } else if e.contains("connect") {
        out.push("nothing accepted the TCP connection: is the server running and listening there?".into());
    } else {
        out.push(format!("the handshake failed: {e}"));
    }
    out
}
