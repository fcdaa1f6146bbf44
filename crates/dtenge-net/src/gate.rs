//! The receiver's checks, shared by both transports, and nonce generation.
//!
//! ```text
//!   envelope ──► to == me? ──► right direction? ──► sender listed? ──► fresh? ──► signature? ──► new nonce? ──► accepted
//!                Misdirected   Decode               UnknownParticipant Stale      BadSignature   Replayed
//!                                                                              RevokedKey (signed with a key
//!                                                                              the registry withdrew)
//! ```
//!
//! A [`Gate`] belongs to one receiving identity. Servers run every incoming
//! request through it, callers run every answer through theirs.
//!
//! Invariants:
//! * An envelope is accepted only if it is addressed to the gate's owner, its
//!   sender is in the directory, it was sent at most [`MAX_AGE_MS`] before and
//!   at most [`MAX_FUTURE_MS`] after the receiver's clock, its signature
//!   verifies against the sender's registered key, and its (sender, nonce)
//!   has not been accepted before within the replay window.
//! * With a [`ReplayHorizon`] (every service of a multi-process platform), an
//!   envelope sent before the horizon its identity's previous run left, or
//!   before this run started, is refused ([`NetError::SignedBeforeRestart`]),
//!   and the horizon is durably moved past an envelope's `sent_at` before it
//!   is accepted: a restart does not reopen the replay window (see
//!   [`crate::horizon`]).
//! * The replay cache records a nonce only after the signature verified, so
//!   forged envelopes cannot fill it. It remembers every accepted nonce for
//!   [`REPLAY_WINDOW_MS`] (longer than any envelope stays fresh) and holds at
//!   most [`MAX_REPLAY_NONCES_PER_SENDER`] per sender; when full, it forgets
//!   the oldest and from then on refuses every nonce up to the largest one
//!   forgotten. That may refuse a very late honest message, never a replay.
//! * Nonces from a [`NonceSource`] increase by one per message from a seed of
//!   `now_ms · 2²⁰ + 19 random bits`, so a restarted sender starts above every
//!   nonce it used before (unless it sent over half a million messages per
//!   millisecond of uptime). Bit 63 is left for [`Direction`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dtenge_crypto::Ed25519;
use dtenge_types::{ParticipantId, Timestamp};

use crate::envelope::ANSWER_NONCE_BIT;
use crate::{Clock, Direction, Envelope, HandlerError, NetError, Participants, ReplayHorizon};

/// An envelope older than this (by the receiver's clock) is stale.
pub const MAX_AGE_MS: u64 = 60_000;
/// An envelope from further in the future than this is refused as stale.
pub const MAX_FUTURE_MS: u64 = 10_000;
/// How long an accepted nonce is remembered.
pub const REPLAY_WINDOW_MS: u64 = 70_000;
/// Most nonces remembered per sender (≈ 3 700 messages/s sustained over the window).
pub const MAX_REPLAY_NONCES_PER_SENDER: usize = 1 << 18;

// An envelope must leave the freshness window before its nonce leaves the
// cache, counting the allowed clock skew into the future.
const _: () = assert!(MAX_AGE_MS + MAX_FUTURE_MS <= REPLAY_WINDOW_MS);

/// The checks one receiving identity applies to every envelope it accepts.
pub struct Gate {
    me: ParticipantId,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    replay: ReplayCache,
    /// The durable horizon of a served identity; `None` for a caller's gate
    /// (answers are bound to requests this run sealed) and in-process networks.
    horizon: Option<Arc<ReplayHorizon>>,
}

impl Gate {
    /// A gate for envelopes addressed to `me`.
    pub fn new(me: ParticipantId, participants: Arc<Participants>, clock: Arc<dyn Clock>) -> Self {
        Self::with_replay_limit(me, participants, clock, MAX_REPLAY_NONCES_PER_SENDER)
    }

    fn with_replay_limit(
        me: ParticipantId,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        limit_per_sender: usize,
    ) -> Self {
        Gate { me, participants, clock, replay: ReplayCache::new(limit_per_sender.max(1)), horizon: None }
    }

    /// This gate, refusing what an earlier run may have accepted and keeping
    /// `horizon` ahead of everything it accepts.
    pub fn with_horizon(mut self, horizon: Option<Arc<ReplayHorizon>>) -> Self {
        self.horizon = horizon;
        self
    }

    /// Whose envelopes this gate admits.
    pub fn me(&self) -> &ParticipantId {
        &self.me
    }

    /// Runs every check (see the module docs) on an envelope expected to be a
    /// `direction`; on `Ok` the nonce is recorded as seen.
    pub fn admit(&self, envelope: &Envelope, direction: Direction) -> Result<(), NetError> {
        if envelope.to != self.me {
            return Err(NetError::Misdirected { expected: self.me.clone(), got: envelope.to.clone() });
        }
        if envelope.direction() != direction {
            return Err(NetError::Decode(format!("expected a {direction:?}, got a {:?}", envelope.direction())));
        }
        let sender =
            self.participants.get(&envelope.from).ok_or_else(|| NetError::UnknownParticipant(envelope.from.clone()))?;
        let now = self.clock.now();
        let too_old = now.millis().saturating_sub(envelope.sent_at.millis()) > MAX_AGE_MS;
        let too_new = envelope.sent_at.millis().saturating_sub(now.millis()) > MAX_FUTURE_MS;
        if too_old || too_new {
            return Err(NetError::Stale { from: envelope.from.clone(), sent_at: envelope.sent_at, now });
        }
        if let Err(bad) = envelope.open(&sender.public_key, &Ed25519) {
            // Signed with a key the registry withdrew: say so, not just "bad signature".
            let revoked = self.participants.revoked_keys_of(&envelope.from);
            if let Some(r) = revoked.into_iter().find(|r| envelope.open(&r.key, &Ed25519).is_ok()) {
                return Err(NetError::RevokedKey {
                    from: envelope.from.clone(),
                    key: r.key.to_string(),
                    serial: r.serial,
                    reason: r.reason,
                });
            }
            return Err(bad);
        }
        if let Some(horizon) = &self.horizon {
            horizon.check(&envelope.from, envelope.sent_at)?;
        }
        if !self.replay.record(&envelope.from, envelope.nonce, now) {
            return Err(NetError::Replayed { from: envelope.from.clone(), nonce: envelope.nonce });
        }
        if let Some(horizon) = &self.horizon {
            // Only a verified envelope moves the horizon, so forgeries cannot push it ahead.
            horizon.cover(envelope.sent_at).map_err(|e| {
                tracing::error!(me = %self.me, error = %e, "the replay horizon cannot be written");
                NetError::Refused(HandlerError::Unavailable(format!(
                    "{} cannot record its replay horizon: {e}",
                    self.me
                )))
            })?;
        }
        Ok(())
    }
}

/// Nonces seen recently, per sender.
struct ReplayCache {
    limit_per_sender: usize,
    senders: Mutex<HashMap<ParticipantId, SenderWindow>>,
}

#[derive(Default)]
struct SenderWindow {
    seen: HashSet<u64>,
    /// (receiver time of acceptance, nonce), in acceptance order.
    order: VecDeque<(Timestamp, u64)>,
    /// Every nonce up to this one counts as seen (set once entries were forgotten for space).
    floor: Option<u64>,
}

impl ReplayCache {
    fn new(limit_per_sender: usize) -> Self {
        ReplayCache { limit_per_sender, senders: Mutex::new(HashMap::new()) }
    }

    /// Records `nonce` from `from`; `false` if it counts as seen already.
    fn record(&self, from: &ParticipantId, nonce: u64, now: Timestamp) -> bool {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        // Senders are bounded by the directory: only verified envelopes get here.
        let window = senders.entry(from.clone()).or_default();
        while let Some(&(accepted_at, old)) = window.order.front() {
            if accepted_at.millis().saturating_add(REPLAY_WINDOW_MS) >= now.millis() {
                break;
            }
            window.order.pop_front();
            window.seen.remove(&old);
        }
        if window.floor.is_some_and(|floor| nonce <= floor) || !window.seen.insert(nonce) {
            return false;
        }
        window.order.push_back((now, nonce));
        if window.order.len() > self.limit_per_sender
            && let Some((_, forgotten)) = window.order.pop_front()
        {
            window.seen.remove(&forgotten);
            window.floor = Some(window.floor.map_or(forgotten, |floor| floor.max(forgotten)));
        }
        true
    }
}

/// A sender's nonce counter (see the module docs for the seeding).
#[derive(Debug)]
pub struct NonceSource {
    next: AtomicU64,
}

impl NonceSource {
    /// A counter seeded from `now` and 19 random bits.
    pub fn new(now: Timestamp) -> Self {
        let mut random = [0u8; 4];
        // Without OS randomness the clock alone still keeps restarts apart.
        let _ = getrandom::fill(&mut random);
        let random_bits = u64::from(u32::from_le_bytes(random) & 0x0007_FFFF);
        let seed = (now.millis().saturating_mul(1 << 20) | random_bits) & !ANSWER_NONCE_BIT;
        NonceSource { next: AtomicU64::new(seed) }
    }

    /// The next nonce for an envelope going in `direction`.
    pub fn next(&self, direction: Direction) -> u64 {
        let counter = self.next.fetch_add(1, Ordering::Relaxed) & !ANSWER_NONCE_BIT;
        match direction {
            Direction::Request => counter,
            Direction::Answer => counter | ANSWER_NONCE_BIT,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dtenge_crypto::SecretKey;

    use super::*;
    use crate::{ManualClock, ParticipantInfo, Role};

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    fn setup(limit: usize) -> (Gate, Arc<ManualClock>, SecretKey) {
        let key = SecretKey::from_seed([3; 32]);
        let participants = Arc::new(Participants::new(vec![ParticipantInfo {
            id: id("STB1"),
            name: "bank".into(),
            role: Role::Stb,
            public_key: key.public_key(),
            endpoint: None,
            tls_key: None,
        }]));
        let clock = ManualClock::new(Timestamp(1_000_000));
        (Gate::with_replay_limit(id("NOTARY"), participants, clock.clone(), limit), clock, key)
    }

    fn request(clock: &ManualClock, nonce: u64, key: &SecretKey) -> Envelope {
        Envelope::seal(id("STB1"), id("NOTARY"), clock.now(), nonce, vec![1], key)
    }

    #[test]
    fn nonce_is_forgotten_only_after_the_replay_window() {
        let (gate, clock, key) = setup(16);
        let envelope = request(&clock, 1, &key);
        assert_eq!(gate.admit(&envelope, Direction::Request), Ok(()));
        clock.advance(MAX_AGE_MS);
        assert!(matches!(gate.admit(&envelope, Direction::Request), Err(NetError::Replayed { nonce: 1, .. })));
        clock.advance(1);
        // Too old now, whatever the cache says.
        assert!(matches!(gate.admit(&envelope, Direction::Request), Err(NetError::Stale { .. })));
    }

    #[test]
    fn full_cache_forgets_oldest_but_still_refuses_its_nonce() {
        let (gate, clock, key) = setup(2);
        for nonce in [10, 11, 12] {
            assert_eq!(gate.admit(&request(&clock, nonce, &key), Direction::Request), Ok(()));
        }
        // 10 was forgotten for space: it and everything below stay refused.
        for nonce in [10, 5] {
            assert!(matches!(
                gate.admit(&request(&clock, nonce, &key), Direction::Request),
                Err(NetError::Replayed { .. })
            ));
        }
        assert_eq!(gate.admit(&request(&clock, 13, &key), Direction::Request), Ok(()));
    }

    #[test]
    fn answer_nonce_is_refused_as_a_request_and_vice_versa() {
        let (gate, clock, key) = setup(16);
        let answer = request(&clock, 1 | ANSWER_NONCE_BIT, &key);
        assert!(matches!(gate.admit(&answer, Direction::Request), Err(NetError::Decode(_))));
        assert!(matches!(gate.admit(&request(&clock, 1, &key), Direction::Answer), Err(NetError::Decode(_))));
    }

    #[test]
    fn envelope_signed_with_a_revoked_key_is_refused_naming_the_revocation() {
        let (gate, clock, old_key) = setup(16);
        let new_key = SecretKey::from_seed([4; 32]);
        let entry = |key: &SecretKey| ParticipantInfo {
            id: id("STB1"),
            name: "bank".into(),
            role: Role::Stb,
            public_key: key.public_key(),
            endpoint: None,
            tls_key: None,
        };
        let revoked = crate::RevokedKey {
            participant: id("STB1"),
            key: old_key.public_key(),
            serial: 2,
            reason: "rotated".into(),
        };
        gate.participants.replace(vec![entry(&new_key)], vec![revoked], 2).unwrap();
        let refused = gate.admit(&request(&clock, 1, &old_key), Direction::Request);
        assert!(
            matches!(refused, Err(NetError::RevokedKey { serial: 2, ref reason, .. }) if reason == "rotated"),
            "{refused:?}"
        );
        let stranger = SecretKey::from_seed([5; 32]);
        assert!(matches!(
            gate.admit(&request(&clock, 2, &stranger), Direction::Request),
            Err(NetError::BadSignature { .. })
        ));
        assert_eq!(gate.admit(&request(&clock, 3, &new_key), Direction::Request), Ok(()));
    }

    #[test]
    fn nonce_source_increases_and_marks_direction() {
        let source = NonceSource::new(Timestamp(1_700_000_000_000));
        let first = source.next(Direction::Request);
        let second = source.next(Direction::Answer);
        assert_eq!(first & ANSWER_NONCE_BIT, 0);
        assert_eq!(second, (first + 1) | ANSWER_NONCE_BIT);
        assert!(first >= 1_700_000_000_000 << 20);
        // A restart a millisecond later starts above anything sent before.
        let restarted = NonceSource::new(Timestamp(1_700_000_000_001));
        assert!(restarted.next(Direction::Request) > first + 1);
    }
}
