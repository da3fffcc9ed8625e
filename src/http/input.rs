//! Input no handler should ever see: U+0000 (NUL) in a path or a query (JSON bodies are
//! checked as they are parsed, in `json.rs`). The databases can't store it (PostgreSQL refuses
//! it in text), and no field of the API needs it, so it is refused up front with 400
//! `M_INVALID_PARAM`.

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::http::error::MatrixError;

/// The error for input holding U+0000.
pub fn nul_refused() -> MatrixError {
    MatrixError::invalid_param("Strings may not contain U+0000")
}

/// Refuses a request whose path or query holds a percent-encoded (or raw) NUL.
pub async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let holds_nul = |text: &str| {
        text.contains('\0') || text.as_bytes().windows(3).any(|window| window == b"%00")
    };
    if holds_nul(uri.path()) || uri.query().is_some_and(holds_nul) {
        return nul_refused().into_response();
    }
    next.run(request).await
}
