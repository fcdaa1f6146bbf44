//! The authorisation table between services: a request from a participant
//! kind the table refuses is answered `Forbidden` by every service (node,
//! oracle, directory, notary) before it is acted on, and the same request
//! from an allowed kind goes through. Every request enum maps each variant
//! to an operation with an exhaustive match (`impl Authorized`), so a new
//! variant cannot be added without a row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dtenge_net::{Clock, HandlerError, ManualClock, NetError};
use dtenge_node::directory::DirectoryRequest;
use dtenge_node::regime::LimitPolicy;
use dtenge_node::service::NodeRequest;
use dtenge_notary::NotaryRequest;
use dtenge_oracle::service::OracleRequest;
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, Currency, ParticipantId, Timestamp, TxId};

async fn platform() -> (tempfile::TempDir, Platform) {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(Timestamp(1_767_225_600_000));
    let platform = Platform::open(dir.path(), clock, PlatformOptions { durable: false }).await.unwrap();
    (dir, platform)
}

async fn ask(platform: &Platform, from: &str, to: &str, body: Vec<u8>) -> Result<Vec<u8>, NetError> {
    let bus = platform.bus(from).unwrap();
    bus.call(&ParticipantId::new(to).unwrap(), body).await
}

fn forbidden(result: Result<Vec<u8>, NetError>, what: &str) {
    match result {
        Err(NetError::Refused(HandlerError::Forbidden(why))) => {
            assert!(why.contains("authorisation table"), "{what}: {why}");
        }
        other => panic!("{what}: expected Forbidden by the table, got {other:?}"),
    }
}

fn policy() -> LimitPolicy {
    let tier = dtenge_node::regime::TierLimits {
        max_balance: Amount::from_tiyn(1),
        per_payment: Amount::from_tiyn(1),
        daily_outgoing: Amount::from_tiyn(1),
    };
    LimitPolicy { version: 1, simplified: tier, standard: tier, full: tier, published_at: Timestamp(0) }
}

#[tokio::test]
async fn every_service_refuses_a_kind_the_table_refuses_before_acting() {
    let (_dir, p) = platform().await;
    let node_policy = borsh::to_vec(&NodeRequest::Policy(Box::new(policy()))).unwrap();
    let node_report =
        borsh::to_vec(&NodeRequest::Report { from: Timestamp(0), to: Timestamp(1), threshold: Amount::from_tiyn(1) })
            .unwrap();
    let receipt = borsh::to_vec(&NotaryRequest::Receipt(TxId(dtenge_crypto::hash(b"t", &[b"x"])))).unwrap();
    let lookup = borsh::to_vec(&DirectoryRequest::Lookup(dtenge_types::Address(
        dtenge_crypto::SecretKey::from_seed([9; 32]).public_key(),
    )))
    .unwrap();
    let rate = borsh::to_vec(&OracleRequest::GetRate {
        base: Currency::DT,
        quote: Currency::new(ids::FOREIGN_CURRENCY).unwrap(),
    })
    .unwrap();
    let register_provider = borsh::to_vec(&OracleRequest::RegisterProvider {
        id: ParticipantId::new("CROWD").unwrap(),
        name: "x".into(),
        registries: Default::default(),
    })
    .unwrap();

    // NBK's powers: a bank, the Treasury or the counterparty central bank may not publish limits or ask for reports.
    for from in ["STB1", ids::TREASURY, ids::FCB] {
        forbidden(ask(&p, from, "STB2", node_policy.clone()).await, &format!("{from} publishing limits"));
        forbidden(ask(&p, from, "STB2", node_report.clone()).await, &format!("{from} asking for a report"));
        forbidden(
            ask(&p, from, ids::ORACLE, register_provider.clone()).await,
            &format!("{from} registering a provider"),
        );
    }
    // A provider is not a node: no deliveries' counterpart, no notary, no directory.
    forbidden(ask(&p, "SRC", "STB1", node_policy.clone()).await, "a provider publishing limits");
    forbidden(ask(&p, "SRC", ids::NOTARY, receipt.clone()).await, "a provider asking the notary");
    forbidden(ask(&p, "SRC", ids::DIRECTORY, lookup.clone()).await, "a provider asking the directory");
    // Services that serve do not ask each other outside their rows.
    forbidden(ask(&p, ids::NOTARY, ids::ORACLE, rate.clone()).await, "the notary reading the oracle");
    forbidden(ask(&p, ids::DIRECTORY, ids::NOTARY, receipt.clone()).await, "the directory asking the notary");

    // The same requests from kinds the table allows are answered.
    assert!(ask(&p, "STB1", ids::DIRECTORY, lookup).await.is_ok());
    assert!(ask(&p, "STB1", ids::NOTARY, receipt.clone()).await.is_ok());
    assert!(ask(&p, ids::ORACLE, ids::NOTARY, receipt).await.is_ok());
    assert!(ask(&p, "SRC", ids::ORACLE, rate.clone()).await.is_ok());
    assert!(ask(&p, ids::FCB, ids::ORACLE, rate).await.is_ok());
    assert!(ask(&p, ids::NBK, "STB2", node_policy).await.is_ok());
}

#[tokio::test]
async fn the_foreign_central_bank_is_a_counterparty_not_nbk() {
    let (_dir, p) = platform().await;
    let fcb = p.spec.participant(ids::FCB).unwrap();
    assert_eq!(fcb.role, dtenge_net::Role::CounterpartyCentralBank);
    assert!(p.node(ids::FCB).is_ok(), "it runs a node (it hosts its currency's DAs)");
}

#[test]
fn a_platform_json_written_before_the_counterparty_kind_is_read_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = dtenge_platform::spec::PlatformSpec::demo(dir.path(), &Default::default()).unwrap();
    for participant in &mut spec.participants {
        if participant.id.as_str() == ids::FCB {
            participant.role = dtenge_net::Role::Nbk;
        }
    }
    spec.save(dir.path()).unwrap();
    let loaded = dtenge_platform::spec::PlatformSpec::load(dir.path()).unwrap();
    assert_eq!(loaded.participant(ids::FCB).unwrap().role, dtenge_net::Role::CounterpartyCentralBank);
    assert_eq!(loaded.participant(ids::NBK).unwrap().role, dtenge_net::Role::Nbk);
}
