//! `verify`: every link of the topology checked in both directions, statically (and live).

use kubepki::report::verify::{endpoint_text, live_text, text};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::OffsetDateTime;

use super::{emit, Format};
use kubepki::audit::handshake::{probe_endpoint, Credential, EndpointReport};
use kubepki::audit::verify::{Filter, LinkStatus, Report};
use kubepki::audit::wiring::Sources;
use kubepki::model::infer::{resolve, Described, Resolve};
use kubepki::{
    audit::verify::verify, audit::verify::VerifyOptions, disk::inventory::Inventory, model::catalog::Catalog,
    model::spec::ClusterSpec, model::topology::Topology, Error, Result,
};

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The cluster description; without it the cluster is inferred from the tree.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Check validity at this instant (RFC 3339, or a date YYYY-MM-DD) instead of now.
    #[arg(long, value_parser = parse_instant)]
    at: Option<OffsetDateTime>,
    /// Warn about certificates expiring within this (e.g. 30d, 720h).
    #[arg(long, default_value = "30d", value_parser = kubepki::model::spec::duration_text::parse)]
    warn_within: time::Duration,
    /// List every link, not only those that are not OK.
    #[arg(long)]
    all: bool,
    /// Audit the static pod manifests and configuration files in this directory (a node's
    /// /etc/kubernetes/manifests, a kubelet's config.yaml; recognised by content) instead of
    /// the tree's own; the files they name are looked for in the tree.
    #[arg(long, value_name = "DIR")]
    wiring: Option<PathBuf>,
    /// With --wiring: the node those files are from [default: the first control plane].
    #[arg(long, requires = "wiring", value_name = "NODE")]
    wiring_node: Option<String>,
    /// Show only the links with a side on this node, and the findings about its files
    /// (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// Show only the links in this state: ok, warning, broken, unverified, unknown
    /// (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_link_status)]
    status: Vec<LinkStatus>,
    /// Also prove every link with a real TLS handshake (rustls over loopback TCP).
    #[arg(long)]
    live: bool,
    /// Connect to a running server (https://HOST:PORT) instead, and explain the outcome; with
    /// --kubeconfig, the kubeconfig's server when not given.
    #[arg(long)]
    endpoint: Option<String>,
    /// With --endpoint: the credential to present, a catalog name of the tree (admin.conf, apiserver-etcd-client, ...).
    #[arg(long = "as", id = "credential", conflicts_with_all = ["kubeconfig", "cacert"])]
    credential: Option<String>,
    /// Probe with this kubeconfig's user and cluster CA (and server, unless --endpoint).
    #[arg(long, conflicts_with = "cacert")]
    kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: the context to use instead of the current one.
    #[arg(long, requires = "kubeconfig")]
    context: Option<String>,
    /// With --endpoint: the CA certificate(s) to trust the server with.
    #[arg(long, requires = "endpoint")]
    cacert: Option<PathBuf>,
    /// With --cacert: the client certificate to present.
    #[arg(long, requires_all = ["cacert", "key"])]
    cert: Option<PathBuf>,
    /// With --cert: its private key.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

fn parse_link_status(s: &str) -> std::result::Result<LinkStatus, String> {
    LinkStatus::ALL.into_iter().find(|l| l.word() == s).ok_or_else(|| {
        let words: Vec<&str> = LinkStatus::ALL.iter().map(|l| l.word()).collect();
        format!("'{s}' is not a link state; states are: {}", words.join(", "))
    })
}

/// `2026-01-31` or `2026-01-31T12:00:00Z`.
pub(crate) fn parse_instant(s: &str) -> std::result::Result<OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// The tree a command looks at when none is given.
pub(crate) fn default_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| {
        let local = PathBuf::from("kubernetes");
        if local.is_dir() {
            local
        } else {
            PathBuf::from("/etc/kubernetes")
        }
    })
}

/// The cluster of an existing tree, by the library's one policy: the recorded description,
/// else the given one, else the tree read back; a given one that differs from the recorded one
/// is refused unless `update`.
pub(crate) fn cluster_of(dir: &Path, config: Option<&Path>, update: bool) -> Result<Described> {
    if !dir.is_dir() {
        return Err(Error::bad_file(dir, "no such directory"));
    }
    let given = config.map(ClusterSpec::load).transpose()?;
    resolve(dir, given, Resolve { update, new_tree: false })
}

pub(crate) fn run(a: VerifyArgs) -> Result<ExitCode> {
    if a.kubeconfig.is_some() || a.cacert.is_some() {
        return probe(a);
    }
    let dir = default_dir(a.dir.clone());
    // A tree too half-written to be read at all (a first init killed early) is said to be so.
    let interrupted = kubepki::disk::run::interrupted(&dir);
    let result = report(&a, &dir);
    if let (Err(_), Some(half)) = (&result, interrupted) {
        eprintln!("kubepki: {}: {half}", dir.display());
    }
    result
}

fn report(a: &VerifyArgs, dir: &std::path::Path) -> Result<ExitCode> {
    let dir = dir.to_path_buf();
    let spec = cluster_of(&dir, a.config.as_deref(), false)?.spec;
    let catalog = Catalog::build(&spec);
    let topology = Topology::build(&spec, &catalog);
    let inventory = Inventory::load(&dir, &catalog);
    let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
    if let Some(endpoint) = &a.endpoint {
        let name = a.credential.as_deref().ok_or_else(|| {
            Error::Invalid("--endpoint needs a credential: --as NAME, --kubeconfig FILE, or --cacert FILE".into())
        })?;
        let credential = Credential::from_catalog(name, &catalog, &topology, &inventory)?;
        return endpoint_result(a.output, &probe_endpoint(endpoint, &credential, at)?);
    }
    let wiring = match &a.wiring {
        None => Sources::Tree,
        Some(given) => {
            // Absolute, so that findings and fixes name the files wherever verify runs.
            let abs = given.canonicalize().map_err(|e| Error::io(given, "read", e))?;
            let sources = Sources::Dir(abs, a.wiring_node.clone());
            // A directory with nothing to audit, or a node that is not the cluster's: refused.
            kubepki::audit::wiring::check_sources(&spec, &catalog, &topology, &dir, &sources)?;
            sources
        }
    };
    super::known_nodes(&spec, &a.node)?;
    let filter = Filter { nodes: a.node.clone(), statuses: a.status.clone() };
    let report =
        verify(&spec, &catalog, &topology, &inventory, &VerifyOptions { at, warn_within: a.warn_within, wiring });
    let report = report.filtered(&filter, &topology);
    let shown = |t: String| match filter.is_empty() {
        true => t,
        false => format!("{t}(only what --node {} --status {} selects)\n", a.node.join(","), {
            let s: Vec<&str> = a.status.iter().map(|s| s.word()).collect();
            if s.is_empty() {
                "any".to_string()
            } else {
                s.join(",")
            }
        }),
    };
    if !a.live {
        emit(a.output, || shown(text(&report, a.all)), &report)?;
        let half = super::say_if_half_written(&dir, a.output == Format::Table)?;
        return Ok(if report.has_problems() || half { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    let mut live = kubepki::audit::handshake::live(&topology, &inventory, &report, at);
    let listed: std::collections::HashSet<&str> = report.links.iter().map(|l| l.id.as_str()).collect();
    live.retain(|l| listed.contains(l.link.as_str()));
    let failed = live.iter().any(|l| l.ok == Some(false));
    let both = Both { report: &report, live: &live };
    emit(a.output, || format!("{}\n{}", shown(text(&report, a.all)), live_text(&live)), &both)?;
    let half = super::say_if_half_written(&dir, a.output == Format::Table)?;
    Ok(if report.has_problems() || failed || half { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Both<'a> {
    #[serde(flatten)]
    report: &'a Report,
    live: &'a [kubepki::audit::handshake::LiveResult],
}

/// `verify --endpoint` with a credential from outside the tree: a kubeconfig or files.
fn probe(a: VerifyArgs) -> Result<ExitCode> {
    let credential = match (&a.kubeconfig, &a.cacert) {
        (Some(k), _) => Credential::from_kubeconfig(k, a.context.as_deref())?,
        (None, Some(ca)) => Credential::from_files(a.cert.as_deref(), a.key.as_deref(), ca)?,
        (None, None) => unreachable!("probe is called with one of them"),
    };
    let endpoint = a
        .endpoint
        .clone()
        .or_else(|| credential.server.clone())
        .ok_or_else(|| Error::Invalid("--endpoint: give the server to probe (https://HOST:PORT)".into()))?;
    let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
    endpoint_result(a.output, &probe_endpoint(&endpoint, &credential, at)?)
}

fn endpoint_result(output: Format, r: &EndpointReport) -> Result<ExitCode> {
    emit(output, || endpoint_text(r), r)?;
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
