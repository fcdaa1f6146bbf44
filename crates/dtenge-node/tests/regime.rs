//! The account regime as journaled state (issue #9): every record applies
//! deterministically and a replayed journal rebuilds the same regime —
//! policy versions only go up, lifts end only the named order, arrests add
//! up, the daily count leaves out collections and linked-account conversions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_crypto::{SecretKey, hash};
use dtenge_node::accounts::AccountId;
use dtenge_node::regime::{
    AccountProfile, LimitPolicy, LinkDirection, LinkedTransfer, OrderEntry, Tier, TierLimits, astana_day,
};
use dtenge_node::state::{NodeRecord, NodeState};
use dtenge_types::*;

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"regime-test", &[name.as_bytes()]).as_bytes())
}

fn limits(n: u64) -> TierLimits {
    let a = Amount::from_tiyn(n);
    TierLimits { max_balance: a, per_payment: a, daily_outgoing: a }
}

fn policy(version: u64) -> LimitPolicy {
    LimitPolicy {
        version,
        simplified: limits(version),
        standard: limits(10 * version),
        full: limits(100 * version),
        published_at: Timestamp(version),
    }
}

fn order(reference: &str, act: OrderAct, by: &SecretKey) -> OrderEntry {
    let signed = EnforcementOrder {
        reference: OrderRef::new(reference).unwrap(),
        authority: by.public_key(),
        debtor: Address(key("debtor").public_key()),
        act,
        reason: Memo::new("court order").unwrap(),
        issued_at: Timestamp(1),
    }
    .sign(by);
    OrderEntry {
        signed,
        account: AccountId("STB1-000001".into()),
        via: ParticipantId::new("BAILIFF").unwrap(),
        placed_at: Timestamp(2),
        lifted: None,
        collected: Amount::ZERO,
        txs: Vec::new(),
    }
}

#[test]
fn the_regime_replays_to_the_same_state() {
    let account = AccountId("STB1-000001".into());
    let bailiff = key("bailiff");
    let records = vec![
        NodeRecord::PolicyAdopted(policy(2)),
        NodeRecord::PolicyAdopted(policy(1)),
        NodeRecord::ProfileSet {
            account: account.clone(),
            profile: AccountProfile { tier: Tier::Simplified, linked_bank_account: Some("KZ1".into()) },
        },
        NodeRecord::OrderPlaced(Box::new(order("A-1", OrderAct::Arrest { amount: Amount::from_tiyn(300) }, &bailiff))),
        NodeRecord::OrderPlaced(Box::new(order("A-2", OrderAct::Arrest { amount: Amount::from_tiyn(200) }, &bailiff))),
        NodeRecord::OrderPlaced(Box::new(order("F-1", OrderAct::Freeze, &bailiff))),
        NodeRecord::OrderLifted {
            authority: bailiff.public_key(),
            reference: OrderRef::new("F-1").unwrap(),
            by: OrderRef::new("L-1").unwrap(),
            at: Timestamp(3),
        },
        // A lift naming another authority's key changes nothing.
        NodeRecord::OrderLifted {
            authority: key("other").public_key(),
            reference: OrderRef::new("A-1").unwrap(),
            by: OrderRef::new("L-2").unwrap(),
            at: Timestamp(4),
        },
        NodeRecord::LinkedTransferMade(LinkedTransfer {
            account: account.clone(),
            direction: LinkDirection::ToBankAccount,
            amount: Amount::from_tiyn(5),
            bank_account: "KZ1".into(),
            tx: TxId(hash(b"t", &[])),
            at: Timestamp(5),
            reason: "reverse waterfall".into(),
        }),
    ];
    let mut state = NodeState::default();
    for r in &records {
        state.apply(r);
    }
    assert_eq!(state.policy.as_ref().unwrap().version, 2, "an older policy never replaces a newer one");
    assert_eq!(state.profile(&account).tier, Tier::Simplified);
    assert_eq!(state.arrested(&account), Ok(Amount::from_tiyn(500)));
    assert_eq!(state.active_orders(&account).len(), 2, "the freeze is lifted, the arrests stay");
    assert_eq!(state.profile(&AccountId("STB1-000002".into())), AccountProfile::default());

    // Replaying the journaled records gives the same state, and so does a snapshot.
    let mut replayed = NodeState::default();
    for r in &records {
        replayed.apply(&NodeRecord::decode(&r.encode()).unwrap());
    }
    assert_eq!(replayed, state);
    let snapshot = NodeState::decode_snapshot(&state.encode_snapshot()).unwrap();
    assert_eq!(snapshot, state);
}

#[test]
fn days_are_astana_days() {
    // 2026-01-01 00:00 Astana is 2025-12-31 19:00 UTC.
    let new_year_utc = 1_767_225_600_000u64;
    let astana_midnight = new_year_utc - 5 * 3_600_000;
    assert_eq!(astana_day(Timestamp(astana_midnight)), astana_day(Timestamp(new_year_utc)));
    assert_eq!(astana_day(Timestamp(astana_midnight - 1)) + 1, astana_day(Timestamp(astana_midnight)));
}
