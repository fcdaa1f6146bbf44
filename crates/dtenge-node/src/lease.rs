//! Leases: a payee's bank's promise to a payer's bank that one of its DAs
//! takes payments until a moment, so that payments within the promise skip
//! the pre-check's round trip to the payee's bank.
//!
//! The pre-check asks whether the payee's DA exists here, is open, is paid
//! at its current key, and stays under its balance cap. The first three
//! can be promised for a while, and so can the last when the DA has
//! somewhere for the excess to go: a DA linked to a bank account, whose
//! bank signs for it, takes any amount, and what passes the cap goes on to
//! the account on receipt (reverse waterfall). A DA with a balance cap (an
//! individual's, under NBK's limit policy) and no linked account is never
//! leased and is asked every time. A DA stops taking payments — it is
//! closed, or its key is replaced — and its bank account is unlinked only
//! when no lease on it runs ([`Leases::running`]): its bank first tells
//! every bank holding one that it ended (`NodeRequest::LeaseEnd`), and one
//! that cannot be told holds the change back until its lease runs out. So
//! no payment starts under a lease after the DA stopped taking it; one
//! already on its way arrives as it would after a pre-check. A limit
//! policy NBK publishes while leases run stops new leases on the DAs it
//! caps, and applies to payments under the running ones on receipt (for at
//! most one lease's length), as to payments already on their way.
//!
//! Both sides count time on their own clocks: the payer's promise ends
//! [`Lease::ttl_ms`] after it *asked*, the payee's after it *answered*, so
//! the payer's ends first whatever the clocks' offsets.
//!
//! Everything here is a pure decision over the tables and `now`; the node
//! (`service/leases`) does the asking and the answering.

use std::collections::{HashMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Address, ParticipantId, Timestamp};

/// How long a lease runs.
pub const LEASE_MS: u64 = 2_000;
/// The longest lease a payer's node believes, whatever a payee's bank says.
pub const LEASE_MS_MAX: u64 = 60_000;
/// How long a payer's node asks a bank the old way after it did not answer
/// a lease request (unreachable, or a release that does not know leases).
pub const PAUSE_MS: u64 = 60_000;
/// Most DAs one node has leases on, given or held, at once.
pub const MAX_LEASES: usize = 100_000;

/// A payee's bank's promise: the DA it was asked about takes payments for
/// `ttl_ms` from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Lease {
    /// How long the promise runs, in milliseconds.
    pub ttl_ms: u64,
}

/// How many payments leases spared a pre-check, and how many leases were
/// given and taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseCounts {
    /// Leases this node gave other banks for its DAs.
    pub given: u64,
    /// Leases this node was given by other banks.
    pub taken: u64,
    /// Payments of this node that a lease spared the pre-check.
    pub used: u64,
}

/// One node's leases: those it gave for its own DAs and those it holds on
/// other banks' DAs.
#[derive(Debug, Default)]
pub struct Leases {
    /// To which banks, and until when, each of this node's DAs is promised.
    given: HashMap<Address, Vec<(ParticipantId, Timestamp)>>,
    /// Which bank promised each other bank's DA to this node, and until
    /// when (an address belongs to one DA, at one host, so it is the key).
    held: HashMap<Address, (ParticipantId, Timestamp)>,
    /// Lease requests on their way, to the DA's bank: one at a time per DA.
    asking: HashMap<Address, ParticipantId>,
    /// Leases the payee's bank ended while this node's request for them
    /// was on its way: the answer, when it comes, is not kept.
    ended_while_asking: HashSet<Address>,
    /// Banks asked the old way until then.
    paused: HashMap<ParticipantId, Timestamp>,
    /// This node's DAs being closed or given a new key (how many such
    /// operations run on each): no lease is given on them meanwhile.
    stopped: HashMap<Address, u32>,
    /// A node restarted on its journal may have given leases it no longer
    /// knows of: until then, any of its DAs may be leased.
    forgotten_until: Timestamp,
    counts: LeaseCounts,
}

impl Leases {
    /// The leases of a node started at `now`; `restarted` when it recovered
    /// a journal, and so may have given leases before that it forgot.
    pub fn new(now: Timestamp, restarted: bool) -> Leases {
        let forgotten_until = if restarted { now.plus_millis(LEASE_MS) } else { Timestamp(0) };
        Leases { forgotten_until, ..Leases::default() }
    }

    /// Whether a payment to `address` at `host` may skip the pre-check now
    /// (counted as used when it may).
    pub fn covers(&mut self, host: &ParticipantId, address: &Address, now: Timestamp) -> bool {
        let covered = self.held.get(address).is_some_and(|(by, until)| by == host && now < *until);
        if covered {
            self.counts.used += 1;
        }
        covered
    }

    /// Whether this node would pay `address` under a lease at `now` (a read
    /// that counts nothing, for audits).
    pub fn holds(&self, address: &Address, now: Timestamp) -> bool {
        self.held.get(address).is_some_and(|(_, until)| now < *until)
    }

    /// Whether to ask `host` for a lease on `address` now: not while
    /// another request for it is on its way, nor while `host` is paused, nor
    /// with [`MAX_LEASES`] asks on their way. When true, the caller ends it
    /// with [`Leases::asked`].
    pub fn start_asking(&mut self, host: &ParticipantId, address: &Address, now: Timestamp) -> bool {
        let paused = self.paused.get(host).is_some_and(|until| now < *until);
        if paused || self.asking.len() >= MAX_LEASES || self.asking.contains_key(address) {
            return false;
        }
        self.asking.insert(*address, host.clone());
        true
    }

    /// Ends a request [`Leases::start_asking`] began at `asked_at`: `lease`
    /// is what `host` promised, if it did; `answered` is false when `host`
    /// did not answer at all, which pauses asking it for [`PAUSE_MS`].
    pub fn asked(
        &mut self,
        host: &ParticipantId,
        address: &Address,
        asked_at: Timestamp,
        lease: Option<Lease>,
        answered: bool,
    ) {
        self.asking.remove(address);
        let ended = self.ended_while_asking.remove(address);
        if !answered {
            if self.paused.len() >= MAX_LEASES {
                self.paused.retain(|_, until| asked_at < *until);
            }
            if self.paused.len() < MAX_LEASES {
                self.paused.insert(host.clone(), asked_at.plus_millis(PAUSE_MS));
            }
            return;
        }
        let Some(lease) = lease else { return };
        if ended {
            return;
        }
        let until = asked_at.plus_millis(lease.ttl_ms.min(LEASE_MS_MAX));
        if self.held.len() >= MAX_LEASES {
            self.held.retain(|_, (_, end)| asked_at < *end);
        }
        if self.held.len() < MAX_LEASES {
            self.held.insert(*address, (host.clone(), until));
            self.counts.taken += 1;
        }
    }

    /// `host` ended its lease on `address`: payments to it are asked about
    /// again (and an answer to a request on its way is not kept).
    pub fn end(&mut self, host: &ParticipantId, address: &Address) {
        if self.held.get(address).is_some_and(|(by, _)| by == host) {
            self.held.remove(address);
        }
        if self.asking.get(address) == Some(host) {
            self.ended_while_asking.insert(*address);
        }
    }

    /// Promises that `address`, one of this node's DAs that takes payments
    /// whatever its balance, does so for [`LEASE_MS`]; `None` when the
    /// table is full of promises still running (the payer then just has its
    /// answer, as before leases).
    pub fn give(&mut self, address: Address, to: &ParticipantId, now: Timestamp) -> Option<Lease> {
        if self.stopped.contains_key(&address) {
            return None;
        }
        if self.given.len() >= MAX_LEASES && !self.given.contains_key(&address) {
            self.given.retain(|_, holders| {
                holders.retain(|(_, until)| now < *until);
                !holders.is_empty()
            });
            if self.given.len() >= MAX_LEASES {
                return None;
            }
        }
        let until = now.plus_millis(LEASE_MS);
        let holders = self.given.entry(address).or_default();
        // One entry per bank: a bank's new lease replaces its old one.
        holders.retain(|(holder, end)| holder != to && now < *end);
        holders.push((to.clone(), until));
        self.counts.given += 1;
        Some(Lease { ttl_ms: LEASE_MS })
    }

    /// The banks holding a lease on `address` that still runs.
    pub fn holders(&self, address: &Address, now: Timestamp) -> Vec<ParticipantId> {
        self.given
            .get(address)
            .map(|holders| holders.iter().filter(|(_, until)| now < *until).map(|(h, _)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// `holder` was told its lease on `address` ended.
    pub fn told(&mut self, address: &Address, holder: &ParticipantId) {
        if let Some(holders) = self.given.get_mut(address) {
            holders.retain(|(h, _)| h != holder);
            if holders.is_empty() {
                self.given.remove(address);
            }
        }
    }

    /// Gives no lease on `address` until as many [`Leases::resume`] as
    /// calls of this: it is being closed or given a new key.
    pub fn stop(&mut self, address: Address) {
        *self.stopped.entry(address).or_default() += 1;
    }

    /// Ends one [`Leases::stop`] of `address`.
    pub fn resume(&mut self, address: &Address) {
        if let Some(count) = self.stopped.get_mut(address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.stopped.remove(address);
            }
        }
    }

    /// Until when a lease this node gave on `address` runs, if one does.
    pub fn running(&self, address: &Address, now: Timestamp) -> Option<Timestamp> {
        let given = self.given.get(address).into_iter().flatten().map(|(_, until)| *until);
        given.chain([self.forgotten_until]).filter(|until| now < *until).max()
    }

    /// The counts so far.
    pub fn counts(&self) -> LeaseCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bank() -> ParticipantId {
        ParticipantId::new("STB1").unwrap()
    }

    fn da(n: u8) -> Address {
        Address(dtenge_crypto::PublicKey([n; 32]))
    }

    const T0: Timestamp = Timestamp(1_000_000);

    #[test]
    fn a_lease_covers_payments_until_it_ends_counted_from_the_request() {
        let mut leases = Leases::default();
        assert!(!leases.covers(&bank(), &da(1), T0), "nothing is covered before a lease");
        assert!(leases.start_asking(&bank(), &da(1), T0));
        leases.asked(&bank(), &da(1), T0, Some(Lease { ttl_ms: 2_000 }), true);
        assert!(leases.covers(&bank(), &da(1), T0.plus_millis(1_999)));
        assert!(!leases.covers(&bank(), &da(1), T0.plus_millis(2_000)), "it ends 2 s after the request");
        assert!(!leases.covers(&bank(), &da(2), T0), "another DA is not covered");
        let other = ParticipantId::new("STB2").unwrap();
        assert!(!leases.covers(&other, &da(1), T0), "the same address at another bank is not covered");
        assert_eq!(leases.counts(), LeaseCounts { given: 0, taken: 1, used: 1 });
    }

    #[test]
    fn an_ended_lease_covers_nothing_even_when_its_answer_comes_after_the_end() {
        let mut leases = Leases::default();
        assert!(leases.start_asking(&bank(), &da(1), T0));
        leases.asked(&bank(), &da(1), T0, Some(Lease { ttl_ms: 2_000 }), true);
        leases.end(&bank(), &da(1));
        assert!(!leases.covers(&bank(), &da(1), T0));
        // The bank answered a request, then ended the lease; the end came first.
        assert!(leases.start_asking(&bank(), &da(1), T0));
        leases.end(&bank(), &da(1));
        leases.asked(&bank(), &da(1), T0, Some(Lease { ttl_ms: 2_000 }), true);
        assert!(!leases.covers(&bank(), &da(1), T0));
        assert!(leases.start_asking(&bank(), &da(1), T0));
        leases.asked(&bank(), &da(1), T0, Some(Lease { ttl_ms: 2_000 }), true);
        assert!(leases.covers(&bank(), &da(1), T0), "a later lease is kept");
    }

    #[test]
    fn a_payee_bank_cannot_promise_longer_than_the_payer_believes() {
        let mut leases = Leases::default();
        assert!(leases.start_asking(&bank(), &da(1), T0));
        leases.asked(&bank(), &da(1), T0, Some(Lease { ttl_ms: u64::MAX }), true);
        assert!(leases.covers(&bank(), &da(1), T0.plus_millis(LEASE_MS_MAX - 1)));
        assert!(!leases.covers(&bank(), &da(1), T0.plus_millis(LEASE_MS_MAX)));
    }

    #[test]
    fn one_request_at_a_time_per_da_and_none_to_a_bank_that_did_not_answer() {
        let mut leases = Leases::default();
        assert!(leases.start_asking(&bank(), &da(1), T0));
        assert!(!leases.start_asking(&bank(), &da(1), T0), "a second request while the first is on its way");
        assert!(leases.start_asking(&bank(), &da(2), T0), "another DA is asked beside it");
        leases.asked(&bank(), &da(1), T0, None, true);
        assert!(leases.start_asking(&bank(), &da(1), T0), "an answer without a lease ends the request");
        leases.asked(&bank(), &da(1), T0, None, false);
        leases.asked(&bank(), &da(2), T0, None, true);
        assert!(!leases.start_asking(&bank(), &da(3), T0.plus_millis(PAUSE_MS - 1)), "paused");
        assert!(leases.start_asking(&bank(), &da(3), T0.plus_millis(PAUSE_MS)), "asked again after the pause");
    }

    #[test]
    fn a_given_lease_runs_for_its_length_and_the_latest_promise_counts() {
        let mut leases = Leases::default();
        assert_eq!(leases.running(&da(1), T0), None);
        let other = ParticipantId::new("STB2").unwrap();
        assert_eq!(leases.give(da(1), &bank(), T0), Some(Lease { ttl_ms: LEASE_MS }));
        assert_eq!(leases.give(da(1), &other, T0.plus_millis(500)), Some(Lease { ttl_ms: LEASE_MS }));
        assert_eq!(leases.holders(&da(1), T0), vec![bank(), other.clone()]);
        assert_eq!(leases.running(&da(1), T0.plus_millis(LEASE_MS)), Some(T0.plus_millis(500 + LEASE_MS)));
        assert_eq!(leases.holders(&da(1), T0.plus_millis(LEASE_MS)), vec![other.clone()]);
        assert_eq!(leases.running(&da(1), T0.plus_millis(500 + LEASE_MS)), None);
        assert_eq!(leases.give(da(1), &bank(), T0.plus_millis(600)), Some(Lease { ttl_ms: LEASE_MS }));
        assert_eq!(leases.holders(&da(1), T0.plus_millis(600)), vec![other.clone(), bank()], "one entry per bank");
        leases.told(&da(1), &other);
        leases.told(&da(1), &bank());
        assert_eq!(leases.running(&da(1), T0.plus_millis(600)), None, "every holder was told it ended");
        assert_eq!(leases.counts().given, 3);
    }

    #[test]
    fn no_lease_is_given_on_a_da_being_closed_or_rekeyed_until_every_such_operation_ends() {
        let mut leases = Leases::default();
        leases.stop(da(1));
        leases.stop(da(1));
        assert_eq!(leases.give(da(1), &bank(), T0), None);
        assert!(leases.give(da(2), &bank(), T0).is_some(), "other DAs are leased");
        leases.resume(&da(1));
        assert_eq!(leases.give(da(1), &bank(), T0), None, "one operation still runs");
        leases.resume(&da(1));
        assert!(leases.give(da(1), &bank(), T0).is_some());
        leases.resume(&da(1));
        assert!(leases.give(da(1), &bank(), T0).is_some(), "a resume too many changes nothing");
    }

    #[test]
    fn a_restarted_node_treats_every_da_as_leased_until_a_lease_it_forgot_would_have_run_out() {
        let leases = Leases::new(T0, true);
        assert_eq!(leases.running(&da(1), T0), Some(T0.plus_millis(LEASE_MS)));
        assert_eq!(leases.running(&da(1), T0.plus_millis(LEASE_MS)), None);
        assert_eq!(Leases::new(T0, false).running(&da(1), T0), None, "a new node gave none");
    }

    #[test]
    fn the_tables_are_bounded_and_make_room_from_leases_that_ended() {
        let mut leases = Leases::default();
        for n in 0..MAX_LEASES {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(n as u64).to_le_bytes());
            assert!(leases.give(Address(dtenge_crypto::PublicKey(key)), &bank(), T0).is_some());
        }
        assert_eq!(leases.give(da(200), &bank(), T0.plus_millis(1)), None, "full of running leases: no promise");
        assert!(leases.give(da(200), &bank(), T0.plus_millis(LEASE_MS)).is_some(), "ended leases make room");
        assert_eq!(leases.given.len(), 1);
    }
}
