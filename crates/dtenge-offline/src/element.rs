//! The secure element: the device's key and a monotonic counter, and the one
//! promise the protocol rests on — a counter value signs exactly one message.
//!
//! In hardware (docs/offline.md: an embedded SE, a SIM applet, a TEE) the key
//! never leaves the element and the counter lives in its tamper-resistant
//! non-volatile memory, advanced *before* the signature is released, so a
//! power cut can lose a counter value but never sign twice with one.
//! [`SoftwareElement`] is the same contract in memory, for tests and the demo.

use dtenge_crypto::{PublicKey, SecretKey, Signature, hash};

/// Domain of a message signed by an element: the counter is always bound in.
const DOMAIN: &[u8] = b"dtenge/offline/element/v1";

/// A signature bound to the counter value it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The counter value (each used once).
    pub counter: u32,
    /// Over [`Counted::message`] of that counter and the body.
    pub signature: Signature,
}

impl Counted {
    /// The bytes an element signs for `body` at `counter`.
    pub fn message(counter: u32, body: &[u8]) -> [u8; 32] {
        hash(DOMAIN, &[&counter.to_le_bytes(), body]).0
    }
}

/// Why an element did not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementError {
    /// The counter reached its end: the device must be replaced.
    #[error("the counter is exhausted")]
    CounterExhausted,
}

/// A device's secure element.
pub trait SecureElement {
    /// The device key (the bank certifies it).
    fn device_key(&self) -> PublicKey;
    /// The next counter value the element will use.
    fn next_counter(&self) -> u32;
    /// Signs `body` with the next counter value and advances the counter, so
    /// no counter value ever signs two messages.
    fn sign_next(&mut self, body: &[u8]) -> Result<Counted, ElementError>;
}

/// A secure element in software: the key in memory, the counter a field.
///
/// Not `Clone`: copying it is what an attacker who extracts a key from
/// broken hardware does, and tests say so by calling [`SoftwareElement::extract_clone`].
#[derive(Debug)]
pub struct SoftwareElement {
    key: SecretKey,
    counter: u32,
}

impl SoftwareElement {
    /// A new element with a fresh key and counter 0.
    pub fn generate() -> Self {
        SoftwareElement { key: SecretKey::generate(), counter: 0 }
    }

    /// An element with a given key (deterministic tests).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SoftwareElement { key: SecretKey::from_seed(seed), counter: 0 }
    }

    /// The attack: a copy of the key and counter, as from a broken device.
    /// Both copies can now sign the same counter value twice.
    pub fn extract_clone(&self) -> Self {
        SoftwareElement { key: self.key.clone(), counter: self.counter }
    }
}

impl SecureElement for SoftwareElement {
    fn device_key(&self) -> PublicKey {
        self.key.public_key()
    }

    fn next_counter(&self) -> u32 {
        self.counter
    }

    fn sign_next(&mut self, body: &[u8]) -> Result<Counted, ElementError> {
        let counter = self.counter;
        // Advance first: the next call can never see this value again.
        self.counter = counter.checked_add(1).ok_or(ElementError::CounterExhausted)?;
        Ok(Counted { counter, signature: self.key.sign(&Counted::message(counter, body)) })
    }
}
