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

/// Why `s` is not an RFC 1123 subdomain ([`is_dns1123_subdomain`]; `None`: it is one), in
/// words a person can act on.
pub fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if s.len() > 253 {
        return Some(format!("it is {} characters long, more than 253", s.len()));
    }
    // The first label that breaks the rule, said why.
    let label = s.split('.').find(|l| !is_dns1123_label(l))?;
    let b = label.as_bytes();
    let why = if b.is_empty() {
        "a label is empty (two dots in a row, or a dot at an end)".to_string()
    } else if b.len() > 63 {
        format!("a label is {} characters long, more than 63", b.len())
    } else if let Some(c) = label.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        match c {
            'A'..='Z' => format!("'{c}' is uppercase (names are lowercase)"),
            _ => format!("{c:?} is not allowed"),
        }
    } else {
        "a label starts or ends with '-'".to_string()
    };
    Some(why)
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
            assert!(dns1123_subdomain_problem(bad).is_some(), "{bad:?}: no reason given");
        }
        assert_eq!(dns1123_subdomain_problem("node-01.example.com"), None);
        assert_eq!(dns1123_subdomain_problem(&"a".repeat(70)).unwrap(), "a label is 70 characters long, more than 63");
        assert_eq!(dns1123_subdomain_problem("Node01").unwrap(), "'N' is uppercase (names are lowercase)");
        assert!(is_san_dns_name("*.apps.example.com"));
        assert!(is_san_dns_name("LB.Example.com"));
        assert!(!is_san_dns_name("*"));
        assert!(!is_san_dns_name("a.*.b"));
    }
}
