//! Pure flow logic: is an operation complete, and what the challenge tells the client.

use serde_json::{Map, Value};

/// A flow: the stages that, all completed, authorise the operation.
pub type Flow = Vec<String>;

/// Whether the completed stages cover every stage of at least one flow.
pub fn is_satisfied(flows: &[Flow], completed: &[String]) -> bool {
    flows
        .iter()
        .any(|flow| flow.iter().all(|stage| completed.contains(stage)))
}

/// Whether `stage` appears in any flow.
pub fn offers(flows: &[Flow], stage: &str) -> bool {
    flows.iter().flatten().any(|offered| offered == stage)
}

/// Why a stage refused the client's `auth`, reported inside the next challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFailure {
    /// What kind of refusal this is (the HTTP layer names its Matrix error code).
    pub kind: StageFailureKind,
    /// Human-readable explanation.
    pub message: String,
}

impl StageFailure {
    /// A failure of `kind` explained by `message`.
    pub fn new(kind: StageFailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The kinds of stage failure a client can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageFailureKind {
    /// The proof was wrong (a wrong password, an unusable token).
    Forbidden,
    /// The stage's `auth` lacks a key it needs.
    MissingParam,
    /// Too many attempts.
    LimitExceeded,
    /// The stage names another user than the one the request is authenticated as: the
    /// operation is refused outright rather than retried.
    OtherUser,
    /// The verification session is unknown, expired or not yet validated.
    Unauthorized,
    /// The identity server named is not trusted by this server.
    ServerNotTrusted,
    /// The identity server did not vouch for the session.
    ThreepidAuthFailed,
    /// The CAPTCHA answer is missing.
    CaptchaNeeded,
    /// The CAPTCHA answer is wrong.
    CaptchaInvalid,
    /// Something on this server's side (or a peer) failed; the client may retry.
    Unavailable,
}

/// What the client is told when more authentication is needed: the 401 challenge of the spec's
/// User-Interactive Authentication API, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// The flows that authorise the operation.
    pub flows: Vec<Flow>,
    /// Each offered stage's parameters, by stage type.
    pub params: Map<String, Value>,
    /// The session ID the client must send back.
    pub session: String,
    /// The stages completed so far.
    pub completed: Vec<String>,
    /// Why the last attempted stage failed, if it did.
    pub failure: Option<StageFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows() -> Vec<Flow> {
        vec![vec!["a".into(), "b".into()], vec!["c".into()]]
    }

    #[test]
    fn satisfied_when_any_flow_is_complete() {
        assert!(!is_satisfied(&flows(), &[]));
        assert!(!is_satisfied(&flows(), &["a".into()]));
        assert!(is_satisfied(&flows(), &["b".into(), "a".into()]));
        assert!(is_satisfied(&flows(), &["c".into()]));
    }
}
