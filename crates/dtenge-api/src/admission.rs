//! The door every API request passes, before any handler runs:
//!
//! ```text
//!  request ─► body (≤ 1 MiB) ─► signature, freshness, nonce (auth) ─► authorisation table (access)
//!          ─► Idempotency-Key? ── no ──► handler
//!                               └─ yes ─► new: handler, its tx/DA bound durably, answer recorded
//!                                         answered before: the same answer again
//!                                         cut off by a crash, or answered 5xx: as [`resume`] decides for the operation —
//!                                           the outcome of the transaction or DA bound to the key,
//!                                           or 409 `interrupted` for good, or run again if it
//!                                           provably left nothing durable
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
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::idempotency::{Begin, Binding, Bound, Slot, fingerprint, parse_key};
use crate::state::{Admitted, MAX_BODY_BYTES, Shared};

/// Largest answer kept for a replay.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The header a replayed answer carries.
pub const REPLAYED: &str = "idempotent-replayed";

/// How a keyed POST interrupted by a crash (its key `Started`, its answer
/// never recorded) is answered when the client retries it: decided here,
/// once per operation. The match is exhaustive, so a new operation cannot
/// be added without deciding how its retries are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Its one durable effect is the transaction it builds, bound to the key
    /// before the node journals it: the retry is answered with that
    /// transaction's outcome from the node's journal (memory or archive).
    /// Nothing bound, or a bound transaction the node never journaled,
    /// means nothing reached the notary: it runs again.
    Transaction,
    /// Its one durable effect is the DA it opens, bound to the key before
    /// the node journals it: answered with that DA; nothing bound, run again.
    Account,
    /// It keeps nothing durable (its answer is a proposal held in memory,
    /// lost with the process): it runs again.
    Repeat,
    /// The node journals its effect and answer under the request's own key
    /// (a card message's MTI, STAN and RRN): it runs again and the node
    /// answers the same, moving nothing a second time.
    Replayed,
    /// It changes state the key is not bound to, so whether it took effect
    /// cannot be told from the key: 409 `interrupted`, recorded as the key's
    /// answer — never run again with this key. `check` is where the client
    /// finds out what became of it.
    Interrupted {
        /// The endpoint that shows the outcome.
        check: &'static str,
    },
    /// Not a POST of the API: no key is kept for it.
    Unkeyed,
}

/// How retries of `operation` are answered after a crash (see [`Resume`]).
pub fn resume(operation: Operation) -> Resume {
    use Operation as O;
    let interrupted = |check| Resume::Interrupted { check };
    match operation {
        O::Transfer
        | O::SubmitSignedTransfer
        | O::Hold
        | O::ReleaseHold
        | O::CancelHold
        | O::ExpireHold
        | O::MarkByAddress
        | O::MarkByParameter
        | O::PayMarked
        | O::PayUnderContract
        | O::PayInvoice
        | O::PayVat
        | O::GrantMandate
        | O::DebitMandate
        | O::RevokeMandate
        | O::Pvp
        | O::MintStablecoin
        | O::BurnStablecoin
        | O::TransferStablecoin
        | O::PayQr
        | O::SubmitQrPayment => Resume::Transaction,
        O::OpenAccount => Resume::Account,
        O::PrepareTransfer | O::PrepareQrPayment | O::CheckQr => Resume::Repeat,
        O::CardMessage => Resume::Replayed,
        O::LinkCard => interrupted("GET /api/v1/cards/{token}"),
        O::UnlinkCard => interrupted("GET /api/v1/cards/{token} (404: unlinked)"),
        O::SetKyc => interrupted("GET /api/v1/accounts/{id}"),
        O::RequestConversion => interrupted("GET /api/v1/conversions"),
        O::ApproveConversion | O::RejectConversion => interrupted("GET /api/v1/conversions/{id}"),
        O::RegisterProvider => {
            interrupted("no GET shows it; sending it again with a new key is safe (it replaces the provider's entry)")
        }
        O::RegisterEvent | O::ReportOccurrence | O::CancelEvent => interrupted("GET /api/v1/oracle/events/{id}"),
        O::RegisterParameter => {
            interrupted("no GET shows it; send it again with a new key (an id already registered is refused)")
        }
        O::RegisterContract | O::AmendContract => interrupted("GET /api/v1/oracle/contracts/{parameter}/{number}"),
        O::RegisterInvoice => interrupted("GET /api/v1/oracle/invoices/{id}"),
        O::SetRate => interrupted("GET /api/v1/oracle/fx-rates/{base}/{quote}"),
        O::SetProfile | O::CloseAccount => interrupted("GET /api/v1/accounts/{id}/profile"),
        O::Rekey => interrupted("GET /api/v1/accounts/{id}"),
        O::PublishLimits => interrupted("GET /api/v1/limits"),
        O::PlaceOrder => interrupted("GET /api/v1/enforcement/orders"),
        // A certificate is a signature only; asking again gives a fresh one.
        O::OfflineCertify => Resume::Repeat,
        O::OfflineFund => interrupted("GET /api/v1/accounts/{id}/history (a payment to the offline reserve)"),
        O::OfflineDeposit => {
            interrupted("send the chain again with a new key: a chain settled once answers `already_settled`")
        }
        O::ListAccounts
        | O::ReadAccount
        | O::ReadBalance
        | O::ReadHistory
        | O::ReadNotifications
        | O::FindHolder
        | O::ReadTransaction
        | O::ReadLineage
        | O::ReadReceipt
        | O::ListConversions
        | O::ReadConversion
        | O::ReadSupply
        | O::ReadVolumes
        | O::ListHolds
        | O::ListEvents
        | O::ReadEvent
        | O::ReadContract
        | O::ReadInvoice
        | O::ReadRate
        | O::ReadProfile
        | O::ReadLimits
        | O::ListOrders
        | O::ReadAggregates
        | O::ReadLargePayments
        | O::ReadMarkedFunds
        | O::OfflineTrust
        | O::ReadCard
        | O::ReadCardPayment
        | O::NodeDeliver
        | O::NodeConvert
        | O::NodeConversionStatus
        | O::NodePvpPropose
        | O::NodePvpAbandon
        | O::NodeCanReceive
        | O::NodeLease
        | O::NodeLeaseEnd
        | O::NodePolicy
        | O::NodeReport
        | O::NodeBatch
        | O::NodeOperator
        | O::OracleRegisterProvider
        | O::OracleWrite
        | O::OracleAttest
        | O::OracleConfirm
        | O::OracleAbandon
        | O::OracleNotices
        | O::OracleRead
        | O::DirectoryRegister
        | O::DirectoryLookup
        | O::DirectoryFind
        | O::NotaryNotarise
        | O::NotaryIssue
        | O::NotaryReceipt
        | O::NotaryGroup
        | O::NotaryStatus
        | O::ReadReserves
        | O::ListStablecoins
        | O::OracleAttestReserves
        | O::NodeStablecoinCount
        | O::NodeOfflineDeposit => Resume::Unkeyed,
    }
}

/// What a server error (5xx) does to a keyed request's key: decided from
/// [`resume`], so the same per-operation decision governs a crash and a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterServerError {
    /// Its effect is bound to the key before it happens: with something
    /// bound the retry is answered from it (the payment's outcome, the DA);
    /// with nothing bound nothing took effect and the key is free again.
    FromBound,
    /// It may have taken an effect the key cannot tell: the key stays
    /// interrupted and the retry gets 409 `interrupted`, for good.
    Interrupted,
}

/// See [`AfterServerError`].
pub fn after_server_error(operation: Operation) -> AfterServerError {
    match resume(operation) {
        Resume::Transaction | Resume::Account | Resume::Repeat | Resume::Replayed | Resume::Unkeyed => {
            AfterServerError::FromBound
        }
        Resume::Interrupted { .. } => AfterServerError::Interrupted,
    }
}

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
    if path.as_deref().is_some_and(|p| access::unsigned(&parts.method, p)) {
        // Public: no signature checked, no key kept; bounded in size (above) and rate.
        state.public.take()?;
        return Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await);
    }
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
        Begin::Run => run(&state, &caller, operation, slot, request, next).await,
        Begin::Recover(bound) => match recovered(&state, &caller, operation, &slot.key, &bound).inspect_err(|_| {
            // Leave the key as it was (interrupted), so a later retry decides again.
            if let Err(e) = state.idempotency.fail(&slot) {
                tracing::warn!(error = %e, "could not reopen an interrupted key");
            }
        })? {
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
            Recovery::RunAgain => run(&state, &caller, operation, slot, request, next).await,
        },
    }
}

/// Runs the handler with what it produces bound to the key, and records its answer.
async fn run(
    state: &Shared,
    caller: &Caller,
    operation: Operation,
    slot: Slot,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let witness =
        Arc::new(Binding { store: Arc::clone(&state.idempotency), slot: slot.clone(), node: caller.id.clone() });
    let response = dtenge_node::witness::witnessed(witness, next.run(request)).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| ApiError::unavailable("internal", format!("reading the answer: {e}")))?;
    // A conflict (funds in flight, a request in progress) is not an outcome: the same request
    // may succeed a moment later, so it is not the answer the key keeps. Nor is a server error
    // (a timeout, a lost answer), but the request may have taken effect before it: the retry is
    // then answered as after a crash (`after_server_error`), never run again.
    let recorded = if parts.status.is_server_error() && after_server_error(operation) == AfterServerError::Interrupted {
        state.idempotency.interrupt(&slot);
        Ok(())
    } else if parts.status.is_server_error() || parts.status == StatusCode::CONFLICT {
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
}

/// The answer to a request interrupted by a crash, as [`resume`] decides for its operation.
fn recovered(
    state: &Shared,
    caller: &Caller,
    operation: Operation,
    key: &str,
    bound: &[Bound],
) -> Result<Recovery, ApiError> {
    match resume(operation) {
        Resume::Transaction => {
            let node = state.node_of(caller)?;
            let known =
                bound.iter().rev().filter_map(Bound::tx).find_map(|tx| node.read(|s| s.outgoing(&tx)).map(|o| (tx, o)));
            let Some((tx, outgoing)) = known else { return Ok(Recovery::RunAgain) };
            let notary_seq = outgoing
                .receipt
                .as_deref()
                .and_then(|r| borsh::from_slice::<dtenge_notary::messages::Receipt>(r).ok())
                .map(|r| r.body.seq);
            let view =
                TxOutcomeView { tx: tx.to_string(), status: crate::dto::status_view(&outgoing.status), notary_seq };
            let body = serde_json::to_vec(&view).unwrap_or_default();
            Ok(match outgoing.status {
                Status::Success | Status::Rejected { .. } => Recovery::Answer(200, body),
                Status::RequestAccepted | Status::UnderReview => Recovery::NotFinal(200, body),
            })
        }
        Resume::Account => {
            let node = state.node_of(caller)?;
            let known = bound.iter().filter_map(Bound::account).find_map(|a| node.read(|s| s.account_of(&a).cloned()));
            let Some(account) = known else { return Ok(Recovery::RunAgain) };
            let view: AccountView = crate::dto::account_view(&account, node.id().as_str());
            Ok(Recovery::Answer(201, serde_json::to_vec(&view).unwrap_or_default()))
        }
        Resume::Repeat | Resume::Replayed | Resume::Unkeyed => Ok(Recovery::RunAgain),
        Resume::Interrupted { check } => {
            let refusal = interrupted(operation, key, check);
            let body = ErrorBody {
                error: ErrorDetail {
                    code: refusal.code.clone(),
                    message: refusal.message.clone(),
                    reason: refusal.reason.clone(),
                },
            };
            Ok(Recovery::Answer(refusal.status.as_u16(), serde_json::to_vec(&body).unwrap_or_default()))
        }
    }
}

/// 409 `interrupted`: the answer, for good, to a key whose request was cut
/// off by a crash and whose effect the key cannot tell.
pub fn interrupted(operation: Operation, key: &str, check: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "interrupted",
        format!(
            "the request with Idempotency-Key {key} ({}) was interrupted (by a server restart, or by a server error after it \
             may have taken effect) before its outcome was recorded; it may or may not have taken effect and is not run again \
             with this key; to find out: {check}; send it with a new key only if it did not take effect",
            operation.name()
        ),
    )
}

/// How a retry after a crash is answered, per POST endpoint, as Markdown
/// (the retry table of `docs/security.md`, generated from [`resume`]).
pub fn retry_table() -> String {
    let mut out = String::from(
        "| endpoint (operation) | a retry with the same key after a crash or a server error (5xx) is answered with |\n|---|---|\n",
    );
    for (method, path, op) in crate::access::ROUTES.iter().filter(|(m, _, _)| *m == "POST") {
        let answer = match resume(*op) {
            Resume::Transaction => {
                "the outcome of the transaction bound to the key (the node's journal); nothing bound or journaled: run again".to_string()
            }
            Resume::Account => "the DA bound to the key; nothing bound: run again".to_string(),
            Resume::Repeat => "run again (nothing durable: a proposal held in memory)".to_string(),
            Resume::Replayed => {
                "run again: the node answers a repeat of the message the same from its journal, moving nothing twice"
                    .to_string()
            }
            Resume::Interrupted { check } => format!("409 `interrupted`, for good; to find out: {check}"),
            Resume::Unkeyed => "— (a server bug: a POST without a decision)".to_string(),
        };
        out.push_str(&format!("| `{method} {path}` ({}) | {answer} |\n", op.name()));
    }
    out
}
