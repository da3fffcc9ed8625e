//! The seeds' v1 registration (`/_matrix/client/api/v1/register`, seeds 000 and 003): a
//! multi-stage flow of login types, each its own request, ending with `m.login.password`.
//!
//! Each configured registration flow becomes a v1 flow: its stages (without `m.login.dummy`)
//! followed by `m.login.password`. Stages before the password run through the same UIA engine
//! and stored sessions as the current API (so a flow survives a restart and works across
//! instances); the password step consumes the session and creates the account with the same
//! code as `POST /v3/register`.

use axum::{Json, extract::State};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::{PASSWORD, v1_session};
use crate::{
    accounts::DeviceRequest,
    app::AppState,
    http::{
        auth::ClientIp,
        error::{MatrixError, stage_errcode},
        json::JsonBody,
        register::{create_account, registration_extras, settle_email},
    },
    ratelimit::Limit,
    uia::{Action, BoundRequest, Operation, Progress, StageFailureKind, UiaError},
};

/// The path sessions are bound to.
const PATH: &str = "/_matrix/client/api/v1/register";
/// Where the user chosen in a stage is remembered in the session.
const CHOSEN_USER: &str = "v1.user";

/// The v1 flows: each configured flow's stages without `m.login.dummy`, then the password.
fn v1_flows(app: &AppState) -> Vec<Vec<String>> {
    app.config
        .registration
        .flows
        .iter()
        .map(|flow| {
            flow.iter()
                .filter(|stage| *stage != "m.login.dummy")
                .cloned()
                .chain([PASSWORD.to_owned()])
                .collect()
        })
        .collect()
}

/// The stages before the password of each v1 flow: what the UIA engine must see completed.
fn stage_flows(app: &AppState) -> Vec<Vec<String>> {
    v1_flows(app)
        .into_iter()
        .map(|mut flow| {
            flow.pop();
            flow
        })
        .collect()
}

/// `GET /api/v1/register`: every flow the server accepts, each with the `type` of its first
/// stage and, when it has several, all its `stages`.
pub async fn flows(State(app): State<AppState>) -> Json<Value> {
    if !app.config.registration.enabled {
        return Json(json!({ "flows": [] }));
    }
    let flows: Vec<Value> = v1_flows(&app)
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
    if !v1_flows(&app)
        .iter()
        .flatten()
        .any(|stage| *stage == login_type)
    {
        return Err(MatrixError::unknown("Bad login type"));
    }
    if !app.config.registration.enabled {
        return Err(MatrixError::forbidden("Registration has been disabled"));
    }
    app.limiter
        .take(Limit::RegisterPerIp, ip.as_deref())
        .await?;
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
        let session = submission.remove("session");
        return finish(&app, ip, user, password, session).await;
    }
    submission.insert("type".into(), Value::String(login_type));
    let body = json!({ "auth": submission });
    let flows = stage_flows(&app);
    let progress = app
        .uia
        .advance(&operation(&body, &flows))
        .await
        .map_err(stage_error)?;
    keep_user(&app, &progress, user).await?;
    let next = next_types(&v1_flows(&app), &progress.completed);
    Ok(Json(
        json!({ "session": progress.session_id, "next": next }),
    ))
}

/// The UIA operation of a v1 step: bound to the v1 path and an empty body, since every step
/// carries different keys.
fn operation<'a>(body: &'a Value, flows: &'a [Vec<String>]) -> Operation<'a> {
    Operation {
        action: Action::Register,
        request: BoundRequest {
            method: "POST",
            path: PATH,
            body,
        },
        user: None,
        flows,
    }
}

/// Records the `user` a stage named; naming a different one than an earlier stage is refused.
async fn keep_user(
    app: &AppState,
    progress: &Progress,
    user: Option<String>,
) -> Result<(), MatrixError> {
    let Some(user) = user else {
        return Ok(());
    };
    match progress.data.get(CHOSEN_USER).and_then(Value::as_str) {
        Some(chosen) if chosen != user => Err(user_changed()),
        Some(_) => Ok(()),
        None => Ok(app
            .uia
            .remember(progress, CHOSEN_USER, Value::String(user))
            .await?),
    }
}

fn user_changed() -> MatrixError {
    MatrixError::forbidden("The user was chosen in an earlier stage and cannot be changed")
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

/// A failed stage: the engine's 401 challenge reduced to the error the v1 API knows; a stage
/// missing its keys is the document's 400 "Missing JSON keys".
fn stage_error(error: UiaError) -> MatrixError {
    let UiaError::Challenge(challenge) = error else {
        return error.into();
    };
    match challenge.failure {
        Some(failure) if failure.kind == StageFailureKind::MissingParam => {
            MatrixError::missing_param(format!("Missing JSON keys ({})", failure.message))
        }
        Some(failure) => MatrixError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            stage_errcode(failure.kind),
            failure.message,
        ),
        None => MatrixError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "M_FORBIDDEN",
            "Authentication failed",
        ),
    }
}

/// The `m.login.password` step: checks name and password, then consumes the session (unless
/// a flow is the password alone) and creates the account.
async fn finish(
    app: &AppState,
    ip: Option<String>,
    user: Option<String>,
    password: String,
    session: Option<Value>,
) -> Result<Json<Value>, MatrixError> {
    let flows = stage_flows(app);
    let password_only = flows.iter().any(Vec::is_empty);
    let body = json!({ "auth": { "session": session } });
    let (user, completed) = match session {
        Some(_) => {
            let progress = app
                .uia
                .advance(&operation(&body, &flows))
                .await
                .map_err(stage_error)?;
            let chosen = progress.data.get(CHOSEN_USER).and_then(Value::as_str);
            let user = match (user, chosen) {
                (Some(user), Some(chosen)) if user != chosen => return Err(user_changed()),
                (user, chosen) => user.or(chosen.map(str::to_owned)),
            };
            (user, Some(progress))
        }
        None if password_only => (user, None),
        None => {
            return Err(MatrixError::missing_param(
                "Missing JSON keys: session (this server's flows have stages before the password)",
            ));
        }
    };
    let requested = match user.as_deref() {
        Some(user) => Some(app.accounts.check_new_user_id(Some(user)).await?),
        None => None,
    };
    let password = SecretString::from(password);
    app.accounts
        .check_new_password(&password, requested.as_deref())?;
    let completed = match completed {
        Some(_) => Some(
            app.uia
                .authenticate(operation(&body, &flows))
                .await
                .map_err(|error| match error {
                    UiaError::Challenge(_) => MatrixError::unknown(
                        "Complete the earlier registration stages before m.login.password",
                    ),
                    other => other.into(),
                })?,
        ),
        None => None,
    };
    let extras = completed
        .as_ref()
        .map(registration_extras)
        .unwrap_or_default();
    let login = Some(DeviceRequest {
        ip,
        ..DeviceRequest::default()
    });
    let (user_id, session) = create_account(app, user.as_deref(), password, extras, login).await?;
    if let Some(completed) = &completed {
        settle_email(app, &user_id, completed, true).await;
    }
    let session = session.ok_or_else(|| MatrixError::internal("no session"))?;
    Ok(v1_session(app, &user_id, session))
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
