//! Signing, single and batch verification, weak-key rejection.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use dtenge_crypto::{BatchError, CryptoError, Ed25519, PublicKey, SecretKey, Signature, Signer, Verifier, VerifyItem};
use proptest::prelude::*;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

/// Every encoding that decodes to a small-order point: each 8-torsion point
/// in canonical form, with the sign bit flipped, and with `y + p` when
/// `y < 19`; kept if curve25519-dalek decodes it to a small-order point.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for point in EIGHT_TORSION.iter() {
        let canonical = point.compress().to_bytes();
        let mut candidates = vec![canonical];
        let mut flipped = canonical;
        flipped[31] ^= 0x80;
        candidates.push(flipped);
        let small_y = canonical[1..31].iter().all(|&b| b == 0) && canonical[31] & 0x7f == 0;
        if small_y && canonical[0] < 19 {
            // p = 2^255 - 19 = ed ff .. ff 7f (little endian)
            let mut plus_p = [0xffu8; 32];
            plus_p[0] = 0xed + canonical[0];
            plus_p[31] = 0x7f | (canonical[31] & 0x80);
            candidates.push(plus_p);
            let mut plus_p_flipped = plus_p;
            plus_p_flipped[31] ^= 0x80;
            candidates.push(plus_p_flipped);
        }
        for c in candidates {
            let decoded = CompressedEdwardsY(c).decompress();
            if decoded.is_some_and(|p| p.is_small_order()) && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn dalek_verdict(bytes: [u8; 32]) -> Result<(), CryptoError> {
    match CompressedEdwardsY(bytes).decompress() {
        None => Err(CryptoError::InvalidPublicKey),
        Some(p) if p.is_small_order() => Err(CryptoError::WeakPublicKey),
        Some(_) => Ok(()),
    }
}

#[test]
fn signature_from_generated_key_verifies() {
    let sk = SecretKey::generate();
    let sig = sk.sign(b"hello");
    assert_eq!(Ed25519.verify(&sk.public_key(), b"hello", &sig), Ok(()));
    assert_eq!(sk.public_key().check(), Ok(()));
}

#[test]
fn generated_keys_differ() {
    assert_ne!(SecretKey::generate().seed(), SecretKey::generate().seed());
}

#[test]
fn from_seed_is_deterministic_and_seed_round_trips() {
    let a = SecretKey::from_seed([9; 32]);
    let b = SecretKey::from_seed(a.seed());
    assert_eq!(a, b);
    assert_eq!(a.public_key(), b.public_key());
    assert_eq!(a.sign(b"m"), b.sign(b"m"));
}

#[test]
fn tampered_message_fails_verification() {
    let sk = key(1);
    let sig = sk.sign(b"pay 100 to alice");
    assert_eq!(Ed25519.verify(&sk.public_key(), b"pay 900 to alice", &sig), Err(CryptoError::BadSignature));
}

#[test]
fn tampered_signature_fails_verification_at_every_byte() {
    let sk = key(2);
    let sig = sk.sign(b"msg");
    for i in 0..64 {
        let mut bad = sig;
        bad.0[i] ^= 0x01;
        assert!(Ed25519.verify(&sk.public_key(), b"msg", &bad).is_err(), "flipping byte {i} still verifies");
    }
}

#[test]
fn wrong_key_fails_verification() {
    let sig = key(3).sign(b"msg");
    assert_eq!(Ed25519.verify(&key(4).public_key(), b"msg", &sig), Err(CryptoError::BadSignature));
}

#[test]
fn non_canonical_s_is_rejected() {
    let sk = key(5);
    let mut sig = sk.sign(b"msg");
    // s + l, where l = 2^252 + 27742317777372353535851937790883648493.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s_byte, l_byte) in sig.0[32..].iter_mut().zip(L) {
        let v = u16::from(*s_byte) + u16::from(l_byte) + carry;
        *s_byte = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    assert_eq!(Ed25519.verify(&sk.public_key(), b"msg", &sig), Err(CryptoError::BadSignature));
}

#[test]
fn key_that_is_not_a_curve_point_is_invalid() {
    // y = 2 is not the y-coordinate of any curve point.
    let mut bytes = [0u8; 32];
    bytes[0] = 2;
    assert_eq!(dalek_verdict(bytes), Err(CryptoError::InvalidPublicKey));
    let pk = PublicKey(bytes);
    assert_eq!(pk.check(), Err(CryptoError::InvalidPublicKey));
    assert_eq!(Ed25519.verify(&pk, b"m", &Signature([0; 64])), Err(CryptoError::InvalidPublicKey));
}

/// Valid keys are remembered once decoded; the memory must never change a
/// verdict: weak and invalid keys are refused every time, a remembered key
/// still refuses a wrong signature or message.
#[test]
fn remembering_decoded_keys_changes_no_verdict() {
    let good = key(9);
    let pk = good.public_key();
    let sig = good.sign(b"pay 10");
    let weak = PublicKey(small_order_encodings()[3]);
    // y = 2 is not the y-coordinate of any curve point.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let not_a_point = PublicKey(not_a_point);
    for round in 0..3 {
        assert_eq!(Ed25519.verify(&pk, b"pay 10", &sig), Ok(()), "round {round}");
        assert_eq!(Ed25519.verify(&pk, b"pay 11", &sig), Err(CryptoError::BadSignature), "round {round}");
        assert_eq!(Ed25519.verify(&pk, b"pay 10", &key(10).sign(b"pay 10")), Err(CryptoError::BadSignature));
        assert_eq!(weak.check(), Err(CryptoError::WeakPublicKey), "round {round}");
        assert_eq!(Ed25519.verify(&weak, b"pay 10", &sig), Err(CryptoError::WeakPublicKey));
        assert_eq!(not_a_point.check(), Err(CryptoError::InvalidPublicKey), "round {round}");
    }
}

#[test]
fn all_fourteen_small_order_encodings_are_rejected_as_weak_by_check_and_verify() {
    let encodings = small_order_encodings();
    assert_eq!(encodings.len(), 14);
    // R = identity, s = 0: satisfies the cofactored equation for ANY
    // message when A has small order.
    let mut forged = [0u8; 64];
    forged[0] = 1;
    let forged = Signature(forged);
    for bytes in encodings {
        let pk = PublicKey(bytes);
        assert_eq!(pk.check(), Err(CryptoError::WeakPublicKey), "{pk}");
        // Plain ZIP-215 would accept this forgery...
        let vk = ed25519_zebra::VerificationKey::try_from(bytes).unwrap();
        let zsig = ed25519_zebra::Signature::from_bytes(&forged.0);
        assert!(vk.verify(&zsig, b"anything").is_ok());
        // ...but we never do, alone or in a batch.
        assert_eq!(Ed25519.verify(&pk, b"anything", &forged), Err(CryptoError::WeakPublicKey));
        let good = key(6);
        let good_pk = good.public_key();
        let good_sig = good.sign(b"ok");
        let items = [
            VerifyItem { public_key: &good_pk, message: b"ok", signature: &good_sig },
            VerifyItem { public_key: &pk, message: b"anything", signature: &forged },
        ];
        assert_eq!(Ed25519.verify_batch(&items), Err(BatchError { failed: vec![1] }));
    }
}

#[test]
fn empty_batch_is_ok() {
    assert_eq!(Ed25519.verify_batch(&[]), Ok(()));
}

#[test]
fn single_item_batch_matches_single_verification() {
    let sk = key(7);
    let pk = sk.public_key();
    let sig = sk.sign(b"x");
    let ok = [VerifyItem { public_key: &pk, message: b"x", signature: &sig }];
    assert_eq!(Ed25519.verify_batch(&ok), Ok(()));
    let bad = [VerifyItem { public_key: &pk, message: b"y", signature: &sig }];
    assert_eq!(Ed25519.verify_batch(&bad), Err(BatchError { failed: vec![0] }));
}

#[test]
fn batch_of_valid_signatures_including_repeated_keys_verifies() {
    let keys: Vec<SecretKey> = (0..8).map(key).collect();
    let msgs: Vec<Vec<u8>> = (0..40).map(|i: u32| i.to_le_bytes().to_vec()).collect();
    let pks: Vec<PublicKey> = (0..40).map(|i| keys[i % 8].public_key()).collect();
    let sigs: Vec<Signature> = (0..40).map(|i| keys[i % 8].sign(&msgs[i])).collect();
    let items: Vec<VerifyItem<'_>> =
        (0..40).map(|i| VerifyItem { public_key: &pks[i], message: &msgs[i], signature: &sigs[i] }).collect();
    assert_eq!(Ed25519.verify_batch(&items), Ok(()));
}

#[test]
fn batch_with_one_bad_item_reports_exactly_that_index() {
    for bad_index in [0usize, 17, 31] {
        let keys: Vec<SecretKey> = (0..32).map(|i| key(i as u8)).collect();
        let msgs: Vec<Vec<u8>> = (0..32).map(|i| format!("m{i}").into_bytes()).collect();
        let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        sigs[bad_index].0[10] ^= 0x40;
        let items: Vec<VerifyItem<'_>> =
            (0..32).map(|i| VerifyItem { public_key: &pks[i], message: &msgs[i], signature: &sigs[i] }).collect();
        let err = Ed25519.verify_batch(&items).unwrap_err();
        assert_eq!(err.failed, vec![bad_index]);
        assert_eq!(
            err.to_string(),
            format!("1 of the signatures in the batch do not verify (first at index {bad_index})")
        );
    }
}

#[test]
fn batch_reports_every_failing_index_in_ascending_order() {
    let keys: Vec<SecretKey> = (0..10).map(key).collect();
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let mut pks_used = pks.clone();
    pks_used[8] = PublicKey([0; 32]); // weak key
    let mut invalid = [0u8; 32];
    invalid[0] = 2;
    pks_used[2] = PublicKey(invalid); // not a point
    let mut sigs: Vec<Signature> = keys.iter().map(|k| k.sign(b"m")).collect();
    sigs[5] = keys[4].sign(b"m"); // signed by the wrong key
    let items: Vec<VerifyItem<'_>> =
        (0..10).map(|i| VerifyItem { public_key: &pks_used[i], message: b"m", signature: &sigs[i] }).collect();
    assert_eq!(Ed25519.verify_batch(&items), Err(BatchError { failed: vec![2, 5, 8] }));
}

#[test]
fn signer_trait_works_through_arc_and_box_dyn() {
    let sk = key(11);
    let expected = sk.sign(b"m");
    let arc: Arc<dyn Signer> = Arc::new(sk.clone());
    let boxed: Box<dyn Signer> = Box::new(sk.clone());
    assert_eq!(arc.sign(b"m"), expected);
    assert_eq!(boxed.sign(b"m"), expected);
    assert_eq!(arc.public_key(), sk.public_key());
    assert_eq!(Signer::public_key(&sk), sk.public_key());
    let verifier: Box<dyn Verifier> = Box::new(Ed25519);
    assert_eq!(verifier.verify(&sk.public_key(), b"m", &expected), Ok(()));
}

/// How an item in a random batch is (maybe) corrupted.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    Message,
    SignatureByte(usize),
    WrongKey,
    RandomKey([u8; 32]),
    WeakKey(usize),
    RandomSignature([u8; 32], [u8; 32]),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        6 => Just(Corruption::None),
        1 => Just(Corruption::Message),
        1 => (0usize..64).prop_map(Corruption::SignatureByte),
        1 => Just(Corruption::WrongKey),
        1 => any::<[u8; 32]>().prop_map(Corruption::RandomKey),
        1 => (0usize..14).prop_map(Corruption::WeakKey),
        1 => (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| Corruption::RandomSignature(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_and_single_verification_agree_on_random_items(
        entries in prop::collection::vec(
            (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 0..48), corruption()),
            0..24,
        )
    ) {
        let weak = small_order_encodings();
        let mut pks = Vec::new();
        let mut msgs = Vec::new();
        let mut sigs = Vec::new();
        for (seed, msg, c) in &entries {
            let sk = SecretKey::from_seed(*seed);
            let mut pk = sk.public_key();
            let mut sig = sk.sign(msg);
            let mut msg = msg.clone();
            match *c {
                Corruption::None => {}
                Corruption::Message => msg.push(1),
                Corruption::SignatureByte(i) => sig.0[i] ^= 0x80,
                Corruption::WrongKey => pk = SecretKey::from_seed([seed[0] ^ 1; 32]).public_key(),
                Corruption::RandomKey(k) => pk = PublicKey(k),
                Corruption::WeakKey(i) => pk = PublicKey(weak[i]),
                Corruption::RandomSignature(r, s) => {
                    sig.0[..32].copy_from_slice(&r);
                    sig.0[32..].copy_from_slice(&s);
                }
            }
            pks.push(pk);
            msgs.push(msg);
            sigs.push(sig);
        }
        let items: Vec<VerifyItem<'_>> = (0..entries.len())
            .map(|i| VerifyItem { public_key: &pks[i], message: &msgs[i], signature: &sigs[i] })
            .collect();
        let expected: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| Ed25519.verify(it.public_key, it.message, it.signature).is_err())
            .map(|(i, _)| i)
            .collect();
        let got = Ed25519.verify_batch(&items);
        if expected.is_empty() {
            prop_assert_eq!(got, Ok(()));
        } else {
            prop_assert_eq!(got, Err(BatchError { failed: expected }));
        }
    }

    #[test]
    fn key_check_agrees_with_curve25519_dalek_on_random_bytes(bytes in any::<[u8; 32]>()) {
        prop_assert_eq!(PublicKey(bytes).check(), dalek_verdict(bytes));
    }

    #[test]
    fn key_check_agrees_with_curve25519_dalek_near_small_order_encodings(
        i in 0usize..14, pos in 0usize..32, delta in 0u8..4
    ) {
        let mut bytes = small_order_encodings()[i];
        bytes[pos] = bytes[pos].wrapping_add(delta);
        prop_assert_eq!(PublicKey(bytes).check(), dalek_verdict(bytes));
    }
}

/// Canonical as RFC 8032 has it: a valid key whose point re-encodes to the same bytes.
fn dalek_canonical_verdict(bytes: [u8; 32]) -> Result<(), CryptoError> {
    dalek_verdict(bytes)?;
    match CompressedEdwardsY(bytes).decompress() {
        Some(p) if p.compress().to_bytes() == bytes => Ok(()),
        _ => Err(CryptoError::NonCanonicalPublicKey),
    }
}

#[test]
fn every_non_canonical_encoding_of_a_valid_key_is_refused_at_the_boundary() {
    // y = p + k for k in 0..19, with either sign: the only non-canonical y values.
    let mut refused = 0;
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed + k;
            bytes[31] = 0x7f | sign;
            let key = PublicKey(bytes);
            assert_eq!(key.check_canonical(), dalek_canonical_verdict(bytes), "y = p + {k}, sign {sign}");
            if let Some(point) = CompressedEdwardsY(bytes).decompress() {
                assert_ne!(point.compress().to_bytes(), bytes, "y = p + {k} has a shorter encoding");
                assert!(key.check_canonical().is_err());
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "some y = p + k decode to points, so the rule matters");
    for n in 0..32u8 {
        let key = SecretKey::from_seed([n; 32]).public_key();
        assert_eq!(key.check_canonical(), Ok(()), "a generated key is canonical");
    }
}

proptest! {
    #[test]
    fn canonical_check_agrees_with_curve25519_dalek_re_encoding(bytes in any::<[u8; 32]>(), high in any::<bool>()) {
        let mut bytes = bytes;
        if high {
            // Land near p often: the random bytes would almost never get there.
            bytes[1..31].fill(0xff);
            bytes[31] |= 0x7f;
        }
        prop_assert_eq!(PublicKey(bytes).check_canonical(), dalek_canonical_verdict(bytes));
    }
}
