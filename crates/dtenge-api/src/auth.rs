//! Signed requests (SPEC §5: "requests signed by the calling participant").
//!
//! Every request except health and the API description carries four headers:
//!
//! ```text
//!  X-Dtenge-Participant: STB1
//!  X-Dtenge-Timestamp:   1767225600000            (ms since the epoch, UTC)
//!  X-Dtenge-Nonce:       any 8-64 chars [A-Za-z0-9_-], never reused
//!  X-Dtenge-Signature:   hex Ed25519 signature of
//!                        SHA-256("dtenge/api/v1" ‖ METHOD ‖ "\n" ‖ path?query ‖ "\n"
//!                                 ‖ hex(SHA-256(body)) ‖ "\n" ‖ timestamp ‖ "\n" ‖ nonce)
//! ```
//!
//! by the participant's EDS key registered in `platform.json`. Missing or bad
//! signature, unknown participant, a timestamp more than 60 s old or 10 s
//! ahead, or a nonce seen before: 401, with a JSON error naming which.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, Uri};
use dtenge_crypto::{Digest, Ed25519, Signature, Signer, Verifier};
use dtenge_net::{Participants, Role};
use dtenge_types::{ParticipantId, Timestamp};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// Header naming the calling participant.
pub const PARTICIPANT: &str = "x-dtenge-participant";
/// Header with the request time (ms since the epoch).
pub const TIMESTAMP: &str = "x-dtenge-timestamp";
/// Header with a never-reused nonce.
pub const NONCE: &str = "x-dtenge-nonce";
/// Header with the hex signature.
pub const SIGNATURE: &str = "x-dtenge-signature";
/// Oldest acceptable request.
pub const MAX_AGE_MS: u64 = 60_000;
/// Furthest-ahead acceptable request.
pub const MAX_FUTURE_MS: u64 = 10_000;
/// Nonces remembered per participant (beyond the time window they are stale anyway).
const NONCES_PER_PARTICIPANT: usize = 100_000;

/// Who called.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The participant.
    pub id: ParticipantId,
    /// Its role.
    pub role: Role,
}

/// The bytes a caller signs.
pub fn signing_digest(method: &str, path_and_query: &str, body: &[u8], timestamp: u64, nonce: &str) -> Digest {
    let body_hash = hex::encode(Sha256::digest(body));
    let text = format!("{method}\n{path_and_query}\n{body_hash}\n{timestamp}\n{nonce}");
    dtenge_crypto::hash(b"dtenge/api/v1", &[text.as_bytes()])
}

/// Headers for a signed request (used by the client crate and tests).
pub fn sign_headers(
    key: &dyn Signer,
    participant: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let digest = signing_digest(method, path_and_query, body, timestamp, nonce);
    vec![
        (PARTICIPANT, participant.to_string()),
        (TIMESTAMP, timestamp.to_string()),
        (NONCE, nonce.to_string()),
        (SIGNATURE, key.sign(digest.as_bytes()).to_string()),
    ]
}

/// Nonces one participant used recently, and in which order.
type RecentNonces = (std::collections::HashSet<String>, VecDeque<(u64, String)>);

/// Remembers nonces to refuse replays.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<ParticipantId, RecentNonces>>,
}

impl ReplayGuard {
    /// Records `nonce`; false if it was seen within the window.
    fn fresh(&self, who: &ParticipantId, nonce: &str, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = seen.entry(who.clone()).or_default();
        while let Some((at, old)) = order.front() {
            let expired = now.saturating_sub(*at) > MAX_AGE_MS.saturating_add(MAX_FUTURE_MS);
            if expired || order.len() > NONCES_PER_PARTICIPANT {
                set.remove(old);
                order.pop_front();
            } else {
                break;
            }
        }
        if set.contains(nonce) {
            return false;
        }
        set.insert(nonce.to_string());
        order.push_back((now, nonce.to_string()));
        true
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| {
            ApiError::unauthorized("missing_header", format!("header {name} is missing; every request is signed"))
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("bad_header", format!("header {name} is not text")))
}

/// Checks a request's signature headers and returns the caller.
pub fn authenticate(
    participants: &Participants,
    replay: &ReplayGuard,
    now: Timestamp,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let who = header(headers, PARTICIPANT)?;
    let id = ParticipantId::new(who).map_err(|e| ApiError::unauthorized("bad_participant", e.to_string()))?;
    let info = participants.get(&id).ok_or_else(|| {
        ApiError::unauthorized("unknown_participant", format!("{id} is not a registered participant"))
    })?;
    let timestamp: u64 = header(headers, TIMESTAMP)?.parse().map_err(|_| {
        ApiError::unauthorized("bad_timestamp", "x-dtenge-timestamp must be milliseconds since the epoch")
    })?;
    let now_ms = now.millis();
    if timestamp.saturating_add(MAX_AGE_MS) < now_ms || timestamp > now_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(ApiError::unauthorized(
            "stale_timestamp",
            format!("request time {timestamp} is more than 60 s old or 10 s ahead of the platform clock {now_ms}"),
        ));
    }
    let nonce = header(headers, NONCE)?;
    let nonce_ok =
        (8..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(ApiError::unauthorized(
            "bad_nonce",
            "x-dtenge-nonce must be 8-64 characters of A-Z, a-z, 0-9, '-' or '_'",
        ));
    }
    let signature: Signature = header(headers, SIGNATURE)?
        .parse()
        .map_err(|_| ApiError::unauthorized("bad_signature", "x-dtenge-signature must be 128 hex characters"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path());
    let digest = signing_digest(method.as_str(), path, body, timestamp, nonce);
    Ed25519.verify(&info.public_key, digest.as_bytes(), &signature).map_err(|_| {
        ApiError::unauthorized("bad_signature", format!("the signature does not verify with {id}'s registered key"))
    })?;
    if !replay.fresh(&id, nonce, now_ms) {
        return Err(ApiError::unauthorized("replayed_nonce", format!("nonce {nonce} was already used by {id}")));
    }
    Ok(Caller { id, role: info.role })
}
