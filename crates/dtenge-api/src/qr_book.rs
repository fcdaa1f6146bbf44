//! Dynamic QRs paid once: the API's durable record of which dynamic QR
//! (bank, payee, reference) a payment has claimed, in a journal of its own
//! (`DATA/api/qr`, `dtenge-store`).
//!
//! ```text
//!  Claimed(key, until) ──► Paid(key, tx)        the payment committed
//!     durable before        └► Released(key)     refused before anything moved:
//!     the payment starts                         the QR may be paid again
//! ```
//!
//! A claim is journaled and durable before the node starts the payment, so
//! two payments of one QR — concurrent, or one after a crash — cannot both
//! run: the second gets 409 `qr_already_paid`. A claim whose payment ended
//! in a server error (it may still commit) is kept: the QR stays spent and
//! the merchant's history tells. An entry is forgotten once its QR has
//! expired (an expired QR is refused anyway), so the book holds at most the
//! QRs still valid, bounded by [`ENTRIES_MAX`] (full: 503, never a forgotten
//! claim).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_api_types::QrPayment;
use dtenge_store::{Journal, JournalConfig, MemJournalHandle, StoreError, SyncMode};
use dtenge_types::TxId;
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// Most dynamic QRs remembered at once.
pub const ENTRIES_MAX: usize = 1_000_000;
/// Journal records between snapshots.
pub const SNAPSHOT_EVERY: u64 = 50_000;
/// Most prepared client-signed QR payments awaiting a signature.
pub const AWAITING_MAX: usize = 10_000;

/// Why the QR book cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum QrBookError {
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A journaled record or snapshot does not decode.
    #[error("QR record {seq} does not decode ({why}); restore DATA/api/qr from a backup")]
    Undecodable {
        /// The record's sequence number (0: the snapshot).
        seq: u64,
        /// The decoder's complaint.
        why: String,
    },
}

/// A dynamic QR's identity: its bank, payee and reference.
pub type QrKey = [u8; 32];

/// The key of a dynamic QR (`None` for a static one, which is never spent).
pub fn key_of(qr: &QrPayment) -> Option<QrKey> {
    let reference = qr.reference.as_ref()?;
    let mut h = Sha256::new();
    for part in [b"dtenge/qr-reference/v1".as_slice(), qr.bank.as_bytes(), qr.address.as_bytes(), reference.as_bytes()]
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    Some(h.finalize().into())
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
enum Record {
    Claimed { key: QrKey, until_s: u64 },
    Paid { key: QrKey, tx: [u8; 32] },
    Released { key: QrKey },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Entry {
    until_s: u64,
    tx: Option<[u8; 32]>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<QrKey, Entry>,
    since_snapshot: u64,
    /// Prepared client-signed QR payments by transaction, in memory only
    /// (the node keeps prepared transactions in memory too), each until its
    /// transaction's window closes (the node forgets it then as well).
    awaiting: BTreeMap<[u8; 32], Awaiting>,
}

impl Inner {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Claimed { key, until_s } => {
                self.entries.insert(key, Entry { until_s, tx: None });
            }
            Record::Paid { key, tx } => {
                if let Some(e) = self.entries.get_mut(&key) {
                    e.tx = Some(tx);
                }
            }
            Record::Released { key } => {
                self.entries.remove(&key);
            }
        }
    }

    fn forget_expired(&mut self, now_s: u64) {
        if self.entries.len() >= ENTRIES_MAX / 2 {
            self.entries.retain(|_, e| e.until_s > now_s);
        }
        self.awaiting.retain(|_, a| a.window_end_s >= now_s);
    }
}

/// A prepared client-signed QR payment awaiting the holder's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awaiting {
    /// The dynamic QR it pays and the QR's expiry (unix s); none for a static QR.
    pub qr: Option<(QrKey, u64)>,
    /// When the transaction's window closes (unix s).
    pub window_end_s: u64,
}

/// Where a dynamic QR stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Never claimed: it may be paid.
    Open,
    /// A payment is running or ended without a known transaction.
    Claimed,
    /// Paid by this transaction.
    Paid(TxId),
}

/// The durable record of dynamic QRs paid.
pub struct QrBook {
    journal: Journal,
    inner: Mutex<Inner>,
    _memory: Option<MemJournalHandle>,
}

fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable("storage", format!("QR journal: {e}"))
}

fn tx_id(bytes: [u8; 32]) -> TxId {
    TxId(dtenge_crypto::Digest(bytes))
}

impl QrBook {
    /// Opens the journal in `dir` (fsync'ed when `durable`), replaying what it holds.
    pub fn open(dir: &std::path::Path, durable: bool) -> Result<QrBook, QrBookError> {
        let mut config = JournalConfig::new(dir);
        if !durable {
            config.sync = SyncMode::None;
        }
        let (journal, recovery) = Journal::open(config)?;
        let mut inner = Inner::default();
        if let Some((_, bytes)) = &recovery.snapshot {
            let entries: Vec<(QrKey, Entry)> =
                borsh::from_slice(bytes).map_err(|e| QrBookError::Undecodable { seq: 0, why: e.to_string() })?;
            inner.entries.extend(entries);
        }
        for (seq, bytes) in &recovery.records {
            let record: Record =
                borsh::from_slice(bytes).map_err(|e| QrBookError::Undecodable { seq: *seq, why: e.to_string() })?;
            inner.apply(record);
        }
        Ok(QrBook { journal, inner: Mutex::new(inner), _memory: None })
    }

    /// In memory only (a platform that keeps nothing on disk).
    pub fn memory() -> QrBook {
        let (journal, handle) = Journal::in_memory();
        QrBook { journal, inner: Mutex::new(Inner::default()), _memory: Some(handle) }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, inner: &mut Inner, record: Record) -> Result<dtenge_store::Pending, StoreError> {
        let pending = self.journal.append(dtenge_types::encoding::encode(&record))?;
        inner.apply(record);
        inner.since_snapshot = inner.since_snapshot.saturating_add(1);
        if inner.since_snapshot >= SNAPSHOT_EVERY {
            let entries: Vec<(&QrKey, &Entry)> = inner.entries.iter().collect();
            self.journal.snapshot(self.journal.last_seq(), &dtenge_types::encoding::encode(&entries))?;
            inner.since_snapshot = 0;
        }
        Ok(pending)
    }

    /// Where the QR `key` stands.
    pub fn standing(&self, key: &QrKey) -> Standing {
        match self.inner().entries.get(key) {
            None => Standing::Open,
            Some(Entry { tx: Some(tx), .. }) => Standing::Paid(tx_id(*tx)),
            Some(Entry { tx: None, .. }) => Standing::Claimed,
        }
    }

    /// Claims `key` (valid until `until_s`) for one payment, durably; refuses a claimed one.
    pub async fn claim(&self, key: QrKey, until_s: u64, now_s: u64) -> Result<(), ApiError> {
        let pending = {
            let mut inner = self.inner();
            inner.forget_expired(now_s);
            if let Some(entry) = inner.entries.get(&key) {
                return Err(already_paid(entry.tx.map(tx_id)));
            }
            if inner.entries.len() >= ENTRIES_MAX {
                return Err(ApiError::unavailable(
                    "qr_book_full",
                    format!("{ENTRIES_MAX} unexpired dynamic QRs are remembered and the book is full; retry later"),
                )
                .retry_after(60));
            }
            self.append(&mut inner, Record::Claimed { key, until_s }).map_err(storage)?
        };
        pending.durable().await.map(|_| ()).map_err(storage)
    }

    /// The claimed QR was paid by `tx`.
    pub async fn paid(&self, key: QrKey, tx: TxId) -> Result<(), ApiError> {
        let pending = self.append(&mut self.inner(), Record::Paid { key, tx: *tx.0.as_bytes() }).map_err(storage)?;
        pending.durable().await.map(|_| ()).map_err(storage)
    }

    /// The payment of a claimed QR was refused before anything moved: it may be paid again.
    pub async fn release(&self, key: QrKey) -> Result<(), ApiError> {
        let pending = self.append(&mut self.inner(), Record::Released { key }).map_err(storage)?;
        pending.durable().await.map(|_| ()).map_err(storage)
    }

    /// Remembers a prepared client-signed QR payment until its window closes.
    pub fn await_signature(&self, tx: TxId, awaiting: Awaiting, now_s: u64) -> Result<(), ApiError> {
        let mut inner = self.inner();
        inner.forget_expired(now_s);
        if inner.awaiting.len() >= AWAITING_MAX {
            return Err(ApiError::unavailable(
                "busy",
                format!("{AWAITING_MAX} QR payments await their holders' signatures; retry later"),
            )
            .retry_after(5));
        }
        inner.awaiting.insert(*tx.0.as_bytes(), awaiting);
        Ok(())
    }

    /// The QR payment a prepared transaction is, taken out of the awaiting set.
    pub fn take_awaiting(&self, tx: &TxId) -> Option<Awaiting> {
        self.inner().awaiting.remove(tx.0.as_bytes())
    }

    /// Whether `tx` is a prepared QR payment (submitted only at `/qr/submit`, which claims its QR).
    pub fn is_awaiting(&self, tx: &TxId) -> bool {
        self.inner().awaiting.contains_key(tx.0.as_bytes())
    }

    /// Makes everything recorded durable and stops the journal.
    pub fn close(&self) -> Result<(), StoreError> {
        self.journal.close()
    }
}

/// 409 for a QR already paid (or being paid).
pub fn already_paid(tx: Option<TxId>) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "qr_already_paid",
        match tx {
            Some(tx) => format!("this QR was already paid by transaction {tx}; ask the merchant for a new one"),
            None => "this QR is being paid or was paid; ask the merchant for a new one".to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    //! The book after a restart: what was claimed, paid and released reads
    //! back from the journal (and from a snapshot past `SNAPSHOT_EVERY`).

    use super::*;

    fn key(n: u64) -> QrKey {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k
    }

    const UNTIL: u64 = 4_000_000_000;

    fn refused(e: ApiError) -> String {
        format!("{}: {}", e.code, e.message)
    }

    #[tokio::test]
    async fn claims_payments_and_releases_survive_a_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let tx = tx_id([7; 32]);
        {
            let book = QrBook::open(dir.path(), true)?;
            book.claim(key(1), UNTIL, 0).await.map_err(refused)?;
            book.paid(key(1), tx).await.map_err(refused)?;
            book.claim(key(2), UNTIL, 0).await.map_err(refused)?;
            book.release(key(2)).await.map_err(refused)?;
            book.claim(key(3), UNTIL, 0).await.map_err(refused)?;
            book.close()?;
        }
        let book = QrBook::open(dir.path(), true)?;
        assert_eq!(book.standing(&key(1)), Standing::Paid(tx));
        assert_eq!(book.standing(&key(2)), Standing::Open);
        assert_eq!(book.standing(&key(3)), Standing::Claimed);
        let again = book.claim(key(1), UNTIL, 0).await.err().ok_or("a paid QR was claimed again after a restart")?;
        assert_eq!(again.code, "qr_already_paid");
        assert!(book.claim(key(3), UNTIL, 0).await.is_err(), "a claimed QR was claimed again after a restart");
        book.claim(key(2), UNTIL, 0).await.map_err(refused)?;
        book.close()?;
        Ok(())
    }

    #[tokio::test]
    async fn a_snapshot_carries_the_book_across_a_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let tx = tx_id([9; 32]);
        {
            let book = QrBook::open(dir.path(), false)?;
            // Past one snapshot, then records after it.
            for n in 0..SNAPSHOT_EVERY + 10 {
                book.claim(key(n), UNTIL, 0).await.map_err(refused)?;
            }
            book.paid(key(5), tx).await.map_err(refused)?;
            book.release(key(SNAPSHOT_EVERY + 1)).await.map_err(refused)?;
            book.close()?;
        }
        let book = QrBook::open(dir.path(), false)?;
        assert_eq!(book.standing(&key(5)), Standing::Paid(tx));
        assert_eq!(book.standing(&key(0)), Standing::Claimed);
        assert_eq!(book.standing(&key(SNAPSHOT_EVERY + 9)), Standing::Claimed);
        assert_eq!(book.standing(&key(SNAPSHOT_EVERY + 1)), Standing::Open);
        assert_eq!(book.standing(&key(SNAPSHOT_EVERY + 10)), Standing::Open);
        book.close()?;
        Ok(())
    }
}
