//! Payments: transfers to one or several recipients (by address, or by
//! IIN/BIN and bank), client-signed transfers, transaction status, token
//! lineage and notary receipts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_node::service::{NodeService, PayTo, TxOutcome};
use dtenge_node::state::Status;
use dtenge_types::{Memo, TokenId, Transaction, TxId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{
    LineageView, PreparedView, ReceiptView, Recipient, SubmitSigned, TransactionView, TransferRequest, TxOutcomeView,
};

use crate::dto::{address, iin_bin, positive_amount, status_view};
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::state::{ApiPath, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(transfer))
        .routes(routes!(prepare_transfer))
        .routes(routes!(submit_transfer))
        .routes(routes!(transaction))
        .routes(routes!(lineage))
        .routes(routes!(receipt))
}

/// What became of a transaction, on the wire.
pub fn outcome_view(o: TxOutcome) -> TxOutcomeView {
    TxOutcomeView { tx: o.tx.to_string(), status: status_view(&o.status), notary_seq: o.notary_seq }
}

/// Resolves recipients to addresses.
pub async fn resolve(node: &NodeService, to: &[Recipient]) -> Result<Vec<PayTo>, ApiError> {
    if to.is_empty() {
        return Err(ApiError::bad_request("no_recipients", "name at least one recipient"));
    }
    let mut out = Vec::with_capacity(to.len());
    for (i, r) in to.iter().enumerate() {
        let amount = positive_amount(r.amount_tiyn, &format!("to[{i}].amount_tiyn"))?;
        let addr = match (&r.address, &r.iin_bin, &r.bank) {
            (Some(a), None, None) => address(a, &format!("to[{i}].address"))?,
            (None, Some(iin), Some(bank)) => {
                let found = node.find(iin_bin(iin)?).await?;
                let entry = found.into_iter().find(|e| e.host.as_str() == bank).ok_or_else(|| {
                    ApiError::unprocessable("unknown_recipient", format!("to[{i}]: no DA of {iin} at {bank}"))
                })?;
                entry.address
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_recipient",
                    format!("to[{i}]: give either `address`, or `iin_bin` and `bank`"),
                ));
            }
        };
        out.push(PayTo { address: addr, amount });
    }
    Ok(out)
}

/// Parses a memo.
pub fn memo(text: &Option<String>) -> Result<Option<Memo>, ApiError> {
    text.as_ref()
        .map(|m| Memo::new(m.clone()).map_err(|e| ApiError::bad_request("bad_memo", e.to_string())))
        .transpose()
}

#[utoipa::path(post, path = "/api/v1/transfers", tag = "payments", request_body = TransferRequest,
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn transfer(
    State(state): State<Shared>,
    req: Signed<TransferRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let (status, json) = async {
        let from = own_account(node.id().as_str(), &body.from)?;
        let to = resolve(&node, &body.to).await?;
        let outcome = node.pay(&from, &to, memo(&body.memo)?).await?;
        Ok::<_, ApiError>((StatusCode::OK, serde_json::to_value(outcome_view(outcome)).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(post, path = "/api/v1/transfers/prepare", tag = "payments", request_body = TransferRequest,
    responses((status = 200, body = PreparedView), (status = 400, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn prepare_transfer(
    State(state): State<Shared>,
    req: Signed<TransferRequest>,
) -> Result<Json<PreparedView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let from = own_account(node.id().as_str(), &req.body.from)?;
    let to = resolve(&node, &req.body.to).await?;
    let tx = node.prepare_pay(&from, &to, memo(&req.body.memo)?).await?;
    let id = tx.id();
    Ok(Json(PreparedView {
        tx_id: id.to_string(),
        signing_message: hex::encode(id.signing_message()),
        transaction: hex::encode(dtenge_types::encoding::encode(&tx)),
    }))
}

#[utoipa::path(post, path = "/api/v1/transfers/submit", tag = "payments", request_body = SubmitSigned,
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn submit_transfer(
    State(state): State<Shared>,
    req: Signed<SubmitSigned>,
) -> Result<Json<TxOutcomeView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let bytes = hex::decode(req.body.transaction.trim())
        .map_err(|_| ApiError::bad_request("bad_hex", "transaction must be hex"))?;
    let tx: Transaction = dtenge_types::decode_transaction(&bytes)
        .map_err(|e| ApiError::bad_request("bad_transaction", e.to_string()))?;
    if state.qr.is_awaiting(&tx.id()) {
        return Err(ApiError::unprocessable(
            "qr_submit_elsewhere",
            "this transaction pays a QR: submit it at /api/v1/qr/submit, which records the QR as paid",
        ));
    }
    Ok(Json(outcome_view(node.submit_signed(tx).await?)))
}

fn tx_id(text: &str) -> Result<TxId, ApiError> {
    text.parse().map_err(|e| ApiError::bad_request("bad_tx_id", format!("{e}")))
}

#[utoipa::path(get, path = "/api/v1/transactions/{tx}", tag = "payments", params(("tx" = String, Path, description = "Transaction id (hex)")),
    responses((status = 200, body = TransactionView), (status = 404, body = crate::error::ErrorBody)))]
async fn transaction(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(tx): ApiPath<String>,
) -> Result<Json<TransactionView>, ApiError> {
    let node = state.node_of(&caller)?;
    let id = tx_id(&tx)?;
    let found = node.read(|s| {
        if let Some(o) = s.outgoing(&id) {
            return Some(("outgoing", o.tx, status_view(&o.status)));
        }
        s.received(&id).map(|(t, _)| ("incoming", t, status_view(&Status::Success)))
    });
    let (direction, t, status) =
        found.ok_or_else(|| ApiError::not_found(format!("{} knows no transaction {id}", node.id())))?;
    Ok(Json(TransactionView {
        tx: id.to_string(),
        direction: direction.into(),
        kind: t.body.command.name().into(),
        status,
        transaction: serde_json::to_value(&t).unwrap_or_default(),
    }))
}

#[utoipa::path(get, path = "/api/v1/tokens/{token}/lineage", tag = "payments", params(("token" = String, Path, description = "Token id, `<tx id>:<output index>`")),
    responses((status = 200, body = LineageView), (status = 404, body = crate::error::ErrorBody)))]
async fn lineage(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<LineageView>, ApiError> {
    let node = state.node_of(&caller)?;
    let id: TokenId = token.parse().map_err(|e| ApiError::bad_request("bad_token_id", format!("{e}")))?;
    let parents = node
        .lineage(&id)
        .ok_or_else(|| ApiError::not_found(format!("{} has not seen token {token} created", node.id())))?;
    Ok(Json(LineageView { token, parents: parents.iter().map(TokenId::to_string).collect() }))
}

#[utoipa::path(get, path = "/api/v1/notary/receipts/{tx}", tag = "payments", params(("tx" = String, Path, description = "Transaction id (hex)")),
    responses((status = 200, body = ReceiptView), (status = 404, body = crate::error::ErrorBody)))]
async fn receipt(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(tx): ApiPath<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    state.node_of(&caller)?;
    let id = tx_id(&tx)?;
    let r = state
        .platform
        .notary
        .receipt(&id)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("the notary has not committed {id}")))?;
    Ok(Json(ReceiptView {
        tx: r.body.tx.to_string(),
        seq: r.body.seq,
        committed_at_ms: r.body.committed_at.millis(),
        committed_at: crate::dto::astana(r.body.committed_at),
        inputs_digest: r.body.inputs_digest.to_string(),
        outputs_digest: r.body.outputs_digest.to_string(),
        notary: r.notary.to_string(),
        signature: r.signature.to_string(),
    }))
}
