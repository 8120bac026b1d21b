//! `check`: expiry of every certificate of a tree, as tables like kubeadm's
//! `certs check-expiration` (plus a STATUS column and what kubeadm does not list), or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::{json, print};
use kubepki::{audit::check::check, audit::check::CheckOptions, audit::check::CheckStatus, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The tree: a kubepki tree or kubeadm's /etc/kubernetes [default: ./kubernetes if it
    /// exists, else /etc/kubernetes].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Flag certificates that expire within this (30d, 720h, or 0 for no warning).
    #[arg(long, default_value = "30d", value_parser = parse_window)]
    warn_within: time::Duration,
    /// The instant to check at (RFC 3339, or YYYY-MM-DD for midnight UTC) [default: now].
    #[arg(long, value_parser = super::verify::parse_instant)]
    at: Option<OffsetDateTime>,
    /// Output format: table, json, or prometheus (x509-certificate-exporter's metrics, for
    /// node_exporter's textfile collector; exit 0 whenever they are written).
    #[arg(short, long, value_enum, default_value_t = CheckFormat::Table)]
    output: CheckFormat,
    /// List every row: node bundles' copies of the files at the top of the tree (named once
    /// by default), and every node's files above 50 nodes (folded per kind by default).
    #[arg(long)]
    all: bool,
    /// Write the output to this file (atomically: a textfile collector never reads half of it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the files of this node's bundle, `nodes/<node>/` (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// Only the rows in this state: ok, expiring, expired, not-yet-valid, missing, unreadable,
    /// unchecked (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    status: Vec<CheckStatus>,
}

/// `check`'s output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    /// Aligned text for people.
    Table,
    /// JSON for programs.
    Json,
    /// The Prometheus text format.
    Prometheus,
}

pub(crate) fn run(a: CheckArgs) -> Result<ExitCode> {
    let dir = super::verify::default_dir(a.dir.clone());
    // A tree too half-written to be read at all (a first init killed early) is said to be so.
    let interrupted = kubepki::disk::run::interrupted(&dir);
    let result = report(&a, &dir);
    if let (Err(_), Some(half)) = (&result, interrupted) {
        eprintln!("kubepki: {}: {half}", dir.display());
    }
    result
}

fn report(a: &CheckArgs, dir: &std::path::Path) -> Result<ExitCode> {
    let dir = dir.to_path_buf();
    let opts = CheckOptions {
        at: a.at.unwrap_or_else(OffsetDateTime::now_utc),
        warn_within: a.warn_within,
        expected: kubepki::audit::check::expected_in(&dir),
    };
    for n in &a.node {
        let bundle = dir.join(kubepki::model::vocabulary::layout::NODES).join(n);
        if !bundle.is_dir() {
            return Err(kubepki::Error::bad_file(&bundle, format!("--node {n}: no such node bundle in this tree")));
        }
    }
    let report = check(&dir, &opts)?.filtered(&a.node, &a.status);
    let output = match a.output {
        CheckFormat::Table => kubepki::report::check::text(&report, a.all),
        CheckFormat::Json => json(&report)?,
        CheckFormat::Prometheus => kubepki::audit::check::prometheus(&report),
    };
    match &a.out {
        Some(path) => kubepki::disk::store::write_atomic(path, output.as_bytes(), kubepki::disk::store::Mode::Public)?,
        None => print(&output)?,
    }
    // The metrics carry the verdict: a collector's cron job must not lose them to exit 1.
    if a.output == CheckFormat::Prometheus {
        return Ok(ExitCode::SUCCESS);
    }
    let half = super::say_if_half_written(&dir, a.output == CheckFormat::Table && a.out.is_none())?;
    Ok(if report.clean() && !half { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn parse_status(s: &str) -> std::result::Result<CheckStatus, String> {
    let word = |c: &CheckStatus| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string));
    let all = CheckStatus::ALL;
    all.iter().find(|c| word(c).as_deref() == Some(s)).copied().ok_or_else(|| {
        format!("'{s}' is not a state; states are: {}", all.iter().filter_map(word).collect::<Vec<_>>().join(", "))
    })
}

/// `--warn-within`: a duration of at least an hour, or `0` for none.
fn parse_window(s: &str) -> std::result::Result<time::Duration, String> {
    if s.trim().chars().all(|c| c == '0') && !s.trim().is_empty() {
        return Ok(time::Duration::ZERO);
    }
    kubepki::model::spec::duration_text::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_windows_parse() {
        assert_eq!(parse_window("0").unwrap(), time::Duration::ZERO);
        assert_eq!(parse_window("30d").unwrap(), time::Duration::days(30));
        assert_eq!(parse_window("720h").unwrap(), time::Duration::days(30));
        assert!(parse_window("10m").is_err());
        assert!(parse_window("").is_err());
    }
}
