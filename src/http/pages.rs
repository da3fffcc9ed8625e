//! The HTML pages this server shows people (the email validation page): rendered by minijinja
//! with HTML escaping, and sent with headers that keep them out of frames, caches and other
//! sites' `Referer`s.

use std::sync::LazyLock;

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use minijinja::{Environment, context};

use super::threepid::SubmittedToken;
use crate::{app::AppState, threepids::PendingConfirmation};

/// The email pages' template (`.html`, so minijinja escapes every value).
static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template(
        "email.html",
        include_str!("../../templates/pages/email.html"),
    )
    .expect("the built-in page template parses");
    env
});

/// The page asking the user to confirm what the email's link is for. Its form posts back to
/// the page's own address.
pub(super) fn confirmation(
    app: &AppState,
    submitted: &SubmittedToken,
    pending: &PendingConfirmation,
) -> Response {
    let confirm = context! {
        purpose => pending.purpose.as_str(),
        address => pending.address,
        account => pending.account.as_ref().map(|user| user.as_str()),
        sid => submitted.sid,
        client_secret => submitted.client_secret,
        token => submitted.token,
        form_key => pending.form_key,
    };
    render(
        StatusCode::OK,
        context! {
            title => "Confirm your email address",
            server_name => app.config.server_name.as_str(),
            confirm => confirm,
        },
    )
}

/// A page with one fixed message.
pub(super) fn message(status: StatusCode, message: &'static str) -> Response {
    render(
        status,
        context! { title => "Email verification", message => message },
    )
}

/// Whether a form post comes from this server's own page: a browser sends `Origin` with every
/// `POST`; one naming another site is a cross-site request. Clients that send no `Origin`
/// (not a browser) are let through, as the form's hidden values still bind it to the email.
pub(super) fn same_origin(app: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let own = app.config.public_baseurl.origin().ascii_serialization();
    origin.to_str().is_ok_and(|origin| origin == own)
}

fn render(status: StatusCode, values: minijinja::Value) -> Response {
    let body = PAGES
        .get_template("email.html")
        .and_then(|template| template.render(values));
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            // No `form-action`: browsers apply it to the redirect after the form too, which
            // would block the way on to an allowed `next_link` on another host.
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Never to other sites (the page's URL holds the session's secrets); kept for this
        // server, so that a browser sends the form's real `Origin`, not `null`.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
