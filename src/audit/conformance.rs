//! Does a certificate, or a request, fit its catalog entry? One answer for every command that
//! asks: `verify` (findings), `init` (keep or refuse an existing file), `sign` (refuse a
//! request) and `import` (refuse a returned certificate). Each difference is a typed
//! [`Deviation`]; what a caller tolerates (verify tolerates extra SANs) is its own decision.
//! Validity, issuer and key are checked where the files are, not here.

use std::collections::BTreeSet;

use crate::audit::finding::FindingKind;
use crate::model::catalog::{CertProfile, Entry};
use crate::model::spec::San;
use crate::model::vocabulary::SYSTEM_MASTERS;
use crate::x509::certinfo::CertInfo;
use crate::x509::request::CertificateRequest;
use crate::x509::usage::{ExtKeyUsage, KeyUsage};

/// What a certificate or request says about itself, as far as its profile goes.
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    /// CN.
    pub cn: &'a str,
    /// O values.
    pub orgs: &'a [String],
    /// CA:TRUE (or, for a request, asking for it).
    pub is_ca: bool,
    /// Key usage bits.
    pub key_usage: &'a [KeyUsage],
    /// Extended key usages, or `None` when the signer decides them (a request).
    pub ext_key_usage: Option<(&'a [ExtKeyUsage], &'a [String])>,
    /// DNS and IP SANs.
    pub sans: &'a [San],
    /// Other SANs (email, URI, ...).
    pub other_sans: &'a [String],
}

impl<'a> From<&'a CertInfo> for Presented<'a> {
    fn from(c: &'a CertInfo) -> Presented<'a> {
        Presented {
            cn: &c.subject_cn,
            orgs: &c.orgs,
            is_ca: c.is_ca,
            key_usage: &c.key_usage,
            ext_key_usage: Some((&c.ext_key_usage, &c.other_ext_key_usage)),
            sans: &c.sans,
            other_sans: &c.other_sans,
        }
    }
}

impl<'a> From<&'a CertificateRequest> for Presented<'a> {
    /// A request's usages are the signer's to set (kubepki signs the catalog's), so only its
    /// identity, SANs and any CA wish are held against the profile.
    fn from(r: &'a CertificateRequest) -> Presented<'a> {
        Presented {
            cn: &r.cn,
            orgs: &r.orgs,
            is_ca: r.asks_ca,
            key_usage: &r.key_usage,
            ext_key_usage: None,
            sans: &r.sans,
            other_sans: &r.other_sans,
        }
    }
}

/// One way a certificate or request differs from its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deviation {
    /// Another CN.
    Cn {
        /// The catalog's.
        expected: String,
        /// What it has.
        found: String,
    },
    /// Other O values (as sets).
    Orgs {
        /// The catalog's.
        expected: Vec<String>,
        /// What it has.
        found: Vec<String>,
    },
    /// `system:masters` on an entry that is not the break-glass credential.
    SystemMasters,
    /// CA:TRUE where the catalog says a leaf, or the other way round.
    CaFlag {
        /// The catalog's.
        expected: bool,
    },
    /// An extended key usage the entry needs is missing.
    MissingUsage(ExtKeyUsage),
    /// An extended key usage beyond the profile (by name or OID).
    ExtraUsage(String),
    /// A leaf with a CA's key usage (keyCertSign, cRLSign).
    SigningUsage(KeyUsage),
    /// SANs of the profile it lacks.
    MissingSans(Vec<San>),
    /// SANs it has beyond the profile.
    ExtraSans(Vec<San>),
    /// SANs of kinds kubepki never issues (email, URI, ...).
    OtherSans(Vec<String>),
}

impl Deviation {
    /// The finding `verify` files for it.
    pub fn finding_kind(&self) -> FindingKind {
        match self {
            Deviation::Cn { .. } | Deviation::Orgs { .. } => FindingKind::Identity,
            Deviation::SystemMasters => FindingKind::SystemMasters,
            Deviation::CaFlag { .. } | Deviation::MissingUsage(_) => FindingKind::Usage,
            Deviation::ExtraUsage(_) | Deviation::SigningUsage(_) => FindingKind::UsageExtra,
            Deviation::MissingSans(_) | Deviation::ExtraSans(_) | Deviation::OtherSans(_) => FindingKind::SanProfile,
        }
    }
}

impl std::fmt::Display for Deviation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deviation::Cn { expected, found } => write!(f, "CN is '{found}', expected '{expected}'"),
            Deviation::Orgs { expected, found } => {
                write!(f, "O is [{}], expected [{}]", found.join(", "), expected.join(", "))
            }
            Deviation::SystemMasters => write!(
                f,
                "O={SYSTEM_MASTERS} is only ever in super-admin.conf, the break-glass credential (it bypasses RBAC and cannot be revoked)"
            ),
            Deviation::CaFlag { expected: true } => f.write_str("it is not a CA (CA:FALSE), expected a CA"),
            Deviation::CaFlag { expected: false } => f.write_str("it is a CA (CA:TRUE), expected a leaf"),
            Deviation::MissingUsage(u) => write!(f, "extended key usage lacks {u}"),
            Deviation::ExtraUsage(u) => write!(f, "extended key usage has extra {u}"),
            Deviation::SigningUsage(u) => write!(f, "key usage {u} is a CA's"),
            Deviation::MissingSans(s) => write!(f, "SANs lack {}", join(s)),
            Deviation::ExtraSans(s) => write!(f, "SANs have extra {}", join(s)),
            Deviation::OtherSans(s) => write!(f, "SANs kubepki never issues: {}", s.join(", ")),
        }
    }
}

/// How `x` differs from the profile of `entry`, in a fixed order: identity, CA flag, usages,
/// SANs.
pub fn deviations(entry: &Entry, profile: &CertProfile, x: Presented<'_>) -> Vec<Deviation> {
    let mut out = Vec::new();
    if x.cn != profile.subject.cn {
        out.push(Deviation::Cn { expected: profile.subject.cn.clone(), found: x.cn.to_string() });
    }
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    if set(x.orgs) != set(&profile.subject.orgs) {
        out.push(Deviation::Orgs { expected: profile.subject.orgs.clone(), found: x.orgs.to_vec() });
    }
    if !entry.break_glass && x.orgs.iter().any(|o| o == SYSTEM_MASTERS) {
        out.push(Deviation::SystemMasters);
    }
    if x.is_ca != profile.is_ca {
        out.push(Deviation::CaFlag { expected: profile.is_ca });
    }
    if let Some((eku, other)) = x.ext_key_usage {
        let allows = |u: ExtKeyUsage| eku.iter().any(|h| *h == u || *h == ExtKeyUsage::Any);
        out.extend(profile.ext_key_usage.iter().filter(|u| !allows(**u)).map(|u| Deviation::MissingUsage(*u)));
        if !profile.is_ca {
            let extra = eku.iter().filter(|u| !profile.ext_key_usage.contains(u)).map(|u| u.name().to_string());
            out.extend(extra.chain(other.iter().cloned()).map(Deviation::ExtraUsage));
        }
    }
    if !profile.is_ca {
        out.extend(x.key_usage.iter().filter(|u| u.is_a_cas()).map(|u| Deviation::SigningUsage(*u)));
    }
    let have: BTreeSet<&San> = x.sans.iter().collect();
    let want: BTreeSet<&San> = profile.sans.iter().collect();
    let missing: Vec<San> = profile.sans.iter().filter(|s| !have.contains(s)).cloned().collect();
    let extra: Vec<San> = x.sans.iter().filter(|s| !want.contains(s)).cloned().collect();
    if !missing.is_empty() {
        out.push(Deviation::MissingSans(missing));
    }
    if !extra.is_empty() {
        out.push(Deviation::ExtraSans(extra));
    }
    if !x.other_sans.is_empty() {
        out.push(Deviation::OtherSans(x.other_sans.to_vec()));
    }
    out
}

fn join(sans: &[San]) -> String {
    sans.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Catalog;
    use crate::model::spec::ClusterSpec;

    fn entry(id: &str) -> (Entry, CertProfile) {
        let catalog = Catalog::build(&ClusterSpec::builtin_default());
        let e = catalog.get(id).unwrap().clone();
        let p = e.cert().unwrap().clone();
        (e, p)
    }

    fn presented<'a>(p: &'a CertProfile, eku: &'a [ExtKeyUsage]) -> Presented<'a> {
        Presented {
            cn: &p.subject.cn,
            orgs: &p.subject.orgs,
            is_ca: p.is_ca,
            key_usage: &p.key_usage,
            ext_key_usage: Some((eku, &[])),
            sans: &p.sans,
            other_sans: &[],
        }
    }

    #[test]
    fn the_profile_itself_fits() {
        for id in ["ca", "apiserver@controlplane", "admin.conf", "super-admin.conf", "kubelet-serving@node01"] {
            let (e, p) = entry(id);
            assert_eq!(deviations(&e, &p, presented(&p, &p.ext_key_usage)), [], "{id}");
        }
    }

    #[test]
    fn each_difference_is_its_own_deviation() {
        let (e, p) = entry("admin.conf");
        let masters = vec!["system:masters".to_string()];
        let x = Presented { orgs: &masters, ..presented(&p, &[ExtKeyUsage::ServerAuth]) };
        let d = deviations(&e, &p, x);
        assert_eq!(
            d,
            [
                Deviation::Orgs { expected: p.subject.orgs.clone(), found: masters.clone() },
                Deviation::SystemMasters,
                Deviation::MissingUsage(ExtKeyUsage::ClientAuth),
                Deviation::ExtraUsage("serverAuth".into()),
            ]
        );
        // The break-glass credential may carry system:masters; nothing else may.
        let (sup, sp) = entry("super-admin.conf");
        assert!(!deviations(&sup, &sp, presented(&sp, &sp.ext_key_usage)).contains(&Deviation::SystemMasters));
    }

    #[test]
    fn requests_are_held_to_identity_and_sans_not_usages() {
        let (e, p) = entry("apiserver@controlplane");
        let x = Presented { ext_key_usage: None, sans: &p.sans[1..], ..presented(&p, &[]) };
        assert_eq!(deviations(&e, &p, x), [Deviation::MissingSans(vec![p.sans[0].clone()])]);
    }
}
