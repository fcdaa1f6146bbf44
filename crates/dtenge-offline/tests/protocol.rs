//! The offline protocol end to end in memory: funding, payments over
//! several hops verified offline, limits, deposits settled once, a cloned
//! device's double spend detected and attributed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::arithmetic_side_effects)]

mod support;

use dtenge_crypto::SecretKey;
use dtenge_offline::{
    Decision, DepositBook, MAX_PAYMENT_BYTES, OfflineCode, Purse, SecureElement, SoftwareElement, decode_chain,
};
use dtenge_types::Amount;
use support::{Bank, at, limits, purse, trust};

fn tiyn(n: u64) -> Amount {
    Amount::from_tiyn(n)
}

#[test]
fn the_element_never_signs_twice_for_one_counter() {
    let mut element = SoftwareElement::from_seed([9; 32]);
    let a = element.sign_next(b"one").unwrap();
    let b = element.sign_next(b"one").unwrap();
    assert_eq!((a.counter, b.counter), (0, 1));
    assert_ne!(a.signature, b.signature, "the same body at two counters gives two different signatures");
    assert_eq!(element.next_counter(), 2);
}

#[test]
fn a_three_hop_payment_fits_one_kibibyte_and_verifies_offline() {
    let stb1 = Bank::new("STB1", 1);
    let stb2 = Bank::new("STB2", 2);
    let banks = [&stb1, &stb2];
    let mut a = purse(&stb1, 11, &banks);
    let mut b = purse(&stb2, 12, &banks);
    let mut c = purse(&stb1, 13, &banks);
    let mut d = purse(&stb2, 14, &banks);
    a.add_load(stb1.load(a.device_key(), 40_000, at(0))).unwrap();

    let p1 = a.pay(b.device_key(), tiyn(30_000), at(1_000)).unwrap();
    assert_eq!(b.receive(&p1[0], at(1_100)).unwrap(), tiyn(30_000));
    let p2 = b.pay(c.device_key(), tiyn(20_000), at(2_000)).unwrap();
    c.receive(&p2[0], at(2_100)).unwrap();
    let p3 = c.pay(d.device_key(), tiyn(5_000), at(3_000)).unwrap();
    d.receive(&p3[0], at(3_100)).unwrap();
    for (hops, bytes) in [(1, &p1[0]), (2, &p2[0]), (3, &p3[0])] {
        println!("offline payment over {hops} hop(s): {} bytes", bytes.len());
        assert!(bytes.len() <= MAX_PAYMENT_BYTES, "{hops} hops: {} bytes", bytes.len());
    }
    assert_eq!(
        (a.balance(), b.balance(), c.balance(), d.balance()),
        (tiyn(10_000), tiyn(10_000), tiyn(15_000), tiyn(5_000))
    );
    // A holding that came over three hops is deposited, not paid on.
    let e = purse(&stb1, 15, &banks);
    let err = d.pay(e.device_key(), tiyn(1), at(4_000)).unwrap_err();
    assert_eq!(err.code(), OfflineCode::Insufficient);
}

#[test]
fn a_receiver_refuses_what_it_cannot_trust() {
    let stb1 = Bank::new("STB1", 1);
    let stranger = Bank::new("STB9", 9);
    let banks = [&stb1];
    let mut a = purse(&stb1, 21, &banks);
    let mut b = purse(&stb1, 22, &banks);
    let c = purse(&stb1, 23, &banks);
    a.add_load(stb1.load(a.device_key(), 40_000, at(0))).unwrap();
    let good = a.pay(b.device_key(), tiyn(1_000), at(1_000)).unwrap().remove(0);

    // Every single-byte change is refused, and refused without a panic.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x20;
        let mut probe = purse(&stb1, 22, &banks);
        assert!(probe.receive(&bad, at(1_100)).is_err(), "byte {i} changed and accepted");
    }
    // Paid to someone else.
    let mut other = purse(&stb1, 23, &banks);
    assert_eq!(other.receive(&good, at(1_100)).unwrap_err().code(), OfflineCode::ChainBroken);
    let _ = c;
    // Twice the same payment.
    b.receive(&good, at(1_100)).unwrap();
    assert_eq!(b.receive(&good, at(1_200)).unwrap_err().code(), OfflineCode::Limit);
    // A bank this wallet does not know.
    let mut lone = purse(&stb1, 22, &banks);
    let mut s = purse(&stb1, 24, &banks);
    let stranger_bank = stranger;
    let foreign = stranger_bank.load(s.device_key(), 100, at(0));
    assert_eq!(s.add_load(foreign).unwrap_err().code(), OfflineCode::UnknownBank);
    // Past the payer's certificate (time before reconnection).
    let late = at(limits().offline_ms_max + 1);
    assert_eq!(a.pay(lone.device_key(), tiyn(1), late).unwrap_err().code(), OfflineCode::Expired);
    // `lone` is the payee's device (same key as `b`), receiving after the payer's certificate ended.
    assert_eq!(lone.receive(&good, late).unwrap_err().code(), OfflineCode::Expired);
    // A revoked payer.
    let mut fresh = purse(&stb1, 22, &banks);
    fresh.update_revocations(&stb1.revocations(1, vec![a.device_key()])).unwrap();
    assert_eq!(fresh.receive(&good, at(1_100)).unwrap_err().code(), OfflineCode::Revoked);
    // A forged revocation list.
    let forged = Bank { id: stb1.id.clone(), key: SecretKey::from_seed([99; 32]), serial: Default::default() };
    assert_eq!(
        fresh.update_revocations(&forged.revocations(2, vec![b.device_key()])).unwrap_err().code(),
        OfflineCode::BadSignature
    );
}

#[test]
fn limits_bound_what_a_device_does_offline() {
    let stb1 = Bank::new("STB1", 1);
    let banks = [&stb1];
    let mut a = purse(&stb1, 31, &banks);
    let mut b = purse(&stb1, 32, &banks);
    // Offline balance.
    assert_eq!(a.add_load(stb1.load(a.device_key(), 100_001, at(0))).unwrap_err().code(), OfflineCode::Limit);
    a.add_load(stb1.load(a.device_key(), 100_000, at(0))).unwrap();
    // Amount of one payment.
    assert_eq!(a.pay(b.device_key(), tiyn(50_001), at(1)).unwrap_err().code(), OfflineCode::Limit);
    // Number of payments: 20 per certificate.
    for i in 0..20 {
        let p = a.pay(b.device_key(), tiyn(10), at(10 + i)).unwrap();
        b.receive(&p[0], at(10 + i)).unwrap();
    }
    assert_eq!(a.pay(b.device_key(), tiyn(10), at(100)).unwrap_err().code(), OfflineCode::Limit);
    // Reconnecting renews the count.
    let renewed = stb1.certify(a.device_key(), 20, limits(), at(200));
    a.recertify(renewed).unwrap();
    a.pay(b.device_key(), tiyn(10), at(300)).unwrap();
    // The receiver's own balance limit.
    let mut full = purse(&stb1, 33, &banks);
    full.add_load(stb1.load(full.device_key(), 99_995, at(0))).unwrap();
    let p = a.pay(full.device_key(), tiyn(10), at(400)).unwrap();
    assert_eq!(full.receive(&p[0], at(400)).unwrap_err().code(), OfflineCode::Limit);
}

#[test]
fn a_deposit_settles_once_and_a_cloned_device_is_caught_by_its_two_signatures() {
    let stb1 = Bank::new("STB1", 1);
    let stb2 = Bank::new("STB2", 2);
    let banks = [&stb1, &stb2];
    let t = trust(&banks);
    // The thief's device and its clone share key, counter and the load.
    let element = SoftwareElement::from_seed([41; 32]);
    let clone = element.extract_clone();
    let certificate = stb1.certify(element.device_key(), 0, limits(), at(0));
    let load = stb1.load(element.device_key(), 30_000, at(0));
    let mut thief = Purse::new(element, certificate.clone(), t.clone()).unwrap();
    let mut twin = Purse::new(clone, certificate, t.clone()).unwrap();
    thief.add_load(load.clone()).unwrap();
    twin.add_load(load).unwrap();
    let mut shop = purse(&stb1, 42, &banks);
    let mut cafe = purse(&stb2, 43, &banks);
    shop.receive(&thief.pay(shop.device_key(), tiyn(25_000), at(1_000)).unwrap()[0], at(1_000)).unwrap();
    cafe.receive(&twin.pay(cafe.device_key(), tiyn(25_000), at(2_000)).unwrap()[0], at(2_000)).unwrap();

    let shop_da = SecretKey::from_seed([142; 32]).public_key();
    let cafe_da = SecretKey::from_seed([143; 32]).public_key();
    let mut book = DepositBook::new(stb1.id.clone());
    let shop_deposit = shop.deposit(shop_da, at(5_000)).unwrap().remove(0);
    let first = book.decide(&shop_deposit, &t, at(5_000)).unwrap();
    assert!(matches!(first, Decision::Settle { amount, to, .. } if amount == tiyn(25_000) && to == shop_da));
    book.apply(&shop_deposit, &first);
    // The same deposit again pays nothing more.
    let again = book.decide(&shop_deposit, &t, at(5_100)).unwrap();
    assert!(matches!(again, Decision::Already { .. }));

    let cafe_deposit = cafe.deposit(cafe_da, at(6_000)).unwrap().remove(0);
    let Decision::Conflict(conflict) = book.decide(&cafe_deposit, &t, at(6_000)).unwrap() else {
        panic!("a double spend was not detected");
    };
    assert_eq!(conflict.proof.device(), thief.device_key(), "the proof names the cloned device");
    assert_eq!(conflict.loss, tiyn(25_000));
    conflict.proof.check(&t).unwrap();
    book.apply(&cafe_deposit, &Decision::Conflict(conflict.clone()));
    assert!(book.revoked().contains(&thief.device_key()));
    assert_eq!(book.settled(&shop_deposit.load.id()), 25_000, "the reserve paid the load's value once");
    // The deposit chain is a bounded, canonical encoding.
    assert_eq!(decode_chain(&cafe_deposit.encode()).unwrap(), cafe_deposit);
    // Another bank does not settle STB1's loads.
    assert_eq!(
        DepositBook::new(stb2.id.clone()).decide(&cafe_deposit, &t, at(6_000)).unwrap_err().code(),
        OfflineCode::WrongBank
    );
}
