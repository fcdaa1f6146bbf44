//! Cross-border PvP (SPEC §9): DT against a second central bank's currency at
//! the FX oracle's rate, both legs in one transaction across two nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_net::{Clock, ManualClock};
use dtenge_node::service::PayTo;
use dtenge_oracle::model::FxRate;
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, CbsRef, Currency, ParticipantId, Timestamp};

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn balance_of(p: &Platform, node: &str, key: &str, currency: Currency) -> Amount {
    let inst = p.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let n = p.node(node).unwrap();
    n.read(|s| {
        let acct = s.account_of(&inst.address).unwrap().id.clone();
        Amount::checked_sum(
            s.vault.of_account(&acct).filter(|(_, t)| t.token.currency == currency).map(|(_, t)| t.token.amount),
        )
        .unwrap()
    })
}

#[tokio::test]
async fn dt_against_a_foreign_currency_settles_both_legs_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: false }).await.unwrap();
    let fcy = Currency::new(ids::FOREIGN_CURRENCY).unwrap();
    let inst = |key: &str| p.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let (nbk_da, fcb_da, fbank, stb1_da) =
        (inst(ids::NBK_DA), inst(ids::FCB_DA), inst(ids::FOREIGN_BANK_DA), inst("STB1-DA"));
    let nbk = p.node(ids::NBK).unwrap();
    let fcb = p.node(ids::FCB).unwrap();
    let stb1 = p.node("STB1").unwrap();
    let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let fcb_acct = fcb.read(|s| s.account_of(&fcb_da.address).unwrap().id.clone());
    nbk.issue(&nbk_acct, PayTo { address: stb1_da.address, amount: dt(200_000) }, CbsRef::new("CBS-KZ").unwrap())
        .await
        .unwrap();
    fcb.issue(&fcb_acct, PayTo { address: fbank.address, amount: dt(1_000) }, CbsRef::new("CBS-FX").unwrap())
        .await
        .unwrap();

    // 1 FCY = 125 DT: quote (FCY) = floor(DT × 1 / 125).
    let rate = FxRate {
        base: Currency::DT,
        quote: fcy,
        numerator: 1,
        denominator: 125,
        valid_until: clock.now().plus_days(1),
    };
    let bus = p.bus("FXDESK").unwrap();
    let answer = bus
        .call(&ParticipantId::new(ids::ORACLE).unwrap(), borsh::to_vec(&OracleRequest::SetRate(rate)).unwrap())
        .await
        .unwrap();
    assert!(matches!(borsh::from_slice::<OracleAnswer>(&answer).unwrap(), OracleAnswer::Done));

    let stb1_acct = stb1.read(|s| s.account_of(&stb1_da.address).unwrap().id.clone());
    let done = stb1.pvp(&stb1_acct, fbank.address, Currency::DT, dt(12_500), fcy).await.unwrap();
    assert_eq!(done.status, dtenge_node::state::Status::Success);
    assert_eq!(balance_of(&p, "STB1", "STB1-DA", fcy), dt(100));
    assert_eq!(balance_of(&p, "STB1", "STB1-DA", Currency::DT), dt(187_500));
    assert_eq!(balance_of(&p, ids::FCB, ids::FOREIGN_BANK_DA, Currency::DT), dt(12_500));
    assert_eq!(balance_of(&p, ids::FCB, ids::FOREIGN_BANK_DA, fcy), dt(900));

    // A leg that cannot be paid (the foreign bank lacks the FCY): nothing moves on either side.
    // 150 000 DT would need 1 200 FCY; the foreign bank has 900.
    let err = stb1.pvp(&stb1_acct, fbank.address, Currency::DT, dt(150_000), fcy).await.unwrap_err();
    assert!(
        matches!(&err, dtenge_node::NodeError::RefusedBy { refusal, .. } if refusal.code == dtenge_node::RefusalCode::InsufficientFunds),
        "{err:?}"
    );
    assert_eq!(balance_of(&p, "STB1", "STB1-DA", Currency::DT), dt(187_500));
    assert_eq!(balance_of(&p, ids::FCB, ids::FOREIGN_BANK_DA, fcy), dt(900));
    // And nothing stays reserved: a feasible exchange still goes through.
    stb1.pvp(&stb1_acct, fbank.address, Currency::DT, dt(1_250), fcy).await.unwrap();
    assert_eq!(balance_of(&p, "STB1", "STB1-DA", fcy), dt(110));
}

/// Each PvP party's history has one line per currency, in that currency's
/// own units: for every party and currency the lines of the exchange add up
/// to the balance change in that currency, and today's spending (tier limits
/// are in DT) counts only the DT that left. Before, one line summed DT
/// tiyn and the other currency's minor units.
#[tokio::test]
async fn each_pvp_partys_history_has_one_line_per_currency_matching_its_balance_change() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: false }).await.unwrap();
    let fcy = Currency::new(ids::FOREIGN_CURRENCY).unwrap();
    let inst = |key: &str| p.spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let (nbk_da, fcb_da, fbank, stb1_da) =
        (inst(ids::NBK_DA), inst(ids::FCB_DA), inst(ids::FOREIGN_BANK_DA), inst("STB1-DA"));
    let (nbk, fcb, stb1) = (p.node(ids::NBK).unwrap(), p.node(ids::FCB).unwrap(), p.node("STB1").unwrap());
    let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let fcb_acct = fcb.read(|s| s.account_of(&fcb_da.address).unwrap().id.clone());
    nbk.issue(&nbk_acct, PayTo { address: stb1_da.address, amount: dt(200_000) }, CbsRef::new("CBS-KZ").unwrap())
        .await
        .unwrap();
    fcb.issue(&fcb_acct, PayTo { address: fbank.address, amount: dt(1_000) }, CbsRef::new("CBS-FX").unwrap())
        .await
        .unwrap();
    let rate = FxRate {
        base: Currency::DT,
        quote: fcy,
        numerator: 1,
        denominator: 125,
        valid_until: clock.now().plus_days(1),
    };
    let bus = p.bus("FXDESK").unwrap();
    bus.call(&ParticipantId::new(ids::ORACLE).unwrap(), borsh::to_vec(&OracleRequest::SetRate(rate)).unwrap())
        .await
        .unwrap();
    let stb1_acct = stb1.read(|s| s.account_of(&stb1_da.address).unwrap().id.clone());
    let fbank_acct = fcb.read(|s| s.account_of(&fbank.address).unwrap().id.clone());
    let parties = [("STB1", "STB1-DA", &stb1_acct), (ids::FCB, ids::FOREIGN_BANK_DA, &fbank_acct)];
    let balances =
        || parties.map(|(node, key, _)| (balance_of(&p, node, key, Currency::DT), balance_of(&p, node, key, fcy)));
    let before = balances();
    let spent_before = stb1.read(|s| s.spent_on_day(&stb1_acct, clock.now()));

    let done = stb1.pvp(&stb1_acct, fbank.address, Currency::DT, dt(12_500), fcy).await.unwrap();
    assert_eq!(done.status, dtenge_node::state::Status::Success);
    let after = balances();

    for (i, (node, _, account)) in parties.iter().enumerate() {
        let lines: Vec<_> =
            p.node(node).unwrap().history(account, 100).into_iter().filter(|l| l.tx == done.tx).collect();
        let mut currencies: Vec<_> = lines.iter().map(|l| l.currency).collect();
        currencies.sort();
        currencies.dedup();
        assert_eq!(lines.len(), 2, "{node}: one line per currency: {lines:?}");
        assert_eq!(currencies.len(), 2, "{node}: {lines:?}");
        for (currency, (was, is)) in [(Currency::DT, (before[i].0, after[i].0)), (fcy, (before[i].1, after[i].1))] {
            let line = lines.iter().find(|l| l.currency == Some(currency)).unwrap();
            assert!(line.incoming.is_zero() || line.outgoing.is_zero(), "{node} {currency}: {line:?}");
            // in − out of this currency = the balance change in this currency, exactly.
            assert_eq!(
                was.checked_add(line.incoming).unwrap(),
                is.checked_add(line.outgoing).unwrap(),
                "{node} {currency}: {line:?}"
            );
            assert_eq!(line.status, dtenge_node::state::Status::Success);
        }
    }
    // STB1 paid 12 500 DT and received 100 FCY; the foreign bank the reverse.
    let stb1_lines = stb1.history(&stb1_acct, 100);
    let dt_line = stb1_lines.iter().find(|l| l.tx == done.tx && l.currency == Some(Currency::DT)).unwrap();
    assert_eq!((dt_line.incoming, dt_line.outgoing), (Amount::ZERO, dt(12_500)));
    let fcy_line = stb1_lines.iter().find(|l| l.tx == done.tx && l.currency == Some(fcy)).unwrap();
    assert_eq!((fcy_line.incoming, fcy_line.outgoing), (dt(100), Amount::ZERO));
    // Today's spending counts the DT that left, not DT less FCY.
    let spent = stb1.read(|s| s.spent_on_day(&stb1_acct, clock.now()));
    assert_eq!(spent, spent_before.checked_add(dt(12_500)).unwrap());
}
