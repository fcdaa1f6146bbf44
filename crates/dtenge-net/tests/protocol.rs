//! Protocol versions across a rolling upgrade: every envelope names its
//! version; a server answers the versions it speaks in the request's own
//! version and refuses others naming both sides; a caller steps down to the
//! newest version a callee speaks, including a callee from before versioning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dtenge_crypto::SecretKey;
use dtenge_net::{
    Bus, Envelope, Handler, HandlerError, Header, HttpBus, HttpBusConfig, ManualClock, MemoryEvidence, NetError,
    PROTOCOL_HEADER, ParticipantInfo, Participants, ProtocolRange, Role, ServerConfig, router, serve_router,
    versioned_resource,
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

struct Echo;

#[async_trait::async_trait]
impl Handler for Echo {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        Ok([format!("{from}:").into_bytes(), body].concat())
    }
}

struct Server {
    address: SocketAddr,
    participants: Arc<Participants>,
    clock: Arc<ManualClock>,
    evidence: Arc<MemoryEvidence>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// NOTARY (seed 2) speaking `speaks`; STB1 (seed 1) is listed. With
/// `strip_header` the server hides its versions, as servers did before versioning.
async fn notary(speaks: ProtocolRange, strip_header: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let entry = |name: &str, role, seed: u8, endpoint: Option<String>| ParticipantInfo {
        id: id(name),
        name: name.into(),
        role,
        public_key: key(seed).public_key(),
        endpoint,
        tls_key: None,
    };
    let participants = Arc::new(Participants::new(vec![
        entry("STB1", Role::Stb, 1, None),
        entry("NOTARY", Role::Notary, 2, Some(address.to_string())),
    ]));
    let clock = ManualClock::new(START);
    let evidence = Arc::new(MemoryEvidence::new());
    let mut app = router(
        participants.clone(),
        vec![(id("NOTARY"), key(2), Arc::new(Echo))],
        clock.clone(),
        evidence.clone(),
        ServerConfig { protocol: speaks, ..ServerConfig::default() },
    )
    .route(
        "/registry",
        axum::routing::get(move |headers: axum::http::HeaderMap| async move {
            versioned_resource(speaks, &headers, b"signed registry".to_vec())
        }),
    );
    if strip_header {
        app = app.layer(axum::middleware::map_response(|mut response: axum::response::Response| async move {
            response.headers_mut().remove(PROTOCOL_HEADER);
            response
        }));
    }
    let task = tokio::spawn(serve_router(listener, app, None));
    Server { address, participants, clock, evidence, task }
}

fn bus(server: &Server, speaks: ProtocolRange) -> Arc<HttpBus> {
    let config = HttpBusConfig { protocol: speaks, ..HttpBusConfig::default() };
    HttpBus::with_config(
        id("STB1"),
        key(1),
        server.participants.clone(),
        server.clock.clone(),
        Arc::new(MemoryEvidence::new()),
        config,
    )
}

async fn raw_post(address: SocketAddr, bytes: Vec<u8>) -> (u16, Option<String>, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("http://{address}/rpc")).body(Full::new(Bytes::from(bytes))).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let header = response.headers().get(PROTOCOL_HEADER).map(|v| v.to_str().unwrap().to_string());
    (status, header, response.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_round_1_envelope_is_answered_in_protocol_1() {
    let server = notary(ProtocolRange::CURRENT, false).await;
    let v1 = Envelope::seal_as(
        Header { version: 1, trace: 0 },
        id("STB1"),
        id("NOTARY"),
        START,
        5,
        b"old".to_vec(),
        key(1).as_ref(),
    );
    let (status, speaks, body) = raw_post(server.address, v1.encode()).await;
    assert_eq!(status, 200);
    assert_eq!(speaks.as_deref(), Some("1-2"));
    let answer = Envelope::decode(&body).unwrap();
    assert_eq!(answer.version, 1, "the answer is written in the request's version");
    assert_eq!(answer.open(&key(2).public_key(), &dtenge_crypto::Ed25519), Ok(()));
}

#[tokio::test]
async fn a_server_that_no_longer_speaks_protocol_1_refuses_it_naming_both_versions() {
    let server = notary(ProtocolRange { min: 2, max: 2 }, false).await;
    let v1 =
        Envelope::seal_as(Header { version: 1, trace: 0 }, id("STB1"), id("NOTARY"), START, 5, vec![], key(1).as_ref());
    let (status, speaks, body) = raw_post(server.address, v1.encode()).await;
    assert_eq!((status, speaks.as_deref()), (400, Some("2")));
    let message = String::from_utf8_lossy(&body);
    assert!(message.contains("protocol version 1") && message.contains("speaks 2"), "{message}");
    assert!(server.evidence.entries().is_empty(), "no gate or handler saw it");

    let old_caller = bus(&server, ProtocolRange { min: 1, max: 1 });
    assert_eq!(
        old_caller.call(&id("NOTARY"), b"x".to_vec()).await,
        Err(NetError::ProtocolMismatch {
            peer: id("NOTARY"),
            peer_speaks: ProtocolRange { min: 2, max: 2 },
            we_speak: ProtocolRange { min: 1, max: 1 },
        })
    );
}

#[tokio::test]
async fn a_caller_steps_down_to_the_newest_version_the_callee_speaks() {
    let server = notary(ProtocolRange { min: 1, max: 1 }, false).await;
    let caller = bus(&server, ProtocolRange::CURRENT);
    assert_eq!(caller.call(&id("NOTARY"), b"a".to_vec()).await.unwrap(), b"STB1:a");
    assert_eq!(caller.call(&id("NOTARY"), b"b".to_vec()).await.unwrap(), b"STB1:b");
    let versions: Vec<u16> = server.evidence.entries().iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 1, 1, 1], "the refused first try left no trace; later calls go straight to 1");
}

#[tokio::test]
async fn a_caller_steps_down_for_a_callee_from_before_versioning() {
    let server = notary(ProtocolRange { min: 1, max: 1 }, true).await;
    let caller = bus(&server, ProtocolRange::CURRENT);
    assert_eq!(caller.call(&id("NOTARY"), b"a".to_vec()).await.unwrap(), b"STB1:a");
    assert!(server.evidence.entries().iter().all(|e| e.version == 1));
}

#[tokio::test]
async fn current_versions_meet_at_protocol_2_and_carry_the_trace() {
    let server = notary(ProtocolRange::CURRENT, false).await;
    let caller = bus(&server, ProtocolRange::CURRENT);
    let answer = dtenge_net::telemetry::in_trace(0xabc, caller.call(&id("NOTARY"), b"t".to_vec())).await;
    assert_eq!(answer.unwrap(), b"STB1:t");
    let entries = server.evidence.entries();
    assert_eq!(entries.iter().map(|e| (e.version, e.trace)).collect::<Vec<_>>(), [(2, 0xabc), (2, 0xabc)]);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = notary(ProtocolRange::CURRENT, false).await;
    let caller = bus(&server, ProtocolRange::CURRENT);
    caller.call(&id("NOTARY"), b"m".to_vec()).await.unwrap();
    let text = dtenge_net::telemetry::render_metrics();
    assert!(text.contains(r#"dtenge_http_requests_total{route="/rpc",status="200"}"#), "{text}");
    assert!(text.contains(r#"dtenge_rpc_calls_total{to="NOTARY",outcome="ok"}"#), "{text}");
    assert!(text.contains("dtenge_rpc_call_seconds_bucket"), "latency is a histogram: {text}");
}

/// Issue 20.7: the plain resources services fetch from each other (a
/// service's copy of the signed registry) are versioned like envelopes.
#[tokio::test]
async fn a_fetched_registry_is_versioned_like_every_envelope() {
    let current = notary(ProtocolRange::CURRENT, false).await;
    let fetched = bus(&current, ProtocolRange::CURRENT).get(&id("NOTARY"), "/registry", 1024).await.unwrap();
    assert_eq!(&fetched[..], b"signed registry");

    // A caller from a future that dropped every version this server speaks.
    let future = ProtocolRange { min: 9, max: 9 };
    match bus(&current, future).get(&id("NOTARY"), "/registry", 1024).await {
        Err(NetError::ProtocolMismatch { peer_speaks, we_speak, .. }) => {
            assert_eq!((peer_speaks, we_speak), (ProtocolRange::CURRENT, future))
        }
        other => panic!("a caller sharing no version must be refused naming both: {other:?}"),
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::get(format!("http://{}/registry", current.address))
        .header(PROTOCOL_HEADER, "9")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("protocol 9") && text.contains(&ProtocolRange::CURRENT.to_string()), "{text}");

    // A server that speaks only a version this caller does not.
    let newer = notary(future, false).await;
    assert!(matches!(
        bus(&newer, ProtocolRange::CURRENT).get(&id("NOTARY"), "/registry", 1024).await,
        Err(NetError::ProtocolMismatch { .. })
    ));

    // A server from before versioning names none: still read.
    let old = notary(ProtocolRange::CURRENT, true).await;
    let fetched = bus(&old, ProtocolRange::CURRENT).get(&id("NOTARY"), "/registry", 1024).await.unwrap();
    assert_eq!(&fetched[..], b"signed registry");
}
