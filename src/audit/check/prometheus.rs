//! `check -o prometheus`: the report in the Prometheus text format, with the metric names and
//! labels of x509-certificate-exporter (enix), so the alerts and dashboards operators already
//! have for it work on node_exporter's textfile collector fed by kubepki.
//!
//! Per certificate: `x509_cert_not_before`, `x509_cert_not_after` (Unix seconds) and
//! `x509_cert_expired` (1 or 0 at the report's instant), labelled `filename`, `filepath`,
//! `serial_number` (decimal, as Go prints a big.Int), `subject_CN`/`subject_O`,
//! `issuer_CN`/`issuer_O`, and for kubeconfigs `embedded_kind` (`user` or `cluster`) and
//! `embedded_key` (its name). Then `x509_read_errors`: files expected or found that could not
//! be read as certificates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::{CheckReport, CheckStatus};
use crate::x509::certinfo::CertInfo;

const FAMILIES: [(&str, &str); 3] = [
    ("x509_cert_not_before", "The certificate's NotBefore, in seconds since the Unix epoch"),
    ("x509_cert_not_after", "The certificate's NotAfter, in seconds since the Unix epoch"),
    ("x509_cert_expired", "1 if the certificate had expired at the time of the check, else 0"),
];

/// The report as Prometheus metrics; `filepath` is the file's path as given under `--dir`,
/// made absolute.
pub fn render(r: &CheckReport) -> String {
    let root = std::path::absolute(&r.dir).unwrap_or_else(|_| r.dir.clone());
    let mut series: Vec<(String, [i64; 3])> = Vec::new();
    let mut seen = BTreeSet::new();
    for e in &r.entries {
        let Some(c) = &e.certificate else { continue };
        let path = root.join(&e.path);
        let mut labels: BTreeMap<&str, String> = BTreeMap::new();
        labels.insert("filename", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
        labels.insert("filepath", path.display().to_string());
        labels.insert("serial_number", decimal(&c.serial));
        names(c, &mut labels);
        if let Some((kind, key)) = &e.embedded {
            labels.insert("embedded_kind", kind.to_string());
            labels.insert("embedded_key", key.clone());
        }
        let text = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",");
        // The same certificate twice in one file (a bundle listed twice) would be a duplicate series.
        if seen.insert(text.clone()) {
            let expired = i64::from(r.at > c.not_after);
            series.push((text, [c.not_before.unix_timestamp(), c.not_after.unix_timestamp(), expired]));
        }
    }
    let mut out = String::new();
    for (i, (name, help)) in FAMILIES.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, values) in &series {
            let _ = writeln!(out, "{name}{{{labels}}} {}", values[i]);
        }
    }
    let errors =
        r.entries.iter().filter(|e| matches!(e.status, CheckStatus::Unreadable | CheckStatus::Missing)).count();
    let _ = writeln!(out, "# HELP x509_read_errors Certificate files expected or found that could not be read\n# TYPE x509_read_errors gauge\nx509_read_errors {errors}");
    out
}

/// `subject_CN`, `subject_O`, `issuer_CN`, `issuer_O` (the first O, as the exporter does).
fn names(c: &CertInfo, labels: &mut BTreeMap<&str, String>) {
    if !c.subject_cn.is_empty() {
        labels.insert("subject_CN", c.subject_cn.clone());
    }
    if let Some(o) = c.orgs.first() {
        labels.insert("subject_O", o.clone());
    }
    for part in c.issuer.split(", ") {
        if let Some(cn) = part.strip_prefix("CN=") {
            labels.insert("issuer_CN", cn.to_string());
        } else if let Some(o) = part.strip_prefix("O=") {
            labels.entry("issuer_O").or_insert_with(|| o.to_string());
        }
    }
}

/// A label value: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A hex serial (`1a:2b` or `1a2b`) in decimal, any length.
fn decimal(hex: &str) -> String {
    let mut digits: Vec<u8> = vec![0]; // little-endian base 10
    for c in hex.chars().filter_map(|c| c.to_digit(16)) {
        let mut carry = c;
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 16 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_in_decimal_as_go_prints_them() {
        assert_eq!(decimal("00"), "0");
        assert_eq!(decimal("ff"), "255");
        assert_eq!(decimal("01:00"), "256");
        // 2^126 - 1: kubepki's serials are 126 random bits.
        assert_eq!(decimal("3fffffffffffffffffffffffffffffff"), "85070591730234615865843651857942052863");
        // 21 bytes, beyond any integer type (the value from Python's int(x, 16)).
        assert_eq!(
            decimal("0102030405060708090a0b0c0d0e0f101112131415"),
            "1472986871266713627795412367503180683985716188181"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
