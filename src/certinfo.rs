//! What a certificate on disk says, parsed once into plain data (subject, issuer, validity,
//! usages, SANs, key), for init's survey of an existing tree and for every later check.

use std::net::IpAddr;
use std::path::Path;

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::*;

use crate::catalog::ExtKeyUsage;
use crate::error::{Error, Result};
use crate::spec::San;

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
    #[serde(with = "::time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// NotAfter.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// BasicConstraints CA.
    pub is_ca: bool,
    /// BasicConstraints path length.
    pub path_len: Option<u32>,
    /// Key usage names (`digitalSignature`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usage names (`serverAuth`, `clientAuth`, or an OID).
    pub ext_key_usage: Vec<String>,
    /// DNS and IP SANs.
    pub sans: Vec<San>,
    /// Other SANs (email, URI, ...), as text.
    pub other_sans: Vec<String>,
    /// `RSA` or `ECDSA`, with the size: `RSA-2048`, `ECDSA-P256`.
    pub key_algorithm: String,
    /// Key size in bits.
    pub key_bits: usize,
    /// The raw public key (RSA: PKCS#1 public key; EC: the point).
    #[serde(skip)]
    pub public_key_raw: Vec<u8>,
    /// Signature algorithm (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, ...).
    pub signature_algorithm: String,
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
            Some(ku) => key_usage_names(ku.value),
            None => Vec::new(),
        };
        let ext_key_usage = match x.extended_key_usage().map_err(|e| format!("bad ExtendedKeyUsage: {e}"))? {
            Some(eku) => ext_key_usage_names(eku.value),
            None => Vec::new(),
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
        let spki = x.public_key();
        let (key_algorithm, key_bits) = key_name(spki);
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
            sans,
            other_sans,
            key_algorithm,
            key_bits,
            public_key_raw: spki.subject_public_key.data.to_vec(),
            signature_algorithm,
            sha256: hex_colons(digest.as_ref()),
        })
    }

    /// Whether `issuer` signed this certificate (names match and the signature verifies).
    pub fn is_signed_by(&self, issuer: &CertInfo) -> bool {
        if self.issuer_raw != issuer.subject_raw {
            return false;
        }
        let (Ok((_, me)), Ok((_, ca))) = (X509Certificate::from_der(&self.der), X509Certificate::from_der(&issuer.der))
        else {
            return false;
        };
        me.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// Whether the extended key usage allows this purpose (`any` allows everything).
    pub fn allows(&self, usage: ExtKeyUsage) -> bool {
        let name = eku_name(usage);
        self.ext_key_usage.iter().any(|u| u == name || u == "any")
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

impl CertInfo {
    /// How this certificate differs from a catalog profile's identity, CA flag, usages and
    /// SANs (empty when it fits). Validity and issuer are checked elsewhere.
    pub fn differences_from(&self, p: &crate::catalog::CertProfile) -> Vec<String> {
        use std::collections::BTreeSet;
        let mut out = Vec::new();
        if self.subject_cn != p.subject.cn {
            out.push(format!("CN is '{}', expected '{}'", self.subject_cn, p.subject.cn));
        }
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        if set(&self.orgs) != set(&p.subject.orgs) {
            out.push(format!("O is [{}], expected [{}]", self.orgs.join(", "), p.subject.orgs.join(", ")));
        }
        if self.is_ca != p.is_ca {
            out.push(format!("CA flag is {}, expected {}", self.is_ca, p.is_ca));
        }
        for u in &p.ext_key_usage {
            if !self.allows(*u) {
                out.push(format!("extended key usage lacks {}", eku_name(*u)));
            }
        }
        let have: BTreeSet<_> = self.sans.iter().collect();
        let want: BTreeSet<_> = p.sans.iter().collect();
        let missing: Vec<_> = want.difference(&have).map(|s| s.to_string()).collect();
        let extra: Vec<_> = have.difference(&want).map(|s| s.to_string()).collect();
        if !missing.is_empty() {
            out.push(format!("SANs lack {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            out.push(format!("SANs have extra {}", extra.join(", ")));
        }
        out
    }
}

/// The name of an extended key usage as X.509 tools print it.
pub fn eku_name(u: ExtKeyUsage) -> &'static str {
    match u {
        ExtKeyUsage::ServerAuth => "serverAuth",
        ExtKeyUsage::ClientAuth => "clientAuth",
    }
}

/// The key usages set, by name (`digitalSignature`, `keyCertSign`, ...).
pub(crate) fn key_usage_names(ku: &x509_parser::extensions::KeyUsage) -> Vec<String> {
    let bits = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
    ];
    bits.iter().filter(|(on, _)| *on).map(|(_, n)| n.to_string()).collect()
}

/// The extended key usages, by name (`serverAuth`, `clientAuth`, ...), others by OID.
pub(crate) fn ext_key_usage_names(e: &x509_parser::extensions::ExtendedKeyUsage) -> Vec<String> {
    let named = [
        (e.any, "any"),
        (e.server_auth, "serverAuth"),
        (e.client_auth, "clientAuth"),
        (e.code_signing, "codeSigning"),
        (e.email_protection, "emailProtection"),
        (e.time_stamping, "timeStamping"),
        (e.ocsp_signing, "OCSPSigning"),
    ];
    let mut names: Vec<String> = named.iter().filter(|(on, _)| *on).map(|(_, n)| n.to_string()).collect();
    names.extend(e.other.iter().map(|o| o.to_id_string()));
    names
}

/// A key's algorithm and size as kubepki shows them: `RSA-2048`, `ECDSA-P256`; another
/// algorithm by its name.
pub(crate) fn key_name(spki: &x509_parser::x509::SubjectPublicKeyInfo) -> (String, usize) {
    use x509_parser::public_key::PublicKey;
    match spki.parsed() {
        Ok(PublicKey::RSA(r)) => (format!("RSA-{}", r.key_size()), r.key_size()),
        Ok(PublicKey::EC(p)) => (format!("ECDSA-P{}", p.key_size()), p.key_size()),
        Ok(other) => (algorithm_name(&spki.algorithm.algorithm), other.key_size()),
        Err(_) => (algorithm_name(&spki.algorithm.algorithm), 0),
    }
}

/// An algorithm's short name (`ecdsa-with-SHA256`), or its OID.
pub(crate) fn algorithm_name(oid: &x509_parser::oid_registry::Oid) -> String {
    x509_parser::oid_registry::OidRegistry::default()
        .with_crypto()
        .get(oid)
        .map(|e| e.sn().to_string())
        .unwrap_or_else(|| oid.to_id_string())
}
