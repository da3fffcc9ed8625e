//! The allow-list: answers the harness accepts although the published documents do not describe
//! them, each with its reason.

use super::catalog::Endpoint;

/// An error status allowed on an endpoint whose document does not list it. The body is still
/// validated against the standard error body.
pub struct UndocumentedError {
    /// The method, or `"*"` for any.
    pub method: &'static str,
    /// The full path templates (as in [`Endpoint::template`]) it applies to; `"*"` for any.
    pub templates: &'static [&'static str],
    /// The status.
    pub status: u16,
    /// The error codes this entry covers.
    pub errcodes: &'static [&'static str],
    /// Only on endpoints that accept an access token.
    pub token_endpoints_only: bool,
    /// Why this is allowed.
    pub reason: &'static str,
}

/// The 3PID endpoints that document only their success (and UIA) answers.
const THREEPID_ENDPOINTS: &[&str] = &[
    "/_matrix/client/v3/account/3pid",
    "/_matrix/client/v3/account/3pid/add",
    "/_matrix/client/v3/account/3pid/bind",
    "/_matrix/client/v3/account/3pid/unbind",
    "/_matrix/client/v3/account/3pid/delete",
];

/// Errors a request about a third-party identifier session or address may get.
const THREEPID_REQUEST_ERRORS: &[&str] = &[
    "M_INVALID_PARAM",
    "M_NO_VALID_SESSION",
    "M_SESSION_NOT_VALIDATED",
    "M_SESSION_EXPIRED",
    "M_THREEPID_IN_USE",
    "M_THREEPID_MEDIUM_NOT_SUPPORTED",
    "M_SERVER_NOT_TRUSTED",
];

/// The error statuses allowed beyond the documented ones. They are consulted before the
/// documented statuses, so an entry also overrides a documented body (the UIA 401).
pub const UNDOCUMENTED_ERRORS: &[UndocumentedError] = &[
    // The spec's "Client authentication" section: any endpoint taking an access token answers a
    // missing one with 401 `M_MISSING_TOKEN` and an unrecognised one with 401
    // `M_UNKNOWN_TOKEN` (+ `soft_logout`). The OpenAPI files do not repeat this per endpoint
    // (logout, capabilities), and on UIA endpoints their only 401 is the UIA body.
    UndocumentedError {
        method: "*",
        templates: &["*"],
        status: 401,
        errcodes: &["M_MISSING_TOKEN", "M_UNKNOWN_TOKEN"],
        token_endpoints_only: true,
        reason: "client authentication errors apply to every endpoint taking an access token",
    },
    // The spec's "Common error codes": `M_NOT_JSON` and `M_BAD_JSON` "can be returned by any API
    // endpoint" (400, as everywhere they are documented). `M_MISSING_PARAM` ("A required
    // parameter was missing from the request", listed under "Other error codes" without
    // endpoints) is the server's 400 for a missing required key, as on `/register`, which
    // documents it. Endpoints such as `POST /refresh` do not list a 400 at all.
    UndocumentedError {
        method: "*",
        templates: &["*"],
        status: 400,
        errcodes: &["M_NOT_JSON", "M_BAD_JSON", "M_MISSING_PARAM"],
        token_endpoints_only: false,
        reason: "request validation errors apply to every endpoint",
    },
    // The spec's "Account locking": a locked account gets 401 `M_USER_LOCKED` (with
    // `soft_logout: true`) on every endpoint but logout, and cannot obtain a new access token
    // (so also on `POST /login`, which takes no token, and `POST /refresh`).
    UndocumentedError {
        method: "*",
        templates: &["*"],
        status: 401,
        errcodes: &["M_USER_LOCKED"],
        token_endpoints_only: true,
        reason: "account locking applies to every authenticated endpoint",
    },
    UndocumentedError {
        method: "POST",
        templates: &["/_matrix/client/v3/login"],
        status: 401,
        errcodes: &["M_USER_LOCKED"],
        token_endpoints_only: false,
        reason: "a locked account cannot obtain a new access token",
    },
    // The spec's "Account suspension": an action refused while suspended is 403
    // `M_USER_SUSPENDED`, on whichever endpoint the server forbids.
    UndocumentedError {
        method: "*",
        templates: &["*"],
        status: 403,
        errcodes: &["M_USER_SUSPENDED"],
        token_endpoints_only: true,
        reason: "account suspension applies to any authenticated action the server forbids",
    },
    // User-Interactive Authentication: a session started for another request, or a password
    // stage naming another user than the access token's, is refused with 403 `M_FORBIDDEN`
    // (the spec's UIA section; Complement checks it on device deletion), on every endpoint
    // that runs UIA, though their OpenAPI entries list only 200 and 401.
    UndocumentedError {
        method: "*",
        templates: &[
            "/_matrix/client/v3/devices/{deviceId}",
            "/_matrix/client/v3/delete_devices",
            "/_matrix/client/v3/account/password",
            "/_matrix/client/v3/account/deactivate",
            "/_matrix/client/v3/account/3pid/add",
            "/_matrix/client/v1/login/get_token",
        ],
        status: 403,
        errcodes: &["M_FORBIDDEN"],
        token_endpoints_only: false,
        reason: "UIA refuses a session of another request, or a stage naming another user",
    },
    // The guest access module: endpoints not opened to guests answer 403
    // `M_GUEST_ACCESS_FORBIDDEN` (a common error code); the OpenAPI files do not repeat it.
    UndocumentedError {
        method: "*",
        templates: &["*"],
        status: 403,
        errcodes: &["M_GUEST_ACCESS_FORBIDDEN"],
        token_endpoints_only: true,
        reason: "guests are refused on endpoints reserved for full accounts",
    },
    // The 3PID endpoints document only their success (and UIA) answers, yet a session that is
    // unknown, expired or not validated, an address in use, an untrusted identity server or a
    // malformed client secret must be refused: with the codes the spec lists under "Other
    // error codes" (`M_THREEPID_*`, `M_SERVER_NOT_TRUSTED`) and the identity API's session
    // errors (`M_NO_VALID_SESSION`, `M_SESSION_NOT_VALIDATED`, `M_SESSION_EXPIRED`).
    UndocumentedError {
        method: "POST",
        templates: THREEPID_ENDPOINTS,
        status: 400,
        errcodes: THREEPID_REQUEST_ERRORS,
        token_endpoints_only: false,
        reason: "third-party identifier errors of the spec's 'Other error codes'",
    },
    UndocumentedError {
        method: "POST",
        templates: THREEPID_ENDPOINTS,
        status: 403,
        errcodes: &["M_THREEPID_AUTH_FAILED", "M_THREEPID_DENIED"],
        token_endpoints_only: false,
        reason: "the identity server did not vouch for the session, or the address is not allowed",
    },
    // `GET /admin/whois/{userId}` documents only 200, yet "may be restricted to only be called
    // by the user being looked up, or by a server admin": others get 403 `M_FORBIDDEN`, and an
    // unknown user is 404 `M_NOT_FOUND`, as on the other admin endpoints.
    UndocumentedError {
        method: "GET",
        templates: &["/_matrix/client/v3/admin/whois/{userId}"],
        status: 403,
        errcodes: &["M_FORBIDDEN"],
        token_endpoints_only: true,
        reason: "whois is for the user themselves and server administrators",
    },
    UndocumentedError {
        method: "GET",
        templates: &["/_matrix/client/v3/admin/whois/{userId}"],
        status: 404,
        errcodes: &["M_NOT_FOUND"],
        token_endpoints_only: true,
        reason: "no such user, as the other admin endpoints answer",
    },
    // With `registration.enabled = false`, `GET /register/available` answers 403 `M_FORBIDDEN`
    // (as Synapse does), the same as `POST /register`. The endpoint documents only 200, 400 and
    // 429, but `M_FORBIDDEN` is one of the spec's "Common error codes" any endpoint may return.
    UndocumentedError {
        method: "GET",
        templates: &["/_matrix/client/v3/register/available"],
        status: 403,
        errcodes: &["M_FORBIDDEN"],
        token_endpoints_only: false,
        reason: "M_FORBIDDEN is a common error code; registration is disabled",
    },
    // Deliberate: the v1 `POST /login` answers an unknown login type with 400 `M_UNKNOWN`
    // "Bad login type", as the seeds' v1 `POST /register` does; seed 002 lists only 200, 403
    // and 429 for login, but a request the server cannot act on is a 400 everywhere else.
    UndocumentedError {
        method: "POST",
        templates: &["/_matrix/client/api/v1/login"],
        status: 400,
        errcodes: &["M_UNKNOWN"],
        token_endpoints_only: false,
        reason: "an unknown login type is a bad request, as on v1 POST /register",
    },
    // Deliberate: with `registration.enabled = false`, the v1 `POST /register` answers 403
    // `M_FORBIDDEN`, as every other registration endpoint does; seeds 000/003 predate closed
    // registration and document only 200 and 400.
    UndocumentedError {
        method: "POST",
        templates: &["/_matrix/client/api/v1/register"],
        status: 403,
        errcodes: &["M_FORBIDDEN"],
        token_endpoints_only: false,
        reason: "M_FORBIDDEN is a common error code; registration is disabled",
    },
    // The spec's password-management section: "Servers MAY reject weak passwords with an
    // error code `M_WEAK_PASSWORD`", with no status in the OpenAPI file; 400, as `/register`
    // documents for the same code.
    UndocumentedError {
        method: "POST",
        templates: &["*"],
        status: 400,
        errcodes: &["M_WEAK_PASSWORD"],
        token_endpoints_only: false,
        reason: "the spec's prose allows M_WEAK_PASSWORD wherever a password is set",
    },
    // User-Interactive Authentication on endpoints whose OpenAPI file lists only 200/401/429
    // (`/account/password`): an unknown or expired session (400 `M_UNKNOWN`), a stage no flow
    // offers (400 `M_UNRECOGNIZED`), and a session started for another request or user (403
    // `M_FORBIDDEN`, a common error code) are not stage failures, so not the 401 UIA body.
    UndocumentedError {
        method: "POST",
        templates: &["*"],
        status: 400,
        errcodes: &["M_UNKNOWN", "M_UNRECOGNIZED"],
        token_endpoints_only: true,
        reason: "UIA session errors that are not stage failures",
    },
    UndocumentedError {
        method: "POST",
        templates: &["*"],
        status: 403,
        errcodes: &["M_FORBIDDEN"],
        token_endpoints_only: true,
        reason: "a UIA session used for another request or user, or a feature disabled by config",
    },
];

impl UndocumentedError {
    /// Whether this entry covers `status` with `errcode` on `endpoint`.
    pub fn covers(&self, endpoint: &Endpoint, status: u16, errcode: Option<&str>) -> bool {
        (self.method == "*" || self.method == endpoint.method)
            && self
                .templates
                .iter()
                .any(|template| *template == "*" || *template == endpoint.template)
            && self.status == status
            && errcode.is_some_and(|errcode| self.errcodes.contains(&errcode))
            && (!self.token_endpoints_only || endpoint.takes_token)
    }
}
