//! Programmable money on the caller's node (SPEC §4): holds for oracle events
//! and their release, cancellation and expiry; marking by address (Treasury)
//! and by parameter; payments of marked funds and under contracts; e-invoice
//! and VAT payments; debit mandates. Every operation acts on DAs of the
//! caller's own node and answers with the transaction's outcome.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_node::service::{PayTo, TxOutcome};
use dtenge_types::{
    Amount, BoundedVec, ContractNo, Encumbrance, EventId, HoldKind, InvoiceId, MandateId, MarkingLevel, MarkingRef,
    MarkingRule, ParameterId, Timestamp, TypesError,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{
    AccountRef, AddressPayee, ContractPaymentRequest, DebitRequest, GrantMandateRequest, HeldView, HoldKindDto,
    HoldRequest, MarkAddressRequest, MarkParameterRequest, MarkedTransferRequest, PvpRequest, TxOutcomeView,
    VatPaymentRequest,
};

use crate::dto::{add_tiyn, address, astana, positive_amount};
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::routes::payments::{memo, outcome_view};
use crate::state::{ApiPath, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(hold))
        .routes(routes!(release_hold))
        .routes(routes!(cancel_hold))
        .routes(routes!(expire_hold))
        .routes(routes!(account_holds))
        .routes(routes!(mark_address))
        .routes(routes!(mark_parameter))
        .routes(routes!(marked_transfer))
        .routes(routes!(contract_payment))
        .routes(routes!(pay_invoice))
        .routes(routes!(pay_vat))
        .routes(routes!(grant_mandate))
        .routes(routes!(debit))
        .routes(routes!(revoke_mandate))
        .routes(routes!(pvp))
}

/// Parses a text identifier (event id, contract number, …); 400 naming `field`.
pub fn text_id<T: FromStr<Err = TypesError>>(text: &str, field: &str) -> Result<T, ApiError> {
    text.parse().map_err(|e: TypesError| ApiError::bad_request("bad_id", format!("{field}: {e}")))
}

/// An instant that must lie after the platform clock; 400 naming `field`.
pub fn future_ms(ms: u64, field: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    if ms <= now.millis() {
        return Err(ApiError::bad_request(
            "bad_time",
            format!("{field} ({ms}) must be after now ({} ms, {})", now.millis(), astana(now)),
        ));
    }
    Ok(Timestamp(ms))
}

/// Answers with the outcome of an operation's transaction.
async fn outcome(
    work: impl std::future::Future<Output = Result<TxOutcome, ApiError>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let done = work.await?;
    Ok((StatusCode::OK, Json(serde_json::to_value(outcome_view(done)).unwrap_or_default())))
}

// ----------------------------------------------------------------------
// Holds (SPEC §4.1, §4.4)

#[utoipa::path(post, path = "/api/v1/holds", tag = "programmable", request_body = HoldRequest,
    description = "Holds funds for an oracle event: standard tokens become an encumbered token the owner cannot spend, released only with the oracle's confirmation that the event occurred, returned on cancellation or after valid-until.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn hold(
    State(state): State<Shared>,
    req: Signed<HoldRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let event: EventId = text_id(&body.event, "event")?;
        let amount = body.amount_tiyn.map(|a| positive_amount(a, "amount_tiyn")).transpose()?;
        Ok(node.hold(&account, event, amount).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/holds/{event}/release", tag = "programmable", request_body = AccountRef,
    params(("event" = String, Path, description = "Event id")),
    description = "Releases what the oracle says is releasable for the event from the DA's held funds to the event's recipient (the node also does this on its own when the oracle reports the occurrence).",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn release_hold(
    State(state): State<Shared>,
    ApiPath(event): ApiPath<String>,
    req: Signed<AccountRef>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let event: EventId = text_id(&event, "event")?;
        Ok(node.release(&account, &event).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/holds/{event}/cancel", tag = "programmable", request_body = AccountRef,
    params(("event" = String, Path, description = "Event id")),
    description = "Returns the DA's held funds for an event the provider cancelled (or a campaign that missed its target); needs the oracle's attestation of the cancellation.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn cancel_hold(
    State(state): State<Shared>,
    ApiPath(event): ApiPath<String>,
    req: Signed<AccountRef>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    unhold(state, event, req, false).await
}

#[utoipa::path(post, path = "/api/v1/holds/{event}/expire", tag = "programmable", request_body = AccountRef,
    params(("event" = String, Path, description = "Event id")),
    description = "Returns the DA's held funds after the hold's valid-until; needs only the clock, not the oracle.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn expire_hold(
    State(state): State<Shared>,
    ApiPath(event): ApiPath<String>,
    req: Signed<AccountRef>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    unhold(state, event, req, true).await
}

async fn unhold(
    state: Shared,
    event: String,
    req: Signed<AccountRef>,
    expire: bool,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let event: EventId = text_id(&event, "event")?;
        let held = node.read(|s| {
            s.vault
                .of_account(&account)
                .filter(|(_, t)| t.reserved_by.is_none())
                .any(|(_, t)| matches!(&t.token.encumbrance, Some(Encumbrance::Hold(h)) if h.event == event))
        });
        if !held {
            node.account(&account)?;
            return Err(ApiError::unprocessable(
                "nothing_held",
                format!("{account} holds no funds for event {event} (or they are in flight)"),
            ));
        }
        Ok(node.unhold(&account, &event, expire).await?)
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/holds", tag = "programmable", params(("id" = String, Path, description = "Account id")),
    description = "The DA's held funds, grouped by event.",
    responses((status = 200, body = Vec<HeldView>), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn account_holds(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<HeldView>>, ApiError> {
    let node = state.node_of(&caller)?;
    let account = own_account(node.id().as_str(), &id)?;
    node.account(&account)?;
    let groups = node.read(|s| {
        let mut groups: BTreeMap<String, HeldView> = BTreeMap::new();
        for (_, stored) in s.vault.of_account(&account) {
            let Some(Encumbrance::Hold(h)) = &stored.token.encumbrance else { continue };
            let entry = groups.entry(h.event.to_string()).or_insert_with(|| HeldView {
                event: h.event.to_string(),
                recipient: h.recipient.to_string(),
                recipient_node: h.recipient_node.to_string(),
                valid_until_ms: h.valid_until.millis(),
                valid_until: astana(h.valid_until),
                kind: match h.kind {
                    HoldKind::Single => HoldKindDto::Single,
                    HoldKind::Recurring => HoldKindDto::Recurring,
                },
                amount_tiyn: 0,
                amount: String::new(),
                in_flight_tiyn: 0,
                tokens: 0,
            });
            let tiyn = stored.token.amount.tiyn();
            let what = format!("the funds held for event {}", h.event);
            entry.amount_tiyn = add_tiyn(entry.amount_tiyn, tiyn, &what)?;
            if stored.reserved_by.is_some() {
                entry.in_flight_tiyn = add_tiyn(entry.in_flight_tiyn, tiyn, &what)?;
            }
            entry.tokens = entry.tokens.saturating_add(1); // a count, not money
        }
        Ok::<_, ApiError>(groups)
    })?;
    Ok(Json(
        groups
            .into_values()
            .map(|mut v| {
                v.amount = Amount::from_tiyn(v.amount_tiyn).to_string();
                v
            })
            .collect(),
    ))
}

// ----------------------------------------------------------------------
// Marking (SPEC §4.2)

#[utoipa::path(post, path = "/api/v1/markings/address", tag = "programmable", request_body = MarkAddressRequest,
    description = "Treasury only: pays the recipient tokens marked by address. The marked funds move only to an allowed recipient of the next level and within the level's limit; at the last level the marking is removed. Every transfer is copied to the Treasury node.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn mark_address(
    State(state): State<Shared>,
    req: Signed<MarkAddressRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let recipient = PayTo {
            address: address(&body.recipient, "recipient")?,
            amount: positive_amount(body.amount_tiyn, "amount_tiyn")?,
        };
        let reference: MarkingRef = text_id(&body.reference, "reference")?;
        if body.levels.is_empty() {
            return Err(ApiError::bad_request("bad_levels", "levels: name at least one level of allowed recipients"));
        }
        let mut levels = Vec::with_capacity(body.levels.len());
        for (i, level) in body.levels.iter().enumerate() {
            if level.recipients.is_empty() {
                return Err(ApiError::bad_request("bad_levels", format!("levels[{i}].recipients: name at least one")));
            }
            let recipients = level
                .recipients
                .iter()
                .enumerate()
                .map(|(j, a)| address(a, &format!("levels[{i}].recipients[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            levels.push(MarkingLevel {
                recipients: BoundedVec::new(recipients)
                    .map_err(|e| ApiError::bad_request("bad_levels", format!("levels[{i}].recipients: {e}")))?,
                limit: positive_amount(level.limit_tiyn, &format!("levels[{i}].limit_tiyn"))?,
            });
        }
        let levels =
            BoundedVec::new(levels).map_err(|e| ApiError::bad_request("bad_levels", format!("levels: {e}")))?;
        let initiator = node.account(&account)?.address;
        let rule = MarkingRule { reference, initiator, initiator_node: node.id().clone(), levels };
        Ok(node.mark_address(&account, recipient, rule, memo(&body.memo)?).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/markings/parameter", tag = "programmable", request_body = MarkParameterRequest,
    description = "Pays the recipient tokens marked with a parameter registered by the Smart Contract Portal; they then move only under its contracts, with the oracle's attestation.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn mark_parameter(
    State(state): State<Shared>,
    req: Signed<MarkParameterRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let recipient = PayTo {
            address: address(&body.recipient, "recipient")?,
            amount: positive_amount(body.amount_tiyn, "amount_tiyn")?,
        };
        let parameter: ParameterId = text_id(&body.parameter, "parameter")?;
        Ok(node.mark_parameter(&account, recipient, parameter, memo(&body.memo)?).await?)
    })
    .await
}

fn payees(to: &[AddressPayee]) -> Result<Vec<PayTo>, ApiError> {
    if to.is_empty() {
        return Err(ApiError::bad_request("no_recipients", "to: name at least one recipient"));
    }
    to.iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(PayTo {
                address: address(&p.address, &format!("to[{i}].address"))?,
                amount: positive_amount(p.amount_tiyn, &format!("to[{i}].amount_tiyn"))?,
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/api/v1/transfers/marked", tag = "programmable", request_body = MarkedTransferRequest,
    description = "Pays address-marked funds to allowed recipients of the next level. A recipient the marking does not allow, or an amount beyond the level's limit, is refused (422, code `rule_<n>` naming the kernel rule) and the funds stay.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn marked_transfer(
    State(state): State<Shared>,
    req: Signed<MarkedTransferRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let from = own_account(node.id().as_str(), &body.from)?;
        let to = payees(&body.to)?;
        if let Some(r) = &body.reference {
            text_id::<MarkingRef>(r, "reference")?;
        }
        Ok(node.pay_marked(&from, &to, body.reference.as_deref(), memo(&body.memo)?).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/contract-payments", tag = "programmable", request_body = ContractPaymentRequest,
    description = "Pays parameter-marked funds under a contract registered on the oracle, which attests it within the contract's cumulative maxima.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn contract_payment(
    State(state): State<Shared>,
    req: Signed<ContractPaymentRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let parameter: ParameterId = text_id(&body.parameter, "parameter")?;
        let contract: ContractNo = text_id(&body.contract, "contract")?;
        let recipient = PayTo {
            address: address(&body.recipient, "recipient")?,
            amount: positive_amount(body.amount_tiyn, "amount_tiyn")?,
        };
        Ok(node.contract_payment(&account, parameter, contract, recipient, body.cash_out, memo(&body.memo)?).await?)
    })
    .await
}

// ----------------------------------------------------------------------
// VAT (SPEC §4.2.3)

#[utoipa::path(post, path = "/api/v1/invoices/{id}/pay", tag = "programmable", request_body = AccountRef,
    params(("id" = String, Path, description = "E-invoice id")),
    description = "Pays an e-invoice registered by the tax service: the seller receives the net amount as standard tokens and the VAT as VAT-marked tokens; the payer's own VAT tokens are used first.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn pay_invoice(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<AccountRef>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let invoice: InvoiceId = text_id(&id, "invoice id")?;
        Ok(node.pay_invoice(&account, invoice).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/vat-payments", tag = "programmable", request_body = VatPaymentRequest,
    description = "Pays VAT-marked tokens to the tax authority's DA, where they become standard.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn pay_vat(
    State(state): State<Shared>,
    req: Signed<VatPaymentRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let amount = positive_amount(body.amount_tiyn, "amount_tiyn")?;
        Ok(node.pay_vat(&account, amount).await?)
    })
    .await
}

// ----------------------------------------------------------------------
// Debit mandates (SPEC §4.4, "Cryptocard")

#[utoipa::path(post, path = "/api/v1/mandates", tag = "programmable", request_body = GrantMandateRequest,
    description = "Reserves funds of the owner's DA that the grantee may debit until valid-until.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn grant_mandate(
    State(state): State<Shared>,
    req: Signed<GrantMandateRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let now = state.platform.clock.now();
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let mandate: MandateId = text_id(&body.mandate, "mandate")?;
        let grantee = address(&body.grantee, "grantee")?;
        let amount = positive_amount(body.amount_tiyn, "amount_tiyn")?;
        let valid_until = future_ms(body.valid_until_ms, "valid_until_ms", now)?;
        Ok(node.grant_mandate(&account, mandate, grantee, amount, valid_until).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/mandates/{mandate}/debit", tag = "programmable", request_body = DebitRequest,
    params(("mandate" = String, Path, description = "Mandate id")),
    description = "The grantee debits the owner's reserved funds to a DA, e.g. per card authorisation.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn debit(
    State(state): State<Shared>,
    ApiPath(mandate): ApiPath<String>,
    req: Signed<DebitRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let grantee = own_account(node.id().as_str(), &body.grantee_account)?;
        let owner = own_account(node.id().as_str(), &body.owner_account)?;
        let mandate: MandateId = text_id(&mandate, "mandate")?;
        let to = PayTo { address: address(&body.to, "to")?, amount: positive_amount(body.amount_tiyn, "amount_tiyn")? };
        Ok(node.debit(&grantee, &owner, &mandate, to, memo(&body.memo)?).await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/mandates/{mandate}/revoke", tag = "programmable", request_body = AccountRef,
    params(("mandate" = String, Path, description = "Mandate id")),
    description = "The owner takes the mandate's reserved funds back as standard tokens.",
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn revoke_mandate(
    State(state): State<Shared>,
    ApiPath(mandate): ApiPath<String>,
    req: Signed<AccountRef>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let account = own_account(node.id().as_str(), &body.account)?;
        let mandate: MandateId = text_id(&mandate, "mandate")?;
        let reserved = node.read(|s| {
            s.vault
                .of_account(&account)
                .any(|(_, t)| matches!(&t.token.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == mandate))
        });
        if !reserved {
            node.account(&account)?;
            return Err(ApiError::unprocessable(
                "nothing_reserved",
                format!("{account} has no funds reserved under mandate {mandate}"),
            ));
        }
        Ok(node.revoke_mandate(&account, &mandate).await?)
    })
    .await
}

// ----------------------------------------------------------------------
// PvP (SPEC §9)

#[utoipa::path(post, path = "/api/v1/pvp", tag = "programmable", request_body = PvpRequest,
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn pvp(
    State(state): State<Shared>,
    req: Signed<PvpRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    outcome(async {
        let from = own_account(node.id().as_str(), &body.account)?;
        let counterparty = crate::dto::address(&body.counterparty, "counterparty")?;
        let currency = |text: &str, field: &str| {
            dtenge_types::Currency::new(text)
                .map_err(|e| ApiError::bad_request("bad_currency", format!("{field}: {e}")))
        };
        let (base, quote) = (currency(&body.base, "base")?, currency(&body.quote, "quote")?);
        if base == quote {
            return Err(ApiError::bad_request("bad_currency", "base and quote must differ"));
        }
        let amount = crate::dto::positive_amount(body.amount_tiyn, "amount_tiyn")?;
        Ok(node.pvp(&from, counterparty, base, amount, quote).await?)
    })
    .await
}
