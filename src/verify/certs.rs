//! What a certificate of the tree says, against its catalog entry: validity, the CA that
//! signed it, its profile (identity, usages, SANs) and the strength of its key and signature.

use std::collections::BTreeSet;
use std::path::Path;

use super::{join, Checker, New, Severity};
use crate::catalog::{CertProfile, Entry, Issuer, Store};
use crate::certinfo::{eku_name, CertInfo};
use crate::inventory::{Loaded, Problem};
use crate::spec::San;

impl Checker<'_> {
    pub(super) fn cert(&mut self, e: &Entry, p: &CertProfile, loaded: &Loaded) {
        let (cert_file, key_file) = match &p.store {
            Store::Files { cert, key } => (cert.clone(), key.clone()),
            Store::Kubeconfig { path, .. } => (path.clone(), path.clone()),
        };
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
                        severity: Severity::Error,
                        code: "key-mismatch",
                        file: Some(key_file.clone()),
                        expected: format!("the private key of {} ({})", cert_file.display(), info.key_algorithm),
                        found: "a key whose public half is not the certificate's: TLS with this pair fails".into(),
                        fix: self.fix_reissue(e),
                        breaks: true,
                    },
                );
            }
            Ok(_) => {}
        }
        self.validity(e, &cert_file, info);
        self.signature(e, p, &cert_file, info);
        self.profile(e, p, &cert_file, info);
        self.strength(e, &cert_file, info);
        if let (Some(k), Store::Kubeconfig { ca, server, .. }) = (&loaded.kubeconfig, &p.store) {
            self.kubeconfig_trust(e, k, ca, server);
        }
    }

    fn validity(&mut self, e: &Entry, file: &Path, info: &CertInfo) {
        let at = self.opts.at;
        let (code, severity, found, breaks) = if at > info.not_after {
            (
                "expired",
                Severity::Error,
                format!("expired {} ({} ago)", info.not_after.date(), days(at - info.not_after)),
                true,
            )
        } else if at < info.not_before {
            ("not-yet-valid", Severity::Error, format!("not valid until {}", info.not_before), true)
        } else if info.not_after - at < self.opts.warn_within {
            (
                "expiring",
                Severity::Warning,
                format!("expires {} (in {})", info.not_after.date(), days(info.not_after - at)),
                false,
            )
        } else {
            return;
        };
        self.file(
            Some(&e.id),
            New {
                severity,
                code,
                file: Some(file.into()),
                expected: format!("valid at {}", at.date()),
                found,
                fix: self.fix_reissue(e),
                breaks,
            },
        );
    }

    pub(super) fn ca_info(&self, id: &str) -> Option<&CertInfo> {
        self.inv.get(id).and_then(|l| l.cert.as_ref().ok())
    }

    fn signature(&mut self, e: &Entry, p: &CertProfile, file: &Path, info: &CertInfo) {
        let Issuer::Ca(ca_id) = &p.issuer else {
            if !info.is_signed_by(info) {
                self.file(
                    Some(&e.id),
                    New {
                        severity: Severity::Error,
                        code: "wrong-ca",
                        file: Some(file.into()),
                        expected: "a self-signed CA certificate".into(),
                        found: format!("issued by {}", info.issuer),
                        fix: self.fix_reissue(e),
                        breaks: true,
                    },
                );
            }
            return;
        };
        let Some(ca) = self.ca_info(ca_id) else { return }; // the CA's own finding explains it
        if !info.is_signed_by(ca) {
            let ca_file = self.catalog.get(ca_id).and_then(|c| c.files().first().map(|(f, _)| f.to_path_buf()));
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "wrong-ca",
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
                    fix: self.fix_reissue(e),
                    breaks: true,
                },
            );
        } else if info.not_after > ca.not_after {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Warning,
                    code: "outlives-issuer",
                    file: Some(file.into()),
                    expected: format!("expiring no later than {ca_id} ({})", ca.not_after.date()),
                    found: format!("expires {}", info.not_after.date()),
                    fix: format!("plan a rotation of {ca_id} before {}", ca.not_after.date()),
                    breaks: false,
                },
            );
        }
    }

    fn profile(&mut self, e: &Entry, p: &CertProfile, file: &Path, info: &CertInfo) {
        let mut usage = Vec::new();
        for u in &p.ext_key_usage {
            if !info.allows(*u) {
                usage.push(eku_name(*u));
            }
        }
        if info.is_ca != p.is_ca {
            usage.push(if p.is_ca { "CA:TRUE" } else { "CA:FALSE" });
        }
        if !usage.is_empty() {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "usage",
                    file: Some(file.into()),
                    expected: format!("{} ({})", usage.join(", "), describe_usage(p)),
                    found: format!("EKU [{}], CA:{}", info.ext_key_usage.join(", "), info.is_ca),
                    fix: self.fix_reissue(e),
                    breaks: true,
                },
            );
        }
        // Usages beyond the profile: a leaf that can sign certificates, or authenticates in a
        // role it has no business in.
        let mut extra: Vec<String> = Vec::new();
        if !p.is_ca && info.key_usage.iter().any(|u| u == "keyCertSign" || u == "cRLSign") {
            extra.push("keyCertSign/cRLSign on a leaf".into());
        }
        if !p.is_ca {
            for u in &info.ext_key_usage {
                let wanted = p.ext_key_usage.iter().any(|w| eku_name(*w) == u);
                if !wanted {
                    extra.push(format!("extended key usage {u}"));
                }
            }
        }
        // A wrong usage is one finding: extras beside a missing one are part of it.
        if !extra.is_empty() && usage.is_empty() {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Warning,
                    code: "usage-extra",
                    file: Some(file.into()),
                    expected: format!("only {}", describe_usage(p)),
                    found: extra.join(", "),
                    fix: self.fix_reissue(e),
                    breaks: false,
                },
            );
        }
        let orgs: BTreeSet<&String> = info.orgs.iter().collect();
        if info.subject_cn != p.subject.cn || orgs != p.subject.orgs.iter().collect() {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "identity",
                    file: Some(file.into()),
                    expected: format!("CN={} O=[{}]", p.subject.cn, p.subject.orgs.join(",")),
                    found: format!("CN={} O=[{}]", info.subject_cn, info.orgs.join(",")),
                    fix: self.fix_reissue(e),
                    breaks: false,
                },
            );
        }
        if info.orgs.iter().any(|o| o == "system:masters") && e.name != "super-admin.conf" {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "system-masters",
                    file: Some(file.into()),
                    expected: "system:masters only in super-admin.conf (it bypasses RBAC and cannot be revoked)".into(),
                    found: format!("O=system:masters in {}", e.id),
                    fix: self.fix_reissue(e),
                    breaks: false,
                },
            );
        }
        // SANs that a link dials are judged per link (san-missing); the rest against the profile.
        let have: BTreeSet<&San> = info.sans.iter().collect();
        let dialed = self.dialed.get(&e.id);
        let missing: Vec<String> = p
            .sans
            .iter()
            .filter(|s| !have.contains(s) && !dialed.is_some_and(|d| d.contains(*s)))
            .map(|s| s.to_string())
            .collect();
        if !missing.is_empty() {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Warning,
                    code: "san-profile",
                    file: Some(file.into()),
                    expected: format!("SANs including {}", missing.join(", ")),
                    found: format!("SANs {}", join(&info.sans)),
                    fix: self.fix_reissue(e),
                    breaks: false,
                },
            );
        }
    }

    fn strength(&mut self, e: &Entry, file: &Path, info: &CertInfo) {
        if info.key_algorithm.starts_with("RSA") && info.key_bits < 2048 {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "weak-key",
                    file: Some(file.into()),
                    expected: "RSA of at least 2048 bits, or ECDSA".into(),
                    found: info.key_algorithm.clone(),
                    fix: self.fix_reissue(e),
                    breaks: true,
                },
            );
        }
        if info.signature_algorithm.to_ascii_lowercase().contains("sha1") {
            self.file(
                Some(&e.id),
                New {
                    severity: Severity::Error,
                    code: "sha1",
                    file: Some(file.into()),
                    expected: "a SHA-256 or stronger signature".into(),
                    found: info.signature_algorithm.clone(),
                    fix: self.fix_reissue(e),
                    breaks: true,
                },
            );
        }
    }
}

fn describe_usage(p: &CertProfile) -> String {
    if p.is_ca {
        "a CA".into()
    } else {
        p.ext_key_usage.iter().map(|u| eku_name(*u)).collect::<Vec<_>>().join("+")
    }
}

fn days(d: time::Duration) -> String {
    if d.whole_days() >= 1 {
        format!("{}d", d.whole_days())
    } else {
        format!("{}h", d.whole_hours())
    }
}
