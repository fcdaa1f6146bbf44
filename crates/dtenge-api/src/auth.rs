//! Signed requests (SPEC §5, §11): RFC 9421 HTTP Message Signatures with
//! Ed25519 and an RFC 9530 `Content-Digest`, in FAPI 2.0's message-signing
//! profile — see [`dtenge_api_types::signing`] for the headers and what is
//! required. Here: the server's side of it — the target URI the client
//! addressed, the participant directory as the key directory, and the replay
//! cache.
//!
//! Replay protection holds at any request rate for the whole freshness
//! window: a nonce is remembered for [`REPLAY_WINDOW_MS`] after it was
//! accepted (longer than its signature stays fresh), and when a
//! participant's window is full the request is refused with 503 and
//! `Retry-After` — the cache never forgets a nonce early.
//!
//! Across a restart the cache is empty, so the server must not accept
//! anything it may have accepted before. It keeps a *horizon*
//! (`DATA/api/replay-horizon`): a second at or after the `created` of every
//! request it accepted, written and fsynced before a request signed later
//! than the horizon is accepted (set [`HORIZON_AHEAD_S`] ahead, so it is
//! rewritten about once per that many seconds). A restarted server refuses
//! every signature created at or before the old horizon or before its own
//! start, with 401 `signed_before_restart` and `Retry-After`: the client
//! signs again (the typed client does so by itself). That closes the window
//! exactly, including signatures created in the crash's own second and
//! ones dated ahead of the server's clock; what it costs is that an honest
//! request signed within [`HORIZON_AHEAD_S`] s (plus the clock skew the
//! signer used) of the crash is refused once after a quick restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, Uri};
use dtenge_api_types::signing::{self, MAX_AGE_S, MAX_FUTURE_S, Message, SignatureError};
use dtenge_crypto::Ed25519;
use dtenge_net::{Participants, Role};
use dtenge_types::{ParticipantId, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// How long an accepted nonce is remembered: its signature's freshness
/// window (60 s back, 10 s ahead) plus two seconds for `created`'s
/// whole-second resolution.
pub const REPLAY_WINDOW_MS: u64 = (MAX_AGE_S + MAX_FUTURE_S + 2) * 1_000;
/// Nonces remembered per participant unless configured otherwise: enough for
/// about 14 500 requests per second from one participant, sustained.
pub const REPLAY_CAPACITY_DEFAULT: usize = 1 << 20;
/// How far past a request's `created` the durable replay horizon is set.
pub const HORIZON_AHEAD_S: u64 = 2;
/// The horizon's file under the API's data directory.
pub const HORIZON_FILE: &str = "replay-horizon";

/// Who called.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The participant.
    pub id: ParticipantId,
    /// Its kind.
    pub role: Role,
}

/// What became of a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// First use: recorded.
    Fresh,
    /// Used before within the window.
    Replayed,
    /// The participant's window is full; try again after this many seconds.
    Full(u64),
}

/// Nonces one participant used within the window: a set for lookups and
/// the acceptance order for forgetting (each entry with the time it may be
/// forgotten).
#[derive(Default)]
struct Window {
    seen: HashSet<[u8; 16]>,
    order: VecDeque<(u64, [u8; 16])>,
}

/// Remembers nonces to refuse replays (see the module docs).
pub struct ReplayGuard {
    capacity: usize,
    /// No signature created before this second is accepted: this process's
    /// start, or past the horizon a previous process left.
    not_before_s: u64,
    windows: Mutex<HashMap<ParticipantId, Window>>,
    /// The durable horizon; `None` for an API that keeps nothing on disk.
    horizon: Option<Horizon>,
}

/// The durable horizon (see the module docs): the file and the second it holds.
struct Horizon {
    path: PathBuf,
    at_s: Mutex<u64>,
}

impl Horizon {
    /// Makes sure the file says at least `created_s`: written (fsynced,
    /// renamed into place) before the request is accepted.
    fn cover(&self, created_s: u64) -> std::io::Result<()> {
        let mut at = self.at_s.lock().unwrap_or_else(|p| p.into_inner());
        if created_s <= *at {
            return Ok(());
        }
        let next = created_s.checked_add(HORIZON_AHEAD_S).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("created {created_s} s is out of range"))
        })?;
        write_durably(&self.path, next.to_string().as_bytes())?;
        *at = next;
        Ok(())
    }
}

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

/// Why the replay horizon cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HorizonError {
    /// The file cannot be read or written.
    #[error("replay horizon {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a number of seconds.
    #[error(
        "replay horizon {path} holds {text:?}, not a number of seconds; restore it from a backup, or write a second after the last request the server accepted"
    )]
    Malformed {
        /// The file.
        path: String,
        /// What it holds.
        text: String,
    },
}

impl ReplayGuard {
    /// A guard started at `now` holding at most `capacity` nonces per
    /// participant, in memory only: it refuses signatures created before `now`'s second.
    pub fn new(capacity: usize, now: Timestamp) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            not_before_s: now.millis() / 1_000,
            windows: Mutex::new(HashMap::new()),
            horizon: None,
        }
    }

    /// A guard over the durable horizon in `dir`: it also refuses every
    /// signature created at or before the horizon a previous process left.
    pub fn durable(capacity: usize, now: Timestamp, dir: &Path) -> Result<ReplayGuard, HorizonError> {
        let path = dir.join(HORIZON_FILE);
        let io = |source| HorizonError::Io { path: path.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let previous = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| HorizonError::Malformed {
                path: path.display().to_string(),
                text: text.chars().take(40).collect(),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let start_s = now.millis() / 1_000;
        let not_before_s = previous.map_or(start_s, |h| start_s.max(h.saturating_add(1)));
        // A horizon is never set further ahead of the clock than a signature may be dated; if it
        // is, the clock went back, and every request is refused until it passes the horizon again.
        if not_before_s > start_s.saturating_add(MAX_FUTURE_S + HORIZON_AHEAD_S + 1) {
            tracing::warn!(
                horizon_s = not_before_s,
                now_s = start_s,
                "the replay horizon in {} is {} s ahead of the clock: signed requests are refused until then (did the clock go back?)",
                path.display(),
                not_before_s - start_s
            );
        }
        let mut guard = ReplayGuard::new(capacity, now);
        guard.not_before_s = not_before_s;
        guard.horizon = Some(Horizon { path, at_s: Mutex::new(previous.unwrap_or(0)) });
        Ok(guard)
    }

    /// The first `created` second this guard accepts.
    pub fn not_before_s(&self) -> u64 {
        self.not_before_s
    }

    fn record(&self, who: &ParticipantId, nonce: &str, now_ms: u64) -> Seen {
        let digest = Sha256::digest(nonce.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        // Participants are bounded by the directory: only verified requests get here.
        let window = windows.entry(who.clone()).or_default();
        while let Some(&(forget_at, old)) = window.order.front() {
            if forget_at > now_ms {
                break;
            }
            window.order.pop_front();
            window.seen.remove(&old);
        }
        if window.seen.contains(&id) {
            return Seen::Replayed;
        }
        if window.order.len() >= self.capacity {
            let oldest = window.order.front().map_or(now_ms, |&(at, _)| at);
            return Seen::Full(oldest.saturating_sub(now_ms).div_ceil(1_000).max(1));
        }
        window.seen.insert(id);
        window.order.push_back((now_ms.saturating_add(REPLAY_WINDOW_MS), id));
        Seen::Fresh
    }
}

/// The URI the client addressed: `scheme://Host/path?query`.
fn target_uri(scheme: &str, uri: &Uri, headers: &HeaderMap) -> Result<String, ApiError> {
    let authority = match uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string).ok_or_else(
            || ApiError::unauthorized("missing_host", "the Host header is missing; the signature covers @target-uri"),
        )?,
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path());
    Ok(format!("{scheme}://{authority}{path}"))
}

/// Headers of a request signed as `who` for a router driven in process
/// (tests and tools that build requests by hand; the typed client signs for
/// you): `host` (the in-process host), `content-digest`, `signature-input`,
/// `signature`, and `idempotency-key` when given.
#[allow(clippy::too_many_arguments)]
pub fn signed_headers(
    key: &dyn dtenge_crypto::Signer,
    who: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    idempotency_key: Option<&str>,
    created_s: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let target = format!("http://{}{path_and_query}", signing::IN_PROCESS_HOST);
    let params = signing::SignatureParams { created: created_s, keyid: who.to_string(), nonce: nonce.to_string() };
    let mut headers = vec![("host", signing::IN_PROCESS_HOST.to_string())];
    match signing::sign(key, method, &target, body, idempotency_key, &params) {
        Ok(signed) => headers.extend(signed.headers().iter().map(|(n, v)| (*n, v.to_string()))),
        Err(e) => tracing::warn!(error = %e, "cannot sign as {who}"),
    }
    if let Some(k) = idempotency_key {
        headers.push((signing::IDEMPOTENCY_KEY, k.to_string()));
    }
    headers
}

fn refusal(e: SignatureError) -> ApiError {
    ApiError::unauthorized(e.code(), e.to_string())
}

/// Checks a request's signature, freshness and nonce; returns the caller.
#[allow(clippy::too_many_arguments)]
pub fn authenticate(
    participants: &Participants,
    replay: &ReplayGuard,
    scheme: &str,
    now: Timestamp,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    if !headers.contains_key(signing::SIGNATURE_INPUT) {
        return Err(refusal(SignatureError::Missing(signing::SIGNATURE_INPUT)));
    }
    let target = target_uri(scheme, uri, headers)?;
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("bad_header", format!("header {name} is not visible ASCII text")))?;
        fields.push((name.as_str(), value));
    }
    let message = Message { method: method.as_str(), target_uri: &target, headers: &fields, body };
    let now_s = now.millis() / 1_000;
    let key_of = |id: &str| {
        let id = ParticipantId::new(id).ok()?;
        participants.get(&id).map(|p| p.public_key)
    };
    let verified = signing::verify(&message, now_s, key_of, &Ed25519).map_err(refusal)?;
    if verified.created < replay.not_before_s {
        let wait_s = replay.not_before_s.saturating_sub(now_s).max(1);
        return Err(ApiError::unauthorized(
            signing::SIGNED_BEFORE_RESTART,
            format!(
                "the signature was created at {} s; after its restart the server accepts only signatures created from {} s on (nothing signed before can be replayed); sign the request again in {wait_s} s",
                verified.created, replay.not_before_s
            ),
        )
        .retry_after(wait_s));
    }
    if let Some(horizon) = &replay.horizon {
        horizon.cover(verified.created).map_err(|e| {
            ApiError::unavailable("storage", format!("the replay horizon cannot be written: {e}")).retry_after(1)
        })?;
    }
    let id = ParticipantId::new(verified.keyid.as_str())
        .map_err(|e| ApiError::unauthorized("unknown_participant", e.to_string()))?;
    let role = participants.get(&id).map(|p| p.role).ok_or_else(|| {
        ApiError::unauthorized("unknown_participant", format!("{id} is not a registered participant"))
    })?;
    match replay.record(&id, &verified.nonce, now.millis()) {
        Seen::Fresh => Ok(Caller { id, role }),
        Seen::Replayed => Err(ApiError::unauthorized(
            "replayed_nonce",
            format!("nonce {} was already used by {id}", verified.nonce),
        )),
        Seen::Full(retry_after_s) => Err(ApiError::unavailable(
            "replay_window_full",
            format!(
                "{id} sent more signed requests within the last {} s than the replay cache holds ({}); retry in {retry_after_s} s",
                REPLAY_WINDOW_MS / 1_000,
                replay.capacity
            ),
        )
        .retry_after(retry_after_s)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    #[test]
    fn a_full_window_refuses_new_nonces_until_the_oldest_may_be_forgotten() {
        let guard = ReplayGuard::new(3, Timestamp(0));
        for (i, nonce) in ["n-0000001", "n-0000002", "n-0000003"].iter().enumerate() {
            assert_eq!(guard.record(&id("STB1"), nonce, 1_000 + i as u64), Seen::Fresh);
        }
        assert_eq!(guard.record(&id("STB1"), "n-0000004", 2_000), Seen::Full(71));
        // Full is never forgetting: every nonce seen is still refused.
        assert_eq!(guard.record(&id("STB1"), "n-0000001", 2_000), Seen::Replayed);
        // Another participant has its own window.
        assert_eq!(guard.record(&id("STB2"), "n-0000004", 2_000), Seen::Fresh);
        // Once the oldest leaves the window there is room again, and only then is it forgotten.
        assert_eq!(guard.record(&id("STB1"), "n-0000004", 1_000 + REPLAY_WINDOW_MS - 1), Seen::Full(1));
        assert_eq!(guard.record(&id("STB1"), "n-0000004", 1_000 + REPLAY_WINDOW_MS), Seen::Fresh);
        assert_eq!(guard.record(&id("STB1"), "n-0000002", 1_000 + REPLAY_WINDOW_MS), Seen::Replayed);
    }

    #[test]
    fn a_nonce_outlives_its_signature() {
        // Accepted at the latest a request can be (created 10 s ahead), the
        // nonce must still be known when that signature goes stale.
        let created_s = 100 + MAX_FUTURE_S;
        let accepted_ms = 100_000;
        let last_fresh_ms = (created_s + MAX_AGE_S) * 1_000 + 999;
        assert!(accepted_ms + REPLAY_WINDOW_MS > last_fresh_ms);
    }
}
