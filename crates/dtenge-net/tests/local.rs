//! The in-process transport and the receiver's checks, with crafted envelopes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{
    Answer, Bus, Clock, Direction, Envelope, Evidence, Gate, Handler, HandlerError, LocalNetwork, MAX_AGE_MS,
    MAX_BODY_BYTES, MAX_FUTURE_MS, ManualClock, MemoryEvidence, NetError, Outcome, ParticipantInfo, Participants, Role,
};
use dtenge_types::{ParticipantId, Timestamp};

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(seed: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed([seed; 32]))
}

/// Answers `"<sender>:<body>"`.
struct EchoFrom;

#[async_trait::async_trait]
impl Handler for EchoFrom {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let mut answer = format!("{from}:").into_bytes();
        answer.extend(body);
        Ok(answer)
    }
}

/// Refuses everything.
struct Refuser;

#[async_trait::async_trait]
impl Handler for Refuser {
    async fn handle(&self, _from: &ParticipantId, _body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        Err(HandlerError::Forbidden("not for you".into()))
    }
}

/// Never answers.
struct Silent;

#[async_trait::async_trait]
impl Handler for Silent {
    async fn handle(&self, _from: &ParticipantId, _body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        std::future::pending().await
    }
}

const START: Timestamp = Timestamp(1_700_000_000_000);

/// STB1 (seed 1) calls NOTARY (seed 2); ORACLE (seed 3) is listed but serves nothing.
struct World {
    participants: Arc<Participants>,
    clock: Arc<ManualClock>,
    evidence: Arc<MemoryEvidence>,
    network: Arc<LocalNetwork>,
    stb: Arc<dyn Bus>,
}

fn info(name: &str, role: Role, seed: u8) -> ParticipantInfo {
    ParticipantInfo {
        id: id(name),
        name: name.to_lowercase(),
        role,
        public_key: key(seed).public_key(),
        endpoint: None,
        tls_key: None,
    }
}

fn world_with(handler: Arc<dyn Handler>, timeout: Duration) -> World {
    let participants = Arc::new(Participants::new(vec![
        info("STB1", Role::Stb, 1),
        info("NOTARY", Role::Notary, 2),
        info("ORACLE", Role::Oracle, 3),
    ]));
    let clock = ManualClock::new(START);
    let evidence = Arc::new(MemoryEvidence::new());
    let network = LocalNetwork::with_timeout(participants.clone(), clock.clone(), evidence.clone(), timeout);
    network.register(id("NOTARY"), key(2), handler);
    let stb = network.bus(id("STB1"), key(1));
    World { participants, clock, evidence, network, stb }
}

fn world(handler: Arc<dyn Handler>) -> World {
    world_with(handler, Duration::from_secs(10))
}

/// A request from `from` to NOTARY, signed with `signer`.
fn crafted(from: &str, sent_at: Timestamp, nonce: u64, signer: &dyn Signer) -> Envelope {
    Envelope::seal(id(from), id("NOTARY"), sent_at, nonce, b"ping".to_vec(), signer)
}

#[tokio::test]
async fn call_returns_the_handlers_answer() {
    let world = world(Arc::new(EchoFrom));
    let answer = world.stb.call(&id("NOTARY"), b"ping".to_vec()).await.unwrap();
    assert_eq!(answer, b"STB1:ping");
    assert_eq!(world.stb.me(), &id("STB1"));
}

#[tokio::test]
async fn a_shut_down_network_lets_go_of_its_handlers_and_answers_unreachable() {
    let handler: Arc<dyn Handler> = Arc::new(EchoFrom);
    let held = Arc::downgrade(&handler);
    let world = world(handler);
    assert_eq!(world.stb.call(&id("NOTARY"), b"ping".to_vec()).await.unwrap(), b"STB1:ping");
    world.network.shut_down();
    assert_eq!(held.strong_count(), 0, "the handler is freed");
    match world.stb.call(&id("NOTARY"), b"ping".to_vec()).await {
        Err(NetError::Unreachable { to, .. }) => assert_eq!(to, id("NOTARY")),
        other => panic!("a call after shutting down: {other:?}"),
    }
}

#[tokio::test]
async fn handler_sees_the_verified_sender() {
    let world = world(Arc::new(EchoFrom));
    // ORACLE also calls, with its own identity.
    let oracle = world.network.bus(id("ORACLE"), key(3));
    assert_eq!(oracle.call(&id("NOTARY"), vec![]).await.unwrap(), b"ORACLE:");
    assert_eq!(world.stb.call(&id("NOTARY"), vec![]).await.unwrap(), b"STB1:");
}

#[tokio::test]
async fn evidence_keeps_the_request_and_its_bound_answer() {
    let world = world(Arc::new(EchoFrom));
    world.stb.call(&id("NOTARY"), b"ping".to_vec()).await.unwrap();
    let kept = world.evidence.entries();
    assert_eq!(kept.len(), 2);
    let (request, answer) = (&kept[0], &kept[1]);
    assert_eq!((&request.from, &request.to, request.direction()), (&id("STB1"), &id("NOTARY"), Direction::Request));
    assert_eq!((&answer.from, &answer.to, answer.direction()), (&id("NOTARY"), &id("STB1"), Direction::Answer));
    assert_eq!(request.open(&key(1).public_key(), &dtenge_crypto::Ed25519), Ok(()));
    assert_eq!(answer.open(&key(2).public_key(), &dtenge_crypto::Ed25519), Ok(()));
    let body = Answer::decode(&answer.body).unwrap();
    assert_eq!(body, Answer { in_reply_to: request.digest(), outcome: Outcome::Done(b"STB1:ping".to_vec()) });
}

#[tokio::test]
async fn forged_signature_is_refused() {
    let world = world(Arc::new(EchoFrom));
    // Claims to be STB1 but is signed with ORACLE's key.
    let forged = crafted("STB1", START, 1, key(3).as_ref());
    assert_eq!(world.network.deliver(forged).await, Err(NetError::BadSignature { from: id("STB1") }));
    assert!(world.evidence.entries().is_empty());
}

#[tokio::test]
async fn unknown_sender_is_refused() {
    let world = world(Arc::new(EchoFrom));
    let stranger = crafted("MALLORY", START, 1, key(9).as_ref());
    assert_eq!(world.network.deliver(stranger).await, Err(NetError::UnknownParticipant(id("MALLORY"))));
}

#[tokio::test]
async fn envelope_for_someone_else_is_refused_by_the_gate() {
    let world = world(Arc::new(EchoFrom));
    let gate = Gate::new(id("ORACLE"), world.participants.clone(), world.clock.clone());
    let to_notary = crafted("STB1", START, 1, key(1).as_ref());
    assert_eq!(
        gate.admit(&to_notary, Direction::Request),
        Err(NetError::Misdirected { expected: id("ORACLE"), got: id("NOTARY") })
    );
}

#[tokio::test]
async fn envelope_older_than_a_minute_is_stale() {
    let world = world(Arc::new(EchoFrom));
    let old = Timestamp(START.millis() - MAX_AGE_MS - 1);
    let stale = crafted("STB1", old, 1, key(1).as_ref());
    assert_eq!(world.network.deliver(stale).await, Err(NetError::Stale { from: id("STB1"), sent_at: old, now: START }));
    let oldest_fresh = crafted("STB1", Timestamp(START.millis() - MAX_AGE_MS), 2, key(1).as_ref());
    assert!(world.network.deliver(oldest_fresh).await.is_ok());
}

#[tokio::test]
async fn envelope_from_more_than_ten_seconds_ahead_is_stale() {
    let world = world(Arc::new(EchoFrom));
    let ahead = START.plus_millis(MAX_FUTURE_MS + 1);
    let future = crafted("STB1", ahead, 1, key(1).as_ref());
    assert_eq!(
        world.network.deliver(future).await,
        Err(NetError::Stale { from: id("STB1"), sent_at: ahead, now: START })
    );
    let latest_fresh = crafted("STB1", START.plus_millis(MAX_FUTURE_MS), 2, key(1).as_ref());
    assert!(world.network.deliver(latest_fresh).await.is_ok());
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let world = world(Arc::new(EchoFrom));
    let request = crafted("STB1", START, 42, key(1).as_ref());
    assert!(world.network.deliver(request.clone()).await.is_ok());
    world.clock.advance(30_000);
    assert_eq!(world.network.deliver(request).await, Err(NetError::Replayed { from: id("STB1"), nonce: 42 }));
    // Same nonce, different content: still a replay.
    let resigned = Envelope::seal(id("STB1"), id("NOTARY"), world.clock.now(), 42, b"other".to_vec(), key(1).as_ref());
    assert_eq!(world.network.deliver(resigned).await, Err(NetError::Replayed { from: id("STB1"), nonce: 42 }));
}

#[tokio::test]
async fn many_calls_never_reuse_a_nonce() {
    let world = world(Arc::new(EchoFrom));
    for _ in 0..100 {
        world.stb.call(&id("NOTARY"), vec![]).await.unwrap();
    }
    let mut nonces: Vec<(ParticipantId, u64)> =
        world.evidence.entries().into_iter().map(|e| (e.from, e.nonce)).collect();
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 200);
}

#[tokio::test]
async fn handler_error_comes_back_as_refused() {
    let world = world(Arc::new(Refuser));
    assert_eq!(
        world.stb.call(&id("NOTARY"), vec![]).await,
        Err(NetError::Refused(HandlerError::Forbidden("not for you".into())))
    );
    // The signed refusal is evidence too.
    assert_eq!(world.evidence.entries().len(), 2);
}

#[tokio::test]
async fn partitioned_participant_is_unreachable_until_healed() {
    let world = world(Arc::new(EchoFrom));
    for side in [id("NOTARY"), id("STB1")] {
        world.network.partition(&side);
        let result = world.stb.call(&id("NOTARY"), vec![]).await;
        assert!(matches!(result, Err(NetError::Unreachable { ref to, .. }) if *to == id("NOTARY")), "{result:?}");
        world.network.heal(&side);
        assert_eq!(world.stb.call(&id("NOTARY"), vec![]).await.unwrap(), b"STB1:");
    }
}

#[tokio::test]
async fn listed_participant_without_handler_is_unreachable_and_unlisted_is_unknown() {
    let world = world(Arc::new(EchoFrom));
    assert!(matches!(world.stb.call(&id("ORACLE"), vec![]).await, Err(NetError::Unreachable { .. })));
    assert_eq!(world.stb.call(&id("NOBODY"), vec![]).await, Err(NetError::UnknownParticipant(id("NOBODY"))));
}

#[tokio::test]
async fn answer_signed_with_an_unregistered_key_is_refused_by_the_caller() {
    let world = world(Arc::new(EchoFrom));
    // ORACLE serves, but with a key that is not the one in the directory.
    world.network.register(id("ORACLE"), key(7), Arc::new(EchoFrom));
    assert_eq!(world.stb.call(&id("ORACLE"), vec![]).await, Err(NetError::BadSignature { from: id("ORACLE") }));
}

#[tokio::test]
async fn body_over_the_limit_is_refused_before_sending() {
    let world = world(Arc::new(EchoFrom));
    let result = world.stb.call(&id("NOTARY"), vec![0; MAX_BODY_BYTES + 1]).await;
    assert_eq!(result, Err(NetError::TooLarge { size: MAX_BODY_BYTES as u64 + 1, max: MAX_BODY_BYTES as u64 }));
    assert!(world.evidence.entries().is_empty());
}

#[tokio::test]
async fn handler_that_never_answers_times_out() {
    let world = world_with(Arc::new(Silent), Duration::from_millis(50));
    assert_eq!(world.stb.call(&id("NOTARY"), vec![]).await, Err(NetError::Timeout { to: id("NOTARY") }));
}

#[test]
fn evidence_trait_is_object_safe() {
    let sink: Arc<dyn Evidence> = Arc::new(dtenge_net::NoEvidence);
    sink.keep(&crafted("STB1", START, 1, key(1).as_ref()));
}
