//! Offline device-to-device payments (issue 21.3, docs/offline.md): a bank
//! certifies devices, funds purses from DAs into its offline reserve, takes
//! deposits of chains its clients received offline, and publishes the bank
//! keys and revocation lists wallets fetch when online.
//!
//! A deposit is handed to the desk of the bank whose load the chain spends
//! (its reserve pays): on this platform directly, or, when that bank runs
//! elsewhere, through the depositing bank's node (`NodeRequest::OfflineDeposit`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dtenge_api_types::{
    CertificateView, CertifyDevice, DepositChain, DepositView, FundPurse, LoadView, OfflineBank, OfflineTrustView,
    RevocationView,
};
use dtenge_crypto::PublicKey;
use dtenge_node::service::DepositRefusal;
use dtenge_offline::{OfflineError, decode_chain};
use dtenge_platform::offline::{DepositOutcome, DeskError, OfflineDesk};
use dtenge_types::{Address, Amount, TxId, encoding};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::dto::positive_amount;
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::state::{Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(certify)).routes(routes!(fund)).routes(routes!(deposit)).routes(routes!(trust))
}

impl From<OfflineError> for ApiError {
    fn from(e: OfflineError) -> ApiError {
        ApiError::unprocessable(e.api_code(), e.to_string())
    }
}

impl From<DepositRefusal> for ApiError {
    fn from(e: DepositRefusal) -> ApiError {
        match e {
            DepositRefusal::Offline(e) => e.into(),
            DepositRefusal::OfflineCode { code, message } => ApiError::unprocessable(code.api_code(), message),
            DepositRefusal::Node(e) => e.into(),
        }
    }
}

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> ApiError {
        match e {
            DeskError::Offline(e) => e.into(),
            DeskError::Node(e) => e.into(),
            DeskError::Journal(reason) => ApiError::unavailable("offline_journal", reason),
            DeskError::NotPaid(reason) => ApiError::unprocessable("offline_not_paid", reason),
            e @ DeskError::PaymentUsed => ApiError::new(StatusCode::CONFLICT, "offline_payment_used", e.to_string()),
        }
    }
}

fn device_key(text: &str) -> Result<PublicKey, ApiError> {
    let key: PublicKey =
        text.trim().parse().map_err(|e| ApiError::bad_request("bad_device_key", format!("device_key: {e}")))?;
    key.check_canonical()
        .map_err(|e| ApiError::bad_request("bad_device_key", format!("device_key is not a valid Ed25519 key: {e}")))?;
    Ok(key)
}

fn desk_of<'a>(
    state: &'a Shared,
    bank: &dtenge_types::ParticipantId,
) -> Result<&'a std::sync::Arc<OfflineDesk>, ApiError> {
    state.platform.offline_desk(bank).ok_or_else(|| {
        ApiError::forbidden_code("no_offline_desk", format!("{bank} runs no offline desk on this platform"))
    })
}

#[utoipa::path(post, path = "/api/v1/offline/certificates", tag = "offline", request_body = CertifyDevice,
    responses((status = 200, body = CertificateView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn certify(State(state): State<Shared>, req: Signed<CertifyDevice>) -> Result<Json<CertificateView>, ApiError> {
    let desk = desk_of(&state, &req.caller.id)?;
    let device = device_key(&req.body.device_key)?;
    let c = desk.certify(device, req.body.next_counter)?;
    // Opened here so a holder can pay into it before asking for a load.
    let reserve = desk.reserve().await?;
    Ok(Json(CertificateView {
        certificate: hex::encode(encoding::encode(&c)),
        balance_max_tiyn: c.limits.balance_max.tiyn(),
        payment_max_tiyn: c.limits.payment_max.tiyn(),
        payments_max: c.limits.payments_max,
        valid_until_ms: c.valid_until.millis(),
        reserve: reserve.address.to_string(),
    }))
}

#[utoipa::path(post, path = "/api/v1/offline/loads", tag = "offline", request_body = FundPurse,
    responses((status = 200, body = LoadView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
async fn fund(State(state): State<Shared>, req: Signed<FundPurse>) -> Result<Json<LoadView>, ApiError> {
    let desk = desk_of(&state, &req.caller.id)?;
    let from = own_account(req.caller.id.as_str(), &req.body.from)?;
    let device = device_key(&req.body.device_key)?;
    let amount = positive_amount(req.body.amount_tiyn, "amount_tiyn")?;
    let (load, tx) = match req.body.paid_tx.as_deref() {
        Some(paid) => {
            let tx: TxId = paid
                .trim()
                .parse()
                .map_err(|e| ApiError::bad_request("bad_tx_id", format!("paid_tx: not a transaction id ({e})")))?;
            (desk.load_paid(&from, tx, device, amount).await?, tx)
        }
        None => desk.fund(&from, device, amount).await?,
    };
    Ok(Json(LoadView {
        load: hex::encode(encoding::encode(&load)),
        serial: load.serial,
        tx: tx.to_string(),
        reserve: desk.reserve_address().to_string(),
    }))
}

#[utoipa::path(post, path = "/api/v1/offline/deposits", tag = "offline", request_body = DepositChain,
    responses((status = 200, body = DepositView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
async fn deposit(State(state): State<Shared>, req: Signed<DepositChain>) -> Result<Json<DepositView>, ApiError> {
    let node = state.node_of(&req.caller)?;
    let bytes =
        hex::decode(req.body.chain.trim()).map_err(|_| ApiError::bad_request("bad_hex", "chain must be hex"))?;
    let chain = decode_chain(&bytes)?;
    // The deposit hop names the DA; only its own bank deposits into it.
    let to = chain.hops.as_slice().last().map(|h| Address(h.payee)).ok_or(OfflineError::Range(0))?;
    if node.read(|s| s.account_of(&to).is_none()) {
        return Err(ApiError::forbidden_code(
            "not_own_account",
            format!("the chain is deposited to {to}, which is not a DA at {}", node.id()),
        ));
    }
    let outcome = match state.platform.offline_desk(&chain.load.bank) {
        Some(desk) => desk.deposit(chain).await?,
        None => {
            let bank = chain.load.bank.clone();
            node.hand_deposit(&bank, chain).await?
        }
    };
    let view = match outcome {
        DepositOutcome::Settled { amount, tx } => DepositView {
            outcome: "settled".into(),
            amount_tiyn: amount.tiyn(),
            tx: Some(tx.to_string()),
            culprit: None,
            proof: None,
            loss_tiyn: 0,
        },
        DepositOutcome::AlreadySettled { tx } => DepositView {
            outcome: "already_settled".into(),
            amount_tiyn: 0,
            tx: tx.map(|t| t.to_string()),
            culprit: None,
            proof: None,
            loss_tiyn: 0,
        },
        DepositOutcome::DoubleSpend(conflict) => DepositView {
            outcome: "double_spend".into(),
            amount_tiyn: Amount::ZERO.tiyn(),
            tx: None,
            culprit: Some(conflict.proof.device().to_string()),
            proof: Some(hex::encode(encoding::encode(&conflict.proof))),
            loss_tiyn: conflict.loss.tiyn(),
        },
    };
    Ok(Json(view))
}

#[utoipa::path(get, path = "/api/v1/offline/trust", tag = "offline",
    responses((status = 200, body = OfflineTrustView), (status = 403, body = crate::error::ErrorBody)))]
async fn trust(
    State(state): State<Shared>,
    Authenticated(_caller): Authenticated,
) -> Result<Json<OfflineTrustView>, ApiError> {
    let platform = &state.platform;
    let mut banks = Vec::new();
    let mut revocations = Vec::new();
    for (bank, desk) in &platform.offline {
        let key = desk.trust().bank_key(bank)?;
        banks.push(OfflineBank { bank: bank.to_string(), key: key.to_string() });
        let list = desk.revocations().await;
        revocations.push(RevocationView {
            bank: bank.to_string(),
            serial: list.serial,
            devices: list.devices.iter().map(|d| d.to_string()).collect(),
            list: hex::encode(encoding::encode(&list)),
        });
    }
    Ok(Json(OfflineTrustView { banks, revocations }))
}
