//! The notary engine against a simple model: issue, spend, conflict,
//! resubmit and restart (snapshot + replay), over random sequences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use dtenge_crypto::{SecretKey, hash};
use dtenge_notary::*;
use dtenge_types::{TimeWindow, Timestamp, TxId};
use proptest::prelude::*;

mod support;
use support::{NOW, batch, c, claim, decide_and_apply, t};

/// Decides and applies like the runtime does, returning the decisions.
fn run(
    state: &mut NotaryState,
    records: &mut Vec<NotaryRecord>,
    claims: Vec<TxClaim>,
    may_issue: bool,
) -> Vec<Decision> {
    let (decisions, record) = decide_and_apply(state, batch(claims), may_issue);
    records.extend(record);
    decisions
}

#[test]
fn spend_once_then_conflict_names_the_spender() {
    let mut s = NotaryState::new();
    let mut log = Vec::new();
    assert!(matches!(run(&mut s, &mut log, vec![claim(1, &[], &[10])], true)[0], Decision::Commit(_)));
    assert!(matches!(run(&mut s, &mut log, vec![claim(2, &[10], &[11, 12])], false)[0], Decision::Commit(_)));
    let d = run(&mut s, &mut log, vec![claim(3, &[10], &[13])], false);
    assert_eq!(d[0], Decision::Reject(NotaryRejection::Conflict { input: 0, commitment: c(10), spent_by: t(2) }));
}

#[test]
fn two_claims_on_one_input_in_one_batch_exactly_one_wins() {
    let mut s = NotaryState::new();
    let mut log = Vec::new();
    run(&mut s, &mut log, vec![claim(1, &[], &[10])], true);
    let d = run(&mut s, &mut log, vec![claim(2, &[10], &[20]), claim(3, &[10], &[30])], false);
    assert!(matches!(d[0], Decision::Commit(_)));
    assert_eq!(d[1], Decision::Reject(NotaryRejection::Conflict { input: 0, commitment: c(10), spent_by: t(2) }));
}

#[test]
fn a_retry_gets_the_same_receipt_body() {
    let mut s = NotaryState::new();
    let mut log = Vec::new();
    run(&mut s, &mut log, vec![claim(1, &[], &[10])], true);
    let Decision::Commit(first) = run(&mut s, &mut log, vec![claim(2, &[10], &[20])], false)[0].clone() else {
        panic!()
    };
    let again = run(&mut s, &mut log, vec![claim(2, &[10], &[20])], false);
    assert_eq!(again[0], Decision::AlreadyCommitted(first.clone()));
    let key = SecretKey::from_seed([9; 32]);
    assert_eq!(Receipt::sign(first.clone(), &key), Receipt::sign(first, &key), "deterministic signature");
}

fn bodies(n: u64) -> (Vec<TxClaim>, Vec<ReceiptBody>) {
    let claims: Vec<TxClaim> = (0..n).map(|i| claim(100 + i, &[], &[1000 + i])).collect();
    let bodies = claims
        .iter()
        .enumerate()
        .map(|(i, cl)| ReceiptBody {
            tx: cl.tx,
            seq: i as u64 + 1,
            committed_at: NOW,
            inputs_digest: cl.inputs_digest(),
            outputs_digest: cl.outputs_digest(),
        })
        .collect();
    (claims, bodies)
}

#[test]
fn one_signature_covers_every_receipt_of_a_batch_and_each_proves_only_its_own_claim() {
    let key = SecretKey::from_seed([9; 32]);
    let v = dtenge_crypto::Ed25519;
    for n in [1u64, 2, 3, 5, 8, 13, 64, 100] {
        let (claims, bodies) = bodies(n);
        let receipts = Receipt::sign_all(bodies, &key);
        assert_eq!(receipts.len() as u64, n);
        assert!(receipts.iter().all(|r| r.signature == receipts[0].signature), "one signature for the batch");
        for (i, (r, cl)) in receipts.iter().zip(&claims).enumerate() {
            assert_eq!(r.verify(&key.public_key(), cl, &v), Ok(()), "n={n} i={i}");
            let other = &claims[(i + 1) % claims.len()];
            if other.tx != cl.tx {
                assert_eq!(r.verify(&key.public_key(), other, &v), Err(ReceiptError::Mismatch));
            }
            // Moving the leaf, changing the count or a path step breaks it.
            let mut moved = r.clone();
            moved.index = (moved.index + 1) % moved.leaves;
            if n > 1 {
                assert!(moved.verify(&key.public_key(), cl, &v).is_err(), "n={n} i={i} moved");
            }
            let mut recount = r.clone();
            recount.leaves += 1;
            assert!(recount.verify(&key.public_key(), cl, &v).is_err(), "n={n} i={i} recount");
            let mut out_of_range = r.clone();
            out_of_range.index = out_of_range.leaves;
            assert_eq!(out_of_range.verify(&key.public_key(), cl, &v), Err(ReceiptError::BadProof));
            if let Some(first) = r.path.first() {
                let mut bent = r.clone();
                let mut path: Vec<dtenge_crypto::Digest> = bent.path.iter().copied().collect();
                path[0] = hash(b"other", &[first.as_bytes()]);
                bent.path = path.try_into().unwrap();
                assert_eq!(bent.verify(&key.public_key(), cl, &v), Err(ReceiptError::BadSignature));
                let mut short = r.clone();
                let mut path: Vec<dtenge_crypto::Digest> = short.path.iter().copied().collect();
                path.pop();
                short.path = path.try_into().unwrap();
                assert_eq!(short.verify(&key.public_key(), cl, &v), Err(ReceiptError::BadProof));
            }
        }
    }
}

/// Counts signature verifications.
struct Counting(std::sync::atomic::AtomicUsize);

impl dtenge_crypto::Verifier for Counting {
    fn verify(
        &self,
        public_key: &dtenge_crypto::PublicKey,
        message: &[u8],
        signature: &dtenge_crypto::Signature,
    ) -> Result<(), dtenge_crypto::CryptoError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        dtenge_crypto::Ed25519.verify(public_key, message, signature)
    }

    fn verify_batch(&self, items: &[dtenge_crypto::VerifyItem<'_>]) -> Result<(), dtenge_crypto::BatchError> {
        dtenge_crypto::Ed25519.verify_batch(items)
    }
}

#[test]
fn the_receipt_verifier_checks_a_batch_signature_once_and_still_refuses_forgeries() {
    let key = SecretKey::from_seed([9; 32]);
    let counting = Counting(Default::default());
    let cache = ReceiptVerifier::new(2);
    let (claims, bodies) = bodies(10);
    let receipts = Receipt::sign_all(bodies.clone(), &key);
    for (r, cl) in receipts.iter().zip(&claims) {
        assert_eq!(cache.verify(r, &key.public_key(), cl, &counting), Ok(()));
    }
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1, "one verification for ten receipts");
    // A receipt with the cached root but another body does not pass.
    let mut other = receipts[0].clone();
    other.body.seq += 1;
    assert_eq!(cache.verify(&other, &key.public_key(), &claims[0], &counting), Err(ReceiptError::BadSignature));
    // A forged signature over a new root is checked, and refused.
    let mut forged = Receipt::sign(bodies[0].clone(), &SecretKey::from_seed([7; 32]));
    forged.notary = key.public_key();
    assert_eq!(cache.verify(&forged, &key.public_key(), &claims[0], &counting), Err(ReceiptError::BadSignature));
    // Bounded: after two other roots the first is checked again.
    for b in [&bodies[1], &bodies[2]] {
        let r = Receipt::sign(b.clone(), &key);
        let i = bodies.iter().position(|x| x == b).unwrap();
        assert_eq!(cache.verify(&r, &key.public_key(), &claims[i], &counting), Ok(()));
    }
    let before = counting.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(cache.verify(&receipts[3], &key.public_key(), &claims[3], &counting), Ok(()));
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), before + 1);
}

#[test]
fn unknown_inputs_repeated_commitments_existing_outputs_and_windows_are_refused() {
    let mut s = NotaryState::new();
    let mut log = Vec::new();
    run(&mut s, &mut log, vec![claim(1, &[], &[10, 11])], true);
    let d = run(&mut s, &mut log, vec![claim(2, &[99], &[20])], false);
    assert_eq!(d[0], Decision::Reject(NotaryRejection::UnknownInput { input: 0, commitment: c(99) }));
    let d = run(&mut s, &mut log, vec![claim(3, &[10, 10], &[21])], false);
    assert!(matches!(d[0], Decision::Reject(NotaryRejection::RepeatedCommitment { .. })));
    let d = run(&mut s, &mut log, vec![claim(4, &[10], &[11])], false);
    assert_eq!(d[0], Decision::Reject(NotaryRejection::DuplicateOutput { output: 0 }));
    let mut late = claim(5, &[10], &[22]);
    late.window = TimeWindow { not_before: Timestamp(0), not_after: Timestamp(NOW.0 - 1) };
    assert!(matches!(
        run(&mut s, &mut log, vec![late], false)[0],
        Decision::Reject(NotaryRejection::OutsideWindow { .. })
    ));
    assert_eq!(
        run(&mut s, &mut log, vec![claim(6, &[], &[23])], false)[0],
        Decision::Reject(NotaryRejection::IssueNotAllowed)
    );
    assert_eq!(s.status(&c(10)), Some(Ok(())), "nothing refused changed the state");
    assert_eq!(s.counts(), (2, 0), "two unspent, none spent");
}

/// A claim committed by a fresh notary, and its receipt signed by `key`.
fn committed() -> (SecretKey, TxClaim, Receipt) {
    let key = SecretKey::from_seed([9; 32]);
    let mut s = NotaryState::new();
    let mut log = Vec::new();
    let cl = claim(1, &[], &[10]);
    let Decision::Commit(body) = run(&mut s, &mut log, vec![cl.clone()], true)[0].clone() else { panic!() };
    let receipt = Receipt::sign(body, &key);
    (key, cl, receipt)
}

#[test]
fn receipts_verify_only_for_their_own_claim_and_notary() {
    let (key, cl, receipt) = committed();
    let v = dtenge_crypto::Ed25519;
    assert_eq!(receipt.verify(&key.public_key(), &cl, &v), Ok(()));
    assert_eq!(receipt.verify(&SecretKey::from_seed([8; 32]).public_key(), &cl, &v), Err(ReceiptError::WrongNotary));
    assert_eq!(receipt.verify(&key.public_key(), &claim(1, &[], &[11]), &v), Err(ReceiptError::Mismatch));
    let mut forged = receipt.clone();
    forged.body.seq += 1;
    assert_eq!(forged.verify(&key.public_key(), &cl, &v), Err(ReceiptError::BadSignature));
}

/// A verifier hands out a root's signature to verify in a batch with the
/// caller's own signatures, and remembers it only once it verified in that
/// batch — a forged root never, whatever the rest of the batch; a root not
/// yet verified is asked for again, and the proof and the notary are
/// checked every time.
#[test]
fn a_root_is_remembered_only_when_it_verified_in_the_batch() {
    let (key, cl, receipt) = committed();
    let verifier = dtenge_notary::ReceiptVerifier::default();
    let notary = key.public_key();
    let root = verifier.check_root(&receipt, &notary, &cl).unwrap().expect("not verified yet");
    assert!(verifier.check_root(&receipt, &notary, &cl).unwrap().is_some(), "not remembered before verifying");
    let (caller, message) = (SecretKey::from_seed([5; 32]), b"a delivered transaction".to_vec());
    let (public, good) = (caller.public_key(), caller.sign(&message));
    let bad = SecretKey::from_seed([6; 32]).sign(&message);
    let item = |signature| dtenge_crypto::VerifyItem { public_key: &public, message: &message, signature };
    let v = dtenge_crypto::Ed25519;
    let mut forged = receipt.clone();
    forged.signature.0[0] ^= 1;
    let forged_root = verifier.check_root(&forged, &notary, &cl).unwrap().expect("a different signature");
    assert!(!forged_root.same_root(&root));
    assert_eq!(verifier.verify_batch_with(&[item(&good)], &[&forged_root], &v), (vec![], vec![false]));
    assert!(verifier.check_root(&forged, &notary, &cl).unwrap().is_some(), "a forged root is never remembered");
    // The caller's own failure is reported apart and does not stop a good root.
    assert_eq!(verifier.verify_batch_with(&[item(&good), item(&bad)], &[&root], &v), (vec![1], vec![true]));
    assert_eq!(verifier.check_root(&receipt, &notary, &cl), Ok(None), "remembered");
    assert_eq!(verifier.check_root(&receipt, &notary, &claim(1, &[], &[11])), Err(ReceiptError::Mismatch));
    let other = SecretKey::from_seed([8; 32]).public_key();
    assert_eq!(verifier.check_root(&receipt, &other, &cl), Err(ReceiptError::WrongNotary));
}

#[derive(Debug, Clone)]
enum Op {
    Issue(u8),
    Spend { inputs: Vec<u8>, outputs: u8 },
    Resubmit(u8),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u8..3).prop_map(Op::Issue),
        4 => (prop::collection::vec(any::<u8>(), 1..4), 1u8..4).prop_map(|(inputs, outputs)| Op::Spend { inputs, outputs }),
        1 => any::<u8>().prop_map(Op::Resubmit),
        1 => Just(Op::Restart),
    ]
}

/// A notary over an in-memory cold store with `generation_entries` entries
/// per generation and a filter of `filter_bytes` (tiny: many false positives,
/// so the cold path is exercised).
fn with_capacity(generation_entries: usize, filter_bytes: usize, cold: MemoryCold) -> NotaryState {
    let store = Arc::new(ColdStore::memory(cold, filter_bytes));
    NotaryState::with_cold(
        store,
        NotaryConfig { generation_entries, generation_ms: u64::MAX, filter_bytes, ..NotaryConfig::default() },
    )
}

/// The same state, as far as every lookup the model knows can tell.
fn same_state(
    a: &NotaryState,
    b: &NotaryState,
    keys: impl Iterator<Item = u64>,
    claims: &[(TxClaim, ReceiptBody)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.committed_count(), b.committed_count());
    prop_assert_eq!(a.counts(), b.counts());
    for k in keys {
        prop_assert_eq!(a.status(&c(k)), b.status(&c(k)));
    }
    for (cl, _) in claims {
        prop_assert_eq!(a.committed(&cl.tx), b.committed(&cl.tx));
    }
    Ok(())
}

fn check_model(ops: Vec<Op>, generation_entries: usize, filter_bytes: usize) -> Result<(), TestCaseError> {
    let mut cold = MemoryCold::new();
    let mut state = with_capacity(generation_entries, filter_bytes, cold.clone());
    let mut log: Vec<NotaryRecord> = Vec::new();
    let mut model: BTreeMap<u64, Option<TxId>> = BTreeMap::new();
    let mut claims: Vec<(TxClaim, ReceiptBody)> = Vec::new();
    let mut next_c = 0u64;
    let mut next_t = 0u64;
    let mut restarts = 0u32;
    for op in ops {
        match op {
            Op::Issue(n) => {
                next_t += 1;
                let outs: Vec<u64> = (0..u64::from(n))
                    .map(|_| {
                        next_c += 1;
                        next_c
                    })
                    .collect();
                let cl = claim(next_t, &[], &outs);
                let d = run(&mut state, &mut log, vec![cl.clone()], true);
                let Decision::Commit(body) = d[0].clone() else { panic!("issue refused: {d:?}") };
                for o in outs {
                    model.insert(o, None);
                }
                claims.push((cl, body));
            }
            Op::Spend { inputs, outputs } => {
                if model.is_empty() {
                    continue;
                }
                let keys: Vec<u64> = model.keys().copied().collect();
                let mut ins: Vec<u64> = inputs.iter().map(|i| keys[usize::from(*i) % keys.len()]).collect();
                ins.dedup();
                next_t += 1;
                // Now and then an output resurrects an existing (maybe long spent) commitment.
                let resurrect = outputs == 3;
                let outs: Vec<u64> = if resurrect {
                    vec![keys[usize::from(inputs[0]) % keys.len()]]
                } else {
                    (0..u64::from(outputs))
                        .map(|_| {
                            next_c += 1;
                            next_c
                        })
                        .collect()
                };
                let cl = claim(next_t, &ins, &outs);
                let d = run(&mut state, &mut log, vec![cl.clone()], false);
                let unique = {
                    let mut s: Vec<u64> = ins.iter().chain(outs.iter()).copied().collect();
                    s.sort();
                    s.dedup();
                    s.len() == ins.len() + outs.len()
                };
                let first_spent = ins.iter().enumerate().find_map(|(i, x)| model[x].map(|by| (i, by)));
                match (&d[0], first_spent, unique) {
                    (Decision::Commit(body), None, true) if !resurrect => {
                        for i in &ins {
                            model.insert(*i, Some(t(next_t)));
                        }
                        for o in outs {
                            model.insert(o, None);
                        }
                        claims.push((cl, body.clone()));
                    }
                    (Decision::Reject(NotaryRejection::Conflict { input, spent_by, .. }), Some((i, by)), true) => {
                        prop_assert_eq!(*input, i);
                        prop_assert_eq!(*spent_by, by);
                    }
                    (Decision::Reject(NotaryRejection::DuplicateOutput { output: 0 }), None, true) if resurrect => {}
                    (Decision::Reject(NotaryRejection::RepeatedCommitment { .. }), _, false) => {}
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            Op::Resubmit(i) => {
                if claims.is_empty() {
                    continue;
                }
                let (cl, body) = claims[usize::from(i) % claims.len()].clone();
                let d = run(&mut state, &mut log, vec![cl], false);
                prop_assert_eq!(&d[0], &Decision::AlreadyCommitted(body));
            }
            Op::Restart => {
                restarts += 1;
                let keys = || model.keys().copied();
                // From the snapshot over the same cold store (memory part only).
                let from_snapshot =
                    NotaryState::from_snapshot(&state.to_snapshot(), Arc::clone(state.cold()), state.config()).unwrap();
                same_state(&from_snapshot, &state, keys(), &claims)?;
                // The whole journal replayed over a fresh cold store.
                let fresh = MemoryCold::new();
                let mut replayed = with_capacity(generation_entries, filter_bytes, fresh.clone());
                for r in &log {
                    replayed.apply(r);
                }
                same_state(&replayed, &state, keys(), &claims)?;
                // The whole journal replayed over the cold store that already
                // holds its effects (idempotent writes).
                let mut again = with_capacity(generation_entries, filter_bytes, cold.clone());
                for r in &log {
                    again.apply(r);
                }
                same_state(&again, &state, keys(), &claims)?;
                (state, cold) = match restarts % 3 {
                    0 => (from_snapshot, cold),
                    1 => (replayed, fresh),
                    _ => (again, cold),
                };
            }
        }
        for (k, v) in &model {
            prop_assert_eq!(
                state.status(&c(*k)),
                Some(match v {
                    None => Ok(()),
                    Some(by) => Err(*by),
                })
            );
        }
        // Memory holds the live set and at most one generation (inline writes).
        let hot = state.hot_counts();
        prop_assert_eq!(hot.unspent, model.values().filter(|v| v.is_none()).count());
        prop_assert!(hot.spent + hot.receipts < generation_entries.max(1) + 8, "hot {:?}", hot);
        prop_assert_eq!(hot.frozen, 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Against a model map commitment → spender: every commit spends only
    /// unspent inputs, every conflict names the model's spender, an output
    /// equal to any earlier commitment is refused, resubmits get the same
    /// receipt body, and a restart (snapshot, full replay, replay over the
    /// populated cold store) rebuilds the same state.
    #[test]
    fn the_notary_matches_a_simple_model(ops in prop::collection::vec(op(), 1..200)) {
        check_model(ops, NotaryConfig::default().generation_entries, 1 << 16)?;
    }

    /// The same with almost everything in the cold store: generations of a
    /// few entries and a filter of one block (false positives everywhere).
    #[test]
    fn the_notary_matches_the_model_with_a_tiny_memory(ops in prop::collection::vec(op(), 1..200), entries in 1usize..6) {
        check_model(ops, entries, 64)?;
    }
}
