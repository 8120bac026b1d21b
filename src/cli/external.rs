//! `csr`, `sign` and `import`: an outside CA signs what kubepki describes.

use kubepki::report::external::{csr_text, import_text, sign_text};
use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::verify::default_dir;
use super::{emit, ClusterArgs, Format};
use kubepki::{model::catalog::Catalog, model::spec::ClusterSpec, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct CsrArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Replace existing keys and CSRs (the old ones are backed up).
    #[arg(long)]
    force: bool,
    /// Only the leaves and kubeconfigs this CA signs (repeatable): ca, etcd-ca, front-proxy-ca.
    #[arg(long = "ca", value_name = "CA")]
    cas: Vec<String>,
    /// Write the keys and CSRs into this directory (at the tree's paths) instead of the tree: the
    /// keys in use stay in place until `import --from` puts each new key in with its certificate
    /// (renewing on a running cluster, kubeadm's `certs renew --csr-only --csr-dir`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The CA that signs: ca, etcd-ca or front-proxy-ca (the catalog's issuer of each CSR's entry).
    #[arg(long)]
    ca: String,
    /// The tree holding the CA and the CSRs (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The cluster description (default: the built-in default cluster).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Replace a certificate already beside a CSR.
    #[arg(long)]
    force: bool,
    /// CSRs made by `kubepki csr` (pki/apiserver.csr, admin.conf.csr, ...), in the tree.
    #[arg(required = true)]
    csrs: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A directory holding the returned certificates at the tree's paths (default: the tree
    /// itself); a key there (made by `csr --out`) is put in with its certificate.
    #[arg(long)]
    from: Option<PathBuf>,
    /// The cluster description (default: the built-in default cluster).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// The description for the outside-CA flow, by the library's one policy: the one `csr`
/// recorded in the tree, else the one given, else (a tree in the middle of the flow cannot be
/// read back) the built-in default.
fn spec_of(config: Option<&std::path::Path>, dir: &std::path::Path) -> Result<ClusterSpec> {
    let given = config.map(ClusterSpec::load).transpose()?;
    let how = kubepki::model::infer::Resolve { update: false, new_tree: true };
    Ok(kubepki::model::infer::resolve(dir, given, how)?.spec)
}

pub(crate) fn csr(a: CsrArgs) -> Result<ExitCode> {
    let dir = default_dir(a.dir);
    a.cluster.load()?; // a description that does not hold makes nothing, not even the folder
    let run = kubepki::disk::run::Run::begin_new(&dir, "csr")?;
    if let Some(code) = super::done_by_recovery(Some(&run))? {
        return Ok(code);
    }
    let spec = a.cluster.of_tree(&dir, false)?;
    let catalog = Catalog::build(&spec);
    let opts = kubepki::operations::external::CsrOptions { force: a.force, out: a.out, cas: a.cas };
    let report = kubepki::operations::external::generate_csrs(&spec, &catalog, &dir, &opts, OffsetDateTime::now_utc())?;
    kubepki::model::infer::record(&dir, &spec)?;
    emit(a.output, || csr_text(&report), &report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn sign(a: SignArgs) -> Result<ExitCode> {
    let dir = default_dir(a.dir);
    let run = kubepki::disk::run::Run::begin(&dir, "sign")?;
    if let Some(code) = super::done_by_recovery(Some(&run))? {
        return Ok(code);
    }
    let spec = spec_of(a.config.as_deref(), &dir)?;
    let catalog = Catalog::build(&spec);
    let report =
        kubepki::operations::external::sign_csrs(&catalog, &dir, &a.ca, &a.csrs, a.force, OffsetDateTime::now_utc())?;
    emit(a.output, || sign_text(&report), &report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(a: ImportArgs) -> Result<ExitCode> {
    let dir = default_dir(a.dir);
    let run = kubepki::disk::run::Run::begin(&dir, "import")?;
    if let Some(code) = super::done_by_recovery(Some(&run))? {
        return Ok(code);
    }
    let spec = spec_of(a.config.as_deref(), &dir)?;
    let catalog = Catalog::build(&spec);
    let report = kubepki::operations::external::import_certs(
        &spec,
        &catalog,
        &dir,
        a.from.as_deref(),
        OffsetDateTime::now_utc(),
    )?;
    emit(a.output, || import_text(&report), &report)?;
    Ok(if report.verify.has_problems() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
