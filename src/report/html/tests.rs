use std::path::PathBuf;

use time::macros::datetime;

use super::*;
use crate::model::spec::ClusterSpec;

#[test]
fn text_from_files_is_escaped_for_html() {
    assert_eq!(
        esc("<script>alert('x')</script> & \"q\""),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
    );
    assert_eq!(esc("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\nc");
}

#[test]
fn the_policy_hash_is_the_sha256_of_the_exact_text() {
    // SHA-256 of nothing, as CSP writes it.
    assert_eq!(csp_hash(""), "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
}

fn entry(path: &str, status: CheckStatus, expires: OffsetDateTime) -> CheckEntry {
    CheckEntry {
        is_ca: path.ends_with("ca.crt"),
        expires: Some(expires),
        ..crate::audit::check::blank(path.into(), PathBuf::from(path), status)
    }
}

#[test]
fn per_node_copies_fold_beyond_the_limit_except_those_not_ok() {
    let t0 = datetime!(2027-01-01 0:00 UTC);
    let nodes = FOLD_NODES + 2;
    let mut entries = vec![entry("pki/ca.crt", CheckStatus::Ok, t0 + time::Duration::days(3650))];
    for i in 0..nodes {
        let status = if i == 3 { CheckStatus::Expired } else { CheckStatus::Ok };
        let path = format!("nodes/n{i}/var/lib/kubelet/pki/kubelet.crt");
        entries.push(entry(&path, status, t0 + time::Duration::days(i as i64)));
        entries.push(entry(&format!("nodes/n{i}/etc/kubernetes/pki/ca.crt"), CheckStatus::Ok, t0));
    }
    let rows = fold(&entries);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pki/ca.crt",
            "nodes/<node>/var/lib/kubelet/pki/kubelet.crt × 9",
            "nodes/<node>/etc/kubernetes/pki/ca.crt × 10",
            "nodes/n3/var/lib/kubelet/pki/kubelet.crt",
        ]
    );
    assert_eq!(rows.iter().map(|r| r.count).sum::<usize>(), entries.len());
    // The fold spans its members: the earliest and the latest expiry (n3's is apart).
    assert_eq!(rows[1].not_after, Some((t0, t0 + time::Duration::days(nodes as i64 - 1))));
    assert_eq!(rows[3].status, CheckStatus::Expired);

    // At the limit, nothing folds.
    let few: Vec<CheckEntry> =
        entries.iter().filter(|e| !e.name.contains("n9/") && !e.name.contains("n8/")).cloned().collect();
    assert_eq!(fold(&few).len(), few.len());
}

#[test]
fn the_timeline_ticks_years_or_months() {
    let t0 = datetime!(2026-11-30 2:19 UTC);
    let years = timeline::ticks(t0, t0 + time::Duration::days(3650));
    assert_eq!(years.len(), 10);
    assert_eq!(years[0], datetime!(2027-01-01 0:00 UTC));
    let months = timeline::ticks(t0, t0 + time::Duration::days(365));
    assert_eq!(months.len(), 12);
    assert_eq!(months[0], datetime!(2026-12-01 0:00 UTC));
}

#[test]
fn a_page_allows_exactly_its_own_scripts_and_names_no_url() {
    let spec = ClusterSpec::builtin_default();
    let catalog = Catalog::build(&spec);
    let topology = Topology::build(&spec, &catalog);
    let dir = tempfile::tempdir().unwrap();
    let inventory = crate::disk::inventory::Inventory::load(dir.path(), &catalog);
    let at = datetime!(2026-11-30 2:19 UTC);
    let verify = crate::audit::verify::verify(
        &spec,
        &catalog,
        &topology,
        &inventory,
        &crate::audit::verify::VerifyOptions::at(at),
    );
    let check = CheckReport {
        dir: dir.path().to_path_buf(),
        at,
        warn_within: time::Duration::days(30),
        entries: vec![entry("pki/ca.crt", CheckStatus::Ok, at + time::Duration::days(3650))],
    };
    let html = render(&Page {
        topology: &topology,
        catalog: &catalog,
        verify: &verify,
        check: &check,
        rotation: &[],
        version: "test",
    });
    // Every inline script and stylesheet is allowed by its hash, and nothing else is.
    let policy = html.split("Content-Security-Policy\" content=\"").nth(1).unwrap().split('"').next().unwrap();
    let mut hashes = 0;
    for (open, close) in [("<script>", "</script>"), ("<style>", "</style>")] {
        for part in html.split(open).skip(1) {
            let body = part.split(close).next().unwrap();
            assert!(policy.contains(&csp_hash(body)), "{open} not allowed by {policy}");
            hashes += 1;
        }
    }
    assert_eq!(hashes, 3);
    assert!(policy.starts_with("default-src 'none';") && !policy.contains("unsafe"), "{policy}");
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for scheme in ["http://", "https://", "file:", "data:", "src=", "href=", "@import"] {
        assert!(
            !rest.contains(scheme),
            "{scheme} in the page: {}",
            &rest[rest.find(scheme).unwrap().saturating_sub(80)..][..160]
        );
    }
    // Every link is broken (nothing on disk), every finding is a row.
    let rows = html.matches("<tr class=\"s-").count();
    let not_ok = verify.links.iter().filter(|l| l.status != LinkStatus::Ok).count();
    assert_eq!(rows, verify.findings.len().min(MAX_ROWS) + not_ok.min(MAX_ROWS));
    assert!(html.contains(&format!("data-count=\"links-broken\">{}</dd>", verify.links.len())));
}
