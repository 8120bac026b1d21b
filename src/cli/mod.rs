//! The command line: arguments as typed, resolved into a plan, run, and mapped to an exit
//! code (0 done or clean, 1 findings, 2 could not run). Broken pipes end quietly.
//! One file per command; this one parses and dispatches.

mod approve;
mod backup;
mod check;
mod explain;
mod external;
mod generate;
mod graph;
mod inspect;
mod lifecycle;
mod progress;
mod report;
mod tools;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use kubepki::model::infer::{resolve, Resolve};
use kubepki::{model::spec::ClusterSpec, model::spec::KeyAlgorithm, Error, Result};

/// kubepki: every CA, certificate, key and kubeconfig of a Kubernetes cluster, and who
/// talks to whom with them.
#[derive(Debug, Parser)]
#[command(name = "kubepki", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what would be created (every file, identity, issuer, SANs) and every link, without writing.
    Plan(generate::PlanArgs),
    /// Generate every CA, key, certificate and kubeconfig (kubeadm's layout, plus a directory per node).
    Init(generate::InitArgs),
    /// Check every link of the cluster in both directions: chains, usages, SANs, validity, keys, modes.
    Verify(verify::VerifyArgs),
    /// Renew leaf certificates and kubeconfigs (every kubelet.conf too), keeping identity, SANs and usages.
    Renew(lifecycle::RenewArgs),
    /// Add or remove SANs on a certificate, reissued by the same CA.
    #[command(subcommand)]
    San(lifecycle::SanCommand),
    /// Add or retire a node.
    #[command(subcommand)]
    Node(lifecycle::NodeCommand),
    /// Rotate a CA (ca, etcd-ca, front-proxy-ca) or the service-account key in phases: start, reissue, finish; or status.
    RotateCa(lifecycle::RotateArgs),
    /// Show what certificates, CSRs, private keys and kubeconfigs say (recognised by content).
    Inspect(inspect::InspectArgs),
    /// Expiry of every certificate of a tree, soonest first, like `kubeadm certs check-expiration`.
    Check(check::CheckArgs),
    /// Draw who talks to whom: components, and one arrow per link coloured by status (SVG, DOT, Mermaid).
    Graph(graph::GraphArgs),
    /// Write the whole PKI on one self-contained HTML page: graph, findings, expiry timeline, rotation, catalog.
    Report(report::ReportArgs),
    /// Write a key and a CSR for every leaf and kubeconfig, for an outside CA (as `kubeadm certs generate-csr`).
    Csr(external::CsrArgs),
    /// Sign CSRs made for catalog entries with a CA of the tree: the catalog's profile, never a CA bit.
    Sign(external::SignArgs),
    /// Check certificates an outside CA returned against the catalog, then place them and verify.
    Import(external::ImportArgs),
    /// List the tree's backups (one per run that changed it), put the tree back as it was before one, or delete the oldest.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Decide Kubernetes CertificateSigningRequest objects by their signer's rules and policies; sign approved ones.
    Approve(approve::ApproveArgs),
    /// Explain TLS error texts (kubectl, etcd, openssl, curl, Python) in plain words; with --dir, the link, file and fix.
    Explain(explain::ExplainArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) for kubepki.
    Completions(tools::CompletionsArgs),
    /// Print kubepki's man page, or write one per command into a directory (--out).
    Man(tools::ManArgs),
    /// Print the version, the git commit it was built from, and the crypto backend.
    Version(tools::VersionArgs),
}

/// Where the cluster description comes from.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// The cluster description (kubepki YAML, or kubeadm's InitConfiguration/ClusterConfiguration).
    /// Without it: the built-in default cluster (controlplane 127.0.0.1, node01 127.0.0.2, node02 127.0.0.3).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Key algorithm, overriding the description: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.
    #[arg(long, value_parser = parse_algorithm)]
    pub key_algorithm: Option<KeyAlgorithm>,
}

fn parse_algorithm(s: &str) -> std::result::Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(s)
}

/// Output format of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned text for people.
    Table,
    /// JSON for programs.
    Json,
}

impl ClusterArgs {
    /// The description without a tree: the given one, else the built-in default.
    pub(crate) fn load(&self) -> Result<ClusterSpec> {
        let mut spec = match &self.config {
            Some(path) => ClusterSpec::load(path)?,
            None => ClusterSpec::builtin_default(),
        };
        if let Some(a) = self.key_algorithm {
            spec.key_algorithm = a;
        }
        Ok(spec)
    }

    /// The description of the tree at `dir` (which may not exist yet), by the library's one
    /// policy ([`kubepki::model::infer::resolve`]): the recorded one is the truth.
    pub(crate) fn of_tree(&self, dir: &Path, update: bool) -> Result<ClusterSpec> {
        Ok(self.described(dir, update)?.spec)
    }

    /// [`Self::of_tree`], and where the description came from: `Given` on a tree that
    /// records one means the given one replaces it (`--update-description`).
    pub(crate) fn described(&self, dir: &Path, update: bool) -> Result<kubepki::model::infer::Described> {
        let how = Resolve { update, new_tree: true };
        let given = self.config.as_deref().map(ClusterSpec::load).transpose()?;
        let mut described = resolve(dir, given, how)?;
        if let Some(a) = self.key_algorithm.filter(|a| *a != described.spec.key_algorithm) {
            // Another algorithm is another description: the same policy decides.
            let mut spec = described.spec;
            spec.key_algorithm = a;
            described = resolve(dir, Some(spec), how)?;
        }
        Ok(described)
    }
}

/// Refuse node names the cluster does not have (`--node`), naming some it has.
pub(crate) fn known_nodes(spec: &ClusterSpec, asked: &[String]) -> Result<()> {
    for n in asked {
        if !spec.nodes.iter().any(|node| node.name == *n) {
            let some: Vec<&str> = spec.nodes.iter().take(8).map(|node| node.name.as_str()).collect();
            let more = spec.nodes.len().saturating_sub(some.len());
            return Err(Error::Invalid(format!(
                "--node {n}: no such node in this cluster; its nodes are {}{}",
                some.join(", "),
                if more > 0 { format!(" and {more} more (kubepki plan lists them)") } else { String::new() }
            )));
        }
    }
    Ok(())
}

/// Parse the process arguments, run, and return the exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return parse_error(&e),
    };
    match run(args) {
        Ok(code) => code,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubepki: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the argument parser says (help and version on stdout, exit 0; an error on stderr,
/// exit 2), an error through the filter every message passes: an argument it quotes may be a
/// private key (`kubepki explain "$(cat pki/ca.key)"` to a command that takes no such text).
fn parse_error(e: &clap::Error) -> ExitCode {
    let code = ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    if !e.use_stderr() {
        let _ = e.print();
        return code;
    }
    let _ = std::io::stderr().write_all(kubepki::safe_text(&e.render().to_string()).as_bytes());
    code
}

/// Run parsed arguments.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Plan(a) => generate::plan(a),
        Command::Init(a) => generate::init(a),
        Command::Verify(a) => verify::run(a),
        Command::Renew(a) => lifecycle::renew(a),
        Command::San(c) => lifecycle::san(c),
        Command::Node(c) => lifecycle::node(c),
        Command::RotateCa(a) => lifecycle::rotate(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Check(a) => check::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Report(a) => report::run(a),
        Command::Csr(a) => external::csr(a),
        Command::Sign(a) => external::sign(a),
        Command::Import(a) => external::import(a),
        Command::Approve(a) => approve::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Completions(a) => tools::completions(a),
        Command::Man(a) => tools::man(a),
        Command::Version(a) => tools::version(a),
        Command::Backup(c) => backup::run(c),
    }
}

/// Say so (on stderr, and with `table` at the end of the table) when the tree is half-written:
/// a run was killed, or one is changing it now (see [`kubepki::disk::run::interrupted`]).
/// Returns whether it is.
/// A rotation state that cannot be read is said so too: nobody knows where that rotation stands.
pub(crate) fn say_if_half_written(dir: &Path, table: bool) -> Result<bool> {
    // (on stderr, and in the table's last lines)
    let mut problems = Vec::new();
    if let Some(half) = kubepki::disk::run::interrupted(dir) {
        problems.push((format!("{}: {half}", dir.display()), half.to_string()));
    }
    if let Err(e) = kubepki::operations::rotate::check_states(dir) {
        problems.push((e.to_string(), e.to_string()));
    }
    for (said, shown) in &problems {
        eprintln!("kubepki: {said}");
        if table {
            print(&format!("\nNOT CLEAN: {shown}\n"))?;
        }
    }
    Ok(!problems.is_empty())
}

/// When this run began by completing a killed run of the very same command (its journal
/// replayed), the command is done: say so and return the exit code; else `None`.
pub(crate) fn done_by_recovery(run: Option<&kubepki::disk::run::Run>) -> Result<Option<ExitCode>> {
    match run {
        Some(r) if r.completed() => {
            print(&format!(
                "completed the interrupted run of this command ({}): its changes are in place, nothing more to do\n",
                r.interrupted().unwrap_or_default()
            ))?;
            Ok(Some(ExitCode::SUCCESS))
        }
        _ => Ok(None),
    }
}

/// Print a report as a table (text) or JSON.
pub(crate) fn emit(format: Format, text: impl FnOnce() -> String, value: &impl serde::Serialize) -> Result<()> {
    match format {
        // A table quotes what files say (a certificate's CN): shown, never obeyed.
        Format::Table => print(&kubepki::report::escape_controls(&text())),
        Format::Json => print(&json(value)?),
    }
}

pub(crate) fn json(value: &impl serde::Serialize) -> Result<String> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| Error::Invalid(format!("encoding JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| Error::io(Path::new("<stdout>"), "write", e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_show_control_characters_escaped() {
        let cn = "kube-api\u{7f}server\u{1b}[2J\u{9b}31m";
        let shown = kubepki::report::escape_controls(&format!("subject  CN={cn}\nnext line\ttab\n"));
        assert_eq!(shown, "subject  CN=kube-api\\u{7f}server\\u{1b}[2J\\u{9b}31m\nnext line\\ttab\n");
    }
}
