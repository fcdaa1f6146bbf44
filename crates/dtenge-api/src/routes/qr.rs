//! QR payments (`dtenge_api_types::qr`): the payer's bank checks a QR (CRC,
//! DT template, the merchant's bank's signature against the registry, the
//! expiry, that the payee's DA is hosted by the bank that signed, that a
//! dynamic QR was not paid) and pays it — for a custodial DA at once, for a
//! DA whose holder keeps the key as a transaction to sign and submit.
//!
//! A dynamic QR is claimed in the QR book (`crate::qr_book`) durably before
//! its payment starts and released only if the payment was refused before
//! anything moved; so it is paid at most once, across banks of this API.

use axum::Json;
use axum::extract::State;
use dtenge_api_types::qr::{self, ParsedQr};
use dtenge_api_types::{PreparedView, QrCheck, QrPayRequest, QrSubmit, QrView, TxOutcomeView};
use dtenge_crypto::Ed25519;
use dtenge_node::service::{NodeService, PayTo, TxOutcome};
use dtenge_types::{Memo, ParticipantId, Transaction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::{address, positive_amount};
use crate::error::ApiError;
use crate::qr_book::{self, QrKey, Standing};
use crate::routes::accounts::own_account;
use crate::routes::payments::outcome_view;
use crate::state::{Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(check_qr))
        .routes(routes!(pay_qr))
        .routes(routes!(prepare_qr))
        .routes(routes!(submit_qr))
}

fn qr_error(e: qr::QrError) -> ApiError {
    ApiError::unprocessable(e.code(), e.to_string())
}

fn now_s(state: &Shared) -> u64 {
    state.platform.clock.now().millis() / 1_000
}

/// Parses and checks a QR's text: CRC, template, signature, expiry, and
/// that the payee's DA is at the bank the QR names.
async fn checked(state: &Shared, node: &NodeService, payload: &str) -> Result<ParsedQr, ApiError> {
    let parsed = qr::parse(payload).map_err(qr_error)?;
    let bank_key = ParticipantId::new(&parsed.payment.bank)
        .ok()
        .and_then(|id| state.platform.participants().get(&id).map(|p| p.public_key));
    parsed.check(bank_key.as_ref(), now_s(state), &Ed25519).map_err(qr_error)?;
    let payee = address(&parsed.payment.address, "payload: payee address")?;
    let host = node.host_of(&payee).await?;
    if host.as_str() != parsed.payment.bank {
        return Err(ApiError::unprocessable(
            "qr_wrong_bank",
            format!("the QR names bank {} but the payee's DA is at {host}", parsed.payment.bank),
        ));
    }
    Ok(parsed)
}

fn standing(state: &Shared, key: Option<&QrKey>) -> Result<(), ApiError> {
    match key.map(|k| state.qr.standing(k)) {
        None | Some(Standing::Open) => Ok(()),
        Some(Standing::Claimed) => Err(qr_book::already_paid(None)),
        Some(Standing::Paid(tx)) => Err(qr_book::already_paid(Some(tx))),
    }
}

/// What the payer pays: the signed amount of a dynamic QR, the payer's of a static one.
fn amount_and_memo(parsed: &ParsedQr, asked: Option<u64>) -> Result<(PayTo, Option<Memo>), ApiError> {
    let payment = &parsed.payment;
    let tiyn = match (payment.amount_tiyn, asked) {
        (Some(signed), None) => signed,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "qr_amount_fixed",
                "amount_tiyn: a dynamic QR carries its amount, signed by the bank; leave amount_tiyn out",
            ));
        }
        (None, Some(a)) => a,
        (None, None) => {
            return Err(ApiError::bad_request(
                "qr_amount_missing",
                "amount_tiyn: a static QR needs the payer's amount",
            ));
        }
    };
    let amount = positive_amount(tiyn, "amount_tiyn")?;
    let memo = payment
        .memo()
        .map(|m| Memo::new(m).map_err(|e| ApiError::bad_request("bad_memo", e.to_string())))
        .transpose()?;
    Ok((PayTo { address: address(&payment.address, "payload: payee address")?, amount }, memo))
}

/// Records how the payment of a claimed QR ended.
async fn settle_claim(state: &Shared, key: QrKey, result: &Result<TxOutcome, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(outcome) => match outcome.status {
            dtenge_node::status::Status::Success => state.qr.paid(key, outcome.tx).await,
            dtenge_node::status::Status::Rejected { .. } => state.qr.release(key).await,
            // Still in flight: it may commit, so the QR stays claimed.
            _ => Ok(()),
        },
        // A refusal (4xx) moved nothing; after a server error it may still commit.
        Err(e) if e.status.is_client_error() => state.qr.release(key).await,
        Err(_) => Ok(()),
    }
}

#[utoipa::path(post, path = "/api/v1/qr/check", tag = "qr", request_body = QrCheck,
    responses((status = 200, body = QrView), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn check_qr(State(state): State<Shared>, req: Signed<QrCheck>) -> Result<Json<QrView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let parsed = checked(&state, &node, &req.body.payload).await?;
    let paid_by = match qr_book::key_of(&parsed.payment).map(|k| state.qr.standing(&k)) {
        Some(Standing::Paid(tx)) => Some(tx.to_string()),
        Some(Standing::Claimed) => return Err(qr_book::already_paid(None)),
        _ => None,
    };
    let kind = if parsed.payment.is_dynamic() { "dynamic" } else { "static" };
    Ok(Json(QrView { kind: kind.into(), payment: parsed.payment, paid_by }))
}

#[utoipa::path(post, path = "/api/v1/qr/pay", tag = "qr", request_body = QrPayRequest,
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn pay_qr(State(state): State<Shared>, req: Signed<QrPayRequest>) -> Result<Json<TxOutcomeView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let from = own_account(node.id().as_str(), &req.body.from)?;
    let parsed = checked(&state, &node, &req.body.payload).await?;
    let (to, memo) = amount_and_memo(&parsed, req.body.amount_tiyn)?;
    let key = qr_book::key_of(&parsed.payment);
    standing(&state, key.as_ref())?;
    if let (Some(key), Some(until_s)) = (key, parsed.payment.expires_at_s) {
        state.qr.claim(key, until_s, now_s(&state)).await?;
    }
    let result = node.pay(&from, &[to], memo).await.map_err(ApiError::from);
    if let Some(key) = key {
        settle_claim(&state, key, &result).await?;
    }
    Ok(Json(outcome_view(result?)))
}

#[utoipa::path(post, path = "/api/v1/qr/prepare", tag = "qr", request_body = QrPayRequest,
    responses((status = 200, body = PreparedView), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn prepare_qr(State(state): State<Shared>, req: Signed<QrPayRequest>) -> Result<Json<PreparedView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let from = own_account(node.id().as_str(), &req.body.from)?;
    let parsed = checked(&state, &node, &req.body.payload).await?;
    let (to, memo) = amount_and_memo(&parsed, req.body.amount_tiyn)?;
    let key = qr_book::key_of(&parsed.payment);
    standing(&state, key.as_ref())?;
    let tx = node.prepare_pay(&from, &[to], memo).await?;
    let id = tx.id();
    let awaiting = qr_book::Awaiting {
        qr: key.zip(parsed.payment.expires_at_s),
        window_end_s: tx.body.window.not_after.millis().div_ceil(1_000),
    };
    state.qr.await_signature(id, awaiting, now_s(&state))?;
    Ok(Json(PreparedView {
        tx_id: id.to_string(),
        signing_message: hex::encode(id.signing_message()),
        transaction: hex::encode(dtenge_types::encoding::encode(&tx)),
    }))
}

#[utoipa::path(post, path = "/api/v1/qr/submit", tag = "qr", request_body = QrSubmit,
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn submit_qr(State(state): State<Shared>, req: Signed<QrSubmit>) -> Result<Json<TxOutcomeView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let bytes = hex::decode(req.body.transaction.trim())
        .map_err(|_| ApiError::bad_request("bad_hex", "transaction must be hex"))?;
    let tx: Transaction = dtenge_types::decode_transaction(&bytes)
        .map_err(|e| ApiError::bad_request("bad_transaction", e.to_string()))?;
    let id = tx.id();
    let awaiting = state.qr.take_awaiting(&id).ok_or_else(|| {
        ApiError::unprocessable(
            "qr_not_prepared",
            format!("no QR payment {id} prepared at /api/v1/qr/prepare awaits a signature (expired or unknown)"),
        )
    })?;
    let Some((key, until_s)) = awaiting.qr else {
        // A static QR: nothing to claim.
        return Ok(Json(outcome_view(node.submit_signed(tx).await?)));
    };
    let now = now_s(&state);
    if until_s <= now {
        return Err(qr_error(qr::QrError::Expired { expires_at_s: until_s, now_s: now }));
    }
    state.qr.claim(key, until_s, now).await?;
    let result = node.submit_signed(tx).await.map_err(ApiError::from);
    settle_claim(&state, key, &result).await?;
    Ok(Json(outcome_view(result?)))
}
