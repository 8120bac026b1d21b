//! `approve`: Kubernetes CertificateSigningRequest objects in, the same objects out (approved
//! with a certificate, denied with the rule, or untouched), a line per request on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::Value;
use time::OffsetDateTime;

use super::verify::{cluster_of, default_dir};
use kubepki::operations::approve::rfc3339;
use kubepki::{
    disk::store::Mode, model::catalog::Catalog, operations::approve::ApproveReport, operations::approve::Policy,
    operations::approve::Verdict, Error, Result,
};

#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    /// CertificateSigningRequest objects: YAML or JSON, one object or a List (as `kubectl get csr -o yaml`
    /// prints them); `-` for stdin.
    file: PathBuf,
    /// The tree whose cluster CA signs (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The cluster description; without it the cluster (its nodes and addresses) is inferred from the tree.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Write the objects to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// What to approve without asking (repeatable). Valid requests no policy covers are left pending;
    /// there is no policy for every valid request (one cannot be made safe).
    #[arg(long = "approve", value_enum)]
    policies: Vec<PolicyArg>,
    /// Format of the objects written (default: the input's).
    #[arg(short, long, value_enum)]
    output: Option<DocFormat>,
}

/// The policies as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// Kubelet client requests for a node of the cluster, made by that node or a bootstrapper.
    KubeletClient,
    /// Kubelet serving requests for a node of the cluster whose SANs are only its known name and addresses.
    KubeletServingKnownAddresses,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::KubeletClient => Policy::KubeletClient,
            PolicyArg::KubeletServingKnownAddresses => Policy::KubeletServingKnownAddresses,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DocFormat {
    /// YAML (every string a YAML 1.1 reader could take for something else is quoted).
    Yaml,
    /// JSON.
    Json,
}

pub(crate) fn run(a: ApproveArgs) -> Result<ExitCode> {
    let text = read_input(&a.file)?;
    let (mut doc, input_format) = parse(&text, &a.file)?;
    let dir = default_dir(a.dir);
    // Approving signs, and logs in the tree: one writer at a time.
    let _run = kubepki::disk::run::Run::begin(&dir, "approve")?;
    let spec = cluster_of(&dir, a.config.as_deref(), false)?.spec;
    let catalog = Catalog::build(&spec);
    let policies: Vec<Policy> = a.policies.iter().map(|p| Policy::from(*p)).collect();
    let report =
        kubepki::operations::approve::approve(&spec, &catalog, &dir, &mut doc, &policies, OffsetDateTime::now_utc())?;
    let rendered = match a.output.unwrap_or(input_format) {
        DocFormat::Yaml => yaml(&doc),
        DocFormat::Json => super::json(&doc)?,
    };
    match &a.out {
        Some(path) => kubepki::disk::store::write_atomic(path, rendered.as_bytes(), Mode::Public)?,
        None => super::print(&rendered)?,
    }
    eprint!("{}", kubepki::report::escape_controls(&summary(&report)));
    Ok(if report.all_approved() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn read_input(file: &Path) -> Result<String> {
    use kubepki::disk::readfile::{read_stdin, read_text, Limit};
    if file == Path::new("-") {
        return read_stdin(Limit::Document);
    }
    read_text(file, Limit::Document)
}

/// JSON if it starts like JSON, else YAML.
fn parse(text: &str, file: &Path) -> Result<(Value, DocFormat)> {
    if text.trim_start().starts_with('{') {
        let v = serde_json::from_str(text).map_err(|e| Error::bad_file(file, format!("not valid JSON: {e}")))?;
        return Ok((v, DocFormat::Json));
    }
    let v = serde_yaml_ng::from_str(text).map_err(|e| Error::bad_file(file, format!("not valid YAML: {e}")))?;
    Ok((v, DocFormat::Yaml))
}

/// One line per request, then the counts.
fn summary(r: &ApproveReport) -> String {
    let mut out = String::new();
    let (mut approved, mut denied, mut pending, mut decided) = (0, 0, 0, 0);
    for q in &r.requests {
        let who = if q.user.is_empty() { q.signer.clone() } else { format!("{}, {}", q.signer, q.user) };
        let what = match &q.verdict {
            Verdict::Approved { policy, serial, not_after } => {
                approved += 1;
                format!("approved (policy {}): serial {serial}, valid until {}", policy.name(), rfc3339(*not_after))
            }
            Verdict::Denied(d) => {
                denied += 1;
                format!("DENIED {}: {}", d.reason, d.message)
            }
            Verdict::Pending { why } => {
                pending += 1;
                format!("left pending: {why}")
            }
            Verdict::Decided { why } => {
                decided += 1;
                format!("untouched: {why}")
            }
        };
        out.push_str(&format!("{} ({who}): {what}\n", q.name));
    }
    out.push_str(&format!(
        "{} requests: {approved} approved, {denied} denied, {pending} left pending, {decided} already decided\n",
        r.requests.len()
    ));
    out
}

/// YAML in kubectl's layout. serde_yaml_ng reads the input, but its writer leaves `on`, `yes` or
/// `1:20` plain, which YAML 1.1 readers (kubectl's among them) take for a boolean or a number:
/// here every string that is not plainly a word is double-quoted (JSON quoting is valid YAML).
fn yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(k));
        out.push(':');
        after_key(out, v, indent);
    }
}

fn after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        // kubectl's style: a sequence under a key is not indented.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                seq(out, inner, indent + 2);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string plain when it is plainly a word (names, base64), else double-quoted.
fn string(s: &str) -> String {
    const YAML11_WORDS: [&str; 9] = ["y", "yes", "n", "no", "true", "false", "on", "off", "null"];
    let mut chars = s.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/+=".contains(c))
        && !YAML11_WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_round_trips_and_quotes_what_yaml_1_1_would_misread() {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"metadata": {"name": "on", "labels": {"yes": "no", "n": "1:20"}}, "spec": {
                    "usages": ["digital signature", "client auth"], "expirationSeconds": 3600, "groups": [],
                    "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K+/=", "extra": {"a": [["x"], []]}}},
                {"metadata": {"name": "csr-b"}, "status": {}, "note": "line one\nline \"two\"", "n": null, "t": true}
            ]
        });
        let text = yaml(&doc);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, doc, "{text}");
        for quoted in ["name: \"on\"", "\"yes\": \"no\"", "\"n\": \"1:20\"", "- \"digital signature\""] {
            assert!(text.contains(quoted), "{quoted} in\n{text}");
        }
        assert!(text.contains("request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K+/=\n"), "{text}");
        assert!(text.starts_with("apiVersion: v1\nitems:\n- metadata:\n    labels:\n"), "{text}");
    }

    #[test]
    fn plain_words_stay_plain() {
        for s in ["CertificateSigningRequest", "csr-abc.1", "kubernetes.io/kubelet-serving", "True"] {
            let quoted = string(s) != s;
            assert_eq!(quoted, s == "True", "{s}");
        }
        for s in ["", "ON", "Off", "y", "12", "-x", "a b", "system:node:n1", ".inf", "~", "#x"] {
            assert!(string(s).starts_with('"'), "{s}");
        }
    }
}
