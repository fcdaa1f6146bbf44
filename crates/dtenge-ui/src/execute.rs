//! From a maker's form to a [`store::Action`] (checked and resolved through
//! the API when prepared, so the checker sees exactly what will happen), and
//! from an approved action to the API call that performs it.

use std::str::FromStr;

use dtenge_client::{
    Client, ClientError, ConversionKindDto, HoldRequest, HolderKindDto, KycDto, MarkAddressRequest, MarkingLevelDto,
    OpenAccount, Recipient, TransferRequest, TxOutcomeView,
};
use dtenge_types::{Amount, EventId, IinBin, MarkingRef};
use serde::Deserialize;

use crate::error::UiError;
use crate::store::{self, Action, Marking, Outcome, Party, Request};

/// Longest purpose text.
pub const MEMO_CHARS_MAX: usize = 140;

/// A maker's form, as the page sends it.
#[derive(Debug, Default, Deserialize)]
pub struct PrepareBody {
    /// `transfer`, `open_account`, `issuance`, `redemption`, `hold`, `hold_release`, `hold_cancel`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Transfer: the paying DA.
    pub from: Option<String>,
    /// Transfer and hold: the recipient's IIN/BIN…
    pub to_iin_bin: Option<String>,
    /// …and bank.
    pub to_bank: Option<String>,
    /// Amount as people write it (`1 500,00`, `1500.5`).
    pub amount: Option<String>,
    /// Transfer: purpose.
    pub memo: Option<String>,
    /// Transfer: marking.
    pub marking: Option<MarkingBody>,
    /// Open account: BIN.
    pub bin: Option<String>,
    /// Open account: name.
    pub name: Option<String>,
    /// Holds: the DA.
    pub account: Option<String>,
    /// Holds: the event.
    pub event: Option<String>,
}

/// The marking part of a transfer form.
#[derive(Debug, Deserialize)]
pub struct MarkingBody {
    /// Budget programme / state contract reference.
    pub reference: String,
    /// The one allowed next recipient: IIN/BIN…
    pub allowed_iin_bin: String,
    /// …and bank.
    pub allowed_bank: String,
    /// Limit for that level.
    pub limit: String,
}

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, UiError> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| UiError::BadInput(format!("{field}: required")))
}

/// Parses an amount into positive tiyn.
pub fn amount_tiyn(text: &str, field: &str) -> Result<u64, UiError> {
    let amount = Amount::from_str(text).map_err(|e| UiError::BadInput(format!("{field}: {e}")))?;
    if amount.tiyn() == 0 {
        return Err(UiError::BadInput(format!("{field}: must be more than 0")));
    }
    Ok(amount.tiyn())
}

fn not_found_is_bad_input(e: ClientError, what: String) -> UiError {
    match e.status() {
        Some(404) | Some(400) => UiError::BadInput(format!("{what}: {}", UiError::Api(e).message())),
        _ => UiError::Api(e),
    }
}

async fn party(client: &Client, iin_bin: &str, bank: &str, field: &str) -> Result<Party, UiError> {
    let iin_bin = iin_bin.trim();
    IinBin::parse(iin_bin).map_err(|e| UiError::BadInput(format!("{field} IIN/BIN: {e}")))?;
    let bank = bank.trim().to_uppercase();
    let entries =
        client.directory(iin_bin).await.map_err(|e| not_found_is_bad_input(e, format!("{field} {iin_bin}")))?;
    let entry = entries
        .into_iter()
        .find(|e| e.bank == bank)
        .ok_or_else(|| UiError::BadInput(format!("{field}: {iin_bin} has no digital account at {bank}")))?;
    Ok(Party { iin_bin: iin_bin.to_string(), bank, name: entry.name, address: entry.address })
}

async fn own_account(client: &Client, id: &str, field: &str) -> Result<String, UiError> {
    let view = client.account(id.trim()).await.map_err(|e| match e.status() {
        Some(403) | Some(404) | Some(400) => UiError::BadInput(format!("{field}: no account {id} of yours")),
        _ => UiError::Api(e),
    })?;
    Ok(view.name)
}

/// Checks a maker's form and resolves names and addresses through the API.
pub async fn prepare(client: &Client, body: &PrepareBody) -> Result<Action, UiError> {
    match body.kind.as_str() {
        "open_account" => {
            let bin = required(&body.bin, "BIN")?;
            let parsed = IinBin::parse(bin).map_err(|e| UiError::BadInput(format!("BIN: {e}")))?;
            let name = required(&body.name, "name")?;
            if name.chars().count() > 200 {
                return Err(UiError::BadInput("name: at most 200 characters".into()));
            }
            Ok(Action::OpenAccount { bin: parsed.to_string(), name: name.to_string() })
        }
        "transfer" => {
            let from = required(&body.from, "from")?;
            let from_name = own_account(client, from, "from").await?;
            let to =
                party(client, required(&body.to_iin_bin, "recipient")?, required(&body.to_bank, "bank")?, "recipient")
                    .await?;
            let amount = amount_tiyn(required(&body.amount, "amount")?, "amount")?;
            let memo = body.memo.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::to_string);
            if memo.as_ref().is_some_and(|m| m.chars().count() > MEMO_CHARS_MAX) {
                return Err(UiError::BadInput(format!("purpose: at most {MEMO_CHARS_MAX} characters")));
            }
            let marking = match &body.marking {
                None => None,
                Some(m) => {
                    let reference = m.reference.trim();
                    MarkingRef::from_str(reference)
                        .map_err(|e| UiError::BadInput(format!("marking reference: {e}")))?;
                    let allowed = party(client, &m.allowed_iin_bin, &m.allowed_bank, "allowed recipient").await?;
                    let limit_tiyn = amount_tiyn(&m.limit, "marking limit")?;
                    Some(Marking { reference: reference.to_string(), allowed: vec![allowed], limit_tiyn })
                }
            };
            Ok(Action::Transfer { from: from.to_string(), from_name, to, amount_tiyn: amount, memo, marking })
        }
        "issuance" => Ok(Action::Issuance { amount_tiyn: amount_tiyn(required(&body.amount, "amount")?, "amount")? }),
        "redemption" => {
            Ok(Action::Redemption { amount_tiyn: amount_tiyn(required(&body.amount, "amount")?, "amount")? })
        }
        "hold" => {
            let account = required(&body.account, "account")?;
            own_account(client, account, "account").await?;
            let event = required(&body.event, "event")?;
            EventId::from_str(event).map_err(|e| UiError::BadInput(format!("event: {e}")))?;
            let to =
                party(client, required(&body.to_iin_bin, "recipient")?, required(&body.to_bank, "bank")?, "recipient")
                    .await?;
            let amount = amount_tiyn(required(&body.amount, "amount")?, "amount")?;
            Ok(Action::Hold { account: account.to_string(), event: event.to_string(), to, amount_tiyn: amount })
        }
        "hold_release" | "hold_cancel" => {
            let account = required(&body.account, "account")?.to_string();
            own_account(client, &account, "account").await?;
            let event = required(&body.event, "event")?.to_string();
            EventId::from_str(&event).map_err(|e| UiError::BadInput(format!("event: {e}")))?;
            Ok(if body.kind == "hold_release" {
                Action::HoldRelease { account, event }
            } else {
                Action::HoldCancel { account, event }
            })
        }
        other => Err(UiError::BadInput(format!(
            "type {other:?}: one of transfer, open_account, issuance, redemption, hold, hold_release, hold_cancel"
        ))),
    }
}

fn tx_outcome(view: TxOutcomeView) -> Outcome {
    let status = match view.status.status.as_str() {
        "success" => store::status::SUCCESS,
        "rejected" => store::status::REJECTED,
        _ => store::status::REQUEST_ACCEPTED,
    };
    let (reason, reason_code) = match status {
        s if s == store::status::REQUEST_ACCEPTED => (
            Some(format!("the transaction is still settling ({}); see Operations", view.status.status)),
            Some(store::reason_code::SETTLING.to_string()),
        ),
        _ => (view.status.reason, view.status.reason_code),
    };
    Outcome { status, reason, reason_code, result: Some(view.tx) }
}

/// Performs an approved request through the API as its participant.
pub async fn run(client: &Client, request: &Request) -> Outcome {
    let key = format!("ui-{}-{}", request.participant, request.id);
    let key = Some(key.as_str());
    let answer: Result<Outcome, ClientError> = match &request.action {
        Action::OpenAccount { bin, name } => client
            .open_account(
                &OpenAccount {
                    iin_bin: bin.clone(),
                    name: name.clone(),
                    kind: HolderKindDto::LegalEntity,
                    kyc: Some(KycDto::Verified),
                    client_public_key: None,
                },
                key,
            )
            .await
            .map(|a| Outcome::success(a.id)),
        Action::Transfer { from, to, amount_tiyn, memo, marking: None, .. } => client
            .transfer(
                &TransferRequest {
                    from: from.clone(),
                    to: vec![Recipient::address(to.address.clone(), *amount_tiyn)],
                    memo: memo.clone(),
                },
                key,
            )
            .await
            .map(tx_outcome),
        Action::Transfer { from, to, amount_tiyn, memo, marking: Some(m), .. } => {
            let request = MarkAddressRequest {
                account: from.clone(),
                recipient: to.address.clone(),
                amount_tiyn: *amount_tiyn,
                reference: m.reference.clone(),
                levels: vec![MarkingLevelDto {
                    recipients: m.allowed.iter().map(|p| p.address.clone()).collect(),
                    limit_tiyn: m.limit_tiyn,
                }],
                memo: memo.clone(),
            };
            client.mark_address(&request, key).await.map(tx_outcome)
        }
        Action::Issuance { amount_tiyn } | Action::Redemption { amount_tiyn } => {
            let kind = if matches!(request.action, Action::Issuance { .. }) {
                ConversionKindDto::Issue
            } else {
                ConversionKindDto::Redeem
            };
            client.request_conversion(kind, *amount_tiyn, key).await.map(|c| Outcome::success(c.id))
        }
        Action::Hold { account, event, .. } => client
            .hold(&HoldRequest { account: account.clone(), event: event.clone(), amount_tiyn: None }, key)
            .await
            .map(tx_outcome),
        Action::HoldRelease { account, event } => client.release_hold(event, account, key).await.map(tx_outcome),
        Action::HoldCancel { account, event } => client.cancel_hold(event, account, key).await.map(tx_outcome),
    };
    match answer {
        Ok(outcome) => outcome,
        // A refusal (4xx) changed nothing; anything else may have: say so rather than guess.
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
            let refused = UiError::Api(e);
            Outcome {
                status: store::status::REJECTED,
                reason: Some(refused.message()),
                reason_code: refused.platform_code(),
                result: None,
            }
        }
        Err(e) => Outcome {
            status: store::status::REQUEST_ACCEPTED,
            reason: Some(format!("the platform gave no clear answer ({e}); check the accounts' history")),
            reason_code: Some(store::reason_code::NO_CLEAR_ANSWER.to_string()),
            result: None,
        },
    }
}
