//! The background tick: oracle notices (release, cancel), expired holds and
//! awaited signatures, transactions left unresolved (after a crash or while
//! the notary was down), deliveries outstanding.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;

use dtenge_oracle::service::{NoticeKind, OracleAnswer, OracleRequest};
use dtenge_types::{Encumbrance, EventId, Token, TokenId, Transaction, TxId};

use super::NodeService;
use crate::NodeError;
use crate::accounts::AccountId;
use crate::state::{Message, NodeRecord, Notification};

/// Unsettled transactions one tick resolves, or delivers, at a time.
const AT_ONCE: usize = 256;

impl NodeService {
    /// One round of background work: oracle notices, expiries, deliveries
    /// and unresolved transactions. Returns what it did, for logs and tests.
    pub async fn tick(&self) -> Vec<String> {
        let mut done = Vec::new();
        self.expire_awaiting();
        match self.import_cbs().await {
            Ok(lines) => done.extend(lines),
            Err(e) => done.push(format!("CBS: {e}")),
        }
        if let Err(e) = self.process_notices(&mut done).await {
            done.push(format!("notices: {e}"));
        }
        self.expire_holds(&mut done).await;
        self.expire_card_authorisations(&mut done).await;
        // Beside each other: a notary that is slow to answer (a group
        // without a leader, a call that times out) holds up what is in
        // flight, not what is committed and owed to a payee.
        let (resolved, ()) = futures_util::future::join(self.resolve_in_flight(), self.deliver_outstanding()).await;
        done.extend(resolved);
        done
    }

    /// Delivers every committed transaction some node has not taken yet, up
    /// to [`AT_ONCE`] at a time: deliveries to one node share its batches,
    /// and a node that does not answer holds up one round, not one per
    /// delivery.
    async fn deliver_outstanding(&self) {
        let pending: BTreeSet<TxId> = self.state().undelivered().into_iter().map(|(id, _)| id).collect();
        futures_util::stream::iter(pending).for_each_concurrent(AT_ONCE, |id| self.deliver_pending(id)).await;
    }

    pub(super) async fn process_notices(&self, done: &mut Vec<String>) -> Result<(), NodeError> {
        let after = self.notice_cursor.load(Ordering::SeqCst);
        let OracleAnswer::Notices(notices) = self.oracle(OracleRequest::Notices { after }).await? else {
            return Ok(());
        };
        for notice in notices {
            match &notice.kind {
                NoticeKind::EventOccurred { event } | NoticeKind::CampaignSucceeded { event } => {
                    for account in self.holders_of(event) {
                        match self.release(&account, event).await {
                            Ok(o) => done.push(format!("released for {event} from {account}: {}", o.tx)),
                            Err(e) => done.push(format!("release for {event} from {account}: {e}")),
                        }
                    }
                }
                NoticeKind::EventCancelled { event } => {
                    for account in self.holders_of(event) {
                        match self.unhold(&account, event, false).await {
                            Ok(o) => done.push(format!("returned {event} to {account}: {}", o.tx)),
                            Err(e) => done.push(format!("return for {event} to {account}: {e}")),
                        }
                    }
                }
                NoticeKind::EventRegistered(spec) => {
                    let notes: Vec<NodeRecord> = {
                        let state = self.state();
                        [spec.sender, Some(spec.recipient)]
                            .into_iter()
                            .flatten()
                            .filter_map(|a| state.account_of(&a))
                            .map(|a| NodeRecord::Notified {
                                account: a.id.clone(),
                                notification: Notification {
                                    at: self.clock.now(),
                                    message: Message::EventRegistered { event: spec.id.clone() },
                                    tx: None,
                                },
                            })
                            .collect()
                    };
                    self.record(notes).await?;
                }
                NoticeKind::ParameterRegistered { .. } => {}
            }
            self.notice_cursor.fetch_max(notice.seq, Ordering::SeqCst);
        }
        Ok(())
    }

    pub(super) async fn expire_holds(&self, done: &mut Vec<String>) {
        let now = self.clock.now();
        let due: Vec<(AccountId, EventId)> = {
            let state = self.state();
            let mut due = BTreeSet::new();
            for (_, s) in state.vault.iter() {
                if let (Some(Encumbrance::Hold(h)), None) = (&s.token.encumbrance, s.reserved_by)
                    && h.valid_until < now
                {
                    due.insert((s.account.clone(), h.event.clone()));
                }
            }
            due.into_iter().collect()
        };
        for (account, event) in due {
            match self.unhold(&account, &event, true).await {
                Ok(o) => done.push(format!("expired {event} back to {account}: {}", o.tx)),
                Err(e) => done.push(format!("expiry of {event} for {account}: {e}")),
            }
        }
    }

    /// Transactions prepared but never settled (a crash, or the notary was
    /// down): committed if the notary has them, resubmitted while their window
    /// is open, aborted after. The notary is asked once first: while it
    /// cannot be reached, nothing in flight can be resolved, so none is tried
    /// (no payee's bank asked again, no claim sent) until the next tick.
    /// Otherwise up to [`AT_ONCE`] are resolved at a time, so their
    /// pre-checks and claims share batches.
    pub(super) async fn resolve_in_flight(&self) -> Vec<String> {
        let in_flight: Vec<(Transaction, Vec<Token>)> = {
            // Not those whose own operation is still seeing them through
            // (notarising, settling): asking the notary again would only
            // double the traffic, never settle them sooner.
            let owned = self.in_pipeline.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let state = self.state();
            state
                .in_flight()
                .into_iter()
                .filter(|id| !owned.contains(id))
                .filter_map(|id| state.outgoing(&id).map(|o| (o.tx, o.inputs)))
                .collect()
        };
        let Some(first) = in_flight.first().map(|(tx, _)| tx.id()) else { return Vec::new() };
        if let Err(e) = self.notary.receipt(&first).await {
            return vec![format!(
                "{} in flight left for the next tick: the notary cannot be reached: {e}",
                in_flight.len()
            )];
        }
        futures_util::stream::iter(in_flight)
            .map(|(tx, inputs)| async move { format!("resolved {}: {:?}", tx.id(), self.resolve(&tx, &inputs).await) })
            .buffered(AT_ONCE)
            .collect()
            .await
    }

    /// Frees the inputs of prepared transactions whose window has closed.
    pub(super) fn expire_awaiting(&self) {
        let now = self.clock.now();
        let expired: Vec<(TxId, Vec<TokenId>)> = {
            let mut awaiting = self.awaiting.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<TxId> =
                awaiting.iter().filter(|(_, p)| p.body.window.not_after < now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| awaiting.remove(&id).map(|p| (id, p.body.inputs.to_vec()))).collect()
        };
        let now_expired: Vec<(TxId, Vec<TokenId>)> = {
            let mut cosigned = self.cosigned.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<TxId> = cosigned.iter().filter(|(_, (_, _, until))| *until < now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| cosigned.remove(&id).map(|(_, inputs, _)| (id, inputs))).collect()
        };
        let mut state = self.state();
        for (id, inputs) in expired.into_iter().chain(now_expired) {
            state.vault.unreserve(&inputs, id);
        }
    }
}
