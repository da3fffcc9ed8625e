//! The User-Interactive Authentication engine (spec: "User-Interactive Authentication API").
//!
//! A use case calls [`Uia::authenticate`] once; it either returns [`Completed`] or a
//! [`UiaError`], typically the [`Challenge`] telling the client what to do next (the HTTP layer
//! turns it into the spec's 401). Sessions live in the store, so they survive restarts and
//! work across instances, and each is bound to the operation that started it: its action, the
//! requesting user, and an HMAC (keyed by the session ID, which is stored only hashed) of the
//! method, path and body without `auth`.

pub mod flows;
pub mod proofs;
pub mod stages;

use std::{collections::BTreeMap, sync::Arc};

use hmac::{Hmac, KeyInit, Mac};
use ruma::{CanonicalJsonValue, UserId};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::{
    clock::{Clock, Randomness},
    store::{Store, StoreError, UiaSessionRecord},
    tokens,
};
pub use flows::{Challenge, Flow, StageFailure, StageFailureKind};
use stages::{Stage, StageContext};

/// Characters in a session ID.
const SESSION_ID_CHARS: usize = 32;

/// The operations that can be protected by UIA; a session serves exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST /register`.
    Register,
    /// `POST /account/password`.
    ChangePassword,
    /// `POST /account/deactivate`.
    Deactivate,
    /// `DELETE /devices/{deviceId}` and `POST /delete_devices`.
    DeleteDevices,
    /// `POST /login/get_token`.
    GetLoginToken,
    /// `POST /account/3pid/add`.
    AddThreepid,
}

impl Action {
    /// Whether a session is bound to the request body (without `auth`) as well as to method,
    /// path and user: everywhere the body says what is authorised (the new password, the
    /// device, the address, erasure). A registration is not, so that clients can first learn
    /// the flows with an empty body and later requests may add or leave out parameters the
    /// session remembers.
    fn binds_body(self) -> bool {
        !matches!(self, Self::Register)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::ChangePassword => "change_password",
            Self::Deactivate => "deactivate",
            Self::DeleteDevices => "delete_devices",
            Self::GetLoginToken => "get_login_token",
            Self::AddThreepid => "add_threepid",
        }
    }
}

/// Why a round of UIA did not authorise the operation.
#[derive(Debug, thiserror::Error)]
pub enum UiaError {
    /// More stages are needed, or the attempted one failed: the client gets the challenge.
    #[error("authentication is needed")]
    Challenge(Box<Challenge>),
    /// `auth` (or one of its keys) does not have the shape the spec gives it.
    #[error("{0}")]
    MalformedAuth(&'static str),
    /// The client attempted a stage that no flow of this operation offers.
    #[error("authentication stage {0:?} is not offered for this request")]
    StageNotOffered(String),
    /// The session is unknown, expired or already used.
    #[error("unknown or expired authentication session")]
    UnknownSession,
    /// The session was started for another operation, user or request body.
    #[error("this authentication session was started for a different request")]
    OperationChanged,
    /// A stage named another user than the one the request is authenticated as.
    #[error("the authentication names another user")]
    OtherUser,
    /// The sessions could not be read or written.
    #[error("UIA session storage failed")]
    Store(#[from] StoreError),
}

/// Where a session stands after [`Uia::advance`].
#[derive(Debug, Clone)]
pub struct Progress {
    /// The session ID handed to the client.
    pub session_id: String,
    /// SHA-256 (hex) of the session ID.
    pub session_hash: String,
    /// The stages completed so far, in order.
    pub completed: Vec<String>,
    /// What the stages (and [`Uia::remember`]) recorded.
    pub data: Map<String, Value>,
}

/// The request being authorised.
pub struct Operation<'a> {
    /// What the request does.
    pub action: Action,
    /// The request, as the session is bound to it.
    pub request: BoundRequest<'a>,
    /// The authenticated user, if the request carried an access token.
    pub user: Option<&'a UserId>,
    /// The flows that authorise this operation.
    pub flows: &'a [Flow],
}

/// What binds a UIA session to the request that started it.
#[derive(Debug, Clone, Copy)]
pub struct BoundRequest<'a> {
    /// HTTP method of the request.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// The whole JSON body, including `auth`.
    pub body: &'a Value,
}

/// Proof that a flow was completed; the session has been consumed.
#[derive(Debug)]
pub struct Completed {
    /// The stages that were completed.
    pub stages: Vec<String>,
    /// SHA-256 (hex) of the consumed session's ID: what stage grants (such as a registration
    /// token's reservation) are held under.
    pub session_hash: String,
    /// What the stages recorded, by stage type (e.g. the registration token used).
    pub data: Map<String, Value>,
}

impl Completed {
    /// What the completed stages proved.
    pub fn proofs(&self) -> proofs::Proofs {
        proofs::Proofs::from_records(&self.data)
    }
}

/// The UIA engine: stage registry plus stored sessions.
#[derive(Clone)]
pub struct Uia {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
    stages: Arc<BTreeMap<&'static str, Box<dyn Stage>>>,
    session_lifetime_ms: i64,
}

impl Uia {
    /// An engine offering `stages`, with sessions lasting `session_lifetime_ms`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Randomness>,
        stages: Vec<Box<dyn Stage>>,
        session_lifetime_ms: i64,
    ) -> Self {
        let stages = stages
            .into_iter()
            .map(|stage| (stage.kind(), stage))
            .collect();
        Self {
            store,
            clock,
            rng,
            stages: Arc::new(stages),
            session_lifetime_ms,
        }
    }

    /// Runs one round of UIA for `operation`: starts a session, attempts the stage in `auth`,
    /// and returns [`Completed`] once a flow is satisfied, or else the 401 challenge.
    pub async fn authenticate(&self, operation: Operation<'_>) -> Result<Completed, UiaError> {
        let progress = self.advance(&operation).await?;
        self.require_complete(operation.flows, &progress)?;
        self.consume(progress).await
    }

    /// The challenge, unless the session's completed stages satisfy one of `flows`.
    pub fn require_complete(&self, flows: &[Flow], progress: &Progress) -> Result<(), UiaError> {
        if flows::is_satisfied(flows, &progress.completed) {
            Ok(())
        } else {
            Err(self.challenge(flows, &progress.session_id, &progress.completed, None))
        }
    }

    /// Consumes a completed session: of concurrent callers, exactly one gets [`Completed`].
    pub async fn consume(&self, progress: Progress) -> Result<Completed, UiaError> {
        if !self.store.take_uia_session(&progress.session_hash).await? {
            return Err(UiaError::UnknownSession);
        }
        Ok(Completed {
            stages: progress.completed,
            session_hash: progress.session_hash,
            data: progress.data,
        })
    }

    /// One step of a flow that spans several requests without consuming the session (the
    /// seeds' v1 registration, whose last step is not a UIA stage): starts or loads the
    /// session, attempts the stage in `auth` if there is one, and reports where the session
    /// stands. A failed stage is the challenge with its failure.
    pub async fn advance(&self, operation: &Operation<'_>) -> Result<Progress, UiaError> {
        let auth = match operation.request.body.get("auth") {
            None | Some(Value::Null) => None,
            Some(Value::Object(auth)) => Some(auth),
            Some(_) => return Err(UiaError::MalformedAuth("`auth` must be an object")),
        };
        let session_id = match auth.and_then(|auth| auth.get("session")) {
            None | Some(Value::Null) => None,
            Some(Value::String(session)) => Some(session.clone()),
            Some(_) => {
                return Err(UiaError::MalformedAuth("`auth.session` must be a string"));
            }
        };
        let (session_id, session) = match session_id {
            Some(session_id) => {
                let session = self.load_session(&session_id, operation).await?;
                (session_id, session)
            }
            None => self.start_session(operation).await?,
        };
        let mut completed = session.completed;
        let mut data = parse_values(&session.values);
        let stage_type = match auth.and_then(|auth| auth.get("type")) {
            None | Some(Value::Null) => None,
            Some(Value::String(stage)) => Some(stage.as_str()),
            Some(_) => return Err(UiaError::MalformedAuth("`auth.type` must be a string")),
        };
        if let (Some(stage_type), Some(auth)) = (stage_type, auth) {
            let stage = self
                .stages
                .get(stage_type)
                .filter(|_| flows::offers(operation.flows, stage_type))
                .ok_or_else(|| UiaError::StageNotOffered(stage_type.to_owned()))?;
            let context = StageContext {
                action: operation.action,
                user: operation.user,
                session_hash: &session.session_hash,
                session_expires_at_ms: session.expires_at_ms,
            };
            match stage.attempt(&context, auth).await {
                Ok(recorded) => {
                    let record = recorded.map(|recorded| recorded.to_string());
                    let progress = self
                        .store
                        .complete_uia_stage(&session.session_hash, stage_type, record.as_deref())
                        .await?;
                    completed = progress.completed;
                    data = parse_values(&progress.values);
                }
                Err(failure) if failure.kind == StageFailureKind::OtherUser => {
                    return Err(UiaError::OtherUser);
                }
                Err(failure) => {
                    return Err(self.challenge(
                        operation.flows,
                        &session_id,
                        &completed,
                        Some(failure),
                    ));
                }
            }
        }
        Ok(Progress {
            session_id,
            session_hash: session.session_hash,
            completed,
            data,
        })
    }

    /// Stores `value` under `key` in the session, for the operation's own use (for example the
    /// user a legacy flow chose, which later steps may not change). Other values of the session
    /// are left as they are, whatever concurrent requests write.
    pub async fn remember(
        &self,
        progress: &Progress,
        key: &str,
        value: Value,
    ) -> Result<(), UiaError> {
        self.store
            .set_uia_value(&progress.session_hash, key, &value.to_string())
            .await?;
        Ok(())
    }

    async fn start_session(
        &self,
        operation: &Operation<'_>,
    ) -> Result<(String, UiaSessionRecord), UiaError> {
        let session_id = self.rng.alphanumeric(SESSION_ID_CHARS);
        let now_ms = self.clock.now_ms();
        let record = UiaSessionRecord {
            session_hash: tokens::digest(&session_id),
            action: operation.action.as_str().to_owned(),
            fingerprint: fingerprint(&session_id, operation),
            user_id: operation.user.map(ToString::to_string),
            values: BTreeMap::new(),
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(self.session_lifetime_ms),
            completed: Vec::new(),
        };
        self.store.insert_uia_session(record.clone()).await?;
        Ok((session_id, record))
    }

    async fn load_session(
        &self,
        session_id: &str,
        operation: &Operation<'_>,
    ) -> Result<UiaSessionRecord, UiaError> {
        let session = self
            .store
            .find_uia_session(&tokens::digest(session_id))
            .await?
            .filter(|session| session.expires_at_ms > self.clock.now_ms())
            .ok_or(UiaError::UnknownSession)?;
        let same_user = session.user_id.as_deref() == operation.user.map(UserId::as_str);
        if session.action != operation.action.as_str()
            || !same_user
            || session.fingerprint != fingerprint(session_id, operation)
        {
            return Err(UiaError::OperationChanged);
        }
        Ok(session)
    }

    fn challenge(
        &self,
        flows: &[Flow],
        session_id: &str,
        completed: &[String],
        failure: Option<StageFailure>,
    ) -> UiaError {
        let params: Map<String, Value> = flows
            .iter()
            .flatten()
            .filter_map(|kind| {
                let params = self.stages.get(kind.as_str())?.params()?;
                Some((kind.clone(), params))
            })
            .collect();
        UiaError::Challenge(Box::new(Challenge {
            flows: flows.to_vec(),
            params,
            session: session_id.to_owned(),
            completed: completed.to_vec(),
            failure,
        }))
    }

    /// Deletes sessions that have expired; run periodically.
    pub async fn purge_expired(&self) -> Result<u64, UiaError> {
        Ok(self
            .store
            .delete_expired_uia_sessions(self.clock.now_ms())
            .await?)
    }
}

/// A session's stored values as JSON; a value that is not valid JSON (never written by this
/// engine) is left out.
fn parse_values(values: &BTreeMap<String, String>) -> Map<String, Value> {
    values
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), serde_json::from_str(value).ok()?)))
        .collect()
}

/// HMAC-SHA256, keyed by the session ID, of the method, path and canonical body without `auth`
/// (no body for an action that does not bind it).
fn fingerprint(session_id: &str, operation: &Operation<'_>) -> String {
    let mut body = if operation.action.binds_body() {
        operation.request.body.clone()
    } else {
        Value::Null
    };
    if let Some(object) = body.as_object_mut() {
        object.remove("auth");
    }
    let canonical = CanonicalJsonValue::try_from(body.clone())
        .map_or_else(|_| body.to_string(), |canonical| canonical.to_string());
    let mut mac =
        Hmac::<Sha256>::new_from_slice(session_id.as_bytes()).expect("HMAC accepts any key length");
    for part in [
        operation.request.method,
        "\n",
        operation.request.path,
        "\n",
        &canonical,
    ] {
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::{
        clock::{ManualClock, OsRandomness},
        store,
    };

    /// A stage that records `{"stage": kind}` after a pause, so that two concurrent attempts
    /// on one session overlap between loading the session and recording their result.
    struct SlowRecording(&'static str);

    #[async_trait]
    impl Stage for SlowRecording {
        fn kind(&self) -> &'static str {
            self.0
        }

        async fn attempt(
            &self,
            _: &StageContext<'_>,
            _: &Map<String, Value>,
        ) -> stages::StageOutcome {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Some(json!({ "stage": self.0 })))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_stages_on_one_session_keep_both_records() {
        let dir = tempfile::tempdir().expect("create temporary directory");
        let url = format!("sqlite://{}", dir.path().join("uia.db").display());
        let store = store::open(&url, 4).await.expect("open store");
        let uia = Uia::new(
            store,
            Arc::new(ManualClock::new(1_000)),
            Arc::new(OsRandomness),
            vec![
                Box::new(SlowRecording("test.a")),
                Box::new(SlowRecording("test.b")),
            ],
            60_000,
        );
        let flows = vec![vec!["test.a".to_owned(), "test.b".to_owned()]];
        fn operation<'a>(body: &'a Value, flows: &'a [Flow]) -> Operation<'a> {
            Operation {
                action: Action::Register,
                request: BoundRequest {
                    method: "POST",
                    path: "/register",
                    body,
                },
                user: None,
                flows,
            }
        }

        for _ in 0..5 {
            let empty = json!({});
            let session = uia
                .advance(&operation(&empty, &flows))
                .await
                .expect("start");
            let attempt =
                |stage| json!({ "auth": { "type": stage, "session": session.session_id } });
            let (a, b) = (attempt("test.a"), attempt("test.b"));
            let (attempt_a, attempt_b) = (operation(&a, &flows), operation(&b, &flows));
            let (first, second) = tokio::join!(uia.advance(&attempt_a), uia.advance(&attempt_b));
            first.expect("stage a");
            second.expect("stage b");

            let resumed = json!({ "auth": { "session": session.session_id } });
            let progress = uia
                .advance(&operation(&resumed, &flows))
                .await
                .expect("resume");
            assert_eq!(progress.completed.len(), 2);
            assert_eq!(progress.data["test.a"], json!({ "stage": "test.a" }));
            assert_eq!(progress.data["test.b"], json!({ "stage": "test.b" }));
        }
    }
}
