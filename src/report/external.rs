//! What `csr`, `sign` and `import` did, for people.

use crate::{operations::external::CsrReport, operations::external::ImportReport, operations::external::SignReport};
use std::fmt::Write;

/// What `csr` wrote.
pub fn csr_text(r: &CsrReport) -> String {
    let rows: Vec<Vec<String>> = r
        .written
        .iter()
        .map(|w| {
            vec![
                w.entry.to_string(),
                w.issuer.to_string(),
                w.files.csr.display().to_string(),
                w.files.key.display().to_string(),
            ]
        })
        .collect();
    let mut out = crate::report::table(&["ENTRY", "SIGNER", "CSR", "KEY"], &rows);
    if let Some(b) = &r.backup {
        let _ = writeln!(out, "\nreplaced keys and CSRs saved under {}", b.display());
    }
    let _ = writeln!(
        out,
        "\n{} keys and CSRs written under {}. Have each CSR signed by its SIGNER (kubepki sign --ca SIGNER CSR..., or an outside CA returning <name>.crt beside it), then run kubepki import.",
        r.written.len(),
        r.dir.display()
    );
    out
}

/// What `sign` signed.
pub fn sign_text(r: &SignReport) -> String {
    let rows: Vec<Vec<String>> = r
        .signed
        .iter()
        .map(|s| {
            vec![s.entry.to_string(), s.cert.display().to_string(), s.serial.clone(), s.not_after.date().to_string()]
        })
        .collect();
    let mut out = crate::report::table(&["ENTRY", "CERTIFICATE", "SERIAL", "EXPIRES"], &rows);
    let _ = writeln!(
        out,
        "\n{} signed by {} (logged in {})",
        r.signed.len(),
        r.ca,
        crate::disk::issuance::log_path(&r.dir).display()
    );
    if let Some(b) = &r.backup {
        let _ = writeln!(out, "the certificates replaced were saved in {}", b.display());
    }
    out
}

/// What `import` placed, and the verify that ends it.
pub fn import_text(r: &ImportReport) -> String {
    let rows: Vec<Vec<String>> = r
        .placed
        .iter()
        .map(|p| {
            vec![p.entry.to_string(), p.dest.display().to_string(), p.serial.clone(), p.not_after.date().to_string()]
        })
        .collect();
    let mut out = crate::report::table(&["ENTRY", "PLACED", "SERIAL", "EXPIRES"], &rows);
    let _ = writeln!(
        out,
        "\n{} imported, {} node bundle copies refreshed, {} spent files removed",
        r.placed.len(),
        r.copies,
        r.removed.len()
    );
    if !r.waiting.is_empty() {
        let _ = writeln!(out, "still waiting for a certificate: {}", r.waiting.join(", "));
    }
    out.push('\n');
    out.push_str(&crate::operations::rollout::text(&r.rollout));
    out.push('\n');
    out.push_str(&super::verify::text(&r.verify, false));
    out
}
