//! What `check` found, as an aligned table.

use crate::report::table;
use crate::{audit::check::CheckReport, audit::check::CheckStatus};
use std::fmt::Write;

/// The table of `check`: every certificate with its expiry, residual time, CA and status, then
/// what is wrong with each and the totals.
pub fn text(r: &CheckReport) -> String {
    let when = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let rows: Vec<Vec<String>> = r
        .entries
        .iter()
        .map(|e| {
            let name = if e.status == CheckStatus::Missing { format!("!MISSING! {}", e.name) } else { e.name.clone() };
            let expires = e.expires.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&when).ok());
            vec![
                name,
                expires.unwrap_or_default(),
                e.residual.clone().unwrap_or_default(),
                e.authority.clone().unwrap_or_default(),
                if e.externally_managed { "yes" } else { "no" }.to_string(),
                e.status.word().to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED", "STATUS"],
        &rows,
    );
    for e in r.entries.iter().filter(|e| e.problem.is_some() && e.status != CheckStatus::Missing) {
        let _ = writeln!(out, "{}: {}: {}", e.status.word(), e.name, e.problem.as_deref().unwrap_or_default());
    }
    let mut counts = Vec::new();
    for s in [
        CheckStatus::Ok,
        CheckStatus::Expiring,
        CheckStatus::Expired,
        CheckStatus::NotYetValid,
        CheckStatus::Missing,
        CheckStatus::Unreadable,
        CheckStatus::Unchecked,
    ] {
        let n = r.count(s);
        if n > 0 || s == CheckStatus::Ok {
            counts.push(format!("{n} {}", s.word()));
        }
    }
    let at = r.at.to_offset(time::UtcOffset::UTC).format(&when).unwrap_or_default();
    let window = crate::model::spec::duration_text::format(r.warn_within);
    let external = r.entries.iter().filter(|e| e.is_ca && e.externally_managed && !e.path.starts_with("nodes")).count();
    if external > 0 {
        let _ = writeln!(
            out,
            "\n{external} CA(s) externally managed (certificate without its key: kubeadm's external-CA mode): their certificates are renewed outside the tree (kubepki csr, then kubepki import)"
        );
    }
    let _ = writeln!(
        out,
        "\n{}: {} entries at {at} (warning within {window}): {}",
        r.dir.display(),
        r.entries.len(),
        counts.join(", ")
    );
    out
}
