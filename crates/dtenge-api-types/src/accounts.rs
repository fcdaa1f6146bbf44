//! Digital accounts on the caller's own node: opening, KYC, balances,
//! history, notifications; the platform directory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::StatusView;

/// A holder's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HolderKindDto {
    /// A person (IIN).
    Individual,
    /// A company (BIN).
    LegalEntity,
    /// A government agency (Treasury).
    GovernmentAgency,
    /// An institution's own DA.
    Institution,
}

/// KYC state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KycDto {
    /// Not yet identified: may receive, may not pay.
    Pending,
    /// Identified.
    Verified,
    /// Refused.
    Rejected,
}

/// Opening a DA (`POST /api/v1/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpenAccount {
    /// The holder's IIN (individuals) or BIN (companies, agencies), 12 digits with a valid check digit.
    pub iin_bin: String,
    /// The holder's name as identified.
    pub name: String,
    /// The holder's kind (`institution` is refused: those DAs are configured).
    pub kind: HolderKindDto,
    /// KYC state at opening (default `pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<KycDto>,
    /// The holder's own public key (hex) if they sign themselves; otherwise the bank keeps the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_public_key: Option<String>,
}

/// Changing a DA's KYC state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetKyc {
    /// The new state.
    pub kyc: KycDto,
}

/// A digital account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// Its id, `<node>-<number>`.
    pub id: String,
    /// The hosting node.
    pub node: String,
    /// Holder's IIN/BIN.
    pub iin_bin: String,
    /// Holder's name.
    pub name: String,
    /// Holder's kind.
    pub kind: HolderKindDto,
    /// The DA's address (hex public key).
    pub address: String,
    /// KYC state.
    pub kyc: KycDto,
    /// `custodial` (the bank holds the key) or `client` (the holder signs).
    pub custody: String,
    /// Opened at (ms since epoch).
    pub opened_at_ms: u64,
    /// Opened at, Astana time.
    pub opened_at: String,
}

/// Balances by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    /// The account.
    pub account: String,
    /// Free to spend.
    pub standard_tiyn: u64,
    /// Purpose-bound.
    pub marked_tiyn: u64,
    /// Held for events.
    pub held_tiyn: u64,
    /// VAT-marked.
    pub vat_tiyn: u64,
    /// Reserved for debit mandates.
    pub mandated_tiyn: u64,
    /// In a stablecoin's reserve (a licensed issuer's DA): spent only by a burn.
    #[serde(default)]
    pub reserve_tiyn: u64,
    /// Everything.
    pub total_tiyn: u64,
    /// The total as shown to people, `4 000,00`.
    pub total: String,
    /// Other currencies held (cross-border), by code, in their smallest unit.
    #[serde(default)]
    pub other_currencies: BTreeMap<String, u64>,
}

/// A history line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// The transaction id.
    pub tx: String,
    /// When (ms).
    pub at_ms: u64,
    /// When, Astana time.
    pub at: String,
    /// The command (`transfer`, `hold`, `pay_invoice`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Money in, in the smallest unit of `currency`.
    pub incoming_tiyn: u64,
    /// Money out, in the smallest unit of `currency`.
    pub outgoing_tiyn: u64,
    /// The currency of both amounts (`DT`, or a PvP counterparty's): a
    /// transaction moving several currencies for the DA has one line per
    /// currency. Absent only on lines recorded before lines were per currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Counterparty addresses.
    pub counterparties: Vec<String>,
    /// Purpose text.
    #[serde(default)]
    pub memo: Option<String>,
    /// Outcome.
    pub status: StatusView,
}

/// What a notification tells, by kind: a program reads this, never
/// [`NotificationView::text`]; a page words it in its reader's language
/// from the kind and [`NotificationView::params`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Funds arrived. Params: `amount`, `currency`, `command`.
    Incoming,
    /// Funds are held for the DA until an oracle event occurs. Params: `amount`, `event`.
    HeldForYou,
    /// An oracle event the DA takes part in was registered. Params: `event`.
    EventRegistered,
    /// The waterfall topped the DA up from its linked bank account. Params: `amount`, `bank_account`.
    ToppedUp,
    /// What exceeded the DA's cap moved to its linked bank account. Params: `amount`, `bank_account`.
    SweptOverCap,
    /// An authority froze the DA. Params: `order`, `by`, `reason`.
    Frozen,
    /// An authority arrested an amount. Params: `amount`, `order`, `by`, `reason`.
    Arrested,
    /// An authority ordered a collection of up to an amount. Params: `amount`, `order`, `by`, `reason`.
    CollectionOrdered,
    /// A freeze or arrest was lifted. Params: `order`, `by`, `reason`.
    OrderLifted,
    /// The DA has a new key after re-identification. Params: `address`.
    Rekeyed,
    /// Words only (a notification stored before kinds were, or one from a
    /// server older than kinds): read `text`.
    #[default]
    Words,
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    /// When (ms).
    pub at_ms: u64,
    /// When, Astana time.
    pub at: String,
    /// What happened, by kind (`words` when a server older than kinds left
    /// it out).
    #[serde(default)]
    pub kind: NotificationKind,
    /// Its particulars by name (see [`NotificationKind`]); amounts as
    /// people read them (`4 000,00`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// What happened, in English.
    pub text: String,
    /// The transaction, if any.
    #[serde(default)]
    pub tx: Option<String>,
}

/// A DA as the platform directory knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DirectoryEntryView {
    /// Its address.
    pub address: String,
    /// The bank (node) hosting it.
    pub bank: String,
    /// Its id at that bank.
    pub account: String,
    /// The holder's name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_notification_names_its_kind_and_one_from_a_server_without_kinds_reads_as_words() {
        let held = r#"{"at_ms":1,"at":"t","kind":"held_for_you","params":{"amount_tiyn":"500","event":"E-1"},"text":"5,00 DT held for you until event E-1 occurs"}"#;
        let n: NotificationView = serde_json::from_str(held).unwrap();
        assert_eq!(n.kind, NotificationKind::HeldForYou);
        assert_eq!(n.params.get("event").map(String::as_str), Some("E-1"));
        assert_eq!(serde_json::to_value(&n).unwrap()["kind"], "held_for_you");

        let older: NotificationView =
            serde_json::from_str(r#"{"at_ms":1,"at":"t","text":"Incoming 1,00 DT (transfer)"}"#).unwrap();
        assert_eq!((older.kind, older.params.is_empty()), (NotificationKind::Words, true));
        assert!(serde_json::from_str::<NotificationView>(r#"{"at_ms":1,"at":"t","kind":"gift","text":"x"}"#).is_err());
    }
}
