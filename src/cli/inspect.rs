//! `inspect`: what certificates, CSRs, keys and kubeconfigs say, for people (text) or
//! programs (JSON). Never a byte of key material.

use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::{emit, Format};
use kubepki::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// Files: certificates (PEM, chains, DER), CSRs, private keys, kubeconfigs; recognised by content.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The instant to judge validity at (RFC 3339, or YYYY-MM-DD) [default: now].
    #[arg(long, value_parser = super::verify::parse_instant)]
    at: Option<OffsetDateTime>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub(crate) fn run(a: InspectArgs) -> Result<ExitCode> {
    let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
    let reports = a.files.iter().map(|f| kubepki::audit::inspect::inspect(f, at)).collect::<Result<Vec<_>>>()?;
    emit(a.output, || reports.iter().map(kubepki::report::inspect::text).collect::<Vec<_>>().join("\n"), &reports)?;
    Ok(ExitCode::SUCCESS)
}
