//! What a change of a tree did (or would do), as a diff per certificate.

use crate::{model::catalog::EntryId, operations::lifecycle::Change};
use std::fmt::Write;

/// The changes as a diff: one block per certificate, unchanged lines marked.
/// Each certificate a command reissued (or would), as a before/after diff, then the notes.
pub fn changes_text(changes: &[Change], notes: &[(EntryId, String)], dry_run: bool) -> String {
    let mut out = String::new();
    for c in changes {
        let _ =
            writeln!(out, "{} {} ({})", if dry_run { "would reissue" } else { "reissued" }, c.entry, c.file.display());
        let after = &c.after;
        let line = |out: &mut String, label: &str, before: Option<String>, after: String| match before {
            Some(b) if b == after => {
                let _ = writeln!(out, "    {label:<9} {after}");
            }
            Some(b) => {
                let _ = writeln!(out, "  - {label:<9} {b}\n  + {label:<9} {after}");
            }
            None => {
                let _ = writeln!(out, "  + {label:<9} {after}");
            }
        };
        let b = c.before.as_ref();
        line(&mut out, "subject", b.map(|b| b.subject.clone()), after.subject.clone());
        let issuer = |s: &crate::operations::lifecycle::Summary| match &s.issuer_key {
            Some(k) => format!("{} (key {k})", s.issuer),
            None => s.issuer.clone(),
        };
        line(&mut out, "issuer", b.map(issuer), issuer(after));
        line(&mut out, "SANs", b.map(|b| b.sans.join(", ")), after.sans.join(", "));
        line(
            &mut out,
            "validity",
            b.map(|b| format!("{} .. {}", b.not_before.date(), b.not_after.date())),
            format!("{} .. {}", after.not_before.date(), after.not_after.date()),
        );
        let _ = writeln!(out, "    {:<9} {}", "key", after.key);
    }
    for (id, why) in notes {
        let _ = writeln!(out, "note: {id}: {why}");
    }
    if dry_run {
        let _ = writeln!(out, "(dry run: nothing written)");
    }
    out
}
