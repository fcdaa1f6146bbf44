//! The UI backend's errors and how they reach the browser: JSON
//! `{"error": {"code", "message", "reason"}}` (the API's own `ErrorBody`)
//! with a 4xx status naming the problem, the API's own answer passed through
//! when the platform refused, its stable code as `reason` — so the page names
//! the refusal in its reader's language (`assets/refusals.js`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dtenge_api_types::{ErrorBody, ErrorDetail};
use dtenge_client::ClientError;

/// What went wrong in the web interface's backend.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// A form field is wrong; the message names it.
    #[error("{0}")]
    BadInput(String),
    /// No valid session.
    #[error("sign in first (no session, or it expired)")]
    Unauthenticated,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The signed-in user may not do this; the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// No such request, account or page.
    #[error("{0}")]
    NotFound(String),
    /// The request is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// A dynamic QR the bank says is already paid: the paying transaction.
    /// The API's code for the same refusal.
    #[error("this QR was already paid by transaction {0}; ask the merchant for a new one")]
    QrAlreadyPaid(String),
    /// The platform's API refused or failed.
    #[error("the platform refused: {0}")]
    Api(#[from] ClientError),
    /// The maker-checker journal or the staff file could not be read or written.
    #[error("storage: {0}")]
    Storage(String),
    /// A report could not be built.
    #[error("report: {0}")]
    Report(String),
}

impl UiError {
    /// HTTP status and stable code.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            UiError::BadInput(_) => (StatusCode::BAD_REQUEST, "bad_input"),
            UiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            UiError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            UiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            UiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            UiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            UiError::QrAlreadyPaid(_) => (StatusCode::CONFLICT, "qr_already_paid"),
            UiError::Api(e) => match e.status() {
                Some(s) if (400..500).contains(&s) => {
                    (StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST), "api_refused")
                }
                _ => (StatusCode::BAD_GATEWAY, "api_failed"),
            },
            UiError::Storage(_) | UiError::Report(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The platform's stable code when it refused (`insufficient_funds`,
    /// `qr_already_paid`, …): what the page names in its reader's language.
    pub fn platform_code(&self) -> Option<String> {
        match self {
            UiError::Api(ClientError::Http { code, .. }) => Some(code.clone()),
            _ => None,
        }
    }

    /// The message shown to staff: for an API refusal, the API's own message.
    pub fn message(&self) -> String {
        match self {
            UiError::Api(ClientError::Http { message, code, .. }) => format!("{message} ({code})"),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        if status.is_server_error() {
            tracing::warn!("ui: {self}");
        }
        let error = ErrorDetail { code: code.to_string(), message: self.message(), reason: self.platform_code() };
        (status, Json(ErrorBody { error })).into_response()
    }
}
