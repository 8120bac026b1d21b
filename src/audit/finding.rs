//! What `verify` can find, as a closed list: each kind's stable name (the `code` in JSON), its
//! severity, whether it makes a handshake fail, and the command that fixes it, in one `match`
//! each. A suggested fix never replaces a CA and never needs `--force`: a CA's problem is a
//! rotation the operator starts by name.

use std::path::Path;

use serde::Serialize;

use crate::model::catalog::{Entry, EntryKind};
use crate::model::spec::San;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken (e.g. kubeadm's self-signed kubelet serving certificate).
    Info,
    /// Works now, but is a risk or will break (expiring soon, loose file mode, weak key).
    Warning,
    /// A connection fails or a credential is wrong.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Every kind of finding. The JSON name (`code`) of each is stable: see the README's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A file of the catalog is not there.
    Missing,
    /// A file is there but cannot be read as what it should be.
    Unreadable,
    /// A kubeconfig refers to a file outside the tree (kubeadm's rotated kubelet credential).
    External,
    /// A file kubepki adds is absent from a kubeadm tree, as kubeadm makes it.
    NotKubeadm,
    /// A CA certificate without its key: the CA is managed outside the tree (kubeadm's
    /// external-CA mode). Nothing is broken; what it signs is renewed with `csr` and `import`.
    ExternallyManaged,
    /// A key or kubeconfig is readable by others.
    Mode,
    /// A private key is not the certificate's.
    KeyMismatch,
    /// `sa.pub` is not the public half of `sa.key`.
    PublicKeyMismatch,
    /// A kubeconfig's `certificate-authority-data` is not the current CA.
    StaleCaData,
    /// A kubeconfig dials another server than the catalog's.
    ServerUrl,
    /// Two certificates of one issuer share a serial.
    DuplicateSerial,
    /// A node bundle's copy differs from its source.
    StaleCopy,
    /// A server certificate's SANs do not cover the address a client dials.
    SanMissing,
    /// Expired.
    Expired,
    /// Not valid yet.
    NotYetValid,
    /// Expires within the warning window.
    Expiring,
    /// Not signed by the CA the catalog says (or a CA that is not self-signed).
    WrongCa,
    /// A leaf that expires after its CA.
    OutlivesIssuer,
    /// A usage the entry needs is missing (or the CA flag is wrong).
    Usage,
    /// Usages beyond the entry's profile.
    UsageExtra,
    /// CN or O is not the catalog's.
    Identity,
    /// `system:masters` outside `super-admin.conf`.
    SystemMasters,
    /// SANs of the profile missing that no link dials.
    SanProfile,
    /// SANs of a server certificate that the description does not give it (any more: a node's
    /// address changed) and no `san add` recorded.
    SanExtra,
    /// A server certificate names another party of the cluster (another node's name or
    /// address, the apiserver's service names or IP, etcd's `localhost`): its key can answer
    /// as that party. The rule `approve` denies by (`ServingSANsOfOthers`).
    ForeignSan,
    /// RSA below 2048 bits.
    WeakKey,
    /// A SHA-1 signature.
    Sha1,
    /// A side of a link does not verify the other: a trust setting unset, a verification
    /// switch off (`--client-cert-auth`), or one that turns it off on (`--auto-tls`).
    Unverified,
    /// A component's setting that names its credential is absent.
    SettingUnset,
    /// A setting names a file that does not hold what the topology says (another CA,
    /// another node's certificate).
    SettingWrongFile,
    /// A setting names a file that is not there.
    SettingNoFile,
    /// TLS weakened by a setting: a minimum version below 1.2, weak cipher suites.
    WeakTls,
    /// A component serves requests that carry no credential (noted: RBAC decides what
    /// `system:anonymous` may do).
    AnonymousAuth,
    /// A component's authorization allows every request (`AlwaysAllow`).
    AlwaysAllow,
    /// A kubeconfig's cluster has `insecure-skip-tls-verify: true`: the client does not verify
    /// the server, and client-go refuses it beside CA data ("specifying a root certificates
    /// file with the insecure flag is not allowed").
    InsecureSkipTlsVerify,
    /// A directory of the tree is a symbolic link: what kubepki would write there would land
    /// wherever it points, outside the tree (every command that changes the tree refuses it).
    LinkedDirectory,
}

/// What a fix names: the tree, the entry and file a finding is about, the SANs it removes.
#[derive(Clone, Copy, Debug)]
pub struct FixTarget<'a> {
    /// The tree's root, as the user gave it.
    pub dir: &'a Path,
    /// The catalog entry.
    pub entry: Option<&'a Entry>,
    /// The file (relative to `dir`).
    pub file: Option<&'a Path>,
    /// The SANs a fix removes (extra ones, or another party's).
    pub sans: &'a [San],
    /// A component's setting: its manifest, its name and the value it must have.
    pub setting: Option<(&'a Path, &'a str, &'a str)>,
    /// Where the file, a symbolic link, points (resolved): a fix never acts through the link.
    pub link: Option<&'a Path>,
}

impl FindingKind {
    /// The stable name (`key-mismatch`), as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::Unreadable => "unreadable",
            FindingKind::External => "external",
            FindingKind::NotKubeadm => "not-kubeadm",
            FindingKind::ExternallyManaged => "externally-managed",
            FindingKind::Mode => "mode",
            FindingKind::KeyMismatch => "key-mismatch",
            FindingKind::PublicKeyMismatch => "public-key-mismatch",
            FindingKind::StaleCaData => "stale-ca-data",
            FindingKind::ServerUrl => "server-url",
            FindingKind::DuplicateSerial => "duplicate-serial",
            FindingKind::StaleCopy => "stale-copy",
            FindingKind::SanMissing => "san-missing",
            FindingKind::Expired => "expired",
            FindingKind::NotYetValid => "not-yet-valid",
            FindingKind::Expiring => "expiring",
            FindingKind::WrongCa => "wrong-ca",
            FindingKind::OutlivesIssuer => "outlives-issuer",
            FindingKind::Usage => "usage",
            FindingKind::UsageExtra => "usage-extra",
            FindingKind::Identity => "identity",
            FindingKind::SystemMasters => "system-masters",
            FindingKind::SanProfile => "san-profile",
            FindingKind::SanExtra => "san-extra",
            FindingKind::ForeignSan => "foreign-san",
            FindingKind::WeakKey => "weak-key",
            FindingKind::Sha1 => "sha1",
            FindingKind::Unverified => "unverified",
            FindingKind::SettingUnset => "setting-unset",
            FindingKind::SettingWrongFile => "setting-wrong-file",
            FindingKind::SettingNoFile => "setting-no-file",
            FindingKind::WeakTls => "weak-tls",
            FindingKind::AnonymousAuth => "anonymous-auth",
            FindingKind::AlwaysAllow => "always-allow",
            FindingKind::InsecureSkipTlsVerify => "insecure-skip-tls-verify",
            FindingKind::LinkedDirectory => "linked-directory",
        }
    }

    /// How bad it is.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::External
            | FindingKind::NotKubeadm
            | FindingKind::ExternallyManaged
            | FindingKind::AnonymousAuth => Severity::Info,
            FindingKind::Unverified
            | FindingKind::WeakTls
            | FindingKind::AlwaysAllow
            | FindingKind::ServerUrl
            | FindingKind::StaleCopy
            | FindingKind::Expiring
            | FindingKind::OutlivesIssuer
            | FindingKind::UsageExtra
            | FindingKind::SanProfile
            | FindingKind::SanExtra => Severity::Warning,
            FindingKind::Missing
            | FindingKind::Unreadable
            | FindingKind::Mode
            | FindingKind::KeyMismatch
            | FindingKind::PublicKeyMismatch
            | FindingKind::StaleCaData
            | FindingKind::DuplicateSerial
            | FindingKind::SanMissing
            | FindingKind::Expired
            | FindingKind::NotYetValid
            | FindingKind::WrongCa
            | FindingKind::Usage
            | FindingKind::Identity
            | FindingKind::SystemMasters
            | FindingKind::ForeignSan
            | FindingKind::WeakKey
            | FindingKind::Sha1
            | FindingKind::SettingUnset
            | FindingKind::SettingWrongFile
            | FindingKind::SettingNoFile
            | FindingKind::InsecureSkipTlsVerify
            | FindingKind::LinkedDirectory => Severity::Error,
        }
    }

    /// Whether a TLS handshake on the links that use the entry fails because of it.
    pub fn breaks_handshake(self) -> bool {
        match self {
            FindingKind::Missing
            | FindingKind::Unreadable
            | FindingKind::KeyMismatch
            | FindingKind::StaleCaData
            | FindingKind::SanMissing
            | FindingKind::Expired
            | FindingKind::NotYetValid
            | FindingKind::WrongCa
            | FindingKind::Usage
            | FindingKind::WeakKey
            | FindingKind::Sha1
            | FindingKind::SettingWrongFile
            | FindingKind::SettingNoFile
            | FindingKind::InsecureSkipTlsVerify => true,
            // sa.* is no TLS credential; the rest is a risk or a policy breach, not a failure.
            FindingKind::External
            | FindingKind::NotKubeadm
            | FindingKind::ExternallyManaged
            | FindingKind::Mode
            | FindingKind::PublicKeyMismatch
            | FindingKind::ServerUrl
            | FindingKind::DuplicateSerial
            | FindingKind::StaleCopy
            | FindingKind::Expiring
            | FindingKind::OutlivesIssuer
            | FindingKind::UsageExtra
            | FindingKind::Identity
            | FindingKind::SystemMasters
            | FindingKind::SanProfile
            | FindingKind::SanExtra
            // Every handshake succeeds; one more party's may too.
            | FindingKind::ForeignSan
            // The handshake succeeds: nobody checks the other side.
            | FindingKind::Unverified
            | FindingKind::SettingUnset
            // Weakened, not failing.
            | FindingKind::WeakTls
            | FindingKind::AnonymousAuth
            | FindingKind::AlwaysAllow
            // Nothing is read differently; writing is what it endangers.
            | FindingKind::LinkedDirectory => false,
        }
    }

    /// Whether it means "not checked" (a file outside the tree, a part kubeadm does not make).
    pub fn unchecked(self) -> bool {
        matches!(self, FindingKind::External | FindingKind::NotKubeadm)
    }

    /// The command that fixes it. Never `--force`, never a new CA: a CA's problem is a rotation
    /// the operator starts by name.
    pub fn fix(self, t: FixTarget<'_>) -> String {
        let dir = shell_word(&t.dir.display().to_string());
        let id = t.entry.map_or("", |e| e.id.as_str());
        let file = || t.file.map(|f| shell_word(&t.dir.join(f).display().to_string())).unwrap_or_default();
        let ca = t.entry.is_some_and(Entry::is_ca);
        let rotate = || format!("kubepki rotate-ca {id} start --dir {dir}");
        // A CA is never reissued in place: its replacement is a rotation the operator starts.
        let renew = || if ca { rotate() } else { format!("kubepki renew {id} --dir {dir}") };
        // The service-account private key: every ServiceAccount token is signed by it.
        let signing_key =
            t.entry.is_some_and(|e| matches!(&e.kind, EntryKind::KeyPair { key, .. } if t.file == Some(key.as_path())));
        match self {
            FindingKind::Missing | FindingKind::Unreadable if signing_key => format!(
                "copy it back from a control plane (/etc/kubernetes/{} there) or restore {} from a backup (kubepki backup list --dir {dir}); \
                 a new service-account key is never made implicitly: it would end every ServiceAccount token (kubepki rotate-ca {id} start replaces it in phases)",
                t.file.map(|f| f.display().to_string()).unwrap_or_default(),
                file()
            ),
            FindingKind::Missing | FindingKind::Unreadable if ca => format!(
                "restore {} from a backup (kubepki backup list --dir {dir}); a new CA is never made implicitly",
                file()
            ),
            FindingKind::Missing | FindingKind::StaleCopy => format!("kubepki init --dir {dir}"),
            // kubeadm's way is sound: kubepki's file is an option (made by init), not a fix.
            FindingKind::NotKubeadm => format!(
                "none needed: {} (kubepki init --dir {dir} adds kubepki's file)",
                t.entry.and_then(|e| e.kubeadm_instead).unwrap_or("kubeadm does it another way")
            ),
            FindingKind::External => "none needed: the kubelet rotates that file itself".into(),
            FindingKind::Unverified
            | FindingKind::SettingUnset
            | FindingKind::SettingWrongFile
            | FindingKind::SettingNoFile
            | FindingKind::WeakTls
            | FindingKind::AnonymousAuth
            | FindingKind::AlwaysAllow => match t.setting {
                Some((manifest, name, value)) => {
                    let file = shell_word(&t.dir.join(manifest).display().to_string());
                    if value.is_empty() {
                        format!("remove {name} from {file}")
                    } else if !name.starts_with("--") {
                        format!("set {name}: {value} in {file}")
                    } else if value == "false" && self != FindingKind::AnonymousAuth {
                        format!("remove {name} from {file} (or set {name}=false)")
                    } else {
                        format!("set {name}={value} in {file}")
                    }
                }
                None => "set the component's setting as reference §7 says".into(),
            },
            FindingKind::ExternallyManaged => {
                format!("none needed; to renew what it signs: {}", crate::operations::external::renewal_steps(&dir, id))
            }
            // A link's target is outside the tree: the link is replaced by a copy only its
            // owner reads (a chmod through it would change a file elsewhere).
            FindingKind::Mode => match t.link {
                Some(to) => format!("rm {f} && (umask 077 && cp {} {f})", shell_word(&to.display().to_string()), f = file()),
                None => format!("chmod 600 {}", file()),
            },
            FindingKind::LinkedDirectory => match t.link {
                Some(to) => format!("rm {f} && cp -Rp {} {f}", shell_word(&to.display().to_string()), f = file()),
                None => format!("rm {f} && mkdir {f} && kubepki init --dir {dir}", f = file()),
            },
            FindingKind::PublicKeyMismatch => {
                let key = shell_word(&t.dir.join("pki/sa.key").display().to_string());
                format!("openssl pkey -in {key} -pubout -out {}", file())
            }
            FindingKind::ServerUrl => match t.entry.and_then(Entry::kubeconfig_server) {
                Some((cluster, server)) => format!(
                    "kubectl config set-cluster {} --server={server} --kubeconfig={}",
                    shell_word(cluster),
                    file()
                ),
                None => renew(),
            },
            FindingKind::SanExtra | FindingKind::ForeignSan if ca || t.sans.is_empty() => renew(),
            FindingKind::SanExtra | FindingKind::ForeignSan => {
                let sans: Vec<String> = t.sans.iter().map(|s| shell_word(&s.value())).collect();
                format!("kubepki san remove {id} {} --dir {dir}", sans.join(" "))
            }
            // Renewing rewrites the kubeconfig as the catalog says: CA data, no such flag.
            FindingKind::InsecureSkipTlsVerify if ca => format!("remove insecure-skip-tls-verify from {}", file()),
            FindingKind::InsecureSkipTlsVerify => {
                format!("{} (or remove insecure-skip-tls-verify from {})", renew(), file())
            }
            // The address a link dials is one the description gives the certificate (a node's
            // address, the endpoint, the service name): a renewal reissues to the catalog's SANs.
            FindingKind::SanMissing
            | FindingKind::Unreadable
            | FindingKind::KeyMismatch
            | FindingKind::StaleCaData
            | FindingKind::DuplicateSerial
            | FindingKind::Expired
            | FindingKind::NotYetValid
            | FindingKind::Expiring
            | FindingKind::WrongCa
            | FindingKind::Usage
            | FindingKind::UsageExtra
            | FindingKind::Identity
            | FindingKind::SystemMasters
            | FindingKind::SanProfile
            | FindingKind::WeakKey
            | FindingKind::Sha1
            // A renewed leaf ends with its CA; the CA itself is then due a rotation.
            | FindingKind::OutlivesIssuer => renew(),
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A word as a shell reads it: quoted when it holds anything but safe characters.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-:@=+,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, for exhaustive checks (the match below fails to compile when one is added).
    fn all() -> Vec<FindingKind> {
        use FindingKind::*;
        let v = vec![
            Missing,
            Unreadable,
            External,
            NotKubeadm,
            ExternallyManaged,
            Mode,
            KeyMismatch,
            PublicKeyMismatch,
            StaleCaData,
            ServerUrl,
            DuplicateSerial,
            StaleCopy,
            SanMissing,
            Expired,
            NotYetValid,
            Expiring,
            WrongCa,
            OutlivesIssuer,
            Usage,
            UsageExtra,
            Identity,
            SystemMasters,
            SanProfile,
            SanExtra,
            ForeignSan,
            WeakKey,
            Sha1,
            Unverified,
            SettingUnset,
            SettingWrongFile,
            SettingNoFile,
            WeakTls,
            AnonymousAuth,
            AlwaysAllow,
            InsecureSkipTlsVerify,
            LinkedDirectory,
        ];
        for k in &v {
            match k {
                Missing
                | Unreadable
                | External
                | NotKubeadm
                | ExternallyManaged
                | Mode
                | KeyMismatch
                | PublicKeyMismatch
                | StaleCaData
                | ServerUrl
                | DuplicateSerial
                | StaleCopy
                | SanMissing
                | Expired
                | NotYetValid
                | Expiring
                | WrongCa
                | OutlivesIssuer
                | Usage
                | UsageExtra
                | Identity
                | SystemMasters
                | SanProfile
                | SanExtra
                | ForeignSan
                | WeakKey
                | Sha1
                | Unverified
                | SettingUnset
                | SettingWrongFile
                | SettingNoFile
                | WeakTls
                | AnonymousAuth
                | AlwaysAllow
                | InsecureSkipTlsVerify
                | LinkedDirectory => {}
            }
        }
        v
    }

    #[test]
    fn names_are_unique_and_match_json() {
        let mut seen = std::collections::BTreeSet::new();
        for k in all() {
            assert!(seen.insert(k.name()), "{k:?} repeats a name");
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::Value::String(k.name().into()));
        }
    }

    /// The README's list of finding codes is the enum: every kind once, in order, with its
    /// severity and whether it breaks a handshake, and a line of meaning.
    #[test]
    fn the_readme_lists_every_code_as_it_is() {
        let readme = include_str!("../../README.md");
        let start = readme.find("| code | severity | breaks a handshake | meaning |").expect("the README's list");
        let rows: Vec<Vec<&str>> = readme[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let listed: Vec<String> = rows.iter().map(|r| r[0].trim_matches('`').to_string()).collect();
        let kinds: Vec<&str> = all().iter().map(|k| k.name()).collect();
        assert_eq!(listed, kinds, "the README lists other codes than FindingKind");
        for (row, k) in rows.iter().zip(all()) {
            assert_eq!(row.len(), 4, "{row:?}");
            assert_eq!(row[1], k.severity().to_string(), "{k}: severity");
            assert_eq!(row[2], if k.breaks_handshake() { "yes" } else { "no" }, "{k}: breaks a handshake");
            assert!(row[3].len() > 5, "{k}: no meaning given");
        }
    }

    #[test]
    fn what_breaks_a_handshake_is_an_error_and_no_fix_forces_or_makes_a_ca() {
        let spec = crate::model::spec::ClusterSpec::builtin_default();
        let catalog = crate::model::catalog::Catalog::build(&spec);
        for k in all() {
            if k.breaks_handshake() {
                assert_eq!(k.severity(), Severity::Error, "{k}");
            }
            for e in &catalog.entries {
                let t = FixTarget {
                    dir: Path::new("/tmp/t"),
                    entry: Some(e),
                    file: Some(Path::new("x")),
                    sans: &[],
                    setting: None,
                    link: None,
                };
                let fix = k.fix(t);
                assert!(!fix.contains("--force"), "{k} on {}: {fix}", e.id);
                assert!(!fix.contains("--replace-ca"), "{k} on {}: {fix}", e.id);
                if e.is_ca() && fix.starts_with("kubepki renew") {
                    panic!("{k} on CA {}: {fix}", e.id);
                }
            }
        }
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("apiserver@cp1"), "apiserver@cp1");
    }
}
