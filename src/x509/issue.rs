//! Keys and signing. Only a [`Ca`] signs; keys are written in the PEM forms kubeadm writes
//! (RSA as PKCS#1, ECDSA as SEC1) and never appear in `Debug` output or errors.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer as RcIssuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::PrivateKeyDer;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::model::catalog::{CertProfile, ExtKeyUsage, KeyUsage};
use crate::model::spec::{KeyAlgorithm, San};
use crate::x509::certinfo::CertInfo;

/// How far NotBefore is backdated, for clocks that run a little behind (kubeadm: 5 minutes).
pub const BACKDATE: time::Duration = time::Duration::minutes(5);

/// The latest NotAfter: RFC 5280 §4.1.2.5's "no well-defined expiration date",
/// 9999-12-31T23:59:59Z. Validity is bounded when a description is read; this is the last
/// line, so that no arithmetic on a date can overflow here.
pub const MAX_NOT_AFTER: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// A private key. Its `Debug` shows the algorithm only.
pub struct PrivateKey {
    pair: KeyPair,
    algorithm: KeyAlgorithm,
    /// The PEM text as written to disk (kubeadm's form for keys kubepki made, the file's own
    /// form for keys it read).
    pem: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm)
    }
}

impl PrivateKey {
    /// A fresh key from the system CSPRNG.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<PrivateKey> {
        let fail = |e: rcgen::Error| Error::crypto(format!("generating a {algorithm} key"), e);
        let pair = match algorithm {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
            KeyAlgorithm::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
            KeyAlgorithm::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096),
        }
        .map_err(fail)?;
        let pem = kubeadm_pem(&pair, algorithm)?;
        Ok(PrivateKey { pair, algorithm, pem })
    }

    /// Read a PEM key: PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#8
    /// (`PRIVATE KEY`). `source` names the file in errors.
    pub fn from_pem(text: &str, source: &std::path::Path) -> Result<PrivateKey> {
        let block = pem::parse(text).map_err(|_| Error::bad_file(source, "not a PEM private key"))?;
        let der = match block.tag() {
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(block.contents().to_vec().into()),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(block.contents().to_vec().into()),
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(block.contents().to_vec().into()),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::bad_file(source, "the key is encrypted; kubepki needs an unencrypted key"))
            }
            other => {
                return Err(Error::bad_file(source, format!("a PEM block of type '{other}', expected a private key")))
            }
        };
        let pair = KeyPair::try_from(&der).map_err(|_| {
            Error::bad_file(source, "the private key cannot be read (corrupt, or an unsupported algorithm)")
        })?;
        let algorithm = algorithm_of(&pair.subject_public_key_info())
            .ok_or_else(|| Error::bad_file(source, "unsupported key algorithm or size"))?;
        Ok(PrivateKey { pair, algorithm, pem: text.to_string() })
    }

    /// The PEM text to write (0600!).
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as a PEM `PUBLIC KEY` (PKIX), as kubeadm writes `sa.pub`.
    pub fn public_key_pem(&self) -> String {
        self.pair.public_key_pem()
    }

    /// The raw public key (RSA: PKCS#1 public key; EC: the point), to compare with a certificate.
    pub fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key_raw()
    }

    /// Whether this key belongs to the certificate.
    pub fn matches(&self, cert: &CertInfo) -> bool {
        self.public_key_raw() == cert.public_key_raw.as_slice()
    }
}

/// The key's algorithm, from its SubjectPublicKeyInfo.
fn algorithm_of(spki: &[u8]) -> Option<KeyAlgorithm> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).ok()?;
    match info.parsed().ok()? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        },
        PublicKey::EC(point) => match point.key_size() {
            256 => Some(KeyAlgorithm::EcdsaP256),
            384 => Some(KeyAlgorithm::EcdsaP384),
            _ => None,
        },
        _ => None,
    }
}

/// kubeadm's PEM form: `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1 with the curve).
fn kubeadm_pem(pair: &KeyPair, algorithm: KeyAlgorithm) -> Result<String> {
    let pkcs8 = pair.serialized_der();
    let fail = |d: &str| Error::crypto(format!("encoding a {algorithm} key"), d);
    let (tag, der) = if algorithm.is_rsa() {
        ("RSA PRIVATE KEY", pkcs8_inner(pkcs8).ok_or_else(|| fail("not PKCS#8"))?.to_vec())
    } else {
        ("EC PRIVATE KEY", sec1_of_pkcs8(pkcs8).ok_or_else(|| fail("not an EC PKCS#8 key"))?)
    };
    // LF line endings, as kubeadm (and every other tool here) writes them.
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    Ok(pem::encode_config(&pem::Pem::new(tag, der), config))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo`: for RSA, the PKCS#1 key.
fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
    pkcs8_parts(der).map(|(_, key)| key)
}

/// A PKCS#8 `PrivateKeyInfo`'s algorithm parameters (TLV; for EC, the named curve) and its
/// `privateKey` contents.
fn pkcs8_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, _) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = der_tlv(body)?; // version
    let (tag, algorithm, rest) = der_tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, parameters) = der_tlv(algorithm)?; // the algorithm's OID, then its parameters
    let (tag, key, _) = der_tlv(rest)?;
    (tag == 0x04).then_some((parameters, key))
}

/// SEC1 `ECPrivateKey` (RFC 5915) with the named curve, as Go's `x509.MarshalECPrivateKey`
/// (kubeadm) writes it, from PKCS#8. PKCS#8 carries the curve in the algorithm and may leave
/// it out of the inner key: it is put back (`[0]`, after the private key), by rewriting the
/// DER rather than parsing the key again.
fn sec1_of_pkcs8(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (curve, inner) = pkcs8_parts(pkcs8)?;
    let (tag, body, _) = der_tlv(inner)?;
    if tag != 0x30 || curve.first() != Some(&0x06) {
        return None;
    }
    let (_, _, after_version) = der_tlv(body)?;
    let (tag, _, optional) = der_tlv(after_version)?;
    if tag != 0x04 {
        return None;
    }
    if optional.first() == Some(&0xa0) {
        return Some(inner.to_vec()); // the curve is there already
    }
    let head = &body[..body.len() - optional.len()];
    let mut out = head.to_vec();
    out.extend(der_encode(0xa0, curve));
    out.extend_from_slice(optional);
    Some(der_encode(0x30, &out))
}

/// A DER TLV.
fn der_encode(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

/// One DER TLV: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let len = input[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        input = &input[n..];
        len
    };
    (input.len() >= len).then(|| (tag, &input[..len], &input[len..]))
}

/// A freshly signed certificate.
#[derive(Clone, Debug)]
pub struct Issued {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// NotAfter as issued (clamped to the issuer's).
    pub not_after: OffsetDateTime,
}

/// A CA: its certificate and key. The only thing that signs.
pub struct Ca {
    /// The catalog id.
    pub id: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// What the certificate says.
    pub info: CertInfo,
    issuer: RcIssuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ca({}, {})", self.id, self.info.subject_cn)
    }
}

impl Ca {
    /// A new self-signed CA for a catalog profile.
    pub fn create(id: &str, profile: &CertProfile, key: PrivateKey, now: OffsetDateTime) -> Result<Ca> {
        let params = params_for(profile, now, None, key.algorithm.is_rsa())?;
        let cert = params.self_signed(&key.pair).map_err(|e| Error::crypto(format!("self-signing CA {id}"), e))?;
        let cert_pem = cert.pem();
        let info = CertInfo::from_der(cert.der()).map_err(|e| Error::crypto(format!("reading back CA {id}"), e))?;
        Ok(Ca { id: id.into(), cert_pem, info, issuer: RcIssuer::new(params, key.pair) })
    }

    /// An existing CA from its certificate and key; the key must match.
    pub fn load(id: &str, cert_pem: &str, cert_path: &std::path::Path, key: PrivateKey) -> Result<Ca> {
        let info = CertInfo::from_pem(cert_pem, cert_path)?;
        if !info.is_ca {
            return Err(Error::bad_file(cert_path, "not a CA certificate (BasicConstraints CA:FALSE or missing)"));
        }
        if !key.matches(&info) {
            return Err(Error::bad_file(cert_path, "the CA's private key does not match its certificate"));
        }
        let issuer = RcIssuer::from_ca_cert_der(&info.der.clone().into(), key.pair)
            .map_err(|e| Error::bad_file(cert_path, format!("cannot sign with this CA: {e}")))?;
        Ok(Ca { id: id.into(), cert_pem: cert_pem.to_string(), info, issuer })
    }

    /// Sign a leaf for `public_key` with the profile's identity, usages and SANs.
    pub fn sign(&self, profile: &CertProfile, public_key: &impl PublicKeyData, now: OffsetDateTime) -> Result<Issued> {
        let params = params_for(profile, now, Some(self.info.not_after), is_rsa(public_key))?;
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(|e| Error::crypto(format!("signing {} with {}", profile.subject.cn, self.id), e))?;
        Ok(Issued { der: cert.der().to_vec(), pem: cert.pem(), not_after: params.not_after })
    }

    /// Another CA's certificate (its profile, its public key) signed by this CA: a cross-signed
    /// certificate, so that a party that trusts only this CA still verifies what the other
    /// signs, when it is shipped after each leaf. It names this CA as its authority (AKI), so
    /// that no verifier takes it for a self-signed root (both CAs have the same name), and ends
    /// no later than this CA.
    pub fn cross_sign(&self, profile: &CertProfile, key: &PrivateKey, now: OffsetDateTime) -> Result<Issued> {
        let mut params = params_for(profile, now, Some(self.info.not_after), key.algorithm().is_rsa())?;
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key.pair, &self.issuer)
            .map_err(|e| Error::crypto(format!("cross-signing {} with {}", profile.subject.cn, self.id), e))?;
        Ok(Issued { der: cert.der().to_vec(), pem: cert.pem(), not_after: params.not_after })
    }

    /// Sign a leaf for a private key.
    pub fn sign_key(&self, profile: &CertProfile, key: &PrivateKey, now: OffsetDateTime) -> Result<Issued> {
        self.sign(profile, &key.pair, now)
    }
}

/// Whether a public key is RSA's.
fn is_rsa(key: &impl PublicKeyData) -> bool {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let spki = key.subject_public_key_info();
    x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki)
        .is_ok_and(|(_, info)| matches!(info.parsed(), Ok(PublicKey::RSA(_))))
}

/// The subject (O before CN, as Go and so kubeadm write it), SANs, key usage and extended key
/// usage of a profile, for a certificate or a request of a key (`rsa`: an RSA key).
/// keyEncipherment is written for RSA keys only: on an EC key RFC 5480 §3 prohibits it (Go's
/// own generator sets it for RSA only; kubeadm sets it whatever the key, and the audit
/// accepts both).
pub(crate) fn set_profile(params: &mut CertificateParams, p: &CertProfile, rsa: bool) -> Result<()> {
    // rcgen keeps one value per attribute type, so a second group cannot be written: refuse
    // rather than drop a group silently.
    if p.subject.orgs.len() > 1 {
        return Err(Error::Invalid(format!(
            "{}: kubepki issues certificates with one O (group) at most; this one asks for {}",
            p.subject.cn,
            p.subject.orgs.join(", ")
        )));
    }
    let mut dn = DistinguishedName::new();
    if let Some(o) = p.subject.orgs.first() {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, p.subject.cn.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = p
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(d) => d
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| Error::Invalid(format!("'{d}' cannot be a DNS SAN"))),
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        })
        .collect::<Result<_>>()?;
    params.key_usages = p
        .key_usage
        .iter()
        .filter(|u| rsa || **u != KeyUsage::KeyEncipherment)
        .map(|u| match u {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::NonRepudiation => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
            KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
        })
        .collect();
    params.extended_key_usages = p
        .ext_key_usage
        .iter()
        .map(|u| match u {
            ExtKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            ExtKeyUsage::Any => ExtendedKeyUsagePurpose::Any,
            ExtKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            ExtKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            ExtKeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
            ExtKeyUsage::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
        })
        .collect();
    Ok(())
}

/// A random positive serial: 16 bytes from the CSPRNG, top bit clear, never leading zero
/// (126 bits of randomness).
pub fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Error::crypto("serial number", "the system CSPRNG failed"))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn params_for(
    p: &CertProfile,
    now: OffsetDateTime,
    cap: Option<OffsetDateTime>,
    rsa: bool,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    set_profile(&mut params, p, rsa)?;
    params.serial_number = Some(random_serial()?);
    params.not_before = now - BACKDATE;
    let mut not_after = now.checked_add(p.validity).unwrap_or(MAX_NOT_AFTER).min(MAX_NOT_AFTER);
    if let Some(cap) = cap {
        not_after = not_after.min(cap);
    }
    params.not_after = not_after;
    params.is_ca = if p.is_ca { IsCa::Ca(BasicConstraints::Unconstrained) } else { IsCa::ExplicitNoCa };
    params.use_authority_key_identifier_extension = !p.is_ca;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;

    #[test]
    fn keys_are_written_in_kubeadm_form_and_read_back() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = PrivateKey::generate(alg).unwrap();
            let tag = if alg.is_rsa() { "RSA PRIVATE KEY" } else { "EC PRIVATE KEY" };
            assert!(key.to_pem().starts_with(&format!("-----BEGIN {tag}-----\n")), "{alg}");
            assert!(!key.to_pem().contains('\r'), "{alg}: LF line endings");
            let back = PrivateKey::from_pem(key.to_pem(), "k".as_ref()).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.public_key_raw(), key.public_key_raw());
        }
    }

    #[test]
    fn ec_keys_are_the_sec1_that_aws_lc_writes() {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};
        for (alg, signing) in [
            (KeyAlgorithm::EcdsaP256, &ECDSA_P256_SHA256_ASN1_SIGNING),
            (KeyAlgorithm::EcdsaP384, &ECDSA_P384_SHA384_ASN1_SIGNING),
        ] {
            for _ in 0..50 {
                let key = PrivateKey::generate(alg).unwrap();
                let ours = pem::parse(key.to_pem()).unwrap().into_contents();
                let theirs = EcdsaKeyPair::from_pkcs8(signing, key.pair.serialized_der()).unwrap();
                assert_eq!(ours, theirs.private_key().as_der().unwrap().as_ref(), "{alg}");
            }
        }
        assert_eq!(der_encode(0x04, &[7; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der_encode(0x04, &[7; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert!(sec1_of_pkcs8(b"\x30\x03\x02\x01\x00").is_none());
        // Both forms of PKCS#8: with the curve inside the inner key, and without it.
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sec1 = pem::parse(key.to_pem()).unwrap().into_contents();
        let (curve, _) = pkcs8_parts(key.pair.serialized_der()).unwrap();
        let (_, body, _) = der_tlv(&sec1).unwrap();
        let without_curve = [&body[..2 + 1 + 2 + 32], &body[2 + 1 + 2 + 32 + 2 + curve.len()..]].concat();
        for inner in [sec1.clone(), der_encode(0x30, &without_curve)] {
            let algorithm = der_encode(0x30, &[&[0x06, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 2, 1][..], curve].concat());
            let pkcs8 = der_encode(0x30, &[&[2, 1, 0][..], &algorithm, &der_encode(0x04, &inner)].concat());
            assert_eq!(sec1_of_pkcs8(&pkcs8).unwrap(), sec1);
        }
    }

    #[test]
    fn not_after_is_at_most_9999_12_31_whatever_the_validity() {
        use crate::model::catalog::Subject;
        let profile = |validity| CertProfile {
            subject: Subject { cn: "ca".into(), orgs: vec![] },
            is_ca: true,
            key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::KeyCertSign],
            ext_key_usage: vec![],
            sans: vec![],
            validity,
        };
        let now = time::macros::datetime!(2026-01-01 0:00 UTC);
        for validity in [time::Duration::days(3_000_000), time::Duration::MAX] {
            let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let ca = Ca::create("ca", &profile(validity), key, now).unwrap();
            assert_eq!(ca.info.not_after, MAX_NOT_AFTER);
        }
    }

    /// Issue 12: keyEncipherment is prohibited on EC keys (RFC 5480 §3), meaningful on RSA.
    #[test]
    fn key_encipherment_is_for_rsa_keys_only() {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let spec = crate::model::spec::ClusterSpec::builtin_default();
        let catalog = crate::model::catalog::Catalog::build(&spec);
        let profile = |id: &str| catalog.get(id).and_then(|e| e.cert()).unwrap().clone();
        let now = OffsetDateTime::now_utc();
        let ca = Ca::create("ca", &profile("ca"), PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(), now).unwrap();
        let usage = |der: &[u8]| {
            let (_, cert) = X509Certificate::from_der(der).unwrap();
            let ku = cert.key_usage().unwrap().unwrap().value;
            (ku.digital_signature(), ku.key_encipherment())
        };
        assert_eq!(usage(&ca.info.der), (true, false), "an EC CA");
        for (alg, encipherment) in
            [(KeyAlgorithm::EcdsaP256, false), (KeyAlgorithm::EcdsaP384, false), (KeyAlgorithm::Rsa2048, true)]
        {
            let key = PrivateKey::generate(alg).unwrap();
            let issued = ca.sign_key(&profile("apiserver@controlplane"), &key, now).unwrap();
            assert_eq!(usage(&issued.der), (true, encipherment), "{alg}");
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "PrivateKey(ecdsa-p256, <redacted>)");
    }

    #[test]
    fn serials_are_random_positive_and_long() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
    }

    #[test]
    fn bad_key_files_are_named() {
        let err =
            PrivateKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "x.key".as_ref())
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("x.key: "), "{err}");
        assert!(err.contains("CERTIFICATE"), "{err}");
    }
}
