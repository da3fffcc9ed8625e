//! One test file per seed document in `../shared/seeds/`, each walking through the endpoints
//! exactly as its document describes them, with every error response it lists. Accounts and
//! tokens are shared with the current API throughout.
//!
//! - `000`: the v1 `/register` swagger 1.2 document (flows, stages, submissions);
//! - `001`: the v2_alpha registration document and its account sections (`/register` with UIA
//!   and `bind_email`, `/tokenrefresh`, `/account/password`, `/account/3pid`);
//! - `002`: the v1 login document (`/login` with the `access_token` query parameter);
//! - `003`: the v1 `/register` models (multi-stage `session` and `next`);
//! - `004`: the `/account/3pid` document (`three_pid_creds`, `bind`, `M_THREEPID_AUTH_FAILED`).

mod seed_000_v1_registration;
mod seed_001_v2_alpha;
mod seed_002_v1_login;
mod seed_003_v1_multi_stage;
mod seed_004_account_3pid;

use serde_json::{Value, json};
use vestibule::config::{Config, SmtpTls};

use crate::peers::{CaptchaVerifier, MailSink};

/// The v1 registration endpoint.
pub const V1_REGISTER: &str = "/_matrix/client/api/v1/register";
/// The v1 login endpoint.
pub const V1_LOGIN: &str = "/_matrix/client/api/v1/login";
/// whoami on the current API.
pub const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

/// Sends the server's email through `sink`.
pub fn use_mail(config: &mut Config, sink: &MailSink) {
    config.email.smtp_host = "127.0.0.1".into();
    config.email.smtp_port = sink.port();
    config.email.tls = SmtpTls::None;
}

/// Checks CAPTCHAs with `verifier`.
pub fn use_captcha(config: &mut Config, verifier: &CaptchaVerifier) {
    config.registration.recaptcha.public_key = "captcha-site-key".into();
    config.registration.recaptcha.private_key = CaptchaVerifier::SECRET.into();
    config.registration.recaptcha.verify_url = verifier.url.parse().expect("verifier URL");
}

/// The `threepidCreds` of a v1 `m.login.email.identity` submission.
pub fn email_stage(
    id_server: Option<&str>,
    sid: &str,
    secret: &str,
    session: Option<&Value>,
) -> Value {
    let mut creds = json!({"sid": sid, "client_secret": secret});
    if let Some(id_server) = id_server {
        creds["id_server"] = json!(id_server);
    }
    let mut body = json!({"type": "m.login.email.identity", "threepidCreds": creds});
    if let Some(session) = session {
        body["session"] = session.clone();
    }
    body
}
