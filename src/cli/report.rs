//! `report`: the whole PKI of a tree on one self-contained HTML page (graph, findings, expiry
//! timeline, rotation state, catalog), written atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::print;
use kubepki::audit::check::{check, expected_in, CheckOptions};
use kubepki::audit::verify::{verify, VerifyOptions};
use kubepki::model::topology::Topology;
use kubepki::operations::lifecycle::Tree;
use kubepki::report::html::{render, Counts, Page};
use kubepki::{disk::store::write_atomic, disk::store::Mode, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The cluster description; without it the cluster is inferred from the tree.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Judge validity at this instant (RFC 3339, or a date YYYY-MM-DD) instead of now.
    #[arg(long, value_parser = super::verify::parse_instant)]
    at: Option<OffsetDateTime>,
    /// Warn about certificates expiring within this (e.g. 30d, 720h).
    #[arg(long, default_value = "30d", value_parser = kubepki::model::spec::duration_text::parse)]
    warn_within: time::Duration,
    /// The HTML file to write (atomically), or `-` for standard output.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(a: ReportArgs) -> Result<ExitCode> {
    let dir = super::verify::default_dir(a.dir);
    let spec = super::verify::cluster_of(&dir, a.config.as_deref(), false)?.spec;
    let tree = Tree::load(&dir, Some(spec))?;
    let topology = Topology::build(&tree.spec, &tree.catalog);
    let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
    let report = verify(
        &tree.spec,
        &tree.catalog,
        &topology,
        tree.inventory(),
        &VerifyOptions { at, warn_within: a.warn_within, wiring: Default::default() },
    );
    let expiry = check(&dir, &CheckOptions { at, warn_within: a.warn_within, expected: expected_in(&dir) })?;
    let rotation = kubepki::operations::rotate::status(&tree)?;
    let page = render(&Page {
        topology: &topology,
        catalog: &tree.catalog,
        verify: &report,
        check: &expiry,
        rotation: &rotation,
        version: env!("CARGO_PKG_VERSION"),
    });
    let counts = Counts::of(&report).text();
    if a.out.as_os_str() == "-" {
        print(&page)?;
        eprintln!("kubepki: report of {}: {counts}", dir.display());
    } else {
        write_atomic(&a.out, page.as_bytes(), Mode::Public)?;
        eprintln!(
            "kubepki: wrote {} ({} KB), report of {}: {counts}",
            a.out.display(),
            page.len() / 1024,
            dir.display()
        );
    }
    super::say_if_half_written(&dir, false)?;
    Ok(ExitCode::SUCCESS)
}
