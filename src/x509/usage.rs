//! X.509 vocabulary as types: key usages, extended key usages and public-key kinds, with the
//! names X.509 tools print, read from certificates and requests in one place.

use serde::{Serialize, Serializer};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::model::spec::KeyAlgorithm;

/// A key usage bit. kubepki sets digitalSignature, keyEncipherment (RSA leaves) and keyCertSign
/// (CAs); the others are read from what others made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    /// digitalSignature
    DigitalSignature,
    /// nonRepudiation (contentCommitment)
    NonRepudiation,
    /// keyEncipherment (kubeadm sets it whatever the key; it only means something for RSA, and
    /// kubepki writes it for RSA keys only: see `issue::set_profile`)
    KeyEncipherment,
    /// dataEncipherment
    DataEncipherment,
    /// keyAgreement
    KeyAgreement,
    /// keyCertSign (CAs)
    KeyCertSign,
    /// cRLSign (CAs)
    #[serde(rename = "cRLSign")]
    CrlSign,
}

/// An extended key usage (purpose).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtKeyUsage {
    /// TLS server authentication.
    ServerAuth,
    /// TLS client authentication.
    ClientAuth,
    /// anyExtendedKeyUsage: every purpose.
    Any,
    /// Code signing.
    CodeSigning,
    /// S/MIME.
    EmailProtection,
    /// Time stamping.
    TimeStamping,
    /// OCSP responses.
    #[serde(rename = "OCSPSigning")]
    OcspSigning,
}

impl KeyUsage {
    /// The name X.509 tools print (`digitalSignature`).
    pub fn name(self) -> &'static str {
        match self {
            KeyUsage::DigitalSignature => "digitalSignature",
            KeyUsage::NonRepudiation => "nonRepudiation",
            KeyUsage::KeyEncipherment => "keyEncipherment",
            KeyUsage::DataEncipherment => "dataEncipherment",
            KeyUsage::KeyAgreement => "keyAgreement",
            KeyUsage::KeyCertSign => "keyCertSign",
            KeyUsage::CrlSign => "cRLSign",
        }
    }

    /// Whether only a CA has any business with it.
    pub fn is_a_cas(self) -> bool {
        matches!(self, KeyUsage::KeyCertSign | KeyUsage::CrlSign)
    }
}

impl ExtKeyUsage {
    /// The name X.509 tools print (`serverAuth`).
    pub fn name(self) -> &'static str {
        match self {
            ExtKeyUsage::ServerAuth => "serverAuth",
            ExtKeyUsage::ClientAuth => "clientAuth",
            ExtKeyUsage::Any => "any",
            ExtKeyUsage::CodeSigning => "codeSigning",
            ExtKeyUsage::EmailProtection => "emailProtection",
            ExtKeyUsage::TimeStamping => "timeStamping",
            ExtKeyUsage::OcspSigning => "OCSPSigning",
        }
    }
}

impl std::fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for ExtKeyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The key usage bits set in an extension.
pub(crate) fn key_usages(ku: &x509_parser::extensions::KeyUsage) -> Vec<KeyUsage> {
    [
        (ku.digital_signature(), KeyUsage::DigitalSignature),
        (ku.non_repudiation(), KeyUsage::NonRepudiation),
        (ku.key_encipherment(), KeyUsage::KeyEncipherment),
        (ku.data_encipherment(), KeyUsage::DataEncipherment),
        (ku.key_agreement(), KeyUsage::KeyAgreement),
        (ku.key_cert_sign(), KeyUsage::KeyCertSign),
        (ku.crl_sign(), KeyUsage::CrlSign),
    ]
    .into_iter()
    .filter_map(|(on, u)| on.then_some(u))
    .collect()
}

/// The purposes of an extended key usage extension: the known ones, and the others by OID.
pub(crate) fn ext_key_usages(e: &x509_parser::extensions::ExtendedKeyUsage) -> (Vec<ExtKeyUsage>, Vec<String>) {
    let known = [
        (e.any, ExtKeyUsage::Any),
        (e.server_auth, ExtKeyUsage::ServerAuth),
        (e.client_auth, ExtKeyUsage::ClientAuth),
        (e.code_signing, ExtKeyUsage::CodeSigning),
        (e.email_protection, ExtKeyUsage::EmailProtection),
        (e.time_stamping, ExtKeyUsage::TimeStamping),
        (e.ocsp_signing, ExtKeyUsage::OcspSigning),
    ]
    .into_iter()
    .filter_map(|(on, u)| on.then_some(u))
    .collect();
    (known, e.other.iter().map(|o| o.to_id_string()).collect())
}

/// What kind of public key a certificate or request holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKeyKind {
    /// RSA of this many bits.
    Rsa(usize),
    /// ECDSA on the NIST curve of this many bits.
    Ecdsa(usize),
    /// Another algorithm, by name, and its size if known.
    Other(String, usize),
}

impl PublicKeyKind {
    /// Read a SubjectPublicKeyInfo.
    pub(crate) fn of(spki: &SubjectPublicKeyInfo) -> PublicKeyKind {
        use x509_parser::public_key::PublicKey;
        match spki.parsed() {
            Ok(PublicKey::RSA(r)) => PublicKeyKind::Rsa(r.key_size()),
            Ok(PublicKey::EC(p)) => PublicKeyKind::Ecdsa(p.key_size()),
            Ok(other) => {
                PublicKeyKind::Other(crate::x509::certinfo::algorithm_name(&spki.algorithm.algorithm), other.key_size())
            }
            Err(_) => PublicKeyKind::Other(crate::x509::certinfo::algorithm_name(&spki.algorithm.algorithm), 0),
        }
    }

    /// Its size in bits (0 when unknown).
    pub fn bits(&self) -> usize {
        match self {
            PublicKeyKind::Rsa(b) | PublicKeyKind::Ecdsa(b) | PublicKeyKind::Other(_, b) => *b,
        }
    }

    /// Too weak to certify: RSA below 2048 bits.
    pub fn is_weak(&self) -> bool {
        matches!(self, PublicKeyKind::Rsa(b) if *b < 2048)
    }

    /// Whether it is an RSA key (keyEncipherment means something only for those).
    pub fn is_rsa(&self) -> bool {
        matches!(self, PublicKeyKind::Rsa(_))
    }

    /// The algorithm kubepki would make a key like it with, if it makes such keys.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        match self {
            PublicKeyKind::Rsa(2048) => Some(KeyAlgorithm::Rsa2048),
            PublicKeyKind::Rsa(3072) => Some(KeyAlgorithm::Rsa3072),
            PublicKeyKind::Rsa(4096) => Some(KeyAlgorithm::Rsa4096),
            PublicKeyKind::Ecdsa(256) => Some(KeyAlgorithm::EcdsaP256),
            PublicKeyKind::Ecdsa(384) => Some(KeyAlgorithm::EcdsaP384),
            _ => None,
        }
    }
}

impl std::fmt::Display for PublicKeyKind {
    /// `RSA-2048`, `ECDSA-P256`, or another algorithm's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyKind::Rsa(b) => write!(f, "RSA-{b}"),
            PublicKeyKind::Ecdsa(b) => write!(f, "ECDSA-P{b}"),
            PublicKeyKind::Other(name, _) => f.write_str(name),
        }
    }
}

impl Serialize for PublicKeyKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_x509_names() {
        for u in [KeyUsage::DigitalSignature, KeyUsage::CrlSign, KeyUsage::KeyCertSign, KeyUsage::NonRepudiation] {
            assert_eq!(serde_json::to_value(u).unwrap(), u.name());
        }
        for u in [ExtKeyUsage::ServerAuth, ExtKeyUsage::OcspSigning, ExtKeyUsage::Any, ExtKeyUsage::TimeStamping] {
            assert_eq!(serde_json::to_value(u).unwrap(), u.name());
        }
    }

    #[test]
    fn key_kinds() {
        assert_eq!(PublicKeyKind::Rsa(1024).to_string(), "RSA-1024");
        assert!(PublicKeyKind::Rsa(1024).is_weak());
        assert!(!PublicKeyKind::Ecdsa(256).is_weak());
        assert_eq!(PublicKeyKind::Ecdsa(384).algorithm(), Some(KeyAlgorithm::EcdsaP384));
        assert_eq!(PublicKeyKind::Rsa(1024).algorithm(), None);
    }
}
