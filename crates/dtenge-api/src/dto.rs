//! Ledger data as the API shows it: conversions from node, oracle and
//! ledger types to the wire types of `dtenge-api-types`, and the parsing of
//! request fields into ledger types (a bad field is a 400 naming it).

use dtenge_api_types::{
    AccountView, BalanceView, HistoryView, HolderKindDto, KycDto, ListQuery, NotificationKind, NotificationView,
    PER_PAGE_DEFAULT, PER_PAGE_MAX, Page, StatusView,
};
use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::state::{HistoryEntry, Message, Notification, Status};
use dtenge_node::vault::Balances;
use dtenge_types::{Address, Amount, IinBin, Timestamp};

use crate::error::ApiError;

/// Astana time (UTC+5) of a timestamp, ISO 8601.
pub fn astana(at: Timestamp) -> String {
    dtenge_cbs::format_astana(at)
}

/// A status as shown everywhere (SPEC §6).
pub fn status_view(s: &Status) -> StatusView {
    let plain = |status: &str| StatusView { status: status.into(), reason: None, reason_code: None };
    match s {
        Status::RequestAccepted => plain("request_accepted"),
        Status::UnderReview => plain("under_review"),
        Status::Success => plain("success"),
        Status::Rejected { reason } => StatusView {
            status: "rejected".into(),
            reason: Some(reason.text.clone()),
            reason_code: reason.code.map(|code| code.to_string()),
        },
    }
}

/// A holder's kind on the wire.
pub fn holder_kind_view(k: HolderKind) -> HolderKindDto {
    match k {
        HolderKind::Individual => HolderKindDto::Individual,
        HolderKind::LegalEntity => HolderKindDto::LegalEntity,
        HolderKind::GovernmentAgency => HolderKindDto::GovernmentAgency,
        HolderKind::Institution => HolderKindDto::Institution,
    }
}

/// A KYC state on the wire.
pub fn kyc_view(k: KycState) -> KycDto {
    match k {
        KycState::Pending => KycDto::Pending,
        KycState::Verified => KycDto::Verified,
        KycState::Rejected => KycDto::Rejected,
    }
}

/// A KYC state from the wire.
pub fn kyc_state(k: KycDto) -> KycState {
    match k {
        KycDto::Pending => KycState::Pending,
        KycDto::Verified => KycState::Verified,
        KycDto::Rejected => KycState::Rejected,
    }
}

/// The view of an account on `node`.
pub fn account_view(a: &Account, node: &str) -> AccountView {
    AccountView {
        id: a.id.to_string(),
        node: node.to_string(),
        iin_bin: a.holder.iin_bin.to_string(),
        name: a.holder.name.clone(),
        kind: holder_kind_view(a.holder.kind),
        address: a.address.to_string(),
        kyc: kyc_view(a.kyc),
        custody: if a.key().is_some() { "custodial".into() } else { "client".into() },
        opened_at_ms: a.opened_at.millis(),
        opened_at: astana(a.opened_at),
    }
}

/// Balances by kind, from vault balances.
pub fn balance_view(account: &str, b: &Balances) -> BalanceView {
    BalanceView {
        account: account.to_string(),
        standard_tiyn: b.standard.tiyn(),
        marked_tiyn: b.marked.tiyn(),
        held_tiyn: b.held.tiyn(),
        vat_tiyn: b.vat.tiyn(),
        mandated_tiyn: b.mandated.tiyn(),
        reserve_tiyn: b.reserve.tiyn(),
        total_tiyn: b.total.tiyn(),
        total: b.total.to_string(),
        other_currencies: b.other_currencies.iter().map(|(c, a)| (c.clone(), a.tiyn())).collect(),
    }
}

/// A history line.
pub fn history_view(h: &HistoryEntry) -> HistoryView {
    HistoryView {
        tx: h.tx.to_string(),
        at_ms: h.at.millis(),
        at: astana(h.at),
        kind: h.kind.clone(),
        incoming_tiyn: h.incoming.tiyn(),
        outgoing_tiyn: h.outgoing.tiyn(),
        currency: h.currency.map(|c| c.to_string()),
        counterparties: h.counterparties.iter().map(Address::to_string).collect(),
        memo: h.memo.clone(),
        status: status_view(&h.status),
    }
}

/// A notification: its kind and particulars, and the English words.
pub fn notification_view(n: &Notification) -> NotificationView {
    let kind = match &n.message {
        Message::Incoming { .. } => NotificationKind::Incoming,
        Message::HeldForYou { .. } => NotificationKind::HeldForYou,
        Message::EventRegistered { .. } => NotificationKind::EventRegistered,
        Message::ToppedUp { .. } => NotificationKind::ToppedUp,
        Message::SweptOverCap { .. } => NotificationKind::SweptOverCap,
        Message::Frozen { .. } => NotificationKind::Frozen,
        Message::Arrested { .. } => NotificationKind::Arrested,
        Message::CollectionOrdered { .. } => NotificationKind::CollectionOrdered,
        Message::OrderLifted { .. } => NotificationKind::OrderLifted,
        Message::Rekeyed { .. } => NotificationKind::Rekeyed,
        Message::Words(_) => NotificationKind::Words,
    };
    NotificationView {
        at_ms: n.at.millis(),
        at: astana(n.at),
        kind,
        params: n.message.params().into_iter().map(|(name, value)| (name.to_string(), value)).collect(),
        text: n.message.to_string(),
        tx: n.tx.map(|t| t.to_string()),
    }
}

/// A page being filled (see [`pager`]).
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

/// A page filled item by item (matching items in page order), so a long
/// history is streamed rather than materialised; 400 for a bad page or size.
pub fn pager<T>(q: &ListQuery) -> Result<Pager<T>, ApiError> {
    let per_page = q.per_page.unwrap_or(PER_PAGE_DEFAULT);
    if !(1..=PER_PAGE_MAX).contains(&per_page) {
        return Err(ApiError::bad_request("bad_page", format!("per_page must be 1-{PER_PAGE_MAX}")));
    }
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("bad_page", "page starts at 1"));
    }
    let skip = (page - 1).saturating_mul(per_page);
    Ok(Pager { skip, page, per_page, seen: 0, items: Vec::new() })
}

/// Pages `items` (already filtered and in the order shown).
pub fn page<T>(q: &ListQuery, items: Vec<T>) -> Result<Page<T>, ApiError> {
    let mut pager = pager(q)?;
    for item in items {
        pager.push(item);
    }
    Ok(pager.finish(None))
}

/// `total + add` tiyn for a figure the API shows, or 422 `total_overflow`
/// naming it when u64 tiyn cannot hold it — never a saturated figure.
pub fn add_tiyn(total: u64, add: u64, what: &str) -> Result<u64, ApiError> {
    total.checked_add(add).ok_or_else(|| total_overflow(what))
}

/// 422 `total_overflow`: a total the API would show is past u64 tiyn.
pub fn total_overflow(what: &str) -> ApiError {
    ApiError::unprocessable(
        "total_overflow",
        format!(
            "{what} is more than {} tiyn, the largest figure the API gives; ask for a narrower period or scope",
            u64::MAX
        ),
    )
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

#[cfg(test)]
mod tests {
    use dtenge_node::RefusalCode;
    use dtenge_node::state::Reason;

    use super::*;

    #[test]
    fn a_rejection_shows_its_code_beside_its_words_when_it_has_one() {
        let coded = Status::Rejected { reason: Reason::coded(RefusalCode::PayeeRefused, "the payee's bank refused") };
        let view = status_view(&coded);
        assert_eq!(
            serde_json::to_value(&view).unwrap_or_default(),
            serde_json::json!({"status": "rejected", "reason": "the payee's bank refused", "reason_code": "payee_refused"})
        );
        let rule = status_view(&Status::Rejected { reason: Reason::coded(RefusalCode::Rule(802), "rule 802") });
        assert_eq!(rule.reason_code.as_deref(), Some("rule_802"), "the code an immediate refusal is answered with");
        let words = status_view(&Status::Rejected { reason: Reason::text("limit for the day reached") });
        assert_eq!(
            serde_json::to_value(&words).unwrap_or_default(),
            serde_json::json!({"status": "rejected", "reason": "limit for the day reached"}),
            "a person's words have no code"
        );
        assert_eq!(
            serde_json::to_value(status_view(&Status::Success)).unwrap_or_default(),
            serde_json::json!({"status": "success"})
        );
    }
}
