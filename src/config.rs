//! Configuration: one TOML file plus `VESTIBULE_*` environment overrides (`__` separates nested
//! keys, e.g. `VESTIBULE_DATABASE__URL`), validated before anything starts.

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    num::{NonZeroU64, NonZeroUsize},
    path::Path,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use lettre::message::Mailbox;
use ruma::OwnedServerName;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// The whole configuration of a Vestibule instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Matrix server name: the part after `:` in user IDs.
    pub server_name: OwnedServerName,
    /// Base URL clients reach this server at, advertised in `/.well-known/matrix/client`.
    pub public_baseurl: Url,
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
    pub url: DatabaseUrl,
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
    /// Allow registration flows with no verification stage (only `m.login.dummy`) while the
    /// server is reachable beyond this machine: listening on a non-loopback address, or with a
    /// `public_baseurl` that is not loopback (behind a reverse proxy). Off by default: an open
    /// public server attracts abuse.
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecaptchaConfig {
    /// The site key, shown to clients in the stage's `params`.
    pub public_key: String,
    /// The secret key, sent to the verification service.
    pub private_key: Secret,
    /// The verification endpoint (form POST of `secret` and `response`, JSON `success`).
    pub verify_url: Url,
}

impl Default for RecaptchaConfig {
    fn default() -> Self {
        Self {
            public_key: String::new(),
            private_key: Secret::default(),
            verify_url: Url::parse("https://www.google.com/recaptcha/api/siteverify")
                .expect("the default verification URL parses"),
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
    pub min_length: NonZeroUsize,
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
    /// Password checks that may wait for a hashing thread in all; 0 means 32 per thread. A
    /// request that finds the queue full is answered at once with 429 `M_LIMIT_EXCEEDED`,
    /// unless its network has no check waiting (admitted up to four times this size).
    pub hash_queue: usize,
    /// Password checks one client network (see `rate_limits.ipv6_prefix_length`) may have
    /// waiting; the threads serve the networks in turn, so a flood from some networks delays
    /// others by at most one check each, and its surplus waits up to a second for room, then
    /// gets 429.
    pub hash_queue_per_network: usize,
}

/// Access-token settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Lifetime of an access token in seconds; 0 means tokens never expire.
    pub access_token_lifetime_secs: u64,
    /// Lifetime of an access token issued with a refresh token, in seconds.
    pub refreshable_access_token_lifetime_secs: Seconds,
    /// How long after a refresh the refresh token it replaced is accepted once more (for a
    /// client that lost the response), in seconds; after that, presenting it revokes the device.
    pub refresh_grace_secs: Seconds,
    /// Whether users may generate single-use login tokens (`POST /login/get_token`,
    /// `m.get_login_token` capability) to sign in another device.
    pub login_token_enabled: bool,
    /// How long a login token stays usable, in seconds.
    pub login_token_lifetime_secs: Seconds,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 0,
            refreshable_access_token_lifetime_secs: Seconds::of(300),
            refresh_grace_secs: Seconds::of(60),
            login_token_enabled: true,
            login_token_lifetime_secs: Seconds::of(120),
        }
    }
}

/// User-Interactive Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UiaConfig {
    /// How long a UIA session stays usable after it was started, in seconds.
    pub session_lifetime_secs: Seconds,
}

/// HTTP settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger ones get 413 `M_TOO_LARGE`.
    pub max_body_bytes: usize,
    /// Reverse proxies and load balancers (addresses or CIDR ranges) whose
    /// `X-Forwarded-For` header names the real client, for rate limits and device IPs. Their
    /// connections are not counted against `max_connections_per_ip`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take to send a request's headers, in seconds: counted from
    /// connecting, and on HTTP/1.1 also from the end of the previous response.
    pub header_read_timeout_secs: Seconds,
    /// How long a connection may stay open with no request in flight, in seconds.
    pub idle_timeout_secs: Seconds,
    /// Connections one client address may hold open at once (IPv6: one /64); a connection over
    /// the cap is closed at once.
    pub max_connections_per_ip: NonZeroUsize,
}

/// Logging and metrics settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Default log filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// Serve Prometheus metrics at `/metrics` on `metrics_listen`.
    pub metrics_enabled: bool,
    /// The address metrics are served on: a listener of their own, never a client one.
    pub metrics_listen: SocketAddr,
}

/// A trusted identity server: the name clients use and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedServer {
    /// The server name clients give as `id_server` (host, and port if not the default).
    pub name: String,
    /// Where it is reached.
    pub base_url: Url,
    /// The entry as configured.
    entry: String,
}

impl TryFrom<String> for TrustedServer {
    type Error = String;

    fn try_from(entry: String) -> Result<Self, String> {
        let invalid = || format!("{entry:?} is neither a server name nor an http(s) URL");
        let base_url = if entry.starts_with("http://") || entry.starts_with("https://") {
            Url::parse(&entry)
        } else {
            Url::parse(&format!("https://{entry}"))
        }
        .map_err(|_| invalid())?;
        let host = base_url.host_str().ok_or_else(invalid)?;
        let name = match base_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            name,
            base_url,
            entry,
        })
    }
}

impl From<TrustedServer> for String {
    fn from(server: TrustedServer) -> Self {
        server.entry
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration in whole seconds, at least one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Seconds(NonZeroU64);

impl Seconds {
    /// `secs` seconds; zero becomes one.
    pub const fn of(secs: u64) -> Self {
        match NonZeroU64::new(secs) {
            Some(secs) => Self(secs),
            None => Self(NonZeroU64::MIN),
        }
    }

    /// The duration in milliseconds, as the clock counts them.
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.get().saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// The duration.
    pub fn as_duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.get())
    }
}

/// A secret setting (a password, a key): never shown in logs, `Debug` output or
/// `vestibule config check`, which print `***` for a secret that is set.
#[derive(Clone, Default)]
pub struct Secret(SecretString);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the secret is set.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(SecretString::from(secret))
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() { "\"\"" } else { "***" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.is_empty() { "" } else { "***" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|secret| Self(SecretString::from(secret)))
    }
}

/// A database URL: `sqlite:PATH` or `postgres://…`. Shown (in errors, logs and
/// `vestibule config check`) with its password masked.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;

    fn try_from(url: String) -> Result<Self, String> {
        let url = Self(url);
        if url.is_postgres() || url.0.starts_with("sqlite:") {
            Ok(url)
        } else {
            Err(format!(
                "{:?} must start with sqlite: or postgres://",
                url.0
            ))
        }
    }
}

impl From<&str> for DatabaseUrl {
    /// An unchecked URL (tests and tools that build their own); [`Config::load`] checks.
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact_url(&self.0))
    }
}

/// The URL with any password replaced, fit for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (only for a relay on the same host or a trusted network).
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// Email settings. With an empty `smtp_host` no email is sent, and the email features are
/// refused with a clear error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name; empty = no email.
    pub smtp_host: String,
    /// SMTP server port.
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    /// SMTP user name; empty = no authentication.
    pub username: String,
    /// SMTP password.
    pub password: Secret,
    /// The sender, e.g. `Vestibule <noreply@example.org>`.
    pub from: Mailbox,
    /// A directory whose `verification_subject.txt`, `verification.txt`, `verification.html`,
    /// `in_use_subject.txt`, `in_use.txt` and `in_use.html` (minijinja templates) replace the
    /// built-in ones; empty = built-in.
    pub template_dir: String,
    /// How long a verification token for registration or for adding an address can be used,
    /// in seconds.
    pub token_lifetime_secs: Seconds,
    /// How long a verification token for a password reset can be used, in seconds: short,
    /// because whoever holds a validated reset session can set the password.
    pub password_reset_lifetime_secs: Seconds,
    /// Hosts a client's `next_link` may lead to after validation; empty = only the host of
    /// `public_baseurl`.
    pub next_link_allowed_hosts: Vec<String>,
    /// Accept addresses whose local part (before the `@`) is not ASCII. Off by default: such
    /// mailboxes have no single canonical spelling, and many SMTP relays cannot deliver them.
    pub allow_unicode_local_parts: bool,
    /// Email domains addresses may belong to; empty = any.
    pub allowed_domains: Vec<String>,
    /// Answer verification requests for addresses that are taken (registration, adding) or
    /// unknown (password reset) as if they were fine, so the answer does not reveal which
    /// addresses have accounts: the owner of a taken address is told by email instead (what the
    /// spec recommends), an unknown one gets nothing.
    pub hide_address_existence: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "Vestibule <noreply@localhost>"
                .parse()
                .expect("the default sender is a mailbox"),
            template_dir: String::new(),
            token_lifetime_secs: Seconds::of(24 * 3600),
            password_reset_lifetime_secs: Seconds::of(3600),
            next_link_allowed_hosts: Vec::new(),
            allow_unicode_local_parts: false,
            allowed_domains: Vec::new(),
            hide_address_existence: false,
        }
    }
}

/// Identity-server settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Identity servers clients may name in `id_server`. An entry is a server name
    /// (`vector.im`, `id.example.org:8090`), reached over HTTPS, or a URL
    /// (`http://127.0.0.1:8090`) whose host and port are the server name.
    pub trusted_servers: Vec<TrustedServer>,
    /// How long a request to an identity server may take, in seconds.
    pub timeout_secs: Seconds,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            trusted_servers: Vec::new(),
            timeout_secs: Seconds::of(10),
        }
    }
}

/// One limit: a steady rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests per second allowed on average.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl Quota {
    /// Synapse's defaults for its `rc_login` and `rc_registration` limits.
    const STRICT: Self = Self {
        per_second: 0.17,
        burst: 3,
    };

    /// The time between two requests at the steady rate, in milliseconds.
    pub(crate) fn interval_ms(self) -> i64 {
        // Validated positive; rounding to whole milliseconds is precise enough for limits.
        #[allow(clippy::cast_possible_truncation)]
        let interval = (1000.0 / self.per_second).round() as i64;
        interval.max(1)
    }
}

/// The configured limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether requests are limited at all.
    pub enabled: bool,
    /// Login attempts per client IP.
    pub login_per_ip: Quota,
    /// Login attempts per account and client network.
    pub login_per_account: Quota,
    /// Failed login attempts per account and client network; once used up, logins to the
    /// account from that network are refused before the password is checked. Other networks
    /// are not affected, so a stranger can't lock the owner out.
    pub failed_login_per_account: Quota,
    /// Failed login attempts per account from all networks together; once used up, each
    /// further attempt waits (at most 10 s) before its password is checked, except from a
    /// network one of the account's devices was last seen on. Never a refusal.
    pub failed_login_account_wide: Quota,
    /// The prefix length IPv6 clients are limited by (their network, not their address).
    pub ipv6_prefix_length: u8,
    /// Registration requests per client IP.
    pub register_per_ip: Quota,
    /// Username availability and registration-token validity checks per client IP: both
    /// answer questions an enumeration would ask.
    pub registration_lookup_per_ip: Quota,
    /// Token refreshes per client IP.
    pub refresh_per_ip: Quota,
    /// Password attempts in User-Interactive Authentication, per account.
    pub uia_password_per_account: Quota,
    /// Login tokens generated (`POST /login/get_token`), per account; the spec encourages
    /// about one a minute.
    pub login_token_per_account: Quota,
    /// Verification email requests (`requestToken`) per client IP.
    pub email_per_ip: Quota,
    /// Verification email requests (`requestToken`) per recipient address, so that nobody can
    /// flood one inbox from many IPs.
    pub email_per_address: Quota,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            login_per_ip: Quota::STRICT,
            login_per_account: Quota::STRICT,
            failed_login_per_account: Quota::STRICT,
            failed_login_account_wide: Quota {
                per_second: 0.1,
                burst: 20,
            },
            ipv6_prefix_length: 64,
            register_per_ip: Quota::STRICT,
            registration_lookup_per_ip: Quota {
                per_second: 1.0,
                burst: 10,
            },
            refresh_per_ip: Quota {
                per_second: 1.0,
                burst: 10,
            },
            uia_password_per_account: Quota::STRICT,
            login_token_per_account: Quota {
                per_second: 0.017,
                burst: 1,
            },
            email_per_ip: Quota {
                per_second: 0.017,
                burst: 5,
            },
            email_per_address: Quota {
                per_second: 0.000_83,
                burst: 3,
            },
        }
    }
}

impl RateLimitConfig {
    /// The first quota that is not a positive rate with a burst of at least one, by name.
    pub fn invalid_quota(&self) -> Option<&'static str> {
        [
            ("login_per_ip", self.login_per_ip),
            ("login_per_account", self.login_per_account),
            ("failed_login_per_account", self.failed_login_per_account),
            ("failed_login_account_wide", self.failed_login_account_wide),
            ("register_per_ip", self.register_per_ip),
            (
                "registration_lookup_per_ip",
                self.registration_lookup_per_ip,
            ),
            ("refresh_per_ip", self.refresh_per_ip),
            ("uia_password_per_account", self.uia_password_per_account),
            ("login_token_per_account", self.login_token_per_account),
            ("email_per_ip", self.email_per_ip),
            ("email_per_address", self.email_per_address),
        ]
        .into_iter()
        .find(|(_, quota)| {
            !(quota.per_second.is_finite() && quota.per_second > 0.0 && quota.burst >= 1)
        })
        .map(|(name, _)| name)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: "localhost".try_into().expect("localhost is a server name"),
            public_baseurl: Url::parse("http://127.0.0.1:8008/").expect("the default URL parses"),
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
            url: DatabaseUrl("sqlite:vestibule-data/vestibule.db".into()),
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
            min_length: NonZeroUsize::new(8).expect("8 is not zero"),
            require_digit: false,
            require_lowercase: false,
            require_uppercase: false,
            require_symbol: false,
            reject_localpart: true,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_workers: 0,
            hash_queue: 0,
            hash_queue_per_network: 2,
        }
    }
}

impl Default for UiaConfig {
    fn default() -> Self {
        Self {
            session_lifetime_secs: Seconds::of(15 * 60),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: Seconds::of(10),
            idle_timeout_secs: Seconds::of(60),
            max_connections_per_ip: NonZeroUsize::new(100).expect("100 is not zero"),
        }
    }
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            metrics_enabled: true,
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
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

    /// Checks what the types alone can't: values that depend on each other, and a few ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.listen.is_empty() {
            return invalid("listen", "at least one address is needed".into());
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
        if let Some(quota) = self.rate_limits.invalid_quota() {
            return invalid(
                "rate_limits",
                format!("`{quota}` needs per_second > 0 and burst >= 1"),
            );
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes", "must be at least 1024".into());
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
            && (recaptcha.public_key.is_empty() || recaptcha.private_key.is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "registration.recaptcha",
                reason: "m.login.recaptcha needs public_key and private_key".into(),
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
        // Reachable beyond this machine: listening on a public address, or published at a
        // public URL through a reverse proxy (which itself usually listens on loopback).
        let public = self.listen.iter().any(|addr| !addr.ip().is_loopback())
            || !is_loopback_url(&self.public_baseurl);
        if registration.enabled
            && unverified
            && public
            && !registration.allow_unverified_on_public_address
        {
            return Err(ConfigError::Invalid {
                key: "registration.allow_unverified_on_public_address",
                reason: "registration is open with no verification stage while the server is \
                         reachable beyond this machine (a non-loopback listen address or \
                         public_baseurl); set this to true if that is really intended"
                    .into(),
            });
        }
        Ok(())
    }

    /// Reads the configuration at `path`, first writing a generated one there if it is missing:
    /// the zero-setup path of the quick start. Missing directories are created 0700: the
    /// quick start's SQLite database goes into the same one.
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
                crate::private_files::create_dir_all(parent).map_err(write_error)?;
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

/// Whether `url` names this machine only (`localhost` or a loopback address).
fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    }
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
        let printed = toml::to_string_pretty(&config).expect("renders");
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

    /// Security review F18: behind a reverse proxy the listener is loopback, but the server is
    /// public all the same; its `public_baseurl` says so.
    #[test]
    fn open_registration_behind_a_public_proxy_is_refused() {
        let mut config = Config {
            public_baseurl: Url::parse("https://matrix.example.org/").expect("URL"),
            ..Config::default()
        };
        assert!(config.validate().is_err(), "must refuse");
        config.public_baseurl = Url::parse("http://localhost:8008/").expect("URL");
        config
            .validate()
            .expect("a loopback public_baseurl is local");
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
