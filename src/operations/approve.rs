//! Kubernetes `certificates.k8s.io/v1` CertificateSigningRequest objects: the rules of each
//! signer (reference §4), the policies that decide what is approved without a person, and the
//! objects written back with `status.certificate` and an `Approved` condition, or a `Denied`
//! condition that names the rule broken.
//!
//! Requests that pass their signer's rules but no policy covers are left pending: untouched,
//! and reported. The cluster CA of the tree signs, as kube-controller-manager does.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::disk::issuance::IssuanceRecord;
use crate::error::{Error, Result};
use crate::model::catalog::{Catalog, CertProfile, CA};
use crate::model::spec::{ClusterSpec, San};
use crate::x509::request::CertificateRequest;

mod signers;

use signers::NODE_PREFIX;
pub use signers::{evaluate, Denial, Grant, RequestFields, Signer, MIN_EXPIRATION_SECONDS};

/// What may be approved without a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Kubelet client requests for a node of the cluster, made by that node or a bootstrapper.
    KubeletClient,
    /// Kubelet serving requests for a node of the cluster, made by that node, whose SANs are only
    /// that node's name and addresses as the catalog knows them.
    KubeletServingKnownAddresses,
    /// Every request that passes its signer's rules.
    AllValid,
}

impl Policy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::KubeletClient => "kubelet-client",
            Policy::KubeletServingKnownAddresses => "kubelet-serving-known-addresses",
            Policy::AllValid => "all-valid",
        }
    }
}

/// The policy that approves a grant, or why none does.
pub fn covered_by(
    policies: &[Policy],
    grant: &Grant,
    f: &RequestFields,
    catalog: &Catalog,
) -> std::result::Result<Policy, String> {
    if policies.is_empty() {
        return Err("no --approve policy given".into());
    }
    let mut why = Vec::new();
    for p in policies {
        match covers(*p, grant, f, catalog) {
            Ok(()) => return Ok(*p),
            Err(Some(w)) => why.push(format!("{}: {w}", p.name())),
            Err(None) => {}
        }
    }
    if why.is_empty() {
        let names: Vec<&str> = policies.iter().map(|p| p.name()).collect();
        return Err(format!("no policy covers {} (given: {})", f.signer_name, names.join(", ")));
    }
    Err(why.join("; "))
}

/// `Err(None)`: the policy is not about this signer.
fn covers(p: Policy, g: &Grant, f: &RequestFields, catalog: &Catalog) -> std::result::Result<(), Option<String>> {
    let node = || {
        let name = g.csr.cn.strip_prefix(NODE_PREFIX).unwrap_or_default();
        catalog
            .get(&crate::model::catalog::EntryId::of_node(crate::model::vocabulary::entry::KUBELET_SERVING, name))
            .and_then(|e| e.cert())
            .map(|p| (name, p.sans.clone()))
            .ok_or_else(|| Some(format!("{name} is not a node of the cluster")))
    };
    let by_itself = |bootstrap: bool| match &f.username {
        None => Ok(()),
        Some(u) if *u == g.csr.cn => Ok(()),
        Some(_) if bootstrap && f.groups.iter().any(|g| g == "system:bootstrappers") => Ok(()),
        Some(u) => Err(Some(format!("requested by '{u}', not by the node itself"))),
    };
    match p {
        Policy::AllValid => Ok(()),
        Policy::KubeletClient if g.signer == Signer::KubeletClient => {
            node()?;
            by_itself(true)
        }
        Policy::KubeletServingKnownAddresses if g.signer == Signer::KubeletServing => {
            let (name, known) = node()?;
            let unknown: Vec<String> =
                g.csr.sans.iter().filter(|s| !known.contains(s)).map(|s| s.to_string()).collect();
            if !unknown.is_empty() {
                return Err(Some(format!(
                    "{} not known for {name} (known: {})",
                    unknown.join(", "),
                    known.iter().map(San::to_string).collect::<Vec<_>>().join(", ")
                )));
            }
            by_itself(false)
        }
        _ => Err(None),
    }
}

/// What became of one request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    /// Signed; `status.certificate` and an `Approved` condition added.
    Approved {
        /// The policy that approved it.
        policy: Policy,
        /// The certificate's serial, hex.
        serial: String,
        /// NotAfter.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// A rule is broken; a `Denied` condition added.
    Denied(Denial),
    /// Valid, but no policy covers it (or kubepki cannot issue it): left untouched.
    Pending {
        /// Why it was not approved.
        why: String,
    },
    /// Already approved, denied or failed: left untouched.
    Decided {
        /// What it already says.
        why: String,
    },
}

/// One request and its verdict.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOutcome {
    /// `metadata.name`.
    pub name: String,
    /// `spec.signerName`.
    pub signer: String,
    /// The CN asked for, if the request could be read.
    pub user: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Every request's outcome, in input order.
#[derive(Clone, Debug, Serialize)]
pub struct ApproveReport {
    /// One per request.
    pub requests: Vec<RequestOutcome>,
}

impl ApproveReport {
    /// Whether every request that was not already decided was approved.
    pub fn all_approved(&self) -> bool {
        self.requests.iter().all(|r| matches!(r.verdict, Verdict::Approved { .. } | Verdict::Decided { .. }))
    }
}

/// Decide every CertificateSigningRequest of `doc` (one object, or a `List` /
/// `CertificateSigningRequestList`), signing approved ones with the cluster CA of the tree at
/// `root` and logging them; `doc` is changed in place.
pub fn approve(
    spec: &ClusterSpec,
    catalog: &Catalog,
    root: &Path,
    doc: &mut Value,
    policies: &[Policy],
    now: OffsetDateTime,
) -> Result<ApproveReport> {
    let now = now.replace_nanosecond(0).expect("0 is a valid nanosecond");
    let mut objects = objects_mut(doc)?;
    // A verdict for each request; `None` for those queued for signing.
    let mut outcomes: Vec<(String, RequestFields, String, Option<Verdict>)> = Vec::with_capacity(objects.len());
    let mut to_sign = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        let name =
            obj.pointer("/metadata/name").and_then(Value::as_str).map_or_else(|| format!("items[{i}]"), str::to_string);
        let f = fields(obj);
        let (user, verdict) = match decided(obj) {
            Some(why) => (requested_user(&f), Some(Verdict::Decided { why })),
            None => match evaluate(&f, spec.validity.leaf) {
                Err(d) => (requested_user(&f), Some(Verdict::Denied(d))),
                Ok(g) => {
                    let user = g.csr.cn.clone();
                    match (&g.unsupported, covered_by(policies, &g, &f, catalog)) {
                        (Some(why), _) => (user, Some(Verdict::Pending { why: why.clone() })),
                        (None, Err(why)) => (user, Some(Verdict::Pending { why })),
                        (None, Ok(policy)) => {
                            to_sign.push((i, policy, g));
                            (user, None)
                        }
                    }
                }
            },
        };
        outcomes.push((name, f, user, verdict));
    }
    let signed = sign_all(catalog, root, &to_sign, now)?;
    for ((i, policy, _), (pem, record)) in to_sign.iter().zip(signed) {
        let message = format!(
            "approved by kubepki approve (policy {}): signed by the cluster CA, valid until {}",
            policy.name(),
            rfc3339(record.not_after)
        );
        let status = status_mut(&mut *objects[*i]);
        status.insert("certificate".into(), Value::String(B64.encode(pem)));
        push_condition(status, "Approved", "KubepkiApprove", &message, now);
        outcomes[*i].3 =
            Some(Verdict::Approved { policy: *policy, serial: record.serial, not_after: record.not_after });
    }
    let mut requests = Vec::with_capacity(outcomes.len());
    for (i, (name, f, user, verdict)) in outcomes.into_iter().enumerate() {
        let verdict = verdict.expect("every queued request was signed");
        if let Verdict::Denied(d) = &verdict {
            push_condition(status_mut(&mut *objects[i]), "Denied", d.reason, &d.message, now);
        }
        requests.push(RequestOutcome { name, signer: f.signer_name, user, verdict });
    }
    Ok(ApproveReport { requests })
}

/// The CN a request asks for, if it can be read at all (for reports only: nothing is trusted).
fn requested_user(f: &RequestFields) -> String {
    B64.decode(f.request.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pem| CertificateRequest::from_pem(&pem).ok())
        .map(|c| c.cn)
        .unwrap_or_default()
}

/// Sign every approved grant, then log them all: `(certificate PEM, record)` each.
fn sign_all(
    catalog: &Catalog,
    root: &Path,
    grants: &[(usize, Policy, Grant)],
    now: OffsetDateTime,
) -> Result<Vec<(String, IssuanceRecord)>> {
    if grants.is_empty() {
        return Ok(vec![]);
    }
    let ca = crate::disk::tree::load_ca(catalog, root, CA, now)?;
    let mut out = Vec::with_capacity(grants.len());
    for (_, _, g) in grants {
        let profile = CertProfile {
            subject: crate::model::catalog::Subject { cn: g.csr.cn.clone(), orgs: g.csr.orgs.clone() },
            is_ca: false,
            key_usage: g.key_usage.clone(),
            ext_key_usage: g.ext_key_usage.clone(),
            sans: g.csr.sans.clone(),
            validity: g.lifetime,
        };
        let key = g.csr.public_key().map_err(Error::Invalid)?;
        let issued = ca.sign(&profile, &key, now)?;
        let record = IssuanceRecord::of_der(&issued.der, None, "approve", now)?;
        out.push((issued.pem, record));
    }
    let records: Vec<IssuanceRecord> = out.iter().map(|(_, r)| r.clone()).collect();
    crate::disk::issuance::append(root, &records)?;
    Ok(out)
}

/// The request objects of a document, checked to be `certificates.k8s.io/v1`
/// CertificateSigningRequests.
fn objects_mut(doc: &mut Value) -> Result<Vec<&mut Value>> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if kind == "List" || kind == "CertificateSigningRequestList" {
        let typed = kind != "List";
        let items = doc
            .get_mut("items")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| Error::Invalid(format!("a {kind} without items")))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter_mut().enumerate() {
            check_object(item, typed).map_err(|e| Error::Invalid(format!("items[{i}]: {e}")))?;
            out.push(item);
        }
        return Ok(out);
    }
    check_object(doc, false).map_err(Error::Invalid)?;
    Ok(vec![doc])
}

fn check_object(obj: &Value, kind_optional: bool) -> std::result::Result<(), String> {
    if !obj.is_object() {
        return Err("not an object".into());
    }
    let kind = obj.get("kind").and_then(Value::as_str);
    match kind {
        Some("CertificateSigningRequest") => {}
        None if kind_optional => {}
        Some(k) => return Err(format!("kind {k}, expected CertificateSigningRequest (or a List of them)")),
        None => return Err("no kind: expected CertificateSigningRequest (or a List of them)".into()),
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some("certificates.k8s.io/v1") => Ok(()),
        None if kind_optional => Ok(()),
        other => Err(format!("apiVersion {}, expected certificates.k8s.io/v1", other.unwrap_or("missing"))),
    }
}

fn fields(obj: &Value) -> RequestFields {
    let spec = obj.get("spec");
    let text = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str).map(str::to_string);
    let texts = |k: &str| -> Vec<String> {
        spec.and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect())
            .unwrap_or_default()
    };
    RequestFields {
        signer_name: text("signerName").unwrap_or_default(),
        request: text("request").unwrap_or_default(),
        usages: texts("usages"),
        expiration_seconds: spec.and_then(|s| s.get("expirationSeconds")).and_then(Value::as_i64),
        username: text("username"),
        groups: texts("groups"),
    }
}

/// Why a request is already decided, if it is.
fn decided(obj: &Value) -> Option<String> {
    let status = obj.get("status")?;
    let conditions = status.get("conditions").and_then(Value::as_array).into_iter().flatten();
    for c in conditions {
        let t = c.get("type").and_then(Value::as_str).unwrap_or_default();
        let on = c.get("status").and_then(Value::as_str).is_none_or(|s| s == "True");
        if on && matches!(t, "Approved" | "Denied" | "Failed") {
            return Some(format!("already {}", t.to_lowercase()));
        }
    }
    status
        .get("certificate")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|_| "already has a certificate".into())
}

/// `2026-01-31T12:00:00Z`, as Kubernetes writes times.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).expect("0 is a valid nanosecond");
    t.format(&time::format_description::well_known::Rfc3339).expect("UTC times format")
}

fn status_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    let map = obj.as_object_mut().expect("checked to be an object");
    let status = map.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    status.as_object_mut().expect("just made an object")
}

fn push_condition(
    status: &mut serde_json::Map<String, Value>,
    kind: &str,
    reason: &str,
    message: &str,
    now: OffsetDateTime,
) {
    let at = rfc3339(now);
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    conditions.as_array_mut().expect("just made an array").push(json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    }));
}

#[cfg(test)]
mod tests {
    use super::signers::{CLIENT, DS, KE, NODES, SERVER};
    use super::*;
    use crate::model::catalog::{ExtKeyUsage, KeyUsage};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    use time::Duration;

    const YEAR: Duration = Duration::days(365);

    /// base64 of a PEM request made with rcgen.
    fn request(cn: &str, org: Option<&str>, sans: &[&str], ca: bool) -> String {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        if let Some(o) = org {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*s).try_into().unwrap()),
            })
            .collect();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        B64.encode(params.serialize_request(&key).unwrap().pem().unwrap())
    }

    fn fields(signer: &str, request: String, usages: &[&str]) -> RequestFields {
        RequestFields {
            signer_name: format!("kubernetes.io/{signer}"),
            request,
            usages: usages.iter().map(|u| u.to_string()).collect(),
            ..RequestFields::default()
        }
    }

    fn kubelet_client(request: String) -> RequestFields {
        fields("kube-apiserver-client-kubelet", request, &[DS, KE, CLIENT])
    }

    fn denied(f: &RequestFields) -> &'static str {
        evaluate(f, YEAR).map(|_| ()).expect_err("denied").reason
    }

    #[test]
    fn a_valid_kubelet_client_request_is_granted_with_the_signer_lifetime() {
        let g = evaluate(&kubelet_client(request("system:node:node01", Some(NODES), &[], false)), YEAR).unwrap();
        assert_eq!(g.signer, Signer::KubeletClient);
        assert_eq!(g.lifetime, YEAR);
        assert_eq!(g.key_usage, [KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]);
        assert_eq!(g.ext_key_usage, [ExtKeyUsage::ClientAuth]);
        assert!(g.unsupported.is_none());
        // Without key encipherment (ECDSA keys do not encipher) is valid too.
        let f =
            fields("kube-apiserver-client-kubelet", request("system:node:n", Some(NODES), &[], false), &[DS, CLIENT]);
        assert!(evaluate(&f, YEAR).is_ok());
    }

    #[test]
    fn kubelet_client_rules() {
        let r = |cn: &str, o: Option<&str>, sans: &[&str]| kubelet_client(request(cn, o, sans, false));
        assert_eq!(denied(&r("system:node:node01", Some(NODES), &["node01"])), "KubeletClientSANs");
        assert_eq!(denied(&r("system:node:node01", Some("system:masters"), &[])), "KubeletGroups");
        assert_eq!(denied(&r("system:node:node01", None, &[])), "KubeletGroups");
        assert_eq!(denied(&r("node01", Some(NODES), &[])), "KubeletCommonName");
        assert_eq!(denied(&r("system:node:", Some(NODES), &[])), "KubeletCommonName");
        let f = fields(
            "kube-apiserver-client-kubelet",
            request("system:node:n", Some(NODES), &[], false),
            &[DS, KE, CLIENT, SERVER],
        );
        assert_eq!(denied(&f), "Usages");
    }

    #[test]
    fn kube_apiserver_client_rules() {
        let r = |o: Option<&str>, usages: &[&str]| {
            fields("kube-apiserver-client", request("alice", o, &["alice.example.com"], false), usages)
        };
        let d = evaluate(&r(Some("system:masters"), &[DS, CLIENT]), YEAR).unwrap_err();
        assert_eq!(d.reason, "SystemMasters");
        assert!(d.message.contains("never O system:masters"), "{}", d.message);
        let g = evaluate(&r(Some("devs"), &[CLIENT]), YEAR).unwrap();
        assert_eq!(g.csr.sans, [San::Dns("alice.example.com".into())], "SANs are honoured");
        assert_eq!(denied(&r(None, &[DS, KE])), "Usages", "client auth is required");
        assert_eq!(denied(&r(None, &[DS, CLIENT, SERVER])), "Usages", "a subset of ds, ke, client auth");
        assert_eq!(
            denied(&fields("kube-apiserver-client", request("", None, &[], false), &[CLIENT])),
            "EmptyCommonName"
        );
    }

    #[test]
    fn kubelet_serving_rules() {
        let r = |sans: &[&str], usages: &[&str]| {
            fields("kubelet-serving", request("system:node:node01", Some(NODES), sans, false), usages)
        };
        assert!(evaluate(&r(&["node01", "127.0.0.2"], &[DS, KE, SERVER]), YEAR).is_ok());
        assert!(evaluate(&r(&["127.0.0.2"], &[DS, SERVER]), YEAR).is_ok());
        assert_eq!(denied(&r(&[], &[DS, KE, SERVER])), "ServingSANsRequired");
        assert_eq!(denied(&r(&["node01"], &[DS, KE, CLIENT])), "Usages");
        assert_eq!(denied(&r(&["node01"], &[DS, KE, SERVER, CLIENT])), "Usages");
    }

    #[test]
    fn rules_for_every_signer() {
        let valid = request("system:node:node01", Some(NODES), &[], false);
        assert_eq!(denied(&fields("example.com/mine", valid.clone(), &[CLIENT])), "UnknownSigner");
        assert_eq!(denied(&kubelet_client("not base64!".into())), "InvalidRequest");
        assert_eq!(
            denied(&kubelet_client(
                B64.encode("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
            )),
            "InvalidRequest"
        );
        assert_eq!(denied(&kubelet_client(request("system:node:n", Some(NODES), &[], true))), "CaRequested");
        assert_eq!(denied(&fields("legacy-unknown", valid.clone(), &[DS, "cert sign"])), "CaRequested");
        assert_eq!(denied(&fields("legacy-unknown", valid.clone(), &[])), "InvalidUsages");
        assert_eq!(denied(&fields("legacy-unknown", valid.clone(), &["flying"])), "InvalidUsages");
        assert_eq!(denied(&fields("legacy-unknown", valid.clone(), &[CLIENT, CLIENT])), "InvalidUsages");
        let masters = request("root", Some("system:masters"), &[], false);
        assert_eq!(denied(&fields("legacy-unknown", masters, &[CLIENT])), "SystemMasters");
        // A corrupted signature.
        let pem = String::from_utf8(B64.decode(&valid).unwrap()).unwrap();
        let mut der = ::pem::parse(&pem).unwrap().into_contents();
        *der.last_mut().unwrap() ^= 1;
        let bad = B64.encode(::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", der)));
        assert_eq!(denied(&kubelet_client(bad)), "BadSignature");
    }

    #[test]
    fn lifetime_is_the_shorter_and_at_least_600_seconds() {
        let mut f = kubelet_client(request("system:node:node01", Some(NODES), &[], false));
        f.expiration_seconds = Some(3600);
        assert_eq!(evaluate(&f, YEAR).unwrap().lifetime, Duration::hours(1));
        f.expiration_seconds = Some(600);
        assert_eq!(evaluate(&f, YEAR).unwrap().lifetime, Duration::seconds(600));
        f.expiration_seconds = Some(10 * 365 * 86400);
        assert_eq!(evaluate(&f, YEAR).unwrap().lifetime, YEAR);
        f.expiration_seconds = Some(599);
        assert_eq!(denied(&f), "ExpirationTooShort");
    }

    #[test]
    fn what_kubepki_cannot_issue_is_named() {
        let f = fields("legacy-unknown", request("signer", None, &[], false), &[DS, "code signing"]);
        let g = evaluate(&f, YEAR).unwrap();
        assert!(g.unsupported.unwrap().contains("code signing"));
    }

    #[test]
    fn policies() {
        let catalog = Catalog::build(&ClusterSpec::builtin_default());
        let serving = |cn: &str, sans: &[&str]| {
            fields("kubelet-serving", request(cn, Some(NODES), sans, false), &[DS, KE, SERVER])
        };
        let decide =
            |policies: &[Policy], f: &RequestFields| covered_by(policies, &evaluate(f, YEAR).unwrap(), f, &catalog);
        let known = serving("system:node:node01", &["node01", "127.0.0.2"]);
        assert_eq!(decide(&[Policy::KubeletServingKnownAddresses], &known), Ok(Policy::KubeletServingKnownAddresses));
        let unknown = serving("system:node:node01", &["node01", "10.9.9.9"]);
        let why = decide(&[Policy::KubeletServingKnownAddresses], &unknown).unwrap_err();
        assert!(why.contains("IP:10.9.9.9 not known for node01"), "{why}");
        assert_eq!(decide(&[Policy::KubeletServingKnownAddresses, Policy::AllValid], &unknown), Ok(Policy::AllValid));
        let stranger = serving("system:node:intruder", &["intruder"]);
        assert!(decide(&[Policy::KubeletServingKnownAddresses], &stranger).unwrap_err().contains("not a node"));
        let mut other = known.clone();
        other.username = Some("system:node:node02".into());
        assert!(decide(&[Policy::KubeletServingKnownAddresses], &other)
            .unwrap_err()
            .contains("not by the node itself"));
        assert_eq!(decide(&[], &known).unwrap_err(), "no --approve policy given");
        let why = decide(&[Policy::KubeletClient], &known).unwrap_err();
        assert!(why.starts_with("no policy covers kubernetes.io/kubelet-serving"), "{why}");

        let mut client = kubelet_client(request("system:node:node02", Some(NODES), &[], false));
        assert_eq!(decide(&[Policy::KubeletClient], &client), Ok(Policy::KubeletClient));
        client.username = Some("system:bootstrap:abcdef".into());
        assert!(decide(&[Policy::KubeletClient], &client).is_err());
        client.groups = vec!["system:bootstrappers".into()];
        assert_eq!(decide(&[Policy::KubeletClient], &client), Ok(Policy::KubeletClient));
    }

    #[test]
    fn documents_and_decided_requests() {
        let mut list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Pod"}]});
        let err = objects_mut(&mut list).map(|_| ()).unwrap_err().to_string();
        assert!(err.starts_with("items[1]: kind Pod"), "{err}");
        let mut typed = json!({"kind": "CertificateSigningRequestList", "items": [{"metadata": {"name": "a"}}]});
        assert_eq!(objects_mut(&mut typed).unwrap().len(), 1);
        let mut old = json!({"apiVersion": "certificates.k8s.io/v1beta1", "kind": "CertificateSigningRequest"});
        assert!(objects_mut(&mut old).map(|_| ()).unwrap_err().to_string().contains("expected certificates.k8s.io/v1"));
        let approved = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}]}});
        assert_eq!(decided(&approved).as_deref(), Some("already approved"));
        let not_yet = json!({"status": {"conditions": [{"type": "Approved", "status": "False"}]}});
        assert_eq!(decided(&not_yet), None);
    }
}
