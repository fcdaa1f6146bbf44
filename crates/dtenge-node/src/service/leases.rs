//! Leases between banks ([`crate::lease`]): a payer's node asks the payee's
//! bank for one with a pre-check and pays within it without asking; the
//! payee's bank gives one on a DA whose answer does not depend on its
//! balance, and lets a DA stop taking payments (closing it, a new key,
//! unlinking its bank account) only once it ended every lease on it.

use dtenge_types::{Address, Amount, ParticipantId};

use super::NodeService;
use super::protocol::{NodeAnswer, NodeRequest};
use crate::NodeError;
use crate::lease::Lease;
use crate::metrics::PreCheck;

impl NodeService {
    /// The pre-check of a payment of `amount` to `address`, a DA of another
    /// bank `host`, by lease: `Some` answer when a lease this node holds
    /// covers the payment or the bank answered a lease request; `None` when
    /// the pre-check is to be asked as before — a request for this DA is
    /// already on its way, or the bank did not answer one (unreachable, or
    /// a release without leases), which pauses asking it for a while.
    pub(super) async fn pre_check_by_lease(
        &self,
        host: &ParticipantId,
        address: &Address,
        amount: Amount,
    ) -> Option<Result<(), NodeError>> {
        let asked_at = self.clock.now();
        {
            let mut leases = self.leases();
            if leases.covers(host, address, asked_at) {
                crate::metrics::pre_check(&self.config.id, PreCheck::Lease);
                return Some(Ok(()));
            }
            if !leases.start_asking(host, address, asked_at) {
                return None;
            }
        }
        let answer = self.call_node(host, NodeRequest::Lease { address: *address, amount }).await;
        let (lease, answer) = match answer {
            Ok(NodeAnswer::Lease(lease)) => (Some(lease), Some(Ok(()))),
            Ok(NodeAnswer::Accepted) => (None, Some(Ok(()))),
            Ok(NodeAnswer::Refused(reason)) => {
                (None, Some(Err(NodeError::PayeeRefused { bank: host.clone(), reason })))
            }
            Ok(_) | Err(_) => (None, None),
        };
        self.leases().asked(host, address, asked_at, lease, answer.is_some());
        if answer.is_some() {
            crate::metrics::pre_check(&self.config.id, PreCheck::LeaseRequest);
        }
        answer
    }

    /// Bank `from`'s lease request on `address`, one of this node's DAs:
    /// the pre-check's answer for `amount`, with a lease unless the answer
    /// depends on the DA's balance (a balance cap with nowhere for the
    /// excess to go), which no promise could keep.
    pub(super) async fn give_lease(
        &self,
        from: &ParticipantId,
        address: &Address,
        amount: Amount,
    ) -> Result<Option<Lease>, NodeError> {
        self.ensure_hosted_here(address).await?;
        let _turn = self.turn().await;
        if self.incoming_check_bound(address, amount)? {
            return Ok(None);
        }
        Ok(self.leases().give(*address, from, self.clock.now()))
    }

    /// Stops giving leases on `address` while `what` is done to its DA
    /// (closing it, a new key, unlinking its bank account), and ends those
    /// given: every bank holding one is told, all at once. One that cannot
    /// be told may still pay under it, so until it runs out
    /// [`NodeError::Busy`]. Leases may be given again when the returned
    /// guard is dropped; by then the DA refuses payments to `address`, or
    /// its answer depends on its balance, so none is.
    pub(super) async fn stop_leasing(&self, address: &Address, what: &str) -> Result<LeasingStopped<'_>, NodeError> {
        let holders = {
            let mut leases = self.leases();
            leases.stop(*address);
            leases.holders(address, self.clock.now())
        };
        let stopped = LeasingStopped { node: self, address: *address };
        // Told together, so one holder that cannot be reached delays the
        // answer by one network timeout, not one per holder.
        let answers = futures_util::future::join_all(
            holders.iter().map(|holder| self.call_node(holder, NodeRequest::LeaseEnd { address: *address })),
        )
        .await;
        for (holder, answer) in holders.iter().zip(answers) {
            match answer {
                Ok(NodeAnswer::Accepted) => self.leases().told(address, holder),
                Ok(other) => {
                    tracing::warn!(%holder, %address, answer = ?other, "a lease could not be ended; it runs out")
                }
                Err(e) => tracing::warn!(%holder, %address, error = %e, "a lease could not be ended; it runs out"),
            }
        }
        let now = self.clock.now();
        if let Some(until) = self.leases().running(address, now) {
            return Err(NodeError::Busy(format!(
                "another bank may pay {address} for {} ms more under a lease this bank gave it (one that could not be told it ended, or one given before this node restarted); {what} after then",
                until.0.saturating_sub(now.0)
            )));
        }
        Ok(stopped)
    }
}

/// Leases on a DA stopped while it is closed or given a new key
/// ([`NodeService::stop_leasing`]).
pub(super) struct LeasingStopped<'a> {
    node: &'a NodeService,
    address: Address,
}

impl Drop for LeasingStopped<'_> {
    fn drop(&mut self) {
        self.node.leases().resume(&self.address);
    }
}
