//! The door every API request passes, before any handler runs:
//!
//! ```text
//!  request ─► body (≤ 1 MiB) ─► signature, freshness, nonce (auth) ─► authorisation table (access)
//!          ─► Idempotency-Key? ── no ──► handler
//!                               └─ yes ─► new: handler, its tx/DA bound durably, answer recorded
//!                                         answered before: the same answer again
//!                                         interrupted by a restart: answered from what it produced
//! ```
//!
//! It is a layer on the whole router (`crate::router`), so an endpoint
//! cannot be added without it: the extractors ([`crate::state::Signed`],
//! [`crate::state::Authenticated`]) only read what this layer admitted.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dtenge_api_types::{AccountView, TxOutcomeView};
use dtenge_net::authz::Operation;
use dtenge_node::state::Status;

use crate::access::{self, HEALTH};
use crate::auth::{Caller, authenticate};
use crate::error::ApiError;
use crate::idempotency::{Begin, Binding, Bound, Slot, fingerprint, parse_key};
use crate::state::{Admitted, MAX_BODY_BYTES, Shared};

/// Largest answer kept for a replay.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The header a replayed answer carries.
pub const REPLAYED: &str = "idempotent-replayed";

/// Operations whose answer is the outcome of the one transaction they build.
const TRANSACTION_OPERATIONS: &[Operation] = &[
    Operation::Transfer,
    Operation::SubmitSignedTransfer,
    Operation::Hold,
    Operation::ReleaseHold,
    Operation::CancelHold,
    Operation::ExpireHold,
    Operation::MarkByAddress,
    Operation::MarkByParameter,
    Operation::PayMarked,
    Operation::PayUnderContract,
    Operation::PayInvoice,
    Operation::PayVat,
    Operation::GrantMandate,
    Operation::DebitMandate,
    Operation::RevokeMandate,
    Operation::Pvp,
];

/// The layer's function.
pub async fn admit(State(state): State<Shared>, request: Request, next: Next) -> Response {
    match admit_or_refuse(state, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn admit_or_refuse(state: Shared, request: Request, next: Next) -> Result<Response, ApiError> {
    let path = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    if path.as_deref() == Some(HEALTH) {
        return Ok(next.run(request).await);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request bodies are at most 1 MiB"))?;
    let now = state.platform.clock.now();
    let participants = state.platform.participants();
    let caller = authenticate(
        &participants,
        &state.replay,
        &state.options.scheme,
        now,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &bytes,
    )?;
    let operation = access::check(&caller, &parts.method, path.as_deref())?;
    let key = parts.headers.get("idempotency-key").map(|v| parse_key(v.as_bytes())).transpose()?;
    parts.extensions.insert(Admitted { caller: caller.clone(), operation, body: bytes.clone() });
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let method = parts.method.clone();
    let request = Request::from_parts(parts, Body::from(bytes.clone()));
    let Some(key) = key.filter(|_| method == Method::POST) else {
        return Ok(next.run(request).await);
    };
    let slot = Slot { participant: caller.id.to_string(), key };
    let print = fingerprint(method.as_str(), &path_and_query, &bytes);
    match state.idempotency.begin(&slot, print, now.millis()).await? {
        Begin::Replay { status, body } => Ok(answer(status, body, true)),
        Begin::Run => run(&state, &caller, slot, request, next).await,
        Begin::Recover(bound) => match recovered(&state, &caller, operation, &bound)? {
            Recovery::Answer(status, body) => {
                if let Err(e) = state.idempotency.finish(&slot, status, body.clone()) {
                    tracing::warn!(error = %e, "could not record a recovered answer");
                }
                Ok(answer(status, body, true))
            }
            Recovery::NotFinal(status, body) => {
                state.idempotency.fail(&slot).map_err(|e| ApiError::unavailable("storage", e.to_string()))?;
                Ok(answer(status, body, true))
            }
            Recovery::RunAgain => run(&state, &caller, slot, request, next).await,
            Recovery::Refuse(e) => {
                state.idempotency.fail(&slot).map_err(|e| ApiError::unavailable("storage", e.to_string()))?;
                Err(e)
            }
        },
    }
}

/// Runs the handler with what it produces bound to the key, and records its answer.
async fn run(state: &Shared, caller: &Caller, slot: Slot, request: Request, next: Next) -> Result<Response, ApiError> {
    let witness =
        Arc::new(Binding { store: Arc::clone(&state.idempotency), slot: slot.clone(), node: caller.id.clone() });
    let response = dtenge_node::witness::witnessed(witness, next.run(request)).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| ApiError::unavailable("internal", format!("reading the answer: {e}")))?;
    // A conflict (funds in flight, a request in progress) is not an outcome: the same request
    // may succeed a moment later, so it is not the answer the key keeps.
    let recorded = if parts.status.is_server_error() || parts.status == StatusCode::CONFLICT {
        state.idempotency.fail(&slot)
    } else {
        state.idempotency.finish(&slot, parts.status.as_u16(), bytes.to_vec())
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, key = %slot.key, "could not record an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn answer(status: u16, body: Vec<u8>, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

enum Recovery {
    /// The final answer, to record and give.
    Answer(u16, Vec<u8>),
    /// An answer that will change (the transaction is still settling): give it, keep the key open.
    NotFinal(u16, Vec<u8>),
    /// Nothing durable was produced: run the request again.
    RunAgain,
    /// Produced something this endpoint cannot answer from: refuse rather than repeat it.
    Refuse(ApiError),
}

/// The answer to an interrupted request, from what it produced.
fn recovered(state: &Shared, caller: &Caller, operation: Operation, bound: &[Bound]) -> Result<Recovery, ApiError> {
    if bound.is_empty() {
        return Ok(Recovery::RunAgain);
    }
    let node = state.node_of(caller)?;
    if TRANSACTION_OPERATIONS.contains(&operation) {
        let known =
            bound.iter().rev().filter_map(Bound::tx).find_map(|tx| node.read(|s| s.outgoing(&tx)).map(|o| (tx, o)));
        let Some((tx, outgoing)) = known else { return Ok(Recovery::RunAgain) };
        let notary_seq = outgoing
            .receipt
            .as_deref()
            .and_then(|r| borsh::from_slice::<dtenge_notary::messages::Receipt>(r).ok())
            .map(|r| r.body.seq);
        let view = TxOutcomeView { tx: tx.to_string(), status: crate::dto::status_view(&outgoing.status), notary_seq };
        let body = serde_json::to_vec(&view).unwrap_or_default();
        return Ok(match outgoing.status {
            Status::Success | Status::Rejected { .. } => Recovery::Answer(200, body),
            Status::RequestAccepted | Status::UnderReview => Recovery::NotFinal(200, body),
        });
    }
    if operation == Operation::OpenAccount {
        let known = bound.iter().filter_map(Bound::account).find_map(|a| node.read(|s| s.account_of(&a).cloned()));
        let Some(account) = known else { return Ok(Recovery::RunAgain) };
        let view: AccountView = crate::dto::account_view(&account, node.id().as_str());
        return Ok(Recovery::Answer(201, serde_json::to_vec(&view).unwrap_or_default()));
    }
    Ok(Recovery::Refuse(ApiError::new(
        StatusCode::CONFLICT,
        "interrupted",
        format!(
            "a request with this Idempotency-Key ({}) was interrupted by a restart after it changed state; it is not run again — check the result with a GET",
            operation.name()
        ),
    )))
}
