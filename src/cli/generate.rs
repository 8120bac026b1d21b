//! `plan` and `init`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use super::progress::Bar;
use super::{emit, ClusterArgs, Format};
use kubepki::{
    model::catalog::Catalog, model::topology::Topology, operations::init::InitOptions, operations::init::Progress,
    operations::init::Silent, report::Plan, Result,
};

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// List every entry and link even for a large cluster (above 50 nodes, the rows of the
    /// workers are folded into one per kind; JSON always lists everything).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The tree to write (kubeadm's /etc/kubernetes at the top, nodes/<name>/ for each node).
    #[arg(long, default_value = "kubernetes")]
    dir: PathBuf,
    /// Replace leaves, key pairs and kubeconfigs that exist but are wrong (the old ones are
    /// backed up). Never a CA: see --replace-ca.
    #[arg(long)]
    force: bool,
    /// Make this CA anew (ca, etcd-ca, front-proxy-ca), and everything it signs; repeatable.
    /// Every node must then receive the new trust (on a running cluster, prefer rotate-ca).
    #[arg(long = "replace-ca", value_name = "NAME")]
    replace_ca: Vec<String>,
    /// Make the given --config the tree's description, replacing the one it records.
    #[arg(long)]
    update_description: bool,
    /// No progress bar (it is drawn only on a terminal, and only for runs long enough to need one).
    #[arg(short, long)]
    quiet: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub(crate) fn plan(a: PlanArgs) -> Result<ExitCode> {
    let spec = a.cluster.load()?;
    let catalog = Catalog::build(&spec);
    let topology = Topology::build(&spec, &catalog);
    let plan = Plan::new(&spec, &catalog, &topology);
    emit(a.output, || plan.text_with(a.all), &plan)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn init(a: InitArgs) -> Result<ExitCode> {
    // A description that does not hold is refused before anything is made; then the lock,
    // before the tree's own description is read (another init may be making the tree).
    a.cluster.load()?;
    let _run = kubepki::disk::run::Run::begin_init(&a.dir)?;
    let recorded = a.dir.join(kubepki::model::infer::RECORDED).is_file();
    let described = a.cluster.described(&a.dir, a.update_description)?;
    let description_changed = recorded && described.source == kubepki::model::infer::Source::Given;
    let spec = described.spec;
    let catalog = Catalog::build(&spec);
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(Bar::new);
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &Silent,
    };
    let opts = InitOptions { force: a.force, replace_ca: a.replace_ca, command: None, description_changed };
    let report = kubepki::operations::init::init_with_progress(
        &spec,
        &catalog,
        &a.dir,
        &opts,
        time::OffsetDateTime::now_utc(),
        progress,
    )?;
    emit(a.output, || kubepki::report::init_text(&report), &report)?;
    Ok(ExitCode::SUCCESS)
}
