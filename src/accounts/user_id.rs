//! Localpart rules for new accounts (spec appendix "User Identifiers").

use ruma::{OwnedUserId, ServerName, UserId};

/// Longest user ID the spec allows, in bytes, including `@` and the server name.
const MAX_USER_ID_BYTES: usize = 255;

/// Why a requested username can't become a user ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUsername {
    /// The username is empty.
    #[error("username must not be empty")]
    Empty,
    /// A character outside `a-z 0-9 . _ = - / +`.
    #[error("username may only contain a-z, 0-9, '.', '_', '=', '-', '/' and '+'")]
    BadCharacter,
    /// The user ID would exceed 255 bytes.
    #[error("user ID would be longer than 255 bytes")]
    TooLong,
    /// A full user ID for another server.
    #[error("user ID belongs to another server")]
    OtherServer,
}

/// Turns the `username` of a registration into the user ID to create: a full user ID of this
/// server is reduced to its localpart, upper-case ASCII is downcased (the spec requires servers
/// to downcase when creating user IDs), and the result must match the user-ID grammar.
pub fn user_id_for_registration(
    username: &str,
    server_name: &ServerName,
) -> Result<OwnedUserId, InvalidUsername> {
    let localpart = match username
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
    {
        Some((localpart, server)) if server == server_name.as_str() => localpart,
        Some(_) => return Err(InvalidUsername::OtherServer),
        None => username,
    };
    let localpart = localpart.to_ascii_lowercase();
    if localpart.is_empty() {
        return Err(InvalidUsername::Empty);
    }
    if !localpart.bytes().all(is_user_id_char) {
        return Err(InvalidUsername::BadCharacter);
    }
    if 1 + localpart.len() + 1 + server_name.as_str().len() > MAX_USER_ID_BYTES {
        return Err(InvalidUsername::TooLong);
    }
    UserId::parse(format!("@{localpart}:{server_name}")).map_err(|_| InvalidUsername::BadCharacter)
}

/// Resolves the user named at login (a localpart or a full user ID) to a user ID of this
/// server, or `None` if it can't name a local account.
pub fn user_id_for_login(user: &str, server_name: &ServerName) -> Option<OwnedUserId> {
    let localpart = match user.strip_prefix('@').and_then(|rest| rest.split_once(':')) {
        Some((localpart, server)) if server == server_name.as_str() => localpart,
        Some(_) => return None,
        None => user,
    };
    let localpart = localpart.to_ascii_lowercase();
    if localpart.is_empty() || localpart.contains(':') {
        return None;
    }
    UserId::parse(format!("@{localpart}:{server_name}")).ok()
}

fn is_user_id_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> &'static ServerName {
        <&ServerName>::try_from("example.org").expect("server name")
    }

    #[test]
    fn accepts_grammar_and_downcases() {
        let id = user_id_for_registration("Alice.B_=/+-9", server()).expect("valid");
        assert_eq!(id.as_str(), "@alice.b_=/+-9:example.org");
        let id = user_id_for_registration("@bob:example.org", server()).expect("valid");
        assert_eq!(id.as_str(), "@bob:example.org");
    }

    #[test]
    fn rejects_what_the_grammar_forbids() {
        for bad in ["a b", "a:b", "ünï", "", "a*", "'; DROP TABLE users; --"] {
            assert!(user_id_for_registration(bad, server()).is_err(), "{bad:?}");
        }
        assert_eq!(
            user_id_for_registration("@bob:other.org", server()),
            Err(InvalidUsername::OtherServer)
        );
        assert_eq!(
            user_id_for_registration(&"a".repeat(250), server()),
            Err(InvalidUsername::TooLong)
        );
    }

    #[test]
    fn login_accepts_localpart_or_user_id() {
        assert_eq!(
            user_id_for_login("alice", server()).expect("id").as_str(),
            "@alice:example.org"
        );
        assert_eq!(
            user_id_for_login("@Alice:example.org", server())
                .expect("id")
                .as_str(),
            "@alice:example.org"
        );
        assert!(user_id_for_login("@alice:other.org", server()).is_none());
    }
}
