//! `backup list` and `backup restore`.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::verify::default_dir;
use super::{emit, Format};
use kubepki::disk::backup::{BackupInfo, RestoreReport};
use kubepki::Result;

#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// The backups, oldest first: id, command, time, files saved and created.
    List(ListArgs),
    /// Put the tree back as it was before the run of backup ID (undoing it and every later run, newest first).
    Restore(RestoreArgs),
}

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
    /// The tree (default: ./kubernetes if it exists, else /etc/kubernetes).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Show what would be put back and removed, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub(crate) fn run(c: BackupCommand) -> Result<ExitCode> {
    match c {
        BackupCommand::List(a) => {
            let dir = default_dir(a.dir);
            let list = kubepki::disk::backup::list(&dir)?;
            emit(a.output, || list_text(&list), &list)?;
        }
        BackupCommand::Restore(a) => {
            let dir = default_dir(a.dir);
            let run = if a.dry_run {
                None
            } else {
                Some(kubepki::disk::run::Run::begin(&dir, &format!("backup restore {}", a.id))?)
            };
            if let Some(code) = super::done_by_recovery(run.as_ref())? {
                return Ok(code);
            }
            let mut report = kubepki::disk::backup::restore(&dir, &a.id, a.dry_run)?;
            // What the restore changes, as the tree now describes its cluster.
            if let Ok(spec) = kubepki::model::infer::cluster_of_tree(&dir) {
                let changed: Vec<std::path::PathBuf> = report.put_back.iter().chain(&report.removed).cloned().collect();
                report.rollout = kubepki::operations::rollout::rollout(&spec, &changed);
            }
            emit(a.output, || restore_text(&report), &report)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_text(list: &[BackupInfo]) -> String {
    if list.is_empty() {
        return "no backups\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.command.clone().map_or("?".into(), |c| format!("kubepki {c}")),
                b.time.map_or("?".into(), |t| t.to_string()),
                b.saved.len().to_string(),
                b.created.len().to_string(),
            ]
        })
        .collect();
    kubepki::report::table(&["ID", "COMMAND", "TIME", "SAVED", "CREATED"], &rows)
}

fn restore_text(r: &RestoreReport) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would undo" } else { "undid" };
    for b in &r.undone {
        let command = b.command.as_deref().unwrap_or("?");
        let _ = writeln!(out, "{verb} {} (kubepki {command})", b.id);
    }
    for f in &r.put_back {
        let _ = writeln!(out, "  {} {}", if r.dry_run { "would put back" } else { "put back" }, f.display());
    }
    for f in &r.removed {
        let _ = writeln!(out, "  {} {}", if r.dry_run { "would remove" } else { "removed" }, f.display());
    }
    if r.put_back.is_empty() && r.removed.is_empty() {
        let _ = writeln!(out, "the tree is already as it was");
    }
    if let Some(b) = &r.backup {
        let _ = writeln!(out, "the files the restore replaced are saved in {}", b.display());
    }
    if !r.rollout.is_empty() {
        out.push_str(&kubepki::operations::rollout::text(&r.rollout));
    }
    if r.dry_run {
        let _ = writeln!(out, "(dry run: nothing written)");
    }
    out
}
