//! Profiles (spec "Profiles"): `displayname`, `avatar_url`, `m.tz` and custom namespaced fields,
//! readable by anyone, changeable only by their owner and only where the configuration allows.

use std::sync::LazyLock;

use regex::Regex;
use ruma::{OwnedMxcUri, UserId};
use serde_json::{Map, Value};

use super::{AccountError, Accounts, Requester, events::AccountEvent};
use crate::store::ProfileWrite;

/// The spec's limit on a whole profile, serialised.
const MAX_PROFILE_BYTES: usize = 64 * 1024;
/// The spec's limit on a field name.
const MAX_FIELD_NAME_BYTES: usize = 255;
/// Longest display name accepted, in characters.
const MAX_DISPLAYNAME_CHARS: usize = 256;

/// Field names the spec allows: the defined ones, or the Common Namespaced Identifier Grammar.
static FIELD_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")
        .expect("valid regex")
});

/// Which profile fields users may change, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileRules {
    /// `displayname` may be changed.
    pub displayname_changes: bool,
    /// `avatar_url` may be changed.
    pub avatar_url_changes: bool,
    /// `m.tz` and custom fields may be changed.
    pub custom_fields: bool,
}

impl ProfileRules {
    /// Whether users may change `field`.
    pub fn may_change(self, field: &str) -> bool {
        match field {
            "displayname" => self.displayname_changes,
            "avatar_url" => self.avatar_url_changes,
            _ => self.custom_fields,
        }
    }
}

/// A profile field name, checked against the spec's grammar and length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileField<'a>(&'a str);

impl<'a> ProfileField<'a> {
    /// Checks `name`: too long is `M_KEY_TOO_LARGE`, outside the grammar `M_INVALID_PARAM`.
    pub fn parse(name: &'a str) -> Result<Self, AccountError> {
        if name.len() > MAX_FIELD_NAME_BYTES {
            return Err(AccountError::ProfileKeyTooLarge);
        }
        if !FIELD_NAME.is_match(name) {
            return Err(AccountError::InvalidProfileField(format!(
                "{name:?} is not a valid profile field name"
            )));
        }
        Ok(Self(name))
    }

    /// The field name.
    pub fn as_str(self) -> &'a str {
        self.0
    }

    /// Whether this is one of the fields every version of the spec has (`displayname`,
    /// `avatar_url`).
    pub fn is_predefined(self) -> bool {
        matches!(self.0, "displayname" | "avatar_url")
    }
}

/// Checks the value of a defined field: `displayname` and `m.tz` are strings, `avatar_url` an
/// MXC URI (or empty, to clear it).
fn check_value(field: ProfileField<'_>, value: &Value) -> Result<(), AccountError> {
    let invalid = |reason: &str| Err(AccountError::InvalidProfileField(reason.to_owned()));
    match (field.as_str(), value) {
        ("displayname", Value::String(name)) if name.chars().count() > MAX_DISPLAYNAME_CHARS => {
            invalid("displayname is longer than 256 characters")
        }
        ("displayname" | "m.tz", Value::String(_)) => Ok(()),
        ("displayname" | "m.tz", _) => invalid("the value must be a string"),
        ("avatar_url", Value::String(url))
            if url.is_empty() || OwnedMxcUri::from(url.as_str()).is_valid() =>
        {
            Ok(())
        }
        ("avatar_url", _) => invalid("avatar_url must be an mxc:// URI"),
        _ => Ok(()),
    }
}

impl Accounts {
    /// The whole profile of an active user.
    pub async fn profile(&self, user_id: &UserId) -> Result<Map<String, Value>, AccountError> {
        self.store
            .profile(user_id.as_str())
            .await?
            .ok_or(AccountError::NoSuchUser)
    }

    /// One field of an active user's profile.
    pub async fn profile_field(
        &self,
        user_id: &UserId,
        field: ProfileField<'_>,
    ) -> Result<Value, AccountError> {
        self.profile(user_id)
            .await?
            .remove(field.as_str())
            .ok_or(AccountError::NoSuchProfileField)
    }

    /// Sets (or with `None` deletes) a field of the requester's own profile. Refused for other
    /// users' profiles, for fields the configuration locks, for guests on anything but the
    /// display name, and while the account is suspended.
    pub async fn set_profile_field(
        &self,
        requester: &Requester,
        user_id: &UserId,
        field: ProfileField<'_>,
        value: Option<&Value>,
    ) -> Result<(), AccountError> {
        if requester.user_id != user_id {
            return Err(AccountError::Forbidden(
                "You may only change your own profile",
            ));
        }
        if requester.is_guest && field.as_str() != "displayname" {
            return Err(AccountError::GuestAccessForbidden);
        }
        if requester.suspended {
            return Err(AccountError::Suspended);
        }
        if !self.settings.profile_rules.may_change(field.as_str()) {
            return Err(AccountError::Forbidden(
                "Changing this profile field is disabled on this server",
            ));
        }
        if let Some(value) = value {
            check_value(field, value)?;
        }
        let before = self
            .store
            .profile(user_id.as_str())
            .await?
            .and_then(|mut profile| profile.remove(field.as_str()));
        match self
            .store
            .set_profile_field(user_id.as_str(), field.as_str(), value, MAX_PROFILE_BYTES)
            .await?
        {
            ProfileWrite::Saved => {}
            ProfileWrite::TooLarge => return Err(AccountError::ProfileTooLarge),
            ProfileWrite::NoSuchUser => return Err(AccountError::NoSuchUser),
        }
        if before.as_ref() == value {
            // Nothing changed, so nothing is reported.
            return Ok(());
        }
        let text = value.and_then(Value::as_str).map(str::to_owned);
        let event = match field.as_str() {
            "displayname" => Some(AccountEvent::DisplayNameChanged {
                user_id: user_id.to_owned(),
                displayname: text,
            }),
            "avatar_url" => Some(AccountEvent::AvatarChanged {
                user_id: user_id.to_owned(),
                avatar_url: text,
            }),
            _ => None,
        };
        self.report(event).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_the_grammar() {
        for name in ["displayname", "avatar_url", "m.tz", "org.example.pronouns"] {
            assert!(ProfileField::parse(name).is_ok(), "{name}");
        }
        for name in ["Displayname", "custom", "org..x", "org.Example", ""] {
            assert!(matches!(
                ProfileField::parse(name),
                Err(AccountError::InvalidProfileField(_))
            ));
        }
        let long = format!("org.{}", "a".repeat(260));
        assert!(matches!(
            ProfileField::parse(&long),
            Err(AccountError::ProfileKeyTooLarge)
        ));
    }

    #[test]
    fn defined_fields_are_type_checked() {
        let field = |name| ProfileField::parse(name).unwrap();
        assert!(check_value(field("displayname"), &Value::from("Alice")).is_ok());
        assert!(check_value(field("displayname"), &Value::from(3)).is_err());
        assert!(
            check_value(
                field("avatar_url"),
                &Value::from("mxc://example.org/abc123")
            )
            .is_ok()
        );
        assert!(check_value(field("avatar_url"), &Value::from("")).is_ok());
        assert!(check_value(field("avatar_url"), &Value::from("https://x/y.png")).is_err());
        assert!(check_value(field("org.example.any"), &Value::from(true)).is_ok());
    }
}
