//! What every handler shares: the platform, the replay guard, idempotency
//! records, and the signed-request extractor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use dtenge_node::service::NodeService;
use dtenge_platform::Platform;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::auth::{Caller, ReplayGuard, authenticate};
use crate::error::ApiError;

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Idempotency records kept.
const IDEMPOTENCY_RECORDS: usize = 100_000;

/// Shared by every handler.
pub struct AppState {
    /// The running platform.
    pub platform: Arc<Platform>,
    /// Nonces seen.
    pub replay: ReplayGuard,
    idempotency: Mutex<Idempotency>,
}

#[derive(Default)]
struct Idempotency {
    done: HashMap<(String, String), Stored>,
    order: std::collections::VecDeque<(String, String)>,
}

#[derive(Clone)]
enum Stored {
    InProgress([u8; 32]),
    Done([u8; 32], StatusCode, serde_json::Value),
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

impl AppState {
    /// State over a platform.
    pub fn new(platform: Arc<Platform>) -> Shared {
        Arc::new(AppState { platform, replay: ReplayGuard::default(), idempotency: Mutex::new(Idempotency::default()) })
    }

    /// The caller's own participant node (the table lets only node kinds
    /// reach the operations that need one).
    pub fn node_of(&self, caller: &Caller) -> Result<Arc<NodeService>, ApiError> {
        self.platform
            .node(caller.id.as_str())
            .cloned()
            .map_err(|_| ApiError::forbidden(format!("{} has no node on this platform", caller.id)))
    }

    /// Runs `work` once per (caller, idempotency key): a repeat with the same
    /// body gets the stored answer; with another body, 422.
    pub async fn idempotent<F, Fut>(
        &self,
        caller: &Caller,
        key: Option<&str>,
        body_hash: [u8; 32],
        work: F,
    ) -> Result<(StatusCode, serde_json::Value), ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
    {
        let Some(key) = key else { return work().await };
        if key.is_empty() || key.len() > 128 {
            return Err(ApiError::bad_request("bad_idempotency_key", "Idempotency-Key must be 1-128 characters"));
        }
        let slot = (caller.id.to_string(), key.to_string());
        {
            let mut store = self.idempotency.lock().unwrap_or_else(|p| p.into_inner());
            let reused = || {
                ApiError::unprocessable(
                    "idempotency_key_reused",
                    format!("Idempotency-Key {key} was used with a different body"),
                )
            };
            match store.done.get(&slot).cloned() {
                Some(Stored::Done(hash, status, body)) if hash == body_hash => return Ok((status, body)),
                Some(Stored::InProgress(hash)) if hash == body_hash => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "in_progress",
                        format!("a request with Idempotency-Key {key} is still in progress"),
                    ));
                }
                Some(_) => return Err(reused()),
                None => {}
            }
            store.done.insert(slot.clone(), Stored::InProgress(body_hash));
            store.order.push_back(slot.clone());
            while store.order.len() > IDEMPOTENCY_RECORDS {
                if let Some(old) = store.order.pop_front() {
                    store.done.remove(&old);
                }
            }
        }
        let result = work().await;
        let mut store = self.idempotency.lock().unwrap_or_else(|p| p.into_inner());
        match &result {
            Ok((status, body)) => {
                store.done.insert(slot, Stored::Done(body_hash, *status, body.clone()));
            }
            Err(e) if e.status.is_client_error() => {
                let body = serde_json::json!({"error": {"code": e.code, "message": e.message}});
                store.done.insert(slot, Stored::Done(body_hash, e.status, body));
            }
            Err(_) => {
                store.done.remove(&slot);
            }
        }
        result
    }
}

/// A verified request: who called, the parsed JSON body, its idempotency key.
pub struct Signed<T> {
    /// The caller.
    pub caller: Caller,
    /// The body.
    pub body: T,
    /// `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the raw body.
    pub body_hash: [u8; 32],
}

impl<T: DeserializeOwned + Send> FromRequest<Shared> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &Shared) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request bodies are at most 1 MiB")
        })?;
        let participants = state.platform.participants();
        let caller = authenticate(
            &participants,
            &state.replay,
            state.platform.clock.now(),
            &parts.method,
            &parts.uri,
            &parts.headers,
            &bytes,
        )?;
        crate::access::check(&caller, &parts.method, parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str))?;
        let json: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        let body: T = serde_json::from_slice(json)
            .map_err(|e| ApiError::bad_request("bad_json", format!("request body: {e}")))?;
        let idempotency_key = parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(Signed { caller, body, idempotency_key, body_hash: Sha256::digest(&bytes).into() })
    }
}

/// A verified request without a body (GET): only who called.
pub struct Authenticated(pub Caller);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let participants = state.platform.participants();
        let caller = authenticate(
            &participants,
            &state.replay,
            state.platform.clock.now(),
            &parts.method,
            &parts.uri,
            &parts.headers,
            b"",
        )?;
        crate::access::check(&caller, &parts.method, parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str))?;
        Ok(Authenticated(caller))
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
