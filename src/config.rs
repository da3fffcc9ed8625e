//! Configuration: one TOML file plus `VESTIBULE_*` environment overrides (`__` separates nested
//! keys, e.g. `VESTIBULE_DATABASE__URL`), validated before anything starts.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

use crate::{email::EmailConfig, identity::IdentityConfig, ratelimit::RateLimitConfig};

/// The whole configuration of a Vestibule instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Matrix server name: the part after `:` in user IDs.
    pub server_name: String,
    /// Base URL clients reach this server at, advertised in `/.well-known/matrix/client`.
    pub public_baseurl: String,
    /// Addresses to listen on for client HTTP traffic.
    pub listen: Vec<SocketAddr>,
    /// Where data lives.
    pub database: DatabaseConfig,
    /// Who may register and how.
    pub registration: RegistrationConfig,
    /// Password policy and hashing.
    pub password: PasswordConfig,
    /// Access-token settings.
    pub tokens: TokenConfig,
    /// User-Interactive Authentication settings.
    pub uia: UiaConfig,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Request rate limits.
    pub rate_limits: RateLimitConfig,
    /// Profile fields users may change.
    pub profile: ProfileConfig,
    /// Outgoing email (verification of addresses).
    pub email: EmailConfig,
    /// Identity servers.
    pub identity: IdentityConfig,
    /// Logging and metrics.
    pub observability: ObservabilityConfig,
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` (embedded, created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Size of the connection pool; 0 picks per backend: 4 for SQLite (one writer at a time,
    /// so more connections add threads and caches, not throughput), 16 for PostgreSQL.
    pub max_connections: u32,
}

/// Registration settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Whether new accounts may be registered at all.
    pub enabled: bool,
    /// Whether guest accounts (`kind=guest`) may be registered.
    pub guest_access: bool,
    /// UIA flows a registration must complete, each a list of stage types.
    pub flows: Vec<Vec<String>>,
    /// Allow registration flows with no verification stage (only `m.login.dummy`) while
    /// listening on a non-loopback address. Off by default: an open public server attracts abuse.
    pub allow_unverified_on_public_address: bool,
    /// Regular expressions over full user IDs that registration may not claim (namespaces
    /// reserved for application services); a match is refused with `M_EXCLUSIVE`.
    pub exclusive_user_namespaces: Vec<String>,
    /// Policies a registration must accept when a flow has `m.login.terms`, by policy name.
    pub terms: BTreeMap<String, TermsPolicy>,
    /// The reCAPTCHA service the `m.login.recaptcha` stage checks answers with.
    pub recaptcha: RecaptchaConfig,
}

/// The `m.login.recaptcha` stage's service (Google reCAPTCHA or a compatible one, such as
/// hCaptcha's `siteverify`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RecaptchaConfig {
    /// The site key, shown to clients in the stage's `params`.
    pub public_key: String,
    /// The secret key, sent to the verification service.
    pub private_key: String,
    /// The verification endpoint (form POST of `secret` and `response`, JSON `success`).
    pub verify_url: String,
}

impl Default for RecaptchaConfig {
    fn default() -> Self {
        Self {
            public_key: String::new(),
            private_key: String::new(),
            verify_url: "https://www.google.com/recaptcha/api/siteverify".into(),
        }
    }
}

/// One policy document shown by the `m.login.terms` stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TermsPolicy {
    /// The version presented; what the user accepted is recorded with it.
    pub version: String,
    /// The document in each language, by language code (e.g. `en`).
    #[serde(flatten)]
    pub translations: BTreeMap<String, TermsTranslation>,
}

/// A policy document in one language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TermsTranslation {
    /// The document's name in that language.
    pub name: String,
    /// Where the document can be read.
    pub url: String,
}

/// Which profile fields users may change (`m.profile_fields`, `m.set_displayname` and
/// `m.set_avatar_url` capabilities).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Users may change their display name.
    pub displayname_changes: bool,
    /// Users may change their avatar URL.
    pub avatar_url_changes: bool,
    /// Users may set `m.tz` and custom (namespaced) profile fields.
    pub custom_fields: bool,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            displayname_changes: true,
            avatar_url_changes: true,
            custom_fields: true,
        }
    }
}

/// Password policy and argon2id parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Whether users may change their password (`m.change_password` capability).
    pub change_enabled: bool,
    /// Minimum password length, in characters.
    pub min_length: usize,
    /// New passwords must contain a digit.
    pub require_digit: bool,
    /// New passwords must contain a lower-case letter.
    pub require_lowercase: bool,
    /// New passwords must contain an upper-case letter.
    pub require_uppercase: bool,
    /// New passwords must contain a symbol (neither letter nor digit).
    pub require_symbol: bool,
    /// New passwords must not contain the user's localpart.
    pub reject_localpart: bool,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations (time cost).
    pub argon2_iterations: u32,
    /// argon2id parallelism (lanes).
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; 0 means one per CPU core.
    pub hash_workers: usize,
}

/// Access-token settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Lifetime of an access token in seconds; 0 means tokens never expire.
    pub access_token_lifetime_secs: u64,
    /// Lifetime of an access token issued with a refresh token, in seconds.
    pub refreshable_access_token_lifetime_secs: u64,
    /// Whether users may generate single-use login tokens (`POST /login/get_token`,
    /// `m.get_login_token` capability) to sign in another device.
    pub login_token_enabled: bool,
    /// How long a login token stays usable, in seconds.
    pub login_token_lifetime_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 0,
            refreshable_access_token_lifetime_secs: 300,
            login_token_enabled: true,
            login_token_lifetime_secs: 120,
        }
    }
}

/// User-Interactive Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UiaConfig {
    /// How long a UIA session stays usable after it was started, in seconds.
    pub session_lifetime_secs: u64,
}

/// HTTP settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger ones get 413 `M_TOO_LARGE`.
    pub max_body_bytes: usize,
    /// Reverse proxies and load balancers (addresses or CIDR ranges) whose
    /// `X-Forwarded-For` header names the real client, for rate limits and device IPs.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Logging and metrics settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Default log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics_enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: "localhost".into(),
            public_baseurl: "http://127.0.0.1:8008/".into(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8008))],
            database: DatabaseConfig::default(),
            registration: RegistrationConfig::default(),
            password: PasswordConfig::default(),
            tokens: TokenConfig::default(),
            uia: UiaConfig::default(),
            http: HttpConfig::default(),
            rate_limits: RateLimitConfig::default(),
            profile: ProfileConfig::default(),
            email: EmailConfig::default(),
            identity: IdentityConfig::default(),
            observability: ObservabilityConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite:vestibule-data/vestibule.db".into(),
            max_connections: 0,
        }
    }
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            guest_access: false,
            flows: vec![vec!["m.login.dummy".into()]],
            allow_unverified_on_public_address: false,
            exclusive_user_namespaces: Vec::new(),
            terms: BTreeMap::new(),
            recaptcha: RecaptchaConfig::default(),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        // OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
        Self {
            change_enabled: true,
            min_length: 8,
            require_digit: false,
            require_lowercase: false,
            require_uppercase: false,
            require_symbol: false,
            reject_localpart: true,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_workers: 0,
        }
    }
}

impl Default for UiaConfig {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 15 * 60,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            log_format: "text".into(),
            log_filter: "info".into(),
            metrics_enabled: true,
        }
    }
}

/// A configuration that could not be loaded or is not valid; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be parsed into the schema.
    #[error("configuration error: {0}")]
    Parse(String),
    /// A value parsed but is not acceptable.
    #[error("configuration error: `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the offending key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The generated configuration file could not be written.
    #[error("cannot write configuration file {path}: {source}")]
    Write {
        /// The file that could not be written.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Stage types the UIA engine knows; flows may only name these.
pub const KNOWN_STAGES: &[&str] = &[
    "m.login.dummy",
    "m.login.email.identity",
    "m.login.password",
    "m.login.recaptcha",
    "m.login.registration_token",
    "m.login.terms",
];

impl Config {
    /// This configuration with its secrets masked, for printing: the database URL's password,
    /// the SMTP password and the CAPTCHA secret key.
    pub fn redacted(&self) -> Self {
        let mask = |secret: &str| {
            if secret.is_empty() {
                String::new()
            } else {
                "***".to_owned()
            }
        };
        let mut config = self.clone();
        config.database.url = crate::app::redact_url(&config.database.url);
        config.email.password = mask(&config.email.password);
        config.registration.recaptcha.private_key =
            mask(&config.registration.recaptcha.private_key);
        config
    }

    /// Loads `path` (if given) under the `VESTIBULE_*` environment overrides, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Parse(format!(
                    "file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(
                Env::prefixed("VESTIBULE_")
                    .filter(is_config_key)
                    .split("__"),
            )
            .extract()
            .map_err(|err| ConfigError::Parse(describe_figment_error(&err)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that the type system alone can't.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if ruma::ServerName::parse(&self.server_name).is_err() {
            return invalid(
                "server_name",
                format!("{:?} is not a valid Matrix server name", self.server_name),
            );
        }
        if url::Url::parse(&self.public_baseurl).is_err() {
            return invalid(
                "public_baseurl",
                format!("{:?} is not an absolute URL", self.public_baseurl),
            );
        }
        if self.listen.is_empty() {
            return invalid("listen", "at least one address is needed".into());
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                format!("{url:?} must start with sqlite: or postgres://"),
            );
        }
        if self.password.min_length == 0 {
            return invalid("password.min_length", "must be at least 1".into());
        }
        if let Err(err) = argon2::Params::new(
            self.password.argon2_memory_kib,
            self.password.argon2_iterations,
            self.password.argon2_parallelism,
            None,
        ) {
            return invalid(
                "password.argon2_*",
                format!("argon2 rejects these parameters: {err}"),
            );
        }
        if self.tokens.login_token_lifetime_secs == 0 {
            return invalid(
                "tokens.login_token_lifetime_secs",
                "must be at least 1".into(),
            );
        }
        if self.tokens.refreshable_access_token_lifetime_secs == 0 {
            return invalid(
                "tokens.refreshable_access_token_lifetime_secs",
                "must be at least 1".into(),
            );
        }
        if let Some(quota) = self.rate_limits.invalid_quota() {
            return invalid(
                "rate_limits",
                format!("`{quota}` needs per_second > 0 and burst >= 1"),
            );
        }
        if self.uia.session_lifetime_secs == 0 {
            return invalid("uia.session_lifetime_secs", "must be at least 1".into());
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024".into());
        }
        if !matches!(self.observability.log_format.as_str(), "text" | "json") {
            return invalid(
                "observability.log_format",
                "must be \"text\" or \"json\"".into(),
            );
        }
        if !self.email.smtp_host.is_empty()
            && self.email.from.parse::<lettre::message::Mailbox>().is_err()
        {
            return invalid(
                "email.from",
                format!(
                    "{:?} is not a mailbox such as \"Name <user@host>\"",
                    self.email.from
                ),
            );
        }
        if self.email.token_lifetime_secs == 0 {
            return invalid("email.token_lifetime_secs", "must be at least 1".into());
        }
        if let Err(err) = crate::identity::IdentityClient::from_config(&self.identity) {
            return invalid("identity.trusted_servers", err.to_string());
        }
        self.validate_registration()
    }

    fn validate_registration(&self) -> Result<(), ConfigError> {
        let registration = &self.registration;
        for flow in &registration.flows {
            if flow.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "registration.flows",
                    reason: "a flow needs at least one stage".into(),
                });
            }
            if let Some(stage) = flow
                .iter()
                .find(|stage| !KNOWN_STAGES.contains(&stage.as_str()))
            {
                return Err(ConfigError::Invalid {
                    key: "registration.flows",
                    reason: format!(
                        "unknown stage {stage:?}; known stages: {}",
                        KNOWN_STAGES.join(", ")
                    ),
                });
            }
        }
        if let Err(err) = regex::RegexSet::new(&registration.exclusive_user_namespaces) {
            return Err(ConfigError::Invalid {
                key: "registration.exclusive_user_namespaces",
                reason: err.to_string(),
            });
        }
        let offers = |stage: &str| registration.flows.iter().flatten().any(|s| s == stage);
        if offers("m.login.email.identity")
            && self.email.smtp_host.is_empty()
            && self.identity.trusted_servers.is_empty()
        {
            return Err(ConfigError::Invalid {
                key: "registration.flows",
                reason: "m.login.email.identity needs an SMTP server (email.smtp_host) or a \
                         trusted identity server (identity.trusted_servers)"
                    .into(),
            });
        }
        let recaptcha = &registration.recaptcha;
        if offers("m.login.recaptcha")
            && (recaptcha.public_key.is_empty()
                || recaptcha.private_key.is_empty()
                || url::Url::parse(&recaptcha.verify_url).is_err())
        {
            return Err(ConfigError::Invalid {
                key: "registration.recaptcha",
                reason: "m.login.recaptcha needs public_key, private_key and a verify_url".into(),
            });
        }
        if offers("m.login.terms") && registration.terms.is_empty() {
            return Err(ConfigError::Invalid {
                key: "registration.terms",
                reason: "a flow has m.login.terms but no policy is configured".into(),
            });
        }
        if let Some((name, _)) = registration
            .terms
            .iter()
            .find(|(_, policy)| policy.translations.is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "registration.terms",
                reason: format!("policy {name:?} needs at least one language with name and url"),
            });
        }
        if registration.enabled && registration.flows.is_empty() {
            return Err(ConfigError::Invalid {
                key: "registration.flows",
                reason: "registration is enabled but no flow is configured".into(),
            });
        }
        let unverified = registration.flows.iter().any(|flow| {
            flow.iter()
                .all(|stage| stage == "m.login.dummy" || stage == "m.login.terms")
        });
        let public = self.listen.iter().any(|addr| !addr.ip().is_loopback());
        if registration.enabled
            && unverified
            && public
            && !registration.allow_unverified_on_public_address
        {
            return Err(ConfigError::Invalid {
                key: "registration.allow_unverified_on_public_address",
                reason:
                    "registration is open with no verification stage on a non-loopback address; \
                         set this to true if that is really intended"
                        .into(),
            });
        }
        Ok(())
    }

    /// Reads the configuration at `path`, first writing a generated one there if it is missing:
    /// the zero-setup path of the quick start.
    pub fn load_or_generate(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            let write_error = |source| ConfigError::Write {
                path: path.display().to_string(),
                source,
            };
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(write_error)?;
            }
            std::fs::write(path, Self::example_toml()).map_err(write_error)?;
        }
        Self::load(Some(path))
    }

    /// The default configuration as commented TOML, as written for a fresh install.
    pub fn example_toml() -> String {
        include_str!("../vestibule.example.toml").to_owned()
    }
}

/// Whether a `VESTIBULE_*` variable (prefix removed, lower-cased) is a configuration override.
/// The command line's own variables (`VESTIBULE_CONFIG`, `VESTIBULE_USER_PASSWORD`) and the
/// test suite's (`VESTIBULE_TEST_*`, `VESTIBULE_SPEC_DIR`, `VESTIBULE_PEERS_*`) share the prefix
/// but are not configuration.
fn is_config_key(key: &figment::value::UncasedStr) -> bool {
    let key = key.as_str().to_ascii_lowercase();
    !(key == "config"
        || key == "user_password"
        || key == "spec_dir"
        || key.starts_with("test_")
        || key.starts_with("peers_"))
}

/// Turns figment's error into one line that names the offending key and its source.
fn describe_figment_error(err: &figment::Error) -> String {
    err.clone()
        .into_iter()
        .map(|err| {
            let key = if err.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", err.path.join("."))
            };
            let source = err
                .metadata
                .as_ref()
                .map(|meta| match &meta.source {
                    Some(source) => format!(" (in {source})"),
                    None => format!(" (in {})", meta.name),
                })
                .unwrap_or_default();
            let kind = err
                .kind
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("{key}{kind}{source}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_is_the_default_config() {
        let parsed: Config = toml::from_str(&Config::example_toml()).expect("example parses");
        assert_eq!(parsed, Config::default());
        // Every key is written out, not just left to its default.
        let written: toml::Table = toml::from_str(&Config::example_toml()).expect("TOML");
        let defaults = toml::Table::try_from(Config::default()).expect("serializes");
        assert_eq!(written, defaults);
    }

    #[test]
    fn printed_configuration_masks_secrets() {
        let mut config = Config::default();
        config.database.url = "postgres://vestibule:hunter2@db/vestibule".into();
        config.email.password = "smtp-secret".into();
        config.registration.recaptcha.private_key = "captcha-secret".into();
        let printed = toml::to_string_pretty(&config.redacted()).expect("renders");
        for secret in ["hunter2", "smtp-secret", "captcha-secret"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("postgres://vestibule:***@db/vestibule"));
    }

    #[test]
    fn default_config_is_valid() {
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn open_registration_on_public_address_is_refused() {
        let mut config = Config {
            listen: vec!["0.0.0.0:8008".parse().expect("address")],
            ..Config::default()
        };
        let err = config.validate().expect_err("must refuse");
        assert!(
            err.to_string()
                .contains("allow_unverified_on_public_address"),
            "{err}"
        );
        config.registration.allow_unverified_on_public_address = true;
        config.validate().expect("explicit opt-in is accepted");
    }

    #[test]
    fn unknown_stage_is_named() {
        let mut config = Config::default();
        config.registration.flows = vec![vec!["m.login.bogus".into()]];
        assert!(
            config
                .validate()
                .expect_err("must refuse")
                .to_string()
                .contains("m.login.bogus")
        );
    }
}
