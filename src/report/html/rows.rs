//! The rows of the timeline and the catalog: `check`'s certificates, folded per file beyond
//! [`FOLD_NODES`] nodes (the per-node copies of one file become one row), except rows that are
//! not ok (up to [`MAX_TROUBLED`]).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::{date_time, FOLD_NODES, MAX_TROUBLED};
use crate::audit::check::{CheckEntry, CheckStatus};

/// A row of the timeline and the catalog: one certificate (or missing file), or the per-node
/// copies of one file folded into one.
#[derive(Clone, Debug)]
pub(crate) struct Row<'a> {
    /// The entry (the first of a fold).
    pub(crate) first: &'a CheckEntry,
    /// How many it stands for.
    pub(crate) count: usize,
    /// Of those, how many are not ok.
    pub(crate) not_ok: usize,
    /// As shown: the path, or `nodes/<node>/... × N`.
    pub(crate) name: String,
    /// The worst status.
    pub(crate) status: CheckStatus,
    /// The earliest NotBefore.
    pub(crate) not_before: Option<OffsetDateTime>,
    /// The earliest and the latest NotAfter.
    pub(crate) not_after: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl Row<'_> {
    pub(super) fn expiry_text(&self) -> String {
        match self.not_after {
            Some((a, b)) if a != b => format!("{} to {}", date_time(a), date_time(b)),
            Some((a, _)) => date_time(a),
            None => String::new(),
        }
    }
}

/// `check`'s rows as the page shows them: folded per file beyond [`FOLD_NODES`] nodes, in
/// `check`'s order (soonest expiry first).
pub(crate) fn fold(entries: &[CheckEntry]) -> Vec<Row<'_>> {
    let node = |e: &CheckEntry| node_of_path(&e.path);
    let nodes: BTreeSet<String> = entries.iter().filter_map(node).collect();
    let folding = nodes.len() > FOLD_NODES;
    let mut rows: Vec<Row> = Vec::new();
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut troubled = 0;
    for e in entries {
        let bad = e.status.fails();
        let single = Row {
            first: e,
            count: 1,
            not_ok: usize::from(bad),
            name: e.name.clone(),
            status: e.status,
            not_before: e.certificate.as_ref().map(|c| c.not_before),
            not_after: e.expires.map(|t| (t, t)),
        };
        let Some(n) = node(e).filter(|_| folding) else {
            rows.push(single);
            continue;
        };
        if bad && troubled < MAX_TROUBLED {
            troubled += 1;
            rows.push(single);
            continue;
        }
        let key = e.name.replacen(&format!("nodes/{n}/"), "nodes/<node>/", 1);
        match by_key.get(&key) {
            Some(&i) => {
                let r = &mut rows[i];
                r.count += 1;
                r.not_ok += single.not_ok;
                r.status = worse(r.status, e.status);
                r.not_before = min_opt(r.not_before, single.not_before);
                r.not_after = match (r.not_after, single.not_after) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (x, y) => x.or(y),
                };
            }
            None => {
                by_key.insert(key.clone(), rows.len());
                rows.push(Row { name: key, ..single });
            }
        }
    }
    for r in &mut rows {
        r.name = match r.count {
            1 => r.first.name.clone(),
            n => format!("{} × {n}", r.name),
        };
    }
    rows
}

/// The node of a file in a node's bundle: `nodes/<node>/...`.
pub(super) fn node_of_path(path: &std::path::Path) -> Option<String> {
    let mut parts = path.components();
    if parts.next()?.as_os_str() != "nodes" {
        return None;
    }
    parts.next().map(|n| n.as_os_str().to_string_lossy().into_owned())
}

fn min_opt(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (x, y) => x.or(y),
    }
}

/// The worse of two statuses: a failing one over one that does not, then by order.
fn worse(a: CheckStatus, b: CheckStatus) -> CheckStatus {
    if (b.fails(), b) > (a.fails(), a) {
        b
    } else {
        a
    }
}
