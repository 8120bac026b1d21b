//! `backup list`, `backup restore` and `backup prune`.

use kubepki::report::backup::{list_text, prune_text, restore_text};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::verify::default_dir;
use super::{emit, Format};
use kubepki::Result;

#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// The backups, oldest first: id, command, time, files saved and created.
    List(ListArgs),
    /// Put the tree back as it was before the run of backup ID (undoing it and every later run, newest first).
    Restore(RestoreArgs),
    /// Delete the oldest backups: keep the newest N (--keep N) or those from ID on (--before ID).
    Prune(PruneArgs),
}

/// The tree and the output format, as every `backup` command takes them.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// The backup (its folder's name under .kubepki-backup/, as `backup list` shows it).
    id: String,
    /// Show what would be put back and removed, and write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    at: ListArgs,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["keep", "before"])))]
pub(crate) struct PruneArgs {
    /// Keep the newest N backups, delete the older ones.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Delete every backup older than ID (ID and the later ones are kept).
    #[arg(long, value_name = "ID")]
    before: Option<String>,
    /// Show what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    at: ListArgs,
}

pub(crate) fn run(c: BackupCommand) -> Result<ExitCode> {
    match c {
        BackupCommand::List(a) => {
            let dir = default_dir(a.dir);
            let list = kubepki::disk::backup::list(&dir)?;
            emit(a.output, || list_text(&list), &list)?;
        }
        BackupCommand::Restore(a) => {
            let dir = default_dir(a.at.dir);
            let run = if a.dry_run {
                None
            } else {
                Some(kubepki::disk::run::Run::begin_backup(&dir, &format!("backup restore {}", a.id))?)
            };
            if let Some(code) = super::done_by_recovery(run.as_ref())? {
                return Ok(code);
            }
            // What the restore changes, for the cluster as the tree described it before (a dry
            // run and the restore itself say the same).
            let before = kubepki::model::infer::cluster_of_tree(&dir);
            let mut report = kubepki::disk::backup::restore(&dir, &a.id, a.dry_run)?;
            if let Ok(spec) = before {
                let r = &report;
                report.rollout =
                    kubepki::operations::rollout::rollout_of_change(&spec, &r.put_back, &r.removed, &r.removed_nodes);
            }
            emit(a.at.output, || restore_text(&report), &report)?;
        }
        BackupCommand::Prune(a) => {
            let dir = default_dir(a.at.dir);
            let keep = match (a.keep, a.before) {
                (Some(n), _) => kubepki::disk::backup::Keep::Newest(n),
                (None, Some(id)) => kubepki::disk::backup::Keep::From(id),
                (None, None) => unreachable!("clap requires --keep or --before"),
            };
            // The lock: no run adds or restores a backup while they are deleted.
            let _run =
                if a.dry_run { None } else { Some(kubepki::disk::run::Run::begin_backup(&dir, "backup prune")?) };
            let report = kubepki::disk::backup::prune(&dir, &keep, a.dry_run)?;
            emit(a.at.output, || prune_text(&report), &report)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
