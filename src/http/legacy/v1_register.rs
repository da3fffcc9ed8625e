//! The seeds' v1 registration (`/_matrix/client/api/v1/register`, seeds 000 and 003): a
//! multi-stage flow of login types, each its own request, ending with `m.login.password`.
//!
//! Each configured registration flow becomes a v1 flow: its stages (without `m.login.dummy`)
//! followed by `m.login.password`. This module only adapts the v1 shapes: the stages run in
//! [`Accounts::v1_registration_stage`](crate::accounts::Accounts::v1_registration_stage) and the
//! password step in [`Accounts::register_v1`](crate::accounts::Accounts::register_v1), which ends
//! the same way as `POST /v3/register`.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Map, Value, json};

use super::{PASSWORD, v1_session};
use crate::{
    accounts::{AccountError, V1Registration, V1Stage},
    app::AppState,
    http::{
        auth::ClientIp,
        error::{MatrixError, stage_errcode},
        json::JsonBody,
    },
    uia::{StageFailureKind, UiaError},
};

/// `GET /api/v1/register`: every flow the server accepts, each with the `type` of its first
/// stage and, when it has several, all its `stages`.
pub async fn flows(State(app): State<AppState>) -> Json<Value> {
    let flows: Vec<Value> = app
        .accounts
        .v1_registration_flows()
        .into_iter()
        .map(|flow| match flow.as_slice() {
            [only] => json!({ "type": only }),
            stages => json!({ "type": stages[0], "stages": stages }),
        })
        .collect();
    Json(json!({ "flows": flows }))
}

/// `POST /api/v1/register`: a `type` (missing: 400 `M_MISSING_PARAM`; not in any flow: 400
/// "Bad login type") and that type's keys, plus `session` after the first stage.
/// - A stage before the password answers `session` and `next` (the type, or the list of types,
///   that may follow); a failed stage is 401 with the stage's error.
/// - `m.login.password` (`user` optional, `password` required: "Missing JSON keys") completes
///   the registration once the session's stages satisfy a flow, and answers `user_id`,
///   `access_token`, `home_server`. An email proven through an identity server is bound there.
/// - A `user` given in an earlier stage cannot be changed later (403 `M_FORBIDDEN`).
pub async fn submit(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody { json, .. }: JsonBody<Value>,
) -> Result<Json<Value>, MatrixError> {
    let mut submission: Map<String, Value> = json.as_object().cloned().unwrap_or_default();
    let login_type = match submission.remove("type") {
        Some(Value::String(login_type)) => login_type,
        Some(_) => return Err(MatrixError::bad_json("`type` must be a string")),
        None => return Err(MatrixError::missing_param("Missing parameter: type")),
    };
    let flows = app.accounts.v1_registration_flows();
    if !flows.is_empty() && !flows.iter().flatten().any(|stage| *stage == login_type) {
        return Err(MatrixError::unknown("Bad login type"));
    }
    let user = match submission
        .remove("user")
        .or_else(|| submission.remove("username"))
    {
        Some(Value::String(user)) => Some(user),
        None | Some(Value::Null) => None,
        Some(_) => return Err(MatrixError::bad_json("`user` must be a string")),
    };
    if login_type == PASSWORD {
        let password = match submission.remove("password") {
            Some(Value::String(password)) => password,
            _ => return Err(MatrixError::missing_param("Missing JSON keys")),
        };
        let registration = V1Registration {
            user,
            password,
            session: submission.remove("session"),
            ip,
        };
        let registered = app
            .accounts
            .register_v1(registration)
            .await
            .map_err(v1_error)?;
        let session = registered
            .session
            .ok_or_else(|| MatrixError::internal("no session"))?;
        return Ok(v1_session(&app, &registered.user_id, session));
    }
    submission.insert("type".into(), Value::String(login_type));
    let stage = V1Stage {
        auth: submission,
        user,
        ip,
    };
    let progress = app
        .accounts
        .v1_registration_stage(stage)
        .await
        .map_err(v1_error)?;
    let next = next_types(&flows, &progress.completed);
    Ok(Json(
        json!({ "session": progress.session_id, "next": next }),
    ))
}

/// The login types that may follow `completed`: the next stage of every flow that starts with
/// the completed stages, in order (or, when stages were taken out of order, the first missing
/// stage of every flow containing them).
fn next_types(flows: &[Vec<String>], completed: &[String]) -> Value {
    let in_order: Vec<&str> = flows
        .iter()
        .filter(|flow| flow.starts_with(completed))
        .filter_map(|flow| flow.get(completed.len()))
        .map(String::as_str)
        .collect();
    let mut next = if in_order.is_empty() {
        flows
            .iter()
            .filter(|flow| completed.iter().all(|stage| flow.contains(stage)))
            .filter_map(|flow| flow.iter().find(|stage| !completed.contains(stage)))
            .map(String::as_str)
            .collect()
    } else {
        in_order
    };
    next.dedup();
    match next.as_slice() {
        [only] => json!(only),
        _ => json!(next),
    }
}

/// An error in the v1 shapes: a failed stage is the engine's challenge reduced to the error
/// the v1 API knows (a stage missing its keys is the document's 400 "Missing JSON keys"), and a
/// missing key of the password step is "Missing JSON keys" too.
fn v1_error(error: AccountError) -> MatrixError {
    let challenge = match error {
        AccountError::Uia(UiaError::Challenge(challenge)) => challenge,
        AccountError::MissingParam(name) => {
            return MatrixError::missing_param(format!(
                "Missing JSON keys: {name} (this server's flows have stages before the password)"
            ));
        }
        other => return other.into(),
    };
    match challenge.failure {
        Some(failure) if failure.kind == StageFailureKind::MissingParam => {
            MatrixError::missing_param(format!("Missing JSON keys ({})", failure.message))
        }
        Some(failure) => MatrixError::new(
            StatusCode::UNAUTHORIZED,
            stage_errcode(failure.kind),
            failure.message,
        ),
        None => MatrixError::new(
            StatusCode::UNAUTHORIZED,
            "M_FORBIDDEN",
            "Authentication failed",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows() -> Vec<Vec<String>> {
        vec![
            vec!["m.login.password".into()],
            vec!["m.login.email.identity".into(), "m.login.password".into()],
            vec![
                "m.login.recaptcha".into(),
                "m.login.email.identity".into(),
                "m.login.password".into(),
            ],
        ]
    }

    #[test]
    fn next_follows_the_flows_the_session_kept_to() {
        assert_eq!(
            next_types(&flows(), &["m.login.email.identity".into()]),
            json!("m.login.password")
        );
        assert_eq!(
            next_types(&flows(), &["m.login.recaptcha".into()]),
            json!("m.login.email.identity")
        );
        assert_eq!(
            next_types(&flows(), &[]),
            json!([
                "m.login.password",
                "m.login.email.identity",
                "m.login.recaptcha"
            ])
        );
    }
}
