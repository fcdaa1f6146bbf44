//! The account regime (issue #9): KYC tiers and NBK's limits, linked bank
//! accounts for (reverse) waterfall, key rotation after re-identification,
//! closing a DA; enforcement orders of authorised bodies; and the
//! regulator's view for NBK (aggregates by bank and day, large payments,
//! marked-funds traceability — no names, no IINs).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_net::Role;
use dtenge_node::accounts::AccountId;
use dtenge_node::regime::{AccountProfile, LimitPolicy, LinkDirection, OrderEntry, Tier, TierLimits};
use dtenge_node::service::{BankReport, NodeService};
use dtenge_types::{Amount, EnforcementOrder, Memo, OrderAct, OrderRef, SignedOrder, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::dto::{HolderKindDto, address, astana, positive_amount};
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

/// A KYC tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierDto {
    /// Remote identification.
    Simplified,
    /// Standard identification (default).
    Standard,
    /// Full identification.
    Full,
}

impl From<TierDto> for Tier {
    fn from(t: TierDto) -> Tier {
        match t {
            TierDto::Simplified => Tier::Simplified,
            TierDto::Standard => Tier::Standard,
            TierDto::Full => Tier::Full,
        }
    }
}

impl From<Tier> for TierDto {
    fn from(t: Tier) -> TierDto {
        match t {
            Tier::Simplified => TierDto::Simplified,
            Tier::Standard => TierDto::Standard,
            Tier::Full => TierDto::Full,
        }
    }
}

/// The limits of one tier, in tiyn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TierLimitsDto {
    /// Most a DA may hold.
    pub max_balance_tiyn: u64,
    /// Largest single outgoing payment.
    pub per_payment_tiyn: u64,
    /// Most that may leave the DA per Astana day.
    pub daily_outgoing_tiyn: u64,
}

impl TierLimitsDto {
    fn of(l: &TierLimits) -> TierLimitsDto {
        TierLimitsDto {
            max_balance_tiyn: l.max_balance.tiyn(),
            per_payment_tiyn: l.per_payment.tiyn(),
            daily_outgoing_tiyn: l.daily_outgoing.tiyn(),
        }
    }

    fn limits(&self) -> TierLimits {
        TierLimits {
            max_balance: Amount::from_tiyn(self.max_balance_tiyn),
            per_payment: Amount::from_tiyn(self.per_payment_tiyn),
            daily_outgoing: Amount::from_tiyn(self.daily_outgoing_tiyn),
        }
    }
}

/// NBK's limits per tier (applied to individuals' DAs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitsBody {
    /// Simplified tier.
    pub simplified: TierLimitsDto,
    /// Standard tier.
    pub standard: TierLimitsDto,
    /// Full tier.
    pub full: TierLimitsDto,
}

/// The limit policy in force on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Version (increases with every publication).
    pub version: u64,
    /// The limits.
    pub limits: LimitsBody,
    /// Published at (ms).
    pub published_at_ms: u64,
    /// Published at, Astana time.
    pub published_at: String,
    /// After a publication: each node's answer (`adopted`, `refused: …`, `unreachable: …`).
    #[serde(default)]
    pub nodes: Vec<NodeAnswerView>,
}

/// One node's answer to a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeAnswerView {
    /// The node.
    pub node: String,
    /// Its answer.
    pub answer: String,
}

impl PolicyView {
    fn of(p: &LimitPolicy, nodes: Vec<NodeAnswerView>) -> PolicyView {
        PolicyView {
            version: p.version,
            limits: LimitsBody {
                simplified: TierLimitsDto::of(&p.simplified),
                standard: TierLimitsDto::of(&p.standard),
                full: TierLimitsDto::of(&p.full),
            },
            published_at_ms: p.published_at.millis(),
            published_at: astana(p.published_at),
            nodes,
        }
    }
}

/// A conversion between the DA and its linked bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkedTransferView {
    /// `to_bank_account` (reverse waterfall, closing) or `from_bank_account` (waterfall).
    pub direction: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
    /// The bank account.
    pub bank_account: String,
    /// The DT transaction with the bank's own DA.
    pub tx: String,
    /// When (ms).
    pub at_ms: u64,
    /// Why.
    pub reason: String,
}

/// A DA's regime: tier, limits, linked account, orders in force, state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    /// The DA.
    pub account: String,
    /// Its current address.
    pub address: String,
    /// Whether it is closed.
    pub closed: bool,
    /// Holder kind (limits apply to individuals).
    pub kind: HolderKindDto,
    /// The tier.
    pub tier: TierDto,
    /// The tier's limits, if NBK has published a policy and the holder is an individual.
    pub limits: Option<TierLimitsDto>,
    /// Paid out today (Astana day), in tiyn, as counted against the daily limit.
    pub spent_today_tiyn: u64,
    /// Linked bank account (IBAN) for waterfall and reverse waterfall.
    pub linked_bank_account: Option<String>,
    /// Freezes in force.
    pub frozen: bool,
    /// Arrested amount in tiyn.
    pub arrested_tiyn: u64,
    /// Conversions with the linked bank account, newest first.
    pub linked_transfers: Vec<LinkedTransferView>,
    /// Revoked keys of this DA.
    pub revoked_keys: Vec<String>,
}

fn profile_view(node: &NodeService, id: &AccountId) -> Result<ProfileView, ApiError> {
    let account = node.account(id)?;
    let now = node.clock().now();
    Ok(node.read(|s| {
        let profile: AccountProfile = s.profile(id);
        let individual = account.holder.kind == dtenge_node::accounts::HolderKind::Individual;
        let limits = s.policy.as_ref().filter(|_| individual).map(|p| TierLimitsDto::of(p.limits(profile.tier)));
        let active = s.active_orders(id);
        ProfileView {
            account: id.to_string(),
            address: account.address.to_string(),
            closed: account.closed,
            kind: account.holder.kind.into(),
            tier: profile.tier.into(),
            limits,
            spent_today_tiyn: s.spent_on_day(id, now).tiyn(),
            linked_bank_account: profile.linked_bank_account.clone(),
            frozen: active.iter().any(|e| matches!(e.signed.order.act, OrderAct::Freeze)),
            arrested_tiyn: s.arrested(id).tiyn(),
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
        }
    }))
}

/// Changing a DA's tier or linked bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileBody {
    /// A new tier (individuals only).
    pub tier: Option<TierDto>,
    /// A bank account (IBAN, 1-34 letters and digits) to link.
    pub linked_bank_account: Option<String>,
    /// Unlink the bank account.
    #[serde(default)]
    pub unlink: bool,
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
    node.set_profile(&id, body.tier.map(Tier::from), linked).await?;
    Ok(Json(profile_view(&node, &id)?))
}

/// Key rotation after re-identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RekeyBody {
    /// How the bank re-identified the client (branch visit, biometrics), 1-100 characters.
    pub reidentification: String,
    /// The client's new public key (hex) if the client signs; otherwise the bank keeps a new key.
    pub client_public_key: Option<String>,
    /// With a client key: its signature (hex) over SHA-256("dtenge/rekey/v1" ‖ account id ‖ old key ‖ new key).
    pub proof: Option<String>,
}

/// The result of a key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RekeyView {
    /// The DA.
    pub account: String,
    /// The revoked key.
    pub old_address: String,
    /// The new key.
    pub new_address: String,
    /// The rotation transactions (host-signed `rekey`).
    pub txs: Vec<String>,
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

/// Closing a DA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CloseBody {
    /// Convert the standard balance to the linked bank account first.
    #[serde(default)]
    pub convert_out: bool,
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
        Some(p) => Ok(Json(PolicyView::of(&p, Vec::new()))),
        None => Err(ApiError::not_found("NBK has not published a limit policy yet")),
    }
}

#[utoipa::path(post, path = "/api/v1/nbk/limits", tag = "nbk", request_body = LimitsBody,
    responses((status = 201, body = PolicyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn publish_limits(
    State(state): State<Shared>,
    req: Signed<LimitsBody>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    nbk_only(&req.caller, "publish tier limits")?;
    let node = state.node_of(&req.caller)?;
    let body = req.body;
    let policy = LimitPolicy {
        version: 0,
        simplified: body.simplified.limits(),
        standard: body.standard.limits(),
        full: body.full.limits(),
        published_at: Timestamp(0),
    };
    let answers = node.publish_policy(policy).await?;
    let adopted = node.read(|s| s.policy.clone()).ok_or_else(|| ApiError::not_found("no policy"))?;
    let nodes = answers.into_iter().map(|(node, answer)| NodeAnswerView { node, answer }).collect();
    Ok((StatusCode::CREATED, Json(PolicyView::of(&adopted, nodes))))
}

fn nbk_only(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if caller.role == Role::Nbk {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("only NBK may {what}; {} is not NBK", caller.id)))
    }
}

// ---------------------------------------------------------------------------
// Enforcement orders

/// What an order does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderActDto {
    /// Nothing may leave the DA.
    Freeze,
    /// This much may not be spent.
    Arrest {
        /// Amount in tiyn.
        amount_tiyn: u64,
    },
    /// Debit the DA to the beneficiary (as much as its free standard funds allow).
    Collect {
        /// Amount in tiyn.
        amount_tiyn: u64,
        /// The beneficiary's DA address (hex).
        beneficiary: String,
    },
    /// Lift an earlier freeze or arrest of the same body.
    Lift {
        /// Its reference.
        order: String,
    },
}

/// An authority's signed order, delivered to the DA's bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderBody {
    /// The bank (node) hosting the DA.
    pub bank: String,
    /// The authority's reference (1-64 characters).
    pub reference: String,
    /// The DA's address (hex).
    pub debtor: String,
    /// What the order does.
    pub act: OrderActDto,
    /// The legal reason (1-140 characters).
    pub reason: String,
    /// When the authority issued it (ms).
    pub issued_at_ms: u64,
    /// The authority's Ed25519 signature (hex) over the order (see `dtenge_types::EnforcementOrder::signing_message`).
    pub signature: String,
}

impl OrderBody {
    /// The order this body describes, signed by the caller's key `authority`.
    pub fn order(&self, authority: dtenge_crypto::PublicKey) -> Result<EnforcementOrder, ApiError> {
        let bad = |code: &str, e: String| ApiError::bad_request(code, e);
        let act = match &self.act {
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
            reference: OrderRef::new(self.reference.clone()).map_err(|e| bad("bad_reference", e.to_string()))?,
            authority,
            debtor: address(&self.debtor, "debtor")?,
            act,
            reason: Memo::new(self.reason.clone()).map_err(|e| bad("bad_reason", e.to_string()))?,
            issued_at: Timestamp(self.issued_at_ms),
        })
    }
}

/// An order as the bank records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    /// The bank hosting the DA.
    pub bank: String,
    /// The DA.
    pub account: String,
    /// The authority (participant) that delivered it.
    pub authority: String,
    /// The authority's key.
    pub authority_key: String,
    /// Its reference.
    pub reference: String,
    /// What it does.
    pub act: OrderActDto,
    /// The legal reason.
    pub reason: String,
    /// The authority's signature (hex).
    pub signature: String,
    /// Recorded at (ms).
    pub placed_at_ms: u64,
    /// In force (freeze / arrest not lifted).
    pub active: bool,
    /// Lifted by which order, if lifted.
    pub lifted_by: Option<String>,
    /// Collected so far (tiyn).
    pub collected_tiyn: u64,
    /// Collection transactions.
    pub txs: Vec<String>,
}

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
    let order = req.body.order(key)?;
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

/// Report period and threshold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// From (ms, inclusive); default the epoch.
    pub from_ms: Option<u64>,
    /// To (ms, inclusive); default now.
    pub to_ms: Option<u64>,
    /// Large-payment threshold in tiyn (default 100 000 000 = 1 000 000 DT).
    pub threshold_tiyn: Option<u64>,
}

/// Default large-payment threshold: 1 000 000 DT.
pub const DEFAULT_THRESHOLD_TIYN: u64 = 100_000_000;

/// One day at one bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayView {
    /// The Astana day, `YYYY-MM-DD`.
    pub day: String,
    /// Payments out of the bank's DAs.
    pub payments_out: u64,
    /// Their total (tiyn).
    pub amount_out_tiyn: u64,
    /// Payments into the bank's DAs.
    pub payments_in: u64,
    /// Their total (tiyn).
    pub amount_in_tiyn: u64,
}

/// A bank's aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BankAggregatesView {
    /// The bank.
    pub bank: String,
    /// Open DAs.
    pub accounts_open: u64,
    /// Closed DAs.
    pub accounts_closed: u64,
    /// Individuals' open DAs per tier.
    pub tiers: std::collections::BTreeMap<String, u64>,
    /// Freezes and arrests in force.
    pub active_orders: u64,
    /// Per day.
    pub days: Vec<DayView>,
}

/// A payment at or above the threshold: bank, amount, time, transaction — no names, no IINs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LargePaymentView {
    /// The transaction.
    pub tx: String,
    /// The payer's bank.
    pub bank: String,
    /// Amount (tiyn).
    pub amount_tiyn: u64,
    /// When (ms).
    pub at_ms: u64,
    /// When, Astana time.
    pub at: String,
    /// The command.
    pub kind: String,
    /// The payer's holder kind.
    pub payer_kind: HolderKindDto,
}

/// One move of marked funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkedMoveView {
    /// The transaction.
    pub tx: String,
    /// Marking level reached (address markings).
    pub level: Option<u8>,
    /// Marked amount moved (tiyn).
    pub amount_tiyn: u64,
    /// Banks of the receivers.
    pub to_banks: Vec<String>,
}

/// Traceability of one marking, as its initiator's node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkedReportView {
    /// `address:<reference>` or `parameter:<id>`.
    pub marking: String,
    /// The initiator's node.
    pub initiator_node: String,
    /// Total marked amount moved (tiyn).
    pub moved_tiyn: u64,
    /// The moves.
    pub moves: Vec<MarkedMoveView>,
}

async fn gather(state: &Shared, caller: &Caller, q: &ReportQuery) -> Result<Vec<BankReport>, ApiError> {
    nbk_only(caller, "read the regulator's view")?;
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
            payer_kind: l.payer_kind.into(),
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
    Ok(Json(
        reports
            .iter()
            .flat_map(|r| r.marked.iter())
            .map(|m| MarkedReportView {
                marking: m.marking.clone(),
                initiator_node: m.initiator_node.to_string(),
                moved_tiyn: m.moves.iter().map(|v| v.amount.tiyn()).fold(0u64, u64::saturating_add),
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
            .collect(),
    ))
}
