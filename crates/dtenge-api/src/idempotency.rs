//! Durable idempotency: a request with an `Idempotency-Key` takes effect at
//! most once, across restarts and `kill -9`.
//!
//! A key belongs to one participant and is bound to the first request's
//! method, path and body (its fingerprint): the same key with anything else
//! is 422. Every state change is a record in a journal of its own
//! (`DATA/api/idempotency`, `dtenge-store`):
//!
//! ```text
//!  Started(key, fingerprint) ──► [Bound(key, tx | DA) …] ──► Finished(key, status, body)
//!        durable before the work       durable before the node          an answer a retry
//!                                      journals the tx or DA            gets again
//!                                                                 or Released(key): a server
//!                                                                 error before anything was bound,
//!                                                                 where `resume` says nothing unbound
//!                                                                 can have taken effect
//! ```
//!
//! A server error (5xx) is not an answer a key keeps, but it does not free
//! the key either when the request may have taken effect: with something
//! bound, or for an operation whose effect the key cannot tell, the key
//! stays interrupted, exactly as after a crash.
//!
//! After a crash a key with `Started` but no `Finished` is *interrupted*. A
//! retry of it is answered as `crate::admission::resume` decides for its
//! operation: from the node's record of the transaction or DA bound to it
//! (nothing bound: nothing durable happened, it runs again), or — for an
//! operation whose effect is not bound to the key — with 409 `interrupted`,
//! recorded as the key's answer. Nothing is done twice.
//!
//! Invariants: records live for [`RETENTION_MS`] (a retry after that is a new
//! request); the live records are at most [`RECORDS_MAX`] — when full, a new
//! key is refused with 503 and `Retry-After` rather than forgetting one
//! early; a snapshot every [`SNAPSHOT_EVERY`] records keeps the journal short.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_node::NodeError;
use dtenge_node::witness::{Produced, Witness};
use dtenge_store::{Journal, JournalConfig, MemJournalHandle, StoreError, SyncMode};
use dtenge_types::{Address, ParticipantId, TxId};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// Longest idempotency key.
pub const KEY_BYTES_MAX: usize = 128;
/// How long a key is remembered.
pub const RETENTION_MS: u64 = 24 * 3_600 * 1_000;
/// Most keys remembered at once (all participants).
pub const RECORDS_MAX: usize = 1_000_000;
/// Journal records between snapshots.
pub const SNAPSHOT_EVERY: u64 = 50_000;
/// Most transactions or DAs one request may bind (one operation builds a few at most).
pub const BOUND_MAX: usize = 64;

/// Why the idempotency records cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A journaled record or snapshot does not decode.
    #[error("idempotency record {seq} does not decode ({why}); restore DATA/api/idempotency from a backup")]
    Undecodable {
        /// The record's sequence number (0: the snapshot).
        seq: u64,
        /// The decoder's complaint.
        why: String,
    },
    /// One request bound more results than any operation produces.
    #[error("more than {BOUND_MAX} results bound to one request")]
    TooManyBound,
}

/// A key of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Slot {
    /// The participant.
    pub participant: String,
    /// Its key.
    pub key: String,
}

/// What a request produced, as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Bound {
    /// A transaction.
    Transaction([u8; 32]),
    /// A DA, by address.
    Account([u8; 32]),
}

impl Bound {
    fn of(p: Produced) -> Bound {
        match p {
            Produced::Transaction(tx) => Bound::Transaction(*tx.0.as_bytes()),
            Produced::Account(a) => Bound::Account(*a.0.as_bytes()),
        }
    }

    /// The transaction, if it is one.
    pub fn tx(&self) -> Option<TxId> {
        match self {
            Bound::Transaction(b) => Some(TxId(dtenge_crypto::Digest(*b))),
            Bound::Account(_) => None,
        }
    }

    /// The DA's address, if it is one.
    pub fn account(&self) -> Option<Address> {
        match self {
            Bound::Account(b) => Some(Address(dtenge_crypto::PublicKey(*b))),
            Bound::Transaction(_) => None,
        }
    }
}

#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
enum Record {
    Started { slot: Slot, fingerprint: [u8; 32], at_ms: u64 },
    Bound { slot: Slot, bound: Bound },
    Finished { slot: Slot, status: u16, body: Vec<u8> },
    Released { slot: Slot },
}

/// Where a key stands.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
enum State {
    /// Being worked on in this process.
    Running(Vec<Bound>),
    /// Started before a restart and never finished.
    Interrupted(Vec<Bound>),
    /// Answered.
    Done { status: u16, body: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Entry {
    fingerprint: [u8; 32],
    at_ms: u64,
    state: State,
}

/// What to do with a keyed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// New key: run it (the key is now `Started`).
    Run,
    /// Answered before: give this answer again.
    Replay {
        /// Status.
        status: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// Interrupted by a restart after it produced these: answer from them.
    Recover(Vec<Bound>),
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Slot, Entry>,
    /// Keys by start time, for forgetting them after the retention.
    order: VecDeque<(u64, Slot)>,
    since_snapshot: u64,
}

/// The durable idempotency records of one API.
pub struct Idempotency {
    journal: Journal,
    inner: Mutex<Inner>,
    _memory: Option<MemJournalHandle>,
}

/// A key's fingerprint: method, path and query, body.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(Sha256::digest(body));
    h.finalize().into()
}

/// Checks an `Idempotency-Key` header value: 1-128 visible ASCII characters.
pub fn parse_key(raw: &[u8]) -> Result<String, ApiError> {
    let ok = !raw.is_empty() && raw.len() <= KEY_BYTES_MAX && raw.iter().all(|b| (0x21..=0x7e).contains(b));
    if !ok {
        return Err(ApiError::bad_request(
            "bad_idempotency_key",
            format!("Idempotency-Key must be 1-{KEY_BYTES_MAX} visible ASCII characters (no spaces)"),
        ));
    }
    Ok(String::from_utf8_lossy(raw).into_owned())
}

fn storage(e: IdempotencyError) -> ApiError {
    ApiError::unavailable("storage", format!("idempotency journal: {e}"))
}

impl Idempotency {
    /// Opens the journal in `dir` (fsync'ed when `durable`), replaying what it holds.
    pub fn open(dir: &std::path::Path, durable: bool, now_ms: u64) -> Result<Idempotency, IdempotencyError> {
        let mut config = JournalConfig::new(dir);
        if !durable {
            config.sync = SyncMode::None;
        }
        let (journal, recovery) = Journal::open(config)?;
        Self::recover(journal, recovery, None, now_ms)
    }

    /// In memory only (a platform that keeps nothing on disk).
    pub fn memory() -> Idempotency {
        let (journal, handle) = Journal::in_memory();
        let inner = Mutex::new(Inner::default());
        Idempotency { journal, inner, _memory: Some(handle) }
    }

    fn recover(
        journal: Journal,
        recovery: dtenge_store::Recovery,
        memory: Option<MemJournalHandle>,
        now_ms: u64,
    ) -> Result<Idempotency, IdempotencyError> {
        let mut inner = Inner::default();
        if let Some((_, bytes)) = &recovery.snapshot {
            let entries: Vec<(Slot, Entry)> =
                borsh::from_slice(bytes).map_err(|e| IdempotencyError::Undecodable { seq: 0, why: e.to_string() })?;
            for (slot, entry) in entries {
                inner.order.push_back((entry.at_ms, slot.clone()));
                inner.entries.insert(slot, entry);
            }
        }
        for (seq, bytes) in &recovery.records {
            let record: Record = borsh::from_slice(bytes)
                .map_err(|e| IdempotencyError::Undecodable { seq: *seq, why: e.to_string() })?;
            inner.apply(record);
        }
        for entry in inner.entries.values_mut() {
            if let State::Running(bound) = &entry.state {
                entry.state = State::Interrupted(bound.clone());
            }
        }
        inner.forget_expired(now_ms);
        Ok(Idempotency { journal, inner: Mutex::new(inner), _memory: memory })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` and applies it (under the lock, so the journal's
    /// order is the memory's); snapshots now and then.
    fn append(&self, inner: &mut Inner, record: Record) -> Result<dtenge_store::Pending, IdempotencyError> {
        let bytes = dtenge_types::encoding::encode(&record);
        let pending = self.journal.append(bytes)?;
        inner.apply(record);
        inner.since_snapshot = inner.since_snapshot.saturating_add(1);
        if inner.since_snapshot >= SNAPSHOT_EVERY {
            let entries: Vec<(&Slot, &Entry)> = inner.entries.iter().collect();
            let state = dtenge_types::encoding::encode(&entries);
            self.journal.snapshot(self.journal.last_seq(), &state)?;
            inner.since_snapshot = 0;
        }
        Ok(pending)
    }

    /// Looks a keyed request up and, for a new key, records it as started
    /// (durably) before answering [`Begin::Run`].
    pub async fn begin(&self, slot: &Slot, fingerprint: [u8; 32], now_ms: u64) -> Result<Begin, ApiError> {
        let pending = {
            let mut inner = self.inner();
            inner.forget_expired(now_ms);
            if let Some(entry) = inner.entries.get_mut(slot) {
                if entry.fingerprint != fingerprint {
                    return Err(ApiError::unprocessable(
                        "idempotency_key_reused",
                        format!(
                            "Idempotency-Key {} was first used with another method, path or body; use a new key for a new request",
                            slot.key
                        ),
                    ));
                }
                return match &entry.state {
                    State::Done { status, body } => Ok(Begin::Replay { status: *status, body: body.clone() }),
                    State::Running(_) => Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        "in_progress",
                        format!("a request with Idempotency-Key {} is still in progress; retry later", slot.key),
                    )),
                    State::Interrupted(bound) => {
                        let bound = bound.clone();
                        entry.state = State::Running(bound.clone());
                        Ok(Begin::Recover(bound))
                    }
                };
            }
            if inner.entries.len() >= RECORDS_MAX {
                let oldest = inner.order.front().map_or(now_ms, |(at, _)| *at);
                let retry_s = oldest.saturating_add(RETENTION_MS).saturating_sub(now_ms).div_ceil(1_000).max(1);
                return Err(ApiError::unavailable(
                    "idempotency_store_full",
                    format!(
                        "{RECORDS_MAX} idempotency keys are remembered for 24 h and the store is full; retry later"
                    ),
                )
                .retry_after(retry_s));
            }
            let record = Record::Started { slot: slot.clone(), fingerprint, at_ms: now_ms };
            self.append(&mut inner, record).map_err(storage)?
        };
        pending.durable().await.map_err(|e| storage(e.into()))?;
        Ok(Begin::Run)
    }

    /// Records what a running request produced; durable when it returns.
    pub async fn bind(&self, slot: &Slot, bound: Bound) -> Result<(), IdempotencyError> {
        let pending = {
            let mut inner = self.inner();
            match inner.entries.get(slot).map(|e| &e.state) {
                Some(State::Running(list)) if list.len() < BOUND_MAX => {}
                Some(State::Running(_)) => return Err(IdempotencyError::TooManyBound),
                _ => return Ok(()),
            }
            self.append(&mut inner, Record::Bound { slot: slot.clone(), bound })?
        };
        pending.durable().await?;
        Ok(())
    }

    /// Records the answer a retry gets again.
    pub fn finish(&self, slot: &Slot, status: u16, body: Vec<u8>) -> Result<(), IdempotencyError> {
        let mut inner = self.inner();
        // Not waited for: losing it in a crash leaves the key interrupted,
        // and a retry answers from what is bound (or runs again if nothing is).
        self.append(&mut inner, Record::Finished { slot: slot.clone(), status, body }).map(|_| ())
    }

    /// A request failed on the server's side: with nothing bound the key is
    /// free again; with something bound it stays interrupted (a retry
    /// answers from what was produced).
    pub fn fail(&self, slot: &Slot) -> Result<(), IdempotencyError> {
        let mut inner = self.inner();
        let bound = match inner.entries.get_mut(slot) {
            Some(Entry { state: State::Running(bound), .. }) => bound.clone(),
            _ => return Ok(()),
        };
        if bound.is_empty() {
            self.append(&mut inner, Record::Released { slot: slot.clone() }).map(|_| ())
        } else {
            if let Some(entry) = inner.entries.get_mut(slot) {
                entry.state = State::Interrupted(bound);
            }
            Ok(())
        }
    }

    /// A request failed on the server's side after it may have taken an
    /// effect the key is not bound to: the key stays interrupted whatever is
    /// bound, as if a crash had cut it off (which is also what the journal
    /// says after one: `Started`, never finished), so a retry is answered as
    /// `crate::admission::resume` decides and never runs it again.
    pub fn interrupt(&self, slot: &Slot) {
        let mut inner = self.inner();
        if let Some(entry) = inner.entries.get_mut(slot)
            && let State::Running(bound) = &entry.state
        {
            entry.state = State::Interrupted(bound.clone());
        }
    }

    /// Makes everything recorded durable and stops the journal.
    pub fn close(&self) -> Result<(), StoreError> {
        self.journal.close()
    }
}

impl Inner {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Started { slot, fingerprint, at_ms } => {
                self.order.push_back((at_ms, slot.clone()));
                self.entries.insert(slot, Entry { fingerprint, at_ms, state: State::Running(Vec::new()) });
            }
            Record::Bound { slot, bound } => {
                if let Some(Entry { state: State::Running(list) | State::Interrupted(list), .. }) =
                    self.entries.get_mut(&slot)
                {
                    list.push(bound);
                }
            }
            Record::Finished { slot, status, body } => {
                if let Some(entry) = self.entries.get_mut(&slot) {
                    entry.state = State::Done { status, body };
                }
            }
            Record::Released { slot } => {
                self.entries.remove(&slot);
            }
        }
    }

    fn forget_expired(&mut self, now_ms: u64) {
        while let Some((at, slot)) = self.order.front() {
            if at.saturating_add(RETENTION_MS) > now_ms {
                break;
            }
            if self.entries.get(slot).is_some_and(|e| e.at_ms == *at) {
                self.entries.remove(slot);
            }
            self.order.pop_front();
        }
    }
}

/// Binds what the node produces for one keyed request to its record.
pub struct Binding {
    /// The records.
    pub store: Arc<Idempotency>,
    /// The key.
    pub slot: Slot,
    /// The caller's node: only what it produces is bound.
    pub node: ParticipantId,
}

#[async_trait::async_trait]
impl Witness for Binding {
    async fn produced(&self, node: &ParticipantId, what: Produced) -> Result<(), NodeError> {
        if *node != self.node {
            return Ok(());
        }
        self.store.bind(&self.slot, Bound::of(what)).await.map_err(|e| NodeError::Storage(e.to_string()))
    }
}
