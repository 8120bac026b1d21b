//! The conventions of every command's `-o json`, in one place: keys in camelCase (as
//! Kubernetes writes its objects), times in RFC 3339, UTC, to the second
//! (`2026-11-30T02:06:35Z`), findings referenced by stable ids (see
//! [`crate::audit::verify::Finding::id`]). Values that name things stay as Kubernetes spells
//! them (`kubelet-client`, `wrong-ca`, `control-plane`).
//!
//! The state files kubepki keeps in a tree (`.kubepki/cluster.json`, `issued.jsonl`, backups'
//! `.kubepki-run.json`, a rotation's `state.json`) are not output: they keep the format they
//! were written in, so that trees made by earlier versions are read as they are.

use time::OffsetDateTime;

/// A time as every JSON output writes it: RFC 3339, UTC, whole seconds.
pub fn rfc3339_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).expect("0 is a valid nanosecond");
    t.format(&time::format_description::well_known::Rfc3339).expect("a UTC time formats")
}

/// `#[serde(with = "crate::report::json::rfc3339")]`: a time as [`rfc3339_text`] writes it.
pub mod rfc3339 {
    /// Serialize `t`.
    pub fn serialize<S: serde::Serializer>(t: &time::OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_text(*t))
    }
}

/// `#[serde(with = "crate::report::json::rfc3339_option")]`: an optional time (`null` when absent).
pub mod rfc3339_option {
    /// Serialize `t`.
    pub fn serialize<S: serde::Serializer>(t: &Option<time::OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339_text(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_to_the_second() {
        let t = time::macros::datetime!(2026-11-30 03:06:35.987654 +01:00);
        assert_eq!(rfc3339_text(t), "2026-11-30T02:06:35Z");
    }
}
