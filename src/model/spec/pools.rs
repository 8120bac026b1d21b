//! Node pools: many nodes described at once by a name pattern, a count and the first of a
//! range of consecutive addresses, next to the nodes written out one by one.
//!
//! ```yaml
//! nodePools:
//!   - {namePattern: "worker-{index:04}", role: worker, count: 5000, firstIndex: 1, firstAddress: 10.1.0.1}
//! ```
//!
//! Node `k` of a pool (counting from 0) is named by the pattern with `{index}` replaced by
//! `firstIndex + k` (`{index:04}`: zero-padded to 4 digits) and gets `firstAddress + k`; a list
//! of first addresses (dual stack) gives each node one address from each range.

use std::net::IpAddr;

use serde::Deserialize;

use super::Role;

/// The most nodes one description may hold (all pools and explicit nodes together): far
/// beyond any real cluster, low enough that a typo in `count` cannot exhaust memory.
pub const MAX_NODES: usize = 100_000;

/// A node pool as typed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NodePoolFile {
    pub(super) name_pattern: String,
    #[serde(default = "worker")]
    pub(super) role: Role,
    pub(super) count: i64,
    #[serde(default = "one")]
    pub(super) first_index: i64,
    pub(super) first_address: OneOrMany,
    #[serde(default)]
    pub(super) dns_names: Vec<String>,
}

fn worker() -> Role {
    Role::Worker
}

fn one() -> i64 {
    1
}

/// `firstAddress: 10.1.0.1` or `firstAddress: [10.1.0.1, "fd00:1::1"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The addresses as typed, each with its field suffix (`""` or `"[1]"`).
    pub(super) fn items(&self) -> Vec<(String, &str)> {
        match self {
            OneOrMany::One(a) => vec![(String::new(), a.as_str())],
            OneOrMany::Many(list) => list.iter().enumerate().map(|(i, a)| (format!("[{i}]"), a.as_str())).collect(),
        }
    }
}

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{index}` or `{index:0N}` (zero-padded to N digits).
    Index {
        width: usize,
    },
    /// `{name}` (the node's name; DNS name patterns only).
    Name,
}

/// A parsed name pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pattern {
    pieces: Vec<Piece>,
}

impl Pattern {
    /// Parse `worker-{index:04}`; `{name}` is accepted only if `allow_name`.
    pub(super) fn parse(text: &str, allow_name: bool) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("'{text}': '}}' without '{{'"));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("'{text}': '{{' without '}}'"))? + open;
            pieces.push(placeholder(&rest[open + 1..close], allow_name).map_err(|p| format!("'{text}': {p}"))?);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Pattern { pieces })
    }

    /// Whether the pattern has an `{index}`, so that each node of a pool gets its own name.
    pub(super) fn has_index(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Index { .. }))
    }

    /// The text for one node.
    pub(super) fn render(&self, index: u64, name: &str) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Index { width } => out.push_str(&format!("{index:0width$}")),
                Piece::Name => out.push_str(name),
            }
        }
        out
    }
}

fn placeholder(inner: &str, allow_name: bool) -> Result<Piece, String> {
    match inner.split_once(':') {
        None if inner == "index" => Ok(Piece::Index { width: 0 }),
        None if inner == "name" && allow_name => Ok(Piece::Name),
        Some(("index", spec)) => {
            let width =
                spec.strip_prefix('0')
                    .and_then(|w| w.parse::<usize>().ok())
                    .filter(|w| (1..=20).contains(w))
                    .ok_or_else(|| format!("'{{{inner}}}': the index format is {{index:0N}}, N from 1 to 20 digits"))?;
            Ok(Piece::Index { width })
        }
        _ => {
            let known = if allow_name { "{index}, {index:0N} or {name}" } else { "{index} or {index:0N}" };
            Err(format!("unknown placeholder '{{{inner}}}' (use {known})"))
        }
    }
}

/// `first + offset`, or `None` past the end of the address family.
pub(super) fn nth_address(first: IpAddr, offset: u64) -> Option<IpAddr> {
    match first {
        IpAddr::V4(a) => {
            u32::try_from(offset).ok().and_then(|o| u32::from(a).checked_add(o)).map(|n| IpAddr::V4(n.into()))
        }
        IpAddr::V6(a) => u128::from(a).checked_add(u128::from(offset)).map(|n| IpAddr::V6(n.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_render_and_refuse_what_they_cannot() {
        let p = Pattern::parse("worker-{index:04}", false).unwrap();
        assert!(p.has_index());
        assert_eq!(p.render(7, ""), "worker-0007");
        assert_eq!(p.render(12345, ""), "worker-12345", "wider than the padding");
        assert_eq!(Pattern::parse("n{index}", false).unwrap().render(10, ""), "n10");
        assert_eq!(Pattern::parse("{name}.nodes.example.com", true).unwrap().render(1, "w1"), "w1.nodes.example.com");
        assert!(!Pattern::parse("single", false).unwrap().has_index());
        for bad in ["w-{idx}", "w-{index:4}", "w-{index:0}", "w-{index", "w-}", "{name}", "w-{index:0x}"] {
            assert!(Pattern::parse(bad, false).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn addresses_count_up_and_stop_at_the_end() {
        let v4: IpAddr = "10.1.0.255".parse().unwrap();
        assert_eq!(nth_address(v4, 1).unwrap().to_string(), "10.1.1.0");
        assert_eq!(nth_address("255.255.255.254".parse().unwrap(), 2), None);
        assert_eq!(nth_address("fd00::ffff".parse().unwrap(), 1).unwrap().to_string(), "fd00::1:0");
        assert_eq!(nth_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(), 1), None);
    }
}
