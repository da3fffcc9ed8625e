//! Application state shared by every request, and how it is built from the configuration.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use regex::RegexSet;

use crate::{
    accounts::{
        AccountServices, AccountSettings, Accounts, PasswordHasher, PasswordPolicy,
        PasswordVerifier, ProfileRules,
        events::{AccountEvents, LoggedEvents},
        registration_tokens::RegistrationTokens,
        stages::{EmailIdentity, Password, RegistrationToken},
    },
    clock::{Clock, Randomness},
    config::{Config, Seconds},
    email::Mailer,
    identity::IdentityClient,
    ratelimit::RateLimiter,
    store::{self, Store},
    threepids::{ThreepidSettings, Threepids},
    uia::{
        Uia,
        stages::{Dummy, Recaptcha, Stage, Terms},
    },
};

/// Everything a handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The account use cases.
    pub accounts: Accounts,
    /// The operator's registration tokens.
    pub registration_tokens: RegistrationTokens,
    /// Email verification, third-party identifiers and identity servers.
    pub threepids: Threepids,
    /// The UIA engine (its expired sessions are purged periodically).
    pub uia: Uia,
    /// The rate limiter (its idle buckets are purged periodically).
    pub limiter: RateLimiter,
    /// The Prometheus registry to render at `/metrics`, when enabled.
    pub metrics: Option<PrometheusHandle>,
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("cannot open database {url}: {source}")]
    Database {
        /// The configured database URL, without credentials.
        url: String,
        /// What went wrong.
        source: store::StoreError,
    },
    /// A setting was accepted by validation but could not be used.
    #[error("configuration error: {0}")]
    Config(String),
}

/// Opens the configured store (running its migrations).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    store::open(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await
    .map_err(|source| StartupError::Database {
        url: config.database.url.to_string(),
        source,
    })
}

/// Builds the state from the configuration, an opened store, and the time and randomness to
/// use (the system's in production, controlled ones in tests). Account changes are reported to
/// the log ([`LoggedEvents`]).
pub fn build(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    metrics: Option<PrometheusHandle>,
) -> Result<AppState, StartupError> {
    build_with_events(config, store, clock, rng, metrics, Arc::new(LoggedEvents))
}

/// [`build`], with account changes reported to `events`.
pub fn build_with_events(
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    metrics: Option<PrometheusHandle>,
    events: Arc<dyn AccountEvents>,
) -> Result<AppState, StartupError> {
    let hasher = PasswordHasher::new(&config.password)
        .map_err(|err| StartupError::Config(err.to_string()))?;
    let server_name = config.server_name.clone();
    let settings = AccountSettings {
        server_name: server_name.clone(),
        registration_enabled: config.registration.enabled,
        guest_access: config.registration.guest_access,
        registration_flows: config.registration.flows.clone(),
        password_change_enabled: config.password.change_enabled,
        login_token_enabled: config.tokens.login_token_enabled,
        password_policy: PasswordPolicy::from_config(&config.password),
        access_token_lifetime_ms: match config.tokens.access_token_lifetime_secs {
            0 => None,
            secs => Some(Seconds::of(secs).as_millis()),
        },
        refreshable_access_token_lifetime_ms: config
            .tokens
            .refreshable_access_token_lifetime_secs
            .as_millis(),
        refresh_grace_ms: config.tokens.refresh_grace_secs.as_millis(),
        exclusive_namespaces: RegexSet::new(&config.registration.exclusive_user_namespaces)
            .map_err(|err| {
                StartupError::Config(format!("registration.exclusive_user_namespaces: {err}"))
            })?,
        login_token_lifetime_ms: config.tokens.login_token_lifetime_secs.as_millis(),
        profile_rules: ProfileRules {
            displayname_changes: config.profile.displayname_changes,
            avatar_url_changes: config.profile.avatar_url_changes,
            custom_fields: config.profile.custom_fields,
        },
    };
    let limiter = RateLimiter::new(store.clone(), clock.clone(), config.rate_limits.clone());
    let registration_tokens = RegistrationTokens::new(store.clone(), clock.clone(), rng.clone());
    let threepids = build_threepids(&config, store.clone(), clock.clone(), rng.clone())?;
    let verifier = PasswordVerifier::new(store.clone(), hasher.clone(), server_name);
    let stages: Vec<Box<dyn Stage>> = vec![
        Box::new(EmailIdentity::new(threepids.clone())),
        Box::new(Dummy),
        Box::new(Password::new(verifier, threepids.clone(), limiter.clone())),
        Box::new(RegistrationToken::new(registration_tokens.clone())),
        Box::new(Terms::new(config.registration.terms.clone())),
        Box::new(Recaptcha::new(config.registration.recaptcha.clone())),
    ];
    let session_lifetime_ms = config.uia.session_lifetime_secs.as_millis();
    let uia = Uia::new(
        store.clone(),
        clock.clone(),
        rng.clone(),
        stages,
        session_lifetime_ms,
    );
    let services = AccountServices {
        store,
        hasher,
        clock,
        rng,
        limiter: limiter.clone(),
        uia: uia.clone(),
        threepids: threepids.clone(),
        registration_tokens: registration_tokens.clone(),
        events,
    };
    let accounts = Accounts::new(services, settings);
    Ok(AppState {
        limiter,
        config: Arc::new(config),
        accounts,
        registration_tokens,
        threepids,
        uia,
        metrics,
    })
}

/// The third-party identifier service: the mailer (if an SMTP server is configured) and the
/// identity-server client.
fn build_threepids(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
) -> Result<Threepids, StartupError> {
    let mailer = Mailer::from_config(&config.email, config.server_name.as_str())
        .map_err(|err| StartupError::Config(err.to_string()))?;
    let identity = IdentityClient::from_config(&config.identity)
        .map_err(|err| StartupError::Config(err.to_string()))?;
    let settings = ThreepidSettings {
        public_baseurl: config.public_baseurl.clone(),
        token_lifetime_ms: config.email.token_lifetime_secs.as_millis(),
        password_reset_lifetime_ms: config.email.password_reset_lifetime_secs.as_millis(),
        allowed_domains: config.email.allowed_domains.clone(),
        hide_address_existence: config.email.hide_address_existence,
        next_link_allowed_hosts: config.email.next_link_allowed_hosts.clone(),
        allow_unicode_local_parts: config.email.allow_unicode_local_parts,
    };
    Ok(Threepids::new(
        store, clock, rng, mailer, identity, settings,
    ))
}
