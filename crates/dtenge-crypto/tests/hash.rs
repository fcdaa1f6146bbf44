//! Domain-separated SHA-256.
#![allow(clippy::unwrap_used)]

use dtenge_crypto::{Digest, Hasher, hash};
use proptest::prelude::*;
use sha2::Digest as _;

#[test]
fn hash_is_sha256_of_length_prefixed_domain_then_parts() {
    let mut expected = sha2::Sha256::new();
    expected.update([4u8]);
    expected.update(b"tx/1");
    expected.update(b"abc");
    expected.update(b"def");
    let expected: [u8; 32] = expected.finalize().into();
    assert_eq!(hash(b"tx/1", &[b"abc", b"def"]), Digest(expected));
}

#[test]
fn empty_domain_and_no_parts_is_sha256_of_single_zero_byte() {
    let expected: [u8; 32] = sha2::Sha256::digest([0u8]).into();
    assert_eq!(hash(b"", &[]), Digest(expected));
}

#[test]
fn different_domains_give_different_digests_for_same_parts() {
    assert_ne!(hash(b"a", &[b"x"]), hash(b"b", &[b"x"]));
    // The domain length prefix prevents shifting bytes between domain and data.
    assert_ne!(hash(b"ab", &[b"c"]), hash(b"a", &[b"bc"]));
}

#[test]
fn parts_are_concatenated_without_length_prefix() {
    assert_eq!(hash(b"d", &[b"ab", b"c"]), hash(b"d", &[b"a", b"bc"]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streaming_hasher_equals_one_shot_hash(
        domain in prop::collection::vec(any::<u8>(), 0..40),
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 0..6),
    ) {
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut h = Hasher::new(&domain);
        for p in &parts {
            h.update(p);
        }
        prop_assert_eq!(h.finish(), hash(&domain, &refs));
    }
}
