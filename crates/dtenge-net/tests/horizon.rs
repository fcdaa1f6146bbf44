//! Replay across a restart of the receiving service: an envelope its
//! previous run accepted is never accepted again, even one dated ahead of the
//! receiver's clock, while an honest caller's new request goes through (the
//! bus seals it again past the horizon).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dtenge_crypto::SecretKey;
use dtenge_net::{
    Answer, Bus, Clock, Envelope, HORIZON_AHEAD_MS, Handler, HandlerError, HttpBus, ManualClock, MemoryEvidence,
    NetError, Outcome, ParticipantInfo, Participants, ReplayHorizon, Role, ServerConfig, SystemClock, router,
    serve_router,
};
use dtenge_types::{ParticipantId, Timestamp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(seed: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed([seed; 32]))
}

const START: Timestamp = Timestamp(1_700_000_000_000);

/// Counts the requests it handled: each one is an effect (a claim, a delivery…).
#[derive(Default)]
struct Counting(AtomicU64);

#[async_trait::async_trait]
impl Handler for Counting {
    async fn handle(&self, _from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(body)
    }
}

fn directory(notary: SocketAddr) -> Vec<ParticipantInfo> {
    let entry = |name: &str, role, seed: u8, endpoint: Option<String>| ParticipantInfo {
        id: id(name),
        name: name.into(),
        role,
        public_key: key(seed).public_key(),
        endpoint,
        tls_key: None,
    };
    vec![entry("STB1", Role::Stb, 1, None), entry("NOTARY", Role::Notary, 2, Some(notary.to_string()))]
}

/// One run of NOTARY (seed 2) over `data`, its horizon opened at the clock's time.
struct Run {
    address: SocketAddr,
    evidence: Arc<MemoryEvidence>,
    horizon: Arc<ReplayHorizon>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    data: &Path,
    participants: &Arc<Participants>,
    clock: Arc<dyn Clock>,
    handler: &Arc<Counting>,
    listener: TcpListener,
) -> Run {
    let address = listener.local_addr().unwrap();
    let horizon = Arc::new(ReplayHorizon::open(data, &id("NOTARY"), clock.now()).unwrap());
    let evidence = Arc::new(MemoryEvidence::new());
    let config = ServerConfig {
        replay_horizons: [(id("NOTARY"), Arc::clone(&horizon))].into_iter().collect(),
        ..ServerConfig::default()
    };
    let handler: Arc<dyn Handler> = handler.clone();
    let app = router(participants.clone(), vec![(id("NOTARY"), key(2), handler)], clock, evidence.clone(), config);
    let task = tokio::spawn(serve_router(listener, app, None));
    Run { address, evidence, horizon, task }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// POSTs an envelope as captured bytes; the HTTP status and the outcome of the signed answer.
async fn post(address: SocketAddr, envelope: &Envelope) -> (u16, Outcome) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request =
        hyper::Request::post(format!("http://{address}/rpc")).body(Full::new(Bytes::from(envelope.encode()))).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer = Envelope::decode(&body).unwrap();
    (status, Answer::decode(&answer.body).unwrap().outcome)
}

fn sealed(at: Timestamp, nonce: u64, body: &[u8]) -> Envelope {
    Envelope::seal(id("STB1"), id("NOTARY"), at, nonce, body.to_vec(), key(1).as_ref())
}

#[tokio::test]
async fn nothing_a_service_accepted_before_a_restart_is_accepted_after_it() {
    let data = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let first_listener = listener().await;
    let participants = Arc::new(Participants::new(directory(first_listener.local_addr().unwrap())));
    let handled = Arc::new(Counting::default());
    let first = run(data.path(), &participants, clock.clone(), &handled, first_listener).await;

    // Captured on the wire: one sent now, one dated as far ahead as the gate allows.
    let now = sealed(START, 5, b"claim");
    let ahead = sealed(Timestamp(START.0 + 9_000), 6, b"claim ahead");
    for envelope in [&now, &ahead] {
        assert_eq!(post(first.address, envelope).await, (200, Outcome::Done(envelope.body.clone())));
    }
    // The running service refuses them by its replay cache.
    assert!(matches!(post(first.address, &now).await, (403, Outcome::Rejected(NetError::Replayed { .. }))));
    assert_eq!(handled.0.load(Ordering::SeqCst), 2);

    // Crash and restart 100 ms later: the new run's replay cache is empty.
    drop(first);
    clock.advance(100);
    let second = run(data.path(), &participants, clock.clone(), &handled, listener().await).await;
    // The start of the run alone would not refuse the one dated ahead; the horizon does.
    let not_before = Timestamp(START.0 + 9_000 + HORIZON_AHEAD_MS + 1);
    for envelope in [&now, &ahead] {
        let (status, outcome) = post(second.address, envelope).await;
        assert_eq!(
            (status, outcome),
            (
                403,
                Outcome::Rejected(NetError::SignedBeforeRestart {
                    from: id("STB1"),
                    sent_at: envelope.sent_at,
                    not_before
                })
            )
        );
    }
    assert_eq!(second.horizon.not_before(), not_before);
    // The same again later, within their freshness window: still refused.
    clock.advance(30_000);
    for envelope in [&now, &ahead] {
        assert!(matches!(
            post(second.address, envelope).await,
            (403, Outcome::Rejected(NetError::SignedBeforeRestart { .. }))
        ));
    }
    assert_eq!(handled.0.load(Ordering::SeqCst), 2, "no captured envelope was handled twice");
    assert!(second.evidence.entries().is_empty(), "nothing was accepted");

    // A request sealed after the horizon is new: accepted once.
    let fresh = sealed(clock.now(), 7, b"new claim");
    assert_eq!(post(second.address, &fresh).await, (200, Outcome::Done(b"new claim".to_vec())));
    assert_eq!(handled.0.load(Ordering::SeqCst), 3);

    // A third run: the envelope accepted by the second run is refused too.
    drop(second);
    let third = run(data.path(), &participants, clock.clone(), &handled, listener().await).await;
    assert!(matches!(
        post(third.address, &fresh).await,
        (403, Outcome::Rejected(NetError::SignedBeforeRestart { .. }))
    ));
    assert_eq!(handled.0.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_caller_seals_its_request_again_after_the_callee_restarted_and_it_is_handled_once() {
    let data = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let first_listener = listener().await;
    let participants = Arc::new(Participants::new(directory(first_listener.local_addr().unwrap())));
    let handled = Arc::new(Counting::default());
    let first = run(data.path(), &participants, clock.clone(), &handled, first_listener).await;
    let caller_evidence = Arc::new(MemoryEvidence::new());
    let bus = HttpBus::new(id("STB1"), key(1), participants.clone(), clock.clone(), caller_evidence.clone());
    assert_eq!(bus.call(&id("NOTARY"), b"one".to_vec()).await, Ok(b"one".to_vec()));

    // Restart at once (a new address, as the registry would say), within the horizon's lead.
    drop(first);
    let second_listener = listener().await;
    participants.replace(directory(second_listener.local_addr().unwrap()), Vec::new(), 1).unwrap();
    let second = run(data.path(), &participants, clock.clone(), &handled, second_listener).await;
    let sealed_before = caller_evidence.entries().len();

    assert_eq!(bus.call(&id("NOTARY"), b"two".to_vec()).await, Ok(b"two".to_vec()));
    assert_eq!(handled.0.load(Ordering::SeqCst), 2, "each call handled once");
    let accepted = second.evidence.entries();
    assert_eq!(accepted.iter().filter(|e| e.from == id("STB1")).count(), 1);
    assert!(accepted[0].sent_at >= second.horizon.not_before(), "the accepted envelope was sealed past the horizon");
    // The caller sealed the refused request and a new one; both are in its evidence.
    let requests = caller_evidence.entries()[sealed_before..].iter().filter(|e| e.from == id("STB1")).count();
    assert_eq!(requests, 2, "refused once, sealed again once");
}
