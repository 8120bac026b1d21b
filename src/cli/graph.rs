//! `graph`: the picture of who talks to whom, as SVG, DOT or Mermaid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;

use super::{print, ClusterArgs};
use kubepki::{
    audit::verify::LinkStatus, disk::store::Mode, graph::render as render_graph, graph::render_report,
    graph::GraphFormat, model::catalog::Catalog, model::topology::Topology, Result,
};

#[derive(Debug, clap::Args)]
pub(crate) struct GraphArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The tree whose links to colour by status (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Svg)]
    output: Output,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The form of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// A self-contained SVG image.
    Svg,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

pub(crate) fn run(a: GraphArgs) -> Result<ExitCode> {
    let explicit = a.dir.is_some();
    let dir = super::verify::default_dir(a.dir);
    let tree = dir.is_dir();
    if explicit && !tree {
        return Err(kubepki::Error::bad_file(&dir, "no such directory"));
    }
    // The cluster: the description if given, else the tree's, else the built-in default.
    let spec = if tree { a.cluster.of_tree(&dir, false)? } else { a.cluster.load()? };
    let catalog = Catalog::build(&spec);
    let topology = Topology::build(&spec, &catalog);
    let format = match a.output {
        Output::Svg => GraphFormat::Svg,
        Output::Dot => GraphFormat::Dot,
        Output::Mermaid => GraphFormat::Mermaid,
    };
    let picture = if tree {
        render_report(&topology, &report(&spec, &catalog, &topology, &dir), format)
    } else {
        render_graph(&topology, &unknown(&topology), format)
    };
    match &a.out {
        Some(path) => kubepki::disk::store::write_atomic(path, picture.as_bytes(), Mode::Public)?,
        None => print(&picture)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A static verify of the tree now: each link's status and the findings behind it.
fn report(
    spec: &kubepki::model::spec::ClusterSpec,
    catalog: &Catalog,
    topology: &Topology,
    dir: &Path,
) -> kubepki::audit::verify::Report {
    let inventory = kubepki::disk::inventory::Inventory::load(dir, catalog);
    let now = time::OffsetDateTime::now_utc();
    kubepki::audit::verify::verify(spec, catalog, topology, &inventory, &kubepki::audit::verify::VerifyOptions::at(now))
}

/// No tree: every link is drawn, none judged.
fn unknown(topology: &Topology) -> BTreeMap<String, LinkStatus> {
    topology.links.iter().map(|l| (l.id.clone(), LinkStatus::Unknown)).collect()
}
