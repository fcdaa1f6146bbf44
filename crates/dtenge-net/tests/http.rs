//! The network transport: a real server on 127.0.0.1, called through `HttpBus`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dtenge_crypto::SecretKey;
use dtenge_net::{
    Answer, Bus, Direction, Envelope, Handler, HandlerError, HttpBus, HttpBusConfig, MAX_AGE_MS, ManualClock,
    MemoryEvidence, NetError, Outcome, ParticipantInfo, Participants, Role, serve,
};
use dtenge_types::{ParticipantId, Timestamp};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(seed: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed([seed; 32]))
}

const START: Timestamp = Timestamp(1_700_000_000_000);

/// Answers `"<sender>:<body>"`; refuses a body of `"no"`; never answers `"hang"`.
struct Service;

#[async_trait::async_trait]
impl Handler for Service {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        match body.as_slice() {
            b"no" => Err(HandlerError::BadRequest("no means no".into())),
            b"hang" => std::future::pending().await,
            _ => {
                let mut answer = format!("{from}:").into_bytes();
                answer.extend(body);
                Ok(answer)
            }
        }
    }
}

/// NOTARY (seed 2) served on a loopback port; STB1 (seed 1) calls it.
/// ORACLE (seed 3) has an endpoint where nothing listens; CBS (seed 4) has none;
/// DIRECTORY (seed 5) points at the notary's server, which does not host it.
struct Net {
    address: SocketAddr,
    clock: Arc<ManualClock>,
    server_evidence: Arc<MemoryEvidence>,
    client_evidence: Arc<MemoryEvidence>,
    stb: Arc<HttpBus>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(config: HttpBusConfig) -> Net {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let closed = {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap()
    };
    let entry = |name: &str, role, seed, endpoint: Option<String>| ParticipantInfo {
        id: id(name),
        name: name.to_lowercase(),
        role,
        public_key: key(seed).public_key(),
        endpoint,
        tls_key: None,
    };
    let participants = Arc::new(Participants::new(vec![
        entry("STB1", Role::Stb, 1, None),
        entry("NOTARY", Role::Notary, 2, Some(address.to_string())),
        entry("ORACLE", Role::Oracle, 3, Some(closed.to_string())),
        entry("CBS", Role::Provider, 4, None),
        entry("DIRECTORY", Role::Directory, 5, Some(format!("http://{address}"))),
    ]));
    let clock = ManualClock::new(START);
    let server_evidence = Arc::new(MemoryEvidence::new());
    let client_evidence = Arc::new(MemoryEvidence::new());
    let server = tokio::spawn(serve(
        listener,
        participants.clone(),
        vec![(id("NOTARY"), key(2), Arc::new(Service))],
        clock.clone(),
        server_evidence.clone(),
    ));
    let stb = HttpBus::with_config(id("STB1"), key(1), participants, clock.clone(), client_evidence.clone(), config);
    Net { address, clock, server_evidence, client_evidence, stb, server }
}

async fn raw_post(address: SocketAddr, bytes: Vec<u8>) -> (u16, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("http://{address}/rpc")).body(Full::new(Bytes::from(bytes))).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn call_over_http_is_answered_and_both_sides_keep_evidence() {
    let net = start(HttpBusConfig::default()).await;
    let answer = net.stb.call(&id("NOTARY"), b"ping".to_vec()).await.unwrap();
    assert_eq!(answer, b"STB1:ping");

    let client = net.client_evidence.entries();
    let server = net.server_evidence.entries();
    assert_eq!(client, server, "both sides keep the same signed request and answer");
    assert_eq!(client.len(), 2);
    let (request, reply) = (&client[0], &client[1]);
    assert_eq!((&request.from, &request.to, request.direction()), (&id("STB1"), &id("NOTARY"), Direction::Request));
    assert_eq!((&reply.from, &reply.to, reply.direction()), (&id("NOTARY"), &id("STB1"), Direction::Answer));
    assert_eq!(
        Answer::decode(&reply.body).unwrap(),
        Answer { in_reply_to: request.digest(), outcome: Outcome::Done(b"STB1:ping".to_vec()) }
    );

    // Connections are reused and nonces stay fresh across calls.
    assert_eq!(net.stb.call(&id("NOTARY"), b"again".to_vec()).await.unwrap(), b"STB1:again");
    assert_eq!(net.server_evidence.entries().len(), 4);
}

#[tokio::test]
async fn handler_error_over_http_comes_back_as_refused() {
    let net = start(HttpBusConfig::default()).await;
    assert_eq!(
        net.stb.call(&id("NOTARY"), b"no".to_vec()).await,
        Err(NetError::Refused(HandlerError::BadRequest("no means no".into())))
    );
}

#[tokio::test]
async fn stale_request_gets_a_signed_rejection() {
    let net = start(HttpBusConfig::default()).await;
    let old = Timestamp(START.millis() - MAX_AGE_MS - 1);
    let stale = Envelope::seal(id("STB1"), id("NOTARY"), old, 1, vec![], key(1).as_ref());
    let (status, body) = raw_post(net.address, stale.encode()).await;
    assert_eq!(status, 403);
    let answer = Envelope::decode(&body).unwrap();
    assert_eq!(answer.open(&key(2).public_key(), &dtenge_crypto::Ed25519), Ok(()));
    assert_eq!(
        Answer::decode(&answer.body).unwrap().outcome,
        Outcome::Rejected(NetError::Stale { from: id("STB1"), sent_at: old, now: START })
    );
    assert!(net.server_evidence.entries().is_empty(), "refused requests are not evidence");
}

#[tokio::test]
async fn replayed_request_over_http_is_refused() {
    let net = start(HttpBusConfig::default()).await;
    let request = Envelope::seal(id("STB1"), id("NOTARY"), START, 7, b"x".to_vec(), key(1).as_ref());
    let (first, _) = raw_post(net.address, request.encode()).await;
    assert_eq!(first, 200);
    net.clock.advance(1_000);
    let (second, body) = raw_post(net.address, request.encode()).await;
    assert_eq!(second, 403);
    let outcome = Answer::decode(&Envelope::decode(&body).unwrap().body).unwrap().outcome;
    assert_eq!(outcome, Outcome::Rejected(NetError::Replayed { from: id("STB1"), nonce: 7 }));
}

#[tokio::test]
async fn garbage_request_is_a_bad_request() {
    let net = start(HttpBusConfig::default()).await;
    let (status, _) = raw_post(net.address, b"not an envelope".to_vec()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn announced_oversized_request_is_refused_before_reading() {
    let net = start(HttpBusConfig::default()).await;
    let mut stream = tokio::net::TcpStream::connect(net.address).await.unwrap();
    let head = "POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 64];
    let read = stream.read(&mut response).await.unwrap();
    let status_line = String::from_utf8_lossy(&response[..read]).to_string();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
}

#[tokio::test]
async fn health_answers_200() {
    let net = start(HttpBusConfig::default()).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.get(format!("http://{}/health", net.address).parse().unwrap()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let net = start(HttpBusConfig::default()).await;
    let result = net.stb.call(&id("ORACLE"), vec![]).await;
    assert!(matches!(result, Err(NetError::Unreachable { ref to, .. }) if *to == id("ORACLE")), "{result:?}");
}

#[tokio::test]
async fn participant_without_endpoint_is_unreachable_and_unlisted_is_unknown() {
    let net = start(HttpBusConfig::default()).await;
    assert!(matches!(net.stb.call(&id("CBS"), vec![]).await, Err(NetError::Unreachable { .. })));
    assert_eq!(net.stb.call(&id("NOBODY"), vec![]).await, Err(NetError::UnknownParticipant(id("NOBODY"))));
}

#[tokio::test]
async fn participant_not_hosted_at_its_endpoint_is_unreachable() {
    let net = start(HttpBusConfig::default()).await;
    let result = net.stb.call(&id("DIRECTORY"), vec![]).await;
    assert!(matches!(result, Err(NetError::Unreachable { ref reason, .. }) if reason.contains("404")), "{result:?}");
}

#[tokio::test]
async fn slow_handler_times_out() {
    let net = start(HttpBusConfig { timeout: Duration::from_millis(100), ..HttpBusConfig::default() }).await;
    assert_eq!(net.stb.call(&id("NOTARY"), b"hang".to_vec()).await, Err(NetError::Timeout { to: id("NOTARY") }));
}
