//! The identity-server client (Identity Service API): checks sessions an identity server
//! validated, binds and unbinds addresses. Only servers the configuration trusts are contacted.

use serde_json::{Value, json};

use crate::config::{IdentityConfig, TrustedServer};

/// What went wrong talking to an identity server.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The server is not in `identity.trusted_servers`.
    #[error("identity server {0:?} is not trusted by this homeserver")]
    NotTrusted(String),
    /// The server does not vouch for the session (unknown, not validated, wrong secret).
    #[error("the identity server did not vouch for this session: {0}")]
    NotValidated(String),
    /// The server refused the request.
    #[error("the identity server refused: {0}")]
    Refused(String),
    /// The server could not be reached, or its answer could not be read.
    #[error("the identity server could not be reached")]
    Unreachable(#[source] reqwest::Error),
    /// The server answered something that is not the API's answer.
    #[error("the identity server answered nonsense: {0}")]
    Nonsense(String),
}

/// An address an identity server has validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedThreepid {
    /// `email` or `msisdn`.
    pub medium: String,
    /// The address as the identity server's session spelled it.
    pub address: String,
    /// When it was validated, milliseconds since the epoch.
    pub validated_at_ms: i64,
}

/// An identity server's validation session.
#[derive(Debug, Clone, Copy)]
pub struct SessionCredentials<'a> {
    /// The identity server, as the client named it.
    pub id_server: &'a str,
    /// Its session ID.
    pub sid: &'a str,
    /// The session's client secret.
    pub client_secret: &'a str,
    /// The client's access token at that identity server (v2 API), if given.
    pub id_access_token: Option<&'a str>,
}

/// Talks to trusted identity servers.
#[derive(Debug, Clone)]
pub struct IdentityClient {
    http: reqwest::Client,
    trusted: Vec<TrustedServer>,
}

impl IdentityClient {
    /// A client for the configured trusted servers.
    pub fn from_config(config: &IdentityConfig) -> Result<Self, reqwest::Error> {
        // A redirect would carry the session's secrets (in the URL and `Referer`) to another
        // host, and its answer would be trusted as the identity server's: none is followed.
        let http = reqwest::Client::builder()
            .timeout(config.timeout_secs.as_duration())
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()?;
        Ok(Self {
            http,
            trusted: config.trusted_servers.clone(),
        })
    }

    fn server(&self, id_server: &str) -> Result<&TrustedServer, IdentityError> {
        self.trusted
            .iter()
            .find(|server| server.name.eq_ignore_ascii_case(id_server))
            .ok_or_else(|| IdentityError::NotTrusted(id_server.to_owned()))
    }

    /// Whether any identity server is trusted.
    pub fn has_trusted_servers(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// Whether `id_server` is trusted.
    pub fn is_trusted(&self, id_server: &str) -> bool {
        self.server(id_server).is_ok()
    }

    /// The address an identity server validated in a session (`getValidated3pid`): the v2 API
    /// with the client's `id_access_token`, else the v1 API the seeds' clients use.
    pub async fn validated_threepid(
        &self,
        creds: SessionCredentials<'_>,
    ) -> Result<ValidatedThreepid, IdentityError> {
        let server = self.server(creds.id_server)?;
        let path = match creds.id_access_token {
            Some(_) => "_matrix/identity/v2/3pid/getValidated3pid",
            None => "_matrix/identity/api/v1/3pid/getValidated3pid",
        };
        let mut request = self
            .http
            .get(join(&server.base_url, path))
            .query(&[("sid", creds.sid), ("client_secret", creds.client_secret)]);
        if let Some(token) = creds.id_access_token {
            request = request.bearer_auth(token);
        }
        let (status, body) = send(request).await?;
        if !status.is_success() {
            return Err(IdentityError::NotValidated(describe(&body, status)));
        }
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        match (
            field("medium"),
            field("address"),
            body["validated_at"].as_i64(),
        ) {
            (Some(medium), Some(address), Some(validated_at_ms)) => Ok(ValidatedThreepid {
                medium,
                address,
                validated_at_ms,
            }),
            _ => Err(IdentityError::Nonsense(format!(
                "unexpected getValidated3pid answer: {body}"
            ))),
        }
    }

    /// Binds the session's address to `mxid` at the identity server.
    pub async fn bind(
        &self,
        creds: SessionCredentials<'_>,
        mxid: &str,
    ) -> Result<(), IdentityError> {
        let server = self.server(creds.id_server)?;
        let path = match creds.id_access_token {
            Some(_) => "_matrix/identity/v2/3pid/bind",
            None => "_matrix/identity/api/v1/3pid/bind",
        };
        let mut request = self.http.post(join(&server.base_url, path)).json(&json!({
            "sid": creds.sid,
            "client_secret": creds.client_secret,
            "mxid": mxid,
        }));
        if let Some(token) = creds.id_access_token {
            request = request.bearer_auth(token);
        }
        let (status, body) = send(request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(IdentityError::Refused(describe(&body, status)))
        }
    }

    /// Removes a binding, proving it with the validation session that made it.
    pub async fn unbind(
        &self,
        creds: SessionCredentials<'_>,
        mxid: &str,
        medium: &str,
        address: &str,
    ) -> Result<(), IdentityError> {
        let server = self.server(creds.id_server)?;
        let request = self
            .http
            .post(join(&server.base_url, "_matrix/identity/v2/3pid/unbind"))
            .json(&json!({
                "sid": creds.sid,
                "client_secret": creds.client_secret,
                "mxid": mxid,
                "threepid": { "medium": medium, "address": address },
            }));
        let (status, body) = send(request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(IdentityError::Refused(describe(&body, status)))
        }
    }
}

fn join(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    url.set_path(&format!("/{path}"));
    url
}

async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, Value), IdentityError> {
    let response = request.send().await.map_err(IdentityError::Unreachable)?;
    let status = response.status();
    let body = response
        .json::<Value>()
        .await
        .map_err(IdentityError::Unreachable)?;
    Ok((status, body))
}

fn describe(body: &Value, status: reqwest::StatusCode) -> String {
    match (body["errcode"].as_str(), body["error"].as_str()) {
        (Some(errcode), Some(error)) => format!("{status} {errcode}: {error}"),
        _ => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_entries_are_names_or_urls() {
        let trusted = |entry: &str| TrustedServer::try_from(entry.to_owned());
        let server = trusted("vector.im").unwrap();
        assert_eq!(server.name, "vector.im");
        assert_eq!(server.base_url.as_str(), "https://vector.im/");
        let server = trusted("http://127.0.0.1:8090").unwrap();
        assert_eq!(server.name, "127.0.0.1:8090");
        assert_eq!(
            join(&server.base_url, "_matrix/identity/v2/3pid/bind").as_str(),
            "http://127.0.0.1:8090/_matrix/identity/v2/3pid/bind"
        );
        assert!(trusted("not a host").is_err());
        let config = IdentityConfig {
            trusted_servers: vec![trusted("id.example.org:8443").unwrap()],
            ..IdentityConfig::default()
        };
        let client = IdentityClient::from_config(&config).unwrap();
        assert!(client.is_trusted("ID.example.org:8443"));
        assert!(!client.is_trusted("evil.example.org"));
    }
}
