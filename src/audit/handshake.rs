//! Real TLS handshakes (rustls client and server, over a socketpair) for the links of a cluster, and against a
//! running server, with the reason when one fails.
//!
//! For each link, a server runs with the server side's certificate, key and trusted client CA
//! at one end of a socketpair; the client side connects at the other with its certificate, trusting what it trusts
//! (a kubeconfig: its embedded CA data), and names the host it would dial. Time is the
//! instant being verified, not the wall clock.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::verify::{LinkStatus, Report};
use crate::disk::inventory::{Inventory, Loaded};
use crate::model::spec::San;
use crate::model::topology::{Link, Topology};

/// How long one handshake may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one live handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Run every link's handshake, in parallel. Links the static report could not check (a
/// file outside the tree, a part kubeadm does not make: status unknown, or a finding that
/// says "not checked" beside a worse one) are not run.
pub fn live(topology: &Topology, inventory: &Inventory, report: &Report, at: OffsetDateTime) -> Vec<LiveResult> {
    let unchecked = |l: &&crate::audit::verify::LinkVerdict| {
        l.status == LinkStatus::Unknown || l.findings.iter().any(|i| report.findings[*i].kind.unchecked())
    };
    let unknown: std::collections::HashSet<&str> =
        report.links.iter().filter(unchecked).map(|l| l.id.as_str()).collect();
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
        // The apiserver trusts metrics-server with its APIService's caBundle, when the tree
        // has that manifest.
        let api_service = (l.kind == crate::model::topology::LinkKind::ApiServerToAggregated
            && l.server_cert.as_deref() == Some(crate::model::vocabulary::entry::METRICS_SERVER))
        .then(|| crate::audit::wiring::addons::api_service_ca_pem(&clients.root))
        .flatten();
        // A kubeconfig trusts its embedded CA data; other clients the CA of the catalog.
        let client_roots = match (own_root, &client.kubeconfig, &l.client_trusts) {
            (Some(roots), _, _) => roots,
            (None, _, _) if api_service.is_some() => {
                let pem = String::from_utf8_lossy(api_service.as_deref().unwrap_or_default()).into_owned();
                roots_from_pem(&pem, "the APIService's caBundle")?
            }
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
        crate::disk::inventory::Problem::NotRead(path) => format!("{} was not read", path.display()),
    }
}

/// One handshake, the server on a thread of its own, over a connected pair of sockets (a
/// socketpair: what TLS sees is a byte stream, as over TCP, without a port per handshake: tens
/// of thousands of loopback connections exhaust the ephemeral ports and slow every `bind`);
/// the error names the side that failed.
fn shake(client: Arc<ClientConfig>, server: Arc<ServerConfig>, name: ServerName<'static>) -> Result<(), String> {
    let (client_sock, server_sock) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let server_side = std::thread::spawn(move || -> Result<(), String> {
        let mut sock = server_sock;
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
        let mut sock = client_sock;
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

mod probe;

pub use probe::{probe_endpoint, Credential, EndpointReport, ProbeFailure};
