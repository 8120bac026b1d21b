//! `kubepki report`: the one-page HTML report, rendered in headless Chromium (Debian's
//! `chromium`, which .ci/run installs) and checked in the DOM after the page's scripts ran:
//! its counts are `verify -o json`'s, a seeded broken link is red in the graph and listed, the
//! filters in the URL fragment work, nothing escapes escaping, nothing is loaded, no console
//! errors. The suite's screenshot is the README's (`KUBEPKI_SCREENSHOT_OUT=docs/report.png`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{have, wait_until, Guard, TestEnv};

/// The seeded broken link: the apiserver's client certificate for etcd deleted.
const BROKEN_LINK: &str = "kube-apiserver@controlplane -> etcd@controlplane";
const BROKEN_FILE: &str = "pki/apiserver-etcd-client.crt";
/// The report's red, as the browser computes it.
const RED: &str = "rgb(198, 40, 40)";

/// The default cluster with two seeded defects: a broken link (error) and a stale copy of the
/// cluster CA in node01's bundle (a warning on node01).
fn seeded_tree(env: &TestEnv) -> PathBuf {
    let tree = env.init("k", &["--quiet"]);
    std::fs::remove_file(tree.join(BROKEN_FILE)).unwrap();
    std::fs::copy(tree.join("pki/front-proxy-ca.crt"), tree.join("nodes/node01/etc/kubernetes/pki/ca.crt")).unwrap();
    tree
}

/// `kubepki report --dir k --out report.html`: exit 0; returns the page's path and stderr.
fn write_report(env: &TestEnv) -> (PathBuf, String) {
    let out = env.kubepki(&["report", "--dir", "k", "--out", "report.html"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "report failed: {stderr}");
    (env.path().join("report.html"), stderr)
}

/// What headless Chromium printed: stdout (the DOM with `--dump-dom`) and stderr (its log,
/// with every console message as a `CONSOLE` line).
struct Browser {
    dom: String,
    log: String,
}

/// Run headless Chromium with `args` on `page` (plus a URL fragment), with its own profile
/// directory, polled until it exits; killed by pid after 120 s (the Guard, also on failure).
fn chromium(env: &TestEnv, page: &Path, fragment: &str, args: &[&str]) -> Browser {
    assert!(have("chromium"), "chromium is needed for the report tests (.ci/run installs Debian's chromium)");
    let profile = tempfile::tempdir_in(env.path()).unwrap();
    let (out, err) = (profile.path().join("stdout"), profile.path().join("stderr"));
    let mut cmd = Command::new("chromium");
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .args(args)
        .arg(format!("file://{}{fragment}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("start chromium: {e}"));
    let mut guard = Guard { name: "chromium".into(), child, log: err.clone() };
    let mut status = None;
    wait_until("chromium to exit", Duration::from_secs(120), || {
        status = guard.child.try_wait().unwrap();
        status.is_some()
    });
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.unwrap().success(), "chromium failed: {log}");
    Browser { dom: std::fs::read_to_string(&out).unwrap(), log }
}

/// The page's self-test (`<pre id="selftest">`): what its script counted by walking the DOM.
fn selftest(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"selftest\"").expect("the page has its self-test");
    let text = &dom[start..];
    let text = &text[text.find('>').unwrap() + 1..text.find("</pre>").unwrap()];
    assert!(!text.is_empty(), "the page's script did not run: no self-test in the DOM");
    let json = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("self-test is not JSON ({e}): {json}"))
}

/// The console said nothing: no error, no blocked script or style, no log line.
fn assert_quiet(b: &Browser, page: &serde_json::Value) {
    let console: Vec<&str> = b.log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert_eq!(page["errors"], serde_json::json!([]), "errors caught in the page");
}

/// `verify -o json`'s counts: links by status, findings by severity.
fn verify_counts(env: &TestEnv) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let out = env.kubepki(&["verify", "--dir", "k", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |list: &str, field: &str| {
        let mut c = BTreeMap::new();
        for x in v[list].as_array().unwrap() {
            *c.entry(x[field].as_str().unwrap().to_lowercase()).or_insert(0) += 1;
        }
        c
    };
    (count("links", "status"), count("findings", "severity"))
}

#[test]
fn the_report_in_chromium_shows_verifys_counts_the_broken_link_in_red_and_filters() {
    let env = TestEnv::new();
    seeded_tree(&env);
    let (page, stderr) = write_report(&env);
    let (links, findings) = verify_counts(&env);
    assert_eq!(links.get("broken"), Some(&1), "{links:?}");
    assert!(stderr.contains(&format!("{} broken", links["broken"])), "{stderr}");

    let b = chromium(&env, &page, "", &["--dump-dom"]);
    let t = selftest(&b.dom);
    assert_quiet(&b, &t);
    // The summary's counts are verify's, for every status and severity (zeros included).
    for s in ["ok", "warning", "broken", "unverified", "unknown"] {
        assert_eq!(t["summary"][format!("links-{s}")], links.get(s).copied().unwrap_or(0), "links {s}: {t}");
    }
    for s in ["error", "warning", "info"] {
        let n = findings.get(s).copied().unwrap_or(0);
        assert_eq!(t["summary"][format!("findings-{s}")], n, "findings {s}: {t}");
        // And so are the rows the script counted in the findings table.
        assert_eq!(t["findingRows"].get(s).and_then(|v| v.as_u64()).unwrap_or(0), n, "rows {s}: {t}");
    }
    assert_eq!(t["linkRows"]["broken"], links["broken"], "{t}");
    // The broken link is red in the graph (as the browser computes the arrow's stroke) ...
    let arrows = t["brokenArrows"].as_array().unwrap();
    let arrow = arrows.iter().find(|a| a["title"].as_str().unwrap().starts_with(BROKEN_LINK)).unwrap_or_else(|| {
        panic!("no broken arrow for {BROKEN_LINK}: {arrows:?}");
    });
    assert_eq!(arrow["stroke"], RED, "{arrow}");
    assert_eq!(t["arrows"]["broken"], arrows.len(), "{t}");
    // ... and listed among the findings, with its file, and in the table of links not ok.
    let row = b.dom.split("<tr ").find(|r| r.contains("data-severity=\"error\"")).expect("an error row");
    assert!(row.contains(BROKEN_FILE) && row.contains("missing"), "{row}");
    assert!(row.contains(&BROKEN_LINK.replace('>', "&gt;")), "{row}");
    assert!(b.dom.contains(&format!("data-link=\"{}\"", BROKEN_LINK.replace('>', "&gt;"))), "not in the links table");
    // Every certificate of check's list is a bar of the timeline, the CAs apart, and every
    // row of check's list a row of the catalog.
    let check = env.kubepki(&["check", "--dir", "k", "-o", "json"]);
    let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let rows = check["entries"].as_array().unwrap();
    let dated = |ca: bool| rows.iter().filter(|e| !e["expires"].is_null() && e["isCa"] == ca).count();
    assert_eq!(t["timelineBars"]["ca"], dated(true), "{t}");
    assert_eq!(t["timelineBars"]["leaf"], dated(false), "{t}");
    assert_eq!(t["catalogRows"], rows.len(), "{t}");

    // Filters from the URL fragment: severity ...
    let b = chromium(&env, &page, "#severity=error", &["--dump-dom"]);
    let t = selftest(&b.dom);
    assert_quiet(&b, &t);
    assert_eq!(t["filter"]["severity"], "error");
    assert_eq!(t["findingsShown"], serde_json::json!({"error": findings["error"]}), "{t}");
    assert_eq!(hidden_rows(&b.dom), findings.values().sum::<u64>() - findings["error"]);
    // ... node: node01's stale copy of the CA, not the control plane's missing file ...
    let b = chromium(&env, &page, "#node=node01", &["--dump-dom"]);
    let t = selftest(&b.dom);
    assert_eq!(t["findingsShown"], serde_json::json!({"warning": 1}), "{t}");
    // ... and link.
    let b = chromium(&env, &page, "#link=etcd@controlplane", &["--dump-dom"]);
    let t = selftest(&b.dom);
    assert_eq!(t["findingsShown"], serde_json::json!({"error": 1}), "{t}");

    // The picture for the README: taken by the same browser.
    let shot = env.path().join("report.png");
    let arg = format!("--screenshot={}", shot.display());
    chromium(&env, &page, "", &[&arg, "--window-size=1400,2000"]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() < 500 * 1024, "screenshot of {} KB", png.len() / 1024);
    if let Some(dest) = std::env::var_os("KUBEPKI_SCREENSHOT_OUT") {
        let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join(dest);
        std::fs::copy(&shot, &dest).unwrap_or_else(|e| panic!("copy the screenshot to {}: {e}", dest.display()));
    }
}

/// Rows of the findings table the filter hid.
fn hidden_rows(dom: &str) -> u64 {
    dom.split("<tr ")
        .filter(|r| r.contains("data-severity=") && r.split('>').next().unwrap().contains(" hidden"))
        .count() as u64
}

#[test]
fn what_files_say_is_shown_never_run_and_the_page_loads_nothing() {
    let env = TestEnv::new();
    let tree = env.init("k", &["--quiet"]);
    // A certificate whose CN and SAN are markup, where the catalog table and the findings show them.
    let cn = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">";
    let mut params = rcgen::CertificateParams::new(vec!["<b>san</b>.example".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(tree.join("pki/front-proxy-client.crt"), cert.pem()).unwrap();
    let (page, _) = write_report(&env);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>document"), "markup from a file is in the page as markup");
    assert!(!html.contains("<img") && !html.contains("<b>san"), "markup from a file is in the page as markup");
    // No URL at all but the SVG namespace (a name, never fetched).
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!rest.contains("http://") && !rest.contains("https://"), "the page names a URL");

    let b = chromium(&env, &page, "", &["--dump-dom"]);
    let t = selftest(&b.dom);
    assert_quiet(&b, &t);
    assert_eq!(t["scripts"], 2, "only the page's own two scripts: {t}");
    assert!(b.dom.contains("<title>kubepki report: k</title>"), "the page's title changed");
    assert!(!b.dom.contains("pwned</title>"));
    // Shown as text, in the catalog table.
    assert!(b.dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x"), "the CN is not shown");
    assert!(b.dom.contains("DNS:&lt;b&gt;san&lt;/b&gt;.example"), "the SAN is not shown");
}

#[test]
fn a_large_cluster_folds_per_file_and_keeps_what_is_not_ok_apart() {
    let env = TestEnv::new();
    env.write(
        "cluster.yaml",
        "nodes:\n- {name: cp1, role: control-plane, addresses: [10.0.0.1]}\n\
         nodePools:\n- {namePattern: \"worker-{index:02}\", role: worker, count: 20, firstAddress: 10.1.0.1}\n",
    );
    env.kubepki_ok(&["init", "--config", "cluster.yaml", "--dir", "k", "--quiet"]);
    std::fs::remove_file(env.path().join("k/nodes/worker-07/var/lib/kubelet/pki/kubelet.crt")).unwrap();
    let (page, _) = write_report(&env);
    let html = std::fs::read_to_string(&page).unwrap();
    // One row for the 20 kubelet serving certificates left (19 workers', the control plane's),
    // the missing one on its own; a file only one node has keeps its name.
    assert!(html.contains("<td>nodes/&lt;node&gt;/var/lib/kubelet/pki/kubelet.crt × 20</td>"), "no folded row");
    assert!(html.contains("<td>nodes/cp1/etc/kubernetes/pki/apiserver.crt</td>"), "a single row renamed");
    assert!(html.contains("<td>nodes/worker-07/var/lib/kubelet/pki/kubelet.crt</td>"), "the missing file folded");
    assert!(!html.contains("<td>nodes/worker-08/var/lib/kubelet/pki/kubelet.crt</td>"), "an ok row not folded");
    let rows = html.matches("<tr class=\"c-").count();
    let check = env.kubepki(&["check", "--dir", "k", "-o", "json"]);
    let entries =
        serde_json::from_slice::<serde_json::Value>(&check.stdout).unwrap()["entries"].as_array().unwrap().len();
    assert!(rows * 2 < entries, "{rows} catalog rows for {entries} certificates");
    // The folded rows still count every certificate.
    let counted: usize = html
        .split("<tr class=\"c-")
        .skip(1)
        .map(|r| r.split("data-count=\"").nth(1).unwrap().split('"').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, entries);
}

#[test]
fn report_names_what_it_cannot_read_and_writes_to_stdout() {
    let env = TestEnv::new();
    let out = env.kubepki(&["report", "--dir", "nowhere", "--out", "r.html"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere") && err.contains("no such directory"), "{err}");
    assert!(!env.path().join("r.html").exists());

    env.init("k", &["--quiet"]);
    let out = env.kubepki(&["report", "--dir", "k", "--out", "k/pki/ca.crt/r.html"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k/pki/ca.crt"), "{err}");

    // Mid-rotation, the page says where the rotation stands and what comes next.
    env.kubepki_ok(&["rotate-ca", "front-proxy-ca", "start", "--dir", "k"]);
    let html = env.kubepki_ok(&["report", "--dir", "k", "--out", "-"]);
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"), "{}", &html[..80]);
    let row =
        html.split("<tr data-ca=\"front-proxy-ca\"").nth(1).expect("a rotation row").split("</tr>").next().unwrap();
    assert!(row.starts_with(" data-phase=\"start\""), "{row}");
    assert!(row.contains("<code>kubepki rotate-ca front-proxy-ca reissue</code>"), "{row}");
    assert!(row.contains("controlplane: "), "what to roll out first: {row}");
    assert!(html.contains("<tr data-ca=\"ca\" data-phase=\"none\">"), "another CA's row");
}
