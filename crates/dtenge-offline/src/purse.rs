//! A device's offline purse: the holdings it may spend and the limits it
//! keeps. On a phone this logic runs inside the secure element's applet
//! (docs/offline.md), so a user cannot edit the holdings; here it sits over
//! the [`SecureElement`] trait.

use dtenge_crypto::{Ed25519, PublicKey, Verifier};
use dtenge_types::{Amount, BoundedVec, Timestamp};

use crate::OfflineError;
use crate::element::SecureElement;
use crate::message::{Certificate, Chain, Hop, Load, MAX_PAYMENT_HOPS, RevocationList, encode_payment};
use crate::verify::{Purpose, Trust, verify_chain};

/// Most holdings a purse keeps (each is one chain).
pub const MAX_HOLDINGS: usize = 64;

/// A chain this device holds, and how much of its range it has passed on.
#[derive(Debug, Clone)]
struct Held {
    chain: Chain,
    /// The next unspent tiyn: `[next, hi)` is still this device's.
    next: u64,
    hi: u64,
}

impl Held {
    fn free(&self) -> u64 {
        self.hi.saturating_sub(self.next)
    }
}

/// A device's purse.
#[derive(Debug)]
pub struct Purse<E: SecureElement> {
    element: E,
    certificate: Certificate,
    trust: Trust,
    held: Vec<Held>,
}

impl<E: SecureElement> Purse<E> {
    /// A purse over `element` certified by `certificate`.
    pub fn new(element: E, certificate: Certificate, trust: Trust) -> Result<Self, OfflineError> {
        let mut purse = Purse { element, certificate: certificate.clone(), trust, held: Vec::new() };
        purse.recertify(certificate)?;
        Ok(purse)
    }

    /// The device key.
    pub fn device_key(&self) -> PublicKey {
        self.element.device_key()
    }

    /// The certificate in force.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The trust store (bank keys, revocations).
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Offline value this device can still spend.
    pub fn balance(&self) -> Amount {
        Amount::from_tiyn(self.held.iter().map(Held::free).fold(0u64, u64::saturating_add))
    }

    /// Online: takes a new certificate (reconnection renews the offline time
    /// and the payment count).
    pub fn recertify(&mut self, certificate: Certificate) -> Result<(), OfflineError> {
        if certificate.device != self.element.device_key() {
            return Err(OfflineError::ChainBroken { index: 0, reason: "the certificate is for another device" });
        }
        let key = self.trust.bank_key(&certificate.bank)?;
        Ed25519
            .verify(&key, certificate.message().as_bytes(), &certificate.signature)
            .map_err(|_| OfflineError::BadSignature("certificate"))?;
        self.certificate = certificate;
        Ok(())
    }

    /// Online: takes a bank's revocation list.
    pub fn update_revocations(&mut self, list: &RevocationList) -> Result<bool, OfflineError> {
        self.trust.apply_revocations(list)
    }

    /// Online: takes a load the bank signed for this device (funding).
    pub fn add_load(&mut self, load: Load) -> Result<(), OfflineError> {
        if load.device != self.element.device_key() {
            return Err(OfflineError::ChainBroken { index: 0, reason: "the load is for another device" });
        }
        let key = self.trust.bank_key(&load.bank)?;
        Ed25519.verify(&key, load.id().as_bytes(), &load.signature).map_err(|_| OfflineError::BadSignature("load"))?;
        if self.held.iter().any(|h| h.chain.hops.is_empty() && h.chain.load.id() == load.id()) {
            return Err(OfflineError::Limit("this load is already in the purse"));
        }
        let hi = load.amount.tiyn();
        self.admit(hi)?;
        let chain = Chain { load, certificates: BoundedVec::empty(), hops: BoundedVec::empty() };
        self.held.push(Held { chain, next: 0, hi });
        Ok(())
    }

    /// Offline: verifies a payment received from another device and keeps it.
    pub fn receive(&mut self, bytes: &[u8], now: Timestamp) -> Result<Amount, OfflineError> {
        let chain = crate::message::decode_chain(bytes)?;
        let entitled = verify_chain(&chain, &self.trust, Purpose::Payment { receiver: self.device_key() }, now)?;
        if self.held.iter().any(|h| h.chain.hop_ids().last() == Some(&entitled.tip)) {
            return Err(OfflineError::Limit("this payment was received already"));
        }
        self.admit(entitled.amount())?;
        self.held.push(Held { chain, next: entitled.lo, hi: entitled.hi });
        Ok(Amount::from_tiyn(entitled.amount()))
    }

    /// Whether `amount` more fits the balance limit and the holdings list.
    fn admit(&self, amount: u64) -> Result<(), OfflineError> {
        if self.held.len() >= MAX_HOLDINGS {
            return Err(OfflineError::Limit("the purse holds too many payments: deposit some"));
        }
        let after = self.balance().tiyn().checked_add(amount).ok_or(OfflineError::Limit("balance overflow"))?;
        if after > self.certificate.limits.balance_max.tiyn() {
            return Err(OfflineError::Limit("offline balance limit"));
        }
        Ok(())
    }

    /// Offline: pays `amount` to device `payee`; returns one encoded chain
    /// (≤ 1 KiB) per holding it draws on, each one signed hop longer.
    pub fn pay(&mut self, payee: PublicKey, amount: Amount, now: Timestamp) -> Result<Vec<Vec<u8>>, OfflineError> {
        let limits = self.certificate.limits;
        if now > self.certificate.valid_until {
            return Err(OfflineError::Expired(self.device_key()));
        }
        if amount.is_zero() {
            return Err(OfflineError::Range(0));
        }
        if amount > limits.payment_max {
            return Err(OfflineError::Limit("payment above the device's per-payment limit"));
        }
        let spendable = |h: &Held| h.free() > 0 && h.chain.hops.len() < MAX_PAYMENT_HOPS;
        let available = self.held.iter().filter(|h| spendable(h)).map(Held::free).fold(0u64, u64::saturating_add);
        if available < amount.tiyn() {
            return Err(OfflineError::Insufficient { available, wanted: amount.tiyn() });
        }
        // Fewest hops: the largest holdings first.
        let mut order: Vec<usize> = (0..self.held.len()).filter(|i| spendable(&self.held[*i])).collect();
        order.sort_by_key(|i| std::cmp::Reverse(self.held[*i].free()));
        let mut plan = Vec::new();
        let mut left = amount.tiyn();
        for i in order {
            if left == 0 {
                break;
            }
            let take = left.min(self.held[i].free());
            plan.push((i, take));
            left = left.saturating_sub(take);
        }
        let counters_left = u64::from(self.certificate.counter_from)
            .saturating_add(u64::from(limits.payments_max))
            .saturating_sub(u64::from(self.element.next_counter()));
        if (plan.len() as u64) > counters_left {
            return Err(OfflineError::Limit("offline payment count reached: reconnect"));
        }
        let mut out = Vec::with_capacity(plan.len());
        for (i, take) in plan {
            let lo = self.held[i].next;
            let hi = lo.checked_add(take).ok_or(OfflineError::Range(0))?;
            let chain = self.sign_hop(i, lo, hi, payee, now)?;
            out.push(encode_payment(&chain)?);
            self.held[i].next = hi;
        }
        self.held.retain(|h| h.free() > 0);
        Ok(out)
    }

    /// Online: signs every holding's free range over to the holder's DA
    /// (`da`, its address key); the chains go to the bank as deposits.
    pub fn deposit(&mut self, da: PublicKey, now: Timestamp) -> Result<Vec<Chain>, OfflineError> {
        let mut out = Vec::new();
        for i in 0..self.held.len() {
            let (lo, hi) = (self.held[i].next, self.held[i].hi);
            if lo < hi {
                out.push(self.sign_hop(i, lo, hi, da, now)?);
                self.held[i].next = hi;
            }
        }
        self.held.clear();
        Ok(out)
    }

    /// The holding's chain one hop longer: `[lo, hi)` to `payee`.
    fn sign_hop(
        &mut self,
        i: usize,
        lo: u64,
        hi: u64,
        payee: PublicKey,
        now: Timestamp,
    ) -> Result<Chain, OfflineError> {
        let mut chain = self.held[i].chain.clone();
        let parent = chain.hop_ids().last().copied().unwrap_or_else(|| chain.load.id());
        let signed = self.element.sign_next(&Hop::body(&parent, lo, hi, &payee, now))?;
        let hop = Hop { lo, hi, payee, counter: signed.counter, at: now, signature: signed.signature };
        chain.certificates.try_push(self.certificate.clone()).map_err(|e| OfflineError::Malformed(e.to_string()))?;
        chain.hops.try_push(hop).map_err(|e| OfflineError::Malformed(e.to_string()))?;
        Ok(chain)
    }
}
