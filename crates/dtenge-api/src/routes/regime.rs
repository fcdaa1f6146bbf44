//! The account regime (issue #9): KYC tiers and NBK's limits, linked bank
//! accounts for (reverse) waterfall, key rotation after re-identification,
//! closing a DA; enforcement orders of authorised bodies; and the
//! regulator's view for NBK (aggregates by bank and day, large payments,
//! marked-funds traceability — no names, no IINs).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_api_types::{
    BankAggregatesView, CloseBody, DEFAULT_THRESHOLD_TIYN, DayView, LargePaymentView, LimitsBody, LinkedTransferView,
    MarkedMoveView, MarkedReportView, NodeAnswerView, OrderActDto, OrderBody, OrderView, PolicyView, ProfileBody,
    ProfileView, RekeyBody, RekeyView, ReportQuery, TierDto, TierLimitsDto,
};
use dtenge_node::accounts::AccountId;
use dtenge_node::regime::{AccountProfile, LimitPolicy, LinkDirection, OrderEntry, Tier, TierLimits};
use dtenge_node::service::{BankReport, NodeService};
use dtenge_types::{Amount, EnforcementOrder, Memo, OrderAct, OrderRef, SignedOrder, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::dto::{address, astana, holder_kind_view, positive_amount};
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::state::{ApiPath, ApiQuery, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(get_profile, set_profile))
        .routes(routes!(rekey))
        .routes(routes!(close))
        .routes(routes!(get_limits))
        .routes(routes!(publish_limits))
        .routes(routes!(place_order, list_orders))
        .routes(routes!(aggregates))
        .routes(routes!(large_payments))
        .routes(routes!(marked_funds))
}

fn tier(t: TierDto) -> Tier {
    match t {
        TierDto::Simplified => Tier::Simplified,
        TierDto::Standard => Tier::Standard,
        TierDto::Full => Tier::Full,
    }
}

fn tier_view(t: Tier) -> TierDto {
    match t {
        Tier::Simplified => TierDto::Simplified,
        Tier::Standard => TierDto::Standard,
        Tier::Full => TierDto::Full,
    }
}

fn tier_limits_view(l: &TierLimits) -> TierLimitsDto {
    TierLimitsDto {
        max_balance_tiyn: l.max_balance.tiyn(),
        per_payment_tiyn: l.per_payment.tiyn(),
        daily_outgoing_tiyn: l.daily_outgoing.tiyn(),
    }
}

fn tier_limits(l: &TierLimitsDto) -> TierLimits {
    TierLimits {
        max_balance: Amount::from_tiyn(l.max_balance_tiyn),
        per_payment: Amount::from_tiyn(l.per_payment_tiyn),
        daily_outgoing: Amount::from_tiyn(l.daily_outgoing_tiyn),
    }
}

fn policy_view(p: &LimitPolicy, nodes: Vec<NodeAnswerView>) -> PolicyView {
    PolicyView {
        version: p.version,
        limits: LimitsBody {
            simplified: tier_limits_view(&p.simplified),
            standard: tier_limits_view(&p.standard),
            full: tier_limits_view(&p.full),
        },
        published_at_ms: p.published_at.millis(),
        published_at: astana(p.published_at),
        nodes,
    }
}

/// The order a body describes, signed by the caller's key `authority`.
fn order_of(body: &OrderBody, authority: dtenge_crypto::PublicKey) -> Result<EnforcementOrder, ApiError> {
    let bad = |code: &str, e: String| ApiError::bad_request(code, e);
    let act = match &body.act {
        OrderActDto::Freeze => OrderAct::Freeze,
        OrderActDto::Arrest { amount_tiyn } => {
            OrderAct::Arrest { amount: positive_amount(*amount_tiyn, "amount_tiyn")? }
        }
        OrderActDto::Collect { amount_tiyn, beneficiary } => OrderAct::Collect {
            amount: positive_amount(*amount_tiyn, "amount_tiyn")?,
            beneficiary: address(beneficiary, "beneficiary")?,
        },
        OrderActDto::Lift { order } => {
            OrderAct::Lift { order: OrderRef::new(order.clone()).map_err(|e| bad("bad_reference", e.to_string()))? }
        }
    };
    Ok(EnforcementOrder {
        reference: OrderRef::new(body.reference.clone()).map_err(|e| bad("bad_reference", e.to_string()))?,
        authority,
        debtor: address(&body.debtor, "debtor")?,
        act,
        reason: Memo::new(body.reason.clone()).map_err(|e| bad("bad_reason", e.to_string()))?,
        issued_at: Timestamp(body.issued_at_ms),
    })
}

fn profile_view(node: &NodeService, id: &AccountId) -> Result<ProfileView, ApiError> {
    let account = node.account(id)?;
    let now = node.clock().now();
    node.read(|s| {
        let profile: AccountProfile = s.profile(id);
        let individual = account.holder.kind == dtenge_node::accounts::HolderKind::Individual;
        let limits = s.policy.as_ref().filter(|_| individual).map(|p| tier_limits_view(p.limits(profile.tier)));
        let active = s.active_orders(id);
        Ok(ProfileView {
            account: id.to_string(),
            address: account.address.to_string(),
            closed: account.closed,
            kind: holder_kind_view(account.holder.kind),
            tier: tier_view(profile.tier),
            limits,
            spent_today_tiyn: s.spent_on_day(id, now).tiyn(),
            linked_bank_account: profile.linked_bank_account.clone(),
            frozen: active.iter().any(|e| matches!(e.signed.order.act, OrderAct::Freeze)),
            arrested_tiyn: s.arrested(id)?.tiyn(),
            linked_transfers: s
                .linked
                .iter()
                .rev()
                .filter(|t| t.account == *id)
                .map(|t| LinkedTransferView {
                    direction: match t.direction {
                        LinkDirection::ToBankAccount => "to_bank_account".into(),
                        LinkDirection::FromBankAccount => "from_bank_account".into(),
                    },
                    amount_tiyn: t.amount.tiyn(),
                    bank_account: t.bank_account.clone(),
                    tx: t.tx.to_string(),
                    at_ms: t.at.millis(),
                    reason: t.reason.clone(),
                })
                .collect(),
            revoked_keys: s.revoked.iter().filter(|(_, a)| *a == id).map(|(k, _)| k.to_string()).collect(),
        })
    })
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/profile", tag = "accounts", params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = ProfileView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_profile(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProfileView>, ApiError> {
    let node = state.node_of(&caller)?;
    let id = own_account(node.id().as_str(), &id)?;
    Ok(Json(profile_view(&node, &id)?))
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/profile", tag = "accounts", request_body = ProfileBody, params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = ProfileView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn set_profile(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<ProfileBody>,
) -> Result<Json<ProfileView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let id = own_account(node.id().as_str(), &id)?;
    let body = req.body;
    if body.unlink && body.linked_bank_account.is_some() {
        return Err(ApiError::bad_request("bad_profile", "give linked_bank_account or unlink, not both"));
    }
    let linked = if body.unlink { Some(None) } else { body.linked_bank_account.map(Some) };
    node.set_profile(&id, body.tier.map(tier), linked).await?;
    Ok(Json(profile_view(&node, &id)?))
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/rekey", tag = "accounts", request_body = RekeyBody, params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = RekeyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn rekey(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<RekeyBody>,
) -> Result<Json<RekeyView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let id = own_account(node.id().as_str(), &id)?;
    let old = node.account(&id)?.address;
    let client = match (&req.body.client_public_key, &req.body.proof) {
        (Some(k), Some(p)) => Some((
            k.parse().map_err(|e| ApiError::bad_request("bad_key", format!("client_public_key: {e}")))?,
            p.parse().map_err(|_| ApiError::bad_request("bad_proof", "proof must be 128 hex characters"))?,
        )),
        (None, None) => None,
        _ => return Err(ApiError::bad_request("bad_rekey", "a client key needs its proof, and a proof its key")),
    };
    let (account, txs) = node.rekey(&id, client, &req.body.reidentification).await?;
    Ok(Json(RekeyView {
        account: id.to_string(),
        old_address: old.to_string(),
        new_address: account.address.to_string(),
        txs: txs.iter().map(|t| t.to_string()).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/close", tag = "accounts", request_body = CloseBody, params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = ProfileView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn close(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<CloseBody>,
) -> Result<Json<ProfileView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let id = own_account(node.id().as_str(), &id)?;
    node.close_account(&id, req.body.convert_out).await?;
    Ok(Json(profile_view(&node, &id)?))
}

#[utoipa::path(get, path = "/api/v1/limits", tag = "accounts",
    responses((status = 200, body = PolicyView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_limits(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PolicyView>, ApiError> {
    let node = state.node_of(&caller)?;
    let policy = node.read(|s| s.policy.clone());
    match policy {
        Some(p) => Ok(Json(policy_view(&p, Vec::new()))),
        None => Err(ApiError::not_found("NBK has not published a limit policy yet")),
    }
}

#[utoipa::path(post, path = "/api/v1/nbk/limits", tag = "nbk", request_body = LimitsBody,
    responses((status = 201, body = PolicyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn publish_limits(
    State(state): State<Shared>,
    req: Signed<LimitsBody>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let policy = LimitPolicy {
        version: 0,
        simplified: tier_limits(&body.simplified),
        standard: tier_limits(&body.standard),
        full: tier_limits(&body.full),
        published_at: Timestamp(0),
    };
    let answers = node.publish_policy(policy).await?;
    let adopted = node.read(|s| s.policy.clone()).ok_or_else(|| ApiError::not_found("no policy"))?;
    let nodes = answers.into_iter().map(|(node, answer)| NodeAnswerView { node, answer }).collect();
    Ok((StatusCode::CREATED, Json(policy_view(&adopted, nodes))))
}

// ---------------------------------------------------------------------------
// Enforcement orders

fn order_view(bank: &str, e: &OrderEntry) -> OrderView {
    let o = &e.signed.order;
    OrderView {
        bank: bank.to_string(),
        account: e.account.to_string(),
        authority: e.via.to_string(),
        authority_key: o.authority.to_string(),
        reference: o.reference.to_string(),
        act: match &o.act {
            OrderAct::Freeze => OrderActDto::Freeze,
            OrderAct::Arrest { amount } => OrderActDto::Arrest { amount_tiyn: amount.tiyn() },
            OrderAct::Collect { amount, beneficiary } => {
                OrderActDto::Collect { amount_tiyn: amount.tiyn(), beneficiary: beneficiary.to_string() }
            }
            OrderAct::Lift { order } => OrderActDto::Lift { order: order.to_string() },
        },
        reason: o.reason.to_string(),
        signature: e.signed.signature.to_string(),
        placed_at_ms: e.placed_at.millis(),
        active: e.active(),
        lifted_by: e.lifted.as_ref().map(|(_, r)| r.to_string()),
        collected_tiyn: e.collected.tiyn(),
        txs: e.txs.iter().map(|t| t.to_string()).collect(),
    }
}

/// The caller's key if it is a registered enforcement authority.
fn authority_key(state: &Shared, caller: &Caller) -> Option<dtenge_crypto::PublicKey> {
    let participants = state.platform.participants();
    let key = participants.get(&caller.id)?.public_key;
    state.platform.spec.params.authorities.contains(&key).then_some(key)
}

#[utoipa::path(post, path = "/api/v1/enforcement/orders", tag = "enforcement", request_body = OrderBody,
    responses((status = 201, body = OrderView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn place_order(
    State(state): State<Shared>,
    req: Signed<OrderBody>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let key = authority_key(&state, &req.caller)
        .ok_or_else(|| ApiError::forbidden(format!("{} is not a registered enforcement authority", req.caller.id)))?;
    let order = order_of(&req.body, key)?;
    let signature = req
        .body
        .signature
        .parse()
        .map_err(|_| ApiError::bad_request("bad_signature", "signature must be 128 hex characters"))?;
    let node = state
        .platform
        .node(&req.body.bank)
        .map_err(|_| ApiError::not_found(format!("no bank {} on this platform", req.body.bank)))?
        .clone();
    let entry = node.place_order(SignedOrder { order, signature }, &req.caller.id).await?;
    Ok((StatusCode::CREATED, Json(order_view(node.id().as_str(), &entry))))
}

#[utoipa::path(get, path = "/api/v1/enforcement/orders", tag = "enforcement",
    responses((status = 200, body = Vec<OrderView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_orders(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    if let Some(key) = authority_key(&state, &caller) {
        let mut all = Vec::new();
        for (id, node) in &state.platform.nodes {
            all.extend(node.orders().iter().filter(|e| e.authority() == key).map(|e| order_view(id.as_str(), e)));
        }
        all.sort_by_key(|o| std::cmp::Reverse(o.placed_at_ms));
        return Ok(Json(all));
    }
    let node = state.node_of(&caller)?;
    Ok(Json(node.orders().iter().map(|e| order_view(node.id().as_str(), e)).collect()))
}

// ---------------------------------------------------------------------------
// Regulator view (NBK)

async fn gather(state: &Shared, caller: &Caller, q: &ReportQuery) -> Result<Vec<BankReport>, ApiError> {
    let node = state.node_of(caller)?;
    let now = node.clock().now();
    let from = Timestamp(q.from_ms.unwrap_or(0));
    let to = q.to_ms.map(Timestamp).unwrap_or(now);
    if from > to {
        return Err(ApiError::bad_request("bad_period", "from_ms is after to_ms"));
    }
    let threshold = Amount::from_tiyn(q.threshold_tiyn.unwrap_or(DEFAULT_THRESHOLD_TIYN).max(1));
    Ok(node.regulator_report(from, to, threshold).await?)
}

fn day_string(day: u64) -> String {
    // Noon of the Astana day, printed in Astana time; keep the date part.
    let noon = Timestamp(day.saturating_mul(Timestamp::DAY_MS).saturating_add(7 * 3_600_000));
    astana(noon).chars().take(10).collect()
}

#[utoipa::path(get, path = "/api/v1/regulator/aggregates", tag = "regulator", params(ReportQuery),
    responses((status = 200, body = Vec<BankAggregatesView>), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn aggregates(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<BankAggregatesView>>, ApiError> {
    let reports = gather(&state, &caller, &q).await?;
    Ok(Json(
        reports
            .into_iter()
            .map(|r| BankAggregatesView {
                bank: r.bank.to_string(),
                accounts_open: r.accounts_open,
                accounts_closed: r.accounts_closed,
                tiers: r.tiers,
                active_orders: r.active_orders,
                days: r
                    .days
                    .iter()
                    .map(|d| DayView {
                        day: day_string(d.day),
                        payments_out: d.payments_out,
                        amount_out_tiyn: d.amount_out.tiyn(),
                        payments_in: d.payments_in,
                        amount_in_tiyn: d.amount_in.tiyn(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/regulator/large-payments", tag = "regulator", params(ReportQuery),
    responses((status = 200, body = Vec<LargePaymentView>), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn large_payments(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<LargePaymentView>>, ApiError> {
    let reports = gather(&state, &caller, &q).await?;
    let mut list: Vec<LargePaymentView> = reports
        .iter()
        .flat_map(|r| r.large_payments.iter())
        .map(|l| LargePaymentView {
            tx: l.tx.to_string(),
            bank: l.bank.to_string(),
            amount_tiyn: l.amount.tiyn(),
            at_ms: l.at.millis(),
            at: astana(l.at),
            kind: l.kind.clone(),
            payer_kind: holder_kind_view(l.payer_kind),
        })
        .collect();
    list.sort_by_key(|l| std::cmp::Reverse(l.at_ms));
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/regulator/marked-funds", tag = "regulator", params(ReportQuery),
    responses((status = 200, body = Vec<MarkedReportView>), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn marked_funds(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<MarkedReportView>>, ApiError> {
    let reports = gather(&state, &caller, &q).await?;
    let moved_of = |m: &dtenge_node::service::MarkedReport| {
        Amount::checked_sum(m.moves.iter().map(|v| v.amount))
            .map(Amount::tiyn)
            .ok_or_else(|| crate::dto::total_overflow(&format!("what moved under marking {}", m.marking)))
    };
    Ok(Json(
        reports
            .iter()
            .flat_map(|r| r.marked.iter())
            .map(|m| {
                Ok(MarkedReportView {
                    marking: m.marking.clone(),
                    initiator_node: m.initiator_node.to_string(),
                    moved_tiyn: moved_of(m)?,
                    moves: m
                        .moves
                        .iter()
                        .map(|v| MarkedMoveView {
                            tx: v.tx.to_string(),
                            level: v.level,
                            amount_tiyn: v.amount.tiyn(),
                            to_banks: v.to_banks.iter().map(|b| b.to_string()).collect(),
                        })
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
    ))
}
