//! Rate limiting (spec "Rate limiting"; Synapse's `rc_*` options): per client IP and per account,
//! with buckets kept in the store so every instance behind a load balancer shares them.

use std::{net::IpAddr, sync::Arc};

use crate::{
    clock::Clock,
    config::{Quota, RateLimitConfig},
    store::{Store, StoreError},
};

/// What is being limited; each has its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`RateLimitConfig::login_per_ip`].
    LoginPerIp,
    /// [`RateLimitConfig::login_per_account`].
    LoginPerAccount,
    /// [`RateLimitConfig::failed_login_per_account`], per account and client network.
    FailedLoginPerAccount,
    /// [`RateLimitConfig::failed_login_account_wide`].
    FailedLoginAccountWide,
    /// [`RateLimitConfig::register_per_ip`].
    RegisterPerIp,
    /// [`RateLimitConfig::registration_lookup_per_ip`].
    RegistrationLookupPerIp,
    /// [`RateLimitConfig::refresh_per_ip`].
    RefreshPerIp,
    /// [`RateLimitConfig::uia_password_per_account`].
    UiaPasswordPerAccount,
    /// [`RateLimitConfig::login_token_per_account`].
    LoginTokenPerAccount,
    /// [`RateLimitConfig::email_per_ip`].
    EmailPerIp,
    /// [`RateLimitConfig::email_per_address`].
    EmailPerAddress,
}

impl Limit {
    /// Whether the subject of this limit is a client IP (limited by its network).
    fn is_per_ip(self) -> bool {
        matches!(
            self,
            Self::LoginPerIp
                | Self::RegisterPerIp
                | Self::RegistrationLookupPerIp
                | Self::RefreshPerIp
                | Self::EmailPerIp
        )
    }
}

/// A request was refused by a limit.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// Too many requests; retry after this many milliseconds.
    #[error("too many requests")]
    Limited {
        /// Milliseconds until a request would be allowed.
        retry_after_ms: i64,
    },
    /// The store could not be asked.
    #[error("the rate-limit store failed")]
    Store(#[from] StoreError),
}

/// Checks and consumes rate-limit buckets in the store.
#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<RateLimitConfig>,
}

impl RateLimiter {
    /// A limiter with the configured quotas.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: RateLimitConfig) -> Self {
        Self {
            store,
            clock,
            config: Arc::new(config),
        }
    }

    fn quota(&self, limit: Limit) -> (&'static str, Quota) {
        let config = &self.config;
        match limit {
            Limit::LoginPerIp => ("login:ip", config.login_per_ip),
            Limit::LoginPerAccount => ("login:account", config.login_per_account),
            Limit::FailedLoginPerAccount => {
                ("login_failed:account", config.failed_login_per_account)
            }
            Limit::FailedLoginAccountWide => (
                "login_failed:account_wide",
                config.failed_login_account_wide,
            ),
            Limit::RegisterPerIp => ("register:ip", config.register_per_ip),
            Limit::RegistrationLookupPerIp => {
                ("register_lookup:ip", config.registration_lookup_per_ip)
            }
            Limit::RefreshPerIp => ("refresh:ip", config.refresh_per_ip),
            Limit::UiaPasswordPerAccount => {
                ("uia_password:account", config.uia_password_per_account)
            }
            Limit::LoginTokenPerAccount => ("login_token:account", config.login_token_per_account),
            Limit::EmailPerIp => ("email:ip", config.email_per_ip),
            Limit::EmailPerAddress => ("email:address", config.email_per_address),
        }
    }

    /// Counts one request against `limit` for `subject` (an IP or a user ID); refused when the
    /// bucket is empty. A request with no known subject is not limited.
    pub async fn take(&self, limit: Limit, subject: Option<&str>) -> Result<(), RateLimitError> {
        self.check(limit, subject, true).await
    }

    /// Whether a request would be allowed, without counting it.
    pub async fn peek(&self, limit: Limit, subject: Option<&str>) -> Result<(), RateLimitError> {
        self.check(limit, subject, false).await
    }

    async fn check(
        &self,
        limit: Limit,
        subject: Option<&str>,
        consume: bool,
    ) -> Result<(), RateLimitError> {
        let Some(subject) = subject.filter(|_| self.config.enabled) else {
            return Ok(());
        };
        let (prefix, quota) = self.quota(limit);
        let key = if limit.is_per_ip() {
            format!("{prefix}:{}", self.network(subject))
        } else {
            format!("{prefix}:{subject}")
        };
        let (now_ms, interval_ms, burst) = (
            self.clock.now_ms(),
            quota.interval_ms(),
            i64::from(quota.burst),
        );
        let wait = if consume {
            self.store
                .take_rate_limit(&key, now_ms, interval_ms, burst)
                .await
        } else {
            self.store
                .peek_rate_limit(&key, now_ms, interval_ms, burst)
                .await
        }
        .map_err(RateLimitError::Store)?;
        match wait {
            None => Ok(()),
            Some(retry_after_ms) => {
                metrics::counter!("vestibule_rate_limited_total", "limit" => prefix).increment(1);
                Err(RateLimitError::Limited { retry_after_ms })
            }
        }
    }

    /// The network a client address is limited as: IPv4 addresses (IPv4-mapped IPv6 ones
    /// included) one by one, IPv6 addresses by their `/rate_limits.ipv6_prefix_length` (a /64
    /// by default: one host usually holds a whole /64). Anything else is kept as it is.
    pub fn network(&self, ip: &str) -> String {
        match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(IpAddr::V4(ip)) => ip.to_string(),
            Ok(IpAddr::V6(ip)) => {
                let prefix = self.config.ipv6_prefix_length.min(128);
                ipnet::Ipv6Net::new(ip, prefix)
                    .map(|net| net.trunc().to_string())
                    .unwrap_or_else(|_| ip.to_string())
            }
            Err(_) => ip.to_owned(),
        }
    }

    /// Forgets buckets that have refilled; run periodically.
    pub async fn purge_idle(&self) -> Result<u64, RateLimitError> {
        self.store
            .delete_idle_rate_limits(self.clock.now_ms())
            .await
            .map_err(RateLimitError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_come_from_the_rate() {
        assert_eq!(
            Quota {
                per_second: 0.17,
                burst: 3
            }
            .interval_ms(),
            5882
        );
        assert_eq!(
            Quota {
                per_second: 10.0,
                burst: 1
            }
            .interval_ms(),
            100
        );
        assert_eq!(
            Quota {
                per_second: 1e9,
                burst: 1
            }
            .interval_ms(),
            1
        );
    }

    #[test]
    fn invalid_quotas_are_named() {
        let mut config = RateLimitConfig::default();
        assert_eq!(config.invalid_quota(), None);
        config.refresh_per_ip.per_second = 0.0;
        assert_eq!(config.invalid_quota(), Some("refresh_per_ip"));
        config.refresh_per_ip.per_second = 1.0;
        config.login_per_ip.burst = 0;
        assert_eq!(config.invalid_quota(), Some("login_per_ip"));
    }
}
