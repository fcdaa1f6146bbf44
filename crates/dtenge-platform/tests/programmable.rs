//! Programmable money through the running services: a hold released by a
//! provider's event (with notifications), expiry after valid-until, marking
//! with traceability copies at the initiator's node, and token lineage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_net::Clock;
use dtenge_node::accounts::{HolderKind, KycState};
use dtenge_node::service::PayTo;
use dtenge_node::state::Message;
use dtenge_oracle::model::{EventKind, EventSpec};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::ids;
use dtenge_types::*;

mod support;
use support::{World, dt, holder};

#[tokio::test]
async fn a_hold_is_released_when_the_provider_reports_the_event() {
    let w = World::new().await;
    let sec = w.funded(ids::TREASURY, 1, HolderKind::GovernmentAgency, dt(10_000)).await;
    let farmer =
        w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let event = EventId::new("IFA-2026-001").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        kind: EventKind::Single,
        sender: Some(sec.address),
        sender_node: Some(ParticipantId::new(ids::TREASURY).unwrap()),
        recipient: farmer.address,
        recipient_node: ParticipantId::new("STB2").unwrap(),
        amount: Some(dt(4_000)),
        valid_until: w.clock.now().plus_days(30),
    };
    assert!(matches!(w.provider("IFA", OracleRequest::RegisterEvent(spec)).await, OracleAnswer::Done));
    w.p.tick().await;
    assert!(
        w.node("STB2")
            .notifications(&farmer.id, usize::MAX)
            .iter()
            .any(|n| n.message == Message::EventRegistered { event: event.clone() }),
        "recipient's node told"
    );

    let treasury = w.node(ids::TREASURY);
    treasury.hold(&sec.id, event.clone(), None).await.unwrap();
    assert_eq!(treasury.balances(&sec.id).unwrap().held, dt(4_000));
    assert!(
        w.node("STB2")
            .notifications(&farmer.id, usize::MAX)
            .iter()
            .any(|n| n.message == Message::HeldForYou { amount: dt(4_000), event: event.clone() }),
        "the seller is told funds are held"
    );
    // The owner cannot spend held funds.
    let err = treasury.pay(&sec.id, &[PayTo { address: farmer.address, amount: dt(7_000) }], None).await.unwrap_err();
    assert!(err.to_string().contains("insufficient"), "{err}");

    // A provider without the Events registry cannot report it.
    let refused = w.provider("SRC", OracleRequest::ReportOccurrence { event: event.clone(), amount: None }).await;
    assert!(
        matches!(refused, OracleAnswer::Refused(ref r) if r.code == dtenge_oracle::OracleCode::NotAllowed),
        "{refused:?}"
    );
    // The IFA reports the change of ownership: the next tick releases.
    assert!(matches!(
        w.provider("IFA", OracleRequest::ReportOccurrence { event, amount: None }).await,
        OracleAnswer::Done
    ));
    w.p.tick().await;
    assert_eq!(w.node("STB2").balances(&farmer.id).unwrap().standard, dt(4_000));
    assert_eq!(treasury.balances(&sec.id).unwrap().held, Amount::ZERO);
    assert_eq!(treasury.balances(&sec.id).unwrap().standard, dt(6_000));
}

#[tokio::test]
async fn held_funds_return_after_valid_until_without_the_oracle() {
    let w = World::new().await;
    let dag = w.funded(ids::TREASURY, 3, HolderKind::GovernmentAgency, dt(50_000)).await;
    let lessor =
        w.node("STB1").open_account(holder(4, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let event = EventId::new("SSIS-2026-77").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        kind: EventKind::Single,
        sender: Some(dag.address),
        sender_node: Some(ParticipantId::new(ids::TREASURY).unwrap()),
        recipient: lessor.address,
        recipient_node: ParticipantId::new("STB1").unwrap(),
        amount: Some(dt(20_000)),
        valid_until: w.clock.now().plus_days(180),
    };
    w.provider("SSIS", OracleRequest::RegisterEvent(spec)).await;
    let treasury = w.node(ids::TREASURY);
    treasury.hold(&dag.id, event, None).await.unwrap();
    w.clock.advance(179 * Timestamp::DAY_MS);
    w.p.tick().await;
    assert_eq!(treasury.balances(&dag.id).unwrap().held, dt(20_000), "still held before the end");
    // 180 days pass with no trigger; the oracle is partitioned away: expiry still works.
    w.clock.advance(2 * Timestamp::DAY_MS);
    w.p.network.partition(&ParticipantId::new(ids::ORACLE).unwrap());
    w.p.tick().await;
    w.p.network.heal(&ParticipantId::new(ids::ORACLE).unwrap());
    assert_eq!(treasury.balances(&dag.id).unwrap().held, Amount::ZERO);
    assert_eq!(treasury.balances(&dag.id).unwrap().standard, dt(50_000));
    assert_eq!(w.node("STB1").balances(&lessor.id).unwrap().total, Amount::ZERO);
}

#[tokio::test]
async fn marked_transfers_are_copied_to_the_initiators_node_and_lineage_is_known() {
    let w = World::new().await;
    let ga = w.funded(ids::TREASURY, 5, HolderKind::GovernmentAgency, dt(10_000)).await;
    let stb1 = w.node("STB1");
    let gc = stb1.open_account(holder(6, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let sub = w.node("STB2").open_account(holder(7, HolderKind::LegalEntity), None, KycState::Verified).await.unwrap();
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-ROADS-2026").unwrap(),
        initiator: ga.address,
        initiator_node: ParticipantId::new(ids::TREASURY).unwrap(),
        levels: vec![MarkingLevel { recipients: vec![sub.address].try_into().unwrap(), limit: dt(3_000) }]
            .try_into()
            .unwrap(),
    };
    let treasury = w.node(ids::TREASURY);
    treasury.mark_address(&ga.id, PayTo { address: gc.address, amount: dt(5_000) }, rule, None).await.unwrap();
    assert_eq!(stb1.balances(&gc.id).unwrap().marked, dt(5_000));
    let paid = stb1.pay_marked(&gc.id, &[PayTo { address: sub.address, amount: dt(2_000) }], None, None).await.unwrap();
    assert_eq!(w.node("STB2").balances(&sub.id).unwrap().standard, dt(2_000), "last level: unmarked");
    // An unintended recipient is refused by the kernel; the funds stay.
    let err = stb1.pay_marked(&gc.id, &[PayTo { address: ga.address, amount: dt(100) }], None, None).await.unwrap_err();
    assert!(err.to_string().contains("not allowed at marking level 1"), "{err}");
    assert_eq!(stb1.balances(&gc.id).unwrap().marked, dt(3_000));
    // The Treasury node holds a traceability copy of the GC's payment.
    assert!(treasury.read(|s| s.received(&paid.tx).is_some()), "traceability copy at the initiator's node");
    // Lineage: the payment's outputs name their parent token.
    let child = TokenId { tx: paid.tx, index: 0 };
    let parents = stb1.lineage(&child).unwrap();
    assert_eq!(parents.len(), 1);
    assert!(treasury.read(|s| {
        let mut created = false;
        s.for_each_outgoing(|_, o| {
            created |= o.tx.output_ids().any(|id| id == parents[0]);
            !created
        });
        created
    }));
}
