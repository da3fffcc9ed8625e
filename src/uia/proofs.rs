//! What completed stages prove, as typed records: each stage stores its record in the session
//! (as JSON, under its stage type) and the operation reads them back as [`Proofs`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `m.login.registration_token`: the token one use of which the session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenProof {
    /// The registration token.
    pub token: String,
}

/// `m.login.terms`: one policy version the user was shown and accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedPolicy {
    /// The policy's name in the configuration.
    pub policy: String,
    /// Its version.
    pub version: String,
}

/// `m.login.email.identity`: the address a verification session proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailProof {
    /// `email`.
    pub medium: String,
    /// The canonical address.
    pub address: String,
    /// When it was proven, milliseconds since the epoch.
    pub validated_at_ms: i64,
    /// This server's verification session, spent once the proof is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The identity server's session, when a trusted identity server proved the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_server: Option<IdentityServerSession>,
}

/// A validation session at an identity server, kept so the address can be bound there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityServerSession {
    /// The identity server.
    pub id_server: String,
    /// Its session ID.
    pub sid: String,
    /// The client's secret for that session.
    pub client_secret: String,
}

/// Everything the completed stages of a session proved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proofs {
    /// The proven email address, if an email stage was completed.
    pub email: Option<EmailProof>,
    /// The registration token whose use the session holds.
    pub registration_token: Option<String>,
    /// The policy versions accepted.
    pub accepted_terms: Vec<AcceptedPolicy>,
}

impl Proofs {
    /// Reads the stage records of a session (keyed by stage type); a record this engine did not
    /// write in this shape is ignored.
    pub fn from_records(records: &Map<String, Value>) -> Self {
        let read = |stage: &str| records.get(stage).cloned();
        Self {
            email: read("m.login.email.identity")
                .and_then(|value| serde_json::from_value(value).ok()),
            registration_token: read("m.login.registration_token")
                .and_then(|value| serde_json::from_value::<TokenProof>(value).ok())
                .map(|proof| proof.token),
            accepted_terms: read("m.login.terms")
                .and_then(|value| serde_json::from_value(value).ok())
                .unwrap_or_default(),
        }
    }
}

/// A record as stored in the session.
pub fn record(value: &impl Serialize) -> Option<Value> {
    serde_json::to_value(value).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_read_back_as_proofs() {
        let records = json!({
            "m.login.terms": [{"policy": "privacy", "version": "1.0"}],
            "m.login.registration_token": {"token": "abc"},
            "m.login.email.identity": {
                "medium": "email", "address": "a@example.org", "validated_at_ms": 5, "sid": "s"
            },
            "v1.user": "alice",
        });
        let proofs = Proofs::from_records(records.as_object().expect("object"));
        assert_eq!(proofs.registration_token.as_deref(), Some("abc"));
        assert_eq!(proofs.accepted_terms[0].version, "1.0");
        let email = proofs.email.expect("email");
        assert_eq!(email.sid.as_deref(), Some("s"));
        assert_eq!(email.identity_server, None);
    }
}
