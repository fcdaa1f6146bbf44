//! Digital accounts on the caller's own node: open, KYC, balance by kind,
//! history with filters and pages, notifications; and the platform directory
//! to find a holder's DAs by IIN/BIN.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_node::NodeError;
use dtenge_node::accounts::{AccountId, Holder, HolderKind};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{
    AccountView, BalanceView, DirectoryEntryView, HistoryView, HolderKindDto, KycDto, ListQuery, NotificationView,
    OpenAccount, Page, SetKyc,
};

use crate::dto::{account_view, balance_view, history_view, iin_bin, kyc_state, page, pager};
use crate::error::ApiError;
use crate::state::{ApiPath, ApiQuery, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(open_account, list_accounts))
        .routes(routes!(get_account))
        .routes(routes!(set_kyc))
        .routes(routes!(balance))
        .routes(routes!(history))
        .routes(routes!(notifications))
        .routes(routes!(directory))
}

/// Checks that `id` names a DA of the caller's node; another bank's DA is 403.
pub fn own_account(caller_node: &str, id: &str) -> Result<AccountId, ApiError> {
    match id.rsplit_once('-') {
        Some((node, _)) if node == caller_node => Ok(AccountId(id.to_string())),
        Some((node, _)) if !node.is_empty() => {
            Err(ApiError::forbidden(format!("account {id} is held at {node}, not at {caller_node}")))
        }
        _ => Err(ApiError::not_found(format!("no account {id}: ids look like {caller_node}-000001"))),
    }
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = OpenAccount,
    responses((status = 201, body = AccountView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn open_account(
    State(state): State<Shared>,
    req: Signed<OpenAccount>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let (status, json) = async {
        let kind = match body.kind {
            HolderKindDto::Individual => HolderKind::Individual,
            HolderKindDto::LegalEntity => HolderKind::LegalEntity,
            HolderKindDto::GovernmentAgency => HolderKind::GovernmentAgency,
            HolderKindDto::Institution => {
                return Err(ApiError::bad_request("bad_kind", "institutional DAs are configured, not opened"));
            }
        };
        if kind == HolderKind::GovernmentAgency && node.config().role != dtenge_net::Role::Treasury {
            return Err(ApiError::forbidden("government agencies hold DAs on the Treasury node"));
        }
        let holder = Holder { iin_bin: iin_bin(&body.iin_bin)?, name: body.name.trim().to_string(), kind };
        let client_key = match &body.client_public_key {
            Some(hex) => {
                Some(hex.parse().map_err(|e| ApiError::bad_request("bad_key", format!("client_public_key: {e}")))?)
            }
            None => None,
        };
        let kyc = kyc_state(body.kyc.unwrap_or(KycDto::Pending));
        let account = node.open_account(holder, client_key, kyc).await?;
        Ok((StatusCode::CREATED, serde_json::to_value(account_view(&account, node.id().as_str())).unwrap_or_default()))
    }
    .await?;
    Ok((status, Json(json)))
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(ListQuery),
    responses((status = 200, body = Page<AccountView>), (status = 401, body = crate::error::ErrorBody)))]
async fn list_accounts(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<AccountView>>, ApiError> {
    let node = state.node_of(&caller)?;
    let id = node.id().to_string();
    let mut items: Vec<AccountView> =
        node.read(|s| s.accounts.values().map(|a| account_view(a, &id)).collect::<Vec<_>>());
    items.retain(|a| {
        q.in_period(a.opened_at_ms)
            && q.kind.as_deref().is_none_or(|k| {
                serde_json::to_value(a.kind).ok().and_then(|v| v.as_str().map(|s| s == k)).unwrap_or(false)
            })
    });
    items.reverse();
    Ok(Json(page(&q, items)?))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_account(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountView>, ApiError> {
    let node = state.node_of(&caller)?;
    let account = node.account(&own_account(node.id().as_str(), &id)?)?;
    Ok(Json(account_view(&account, node.id().as_str())))
}

#[utoipa::path(post, path = "/api/v1/accounts/{id}/kyc", tag = "accounts", request_body = SetKyc, params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn set_kyc(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
    req: Signed<SetKyc>,
) -> Result<Json<AccountView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let account = own_account(node.id().as_str(), &id)?;
    node.set_kyc(&account, kyc_state(req.body.kyc)).await?;
    Ok(Json(account_view(&node.account(&account)?, node.id().as_str())))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/balance", tag = "accounts", params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = BalanceView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn balance(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BalanceView>, ApiError> {
    let node = state.node_of(&caller)?;
    let account = own_account(node.id().as_str(), &id)?;
    Ok(Json(balance_view(&id, &node.balances(&account)?)))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/history", tag = "accounts", params(("id" = String, Path, description = "Account id"), ListQuery),
    responses((status = 200, body = Page<HistoryView>), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn history(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<HistoryView>>, ApiError> {
    let node = state.node_of(&caller)?;
    let account = own_account(node.id().as_str(), &id)?;
    node.account(&account)?;
    // Newest first, streamed from the node's archive; without filters the
    // total is the DA's line count and the scan stops after the page.
    let mut pager = pager(&q)?;
    let filters = q.filters();
    node.history_newest_first(&account, |_, e| {
        let h = history_view(&e);
        if q.in_period(h.at_ms) && q.status_matches(&h.status) && q.kind_matches(&h.kind) {
            return pager.push(h) || filters;
        }
        true
    });
    let total = (!filters).then(|| usize::try_from(node.read(|s| s.book(&account).history)).unwrap_or(usize::MAX));
    Ok(Json(pager.finish(total)))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}/notifications", tag = "accounts", params(("id" = String, Path, description = "Account id"), ListQuery),
    responses((status = 200, body = Page<NotificationView>), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn notifications(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<NotificationView>>, ApiError> {
    let node = state.node_of(&caller)?;
    let account = own_account(node.id().as_str(), &id)?;
    node.account(&account)?;
    let mut pager = pager(&q)?;
    let period = q.from_ms.is_some() || q.to_ms.is_some();
    node.notifications_newest_first(&account, |n| {
        if q.in_period(n.at.millis()) {
            return pager.push(crate::dto::notification_view(&n)) || period;
        }
        true
    });
    let total = (!period).then(|| usize::try_from(node.read(|s| s.book(&account).notifications)).unwrap_or(usize::MAX));
    Ok(Json(pager.finish(total)))
}

#[utoipa::path(get, path = "/api/v1/directory/{iin_bin}", tag = "accounts", params(("iin_bin" = String, Path, description = "IIN or BIN")),
    responses((status = 200, body = Vec<DirectoryEntryView>), (status = 400, body = crate::error::ErrorBody)))]
async fn directory(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(iin): ApiPath<String>,
) -> Result<Json<Vec<DirectoryEntryView>>, ApiError> {
    let node = state.node_of(&caller)?;
    let entries = node.find(iin_bin(&iin)?).await.map_err(|e: NodeError| ApiError::from(e))?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| DirectoryEntryView {
                address: e.address.to_string(),
                bank: e.host.to_string(),
                account: e.account.to_string(),
                name: e.name,
            })
            .collect(),
    ))
}
