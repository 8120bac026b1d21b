//! PKCS#10 certificate signing requests, read and checked: what `sign` signs, what `approve`
//! finds in a Kubernetes CertificateSigningRequest, what `inspect` shows.

use serde::Serialize;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};
use x509_parser::x509::AttributeTypeAndValue;

use crate::model::spec::San;
use crate::x509::certinfo::algorithm_name;
use crate::x509::usage::{ext_key_usages, key_usages, ExtKeyUsage, KeyUsage, PublicKeyKind};

/// A PKCS#10 certificate signing request, parsed. Its signature is checked, not trusted: see
/// [`CertificateRequest::signature_ok`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequest {
    /// The whole subject.
    pub subject: String,
    /// Subject CN (the user asked for).
    pub cn: String,
    /// Subject O values (the groups asked for).
    pub orgs: Vec<String>,
    /// DNS and IP SANs of the extension request.
    pub sans: Vec<San>,
    /// Other SANs (email, URI, ...), as text.
    pub other_sans: Vec<String>,
    /// Whether it asks to be a CA (BasicConstraints CA:TRUE, or keyCertSign).
    pub asks_ca: bool,
    /// Key usages asked for.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages asked for, the ones kubepki knows by name.
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// Other extended key usages asked for, by OID.
    pub other_ext_key_usage: Vec<String>,
    /// The public key's kind and size (`RSA-2048`, `ECDSA-P256` in JSON).
    #[serde(rename = "keyAlgorithm")]
    pub key: PublicKeyKind,
    /// The request's signature algorithm.
    pub signature_algorithm: String,
    /// Whether the request's signature verifies with its own public key.
    pub signature_ok: bool,
    /// The raw public key (RSA: PKCS#1 public key; EC: the point), to compare with a key file.
    #[serde(skip)]
    pub public_key_raw: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    #[serde(skip)]
    spki: Vec<u8>,
}

impl CertificateRequest {
    /// Parse the first `CERTIFICATE REQUEST` PEM block of a text.
    pub fn from_pem(text: &str) -> std::result::Result<CertificateRequest, String> {
        let blocks = ::pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
        let block = blocks
            .iter()
            .find(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"))
            .ok_or_else(|| "no PEM block 'CERTIFICATE REQUEST' found".to_string())?;
        CertificateRequest::from_der(block.contents())
    }

    /// Parse DER.
    pub fn from_der(der: &[u8]) -> std::result::Result<CertificateRequest, String> {
        let (rest, req) =
            X509CertificationRequest::from_der(der).map_err(|e| format!("not a valid certificate request: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate request".into());
        }
        let info = &req.certification_request_info;
        let texts = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| -> Vec<String> {
            it.filter_map(|a| a.as_str().ok().map(str::to_string)).collect()
        };
        let mut out = CertificateRequest {
            subject: info.subject.to_string(),
            cn: texts(&mut info.subject.iter_common_name()).into_iter().next().unwrap_or_default(),
            orgs: texts(&mut info.subject.iter_organization()),
            sans: vec![],
            other_sans: vec![],
            asks_ca: false,
            key_usage: vec![],
            ext_key_usage: vec![],
            other_ext_key_usage: vec![],
            key: PublicKeyKind::of(&info.subject_pki),
            signature_algorithm: algorithm_name(&req.signature_algorithm.algorithm),
            signature_ok: req.verify_signature().is_ok() || legacy_rsa_signature_ok(&req),
            public_key_raw: info.subject_pki.subject_public_key.data.to_vec(),
            spki: info.subject_pki.raw.to_vec(),
        };
        for ext in req.requested_extensions().into_iter().flatten() {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => out.sans.push(San::Dns(d.to_string())),
                            GeneralName::IPAddress(b) => match ip(b) {
                                Some(ip) => out.sans.push(San::Ip(ip)),
                                None => out.other_sans.push(format!("IP:<{} bytes>", b.len())),
                            },
                            other => out.other_sans.push(other.to_string()),
                        }
                    }
                }
                ParsedExtension::BasicConstraints(bc) => out.asks_ca |= bc.ca,
                ParsedExtension::KeyUsage(ku) => {
                    out.asks_ca |= ku.key_cert_sign();
                    out.key_usage = key_usages(ku);
                }
                ParsedExtension::ExtendedKeyUsage(e) => {
                    (out.ext_key_usage, out.other_ext_key_usage) = ext_key_usages(e)
                }
                ParsedExtension::ParseError { error } => {
                    return Err(format!("an extension of the request cannot be read: {error}"));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Why the key is too weak to certify, if it is (RSA below 2048 bits).
    pub fn weak_key(&self) -> Option<String> {
        self.key.is_weak().then(|| format!("the key is {}: at least RSA-2048 or ECDSA is needed", self.key))
    }

    /// The public key, for [`Ca::sign`].
    pub(crate) fn public_key(&self) -> std::result::Result<rcgen::SubjectPublicKeyInfo, String> {
        rcgen::SubjectPublicKeyInfo::from_der(&self.spki)
            .map_err(|e| format!("the request's public key cannot be certified ({}): {e}", self.key))
    }
}

/// The signature of a request whose RSA key is shorter than 2048 bits, which the verifier
/// refuses to check at all: checked here, so that such a request is reported for what it is
/// (a weak key, see [`CertificateRequest::weak_key`]) rather than as a bad signature.
fn legacy_rsa_signature_ok(req: &X509CertificationRequest) -> bool {
    use aws_lc_rs::signature::{
        UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    };
    use x509_parser::oid_registry::{OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA512WITHRSA};
    let spki = &req.certification_request_info.subject_pki;
    let algorithm = &req.signature_algorithm.algorithm;
    let params = if *algorithm == OID_PKCS1_SHA256WITHRSA {
        &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
    } else if *algorithm == OID_PKCS1_SHA512WITHRSA {
        &RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
    } else {
        return false;
    };
    if !PublicKeyKind::of(spki).is_weak() {
        return false;
    }
    UnparsedPublicKey::new(params, &spki.subject_public_key.data[..])
        .verify(req.certification_request_info.raw, &req.signature_value.data)
        .is_ok()
}

fn ip(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usage_a_request_asks_for_is_read() {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose as Eku, KeyPair, KeyUsagePurpose as Ku};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["node01".into(), "10.0.0.2".into()]).unwrap();
        params.key_usages = vec![Ku::DigitalSignature, Ku::KeyCertSign];
        params.extended_key_usages = vec![Eku::ServerAuth, Eku::CodeSigning, Eku::Other(vec![1, 2, 3, 4])];
        let der = params.serialize_request(&key).unwrap().der().to_vec();
        let r = CertificateRequest::from_der(&der).unwrap();
        assert_eq!(r.key_usage, [KeyUsage::DigitalSignature, KeyUsage::KeyCertSign]);
        assert!(r.asks_ca, "keyCertSign asks to be a CA");
        assert_eq!(r.ext_key_usage, [ExtKeyUsage::ServerAuth, ExtKeyUsage::CodeSigning]);
        assert_eq!(r.other_ext_key_usage, ["1.2.3.4"]);
        assert_eq!(r.sans, [San::Dns("node01".into()), San::Ip("10.0.0.2".parse().unwrap())]);
        assert_eq!(r.key, PublicKeyKind::Ecdsa(256));
        assert_eq!(r.key.to_string(), "ECDSA-P256");
        assert_eq!(r.signature_algorithm, "ecdsa-with-SHA256");
        assert!(r.signature_ok);
    }
}
