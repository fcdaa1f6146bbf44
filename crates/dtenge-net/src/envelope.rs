//! [`Envelope`]: a message signed by its sender with its EDS key.
//!
//! ```text
//!   signed message = H("dtenge/envelope/v1", borsh(from, to, sent_at, nonce, body))
//!   signature      = Ed25519(sender key, signed message)
//! ```
//!
//! The signed message is also the envelope's [digest](Envelope::digest): an
//! answer names the request it answers by this digest, and evidence can be
//! cross-referenced by it.
//!
//! Invariants:
//! * Every field but the signature is covered by the signature; borsh is
//!   canonical, so one envelope has exactly one signed message.
//! * Bit 63 of the nonce tells answers from requests ([`Direction`]). Requests
//!   and answers therefore never share a (sender, nonce) and an answer can
//!   never be replayed as a request: receivers check the bit.
//! * Decoding from outside ([`Envelope::decode`]) bounds the size first and
//!   accepts only the canonical encoding.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Hasher, PublicKey, Signature, Signer, Verifier};
use dtenge_types::encoding::HashWriter;
use dtenge_types::{ParticipantId, Timestamp};

use crate::{MAX_ENVELOPE_BYTES, NetError};

/// Domain tag of the envelope hash.
pub const ENVELOPE_DOMAIN: &[u8] = b"dtenge/envelope/v1";

/// Bit of the nonce set on answers and clear on requests.
pub const ANSWER_NONCE_BIT: u64 = 1 << 63;

/// Whether an envelope asks or answers; carried in bit 63 of the nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A request to a participant's handler.
    Request,
    /// A participant's answer to a request.
    Answer,
}

/// A signed message.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    /// The sender; its registered key must verify the signature.
    pub from: ParticipantId,
    /// The addressee; receivers refuse envelopes not addressed to them.
    pub to: ParticipantId,
    /// The sender's clock when sealing.
    pub sent_at: Timestamp,
    /// Unique per sender within the freshness window; bit 63 marks answers.
    pub nonce: u64,
    /// The service message (opaque here; each service defines its own encoding).
    pub body: Vec<u8>,
    /// The sender's signature over [`Envelope::digest`].
    pub signature: Signature,
}

impl Envelope {
    /// Builds and signs an envelope.
    pub fn seal(
        from: ParticipantId,
        to: ParticipantId,
        sent_at: Timestamp,
        nonce: u64,
        body: Vec<u8>,
        key: &dyn Signer,
    ) -> Envelope {
        let digest = signed_digest(&from, &to, sent_at, nonce, &body);
        let signature = key.sign(digest.as_bytes());
        Envelope { from, to, sent_at, nonce, body, signature }
    }

    /// Checks the signature against `key` (the sender's registered key).
    ///
    /// Only the signature: whether the envelope is addressed to the receiver,
    /// fresh and new is the [`Gate`](crate::Gate)'s job.
    pub fn open(&self, key: &PublicKey, verifier: &dyn Verifier) -> Result<(), NetError> {
        verifier
            .verify(key, self.digest().as_bytes(), &self.signature)
            .map_err(|_| NetError::BadSignature { from: self.from.clone() })
    }

    /// The signed message: the hash of every field but the signature.
    pub fn digest(&self) -> Digest {
        signed_digest(&self.from, &self.to, self.sent_at, self.nonce, &self.body)
    }

    /// Request or answer, from bit 63 of the nonce.
    pub fn direction(&self) -> Direction {
        if self.nonce & ANSWER_NONCE_BIT == 0 { Direction::Request } else { Direction::Answer }
    }

    /// The canonical encoding (what goes on the wire and into evidence).
    pub fn encode(&self) -> Vec<u8> {
        dtenge_types::encoding::encode(self)
    }

    /// Decodes bytes received from outside: at most [`MAX_ENVELOPE_BYTES`],
    /// canonical, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, NetError> {
        dtenge_types::encoding::decode(bytes, MAX_ENVELOPE_BYTES).map_err(|e| NetError::Decode(e.to_string()))
    }
}

fn signed_digest(from: &ParticipantId, to: &ParticipantId, sent_at: Timestamp, nonce: u64, body: &Vec<u8>) -> Digest {
    let mut hasher = Hasher::new(ENVELOPE_DOMAIN);
    let mut writer = HashWriter(&mut hasher);
    // Writing into a hasher cannot fail; the results are io::Result only by signature.
    let _ = (from, to, sent_at, nonce, body).serialize(&mut writer);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use dtenge_crypto::{Ed25519, SecretKey};

    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sample(key: &SecretKey) -> Envelope {
        Envelope::seal(id("STB1"), id("NOTARY"), Timestamp(5), 7, b"hello".to_vec(), key)
    }

    #[test]
    fn sealed_envelope_opens_with_the_senders_key_only() {
        let key = SecretKey::from_seed([1; 32]);
        let other = SecretKey::from_seed([2; 32]);
        let envelope = sample(&key);
        assert_eq!(envelope.open(&key.public_key(), &Ed25519), Ok(()));
        assert_eq!(envelope.open(&other.public_key(), &Ed25519), Err(NetError::BadSignature { from: id("STB1") }));
    }

    #[test]
    fn every_field_is_covered_by_the_signature() {
        let key = SecretKey::from_seed([1; 32]);
        let base = sample(&key);
        let mut changed = vec![base.clone(); 5];
        changed[0].from = id("STB2");
        changed[1].to = id("ORACLE");
        changed[2].sent_at = Timestamp(6);
        changed[3].nonce = 8;
        changed[4].body.push(0);
        for envelope in changed {
            assert!(envelope.open(&key.public_key(), &Ed25519).is_err(), "{envelope:?}");
        }
    }

    #[test]
    fn digest_is_the_domain_hash_of_the_unsigned_fields() {
        let key = SecretKey::from_seed([1; 32]);
        let envelope = sample(&key);
        let unsigned = borsh::to_vec(&(&envelope.from, &envelope.to, envelope.sent_at, envelope.nonce, &envelope.body))
            .unwrap_or_default();
        assert_eq!(envelope.digest(), dtenge_crypto::hash(ENVELOPE_DOMAIN, &[&unsigned]));
    }

    #[test]
    fn decode_round_trips_and_refuses_trailing_bytes() {
        let key = SecretKey::from_seed([1; 32]);
        let envelope = sample(&key);
        let mut bytes = envelope.encode();
        assert_eq!(Envelope::decode(&bytes), Ok(envelope));
        bytes.push(0);
        assert!(matches!(Envelope::decode(&bytes), Err(NetError::Decode(_))));
    }

    #[test]
    fn nonce_bit_63_marks_answers() {
        let key = SecretKey::from_seed([1; 32]);
        let mut envelope = sample(&key);
        assert_eq!(envelope.direction(), Direction::Request);
        envelope.nonce |= ANSWER_NONCE_BIT;
        assert_eq!(envelope.direction(), Direction::Answer);
    }
}
