//! Kubernetes `certificates.k8s.io/v1` CertificateSigningRequest objects: the rules of each
//! signer (reference §4), the policies that decide what is approved without a person, and the
//! objects written back with `status.certificate` and an `Approved` condition, or a `Denied`
//! condition that names the rule broken.
//!
//! Requests that pass their signer's rules but no policy covers are left pending: untouched,
//! and reported. The cluster CA of the tree signs, as kube-controller-manager does.
//!
//! What is signed is what a careful admin would sign, and nothing else: a policy approves a
//! kubelet's own client certificate, or a kubelet's serving certificate naming only that
//! node's own names and addresses, requested by that node. Never `legacy-unknown`, never a
//! control-plane identity or a group with cluster-wide power, never a serving certificate that
//! names the apiserver, the `kubernetes` service or another node: those are denied, as is a
//! request whose fields are missing or malformed (the condition names the field). There is no
//! policy that approves every valid request: one cannot be made safe.

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
}

impl Policy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::KubeletClient => "kubelet-client",
            Policy::KubeletServingKnownAddresses => "kubelet-serving-known-addresses",
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
        match covers(*p, grant, catalog) {
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

/// `Err(None)`: the policy is not about this signer. Who made the request was checked with the
/// signer's rules (the node itself, or a bootstrapper for a client certificate).
fn covers(p: Policy, g: &Grant, catalog: &Catalog) -> std::result::Result<(), Option<String>> {
    let node = || {
        let name = g.csr.cn.strip_prefix(NODE_PREFIX).unwrap_or_default();
        own_sans(catalog, name)
            .map(|sans| (name, sans))
            .ok_or_else(|| Some(format!("{name} is not a node of the cluster")))
    };
    match p {
        Policy::KubeletClient if g.signer == Signer::KubeletClient => node().map(|_| ()),
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
            Ok(())
        }
        _ => Err(None),
    }
}

/// The SANs of a node's kubelet serving certificate in the catalog: its name, its addresses and
/// its DNS names. `None`: not a node of the cluster.
fn own_sans<'c>(catalog: &'c Catalog, node: &str) -> Option<&'c [San]> {
    catalog.get(&serving_id(node)).and_then(|e| e.cert()).map(|p| p.sans.as_slice())
}

fn serving_id(node: &str) -> crate::model::catalog::EntryId {
    crate::model::catalog::EntryId::of_node(crate::model::vocabulary::entry::KUBELET_SERVING, node)
}

/// A serving request that names what is not its node's: the apiserver's names (`kubernetes`,
/// `kubernetes.default.svc`, the service IP, the endpoint), etcd's, another node's. A
/// certificate with them lets a node impersonate the apiserver to kubectl and every pod.
fn others_names(g: &Grant, catalog: &Catalog) -> Option<Denial> {
    if g.signer != Signer::KubeletServing {
        return None;
    }
    let node = g.csr.cn.strip_prefix(NODE_PREFIX).unwrap_or_default();
    let own = own_sans(catalog, node).unwrap_or_default();
    let taken = catalog.sans_of_others(&serving_id(node), own, &g.csr.sans);
    if taken.is_empty() {
        return None;
    }
    let list: Vec<String> = taken.iter().map(|(s, id)| format!("{s} (of {id})")).collect();
    Some(signers::deny(
        "ServingSANsOfOthers",
        format!("kubernetes.io/kubelet-serving: {node} may name only itself; the request names {}", list.join(", ")),
    ))
}

/// What became of one request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "verdict")]
pub enum Verdict {
    /// Signed; `status.certificate` and an `Approved` condition added.
    Approved {
        /// The policy that approved it.
        policy: Policy,
        /// The certificate's serial, hex.
        serial: String,
        /// NotAfter.
        #[serde(with = "crate::report::json::rfc3339")]
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
#[serde(rename_all = "camelCase")]
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
        let (f, user, decision) = decide(obj, spec, catalog, policies);
        let verdict = match decision {
            Decision::Now(v) => Some(v),
            Decision::Sign(policy, g) => {
                to_sign.push((i, policy, *g));
                None
            }
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

/// What to do with one request: a verdict now, or sign it under a policy.
enum Decision {
    Now(Verdict),
    Sign(Policy, Box<Grant>),
}

/// One request decided: its fields, the user it asks to be, and the decision. In order: already
/// decided, malformed, the signer's rules, names that are not the node's, then the policies.
fn decide(
    obj: &Value,
    spec: &ClusterSpec,
    catalog: &Catalog,
    policies: &[Policy],
) -> (RequestFields, String, Decision) {
    let (f, malformed) = match fields(obj) {
        Ok(f) => (f, None),
        Err(d) => (RequestFields { signer_name: text_at(obj, "/spec/signerName"), ..Default::default() }, Some(d)),
    };
    if let Some(why) = decided(obj) {
        let user = requested_user(&f);
        return (f, user, Decision::Now(Verdict::Decided { why }));
    }
    let g = match malformed.map_or_else(|| evaluate(&f, spec.validity.leaf), Err) {
        Ok(g) => g,
        Err(d) => {
            let user = requested_user(&f);
            return (f, user, Decision::Now(Verdict::Denied(d)));
        }
    };
    let user = g.csr.cn.clone();
    if let Some(d) = others_names(&g, catalog) {
        return (f, user, Decision::Now(Verdict::Denied(d)));
    }
    let decision = match (&g.unsupported, covered_by(policies, &g, &f, catalog)) {
        (Some(why), _) => Decision::Now(Verdict::Pending { why: why.clone() }),
        (None, Err(why)) => Decision::Now(Verdict::Pending { why }),
        (None, Ok(policy)) => Decision::Sign(policy, Box::new(g)),
    };
    (f, user, decision)
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
    crate::disk::issuance::check_appendable(root)?;
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

/// The fields of `spec`, each checked to have its type: a field missing where it is required,
/// or of another type (`expirationSeconds: "1"`), is a denial naming it.
fn fields(obj: &Value) -> std::result::Result<RequestFields, Denial> {
    let malformed = |field: &str, problem: String| signers::deny("MalformedField", format!("spec.{field}: {problem}"));
    let spec = match obj.get("spec") {
        Some(Value::Object(m)) => m,
        Some(v) => return Err(signers::deny("MalformedField", format!("spec: {}, not an object", type_of(v)))),
        None => return Err(signers::deny("MalformedField", "spec: required")),
    };
    let text = |k: &str| match spec.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(malformed(k, format!("{}, not a string", type_of(v)))),
    };
    let required = |k: &str| text(k)?.ok_or_else(|| malformed(k, "required".into()));
    let texts = |k: &str| match spec.get(k) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed(&format!("{k}[{i}]"), format!("{}, not a string", type_of(v))))
            })
            .collect(),
        Some(v) => Err(malformed(k, format!("{}, not a list", type_of(v)))),
    };
    let expiration_seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|s| i32::try_from(*s).is_ok()).ok_or_else(|| {
            malformed("expirationSeconds", format!("{}, not a whole number of seconds (int32)", type_of(v)))
        })?),
    };
    Ok(RequestFields {
        signer_name: required("signerName")?,
        request: required("request")?,
        usages: texts("usages")?,
        expiration_seconds,
        username: text("username")?,
        groups: texts("groups")?,
    })
}

/// A value's JSON type, with a short quote of a scalar.
fn type_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn text_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string()
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

    /// A request's fields as the node (or user) it names would make it.
    fn fields(signer: &str, request: String, usages: &[&str]) -> RequestFields {
        let mut f = RequestFields {
            signer_name: format!("kubernetes.io/{signer}"),
            request,
            usages: usages.iter().map(|u| u.to_string()).collect(),
            ..RequestFields::default()
        };
        f.username = Some(Some(requested_user(&f)).filter(|u| !u.is_empty()).unwrap_or_else(|| "someone".into()));
        f
    }

    fn kubelet_client(request: String) -> RequestFields {
        kubelet_client_with(request, &[DS, KE, CLIENT])
    }

    fn kubelet_client_with(request: String, usages: &[&str]) -> RequestFields {
        fields("kube-apiserver-client-kubelet", request, usages)
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
        assert_eq!(denied(&kubelet_client_with(valid.clone(), &[DS, "cert sign"])), "CaRequested");
        assert_eq!(denied(&kubelet_client_with(valid.clone(), &[])), "InvalidUsages");
        assert_eq!(denied(&kubelet_client_with(valid.clone(), &["flying"])), "InvalidUsages");
        assert_eq!(denied(&kubelet_client_with(valid.clone(), &[CLIENT, CLIENT])), "InvalidUsages");
        assert_eq!(denied(&fields("legacy-unknown", valid.clone(), &[DS, CLIENT])), "LegacyUnknown");
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
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "alice");
        params.subject_alt_names = vec![SanType::Rfc822Name("alice@example.com".try_into().unwrap())];
        let pem = B64.encode(params.serialize_request(&key).unwrap().pem().unwrap());
        let g = evaluate(&fields("kube-apiserver-client", pem, &[DS, CLIENT]), YEAR).unwrap();
        assert!(g.unsupported.unwrap().contains("alice@example.com"));
    }

    /// Issue 12: what kube-controller-manager and a careful admin would not sign.
    #[test]
    fn no_control_plane_identity_no_powerful_group_no_legacy_unknown() {
        let client =
            |cn: &str, o: Option<&str>| fields("kube-apiserver-client", request(cn, o, &[], false), &[DS, CLIENT]);
        for (cn, o, reason) in [
            ("alice", Some("kubeadm:cluster-admins"), "ReservedGroup"),
            ("alice", Some("system:nodes"), "ReservedGroup"),
            ("alice", Some("system:masters"), "SystemMasters"),
            ("system:kube-controller-manager", None, "ReservedIdentity"),
            ("system:kube-scheduler", None, "ReservedIdentity"),
            ("system:node:node01", Some(NODES), "ReservedIdentity"),
            ("system:serviceaccount:kube-system:default", None, "ReservedIdentity"),
            ("kubernetes-admin", None, "ReservedIdentity"),
            ("kube-apiserver-kubelet-client", None, "ReservedIdentity"),
        ] {
            assert_eq!(denied(&client(cn, o)), reason, "{cn} {o:?}");
        }
        assert!(evaluate(&client("alice", Some("devs")), YEAR).is_ok());
        let legacy = fields("legacy-unknown", request("alice", None, &[], false), &[DS, CLIENT]);
        let d = evaluate(&legacy, YEAR).unwrap_err();
        assert_eq!(d.reason, "LegacyUnknown");
        assert!(d.message.contains("never signs"), "{}", d.message);
    }

    #[test]
    fn the_requester_is_required_and_must_be_the_node() {
        let serving =
            fields("kubelet-serving", request("system:node:node01", Some(NODES), &["node01"], false), &[DS, SERVER]);
        assert!(evaluate(&serving, YEAR).is_ok());
        for username in [None, Some(String::new())] {
            let mut f = serving.clone();
            f.username = username;
            let d = evaluate(&f, YEAR).unwrap_err();
            assert_eq!(
                (d.reason, d.message.as_str()),
                ("MalformedField", "spec.username: required (the user who made the request)")
            );
        }
        let mut other = serving.clone();
        other.username = Some("system:node:node02".into());
        let d = evaluate(&other, YEAR).unwrap_err();
        assert_eq!(d.reason, "RequesterMismatch");
        assert!(d.message.contains("'system:node:node02'"), "{}", d.message);
        // A client certificate: the node itself or a bootstrapper, who must be both.
        let mut client = kubelet_client(request("system:node:node02", Some(NODES), &[], false));
        assert!(evaluate(&client, YEAR).is_ok());
        client.username = Some("system:bootstrap:abcdef".into());
        assert_eq!(denied(&client), "RequesterMismatch", "not in system:bootstrappers");
        client.groups = vec!["system:bootstrappers".into()];
        assert!(evaluate(&client, YEAR).is_ok());
        client.username = Some("mallory".into());
        assert_eq!(denied(&client), "RequesterMismatch", "in the group, but not a bootstrap token");
    }

    #[test]
    fn malformed_fields_are_denied_by_name() {
        let valid = request("system:node:node01", Some(NODES), &[], false);
        let obj = |spec: Value| json!({"kind": "CertificateSigningRequest", "spec": spec});
        let base = json!({"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "request": valid,
            "usages": [DS, CLIENT], "username": "system:node:node01"});
        assert_eq!(super::fields(&obj(base.clone())).unwrap().username.as_deref(), Some("system:node:node01"));
        for (field, value, expected) in [
            (
                "expirationSeconds",
                json!("1"),
                "spec.expirationSeconds: a string (\"1\"), not a whole number of seconds (int32)",
            ),
            ("expirationSeconds", json!(1.5), "spec.expirationSeconds: a number (1.5), not a whole number"),
            ("expirationSeconds", json!(1u64 << 40), "spec.expirationSeconds: a number (1099511627776), not a whole"),
            ("username", json!(7), "spec.username: a number (7), not a string"),
            ("usages", json!([DS, 1]), "spec.usages[1]: a number (1), not a string"),
            ("usages", json!(DS), "spec.usages: a string (\"digital signature\"), not a list"),
            ("groups", json!("system:nodes"), "spec.groups: a string (\"system:nodes\"), not a list"),
            ("signerName", json!(null), "spec.signerName: required"),
            ("request", json!({"a": 1}), "spec.request: an object, not a string"),
        ] {
            let mut spec = base.clone();
            spec[field] = value;
            let d = super::fields(&obj(spec)).unwrap_err();
            assert_eq!(d.reason, "MalformedField");
            assert!(d.message.starts_with(expected), "{field}: {}", d.message);
        }
        assert_eq!(super::fields(&json!({"kind": "x"})).unwrap_err().message, "spec: required");
        assert_eq!(super::fields(&json!({"spec": []})).unwrap_err().message, "spec: a list, not an object");
    }

    #[test]
    fn a_serving_certificate_names_only_its_own_node() {
        let catalog = Catalog::build(&ClusterSpec::builtin_default());
        let serving = |cn: &str, sans: &[&str]| {
            let f = fields("kubelet-serving", request(cn, Some(NODES), sans, false), &[DS, KE, SERVER]);
            others_names(&evaluate(&f, YEAR).unwrap(), &catalog)
        };
        let d = serving("system:node:node01", &["node01", "kubernetes.default.svc", "10.96.0.1", "127.0.0.1"]).unwrap();
        assert_eq!(d.reason, "ServingSANsOfOthers");
        for named in [
            "DNS:kubernetes.default.svc (of apiserver@controlplane)",
            "IP:10.96.0.1 (of apiserver@controlplane)",
            "IP:127.0.0.1 (of",
        ] {
            assert!(d.message.contains(named), "{named}: {}", d.message);
        }
        assert!(!d.message.contains("DNS:node01"), "its own name: {}", d.message);
        let d = serving("system:node:node01", &["node02", "127.0.0.3"]).unwrap();
        assert!(d.message.contains("DNS:node02 (of kubelet-serving@node02)"), "{}", d.message);
        // A control plane's kubelet shares its host's name and address with the apiserver.
        assert!(serving("system:node:controlplane", &["controlplane", "127.0.0.1"]).is_none());
        assert!(serving("system:node:node01", &["node01", "127.0.0.2"]).is_none());
        // A node not in the cluster cannot take the apiserver's names either.
        assert!(serving("system:node:intruder", &["kubernetes"]).is_some());
        assert!(serving("system:node:intruder", &["intruder"]).is_none());
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
        let stranger = serving("system:node:intruder", &["intruder"]);
        assert!(decide(&[Policy::KubeletServingKnownAddresses], &stranger).unwrap_err().contains("not a node"));
        assert_eq!(decide(&[], &known).unwrap_err(), "no --approve policy given");
        let why = decide(&[Policy::KubeletClient], &known).unwrap_err();
        assert!(why.starts_with("no policy covers kubernetes.io/kubelet-serving"), "{why}");

        let mut client = kubelet_client(request("system:node:node02", Some(NODES), &[], false));
        assert_eq!(decide(&[Policy::KubeletClient], &client), Ok(Policy::KubeletClient));
        client.username = Some("system:bootstrap:abcdef".into());
        client.groups = vec!["system:bootstrappers".into()];
        assert_eq!(decide(&[Policy::KubeletClient], &client), Ok(Policy::KubeletClient));
        let stranger = kubelet_client(request("system:node:intruder", Some(NODES), &[], false));
        assert!(decide(&[Policy::KubeletClient], &stranger).unwrap_err().contains("intruder is not a node"));
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
