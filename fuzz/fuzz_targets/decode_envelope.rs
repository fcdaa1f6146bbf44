//! Decodes arbitrary bytes as a signed envelope received from the network
//! (`POST /rpc` body) and as an answer body, and runs the receiver's gate on
//! whatever decodes.
//!
//! Both wire forms go through the one decoder: protocol 1 (round 1's) and
//! protocol 2 (a version word, then a trace id). The same bytes are also read
//! as the `dtenge-protocol` header every answer carries (`"1-2"`).
//!
//! Properties: decoding never panics; an accepted envelope is exactly its
//! canonical encoding (one encoding per value; protocol 1 has no trace); a
//! parsed protocol range prints as text that parses back to it; the gate
//! (directory, clock, signature, replay cache) refuses or admits without
//! panicking, and never admits the same envelope twice.
#![no_main]

use std::sync::{Arc, OnceLock};

use dtenge_crypto::SecretKey;
use dtenge_net::{
    Answer, Direction, Envelope, Gate, ManualClock, ParticipantInfo, Participants, ProtocolRange, Role,
};
use dtenge_types::{ParticipantId, Timestamp};
use libfuzzer_sys::fuzz_target;

fn directory() -> &'static Arc<Participants> {
    static DIRECTORY: OnceLock<Arc<Participants>> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        let info = |id: &str, role, seed: u8| ParticipantInfo {
            id: ParticipantId::new(id).unwrap_or_else(|_| unreachable!("valid id")),
            name: id.to_string(),
            role,
            public_key: SecretKey::from_seed([seed; 32]).public_key(),
            endpoint: None,
            tls_key: None,
        };
        Arc::new(Participants::new(vec![info("STB1", Role::Stb, 1), info("NOTARY", Role::Notary, 2)]))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(range) = std::str::from_utf8(data).ok().and_then(ProtocolRange::parse) {
        assert!(range.min >= 1 && range.min <= range.max, "parsed an empty range {range:?}");
        assert_eq!(ProtocolRange::parse(&range.to_string()), Some(range), "header text does not round-trip");
    }
    if let Ok(answer) = Answer::decode(data) {
        assert_eq!(dtenge_types::encoding::encode(&answer), data, "answer accepted in a non-canonical form");
    }
    let Ok(envelope) = Envelope::decode(data) else {
        return;
    };
    assert_eq!(envelope.encode(), data, "envelope accepted in a non-canonical form");
    assert!(envelope.version >= 1, "decoded protocol version 0");
    if envelope.version == 1 {
        assert_eq!(envelope.trace, 0, "protocol 1 has no trace id");
    }
    assert_eq!(Envelope::decode(&envelope.encode()).as_ref(), Ok(&envelope));
    let _ = envelope.digest();
    // The receiver's checks, at the envelope's own time so freshness passes
    // and the signature and replay checks are reached.
    let clock = ManualClock::new(Timestamp(envelope.sent_at.millis()));
    let to = envelope.to.clone();
    let gate = Gate::new(to, Arc::clone(directory()), clock);
    let direction = envelope.direction();
    let first = gate.admit(&envelope, direction);
    if first.is_ok() {
        assert!(gate.admit(&envelope, direction).is_err(), "the same envelope was admitted twice");
    }
    let other = if direction == Direction::Request { Direction::Answer } else { Direction::Request };
    assert!(gate.admit(&envelope, other).is_err(), "an envelope passed as both request and answer");
});
