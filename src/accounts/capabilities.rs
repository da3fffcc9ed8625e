//! What a user may do here (spec "Capabilities negotiation"), from the configuration and the
//! account: the same rules the use cases enforce.

use super::{AccountError, Accounts, Requester};

/// The account capabilities of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `m.change_password`: full accounts, when the configuration allows it.
    pub change_password: bool,
    /// `m.set_displayname` (and `displayname` in `m.profile_fields`).
    pub set_displayname: bool,
    /// `m.set_avatar_url` (and `avatar_url` in `m.profile_fields`).
    pub set_avatar_url: bool,
    /// Whether `m.tz` and custom profile fields may be set.
    pub custom_profile_fields: bool,
    /// `m.3pid_changes`: full accounts, when addresses can be proven here (this server sends
    /// verification emails, or trusts an identity server).
    pub threepid_changes: bool,
    /// `m.get_login_token`: full accounts, when the configuration allows it.
    pub get_login_token: bool,
    /// `m.account_moderation` (lock and suspend): server administrators only.
    pub account_moderation: bool,
}

impl Capabilities {
    /// Whether any profile field may be changed (`m.profile_fields.enabled`).
    pub fn profile_fields_enabled(&self) -> bool {
        self.set_displayname || self.set_avatar_url || self.custom_profile_fields
    }
}

impl Accounts {
    /// The capabilities of `requester`: guests may only set a display name, suspended users
    /// nothing; the rest follows the configuration and the administrator role.
    pub async fn capabilities(&self, requester: &Requester) -> Result<Capabilities, AccountError> {
        let full_account = !requester.is_guest;
        let may_edit = !requester.suspended;
        let rules = self.settings.profile_rules;
        Ok(Capabilities {
            change_password: full_account && self.settings.password_change_enabled,
            set_displayname: may_edit && rules.displayname_changes,
            set_avatar_url: may_edit && full_account && rules.avatar_url_changes,
            custom_profile_fields: may_edit && full_account && rules.custom_fields,
            threepid_changes: full_account && self.can_prove_addresses(),
            get_login_token: full_account && self.settings.login_token_enabled,
            account_moderation: self.is_admin(&requester.user_id).await?,
        })
    }

    /// Whether an email address can be proven here: this server sends verification emails, or
    /// trusts an identity server that does.
    pub(crate) fn can_prove_addresses(&self) -> bool {
        self.threepids.sends_email() || self.threepids.identity().has_trusted_servers()
    }
}
