//! Kubeconfigs: the model, written as kubeadm writes them (every scalar that came from a user
//! quoted, so YAML 1.1 readers like kubectl never see `on` or `no` as a boolean), and read back.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A kubeconfig with one cluster, one user, one context, as kubeadm writes it.
pub struct Kubeconfig<'a> {
    /// The cluster name (`kubernetes`).
    pub cluster: &'a str,
    /// `https://host:port`.
    pub server: &'a str,
    /// The CA certificate(s) the client trusts, PEM.
    pub ca_pem: &'a str,
    /// The user name (the certificate's CN).
    pub user: &'a str,
    /// The client certificate, PEM.
    pub cert_pem: &'a str,
    /// The client key, PEM.
    pub key_pem: &'a str,
}

impl Kubeconfig<'_> {
    /// The context name: `<user>@<cluster>`.
    pub fn context(&self) -> String {
        format!("{}@{}", self.user, self.cluster)
    }

    /// The YAML text.
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let context = self.context();
        format!(
            "apiVersion: v1\n\
             clusters:\n\
             - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {cluster}\n\
             contexts:\n\
             - context:\n    cluster: {cluster}\n    user: {user}\n  name: {context}\n\
             current-context: {context}\n\
             kind: Config\n\
             preferences: {{}}\n\
             users:\n\
             - name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = B64.encode(self.ca_pem),
            server = q(self.server),
            cluster = q(self.cluster),
            user = q(self.user),
            context = q(&context),
            cert = B64.encode(self.cert_pem),
            key = B64.encode(self.key_pem),
        )
    }
}

/// A kubeconfig as read from disk: every cluster, user and context (see [`parse_file`]).
#[derive(Debug, Deserialize)]
pub struct KubeconfigFile {
    /// `kind` (`Config`).
    #[serde(default)]
    pub kind: Option<String>,
    /// `clusters`.
    #[serde(default)]
    pub clusters: Vec<Named<ClusterFields>>,
    /// `users`.
    #[serde(default)]
    pub users: Vec<Named<UserFields>>,
    /// `contexts`.
    #[serde(default)]
    pub contexts: Vec<Named<ContextFields>>,
    /// `current-context`.
    #[serde(rename = "current-context", default)]
    pub current_context: String,
}

/// A `name:` plus the named thing.
#[derive(Debug, Deserialize)]
pub struct Named<T> {
    /// The name.
    pub name: String,
    /// The thing (`cluster:`, `user:` or `context:`).
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    pub value: T,
}

/// A cluster's fields.
#[derive(Debug, Deserialize)]
pub struct ClusterFields {
    /// `server`.
    #[serde(default)]
    pub server: String,
    /// `certificate-authority-data` (base64 PEM).
    #[serde(rename = "certificate-authority-data")]
    pub ca_data: Option<String>,
    /// `certificate-authority` (a path).
    #[serde(rename = "certificate-authority")]
    pub ca_file: Option<String>,
    /// `insecure-skip-tls-verify`: the server is not verified at all.
    #[serde(rename = "insecure-skip-tls-verify", default)]
    pub insecure_skip_tls_verify: bool,
}

/// A user's fields.
#[derive(Debug, Deserialize)]
pub struct UserFields {
    /// `client-certificate-data`.
    #[serde(rename = "client-certificate-data")]
    pub cert_data: Option<String>,
    /// `client-key-data`.
    #[serde(rename = "client-key-data")]
    pub key_data: Option<String>,
    /// `client-certificate` (a path).
    #[serde(rename = "client-certificate")]
    pub cert_file: Option<String>,
    /// `client-key` (a path).
    #[serde(rename = "client-key")]
    pub key_file: Option<String>,
    /// Ways to authenticate other than a client certificate that the user has (`token`,
    /// `tokenFile`, `username`, `exec`, `auth-provider`).
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
}

impl UserFields {
    /// The other ways to authenticate it names, by field.
    pub fn other_auth(&self) -> Vec<String> {
        ["token", "tokenFile", "username", "exec", "auth-provider"]
            .into_iter()
            .filter(|f| self.other.contains_key(*f))
            .map(str::to_string)
            .collect()
    }
}

/// A context's fields.
#[derive(Debug, Deserialize)]
pub struct ContextFields {
    /// `cluster`.
    pub cluster: String,
    /// `user`.
    pub user: String,
}

/// What the current context of a kubeconfig resolves to, with the embedded data decoded.
pub struct Resolved {
    /// The context resolved.
    pub context: String,
    /// The cluster's name.
    pub cluster: String,
    /// The server URL.
    pub server: String,
    /// The CA PEM, if embedded.
    pub ca_pem: Option<String>,
    /// The user's name.
    pub user: String,
    /// The client certificate PEM, if embedded.
    pub cert_pem: Option<String>,
    /// The client key PEM, if embedded (never printed).
    pub key_pem: Option<String>,
    /// `certificate-authority`, `client-certificate`, `client-key`: file references, when the
    /// data is not embedded (as in a kubelet.conf after bootstrap).
    pub files: [Option<String>; 3],
    /// The cluster's `insecure-skip-tls-verify`: the server is not verified.
    pub insecure_skip_tls_verify: bool,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("cluster", &self.cluster)
            .field("server", &self.server)
            .field("user", &self.user)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Read a kubeconfig and resolve its current context.
pub fn read(path: &Path) -> Result<Resolved> {
    let text = crate::disk::readfile::read_text(path, crate::disk::readfile::Limit::Kubeconfig)?;
    parse(&text, path)
}

/// Read kubeconfig text whole: a `Config` with at least one cluster, each context naming a
/// cluster and a user it has, the current context among them. The one reader of kubeconfigs
/// (resolving the current context, `inspect`'s view); `path` names it in errors.
pub fn parse_file(text: &str, path: &Path) -> Result<KubeconfigFile> {
    let bad = |p: String| Error::bad_file(path, p);
    let file = match rendered(text) {
        Some(file) => file,
        None => from_yaml(text, path)?,
    };
    if file.clusters.is_empty() {
        return Err(bad("not a kubeconfig: it has no clusters".into()));
    }
    for c in &file.contexts {
        if !file.clusters.iter().any(|x| x.name == c.value.cluster) {
            return Err(bad(format!("context '{}' names cluster '{}', which is missing", c.name, c.value.cluster)));
        }
        if !file.users.iter().any(|x| x.name == c.value.user) {
            return Err(bad(format!("context '{}' names user '{}', which is missing", c.name, c.value.user)));
        }
    }
    if !file.current_context.is_empty() && !file.contexts.iter().any(|c| c.name == file.current_context) {
        return Err(bad(format!("current-context '{}' is not among its contexts", file.current_context)));
    }
    Ok(file)
}

/// The fields of kubeconfig text, by a YAML parser.
pub(crate) fn from_yaml(text: &str, path: &Path) -> Result<KubeconfigFile> {
    let bad = |p: String| Error::bad_file(path, p);
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| bad(format!("not a kubeconfig: not YAML: {e}")))?;
    if !doc.is_mapping() {
        return Err(bad("not a kubeconfig: not a YAML mapping".into()));
    }
    if let Some(kind) = doc.get("kind").and_then(|k| k.as_str()).filter(|k| *k != "Config") {
        return Err(bad(format!("not a kubeconfig: a YAML document of kind '{kind}'")));
    }
    serde_yaml_ng::from_value(doc).map_err(|e| bad(format!("not a kubeconfig: {e}")))
}

/// The fields of a kubeconfig exactly as [`Kubeconfig::render`] writes it (thousands in a
/// tree), read line by line without a YAML parser; `None` for any other text, which
/// [`from_yaml`] reads. Only what YAML reads the same way is taken: names and the server as
/// printable-ASCII JSON strings in their canonical quoting, the data as base64 of PEM.
pub(crate) fn rendered(text: &str) -> Option<KubeconfigFile> {
    let mut lines = text.strip_suffix('\n')?.split('\n');
    // The value after `prefix` on the next line (a line without a value: empty).
    let mut line = |prefix: &str| lines.next()?.strip_prefix(prefix);
    let quoted = |v: &str| -> Option<String> {
        let s: String = serde_json::from_str(v).ok()?;
        let canonical = s.bytes().all(|b| (b' '..=b'~').contains(&b)) && serde_json::to_string(&s).ok()? == v;
        canonical.then_some(s)
    };
    let pem_data = |v: &str| {
        let base64 = v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        // `-----BEGIN`: a string to any YAML reader, never a number or a boolean.
        (base64 && v.starts_with("LS0tLS1CRUdJTi")).then(|| v.to_string())
    };
    let bare = |v: Option<&str>| v.filter(|v| v.is_empty()).map(drop);
    bare(line("apiVersion: v1"))?;
    bare(line("clusters:"))?;
    bare(line("- cluster:"))?;
    let ca_data = pem_data(line("    certificate-authority-data: ")?)?;
    let server = quoted(line("    server: ")?)?;
    let cluster = quoted(line("  name: ")?)?;
    bare(line("contexts:"))?;
    bare(line("- context:"))?;
    let context = ContextFields { cluster: quoted(line("    cluster: ")?)?, user: quoted(line("    user: ")?)? };
    let context_name = quoted(line("  name: ")?)?;
    let current_context = quoted(line("current-context: ")?)?;
    bare(line("kind: Config"))?;
    bare(line("preferences: {}"))?;
    bare(line("users:"))?;
    let user = quoted(line("- name: ")?)?;
    bare(line("  user:"))?;
    let cert_data = pem_data(line("    client-certificate-data: ")?)?;
    let key_data = pem_data(line("    client-key-data: ")?)?;
    lines.next().is_none().then_some(())?;
    let cluster_fields =
        ClusterFields { server, ca_data: Some(ca_data), ca_file: None, insecure_skip_tls_verify: false };
    let user_fields = UserFields {
        cert_data: Some(cert_data),
        key_data: Some(key_data),
        cert_file: None,
        key_file: None,
        other: Default::default(),
    };
    Some(KubeconfigFile {
        kind: Some("Config".into()),
        clusters: vec![Named { name: cluster, value: cluster_fields }],
        users: vec![Named { name: user, value: user_fields }],
        contexts: vec![Named { name: context_name, value: context }],
        current_context,
    })
}

/// Parse kubeconfig text and resolve its current context; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Resolved> {
    parse_context(text, path, None)
}

/// Parse kubeconfig text and resolve a context (the current one if `None`).
pub fn parse_context(text: &str, path: &Path, context: Option<&str>) -> Result<Resolved> {
    let file = parse_file(text, path)?;
    let bad = |p: String| Error::bad_file(path, p);
    let ctx = match context {
        Some(name) => file.contexts.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = file.contexts.iter().map(|c| c.name.as_str()).collect();
            bad(format!("no context '{name}' (it has: {})", names.join(", ")))
        })?,
        None => file
            .contexts
            .iter()
            .find(|c| c.name == file.current_context)
            .or_else(|| (file.contexts.len() == 1).then(|| &file.contexts[0]))
            .ok_or_else(|| bad(format!("current-context '{}' is not among its contexts", file.current_context)))?,
    };
    let cluster = file.clusters.iter().find(|c| c.name == ctx.value.cluster).ok_or_else(|| {
        bad(format!("context '{}' names cluster '{}', which is missing", ctx.name, ctx.value.cluster))
    })?;
    let user = file
        .users
        .iter()
        .find(|u| u.name == ctx.value.user)
        .ok_or_else(|| bad(format!("context '{}' names user '{}', which is missing", ctx.name, ctx.value.user)))?;
    let decode = |field: &str, data: &Option<String>| -> Result<Option<String>> {
        data.as_ref()
            .map(|d| {
                let bytes = B64.decode(d.trim()).map_err(|_| bad(format!("{field} is not valid base64")))?;
                String::from_utf8(bytes).map_err(|_| bad(format!("{field} is not PEM text")))
            })
            .transpose()
    };
    Ok(Resolved {
        context: ctx.name.clone(),
        cluster: cluster.name.clone(),
        server: cluster.value.server.clone(),
        ca_pem: decode("certificate-authority-data", &cluster.value.ca_data)?,
        user: user.name.clone(),
        cert_pem: decode("client-certificate-data", &user.value.cert_data)?,
        key_pem: decode("client-key-data", &user.value.key_data)?,
        files: [cluster.value.ca_file.clone(), user.value.cert_file.clone(), user.value.key_file.clone()],
        insecure_skip_tls_verify: cluster.value.insecure_skip_tls_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_booleans_or_numbers_stay_strings() {
        for name in ["on", "no", "yes", "off", "y", "true", "null", "~", "1.0", "0x1f", "12", "a: b", "#x"] {
            let k = Kubeconfig {
                cluster: name,
                server: "https://127.0.0.1:6443",
                ca_pem: "CA",
                user: name,
                cert_pem: "C",
                key_pem: "K",
            };
            let text = k.render();
            let back = parse(&text, "t.conf".as_ref()).unwrap();
            assert_eq!(back.cluster, name);
            assert_eq!(back.user, name);
            assert_eq!(back.ca_pem.as_deref(), Some("CA"));
            assert_eq!(back.key_pem.as_deref(), Some("K"));
            // A YAML 1.1 reader sees quoted scalars only.
            assert!(text.contains(&format!("name: {}", serde_json::to_string(name).unwrap())));
        }
    }

    #[test]
    fn rendered_kubeconfigs_read_without_yaml_as_yaml_reads_them() {
        let names = ["kubernetes", "on", "no", "12", "a: b", "#x", "say \"hi\"", "back\\slash", "{}", " padded "];
        for name in names {
            let text = Kubeconfig {
                cluster: name,
                server: "https://[fd00::1]:6443",
                ca_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
                user: name,
                cert_pem: "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
                key_pem: "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n",
            }
            .render();
            let fast = rendered(&text).unwrap_or_else(|| panic!("not recognised: {text}"));
            let yaml = from_yaml(&text, "t.conf".as_ref()).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{yaml:?}"));
            // Anything else is YAML's to read.
            for other in [text.replace("\n", "\r\n"), text.replace(": \"", ": '"), format!("{text}# end\n")] {
                assert!(rendered(&other).is_none(), "{other}");
            }
        }
    }

    #[test]
    fn a_kubeconfig_resolves_the_same_whichever_reader_reads_it() {
        for name in ["kubernetes", "on", "a: b", "système"] {
            let k = Kubeconfig {
                cluster: name,
                server: "https://[::1]:6443",
                ca_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
                user: "system:node:n1",
                cert_pem: "C\n",
                key_pem: "K\n",
            };
            let text = k.render();
            let resolved = parse(&text, "t.conf".as_ref()).unwrap();
            let file = parse_file(&text, "t.conf".as_ref()).unwrap();
            assert_eq!(file.clusters[0].name, resolved.cluster);
            assert_eq!(file.clusters[0].value.server, resolved.server);
            assert_eq!(file.users[0].name, resolved.user);
            assert_eq!(file.current_context, resolved.context);
            assert_eq!(resolved.ca_pem.as_deref(), Some(k.ca_pem));
            assert_eq!((resolved.cert_pem.as_deref(), resolved.key_pem.as_deref()), (Some("C\n"), Some("K\n")));
            // Anything else (here one more field) is left to the YAML reader.
            let edited = text.replace("    server:", "    insecure-skip-tls-verify: true\n    server:");
            assert!(rendered(&edited).is_none());
            assert!(parse(&edited, "t.conf".as_ref()).unwrap().insecure_skip_tls_verify);
        }
    }

    #[test]
    fn missing_parts_are_named() {
        let err = parse(
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: s}}]\ncurrent-context: x\n",
            "a.conf".as_ref(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("a.conf: current-context 'x'"), "{err}");
        let err = parse(": : :", "b.conf".as_ref()).unwrap_err().to_string();
        assert!(err.starts_with("b.conf: not a kubeconfig"), "{err}");
    }
}
