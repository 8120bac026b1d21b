//! `renew`, `san`, `node`, `rotate-ca`: change a tree, showing the change first.

use kubepki::report::lifecycle::changes_text;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use time::OffsetDateTime;

use super::verify::{cluster_of, default_dir};
use super::{emit, Format};
use kubepki::model::infer::Source;
use kubepki::{
    audit::verify::Report, disk::run::Run, model::spec::Role, operations::lifecycle::Applied,
    operations::lifecycle::Plan as ChangePlan, operations::lifecycle::Tree, Result,
};

/// Where the tree is and what it describes.
#[derive(Debug, clap::Args)]
pub(crate) struct TreeArgs {
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The cluster description; without it the cluster is inferred from the tree.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Make the given --config the tree's description, replacing the one it records.
    #[arg(long)]
    update_description: bool,
    /// Show what would change (identities, SANs, issuers, validity) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then verify the whole tree as `kubepki verify` does (exit 1 if it finds problems).
    #[arg(long, conflicts_with = "dry_run")]
    verify: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

impl TreeArgs {
    /// The tree, for a command that changes it: the lock taken and what a killed run left
    /// recovered first (see [`kubepki::disk::run::Run`]); a dry run only reads, and takes no lock.
    fn begin(&self, command: &str) -> Result<(Option<Run>, Tree)> {
        let dir = default_dir(self.dir.clone());
        let run = if self.dry_run {
            // Nothing taken, but a tree whose rotation state cannot be read is refused alike.
            kubepki::operations::rotate::check_states(&dir)?;
            None
        } else {
            Some(Run::begin(&dir, command)?)
        };
        Ok((run, self.tree()?))
    }

    /// The verify of the whole tree after a change, when `--verify` asks for it (read again,
    /// as the tree now describes itself).
    fn verified(&self, now: OffsetDateTime) -> Result<Option<Report>> {
        if !self.verify {
            return Ok(None);
        }
        // As the tree records itself now (a node just added is in it, not in a --config).
        let (tree, _) = described_tree(&default_dir(self.dir.clone()), None, false)?;
        Ok(Some(tree.verify(now)))
    }

    /// The end of a change's text: the verify asked for, else how to have one.
    fn verify_text(&self, report: Option<&Report>) -> String {
        match report {
            Some(r) => kubepki::report::verify::text(r, false),
            None => format!(
                "the whole tree is not verified again here: kubepki verify --dir {} (or --verify with this command)\n",
                default_dir(self.dir.clone()).display()
            ),
        }
    }

    /// The tree as described (a description given with `--config` is recorded by
    /// [`TreeArgs::record_given`], once the command has found its change valid).
    fn tree(&self) -> Result<Tree> {
        let dir = default_dir(self.dir.clone());
        Ok(described_tree(&dir, self.config.as_deref(), self.update_description)?.0)
    }

    /// Record the description given with `--config` in the tree: called by a command that
    /// changes the tree once its change is known to be valid, before it writes it (a command
    /// refused writes no description either).
    fn record_given(&self, tree: &Tree) -> Result<()> {
        if self.config.is_some() && !self.dry_run {
            kubepki::model::infer::record(&tree.root, &tree.spec)?;
        }
        Ok(())
    }
}

/// The tree at `dir` as described (`config`, else what it records), with where the description
/// came from; a cluster inferred from the tree is inferred again after every change (as the tree
/// then says).
fn described_tree(dir: &Path, config: Option<&Path>, update: bool) -> Result<(Tree, Source)> {
    let described = cluster_of(dir, config, update)?;
    let spec = (described.source != Source::Inferred).then_some(described.spec);
    Ok((Tree::load(dir, spec)?, described.source))
}

#[derive(Debug, clap::Args)]
pub(crate) struct RenewArgs {
    /// Certificates or kubeconfigs to renew: ids (apiserver@cp1) or kubeadm names (apiserver, admin.conf, kubelet.conf).
    names: Vec<String>,
    /// Renew every leaf certificate and kubeconfig (CAs are rotated, not renewed).
    #[arg(long)]
    all: bool,
    /// Keep each certificate's key instead of making a new one.
    #[arg(long)]
    reuse_key: bool,
    /// Only the certificates of this node, of those named (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// Only the certificates in this state, of those named, as check says it: expired,
    /// expiring, not-yet-valid, ok, ... (`--all --status expired,expiring`: what is due).
    #[arg(long, value_delimiter = ',', value_parser = super::check::parse_status)]
    status: Vec<kubepki::audit::check::CheckStatus>,
    /// With --status: what expires within this is `expiring`.
    #[arg(long, default_value = "30d", value_parser = kubepki::model::spec::duration_text::parse)]
    warn_within: time::Duration,
    #[command(flatten)]
    tree: TreeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SanCommand {
    /// Add SANs to a certificate (e.g. a load balancer's name to the apiserver), reissued by the same CA.
    Add(SanArgs),
    /// Remove SANs from a certificate.
    Remove(SanArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct SanArgs {
    /// The certificate (apiserver, apiserver@cp2, etcd-server, ...).
    name: String,
    /// IPs or DNS names.
    #[arg(required = true)]
    addresses: Vec<String>,
    /// Remove a SAN even though a link dials it.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    tree: TreeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Issue what a new node needs: kubelet client and serving certificates and kubelet.conf,
    /// and for a control plane its apiserver, etcd and local kubeconfigs.
    Add(NodeAddArgs),
    /// Retire a node: its directory moves to the backup (its certificates stay valid until they expire).
    Remove(NodeRemoveArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NodeAddArgs {
    /// The node name (lowercase RFC 1123).
    name: String,
    /// worker or control-plane.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Its IP addresses (the first is the one others dial).
    #[arg(long = "ip", required = true)]
    ips: Vec<String>,
    /// Extra DNS names.
    #[arg(long = "dns")]
    dns: Vec<String>,
    #[command(flatten)]
    tree: TreeArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct NodeRemoveArgs {
    /// The node.
    name: String,
    #[command(flatten)]
    tree: TreeArgs,
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    match s {
        "worker" => Ok(Role::Worker),
        "control-plane" => Ok(Role::ControlPlane),
        _ => Err(format!("'{s}' is not worker or control-plane")),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// ca, etcd-ca, front-proxy-ca or sa; or `status`.
    ca: String,
    /// start, reissue or finish (omit with `status`).
    phase: Option<kubepki::operations::rotate::Step>,
    #[command(flatten)]
    tree: TreeArgs,
}

pub(crate) fn renew(a: RenewArgs) -> Result<ExitCode> {
    let (run, tree) = a.tree.begin("renew")?;
    if let Some(code) = super::done_by_recovery(run.as_ref())? {
        return Ok(code);
    }
    super::known_nodes(&tree.spec, &a.node)?;
    let now = OffsetDateTime::now_utc();
    let plan = kubepki::operations::lifecycle::plan_renew(
        &tree,
        &a.names,
        a.all,
        &kubepki::operations::lifecycle::RenewOptions {
            reuse_key: a.reuse_key,
            nodes: a.node.clone(),
            statuses: a.status.clone(),
            warn_within: a.warn_within,
        },
        now,
    )?;
    finish(&tree, plan, "renew", &a.tree, now)
}

pub(crate) fn san(c: SanCommand) -> Result<ExitCode> {
    let (add, a) = match c {
        SanCommand::Add(a) => (true, a),
        SanCommand::Remove(a) => (false, a),
    };
    let (run, tree) = a.tree.begin(if add { "san add" } else { "san remove" })?;
    if let Some(code) = super::done_by_recovery(run.as_ref())? {
        return Ok(code);
    }
    let now = OffsetDateTime::now_utc();
    let plan = kubepki::operations::lifecycle::plan_san(&tree, &a.name, add, &a.addresses, a.force, now)?;
    let command = if add { "san add" } else { "san remove" };
    finish(&tree, plan, command, &a.tree, now)
}

fn finish(tree: &Tree, plan: ChangePlan, command: &str, args: &TreeArgs, now: OffsetDateTime) -> Result<ExitCode> {
    if args.dry_run {
        let notes: Vec<serde_json::Value> =
            plan.notes.iter().map(|(entry, note)| serde_json::json!({"entry": entry, "note": note})).collect();
        let json = serde_json::json!({"dryRun": true, "changes": plan.changes, "notes": notes});
        emit(args.output, || changes_text(&plan.changes, &plan.notes, true), &json)?;
        return Ok(ExitCode::SUCCESS);
    }
    args.record_given(tree)?;
    let mut applied = plan.apply(tree, command)?;
    applied.verify = args.verified(now)?;
    report(&applied, args)
}

/// Exit 1 when the verify asked for finds problems.
fn exit_code(verify: Option<&Report>) -> ExitCode {
    if verify.is_some_and(Report::has_problems) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(applied: &Applied, args: &TreeArgs) -> Result<ExitCode> {
    emit(
        args.output,
        || {
            let mut out = changes_text(&applied.changes, &applied.notes, false);
            if let Some(b) = &applied.backup {
                let _ = writeln!(out, "previous files saved in {}", b.display());
            }
            let _ = writeln!(out, "{} copies refreshed in node bundles\n", applied.bundle_files_written);
            out.push_str(&kubepki::operations::rollout::text(&applied.rollout));
            out.push('\n');
            out.push_str(&args.verify_text(applied.verify.as_ref()));
            out
        },
        applied,
    )?;
    Ok(exit_code(applied.verify.as_ref()))
}

pub(crate) fn node(c: NodeCommand) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    match c {
        NodeCommand::Add(a) => {
            let (_run, tree) = a.tree.begin("node add")?;
            let new = kubepki::model::spec::NewNode {
                name: a.name.clone(),
                role: a.role,
                addresses: a.ips,
                dns_names: a.dns,
            };
            // Checked as a node of a description is, before anything is written.
            let spec = kubepki::operations::lifecycle::spec_with_node(&tree, &new)?;
            let entries = kubepki::operations::lifecycle::node_entries(&spec, &a.name);
            if a.tree.dry_run {
                let text =
                    format!("would issue for node {}: {}\n(dry run: nothing written)\n", a.name, entries.join(", "));
                let json = serde_json::json!({"dryRun": true, "node": a.name, "entries": entries});
                emit(a.tree.output, || text.clone(), &json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let catalog = kubepki::model::catalog::Catalog::build(&spec);
            let opts = kubepki::operations::init::InitOptions { command: Some("node add"), ..Default::default() };
            let report = kubepki::operations::init::init(&spec, &catalog, &tree.root, &opts, now)?;
            kubepki::model::infer::record(&tree.root, &spec)?;
            let verify = a.tree.verified(now)?;
            let mut text = kubepki::report::init_text(&report);
            if let Some(c) = &a.tree.config {
                let _ = writeln!(text, "add node {} to {} so that later runs know it", a.name, c.display());
            }
            text.push('\n');
            text.push_str(&a.tree.verify_text(verify.as_ref()));
            emit(a.tree.output, || text.clone(), &report)?;
            Ok(exit_code(verify.as_ref()))
        }
        NodeCommand::Remove(a) => {
            let (run, tree) = a.tree.begin("node remove")?;
            if let Some(code) = super::done_by_recovery(run.as_ref())? {
                return Ok(code);
            }
            if a.tree.dry_run {
                let dir = tree.root.join("nodes").join(&a.name);
                let text = format!("would move {} to the backup\n(dry run: nothing written)\n", dir.display());
                let json = serde_json::json!({"dryRun": true, "node": a.name, "moved": dir});
                emit(a.tree.output, || text.clone(), &json)?;
                return Ok(ExitCode::SUCCESS);
            }
            kubepki::operations::lifecycle::removable_node(&tree, &a.name)?;
            a.tree.record_given(&tree)?;
            let mut r = kubepki::operations::lifecycle::node_remove(&tree, &a.name, now)?;
            r.verify = a.tree.verified(now)?;
            let mut text = match &r.backup {
                Some(b) => format!("node {} retired; its files are saved in {}\n", r.node, b.display()),
                None => format!("node {} retired\n", r.node),
            };
            if !r.still_valid.is_empty() {
                let _ = writeln!(text, "its certificates stay valid until they expire (Kubernetes has no revocation); delete the Node object so RBAC denies system:node:{}:", r.node);
                for v in &r.still_valid {
                    let _ = writeln!(text, "  {}  serial {}  until {}", v.entry, v.serial, v.not_after.date());
                }
            }
            for caution in &r.cautions {
                let _ = writeln!(text, "{caution}");
            }
            if let Some(c) = &a.tree.config {
                let _ = writeln!(text, "remove node {} from {} too", r.node, c.display());
            }
            text.push('\n');
            text.push_str(&kubepki::operations::rollout::text(&r.rollout));
            text.push('\n');
            text.push_str(&a.tree.verify_text(r.verify.as_ref()));
            emit(a.tree.output, || text.clone(), &r)?;
            Ok(exit_code(r.verify.as_ref()))
        }
    }
}

pub(crate) fn rotate(a: RotateArgs) -> Result<ExitCode> {
    if a.ca == "status" {
        if a.tree.verify {
            return Err(kubepki::Error::Invalid(
                "rotate-ca status changes nothing: run kubepki verify for the tree (--verify goes with a phase)".into(),
            ));
        }
        let tree = a.tree.tree()?;
        let status = kubepki::operations::rotate::status(&tree)?;
        let text = status
            .iter()
            .map(|s| match (&s.phase, &s.next) {
                (Some(p), Some(next)) => {
                    let rfc3339 = &time::format_description::well_known::Rfc3339;
                    let started = s.started.and_then(|t| t.format(rfc3339).ok()).unwrap_or_default();
                    let mut out = format!("{}: phase {p:?} done (rotation started {started}); next: {next}\n", s.ca);
                    out.push_str("  before it, every node must have what that phase changed: ");
                    out.push_str(&kubepki::operations::rollout::text(&s.roll_out_first).replacen(
                        "roll out, per node:\n",
                        "\n",
                        1,
                    ));
                    out
                }
                _ => format!("{}: no rotation under way\n", s.ca),
            })
            .collect::<String>();
        emit(a.tree.output, || text.clone(), &status)?;
        // A killed phase is not a phase done: say so, and do not exit 0.
        let half = super::say_if_half_written(&tree.root, a.tree.output == Format::Table)?;
        return Ok(if half { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    let phase = a.phase.ok_or_else(|| {
        kubepki::Error::Invalid(format!("rotate-ca {}: name a phase: start, reissue or finish", a.ca))
    })?;
    if a.tree.dry_run {
        let tree = a.tree.tree()?;
        let would = kubepki::operations::rotate::rotate_dry_run(&tree, &a.ca, phase, OffsetDateTime::now_utc())?;
        let text = || {
            let mut out = format!("phase {phase} of the rotation of {}:\n", a.ca);
            out.push_str(&changes_text(&would.changes, &would.notes, false).replace("reissued ", "would reissue "));
            out.push_str(&kubepki::operations::rollout::text(&would.rollout).replacen(
                "roll out, per node:",
                "would change, per node:",
                1,
            ));
            out.push_str("(dry run: nothing written)\n");
            out
        };
        emit(a.tree.output, text, &would)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (run, tree) = a.tree.begin(&format!("rotate-ca {} {phase}", a.ca))?;
    if let Some(code) = super::done_by_recovery(run.as_ref())? {
        return Ok(code);
    }
    let now = OffsetDateTime::now_utc();
    let mut applied = kubepki::operations::rotate::rotate(&tree, &a.ca, phase, now)?;
    a.tree.record_given(&tree)?;
    applied.verify = a.tree.verified(now)?;
    report(&applied, &a.tree)
}
