//! The rules of the signers (reference §4): what each of `kubernetes.io/kube-apiserver-client`,
//! `kubernetes.io/kube-apiserver-client-kubelet`, `kubernetes.io/kubelet-serving` and
//! `kubernetes.io/legacy-unknown` accepts, and what a request that passes them is issued.

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use time::Duration;

use crate::model::catalog::{ExtKeyUsage, KeyUsage};
use crate::model::vocabulary::{NODE_USER_PREFIX, SYSTEM_MASTERS, SYSTEM_NODES};
use crate::x509::request::CertificateRequest;

/// Kubernetes' minimum of `spec.expirationSeconds`.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The signers kubepki knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Signer {
    /// `kubernetes.io/kube-apiserver-client`: client certificates for the apiserver.
    KubeApiserverClient,
    /// `kubernetes.io/kube-apiserver-client-kubelet`: kubelets' client certificates.
    KubeletClient,
    /// `kubernetes.io/kubelet-serving`: kubelets' serving certificates.
    KubeletServing,
    /// `kubernetes.io/legacy-unknown`: not allowed in `certificates.k8s.io/v1`; always denied.
    LegacyUnknown,
}

impl Signer {
    /// The signer of a `spec.signerName`.
    pub fn from_name(name: &str) -> Option<Signer> {
        Some(match name {
            "kubernetes.io/kube-apiserver-client" => Signer::KubeApiserverClient,
            "kubernetes.io/kube-apiserver-client-kubelet" => Signer::KubeletClient,
            "kubernetes.io/kubelet-serving" => Signer::KubeletServing,
            "kubernetes.io/legacy-unknown" => Signer::LegacyUnknown,
            _ => return None,
        })
    }
}

/// A rule broken: the condition's `reason` and `message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    /// A stable CamelCase code (`SystemMasters`, `KubeletClientSANs`, ...).
    pub reason: &'static str,
    /// The rule, and what the request did.
    pub message: String,
}

/// A denial; its message quotes the request, so it is made safe to show (and to write back
/// into the object) like every error message.
pub(crate) fn deny(reason: &'static str, message: impl Into<String>) -> Denial {
    Denial { reason, message: crate::error::safe_text(&message.into()) }
}

/// What a request object asks, read from its `spec`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFields {
    /// `spec.signerName`.
    pub signer_name: String,
    /// `spec.request`: base64 of a PEM `CERTIFICATE REQUEST`.
    pub request: String,
    /// `spec.usages`.
    pub usages: Vec<String>,
    /// `spec.expirationSeconds`.
    pub expiration_seconds: Option<i64>,
    /// `spec.username`: who made the request (required).
    pub username: Option<String>,
    /// `spec.groups`: the requester's groups.
    pub groups: Vec<String>,
}

/// A request that passes its signer's rules, and what it would be issued.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The signer.
    pub signer: Signer,
    /// The request.
    pub csr: CertificateRequest,
    /// Key usages to issue.
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages to issue.
    pub ext_key_usage: Vec<ExtKeyUsage>,
    /// The lifetime: min(the signer's, `expirationSeconds`).
    pub lifetime: Duration,
    /// Why kubepki cannot issue it although it breaks no rule (a usage or SAN it does not write).
    pub unsupported: Option<String>,
}

/// Every usage name the Kubernetes API accepts.
const KNOWN_USAGES: [&str; 23] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

pub(super) const DS: &str = "digital signature";
pub(super) const KE: &str = "key encipherment";
pub(super) const CLIENT: &str = "client auth";
pub(super) const SERVER: &str = "server auth";
pub(super) const NODES: &str = SYSTEM_NODES;
pub(super) const NODE_PREFIX: &str = NODE_USER_PREFIX;
const BOOTSTRAPPERS: &str = "system:bootstrappers";
const BOOTSTRAP_PREFIX: &str = "system:bootstrap:";

/// The users of the control plane and of kubeadm's kubeconfigs (reference §2, §3) that do not
/// start with `system:`: a client certificate for one of them is that component's power.
const CONTROL_PLANE_USERS: [&str; 7] = [
    "kube-apiserver",
    "kube-apiserver-kubelet-client",
    "kube-apiserver-etcd-client",
    "kube-etcd-healthcheck-client",
    "front-proxy-client",
    "kubernetes-admin",
    "kubernetes-super-admin",
];

/// Apply the rules of the request's signer. `signer_validity` is the cluster's leaf validity.
pub fn evaluate(f: &RequestFields, signer_validity: Duration) -> std::result::Result<Grant, Denial> {
    let signer = Signer::from_name(&f.signer_name).ok_or_else(|| {
        deny("UnknownSigner", format!("signer '{}' is not one kubepki signs for (kubernetes.io/kube-apiserver-client, kube-apiserver-client-kubelet, kubelet-serving)", f.signer_name))
    })?;
    if signer == Signer::LegacyUnknown {
        return Err(legacy_unknown());
    }
    let username = match f.username.as_deref() {
        Some(u) if !u.is_empty() => u,
        _ => return Err(deny("MalformedField", "spec.username: required (the user who made the request)")),
    };
    let pem = B64
        .decode(f.request.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| deny("InvalidRequest", "spec.request is not base64 of a PEM certificate request"))?;
    let csr = CertificateRequest::from_pem(&pem).map_err(|e| deny("InvalidRequest", format!("spec.request: {e}")))?;
    if !csr.signature_ok {
        return Err(deny("BadSignature", "the request's signature does not verify with its own public key"));
    }
    if csr.asks_ca {
        return Err(deny("CaRequested", "never a CA: the request asks for BasicConstraints CA:TRUE or keyCertSign"));
    }
    if let Some(weak) = csr.weak_key() {
        return Err(deny("WeakKey", weak));
    }
    usages_valid(&f.usages)?;
    if let Some(s) = f.expiration_seconds.filter(|s| *s < MIN_EXPIRATION_SECONDS) {
        return Err(deny(
            "ExpirationTooShort",
            format!("spec.expirationSeconds is {s}; Kubernetes' minimum is {MIN_EXPIRATION_SECONDS}"),
        ));
    }
    let usages: BTreeSet<&str> = f.usages.iter().map(String::as_str).collect();
    match signer {
        Signer::KubeApiserverClient => {
            no_system_masters(&csr)?;
            no_reserved_identity(&csr)?;
            if csr.cn.is_empty() {
                return Err(deny("EmptyCommonName", "a client certificate needs a CN: it is the user name"));
            }
            if !usages.contains(CLIENT) || !usages.is_subset(&[DS, KE, CLIENT].into()) {
                return Err(deny("Usages", format!("kubernetes.io/kube-apiserver-client: usages must include \"client auth\" and be among \"digital signature\", \"key encipherment\", \"client auth\"; got {}", list(&f.usages))));
            }
        }
        Signer::KubeletClient => {
            kubelet_subject(&csr)?;
            let bootstrapper = username.starts_with(BOOTSTRAP_PREFIX) && f.groups.iter().any(|g| g == BOOTSTRAPPERS);
            if username != csr.cn && !bootstrapper {
                return Err(requester_mismatch(
                    username,
                    &csr.cn,
                    " or a bootstrapper (system:bootstrap:<token> in system:bootstrappers)",
                ));
            }
            if !csr.sans.is_empty() || !csr.other_sans.is_empty() {
                return Err(deny(
                    "KubeletClientSANs",
                    format!("kubernetes.io/kube-apiserver-client-kubelet: no SANs allowed; got {}", sans(&csr)),
                ));
            }
            exact_usages(&usages, CLIENT, "kubernetes.io/kube-apiserver-client-kubelet", &f.usages)?;
        }
        Signer::KubeletServing => {
            kubelet_subject(&csr)?;
            if username != csr.cn {
                return Err(requester_mismatch(username, &csr.cn, ""));
            }
            if !csr.other_sans.is_empty() {
                return Err(deny(
                    "ServingSANTypes",
                    format!("kubernetes.io/kubelet-serving: no email or URI SANs; got {}", csr.other_sans.join(", ")),
                ));
            }
            if csr.sans.is_empty() {
                return Err(deny("ServingSANsRequired", "kubernetes.io/kubelet-serving: at least one DNS or IP SAN"));
            }
            exact_usages(&usages, SERVER, "kubernetes.io/kubelet-serving", &f.usages)?;
        }
        Signer::LegacyUnknown => return Err(legacy_unknown()),
    }
    let lifetime = match f.expiration_seconds {
        Some(s) => signer_validity.min(Duration::seconds(s)),
        None => signer_validity,
    };
    let (key_usage, ext_key_usage, mut unsupported) = issuable_usages(&f.usages);
    if unsupported.is_none() && !csr.other_sans.is_empty() {
        unsupported = Some(format!("kubepki issues DNS and IP SANs only, not {}", csr.other_sans.join(", ")));
    }
    if unsupported.is_none() && csr.orgs.len() > 1 {
        unsupported = Some(format!("kubepki issues one O, not {}", csr.orgs.len()));
    }
    Ok(Grant { signer, csr, key_usage, ext_key_usage, lifetime, unsupported })
}

fn usages_valid(usages: &[String]) -> std::result::Result<(), Denial> {
    if usages.is_empty() {
        return Err(deny("InvalidUsages", "spec.usages is empty"));
    }
    let mut seen = BTreeSet::new();
    for u in usages {
        if !KNOWN_USAGES.contains(&u.as_str()) {
            return Err(deny("InvalidUsages", format!("unknown usage \"{u}\"")));
        }
        if !seen.insert(u) {
            return Err(deny("InvalidUsages", format!("usage \"{u}\" given twice")));
        }
        if matches!(u.as_str(), "cert sign" | "crl sign") {
            return Err(deny("CaRequested", format!("never a CA: usage \"{u}\" is a CA's")));
        }
    }
    Ok(())
}

fn no_system_masters(csr: &CertificateRequest) -> std::result::Result<(), Denial> {
    if csr.orgs.iter().any(|o| o == SYSTEM_MASTERS) {
        return Err(deny(
            "SystemMasters",
            "kubernetes.io/kube-apiserver-client: never O system:masters (it bypasses RBAC and cannot be revoked)",
        ));
    }
    Ok(())
}

/// Never a control-plane identity or a group RBAC binds to cluster-wide power: Kubernetes'
/// own `system:` names (`system:kube-controller-manager`, `system:node:<n>` and `system:nodes`
/// outside the kubelet signers, service accounts), kubeadm's `kubeadm:` groups
/// (`kubeadm:cluster-admins` is bound to cluster-admin), and the control plane's own users.
fn no_reserved_identity(csr: &CertificateRequest) -> std::result::Result<(), Denial> {
    let reserved = |name: &str| name.starts_with("system:") || name.starts_with("kubeadm:");
    if reserved(&csr.cn) || CONTROL_PLANE_USERS.contains(&csr.cn.as_str()) {
        return Err(deny(
            "ReservedIdentity",
            format!("kubernetes.io/kube-apiserver-client: never CN '{}': a control-plane, node or system identity (nodes use the kubelet signers)", csr.cn),
        ));
    }
    if let Some(o) = csr.orgs.iter().find(|o| reserved(o)) {
        return Err(deny(
            "ReservedGroup",
            format!("kubernetes.io/kube-apiserver-client: never O '{o}': system: and kubeadm: groups are bound to cluster-wide power"),
        ));
    }
    Ok(())
}

fn legacy_unknown() -> Denial {
    deny(
        "LegacyUnknown",
        "kubernetes.io/legacy-unknown cannot be requested through certificates.k8s.io/v1; kubepki never signs for it",
    )
}

fn requester_mismatch(username: &str, cn: &str, or: &str) -> Denial {
    deny(
        "RequesterMismatch",
        format!("spec.username is '{username}': a kubelet's request must be made by the node itself ({cn}){or}"),
    )
}

fn kubelet_subject(csr: &CertificateRequest) -> std::result::Result<(), Denial> {
    if csr.orgs != [NODES] {
        return Err(deny(
            "KubeletGroups",
            format!("a kubelet's O must be exactly [system:nodes]; got [{}]", csr.orgs.join(", ")),
        ));
    }
    if csr.cn.strip_prefix(NODE_PREFIX).is_none_or(str::is_empty) {
        return Err(deny("KubeletCommonName", format!("a kubelet's CN must be system:node:<node>; got '{}'", csr.cn)));
    }
    Ok(())
}

/// `{digital signature, key encipherment, <eku>}` or the same without key encipherment.
fn exact_usages(usages: &BTreeSet<&str>, eku: &str, signer: &str, given: &[String]) -> std::result::Result<(), Denial> {
    let with: BTreeSet<&str> = [DS, KE, eku].into();
    let without: BTreeSet<&str> = [DS, eku].into();
    if *usages != with && *usages != without {
        return Err(deny(
            "Usages",
            format!("{signer}: usages must be \"digital signature\", \"key encipherment\", \"{eku}\" (or without \"key encipherment\"); got {}", list(given)),
        ));
    }
    Ok(())
}

/// The usages kubepki can write, and the first it cannot.
fn issuable_usages(usages: &[String]) -> (Vec<KeyUsage>, Vec<ExtKeyUsage>, Option<String>) {
    let (mut ku, mut eku) = (BTreeSet::new(), BTreeSet::new());
    for u in usages {
        match u.as_str() {
            "digital signature" | "signing" => drop(ku.insert(KeyUsage::DigitalSignature)),
            "key encipherment" => drop(ku.insert(KeyUsage::KeyEncipherment)),
            "server auth" => drop(eku.insert(ExtKeyUsage::ServerAuth)),
            "client auth" => drop(eku.insert(ExtKeyUsage::ClientAuth)),
            other => {
                let why = format!("kubepki issues digital signature, key encipherment, server auth and client auth only, not \"{other}\"");
                return (vec![], vec![], Some(why));
            }
        }
    }
    (ku.into_iter().collect(), eku.into_iter().collect(), None)
}

fn list(usages: &[String]) -> String {
    format!("[{}]", usages.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "))
}

fn sans(csr: &CertificateRequest) -> String {
    let mut all: Vec<String> = csr.sans.iter().map(|s| s.to_string()).collect();
    all.extend(csr.other_sans.iter().cloned());
    all.join(", ")
}
