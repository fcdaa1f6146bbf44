//! Mutual TLS between services, keys pinned by the participant directory:
//! calls succeed between registered keys; plain HTTP, unregistered or wrong
//! keys, a participant speaking for another and a revoked key are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use dtenge_crypto::SecretKey;
use dtenge_net::{
    Bus, Handler, HandlerError, HttpBus, HttpBusConfig, ManualClock, MemoryEvidence, NetError, ParticipantInfo,
    Participants, RevokedKey, Role, ServerConfig, TlsIdentity, router, serve_router,
};
use dtenge_types::{ParticipantId, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn id(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(seed: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed([seed; 32]))
}

fn tls() -> Arc<TlsIdentity> {
    Arc::new(TlsIdentity::generate().unwrap().0)
}

struct Echo;

#[async_trait::async_trait]
impl Handler for Echo {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        Ok([format!("{from}:").into_bytes(), body].concat())
    }
}

/// NOTARY served over TLS with `served_with`; STB1 and STB2 listed with their TLS keys.
struct Net {
    address: SocketAddr,
    participants: Arc<Participants>,
    clock: Arc<ManualClock>,
    stb1_tls: Arc<TlsIdentity>,
    stb2_tls: Arc<TlsIdentity>,
    notary_tls: Arc<TlsIdentity>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn entry(name: &str, role: Role, seed: u8, endpoint: Option<String>, tls: Option<&TlsIdentity>) -> ParticipantInfo {
    ParticipantInfo {
        id: id(name),
        name: name.into(),
        role,
        public_key: key(seed).public_key(),
        endpoint,
        tls_key: tls.map(|t| t.public_key()),
    }
}

async fn start(served_with: Option<Arc<TlsIdentity>>) -> Net {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stb1_tls, stb2_tls, notary_tls) = (tls(), tls(), tls());
    let participants = Arc::new(Participants::new(vec![
        entry("STB1", Role::Stb, 1, None, Some(&stb1_tls)),
        entry("STB2", Role::Stb, 3, None, Some(&stb2_tls)),
        entry("NOTARY", Role::Notary, 2, Some(address.to_string()), Some(&notary_tls)),
    ]));
    let clock = ManualClock::new(Timestamp(1_700_000_000_000));
    let app = router(
        participants.clone(),
        vec![(id("NOTARY"), key(2), Arc::new(Echo))],
        clock.clone(),
        Arc::new(MemoryEvidence::new()),
        ServerConfig::default(),
    );
    let server_identity = served_with.unwrap_or_else(|| notary_tls.clone());
    let config = server_identity.server_config(participants.clone()).unwrap();
    let task = tokio::spawn(serve_router(listener, app, Some(config)));
    Net { address, participants, clock, stb1_tls, stb2_tls, notary_tls, task }
}

fn bus(net: &Net, who: &str, seed: u8, tls: Option<Arc<TlsIdentity>>) -> Arc<HttpBus> {
    let config = HttpBusConfig { tls, ..HttpBusConfig::default() };
    HttpBus::with_config(
        id(who),
        key(seed),
        net.participants.clone(),
        net.clock.clone(),
        Arc::new(MemoryEvidence::new()),
        config,
    )
}

#[tokio::test]
async fn registered_services_talk_over_mutual_tls() {
    let net = start(None).await;
    let stb1 = bus(&net, "STB1", 1, Some(net.stb1_tls.clone()));
    assert_eq!(stb1.call(&id("NOTARY"), b"hi".to_vec()).await.unwrap(), b"STB1:hi");
    assert_eq!(stb1.call(&id("NOTARY"), b"again".to_vec()).await.unwrap(), b"STB1:again");
}

#[tokio::test]
async fn plain_http_to_a_tls_endpoint_is_refused_with_a_clear_error() {
    let net = start(None).await;
    let mut stream = tokio::net::TcpStream::connect(net.address).await.unwrap();
    stream.write_all(b"POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("speaks only TLS"), "{response}");

    let without_tls = bus(&net, "STB1", 1, None);
    let refused = without_tls.call(&id("NOTARY"), vec![]).await;
    assert!(
        matches!(&refused, Err(NetError::Unreachable { reason, .. }) if reason.contains("accepts only TLS")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_client_key_not_in_the_registry_is_refused() {
    let net = start(None).await;
    let stranger = bus(&net, "STB1", 1, Some(tls()));
    assert!(matches!(stranger.call(&id("NOTARY"), vec![]).await, Err(NetError::Unreachable { .. })));
}

#[tokio::test]
async fn a_server_presenting_another_key_than_the_registered_one_is_refused() {
    let net = start(Some(tls())).await;
    let stb1 = bus(&net, "STB1", 1, Some(net.stb1_tls.clone()));
    let refused = stb1.call(&id("NOTARY"), vec![]).await;
    assert!(matches!(&refused, Err(NetError::Unreachable { .. })), "{refused:?}");
}

#[tokio::test]
async fn a_participant_cannot_speak_for_another_over_its_own_tls_connection() {
    let net = start(None).await;
    // STB2's envelopes (its EDS key) on a connection authenticated as STB1.
    let impostor = bus(&net, "STB2", 3, Some(net.stb1_tls.clone()));
    assert_eq!(impostor.call(&id("NOTARY"), vec![]).await, Err(NetError::TlsIdentity { from: id("STB2") }));
    let stb2 = bus(&net, "STB2", 3, Some(net.stb2_tls.clone()));
    assert_eq!(stb2.call(&id("NOTARY"), b"me".to_vec()).await.unwrap(), b"STB2:me");
}

#[tokio::test]
async fn a_revoked_tls_key_is_refused_once_the_registry_changes() {
    let net = start(None).await;
    let stb1 = bus(&net, "STB1", 1, Some(net.stb1_tls.clone()));
    assert!(stb1.call(&id("NOTARY"), vec![]).await.is_ok());
    let rotated = tls();
    let revoked =
        RevokedKey { participant: id("STB1"), key: net.stb1_tls.public_key(), serial: 2, reason: "compromised".into() };
    net.participants
        .replace(
            vec![
                entry("STB1", Role::Stb, 1, None, Some(&rotated)),
                entry("STB2", Role::Stb, 3, None, Some(&net.stb2_tls)),
                entry("NOTARY", Role::Notary, 2, Some(net.address.to_string()), Some(&net.notary_tls)),
            ],
            vec![revoked],
            2,
        )
        .unwrap();
    // On the open connection: refused at /rpc; on a new one: refused in the handshake.
    assert_eq!(stb1.call(&id("NOTARY"), vec![]).await, Err(NetError::TlsIdentity { from: id("STB1") }));
    let fresh = bus(&net, "STB1", 1, Some(net.stb1_tls.clone()));
    assert!(matches!(fresh.call(&id("NOTARY"), vec![]).await, Err(NetError::Unreachable { .. })));
    let renewed = bus(&net, "STB1", 1, Some(rotated));
    assert_eq!(renewed.call(&id("NOTARY"), b"new".to_vec()).await.unwrap(), b"STB1:new");
}
