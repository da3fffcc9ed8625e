//! The canonical form of an email address: one spelling per mailbox, so that an address is
//! compared, stored and mailed to in the form that was proven.

/// Why an address has no canonical form this server accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEmail {
    /// Not `local@domain` as RFC 5321 spells a mailbox.
    #[error("not an email address")]
    Syntax,
    /// A quoted local part that no unquoted spelling matches (`"a b"@example.org`).
    #[error("quoted local parts are not accepted")]
    QuotedLocalPart,
    /// An IP address instead of a domain name: mail would go to a host, not a domain.
    #[error("the domain is an IP address")]
    IpLiteral,
    /// A domain without a dot (`localhost`): not a domain on the internet.
    #[error("the domain has a single label")]
    SingleLabel,
}

/// The canonical form of an email address, as it is compared and stored:
/// - surrounding spaces go;
/// - a quoted local part equivalent to an unquoted one is unquoted (`"kevin"` is `kevin`);
///   any other quoted local part is refused;
/// - ASCII letters of the local part are lower-cased (the spec compares addresses
///   case-insensitively); other characters are kept exactly, never case-folded, so that no
///   Unicode folding (`K`, U+212A KELVIN SIGN, to `k`) maps one mailbox onto another;
/// - the domain is lower-cased and IDNA-encoded (`ÉXAMPLE.org` is `xn--xample-9ua.org`);
///   IP literals and single-label domains are refused.
pub fn canonical_email(address: &str) -> Result<String, InvalidEmail> {
    let address = address.trim();
    let (local, domain) = address.rsplit_once('@').ok_or(InvalidEmail::Syntax)?;
    let local = unquoted(local)?;
    if domain.starts_with('[') {
        return Err(InvalidEmail::IpLiteral);
    }
    let domain = match url::Host::parse(domain).map_err(|_| InvalidEmail::Syntax)? {
        url::Host::Domain(domain) => domain,
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => return Err(InvalidEmail::IpLiteral),
    };
    if !domain.contains('.') {
        return Err(InvalidEmail::SingleLabel);
    }
    let canonical = format!("{}@{domain}", local.to_ascii_lowercase());
    // The mailbox grammar (atext, dots, lengths) is lettre's, which sends the email.
    canonical
        .parse::<lettre::Address>()
        .map_err(|_| InvalidEmail::Syntax)?;
    Ok(canonical)
}

/// The local part without its quotes, when the quotes change nothing.
fn unquoted(local: &str) -> Result<&str, InvalidEmail> {
    let Some(inner) = local
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Ok(local);
    };
    if is_dot_atom(inner) {
        Ok(inner)
    } else {
        Err(InvalidEmail::QuotedLocalPart)
    }
}

/// RFC 5322's `dot-atom-text`: atoms of `atext` joined by single dots (non-ASCII letters are
/// `atext` too, as RFC 6531 extends it).
fn is_dot_atom(text: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !text.is_empty()
        && text.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c) || !c.is_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_mailbox() {
        assert_eq!(
            canonical_email(" Alice@Example.ORG ").as_deref(),
            Ok("alice@example.org")
        );
        assert_eq!(
            canonical_email("\"kevin\"@example.org").as_deref(),
            Ok("kevin@example.org")
        );
        assert_eq!(
            canonical_email("bob@ÉXAMPLE.org").as_deref(),
            Ok("bob@xn--xample-9ua.org")
        );
        // The Kelvin sign is not the letter K: kept, never folded onto `kevin`.
        assert_eq!(
            canonical_email("\u{212A}evin@example.org").as_deref(),
            Ok("\u{212A}evin@example.org")
        );
    }

    #[test]
    fn odd_recipients_are_refused() {
        assert_eq!(
            canonical_email("\"a b\"@example.org"),
            Err(InvalidEmail::QuotedLocalPart)
        );
        assert_eq!(canonical_email("a@127.0.0.1"), Err(InvalidEmail::IpLiteral));
        assert_eq!(
            canonical_email("a@[127.0.0.1]"),
            Err(InvalidEmail::IpLiteral)
        );
        assert_eq!(
            canonical_email("a@localhost"),
            Err(InvalidEmail::SingleLabel)
        );
        for bad in [
            "nobody",
            "a@",
            "@example.org",
            "a b@example.org",
            "a@exa mple.org",
        ] {
            assert!(canonical_email(bad).is_err(), "{bad}");
        }
    }
}
