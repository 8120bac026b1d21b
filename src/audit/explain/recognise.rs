//! Finding TLS error messages in text as the tools print them: Go's crypto/x509 and crypto/tls
//! (kubectl, client-go, kube-apiserver, the kubelet, etcd, etcdctl), openssl, curl and Python's
//! ssl and urllib3. Each message is matched by a fixed phrase (no regular expressions: the
//! phrases are the tools' own format strings), then its evidence (names, addresses, times, the
//! candidate CA) is read from the text around it.

use super::{Cause, Evidence, Message, Program, Side, Source};

/// One phrase and what it means. The first phrase of the table that matches a span wins over
/// later ones that overlap it, so specific phrases come before the generic ones they contain.
struct Phrase {
    needle: &'static str,
    cause: Cause,
    source: Source,
    /// Whose certificate is at fault when the message is read by a client (the process that
    /// printed it dialled out); a server's view flips the remote alerts.
    side: Side,
    /// Reads the evidence that follows the phrase; returns how far the message goes past it.
    read: fn(&str, &mut Evidence) -> usize,
}

const PHRASES: &[Phrase] = &[
    // Go crypto/x509.
    go(
        "x509: certificate signed by unknown authority",
        Cause::UnknownAuthority,
        Side::Server,
        read_candidate_authority,
    ),
    go("x509: certificate is valid for ", Cause::NameMismatch, Side::Server, read_valid_for),
    go(
        "x509: certificate is not valid for any names, but wanted to match ",
        Cause::NameMismatch,
        Side::Server,
        read_wanted,
    ),
    go("x509: cannot validate certificate for ", Cause::NoIpSans, Side::Server, read_no_ip_sans),
    go("x509: certificate relies on legacy Common Name field", Cause::LegacyCommonName, Side::Server, read_nothing),
    go("x509: certificate has expired or is not yet valid", Cause::Expired, Side::Server, read_validity_times),
    go("x509: certificate specifies an incompatible key usage", Cause::IncompatibleUsage, Side::Server, read_nothing),
    go("x509: certificate is not authorized to sign other certificates", Cause::NotACa, Side::Server, read_nothing),
    // Go crypto/tls, the alerts a peer sent back.
    go("remote error: tls: unknown certificate authority", Cause::RemoteUnknownCa, Side::Client, read_nothing),
    go("remote error: tls: bad certificate", Cause::RemoteBadCertificate, Side::Client, read_nothing),
    go("remote error: tls: unsupported certificate", Cause::RemoteUnsupportedCertificate, Side::Client, read_nothing),
    go("remote error: tls: certificate required", Cause::RemoteCertificateRequired, Side::Client, read_nothing),
    go("remote error: tls: expired certificate", Cause::RemoteExpired, Side::Client, read_nothing),
    go("tls: client didn't provide a certificate", Cause::RemoteCertificateRequired, Side::Client, read_nothing),
    go("tls: private key does not match public key", Cause::KeyMismatch, Side::Client, read_nothing),
    // kubectl and client-go: TLS worked, the apiserver did not authenticate the credential.
    phrase("You must be logged in to the server", Cause::Unauthorized, Source::Kubectl, Side::Client, read_parenthesis),
    phrase("Unauthorized", Cause::Unauthorized, Source::Kubectl, Side::Client, read_nothing),
    // etcdctl (clientv3): the handshake failed and the client was told nothing.
    phrase("all SubConns are in TransientFailure", Cause::NoReason, Source::Etcdctl, Side::Client, read_nothing),
    // curl, in front of openssl's reasons.
    phrase("SSL certificate problem: ", Cause::UnknownAuthority, Source::Curl, Side::Server, read_openssl_reason),
    phrase(
        "no alternative certificate subject name matches target host name ",
        Cause::NameMismatch,
        Source::Curl,
        Side::Server,
        read_quoted_host,
    ),
    phrase("unable to set private key file", Cause::KeyMismatch, Source::Curl, Side::Client, read_nothing),
    // Python's ssl (also inside urllib3's MaxRetryError).
    phrase(
        "IP address mismatch, certificate is not valid for ",
        Cause::NameMismatch,
        Source::Python,
        Side::Server,
        read_quoted_host,
    ),
    phrase(
        "Hostname mismatch, certificate is not valid for ",
        Cause::NameMismatch,
        Source::Python,
        Side::Server,
        read_quoted_host,
    ),
    phrase("hostname '", Cause::NameMismatch, Source::Python, Side::Server, read_python_hostname),
    phrase("certificate verify failed: ", Cause::UnknownAuthority, Source::Python, Side::Server, read_openssl_reason),
    // openssl's alerts (s_client, curl, Python print the same words).
    phrase("alert unknown ca", Cause::RemoteUnknownCa, Source::Openssl, Side::Client, read_nothing),
    phrase("alert bad certificate", Cause::RemoteBadCertificate, Source::Openssl, Side::Client, read_nothing),
    phrase(
        "alert unsupported certificate",
        Cause::RemoteUnsupportedCertificate,
        Source::Openssl,
        Side::Client,
        read_nothing,
    ),
    phrase("alert certificate required", Cause::RemoteCertificateRequired, Source::Openssl, Side::Client, read_nothing),
    phrase("alert certificate expired", Cause::RemoteExpired, Source::Openssl, Side::Client, read_nothing),
    phrase("key values mismatch", Cause::KeyMismatch, Source::Openssl, Side::Client, read_nothing),
    // openssl verify / s_client: `error 20 at 0 depth lookup: REASON`, `verify error:num=20:REASON`,
    // `Verify return code: 20 (REASON)`; the reason phrases themselves, last.
    phrase(" depth lookup: ", Cause::UnknownAuthority, Source::Openssl, Side::Server, read_openssl_reason),
    phrase("verify error:num=", Cause::UnknownAuthority, Source::Openssl, Side::Server, read_openssl_num),
    phrase("Verify return code: ", Cause::UnknownAuthority, Source::Openssl, Side::Server, read_openssl_num),
];

const fn go(needle: &'static str, cause: Cause, side: Side, read: fn(&str, &mut Evidence) -> usize) -> Phrase {
    Phrase { needle, cause, source: Source::Go, side, read }
}

const fn phrase(
    needle: &'static str,
    cause: Cause,
    source: Source,
    side: Side,
    read: fn(&str, &mut Evidence) -> usize,
) -> Phrase {
    Phrase { needle, cause, source, side, read }
}

/// openssl's reason phrases (`X509_verify_cert_error_string`), as curl, Python and openssl print
/// them, in the order they are tried.
const OPENSSL_REASONS: &[(&str, Cause)] = &[
    ("unable to get local issuer certificate", Cause::UnknownAuthority),
    ("unable to get issuer certificate", Cause::UnknownAuthority),
    ("unable to verify the first certificate", Cause::UnknownAuthority),
    ("self-signed certificate in certificate chain", Cause::UnknownAuthority),
    ("self signed certificate in certificate chain", Cause::UnknownAuthority),
    ("self-signed certificate", Cause::SelfSigned),
    ("self signed certificate", Cause::SelfSigned),
    ("certificate signature failure", Cause::SignatureFailure),
    ("certificate has expired", Cause::Expired),
    ("certificate is not yet valid", Cause::NotYetValid),
    ("unsupported certificate purpose", Cause::IncompatibleUsage),
    ("hostname mismatch", Cause::NameMismatch),
    ("IP address mismatch", Cause::NameMismatch),
    ("invalid CA certificate", Cause::NotACa),
];

/// A match of a phrase in one line.
struct Hit {
    start: usize,
    end: usize,
    phrase: usize,
    cause: Cause,
    evidence: Evidence,
}

/// Every message in `input`, in order; the same message repeated (a traceback, a retrying
/// client) is kept once.
pub(super) fn messages(input: &str) -> Vec<Message> {
    let lines: Vec<String> = input.lines().map(unescape).collect();
    let mut out: Vec<Message> = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let body = strip_klog(line);
        let mut hits = hits(body);
        // The evidence of the whole line (the URL dialled, the peer), and of the lines around
        // it for openssl's multi-line output (the subject before, the file after).
        let context =
            line_context(body, lines.get(n.wrapping_sub(1)).map(String::as_str), lines.get(n + 1).map(String::as_str));
        let mut previous_end = 0;
        for hit in hits.drain(..) {
            let p = &PHRASES[hit.phrase];
            let window = &body[previous_end..hit.start];
            previous_end = hit.end;
            let server_view = server_view(body, window);
            let mut side = p.side;
            if hit.cause.is_remote_alert() && server_view {
                side = Side::Server;
            } else if !hit.cause.is_remote_alert() && client_cert_context(window) {
                side = Side::Client;
            }
            let mut evidence = hit.evidence;
            evidence.merge(&context);
            let text = trim_unbalanced(&body[hit.start..hit.end]).to_string();
            let m = Message { line: n + 1, text, cause: hit.cause, side, source: p.source, server_view, evidence };
            if !out.iter().any(|o| o.same_as(&m)) {
                out.push(m);
            }
        }
    }
    out
}

/// A message without the separators and closing quotes of the text around it.
fn trim_unbalanced(mut text: &str) -> &str {
    loop {
        text = text.trim_end_matches([',', ' ', ';']);
        match text.chars().next_back() {
            Some(q @ ('"' | '\'')) if quotes(text, q) % 2 == 1 => text = &text[..text.len() - 1],
            _ => return text,
        }
    }
}

/// How many quote characters `q` a text has, apostrophes (`doesn't`) not counted.
fn quotes(text: &str, q: char) -> usize {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i] == q)
        .filter(|&i| !(i > 0 && chars[i - 1].is_alphabetic() && chars.get(i + 1).is_some_and(|c| c.is_alphabetic())))
        .count()
}

/// Every phrase's matches in a line, overlaps resolved by the table's order, sorted by position.
fn hits(body: &str) -> Vec<Hit> {
    let mut found: Vec<Hit> = Vec::new();
    for (i, p) in PHRASES.iter().enumerate() {
        let mut from = 0;
        while let Some(at) = body[from..].find(p.needle) {
            let start = from + at;
            let after = start + p.needle.len();
            from = after;
            if p.needle == "Unauthorized" && !standalone_unauthorized(body, start) {
                continue;
            }
            let mut evidence = Evidence::default();
            let used = (p.read)(&body[after..], &mut evidence);
            let cause = evidence.cause.take().unwrap_or(p.cause);
            let end = after + used;
            if found.iter().any(|h| start < h.end && h.start < end) {
                continue;
            }
            found.push(Hit { start, end, phrase: i, cause, evidence });
        }
    }
    // An openssl reason read after a generic prefix that names no known reason is no message.
    found.retain(|h| {
        !(matches!(PHRASES[h.phrase].source, Source::Openssl | Source::Curl | Source::Python)
            && h.evidence.unknown_reason)
    });
    found.sort_by_key(|h| h.start);
    found
}

/// kubectl prints `error: You must be logged in to the server (Unauthorized)`; a bare
/// `Unauthorized` counts only as a word of its own on an error line, not inside a URL or a name.
fn standalone_unauthorized(body: &str, start: usize) -> bool {
    let before = body[..start].chars().next_back();
    let after = body[start + "Unauthorized".len()..].chars().next();
    let word = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '/' && c != '-');
    word(before) && word(after) && !body[..start].ends_with("You must be logged in to the server (")
}

/// Whether the process that printed the line is the server: it rejected a connection, or a
/// handshake from a client failed.
fn server_view(body: &str, window: &str) -> bool {
    body.contains("rejected connection from")
        || body.contains("TLS handshake error from")
        || client_cert_context(window)
        || body.contains("ACCEPT") && body.contains("s_server")
}

/// The text before a message says the certificate checked was a client's.
fn client_cert_context(window: &str) -> bool {
    window.contains("failed to verify client certificate")
        || window.contains("failed to verify client's certificate")
        || window.contains("client certificate")
}

/// Go's `x509: certificate signed by unknown authority (possibly because of "ERR" while trying
/// to verify candidate authority certificate "NAME")`.
fn read_candidate_authority(rest: &str, e: &mut Evidence) -> usize {
    let key = " (possibly because of ";
    if !rest.starts_with(key) {
        return 0;
    }
    let marker = "candidate authority certificate \"";
    let Some(at) = rest.find(marker) else { return 0 };
    let name_start = at + marker.len();
    let Some(len) = rest[name_start..].find('"') else { return 0 };
    e.authority = Some(rest[name_start..name_start + len].to_string());
    e.signature_mismatch = rest[..at].contains("verification error") || rest[..at].contains("verification failure");
    let end = name_start + len + 1;
    end + usize::from(rest[end..].starts_with(')'))
}

/// Go's `x509: certificate is valid for A, B, not C`.
fn read_valid_for(rest: &str, e: &mut Evidence) -> usize {
    let Some(at) = rest.find(", not ") else { return 0 };
    e.valid_for = rest[..at].split(", ").map(str::to_string).collect();
    let host_start = at + ", not ".len();
    let len = rest[host_start..]
        .find(|c: char| c == '"' || c == '\'' || c == ',' || c.is_whitespace())
        .unwrap_or(rest.len() - host_start);
    e.host = Some(rest[host_start..host_start + len].to_string());
    host_start + len
}

/// Go's `... any names, but wanted to match HOST`.
fn read_wanted(rest: &str, e: &mut Evidence) -> usize {
    let len = rest.find(|c: char| c == '"' || c == '\'' || c == ',' || c.is_whitespace()).unwrap_or(rest.len());
    e.host = Some(rest[..len].to_string());
    len
}

/// Go's `x509: cannot validate certificate for IP because it doesn't contain any IP SANs`.
fn read_no_ip_sans(rest: &str, e: &mut Evidence) -> usize {
    let tail = " because it doesn't contain any IP SANs";
    let Some(at) = rest.find(tail) else { return 0 };
    e.host = Some(rest[..at].to_string());
    at + tail.len()
}

/// Go's `...: current time T is after T2` (expired) or `is before T2` (not yet valid).
fn read_validity_times(rest: &str, e: &mut Evidence) -> usize {
    let Some(r) = rest.strip_prefix(": current time ") else { return 0 };
    let Some((now, tail)) = r.split_once(' ') else { return 0 };
    let (cause, bound) = if let Some(b) = tail.strip_prefix("is after ") {
        (Cause::Expired, b)
    } else if let Some(b) = tail.strip_prefix("is before ") {
        (Cause::NotYetValid, b)
    } else {
        return 0;
    };
    let value = bound.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')').next().unwrap_or("");
    e.current_time = Some(now.to_string());
    match cause {
        Cause::Expired => e.not_after = Some(value.to_string()),
        _ => e.not_before = Some(value.to_string()),
    }
    e.cause = Some(cause);
    rest.len() - bound.len() + value.len()
}

fn read_nothing(_: &str, _: &mut Evidence) -> usize {
    0
}

/// kubectl's `(Unauthorized)` after "You must be logged in to the server".
fn read_parenthesis(rest: &str, _: &mut Evidence) -> usize {
    match rest.strip_prefix(" (") {
        Some(r) => r.find(')').map_or(0, |i| i + 3),
        None => 0,
    }
}

/// A host in quotes: curl's `'127.0.0.5'`, Python's `'127.0.0.5'.`.
fn read_quoted_host(rest: &str, e: &mut Evidence) -> usize {
    let q = match rest.chars().next() {
        Some(c @ ('\'' | '"')) => c,
        _ => return 0,
    };
    let Some(len) = rest[1..].find(q) else { return 0 };
    e.host = Some(rest[1..1 + len].to_string());
    len + 2
}

/// urllib3's `hostname 'H' doesn't match either of 'A', 'B'` (or `doesn't match 'A'`).
fn read_python_hostname(rest: &str, e: &mut Evidence) -> usize {
    let Some(len) = rest.find('\'') else { return 0 };
    let after = &rest[len + 1..];
    let Some(list) = after.strip_prefix(" doesn't match either of ").or_else(|| after.strip_prefix(" doesn't match "))
    else {
        e.unknown_reason = true;
        return 0;
    };
    e.host = Some(rest[..len].to_string());
    let mut used = rest.len() - list.len();
    let mut names = list;
    while let Some(inner) = names.strip_prefix('\'') {
        let Some(end) = inner.find('\'') else { break };
        e.valid_for.push(inner[..end].to_string());
        used += end + 2;
        names = &inner[end + 1..];
        match names.strip_prefix(", ") {
            Some(next) if next.starts_with('\'') => {
                used += 2;
                names = next;
            }
            _ => break,
        }
    }
    used
}

/// openssl's reason after a prefix (`SSL certificate problem: `, `depth lookup: `, ...).
fn read_openssl_reason(rest: &str, e: &mut Evidence) -> usize {
    for (reason, cause) in OPENSSL_REASONS {
        if rest.starts_with(reason) {
            e.cause = Some(*cause);
            let mut used = reason.len();
            // Python: `IP address mismatch, certificate is not valid for '127.0.0.5'.`
            if let Some(q) = rest[used..].strip_prefix(", certificate is not valid for ") {
                used += ", certificate is not valid for ".len() + read_quoted_host(q, e);
            }
            return used;
        }
    }
    e.unknown_reason = true;
    0
}

/// openssl's `20:unable to get local issuer certificate` or `20 (unable to get ...)`; code 0 is "ok".
fn read_openssl_num(rest: &str, e: &mut Evidence) -> usize {
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    if digits == 0 || &rest[..digits] == "0" {
        e.unknown_reason = true;
        return 0;
    }
    let after = &rest[digits..];
    let (reason, sep) = match (after.strip_prefix(" ("), after.strip_prefix(':')) {
        (Some(r), _) => (r, 2),
        (None, Some(r)) => (r, 1),
        (None, None) => {
            e.unknown_reason = true;
            return 0;
        }
    };
    let used = read_openssl_reason(reason, e);
    if e.unknown_reason {
        return 0;
    }
    digits + sep + used + usize::from(sep == 2 && reason[used..].starts_with(')'))
}

/// Evidence on a line outside the message: the URL or host:port dialled, the peer a server
/// names; openssl verify's subject line before and `error FILE: verification failed` after.
fn line_context(body: &str, before: Option<&str>, after: Option<&str>) -> Evidence {
    let mut e = Evidence::default();
    if let Some(url) = url_in(body) {
        e.address = Some(url);
    } else if let Some(hp) = python_pool(body) {
        e.address = Some(hp);
    }
    for key in ["rejected connection from \"", "TLS handshake error from "] {
        if let Some(at) = body.find(key) {
            let rest = &body[at + key.len()..];
            let len = rest.find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(rest.len());
            e.peer = Some(rest[..len].trim_end_matches(':').to_string());
        }
    }
    if body.contains("rejected connection from") || body.contains("clientv3") || body.contains("unary invoker") {
        e.program = Some(Program::Etcd);
    } else if body.contains("Unable to connect to the server") || body.contains("You must be logged in to the server") {
        e.program = Some(Program::Kubectl);
    } else if body.contains("Failed to scrape node") || body.contains("scraper.go") {
        e.program = Some(Program::MetricsServer);
    }
    if let Some(subject) = before.and_then(subject_line) {
        e.subject_cn = Some(subject);
    }
    if let Some(file) =
        after.and_then(|l| l.strip_prefix("error ")).and_then(|l| l.strip_suffix(": verification failed"))
    {
        e.file = Some(file.to_string());
    }
    if let Some(file) = body.strip_prefix("error ").and_then(|l| l.strip_suffix(": verification failed")) {
        e.file = Some(file.to_string());
    }
    e
}

/// `CN = kube-apiserver`, `depth=0 CN = kube-apiserver`, `subject=CN = x`: the CN.
fn subject_line(line: &str) -> Option<String> {
    let at = line.find("CN = ")?;
    let rest = &line[at + 5..];
    Some(rest.split(',').next().unwrap_or(rest).trim().to_string())
}

/// The first `https://HOST:PORT` on a line (Go quotes URLs: `Get "https://...": ...`).
fn url_in(body: &str) -> Option<String> {
    let at = body.find("https://")?;
    let rest = &body[at + "https://".len()..];
    let len =
        rest.find(|c: char| c == '/' || c == '"' || c == '\'' || c == '?' || c.is_whitespace()).unwrap_or(rest.len());
    let hostport = rest[..len].trim_end_matches(':');
    (!hostport.is_empty()).then(|| hostport.to_string())
}

/// urllib3's `HTTPSConnectionPool(host='127.0.0.1', port=6443)`.
fn python_pool(body: &str) -> Option<String> {
    let at = body.find("HTTPSConnectionPool(host='")?;
    let rest = &body[at + "HTTPSConnectionPool(host='".len()..];
    let host = &rest[..rest.find('\'')?];
    let port_at = rest.find("port=")? + "port=".len();
    let port: String = rest[port_at..].chars().take_while(char::is_ascii_digit).collect();
    Some(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

/// Logs as pasted: JSON-escaped quotes (`\"`, `\\\"`) become plain quotes.
fn unescape(line: &str) -> String {
    line.replace("\\\\\\\"", "\"").replace("\\\"", "\"")
}

/// A klog header (`E1129 12:00:00.000000    1234 file.go:12] `) removed.
fn strip_klog(line: &str) -> &str {
    let b = line.as_bytes();
    let header = b.len() > 22
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[8] == b':';
    if !header {
        return line;
    }
    match line.find("] ") {
        Some(at) if at < 80 => &line[at + 2..],
        _ => line,
    }
}
