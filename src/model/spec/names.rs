//! DNS name rules, as Kubernetes applies them (k8s.io/apimachinery validation).

/// An RFC 1123 label: 1 to 63 of `a-z 0-9 -`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// An RFC 1123 subdomain (what node names must be): dot-separated labels, at most 253 long.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// A DNS name for a certificate SAN: a subdomain (case-insensitive) whose first label may be `*`.
pub fn is_san_dns_name(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    is_dns1123_subdomain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns1123_subdomain("node-01.example.com"));
        assert!(is_dns1123_subdomain("controlplane"));
        for bad in ["", "Node01", "-a", "a-", "a..b", "a_b", "a.", &"x".repeat(64)] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?} accepted");
        }
        assert!(is_san_dns_name("*.apps.example.com"));
        assert!(is_san_dns_name("LB.Example.com"));
        assert!(!is_san_dns_name("*"));
        assert!(!is_san_dns_name("a.*.b"));
    }
}
