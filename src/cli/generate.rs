//! `plan` and `init`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{emit, ClusterArgs, Format};
use crate::{Catalog, InitOptions, Plan, Result, Topology};

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The tree to write (kubeadm's /etc/kubernetes at the top, nodes/<name>/ for each node).
    #[arg(long, default_value = "kubernetes")]
    dir: PathBuf,
    /// Replace files that exist but are wrong, CAs included (the old ones are backed up).
    #[arg(long)]
    force: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub(crate) fn plan(a: PlanArgs) -> Result<ExitCode> {
    let spec = a.cluster.load()?;
    let catalog = Catalog::build(&spec);
    let topology = Topology::build(&spec, &catalog);
    let plan = Plan { cluster: &spec, catalog: &catalog, topology: &topology };
    emit(a.output, || plan.text(), &plan)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn init(a: InitArgs) -> Result<ExitCode> {
    let spec = a.cluster.load()?;
    let catalog = Catalog::build(&spec);
    let report =
        crate::init(&spec, &catalog, &a.dir, &InitOptions { force: a.force }, time::OffsetDateTime::now_utc())?;
    emit(a.output, || crate::render::init_text(&report), &report)?;
    Ok(ExitCode::SUCCESS)
}
