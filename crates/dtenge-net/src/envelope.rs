//! [`Envelope`]: a message signed by its sender with its EDS key.
//!
//! ```text
//!   protocol 2:  signed message = H("dtenge/envelope/v2", borsh(version, from, to, sent_at, nonce, trace, body))
//!   protocol 1:  signed message = H("dtenge/envelope/v1", borsh(from, to, sent_at, nonce, body))
//!   signature  = Ed25519(sender key, signed message)
//!
//!   wire, protocol 2:  borsh(0xFFFF_0000 | version: u32, from, to, sent_at, nonce, trace, body, signature)
//!   wire, protocol 1:  borsh(from, to, sent_at, nonce, body, signature)
//! ```
//!
//! The signed message is also the envelope's [digest](Envelope::digest): an
//! answer names the request it answers by this digest, and evidence can be
//! cross-referenced by it.
//!
//! Every envelope carries the protocol version it was written in (rolling
//! upgrades across hosts): protocol 1 is the round-1 format, which had no
//! version field, so its wire form starts directly with the sender's id (a
//! short length-prefixed string); from protocol 2 on, the wire form starts
//! with a `u32` marker whose top half is all ones, which no id length can be.
//! One decoder reads both ([`Envelope::decode`]); which versions a service
//! accepts and writes is its [`ProtocolRange`].
//!
//! Invariants:
//! * Every field but the signature is covered by the signature, the version
//!   included: the two versions hash under different domains, so an envelope
//!   cannot be passed off as another version. Borsh is canonical, so one
//!   envelope has exactly one signed message and one wire form.
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

/// Domain tag of the envelope hash, protocol 2 on.
pub const ENVELOPE_DOMAIN: &[u8] = b"dtenge/envelope/v2";
/// Domain tag of the envelope hash of protocol 1.
pub const ENVELOPE_DOMAIN_V1: &[u8] = b"dtenge/envelope/v1";

/// The protocol version this build writes.
pub const PROTOCOL_VERSION: u16 = 2;
/// The oldest protocol version this build still reads, answers and writes to
/// peers that speak nothing newer: one version back, for rolling upgrades
/// (docs/deploy.md gives the order).
pub const MIN_PROTOCOL_VERSION: u16 = 1;
const _: () = assert!(MIN_PROTOCOL_VERSION >= 1 && MIN_PROTOCOL_VERSION <= PROTOCOL_VERSION);

/// Top half of the `u32` that starts the wire form of protocol 2 and later.
const VERSIONED_MARKER: u32 = 0xFFFF_0000;

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

/// The protocol versions a service speaks, oldest to newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct ProtocolRange {
    /// The oldest version read and answered.
    pub min: u16,
    /// The newest: written to every peer that speaks it.
    pub max: u16,
}

impl ProtocolRange {
    /// What this build speaks: [`MIN_PROTOCOL_VERSION`]..=[`PROTOCOL_VERSION`].
    pub const CURRENT: ProtocolRange = ProtocolRange { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION };

    /// Whether `version` is in the range.
    pub fn speaks(&self, version: u16) -> bool {
        (self.min..=self.max).contains(&version)
    }

    /// The newest version both ranges speak, if any.
    pub fn common(&self, other: &ProtocolRange) -> Option<u16> {
        let newest = self.max.min(other.max);
        (newest >= self.min.max(other.min)).then_some(newest)
    }

    /// Parses `"1-2"` or `"2"` (the `dtenge-protocol` HTTP header).
    pub fn parse(text: &str) -> Option<ProtocolRange> {
        let text = text.trim();
        let (min, max) = text.split_once('-').unwrap_or((text, text));
        let range = ProtocolRange { min: min.trim().parse().ok()?, max: max.trim().parse().ok()? };
        (range.min >= 1 && range.min <= range.max).then_some(range)
    }
}

impl std::fmt::Display for ProtocolRange {
    /// `"1-2"`, or `"2"` for a single version: the `dtenge-protocol` header's form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max { write!(f, "{}", self.min) } else { write!(f, "{}-{}", self.min, self.max) }
    }
}

/// What a sender chooses besides the message when sealing: the protocol
/// version (the newest the receiver speaks) and the trace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The protocol version to write.
    pub version: u16,
    /// The trace id (0: none).
    pub trace: u64,
}

impl Header {
    /// This build's protocol version, no trace.
    pub const CURRENT: Header = Header { version: PROTOCOL_VERSION, trace: 0 };
}

/// A signed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The protocol version it is written in (see the module docs).
    pub version: u16,
    /// The sender; its registered key must verify the signature.
    pub from: ParticipantId,
    /// The addressee; receivers refuse envelopes not addressed to them.
    pub to: ParticipantId,
    /// The sender's clock when sealing.
    pub sent_at: Timestamp,
    /// Unique per sender within the freshness window; bit 63 marks answers.
    pub nonce: u64,
    /// Ties the log lines of one payment together across services (0: none).
    /// Protocol 2 on; always 0 in protocol 1.
    pub trace: u64,
    /// The service message (opaque here; each service defines its own encoding).
    pub body: Vec<u8>,
    /// The sender's signature over [`Envelope::digest`].
    pub signature: Signature,
}

impl Envelope {
    /// Builds and signs an envelope in this build's protocol version, without a trace.
    pub fn seal(
        from: ParticipantId,
        to: ParticipantId,
        sent_at: Timestamp,
        nonce: u64,
        body: Vec<u8>,
        key: &dyn Signer,
    ) -> Envelope {
        Self::seal_as(Header::CURRENT, from, to, sent_at, nonce, body, key)
    }

    /// Builds and signs an envelope in `header.version` (protocol 1 carries no
    /// trace: it is dropped).
    pub fn seal_as(
        header: Header,
        from: ParticipantId,
        to: ParticipantId,
        sent_at: Timestamp,
        nonce: u64,
        body: Vec<u8>,
        key: &dyn Signer,
    ) -> Envelope {
        let trace = if header.version <= 1 { 0 } else { header.trace };
        let mut envelope =
            Envelope { version: header.version, from, to, sent_at, nonce, trace, body, signature: Signature([0; 64]) };
        envelope.signature = key.sign(envelope.digest().as_bytes());
        envelope
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
        let domain = if self.version <= 1 { ENVELOPE_DOMAIN_V1 } else { ENVELOPE_DOMAIN };
        let mut hasher = Hasher::new(domain);
        let mut writer = HashWriter(&mut hasher);
        // Writing into a hasher cannot fail; the results are io::Result only by signature.
        let _ = if self.version <= 1 {
            (&self.from, &self.to, self.sent_at, self.nonce, &self.body).serialize(&mut writer)
        } else {
            (self.version, &self.from, &self.to, self.sent_at, self.nonce, self.trace, &self.body)
                .serialize(&mut writer)
        };
        hasher.finish()
    }

    /// Request or answer, from bit 63 of the nonce.
    pub fn direction(&self) -> Direction {
        if self.nonce & ANSWER_NONCE_BIT == 0 { Direction::Request } else { Direction::Answer }
    }

    /// The canonical encoding in the envelope's own protocol version (what
    /// goes on the wire and into evidence).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.body.len().saturating_add(192));
        // Writing into a Vec cannot fail.
        let _ = if self.version <= 1 {
            (&self.from, &self.to, self.sent_at, self.nonce, &self.body, &self.signature).serialize(&mut bytes)
        } else {
            let marker = VERSIONED_MARKER | u32::from(self.version);
            (marker, &self.from, &self.to, self.sent_at, self.nonce, self.trace, &self.body, &self.signature)
                .serialize(&mut bytes)
        };
        bytes
    }

    /// Decodes bytes received from outside, whatever their protocol version
    /// (whether the receiver speaks it is the transport's check): at most
    /// [`MAX_ENVELOPE_BYTES`], canonical, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, NetError> {
        let decode_error = |e: dtenge_types::TypesError| NetError::Decode(e.to_string());
        let first = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if first.is_some_and(|marker| marker & VERSIONED_MARKER == VERSIONED_MARKER) {
            let wire: WireVersioned =
                dtenge_types::encoding::decode(bytes, MAX_ENVELOPE_BYTES).map_err(decode_error)?;
            let version = u16::try_from(wire.marker & !VERSIONED_MARKER).unwrap_or(0);
            // Versions 0 and 1 in this form would be a second encoding of protocol 1.
            if version < 2 {
                return Err(NetError::Decode(format!("a versioned envelope cannot say protocol {version}")));
            }
            let WireVersioned { from, to, sent_at, nonce, trace, body, signature, .. } = wire;
            return Ok(Envelope { version, from, to, sent_at, nonce, trace, body, signature });
        }
        let wire: WireV1 = dtenge_types::encoding::decode(bytes, MAX_ENVELOPE_BYTES).map_err(decode_error)?;
        let WireV1 { from, to, sent_at, nonce, body, signature } = wire;
        Ok(Envelope { version: 1, from, to, sent_at, nonce, trace: 0, body, signature })
    }
}

/// Protocol 1's wire form.
#[derive(BorshSerialize, BorshDeserialize)]
struct WireV1 {
    from: ParticipantId,
    to: ParticipantId,
    sent_at: Timestamp,
    nonce: u64,
    body: Vec<u8>,
    signature: Signature,
}

/// The wire form from protocol 2 on.
#[derive(BorshSerialize, BorshDeserialize)]
struct WireVersioned {
    marker: u32,
    from: ParticipantId,
    to: ParticipantId,
    sent_at: Timestamp,
    nonce: u64,
    trace: u64,
    body: Vec<u8>,
    signature: Signature,
}

#[cfg(test)]
mod tests {
    use dtenge_crypto::{Ed25519, SecretKey};

    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sample(key: &SecretKey) -> Envelope {
        let header = Header { version: PROTOCOL_VERSION, trace: 99 };
        Envelope::seal_as(header, id("STB1"), id("NOTARY"), Timestamp(5), 7, b"hello".to_vec(), key)
    }

    fn sample_v1(key: &SecretKey) -> Envelope {
        let header = Header { version: 1, trace: 99 };
        Envelope::seal_as(header, id("STB1"), id("NOTARY"), Timestamp(5), 7, b"hello".to_vec(), key)
    }

    #[test]
    fn sealed_envelope_opens_with_the_senders_key_only() {
        let key = SecretKey::from_seed([1; 32]);
        let other = SecretKey::from_seed([2; 32]);
        for envelope in [sample(&key), sample_v1(&key)] {
            assert_eq!(envelope.open(&key.public_key(), &Ed25519), Ok(()));
            assert_eq!(envelope.open(&other.public_key(), &Ed25519), Err(NetError::BadSignature { from: id("STB1") }));
        }
    }

    #[test]
    fn every_field_is_covered_by_the_signature() {
        let key = SecretKey::from_seed([1; 32]);
        let base = sample(&key);
        let mut changed = vec![base.clone(); 7];
        changed[0].from = id("STB2");
        changed[1].to = id("ORACLE");
        changed[2].sent_at = Timestamp(6);
        changed[3].nonce = 8;
        changed[4].body.push(0);
        changed[5].trace = 100;
        changed[6].version = 3;
        for envelope in changed {
            assert!(envelope.open(&key.public_key(), &Ed25519).is_err(), "{envelope:?}");
        }
    }

    #[test]
    fn an_envelope_cannot_be_passed_off_as_another_protocol_version() {
        let key = SecretKey::from_seed([1; 32]);
        let mut downgraded = sample(&key);
        downgraded.version = 1;
        downgraded.trace = 0;
        assert!(downgraded.open(&key.public_key(), &Ed25519).is_err());
        let mut upgraded = sample_v1(&key);
        upgraded.version = 2;
        assert!(upgraded.open(&key.public_key(), &Ed25519).is_err());
    }

    #[test]
    fn digest_is_the_domain_hash_of_the_unsigned_fields() {
        let key = SecretKey::from_seed([1; 32]);
        let e = sample(&key);
        let unsigned =
            borsh::to_vec(&(e.version, &e.from, &e.to, e.sent_at, e.nonce, e.trace, &e.body)).unwrap_or_default();
        assert_eq!(e.digest(), dtenge_crypto::hash(ENVELOPE_DOMAIN, &[&unsigned]));
        let v1 = sample_v1(&key);
        let unsigned = borsh::to_vec(&(&v1.from, &v1.to, v1.sent_at, v1.nonce, &v1.body)).unwrap_or_default();
        assert_eq!(v1.digest(), dtenge_crypto::hash(ENVELOPE_DOMAIN_V1, &[&unsigned]));
    }

    #[test]
    fn protocol_1_wire_form_is_the_round_1_encoding() {
        // Round 1's Envelope derived borsh over exactly these fields in this order.
        let key = SecretKey::from_seed([1; 32]);
        let e = sample_v1(&key);
        assert_eq!(e.trace, 0, "protocol 1 has no trace");
        let round_1 = borsh::to_vec(&(&e.from, &e.to, e.sent_at, e.nonce, &e.body, &e.signature)).unwrap_or_default();
        assert_eq!(e.encode(), round_1);
        assert_eq!(Envelope::decode(&round_1), Ok(e));
    }

    #[test]
    fn decode_round_trips_both_versions_and_refuses_trailing_bytes() {
        let key = SecretKey::from_seed([1; 32]);
        for envelope in [sample(&key), sample_v1(&key)] {
            let mut bytes = envelope.encode();
            assert_eq!(Envelope::decode(&bytes), Ok(envelope));
            bytes.push(0);
            assert!(matches!(Envelope::decode(&bytes), Err(NetError::Decode(_))));
        }
    }

    #[test]
    fn versioned_form_claiming_protocol_1_is_refused() {
        let key = SecretKey::from_seed([1; 32]);
        let mut bytes = sample(&key).encode();
        bytes[..4].copy_from_slice(&(VERSIONED_MARKER | 1).to_le_bytes());
        assert!(matches!(Envelope::decode(&bytes), Err(NetError::Decode(_))));
    }

    #[test]
    fn protocol_ranges_meet_at_the_newest_common_version() {
        let old = ProtocolRange { min: 1, max: 1 };
        let new = ProtocolRange { min: 1, max: 2 };
        let newer = ProtocolRange { min: 2, max: 3 };
        assert_eq!(new.common(&old), Some(1));
        assert_eq!(new.common(&newer), Some(2));
        assert_eq!(old.common(&newer), None);
        assert_eq!(ProtocolRange::parse(&new.to_string()), Some(new));
        assert_eq!(ProtocolRange::parse("2"), Some(ProtocolRange { min: 2, max: 2 }));
        assert_eq!(ProtocolRange::parse("3-2"), None);
        assert_eq!(ProtocolRange::parse("x"), None);
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
