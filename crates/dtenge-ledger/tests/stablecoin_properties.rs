//! Property test of the stablecoin rules (SPEC §9), in the manner of
//! `properties.rs`: random sequences of honest and tampered mints, burns,
//! payments in the stablecoins and attempts on the reserve, each checked by
//! the kernel and applied to a reference book only if accepted. After every
//! step an independent model — sums over the book, not the rule module —
//! must find, for each stablecoin, reserve ≥ supply (in fact equal: both
//! start at zero and move together), DT supply = issued − redeemed, and no
//! stablecoin created except by a mint signed by its issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::RefCell;

use dtenge_crypto::SecretKey;
use dtenge_types::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::*;

const COINS: usize = 2;
const HOLDERS: usize = 3;

fn coin(i: usize) -> Currency {
    Currency::new(["KZTC", "USDK"][i % COINS]).unwrap()
}

fn issuer_key(i: usize) -> SecretKey {
    key(&format!("COIN-ISSUER-{}", i % COINS))
}

fn holder_key(i: usize) -> SecretKey {
    key(&format!("HOLDER-{}", i % HOLDERS))
}

/// `total × permille / 1000`, rounded down.
fn part(total: u64, permille: u16) -> u64 {
    (u128::from(total) * u128::from(permille.min(1000)) / 1000) as u64
}

#[derive(Debug, Clone)]
enum Op {
    /// NBK issues DT to an issuer (so it has something to mint against).
    FundIssuer { coin: usize, tenge: u64 },
    /// The issuer mints part of its free DT, to itself or a holder.
    Mint { coin: usize, permille: u16, to: Option<usize> },
    /// The issuer burns part of the stablecoin it holds.
    Burn { coin: usize, permille: u16 },
    /// A holder (or the issuer) pays another in the stablecoin.
    Pay { coin: usize, from: Option<usize>, to: Option<usize>, permille: u16 },
    /// An attempt on the reserve by another command.
    SpendReserve { coin: usize, how: u8 },
    /// An attempt to create the stablecoin by issue.
    IssueCoin { coin: usize, tenge: u64 },
}

/// A change to an honest transaction before it is (re)signed by its signers.
#[derive(Debug, Clone)]
struct Tamper {
    output: usize,
    delta: i64,
    /// Sign with a holder's key instead.
    wrong_signer: bool,
}

fn op() -> impl Strategy<Value = Op> {
    // Weighted so that honest mints, burns and payments find something to
    // spend often enough; the hostile ones still come in every sequence.
    prop_oneof![
        2 => (0..COINS, 1u64..1_000).prop_map(|(coin, tenge)| Op::FundIssuer { coin, tenge }),
        3 => (0..COINS, 1u16..=1000, proptest::option::of(0..HOLDERS))
            .prop_map(|(coin, permille, to)| Op::Mint { coin, permille, to }),
        3 => (0..COINS, 1u16..=1000).prop_map(|(coin, permille)| Op::Burn { coin, permille }),
        5 => (0..COINS, proptest::option::of(0..HOLDERS), proptest::option::of(0..HOLDERS), 1u16..=1000)
            .prop_map(|(coin, from, to, permille)| Op::Pay { coin, from, to, permille }),
        1 => (0..COINS, 0u8..5).prop_map(|(coin, how)| Op::SpendReserve { coin, how }),
        1 => (0..COINS, 1u64..100).prop_map(|(coin, tenge)| Op::IssueCoin { coin, tenge }),
    ]
}

fn tamper() -> impl Strategy<Value = Option<Tamper>> {
    proptest::option::weighted(
        0.25,
        (0usize..4, -5_000i64..5_000, proptest::bool::weighted(0.2)).prop_map(|(output, delta, wrong_signer)| Tamper {
            output,
            delta,
            wrong_signer,
        }),
    )
}

#[derive(Default, Debug)]
struct Stats {
    mints: usize,
    burns: usize,
    payments: usize,
    refused: usize,
    reserve_attempts_accepted: usize,
}

struct Sim {
    w: World,
}

impl Sim {
    fn new() -> Sim {
        let mut w = World::new();
        for i in 0..COINS {
            w.params.stablecoins.insert(coin(i), addr(&issuer_key(i)));
        }
        Sim { w }
    }

    fn owned(&self, owner: Address, f: impl Fn(&Token) -> bool) -> Vec<(TokenId, Token)> {
        self.w.book.iter().filter(|(_, t)| t.owner == owner && f(t)).map(|(id, t)| (*id, t.clone())).take(8).collect()
    }

    fn is_reserve(t: &Token, c: Currency) -> bool {
        t.encumbrance == Some(Encumbrance::Reserve(ReserveTerms { stablecoin: c }))
    }

    /// An honest transaction for `op`, and who signs it.
    fn honest(&mut self, op: &Op) -> Option<(TxBody, Vec<SecretKey>)> {
        let tokens = |v: &[(TokenId, Token)]| -> u64 { v.iter().map(|(_, t)| t.amount.tiyn()).sum() };
        match *op {
            Op::FundIssuer { coin: c, tenge } => {
                self.w.issue(&issuer_key(c), dt(tenge));
                None
            }
            Op::Mint { coin: c, permille, to } => {
                let issuer = issuer_key(c);
                let dt_in = self.owned(addr(&issuer), |t| t.currency == Currency::DT && t.is_standard());
                let given = tokens(&dt_in);
                let amount = part(given, permille);
                let to = to.map(holder_key).unwrap_or_else(|| issuer.clone());
                let mut outputs = vec![
                    Token::standard(coin(c), Amount::from_tiyn(amount), addr(&to), node("STB1")),
                    with_encumbrance(
                        std_token(&issuer, Amount::from_tiyn(amount)),
                        Encumbrance::Reserve(ReserveTerms { stablecoin: coin(c) }),
                    ),
                ];
                if given > amount {
                    outputs.push(std_token(&issuer, Amount::from_tiyn(given - amount)));
                }
                let ids = dt_in.iter().map(|(id, _)| *id).collect();
                Some((self.w.body(ids, outputs, Command::Mint { stablecoin: coin(c) }), vec![issuer]))
            }
            Op::Burn { coin: c, permille } => {
                let issuer = issuer_key(c);
                let held = self.owned(addr(&issuer), |t| t.currency == coin(c) && t.is_standard());
                let reserve = self.owned(addr(&issuer), |t| Self::is_reserve(t, coin(c)));
                let (coin_in, reserve_in) = (tokens(&held), tokens(&reserve));
                let burned = part(coin_in.min(reserve_in), permille);
                let mut outputs = Vec::new();
                let mut push = |t: Token| {
                    if !t.amount.is_zero() {
                        outputs.push(t)
                    }
                };
                push(std_token(&issuer, Amount::from_tiyn(burned)));
                push(Token::standard(coin(c), Amount::from_tiyn(coin_in - burned), addr(&issuer), node("STB1")));
                push(with_encumbrance(
                    std_token(&issuer, Amount::from_tiyn(reserve_in - burned)),
                    Encumbrance::Reserve(ReserveTerms { stablecoin: coin(c) }),
                ));
                let ids = held.iter().chain(reserve.iter()).map(|(id, _)| *id).collect();
                Some((self.w.body(ids, outputs, Command::Burn { stablecoin: coin(c) }), vec![issuer]))
            }
            Op::Pay { coin: c, from, to, permille } => {
                let payer = from.map(holder_key).unwrap_or_else(|| issuer_key(c));
                let payee = to.map(holder_key).unwrap_or_else(|| issuer_key(c));
                let held = self.owned(addr(&payer), |t| t.currency == coin(c) && t.is_standard());
                let given = tokens(&held);
                let amount = part(given, permille);
                let mut outputs = Vec::new();
                if amount > 0 {
                    outputs.push(Token::standard(coin(c), Amount::from_tiyn(amount), addr(&payee), node("STB2")));
                }
                if given > amount {
                    outputs.push(Token::standard(
                        coin(c),
                        Amount::from_tiyn(given - amount),
                        addr(&payer),
                        node("STB1"),
                    ));
                }
                let ids = held.iter().map(|(id, _)| *id).collect();
                Some((self.w.body(ids, outputs, Command::Transfer), vec![payer]))
            }
            Op::SpendReserve { coin: c, how } => {
                let issuer = issuer_key(c);
                let reserve = self.owned(addr(&issuer), |t| Self::is_reserve(t, coin(c)));
                let amount = Amount::from_tiyn(tokens(&reserve));
                let ids: Vec<TokenId> = reserve.iter().map(|(id, _)| *id).collect();
                let thief = holder_key(0);
                let (outputs, command, signer) = match how {
                    0 => (vec![std_token(&issuer, amount)], Command::Transfer, issuer.clone()),
                    1 => (vec![std_token(&thief, amount)], Command::Transfer, issuer.clone()),
                    2 => (vec![], Command::Redeem { cbs_reference: CbsRef::new("CBS-R").unwrap() }, self.w.nbk.clone()),
                    3 => {
                        let mut t = reserve.first().map(|(_, t)| t.clone())?;
                        t.owner = addr(&thief);
                        t.amount = amount;
                        (vec![t], Command::Rekey { old: addr(&issuer), new: addr(&thief) }, host_key("STB1"))
                    }
                    // A burn of the other stablecoin over this one's reserve.
                    _ => (vec![std_token(&issuer, amount)], Command::Burn { stablecoin: coin(c + 1) }, issuer.clone()),
                };
                Some((self.w.body(ids, outputs, command), vec![signer]))
            }
            Op::IssueCoin { coin: c, tenge } => {
                let body = self.w.body(
                    vec![],
                    vec![Token::standard(coin(c), dt(tenge), addr(&issuer_key(c)), node("STB1"))],
                    Command::Issue { cbs_reference: CbsRef::new("CBS-C").unwrap() },
                );
                Some((body, vec![issuer_key(c), self.w.nbk.clone()]))
            }
        }
    }

    fn tampered(body: &mut TxBody, signers: &mut Vec<SecretKey>, t: &Tamper) {
        let n = body.outputs.len();
        if n > 0 {
            let mut outputs = body.outputs.to_vec();
            let o = &mut outputs[t.output % n];
            o.amount = Amount::from_tiyn(o.amount.tiyn().saturating_add_signed(t.delta));
            body.outputs = outputs.try_into().unwrap();
        }
        if t.wrong_signer {
            *signers = vec![holder_key(1)];
        }
    }

    /// The independent model's checks over the whole book.
    fn invariants(&self) -> Result<(), String> {
        for i in 0..COINS {
            let c = coin(i);
            let supply: u128 =
                self.w.book.values().filter(|t| t.currency == c).map(|t| u128::from(t.amount.tiyn())).sum();
            let reserve: u128 = self
                .w
                .book
                .values()
                .filter(|t| Self::is_reserve(t, c))
                .map(|t| {
                    assert_eq!(t.currency, Currency::DT, "a reserve token in another currency than DT");
                    u128::from(t.amount.tiyn())
                })
                .sum();
            if reserve < supply {
                return Err(format!("{c}: reserve {reserve} < supply {supply}"));
            }
            if reserve != supply {
                return Err(format!("{c}: reserve {reserve} differs from supply {supply}"));
            }
            if self.w.book.values().any(|t| Self::is_reserve(t, c) && t.owner != addr(&issuer_key(i))) {
                return Err(format!("{c}: reserve held by someone other than its issuer"));
            }
        }
        let dt = self.w.supply(Currency::DT);
        let issued = self.w.issued.get(&Currency::DT).copied().unwrap_or(0);
        let redeemed = self.w.redeemed.get(&Currency::DT).copied().unwrap_or(0);
        if dt != issued - redeemed {
            return Err(format!("DT supply {dt} ≠ issued {issued} − redeemed {redeemed}"));
        }
        Ok(())
    }
}

fn run(ops: &[(Op, Option<Tamper>)], stats: &RefCell<Stats>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new();
    for (op, tamper) in ops {
        let Some((mut body, mut signers)) = sim.honest(op) else { continue };
        if let Some(t) = tamper {
            Sim::tampered(&mut body, &mut signers, t);
        }
        let keys: Vec<&SecretKey> = signers.iter().collect();
        let tx = sim.w.signed(body, &keys);
        // The model of who may create a stablecoin: only its issuer's mint.
        let minted_by_issuer = match &tx.body.command {
            Command::Mint { stablecoin } => (0..COINS).any(|i| {
                coin(i) == *stablecoin && tx.signatures.iter().any(|s| s.signer == issuer_key(i).public_key())
            }),
            _ => false,
        };
        let supply_before: Vec<u128> = (0..COINS).map(|i| sim.w.supply(coin(i))).collect();
        match sim.w.apply(&tx) {
            Ok(_) => {
                let mut s = stats.borrow_mut();
                match (&tx.body.command, op) {
                    (Command::Mint { .. }, _) => s.mints += 1,
                    (Command::Burn { .. }, Op::Burn { .. }) => s.burns += 1,
                    (Command::Transfer, Op::Pay { .. }) => s.payments += 1,
                    _ => {}
                }
                if matches!(op, Op::SpendReserve { .. } | Op::IssueCoin { .. }) {
                    s.reserve_attempts_accepted += 1;
                    return Err(TestCaseError::fail(format!("accepted an attempt on the reserve: {op:?}")));
                }
            }
            Err(_) => stats.borrow_mut().refused += 1,
        }
        for (i, before) in supply_before.iter().enumerate() {
            let after = sim.w.supply(coin(i));
            let is_burn = matches!(tx.body.command, Command::Burn { stablecoin } if stablecoin == coin(i));
            if after > *before && !minted_by_issuer {
                return Err(TestCaseError::fail(format!("{} grew without its issuer's mint: {op:?}", coin(i))));
            }
            if after < *before && !is_burn {
                return Err(TestCaseError::fail(format!("{} shrank without a burn: {op:?}", coin(i))));
            }
        }
        sim.invariants().map_err(|e| TestCaseError::fail(format!("after {op:?} {tamper:?}: {e}")))?;
    }
    Ok(())
}

#[test]
fn reserve_covers_stablecoin_supply_after_any_sequence_of_operations() {
    let stats = RefCell::new(Stats::default());
    let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec((op(), tamper()), 1..60);
    if let Err(e) = runner.run(&strategy, |ops| run(&ops, &stats)) {
        panic!("{e}");
    }
    let s = stats.into_inner();
    println!("{s:?}");
    // Not vacuous: the honest paths commit, the tampered and hostile ones are refused.
    assert!(s.mints > 100 && s.burns > 100 && s.payments > 100 && s.refused > 100, "{s:?}");
    assert_eq!(s.reserve_attempts_accepted, 0);
}

#[test]
fn the_model_refuses_a_book_where_the_reserve_falls_short() {
    let mut sim = Sim::new();
    sim.w.issue(&issuer_key(0), dt(10));
    assert!(sim.invariants().is_ok());
    // A stablecoin token with no reserve, put in the book behind the kernel's back.
    let forged = Token::standard(coin(0), dt(1), addr(&holder_key(0)), node("STB1"));
    sim.w.book.insert(TokenId { tx: TxId(dtenge_crypto::hash(b"forged", &[])), index: 0 }, forged);
    let e = sim.invariants().unwrap_err();
    assert!(e.contains("reserve 0 < supply 100"), "{e}");
}
