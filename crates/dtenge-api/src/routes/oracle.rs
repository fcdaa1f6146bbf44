//! The oracle's registries for event providers (SPEC §1, §4, §9): events
//! (single, recurring, campaigns) with occurrences and cancellations, marking
//! parameters and contracts, e-invoices, FX rates; and, for NBK, the list of
//! providers and what each may write.
//!
//! A provider's request is sent to the oracle over the platform's bus as the
//! provider itself (signed with its key), so the oracle decides which
//! registries it may write, exactly as for a provider connected directly.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_net::{BusExt, HandlerError, NetError, Role};
use dtenge_oracle::model::{
    Contract, ContractAmendment, ContractState, EventKind, EventSpec, EventState, EventStatus, FxRate, Invoice,
    InvoiceState, RateState, Registry,
};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::ids;
use dtenge_types::{Amount, ContractNo, Currency, EventId, InvoiceId, ParameterId, ParticipantId, Timestamp};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use dtenge_api_types::{
    AmendRequest, ContractRequest, ContractView, Empty, EventKindDto, EventRequest, EventView, InvoiceRequest,
    InvoiceView, ListQuery, OccurrenceRequest, Page, ParameterRequest, ProviderRequest, RateRequest, RateView,
    RegistryDto,
};

use crate::dto::{address, astana, page, positive_amount, total_overflow};
use crate::error::ApiError;
use crate::routes::programmable::{future_ms, text_id};
use crate::state::{ApiPath, ApiQuery, AppState, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(register_provider))
        .routes(routes!(register_event, list_events))
        .routes(routes!(get_event))
        .routes(routes!(report_occurrence))
        .routes(routes!(cancel_event))
        .routes(routes!(register_parameter))
        .routes(routes!(register_contract))
        .routes(routes!(get_contract))
        .routes(routes!(amend_contract))
        .routes(routes!(register_invoice))
        .routes(routes!(get_invoice))
        .routes(routes!(set_rate))
        .routes(routes!(get_rate))
}

fn registry(r: RegistryDto) -> Registry {
    match r {
        RegistryDto::Events => Registry::Events,
        RegistryDto::Parameters => Registry::Parameters,
        RegistryDto::Invoices => Registry::Invoices,
        RegistryDto::Fx => Registry::Fx,
    }
}

fn status_name(s: EventStatus) -> &'static str {
    match s {
        EventStatus::Open => "open",
        EventStatus::Cancelled => "cancelled",
        EventStatus::CampaignSucceeded => "campaign_succeeded",
        EventStatus::CampaignFailed => "campaign_failed",
    }
}

/// An event on the wire.
pub fn event_view(e: &EventState) -> Result<EventView, ApiError> {
    let s = &e.spec;
    let (kind, target) = match s.kind {
        EventKind::Single => (EventKindDto::Single, None),
        EventKind::Recurring => (EventKindDto::Recurring, None),
        EventKind::Campaign { target } => (EventKindDto::Campaign, Some(target.tiyn())),
    };
    let id = &s.id;
    let sum = |amounts: &mut dyn Iterator<Item = Amount>, what: &str| {
        Amount::checked_sum(amounts).ok_or_else(|| total_overflow(&format!("{what} of event {id}")))
    };
    let pending_holds = sum(&mut e.pending_holds.values().map(|h| h.amount), "the holds being made")?;
    let held = sum(&mut e.holds.values().map(|h| h.amount), "the funds held")?;
    let released = sum(&mut e.releases.values().map(|h| h.amount), "the funds released")?;
    let pending_releases = sum(&mut e.pending_releases.values().map(|h| h.amount), "the releases being made")?;
    Ok(EventView {
        id: s.id.to_string(),
        kind,
        target_tiyn: target,
        sender: s.sender.map(|a| a.to_string()),
        sender_node: s.sender_node.as_ref().map(|n| n.to_string()),
        recipient: s.recipient.to_string(),
        recipient_node: s.recipient_node.to_string(),
        amount_tiyn: s.amount.map(Amount::tiyn),
        valid_until_ms: s.valid_until.millis(),
        valid_until: astana(s.valid_until),
        provider: e.provider.to_string(),
        status: status_name(e.status).into(),
        occurred_tiyn: e.occurred.tiyn(),
        held_tiyn: held.tiyn(),
        released_tiyn: released.tiyn(),
        releasable_tiyn: e.releasable().tiyn(),
        pending_holds_tiyn: pending_holds.tiyn(),
        pending_releases_tiyn: pending_releases.tiyn(),
    })
}

/// A contract on the wire.
pub fn contract_view(c: &ContractState) -> ContractView {
    let k = &c.contract;
    ContractView {
        number: k.number.to_string(),
        parameter: k.parameter.to_string(),
        sender: k.sender.to_string(),
        recipient: k.recipient.to_string(),
        max_transfer_tiyn: k.max_transfer.tiyn(),
        max_cashout_tiyn: k.max_cashout.tiyn(),
        valid_until_ms: k.valid_until.millis(),
        valid_until: astana(k.valid_until),
        final_recipient: k.final_recipient,
        provider: c.provider.to_string(),
        transferred_tiyn: c.transferred.confirmed.tiyn(),
        transfer_reserved_tiyn: c.transferred.reserved.tiyn(),
        // What is left is never below zero: an amendment may lower the maximum under what was used.
        transfer_remaining_tiyn: k.max_transfer.saturating_sub(c.transferred.used()).tiyn(),
        cashed_out_tiyn: c.cashed_out.confirmed.tiyn(),
        cashout_reserved_tiyn: c.cashed_out.reserved.tiyn(),
        cashout_remaining_tiyn: k.max_cashout.saturating_sub(c.cashed_out.used()).tiyn(),
    }
}

/// An e-invoice on the wire.
pub fn invoice_view(s: &InvoiceState) -> Result<InvoiceView, ApiError> {
    let i = &s.invoice;
    // The oracle refuses to register an invoice whose total does not fit (`OracleError::Overflow`).
    let total = i.net.checked_add(i.vat).ok_or_else(|| total_overflow(&format!("the total of e-invoice {}", i.id)))?;
    let state = match (&s.paid_by, &s.reserved_by) {
        (Some(_), _) => "paid",
        (None, Some(_)) => "being_paid",
        (None, None) => "unpaid",
    };
    Ok(InvoiceView {
        id: i.id.to_string(),
        seller: i.seller.to_string(),
        buyer: i.buyer.to_string(),
        net_tiyn: i.net.tiyn(),
        vat_tiyn: i.vat.tiyn(),
        total_tiyn: total.tiyn(),
        total: total.to_string(),
        provider: s.provider.to_string(),
        state: state.into(),
        paid: s.paid_by.is_some(),
        paid_by: s.paid_by.map(|t| t.to_string()),
        reserved_by: s.reserved_by.map(|t| t.to_string()),
    })
}

/// An exchange rate on the wire.
pub fn rate_view(r: &RateState) -> RateView {
    RateView {
        base: r.rate.base.to_string(),
        quote: r.rate.quote.to_string(),
        numerator: r.rate.numerator,
        denominator: r.rate.denominator,
        valid_until_ms: r.rate.valid_until.millis(),
        valid_until: astana(r.rate.valid_until),
        provider: r.provider.to_string(),
    }
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
}

/// Sends `request` to the oracle as the caller and returns its answer; a
/// refusal becomes an error.
pub(crate) async fn ask(state: &AppState, caller: &Caller, request: OracleRequest) -> Result<OracleAnswer, ApiError> {
    let bus = state.platform.bus(caller.id.as_str()).map_err(|e| unavailable(format!("{}: {e}", caller.id)))?;
    let oracle = ParticipantId::new(ids::ORACLE).map_err(|e| unavailable(e.to_string()))?;
    match bus.request(&oracle, &request).await {
        Ok(OracleAnswer::Refused(refusal)) => Err(refusal.into()),
        Ok(answer) => Ok(answer),
        Err(NetError::Refused(HandlerError::Forbidden(why))) => Err(ApiError::forbidden(why)),
        Err(NetError::Refused(HandlerError::BadRequest(why))) => Err(ApiError::bad_request("invalid", why)),
        Err(NetError::Decode(why)) => Err(unavailable(format!("the oracle's answer does not decode: {why}"))),
        Err(other) => Err(unavailable(format!("the oracle did not answer: {other}"))),
    }
}

fn created<T: Serialize>(view: &T) -> Result<(StatusCode, serde_json::Value), ApiError> {
    Ok((StatusCode::CREATED, serde_json::to_value(view).unwrap_or_default()))
}

// ----------------------------------------------------------------------
// Providers

#[utoipa::path(post, path = "/api/v1/oracle/providers", tag = "oracle", request_body = ProviderRequest,
    description = "NBK only: registers an event provider on the oracle, or replaces its name and registries.",
    responses((status = 201, body = ProviderRequest), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn register_provider(
    State(state): State<Shared>,
    req: Signed<ProviderRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let (status, json) = async {
        let id =
            ParticipantId::new(body.id.clone()).map_err(|e| ApiError::bad_request("bad_id", format!("id: {e}")))?;
        match state.platform.participants().get(&id) {
            Some(p) if p.role == Role::Provider => {}
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "not_a_provider",
                    format!("id: {id} is a registered participant but not an event provider"),
                ));
            }
            None => {
                return Err(ApiError::unprocessable(
                    "unknown_participant",
                    format!("id: {id} is not a participant of this platform; add it to platform.json first"),
                ));
            }
        }
        if body.name.trim().is_empty() {
            return Err(ApiError::bad_request("bad_name", "name must not be empty"));
        }
        let registries: BTreeSet<Registry> = body.registries.iter().map(|r| registry(*r)).collect();
        let request = OracleRequest::RegisterProvider { id, name: body.name.trim().to_string(), registries };
        ask(&state, &caller, request).await?;
        created(&body)
    }
    .await?;
    Ok((status, Json(json)))
}

// ----------------------------------------------------------------------
// Events

fn participant(text: &str, field: &str) -> Result<ParticipantId, ApiError> {
    ParticipantId::new(text).map_err(|e| ApiError::bad_request("bad_participant", format!("{field}: {e}")))
}

fn event_spec(body: &EventRequest, now: Timestamp) -> Result<EventSpec, ApiError> {
    let id: EventId = text_id(&body.id, "id")?;
    let kind = match (body.kind, body.target_tiyn) {
        (EventKindDto::Campaign, Some(t)) => EventKind::Campaign { target: positive_amount(t, "target_tiyn")? },
        (EventKindDto::Campaign, None) => {
            return Err(ApiError::bad_request("bad_amount", "target_tiyn: a campaign needs a target"));
        }
        (_, Some(_)) => return Err(ApiError::bad_request("bad_amount", "target_tiyn: only a campaign has a target")),
        (EventKindDto::Single, None) => EventKind::Single,
        (EventKindDto::Recurring, None) => EventKind::Recurring,
    };
    let amount = match (kind, body.amount_tiyn) {
        (EventKind::Campaign { .. }, Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_amount",
                "amount_tiyn: a campaign has no fixed amount; each contribution names its own",
            ));
        }
        (EventKind::Campaign { .. }, None) => None,
        (_, Some(a)) => Some(positive_amount(a, "amount_tiyn")?),
        (_, None) => return Err(ApiError::bad_request("bad_amount", "amount_tiyn: the amount to hold is required")),
    };
    Ok(EventSpec {
        id,
        kind,
        sender: body.sender.as_deref().map(|a| address(a, "sender")).transpose()?,
        sender_node: body.sender_node.as_deref().map(|n| participant(n, "sender_node")).transpose()?,
        recipient: address(&body.recipient, "recipient")?,
        recipient_node: participant(&body.recipient_node, "recipient_node")?,
        amount,
        valid_until: future_ms(body.valid_until_ms, "valid_until_ms", now)?,
    })
}

async fn fetch_event(state: &AppState, caller: &Caller, id: &EventId) -> Result<EventState, ApiError> {
    match ask(state, caller, OracleRequest::GetEvent(id.clone())).await? {
        OracleAnswer::Event(Some(e)) => Ok(e),
        OracleAnswer::Event(None) => Err(ApiError::not_found(format!("event {id} is not registered on the oracle"))),
        _ => Err(unavailable("the oracle answered something else")),
    }
}

/// Whether `caller` may see an event: its provider, NBK, the nodes it names,
/// and for a campaign (anyone may contribute) every node.
fn sees_event(caller: &Caller, e: &EventState) -> bool {
    match caller.role {
        Role::Provider => e.provider == caller.id,
        Role::Nbk => true,
        Role::Stb | Role::Treasury | Role::CounterpartyCentralBank | Role::StablecoinIssuer => {
            e.spec.kind.is_campaign()
                || e.spec.recipient_node == caller.id
                || e.spec.sender_node.as_ref() == Some(&caller.id)
        }
        _ => false,
    }
}

/// An event that the caller (a provider) registered itself; another provider's is 403.
async fn own_event(state: &AppState, caller: &Caller, id: &str) -> Result<EventId, ApiError> {
    let id: EventId = text_id(id, "event id")?;
    let e = fetch_event(state, caller, &id).await?;
    if e.provider != caller.id {
        return Err(ApiError::forbidden(format!("event {id} was registered by {}, not by {}", e.provider, caller.id)));
    }
    Ok(id)
}

#[utoipa::path(post, path = "/api/v1/oracle/events", tag = "oracle", request_body = EventRequest,
    description = "Provider (events registry): registers an event for holds; the sender's and recipient's nodes are told.",
    responses((status = 201, body = EventView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn register_event(
    State(state): State<Shared>,
    req: Signed<EventRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let now = state.platform.clock.now();
    let (status, json) = async {
        let spec = event_spec(&body, now)?;
        let id = spec.id.clone();
        ask(&state, &caller, OracleRequest::RegisterEvent(spec)).await?;
        created(&event_view(&fetch_event(&state, &caller, &id).await?)?)
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/oracle/events", tag = "oracle", params(ListQuery),
    description = "Events the caller may see (a provider: its own; a bank or the Treasury: those naming its node, and campaigns; NBK: all), newest deadline first. `status` filters by event status, `type` by kind, the period by valid-until.",
    responses((status = 200, body = Page<EventView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_events(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let OracleAnswer::Events(events) = ask(&state, &caller, OracleRequest::ListEvents).await? else {
        return Err(unavailable("the oracle answered something else"));
    };
    let views: Vec<EventView> =
        events.iter().filter(|e| sees_event(&caller, e)).map(event_view).collect::<Result<_, _>>()?;
    let mut items: Vec<EventView> = views
        .into_iter()
        .filter(|v| {
            q.in_period(v.valid_until_ms)
                && q.status.as_deref().is_none_or(|s| s == v.status)
                && q.kind.as_deref().is_none_or(|k| {
                    serde_json::to_value(v.kind).ok().and_then(|j| j.as_str().map(|s| s == k)).unwrap_or(false)
                })
        })
        .collect();
    items.sort_by(|a, b| b.valid_until_ms.cmp(&a.valid_until_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(Json(page(&q, items)?))
}

#[utoipa::path(get, path = "/api/v1/oracle/events/{id}", tag = "oracle", params(("id" = String, Path, description = "Event id")),
    description = "An event with its status and the amounts held, released and releasable.",
    responses((status = 200, body = EventView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_event(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventView>, ApiError> {
    let id: EventId = text_id(&id, "event id")?;
    let e = fetch_event(&state, &caller, &id).await?;
    if !sees_event(&caller, &e) {
        return Err(ApiError::forbidden(format!("event {id} concerns neither {} nor its node", caller.id)));
    }
    Ok(Json(event_view(&e)?))
}

#[utoipa::path(post, path = "/api/v1/oracle/events/{id}/occurrences", tag = "oracle", request_body(content = OccurrenceRequest, description = "May be omitted"),
    params(("id" = String, Path, description = "Event id")),
    description = "The provider that registered the event reports that it occurred; the nodes holding funds release them on their next round.",
    responses((status = 200, body = EventView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn report_occurrence(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Option<OccurrenceRequest>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body.unwrap_or_default();
    let caller = req.caller.clone();
    let (status, json) = async {
        let amount = body.amount_tiyn.map(|a| positive_amount(a, "amount_tiyn")).transpose()?;
        let event = own_event(&state, &caller, &id).await?;
        ask(&state, &caller, OracleRequest::ReportOccurrence { event: event.clone(), amount }).await?;
        let view = event_view(&fetch_event(&state, &caller, &event).await?)?;
        Ok::<_, ApiError>((StatusCode::OK, serde_json::to_value(view).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(post, path = "/api/v1/oracle/events/{id}/cancel", tag = "oracle", params(("id" = String, Path, description = "Event id")),
    description = "The provider that registered the event cancels it before it occurred; held funds return to their owners.",
    responses((status = 200, body = EventView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn cancel_event(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Option<Empty>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let caller = req.caller.clone();
    let (status, json) = async {
        let event = own_event(&state, &caller, &id).await?;
        ask(&state, &caller, OracleRequest::CancelEvent { event: event.clone() }).await?;
        let view = event_view(&fetch_event(&state, &caller, &event).await?)?;
        Ok::<_, ApiError>((StatusCode::OK, serde_json::to_value(view).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

// ----------------------------------------------------------------------
// Parameters and contracts

#[utoipa::path(post, path = "/api/v1/oracle/parameters", tag = "oracle", request_body = ParameterRequest,
    description = "Provider (parameters registry, the Smart Contract Portal): registers a marking parameter; the initiator's node is told.",
    responses((status = 201, body = ParameterRequest), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn register_parameter(
    State(state): State<Shared>,
    req: Signed<ParameterRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let (status, json) = async {
        let request = OracleRequest::RegisterParameter {
            id: text_id::<ParameterId>(&body.id, "id")?,
            initiator: address(&body.initiator, "initiator")?,
            initiator_node: participant(&body.initiator_node, "initiator_node")?,
            title: body.title.trim().to_string(),
        };
        ask(&state, &caller, request).await?;
        created(&body)
    }
    .await?;
    Ok((status, Json(json)))
}

async fn fetch_contract(
    state: &AppState,
    caller: &Caller,
    parameter: &ParameterId,
    contract: &ContractNo,
) -> Result<ContractState, ApiError> {
    let request = OracleRequest::GetContract { parameter: parameter.clone(), contract: contract.clone() };
    match ask(state, caller, request).await? {
        OracleAnswer::Contract(Some(c)) => Ok(c),
        OracleAnswer::Contract(None) => {
            Err(ApiError::not_found(format!("contract {contract} is not registered under parameter {parameter}")))
        }
        _ => Err(unavailable("the oracle answered something else")),
    }
}

#[utoipa::path(post, path = "/api/v1/oracle/contracts", tag = "oracle", request_body = ContractRequest,
    description = "Provider (parameters registry): registers a contract under a parameter it registered.",
    responses((status = 201, body = ContractView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn register_contract(
    State(state): State<Shared>,
    req: Signed<ContractRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let now = state.platform.clock.now();
    let (status, json) = async {
        let contract = Contract {
            number: text_id(&body.number, "number")?,
            parameter: text_id(&body.parameter, "parameter")?,
            sender: address(&body.sender, "sender")?,
            recipient: address(&body.recipient, "recipient")?,
            max_transfer: positive_amount(body.max_transfer_tiyn, "max_transfer_tiyn")?,
            max_cashout: Amount::from_tiyn(body.max_cashout_tiyn),
            valid_until: future_ms(body.valid_until_ms, "valid_until_ms", now)?,
            final_recipient: body.final_recipient,
        };
        let (parameter, number) = (contract.parameter.clone(), contract.number.clone());
        ask(&state, &caller, OracleRequest::RegisterContract(contract)).await?;
        created(&contract_view(&fetch_contract(&state, &caller, &parameter, &number).await?))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(post, path = "/api/v1/oracle/contracts/{parameter}/{number}/amend", tag = "oracle", request_body = AmendRequest,
    params(("parameter" = String, Path, description = "Marking parameter"), ("number" = String, Path, description = "Contract number")),
    description = "The provider that registered the contract changes its maxima and duration; maxima cannot fall below what is already used.",
    responses((status = 200, body = ContractView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn amend_contract(
    State(state): State<Shared>,
    ApiPath((parameter, number)): ApiPath<(String, String)>,
    req: Signed<AmendRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let now = state.platform.clock.now();
    let (status, json) = async {
        let parameter: ParameterId = text_id(&parameter, "parameter")?;
        let contract: ContractNo = text_id(&number, "number")?;
        let amendment = ContractAmendment {
            max_transfer: positive_amount(body.max_transfer_tiyn, "max_transfer_tiyn")?,
            max_cashout: Amount::from_tiyn(body.max_cashout_tiyn),
            valid_until: future_ms(body.valid_until_ms, "valid_until_ms", now)?,
        };
        let current = fetch_contract(&state, &caller, &parameter, &contract).await?;
        if current.provider != caller.id {
            return Err(ApiError::forbidden(format!(
                "contract {contract} under {parameter} was registered by {}, not by {}",
                current.provider, caller.id
            )));
        }
        let request =
            OracleRequest::AmendContract { parameter: parameter.clone(), contract: contract.clone(), amendment };
        ask(&state, &caller, request).await?;
        let view = contract_view(&fetch_contract(&state, &caller, &parameter, &contract).await?);
        Ok((StatusCode::OK, serde_json::to_value(view).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/oracle/contracts/{parameter}/{number}", tag = "oracle",
    params(("parameter" = String, Path, description = "Marking parameter"), ("number" = String, Path, description = "Contract number")),
    description = "A contract with its cumulative transfers and cash-outs (for its provider and the participant nodes).",
    responses((status = 200, body = ContractView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_contract(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath((parameter, number)): ApiPath<(String, String)>,
) -> Result<Json<ContractView>, ApiError> {
    let parameter: ParameterId = text_id(&parameter, "parameter")?;
    let contract: ContractNo = text_id(&number, "number")?;
    let c = fetch_contract(&state, &caller, &parameter, &contract).await?;
    if !caller.role.is_node() && c.provider != caller.id {
        return Err(ApiError::forbidden(format!("contract {contract} was registered by {}", c.provider)));
    }
    Ok(Json(contract_view(&c)))
}

// ----------------------------------------------------------------------
// E-invoices

async fn fetch_invoice(state: &AppState, caller: &Caller, id: &InvoiceId) -> Result<InvoiceState, ApiError> {
    match ask(state, caller, OracleRequest::GetInvoice(id.clone())).await? {
        OracleAnswer::Invoice(Some(i)) => Ok(i),
        OracleAnswer::Invoice(None) => Err(ApiError::not_found(format!("e-invoice {id} is not registered"))),
        _ => Err(unavailable("the oracle answered something else")),
    }
}

#[utoipa::path(post, path = "/api/v1/oracle/invoices", tag = "oracle", request_body = InvoiceRequest,
    description = "Provider (invoices registry, the tax service): registers an e-invoice.",
    responses((status = 201, body = InvoiceView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn register_invoice(
    State(state): State<Shared>,
    req: Signed<InvoiceRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let (status, json) = async {
        if body.net_tiyn.checked_add(body.vat_tiyn).is_none_or(|t| t == 0) {
            return Err(ApiError::bad_request(
                "bad_amount",
                "net_tiyn, vat_tiyn: net plus VAT must be a positive number of tiyn",
            ));
        }
        let invoice = Invoice {
            id: text_id(&body.id, "id")?,
            seller: address(&body.seller, "seller")?,
            buyer: address(&body.buyer, "buyer")?,
            net: Amount::from_tiyn(body.net_tiyn),
            vat: Amount::from_tiyn(body.vat_tiyn),
        };
        let id = invoice.id.clone();
        ask(&state, &caller, OracleRequest::RegisterInvoice(invoice)).await?;
        created(&invoice_view(&fetch_invoice(&state, &caller, &id).await?)?)
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/oracle/invoices/{id}", tag = "oracle", params(("id" = String, Path, description = "E-invoice id")),
    description = "An e-invoice and whether it is paid (for its provider and the participant nodes).",
    responses((status = 200, body = InvoiceView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_invoice(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InvoiceView>, ApiError> {
    let id: InvoiceId = text_id(&id, "invoice id")?;
    let i = fetch_invoice(&state, &caller, &id).await?;
    if !caller.role.is_node() && i.provider != caller.id {
        return Err(ApiError::forbidden(format!("e-invoice {id} was registered by {}", i.provider)));
    }
    Ok(Json(invoice_view(&i)?))
}

// ----------------------------------------------------------------------
// FX rates

fn currency(text: &str, field: &str) -> Result<Currency, ApiError> {
    Currency::new(text).map_err(|e| ApiError::bad_request("bad_currency", format!("{field}: {e}")))
}

async fn fetch_rate(state: &AppState, caller: &Caller, base: Currency, quote: Currency) -> Result<RateState, ApiError> {
    match ask(state, caller, OracleRequest::GetRate { base, quote }).await? {
        OracleAnswer::Rate(Some(r)) => Ok(r),
        OracleAnswer::Rate(None) => Err(ApiError::not_found(format!("no current exchange rate {base}/{quote}"))),
        _ => Err(unavailable("the oracle answered something else")),
    }
}

#[utoipa::path(post, path = "/api/v1/oracle/fx-rates", tag = "oracle", request_body = RateRequest,
    description = "Provider (FX registry): sets the exchange rate between two currencies.",
    responses((status = 201, body = RateView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn set_rate(
    State(state): State<Shared>,
    req: Signed<RateRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = req.body;
    let caller = req.caller.clone();
    let now = state.platform.clock.now();
    let (status, json) = async {
        let base = currency(&body.base, "base")?;
        let quote = currency(&body.quote, "quote")?;
        if base == quote {
            return Err(ApiError::bad_request("bad_currency", "quote: must differ from base"));
        }
        if body.numerator == 0 || body.denominator == 0 {
            return Err(ApiError::bad_request("bad_rate", "numerator, denominator: both must be positive"));
        }
        let rate = FxRate {
            base,
            quote,
            numerator: body.numerator,
            denominator: body.denominator,
            valid_until: future_ms(body.valid_until_ms, "valid_until_ms", now)?,
        };
        ask(&state, &caller, OracleRequest::SetRate(rate)).await?;
        created(&rate_view(&fetch_rate(&state, &caller, base, quote).await?))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/oracle/fx-rates/{base}/{quote}", tag = "oracle",
    params(("base" = String, Path, description = "Currency given"), ("quote" = String, Path, description = "Currency received")),
    description = "The current exchange rate between two currencies.",
    responses((status = 200, body = RateView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_rate(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath((base, quote)): ApiPath<(String, String)>,
) -> Result<Json<RateView>, ApiError> {
    let base = currency(&base, "base")?;
    let quote = currency(&quote, "quote")?;
    Ok(Json(rate_view(&fetch_rate(&state, &caller, base, quote).await?)))
}
