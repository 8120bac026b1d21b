use super::*;

fn one(text: &str) -> Message {
    let m = recognise(text);
    assert_eq!(m.len(), 1, "{text}: {m:#?}");
    m.into_iter().next().unwrap()
}

#[test]
fn go_unknown_authority_with_a_same_name_candidate() {
    let m =
        one("Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown \
         authority (possibly because of \"x509: ECDSA verification failure\" while trying to verify candidate \
         authority certificate \"kubernetes\")");
    assert_eq!((m.cause, m.side, m.source), (Cause::UnknownAuthority, Side::Server, Source::Go));
    assert_eq!(m.evidence.authority.as_deref(), Some("kubernetes"));
    assert!(m.evidence.signature_mismatch);
    assert_eq!(m.evidence.program, Some(Program::Kubectl));
    assert!(m.text.ends_with("\"kubernetes\")"), "{}", m.text);
    assert!(plain(&m).contains("same name"), "{}", plain(&m));
}

#[test]
fn go_name_mismatch_lists_names_and_host() {
    let m = one(
        "Get \"https://127.0.0.5:6443/healthz\": x509: certificate is valid for 10.96.0.1, 127.0.0.1, not 127.0.0.5",
    );
    assert_eq!(m.cause, Cause::NameMismatch);
    assert_eq!(m.evidence.valid_for, ["10.96.0.1", "127.0.0.1"]);
    assert_eq!(m.evidence.host.as_deref(), Some("127.0.0.5"));
    assert_eq!(m.evidence.address.as_deref(), Some("127.0.0.5:6443"));
}

#[test]
fn klog_line_with_escaped_quotes_and_two_errors() {
    let line = r#"E1129 12:00:00.000000    1234 reflector.go:158] "Unhandled Error" err="Get \"https://10.0.0.5:10250/stats\": tls: failed to verify certificate: x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs; Get \"https://10.0.0.6:10250/stats\": x509: certificate has expired or is not yet valid: current time 2026-11-29T12:00:00Z is after 2025-02-03T10:00:00Z""#;
    let m = recognise(line);
    assert_eq!(m.len(), 2, "{m:#?}");
    assert_eq!(m[0].cause, Cause::NoIpSans);
    assert_eq!(m[0].evidence.host.as_deref(), Some("10.0.0.5"));
    assert_eq!(m[1].cause, Cause::Expired);
    assert_eq!(m[1].evidence.not_after.as_deref(), Some("2025-02-03T10:00:00Z"));
    assert_eq!(m[1].evidence.current_time.as_deref(), Some("2026-11-29T12:00:00Z"));
    assert!(plain(&m[1]).contains("expired at 2025-02-03T10:00:00Z"));
}

#[test]
fn etcd_rejection_is_the_servers_view() {
    let m = one(
        r#"{"level":"warn","msg":"rejected connection","remote-addr":"x"} embed: rejected connection from "127.0.0.1:45678" (error "tls: failed to verify client certificate: x509: certificate signed by unknown authority", ServerName "")"#,
    );
    assert_eq!((m.cause, m.side), (Cause::UnknownAuthority, Side::Client));
    assert_eq!(m.evidence.peer.as_deref(), Some("127.0.0.1:45678"));
    assert_eq!(m.evidence.program, Some(Program::Etcd));
    let m =
        one(r#"rejected connection from "127.0.0.1:5555" (error "remote error: tls: bad certificate", ServerName "")"#);
    assert_eq!((m.cause, m.side), (Cause::RemoteBadCertificate, Side::Server));
}

#[test]
fn remote_alerts_seen_by_a_client_blame_the_client_certificate() {
    for (text, cause) in [
        ("error: remote error: tls: unknown certificate authority", Cause::RemoteUnknownCa),
        ("remote error: tls: unsupported certificate", Cause::RemoteUnsupportedCertificate),
        ("remote error: tls: certificate required", Cause::RemoteCertificateRequired),
        (
            "error:0A000418:SSL routines::tlsv1 alert unknown ca:../ssl/record/rec_layer_s3.c:1586:SSL alert number 48",
            Cause::RemoteUnknownCa,
        ),
    ] {
        let m = one(text);
        assert_eq!((m.cause, m.side), (cause, Side::Client), "{text}");
    }
}

#[test]
fn openssl_curl_and_python_reasons() {
    let text = "CN = kube-apiserver\nerror 20 at 0 depth lookup: unable to get local issuer certificate\nerror theirs/pki/apiserver.crt: verification failed\n";
    let m = one(text);
    assert_eq!((m.cause, m.source, m.line), (Cause::UnknownAuthority, Source::Openssl, 2));
    assert_eq!(m.evidence.subject_cn.as_deref(), Some("kube-apiserver"));
    assert_eq!(m.evidence.file.as_deref(), Some("theirs/pki/apiserver.crt"));
    let m = one("Verify return code: 10 (certificate has expired)");
    assert_eq!(m.cause, Cause::Expired);
    assert!(recognise("Verify return code: 0 (ok)").is_empty());
    let m = one("curl: (60) SSL certificate problem: self-signed certificate");
    assert_eq!((m.cause, m.source), (Cause::SelfSigned, Source::Curl));
    let m = one("curl: (60) SSL: no alternative certificate subject name matches target host name '127.0.0.5'");
    assert_eq!((m.cause, m.evidence.host.as_deref()), (Cause::NameMismatch, Some("127.0.0.5")));
    let m = one("urllib3.exceptions.MaxRetryError: HTTPSConnectionPool(host='127.0.0.1', port=18443): Max retries exceeded with url: /api/v1/namespaces (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'. (_ssl.c:992)')))");
    assert_eq!((m.cause, m.source), (Cause::NameMismatch, Source::Python));
    assert_eq!(m.evidence.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(m.evidence.address.as_deref(), Some("127.0.0.1:18443"));
}

#[test]
fn kubectl_unauthorized_and_repeats_kept_once() {
    let m = one("error: You must be logged in to the server (Unauthorized)\nerror: You must be logged in to the server (Unauthorized)");
    assert_eq!((m.cause, m.side), (Cause::Unauthorized, Side::Client));
    assert!(recognise("GET /apis/authorization/UnauthorizedThing 200").is_empty());
    assert!(recognise("everything is fine").is_empty());
}

#[test]
fn urllib3_hostname_mismatch_lists_the_names() {
    let m = one("urllib3.exceptions.MaxRetryError: HTTPSConnectionPool(host='127.0.0.1', port=6443): Max retries exceeded with url: /api (Caused by SSLError(CertificateError(\"hostname '127.0.0.1' doesn't match either of 'controlplane', '10.96.0.1'\")))");
    assert_eq!((m.cause, m.source), (Cause::NameMismatch, Source::Python));
    assert_eq!(m.evidence.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(m.evidence.valid_for, ["controlplane", "10.96.0.1"]);
    assert!(m.text.ends_with("'10.96.0.1'"), "{}", m.text);
}

#[test]
fn etcdctl_gives_no_reason_and_says_where_to_look() {
    let text = r#"{"level":"warn","ts":"2026-11-30T00:01:03.241Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-2dc4/127.0.0.1:23791","attempt":0,"error":"rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure"}
Error: context deadline exceeded"#;
    let m = one(text);
    assert_eq!((m.cause, m.source), (Cause::NoReason, Source::Etcdctl));
    assert_eq!(m.evidence.program, Some(Program::Etcd));
    assert!(plain(&m).contains("rejected connection from"), "{}", plain(&m));
}

/// Pieces of messages, cut anywhere, mixed with multi-byte text and quotes: never a panic
/// (every cut is tried at every char boundary).
#[test]
fn any_text_is_read_without_panicking() {
    let samples = [
        "verify error:num=20é:unable to get local issuer certificate",
        "Verify return code: 2ü (unable",
        "x509: certificate is valid for ö, ä, not ü\"",
        "x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs",
        "x509: certificate has expired or is not yet valid: current time 2026-11-29T12:00:00Z is after ✓",
        "x509: certificate signed by unknown authority (possibly because of \"x\" while trying to verify candidate authority certificate \"kü",
        "hostname 'é' doesn't match either of 'a', 'ß",
        "E1129 12:00:00.000000  1 x.go:1] rejected connection from \"ü:1\" (error \"remote error: tls: bad certificate\"",
        "HTTPSConnectionPool(host='ä', port=6443): certificate verify failed: IP address mismatch, certificate is not valid for 'é'",
        "curl: (60) SSL: no alternative certificate subject name matches target host name 'ü",
        "CN = ü\nerror 20 at 0 depth lookup: self-signed certificate\nerror ü.crt: verification failed",
    ];
    for s in samples {
        for (i, _) in s.char_indices() {
            let _ = recognise(&s[..i]);
            let _ = recognise(&s[i..]);
        }
        let _ = recognise(s);
    }
}

#[test]
fn metrics_servers_scrape_without_ip_sans_is_its_own() {
    let m = one(
        "E1130 10:00:00.000000       1 scraper.go:149] \"Failed to scrape node\" err=\"Get \\\"https://10.0.23.26:10250/metrics/resource\\\": x509: cannot validate certificate for 10.0.23.26 because it doesn't contain any IP SANs\" node=\"w1\"",
    );
    assert_eq!(m.cause, Cause::NoIpSans);
    assert_eq!(m.evidence.program, Some(Program::MetricsServer));
    assert_eq!(m.evidence.address.as_deref(), Some("10.0.23.26:10250"));
}
