//! Accounts: the use cases of an account, from registration to deactivation, as methods of one
//! service, [`Accounts`], split by area: `registration.rs`, `credentials.rs`, `sessions.rs`,
//! `refresh.rs`, `devices.rs`, `addresses.rs` (email addresses and identity servers),
//! `moderation.rs`, `capabilities.rs` and `profile.rs`. No HTTP and no SQL here: callers speak
//! Matrix, the store speaks rows, and this module holds the rules in between. Every change is
//! reported through the one outlet, [`events::AccountEvents`].

mod addresses;
mod capabilities;
mod credentials;
mod devices;
mod error;
pub mod events;
pub mod hash_queue;
pub mod last_seen;
mod login_tokens;
mod moderation;
pub mod password;
mod profile;
mod refresh;
mod registration;
pub mod registration_tokens;
mod sessions;
pub mod stages;

pub mod user_id;

use std::sync::Arc;

use regex::RegexSet;
use ruma::{OwnedDeviceId, OwnedServerName, OwnedUserId};

use crate::{
    clock::{Clock, Randomness},
    ratelimit::RateLimiter,
    store::Store,
    threepids::Threepids,
    uia::{Flow, Uia},
};
pub use addresses::{BindRequest, LegacyAddress, NewAddress};
pub use capabilities::Capabilities;
pub use credentials::{PasswordChange, PasswordVerifier};
pub use devices::Device;
pub use error::AccountError;
use events::{AccountEvent, AccountEvents};
pub use moderation::Restriction;
pub use password::{PasswordHasher, PasswordPolicy, PasswordRejected};
pub use profile::{ProfileField, ProfileRules};
pub use registration::{Registered, RegistrationInput, V1Progress, V1Registration, V1Stage};
use registration_tokens::RegistrationTokens;
pub use sessions::LoginUser;
pub use user_id::InvalidUsername;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The user the access token belongs to.
    pub user_id: OwnedUserId,
    /// The device the access token was issued to.
    pub device_id: OwnedDeviceId,
    /// Whether the user is a guest.
    pub is_guest: bool,
    /// Whether the operator has locked the account (only logout is then allowed).
    pub locked: bool,
    /// Whether the operator has suspended the account (reads allowed, changes refused).
    pub suspended: bool,
}

/// A device session handed to a client after registration or login.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The device the tokens belong to.
    pub device_id: OwnedDeviceId,
    /// The new access token (shown to the client once, stored only hashed).
    pub access_token: String,
    /// Milliseconds until the access token expires, if it does.
    pub expires_in_ms: Option<u64>,
    /// The refresh token, when the client asked for one.
    pub refresh_token: Option<String>,
}

/// Device details a client may supply when it logs in or registers.
#[derive(Debug, Clone, Default)]
pub struct DeviceRequest {
    /// Reuse (or create) this device ID; generated when absent.
    pub device_id: Option<OwnedDeviceId>,
    /// Display name for a new device.
    pub display_name: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// Whether the client supports refresh tokens (`refresh_token: true`): it then gets one,
    /// and an access token with the refreshable lifetime.
    pub refresh_token: bool,
}

impl DeviceRequest {
    /// Checks the device ID the client asked for, if any.
    fn check(&self) -> Result<(), AccountError> {
        self.device_id
            .as_deref()
            .map_or(Ok(()), devices::check_device_id)
    }
}

/// Settings the account rules depend on.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// This server's name.
    pub server_name: OwnedServerName,
    /// Whether anyone may register (`registration.enabled`).
    pub registration_enabled: bool,
    /// Whether guests may register (`registration.guest_access`).
    pub guest_access: bool,
    /// The UIA flows that authorise a registration (`registration.flows`).
    pub registration_flows: Vec<Flow>,
    /// Whether users may change their password (`password.change_enabled`).
    pub password_change_enabled: bool,
    /// Whether users may issue login tokens (`tokens.login_token_enabled`).
    pub login_token_enabled: bool,
    /// The rules for new passwords.
    pub password_policy: PasswordPolicy,
    /// Access-token lifetime in milliseconds; `None` = never expires.
    pub access_token_lifetime_ms: Option<i64>,
    /// Lifetime of access tokens issued with a refresh token, in milliseconds.
    pub refreshable_access_token_lifetime_ms: i64,
    /// How long after a refresh the replaced refresh token is accepted again, in milliseconds.
    pub refresh_grace_ms: i64,
    /// Regular expressions over full user IDs that registration may not claim.
    pub exclusive_namespaces: RegexSet,
    /// Lifetime of `m.login.token` tokens, in milliseconds.
    pub login_token_lifetime_ms: i64,
    /// Which profile fields users may change.
    pub profile_rules: ProfileRules,
}

/// The services the account use cases are built on.
#[derive(Clone)]
pub struct AccountServices {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Argon2id on its own threads.
    pub hasher: PasswordHasher,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness for tokens and generated IDs.
    pub rng: Arc<dyn Randomness>,
    /// Rate limits shared by every instance.
    pub limiter: RateLimiter,
    /// User-Interactive Authentication.
    pub uia: Uia,
    /// Email verification, addresses and identity servers.
    pub threepids: Threepids,
    /// The operator's registration tokens.
    pub registration_tokens: RegistrationTokens,
    /// Where account changes are reported.
    pub events: Arc<dyn AccountEvents>,
}

/// The account service: every use case of an account, over the store and the other services,
/// with injected time and randomness.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    verifier: PasswordVerifier,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    limiter: RateLimiter,
    last_seen: last_seen::LastSeenRecorder,
    uia: Uia,
    threepids: Threepids,
    registration_tokens: RegistrationTokens,
    events: Arc<dyn AccountEvents>,
    settings: Arc<AccountSettings>,
}

impl Accounts {
    /// Builds the service.
    pub fn new(services: AccountServices, settings: AccountSettings) -> Self {
        let verifier = PasswordVerifier::new(
            services.store.clone(),
            services.hasher.clone(),
            settings.server_name.clone(),
        );
        Self {
            store: services.store,
            hasher: services.hasher,
            verifier,
            clock: services.clock,
            rng: services.rng,
            limiter: services.limiter,
            last_seen: last_seen::LastSeenRecorder::default(),
            uia: services.uia,
            threepids: services.threepids,
            registration_tokens: services.registration_tokens,
            events: services.events,
            settings: Arc::new(settings),
        }
    }

    /// This server's name.
    pub fn server_name(&self) -> &ruma::ServerName {
        &self.settings.server_name
    }

    /// Reports each change, in order, through the outlet.
    async fn report(&self, events: impl IntoIterator<Item = AccountEvent>) {
        for event in events {
            self.events.report(event).await;
        }
    }
}
