//! Property tests of the kernel's invariants (SPEC §2–4).
//!
//! Each property runs a proptest `TestRunner` and checks every transaction the
//! kernel *accepts* against an independent model written from the SPEC, not
//! from the rule modules:
//!
//! 1. random sequences of honest and adversarial operations keep the supply
//!    equal to issued − redeemed in every currency, never spend a token twice,
//!    and every accepted transaction is authorised and obeys its archetype;
//! 2. address-marked value only reaches allowed recipients of the next level,
//!    within the allowance the tokens carry, and no allowance is ever inflated;
//! 3. held value goes only to the hold's recipient (exactly the attested
//!    amount) or back to its owner, and expiry needs a window after valid-until;
//! 4. VAT value never becomes standard except at the tax authority;
//! 5. validation is deterministic and ids survive a borsh round trip.
//!
//! The counters printed with `--nocapture` show how many cases were accepted
//! and rejected; each property also asserts it is not vacuous.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use dtenge_crypto::{Ed25519, PublicKey, SecretKey};
use dtenge_ledger::{Context, Params, Rejection, validate};
use dtenge_types::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::*;

// ───────────────────────────── shared helpers ─────────────────────────────

/// Runs `test` over `cases` values of `strategy`; panics with the minimal
/// failing input if any case fails.
fn run_property<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4_096, ..Config::default() };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

fn tiyn(n: u64) -> Amount {
    Amount::from_tiyn(n)
}

fn xcb() -> Currency {
    Currency::new("XCB").unwrap()
}

/// `total × permille / 1000`, rounded down.
fn part(total: u64, permille: u16) -> u64 {
    (u128::from(total) * u128::from(permille.min(1000)) / 1000) as u64
}

/// Splits `total` in proportion to `weights`; the last share takes the rest.
fn split(total: u64, weights: &[u16]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    let mut out = Vec::with_capacity(weights.len());
    let mut given = 0u64;
    for (i, w) in weights.iter().enumerate() {
        let share = if i + 1 == weights.len() {
            total - given
        } else {
            (u128::from(total) * u128::from(*w)).checked_div(sum).unwrap_or(0) as u64
        };
        given += share;
        out.push(share);
    }
    out
}

fn total(tokens: &[Token]) -> u128 {
    tokens.iter().map(|t| u128::from(t.amount.tiyn())).sum()
}

fn per_currency(tokens: &[Token]) -> BTreeMap<Currency, u128> {
    let mut m = BTreeMap::new();
    for t in tokens {
        *m.entry(t.currency).or_default() += u128::from(t.amount.tiyn());
    }
    m
}

fn is_vat(t: &Token) -> bool {
    matches!(t.marking, Some(Marking::Vat))
}

fn signers(tx: &Transaction) -> BTreeSet<PublicKey> {
    tx.signatures.iter().map(|s| s.signer).collect()
}

/// The one statement attested by a platform oracle, if there is exactly one.
fn oracle_statement<'a>(params: &Params, tx: &'a Transaction) -> Option<&'a Statement> {
    let mut it = tx.attestations.iter().filter(|a| params.oracles.contains(&a.oracle));
    let first = it.next()?;
    if it.next().is_some() || tx.attestations.len() != 1 {
        return None;
    }
    Some(&first.statement)
}

fn conserved(inputs: &[Token], outputs: &[Token]) -> Result<(), String> {
    let (i, o) = (per_currency(inputs), per_currency(outputs));
    if i != o {
        return Err(format!("value not conserved: inputs {i:?}, outputs {o:?}"));
    }
    Ok(())
}

fn sign_all(body: TxBody, keys: &[&SecretKey]) -> Transaction {
    let mut tx = Transaction::unsigned(body);
    for k in keys {
        tx.sign(*k).unwrap();
    }
    tx
}

// ─────────────────────── the independent model checks ───────────────────────

/// SPEC §4.1: what an accepted spend of held inputs may do.
fn check_held_spend(params: &Params, tx: &Transaction, inputs: &[Token]) -> Result<(), String> {
    let Some(Encumbrance::Hold(hold)) = inputs.first().and_then(|t| t.encumbrance.as_ref()) else {
        return Err("held inputs mixed with others (first input not held)".into());
    };
    let owner = inputs[0].owner;
    for (i, t) in inputs.iter().enumerate() {
        if t.encumbrance.as_ref() != Some(&Encumbrance::Hold(hold.clone())) || t.marking.is_some() || t.owner != owner {
            return Err(format!("input {i} is not held under the same terms by the same owner"));
        }
    }
    let held = total(inputs);
    let outputs = tx.body.outputs.as_slice();
    let window = tx.body.window;
    let statement = oracle_statement(params, tx);
    let all_back_standard = || -> Result<(), String> {
        match outputs.iter().position(|o| o.owner != owner || !o.is_standard()) {
            Some(i) => Err(format!("output {i} is not standard money back to the owner")),
            None => Ok(()),
        }
    };
    match &tx.body.command {
        Command::Release { event } => {
            let Some(Statement::EventOccurred { event: e, amount }) = statement else {
                return Err("release without an EventOccurred attestation".into());
            };
            if e != event || *event != hold.event {
                return Err("release for another event".into());
            }
            if amount.is_zero() || u128::from(amount.tiyn()) > held {
                return Err(format!("attested amount {amount:?} outside 1..=held {held}"));
            }
            if window.not_after > hold.valid_until {
                return Err("release window reaches past valid-until".into());
            }
            let mut released = 0u128;
            for (i, o) in outputs.iter().enumerate() {
                let back = o.owner == owner
                    && o.marking.is_none()
                    && match hold.kind {
                        HoldKind::Single => o.encumbrance.is_none(),
                        HoldKind::Recurring => o.encumbrance.as_ref() == Some(&Encumbrance::Hold(hold.clone())),
                    };
                if o.owner == hold.recipient && o.is_standard() {
                    released += u128::from(o.amount.tiyn());
                } else if !back {
                    return Err(format!("release output {i} goes neither to the recipient nor back to the owner"));
                }
            }
            if released != u128::from(amount.tiyn()) {
                return Err(format!("recipient got {released}, attested {}", amount.tiyn()));
            }
        }
        Command::Expire { event } => {
            if *event != hold.event {
                return Err("expiry for another event".into());
            }
            if window.not_before <= hold.valid_until {
                return Err(format!(
                    "expiry accepted with window starting {:?}, not after valid-until {:?}",
                    window.not_before, hold.valid_until
                ));
            }
            all_back_standard()?;
        }
        Command::CancelHold { event } => {
            if *event != hold.event || statement != Some(&Statement::EventCancelled { event: hold.event.clone() }) {
                return Err("cancel without the oracle's cancellation of this event".into());
            }
            all_back_standard()?;
        }
        other => return Err(format!("held inputs spent by {}", other.name())),
    }
    conserved(inputs, outputs)
}

/// SPEC §4.2.3: VAT value out + standard value to the tax authority ≥ VAT
/// value in; VAT is only spent by pay_invoice / pay_vat; only pay_invoice
/// creates VAT.
fn check_vat_flow(params: &Params, tx: &Transaction, inputs: &[Token]) -> Result<(), String> {
    let outputs = tx.body.outputs.as_slice();
    let vat_in: u128 = inputs.iter().filter(|t| is_vat(t)).map(|t| u128::from(t.amount.tiyn())).sum();
    let vat_out: u128 = outputs.iter().filter(|t| is_vat(t)).map(|t| u128::from(t.amount.tiyn())).sum();
    let std_to_tax: u128 = outputs
        .iter()
        .filter(|t| t.is_standard() && params.tax_authorities.contains(&t.owner))
        .map(|t| u128::from(t.amount.tiyn()))
        .sum();
    if let Some(i) = outputs.iter().position(|t| is_vat(t) && t.encumbrance.is_some()) {
        return Err(format!("VAT output {i} is encumbered"));
    }
    let command = &tx.body.command;
    if vat_in > 0 {
        if vat_out + std_to_tax < vat_in {
            return Err(format!("VAT in {vat_in} > VAT out {vat_out} + standard to tax authority {std_to_tax}"));
        }
        if !matches!(command, Command::PayInvoice { .. } | Command::PayVat) {
            return Err(format!("VAT inputs spent by {}", command.name()));
        }
    }
    match command {
        Command::PayVat => {
            let owner = inputs.first().map(|t| t.owner);
            if inputs.iter().any(|t| !is_vat(t) || Some(t.owner) != owner) {
                return Err("pay_vat with a non-VAT input or several owners".into());
            }
            for (i, o) in outputs.iter().enumerate() {
                let to_tax = params.tax_authorities.contains(&o.owner) && o.is_standard();
                let change = Some(o.owner) == owner && is_vat(o) && o.encumbrance.is_none();
                if !(to_tax || change) {
                    return Err(format!("pay_vat output {i} neither standard to the tax authority nor VAT change"));
                }
            }
        }
        Command::PayInvoice { invoice } => {
            let Some(Statement::Invoice { invoice: inv, seller, buyer, net, vat }) = oracle_statement(params, tx)
            else {
                return Err("pay_invoice without an invoice attestation".into());
            };
            if inv != invoice {
                return Err("attested another invoice".into());
            }
            if inputs.iter().any(|t| t.owner != *buyer) {
                return Err("an input is not the buyer's".into());
            }
            let sum_where = |f: &dyn Fn(&Token) -> bool| -> u128 {
                outputs.iter().filter(|t| f(t)).map(|t| u128::from(t.amount.tiyn())).sum()
            };
            let seller_std = sum_where(&|t| t.owner == *seller && t.is_standard());
            let seller_vat = sum_where(&|t| t.owner == *seller && is_vat(t));
            let buyer_vat = sum_where(&|t| t.owner == *buyer && t.owner != *seller && is_vat(t));
            if seller_std != u128::from(net.tiyn()) || seller_vat != u128::from(vat.tiyn()) {
                return Err(format!("seller got {seller_std} + {seller_vat} VAT, invoice says {net:?} + {vat:?}"));
            }
            if let Some(i) = outputs
                .iter()
                .position(|t| !(t.owner == *seller || t.owner == *buyer) || !(t.is_standard() || is_vat(t)))
            {
                return Err(format!("invoice output {i} to a third party or of another kind"));
            }
            if vat_out > vat_in && buyer_vat > 0 {
                return Err("standard marked as VAT while the buyer kept VAT tokens".into());
            }
        }
        _ => {
            if vat_out > vat_in {
                return Err(format!("{} created VAT", command.name()));
            }
        }
    }
    Ok(())
}

/// Every accepted transaction of the sequence world obeys the SPEC's rules
/// for its archetype (issue, redeem, transfer, holds, VAT).
fn check_accepted(params: &Params, tx: &Transaction, inputs: &[Token]) -> Result<(), String> {
    let body = &tx.body;
    let outputs = body.outputs.as_slice();
    let signed = signers(tx);
    if let Some(i) = outputs.iter().position(|t| t.amount.is_zero()) {
        return Err(format!("zero output {i}"));
    }
    match &body.command {
        Command::Issue { .. } => {
            let currencies: BTreeSet<Currency> = outputs.iter().map(|t| t.currency).collect();
            if !inputs.is_empty() || currencies.len() != 1 || outputs.iter().any(|t| !t.is_standard()) {
                return Err("issue must create standard tokens of one currency from nothing".into());
            }
            let currency = currencies.into_iter().next().unwrap();
            let issuer = params.issuers.get(&currency).ok_or("issue of an unknown currency")?;
            if !signed.contains(issuer.public_key()) {
                return Err("issue not signed by the currency's issuer".into());
            }
        }
        Command::Redeem { .. } => {
            let currencies: BTreeSet<Currency> = inputs.iter().chain(outputs).map(|t| t.currency).collect();
            let currency = *currencies.iter().next().ok_or("redeem of nothing")?;
            let issuer = params.issuers.get(&currency).ok_or("redeem of an unknown currency")?;
            if currencies.len() != 1 || inputs.iter().chain(outputs).any(|t| t.owner != *issuer || !t.is_standard()) {
                return Err("redeem must destroy the issuer's own standard tokens of one currency".into());
            }
            if total(outputs) >= total(inputs) || !signed.contains(issuer.public_key()) {
                return Err("redeem destroys nothing or is not signed by the issuer".into());
            }
        }
        _ => conserved(inputs, outputs)?,
    }
    let owner_authorises = !matches!(
        body.command,
        Command::Issue { .. } | Command::Release { .. } | Command::Expire { .. } | Command::CancelHold { .. }
    );
    if owner_authorises && let Some(i) = inputs.iter().position(|t| !signed.contains(t.owner.public_key())) {
        return Err(format!("input {i} spent without its owner's signature"));
    }
    if inputs.iter().any(|t| matches!(t.encumbrance, Some(Encumbrance::Hold(_)))) {
        check_held_spend(params, tx, inputs)?;
    }
    for (i, o) in outputs.iter().enumerate() {
        let Some(Encumbrance::Hold(h)) = &o.encumbrance else { continue };
        let ok = match (&body.command, oracle_statement(params, tx)) {
            (
                Command::Hold { event },
                Some(Statement::HoldConfirmed { event: e, sender, recipient, amount, valid_until, kind }),
            ) => {
                let held: u128 =
                    outputs.iter().filter(|t| t.encumbrance.is_some()).map(|t| u128::from(t.amount.tiyn())).sum();
                e == event
                    && h.event == *event
                    && h.recipient == *recipient
                    && h.valid_until == *valid_until
                    && h.kind == *kind
                    && o.owner == *sender
                    && held == u128::from(amount.tiyn())
                    && body.window.not_after <= *valid_until
            }
            (Command::Release { .. }, _) => {
                h.kind == HoldKind::Recurring
                    && inputs.iter().all(|t| t.encumbrance.as_ref() == Some(&Encumbrance::Hold(h.clone())))
            }
            _ => false,
        };
        if !ok || o.marking.is_some() {
            return Err(format!("held output {i} not created by an attested hold or a recurring release"));
        }
    }
    check_vat_flow(params, tx, inputs)
}

// ───────────────────── property 1: random transaction sequences ─────────────────────

#[derive(Debug, Clone)]
enum Op {
    Issue { to: Index, tiyn: u64, foreign: bool },
    Transfer { payer: Index, picks: u64, recipients: Vec<(Index, u16)>, keep: u16 },
    Merge { holder: Index },
    Redeem { holder: Index, give: u16, burn: u16 },
    Hold { holder: Index, recipient: Index, picks: u64, part: u16, recurring: bool, extra_minutes: u64 },
    Release { which: Index, part: u16 },
    Expire { which: Index },
    Cancel { which: Index },
    Tick { minutes: u64 },
    PayInvoice { buyer: Index, seller: Index, net: u16, vat: u16 },
    PayVat { holder: Index, part: u16 },
    Replay { which: Index },
    Attack { base: Box<Op>, mutation: Mutation, resign: bool },
}

#[derive(Debug, Clone)]
enum Mutation {
    OutputOwner { output: Index, to: Index },
    OutputAmount { output: Index, up: bool, delta: u64 },
    StripOutput { output: Index },
    AddOutput { to: Index, tiyn: u64 },
    ReuseSpent { input: Index, spent: Index },
    DuplicateInput { input: Index },
    DropSignature { sig: Index },
    DropAttestation,
    ShiftWindow { back: bool, minutes: u64 },
}

fn honest_op() -> impl Strategy<Value = Op> {
    let pm = || 1u16..=1000;
    prop_oneof![
        2 => (any::<Index>(), 1u64..=5_000_000, prop::bool::weighted(0.2))
            .prop_map(|(to, tiyn, foreign)| Op::Issue { to, tiyn, foreign }),
        6 => (any::<Index>(), any::<u64>(), prop::collection::vec((any::<Index>(), pm()), 1..=3), 0u16..=1000)
            .prop_map(|(payer, picks, recipients, keep)| Op::Transfer { payer, picks, recipients, keep }),
        1 => any::<Index>().prop_map(|holder| Op::Merge { holder }),
        2 => (any::<Index>(), pm(), pm()).prop_map(|(holder, give, burn)| Op::Redeem { holder, give, burn }),
        3 => (any::<Index>(), any::<Index>(), any::<u64>(), pm(), any::<bool>(), 0u64..=240).prop_map(
            |(holder, recipient, picks, part, recurring, extra_minutes)| Op::Hold {
                holder, recipient, picks, part, recurring, extra_minutes
            }
        ),
        3 => (any::<Index>(), pm()).prop_map(|(which, part)| Op::Release { which, part }),
        1 => any::<Index>().prop_map(|which| Op::Expire { which }),
        1 => any::<Index>().prop_map(|which| Op::Cancel { which }),
        1 => (1u64..=300).prop_map(|minutes| Op::Tick { minutes }),
        3 => (any::<Index>(), any::<Index>(), pm(), 0u16..=1000)
            .prop_map(|(buyer, seller, net, vat)| Op::PayInvoice { buyer, seller, net, vat }),
        2 => (any::<Index>(), pm()).prop_map(|(holder, part)| Op::PayVat { holder, part }),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(output, to)| Mutation::OutputOwner { output, to }),
        3 => (any::<Index>(), any::<bool>(), 1u64..=1_000)
            .prop_map(|(output, up, delta)| Mutation::OutputAmount { output, up, delta }),
        2 => any::<Index>().prop_map(|output| Mutation::StripOutput { output }),
        2 => (any::<Index>(), 1u64..=100_000).prop_map(|(to, tiyn)| Mutation::AddOutput { to, tiyn }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(input, spent)| Mutation::ReuseSpent { input, spent }),
        1 => any::<Index>().prop_map(|input| Mutation::DuplicateInput { input }),
        2 => any::<Index>().prop_map(|sig| Mutation::DropSignature { sig }),
        1 => Just(Mutation::DropAttestation),
        1 => (any::<bool>(), 1u64..=600).prop_map(|(back, minutes)| Mutation::ShiftWindow { back, minutes }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => honest_op(),
        1 => any::<Index>().prop_map(|which| Op::Replay { which }),
        3 => (honest_op(), mutation(), any::<bool>())
            .prop_map(|(base, mutation, resign)| Op::Attack { base: Box::new(base), mutation, resign }),
    ]
}

#[derive(Debug, Default, Clone, Copy)]
struct SeqStats {
    cases: usize,
    honest: usize,
    skipped: usize,
    attacks_accepted: usize,
    attacks_rejected: usize,
    replays: usize,
}

/// A token in the book, with its id.
type Owned = (TokenId, Token);
/// Held tokens of one owner under one hold.
type HeldGroup = (Address, Hold, Vec<Owned>);

/// The sequence world: five DT holders, NBK, the tax authority and an
/// outsider, over the reference book in [`World`].
struct Sim {
    w: World,
    holders: Vec<SecretKey>,
    /// Everyone who may receive: the holders, NBK and the tax authority.
    parties: Vec<SecretKey>,
    mallory: SecretKey,
    keys: BTreeMap<Address, SecretKey>,
    serial: u64,
    applied: Vec<Transaction>,
    stats: SeqStats,
    determinism: bool,
}

impl Sim {
    fn new(determinism: bool) -> Sim {
        let w = World::new();
        let holders: Vec<SecretKey> = (0..5).map(|i| key(&format!("HOLDER-{i}"))).collect();
        let mut parties = holders.clone();
        parties.push(w.nbk.clone());
        parties.push(w.tax.clone());
        let mallory = key("MALLORY");
        let mut keys = BTreeMap::new();
        for k in parties.iter().chain([&mallory, &key("FOREIGN-CB")]) {
            keys.insert(addr(k), k.clone());
        }
        let mut sim = Sim {
            w,
            holders,
            parties,
            mallory,
            keys,
            serial: 0,
            applied: Vec::new(),
            stats: SeqStats::default(),
            determinism,
        };
        for i in 0..5 {
            let tx = sim.issue_tx(i, 1_000_000, false);
            sim.submit_honest(&tx).unwrap();
        }
        sim
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn owned(&self, owner: Address, f: impl Fn(&Token) -> bool) -> Vec<(TokenId, Token)> {
        self.w.book.iter().filter(|(_, t)| t.owner == owner && f(t)).map(|(i, t)| (*i, t.clone())).collect()
    }

    fn held_groups(&self) -> Vec<HeldGroup> {
        let mut groups: BTreeMap<(Address, Vec<u8>), (Hold, Vec<Owned>)> = BTreeMap::new();
        for (id, t) in &self.w.book {
            if let Some(Encumbrance::Hold(h)) = &t.encumbrance {
                let k = (t.owner, dtenge_types::encoding::encode(h));
                groups.entry(k).or_insert_with(|| (h.clone(), Vec::new())).1.push((*id, t.clone()));
            }
        }
        groups.into_iter().map(|((owner, _), (h, toks))| (owner, h, toks)).collect()
    }

    fn issue_tx(&mut self, to: usize, amount: u64, foreign: bool) -> Transaction {
        let n = self.next_serial();
        let mut token = std_token(&self.holders[to], tiyn(amount));
        let issuer = if foreign {
            token.currency = xcb();
            key("FOREIGN-CB")
        } else {
            self.w.nbk.clone()
        };
        let body = self.w.body(
            vec![],
            vec![token],
            Command::Issue { cbs_reference: CbsRef::new(format!("CBS-{n}")).unwrap() },
        );
        self.w.signed(body, &[&issuer])
    }

    /// Standard transfer of `picked` tokens of `payer` to `recipients`.
    fn transfer_tx(
        &self,
        payer: &SecretKey,
        picked: &[(TokenId, Token)],
        recipients: &[(Address, u16)],
        keep: u16,
    ) -> Transaction {
        let inputs: Vec<TokenId> = picked.iter().map(|(i, _)| *i).collect();
        let toks: Vec<Token> = picked.iter().map(|(_, t)| t.clone()).collect();
        let mut weights: Vec<u16> = recipients.iter().map(|(_, w)| *w).collect();
        weights.push(keep);
        let mut outputs = Vec::new();
        for (currency, amount) in per_currency(&toks) {
            let shares = split(amount as u64, &weights);
            for (j, share) in shares.into_iter().enumerate() {
                if share == 0 {
                    continue;
                }
                let owner = recipients.get(j).map(|(a, _)| *a).unwrap_or(addr(payer));
                let mut t = Token::standard(currency, tiyn(share), owner, node("STB1"));
                t.currency = currency;
                outputs.push(t);
            }
        }
        self.w.signed(self.w.body(inputs, outputs, Command::Transfer), &[payer])
    }

    /// The honest transaction an operation makes (applying any preparatory
    /// step, such as the transfer to NBK before a redemption), or `None` if
    /// the world does not allow it now.
    fn prepare(&mut self, op: &Op) -> Option<Transaction> {
        let std_dt = |t: &Token| t.is_standard() && t.currency == Currency::DT;
        match op {
            Op::Issue { to, tiyn, foreign } => Some(self.issue_tx(to.index(self.holders.len()), *tiyn, *foreign)),
            Op::Transfer { payer, picks, recipients, keep } => {
                let payer = self.holders[payer.index(self.holders.len())].clone();
                let mine = self.owned(addr(&payer), Token::is_standard);
                if mine.is_empty() {
                    return None;
                }
                let picked = pick(&mine, *picks, 12);
                let recipients: Vec<(Address, u16)> =
                    recipients.iter().map(|(i, w)| (addr(&self.parties[i.index(self.parties.len())]), *w)).collect();
                Some(self.transfer_tx(&payer, &picked, &recipients, *keep))
            }
            Op::Merge { holder } => {
                let holder = self.holders[holder.index(self.holders.len())].clone();
                let mine: Vec<_> = self.owned(addr(&holder), std_dt).into_iter().take(16).collect();
                if mine.len() < 2 {
                    return None;
                }
                Some(self.transfer_tx(&holder, &mine, &[], 1))
            }
            Op::Redeem { holder, give, burn } => {
                let holder = self.holders[holder.index(self.holders.len())].clone();
                let mine: Vec<_> = self.owned(addr(&holder), std_dt).into_iter().take(8).collect();
                let have: u64 = mine.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let to_nbk = part(have, *give);
                if to_nbk == 0 {
                    return None;
                }
                let nbk = self.w.nbk.clone();
                let mut outputs = vec![std_token(&nbk, tiyn(to_nbk))];
                if have > to_nbk {
                    outputs.push(std_token(&holder, tiyn(have - to_nbk)));
                }
                let inputs = mine.iter().map(|(i, _)| *i).collect();
                let tx = self.w.signed(self.w.body(inputs, outputs, Command::Transfer), &[&holder]);
                let outs = self.submit_honest(&tx).ok()?;
                let burned = part(to_nbk, *burn).max(1);
                let change: Vec<Token> =
                    if to_nbk > burned { vec![std_token(&nbk, tiyn(to_nbk - burned))] } else { vec![] };
                let n = self.next_serial();
                let body = self.w.body(
                    vec![outs[0]],
                    change,
                    Command::Redeem { cbs_reference: CbsRef::new(format!("RED-{n}")).unwrap() },
                );
                Some(self.w.signed(body, &[&nbk]))
            }
            Op::Hold { holder, recipient, picks, part: p, recurring, extra_minutes } => {
                let hi = holder.index(self.holders.len());
                let mut ri = recipient.index(self.holders.len());
                if ri == hi {
                    ri = (ri + 1) % self.holders.len();
                }
                let (holder, recipient) = (self.holders[hi].clone(), self.holders[ri].clone());
                let mine = self.owned(addr(&holder), std_dt);
                if mine.is_empty() {
                    return None;
                }
                let picked = pick(&mine, *picks, 8);
                let have: u64 = picked.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let amount = part(have, *p).max(1);
                let n = self.next_serial();
                let event = EventId::new(format!("EV-{n}")).unwrap();
                let kind = if *recurring { HoldKind::Recurring } else { HoldKind::Single };
                let valid_until = self.w.now.plus_millis(HOUR_MS + extra_minutes * 60_000);
                let hold = Hold {
                    event: event.clone(),
                    recipient: addr(&recipient),
                    recipient_node: node("STB2"),
                    valid_until,
                    kind,
                };
                let mut outputs = vec![with_encumbrance(std_token(&holder, tiyn(amount)), Encumbrance::Hold(hold))];
                if have > amount {
                    outputs.push(std_token(&holder, tiyn(have - amount)));
                }
                let body = self.w.body(
                    picked.iter().map(|(i, _)| *i).collect(),
                    outputs,
                    Command::Hold { event: event.clone() },
                );
                let tx = self.w.signed(body, &[&holder]);
                Some(self.w.attested(
                    tx,
                    Statement::HoldConfirmed {
                        event,
                        sender: addr(&holder),
                        recipient: addr(&recipient),
                        amount: tiyn(amount),
                        valid_until,
                        kind,
                    },
                ))
            }
            Op::Release { which, part: p } => {
                let groups = self.held_groups();
                if groups.is_empty() {
                    return None;
                }
                let (owner, hold, toks) = groups[which.index(groups.len())].clone();
                if self.w.now > hold.valid_until {
                    return None;
                }
                let toks: Vec<_> = toks.into_iter().take(8).collect();
                let held: u64 = toks.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let amount = part(held, *p).max(1);
                let mut outputs =
                    vec![Token::standard(Currency::DT, tiyn(amount), hold.recipient, hold.recipient_node.clone())];
                if held > amount {
                    let mut back = Token::standard(Currency::DT, tiyn(held - amount), owner, node("STB1"));
                    if hold.kind == HoldKind::Recurring {
                        back.encumbrance = Some(Encumbrance::Hold(hold.clone()));
                    }
                    outputs.push(back);
                }
                let mut body = self.w.body(
                    toks.iter().map(|(i, _)| *i).collect(),
                    outputs,
                    Command::Release { event: hold.event.clone() },
                );
                body.window.not_after = body.window.not_after.min(hold.valid_until);
                let tx = Transaction::unsigned(body);
                Some(self.w.attested(tx, Statement::EventOccurred { event: hold.event, amount: tiyn(amount) }))
            }
            Op::Expire { which } | Op::Cancel { which } => {
                let groups = self.held_groups();
                if groups.is_empty() {
                    return None;
                }
                let (owner, hold, toks) = groups[which.index(groups.len())].clone();
                let toks: Vec<_> = toks.into_iter().take(8).collect();
                let held: u64 = toks.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let inputs = toks.iter().map(|(i, _)| *i).collect();
                let outputs = split(held, &[1, 2])
                    .into_iter()
                    .filter(|a| *a > 0)
                    .map(|a| Token::standard(Currency::DT, tiyn(a), owner, node("STB1")))
                    .collect();
                if matches!(op, Op::Expire { .. }) {
                    if self.w.now <= hold.valid_until {
                        self.w.now = hold.valid_until.plus_millis(1);
                    }
                    Some(Transaction::unsigned(self.w.body(inputs, outputs, Command::Expire { event: hold.event })))
                } else {
                    let tx = Transaction::unsigned(self.w.body(
                        inputs,
                        outputs,
                        Command::CancelHold { event: hold.event.clone() },
                    ));
                    Some(self.w.attested(tx, Statement::EventCancelled { event: hold.event }))
                }
            }
            Op::Tick { .. } | Op::Replay { .. } | Op::Attack { .. } => None,
            Op::PayInvoice { buyer, seller, net, vat } => {
                let bi = buyer.index(self.holders.len());
                let mut si = seller.index(self.holders.len());
                if si == bi {
                    si = (si + 1) % self.holders.len();
                }
                let (buyer, seller) = (self.holders[bi].clone(), self.holders[si].clone());
                let vats: Vec<_> =
                    self.owned(addr(&buyer), |t| is_vat(t) && t.currency == Currency::DT).into_iter().take(6).collect();
                let stds: Vec<_> = self.owned(addr(&buyer), std_dt).into_iter().take(8).collect();
                let v: u64 = vats.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let s: u64 = stds.iter().map(|(_, t)| t.amount.tiyn()).sum();
                let vat_amount = part(v + s / 5, *vat);
                let shortfall = vat_amount.saturating_sub(v);
                if shortfall > s {
                    return None;
                }
                let net_amount = part(s - shortfall, *net);
                let mut inputs: Vec<TokenId> = vats.iter().map(|(i, _)| *i).collect();
                let need = net_amount + shortfall;
                let mut std_in = 0u64;
                for (i, t) in &stds {
                    if std_in >= need && need > 0 {
                        break;
                    }
                    inputs.push(*i);
                    std_in += t.amount.tiyn();
                }
                let mut outputs = Vec::new();
                if net_amount > 0 {
                    outputs.push(std_token(&seller, tiyn(net_amount)));
                }
                if vat_amount > 0 {
                    outputs.push(with_marking(std_token(&seller, tiyn(vat_amount)), Marking::Vat));
                }
                if v > vat_amount {
                    outputs.push(with_marking(std_token(&buyer, tiyn(v - vat_amount)), Marking::Vat));
                }
                if std_in > need {
                    outputs.push(std_token(&buyer, tiyn(std_in - need)));
                }
                if inputs.is_empty() || outputs.is_empty() {
                    return None;
                }
                let n = self.next_serial();
                let invoice = InvoiceId::new(format!("EI-{n}")).unwrap();
                let body = self.w.body(inputs, outputs, Command::PayInvoice { invoice: invoice.clone() });
                let tx = self.w.signed(body, &[&buyer]);
                Some(self.w.attested(
                    tx,
                    Statement::Invoice {
                        invoice,
                        seller: addr(&seller),
                        buyer: addr(&buyer),
                        net: tiyn(net_amount),
                        vat: tiyn(vat_amount),
                    },
                ))
            }
            Op::PayVat { holder, part: p } => {
                let holder = self.holders[holder.index(self.holders.len())].clone();
                let vats: Vec<_> = self.owned(addr(&holder), is_vat).into_iter().take(8).collect();
                let v: u64 = vats.iter().map(|(_, t)| t.amount.tiyn()).sum();
                if v == 0 {
                    return None;
                }
                let pay = part(v, *p).max(1);
                let tax = self.w.tax.clone();
                let mut outputs = vec![std_token(&tax, tiyn(pay))];
                if v > pay {
                    outputs.push(with_marking(std_token(&holder, tiyn(v - pay)), Marking::Vat));
                }
                let body = self.w.body(vats.iter().map(|(i, _)| *i).collect(), outputs, Command::PayVat);
                Some(self.w.signed(body, &[&holder]))
            }
        }
    }

    /// Property 5 on every transaction submitted: the same answer twice, and
    /// an id and answer that survive a borsh round trip.
    fn check_determinism(&self, tx: &Transaction) -> Result<(), String> {
        let first = self.w.check(tx);
        let second = self.w.check(tx);
        if first != second {
            return Err(format!("validation not deterministic: {first:?} then {second:?}"));
        }
        let bytes = dtenge_types::encoding::encode(tx);
        let decoded = decode_transaction(&bytes).map_err(|e| format!("own encoding does not decode: {e}"))?;
        if decoded != *tx || decoded.id() != tx.id() {
            return Err("round trip changed the transaction or its id".into());
        }
        if self.w.check(&decoded) != first {
            return Err("decoded transaction validates differently".into());
        }
        if Transaction::unsigned(tx.body.clone()).id() != tx.id() {
            return Err("id depends on signatures or attestations".into());
        }
        // Split check/verify agrees with validate.
        let split = dtenge_ledger::check(tx, &self.w.resolve(tx), &self.w.ctx())
            .and_then(|c| dtenge_ledger::verify(&c, &Ed25519).map(|()| c.id));
        if split != first {
            return Err(format!("check+verify {split:?} differs from validate {first:?}"));
        }
        // A flipped byte either does not decode or decodes canonically.
        if !bytes.is_empty() {
            let pos = usize::from(tx.id().0.as_bytes()[0]) * 131 % bytes.len();
            let mut flipped = bytes.clone();
            flipped[pos] ^= 1 << (tx.id().0.as_bytes()[1] % 8);
            if let Ok(other) = decode_transaction(&flipped)
                && dtenge_types::encoding::encode(&other) != flipped
            {
                return Err("a mutated encoding decoded non-canonically".into());
            }
        }
        Ok(())
    }

    /// Validates and applies through the reference book, checking the model
    /// on acceptance and the world's invariants afterwards.
    fn submit(&mut self, tx: &Transaction) -> Result<Result<Vec<TokenId>, Rejection>, String> {
        if self.determinism {
            self.check_determinism(tx)?;
        }
        let inputs = self.w.resolve(tx);
        let result = self.w.apply(tx);
        if result.is_ok() {
            check_accepted(&self.w.params, tx, &inputs).map_err(|e| format!("accepted but {e}:\n{tx:#?}"))?;
            if !matches!(tx.body.command, Command::Issue { .. }) {
                self.applied.push(tx.clone());
            }
        }
        self.invariants()?;
        Ok(result)
    }

    fn submit_honest(&mut self, tx: &Transaction) -> Result<Vec<TokenId>, String> {
        match self.submit(tx)? {
            Ok(ids) => Ok(ids),
            Err(r) => Err(format!("honest {} rejected: {r}\n{tx:#?}", tx.body.command.name())),
        }
    }

    fn invariants(&self) -> Result<(), String> {
        for currency in [Currency::DT, xcb()] {
            let issued = self.w.issued.get(&currency).copied().unwrap_or(0);
            let redeemed = self.w.redeemed.get(&currency).copied().unwrap_or(0);
            let supply = self.w.supply(currency);
            if supply + redeemed != issued {
                return Err(format!("{currency}: supply {supply} != issued {issued} - redeemed {redeemed}"));
            }
        }
        if let Some(id) = self.w.book.keys().find(|id| self.w.spent.contains_key(id)) {
            return Err(format!("{id:?} is both unspent and spent"));
        }
        if let Some((id, _)) = self.w.book.iter().find(|(_, t)| t.amount.is_zero()) {
            return Err(format!("{id:?} has zero amount"));
        }
        Ok(())
    }

    fn mutate(&self, tx: &mut Transaction, m: &Mutation, resign: bool) {
        let mut outputs = tx.body.outputs.as_slice().to_vec();
        let mut inputs = tx.body.inputs.as_slice().to_vec();
        let mut victims = self.parties.clone();
        victims.push(self.mallory.clone());
        match m {
            Mutation::OutputOwner { output, to } if !outputs.is_empty() => {
                let i = output.index(outputs.len());
                outputs[i].owner = addr(&victims[to.index(victims.len())]);
            }
            Mutation::OutputAmount { output, up, delta } if !outputs.is_empty() => {
                let i = output.index(outputs.len());
                let a = outputs[i].amount.tiyn();
                outputs[i].amount = tiyn(if *up { a + delta } else { a.saturating_sub(*delta).max(1) });
            }
            Mutation::StripOutput { output } if !outputs.is_empty() => {
                let i = output.index(outputs.len());
                outputs[i].marking = None;
                outputs[i].encumbrance = None;
            }
            Mutation::AddOutput { to, tiyn: n } => {
                outputs.push(std_token(&victims[to.index(victims.len())], tiyn(*n)));
            }
            Mutation::ReuseSpent { input, spent } if !self.w.spent.is_empty() => {
                let spent_id = *self.w.spent.keys().nth(spent.index(self.w.spent.len())).unwrap();
                if inputs.is_empty() {
                    inputs.push(spent_id);
                } else {
                    let i = input.index(inputs.len());
                    inputs[i] = spent_id;
                }
            }
            Mutation::DuplicateInput { input } if !inputs.is_empty() => {
                let i = input.index(inputs.len());
                inputs.push(inputs[i]);
            }
            Mutation::DropSignature { sig } if !tx.signatures.is_empty() => {
                let mut sigs = tx.signatures.as_slice().to_vec();
                sigs.remove(sig.index(sigs.len()));
                tx.signatures = sigs.try_into().unwrap();
            }
            Mutation::DropAttestation => tx.attestations = BoundedVec::empty(),
            Mutation::ShiftWindow { back, minutes } => {
                let d = minutes * 60_000;
                let w = &mut tx.body.window;
                if *back {
                    w.not_before = Timestamp(w.not_before.0.saturating_sub(d));
                    w.not_after = Timestamp(w.not_after.0.saturating_sub(d));
                } else {
                    w.not_before = w.not_before.plus_millis(d);
                    w.not_after = w.not_after.plus_millis(d);
                }
            }
            _ => {}
        }
        tx.body.outputs = outputs.try_into().unwrap();
        tx.body.inputs = inputs.try_into().unwrap();
        if resign {
            // The strongest attacker: every input owner colludes and re-signs
            // the mutated body; only the oracle's key stays out of reach.
            let owners: BTreeSet<Address> =
                tx.body.inputs.iter().filter_map(|id| self.w.book.get(id).map(|t| t.owner)).collect();
            let mut fresh = Transaction {
                body: tx.body.clone(),
                attestations: tx.attestations.clone(),
                signatures: BoundedVec::empty(),
            };
            for o in owners {
                if let Some(k) = self.keys.get(&o) {
                    fresh.sign(k).unwrap();
                }
            }
            *tx = fresh;
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Tick { minutes } => {
                self.w.now = self.w.now.plus_millis(minutes * 60_000);
            }
            Op::Replay { which } => {
                if self.applied.is_empty() {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                let tx = self.applied[which.index(self.applied.len())].clone();
                if let Ok(ids) = self.submit(&tx)? {
                    return Err(format!("replayed transaction accepted again: {ids:?}\n{tx:#?}"));
                }
                self.stats.replays += 1;
            }
            Op::Attack { base, mutation, resign } => {
                let Some(mut tx) = self.prepare(base) else {
                    self.stats.skipped += 1;
                    return Ok(());
                };
                self.mutate(&mut tx, mutation, *resign);
                match self.submit(&tx)? {
                    Ok(_) => self.stats.attacks_accepted += 1,
                    Err(_) => self.stats.attacks_rejected += 1,
                }
            }
            honest => {
                let Some(tx) = self.prepare(honest) else {
                    self.stats.skipped += 1;
                    return Ok(());
                };
                self.submit_honest(&tx)?;
                self.stats.honest += 1;
            }
        }
        Ok(())
    }
}

fn pick<T: Clone>(items: &[T], mask: u64, max: usize) -> Vec<T> {
    let mut v: Vec<T> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| (mask >> (i % 64)) & 1 == 1)
        .map(|(_, x)| x.clone())
        .take(max)
        .collect();
    if v.is_empty()
        && let Some(first) = items.first()
    {
        v.push(first.clone());
    }
    v
}

fn run_sequences(cases: u32, max_ops: usize, determinism: bool) -> SeqStats {
    let totals = RefCell::new(SeqStats::default());
    run_property(cases, prop::collection::vec(op(), 1..=max_ops), |ops| {
        let mut sim = Sim::new(determinism);
        for (i, op) in ops.iter().enumerate() {
            sim.step(op).map_err(|e| fail(format!("step {i} ({op:?}): {e}")))?;
        }
        let mut t = totals.borrow_mut();
        t.cases += 1;
        t.honest += sim.stats.honest;
        t.skipped += sim.stats.skipped;
        t.attacks_accepted += sim.stats.attacks_accepted;
        t.attacks_rejected += sim.stats.attacks_rejected;
        t.replays += sim.stats.replays;
        Ok(())
    });
    totals.into_inner()
}

#[test]
fn random_sequences_of_honest_and_adversarial_transactions_conserve_supply_and_never_double_spend() {
    let stats = run_sequences(512, 40, false);
    eprintln!("property 1: {stats:?}");
    assert!(stats.honest > stats.cases * 5, "too few honest steps: {stats:?}");
    assert!(stats.attacks_rejected > stats.cases, "attacks were not exercised: {stats:?}");
    assert!(stats.replays > 0, "replays were not exercised: {stats:?}");
}

// ───────────────────── property 2: marked value never leaves its rules ─────────────────────

const DEPTH: usize = 2;

struct Marked {
    w: World,
    rule: MarkingRule,
    gc: SecretKey,
    sub1: SecretKey,
    /// Candidate owners: gc, sub1, sub2, supplier, outsider, ga.
    people: Vec<SecretKey>,
}

fn marked_world() -> Marked {
    let w = World::new();
    let (ga, gc, sub1, sub2, supplier, outsider) =
        (key("GA"), key("GC"), key("SUB1"), key("SUB2"), key("SUPPLIER"), key("OUTSIDER"));
    let level = |ks: &[&SecretKey], limit: u64| MarkingLevel {
        recipients: ks.iter().map(|k| addr(k)).collect::<Vec<_>>().try_into().unwrap(),
        limit: tiyn(limit),
    };
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-2024-ROADS").unwrap(),
        initiator: addr(&ga),
        initiator_node: node("TREASURY"),
        levels: vec![level(&[&sub1, &sub2], 6_000), level(&[&supplier], 3_000)].try_into().unwrap(),
    };
    Marked { w, rule, gc: gc.clone(), sub1: sub1.clone(), people: vec![gc, sub1, sub2, supplier, outsider, ga] }
}

fn address_marked(owner: Address, amount: u64, rule: &MarkingRule, level: u8, allowances: &[u64]) -> Token {
    let mut t = Token::standard(Currency::DT, tiyn(amount), owner, node("STB1"));
    t.marking = Some(Marking::Address(AddressMarking {
        rule: rule.clone(),
        level,
        allowances: allowances.iter().map(|a| tiyn(*a)).collect::<Vec<_>>().try_into().unwrap(),
    }));
    t
}

#[derive(Debug, Clone)]
struct HonestMarked {
    pay: u16,
    recipients: Vec<(Index, u16)>,
    deep_weights: Vec<u16>,
    split_change: bool,
}

#[derive(Debug, Clone)]
enum MarkedPerturbation {
    Owner { output: Index, to: Index },
    ShiftAmount { from: Index, to: Index, delta: u64 },
    Allowance { output: Index, slot: Index, up: bool, delta: u64 },
    ShiftAllowance { from: Index, to: Index, slot: Index, delta: u64 },
    Unmark { output: Index },
    MarkAtNextLevel { output: Index },
    Level { output: Index, level: u8 },
    Encumber { output: Index },
    OtherRule { output: Index },
}

#[derive(Debug, Clone)]
struct RandomOut {
    owner: Index,
    kind: u8,
    tiyn: u64,
    allowances: Vec<u64>,
}

#[derive(Debug, Clone)]
enum MarkedOutputs {
    Honest(HonestMarked),
    Perturbed(HonestMarked, MarkedPerturbation),
    Random(Vec<RandomOut>),
}

#[derive(Debug, Clone)]
struct MarkedCase {
    level: u8,
    inputs: Vec<(u64, Vec<u64>)>,
    /// 0: none; 1: an input at another level; 2: an input of another owner;
    /// 3: a standard input; 4: an input under another rule.
    odd_input: u8,
    outputs: MarkedOutputs,
}

fn honest_marked() -> impl Strategy<Value = HonestMarked> {
    (
        0u16..=1000,
        prop::collection::vec((any::<Index>(), 1u16..=100), 1..=2),
        prop::collection::vec(0u16..=100, 4),
        any::<bool>(),
    )
        .prop_map(|(pay, recipients, deep_weights, split_change)| HonestMarked {
            pay,
            recipients,
            deep_weights,
            split_change,
        })
}

fn marked_perturbation() -> impl Strategy<Value = MarkedPerturbation> {
    let i = any::<Index>;
    prop_oneof![
        (i(), i()).prop_map(|(output, to)| MarkedPerturbation::Owner { output, to }),
        (i(), i(), 1u64..=500).prop_map(|(from, to, delta)| MarkedPerturbation::ShiftAmount { from, to, delta }),
        (i(), i(), any::<bool>(), 1u64..=500).prop_map(|(output, slot, up, delta)| MarkedPerturbation::Allowance {
            output,
            slot,
            up,
            delta
        }),
        (i(), i(), i(), 1u64..=500).prop_map(|(from, to, slot, delta)| MarkedPerturbation::ShiftAllowance {
            from,
            to,
            slot,
            delta
        }),
        i().prop_map(|output| MarkedPerturbation::Unmark { output }),
        i().prop_map(|output| MarkedPerturbation::MarkAtNextLevel { output }),
        (i(), 0u8..=3).prop_map(|(output, level)| MarkedPerturbation::Level { output, level }),
        i().prop_map(|output| MarkedPerturbation::Encumber { output }),
        i().prop_map(|output| MarkedPerturbation::OtherRule { output }),
    ]
}

fn marked_case() -> impl Strategy<Value = MarkedCase> {
    (0u8..DEPTH as u8).prop_flat_map(|level| {
        let n = DEPTH - usize::from(level);
        let inputs = prop::collection::vec((1u64..=2_000, prop::collection::vec(0u64..=2_000, n)), 1..=3);
        let odd = prop_oneof![8 => Just(0u8), 1 => 1u8..=4];
        let random_out = (any::<Index>(), 0u8..7, 1u64..=2_000, prop::collection::vec(0u64..=2_000, 0..=3))
            .prop_map(|(owner, kind, tiyn, allowances)| RandomOut { owner, kind, tiyn, allowances });
        let outputs = prop_oneof![
            4 => honest_marked().prop_map(MarkedOutputs::Honest),
            4 => (honest_marked(), marked_perturbation()).prop_map(|(h, p)| MarkedOutputs::Perturbed(h, p)),
            2 => prop::collection::vec(random_out, 1..=4).prop_map(MarkedOutputs::Random),
        ];
        (Just(level), inputs, odd, outputs).prop_map(|(level, inputs, odd_input, outputs)| MarkedCase {
            level,
            inputs,
            odd_input,
            outputs,
        })
    })
}

/// Outputs an honest holder at `level` would make.
fn honest_marked_outputs(
    m: &Marked,
    holder: Address,
    level: u8,
    total_in: u64,
    avail: &[u64],
    h: &HonestMarked,
) -> Vec<Token> {
    let l = usize::from(level);
    let last = l + 1 == DEPTH;
    let mut paid = part(total_in.min(avail[0]), h.pay);
    if paid == total_in && avail[0] > paid {
        // No change token could carry the unused allowance: keep one tiyn.
        paid -= 1;
    }
    let allowed = &m.rule.levels[l].recipients;
    let recipients: Vec<Address> = h.recipients.iter().map(|(i, _)| allowed[i.index(allowed.len())]).collect();
    let weights: Vec<u16> = h.recipients.iter().map(|(_, w)| *w).collect();
    let pay_shares: Vec<(Address, u64)> =
        recipients.into_iter().zip(split(paid, &weights)).filter(|(_, a)| *a > 0).collect();
    let change = total_in - paid;
    let change_parts: Vec<u64> = if h.split_change && change >= 2 {
        split(change, &[1, 1])
    } else if change > 0 {
        vec![change]
    } else {
        vec![]
    };
    // Deeper allowances: split among change tokens and payments.
    let holders_of_deep = change_parts.len() + if last { 0 } else { pay_shares.len() };
    let mut deep: Vec<Vec<u64>> = vec![Vec::new(); holders_of_deep];
    for a in avail.iter().skip(1) {
        let w: Vec<u16> = (0..holders_of_deep).map(|k| h.deep_weights[k % h.deep_weights.len()]).collect();
        for (k, s) in split(*a, &w).into_iter().enumerate() {
            deep[k].push(s);
        }
    }
    let mut outputs = Vec::new();
    let left0 = split(avail[0] - paid, &vec![1; change_parts.len().max(1)]);
    for (k, amount) in change_parts.iter().enumerate() {
        let mut allowances = vec![left0[k]];
        allowances.extend(&deep[k]);
        outputs.push(address_marked(holder, *amount, &m.rule, level, &allowances));
    }
    for (k, (to, amount)) in pay_shares.iter().enumerate() {
        if last {
            outputs.push(Token::standard(Currency::DT, tiyn(*amount), *to, node("STB1")));
        } else {
            outputs.push(address_marked(*to, *amount, &m.rule, level + 1, &deep[change_parts.len() + k]));
        }
    }
    outputs
}

fn allowances_of(t: &mut Token) -> Option<&mut BoundedVec<Amount, MAX_MARKING_DEPTH>> {
    match &mut t.marking {
        Some(Marking::Address(a)) => Some(&mut a.allowances),
        _ => None,
    }
}

fn perturb_marked(m: &Marked, outputs: &mut [Token], p: &MarkedPerturbation) {
    if outputs.is_empty() {
        return;
    }
    let n = outputs.len();
    let other_rule = {
        let mut r = m.rule.clone();
        r.reference = MarkingRef::new("OTHER").unwrap();
        r
    };
    match p {
        MarkedPerturbation::Owner { output, to } => {
            outputs[output.index(n)].owner = addr(&m.people[to.index(m.people.len())]);
        }
        MarkedPerturbation::ShiftAmount { from, to, delta } => {
            let (f, t) = (from.index(n), to.index(n));
            let d = (*delta).min(outputs[f].amount.tiyn().saturating_sub(1));
            outputs[f].amount = tiyn(outputs[f].amount.tiyn() - d);
            outputs[t].amount = tiyn(outputs[t].amount.tiyn() + d);
        }
        MarkedPerturbation::Allowance { output, slot, up, delta } => {
            if let Some(a) = allowances_of(&mut outputs[output.index(n)])
                && !a.is_empty()
            {
                let mut v = a.as_slice().to_vec();
                let s = slot.index(v.len());
                let x = v[s].tiyn();
                v[s] = tiyn(if *up { x + delta } else { x.saturating_sub(*delta) });
                *a = v.try_into().unwrap();
            }
        }
        MarkedPerturbation::ShiftAllowance { from, to, slot, delta } => {
            // Moves allowance of the deepest levels between two outputs,
            // aligned from the deepest level (index from the end).
            let (f, t) = (from.index(n), to.index(n));
            let (fa, ta) = (
                allowances_of(&mut outputs[f].clone()).map(|a| a.as_slice().to_vec()),
                allowances_of(&mut outputs[t].clone()).map(|a| a.as_slice().to_vec()),
            );
            if let (Some(mut fv), Some(mut tv)) = (fa, ta)
                && !fv.is_empty()
                && !tv.is_empty()
                && f != t
            {
                let depth = fv.len().min(tv.len());
                let back = slot.index(depth);
                let (fi, ti) = (fv.len() - 1 - back, tv.len() - 1 - back);
                let d = (*delta).min(fv[fi].tiyn());
                fv[fi] = tiyn(fv[fi].tiyn() - d);
                tv[ti] = tiyn(tv[ti].tiyn() + d);
                *allowances_of(&mut outputs[f]).unwrap() = fv.try_into().unwrap();
                *allowances_of(&mut outputs[t]).unwrap() = tv.try_into().unwrap();
            }
        }
        MarkedPerturbation::Unmark { output } => outputs[output.index(n)].marking = None,
        MarkedPerturbation::MarkAtNextLevel { output } => {
            let t = &mut outputs[output.index(n)];
            let level = match &t.marking {
                Some(Marking::Address(a)) => a.level + 1,
                _ => DEPTH as u8,
            };
            let len = DEPTH.saturating_sub(usize::from(level));
            *t = address_marked(t.owner, t.amount.tiyn(), &m.rule, level, &vec![0; len]);
        }
        MarkedPerturbation::Level { output, level } => {
            if let Some(Marking::Address(a)) = &mut outputs[output.index(n)].marking {
                a.level = *level;
            }
        }
        MarkedPerturbation::Encumber { output } => {
            let t = &mut outputs[output.index(n)];
            t.encumbrance = Some(Encumbrance::Hold(Hold {
                event: EventId::new("EV-X").unwrap(),
                recipient: addr(&m.people[4]),
                recipient_node: node("STB1"),
                valid_until: Timestamp(u64::MAX),
                kind: HoldKind::Single,
            }));
        }
        MarkedPerturbation::OtherRule { output } => {
            if let Some(Marking::Address(a)) = &mut outputs[output.index(n)].marking {
                a.rule = other_rule;
            }
        }
    }
}

fn random_marked_outputs(m: &Marked, level: u8, total_in: u64, outs: &[RandomOut]) -> Vec<Token> {
    let other_rule = {
        let mut r = m.rule.clone();
        r.reference = MarkingRef::new("OTHER").unwrap();
        r
    };
    let mut result = Vec::new();
    let mut given = 0u64;
    for (k, o) in outs.iter().enumerate() {
        // The last output takes what is left, so value is often conserved.
        let amount = if k + 1 == outs.len() && total_in > given { total_in - given } else { o.tiyn };
        given += amount;
        let owner = addr(&m.people[o.owner.index(m.people.len())]);
        let t = match o.kind {
            0 => address_marked(owner, amount, &m.rule, level, &o.allowances),
            1 => address_marked(owner, amount, &m.rule, level + 1, &o.allowances),
            2 => Token::standard(Currency::DT, tiyn(amount), owner, node("STB1")),
            3 => address_marked(owner, amount, &m.rule, level + 2, &o.allowances),
            4 => with_marking(Token::standard(Currency::DT, tiyn(amount), owner, node("STB1")), Marking::Vat),
            5 => address_marked(owner, amount, &other_rule, level + 1, &o.allowances),
            _ => with_encumbrance(
                Token::standard(Currency::DT, tiyn(amount), owner, node("STB1")),
                Encumbrance::Mandate(MandateTerms {
                    mandate: MandateId::new("M-1").unwrap(),
                    grantee: addr(&m.people[4]),
                    valid_until: Timestamp(u64::MAX),
                }),
            ),
        };
        result.push(t);
    }
    result
}

/// SPEC §4.2.1, checked on an accepted transfer of address-marked inputs.
fn check_marked_acceptance(rule: &MarkingRule, inputs: &[Token], outputs: &[Token]) -> Result<(), String> {
    let Some(Marking::Address(first)) = &inputs[0].marking else { return Err("first input not address-marked".into()) };
    let holder = inputs[0].owner;
    let level = usize::from(first.level);
    let n = DEPTH - level;
    let mut avail = vec![0u128; n];
    for (i, t) in inputs.iter().enumerate() {
        match &t.marking {
            Some(Marking::Address(a))
                if a.rule == *rule && a.level == first.level && t.owner == holder && t.encumbrance.is_none() =>
            {
                if a.allowances.len() != n {
                    return Err(format!("input {i} has a malformed allowance vector"));
                }
                for (j, x) in a.allowances.iter().enumerate() {
                    avail[j] += u128::from(x.tiyn());
                }
            }
            _ => return Err(format!("input {i} mixes markings, levels or owners")),
        }
    }
    let next = level + 1;
    let last = next == DEPTH;
    let allowed = &rule.levels[level].recipients;
    let mut carried = vec![0u128; n];
    let mut paid = 0u128;
    for (i, o) in outputs.iter().enumerate() {
        if o.encumbrance.is_some() {
            return Err(format!("output {i} is encumbered"));
        }
        let amount = u128::from(o.amount.tiyn());
        match &o.marking {
            Some(Marking::Address(a)) if a.rule == *rule && usize::from(a.level) == level && o.owner == holder => {
                if a.allowances.len() != n {
                    return Err(format!("change {i} carries {} allowances, want {n}", a.allowances.len()));
                }
                for (j, x) in a.allowances.iter().enumerate() {
                    carried[j] += u128::from(x.tiyn());
                }
            }
            marking => {
                if !allowed.contains(&o.owner) {
                    return Err(format!("output {i} goes to {:?}, not an allowed recipient of level {next}", o.owner));
                }
                match marking {
                    None if last => {}
                    None => return Err(format!("standard output {i} before the last level")),
                    Some(Marking::Address(a)) if !last && a.rule == *rule && usize::from(a.level) == next => {
                        if a.allowances.len() != n - 1 {
                            return Err(format!(
                                "payment {i} carries {} allowances, want {}",
                                a.allowances.len(),
                                n - 1
                            ));
                        }
                        for (j, x) in a.allowances.iter().enumerate() {
                            carried[j + 1] += u128::from(x.tiyn());
                        }
                    }
                    Some(other) => return Err(format!("output {i} has marking {other:?} for level {next}")),
                }
                paid += amount;
            }
        }
    }
    if paid > avail[0] {
        return Err(format!("paid {paid} to level {next}, allowance was {}", avail[0]));
    }
    if carried[0] > avail[0] - paid {
        return Err(format!("level {next} allowance: change carries {}, at most {} - {paid}", carried[0], avail[0]));
    }
    for j in 1..n {
        if carried[j] > avail[j] {
            return Err(format!("level {} allowance: outputs carry {}, inputs had {}", next + j, carried[j], avail[j]));
        }
    }
    conserved(inputs, outputs)
}

#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    by_kind: BTreeMap<&'static str, (usize, usize)>,
}

impl Tally {
    fn record(&mut self, kind: &'static str, accepted: bool) {
        let e = self.by_kind.entry(kind).or_default();
        if accepted {
            self.accepted += 1;
            e.0 += 1;
        } else {
            self.rejected += 1;
            e.1 += 1;
        }
    }

    fn accepted_of(&self, kind: &str) -> usize {
        self.by_kind.get(kind).map(|e| e.0).unwrap_or(0)
    }
}

#[test]
fn marked_value_is_accepted_only_to_allowed_next_level_recipients_and_allowances_never_grow() {
    let tally = RefCell::new(Tally::default());
    run_property(4_000, marked_case(), |case| {
        let m = marked_world();
        let level = case.level;
        let holder_key = if level == 0 { m.gc.clone() } else { m.sub1.clone() };
        let holder = addr(&holder_key);
        let mut inputs: Vec<Token> =
            case.inputs.iter().map(|(a, allow)| address_marked(holder, *a, &m.rule, level, allow)).collect();
        let mut signers = vec![holder_key.clone()];
        match case.odd_input {
            1 => inputs.push(address_marked(
                holder,
                100,
                &m.rule,
                (level + 1) % DEPTH as u8,
                &vec![50; DEPTH - usize::from((level + 1) % DEPTH as u8)],
            )),
            2 => {
                let other = m.people[2].clone();
                inputs.push(address_marked(addr(&other), 100, &m.rule, level, &vec![50; DEPTH - usize::from(level)]));
                signers.push(other);
            }
            3 => inputs.push(Token::standard(Currency::DT, tiyn(100), holder, node("STB1"))),
            4 => {
                let mut r = m.rule.clone();
                r.reference = MarkingRef::new("OTHER").unwrap();
                inputs.push(address_marked(holder, 100, &r, level, &vec![50; DEPTH - usize::from(level)]));
            }
            _ => {}
        }
        let total_in: u64 = inputs.iter().map(|t| t.amount.tiyn()).sum();
        let n = DEPTH - usize::from(level);
        let mut avail = vec![0u64; n];
        for t in &inputs {
            if let Some(Marking::Address(a)) = &t.marking
                && a.level == level
            {
                for (j, x) in a.allowances.iter().enumerate().take(n) {
                    avail[j] += x.tiyn();
                }
            }
        }
        let (kind, outputs) = match &case.outputs {
            MarkedOutputs::Honest(h) => ("honest", honest_marked_outputs(&m, holder, level, total_in, &avail, h)),
            MarkedOutputs::Perturbed(h, p) => {
                let mut o = honest_marked_outputs(&m, holder, level, total_in, &avail, h);
                perturb_marked(&m, &mut o, p);
                ("perturbed", o)
            }
            MarkedOutputs::Random(r) => ("random", random_marked_outputs(&m, level, total_in, r)),
        };
        if outputs.is_empty() {
            return Ok(());
        }
        let ids: Vec<TokenId> = (0..inputs.len()).map(|i| fake_id("marked", i)).collect();
        let body = m.w.body(ids, outputs.clone(), Command::Transfer);
        let keys: Vec<&SecretKey> = signers.iter().collect();
        let tx = sign_all(body, &keys);
        let result = validate(&tx, &inputs, &m.w.ctx(), &Ed25519);
        if kind == "honest" && case.odd_input == 0 {
            prop_assert!(result.is_ok(), "honest marked transfer rejected: {:?}\n{:#?}", result, outputs);
        }
        if result.is_ok() {
            check_marked_acceptance(&m.rule, &inputs, &outputs).map_err(|e| {
                fail(format!(
                    "kernel accepted a transfer breaking §4.2.1: {e}\ninputs {inputs:#?}\noutputs {outputs:#?}"
                ))
            })?;
        }
        tally.borrow_mut().record(kind, result.is_ok());
        Ok(())
    });
    let t = tally.into_inner();
    eprintln!("property 2: {t:?}");
    assert!(t.accepted_of("honest") > 800, "too few accepted honest transfers: {t:?}");
    assert!(t.accepted_of("perturbed") > 40, "perturbations never produced an acceptable variant: {t:?}");
    assert!(t.rejected > 800, "too few rejections: {t:?}");
}

fn fake_id(tag: &str, i: usize) -> TokenId {
    TokenId { tx: TxId(dtenge_crypto::hash(b"props/fake-input", &[tag.as_bytes()])), index: i as u16 }
}

// ───────────────────── property 3: held value ─────────────────────

#[derive(Debug, Clone)]
enum HeldOutputs {
    Honest { release: u16, split_back: bool },
    Perturbed { release: u16, p: HeldPerturbation },
    Random(Vec<(Index, u8, u64)>),
}

#[derive(Debug, Clone)]
enum HeldPerturbation {
    Owner { output: Index, to: Index },
    Standardise { output: Index },
    Hold { output: Index },
    ShiftAmount { from: Index, to: Index, delta: u64 },
    RecipientHost { output: Index },
    OtherTerms { output: Index },
}

#[derive(Debug, Clone)]
struct HeldCase {
    recurring: bool,
    amounts: Vec<u64>,
    /// 0: none; 1: another hold's token; 2: a standard token; 3: same hold, other owner.
    odd_input: u8,
    /// 0: release, 1: expire, 2: cancel.
    command: u8,
    /// 0: honest, 1: none, 2: EventOccurred random amount, 3: EventCancelled,
    /// 4: another event, 5: a key that is not the oracle.
    attestation: u8,
    random_amount: u64,
    start_offset_ms: i64,
    window_len_ms: u64,
    outputs: HeldOutputs,
}

fn held_case() -> impl Strategy<Value = HeldCase> {
    let i = any::<Index>;
    let perturbation = prop_oneof![
        (i(), i()).prop_map(|(output, to)| HeldPerturbation::Owner { output, to }),
        i().prop_map(|output| HeldPerturbation::Standardise { output }),
        i().prop_map(|output| HeldPerturbation::Hold { output }),
        (i(), i(), 1u64..=500).prop_map(|(from, to, delta)| HeldPerturbation::ShiftAmount { from, to, delta }),
        i().prop_map(|output| HeldPerturbation::RecipientHost { output }),
        i().prop_map(|output| HeldPerturbation::OtherTerms { output }),
    ];
    let outputs = prop_oneof![
        4 => (1u16..=1000, any::<bool>()).prop_map(|(release, split_back)| HeldOutputs::Honest { release, split_back }),
        4 => (1u16..=1000, perturbation).prop_map(|(release, p)| HeldOutputs::Perturbed { release, p }),
        2 => prop::collection::vec((i(), 0u8..4, 1u64..=3_000), 1..=3).prop_map(HeldOutputs::Random),
    ];
    let offset = prop_oneof![
        Just(-1i64),
        Just(0i64),
        Just(1i64),
        (-180i64..=180).prop_map(|m| m * 60_000),
        (-3_600_000i64..=3_600_000),
    ];
    let len = prop_oneof![Just(0u64), Just(1u64), 0u64..=7_200_000];
    (
        any::<bool>(),
        prop::collection::vec(1u64..=3_000, 1..=3),
        prop_oneof![8 => Just(0u8), 1 => 1u8..=3],
        0u8..3,
        prop_oneof![6 => Just(0u8), 1 => 1u8..=5],
        1u64..=10_000,
        offset,
        len,
        outputs,
    )
        .prop_map(
            |(
                recurring,
                amounts,
                odd_input,
                command,
                attestation,
                random_amount,
                start_offset_ms,
                window_len_ms,
                outputs,
            )| {
                HeldCase {
                    recurring,
                    amounts,
                    odd_input,
                    command,
                    attestation,
                    random_amount,
                    start_offset_ms,
                    window_len_ms,
                    outputs,
                }
            },
        )
}

#[test]
fn held_value_goes_only_to_the_recipient_as_attested_or_back_to_the_owner_and_expires_only_after_valid_until() {
    let tally = RefCell::new(Tally::default());
    run_property(4_000, held_case(), |case| {
        let w = World::new();
        let (owner, recipient, outsider) = (key("SCHOOL"), key("CANTEEN"), key("OUTSIDER"));
        let valid_until = w.now.plus_millis(10 * HOUR_MS);
        let kind = if case.recurring { HoldKind::Recurring } else { HoldKind::Single };
        let event = EventId::new("MEALS-2025").unwrap();
        let hold =
            Hold { event: event.clone(), recipient: addr(&recipient), recipient_node: node("STB2"), valid_until, kind };
        let held =
            |who: &SecretKey, a: u64, h: &Hold| with_encumbrance(std_token(who, tiyn(a)), Encumbrance::Hold(h.clone()));
        let mut inputs: Vec<Token> = case.amounts.iter().map(|a| held(&owner, *a, &hold)).collect();
        match case.odd_input {
            1 => {
                let mut other = hold.clone();
                other.valid_until = other.valid_until.plus_millis(1);
                inputs.push(held(&owner, 100, &other));
            }
            2 => inputs.push(std_token(&owner, tiyn(100))),
            3 => inputs.push(held(&outsider, 100, &hold)),
            _ => {}
        }
        let total_held: u64 = inputs.iter().map(|t| t.amount.tiyn()).sum();
        let back = |a: u64| -> Token {
            let t = std_token(&owner, tiyn(a));
            if kind == HoldKind::Recurring && case.command == 0 {
                with_encumbrance(t, Encumbrance::Hold(hold.clone()))
            } else {
                t
            }
        };
        let honest = |release: u16, split_back: bool| -> (u64, Vec<Token>) {
            let released = if case.command == 0 { part(total_held, release).max(1) } else { 0 };
            let mut outs = Vec::new();
            if released > 0 {
                outs.push(Token::standard(Currency::DT, tiyn(released), hold.recipient, hold.recipient_node.clone()));
            }
            let rest = total_held - released;
            let parts = if split_back && rest >= 2 { split(rest, &[1, 1]) } else { vec![rest] };
            outs.extend(parts.into_iter().filter(|a| *a > 0).map(back));
            (released, outs)
        };
        let people = [&owner, &recipient, &outsider];
        let (kind_name, released, outputs) = match &case.outputs {
            HeldOutputs::Honest { release, split_back } => {
                let (r, o) = honest(*release, *split_back);
                ("honest", r, o)
            }
            HeldOutputs::Perturbed { release, p } => {
                let (r, mut o) = honest(*release, true);
                let n = o.len();
                match p {
                    HeldPerturbation::Owner { output, to } => o[output.index(n)].owner = addr(people[to.index(3)]),
                    HeldPerturbation::Standardise { output } => o[output.index(n)].encumbrance = None,
                    HeldPerturbation::Hold { output } => {
                        o[output.index(n)].encumbrance = Some(Encumbrance::Hold(hold.clone()))
                    }
                    HeldPerturbation::ShiftAmount { from, to, delta } => {
                        let (f, t) = (from.index(n), to.index(n));
                        let d = (*delta).min(o[f].amount.tiyn() - 1);
                        o[f].amount = tiyn(o[f].amount.tiyn() - d);
                        o[t].amount = tiyn(o[t].amount.tiyn() + d);
                    }
                    HeldPerturbation::RecipientHost { output } => o[output.index(n)].host = node("STB9"),
                    HeldPerturbation::OtherTerms { output } => {
                        let mut h = hold.clone();
                        h.valid_until = h.valid_until.plus_millis(HOUR_MS);
                        o[output.index(n)].encumbrance = Some(Encumbrance::Hold(h));
                    }
                }
                ("perturbed", r, o)
            }
            HeldOutputs::Random(outs) => {
                let mut given = 0u64;
                let mut o = Vec::new();
                for (k, (who, kind, a)) in outs.iter().enumerate() {
                    let a = if k + 1 == outs.len() && total_held > given { total_held - given } else { *a };
                    given += a;
                    let t = std_token(people[who.index(3)], tiyn(a));
                    o.push(match kind {
                        0 => t,
                        1 => with_encumbrance(t, Encumbrance::Hold(hold.clone())),
                        2 => with_marking(t, Marking::Vat),
                        _ => Token { host: hold.recipient_node.clone(), ..t },
                    });
                }
                ("random", part(total_held, 500).max(1), o)
            }
        };
        let command = match case.command {
            0 => Command::Release { event: event.clone() },
            1 => Command::Expire { event: event.clone() },
            _ => Command::CancelHold { event: event.clone() },
        };
        let not_before = Timestamp(valid_until.0.saturating_add_signed(case.start_offset_ms));
        let window = TimeWindow { not_before, not_after: not_before.plus_millis(case.window_len_ms) };
        let now = not_before.plus_millis(case.window_len_ms / 2);
        let ids: Vec<TokenId> = (0..inputs.len()).map(|i| fake_id("held", i)).collect();
        let mut body = w.body(ids, outputs.clone(), command.clone());
        body.window = window;
        let mut tx = Transaction::unsigned(body);
        let honest_statement = match case.command {
            0 => Some(Statement::EventOccurred { event: event.clone(), amount: tiyn(released) }),
            1 => None,
            _ => Some(Statement::EventCancelled { event: event.clone() }),
        };
        let statement = match case.attestation {
            0 => honest_statement,
            1 => None,
            2 => Some(Statement::EventOccurred { event: event.clone(), amount: tiyn(case.random_amount) }),
            3 => Some(Statement::EventCancelled { event: event.clone() }),
            _ => Some(Statement::EventOccurred { event: EventId::new("OTHER").unwrap(), amount: tiyn(released) }),
        };
        if let Some(s) = statement {
            let oracle = if case.attestation == 5 { key("FAKE-ORACLE") } else { w.oracle.clone() };
            tx.attest(&oracle, s).unwrap();
        }
        let ctx = Context { now, params: &w.params };
        let result = validate(&tx, &inputs, &ctx, &Ed25519);
        let in_time = match case.command {
            0 => window.not_after <= valid_until,
            1 => window.not_before > valid_until,
            _ => true,
        };
        if kind_name == "honest" && case.odd_input == 0 && case.attestation == 0 && in_time {
            prop_assert!(result.is_ok(), "honest {} rejected: {:?}\n{:#?}", command.name(), result, tx);
        }
        if result.is_ok() {
            check_held_spend(&w.params, &tx, &inputs).map_err(|e| {
                fail(format!("kernel accepted a spend breaking §4.1: {e}\ninputs {inputs:#?}\n{tx:#?}"))
            })?;
        }
        tally.borrow_mut().record(
            match (case.command, kind_name) {
                (0, "honest") => "release/honest",
                (0, _) => "release/other",
                (1, "honest") => "expire/honest",
                (1, _) => "expire/other",
                (_, "honest") => "cancel/honest",
                _ => "cancel/other",
            },
            result.is_ok(),
        );
        Ok(())
    });
    let t = tally.into_inner();
    eprintln!("property 3: {t:?}");
    for k in ["release/honest", "expire/honest", "cancel/honest"] {
        assert!(t.accepted_of(k) > 80, "too few accepted {k}: {t:?}");
    }
    assert!(t.rejected > 800, "too few rejections: {t:?}");
}

// ───────────────────── property 4: VAT value ─────────────────────

#[derive(Debug, Clone)]
enum VatOutputs {
    Honest,
    Perturbed(VatPerturbation),
    Random(Vec<(Index, bool, u64)>),
}

#[derive(Debug, Clone)]
enum VatPerturbation {
    Owner { output: Index, to: Index },
    ToggleVat { output: Index },
    ShiftAmount { from: Index, to: Index, delta: u64 },
    Statement { field: u8, delta: u64 },
}

#[derive(Debug, Clone)]
struct VatCase {
    vat_inputs: Vec<u64>,
    std_inputs: Vec<u64>,
    /// 0: none; 1: a held VAT token; 2: an address-marked token; 3: another owner's VAT token.
    odd_input: u8,
    /// 0: pay_invoice, 1: pay_vat, 2: transfer.
    command: u8,
    /// Invoice seller: 0 the seller, 1 the tax authority, 2 the buyer, 3 an outsider.
    seller: u8,
    net: u16,
    vat: u16,
    pay: u16,
    /// For transfer attempts: whether the outputs go to the tax authority.
    to_tax: bool,
    outputs: VatOutputs,
}

fn vat_case() -> impl Strategy<Value = VatCase> {
    let i = any::<Index>;
    let perturbation = prop_oneof![
        (i(), i()).prop_map(|(output, to)| VatPerturbation::Owner { output, to }),
        i().prop_map(|output| VatPerturbation::ToggleVat { output }),
        (i(), i(), 1u64..=500).prop_map(|(from, to, delta)| VatPerturbation::ShiftAmount { from, to, delta }),
        (0u8..4, 1u64..=500).prop_map(|(field, delta)| VatPerturbation::Statement { field, delta }),
    ];
    let outputs = prop_oneof![
        4 => Just(VatOutputs::Honest),
        4 => perturbation.prop_map(VatOutputs::Perturbed),
        2 => prop::collection::vec((i(), any::<bool>(), 1u64..=3_000), 1..=4).prop_map(VatOutputs::Random),
    ];
    (
        prop::collection::vec(1u64..=3_000, 0..=3),
        prop::collection::vec(1u64..=3_000, 0..=3),
        prop_oneof![8 => Just(0u8), 1 => 1u8..=3],
        prop_oneof![5 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8)],
        prop_oneof![8 => Just(0u8), 1 => 1u8..=3],
        0u16..=1000,
        0u16..=1000,
        1u16..=1000,
        any::<bool>(),
        outputs,
    )
        .prop_map(|(vat_inputs, std_inputs, odd_input, command, seller, net, vat, pay, to_tax, outputs)| VatCase {
            vat_inputs,
            std_inputs,
            odd_input,
            command,
            seller,
            net,
            vat,
            pay,
            to_tax,
            outputs,
        })
}

#[test]
fn vat_value_never_becomes_standard_except_at_the_tax_authority() {
    let tally = RefCell::new(Tally::default());
    run_property(4_000, vat_case(), |case| {
        let w = World::new();
        let (buyer, seller, outsider) = (key("LE1"), key("LE2"), key("LE9"));
        let tax = w.tax.clone();
        let vat_tok = |who: &SecretKey, a: u64| with_marking(std_token(who, tiyn(a)), Marking::Vat);
        let mut vat_inputs: Vec<Token> = case.vat_inputs.iter().map(|a| vat_tok(&buyer, *a)).collect();
        let mut std_inputs: Vec<Token> = case.std_inputs.iter().map(|a| std_token(&buyer, tiyn(*a))).collect();
        let mut signers = vec![buyer.clone()];
        match case.odd_input {
            1 => vat_inputs.push(with_encumbrance(
                vat_tok(&buyer, 100),
                Encumbrance::Hold(Hold {
                    event: EventId::new("EV").unwrap(),
                    recipient: addr(&outsider),
                    recipient_node: node("STB1"),
                    valid_until: Timestamp(u64::MAX),
                    kind: HoldKind::Single,
                }),
            )),
            2 => {
                let rule = MarkingRule {
                    reference: MarkingRef::new("R").unwrap(),
                    initiator: addr(&outsider),
                    initiator_node: node("TREASURY"),
                    levels: vec![MarkingLevel {
                        recipients: vec![addr(&seller)].try_into().unwrap(),
                        limit: tiyn(100),
                    }]
                    .try_into()
                    .unwrap(),
                };
                std_inputs.push(address_marked(addr(&buyer), 100, &rule, 0, &[100]));
            }
            3 => {
                vat_inputs.push(vat_tok(&outsider, 100));
                signers.push(outsider.clone());
            }
            _ => {}
        }
        let v: u64 = vat_inputs.iter().map(|t| t.amount.tiyn()).sum();
        let s: u64 = std_inputs.iter().map(|t| t.amount.tiyn()).sum();
        let payee = match case.seller {
            0 => seller.clone(),
            1 => tax.clone(),
            2 => buyer.clone(),
            _ => outsider.clone(),
        };
        let people = [&buyer, &seller, &tax, &outsider];
        // Honest inputs, outputs and statement for the command.
        let (inputs, mut outputs, mut statement, command) = match case.command {
            0 => {
                let vat_amount = part(v + s / 5, case.vat);
                let shortfall = vat_amount.saturating_sub(v);
                let net_amount = part(s.saturating_sub(shortfall), case.net);
                let mut outs = Vec::new();
                if net_amount > 0 {
                    outs.push(std_token(&payee, tiyn(net_amount)));
                }
                if vat_amount > 0 {
                    outs.push(vat_tok(&payee, vat_amount));
                }
                if v > vat_amount {
                    outs.push(vat_tok(&buyer, v - vat_amount));
                }
                if s > net_amount + shortfall {
                    outs.push(std_token(&buyer, tiyn(s - net_amount - shortfall)));
                }
                let invoice = InvoiceId::new("EI-77").unwrap();
                let st = Statement::Invoice {
                    invoice: invoice.clone(),
                    seller: addr(&payee),
                    buyer: addr(&buyer),
                    net: tiyn(net_amount),
                    vat: tiyn(vat_amount),
                };
                let all: Vec<Token> = vat_inputs.iter().chain(&std_inputs).cloned().collect();
                (all, outs, Some(st), Command::PayInvoice { invoice })
            }
            1 => {
                let pay = part(v, case.pay).max(1);
                let mut outs = vec![std_token(&tax, tiyn(pay))];
                if v > pay {
                    outs.push(vat_tok(&buyer, v - pay));
                }
                let mut ins = vat_inputs.clone();
                if case.odd_input == 2 {
                    ins.extend(std_inputs.iter().cloned());
                }
                (ins, outs, None, Command::PayVat)
            }
            _ => {
                let all: Vec<Token> = vat_inputs.iter().chain(&std_inputs).cloned().collect();
                let to = if case.to_tax { &tax } else { &seller };
                let outs = vec![std_token(to, tiyn(v + s))];
                (all, outs, None, Command::Transfer)
            }
        };
        if inputs.is_empty() || outputs.iter().any(|t| t.amount.is_zero()) {
            return Ok(());
        }
        let kind_name = match &case.outputs {
            VatOutputs::Honest => "honest",
            VatOutputs::Perturbed(p) => {
                let n = outputs.len();
                if n > 0 {
                    match p {
                        VatPerturbation::Owner { output, to } => {
                            outputs[output.index(n)].owner = addr(people[to.index(4)])
                        }
                        VatPerturbation::ToggleVat { output } => {
                            let o = &mut outputs[output.index(n)];
                            o.marking = if is_vat(o) { None } else { Some(Marking::Vat) };
                        }
                        VatPerturbation::ShiftAmount { from, to, delta } => {
                            let (f, t) = (from.index(n), to.index(n));
                            let d = (*delta).min(outputs[f].amount.tiyn() - 1);
                            outputs[f].amount = tiyn(outputs[f].amount.tiyn() - d);
                            outputs[t].amount = tiyn(outputs[t].amount.tiyn() + d);
                        }
                        VatPerturbation::Statement { field, delta } => {
                            if let Some(Statement::Invoice { seller, buyer, net, vat, .. }) = &mut statement {
                                match field {
                                    0 => *net = tiyn(net.tiyn() + delta),
                                    1 => *vat = tiyn(vat.tiyn().saturating_sub(*delta)),
                                    2 => *seller = addr(&outsider),
                                    _ => *buyer = addr(&outsider),
                                }
                            }
                        }
                    }
                }
                "perturbed"
            }
            VatOutputs::Random(r) => {
                let total_in: u64 = inputs.iter().map(|t| t.amount.tiyn()).sum();
                let mut given = 0u64;
                outputs = r
                    .iter()
                    .enumerate()
                    .map(|(k, (who, vat, a))| {
                        let a = if k + 1 == r.len() && total_in > given { total_in - given } else { *a };
                        given += a;
                        let t = std_token(people[who.index(4)], tiyn(a));
                        if *vat { with_marking(t, Marking::Vat) } else { t }
                    })
                    .collect();
                "random"
            }
        };
        let ids: Vec<TokenId> = (0..inputs.len()).map(|i| fake_id("vat", i)).collect();
        let keys: Vec<&SecretKey> = signers.iter().collect();
        let mut tx = sign_all(w.body(ids, outputs.clone(), command.clone()), &keys);
        if let Some(st) = statement {
            tx.attest(&w.oracle, st).unwrap();
        }
        let result = validate(&tx, &inputs, &w.ctx(), &Ed25519);
        let has_vat = inputs.iter().any(is_vat);
        if kind_name == "honest" && case.odd_input == 0 && case.seller <= 1 && case.command < 2 {
            prop_assert!(result.is_ok(), "honest {} rejected: {:?}\n{:#?}", command.name(), result, tx);
        }
        if result.is_ok() {
            check_vat_flow(&w.params, &tx, &inputs).map_err(|e| {
                fail(format!("kernel accepted a flow breaking §4.2.3: {e}\ninputs {inputs:#?}\n{tx:#?}"))
            })?;
        }
        let label = match (case.command, has_vat) {
            (0, true) => "pay_invoice/with VAT inputs",
            (0, false) => "pay_invoice/standard only",
            (1, _) => "pay_vat",
            (_, true) => "transfer/with VAT inputs",
            (_, false) => "transfer/standard only",
        };
        tally.borrow_mut().record(label, result.is_ok());
        Ok(())
    });
    let t = tally.into_inner();
    eprintln!("property 4: {t:?}");
    assert!(t.accepted_of("pay_invoice/with VAT inputs") > 200, "{t:?}");
    assert!(t.accepted_of("pay_invoice/standard only") > 40, "{t:?}");
    assert!(t.accepted_of("pay_vat") > 200, "{t:?}");
    assert_eq!(t.accepted_of("transfer/with VAT inputs"), 0, "{t:?}");
    assert!(t.rejected > 800, "{t:?}");
}

// ───────────────────── property 5: determinism ─────────────────────

#[test]
fn validation_is_deterministic_and_ids_survive_a_borsh_round_trip() {
    let stats = run_sequences(256, 25, true);
    eprintln!("property 5: {stats:?}");
    assert!(stats.honest + stats.attacks_accepted + stats.attacks_rejected > stats.cases * 5, "{stats:?}");
}

// ───────────────────── the model checks themselves ─────────────────────

/// The independent checks used above must refuse what the SPEC forbids;
/// otherwise the properties would pass vacuously.
#[test]
fn the_model_checks_refuse_known_violations() {
    let w = World::new();
    let (a, b, mallory) = (key("A"), key("B"), key("MALLORY"));
    let params = &w.params;
    let unsigned = |inputs: Vec<TokenId>, outputs: Vec<Token>, command: Command| {
        Transaction::unsigned(w.body(inputs, outputs, command))
    };

    // A transfer nobody signed, and one that creates value.
    let input = std_token(&a, tiyn(100));
    let tx = unsigned(vec![fake_id("m", 0)], vec![std_token(&b, tiyn(100))], Command::Transfer);
    assert!(check_accepted(params, &tx, std::slice::from_ref(&input)).is_err());
    let tx = w.signed(w.body(vec![fake_id("m", 0)], vec![std_token(&b, tiyn(101))], Command::Transfer), &[&a]);
    assert!(check_accepted(params, &tx, std::slice::from_ref(&input)).is_err());
    let tx = w.signed(w.body(vec![fake_id("m", 0)], vec![std_token(&b, tiyn(100))], Command::Transfer), &[&a]);
    assert_eq!(check_accepted(params, &tx, std::slice::from_ref(&input)), Ok(()));

    // Held value redirected, released beyond the attestation, or expired early.
    let hold = Hold {
        event: EventId::new("E").unwrap(),
        recipient: addr(&b),
        recipient_node: node("STB2"),
        valid_until: w.now.plus_millis(2 * HOUR_MS),
        kind: HoldKind::Single,
    };
    let held = with_encumbrance(std_token(&a, tiyn(100)), Encumbrance::Hold(hold.clone()));
    let release = |outputs: Vec<Token>, amount: u64| {
        let tx = unsigned(vec![fake_id("h", 0)], outputs, Command::Release { event: hold.event.clone() });
        w.attested(tx, Statement::EventOccurred { event: hold.event.clone(), amount: tiyn(amount) })
    };
    let ok = release(vec![std_token(&b, tiyn(40)), std_token(&a, tiyn(60))], 40);
    assert_eq!(check_held_spend(params, &ok, std::slice::from_ref(&held)), Ok(()));
    let stolen = release(vec![std_token(&b, tiyn(40)), std_token(&mallory, tiyn(60))], 40);
    assert!(check_held_spend(params, &stolen, std::slice::from_ref(&held)).is_err());
    let too_much = release(vec![std_token(&b, tiyn(50)), std_token(&a, tiyn(50))], 40);
    assert!(check_held_spend(params, &too_much, std::slice::from_ref(&held)).is_err());
    let early =
        unsigned(vec![fake_id("h", 0)], vec![std_token(&a, tiyn(100))], Command::Expire { event: hold.event.clone() });
    assert!(check_held_spend(params, &early, std::slice::from_ref(&held)).is_err());

    // VAT turned standard outside the tax authority, or created by a transfer.
    let vat = with_marking(std_token(&a, tiyn(100)), Marking::Vat);
    let laundered = w.signed(w.body(vec![fake_id("v", 0)], vec![std_token(&b, tiyn(100))], Command::PayVat), &[&a]);
    assert!(check_vat_flow(params, &laundered, std::slice::from_ref(&vat)).is_err());
    let to_tax = w.signed(w.body(vec![fake_id("v", 0)], vec![std_token(&w.tax, tiyn(100))], Command::PayVat), &[&a]);
    assert_eq!(check_vat_flow(params, &to_tax, std::slice::from_ref(&vat)), Ok(()));
    let minted = w.signed(
        w.body(vec![fake_id("v", 0)], vec![with_marking(std_token(&b, tiyn(100)), Marking::Vat)], Command::Transfer),
        &[&a],
    );
    assert!(check_vat_flow(params, &minted, std::slice::from_ref(&input)).is_err());

    // Marked value to an outsider, over the allowance, or with allowance inflated.
    let m = marked_world();
    let gc = addr(&m.gc);
    let sub1 = addr(&m.sub1);
    let outsider = addr(&m.people[4]);
    let inputs = [address_marked(gc, 1_000, &m.rule, 0, &[600, 300])];
    let good = [address_marked(sub1, 400, &m.rule, 1, &[300]), address_marked(gc, 600, &m.rule, 0, &[200, 0])];
    assert_eq!(check_marked_acceptance(&m.rule, &inputs, &good), Ok(()));
    let to_outsider =
        [address_marked(outsider, 400, &m.rule, 1, &[300]), address_marked(gc, 600, &m.rule, 0, &[200, 0])];
    assert!(check_marked_acceptance(&m.rule, &inputs, &to_outsider).is_err());
    let over = [address_marked(sub1, 700, &m.rule, 1, &[300]), address_marked(gc, 300, &m.rule, 0, &[0, 0])];
    assert!(check_marked_acceptance(&m.rule, &inputs, &over).is_err());
    let inflated = [address_marked(sub1, 400, &m.rule, 1, &[300]), address_marked(gc, 600, &m.rule, 0, &[200, 300])];
    assert!(check_marked_acceptance(&m.rule, &inputs, &inflated).is_err());
    let unmarked_early = [Token::standard(Currency::DT, tiyn(1_000), sub1, node("STB1"))];
    assert!(check_marked_acceptance(&m.rule, &inputs, &unmarked_early).is_err());
}

// ───────────────────── a finding, fixed in the kernel ─────────────────────

/// A marked token whose allowance for the next level exceeds its value can be
/// paid out whole: unused allowance may be dropped (it was once required to be
/// conserved exactly, which left such tokens unspendable).
#[test]
fn a_marked_token_can_be_paid_out_whole_even_if_it_carries_more_allowance_than_value() {
    let m = marked_world();
    let sub1 = addr(&m.sub1);
    let supplier = addr(&m.people[3]);
    // Sub1 (level 1) holds 100 tiyn carrying 300 tiyn of the level-2 allowance
    // (GC gave it the whole level-2 limit with a small payment).
    let input = address_marked(sub1, 100, &m.rule, 1, &[300]);
    let out = Token::standard(Currency::DT, tiyn(100), supplier, node("STB1"));
    let tx = sign_all(m.w.body(vec![fake_id("whole", 0)], vec![out], Command::Transfer), &[&m.sub1]);
    assert_eq!(validate(&tx, &[input], &m.w.ctx(), &Ed25519), Ok(tx.id()));
}

// ─────────────── enforcement: collections and key rotations ───────────────

/// One collection or rotation attempt over tokens of two clients at two banks.
#[derive(Debug, Clone)]
struct EnforcementCase {
    /// Input picks: (which client: 0 = debtor at STB1, 1 = another client at STB2, amount).
    inputs: Vec<(u8, u64)>,
    /// The ordered amount.
    ordered: u64,
    /// Outputs: (to: 0 beneficiary, 1 debtor, 2 mallory, 3 debtor at the other host; permille of the inputs).
    outputs: Vec<(u8, u16)>,
    /// Who signs: 0 STB1 node, 1 STB2 node, 2 the debtor, 3 STB1 and STB2.
    signer: u8,
    /// A rotation instead of a collection.
    rekey: bool,
}

fn enforcement_case() -> impl Strategy<Value = EnforcementCase> {
    (
        prop::collection::vec((prop::bool::weighted(0.15).prop_map(u8::from), 1u64..=1_000_000), 1..=4),
        1u64..=4_000_000,
        prop::collection::vec((0u8..=3, 0u16..=1000), 1..=3),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(inputs, ordered, outputs, signer, rekey)| EnforcementCase {
            inputs,
            ordered,
            outputs,
            signer,
            rekey,
        })
}

/// Collections and rotations are signed by the inputs' host bank only, never
/// move another bank's clients' tokens, never collect more than ordered nor
/// to anyone but the beneficiary, and a rotation changes only the owner.
#[test]
fn enforcement_acts_stay_within_the_host_bank_and_the_order() {
    let accepted = RefCell::new((0u32, 0u32, 0u32));
    run_property(2_000, enforcement_case(), |case| {
        let w = World::new();
        let (debtor, other, beneficiary, mallory, bailiff) =
            (key("DEBTOR"), key("OTHER-CLIENT"), key("BENEFICIARY"), key("MALLORY"), key("BAILIFF"));
        let new_key = key("DEBTOR-NEW");
        let inputs: Vec<Token> = case
            .inputs
            .iter()
            .map(|(who, amount)| {
                if *who == 0 {
                    Token::standard(Currency::DT, tiyn(*amount), addr(&debtor), node("STB1"))
                } else {
                    Token::standard(Currency::DT, tiyn(*amount), addr(&other), node("STB2"))
                }
            })
            .collect();
        let ids: Vec<TokenId> = (0..inputs.len()).map(|i| fake_id("enf", i)).collect();
        let in_total: u64 = inputs.iter().map(|t| t.amount.tiyn()).sum();
        let outputs: Vec<Token> = if case.rekey {
            // Honest shape, then a possible tamper through the output picks.
            let mut outs: Vec<Token> = inputs.iter().map(|t| Token { owner: addr(&new_key), ..t.clone() }).collect();
            if let Some((to, _)) = case.outputs.first()
                && *to == 2
            {
                outs[0].owner = addr(&mallory);
            }
            outs
        } else {
            let mut outs = Vec::new();
            let mut left = in_total;
            for (to, pm) in &case.outputs {
                let amount = part(in_total, *pm).min(left);
                if amount == 0 {
                    continue;
                }
                left -= amount;
                let t = match to {
                    0 => Token::standard(Currency::DT, tiyn(amount), addr(&beneficiary), node("STB2")),
                    1 => Token::standard(Currency::DT, tiyn(amount), addr(&debtor), node("STB1")),
                    2 => Token::standard(Currency::DT, tiyn(amount), addr(&mallory), node("STB1")),
                    _ => Token::standard(Currency::DT, tiyn(amount), addr(&debtor), node("STB2")),
                };
                outs.push(t);
            }
            if left > 0 {
                outs.push(Token::standard(Currency::DT, tiyn(left), addr(&debtor), node("STB1")));
            }
            outs
        };
        let command = if case.rekey {
            Command::Rekey { old: addr(&debtor), new: addr(&new_key) }
        } else {
            let order = EnforcementOrder {
                reference: OrderRef::new("ENF-1").unwrap(),
                authority: bailiff.public_key(),
                debtor: addr(&debtor),
                act: OrderAct::Collect { amount: tiyn(case.ordered), beneficiary: addr(&beneficiary) },
                reason: Memo::new("court order").unwrap(),
                issued_at: w.now,
            };
            Command::Collect { order: order.sign(&bailiff) }
        };
        let (stb1, stb2) = (host_key("STB1"), host_key("STB2"));
        let keys: Vec<&SecretKey> = match case.signer {
            0 => vec![&stb1],
            1 => vec![&stb2],
            2 => vec![&debtor],
            _ => vec![&stb1, &stb2],
        };
        let tx = sign_all(w.body(ids, outputs.clone(), command), &keys);
        let result = validate(&tx, &inputs, &w.ctx(), &Ed25519);
        let mut counts = accepted.borrow_mut();
        if result.is_err() {
            counts.2 += 1;
            return Ok(());
        }
        // Accepted: check against the model.
        if signers(&tx) != BTreeSet::from([stb1.public_key()]) {
            return Err(fail("accepted without exactly the host bank's signature"));
        }
        if inputs.iter().any(|t| t.owner != addr(&debtor) || t.host != node("STB1")) {
            return Err(fail("moved tokens of a client another bank hosts, or of someone other than the debtor"));
        }
        conserved(&inputs, &outputs).map_err(fail)?;
        if case.rekey {
            counts.1 += 1;
            for (i, o) in inputs.iter().zip(outputs.iter()) {
                if *o != (Token { owner: addr(&new_key), ..i.clone() }) {
                    return Err(fail("a rotation changed more than the owner"));
                }
            }
        } else {
            counts.0 += 1;
            let to_beneficiary: u64 =
                outputs.iter().filter(|t| t.owner == addr(&beneficiary)).map(|t| t.amount.tiyn()).sum();
            if to_beneficiary > case.ordered || to_beneficiary == 0 {
                return Err(fail(format!("collected {to_beneficiary} of an order for {}", case.ordered)));
            }
            if outputs
                .iter()
                .any(|t| t.owner != addr(&beneficiary) && (t.owner != addr(&debtor) || t.host != node("STB1")))
            {
                return Err(fail("value left to someone other than the beneficiary or the debtor's own DA"));
            }
        }
        Ok(())
    });
    let (collections, rotations, rejected) = accepted.into_inner();
    println!("enforcement: {collections} collections and {rotations} rotations accepted, {rejected} rejected");
    assert!(collections > 50 && rotations > 20 && rejected > 100, "the property is not vacuous");
}
