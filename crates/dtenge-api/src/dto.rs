//! JSON counterparts of everything that crosses the API edge. Money is
//! integer tiyn in fields ending `_tiyn` (1 DT = 100 tiyn) with a display
//! string beside it; times are milliseconds since the epoch (`_ms`) with an
//! Astana-time (UTC+5) string beside them.

use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::state::{HistoryEntry, Status};
use dtenge_node::vault::Balances;
use dtenge_types::{Address, Amount, IinBin, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Astana time (UTC+5) of a timestamp, ISO 8601.
pub fn astana(at: Timestamp) -> String {
    dtenge_cbs::format_astana(at)
}

/// A status as shown everywhere (SPEC §6).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// `request_accepted`, `under_review`, `success` or `rejected`.
    pub status: String,
    /// Why, when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Status> for StatusView {
    fn from(s: &Status) -> Self {
        match s {
            Status::RequestAccepted => StatusView { status: "request_accepted".into(), reason: None },
            Status::UnderReview => StatusView { status: "under_review".into(), reason: None },
            Status::Success => StatusView { status: "success".into(), reason: None },
            Status::Rejected { reason } => StatusView { status: "rejected".into(), reason: Some(reason.clone()) },
        }
    }
}

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

impl From<HolderKind> for HolderKindDto {
    fn from(k: HolderKind) -> Self {
        match k {
            HolderKind::Individual => HolderKindDto::Individual,
            HolderKind::LegalEntity => HolderKindDto::LegalEntity,
            HolderKind::GovernmentAgency => HolderKindDto::GovernmentAgency,
            HolderKind::Institution => HolderKindDto::Institution,
        }
    }
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

impl From<KycState> for KycDto {
    fn from(k: KycState) -> Self {
        match k {
            KycState::Pending => KycDto::Pending,
            KycState::Verified => KycDto::Verified,
            KycState::Rejected => KycDto::Rejected,
        }
    }
}

impl From<KycDto> for KycState {
    fn from(k: KycDto) -> Self {
        match k {
            KycDto::Pending => KycState::Pending,
            KycDto::Verified => KycState::Verified,
            KycDto::Rejected => KycState::Rejected,
        }
    }
}

/// A digital account.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

impl AccountView {
    /// The view of an account on `node`.
    pub fn of(a: &Account, node: &str) -> AccountView {
        AccountView {
            id: a.id.to_string(),
            node: node.to_string(),
            iin_bin: a.holder.iin_bin.to_string(),
            name: a.holder.name.clone(),
            kind: a.holder.kind.into(),
            address: a.address.to_string(),
            kyc: a.kyc.into(),
            custody: if a.key().is_some() { "custodial".into() } else { "client".into() },
            opened_at_ms: a.opened_at.millis(),
            opened_at: astana(a.opened_at),
        }
    }
}

/// Balances by kind.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    /// Everything.
    pub total_tiyn: u64,
    /// The total as shown to people, `4 000,00`.
    pub total: String,
    /// Other currencies held (cross-border), by code, in their smallest unit.
    pub other_currencies: std::collections::BTreeMap<String, u64>,
}

impl BalanceView {
    /// From vault balances.
    pub fn of(account: &str, b: &Balances) -> BalanceView {
        BalanceView {
            account: account.to_string(),
            standard_tiyn: b.standard.tiyn(),
            marked_tiyn: b.marked.tiyn(),
            held_tiyn: b.held.tiyn(),
            vat_tiyn: b.vat.tiyn(),
            mandated_tiyn: b.mandated.tiyn(),
            total_tiyn: b.total.tiyn(),
            total: b.total.to_string(),
            other_currencies: b.other_currencies.iter().map(|(c, a)| (c.clone(), a.tiyn())).collect(),
        }
    }
}

/// A history line.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    /// Money in.
    pub incoming_tiyn: u64,
    /// Money out.
    pub outgoing_tiyn: u64,
    /// Counterparty addresses.
    pub counterparties: Vec<String>,
    /// Purpose text.
    pub memo: Option<String>,
    /// Outcome.
    pub status: StatusView,
}

impl From<&HistoryEntry> for HistoryView {
    fn from(h: &HistoryEntry) -> Self {
        HistoryView {
            tx: h.tx.to_string(),
            at_ms: h.at.millis(),
            at: astana(h.at),
            kind: h.kind.clone(),
            incoming_tiyn: h.incoming.tiyn(),
            outgoing_tiyn: h.outgoing.tiyn(),
            counterparties: h.counterparties.iter().map(Address::to_string).collect(),
            memo: h.memo.clone(),
            status: (&h.status).into(),
        }
    }
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in all pages.
    pub total: usize,
    /// This page, from 1.
    pub page: usize,
    /// Items per page.
    pub per_page: usize,
}

/// Paging and filters for lists.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number from 1 (default 1).
    pub page: Option<usize>,
    /// Items per page, 1-200 (default 50).
    pub per_page: Option<usize>,
    /// Only items at or after this time (ms since epoch).
    pub from_ms: Option<u64>,
    /// Only items before this time (ms since epoch).
    pub to_ms: Option<u64>,
    /// Only items with this status (`request_accepted`, `under_review`, `success`, `rejected`).
    pub status: Option<String>,
    /// Only items of this type (e.g. `transfer`, `hold`, `issue`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

/// A page being filled (see [`ListQuery::pager`]).
#[derive(Debug)]
pub struct Pager<T> {
    skip: usize,
    page: usize,
    per_page: usize,
    seen: usize,
    items: Vec<T>,
}

impl<T> Pager<T> {
    /// Offers the next matching item; `false` once the page is full (the
    /// caller may stop if it knows the total otherwise).
    pub fn push(&mut self, item: T) -> bool {
        if self.seen >= self.skip && self.items.len() < self.per_page {
            self.items.push(item);
        }
        self.seen = self.seen.saturating_add(1);
        self.items.len() < self.per_page
    }

    /// The page; `total` if known, else the number of items offered.
    pub fn finish(self, total: Option<usize>) -> Page<T> {
        Page { items: self.items, total: total.unwrap_or(self.seen), page: self.page, per_page: self.per_page }
    }
}

impl ListQuery {
    /// Pages `items` (already filtered), newest first order is the caller's.
    pub fn page<T>(&self, items: Vec<T>) -> Result<Page<T>, ApiError> {
        let mut pager = self.pager()?;
        for item in items {
            pager.push(item);
        }
        Ok(pager.finish(None))
    }

    /// A page filled item by item (matching items in page order), so a long
    /// history is streamed rather than materialised.
    pub fn pager<T>(&self) -> Result<Pager<T>, ApiError> {
        let per_page = self.per_page.unwrap_or(50);
        if !(1..=200).contains(&per_page) {
            return Err(ApiError::bad_request("bad_page", "per_page must be 1-200"));
        }
        let page = self.page.unwrap_or(1);
        if page == 0 {
            return Err(ApiError::bad_request("bad_page", "page starts at 1"));
        }
        let skip = (page - 1).saturating_mul(per_page);
        Ok(Pager { skip, page, per_page, seen: 0, items: Vec::new() })
    }

    /// Whether any filter (period, status, type) is set.
    pub fn filters(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some() || self.status.is_some() || self.kind.is_some()
    }

    /// Whether a time lies in the requested period.
    pub fn in_period(&self, at_ms: u64) -> bool {
        self.from_ms.is_none_or(|f| at_ms >= f) && self.to_ms.is_none_or(|t| at_ms < t)
    }

    /// Whether a status matches the filter.
    pub fn status_matches(&self, status: &StatusView) -> bool {
        self.status.as_deref().is_none_or(|s| s == status.status)
    }

    /// Whether a type matches the filter.
    pub fn kind_matches(&self, kind: &str) -> bool {
        self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

/// Parses an amount in tiyn, refusing zero.
pub fn positive_amount(tiyn: u64, what: &str) -> Result<Amount, ApiError> {
    if tiyn == 0 {
        return Err(ApiError::bad_request("bad_amount", format!("{what} must be a positive number of tiyn")));
    }
    Ok(Amount::from_tiyn(tiyn))
}

/// Parses an address.
pub fn address(text: &str, what: &str) -> Result<Address, ApiError> {
    text.parse().map_err(|e| ApiError::bad_request("bad_address", format!("{what}: {e}")))
}

/// Parses an IIN/BIN.
pub fn iin_bin(text: &str) -> Result<IinBin, ApiError> {
    IinBin::parse(text).map_err(|e| ApiError::bad_request("bad_iin_bin", e.to_string()))
}
