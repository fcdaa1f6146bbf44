//! What every handler shares — the platform, the replay guard, the
//! idempotency records, the options — and the extractors that hand a
//! handler what the admission layer (`crate::admission`) admitted.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use dtenge_net::authz::Operation;
use dtenge_node::service::NodeService;
use dtenge_platform::Platform;
use serde::de::DeserializeOwned;

use crate::auth::{Caller, REPLAY_CAPACITY_DEFAULT, ReplayGuard};
use crate::error::ApiError;
use crate::idempotency::Idempotency;
use crate::qr_book::QrBook;

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How the API runs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Nonces remembered per participant within the replay window; when
    /// full, new requests are refused with 503 (never a forgotten nonce).
    pub replay_capacity: usize,
    /// The scheme clients address the API with (`http`, or `https` behind
    /// TLS): part of the signed `@target-uri`.
    pub scheme: String,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions { replay_capacity: REPLAY_CAPACITY_DEFAULT, scheme: "http".into() }
    }
}

/// Shared by every handler.
pub struct AppState {
    /// The running platform.
    pub platform: Arc<Platform>,
    /// Nonces seen.
    pub replay: ReplayGuard,
    /// Idempotency records.
    pub idempotency: Arc<Idempotency>,
    /// Dynamic QRs paid once.
    pub qr: Arc<QrBook>,
    /// Options.
    pub options: ApiOptions,
    /// The rate budget of unsigned requests.
    pub public: crate::access::PublicBudget,
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

impl AppState {
    /// State over a platform with its idempotency records.
    pub fn new(platform: Arc<Platform>, idempotency: Arc<Idempotency>, options: ApiOptions) -> Shared {
        let replay = ReplayGuard::new(options.replay_capacity, platform.clock.now());
        Self::with_replay(platform, idempotency, Arc::new(QrBook::memory()), replay, options)
    }

    /// State with a given replay guard (the durable one of [`crate::Api`]).
    pub fn with_replay(
        platform: Arc<Platform>,
        idempotency: Arc<Idempotency>,
        qr: Arc<QrBook>,
        replay: ReplayGuard,
        options: ApiOptions,
    ) -> Shared {
        Arc::new(AppState { platform, replay, idempotency, qr, options, public: Default::default() })
    }

    /// The caller's own participant node (the table lets only node kinds
    /// reach the operations that need one).
    pub fn node_of(&self, caller: &Caller) -> Result<Arc<NodeService>, ApiError> {
        self.platform
            .node(caller.id.as_str())
            .cloned()
            .map_err(|_| ApiError::forbidden(format!("{} has no node on this platform", caller.id)))
    }
}

/// What the door admitted: the caller and the operation.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Who called.
    pub caller: Caller,
    /// Which operation of the table.
    pub operation: Operation,
    /// The raw body.
    pub body: axum::body::Bytes,
}

fn admitted(parts: &Parts) -> Result<Admitted, ApiError> {
    // Only reachable without the admission layer: a server bug, refused rather than served unsigned.
    parts.extensions.get::<Admitted>().cloned().ok_or_else(|| {
        ApiError::forbidden_code("not_admitted", "this endpoint was reached without the admission layer")
    })
}

/// A verified request: who called, the parsed JSON body.
pub struct Signed<T> {
    /// The caller.
    pub caller: Caller,
    /// The body.
    pub body: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Shared> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &Shared) -> Result<Self, ApiError> {
        let (parts, _) = req.into_parts();
        let admitted = admitted(&parts)?;
        let json: &[u8] = if admitted.body.is_empty() { b"null" } else { &admitted.body };
        let body: T = serde_json::from_slice(json)
            .map_err(|e| ApiError::bad_request("bad_json", format!("request body: {e}")))?;
        Ok(Signed { caller: admitted.caller, body })
    }
}

/// A verified request without a body (GET): only who called.
pub struct Authenticated(pub Caller);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &Shared) -> Result<Self, ApiError> {
        Ok(Authenticated(admitted(parts)?.caller))
    }
}

/// Query parameters, with a JSON error naming the parameter when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// Path parameters, with a JSON error when they do not parse.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Shared> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}
