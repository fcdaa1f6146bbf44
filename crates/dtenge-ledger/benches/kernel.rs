//! Kernel throughput: encoding and hashing a transfer, decoding it, checking
//! its rules, validating it with signatures, and batch verification per
//! signature.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dtenge_crypto::{Ed25519, PublicKey, SecretKey, Signature, Verifier, VerifyItem, hash};
use dtenge_ledger::{Context, Params, check, validate};
use dtenge_types::{
    Address, Amount, Command, Currency, ParticipantId, TimeWindow, Timestamp, Token, TokenId, Transaction, TxBody,
    TxId, decode_transaction, encoding,
};

const NOW: Timestamp = Timestamp(1_730_000_000_000);
const HOUR_MS: u64 = 3_600_000;
const BATCH: usize = 64;

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"bench-key", &[name.as_bytes()]).as_bytes())
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn std_token(owner: &SecretKey, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, Address(owner.public_key()), ParticipantId::new("STB1").unwrap())
}

/// A standard transfer: `a` (300 DT) and `b` (700 DT) pay `c` 750 DT and
/// `d` 250 DT, signed by both input owners.
struct Fixture {
    params: Params,
    tx: Transaction,
    inputs: Vec<Token>,
}

fn fixture() -> Fixture {
    let (nbk, a, b, c, d) = (key("NBK"), key("a"), key("b"), key("c"), key("d"));
    let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
    params.issuers.insert(Currency::DT, Address(nbk.public_key()));

    let inputs = vec![std_token(&a, dt(300)), std_token(&b, dt(700))];
    let prior = TxId(hash(b"bench-prior", &[b"issue"]));
    let input_ids = vec![TokenId { tx: prior, index: 0 }, TokenId { tx: prior, index: 1 }];
    let body = TxBody {
        inputs: input_ids.try_into().unwrap(),
        outputs: vec![std_token(&c, dt(750)), std_token(&d, dt(250))].try_into().unwrap(),
        command: Command::Transfer,
        window: TimeWindow::starting(NOW, HOUR_MS),
        memo: None,
    };
    let mut tx = Transaction::unsigned(body);
    tx.sign(&a).unwrap();
    tx.sign(&b).unwrap();
    Fixture { params, tx, inputs }
}

fn kernel(c: &mut Criterion) {
    let f = fixture();
    let ctx = Context { now: NOW, params: &f.params };
    // Sanity: the fixture is a valid transaction.
    validate(&f.tx, &f.inputs, &ctx, &Ed25519).expect("fixture transfer is valid");
    let bytes = encoding::encode(&f.tx);
    assert_eq!(decode_transaction(&bytes).unwrap(), f.tx);

    let mut group = c.benchmark_group("kernel");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_and_id_2x2", |bench| {
        bench.iter(|| {
            let tx = black_box(&f.tx);
            (encoding::encode(tx), tx.id())
        })
    });
    group.bench_function("decode_2x2", |bench| bench.iter(|| decode_transaction(black_box(&bytes)).unwrap()));
    group.bench_function("check_2x2", |bench| {
        bench.iter(|| check(black_box(&f.tx), black_box(&f.inputs), &ctx).unwrap())
    });
    group.bench_function("validate_2x2_two_signatures", |bench| {
        bench.iter(|| validate(black_box(&f.tx), black_box(&f.inputs), &ctx, &Ed25519).unwrap())
    });

    // 64 transaction signatures by distinct keys over distinct transaction ids.
    let keys: Vec<SecretKey> = (0..BATCH).map(|i| key(&format!("signer-{i}"))).collect();
    let messages: Vec<[u8; 44]> =
        (0..BATCH).map(|i| TxId(hash(b"bench-tx", &[&i.to_le_bytes()])).signing_message()).collect();
    let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let items: Vec<VerifyItem<'_>> = (0..BATCH)
        .map(|i| VerifyItem { public_key: &publics[i], message: &messages[i], signature: &signatures[i] })
        .collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("verify_batch_64", |bench| bench.iter(|| Ed25519.verify_batch(black_box(&items)).unwrap()));
    group.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
