//! What the node builds, the kernel accepts: every builder against
//! `dtenge_ledger::validate`, through a vault that selects and consumes tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_crypto::{Ed25519, SecretKey, hash};
use dtenge_ledger::{Context, Params, validate};
use dtenge_node::accounts::{Account, AccountId, Custody, Holder, HolderKind, KycState};
use dtenge_node::build::{self, Draft, Payee};
use dtenge_node::guard::{self, Clearance, Cleared, Outflow, PendingOutflows, Standing};
use dtenge_node::vault::Vault;
use dtenge_types::*;

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"node-test", &[name.as_bytes()]).as_bytes())
}
fn addr(k: &SecretKey) -> Address {
    Address(k.public_key())
}
fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}
fn node() -> ParticipantId {
    ParticipantId::new("STB1").unwrap()
}

struct Env {
    params: Params,
    nbk: SecretKey,
    oracle: SecretKey,
    tax: SecretKey,
    now: Timestamp,
    vault: Vault,
}

impl Env {
    fn new() -> Env {
        let (nbk, oracle, tax) = (key("NBK"), key("ORACLE"), key("TAX"));
        let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
        params.issuers.insert(Currency::DT, addr(&nbk));
        params.oracles.insert(oracle.public_key());
        params.tax_authorities.insert(addr(&tax));
        params.hosts.insert(node(), key("STB1-NODE").public_key());
        params.authorities.insert(key("BAILIFF").public_key());
        Env { params, nbk, oracle, tax, now: Timestamp(1_750_000_000_000), vault: Vault::default() }
    }

    fn draft(&self, payer: &SecretKey) -> Draft {
        Draft { host: node(), payer: addr(payer), now: self.now, window_ms: 60_000, memo: None, change_parts: 1 }
    }

    fn account(k: &SecretKey) -> AccountId {
        AccountId(k.public_key().to_string()[..8].to_string())
    }

    /// Validates, then moves tokens like a node would after the notary's receipt.
    fn commit(&mut self, body: TxBody, signers: &[&SecretKey], statement: Option<Statement>) -> Transaction {
        let mut tx = Transaction::unsigned(body);
        for s in signers {
            tx.sign(*s).unwrap();
        }
        if let Some(st) = statement {
            tx.attest(&self.oracle, st).unwrap();
        }
        let inputs: Vec<Token> = tx.body.inputs.iter().map(|id| self.vault.get(id).unwrap().token.clone()).collect();
        let ctx = Context { now: self.now, params: &self.params };
        validate(&tx, &inputs, &ctx, &Ed25519).unwrap_or_else(|r| panic!("kernel rejected a built transaction: {r}"));
        for id in tx.body.inputs.iter() {
            self.vault.remove(id);
        }
        for (id, t) in tx.output_ids().zip(tx.body.outputs.iter()) {
            let owner_key = t.owner;
            self.vault.insert(id, t.clone(), AccountId(owner_key.to_string()[..8].to_string()));
        }
        tx
    }

    fn issue(&mut self, to: &SecretKey, amount: Amount) {
        let nbk = self.nbk.clone();
        let body = build::issue(
            &self.draft(&nbk),
            &Payee { address: addr(to), host: node(), amount },
            CbsRef::new(format!("CBS-{}", self.vault.len())).unwrap(),
            Currency::DT,
        )
        .unwrap();
        self.commit(body, &[&nbk], None);
    }

    fn bal(&self, k: &SecretKey) -> dtenge_node::vault::Balances {
        self.vault.balances(&Self::account(k)).expect("representable")
    }
}

/// The payer's guard's permission to spend from `account` (no limits, no orders).
fn cleared(account: &AccountId) -> Clearance {
    let iin = (0..10u8).find_map(|b| IinBin::with_check_digit(&[9, 0, 0, 1, 0, 1, 3, 0, b, 0, 1])).unwrap();
    let account = Account {
        id: account.clone(),
        holder: Holder { iin_bin: iin, name: "Test".into(), kind: HolderKind::LegalEntity },
        address: addr(&key("anyone")),
        custody: Custody::Client,
        kyc: KycState::Verified,
        opened_at: Timestamp(0),
        closed: false,
    };
    let standing = Standing {
        account: &account,
        limits: None,
        spent_today: Amount::ZERO,
        orders: Vec::new(),
        free_standard: Amount::MAX,
        linked_bank_account: None,
    };
    let outflow = Outflow::Pay { amount: Amount::ZERO, standard: Amount::ZERO };
    match guard::clear(&standing, outflow, &PendingOutflows::default()).unwrap() {
        Cleared::Go(clearance) => clearance,
        other => panic!("{other:?}"),
    }
}

fn payee(k: &SecretKey, amount: Amount) -> Payee {
    Payee { address: addr(k), host: node(), amount }
}

#[test]
fn transfer_builds_payment_and_change_the_kernel_accepts() {
    let mut e = Env::new();
    let (user, bus, taxi) = (key("user"), key("bus"), key("taxi"));
    e.issue(&user, dt(5_000));
    let inputs = e.vault.select(&cleared(&Env::account(&user)), dt(150), Token::is_standard).unwrap();
    let body = build::transfer(&e.draft(&user), &inputs, &[payee(&bus, dt(150))]).unwrap();
    e.commit(body, &[&user], None);
    assert_eq!(e.bal(&user).standard, dt(4_850));
    assert_eq!(e.bal(&bus).standard, dt(150));
    let inputs = e.vault.select(&cleared(&Env::account(&user)), dt(300), Token::is_standard).unwrap();
    let body = build::transfer(&e.draft(&user), &inputs, &[payee(&bus, dt(100)), payee(&taxi, dt(200))]).unwrap();
    e.commit(body, &[&user], None);
    assert_eq!(e.bal(&user).standard, dt(4_550));
}

#[test]
fn change_split_into_parts_sums_exactly_within_the_output_limit_and_the_kernel_accepts_it() {
    let mut e = Env::new();
    let (user, bus) = (key("user"), key("bus"));
    e.issue(&user, dt(10_000));
    let mine = |e: &Env| e.vault.iter().filter(|(_, s)| s.token.owner == addr(&user)).count();
    // Eight parts of a change of 9 999,99 (the last takes the remainder).
    let split = Draft { change_parts: 8, ..e.draft(&user) };
    let inputs = e.vault.select(&cleared(&Env::account(&user)), Amount::from_tiyn(1), Token::is_standard).unwrap();
    let body = build::transfer(&split, &inputs, &[payee(&bus, Amount::from_tiyn(1))]).unwrap();
    let change: Vec<u64> = body.outputs.iter().filter(|t| t.owner == addr(&user)).map(|t| t.amount.tiyn()).collect();
    assert_eq!(change.len(), 8);
    assert_eq!(change.iter().sum::<u64>(), dt(10_000).tiyn() - 1);
    e.commit(body, &[&user], None);
    assert_eq!((mine(&e), e.bal(&user).standard), (8, Amount::from_tiyn(dt(10_000).tiyn() - 1)));
    // No part below 1,00: a change of 2,50 makes two parts, not eight.
    let inputs = e.vault.select(&cleared(&Env::account(&user)), dt(1_000), Token::is_standard).unwrap();
    let spend = inputs[0].1.amount.tiyn() - 250;
    let body = build::transfer(&split, &inputs[..1], &[payee(&bus, Amount::from_tiyn(spend))]).unwrap();
    let change: Vec<u64> = body.outputs.iter().filter(|t| t.owner == addr(&user)).map(|t| t.amount.tiyn()).collect();
    assert_eq!(change, vec![125, 125]);
    // Payees first: 63 of them leave room for one change token only.
    let many: Vec<Payee> = (0..63).map(|_| payee(&bus, Amount::from_tiyn(1))).collect();
    let body = build::transfer(&split, &inputs[..1], &many).unwrap();
    assert_eq!(body.outputs.len(), MAX_OUTPUTS);
    e.commit(body, &[&user], None);
}

#[test]
fn selection_refuses_what_is_not_there_and_never_picks_reserved_tokens() {
    let mut e = Env::new();
    let user = key("user");
    e.issue(&user, dt(100));
    e.issue(&user, dt(50));
    let acct = Env::account(&user);
    let err = e.vault.select(&cleared(&acct), dt(200), Token::is_standard).unwrap_err();
    assert_eq!(err, dtenge_node::NodeError::InsufficientFunds { requested: dt(200), available: dt(150) });
    let picked = e.vault.select(&cleared(&acct), dt(80), Token::is_standard).unwrap();
    assert_eq!(picked.len(), 1, "largest first");
    let ids: Vec<TokenId> = picked.iter().map(|(id, _)| *id).collect();
    e.vault.reserve(&cleared(&acct), &ids, TxId(hash(b"t", &[]))).unwrap();
    let next = e.vault.select(&cleared(&acct), dt(50), Token::is_standard).unwrap();
    assert!(next.iter().all(|(id, _)| !ids.contains(id)));
    assert!(e.vault.select(&cleared(&acct), dt(60), Token::is_standard).is_err());
}

#[test]
fn address_marking_two_levels_with_allowances_distributed() {
    let mut e = Env::new();
    let (ga, gc, sub, supplier) = (key("ga"), key("gc"), key("sub"), key("supplier"));
    e.issue(&ga, dt(2_000));
    let level = |k: &SecretKey, limit| MarkingLevel { recipients: vec![addr(k)].try_into().unwrap(), limit };
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-1").unwrap(),
        initiator: addr(&ga),
        initiator_node: node(),
        levels: vec![level(&sub, dt(600)), level(&supplier, dt(300))].try_into().unwrap(),
    };
    let inputs = e.vault.select(&cleared(&Env::account(&ga)), dt(1_000), Token::is_standard).unwrap();
    let body = build::mark_address(&e.draft(&ga), &inputs, &payee(&gc, dt(1_000)), rule).unwrap();
    e.commit(body, &[&ga], None);
    assert_eq!(e.bal(&gc).marked, dt(1_000));
    let marked = |t: &Token| matches!(t.marking, Some(Marking::Address(_)));
    let inputs = e.vault.select(&cleared(&Env::account(&gc)), dt(400), marked).unwrap();
    let body = build::marked_transfer(&e.draft(&gc), &inputs, &[payee(&sub, dt(400))]).unwrap();
    e.commit(body, &[&gc], None);
    let inputs = e.vault.select(&cleared(&Env::account(&sub)), dt(250), marked).unwrap();
    let body = build::marked_transfer(&e.draft(&sub), &inputs, &[payee(&supplier, dt(250))]).unwrap();
    e.commit(body, &[&sub], None);
    assert_eq!(e.bal(&supplier).standard, dt(250));
    assert_eq!(e.bal(&sub).marked, dt(150));
    // Over the level-1 limit: the builder says so before the kernel would.
    let inputs = e.vault.select(&cleared(&Env::account(&gc)), dt(300), marked).unwrap();
    assert!(matches!(
        build::marked_transfer(&e.draft(&gc), &inputs, &[payee(&sub, dt(300))]),
        Err(dtenge_node::NodeError::MarkingLimit { level: 1, .. })
    ));
}

#[test]
fn parameter_marking_and_contract_payments() {
    let mut e = Env::new();
    let (ga, contractor, supplier) = (key("ga"), key("contractor"), key("supplier"));
    e.issue(&ga, dt(9_000));
    let p = ParameterId::new("GZ-1").unwrap();
    let inputs = e.vault.select(&cleared(&Env::account(&ga)), dt(8_000), Token::is_standard).unwrap();
    let body = build::mark_parameter(&e.draft(&ga), &inputs, &payee(&contractor, dt(8_000)), p.clone()).unwrap();
    e.commit(body, &[&ga], Some(Statement::ParameterRegistered { parameter: p.clone(), initiator: addr(&ga) }));
    let marked = |t: &Token| matches!(t.marking, Some(Marking::Parameter(_)));
    let inputs = e.vault.select(&cleared(&Env::account(&contractor)), dt(3_000), marked).unwrap();
    let c = ContractNo::new("C-1").unwrap();
    let body =
        build::contract_payment(&e.draft(&contractor), &inputs, &payee(&supplier, dt(3_000)), c.clone(), true).unwrap();
    e.commit(
        body,
        &[&contractor],
        Some(Statement::ContractPayment {
            parameter: p,
            contract: c,
            sender: addr(&contractor),
            recipient: addr(&supplier),
            amount: dt(3_000),
            unmark: true,
        }),
    );
    assert_eq!(e.bal(&supplier).standard, dt(3_000));
    assert_eq!(e.bal(&contractor).marked, dt(5_000));
}

#[test]
fn hold_release_recurring_and_expiry() {
    let mut e = Env::new();
    let (school, canteen) = (key("school"), key("canteen"));
    e.issue(&school, dt(10_000));
    let event = EventId::new("MEALS-2024").unwrap();
    let h = Hold {
        event: event.clone(),
        recipient: addr(&canteen),
        recipient_node: node(),
        valid_until: e.now.plus_days(30),
        kind: HoldKind::Recurring,
    };
    let inputs = e.vault.select(&cleared(&Env::account(&school)), dt(3_000), Token::is_standard).unwrap();
    let body = build::hold(&e.draft(&school), &inputs, dt(3_000), h.clone()).unwrap();
    let st = Statement::HoldConfirmed {
        event: event.clone(),
        sender: addr(&school),
        recipient: addr(&canteen),
        amount: dt(3_000),
        valid_until: h.valid_until,
        kind: HoldKind::Recurring,
    };
    e.commit(body, &[&school], Some(st));
    let held = |t: &Token| matches!(t.encumbrance, Some(Encumbrance::Hold(_)));
    for _meal in 0..2 {
        let inputs = e.vault.select(&cleared(&Env::account(&school)), Amount::from_tiyn(1), held).unwrap();
        let body = build::release(&e.draft(&school), &inputs, dt(500)).unwrap();
        e.commit(body, &[], Some(Statement::EventOccurred { event: event.clone(), amount: dt(500) }));
    }
    assert_eq!(e.bal(&canteen).standard, dt(1_000));
    assert_eq!(e.bal(&school).held, dt(2_000));
    e.now = h.valid_until.plus_millis(1);
    let inputs = e.vault.select(&cleared(&Env::account(&school)), Amount::from_tiyn(1), held).unwrap();
    let body = build::unhold(&e.draft(&school), &inputs, event, true).unwrap();
    e.commit(body, &[], None);
    assert_eq!(e.bal(&school).standard, dt(9_000));
}

#[test]
fn vat_chain_from_the_seed_built_by_the_node() {
    let mut e = Env::new();
    let (le1, le2, le3) = (key("le1"), key("le2"), key("le3"));
    let tax = e.tax.clone();
    e.issue(&le1, dt(1_120));
    let std_or_vat = |t: &Token| t.is_standard() || t.marking == Some(Marking::Vat);
    let pay = |e: &mut Env, buyer: &SecretKey, seller: &SecretKey, net: u64, vat: u64, id: &str| {
        // Own VAT first: select VAT tokens up to the VAT part, then standard for the rest.
        let acct = Env::account(buyer);
        let mut inputs = e
            .vault
            .select(&cleared(&acct), Amount::from_tiyn(vat), |t| t.marking == Some(Marking::Vat))
            .unwrap_or_default();
        let vat_in: u64 = inputs.iter().map(|(_, t)| t.amount.tiyn()).sum();
        let std_need = Amount::from_tiyn(net + vat - vat_in.min(vat));
        inputs.extend(e.vault.select(&cleared(&acct), std_need, Token::is_standard).unwrap());
        let _ = std_or_vat;
        let invoice = InvoiceId::new(id).unwrap();
        let body = build::pay_invoice(
            &e.draft(buyer),
            &inputs,
            &payee(seller, Amount::ZERO),
            Amount::from_tiyn(net),
            Amount::from_tiyn(vat),
            invoice.clone(),
        )
        .unwrap();
        let st = Statement::Invoice {
            invoice,
            seller: addr(seller),
            buyer: addr(buyer),
            net: Amount::from_tiyn(net),
            vat: Amount::from_tiyn(vat),
        };
        e.commit(body, &[buyer], Some(st));
    };
    pay(&mut e, &le1, &le2, dt(1_000).tiyn(), dt(120).tiyn(), "EI-1");
    assert_eq!((e.bal(&le2).standard, e.bal(&le2).vat), (dt(1_000), dt(120)));
    pay(&mut e, &le2, &le3, dt(500).tiyn(), dt(60).tiyn(), "EI-2");
    assert_eq!((e.bal(&le3).standard, e.bal(&le3).vat), (dt(500), dt(60)));
    assert_eq!((e.bal(&le2).standard, e.bal(&le2).vat), (dt(500), dt(60)));
    for payer in [&le2, &le3] {
        let inputs =
            e.vault.select(&cleared(&Env::account(payer)), dt(60), |t| t.marking == Some(Marking::Vat)).unwrap();
        let body = build::pay_vat(&e.draft(payer), &inputs, &payee(&tax, dt(60))).unwrap();
        e.commit(body, &[payer], None);
    }
    assert_eq!(e.bal(&tax).standard, dt(120));
}

#[test]
fn mandate_grant_debit_revoke() {
    let mut e = Env::new();
    let (exchange, bank) = (key("exchange"), key("bank"));
    e.issue(&exchange, dt(1_000));
    let terms =
        MandateTerms { mandate: MandateId::new("M-1").unwrap(), grantee: addr(&bank), valid_until: e.now.plus_days(1) };
    let inputs = e.vault.select(&cleared(&Env::account(&exchange)), dt(600), Token::is_standard).unwrap();
    let body = build::grant_mandate(&e.draft(&exchange), &inputs, dt(600), terms.clone()).unwrap();
    e.commit(body, &[&exchange], None);
    let mandated = |t: &Token| matches!(t.encumbrance, Some(Encumbrance::Mandate(_)));
    let inputs = e.vault.select(&cleared(&Env::account(&exchange)), dt(250), mandated).unwrap();
    let body = build::debit(&e.draft(&bank), &inputs, &payee(&bank, dt(250)), addr(&exchange), node()).unwrap();
    e.commit(body, &[&bank], None);
    assert_eq!(e.bal(&exchange).mandated, dt(350));
    let inputs = e.vault.select(&cleared(&Env::account(&exchange)), dt(350), mandated).unwrap();
    let body = build::revoke_mandate(&e.draft(&exchange), &inputs, terms.mandate).unwrap();
    e.commit(body, &[&exchange], None);
    assert_eq!(e.bal(&exchange).standard, dt(750));
}

#[test]
fn collect_and_rekey_build_what_the_kernel_accepts_with_the_host_key() {
    let mut e = Env::new();
    let (debtor, creditor, bailiff, host) = (key("debtor"), key("creditor"), key("BAILIFF"), key("STB1-NODE"));
    e.issue(&debtor, dt(700));
    let order = EnforcementOrder {
        reference: OrderRef::new("ENF-1").unwrap(),
        authority: bailiff.public_key(),
        debtor: addr(&debtor),
        act: OrderAct::Collect { amount: dt(250), beneficiary: addr(&creditor) },
        reason: Memo::new("court order 2-77").unwrap(),
        issued_at: e.now,
    }
    .sign(&bailiff);
    let inputs = e.vault.select(&cleared(&Env::account(&debtor)), dt(250), Token::is_standard).unwrap();
    let body = build::collect(&e.draft(&debtor), &inputs, &payee(&creditor, dt(250)), order).unwrap();
    e.commit(body, &[&host], None);
    assert_eq!(e.bal(&debtor).standard, dt(450));
    assert_eq!(e.bal(&creditor).standard, dt(250));

    let new = key("debtor-new-phone");
    let inputs: Vec<(TokenId, Token)> =
        e.vault.of_account(&Env::account(&debtor)).map(|(id, s)| (*id, s.token.clone())).collect();
    let body = build::rekey(&e.draft(&debtor), &inputs, addr(&new)).unwrap();
    e.commit(body, &[&host], None);
    assert_eq!(e.bal(&new).standard, dt(450));
    assert_eq!(e.bal(&debtor).total, Amount::ZERO);
}
