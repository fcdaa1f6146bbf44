//! Every error is JSON naming the problem:
//! `{"error": {"code": "insufficient_funds", "message": "…"}}` with a status
//! that says whose problem it is (4xx: the caller's; 503: a service is down).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dtenge_node::NodeError;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

pub use dtenge_api_types::{ErrorBody, ErrorDetail};

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into(), retry_after: None }
    }

    /// 400.
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthorized(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 with a specific code.
    pub fn forbidden_code(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: a service or a limit; retry later.
    pub fn unavailable(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The same error, telling the caller when to retry.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 422.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let message = e.to_string();
        match e {
            NodeError::InsufficientFunds { .. } => Self::unprocessable("insufficient_funds", message),
            NodeError::FundsInFlight { .. } => Self::new(StatusCode::CONFLICT, "funds_in_flight", message),
            NodeError::TooFragmented { .. } => Self::unprocessable("too_fragmented", message),
            NodeError::UnknownToken(_) => Self::not_found(message),
            NodeError::TokenBusy(_) => Self::new(StatusCode::CONFLICT, "token_busy", message),
            NodeError::NothingToSpend => Self::unprocessable("nothing_to_spend", message),
            NodeError::MarkingLimit { .. } => Self::unprocessable("marking_limit", message),
            NodeError::TooManyOutputs(_) | NodeError::Types(_) | NodeError::Invalid(_) => {
                Self::bad_request("invalid", message)
            }
            NodeError::Overflow => Self::bad_request("overflow", message),
            NodeError::SupplyOverflow { .. } => Self::unprocessable("supply_overflow", message),
            NodeError::DailyTotalOverflow { .. } => Self::unprocessable("daily_total_overflow", message),
            NodeError::UnknownAccount(_) => Self::not_found(message),
            NodeError::AccountClosed(_) => Self::unprocessable("account_closed", message),
            NodeError::KycNotVerified(_) => Self::unprocessable("kyc_not_verified", message),
            NodeError::ClientSigns(_) => Self::unprocessable("client_signs", message),
            NodeError::UnknownRecipient(_) => Self::unprocessable("unknown_recipient", message),
            NodeError::NotHostedHere(_) => Self::unprocessable("not_hosted_here", message),
            NodeError::Rejected(r) => Self::unprocessable(&format!("rule_{}", r.code()), message),
            NodeError::NotaryRejected(_) => Self::new(StatusCode::CONFLICT, "notary_rejected", message),
            NodeError::Oracle(_) => Self::unprocessable("oracle_refused", message),
            NodeError::Unavailable(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
            NodeError::Storage(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage", message),
            NodeError::LimitExceeded { .. } => Self::unprocessable("limit_exceeded", message),
            NodeError::Enforcement(_) => Self::unprocessable("enforcement_order", message),
            NodeError::BalanceNotZero { .. } => Self::unprocessable("balance_not_zero", message),
            NodeError::Forbidden(_) => Self::forbidden(message),
            NodeError::PayeeRefused { .. } => Self::unprocessable("payee_refused", message),
        }
    }
}
