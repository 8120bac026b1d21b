//! `check`: expiry of every certificate of a tree, as a table like kubeadm's
//! `certs check-expiration` (plus a STATUS column), or JSON.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::{json, print};
use kubepki::report::table;
use kubepki::{
    audit::check::check, audit::check::CheckOptions, audit::check::CheckReport, audit::check::CheckStatus, Result,
};

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
    /// Write the output to this file (atomically: a textfile collector never reads half of it).
    #[arg(long)]
    out: Option<PathBuf>,
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
    let report = check(&dir, &opts)?;
    let output = match a.output {
        CheckFormat::Table => text(&report),
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

/// `--warn-within`: a duration of at least an hour, or `0` for none.
fn parse_window(s: &str) -> std::result::Result<time::Duration, String> {
    if s.trim().chars().all(|c| c == '0') && !s.trim().is_empty() {
        return Ok(time::Duration::ZERO);
    }
    kubepki::model::spec::duration_text::parse(s)
}

fn text(r: &CheckReport) -> String {
    let when = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let rows: Vec<Vec<String>> = r
        .entries
        .iter()
        .map(|e| {
            let name = if e.status == CheckStatus::Missing { format!("!MISSING! {}", e.name) } else { e.name.clone() };
            let expires = e.expires.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&when).ok());
            vec![
                name,
                expires.unwrap_or_default(),
                e.residual.clone().unwrap_or_default(),
                e.authority.clone().unwrap_or_default(),
                if e.externally_managed { "yes" } else { "no" }.to_string(),
                e.status.word().to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED", "STATUS"],
        &rows,
    );
    for e in r.entries.iter().filter(|e| e.problem.is_some() && e.status != CheckStatus::Missing) {
        let _ = writeln!(out, "{}: {}: {}", e.status.word(), e.name, e.problem.as_deref().unwrap_or_default());
    }
    let mut counts = Vec::new();
    for s in [
        CheckStatus::Ok,
        CheckStatus::Expiring,
        CheckStatus::Expired,
        CheckStatus::NotYetValid,
        CheckStatus::Missing,
        CheckStatus::Unreadable,
        CheckStatus::Unchecked,
    ] {
        let n = r.count(s);
        if n > 0 || s == CheckStatus::Ok {
            counts.push(format!("{n} {}", s.word()));
        }
    }
    let at = r.at.to_offset(time::UtcOffset::UTC).format(&when).unwrap_or_default();
    let window = kubepki::model::spec::duration_text::format(r.warn_within);
    let external = r.entries.iter().filter(|e| e.is_ca && e.externally_managed && !e.path.starts_with("nodes")).count();
    if external > 0 {
        let _ = writeln!(
            out,
            "\n{external} CA(s) externally managed (certificate without its key: kubeadm's external-CA mode): their certificates are renewed outside the tree (kubepki csr, then kubepki import)"
        );
    }
    let _ = writeln!(
        out,
        "\n{}: {} entries at {at} (warning within {window}): {}",
        r.dir.display(),
        r.entries.len(),
        counts.join(", ")
    );
    out
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
