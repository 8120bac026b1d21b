//! What a certificate of the tree says, against its catalog entry: validity, the CA that
//! signed it, its profile (identity, usages, SANs) and the strength of its key and signature.

use std::collections::BTreeMap;
use std::path::Path;

use super::{join, Checker, FindingKind, New};
use crate::audit::conformance::{deviations, Deviation};
use crate::disk::inventory::{Loaded, Problem};
use crate::model::catalog::{CertProfile, Entry, Leaf, Store};
use crate::model::spec::San;
use crate::x509::certinfo::CertInfo;

impl Checker<'_> {
    pub(super) fn cert(&mut self, e: &Entry, p: &CertProfile, loaded: &Loaded) {
        let Some((cert_file, key_file)) = e.cert_and_key_files() else { return };
        let (cert_file, key_file) = (cert_file.to_path_buf(), key_file.to_path_buf());
        let info = match &loaded.cert {
            Ok(i) => i,
            Err(problem) => {
                self.problem(e, problem);
                return;
            }
        };
        match &loaded.key {
            // kubeadm's external-CA mode: the CA's key is kept elsewhere. Not broken.
            Err(Problem::Missing(key)) if p.is_ca => self.externally_managed(e, key),
            Err(problem) => self.problem(e, problem),
            Ok(k) if k.public_key_raw != info.public_key_raw => {
                self.file(
                    Some(&e.id),
                    New {
                        kind: FindingKind::KeyMismatch,
                        file: Some(key_file.clone()),
                        expected: format!("the private key of {} ({})", cert_file.display(), info.key),
                        found: "a key whose public half is not the certificate's: TLS with this pair fails".into(),
                    },
                );
            }
            Ok(_) => {}
        }
        self.validity(e, &cert_file, info);
        self.signature(e, &cert_file, info);
        self.profile(e, p, &cert_file, info);
        if crate::model::spec::has_own_sans(e.name()) {
            self.own_sans(e, p, &cert_file, info);
        }
        self.strength(e, &cert_file, info);
        if let (Some(k), Some(Leaf { store: Store::Kubeconfig { ca, server, .. }, .. })) =
            (&loaded.kubeconfig, e.leaf())
        {
            self.kubeconfig_trust(e, k, ca, server);
        }
    }

    fn validity(&mut self, e: &Entry, file: &Path, info: &CertInfo) {
        let at = self.opts.at;
        let (kind, found) = if at > info.not_after {
            (FindingKind::Expired, format!("expired {} ({} ago)", info.not_after.date(), days(at - info.not_after)))
        } else if at < info.not_before {
            (FindingKind::NotYetValid, format!("not valid until {}", info.not_before))
        } else if info.not_after - at < self.opts.warn_within {
            (FindingKind::Expiring, format!("expires {} (in {})", info.not_after.date(), days(info.not_after - at)))
        } else {
            return;
        };
        self.file(
            Some(&e.id),
            New { kind, file: Some(file.into()), expected: format!("valid at {}", at.date()), found },
        );
    }

    pub(super) fn ca_info(&self, id: &str) -> Option<&CertInfo> {
        self.inv.get(id).and_then(|l| l.cert.as_ref().ok())
    }

    fn signature(&mut self, e: &Entry, file: &Path, info: &CertInfo) {
        let Some(ca_id) = e.issuer() else {
            if !info.is_signed_by(info) {
                self.file(
                    Some(&e.id),
                    New {
                        kind: FindingKind::WrongCa,
                        file: Some(file.into()),
                        expected: "a self-signed CA certificate".into(),
                        found: format!("issued by {}", info.issuer),
                    },
                );
            }
            return;
        };
        let Some(ca) = self.ca_info(ca_id) else { return }; // the CA's own finding explains it
                                                            // A SHA-1 signature is not checked (no verifier here takes it, nor does any client):
                                                            // its own finding (sha1) says so, rather than a CA that may well be the right one.
        let unchecked = info.signed_with_sha1() && info.issuer_raw == ca.subject_raw;
        if !(unchecked || info.is_signed_by(ca)) {
            let ca_file = self.catalog.get(ca_id).and_then(|c| c.files().first().map(|(f, _)| f.to_path_buf()));
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::WrongCa,
                    file: Some(file.into()),
                    expected: format!(
                        "signed by {ca_id} ({}, {})",
                        ca.subject,
                        ca_file.map(|f| f.display().to_string()).unwrap_or_default()
                    ),
                    found: format!(
                        "issued by {}{}",
                        info.issuer,
                        if info.issuer_raw == ca.subject_raw { " (same name, another key)" } else { "" }
                    ),
                },
            );
        } else if info.not_after > ca.not_after {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::OutlivesIssuer,
                    file: Some(file.into()),
                    expected: format!("expiring no later than {ca_id} ({})", ca.not_after.date()),
                    found: format!("expires {}", info.not_after.date()),
                },
            );
        }
    }

    /// The certificate against its profile (the conformance check), one finding per kind:
    /// a missing usage is one finding, with the extras beside it part of it; SANs a link dials
    /// are judged per link (san-missing); extra SANs are the operator's to add.
    fn profile(&mut self, e: &Entry, p: &CertProfile, file: &Path, info: &CertInfo) {
        let dialed = self.dialed.get(&e.id);
        let mut by_kind: BTreeMap<FindingKind, Vec<Deviation>> = BTreeMap::new();
        for d in deviations(e, p, info.into()) {
            let d = match d {
                Deviation::MissingSans(s) => {
                    let s: Vec<San> = s.into_iter().filter(|s| !dialed.is_some_and(|d| d.contains(s))).collect();
                    if s.is_empty() {
                        continue;
                    }
                    Deviation::MissingSans(s)
                }
                Deviation::ExtraSans(_) | Deviation::OtherSans(_) => continue,
                d => d,
            };
            by_kind.entry(d.finding_kind()).or_default().push(d);
        }
        if by_kind.contains_key(&FindingKind::Usage) {
            by_kind.remove(&FindingKind::UsageExtra);
        }
        for (kind, devs) in by_kind {
            let (expected, found) = match kind {
                FindingKind::Usage | FindingKind::UsageExtra => (
                    format!("{} ({})", words(&devs), describe_usage(p)),
                    format!("EKU [{}], CA:{}", info.ext_key_usage_names().join(", "), info.is_ca),
                ),
                FindingKind::Identity => (
                    format!("CN={} O=[{}]", p.subject.cn, p.subject.orgs.join(",")),
                    format!("CN={} O=[{}]", info.subject_cn, info.orgs.join(",")),
                ),
                FindingKind::SystemMasters => (words(&devs), format!("O={} in {}", info.orgs.join(","), e.id)),
                _ => (words(&devs), format!("SANs {}", join(&info.sans))),
            };
            self.file(Some(&e.id), New { kind, file: Some(file.into()), expected, found });
        }
    }

    /// A server certificate's SANs are its own: none of another party of the cluster
    /// (`foreign-san`, by the rule approve and `san add` refuse by), none the description does
    /// not give it (`san-extra`: a node's address changed, a SAN put there by hand). Both are
    /// removed by `san remove`, which takes only SANs that are not built in.
    fn own_sans(&mut self, e: &Entry, p: &CertProfile, file: &Path, info: &CertInfo) {
        let built_in = self.catalog.built_in_sans(self.spec, &e.id);
        let foreign = self.catalog.sans_of_others(&e.id, &built_in, &info.sans);
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().map(|(s, id)| format!("{s} (of {id})")).collect();
            let sans: Vec<San> = foreign.iter().map(|(s, _)| s.clone()).collect();
            let new = New {
                kind: FindingKind::ForeignSan,
                file: Some(file.into()),
                expected: format!("names of {} only", e.id),
                found: format!("SANs {}: its key can answer as another party", list.join(", ")),
            };
            self.file_naming(Some(&e.id), new, &sans);
        }
        let extra: Vec<San> = info
            .sans
            .iter()
            .filter(|s| !p.sans.contains(s) && !foreign.iter().any(|(f, _)| f == *s))
            .cloned()
            .collect();
        if !extra.is_empty() {
            let new = New {
                kind: FindingKind::SanExtra,
                file: Some(file.into()),
                expected: format!("the SANs the description gives {}: {}", e.id, join(&p.sans)),
                found: format!("SANs have extra {} (no longer given, nor added with san add)", join(&extra)),
            };
            self.file_naming(Some(&e.id), new, &extra);
        }
    }

    fn strength(&mut self, e: &Entry, file: &Path, info: &CertInfo) {
        if info.key.is_weak() {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::WeakKey,
                    file: Some(file.into()),
                    expected: "RSA of at least 2048 bits, or ECDSA".into(),
                    found: info.key.to_string(),
                },
            );
        }
        if info.signed_with_sha1() {
            self.file(
                Some(&e.id),
                New {
                    kind: FindingKind::Sha1,
                    file: Some(file.into()),
                    expected: "a SHA-256 or stronger signature".into(),
                    found: info.signature_algorithm.clone(),
                },
            );
        }
    }
}

fn describe_usage(p: &CertProfile) -> String {
    if p.is_ca {
        "a CA".into()
    } else {
        p.ext_key_usage.iter().map(|u| u.name()).collect::<Vec<_>>().join("+")
    }
}

fn words(devs: &[Deviation]) -> String {
    devs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
}

fn days(d: time::Duration) -> String {
    if d.whole_days() >= 1 {
        format!("{}d", d.whole_days())
    } else {
        format!("{}h", d.whole_hours())
    }
}
