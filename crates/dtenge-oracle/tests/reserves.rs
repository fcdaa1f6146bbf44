//! The proof of reserves at the oracle's service: however many requests
//! arrive together, the nodes are asked by one count at a time, and no
//! answer comes from a count that began before its request arrived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dtenge_crypto::{Ed25519, SecretKey, Signer};
use dtenge_net::{Clock, ManualClock, NoEvidence, ParticipantInfo, Participants, Role};
use dtenge_oracle::reserves::{StablecoinCount, StablecoinCountSource};
use dtenge_oracle::service::{OracleAnswer, OracleRequest, OracleService};
use dtenge_store::Journal;
use dtenge_types::{Amount, Currency, ParticipantId, Timestamp};

const BANKS: [&str; 3] = ["STB1", "STB2", "COINCO"];

fn id(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

fn key(name: &str) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed(*dtenge_crypto::hash(b"reserves-test", &[name.as_bytes()]).as_bytes()))
}

/// Every node holds `each` of the stablecoin and as much in its reserve;
/// each answer takes a little while, and every question is counted.
struct Vaults {
    each: AtomicU64,
    asked: AtomicU64,
}

#[async_trait::async_trait]
impl StablecoinCountSource for Vaults {
    async fn count(&self, _node: &ParticipantId, _stablecoin: Currency) -> Result<StablecoinCount, String> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let each = Amount::from_tiyn(self.each.load(Ordering::SeqCst));
        Ok(StablecoinCount { supply: each, reserve: each })
    }
}

fn oracle(vaults: Arc<Vaults>) -> Arc<OracleService> {
    let mut list: Vec<ParticipantInfo> = BANKS
        .iter()
        .map(|name| ParticipantInfo {
            id: id(name),
            name: (*name).into(),
            role: if *name == "COINCO" { Role::StablecoinIssuer } else { Role::Stb },
            public_key: key(name).public_key(),
            endpoint: None,
            tls_key: None,
        })
        .collect();
    list.push(ParticipantInfo {
        id: id("ORACLE"),
        name: "ORACLE".into(),
        role: Role::Oracle,
        public_key: key("ORACLE").public_key(),
        endpoint: None,
        tls_key: None,
    });
    let participants = Arc::new(Participants::new(list));
    let clock: Arc<dyn Clock> = ManualClock::new(Timestamp(1_790_000_000_000));
    let network = dtenge_net::LocalNetwork::new(Arc::clone(&participants), Arc::clone(&clock), Arc::new(NoEvidence));
    let bus = network.bus(id("ORACLE"), key("ORACLE"));
    let (journal, handle) = Journal::in_memory();
    drop(journal);
    let (journal, recovery) = handle.crash_and_reopen();
    OracleService::recover(key("ORACLE"), participants, clock, bus, vaults, journal, recovery).unwrap()
}

async fn proof(oracle: &OracleService, from: &str) -> (u64, u64) {
    let coin = Currency::new("KZTC").unwrap();
    match oracle.request(&id(from), OracleRequest::AttestReserves { stablecoin: coin }).await.unwrap() {
        OracleAnswer::Reserves(signed) => {
            assert!(signed.verify(&Ed25519), "signed by the oracle");
            (signed.report.supply.tiyn(), signed.report.reserve.tiyn())
        }
        other => panic!("not a proof of reserves: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arriving_together_share_one_count_at_a_time() {
    let vaults = Arc::new(Vaults { each: AtomicU64::new(100), asked: AtomicU64::new(0) });
    let oracle = oracle(Arc::clone(&vaults));
    let asking: Vec<_> = (0..40)
        .map(|n| {
            let oracle = Arc::clone(&oracle);
            tokio::spawn(async move { proof(&oracle, BANKS[n % BANKS.len()]).await })
        })
        .collect();
    for answer in asking {
        assert_eq!(answer.await.unwrap(), (300, 300));
    }
    // The first request counts; everyone who arrived while it did shares
    // the next count (a few may have arrived after that began: one more).
    let rounds = vaults.asked.load(Ordering::SeqCst) / BANKS.len() as u64;
    assert!((1..=3).contains(&rounds), "40 requests made {rounds} counts");
}

#[tokio::test]
async fn a_proof_asked_after_a_change_includes_it() {
    let vaults = Arc::new(Vaults { each: AtomicU64::new(100), asked: AtomicU64::new(0) });
    let oracle = oracle(Arc::clone(&vaults));
    assert_eq!(proof(&oracle, "STB1").await, (300, 300));
    // A mint on every node, acknowledged before the next request: no
    // earlier count answers it.
    vaults.each.store(250, Ordering::SeqCst);
    assert_eq!(proof(&oracle, "STB2").await, (750, 750));
    assert_eq!(vaults.asked.load(Ordering::SeqCst), 6, "two requests one after the other: two counts");
}
