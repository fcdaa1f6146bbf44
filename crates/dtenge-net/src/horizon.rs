//! The replay horizon: what keeps a restarted service from accepting an
//! envelope its previous run accepted.
//!
//! A [`Gate`](crate::Gate)'s replay cache lives in memory, so after a restart
//! it is empty while envelopes of the last [`MAX_AGE_MS`] are still fresh: a
//! captured request (a claim, a delivery, an attestation request) would be
//! handled again. A served identity therefore keeps a durable horizon per
//! identity (`DATA/net/<ID>.replay-horizon`), a time at or after the
//! `sent_at` of every envelope it accepted:
//!
//! ```text
//!  admit: … signature ok ──► sent_at < not_before? ──► SignedBeforeRestart
//!                            nonce new?            ──► Replayed
//!                            sent_at > horizon?    ──► write sent_at + HORIZON_AHEAD_MS (fsync, rename, fsync dir)
//!                            accepted
//!  open (restart): not_before = max(old horizon + 1, start of this run)
//! ```
//!
//! Why this closes the window exactly: every envelope the previous run
//! accepted was sent at or before the horizon it left on disk (written before
//! the envelope was accepted), and nothing sent at or before it is accepted
//! again. The horizon is a *sender's* time, so no allowance for clock skew is
//! needed there: a sender whose clock runs ahead (up to [`MAX_FUTURE_MS`])
//! moved the horizon ahead with its envelope. The start of this run is a
//! second floor for a data directory that has no horizon yet (an upgrade from
//! a release without one, whose cache is lost too): it refuses what was sent
//! before the restart, which is where a captured envelope comes from; it
//! leaves open only envelopes the old release accepted dated ahead of its
//! clock, once.
//!
//! What it costs an honest sender: an envelope sent within
//! [`HORIZON_AHEAD_MS`] of the crash (plus its clock's lead) is refused once
//! with [`NetError::SignedBeforeRestart`], naming the first time accepted;
//! [`HttpBus`](crate::HttpBus) waits until its clock passes that time and
//! seals the request again (new time, new nonce): a retry is a new envelope,
//! never the captured one. The receiver writes about once per
//! [`HORIZON_AHEAD_MS`] while it receives, not once per envelope.
//!
//! Answers need no horizon: a caller accepts an answer only if it is bound to
//! a request this run sealed (its digest), and a restarted caller's nonces
//! start above every nonce it used before.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use dtenge_types::{ParticipantId, Timestamp};

use crate::{MAX_AGE_MS, MAX_FUTURE_MS, NetError};

/// How far past an accepted envelope's `sent_at` the horizon is written, so
/// a steady stream of envelopes costs one durable write per this many ms.
pub const HORIZON_AHEAD_MS: u64 = 1_000;

/// The directory under a service's data directory that holds the horizons.
pub const HORIZON_DIR: &str = "net";

/// A served identity's durable replay horizon (see the module docs).
#[derive(Debug)]
pub struct ReplayHorizon {
    path: PathBuf,
    /// Envelopes sent before this (ms) are refused: the previous run may have accepted them.
    not_before: u64,
    /// What the file says: every envelope accepted so far was sent at or before it.
    written: AtomicU64,
    /// Held while the file is rewritten, so writers do not interleave.
    writing: Mutex<()>,
}

/// Why a replay horizon cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum HorizonError {
    /// The file or its directory cannot be read or created.
    #[error("replay horizon {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a number of milliseconds.
    #[error(
        "replay horizon {path} holds {text:?}, not a time in milliseconds; restore it from a backup, or write a time \
         after the last envelope the service accepted (now + 70 000 is always safe)"
    )]
    Malformed {
        /// The file.
        path: String,
        /// The start of what it holds.
        text: String,
    },
}

impl ReplayHorizon {
    /// The horizon file of `me` in the data directory `data`.
    pub fn path_in(data: &Path, me: &ParticipantId) -> PathBuf {
        data.join(HORIZON_DIR).join(format!("{me}.replay-horizon"))
    }

    /// Opens `me`'s horizon under `data` at the start of a run (`now`): from
    /// now on, envelopes sent before the old horizon or before `now` are refused.
    pub fn open(data: &Path, me: &ParticipantId, now: Timestamp) -> Result<ReplayHorizon, HorizonError> {
        let path = Self::path_in(data, me);
        let io = |source| HorizonError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let previous = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| HorizonError::Malformed {
                path: path.display().to_string(),
                text: text.chars().take(40).collect(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let start = now.millis();
        let not_before = previous.map_or(start, |h| start.max(h.saturating_add(1)));
        // The horizon is never written further ahead of the clock than an envelope may be
        // dated: if it is, the clock went back and everything is refused until it catches up.
        if not_before > start.saturating_add(MAX_FUTURE_MS + HORIZON_AHEAD_MS + 1) {
            tracing::warn!(
                %me,
                horizon_ms = not_before,
                now_ms = start,
                "the replay horizon in {} is {} ms ahead of the clock: envelopes are refused until then (did the \
                 clock go back?)",
                path.display(),
                not_before - start
            );
        }
        Ok(ReplayHorizon { path, not_before, written: AtomicU64::new(previous.unwrap_or(0)), writing: Mutex::new(()) })
    }

    /// The earliest `sent_at` this run accepts.
    pub fn not_before(&self) -> Timestamp {
        Timestamp(self.not_before)
    }

    /// Refuses an envelope the previous run may have accepted.
    pub(crate) fn check(&self, from: &ParticipantId, sent_at: Timestamp) -> Result<(), NetError> {
        if sent_at.millis() < self.not_before {
            return Err(NetError::SignedBeforeRestart {
                from: from.clone(),
                sent_at,
                not_before: Timestamp(self.not_before),
            });
        }
        Ok(())
    }

    /// Makes sure the file covers `sent_at` before the envelope is accepted.
    pub(crate) fn cover(&self, sent_at: Timestamp) -> std::io::Result<()> {
        if sent_at.millis() <= self.written.load(Ordering::Acquire) {
            return Ok(());
        }
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        // Another envelope may have moved it while this one waited.
        if sent_at.millis() <= self.written.load(Ordering::Acquire) {
            return Ok(());
        }
        let next = sent_at.millis().checked_add(HORIZON_AHEAD_MS).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("sent_at {} ms is out of range", sent_at.0))
        })?;
        write_durably(&self.path, next.to_string().as_bytes())?;
        self.written.store(next, Ordering::Release);
        Ok(())
    }
}

// An envelope is stale long before a horizon written for it could matter again.
const _: () = assert!(HORIZON_AHEAD_MS < MAX_AGE_MS);

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}
