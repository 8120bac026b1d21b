//! What a certificate on disk says, parsed once into plain data (subject, issuer, validity,
//! usages, SANs, key), for init's survey of an existing tree and for every later check.

use std::net::IpAddr;
use std::path::Path;

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::*;

use crate::error::{Error, Result};
use crate::model::spec::San;
use crate::x509::usage::{ext_key_usages, key_usages, ExtKeyUsage, KeyUsage, PublicKeyKind};

/// One certificate, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    /// The DER bytes.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// Subject CN (the Kubernetes user).
    pub subject_cn: String,
    /// Subject O (the Kubernetes groups).
    pub orgs: Vec<String>,
    /// The whole subject, RFC 4514-ish.
    pub subject: String,
    /// The whole issuer.
    pub issuer: String,
    /// Raw DER of the subject name, to match against an issuer name.
    #[serde(skip)]
    pub subject_raw: Vec<u8>,
    /// Raw DER of the issuer name.
    #[serde(skip)]
    pub issuer_raw: Vec<u8>,
    /// Serial number, hex.
    pub serial: String,
    /// NotBefore.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "crate::report::json::rfc3339")]
    pub not_after: OffsetDateTime,
    /// BasicConstraints CA.
    pub is_ca: bool,
    /// BasicConstraints path length.
    pub path_len: Option<u32>,
    /// Key usage bits.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages kubepki knows by name.
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// Other extended key usages, by OID.
    pub other_ext_key_usage: Vec<String>,
    /// DNS and IP SANs.
    pub sans: Vec<San>,
    /// Other SANs (email, URI, ...), as text.
    pub other_sans: Vec<String>,
    /// The public key's kind and size (`RSA-2048`, `ECDSA-P256` in JSON).
    #[serde(rename = "keyAlgorithm")]
    pub key: PublicKeyKind,
    /// The raw public key (RSA: PKCS#1 public key; EC: the point).
    #[serde(skip)]
    pub public_key_raw: Vec<u8>,
    /// Signature algorithm (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, ...).
    pub signature_algorithm: String,
    /// The subject key identifier, if the certificate has one.
    #[serde(skip)]
    pub subject_key_id: Option<Vec<u8>>,
    /// The authority key identifier's key id, if the certificate has one: the issuer's
    /// subject key identifier, by the issuer's word (a hint, not a proof: see
    /// [`CertInfo::is_signed_by`]).
    #[serde(skip)]
    pub authority_key_id: Option<Vec<u8>>,
    /// SHA-256 of the DER, hex with colons.
    pub sha256: String,
}

impl CertInfo {
    /// Parse the first PEM `CERTIFICATE` block of a text; `source` names the file in errors.
    pub fn from_pem(text: &str, source: &Path) -> Result<CertInfo> {
        let blocks = ::pem::parse_many(text).map_err(|e| Error::bad_file(source, format!("not valid PEM: {e}")))?;
        let block = blocks.first().ok_or_else(|| Error::bad_file(source, "no PEM block found"))?;
        if block.tag() != "CERTIFICATE" {
            return Err(Error::bad_file(
                source,
                format!("a PEM block of type '{}', expected CERTIFICATE", block.tag()),
            ));
        }
        CertInfo::from_der(block.contents()).map_err(|e| Error::bad_file(source, e))
    }

    /// Parse DER.
    pub fn from_der(der: &[u8]) -> std::result::Result<CertInfo, String> {
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let texts = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| -> Vec<String> {
            it.filter_map(|a| a.as_str().ok().map(str::to_string)).collect()
        };
        let subject_cn = texts(&mut x.subject().iter_common_name()).into_iter().next().unwrap_or_default();
        let orgs = texts(&mut x.subject().iter_organization());
        let time = |t: ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| format!("bad time in certificate: {e}"))
        };
        let bc = x.basic_constraints().map_err(|e| format!("bad BasicConstraints: {e}"))?;
        let key_usage = match x.key_usage().map_err(|e| format!("bad KeyUsage: {e}"))? {
            Some(ku) => key_usages(ku.value),
            None => Vec::new(),
        };
        let (ext_key_usage, other_ext_key_usage) =
            match x.extended_key_usage().map_err(|e| format!("bad ExtendedKeyUsage: {e}"))? {
                Some(eku) => ext_key_usages(eku.value),
                None => (Vec::new(), Vec::new()),
            };
        let mut sans = Vec::new();
        let mut other_sans = Vec::new();
        if let Some(san) = x.subject_alternative_name().map_err(|e| format!("bad SubjectAltName: {e}"))? {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push(San::Dns(d.to_string())),
                    GeneralName::IPAddress(b) => match ip_from_bytes(b) {
                        Some(ip) => sans.push(San::Ip(ip)),
                        None => other_sans.push(format!("IP:<{} bytes>", b.len())),
                    },
                    other => other_sans.push(other.to_string()),
                }
            }
        }
        let (mut subject_key_id, mut authority_key_id) = (None, None);
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => {}
            }
        }
        let spki = x.public_key();
        let signature_algorithm = algorithm_name(&x.signature_algorithm.algorithm);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        Ok(CertInfo {
            der: der.to_vec(),
            subject_cn,
            orgs,
            subject: x.subject().to_string(),
            issuer: x.issuer().to_string(),
            subject_raw: x.subject().as_raw().to_vec(),
            issuer_raw: x.issuer().as_raw().to_vec(),
            serial: x.raw_serial_as_string().replace(':', ""),
            not_before: time(x.validity().not_before)?,
            not_after: time(x.validity().not_after)?,
            is_ca: bc.as_ref().is_some_and(|b| b.value.ca),
            path_len: bc.and_then(|b| b.value.path_len_constraint),
            key_usage,
            ext_key_usage,
            other_ext_key_usage,
            sans,
            other_sans,
            key: PublicKeyKind::of(spki),
            public_key_raw: spki.subject_public_key.data.to_vec(),
            signature_algorithm,
            subject_key_id,
            authority_key_id,
            sha256: hex_colons(digest.as_ref()),
        })
    }

    /// Whether `issuer` signed this certificate (names match and the signature verifies).
    pub fn is_signed_by(&self, issuer: &CertInfo) -> bool {
        if self.issuer_raw != issuer.subject_raw {
            return false;
        }
        // Both parsed whole once already (`from_der`): the signature needs the signed bytes and
        // the key, not the extensions parsed again.
        use x509_parser::nom::Parser;
        let mut parser = x509_parser::certificate::X509CertificateParser::new().with_deep_parse_extensions(false);
        let (Ok((_, me)), Ok((_, ca))) = (parser.parse(&self.der), parser.parse(&issuer.der)) else {
            return false;
        };
        me.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// Whether the extended key usage allows this purpose (`any` allows everything).
    pub fn allows(&self, usage: ExtKeyUsage) -> bool {
        self.ext_key_usage.iter().any(|u| *u == usage || *u == ExtKeyUsage::Any)
    }

    /// Every extended key usage by name, the others by OID.
    pub fn ext_key_usage_names(&self) -> Vec<String> {
        self.ext_key_usage
            .iter()
            .map(|u| u.name().to_string())
            .chain(self.other_ext_key_usage.iter().cloned())
            .collect()
    }

    /// Whether its signature uses SHA-1, which Go (since 1.18) and rustls refuse to verify.
    pub fn signed_with_sha1(&self) -> bool {
        self.signature_algorithm.to_ascii_lowercase().contains("sha1")
    }

    /// Whether the certificate is valid at this instant.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// An algorithm's short name (`ecdsa-with-SHA256`), or its OID.
pub(crate) fn algorithm_name(oid: &x509_parser::oid_registry::Oid) -> String {
    // SHA-1 signatures the registry has no name for: an audit must still see the SHA-1.
    const SHA1_NAMES: [(&str, &str); 2] =
        [("1.2.840.10045.4.1", "ecdsa-with-SHA1"), ("1.2.840.10040.4.3", "dsa-with-sha1")];
    let id = oid.to_id_string();
    if let Some((_, name)) = SHA1_NAMES.iter().find(|(o, _)| *o == id) {
        return (*name).to_string();
    }
    // The registry is a table built once (building it per certificate was a tenth of parsing one).
    static CRYPTO: std::sync::OnceLock<x509_parser::oid_registry::OidRegistry<'static>> = std::sync::OnceLock::new();
    let registry = CRYPTO.get_or_init(|| x509_parser::oid_registry::OidRegistry::default().with_crypto());
    registry.get(oid).map(|e| e.sn().to_string()).unwrap_or(id)
}
