//! Kubernetes API syntax rules for names, label keys and values, and port names, plus the
//! size limits weir puts on hostile input.
//!
//! Each check returns the message Kubernetes' own validation would give (close to
//! `k8s.io/apimachinery/pkg/util/validation`), so errors read familiar.

/// Most labels one object may carry. Kubernetes has no count limit; weir caps it so that a
/// hostile manifest cannot blow up selector evaluation.
pub const MAX_LABELS: usize = 256;
/// Most requirements (matchLabels + matchExpressions) one selector may have.
pub const MAX_SELECTOR_TERMS: usize = 256;
/// Most values one `In`/`NotIn` requirement may list.
pub const MAX_SELECTOR_VALUES: usize = 1024;
/// Most rules per direction in one policy, peers per rule and ports per rule.
pub const MAX_LIST_ITEMS: usize = 1024;
/// Most `except` entries in one ipBlock.
pub const MAX_EXCEPT: usize = 1024;

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A DNS-1123 label: at most 63 characters, lower-case alphanumerics or '-', starting and
/// ending with an alphanumeric (namespace names).
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 63 {
        return Err(format!("{s:?} must be no more than 63 characters"));
    }
    let ok = s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be a lowercase RFC 1123 label: lower case alphanumeric characters or '-', starting and ending with an alphanumeric character"
        ))
    }
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated DNS-1123 labels (object names).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!("must be no more than 253 characters (has {})", s.len()));
    }
    let ok = s.split('.').all(|part| {
        !part.is_empty()
            && part.chars().all(|c| is_alnum_lower(c) || c == '-')
            && part.starts_with(is_alnum_lower)
            && part.ends_with(is_alnum_lower)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character"
        ))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(is_name_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label key: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63 characters of
/// alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric.
pub fn label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|e| format!("label key {s:?}: prefix {e}"))?;
    }
    if qualified_name_part(name) {
        Ok(())
    } else {
        Err(format!(
            "label key {s:?}: name part must be 1 to 63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric character"
        ))
    }
}

/// A label value: empty, or at most 63 characters of alphanumerics, '-', '_' or '.', starting
/// and ending with an alphanumeric.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() || qualified_name_part(s) {
        Ok(())
    } else {
        Err(format!(
            "label value {s:?} must be at most 63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric character"
        ))
    }
}

/// An IANA service name (named container ports and named policy ports): 1 to 15 lower-case
/// alphanumerics or '-', at least one letter, no leading, trailing or doubled '-'.
pub fn iana_svc_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be an IANA service name: 1 to 15 lower case alphanumerics or '-', with at least one letter and no leading, trailing or doubled '-'"
        ))
    }
}

/// A port number: 1..=65535.
pub fn port_number(n: i64) -> Result<u16, String> {
    if (1..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("{n} must be between 1 and 65535, inclusive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_follow_qualified_name_rules() {
        assert!(label_key("kubernetes.io/metadata.name").is_ok());
        assert!(label_key("pod").is_ok());
        assert!(label_key("a_b.c-d").is_ok());
        assert!(label_key("-pod").is_err());
        assert!(label_key("Bad_Prefix/x").is_err());
        assert!(label_key("a/b/c").is_err());
        assert!(label_key(&"k".repeat(64)).is_err());
        assert!(label_key("").is_err());
    }

    #[test]
    fn label_values_may_be_empty_but_not_malformed() {
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_x").is_ok());
        assert!(label_value("has space").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn iana_service_names_need_a_letter_and_at_most_15_characters() {
        assert!(iana_svc_name("serve-80-tcp").is_ok());
        assert!(iana_svc_name("8080").is_err());
        assert!(iana_svc_name("a--b").is_err());
        assert!(iana_svc_name("serve-80-tcp-long").is_err());
        assert!(iana_svc_name("HTTP").is_err());
    }

    #[test]
    fn names_follow_dns1123() {
        assert!(dns1123_label("x").is_ok());
        assert!(dns1123_label("X").is_err());
        assert!(dns1123_subdomain("allow.web-80").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_label(&"n".repeat(64)).is_err());
    }

    #[test]
    fn port_numbers_are_one_to_65535() {
        assert_eq!(port_number(80), Ok(80));
        assert!(port_number(0).is_err());
        assert!(port_number(65536).is_err());
        assert!(port_number(-1).is_err());
    }
}
