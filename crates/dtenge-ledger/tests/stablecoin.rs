//! DT-backed stablecoins: a mint puts the same DT in the reserve, a burn
//! releases the same DT, holders pay each other in the stablecoin, and every
//! other way of touching the reserve or creating the stablecoin is refused
//! with its own rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_types::*;
use support::*;

fn coin() -> Currency {
    Currency::new("KZTC").unwrap()
}

struct Coin {
    w: World,
    issuer: SecretKey,
    alice: SecretKey,
    bob: SecretKey,
}

fn world() -> Coin {
    let mut w = World::new();
    let issuer = key("COIN-ISSUER");
    w.params.stablecoins.insert(coin(), addr(&issuer));
    Coin { w, issuer, alice: key("ALICE"), bob: key("BOB") }
}

fn reserve(owner: &SecretKey, amount: Amount, stablecoin: Currency) -> Token {
    with_encumbrance(std_token(owner, amount), Encumbrance::Reserve(ReserveTerms { stablecoin }))
}

fn coins(owner: &SecretKey, amount: Amount) -> Token {
    Token::standard(coin(), amount, addr(owner), node("STB1"))
}

/// A valid mint of `amount` from `dt` of the issuer's DT: stablecoin to
/// `to`, the same DT into the reserve, the rest back as change.
fn mint_outputs(c: &Coin, amount: Amount, dt_in: Amount, to: &SecretKey) -> Vec<Token> {
    let mut out = vec![coins(to, amount), reserve(&c.issuer, amount, coin())];
    let change = dt_in.checked_sub(amount).unwrap();
    if !change.is_zero() {
        out.push(std_token(&c.issuer, change));
    }
    out
}

/// The issuer gets 100 DT and mints 60 of the stablecoin to itself;
/// returns (stablecoin token, reserve token, DT change).
fn minted(c: &mut Coin) -> (TokenId, TokenId, TokenId) {
    let dt_in = c.w.issue(&c.issuer, dt(100));
    let outputs = mint_outputs(c, dt(60), dt(100), &c.issuer);
    let body = c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() });
    let tx = c.w.signed(body, &[&c.issuer]);
    let ids = c.w.apply(&tx).unwrap();
    (ids[0], ids[1], ids[2])
}

/// The issuer's standard DT (its standard balance counts the stablecoin too).
fn free_dt(c: &Coin) -> Amount {
    let a = addr(&c.issuer);
    Amount::checked_sum(
        c.w.book.values().filter(|t| t.owner == a && t.currency == Currency::DT && t.is_standard()).map(|t| t.amount),
    )
    .unwrap()
}

fn expect(c: &Coin, tx: &Transaction, code: u16) -> dtenge_ledger::Rejection {
    let r = c.w.check(tx).expect_err("must be refused");
    assert_eq!(r.code(), code, "{r}");
    r
}

#[test]
fn a_mint_puts_the_same_dt_in_the_reserve_and_a_burn_releases_it() {
    let mut c = world();
    let (coin_id, reserve_id, _) = minted(&mut c);
    assert_eq!(c.w.supply(coin()), 60_00);
    assert_eq!(c.w.balance(&c.issuer, TokenKind::Reserve), dt(60));
    assert_eq!(free_dt(&c), dt(40));

    // Burn 25: the issuer's stablecoin and reserve in; 35 of each back, 25 DT released.
    let outputs = vec![coins(&c.issuer, dt(35)), reserve(&c.issuer, dt(35), coin()), std_token(&c.issuer, dt(25))];
    let body = c.w.body(vec![coin_id, reserve_id], outputs, Command::Burn { stablecoin: coin() });
    let tx = c.w.signed(body, &[&c.issuer]);
    c.w.apply(&tx).unwrap();
    assert_eq!(c.w.supply(coin()), 35_00);
    assert_eq!(c.w.balance(&c.issuer, TokenKind::Reserve), dt(35));
    assert_eq!(free_dt(&c), dt(65));
}

#[test]
fn holders_pay_each_other_in_the_stablecoin_with_a_plain_transfer() {
    let mut c = world();
    let dt_in = c.w.issue(&c.issuer, dt(50));
    let body = c.w.body(vec![dt_in], mint_outputs(&c, dt(50), dt(50), &c.alice), Command::Mint { stablecoin: coin() });
    let tx = c.w.signed(body, &[&c.issuer]);
    let alice_coin = c.w.apply(&tx).unwrap()[0];
    let body = c.w.body(vec![alice_coin], vec![coins(&c.bob, dt(20)), coins(&c.alice, dt(30))], Command::Transfer);
    let tx = c.w.signed(body, &[&c.alice]);
    c.w.apply(&tx).unwrap();
    assert_eq!(c.w.supply(coin()), 50_00);
    let bob_coins: u64 =
        c.w.book.values().filter(|t| t.currency == coin() && t.owner == addr(&c.bob)).map(|t| t.amount.tiyn()).sum();
    assert_eq!(bob_coins, 20_00);
    // Paying more stablecoin than given is not conserved.
    let ids: Vec<TokenId> = c.w.book.iter().filter(|(_, t)| t.owner == addr(&c.bob)).map(|(id, _)| *id).collect();
    let body = c.w.body(ids, vec![coins(&c.alice, dt(21))], Command::Transfer);
    let tx = c.w.signed(body, &[&c.bob]);
    expect(&c, &tx, 401);
}

#[test]
fn minting_without_the_same_reserve_is_refused() {
    let mut c = world();
    let dt_in = c.w.issue(&c.issuer, dt(100));
    // 60 minted, 50 reserved, 50 change: DT conserved but not backed.
    let outputs = vec![coins(&c.issuer, dt(60)), reserve(&c.issuer, dt(50), coin()), std_token(&c.issuer, dt(50))];
    let tx = c.w.signed(c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() }), &[&c.issuer]);
    let r = expect(&c, &tx, 1502);
    assert!(r.to_string().contains("60") && r.to_string().contains("50"), "{r}");
    // No reserve at all.
    let outputs = vec![coins(&c.issuer, dt(60)), std_token(&c.issuer, dt(100))];
    let tx = c.w.signed(c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() }), &[&c.issuer]);
    expect(&c, &tx, 1502);
    // Reserve of more DT than given.
    let outputs = vec![coins(&c.issuer, dt(60)), reserve(&c.issuer, dt(60), coin()), std_token(&c.issuer, dt(50))];
    let tx = c.w.signed(c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() }), &[&c.issuer]);
    expect(&c, &tx, 401);
    // Nothing minted.
    let outputs = vec![std_token(&c.issuer, dt(100))];
    let tx = c.w.signed(c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() }), &[&c.issuer]);
    expect(&c, &tx, 1505);
}

#[test]
fn a_mint_is_the_issuer_s_alone() {
    let mut c = world();
    let issuer_dt = c.w.issue(&c.issuer, dt(100));
    let alice_dt = c.w.issue(&c.alice, dt(100));
    // Alice mints the issuer's stablecoin against her own DT: not the issuer.
    let outputs = vec![coins(&c.alice, dt(10)), reserve(&c.alice, dt(10), coin()), std_token(&c.alice, dt(90))];
    let tx = c.w.signed(c.w.body(vec![alice_dt], outputs, Command::Mint { stablecoin: coin() }), &[&c.alice]);
    expect(&c, &tx, 1503);
    // The issuer's body signed by someone else.
    let outputs = mint_outputs(&c, dt(10), dt(100), &c.issuer);
    let tx = c.w.signed(c.w.body(vec![issuer_dt], outputs, Command::Mint { stablecoin: coin() }), &[&c.alice]);
    expect(&c, &tx, 302);
    // An unregistered stablecoin.
    let other = Currency::new("USDX").unwrap();
    let outputs =
        vec![Token::standard(other, dt(10), addr(&c.issuer), node("STB1")), reserve(&c.issuer, dt(10), other)];
    let tx = c.w.signed(
        c.w.body(
            vec![issuer_dt],
            [outputs, vec![std_token(&c.issuer, dt(90))]].concat(),
            Command::Mint { stablecoin: other },
        ),
        &[&c.issuer],
    );
    expect(&c, &tx, 1501);
    // DT and a centrally issued currency are never stablecoins.
    for not_coin in [Currency::DT, Currency::new("XCB").unwrap()] {
        c.w.params.stablecoins.insert(not_coin, addr(&c.issuer));
        let tx = c.w.signed(
            c.w.body(vec![issuer_dt], vec![std_token(&c.issuer, dt(100))], Command::Mint { stablecoin: not_coin }),
            &[&c.issuer],
        );
        expect(&c, &tx, 1501);
    }
}

#[test]
fn a_mint_s_outputs_are_the_stablecoin_its_reserve_and_the_issuer_s_change() {
    let mut c = world();
    let dt_in = c.w.issue(&c.issuer, dt(100));
    let attempt = |c: &Coin, outputs: Vec<Token>| {
        c.w.signed(c.w.body(vec![dt_in], outputs, Command::Mint { stablecoin: coin() }), &[&c.issuer])
    };
    // DT change to someone else.
    let tx =
        attempt(&c, vec![coins(&c.issuer, dt(10)), reserve(&c.issuer, dt(10), coin()), std_token(&c.alice, dt(90))]);
    expect(&c, &tx, 1504);
    // The reserve held by someone else.
    let tx =
        attempt(&c, vec![coins(&c.issuer, dt(10)), reserve(&c.alice, dt(10), coin()), std_token(&c.issuer, dt(90))]);
    expect(&c, &tx, 1504);
    // The reserve of another stablecoin.
    let other = Currency::new("USDX").unwrap();
    let tx =
        attempt(&c, vec![coins(&c.issuer, dt(10)), reserve(&c.issuer, dt(10), other), std_token(&c.issuer, dt(90))]);
    expect(&c, &tx, 1504);
    // A marked stablecoin.
    let marked = with_marking(coins(&c.alice, dt(10)), Marking::Vat);
    let tx = attempt(&c, vec![marked, reserve(&c.issuer, dt(10), coin()), std_token(&c.issuer, dt(90))]);
    expect(&c, &tx, 1504);
    // Mint from the reserve itself (no new DT).
    let (_, reserve_id, _) = minted(&mut c);
    let tx = c.w.signed(
        c.w.body(
            vec![reserve_id],
            vec![coins(&c.issuer, dt(60)), reserve(&c.issuer, dt(60), coin())],
            Command::Mint { stablecoin: coin() },
        ),
        &[&c.issuer],
    );
    expect(&c, &tx, 504);
}

#[test]
fn a_burn_releases_exactly_what_it_destroys() {
    let mut c = world();
    let (coin_id, reserve_id, _) = minted(&mut c);
    let attempt = |c: &Coin, inputs: Vec<TokenId>, outputs: Vec<Token>| {
        c.w.signed(c.w.body(inputs, outputs, Command::Burn { stablecoin: coin() }), &[&c.issuer])
    };
    // Releases 30 for 25 burned (reserve 30 left: DT conserved, not matched).
    let tx = attempt(
        &c,
        vec![coin_id, reserve_id],
        vec![coins(&c.issuer, dt(35)), reserve(&c.issuer, dt(30), coin()), std_token(&c.issuer, dt(30))],
    );
    expect(&c, &tx, 1502);
    // Releases DT without burning: nothing burned.
    let tx = attempt(
        &c,
        vec![coin_id, reserve_id],
        vec![coins(&c.issuer, dt(60)), reserve(&c.issuer, dt(50), coin()), std_token(&c.issuer, dt(10))],
    );
    expect(&c, &tx, 1505);
    // Burns without releasing (the reserve kept whole): mismatch.
    let tx = attempt(&c, vec![coin_id, reserve_id], vec![coins(&c.issuer, dt(50)), reserve(&c.issuer, dt(60), coin())]);
    expect(&c, &tx, 1502);
    // Releases more DT than the reserve held.
    let tx = attempt(&c, vec![coin_id, reserve_id], vec![std_token(&c.issuer, dt(70))]);
    expect(&c, &tx, 401);
    // Stablecoin change to someone else.
    let tx = attempt(
        &c,
        vec![coin_id, reserve_id],
        vec![coins(&c.alice, dt(35)), reserve(&c.issuer, dt(35), coin()), std_token(&c.issuer, dt(25))],
    );
    expect(&c, &tx, 1504);
    // The issuer's standard DT as an input of a burn.
    let dt_id = c.w.issue(&c.issuer, dt(5));
    let tx = attempt(&c, vec![coin_id, dt_id], vec![coins(&c.issuer, dt(55)), std_token(&c.issuer, dt(10))]);
    expect(&c, &tx, 504);
    // A holder's stablecoin burned by the issuer without the holder: not the issuer's.
    let dt_in = c.w.issue(&c.issuer, dt(10));
    let body = c.w.body(vec![dt_in], mint_outputs(&c, dt(10), dt(10), &c.alice), Command::Mint { stablecoin: coin() });
    let alice_coin = c.w.apply(&c.w.signed(body, &[&c.issuer])).unwrap()[0];
    let tx = attempt(
        &c,
        vec![alice_coin, reserve_id],
        vec![reserve(&c.issuer, dt(50), coin()), std_token(&c.issuer, dt(10))],
    );
    expect(&c, &tx, 1503);
    // A valid burn still passes after all these.
    let tx = attempt(&c, vec![coin_id, reserve_id], vec![std_token(&c.issuer, dt(60))]);
    c.w.apply(&tx).unwrap();
    // Alice's 10 remain, backed by the 10 of her mint.
    assert_eq!(c.w.supply(coin()), 10_00);
    assert_eq!(c.w.balance(&c.issuer, TokenKind::Reserve), dt(10));
}

#[test]
fn the_reserve_is_spent_by_nothing_but_a_burn() {
    let mut c = world();
    let (_, reserve_id, _) = minted(&mut c);
    // A plain transfer of the reserve, signed by its owner, the issuer.
    let tx = c.w.signed(c.w.body(vec![reserve_id], vec![std_token(&c.alice, dt(60))], Command::Transfer), &[&c.issuer]);
    let r = expect(&c, &tx, 1506);
    assert!(r.to_string().contains("transfer"), "{r}");
    // Moving it "as a reserve" to another key.
    let tx = c
        .w
        .signed(c.w.body(vec![reserve_id], vec![reserve(&c.alice, dt(60), coin())], Command::Transfer), &[&c.issuer]);
    expect(&c, &tx, 1506);
    // Redeeming it at the central bank's issuer.
    let tx = c.w.signed(
        c.w.body(vec![reserve_id], vec![], Command::Redeem { cbs_reference: CbsRef::new("CBS-R").unwrap() }),
        &[&c.w.nbk],
    );
    expect(&c, &tx, 1506);
    // A key rotation by the host bank.
    let new = key("ISSUER-NEW");
    let tx = c.w.signed(
        c.w.body(
            vec![reserve_id],
            vec![reserve(&new, dt(60), coin())],
            Command::Rekey { old: addr(&c.issuer), new: addr(&new) },
        ),
        &[&host_key("STB1")],
    );
    expect(&c, &tx, 1506);
    // Creating reserve tokens with a transfer of standard DT.
    let dt_in = c.w.issue(&c.issuer, dt(10));
    let tx =
        c.w.signed(c.w.body(vec![dt_in], vec![reserve(&c.issuer, dt(10), coin())], Command::Transfer), &[&c.issuer]);
    expect(&c, &tx, 1506);
}

#[test]
fn a_stablecoin_is_never_issued_or_redeemed_like_a_central_bank_currency() {
    let mut c = world();
    // Even if the parameters also named an issuer for it.
    c.w.params.issuers.insert(coin(), addr(&c.issuer));
    let body = c.w.body(
        vec![],
        vec![coins(&c.issuer, dt(10))],
        Command::Issue { cbs_reference: CbsRef::new("CBS-X").unwrap() },
    );
    let tx = c.w.signed(body, &[&c.issuer]);
    expect(&c, &tx, 1507);
    c.w.params.issuers.remove(&coin());
    let (coin_id, _, _) = minted(&mut c);
    let tx = c.w.signed(
        c.w.body(vec![coin_id], vec![], Command::Redeem { cbs_reference: CbsRef::new("CBS-Y").unwrap() }),
        &[&c.issuer],
    );
    expect(&c, &tx, 1507);
}
