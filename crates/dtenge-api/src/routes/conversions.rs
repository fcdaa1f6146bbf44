//! Conversion between non-cash tenge and DT (STB ↔ NBK through the CBS), and
//! NBK's view of the platform: supply, volumes by day, node health.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_net::Role;
use dtenge_node::conversion::{ConversionKind, ConversionRequest};
use dtenge_types::{Amount, Timestamp};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{
    ConversionKindDto, ConversionRequestBody, ConversionView, DayVolume, Decision, ListQuery, Page, SupplyView,
};

use crate::dto::{add_tiyn, astana, page, positive_amount, status_view, total_overflow};
use crate::error::ApiError;
use crate::state::{ApiPath, ApiQuery, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(request_conversion, list_conversions))
        .routes(routes!(get_conversion))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(supply))
        .routes(routes!(volumes))
}

/// A conversion request on the wire.
pub fn conversion_view(r: &ConversionRequest) -> ConversionView {
    ConversionView {
        id: r.id.clone(),
        kind: match r.kind {
            ConversionKind::Issue => ConversionKindDto::Issue,
            ConversionKind::Redeem => ConversionKindDto::Redeem,
        },
        bank: r.bank.to_string(),
        amount_tiyn: r.amount.tiyn(),
        amount: r.amount.to_string(),
        created_at_ms: r.created_at.millis(),
        created_at: astana(r.created_at),
        status: status_view(&r.status),
        cbs_reference: r.cbs_reference.as_ref().map(|c| c.to_string()),
        settled_tx: r.settled_tx.map(|t| t.to_string()),
        decided_by: r.decided_by.clone(),
    }
}

#[utoipa::path(post, path = "/api/v1/conversions", tag = "conversion", request_body = ConversionRequestBody,
    responses((status = 201, body = ConversionView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn request_conversion(
    State(state): State<Shared>,
    req: Signed<ConversionRequestBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let (status, json) = async {
        let amount = positive_amount(body.amount_tiyn, "amount_tiyn")?;
        let kind = match body.kind {
            ConversionKindDto::Issue => ConversionKind::Issue,
            ConversionKindDto::Redeem => ConversionKind::Redeem,
        };
        let request = node.request_conversion(kind, amount).await?;
        Ok::<_, ApiError>((StatusCode::CREATED, serde_json::to_value(conversion_view(&request)).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/conversions", tag = "conversion", params(ListQuery),
    responses((status = 200, body = Page<ConversionView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_conversions(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<ConversionView>>, ApiError> {
    state.node_of(&caller)?;
    let nbk = state.platform.node("NBK").map_err(|e| ApiError::not_found(e.to_string()))?;
    let mut items: Vec<ConversionView> = nbk
        .conversions()
        .iter()
        .filter(|r| caller.role == Role::Nbk || r.bank == caller.id)
        .map(conversion_view)
        .filter(|v| q.in_period(v.created_at_ms) && q.status_matches(&v.status))
        .collect();
    items.reverse();
    Ok(Json(page(&q, items)?))
}

#[utoipa::path(get, path = "/api/v1/conversions/{id}", tag = "conversion", params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ConversionView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_conversion(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConversionView>, ApiError> {
    state.node_of(&caller)?;
    let nbk = state.platform.node("NBK").map_err(|e| ApiError::not_found(e.to_string()))?;
    let request = nbk.conversion(&id).map_err(|_| ApiError::not_found(format!("no conversion request {id}")))?;
    if caller.role != Role::Nbk && request.bank != caller.id {
        return Err(ApiError::forbidden(format!("request {id} belongs to {}", request.bank)));
    }
    Ok(Json(conversion_view(&request)))
}

#[utoipa::path(post, path = "/api/v1/conversions/{id}/approve", tag = "conversion", request_body = Decision, params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ConversionView), (status = 403, body = crate::error::ErrorBody), (status = 400, body = crate::error::ErrorBody)))]
async fn approve(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Decision>,
) -> Result<Json<ConversionView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    if req.body.operator.trim().is_empty() {
        return Err(ApiError::bad_request("no_operator", "name the approving operator"));
    }
    Ok(Json(conversion_view(&node.approve_conversion(&id, req.body.operator.trim()).await?)))
}

#[utoipa::path(post, path = "/api/v1/conversions/{id}/reject", tag = "conversion", request_body = Decision, params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ConversionView), (status = 403, body = crate::error::ErrorBody), (status = 400, body = crate::error::ErrorBody)))]
async fn reject(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Decision>,
) -> Result<Json<ConversionView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let reason = req.body.reason.clone().unwrap_or_default();
    Ok(Json(conversion_view(&node.reject_conversion(&id, &reason, req.body.operator.trim()).await?)))
}

#[utoipa::path(get, path = "/api/v1/stats/supply", tag = "nbk",
    responses((status = 200, body = SupplyView), (status = 403, body = crate::error::ErrorBody)))]
async fn supply(State(state): State<Shared>, _caller: Authenticated) -> Result<Json<SupplyView>, ApiError> {
    let mut supply_tiyn: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_node_tiyn = BTreeMap::new();
    for (id, node) in &state.platform.nodes {
        let node_total = node.read(|s| {
            let mut node_total = 0u64;
            for (_, stored) in s.vault.iter() {
                let tiyn = stored.token.amount.tiyn();
                let currency = stored.token.currency.to_string();
                let entry = supply_tiyn.entry(currency.clone()).or_default();
                *entry = add_tiyn(*entry, tiyn, &format!("the supply of {currency}"))?;
                node_total = add_tiyn(node_total, tiyn, &format!("the holdings of {id}"))?;
            }
            Ok::<_, ApiError>(node_total)
        })?;
        by_node_tiyn.insert(id.to_string(), node_total);
    }
    let (committed, unspent, _) = state.platform.notary.stats();
    Ok(Json(SupplyView { supply_tiyn, by_node_tiyn, notary_committed: committed, notary_unspent: unspent }))
}

#[utoipa::path(get, path = "/api/v1/stats/volumes", tag = "nbk", params(ListQuery),
    responses((status = 200, body = Vec<DayVolume>), (status = 403, body = crate::error::ErrorBody)))]
async fn volumes(
    State(state): State<Shared>,
    _caller: Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DayVolume>>, ApiError> {
    let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut overflow = None;
    for node in state.platform.nodes.values() {
        node.for_each_outgoing(|_, o| {
            if o.status == dtenge_node::state::Status::Success && q.in_period(o.tx.body.window.not_before.millis()) {
                let at = o.tx.body.window.not_before;
                let day = astana(Timestamp(at.millis())).chars().take(10).collect::<String>();
                let what = format!("the volume of {day}");
                let moved = Amount::checked_sum(o.inputs.iter().map(|t| t.amount)).map(Amount::tiyn);
                let entry = days.entry(day).or_default();
                entry.0 = entry.0.saturating_add(1); // a count of transactions, not money
                match moved.ok_or_else(|| total_overflow(&what)).and_then(|m| add_tiyn(entry.1, m, &what)) {
                    Ok(total) => entry.1 = total,
                    Err(e) => {
                        overflow = Some(e);
                        return false;
                    }
                }
            }
            true
        });
        if let Some(e) = overflow.take() {
            return Err(e);
        }
    }
    Ok(Json(
        days.into_iter()
            .map(|(day, (transactions, volume_tiyn))| DayVolume { day, transactions, volume_tiyn })
            .collect(),
    ))
}
