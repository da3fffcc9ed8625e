//! Third-party identifiers: the `requestToken` endpoints, the validation page and
//! `submit_url`, `/account/3pid` and its `add`, `delete`, `bind` and `unbind`, and the OpenID
//! endpoints identity servers use to learn who a client is.
//!
//! Bodies are read with [`JsonBody`] rather than ruma's types so that a malformed
//! `client_secret` is the spec's `M_INVALID_PARAM`, not a deserialization error.

use axum::{
    Json, Router,
    extract::{
        Form, Path, Query, State,
        rejection::{FormRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use ruma::UserId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    auth::{ClientIp, FullAccount, MaybeAuthenticated},
    json::JsonBody,
    pages,
};
use crate::{
    accounts::{BindRequest, LegacyAddress, NewAddress},
    app::AppState,
    email::EmailPurpose,
    http::error::{MatrixError, error_chain},
    threepids::{EmailTokenRequest, ThreepidError},
    uia::BoundRequest,
};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/_vestibule/email/submit_token", post(submit_token))
        .route(
            "/_vestibule/email/validate",
            get(validation_page).post(confirm_validation),
        )
        .route(
            "/_matrix/federation/v1/openid/userinfo",
            get(openid_userinfo),
        )
        .route(
            "/_matrix/federation/v1/3pid/onbind",
            post(on_bind).put(on_bind),
        );
    for version in ["r0", "v3"] {
        let path = |rest: &str| format!("/_matrix/client/{version}/{rest}");
        router = router
            .route(
                &path("register/email/requestToken"),
                post(register_email_token),
            )
            .route(
                &path("account/3pid/email/requestToken"),
                post(add_email_token),
            )
            .route(
                &path("account/password/email/requestToken"),
                post(password_email_token),
            )
            .route(
                &path("register/msisdn/requestToken"),
                post(phone_numbers_unsupported),
            )
            .route(
                &path("account/3pid/msisdn/requestToken"),
                post(phone_numbers_unsupported),
            )
            .route(
                &path("account/password/msisdn/requestToken"),
                post(phone_numbers_unsupported),
            )
            .route(
                &path("account/3pid"),
                get(list_threepids).post(add_via_identity_server),
            )
            .route(&path("account/3pid/add"), post(add_threepid))
            .route(&path("account/3pid/delete"), post(delete_threepid))
            .route(&path("account/3pid/bind"), post(bind_threepid))
            .route(&path("account/3pid/unbind"), post(unbind_threepid))
            .route(
                &path("user/{user_id}/openid/request_token"),
                post(openid_request_token),
            );
    }
    router
}

/// The body of the `requestToken` endpoints.
#[derive(Deserialize)]
struct EmailTokenBody {
    client_secret: String,
    email: String,
    send_attempt: u64,
    next_link: Option<String>,
}

/// Starts an email verification for `purpose`, limited per client IP so that nobody can use
/// this server to flood inboxes (a repeated `send_attempt` sends nothing).
async fn request_email_token(
    app: &AppState,
    ip: Option<&str>,
    body: EmailTokenBody,
    purpose: EmailPurpose,
    requester: Option<&UserId>,
) -> Result<Json<Value>, MatrixError> {
    let request = EmailTokenRequest {
        client_secret: body.client_secret,
        email: body.email,
        send_attempt: body.send_attempt,
        next_link: body.next_link,
        purpose,
    };
    let response = app
        .accounts
        .request_email_token(request, ip, requester)
        .await?;
    Ok(Json(
        json!({ "sid": response.sid, "submit_url": response.submit_url }),
    ))
}

/// `POST /register/email/requestToken`: verification of an address for registration; one
/// already in use is 400 `M_THREEPID_IN_USE` (unless `email.hide_address_existence`).
async fn register_email_token(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody { body, .. }: JsonBody<EmailTokenBody>,
) -> Result<Json<Value>, MatrixError> {
    request_email_token(&app, ip.as_deref(), body, EmailPurpose::Register, None).await
}

/// `POST /account/3pid/email/requestToken`: verification of an address to add to an account.
/// The spec asks for no access token here; when the client sends one, the confirmation page
/// names the account.
async fn add_email_token(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    MaybeAuthenticated(requester): MaybeAuthenticated,
    JsonBody { body, .. }: JsonBody<EmailTokenBody>,
) -> Result<Json<Value>, MatrixError> {
    let requester = requester.as_ref().map(|requester| &*requester.user_id);
    request_email_token(&app, ip.as_deref(), body, EmailPurpose::Add, requester).await
}

/// `POST /account/password/email/requestToken`: verification of an account's address to reset
/// its password; an address no account has is 400 `M_THREEPID_NOT_FOUND` (unless
/// `email.hide_address_existence`).
async fn password_email_token(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody { body, .. }: JsonBody<EmailTokenBody>,
) -> Result<Json<Value>, MatrixError> {
    request_email_token(&app, ip.as_deref(), body, EmailPurpose::Password, None).await
}

/// The `msisdn` `requestToken` endpoints: this server sends no SMS, and phone numbers are
/// validated only through an identity server, so it says so (400
/// `M_THREEPID_MEDIUM_NOT_SUPPORTED`) instead of pretending.
async fn phone_numbers_unsupported() -> MatrixError {
    MatrixError::new(
        StatusCode::BAD_REQUEST,
        "M_THREEPID_MEDIUM_NOT_SUPPORTED",
        "This server does not send SMS: phone numbers can only be validated through an \
         identity server",
    )
}

/// What the validation link and `submit_url` carry.
#[derive(Deserialize)]
pub(super) struct SubmittedToken {
    pub(super) sid: String,
    pub(super) client_secret: String,
    pub(super) token: String,
}

/// `POST /_vestibule/email/submit_token` (the `submit_url`): the code from the email proves the
/// address; `{"success": true}` as the Identity Service API's `submitToken` answers.
async fn submit_token(
    State(app): State<AppState>,
    JsonBody { body, .. }: JsonBody<SubmittedToken>,
) -> Result<Json<Value>, MatrixError> {
    app.threepids
        .submit_token(&body.sid, &body.client_secret, &body.token)
        .await?;
    Ok(Json(json!({ "success": true })))
}

/// `GET /_vestibule/email/validate`: the link in the email. It only shows a page saying what
/// is being confirmed (whose password would be reset, which account the address would join),
/// with a form that confirms by `POST`: a link scanner or preview that fetches the link
/// changes nothing, and nobody confirms without reading what for.
async fn validation_page(
    State(app): State<AppState>,
    query: Result<Query<SubmittedToken>, QueryRejection>,
) -> Response {
    let Ok(Query(submitted)) = query else {
        return pages::message(StatusCode::BAD_REQUEST, "This link is incomplete.");
    };
    let pending = app
        .threepids
        .pending_confirmation(&submitted.sid, &submitted.client_secret, &submitted.token)
        .await;
    match pending {
        Ok(pending) => pages::confirmation(&app, &submitted, &pending),
        Err(err) => failure_page(&err),
    }
}

/// The confirmation form of the validation page.
#[derive(Deserialize)]
struct ConfirmationForm {
    sid: String,
    client_secret: String,
    token: String,
    form_key: String,
}

/// `POST /_vestibule/email/validate`: the validation page's form. A form posted from another
/// site (its `Origin` is not this server's) is refused; then the code is checked as on
/// `submit_url`, and the user sent on to the client's `next_link` when it gave one.
async fn confirm_validation(
    State(app): State<AppState>,
    headers: header::HeaderMap,
    form: Result<Form<ConfirmationForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return pages::message(StatusCode::BAD_REQUEST, "This form is incomplete.");
    };
    if !pages::same_origin(&app, &headers) {
        return pages::message(
            StatusCode::FORBIDDEN,
            "This confirmation did not come from this server's page.",
        );
    }
    match app
        .threepids
        .confirm(&form.sid, &form.client_secret, &form.token, &form.form_key)
        .await
    {
        Ok(Some(next_link)) => Redirect::to(&next_link).into_response(),
        Ok(None) => pages::message(
            StatusCode::OK,
            "Your email address is verified. You can return to your Matrix client.",
        ),
        Err(err) => failure_page(&err),
    }
}

/// The page for a link or form that can't be confirmed (always a fixed text: nothing from the
/// request).
fn failure_page(err: &ThreepidError) -> Response {
    match err {
        ThreepidError::SessionExpired => pages::message(
            StatusCode::BAD_REQUEST,
            "This link has expired. Ask your client to send a new email.",
        ),
        ThreepidError::Store(_) | ThreepidError::CorruptIdentifier(_) => {
            tracing::error!(error = %error_chain(err), "validating an email token failed");
            pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong. Please try again later.",
            )
        }
        _ => pages::message(
            StatusCode::BAD_REQUEST,
            "This link is not valid. Ask your client to send a new email.",
        ),
    }
}

/// `GET /account/3pid`: the addresses attached to the caller's account, with when they were
/// validated and added.
pub async fn list_threepids(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
) -> Result<Json<Value>, MatrixError> {
    let threepids: Vec<Value> = app
        .threepids
        .list(&requester.user_id)
        .await?
        .into_iter()
        .map(|threepid| {
            json!({
                "medium": threepid.medium,
                "address": threepid.address,
                "validated_at": threepid.validated_at_ms,
                "added_at": threepid.added_at_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "threepids": threepids })))
}

/// The body of `POST /account/3pid/add`.
#[derive(Deserialize)]
struct AddThreepid {
    client_secret: String,
    sid: String,
}

/// `POST /account/3pid/add`: after password UIA, attaches the address a verification session
/// of this server proved (400 `M_SESSION_NOT_VALIDATED` before the link was followed,
/// `M_THREEPID_IN_USE` if another account has it).
async fn add_threepid(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    uri: Uri,
    JsonBody { body, json }: JsonBody<AddThreepid>,
) -> Result<Json<Value>, MatrixError> {
    let address = NewAddress {
        sid: body.sid,
        client_secret: body.client_secret,
    };
    let request = BoundRequest {
        method: "POST",
        path: uri.path(),
        body: &json,
    };
    app.accounts
        .add_threepid(&requester, address, request)
        .await?;
    Ok(Json(json!({})))
}

/// The body of `POST /account/3pid/delete` and `/unbind`.
#[derive(Deserialize)]
struct ThreepidRef {
    medium: String,
    address: String,
    id_server: Option<String>,
}

/// `POST /account/3pid/delete`: detaches an address from the caller's account (an address it
/// does not have is a success too) and unbinds it from the identity servers this server bound
/// it at, or from `id_server`. Refused while suspended, as the spec recommends.
async fn delete_threepid(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    JsonBody { body, .. }: JsonBody<ThreepidRef>,
) -> Result<Json<Value>, MatrixError> {
    let unbound = app
        .accounts
        .delete_threepid(
            &requester,
            &body.medium,
            &body.address,
            body.id_server.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "id_server_unbind_result": unbound.as_str() })))
}

/// `POST /account/3pid/unbind`: removes bindings of an address at identity servers, keeping it
/// on the account.
async fn unbind_threepid(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    JsonBody { body, .. }: JsonBody<ThreepidRef>,
) -> Result<Json<Value>, MatrixError> {
    let unbound = app
        .accounts
        .unbind_threepid(
            &requester,
            &body.medium,
            &body.address,
            body.id_server.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "id_server_unbind_result": unbound.as_str() })))
}

/// The body of `POST /account/3pid/bind`.
#[derive(Deserialize)]
struct BindThreepid {
    client_secret: String,
    id_server: String,
    id_access_token: String,
    sid: String,
}

/// `POST /account/3pid/bind`: binds the address an identity server validated to the caller
/// there (through its v2 API, with the client's `id_access_token`); the address is not added
/// to the account. An untrusted server is 400 `M_SERVER_NOT_TRUSTED`.
async fn bind_threepid(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    JsonBody { body, .. }: JsonBody<BindThreepid>,
) -> Result<Json<Value>, MatrixError> {
    let bind = BindRequest {
        id_server: body.id_server,
        sid: body.sid,
        client_secret: body.client_secret,
        id_access_token: Some(body.id_access_token),
    };
    app.accounts.bind_threepid(&requester, bind).await?;
    Ok(Json(json!({})))
}

/// The legacy body of `POST /account/3pid` (seeds 001 and 004): `three_pid_creds` (or
/// `threePidCreds`) and `bind`.
#[derive(Deserialize)]
pub struct LegacyAddThreepid {
    #[serde(alias = "threePidCreds")]
    three_pid_creds: LegacyCreds,
    #[serde(default)]
    bind: bool,
}

/// The identity server's session in a legacy `POST /account/3pid`.
#[derive(Deserialize)]
struct LegacyCreds {
    id_server: String,
    sid: String,
    client_secret: String,
    id_access_token: Option<String>,
}

/// `POST /account/3pid` (deprecated; the seeds' API): attaches the address an identity server
/// validated (403 `M_THREEPID_AUTH_FAILED` when it does not vouch for the session) and, with
/// `bind`, binds it there too.
pub async fn add_via_identity_server(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    JsonBody { body, .. }: JsonBody<LegacyAddThreepid>,
) -> Result<Json<Value>, MatrixError> {
    let creds = body.three_pid_creds;
    let legacy = LegacyAddress {
        session: BindRequest {
            id_server: creds.id_server,
            sid: creds.sid,
            client_secret: creds.client_secret,
            id_access_token: creds.id_access_token,
        },
        bind: body.bind,
    };
    app.accounts
        .add_via_identity_server(&requester, legacy)
        .await?;
    Ok(Json(json!({})))
}

/// `POST /user/{userId}/openid/request_token`: an OpenID token a third party (such as an
/// identity server) can exchange for the caller's user ID, for the caller only.
async fn openid_request_token(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    path: Result<Path<String>, PathRejection>,
    _: JsonBody<Value>,
) -> Result<Json<Value>, MatrixError> {
    let Path(user_id) = path?;
    if UserId::parse(&user_id).ok().as_deref() != Some(&*requester.user_id) {
        return Err(MatrixError::forbidden(
            "OpenID tokens can only be requested for yourself",
        ));
    }
    let (token, expires_in) = app.threepids.issue_openid_token(&requester.user_id).await?;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "matrix_server_name": app.config.server_name,
        "expires_in": expires_in,
    })))
}

/// The query of the OpenID user-info lookup.
#[derive(Deserialize)]
struct OpenIdQuery {
    access_token: String,
}

/// `GET /_matrix/federation/v1/openid/userinfo` (Server-Server API): who an OpenID token
/// belongs to, `{"sub": user_id}`; 401 `M_UNKNOWN_TOKEN` for an unknown or expired token.
async fn openid_userinfo(
    State(app): State<AppState>,
    query: Result<Query<OpenIdQuery>, QueryRejection>,
) -> Result<Json<Value>, MatrixError> {
    let Ok(Query(query)) = query else {
        return Err(MatrixError::missing_param(
            "Missing parameter: access_token",
        ));
    };
    let user_id = app.threepids.openid_user(&query.access_token).await?;
    Ok(Json(json!({ "sub": user_id })))
}

/// `/_matrix/federation/v1/3pid/onbind`: an identity server telling this server about a
/// binding (used for pending room invites, which Vestibule does not handle); acknowledged so
/// the identity server stops retrying.
async fn on_bind(body: Option<Json<Value>>) -> Json<Value> {
    if let Some(Json(body)) = body {
        tracing::debug!(mxid = ?body.get("mxid"), "identity server reported a binding");
    }
    Json(json!({}))
}
