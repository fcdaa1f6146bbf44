//! Bank cards linked to a DA (issue 22.1, docs/cards.md), on the caller's
//! node as the issuing bank: linking a card, reading it and its payments,
//! and the card network's messages, which the bank's card processing relays
//! here and whose answer (DE 39) it relays back. A declined message is a
//! 200 with its response code: the scheme's answer, not an HTTP error.

use axum::Json;
use axum::extract::State;
use dtenge_node::cards::{
    AcquirerId, CardExpiry, CardMessage, CardPayment, CardResponse, CardToken, Last4, Mti, PaymentState, Rrn, Stan,
    TransactionType,
};
use dtenge_types::{Amount, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{
    CardMessageRequest, CardMessageResponse, CardPaymentView, CardView, LinkCardRequest, UnlinkCardRequest,
};

use crate::dto::address;
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::state::{ApiPath, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(link_card))
        .routes(routes!(read_card))
        .routes(routes!(card_message))
        .routes(routes!(read_card_payment))
        .routes(routes!(unlink_card))
}

fn field<T>(value: Result<T, dtenge_node::NodeError>, code: &str) -> Result<T, ApiError> {
    value.map_err(|e| ApiError::bad_request(code, e.to_string()))
}

fn card_view(card: dtenge_node::cards::Card) -> CardView {
    CardView {
        token: card.token.to_string(),
        last4: card.last4.to_string(),
        account: card.account.to_string(),
        expiry: card.expiry.to_string(),
        linked_at_ms: card.linked_at.millis(),
        unlinked_at_ms: None,
    }
}

/// The wire message as the node's, every field checked; 400 naming the first bad one.
pub fn card_message_of(m: &CardMessageRequest) -> Result<CardMessage, ApiError> {
    Ok(CardMessage {
        mti: field(Mti::parse(&m.mti), "bad_card_message")?,
        transaction: field(TransactionType::parse(&m.processing_code), "bad_card_message")?,
        amount: Amount::from_tiyn(m.amount_tiyn),
        currency: m.currency,
        transmitted_at: Timestamp(m.transmitted_at_ms),
        stan: field(Stan::new(m.stan.clone()), "bad_card_message")?,
        card: field(CardToken::new(m.card_token.clone()), "bad_card_message")?,
        card_expiry: match &m.card_expiry {
            Some(e) => Some(field(CardExpiry::parse(e), "bad_card_message")?),
            None => None,
        },
        acquirer: field(AcquirerId::new(m.acquirer_id.clone()), "bad_card_message")?,
        acquirer_account: address(&m.acquirer_account, "acquirer_account")?,
        rrn: field(Rrn::new(m.rrn.clone()), "bad_card_message")?,
        original_rrn: match &m.original_rrn {
            Some(r) => Some(field(Rrn::new(r.clone()), "bad_card_message")?),
            None => None,
        },
        replacement: m.replacement_amount_tiyn.map(Amount::from_tiyn),
    })
}

/// The node's message on the wire (the demo and tests send what the simulator writes).
pub fn card_message_request(m: &CardMessage) -> CardMessageRequest {
    CardMessageRequest {
        mti: m.mti.code().to_string(),
        processing_code: m.transaction.processing_code().to_string(),
        amount_tiyn: m.amount.tiyn(),
        currency: m.currency,
        transmitted_at_ms: m.transmitted_at.millis(),
        stan: m.stan.to_string(),
        card_token: m.card.to_string(),
        card_expiry: m.card_expiry.map(|e| e.to_string()),
        acquirer_id: m.acquirer.to_string(),
        acquirer_account: m.acquirer_account.to_string(),
        rrn: m.rrn.to_string(),
        original_rrn: m.original_rrn.as_ref().map(|r| r.to_string()),
        replacement_amount_tiyn: m.replacement.map(|a| a.tiyn()),
    }
}

fn response_view(r: CardResponse) -> CardMessageResponse {
    CardMessageResponse {
        mti: r.mti.code().to_string(),
        stan: r.stan.to_string(),
        rrn: r.rrn.to_string(),
        response_code: r.code.code().to_string(),
        approval_code: r.approval_code,
        amount_tiyn: r.amount.tiyn(),
        tx: r.tx.map(|t| t.to_string()),
    }
}

fn payment_view(p: CardPayment) -> CardPaymentView {
    CardPaymentView {
        rrn: p.rrn.to_string(),
        card_token: p.card.to_string(),
        account: p.account.to_string(),
        acquirer_id: p.acquirer.to_string(),
        state: match p.state {
            PaymentState::Authorised => "authorised",
            PaymentState::Captured => "captured",
            PaymentState::Reversed => "reversed",
            PaymentState::Expired => "expired",
        }
        .to_string(),
        authorised_tiyn: p.authorised.tiyn(),
        captured_tiyn: p.captured.tiyn(),
        refunded_tiyn: p.refunded.tiyn(),
        valid_until_ms: p.valid_until.millis(),
        txs: p.txs.iter().map(|t| t.to_string()).collect(),
    }
}

#[utoipa::path(post, path = "/api/v1/cards", tag = "cards", request_body = LinkCardRequest,
    description = "Links a card to a DA of the caller's node whose key the bank keeps: the scheme's token, the last four digits and the expiry; never the card number.",
    responses((status = 201, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn link_card(
    State(state): State<Shared>,
    req: Signed<LinkCardRequest>,
) -> Result<(axum::http::StatusCode, Json<CardView>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let account = own_account(node.id().as_str(), &body.account)?;
    node.account(&account)?;
    let token = field(CardToken::new(body.token), "bad_card")?;
    let last4 = field(Last4::new(body.last4), "bad_card")?;
    let expiry = field(CardExpiry::parse(&body.expiry), "bad_card")?;
    let card = node.link_card(&account, token, last4, expiry).await?;
    Ok((axum::http::StatusCode::CREATED, Json(card_view(card))))
}

#[utoipa::path(get, path = "/api/v1/cards/{token}", tag = "cards", params(("token" = String, Path, description = "The card's scheme token")),
    description = "A card linked at the caller's node.",
    responses((status = 200, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn read_card(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<CardView>, ApiError> {
    let node = state.node_of(&caller)?;
    let token = field(CardToken::new(token), "bad_card")?;
    let card =
        node.card(&token).ok_or_else(|| ApiError::not_found(format!("no card {token} is linked at {}", node.id())))?;
    Ok(Json(card_view(card)))
}

#[utoipa::path(post, path = "/api/v1/cards/messages", tag = "cards", request_body = CardMessageRequest,
    description = "A card network message for the caller as issuing bank (ISO 8583 as JSON): 0100/0120 hold the amount on the card's DA until the scheme's expiry, 1240 captures it (all or part; the rest returns) to the acquirer's settlement DA or, with processing code 200000, refunds it, 0400/0420 release it. The answer carries the scheme's response code (DE 39); a retransmission (same MTI, STAN and RRN) is answered the same and changes nothing.",
    responses((status = 200, body = CardMessageResponse), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
async fn card_message(
    State(state): State<Shared>,
    req: Signed<CardMessageRequest>,
) -> Result<Json<CardMessageResponse>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let message = card_message_of(&req.body)?;
    field(message.check_references(), "bad_card_message")?;
    if !message.mti.is_request() {
        return Err(ApiError::bad_request(
            "bad_card_message",
            format!("MTI {} is a response: the issuer answers 0100, 0120, 0400, 0420 and 1240", message.mti.code()),
        ));
    }
    Ok(Json(response_view(node.card_message(message).await?)))
}

#[utoipa::path(get, path = "/api/v1/cards/payments/{rrn}", tag = "cards", params(("rrn" = String, Path, description = "DE 37 of the payment's authorisation")),
    description = "A card payment at the caller's node: what was authorised, captured and refunded, and its transactions.",
    responses((status = 200, body = CardPaymentView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn read_card_payment(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(rrn): ApiPath<String>,
) -> Result<Json<CardPaymentView>, ApiError> {
    let node = state.node_of(&caller)?;
    let rrn = field(Rrn::new(rrn), "bad_card_payment")?;
    let payment = node
        .card_payment(&rrn)
        .ok_or_else(|| ApiError::not_found(format!("no card payment {rrn} at {}", node.id())))?;
    Ok(Json(payment_view(payment)))
}

#[utoipa::path(post, path = "/api/v1/cards/{token}/unlink", tag = "cards", request_body = UnlinkCardRequest,
    params(("token" = String, Path, description = "The card's scheme token")),
    description = "Unlinks a card linked at the caller's node: later authorisations under its token are declined with response code 14; authorisations already open keep their course (clearing, reversal, expiry, refunds). The token may be linked again.",
    responses((status = 200, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn unlink_card(
    State(state): State<Shared>,
    ApiPath(token): ApiPath<String>,
    req: Signed<UnlinkCardRequest>,
) -> Result<Json<CardView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let token = field(CardToken::new(token), "bad_card")?;
    if node.card(&token).is_none() {
        return Err(ApiError::not_found(format!("no card {token} is linked at {}", node.id())));
    }
    let card = node.unlink_card(&token).await?;
    let at = state.platform.clock.now().millis();
    Ok(Json(CardView { unlinked_at_ms: Some(at), ..card_view(card) }))
}
