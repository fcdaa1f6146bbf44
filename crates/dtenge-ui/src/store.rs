//! The maker-checker store: requests staff prepared, who decided them, and
//! what the platform answered.
//!
//! ```text
//! maker: prepare ──► Under review ──► checker (≠ maker): approve ──► executed through the API ──► Success
//!                          │                                                              └────► Rejected (API's reason)
//!                          └──────► checker: reject with a reason ──► Rejected
//! ```
//!
//! Every change is a JSON record appended to a `dtenge-store` journal
//! (`<data>/ui/requests`) and acknowledged only once durable, so a restart
//! loses no prepared request. Invariants: a request is decided once (the
//! first approval moves it out of *Under review* under the lock, so two
//! checkers cannot both execute it); the checker is never the maker.
//! A request approved but not finished when the process stopped stays
//! *Request accepted* after a restart with a note to check the accounts'
//! history: re-running it could pay twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use dtenge_store::{Journal, JournalConfig};
use serde::{Deserialize, Serialize};

use crate::error::UiError;

/// Status of a request (SPEC §6).
pub mod status {
    /// Approved by a checker, being executed by the platform.
    pub const REQUEST_ACCEPTED: &str = "request_accepted";
    /// Waiting for a checker (or, for conversions, for NBK).
    pub const UNDER_REVIEW: &str = "under_review";
    /// Done.
    pub const SUCCESS: &str = "success";
    /// Refused by the checker or by the platform; the reason says why.
    pub const REJECTED: &str = "rejected";
}

/// Codes of the reasons this interface writes itself; a reason the platform
/// gave carries the platform's own code. The page names either in its
/// reader's language (`assets/refusals.js`), then the words.
pub mod reason_code {
    /// A checker rejected the request; the reason is their own words.
    pub const CHECKER_REJECTED: &str = "checker_rejected";
    /// The service stopped while the platform was executing the request.
    pub const INTERRUPTED: &str = "interrupted";
    /// The platform's answer did not say whether the request was done.
    pub const NO_CLEAR_ANSWER: &str = "no_clear_answer";
    /// The transaction was accepted and is still settling.
    pub const SETTLING: &str = "settling";
}

/// What the platform answered: the request's status, a reason, the result id.
pub struct Outcome {
    /// Status.
    pub status: &'static str,
    /// Why (rejected, in flight).
    pub reason: Option<String>,
    /// The reason's stable code ([`reason_code`] or the platform's
    /// refusal code), for the page to name it in its reader's language.
    pub reason_code: Option<String>,
    /// Transaction, account or conversion id.
    pub result: Option<String>,
}

impl Outcome {
    /// Done, with what it produced.
    pub(crate) fn success(result: String) -> Outcome {
        Outcome { status: status::SUCCESS, reason: None, reason_code: None, result: Some(result) }
    }
}

/// A party named by IIN/BIN at a bank, resolved through the platform's directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Party {
    /// IIN/BIN.
    pub iin_bin: String,
    /// The bank (node) hosting the DA.
    pub bank: String,
    /// The holder's name.
    pub name: String,
    /// The DA's address.
    pub address: String,
}

/// A marking by address (SPEC §4.2.1) with one level of allowed recipients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marking {
    /// The budget programme or state contract the funds are marked for.
    pub reference: String,
    /// Who the marking recipient may pay (level 1); the marking ends there.
    pub allowed: Vec<Party>,
    /// How much may reach level 1 in all, in tiyn.
    pub limit_tiyn: u64,
}

/// What a request asks the platform to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Open a DA for a legal entity.
    OpenAccount {
        /// The entity's BIN.
        bin: String,
        /// Its name.
        name: String,
    },
    /// Pay DT from one of the participant's DAs, optionally marked.
    Transfer {
        /// Paying DA id.
        from: String,
        /// Paying DA's holder name.
        from_name: String,
        /// The recipient.
        to: Party,
        /// Amount in tiyn.
        amount_tiyn: u64,
        /// Purpose.
        memo: Option<String>,
        /// Marking, if the funds are purpose-bound.
        marking: Option<Marking>,
    },
    /// Non-cash tenge → DT (a conversion request to NBK).
    Issuance {
        /// Amount in tiyn.
        amount_tiyn: u64,
    },
    /// DT → non-cash tenge.
    Redemption {
        /// Amount in tiyn.
        amount_tiyn: u64,
    },
    /// Hold a DA's funds for an oracle event.
    Hold {
        /// The DA.
        account: String,
        /// The event.
        event: String,
        /// The event's recipient, as the maker named it.
        to: Party,
        /// The amount the maker expects to hold, in tiyn (the event's amount).
        amount_tiyn: u64,
    },
    /// Release held funds to the event's recipient.
    HoldRelease {
        /// The DA.
        account: String,
        /// The event.
        event: String,
    },
    /// Return held funds of a cancelled event.
    HoldCancel {
        /// The DA.
        account: String,
        /// The event.
        event: String,
    },
}

impl Action {
    /// The type name used in filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::OpenAccount { .. } => "open_account",
            Action::Transfer { marking: Some(_), .. } => "marked_transfer",
            Action::Transfer { .. } => "transfer",
            Action::Issuance { .. } => "issuance",
            Action::Redemption { .. } => "redemption",
            Action::Hold { .. } => "hold",
            Action::HoldRelease { .. } => "hold_release",
            Action::HoldCancel { .. } => "hold_cancel",
        }
    }
}

/// A prepared request and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    /// `R-000001`.
    pub id: String,
    /// The participant it acts for.
    pub participant: String,
    /// What it does.
    pub action: Action,
    /// The maker's login.
    pub maker: String,
    /// The maker's name.
    pub maker_name: String,
    /// When prepared (ms).
    pub created_at_ms: u64,
    /// Status (see [`status`]).
    pub status: String,
    /// The checker's login.
    pub checker: Option<String>,
    /// The checker's name.
    pub checker_name: Option<String>,
    /// When decided (ms).
    pub decided_at_ms: Option<u64>,
    /// Why rejected (or a note).
    pub reason: Option<String>,
    /// The reason's stable code ([`reason_code`] or the platform's). Absent
    /// from records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The transaction, account or conversion request it produced.
    pub result: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Prepared(Box<Request>),
    Approved {
        id: String,
        checker: String,
        checker_name: String,
        at_ms: u64,
    },
    Finished {
        id: String,
        status: String,
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_code: Option<String>,
        result: Option<String>,
        at_ms: u64,
    },
    Rejected {
        id: String,
        checker: String,
        checker_name: String,
        reason: String,
        at_ms: u64,
    },
}

/// The checker deciding.
#[derive(Debug, Clone)]
pub struct Checker {
    /// Login.
    pub login: String,
    /// Name.
    pub name: String,
    /// Participant.
    pub participant: String,
}

/// Filter of a request list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    /// Only these types (comma-separated [`Action::kind`]s).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Prepared at or after (ms).
    pub from_ms: Option<u64>,
    /// Prepared before (ms).
    pub to_ms: Option<u64>,
    /// Page from 1.
    pub page: Option<usize>,
    /// Per page (1-200, default 20).
    pub per_page: Option<usize>,
}

/// A page of requests.
#[derive(Debug, Clone, Serialize)]
pub struct RequestPage {
    /// This page.
    pub items: Vec<Request>,
    /// Matching in all.
    pub total: usize,
    /// Page from 1.
    pub page: usize,
    /// Per page.
    pub per_page: usize,
}

/// The store.
pub struct Store {
    journal: Journal,
    state: Mutex<BTreeMap<u64, Request>>,
}

const INTERRUPTED: &str = "the service stopped while the platform was executing this request; check the accounts' \
                           history before preparing it again";

impl Store {
    /// Opens (or creates) the store in `dir` and replays its journal.
    pub fn open(dir: &Path) -> Result<Store, UiError> {
        let (journal, recovery) =
            Journal::open(JournalConfig::new(dir)).map_err(|e| UiError::Storage(format!("{}: {e}", dir.display())))?;
        let mut requests: BTreeMap<u64, Request> = BTreeMap::new();
        for (seq, bytes) in recovery.records {
            let record: Record = serde_json::from_slice(&bytes)
                .map_err(|e| UiError::Storage(format!("{} record {seq}: {e}", dir.display())))?;
            apply(&mut requests, record);
        }
        for r in requests.values_mut() {
            if r.status == status::REQUEST_ACCEPTED && r.reason.is_none() {
                r.reason = Some(INTERRUPTED.to_string());
                r.reason_code = Some(reason_code::INTERRUPTED.to_string());
            }
        }
        Ok(Store { journal, state: Mutex::new(requests) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Request>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn write(&self, record: &Record) -> Result<(), UiError> {
        let pending = self.append(record)?;
        pending.durable().await.map_err(|e| UiError::Storage(format!("journal: {e}")))?;
        Ok(())
    }

    fn append(&self, record: &Record) -> Result<dtenge_store::Pending, UiError> {
        let bytes = serde_json::to_vec(record).map_err(|e| UiError::Storage(e.to_string()))?;
        self.journal.append(bytes).map_err(|e| UiError::Storage(format!("journal: {e}")))
    }

    /// Records a maker's request as *Under review*.
    pub async fn prepare(
        &self,
        participant: &str,
        maker: &str,
        maker_name: &str,
        action: Action,
        now_ms: u64,
    ) -> Result<Request, UiError> {
        let (request, pending) = {
            let mut state = self.lock();
            let seq = state.keys().next_back().copied().unwrap_or(0).saturating_add(1);
            let request = Request {
                id: format!("R-{seq:06}"),
                participant: participant.to_string(),
                action,
                maker: maker.to_string(),
                maker_name: maker_name.to_string(),
                created_at_ms: now_ms,
                status: status::UNDER_REVIEW.to_string(),
                checker: None,
                checker_name: None,
                decided_at_ms: None,
                reason: None,
                reason_code: None,
                result: None,
            };
            let pending = self.append(&Record::Prepared(Box::new(request.clone())))?;
            state.insert(seq, request.clone());
            (request, pending)
        };
        pending.durable().await.map_err(|e| UiError::Storage(format!("journal: {e}")))?;
        Ok(request)
    }

    fn decidable(state: &mut BTreeMap<u64, Request>, id: &str, checker: &Checker) -> Result<u64, UiError> {
        let seq = parse_id(id)?;
        let r = state
            .get(&seq)
            .filter(|r| r.participant == checker.participant)
            .ok_or_else(|| UiError::NotFound(format!("no request {id} of {}", checker.participant)))?;
        if r.maker == checker.login {
            return Err(UiError::Forbidden(format!(
                "{id} was prepared by you ({}); under maker-checker a different checker must decide it",
                r.maker_name
            )));
        }
        if r.status != status::UNDER_REVIEW {
            return Err(UiError::Conflict(format!("{id} is already decided ({})", r.status)));
        }
        Ok(seq)
    }

    /// A checker approves: the request moves to *Request accepted* (once;
    /// a second approval gets a conflict) and is returned for execution.
    pub async fn approve(&self, id: &str, checker: &Checker, now_ms: u64) -> Result<Request, UiError> {
        let (request, pending) = {
            let mut state = self.lock();
            let seq = Self::decidable(&mut state, id, checker)?;
            let record = Record::Approved {
                id: id.to_string(),
                checker: checker.login.clone(),
                checker_name: checker.name.clone(),
                at_ms: now_ms,
            };
            let pending = self.append(&record)?;
            apply(&mut state, record);
            (state.get(&seq).cloned().ok_or_else(|| UiError::NotFound(id.to_string()))?, pending)
        };
        pending.durable().await.map_err(|e| UiError::Storage(format!("journal: {e}")))?;
        Ok(request)
    }

    /// Records what the platform answered for an approved request: its
    /// status ([`status::SUCCESS`], [`status::REJECTED`], or still
    /// [`status::REQUEST_ACCEPTED`] when the transaction is in flight).
    pub async fn finish(&self, id: &str, outcome: Outcome, now_ms: u64) -> Result<Request, UiError> {
        let Outcome { status, reason, reason_code, result } = outcome;
        let record = Record::Finished {
            id: id.to_string(),
            status: status.to_string(),
            reason,
            reason_code,
            result,
            at_ms: now_ms,
        };
        self.write(&record).await?;
        let mut state = self.lock();
        apply(&mut state, record);
        state.get(&parse_id(id)?).cloned().ok_or_else(|| UiError::NotFound(id.to_string()))
    }

    /// A checker rejects with a reason.
    pub async fn reject(&self, id: &str, checker: &Checker, reason: &str, now_ms: u64) -> Result<Request, UiError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(UiError::BadInput("reason: say why the request is rejected".into()));
        }
        let (request, pending) = {
            let mut state = self.lock();
            let seq = Self::decidable(&mut state, id, checker)?;
            let record = Record::Rejected {
                id: id.to_string(),
                checker: checker.login.clone(),
                checker_name: checker.name.clone(),
                reason: reason.chars().take(500).collect(),
                at_ms: now_ms,
            };
            let pending = self.append(&record)?;
            apply(&mut state, record);
            (state.get(&seq).cloned().ok_or_else(|| UiError::NotFound(id.to_string()))?, pending)
        };
        pending.durable().await.map_err(|e| UiError::Storage(format!("journal: {e}")))?;
        Ok(request)
    }

    /// One request of `participant`.
    pub fn get(&self, participant: &str, id: &str) -> Result<Request, UiError> {
        let seq = parse_id(id)?;
        self.lock()
            .get(&seq)
            .filter(|r| r.participant == participant)
            .cloned()
            .ok_or_else(|| UiError::NotFound(format!("no request {id} of {participant}")))
    }

    /// Every request of `participant` matching `filter`, newest first.
    pub fn all(&self, participant: &str, filter: &Filter) -> Vec<Request> {
        let kinds: Option<Vec<&str>> = filter.kind.as_deref().filter(|k| !k.is_empty()).map(|k| k.split(',').collect());
        self.lock()
            .values()
            .rev()
            .filter(|r| r.participant == participant)
            .filter(|r| kinds.as_ref().is_none_or(|k| k.contains(&r.action.kind())))
            .filter(|r| filter.status.as_deref().filter(|s| !s.is_empty()).is_none_or(|s| r.status == s))
            .filter(|r| filter.from_ms.is_none_or(|f| r.created_at_ms >= f))
            .filter(|r| filter.to_ms.is_none_or(|t| r.created_at_ms < t))
            .cloned()
            .collect()
    }

    /// A page of [`Store::all`].
    pub fn page(&self, participant: &str, filter: &Filter) -> Result<RequestPage, UiError> {
        let per_page = filter.per_page.unwrap_or(20);
        if !(1..=200).contains(&per_page) {
            return Err(UiError::BadInput("per_page: 1-200".into()));
        }
        let page = filter.page.unwrap_or(1).max(1);
        let all = self.all(participant, filter);
        let total = all.len();
        let items = all.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
        Ok(RequestPage { items, total, page, per_page })
    }

    /// Makes everything durable and closes the journal.
    pub fn close(&self) -> Result<(), UiError> {
        self.journal.close().map_err(|e| UiError::Storage(format!("journal: {e}")))
    }
}

fn parse_id(id: &str) -> Result<u64, UiError> {
    id.strip_prefix("R-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| UiError::NotFound(format!("no request {id}: ids look like R-000001")))
}

fn apply(state: &mut BTreeMap<u64, Request>, record: Record) {
    match record {
        Record::Prepared(r) => {
            if let Ok(seq) = parse_id(&r.id) {
                state.insert(seq, *r);
            }
        }
        Record::Approved { id, checker, checker_name, at_ms } => {
            if let Some(r) = parse_id(&id).ok().and_then(|s| state.get_mut(&s)) {
                r.status = status::REQUEST_ACCEPTED.to_string();
                r.checker = Some(checker);
                r.checker_name = Some(checker_name);
                r.decided_at_ms = Some(at_ms);
            }
        }
        Record::Finished { id, status, reason, reason_code, result, .. } => {
            if let Some(r) = parse_id(&id).ok().and_then(|s| state.get_mut(&s)) {
                r.status = status;
                r.reason = reason;
                r.reason_code = reason_code;
                r.result = result;
            }
        }
        Record::Rejected { id, checker, checker_name, reason, at_ms } => {
            if let Some(r) = parse_id(&id).ok().and_then(|s| state.get_mut(&s)) {
                r.status = status::REJECTED.to_string();
                r.checker = Some(checker);
                r.checker_name = Some(checker_name);
                r.decided_at_ms = Some(at_ms);
                r.reason = Some(reason);
                r.reason_code = Some(reason_code::CHECKER_REJECTED.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn checker(login: &str) -> Checker {
        Checker { login: login.into(), name: login.to_uppercase(), participant: "TREASURY".into() }
    }

    #[tokio::test]
    async fn only_a_different_checker_decides_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = store.prepare("TREASURY", "m", "M", Action::Issuance { amount_tiyn: 100 }, 1).await.unwrap();
        assert_eq!(r.status, status::UNDER_REVIEW);
        let own = store.approve(&r.id, &checker("m"), 2).await.unwrap_err();
        assert!(matches!(own, UiError::Forbidden(_)), "{own}");
        let other_participant = Checker { login: "c".into(), name: "C".into(), participant: "NBK".into() };
        assert!(matches!(store.approve(&r.id, &other_participant, 2).await, Err(UiError::NotFound(_))));
        let approved = store.approve(&r.id, &checker("c"), 3).await.unwrap();
        assert_eq!(approved.status, status::REQUEST_ACCEPTED);
        assert!(matches!(store.approve(&r.id, &checker("d"), 4).await, Err(UiError::Conflict(_))));
        let done = store.finish(&r.id, Outcome::success("NBK-REQ-000001".into()), 5).await.unwrap();
        assert_eq!(done.status, status::SUCCESS);
    }

    #[tokio::test]
    async fn a_restart_keeps_pending_and_decided_requests() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = {
            let store = Store::open(dir.path()).unwrap();
            let a = store.prepare("TREASURY", "m", "M", Action::Issuance { amount_tiyn: 1 }, 1).await.unwrap();
            let b = store.prepare("TREASURY", "m", "M", Action::Redemption { amount_tiyn: 2 }, 2).await.unwrap();
            let c = store.prepare("TREASURY", "m", "M", Action::Redemption { amount_tiyn: 3 }, 3).await.unwrap();
            store.reject(&b.id, &checker("c"), "wrong amount", 4).await.unwrap();
            store.approve(&c.id, &checker("c"), 5).await.unwrap();
            store.close().unwrap();
            (a, b, c)
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("TREASURY", &a.id).unwrap().status, status::UNDER_REVIEW);
        let b = store.get("TREASURY", &b.id).unwrap();
        assert_eq!((b.status.as_str(), b.reason.as_deref()), (status::REJECTED, Some("wrong amount")));
        assert_eq!(b.reason_code.as_deref(), Some(reason_code::CHECKER_REJECTED), "a checker's words under its code");
        let c = store.get("TREASURY", &c.id).unwrap();
        assert_eq!(c.status, status::REQUEST_ACCEPTED);
        assert_eq!(c.reason_code.as_deref(), Some(reason_code::INTERRUPTED));
        assert!(c.reason.unwrap().contains("check the accounts"));
        let next = store.prepare("TREASURY", "m", "M", Action::Issuance { amount_tiyn: 1 }, 6).await.unwrap();
        assert_eq!(next.id, "R-000004");
        let f = Filter { kind: Some("redemption".into()), ..Filter::default() };
        assert_eq!(store.all("TREASURY", &f).len(), 2);
        let f = Filter { status: Some(status::UNDER_REVIEW.into()), ..Filter::default() };
        assert_eq!(store.all("TREASURY", &f).len(), 2);
    }

    #[tokio::test]
    async fn a_refusal_keeps_its_code_and_records_from_before_codes_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let (refused, old) = {
            let store = Store::open(dir.path()).unwrap();
            let refused = store.prepare("TREASURY", "m", "M", Action::Issuance { amount_tiyn: 1 }, 1).await.unwrap();
            store.approve(&refused.id, &checker("c"), 2).await.unwrap();
            let outcome = Outcome {
                status: status::REJECTED,
                reason: Some("not enough funds (insufficient_funds)".into()),
                reason_code: Some("insufficient_funds".into()),
                result: None,
            };
            store.finish(&refused.id, outcome, 3).await.unwrap();
            let old = store.prepare("TREASURY", "m", "M", Action::Issuance { amount_tiyn: 2 }, 4).await.unwrap();
            store.approve(&old.id, &checker("c"), 5).await.unwrap();
            // What a release before reason codes wrote.
            let finished = format!(
                r#"{{"record":"finished","id":"{}","status":"rejected","reason":"refused","result":null,"at_ms":6}}"#,
                old.id
            );
            store.journal.append(finished.into_bytes()).unwrap().durable().await.unwrap();
            store.close().unwrap();
            (refused, old)
        };
        let store = Store::open(dir.path()).unwrap();
        let refused = store.get("TREASURY", &refused.id).unwrap();
        assert_eq!(
            (refused.status.as_str(), refused.reason_code.as_deref()),
            (status::REJECTED, Some("insufficient_funds"))
        );
        let old = store.get("TREASURY", &old.id).unwrap();
        assert_eq!(
            (old.status.as_str(), old.reason.as_deref(), old.reason_code),
            (status::REJECTED, Some("refused"), None)
        );
    }
}
