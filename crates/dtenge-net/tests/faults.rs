//! The fault-injecting network: each fate does what it says, to the caller
//! and to the callee, and late or duplicated envelopes still meet the gate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{
    Fate, FaultPlan, FaultyNetwork, Handler, HandlerError, LocalNetwork, MAX_AGE_MS, ManualClock, NetError, NoEvidence,
    ParticipantInfo, Participants, Role,
};
use dtenge_types::{ParticipantId, Timestamp};

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(seed: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed([seed; 32]))
}

/// Counts the requests it handles.
#[derive(Default)]
struct Counter(AtomicUsize);

#[async_trait::async_trait]
impl Handler for Counter {
    async fn handle(&self, _from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(body)
    }
}

/// Fates from a script, in order; the link is up unless `down` is set.
#[derive(Default)]
struct Script {
    fates: Mutex<VecDeque<Fate>>,
    down: std::sync::atomic::AtomicBool,
}

impl FaultPlan for Script {
    fn fate(&self, _from: &ParticipantId, _to: &ParticipantId) -> Fate {
        self.fates.lock().unwrap().pop_front().unwrap_or(Fate::Deliver)
    }
    fn link_up(&self, _from: &ParticipantId, _to: &ParticipantId) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
}

struct World {
    clock: Arc<ManualClock>,
    net: Arc<FaultyNetwork>,
    script: Arc<Script>,
    handled: Arc<Counter>,
    bus: Arc<dyn dtenge_net::Bus>,
}

fn world(fates: &[Fate]) -> World {
    let info = |name: &str, role, seed: u8| ParticipantInfo {
        id: id(name),
        name: name.into(),
        role,
        public_key: key(seed).public_key(),
        endpoint: None,
        tls_key: None,
    };
    let participants = Arc::new(Participants::new(vec![info("STB1", Role::Stb, 1), info("NOTARY", Role::Notary, 2)]));
    let clock = ManualClock::new(Timestamp(1_700_000_000_000));
    let network = LocalNetwork::new(participants, clock.clone(), Arc::new(NoEvidence));
    let handled = Arc::new(Counter::default());
    network.register(id("NOTARY"), key(2), handled.clone());
    let script = Arc::new(Script { fates: Mutex::new(fates.iter().copied().collect()), ..Script::default() });
    let net = FaultyNetwork::new(network, script.clone());
    let bus = net.bus(id("STB1"), key(1));
    World { clock, net, script, handled, bus }
}

impl World {
    fn handled(&self) -> usize {
        self.handled.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn deliver_cut_and_lost_requests() {
    let w = world(&[Fate::Deliver, Fate::Cut, Fate::LoseRequest]);
    assert_eq!(w.bus.call(&id("NOTARY"), b"a".to_vec()).await.unwrap(), b"a");
    assert_eq!(w.handled(), 1);
    let err = w.bus.call(&id("NOTARY"), b"b".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("the link STB1 ↔ NOTARY is cut"), "{err}");
    assert_eq!(w.bus.call(&id("NOTARY"), b"c".to_vec()).await.unwrap_err(), NetError::Timeout { to: id("NOTARY") });
    assert_eq!(w.handled(), 1, "neither a cut nor a lost request reaches the callee");
    let stats = w.net.stats();
    assert_eq!((stats.delivered, stats.cut, stats.lost_requests), (1, 1, 1));
}

#[tokio::test]
async fn a_lost_answer_means_the_callee_acted_and_the_caller_timed_out() {
    let w = world(&[Fate::LoseAnswer]);
    assert_eq!(w.bus.call(&id("NOTARY"), b"a".to_vec()).await.unwrap_err(), NetError::Timeout { to: id("NOTARY") });
    assert_eq!(w.handled(), 1);
}

#[tokio::test]
async fn a_duplicated_envelope_is_handled_once_the_copy_refused_as_a_replay() {
    let w = world(&[Fate::Duplicate]);
    assert_eq!(w.bus.call(&id("NOTARY"), b"a".to_vec()).await.unwrap(), b"a");
    assert_eq!(w.handled(), 1);
    let stats = w.net.stats();
    assert_eq!((stats.duplicated, stats.duplicates_refused, stats.duplicates_admitted), (1, 1, 0));
}

/// Takes a while over each request, during which the clock moves past an
/// envelope's age (what the simulation's clock steps can do while a
/// replica handles a request).
struct Slow {
    clock: Arc<ManualClock>,
    handled: Counter,
}

#[async_trait::async_trait]
impl Handler for Slow {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        self.clock.advance(MAX_AGE_MS + 1);
        self.handled.handle(from, body).await
    }
}

/// The second copy of a duplicated envelope that arrives stale is refused
/// at the gate: the callee handled the request once, and it is not counted
/// as admitted twice.
#[tokio::test]
async fn a_duplicate_whose_copy_arrives_stale_is_handled_once_and_not_counted_admitted() {
    let w = world(&[Fate::Duplicate]);
    let slow = Arc::new(Slow { clock: w.clock.clone(), handled: Counter::default() });
    w.net.network().register(id("NOTARY"), key(2), slow.clone());
    // What the caller makes of the answer (stale by now) is not the question here.
    let _ = w.bus.call(&id("NOTARY"), b"a".to_vec()).await;
    assert_eq!(slow.handled.0.load(Ordering::SeqCst), 1, "handled once");
    let stats = w.net.stats();
    assert_eq!((stats.duplicated, stats.duplicates_refused, stats.duplicates_admitted), (1, 1, 0));
}

#[tokio::test]
async fn held_envelopes_arrive_later_in_the_chosen_order_unless_stale_or_cut() {
    let w = world(&[Fate::Delay, Fate::Delay, Fate::Delay]);
    for body in [b"1", b"2", b"3"] {
        assert!(matches!(w.bus.call(&id("NOTARY"), body.to_vec()).await, Err(NetError::Timeout { .. })));
    }
    assert_eq!((w.handled(), w.net.held()), (0, 3));
    // While the link is down nothing is delivered.
    w.script.down.store(true, Ordering::SeqCst);
    assert!(w.net.deliver_held(3, |n| n - 1).await.is_empty());
    w.script.down.store(false, Ordering::SeqCst);
    // Newest first: reordered.
    let late = w.net.deliver_held(1, |n| n - 1).await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].2, Ok(()));
    assert_eq!(w.handled(), 1);
    // The rest arrive after more than a minute: stale, the callee's gate refuses them.
    w.clock.advance(MAX_AGE_MS + 1);
    let late = w.net.deliver_held(5, |_| 0).await;
    assert_eq!(late.len(), 2);
    assert!(late.iter().all(|(_, _, r)| matches!(r, Err(NetError::Stale { .. }))), "{late:?}");
    assert_eq!(w.handled(), 1);
    let stats = w.net.stats();
    assert_eq!((stats.held, stats.late_accepted, stats.late_refused), (3, 1, 2));
    assert_eq!(w.net.held(), 0);
}
