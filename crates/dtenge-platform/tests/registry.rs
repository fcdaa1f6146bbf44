//! The signed participant registry and the key ceremony: a service refuses
//! an unsigned, re-signed or altered registry at start; NBK's signed changes
//! (a bank joins, a key is rotated, revoked, an endpoint moves) apply to a
//! running directory; keys are made once, mode 0600.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use dtenge_crypto::SecretKey;
use dtenge_net::Role;
use dtenge_platform::ceremony::{self, KeygenOptions};
use dtenge_platform::process::{self, InitOptions, NodeOptions};
use dtenge_platform::registry::{self, LiveRegistry, Offered, RegistryError, SignedRegistry};
use dtenge_platform::spec::{Keys, institution_bin};
use dtenge_types::ParticipantId;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn init(dir: &std::path::Path, tls: bool) {
    process::init_with(dir, &InitOptions { host: "127.0.0.1".into(), base_port: 39_000, notary_replicas: 1, tls })
        .unwrap();
}

async fn error_of(result: Result<process::Running, dtenge_platform::PlatformError>) -> String {
    match result {
        Ok(running) => {
            running.stop().await.unwrap();
            panic!("the service started")
        }
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_service_refuses_an_unsigned_or_altered_registry_at_start() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let file = dir.path().join(registry::REGISTRY_FILE);
    let signed = std::fs::read_to_string(&file).unwrap();
    let options = NodeOptions::new(dir.path(), "NOTARY");
    let start = || process::start_with(&options);

    // Altered after signing: an endpoint changed by hand.
    std::fs::write(&file, signed.replacen("127.0.0.1:39", "127.0.0.2:39", 1)).unwrap();
    assert!(error_of(start().await).await.contains("signature does not verify"));

    // Re-signed by someone else's key.
    let mut forged = SignedRegistry::parse(signed.as_bytes(), "test").unwrap();
    let body = forged.verify(&registry::load_anchor(&dir.path().join(registry::ANCHOR_FILE)).unwrap()).unwrap();
    forged = SignedRegistry::sign(&body, &SecretKey::from_seed([7; 32])).unwrap();
    std::fs::write(&file, forged.to_bytes()).unwrap();
    assert!(error_of(start().await).await.contains("this service trusts only"));

    // No signature at all: the plain platform description.
    std::fs::write(&file, serde_json::to_vec(&body.platform).unwrap()).unwrap();
    assert!(error_of(start().await).await.contains("not a signed participant registry"));
}

#[tokio::test]
async fn signed_updates_reach_a_running_directory_and_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let anchor = registry::load_anchor(&dir.path().join(registry::ANCHOR_FILE)).unwrap();
    let nbk_registry_key = Keys::at(dir.path()).load(registry::SIGNING_KEY).unwrap();
    let (live, genesis) = LiveRegistry::open(dir.path(), anchor).unwrap();
    let participants = live.participants();

    // A fourth bank makes its keys on its own host and asks to join.
    let host = tempfile::tempdir().unwrap();
    let request = ceremony::keygen(
        host.path(),
        &KeygenOptions {
            id: pid("STB4"),
            name: "Fourth bank".into(),
            role: Role::Stb,
            endpoint: Some("127.0.0.1:39100".into()),
            tls: true,
            institution: Some((institution_bin(44), "Fourth bank (own DA)".into())),
            registries: BTreeSet::new(),
        },
    )
    .unwrap();
    let joined = ceremony::add(&genesis, &request, 1).unwrap();
    let signed = SignedRegistry::sign(&joined, &nbk_registry_key).unwrap();
    assert_eq!(live.offer(&signed.to_bytes(), "test").unwrap(), Offered::Applied { serial: 2 });
    assert_eq!(participants.get(&pid("STB4")).unwrap().tls_key, request.participant.tls_key);
    assert_eq!(joined.platform.params.hosts.get(&pid("STB4")), Some(&request.participant.public_key));
    assert_eq!(live.offer(&signed.to_bytes(), "again").unwrap(), Offered::Current);

    // STB2 moves; STB3 is withdrawn: its keys are refused from now on.
    let moved = ceremony::move_endpoint(&joined, &pid("STB2"), "127.0.0.9:39002", 2).unwrap();
    let withdrawn = ceremony::revoke(&moved, &pid("STB3"), "compromised", 3).unwrap();
    live.offer(&SignedRegistry::sign(&withdrawn, &nbk_registry_key).unwrap().to_bytes(), "test").unwrap();
    assert_eq!(participants.get(&pid("STB2")).unwrap().endpoint.as_deref(), Some("127.0.0.9:39002"));
    assert!(participants.get(&pid("STB3")).is_none());
    let revoked = participants.revoked_keys_of(&pid("STB3"));
    assert_eq!(revoked.len(), 2, "its EDS and TLS keys: {revoked:?}");
    assert!(revoked.iter().all(|r| r.serial == 4 && r.reason == "compromised"));

    // An older registry, even correctly signed, is not taken back.
    let older = SignedRegistry::sign(&joined, &nbk_registry_key).unwrap();
    assert!(matches!(live.offer(&older.to_bytes(), "replay"), Err(RegistryError::Older { offered: 2, current: 4 })));
    // And the newest is on disk for the next start.
    let (_, on_disk) = registry::load_verified(dir.path(), None).unwrap();
    assert_eq!(on_disk.serial, 4);
}

#[test]
fn rotation_revokes_the_old_keys_and_moves_the_host_key() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let (_, genesis) = registry::load_verified(dir.path(), None).unwrap();
    let host = tempfile::tempdir().unwrap();
    let options = KeygenOptions {
        id: pid("STB1"),
        name: "Second-tier bank 1".into(),
        role: Role::Stb,
        endpoint: genesis.platform.participant("STB1").unwrap().endpoint.clone(),
        tls: true,
        institution: None,
        registries: BTreeSet::new(),
    };
    let request = ceremony::keygen(host.path(), &options).unwrap();
    let old = genesis.platform.participant("STB1").unwrap().clone();
    let rotated = ceremony::rotate(&genesis, &request, 1).unwrap();
    let revoked: Vec<_> = rotated.revoked.iter().map(|r| (r.key, r.reason.as_str())).collect();
    assert_eq!(revoked, [(old.public_key, "rotated"), (old.tls_key.unwrap(), "rotated")]);
    assert_eq!(rotated.platform.params.hosts.get(&pid("STB1")), Some(&request.participant.public_key));
    // Keys are made once: a second keygen on the same host refuses to overwrite them.
    assert!(ceremony::keygen(host.path(), &options).unwrap_err().to_string().contains("never overwritten"));
}

#[cfg(unix)]
#[test]
fn keygen_writes_private_keys_with_mode_0600_and_only_public_keys_in_the_request() {
    use std::os::unix::fs::PermissionsExt;
    let host = tempfile::tempdir().unwrap();
    let request = ceremony::keygen(
        host.path(),
        &KeygenOptions {
            id: pid("STB9"),
            name: "Ninth bank".into(),
            role: Role::Stb,
            endpoint: None,
            tls: true,
            institution: Some((institution_bin(49), "Ninth bank (own DA)".into())),
            registries: BTreeSet::new(),
        },
    )
    .unwrap();
    for name in ["STB9.key", "STB9.tls.key", "STB9-DA.key"] {
        let mode = std::fs::metadata(host.path().join("keys").join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let text = std::fs::read_to_string(ceremony::request_path(host.path(), "STB9")).unwrap();
    let seed = std::fs::read_to_string(host.path().join("keys/STB9.key")).unwrap();
    assert!(!text.contains(seed.trim()), "the request carries no private key");
    assert_eq!(ceremony::load_request(&ceremony::request_path(host.path(), "STB9")).unwrap(), request);
}
