//! The account regime as node operations (issue #9): tiers and limits with
//! (reverse) waterfall, enforcement orders, key rotation, closing, and the
//! aggregate report a bank gives NBK. See [`crate::regime`] for the data.

use std::collections::BTreeMap;

use dtenge_crypto::{Ed25519, PublicKey, SecretKey, Signature, Verifier};
use dtenge_net::Role;
use dtenge_types::{
    Address, Amount, Marking, Memo, OrderAct, ParticipantId, SignedOrder, Timestamp, TokenId, Transaction, TxBody, TxId,
};

use super::plan::{Plan, Signers};
use super::{NodeAnswer, NodeRequest, NodeService, PeerAnswer, PeerRequest, TxOutcome, standard_dt};
use crate::NodeError;
use crate::accounts::{Account, AccountId, Custody, HolderKind};
use crate::build::{self, Payee};
use crate::guard::{Exemption, Outflow};
use crate::regime::{
    AccountProfile, BankReport, DayAggregate, LargePayment, LimitKind, LimitPolicy, LinkDirection, LinkedTransfer,
    MarkedMove, MarkedReport, OrderEntry, Reidentification, Tier, astana_day, rekey_proof_message,
};
use crate::state::{Message, NodeRecord, Notification, Status};

impl NodeService {
    // ------------------------------------------------------------------
    // Tiers, limits, linked bank account

    /// Sets a DA's tier and/or linked bank account (`Some(None)` unlinks).
    pub async fn set_profile(
        &self,
        id: &AccountId,
        tier: Option<Tier>,
        linked: Option<Option<String>>,
    ) -> Result<AccountProfile, NodeError> {
        let account = self.account(id)?;
        if account.holder.kind != HolderKind::Individual && tier.is_some() {
            return Err(NodeError::Invalid(format!(
                "{id} is not an individual's DA: tiers and their limits apply to individuals"
            )));
        }
        if let Some(Some(l)) = &linked
            && (l.trim().is_empty() || l.len() > 34 || !l.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(NodeError::Invalid("linked_bank_account must be 1-34 letters and digits (an IBAN)".into()));
        }
        // Unlinked, a capped DA's answer to a payment depends on its balance
        // again: no bank may hold a lease on it by then. The profile is read
        // again after that wait, so a change made meanwhile is kept.
        let mut profile = self.state().profile(id);
        let _leasing = if matches!(linked, Some(None)) && profile.linked_bank_account.is_some() {
            let stopped = self.stop_leasing(&account.address, "unlink the DA's bank account").await?;
            profile = self.state().profile(id);
            Some(stopped)
        } else {
            None
        };
        if let Some(t) = tier {
            profile.tier = t;
        }
        if let Some(link) = linked {
            profile.linked_bank_account = link;
        }
        self.record(vec![NodeRecord::ProfileSet { account: id.clone(), profile: profile.clone() }]).await?;
        Ok(profile)
    }

    /// NBK publishes a limit policy: journals it and sends it to every
    /// participant node. Returns each node's answer.
    pub async fn publish_policy(&self, mut policy: LimitPolicy) -> Result<Vec<(String, String)>, NodeError> {
        if self.config.role != Role::Nbk {
            return Err(NodeError::Forbidden("only NBK publishes the limit policy".into()));
        }
        for tier in [Tier::Simplified, Tier::Standard, Tier::Full] {
            let l = policy.limits(tier);
            if l.max_balance.is_zero() || l.per_payment.is_zero() || l.daily_outgoing.is_zero() {
                return Err(NodeError::Invalid(format!("every limit of the {} tier must be positive", tier.name())));
            }
            if l.per_payment > l.daily_outgoing {
                return Err(NodeError::Invalid(format!(
                    "the {} tier's per-payment limit exceeds its daily limit",
                    tier.name()
                )));
            }
        }
        let current = self.state().policy.as_ref().map(|p| p.version).unwrap_or(0);
        policy.version = current.saturating_add(1);
        policy.published_at = self.clock.now();
        self.record(vec![NodeRecord::PolicyAdopted(policy.clone())]).await?;
        let mut answers = Vec::new();
        let nodes: Vec<ParticipantId> = self
            .participants
            .all()
            .filter(|p| matches!(p.role, Role::Stb | Role::Treasury | Role::Nbk) && p.id != self.config.id)
            .map(|p| p.id.clone())
            .collect();
        for node in nodes {
            let answer = match self.call_node(&node, NodeRequest::Policy(Box::new(policy.clone()))).await {
                Ok(NodeAnswer::Accepted) => "adopted".to_string(),
                Ok(NodeAnswer::Refused(why)) => format!("refused: {why}"),
                Ok(_) => "answered something else".to_string(),
                Err(e) => format!("unreachable: {e}"),
            };
            answers.push((node.to_string(), answer));
        }
        Ok(answers)
    }

    /// A node adopts NBK's policy sent through the message interface.
    pub(crate) async fn adopt_policy(&self, from: &ParticipantId, policy: LimitPolicy) -> Result<(), NodeError> {
        let is_nbk = self.participants.get(from).is_some_and(|p| p.role == Role::Nbk);
        if !is_nbk {
            return Err(NodeError::Forbidden(format!("{from} is not NBK: only NBK sets limits")));
        }
        let current = self.state().policy.as_ref().map(|p| p.version).unwrap_or(0);
        if policy.version <= current {
            return Ok(());
        }
        self.record(vec![NodeRecord::PolicyAdopted(policy)]).await
    }

    /// The policy limits that apply to a DA, if any.
    fn limits_of(&self, account: &Account) -> Option<(Tier, crate::regime::TierLimits)> {
        self.state().limits_of(account)
    }

    /// Whether `address` (a DA of this node) may receive `amount` now.
    pub fn incoming_check(&self, address: &Address, amount: Amount) -> Result<(), NodeError> {
        self.incoming_check_bound(address, amount).map(|_bound| ())
    }

    /// As [`Self::incoming_check`]; when it may, whether the answer depends
    /// on the DA's balance, so that no promise could keep it: it does when
    /// the DA has a balance cap (NBK's limits for its tier) and nowhere for
    /// the excess to go. A DA linked to a bank account, whose bank signs
    /// for it, takes any amount: what passes the cap goes on to the account
    /// on receipt (reverse waterfall).
    pub(super) fn incoming_check_bound(&self, address: &Address, amount: Amount) -> Result<bool, NodeError> {
        let account = self
            .state()
            .account_of(address)
            .cloned()
            .ok_or_else(|| NodeError::UnknownRecipient(address.to_string()))?;
        if account.address != *address {
            return Err(NodeError::Invalid(format!(
                "key {address} of {} was revoked after a key rotation; pay its new address {}",
                account.id, account.address
            )));
        }
        if account.closed {
            return Err(NodeError::AccountClosed(account.id.to_string()));
        }
        let Some((tier, limits)) = self.limits_of(&account) else { return Ok(false) };
        let (total, linked) = {
            let state = self.state();
            (state.vault.balances(&account.id)?.total, state.profile(&account.id).linked_bank_account)
        };
        let after = total.checked_add(amount).ok_or(NodeError::Overflow)?;
        if linked.is_some() && account.key().is_some() {
            return Ok(false);
        }
        if after > limits.max_balance {
            return Err(NodeError::LimitExceeded {
                tier,
                limit: LimitKind::MaxBalance,
                limit_amount: limits.max_balance,
                detail: format!(
                    "the recipient holds {total} and would hold {after} after receiving {amount}; it has no linked bank account for the excess"
                ),
            });
        }
        Ok(true)
    }

    /// Asks the payee's node whether it accepts `amount` for `address`.
    pub(crate) async fn can_receive(
        &self,
        host: &ParticipantId,
        address: &Address,
        amount: Amount,
    ) -> Result<(), NodeError> {
        if *host == self.config.id {
            return self.incoming_check(address, amount);
        }
        if let Some(answer) = self.pre_check_by_lease(host, address, amount).await {
            return answer;
        }
        crate::metrics::pre_check(&self.config.id, crate::metrics::PreCheck::Batch);
        let answer = match self.call_peer(host, PeerRequest::CanReceive { address: *address, amount }).await {
            Ok(answer) => answer,
            // The payee's bank is unreachable: the payment goes ahead (money
            // must not stop because one bank is down) and the delivery waits
            // for it; that bank applies its rules on receipt (a balance cap by
            // the reverse waterfall) and can return funds sent to a closed DA.
            Err(NodeError::Unavailable(why)) => {
                tracing::warn!(bank = %host, %why, "payee's bank unreachable for the pre-check; paying anyway");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match answer {
            PeerAnswer::Accepted => Ok(()),
            PeerAnswer::Refused(reason) => Err(NodeError::PayeeRefused { bank: host.clone(), reason }),
            PeerAnswer::Unavailable(why) => {
                tracing::warn!(bank = %host, %why, "payee's bank could not answer the pre-check; paying anyway");
                Ok(())
            }
        }
    }

    /// This node's own institutional DA (the bank's DA), which stands for the
    /// bank's books in conversions with linked bank accounts.
    pub fn own_da(&self) -> Option<Account> {
        self.state()
            .accounts
            .values()
            .find(|a| a.holder.kind == HolderKind::Institution && a.key().is_some() && !a.closed)
            .cloned()
    }

    /// Waterfall: the bank's DA pays `amount` to the client's DA and the
    /// linked bank account is debited by the same amount.
    pub(crate) async fn waterfall(
        &self,
        account: &Account,
        amount: Amount,
        bank_account: &str,
    ) -> Result<(), NodeError> {
        let bank = self.own_da().ok_or_else(|| NodeError::Invalid("this node has no own DA for waterfall".into()))?;
        let memo = Memo::new(format!("waterfall top-up from {bank_account}")).ok();
        let outcome = self.transfer_between(&bank, account.address, amount, memo).await?;
        self.record(vec![
            NodeRecord::LinkedTransferMade(LinkedTransfer {
                account: account.id.clone(),
                direction: LinkDirection::FromBankAccount,
                amount,
                bank_account: bank_account.to_string(),
                tx: outcome.tx,
                at: self.clock.now(),
                reason: "waterfall: top-up for a payment larger than the DT balance".into(),
            }),
            NodeRecord::Notified {
                account: account.id.clone(),
                notification: Notification {
                    at: self.clock.now(),
                    message: Message::ToppedUp { amount, bank_account: bank_account.to_string() },
                    tx: Some(outcome.tx),
                },
            },
        ])
        .await
    }

    /// A plain payment between two DAs of this node, bypassing the holder's
    /// limits (conversions with the linked account are not payments).
    async fn transfer_between(
        &self,
        from: &Account,
        to: Address,
        amount: Amount,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let clearance = self.clear(from, Outflow::Conversion { amount }).await?;
        let keys = Self::keys_of(from)?;
        let payees = vec![Payee { address: to, host: self.config.id.clone(), amount }];
        let draft = self.draft(from, memo);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
                build::transfer(&draft, inputs, &payees)
            })
            .await?;
        let outcome = self.execute(plan).await?;
        if outcome.status != Status::Success {
            return Err(NodeError::Unavailable(format!("transaction {} is not settled yet", outcome.tx)));
        }
        Ok(outcome)
    }

    /// Reverse waterfall: whatever a DA holds above its tier's cap moves to
    /// the linked bank account. Returns the sweep, if any.
    pub async fn sweep_over_cap(&self, id: &AccountId) -> Result<Option<TxOutcome>, NodeError> {
        let account = self.account(id)?;
        let Some((_, limits)) = self.limits_of(&account) else { return Ok(None) };
        let (total, free, linked) = {
            let state = self.state();
            (
                state.vault.balances(id)?.total,
                state.vault.available(id, standard_dt)?,
                state.profile(id).linked_bank_account,
            )
        };
        let Some(bank_account) = linked else { return Ok(None) };
        let excess = total.saturating_sub(limits.max_balance).min(free);
        if excess.is_zero() || account.key().is_none() {
            return Ok(None);
        }
        let bank = self.own_da().ok_or_else(|| NodeError::Invalid("this node has no own DA".into()))?;
        let memo = Memo::new(format!("reverse waterfall to {bank_account}")).ok();
        let outcome = self.transfer_between(&account, bank.address, excess, memo).await?;
        self.record(vec![
            NodeRecord::LinkedTransferMade(LinkedTransfer {
                account: id.clone(),
                direction: LinkDirection::ToBankAccount,
                amount: excess,
                bank_account: bank_account.clone(),
                tx: outcome.tx,
                at: self.clock.now(),
                reason: format!("reverse waterfall: balance above the cap of {}", limits.max_balance),
            }),
            NodeRecord::Notified {
                account: id.clone(),
                notification: Notification {
                    at: self.clock.now(),
                    message: Message::SweptOverCap { amount: excess, bank_account: bank_account.clone() },
                    tx: Some(outcome.tx),
                },
            },
        ])
        .await?;
        Ok(Some(outcome))
    }

    // ------------------------------------------------------------------
    // Enforcement orders

    /// Records an authority's signed order against a DA of this node and
    /// acts on it: freeze and arrest apply at once, a collection debits the
    /// DA now (as much as its free standard funds allow), a lift ends an
    /// earlier freeze or arrest of the same body.
    pub async fn place_order(&self, signed: SignedOrder, via: &ParticipantId) -> Result<OrderEntry, NodeError> {
        let order = &signed.order;
        if !self.config.params.authorities.contains(&order.authority) {
            return Err(NodeError::Forbidden(format!("{} is not a registered enforcement authority", order.authority)));
        }
        Ed25519.verify(&order.authority, &order.signing_message(), &signed.signature).map_err(|_| {
            NodeError::Forbidden("the order's signature does not verify with the authority's key".into())
        })?;
        let account = self
            .state()
            .account_of(&order.debtor)
            .cloned()
            .ok_or_else(|| NodeError::UnknownAccount(format!("with address {}", order.debtor)))?;
        let key = (order.authority, order.reference.clone());
        if let Some(existing) = self.state().orders.get(&key).cloned() {
            if existing.signed == signed {
                return Ok(existing);
            }
            return Err(NodeError::Invalid(format!(
                "order {} of this authority is already recorded with other terms",
                order.reference
            )));
        }
        let now = self.clock.now();
        if let OrderAct::Lift { order: target } = &order.act {
            // An order is (authority, reference): two bodies may use the same
            // reference, and each lifts only its own.
            let target_key = (order.authority, target.clone());
            let found = self.state().orders.get(&target_key).cloned();
            let Some(target_entry) = found else {
                let others = self
                    .state()
                    .orders
                    .values()
                    .find(|e| e.signed.order.reference == *target && e.account == account.id)
                    .map(|e| e.via.clone());
                return Err(match others {
                    Some(via) => NodeError::Forbidden(format!(
                        "order {target} against this DA was placed by another body ({via}); only that body may lift it"
                    )),
                    None => NodeError::UnknownAccount(format!("order {target} of this authority on this node")),
                });
            };
            if target_entry.account != account.id {
                return Err(NodeError::Invalid(format!("order {target} is against another DA")));
            }
            if !target_entry.active() {
                return Err(NodeError::Invalid(format!("order {target} is not a freeze or arrest in force")));
            }
            let entry = self.order_entry(signed.clone(), &account, via, now);
            self.record(vec![
                NodeRecord::OrderPlaced(Box::new(entry.clone())),
                NodeRecord::OrderLifted {
                    authority: target_key.0,
                    reference: target_key.1,
                    by: order.reference.clone(),
                    at: now,
                },
                self.order_notice(
                    &account.id,
                    Message::OrderLifted { order: target.clone(), by: via.clone(), reason: order.reason.to_string() },
                ),
            ])
            .await?;
            return Ok(entry);
        }
        let entry = self.order_entry(signed.clone(), &account, via, now);
        let (reference, by, reason) = (order.reference.clone(), via.clone(), order.reason.to_string());
        let message = match &order.act {
            OrderAct::Freeze => Message::Frozen { order: reference, by, reason },
            OrderAct::Arrest { amount } => Message::Arrested { amount: *amount, order: reference, by, reason },
            OrderAct::Collect { amount, .. } => {
                Message::CollectionOrdered { amount: *amount, order: reference, by, reason }
            }
            // Handled above; worded the same if it ever reaches here.
            OrderAct::Lift { order: target } => Message::OrderLifted { order: target.clone(), by, reason },
        };
        self.record(vec![NodeRecord::OrderPlaced(Box::new(entry.clone())), self.order_notice(&account.id, message)])
            .await?;
        if let OrderAct::Collect { amount, beneficiary } = &order.act {
            self.collect(&account, signed.clone(), *amount, *beneficiary).await?;
        }
        Ok(self.state().orders.get(&key).cloned().unwrap_or(entry))
    }

    fn order_entry(&self, signed: SignedOrder, account: &Account, via: &ParticipantId, now: Timestamp) -> OrderEntry {
        OrderEntry {
            signed,
            account: account.id.clone(),
            via: via.clone(),
            placed_at: now,
            lifted: None,
            collected: Amount::ZERO,
            txs: Vec::new(),
        }
    }

    fn order_notice(&self, account: &AccountId, message: Message) -> NodeRecord {
        NodeRecord::Notified {
            account: account.clone(),
            notification: Notification { at: self.clock.now(), message, tx: None },
        }
    }

    /// Executes (the rest of) a collection order: the kernel's `collect`,
    /// signed by this node as the DA's host, the owner's key not needed.
    async fn collect(
        &self,
        account: &Account,
        signed: SignedOrder,
        ordered: Amount,
        beneficiary: Address,
    ) -> Result<Option<TxOutcome>, NodeError> {
        let key = (signed.order.authority, signed.order.reference.clone());
        let (done, collectible) = {
            let state = self.state();
            let done = state.orders.get(&key).map(|e| e.collected).unwrap_or_default();
            // Another body's arrest keeps its sum for that body's claim.
            let others_arrested =
                Amount::checked_sum(state.active_orders(&account.id).into_iter().filter_map(
                    |e| match e.signed.order.act {
                        OrderAct::Arrest { amount } if e.authority() != signed.order.authority => Some(amount),
                        _ => None,
                    },
                ))
                .ok_or(NodeError::Overflow)?;
            let free = state.vault.available(&account.id, standard_dt)?;
            (done, free.checked_sub(others_arrested).unwrap_or(Amount::ZERO))
        };
        let amount = ordered.checked_sub(done).unwrap_or(Amount::ZERO).min(collectible);
        if amount.is_zero() {
            return Ok(None);
        }
        let host = self.host_of(&beneficiary).await?;
        let payee = Payee { address: beneficiary, host, amount };
        let clearance = self.clear(account, Outflow::Collection { amount, authority: signed.order.authority }).await?;
        let draft = self.draft(account, Some(Memo::new(format!("collection {}", signed.order.reference))?));
        let plan = self
            .plan(clearance, Signers::Host, None, amount, standard_dt, |inputs| {
                build::collect(&draft, inputs, &payee, signed.clone())
            })
            .await?;
        let outcome = self.execute(plan).await?;
        self.record(vec![NodeRecord::OrderCollected { authority: key.0, reference: key.1, tx: outcome.tx, amount }])
            .await?;
        Ok(Some(outcome))
    }

    /// Orders recorded on this node, newest first.
    pub fn orders(&self) -> Vec<OrderEntry> {
        let mut list: Vec<OrderEntry> = self.state().orders.values().cloned().collect();
        list.sort_by_key(|e| std::cmp::Reverse(e.placed_at));
        list
    }

    // ------------------------------------------------------------------
    // Key rotation

    /// After re-identifying the client (`reference`), gives the DA a new key:
    /// the bank's own (custodial) or the client's, proved by a signature over
    /// [`rekey_proof_message`]. The old key is revoked at once; the host bank
    /// then moves every token of the old key to the new one (kernel `rekey`).
    pub async fn rekey(
        &self,
        id: &AccountId,
        client_key: Option<(PublicKey, Signature)>,
        reference: &str,
    ) -> Result<(Account, Vec<TxId>), NodeError> {
        let account = self.account(id)?;
        if account.closed {
            return Err(NodeError::AccountClosed(id.to_string()));
        }
        if reference.trim().is_empty() || reference.len() > 100 {
            return Err(NodeError::Invalid(
                "the re-identification reference must be 1-100 characters (how the client was identified)".into(),
            ));
        }
        let busy = self.state().vault.of_account(id).any(|(_, s)| s.reserved_by.is_some());
        if busy {
            return Err(NodeError::FundsInFlight { requested: Amount::ZERO, available: Amount::ZERO });
        }
        // Until the new key is recorded, the old address is promised to nobody.
        let _leasing = self.stop_leasing(&account.address, "give the DA a new key").await?;
        let (new, custody) = match client_key {
            Some((pk, proof)) => {
                pk.check_canonical().map_err(|e| NodeError::Invalid(format!("new key: {e}")))?;
                let message = rekey_proof_message(id, &account.address, &Address(pk));
                Ed25519.verify(&pk, &message, &proof).map_err(|_| {
                    NodeError::Invalid("the proof does not verify: sign the rekey message with the new key".into())
                })?;
                (Address(pk), Custody::Client)
            }
            None => {
                let key = SecretKey::generate();
                (Address(key.public_key()), Custody::Custodial(Box::new(key)))
            }
        };
        if self.state().account_of(&new).is_some() || self.state().revoked.contains_key(&new) {
            return Err(NodeError::Invalid(format!("key {new} is already in use")));
        }
        let reid = Reidentification {
            account: id.clone(),
            old: account.address,
            new,
            reference: reference.to_string(),
            client_key: matches!(custody, Custody::Client),
            at: self.clock.now(),
        };
        // The directory takes the new address for this DA first: an address
        // another node's DA has is refused before anything is recorded.
        self.register(&Account { address: new, ..account.clone() }).await?;
        self.record(vec![
            NodeRecord::Rekeyed { reid, custody },
            self.order_notice(id, Message::Rekeyed { address: new }),
        ])
        .await?;
        let rotated = self.account(id)?;
        let txs = self.migrate_tokens(&rotated).await?;
        Ok((rotated, txs))
    }

    /// Moves every token of the DA still owned by an old key to its current key.
    pub async fn migrate_tokens(&self, account: &Account) -> Result<Vec<TxId>, NodeError> {
        let mut txs = Vec::new();
        loop {
            let clearance = self.clear(account, Outflow::Exempt(Exemption::Rekey)).await?;
            let plan = {
                let mut state = self.state();
                let old = state
                    .vault
                    .of_account(&account.id)
                    .find(|(_, s)| s.token.owner != account.address && s.reserved_by.is_none())
                    .map(|(_, s)| s.token.owner);
                let Some(old) = old else { break };
                let tokens = state.vault.select_all(
                    &clearance,
                    |t| t.owner == old,
                    dtenge_types::MAX_INPUTS.min(dtenge_types::MAX_OUTPUTS),
                );
                let draft = crate::build::Draft {
                    host: self.config.id.clone(),
                    payer: old,
                    now: self.clock.now(),
                    window_ms: super::WINDOW_MS,
                    memo: None,
                    change_parts: 1,
                };
                let body: TxBody = build::rekey(&draft, &tokens, account.address)?;
                let ids: Vec<TokenId> = tokens.iter().map(|(i, _)| *i).collect();
                state.vault.reserve(&clearance, &ids, body.id())?;
                Plan {
                    account: account.id.clone(),
                    body,
                    inputs: tokens.into_iter().map(|(_, t)| t).collect(),
                    signers: Signers::Host,
                    attest: None,
                    clearance,
                    in_pipeline: Default::default(),
                }
            };
            let outcome = self.execute(plan).await?;
            if outcome.status != Status::Success {
                return Err(NodeError::Unavailable(format!("rotation {} is not settled yet; retry later", outcome.tx)));
            }
            txs.push(outcome.tx);
        }
        Ok(txs)
    }

    /// Whether `signer` is a key this node revoked.
    pub fn is_revoked(&self, signer: &PublicKey) -> bool {
        self.state().revoked.contains_key(&Address(*signer))
    }

    // ------------------------------------------------------------------
    // Closing

    /// Closes a DA at zero balance; with `convert_out`, first converts its
    /// standard balance to the linked bank account.
    pub async fn close_account(&self, id: &AccountId, convert_out: bool) -> Result<Account, NodeError> {
        let account = self.account(id)?;
        if account.closed {
            return Err(NodeError::AccountClosed(id.to_string()));
        }
        if let Some(order) = self.state().active_orders(id).first() {
            return Err(NodeError::Enforcement(format!(
                "{id} is under order {} of {}: it cannot be closed until the order is lifted",
                order.signed.order.reference, order.via
            )));
        }
        let balances = self.state().vault.balances(id)?;
        let busy = self.state().vault.of_account(id).any(|(_, s)| s.reserved_by.is_some());
        if busy {
            return Err(NodeError::FundsInFlight { requested: balances.total, available: Amount::ZERO });
        }
        // Until it is closed, the DA is promised to nobody.
        let _leasing = self.stop_leasing(&account.address, "close the DA").await?;
        // Other currencies are listed, never added up: a sum across
        // currencies means nothing.
        let other: Vec<String> = balances
            .other_currencies
            .iter()
            .filter(|(_, amount)| !amount.is_zero())
            .map(|(currency, amount)| format!("{amount} {currency}"))
            .collect();
        if !balances.total.is_zero() || !other.is_empty() {
            if !convert_out {
                return Err(NodeError::BalanceNotZero { account: id.to_string(), balance: balances.total });
            }
            let not_standard = balances.total.saturating_sub(balances.standard);
            if !not_standard.is_zero() || !other.is_empty() {
                let other = if other.is_empty() { "nothing".to_string() } else { other.join(", ") };
                return Err(NodeError::Invalid(format!(
                    "{id} holds {not_standard} DT that is marked, held, VAT or reserved for a mandate (and {other} in other currencies): only standard DT can be converted out; settle the rest first"
                )));
            }
            let bank_account = self.state().profile(id).linked_bank_account.ok_or_else(|| {
                NodeError::Invalid(format!("{id} has no linked bank account to convert {} DT to", balances.standard))
            })?;
            let bank = self.own_da().ok_or_else(|| NodeError::Invalid("this node has no own DA".into()))?;
            let memo = Memo::new(format!("closing: conversion to {bank_account}")).ok();
            let outcome = self.transfer_between(&account, bank.address, balances.standard, memo).await?;
            self.record(vec![NodeRecord::LinkedTransferMade(LinkedTransfer {
                account: id.clone(),
                direction: LinkDirection::ToBankAccount,
                amount: balances.standard,
                bank_account,
                tx: outcome.tx,
                at: self.clock.now(),
                reason: "closing the DA: balance converted out".into(),
            })])
            .await?;
        }
        self.record(vec![NodeRecord::AccountClosed { account: id.clone(), at: self.clock.now() }]).await?;
        self.account(id)
    }

    // ------------------------------------------------------------------
    // Regulator view

    /// This bank's report to NBK: aggregates only, no names or IINs. A day
    /// whose payments sum past the representable amount is
    /// [`NodeError::Overflow`], never a saturated figure.
    pub fn bank_report(&self, from: Timestamp, to: Timestamp, threshold: Amount) -> Result<BankReport, NodeError> {
        let state = self.state();
        let mut overflow = false;
        let mut add = |total: &mut Amount, amount: Amount| match total.checked_add(amount) {
            Some(sum) => *total = sum,
            None => overflow = true,
        };
        let mut days: BTreeMap<u64, DayAggregate> = BTreeMap::new();
        let mut large: BTreeMap<TxId, LargePayment> = BTreeMap::new();
        let mut tiers: BTreeMap<String, u64> = BTreeMap::new();
        for a in state.accounts.values() {
            if a.holder.kind == HolderKind::Individual && !a.closed {
                *tiers.entry(state.profile(&a.id).tier.name().to_string()).or_default() += 1;
            }
        }
        state.for_each_history(|account, e| {
            let kind = state.accounts.get(account).map(|a| a.holder.kind).unwrap_or(HolderKind::Individual);
            if e.status == Status::Success && e.at >= from && e.at <= to {
                let day = astana_day(e.at);
                let agg = days.entry(day).or_insert(DayAggregate {
                    day,
                    payments_out: 0,
                    amount_out: Amount::ZERO,
                    payments_in: 0,
                    amount_in: Amount::ZERO,
                });
                if !e.outgoing.is_zero() {
                    agg.payments_out += 1;
                    add(&mut agg.amount_out, e.outgoing);
                    if e.outgoing >= threshold {
                        large.entry(e.tx).or_insert(LargePayment {
                            tx: e.tx,
                            bank: self.config.id.clone(),
                            at: e.at,
                            amount: e.outgoing,
                            kind: e.kind.clone(),
                            payer_kind: kind,
                        });
                    }
                }
                if !e.incoming.is_zero() {
                    agg.payments_in += 1;
                    add(&mut agg.amount_in, e.incoming);
                }
            }
            true
        });
        let mut marked: BTreeMap<String, MarkedReport> = BTreeMap::new();
        let mut visit = |tx: &Transaction| {
            let mut per: BTreeMap<String, (ParticipantId, MarkedMove)> = BTreeMap::new();
            let touched = tx.body.outputs.iter().filter_map(|t| match &t.marking {
                Some(Marking::Address(m)) => {
                    Some((format!("address:{}", m.rule.reference), m.rule.initiator_node.clone(), Some(m.level), t))
                }
                Some(Marking::Parameter(m)) => {
                    Some((format!("parameter:{}", m.parameter), m.initiator_node.clone(), None, t))
                }
                _ => None,
            });
            for (name, node, level, t) in touched {
                if node != self.config.id {
                    continue;
                }
                let slot = per.entry(name).or_insert_with(|| {
                    (
                        node,
                        MarkedMove {
                            tx: tx.id(),
                            level,
                            amount: Amount::ZERO,
                            unmarked: Amount::ZERO,
                            to_banks: vec![],
                        },
                    )
                });
                // Outputs of one transaction: the kernel keeps their sum representable.
                slot.1.amount = slot.1.amount.checked_add(t.amount).unwrap_or(slot.1.amount);
                slot.1.level = slot.1.level.max(level);
                if !slot.1.to_banks.contains(&t.host) {
                    slot.1.to_banks.push(t.host.clone());
                }
            }
            for (name, (node, mv)) in per {
                marked
                    .entry(name.clone())
                    .or_insert_with(|| MarkedReport { marking: name, initiator_node: node, moves: Vec::new() })
                    .moves
                    .push(mv);
            }
        };
        state.for_each_outgoing(|_, o| {
            if o.status == Status::Success {
                visit(&o.tx);
            }
            true
        });
        state.for_each_received(|_, tx, _| {
            visit(tx);
            true
        });
        if overflow {
            return Err(NodeError::Overflow);
        }
        let mut large: Vec<LargePayment> = large.into_values().collect();
        large.sort_by_key(|l| std::cmp::Reverse(l.at));
        Ok(BankReport {
            bank: self.config.id.clone(),
            accounts_open: state.accounts.values().filter(|a| !a.closed).count() as u64,
            accounts_closed: state.accounts.values().filter(|a| a.closed).count() as u64,
            tiers,
            active_orders: state.orders.values().filter(|e| e.active()).count() as u64,
            days: days.into_values().collect(),
            large_payments: large,
            marked: marked.into_values().collect(),
        })
    }

    /// NBK gathers every bank's report through the message interface.
    pub async fn regulator_report(
        &self,
        from: Timestamp,
        to: Timestamp,
        threshold: Amount,
    ) -> Result<Vec<BankReport>, NodeError> {
        if self.config.role != Role::Nbk {
            return Err(NodeError::Forbidden("only NBK gathers the regulator's report".into()));
        }
        let mut reports = vec![self.bank_report(from, to, threshold)?];
        let nodes: Vec<ParticipantId> = self
            .participants
            .all()
            .filter(|p| matches!(p.role, Role::Stb | Role::Treasury) && p.id != self.config.id)
            .map(|p| p.id.clone())
            .collect();
        for node in nodes {
            match self.call_node(&node, NodeRequest::Report { from, to, threshold }).await? {
                NodeAnswer::Report(r) => reports.push(*r),
                NodeAnswer::Refused(why) => return Err(NodeError::Unavailable(format!("{node} refused: {why}"))),
                _ => return Err(NodeError::Unavailable(format!("{node} answered something else"))),
            }
        }
        Ok(reports)
    }
}
