//! The session backend's routes under `/ui/api`: sign-in, the Treasury's
//! sections (main page, requests, accounts, conversions, holds, reports)
//! and the NBK operator's view. Reads and operations go through the API as
//! the staff member's participant.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dtenge_client::{AccountView, BalanceView, ListQuery, NotificationView, segment};
use dtenge_types::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::UiError;
use crate::execute::{self, PrepareBody};
use crate::reports::{self, Cell, Table};
use crate::session;
use crate::staff::{StaffRole, StaffUser};
use crate::store::{self, Action, Checker, Filter, Request};
use crate::{Me, Ui};

type Shared = Arc<Ui>;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/ui/api/login", post(login))
        .route("/ui/api/logout", post(logout))
        .route("/ui/api/me", get(me))
        .route("/ui/api/dashboard", get(dashboard))
        .route("/ui/api/accounts", get(accounts))
        .route("/ui/api/requests", get(list_requests).post(prepare))
        .route("/ui/api/requests/{id}", get(get_request))
        .route("/ui/api/requests/{id}/approve", post(approve))
        .route("/ui/api/requests/{id}/reject", post(reject))
        .route("/ui/api/conversions", get(conversions))
        .route("/ui/api/holds", get(holds))
        .route("/ui/api/reports", get(report))
        .route("/ui/api/nbk/overview", get(nbk_overview))
        .route("/ui/api/nbk/conversions/{id}/approve", post(nbk_approve))
        .route("/ui/api/nbk/conversions/{id}/reject", post(nbk_reject))
        .route("/ui/api/nbk/regulator", get(nbk_regulator))
}

fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, UiError> {
    serde_json::from_slice(bytes).map_err(|e| UiError::BadInput(format!("request body: {e}")))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, UiError> {
    q.map(|q| q.0).map_err(|e| UiError::BadInput(format!("query: {}", e.body_text())))
}

#[derive(Serialize)]
struct MeView {
    login: String,
    name: String,
    participant: String,
    roles: Vec<StaffRole>,
}

impl From<&StaffUser> for MeView {
    fn from(u: &StaffUser) -> Self {
        MeView {
            login: u.login.clone(),
            name: u.name.clone(),
            participant: u.participant.clone(),
            roles: u.roles.clone(),
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    login: String,
    password: String,
}

async fn login(State(ui): State<Shared>, headers: HeaderMap, body: Bytes) -> Result<Response, UiError> {
    session::check_csrf(&axum::http::Method::POST, &headers)?;
    let body: LoginBody = parse(&body)?;
    let checking = Arc::clone(&ui);
    let login = body.login.trim().to_string();
    let user = tokio::task::spawn_blocking(move || checking.staff.authenticate(&login, &body.password).cloned())
        .await
        .map_err(|e| UiError::Storage(format!("password check: {e}")))?
        .ok_or(UiError::BadCredentials)?;
    let token = ui.sessions.start(&user.login, ui.now_ms())?;
    let mut response = Json(MeView::from(&user)).into_response();
    let cookie = HeaderValue::from_str(&session::set_cookie(&token)).map_err(|e| UiError::Storage(e.to_string()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

async fn logout(State(ui): State<Shared>, headers: HeaderMap) -> Result<Response, UiError> {
    session::check_csrf(&axum::http::Method::POST, &headers)?;
    if let Some(token) = session::token(&headers) {
        ui.sessions.end(&token);
    }
    let mut response = Json(json!({"signed_out": true})).into_response();
    let cookie = HeaderValue::from_str(&session::clear_cookie()).map_err(|e| UiError::Storage(e.to_string()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

async fn me(Me(user): Me) -> Json<MeView> {
    Json(MeView::from(&user))
}

fn all(per_page: usize) -> ListQuery {
    ListQuery { per_page: Some(per_page), ..ListQuery::default() }
}

/// The participant's DAs.
async fn own_accounts(ui: &Ui, participant: &str) -> Result<Vec<AccountView>, UiError> {
    let mut out = Vec::new();
    for page in 1..=20usize {
        let got = ui.client(participant)?.list_accounts(&ListQuery { page: Some(page), ..all(200) }).await?;
        let done = got.items.len() < got.per_page;
        out.extend(got.items);
        if done || out.len() >= got.total {
            break;
        }
    }
    Ok(out)
}

/// A notification and the DA it came to.
#[derive(Serialize)]
struct AccountNotice {
    account_id: String,
    account_name: String,
    #[serde(flatten)]
    notice: NotificationView,
}

/// The newest `limit` notifications of the participant's DAs (incoming
/// funds, funds held for them, orders, …), newest first.
async fn notices(
    ui: &Ui,
    participant: &str,
    accounts: &[AccountView],
    limit: usize,
) -> Result<Vec<AccountNotice>, UiError> {
    let client = ui.client(participant)?;
    let mut out = Vec::new();
    for a in accounts {
        let page = client.notifications(&a.id, &all(limit)).await?;
        out.extend(page.items.into_iter().map(|notice| AccountNotice {
            account_id: a.id.clone(),
            account_name: a.name.clone(),
            notice,
        }));
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.notice.at_ms));
    out.truncate(limit);
    Ok(out)
}

#[derive(Serialize)]
struct AccountBalance {
    account: AccountView,
    balance: BalanceView,
}

#[derive(Serialize, Default)]
struct Totals {
    standard_tiyn: u64,
    marked_tiyn: u64,
    held_tiyn: u64,
    vat_tiyn: u64,
    mandated_tiyn: u64,
    total_tiyn: u64,
}

impl Totals {
    /// Adds one DA's balance. The platform keeps every currency's supply within u64 tiyn, so an
    /// overflow means the figures cannot be trusted: it is an error, never a clamped total.
    fn add(&mut self, b: &BalanceView) -> Result<(), UiError> {
        let sum = |total: &mut u64, x: u64, what: &str| {
            *total = total
                .checked_add(x)
                .ok_or_else(|| UiError::Report(format!("the {what} balances of your accounts exceed u64 tiyn")))?;
            Ok::<(), UiError>(())
        };
        sum(&mut self.standard_tiyn, b.standard_tiyn, "standard")?;
        sum(&mut self.marked_tiyn, b.marked_tiyn, "marked")?;
        sum(&mut self.held_tiyn, b.held_tiyn, "held")?;
        sum(&mut self.vat_tiyn, b.vat_tiyn, "VAT")?;
        sum(&mut self.mandated_tiyn, b.mandated_tiyn, "mandated")?;
        sum(&mut self.total_tiyn, b.total_tiyn, "total")
    }
}

#[derive(Serialize, Clone)]
struct Operation {
    account: String,
    account_name: String,
    #[serde(flatten)]
    line: dtenge_client::HistoryView,
    counterparty_names: Vec<String>,
}

/// History of every DA of the participant in a period, newest first, at most `limit` lines.
async fn operations(
    ui: &Ui,
    participant: &str,
    accounts: &[AccountView],
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    limit: usize,
) -> Result<Vec<Operation>, UiError> {
    let names: HashMap<&str, &str> = accounts.iter().map(|a| (a.address.as_str(), a.name.as_str())).collect();
    let client = ui.client(participant)?;
    let mut out: Vec<Operation> = Vec::new();
    for a in accounts {
        let mut page = 1usize;
        loop {
            let q = ListQuery { page: Some(page), from_ms, to_ms, ..all(200) };
            let got = client.history(&a.id, &q).await?;
            let n = got.items.len();
            for line in got.items {
                let counterparty_names = line
                    .counterparties
                    .iter()
                    .map(|c| names.get(c.as_str()).map_or_else(|| short(c), |n| (*n).to_string()))
                    .collect();
                out.push(Operation { account: a.id.clone(), account_name: a.name.clone(), line, counterparty_names });
            }
            if n < 200 || page.saturating_mul(200) >= got.total || page >= 25 || out.len() >= limit.saturating_mul(4) {
                break;
            }
            page += 1;
        }
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.line.at_ms));
    out.truncate(limit);
    Ok(out)
}

fn short(address: &str) -> String {
    if address.len() > 14 { format!("{}…{}", &address[..8], &address[address.len() - 4..]) } else { address.into() }
}

async fn dashboard(State(ui): State<Shared>, Me(user): Me) -> Result<Json<Value>, UiError> {
    let client = ui.client(&user.participant)?;
    let accounts = own_accounts(&ui, &user.participant).await?;
    let mut totals = Totals::default();
    let mut rows = Vec::with_capacity(accounts.len());
    for a in &accounts {
        let b = client.balance(&a.id).await?;
        totals.add(&b)?;
        rows.push(AccountBalance { account: a.clone(), balance: b });
    }
    let recent = operations(&ui, &user.participant, &accounts, None, None, 10).await?;
    let notices = notices(&ui, &user.participant, &accounts, 10).await?;
    let requests: Vec<Request> = ui.store.all(&user.participant, &Filter::default()).into_iter().take(8).collect();
    let pending = ui
        .store
        .all(&user.participant, &Filter { status: Some(store::status::UNDER_REVIEW.into()), ..Filter::default() })
        .len();
    Ok(Json(json!({
        "participant": user.participant,
        "accounts": rows,
        "totals": totals,
        "recent_operations": recent,
        "recent_requests": requests,
        "notifications": notices,
        "pending_review": pending,
        "now_ms": ui.now_ms(),
    })))
}

async fn accounts(State(ui): State<Shared>, Me(user): Me) -> Result<Json<Vec<AccountView>>, UiError> {
    Ok(Json(own_accounts(&ui, &user.participant).await?))
}

async fn list_requests(
    State(ui): State<Shared>,
    Me(user): Me,
    q: Result<Query<Filter>, QueryRejection>,
) -> Result<Json<store::RequestPage>, UiError> {
    Ok(Json(ui.store.page(&user.participant, &query(q)?)?))
}

async fn get_request(State(ui): State<Shared>, Me(user): Me, Path(id): Path<String>) -> Result<Json<Request>, UiError> {
    Ok(Json(ui.store.get(&user.participant, &id)?))
}

async fn prepare(State(ui): State<Shared>, Me(user): Me, body: Bytes) -> Result<(StatusCode, Json<Request>), UiError> {
    if !user.has(StaffRole::Maker) {
        return Err(UiError::Forbidden(format!("{} is not a maker: only makers prepare requests", user.name)));
    }
    let body: PrepareBody = parse(&body)?;
    let action = execute::prepare(ui.client(&user.participant)?, &body).await?;
    let request = ui.store.prepare(&user.participant, &user.login, &user.name, action, ui.now_ms()).await?;
    Ok((StatusCode::CREATED, Json(request)))
}

fn checker(user: &StaffUser) -> Result<Checker, UiError> {
    if !user.has(StaffRole::Checker) {
        return Err(UiError::Forbidden(format!(
            "{} is not a checker: a checker of {} must approve or reject requests",
            user.name, user.participant
        )));
    }
    Ok(Checker { login: user.login.clone(), name: user.name.clone(), participant: user.participant.clone() })
}

async fn approve(State(ui): State<Shared>, Me(user): Me, Path(id): Path<String>) -> Result<Json<Request>, UiError> {
    let checker = checker(&user)?;
    let approved = ui.store.approve(&id, &checker, ui.now_ms()).await?;
    let outcome = execute::run(ui.client(&user.participant)?, &approved).await;
    let done = ui.store.finish(&id, outcome, ui.now_ms()).await?;
    Ok(Json(done))
}

#[derive(Deserialize)]
struct ReasonBody {
    reason: String,
}

async fn reject(
    State(ui): State<Shared>,
    Me(user): Me,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Request>, UiError> {
    let checker = checker(&user)?;
    let body: ReasonBody = parse(&body)?;
    Ok(Json(ui.store.reject(&id, &checker, &body.reason, ui.now_ms()).await?))
}

async fn conversions(State(ui): State<Shared>, Me(user): Me) -> Result<Json<Value>, UiError> {
    let page = ui.client(&user.participant)?.conversions(&all(100)).await?;
    Ok(Json(serde_json::to_value(page.items).map_err(|e| UiError::Storage(e.to_string()))?))
}

#[derive(Serialize)]
struct HoldRow {
    account: String,
    account_name: String,
    event: String,
    requested_at_ms: Option<u64>,
    recipient_iin_bin: Option<String>,
    recipient_name: Option<String>,
    recipient_address: Option<String>,
    amount_tiyn: u64,
    held_tiyn: u64,
    valid_until_ms: Option<u64>,
    kind: Option<String>,
    maker_name: Option<String>,
    request: Option<String>,
    status: String,
    reason: Option<String>,
    /// A release or cancellation prepared and waiting for a checker.
    pending: Option<String>,
}

async fn holds(State(ui): State<Shared>, Me(user): Me) -> Result<Json<Vec<HoldRow>>, UiError> {
    let client = ui.client(&user.participant)?;
    let accounts = own_accounts(&ui, &user.participant).await?;
    let names: HashMap<&str, &str> = accounts.iter().map(|a| (a.id.as_str(), a.name.as_str())).collect();
    // Funds held now, by (account, event).
    let mut held: BTreeMap<(String, String), Value> = BTreeMap::new();
    for a in &accounts {
        let groups: Vec<Value> = client.get_json(&format!("/api/v1/accounts/{}/holds", segment(&a.id))).await?;
        for g in groups {
            let event = g["event"].as_str().unwrap_or_default().to_string();
            held.insert((a.id.clone(), event), g);
        }
    }
    let requests = ui.store.all(&user.participant, &Filter::default());
    let pending_unhold: HashMap<(String, String), String> = requests
        .iter()
        .filter(|r| r.status == store::status::UNDER_REVIEW)
        .filter_map(|r| match &r.action {
            Action::HoldRelease { account, event } | Action::HoldCancel { account, event } => {
                Some(((account.clone(), event.clone()), format!("{} {}", r.action.kind(), r.id)))
            }
            _ => None,
        })
        .collect();
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &requests {
        let Action::Hold { account, event, to, amount_tiyn } = &r.action else { continue };
        let key = (account.clone(), event.clone());
        let now = held.get(&key);
        if now.is_some() && !seen.insert(key.clone()) {
            continue; // an older request for the same event: the newest one shows the hold
        }
        let status = match (r.status.as_str(), now) {
            (s, _) if s != store::status::SUCCESS => s.to_string(),
            (_, Some(_)) => "held".to_string(),
            (_, None) => "closed".to_string(),
        };
        rows.push(HoldRow {
            account: account.clone(),
            account_name: names.get(account.as_str()).map(|s| (*s).to_string()).unwrap_or_default(),
            event: event.clone(),
            requested_at_ms: Some(r.created_at_ms),
            recipient_iin_bin: Some(to.iin_bin.clone()),
            recipient_name: Some(to.name.clone()),
            recipient_address: Some(to.address.clone()),
            amount_tiyn: *amount_tiyn,
            held_tiyn: now.and_then(|g| g["amount_tiyn"].as_u64()).unwrap_or(0),
            valid_until_ms: now.and_then(|g| g["valid_until_ms"].as_u64()),
            kind: now.and_then(|g| g["kind"].as_str().map(str::to_string)),
            maker_name: Some(r.maker_name.clone()),
            request: Some(r.id.clone()),
            status,
            reason: r.reason.clone(),
            pending: pending_unhold.get(&key).cloned(),
        });
    }
    // Holds made outside the web interface (through the API by other systems).
    for ((account, event), g) in &held {
        if seen.contains(&(account.clone(), event.clone())) {
            continue;
        }
        let amount = g["amount_tiyn"].as_u64().unwrap_or(0);
        rows.push(HoldRow {
            account: account.clone(),
            account_name: names.get(account.as_str()).map(|s| (*s).to_string()).unwrap_or_default(),
            event: event.clone(),
            requested_at_ms: None,
            recipient_iin_bin: None,
            recipient_name: None,
            recipient_address: g["recipient"].as_str().map(str::to_string),
            amount_tiyn: amount,
            held_tiyn: amount,
            valid_until_ms: g["valid_until_ms"].as_u64(),
            kind: g["kind"].as_str().map(str::to_string),
            maker_name: None,
            request: None,
            status: "held".into(),
            reason: None,
            pending: pending_unhold.get(&(account.clone(), event.clone())).cloned(),
        });
    }
    Ok(Json(rows))
}

#[derive(Deserialize)]
struct ReportQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    direction: Option<String>,
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    format: Option<String>,
    lang: Option<String>,
}

fn astana(ms: u64) -> String {
    let text = dtenge_api::dto::astana(Timestamp(ms));
    let text = text.trim_end_matches("+05:00").replacen('T', " ", 1);
    text.split('.').next().unwrap_or_default().to_string()
}

fn headers(lang: &str, en: &[&str], ru: &[&str]) -> Vec<String> {
    if lang == "ru" { ru } else { en }.iter().map(|s| (*s).to_string()).collect()
}

fn direction_ok(direction: &str, incoming: bool, outgoing: bool) -> Result<bool, UiError> {
    match direction {
        "" | "all" => Ok(true),
        "incoming" => Ok(incoming),
        "outgoing" => Ok(outgoing),
        other => Err(UiError::BadInput(format!("direction {other:?}: all, incoming or outgoing"))),
    }
}

async fn build_report(ui: &Ui, user: &StaffUser, q: &ReportQuery) -> Result<Table, UiError> {
    let lang = q.lang.as_deref().unwrap_or("en");
    let direction = q.direction.as_deref().unwrap_or("all");
    let text = |s: &str| Cell::Text(s.to_string());
    match q.kind.as_deref().unwrap_or("operations") {
        "operations" => {
            let accounts = own_accounts(ui, &user.participant).await?;
            let ops = operations(ui, &user.participant, &accounts, q.from_ms, q.to_ms, 100_000).await?;
            let mut rows = Vec::new();
            for o in ops {
                if !direction_ok(direction, o.line.incoming_tiyn > 0, o.line.outgoing_tiyn > 0)? {
                    continue;
                }
                rows.push(vec![
                    text(&astana(o.line.at_ms)),
                    text(&o.account),
                    text(&o.account_name),
                    text(&o.line.kind),
                    Cell::Money(o.line.incoming_tiyn),
                    Cell::Money(o.line.outgoing_tiyn),
                    text(&o.counterparty_names.join("; ")),
                    text(o.line.memo.as_deref().unwrap_or("")),
                    text(&o.line.status.status),
                    text(&o.line.tx),
                ]);
            }
            Ok(Table {
                title: if lang == "ru" { "Операции" } else { "Operations" }.into(),
                columns: headers(
                    lang,
                    &[
                        "Time (Astana, UTC+5)",
                        "Account",
                        "Holder",
                        "Type",
                        "Incoming",
                        "Outgoing",
                        "Counterparties",
                        "Purpose",
                        "Status",
                        "Transaction",
                    ],
                    &[
                        "Время (Астана, UTC+5)",
                        "Счёт",
                        "Владелец",
                        "Тип",
                        "Поступление",
                        "Списание",
                        "Контрагенты",
                        "Назначение",
                        "Статус",
                        "Транзакция",
                    ],
                ),
                rows,
            })
        }
        "requests" => {
            let filter = Filter { from_ms: q.from_ms, to_ms: q.to_ms, ..Filter::default() };
            let mut rows = Vec::new();
            for r in ui.store.all(&user.participant, &filter) {
                let (recipient, amount, incoming) = match &r.action {
                    Action::Transfer { to, amount_tiyn, .. } => {
                        (format!("{} ({}, {})", to.name, to.iin_bin, to.bank), *amount_tiyn, false)
                    }
                    Action::Hold { to, amount_tiyn, .. } => {
                        (format!("{} ({}, {})", to.name, to.iin_bin, to.bank), *amount_tiyn, false)
                    }
                    Action::Issuance { amount_tiyn } => ("NBK".into(), *amount_tiyn, true),
                    Action::Redemption { amount_tiyn } => ("NBK".into(), *amount_tiyn, false),
                    Action::OpenAccount { bin, name } => (format!("{name} ({bin})"), 0, false),
                    Action::HoldRelease { event, .. } | Action::HoldCancel { event, .. } => (event.clone(), 0, false),
                };
                if !direction_ok(direction, incoming, !incoming)? {
                    continue;
                }
                rows.push(vec![
                    text(&r.id),
                    text(&astana(r.created_at_ms)),
                    text(r.action.kind()),
                    text(&recipient),
                    Cell::Money(amount),
                    text(&r.maker_name),
                    text(r.checker_name.as_deref().unwrap_or("")),
                    text(&r.status),
                    text(r.reason.as_deref().unwrap_or("")),
                    text(r.result.as_deref().unwrap_or("")),
                ]);
            }
            Ok(Table {
                title: if lang == "ru" { "Заявки" } else { "Requests" }.into(),
                columns: headers(
                    lang,
                    &[
                        "Number",
                        "Prepared (Astana, UTC+5)",
                        "Type",
                        "Recipient",
                        "Amount",
                        "Maker",
                        "Checker",
                        "Status",
                        "Reason",
                        "Result",
                    ],
                    &[
                        "Номер",
                        "Создана (Астана, UTC+5)",
                        "Тип",
                        "Получатель",
                        "Сумма",
                        "Исполнитель",
                        "Контролёр",
                        "Статус",
                        "Причина",
                        "Результат",
                    ],
                ),
                rows,
            })
        }
        "conversions" => {
            let page = ui
                .client(&user.participant)?
                .conversions(&ListQuery { from_ms: q.from_ms, to_ms: q.to_ms, ..all(200) })
                .await?;
            let mut rows = Vec::new();
            for c in page.items {
                let issue = matches!(c.kind, dtenge_client::ConversionKindDto::Issue);
                if !direction_ok(direction, issue, !issue)? {
                    continue;
                }
                rows.push(vec![
                    text(&c.id),
                    text(&astana(c.created_at_ms)),
                    text(if issue { "issue" } else { "redeem" }),
                    text(&c.bank),
                    Cell::Money(c.amount_tiyn),
                    text(&c.status.status),
                    text(c.cbs_reference.as_deref().unwrap_or("")),
                    text(c.decided_by.as_deref().unwrap_or("")),
                ]);
            }
            Ok(Table {
                title: if lang == "ru" { "Конвертация" } else { "Conversions" }.into(),
                columns: headers(
                    lang,
                    &[
                        "Request",
                        "Requested (Astana, UTC+5)",
                        "Kind",
                        "Bank",
                        "Amount",
                        "Status",
                        "CBS reference",
                        "Decided by",
                    ],
                    &[
                        "Заявка",
                        "Создана (Астана, UTC+5)",
                        "Вид",
                        "Банк",
                        "Сумма",
                        "Статус",
                        "Референс АБС",
                        "Решение принял",
                    ],
                ),
                rows,
            })
        }
        other => Err(UiError::BadInput(format!("report type {other:?}: operations, requests or conversions"))),
    }
}

async fn report(
    State(ui): State<Shared>,
    Me(user): Me,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, UiError> {
    let q = query(q)?;
    let table = build_report(&ui, &user, &q).await?;
    let stem = format!(
        "dtenge-{}-{}",
        q.kind.as_deref().unwrap_or("operations"),
        astana(ui.now_ms()).chars().take(10).collect::<String>()
    );
    let (bytes, content_type, ext) = match q.format.as_deref().unwrap_or("json") {
        "json" => return Ok(Json(json!({"title": table.title, "columns": table.columns, "rows": table.rows.iter().map(|r| r.iter().map(|c| match c {
            Cell::Text(t) => json!(t),
            Cell::Money(m) => json!({"tiyn": m}),
        }).collect::<Vec<_>>()).collect::<Vec<_>>()})).into_response()),
        "csv" => (reports::to_csv(&table)?, "text/csv; charset=utf-8", "csv"),
        "xlsx" => (
            reports::to_xlsx(&table)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        other => return Err(UiError::BadInput(format!("format {other:?}: json, csv or xlsx"))),
    };
    let disposition = format!("attachment; filename=\"{stem}.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|e| UiError::Report(e.to_string()))?,
            ),
        ],
        bytes,
    )
        .into_response())
}

fn operator(user: &StaffUser) -> Result<(), UiError> {
    if user.has(StaffRole::Operator) && user.participant == dtenge_platform::spec::ids::NBK {
        Ok(())
    } else {
        Err(UiError::Forbidden(format!("{} is not an NBK operator", user.name)))
    }
}

async fn nbk_overview(State(ui): State<Shared>, Me(user): Me) -> Result<Json<Value>, UiError> {
    operator(&user)?;
    let client = ui.client(&user.participant)?;
    let supply = client.supply().await?;
    let volumes = client.volumes(&ListQuery::default()).await?;
    let health = client.health().await?;
    let conversions = client.conversions(&all(100)).await?;
    let stablecoins = client.stablecoins().await?;
    Ok(Json(json!({
        "supply": supply,
        "stablecoins": stablecoins,
        "volumes": volumes,
        "health": health,
        "conversions": conversions.items,
        "now_ms": ui.now_ms(),
    })))
}

async fn nbk_approve(State(ui): State<Shared>, Me(user): Me, Path(id): Path<String>) -> Result<Json<Value>, UiError> {
    operator(&user)?;
    let done = ui.client(&user.participant)?.approve_conversion(&id, &user.name).await?;
    Ok(Json(serde_json::to_value(done).map_err(|e| UiError::Storage(e.to_string()))?))
}

async fn nbk_reject(
    State(ui): State<Shared>,
    Me(user): Me,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, UiError> {
    operator(&user)?;
    let body: ReasonBody = parse(&body)?;
    if body.reason.trim().is_empty() {
        return Err(UiError::BadInput("reason: say why the request is rejected".into()));
    }
    let done = ui.client(&user.participant)?.reject_conversion(&id, &user.name, body.reason.trim()).await?;
    Ok(Json(serde_json::to_value(done).map_err(|e| UiError::Storage(e.to_string()))?))
}

#[derive(Deserialize)]
struct RegulatorQuery {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    /// Large-payment threshold in DT (`1 000 000,00`); default the API's.
    threshold: Option<String>,
}

/// The regulator's page (NBK operator only): aggregates by bank and day,
/// large payments at or above a threshold and marked-funds traceability,
/// from the API's NBK-only regulator endpoints — no names, no IINs.
async fn nbk_regulator(
    State(ui): State<Shared>,
    Me(user): Me,
    q: Result<Query<RegulatorQuery>, QueryRejection>,
) -> Result<Json<Value>, UiError> {
    operator(&user)?;
    let q = query(q)?;
    if q.from_ms.zip(q.to_ms).is_some_and(|(from, to)| from > to) {
        return Err(UiError::BadInput("period: the start is after the end".into()));
    }
    let threshold_tiyn = match q.threshold.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => execute::amount_tiyn(text, "threshold")?,
        None => dtenge_client::DEFAULT_THRESHOLD_TIYN,
    };
    let rq = dtenge_client::ReportQuery { from_ms: q.from_ms, to_ms: q.to_ms, threshold_tiyn: Some(threshold_tiyn) };
    let client = ui.client(&user.participant)?;
    let aggregates = client.regulator_aggregates(&rq).await?;
    let large_payments = client.regulator_large_payments(&rq).await?;
    let marked_funds = client.regulator_marked_funds(&rq).await?;
    Ok(Json(json!({
        "aggregates": aggregates,
        "large_payments": large_payments,
        "marked_funds": marked_funds,
        "threshold_tiyn": threshold_tiyn,
        "now_ms": ui.now_ms(),
    })))
}
