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
