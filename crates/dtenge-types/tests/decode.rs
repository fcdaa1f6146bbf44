//! The decoder of transactions received from outside: it never panics, accepts
//! only canonical encodings, holds a transaction at every bound, and refuses
//! hostile lengths, trailing bytes and oversized input quickly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use dtenge_crypto::{SecretKey, hash};
use dtenge_types::encoding::encode;
use dtenge_types::*;

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"decode-test-key", &[name.as_bytes()]).as_bytes())
}

fn addr(name: &str) -> Address {
    Address(key(name).public_key())
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

fn node(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

fn token_id(seed: &str, index: u16) -> TokenId {
    TokenId { tx: TxId(hash(b"decode-test-tx", &[seed.as_bytes()])), index }
}

fn std_token(owner: &str, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, addr(owner), node("STB1"))
}

const NOW: Timestamp = Timestamp(1_730_000_000_000);

fn body(inputs: Vec<TokenId>, outputs: Vec<Token>, command: Command, memo: Option<&str>) -> TxBody {
    TxBody {
        inputs: inputs.try_into().unwrap(),
        outputs: outputs.try_into().unwrap(),
        command,
        window: TimeWindow::starting(NOW, 3_600_000),
        memo: memo.map(|m| Memo::new(m).unwrap()),
    }
}

fn signed(body: TxBody, signers: &[&str]) -> Transaction {
    let mut tx = Transaction::unsigned(body);
    for s in signers {
        tx.sign(&key(s)).unwrap();
    }
    tx
}

/// A standard 2-input / 2-output transfer with a memo, signed by both owners.
fn transfer() -> Transaction {
    let body = body(
        vec![token_id("a", 0), token_id("b", 3)],
        vec![std_token("c", dt(750)), std_token("a", dt(250))],
        Command::Transfer,
        Some("Оплата по счёту 17 / invoice 17"),
    );
    signed(body, &["a", "b"])
}

fn address_marking(level: u8) -> Marking {
    let rule = MarkingRule {
        reference: MarkingRef::new("NF-2024-ROADS").unwrap(),
        initiator: addr("ga"),
        initiator_node: node("TREASURY"),
        levels: vec![
            MarkingLevel { recipients: vec![addr("sub1"), addr("sub2")].try_into().unwrap(), limit: dt(600) },
            MarkingLevel { recipients: vec![addr("supplier")].try_into().unwrap(), limit: dt(300) },
        ]
        .try_into()
        .unwrap(),
    };
    Marking::Address(AddressMarking { rule, level, allowances: vec![dt(600), dt(300)].try_into().unwrap() })
}

/// A GA marks funds by address: one output carries an address marking.
fn marked() -> Transaction {
    let mut out = std_token("gc", dt(1_000));
    out.marking = Some(address_marking(0));
    let body = body(vec![token_id("ga", 1)], vec![out, std_token("ga", dt(4_000))], Command::MarkAddress, None);
    signed(body, &["ga"])
}

/// A hold with several attestations (more than the ledger accepts, but the
/// decoder must carry them all) and a held output.
fn attested() -> Transaction {
    let event = EventId::new("EV-42").unwrap();
    let mut held = std_token("payer", dt(100));
    held.encumbrance = Some(Encumbrance::Hold(Hold {
        event: event.clone(),
        recipient: addr("shop"),
        recipient_node: node("STB2"),
        valid_until: NOW.plus_days(3),
        kind: HoldKind::Recurring,
    }));
    let body = body(
        vec![token_id("payer", 0)],
        vec![held, std_token("payer", dt(20))],
        Command::Hold { event: event.clone() },
        Some("subscription"),
    );
    let mut tx = signed(body, &["payer"]);
    let oracle = key("oracle");
    tx.attest(
        &oracle,
        Statement::HoldConfirmed {
            event: event.clone(),
            sender: addr("payer"),
            recipient: addr("shop"),
            amount: dt(100),
            valid_until: NOW.plus_days(3),
            kind: HoldKind::Recurring,
        },
    )
    .unwrap();
    tx.attest(
        &oracle,
        Statement::FxRate {
            base: Currency::DT,
            quote: Currency::new("XCB").unwrap(),
            numerator: 7,
            denominator: 1_000,
        },
    )
    .unwrap();
    tx.attest(
        &oracle,
        Statement::ContractPayment {
            parameter: ParameterId::new("GO-2024-117").unwrap(),
            contract: ContractNo::new("C-9").unwrap(),
            sender: addr("payer"),
            recipient: addr("shop"),
            amount: dt(5),
            unmark: true,
        },
    )
    .unwrap();
    tx
}

/// Parameter and VAT markings, a mandate, an issue without inputs.
fn assorted() -> Vec<Transaction> {
    let mut param = std_token("gc", dt(10));
    param.marking = Some(Marking::Parameter(ParameterMarking {
        parameter: ParameterId::new("GO-2024-117").unwrap(),
        initiator: addr("ga"),
        initiator_node: node("TREASURY"),
    }));
    let mut vat = std_token("seller", dt(12));
    vat.marking = Some(Marking::Vat);
    let mut mandated = std_token("user", dt(50));
    mandated.encumbrance = Some(Encumbrance::Mandate(MandateTerms {
        mandate: MandateId::new("M-1").unwrap(),
        grantee: addr("bank"),
        valid_until: NOW.plus_days(30),
    }));
    let pay = body(
        vec![token_id("x", 0), token_id("y", 9)],
        vec![param, vat, mandated],
        Command::ContractPayment {
            parameter: ParameterId::new("GO-2024-117").unwrap(),
            contract: ContractNo::new("C-9").unwrap(),
        },
        None,
    );
    let issue = body(
        vec![],
        vec![std_token("stb", dt(1_000_000))],
        Command::Issue { cbs_reference: CbsRef::new("CBS-1").unwrap() },
        None,
    );
    vec![signed(pay, &["x", "y"]), signed(issue, &["nbk"])]
}

fn samples() -> Vec<Transaction> {
    let mut all = vec![transfer(), marked(), attested()];
    all.extend(assorted());
    all
}

// ---------------------------------------------------------------------------
// Fuzz-style mutation test
// ---------------------------------------------------------------------------

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`; `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

const HUGE_LENGTHS: [u32; 8] = [
    u32::MAX,
    u32::MAX - 1,
    0x8000_0000,
    0x7fff_ffff,
    0x0100_0000,
    (MAX_TX_BYTES as u32) + 1,
    (MAX_INPUTS as u32) + 1,
    (MAX_RECIPIENTS_PER_LEVEL as u32) + 1,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    match rng.below(10) {
        // Flip one bit.
        0 | 1 => {
            if !input.is_empty() {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
        }
        // Overwrite a byte.
        2 => {
            if !input.is_empty() {
                let i = rng.below(input.len());
                input[i] = rng.byte();
            }
        }
        // Insert a byte.
        3 => {
            let i = rng.below(input.len() + 1);
            input.insert(i, rng.byte());
        }
        // Delete a short run.
        4 => {
            if !input.is_empty() {
                let i = rng.below(input.len());
                let n = 1 + rng.below(8.min(input.len() - i));
                input.drain(i..i + n);
            }
        }
        // Truncate.
        5 => {
            let n = rng.below(input.len() + 1);
            input.truncate(n);
        }
        // Overwrite four bytes with a hostile length prefix (or a small one).
        6 | 7 => {
            if input.len() >= 4 {
                let i = rng.below(input.len() - 3);
                let value =
                    if rng.below(4) == 0 { rng.below(70) as u32 } else { HUGE_LENGTHS[rng.below(HUGE_LENGTHS.len())] };
                input[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
        // Splice a chunk of another valid transaction in.
        8 => {
            let other = &corpus[rng.below(corpus.len())];
            let from = rng.below(other.len());
            let n = rng.below((other.len() - from).min(256) + 1);
            let at = rng.below(input.len() + 1);
            input.splice(at..at, other[from..from + n].iter().copied());
        }
        // Random garbage.
        _ => {
            let n = rng.below(512);
            *input = (0..n).map(|_| rng.byte()).collect();
        }
    }
}

#[test]
fn random_mutations_never_panic_and_accepted_bytes_round_trip() {
    const CASES: usize = 20_000;
    let corpus: Vec<Vec<u8>> = samples().iter().map(encode).collect();
    for (bytes, tx) in corpus.iter().zip(samples()) {
        assert_eq!(decode_transaction(bytes).as_ref(), Ok(&tx), "seed must decode");
    }

    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0usize;
    for case in 0..CASES {
        let mut input = corpus[case % corpus.len()].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, &corpus);
        }
        let outcome = std::panic::catch_unwind(|| decode_transaction(&input));
        let Ok(result) = outcome else {
            panic!("decoder panicked on case {case}: {}", hex::encode(&input));
        };
        if let Ok(tx) = result {
            accepted += 1;
            assert_eq!(encode(&tx), input, "case {case}: accepted bytes are not canonical");
            assert_eq!(tx.id(), tx.clone().id(), "case {case}");
        }
    }
    let elapsed = started.elapsed();
    eprintln!("{CASES} mutated inputs, {accepted} accepted, {elapsed:?}");
    // Bit flips inside keys, signatures and amounts keep a valid shape.
    assert!(accepted > CASES / 50, "only {accepted} mutated inputs decoded; mutations too destructive");
}

// ---------------------------------------------------------------------------
// Every bound at once
// ---------------------------------------------------------------------------

fn text(len: usize) -> String {
    "X".repeat(len)
}

fn max_token(i: usize) -> Token {
    let levels: Vec<MarkingLevel> = (0..MAX_MARKING_DEPTH)
        .map(|level| MarkingLevel {
            recipients: (0..MAX_RECIPIENTS_PER_LEVEL)
                .map(|r| Address(dtenge_crypto::PublicKey([(level * 32 + r) as u8; 32])))
                .collect::<Vec<_>>()
                .try_into()
                .unwrap(),
            limit: Amount::MAX,
        })
        .collect();
    let rule = MarkingRule {
        reference: MarkingRef::new(text(MarkingRef::MAX_LEN)).unwrap(),
        initiator: addr("ga"),
        initiator_node: ParticipantId::new(text(32)).unwrap(),
        levels: levels.try_into().unwrap(),
    };
    Token {
        currency: Currency::new("ABCDEFGH").unwrap(),
        amount: Amount::from_tiyn(i as u64 + 1),
        owner: addr("owner"),
        host: ParticipantId::new(text(32)).unwrap(),
        marking: Some(Marking::Address(AddressMarking {
            rule,
            level: 0,
            allowances: vec![Amount::MAX; MAX_MARKING_DEPTH].try_into().unwrap(),
        })),
        // Never valid together with a marking, but the decoder's bound must
        // hold for whatever a sender can put on the wire.
        encumbrance: Some(Encumbrance::Hold(Hold {
            event: EventId::new(text(EventId::MAX_LEN)).unwrap(),
            recipient: addr("shop"),
            recipient_node: ParticipantId::new(text(32)).unwrap(),
            valid_until: Timestamp(u64::MAX),
            kind: HoldKind::Recurring,
        })),
    }
}

fn max_transaction() -> Transaction {
    let body = TxBody {
        inputs: (0..MAX_INPUTS).map(|i| token_id("max", i as u16)).collect::<Vec<_>>().try_into().unwrap(),
        outputs: (0..MAX_OUTPUTS).map(max_token).collect::<Vec<_>>().try_into().unwrap(),
        command: Command::ContractPayment {
            parameter: ParameterId::new(text(ParameterId::MAX_LEN)).unwrap(),
            contract: ContractNo::new(text(ContractNo::MAX_LEN)).unwrap(),
        },
        window: TimeWindow { not_before: Timestamp(0), not_after: Timestamp(u64::MAX) },
        memo: Some(Memo::new(text(Memo::MAX_LEN)).unwrap()),
    };
    let mut tx = Transaction::unsigned(body);
    // The largest statement.
    let statement = Statement::ContractPayment {
        parameter: ParameterId::new(text(ParameterId::MAX_LEN)).unwrap(),
        contract: ContractNo::new(text(ContractNo::MAX_LEN)).unwrap(),
        sender: addr("payer"),
        recipient: addr("shop"),
        amount: Amount::MAX,
        unmark: true,
    };
    for i in 0..MAX_ATTESTATIONS {
        tx.attest(&key(&format!("oracle-{i}")), statement.clone()).unwrap();
    }
    for i in 0..MAX_SIGNATURES {
        tx.sign(&key(&format!("signer-{i}"))).unwrap();
    }
    tx
}

#[test]
fn a_transaction_at_every_bound_fits_and_round_trips() {
    let tx = max_transaction();
    assert_eq!(tx.body.inputs.len(), MAX_INPUTS);
    assert_eq!(tx.body.outputs.len(), MAX_OUTPUTS);
    assert_eq!(tx.attestations.len(), MAX_ATTESTATIONS);
    assert_eq!(tx.signatures.len(), MAX_SIGNATURES);
    // No list can grow past its bound.
    let mut full = tx.signatures.clone();
    assert!(full.try_push(full[0].clone()).is_err());

    let bytes = encode(&tx);
    eprintln!(
        "transaction at every bound: {} bytes ({:.1} % of MAX_TX_BYTES = {MAX_TX_BYTES})",
        bytes.len(),
        bytes.len() as f64 * 100.0 / MAX_TX_BYTES as f64
    );
    assert!(bytes.len() <= MAX_TX_BYTES, "max-bound transaction is {} bytes, over {MAX_TX_BYTES}", bytes.len());
    let decoded = decode_transaction(&bytes).expect("max-bound transaction decodes");
    assert_eq!(decoded, tx);
    assert_eq!(decoded.id(), tx.id());
}

// ---------------------------------------------------------------------------
// Hostile lengths, trailing bytes, oversized input
// ---------------------------------------------------------------------------

/// Decodes `bytes`, expecting an error. (A decoder that trusted a hostile
/// length would abort allocating gigabytes instead of returning.)
fn rejected(bytes: &[u8], what: &str) -> String {
    match decode_transaction(bytes) {
        Ok(tx) => panic!("{what}: accepted {tx:?}"),
        Err(e) => e.to_string(),
    }
}

fn with_u32_at(bytes: &[u8], offset: usize, value: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    out
}

/// Byte offsets of the length prefixes of a transaction's top-level lists.
struct Offsets {
    inputs: usize,
    outputs: usize,
    attestations: usize,
    signatures: usize,
}

fn offsets(tx: &Transaction) -> Offsets {
    let body = encode(&tx.body).len();
    Offsets {
        inputs: 0,
        outputs: 4 + tx.body.inputs.len() * encode(&tx.body.inputs[0]).len(),
        attestations: body,
        signatures: body + encode(&tx.attestations).len(),
    }
}

#[test]
fn list_lengths_above_their_bounds_are_refused_before_reading() {
    let tx = attested();
    let bytes = encode(&tx);
    let at = offsets(&tx);
    // The offsets point at the prefixes they claim to.
    let read = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    assert_eq!(read(at.inputs), tx.body.inputs.len());
    assert_eq!(read(at.outputs), tx.body.outputs.len());
    assert_eq!(read(at.attestations), tx.attestations.len());
    assert_eq!(read(at.signatures), tx.signatures.len());

    let cases = [
        ("inputs", at.inputs, MAX_INPUTS),
        ("outputs", at.outputs, MAX_OUTPUTS),
        ("attestations", at.attestations, MAX_ATTESTATIONS),
        ("signatures", at.signatures, MAX_SIGNATURES),
    ];
    for (what, offset, max) in cases {
        for value in [max as u32 + 1, 0x0100_0000, 0x8000_0000, u32::MAX] {
            let err = rejected(&with_u32_at(&bytes, offset, value), what);
            assert!(err.contains("exceeds the bound"), "{what} = {value}: {err}");
        }
        // A length within the bound but beyond the data is a short read.
        rejected(&with_u32_at(&bytes, offset, max as u32), what);
    }
}

#[test]
fn nested_lengths_and_texts_above_their_bounds_are_refused() {
    let tx = marked();
    let bytes = encode(&tx);
    // Find the prefixes by their content: the marking levels (2), the first
    // level's recipients (2), the reference text, and the allowances (2).
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    let reference = find(b"NF-2024-ROADS") - 4;
    let Some(Marking::Address(m)) = &tx.body.outputs[0].marking else { unreachable!() };
    let initiator_node = reference + 4 + 13 + 32;
    let levels = initiator_node + 4 + "TREASURY".len();
    let recipients = levels + 4;
    assert_eq!(&bytes[recipients + 4..recipients + 36], m.rule.levels[0].recipients[0].0.as_bytes());

    let cases = [
        ("marking reference", reference, MarkingRef::MAX_LEN),
        ("participant id", initiator_node, 32),
        ("marking levels", levels, MAX_MARKING_DEPTH),
        ("recipients", recipients, MAX_RECIPIENTS_PER_LEVEL),
    ];
    for (what, offset, max) in cases {
        for value in [max as u32 + 1, u32::MAX] {
            let err = rejected(&with_u32_at(&bytes, offset, value), what);
            assert!(err.contains("exceeds the bound"), "{what} = {value}: {err}");
        }
    }

    // The memo: an over-long text.
    let tx = transfer();
    let bytes = encode(&tx);
    let memo = encode(&tx.body).len() - (4 + tx.body.memo.as_ref().unwrap().as_str().len());
    assert_eq!(bytes[memo - 1], 1, "Some tag before the memo");
    for value in [Memo::MAX_LEN as u32 + 1, u32::MAX] {
        let err = rejected(&with_u32_at(&bytes, memo, value), "memo");
        assert!(err.contains("exceeds the bound"), "memo = {value}: {err}");
    }
}

#[test]
fn trailing_bytes_and_truncation_are_refused() {
    for tx in samples() {
        let bytes = encode(&tx);
        let mut longer = bytes.clone();
        longer.push(0);
        rejected(&longer, "one trailing zero");
        let mut doubled = bytes.clone();
        doubled.extend_from_slice(&bytes);
        rejected(&doubled, "two transactions back to back");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            rejected(&bytes[..cut], "truncated");
        }
    }
}

#[test]
fn non_canonical_tags_are_refused() {
    let tx = transfer();
    let bytes = encode(&tx);
    // The memo's Option tag: 2 is not a tag.
    let tag = encode(&tx.body).len() - (4 + tx.body.memo.as_ref().unwrap().as_str().len()) - 1;
    let mut bad = bytes.clone();
    bad[tag] = 2;
    rejected(&bad, "option tag 2");
    // The command tag: past the last variant.
    let command = 4 + 2 * 34 + 4 + tx.body.outputs.iter().map(|t| encode(t).len()).sum::<usize>();
    assert_eq!(bytes[command], 2, "Transfer is variant 2");
    let mut bad = bytes.clone();
    bad[command] = 0xff;
    rejected(&bad, "command tag 255");
}

#[test]
fn input_above_max_tx_bytes_is_refused_before_parsing() {
    // A valid transaction padded past the limit, and a large buffer.
    let mut padded = encode(&transfer());
    padded.resize(MAX_TX_BYTES + 1, 0);
    let err = rejected(&padded, "MAX_TX_BYTES + 1");
    assert!(err.contains("exceeds the limit"), "{err}");
    let big = vec![0xffu8; 16 * MAX_TX_BYTES];
    let err = rejected(&big, "16 MiB");
    assert!(err.contains("exceeds the limit"), "{err}");
    // Exactly at the limit is parsed (and refused for its trailing bytes).
    padded.truncate(MAX_TX_BYTES);
    let err = rejected(&padded, "MAX_TX_BYTES of padding");
    assert!(!err.contains("exceeds the limit"), "{err}");
}

// ---------------------------------------------------------------------------
// Seed corpus for the cargo-fuzz target
// ---------------------------------------------------------------------------

/// The fuzz seed corpus is exactly the sample transactions. With
/// `$DTENGE_WRITE_CORPUS` set, it is rewritten there:
/// `DTENGE_WRITE_CORPUS=$PWD/fuzz/corpus/decode_transaction cargo test -p dtenge-types --test decode seed_corpus`
#[test]
fn seed_corpus_matches_the_sample_transactions() {
    let names = ["transfer", "mark_address", "hold_attested", "contract_payment", "issue"];
    let Ok(dir) = std::env::var("DTENGE_WRITE_CORPUS") else {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/decode_transaction");
        for (name, tx) in names.iter().zip(samples()) {
            let stored = std::fs::read(format!("{corpus}/seed_{name}.bin")).unwrap();
            assert_eq!(decode_transaction(&stored).unwrap(), tx, "seed {name} is stale: rewrite the corpus");
        }
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (name, tx) in names.iter().zip(samples()) {
        std::fs::write(format!("{dir}/seed_{name}.bin"), encode(&tx)).unwrap();
    }
}
