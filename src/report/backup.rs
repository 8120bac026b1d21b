//! Backups and restores, for people.

use crate::disk::backup::{BackupInfo, BackupSummary, PruneReport, RestoreReport};
use std::fmt::Write;

/// The backups of a tree, newest last.
pub fn list_text(list: &[BackupInfo]) -> String {
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
    crate::report::table(&["ID", "COMMAND", "TIME", "SAVED", "CREATED"], &rows)
}

/// What a restore put back.
pub fn restore_text(r: &RestoreReport) -> String {
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
        out.push_str(&crate::operations::rollout::text(&r.rollout));
    }
    if r.dry_run {
        let _ = writeln!(out, "(dry run: nothing written)");
    }
    out
}

/// What a prune removed and kept.
pub fn prune_text(r: &PruneReport) -> String {
    let mut out = String::new();
    let line = |out: &mut String, verb: &str, b: &BackupSummary| {
        let command = b.command.as_deref().map_or("?".to_string(), |c| format!("kubepki {c}"));
        let _ = writeln!(out, "{verb} {} ({command}; {} files saved, {} created)", b.id, b.saved, b.created);
    };
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for b in &r.removed {
        line(&mut out, verb, b);
    }
    if r.leftovers > 0 {
        let _ = writeln!(out, "deleted {} folder(s) an interrupted prune had begun to delete", r.leftovers);
    }
    match r.kept.first() {
        Some(oldest) => {
            let _ = writeln!(
                out,
                "kept {} backup(s), from {}: `kubepki backup restore ID` works for each of them",
                r.kept.len(),
                oldest.id
            );
        }
        None => {
            let _ = writeln!(out, "kept no backup: the tree can no longer be put back as it was before any run");
        }
    }
    if r.removed.is_empty() {
        let _ = writeln!(out, "nothing to remove");
    }
    if r.dry_run {
        let _ = writeln!(out, "(dry run: nothing removed)");
    }
    out
}
