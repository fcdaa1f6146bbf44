//! DAs as node operations: opening (directory first, then the journal),
//! KYC, and the reads of balances and settled history.

use std::collections::BTreeSet;

use dtenge_crypto::{PublicKey, SecretKey};
use dtenge_types::{Address, IinBin, TokenId, TxId};

use super::NodeService;
use crate::NodeError;
use crate::accounts::{Account, AccountId, Custody, Holder, KycState};
use crate::archive::Archive;
use crate::directory::{DaEntry, DirectoryAnswer, DirectoryRefusal, DirectoryRequest};
use crate::state::{HistoryEntry, NodeRecord, Notification, Outgoing};
use crate::vault::Balances;

impl NodeService {
    /// Opens a DA for `holder`; the node generates and keeps the key unless
    /// the client holds its own (`client_key`). Registers it in the directory.
    pub async fn open_account(
        &self,
        holder: Holder,
        client_key: Option<PublicKey>,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let (address, custody) = match client_key {
            Some(pk) => {
                pk.check_canonical().map_err(|e| NodeError::Invalid(format!("client key: {e}")))?;
                (Address(pk), Custody::Client)
            }
            None => {
                let key = SecretKey::generate();
                (Address(key.public_key()), Custody::Custodial(Box::new(key)))
            }
        };
        self.open_with(holder, address, custody, kyc).await
    }

    /// Opens a DA with a given key (institutional DAs from configuration).
    pub async fn open_account_with_key(
        &self,
        holder: Holder,
        key: SecretKey,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let address = Address(key.public_key());
        let existing = self.state().account_of(&address).cloned();
        if let Some(existing) = existing {
            // Opened before; make sure the directory has it (a first start may
            // have opened it while the directory was unreachable).
            self.register(&existing).await?;
            return Ok(existing);
        }
        self.open_with(holder, address, Custody::Custodial(Box::new(key)), kyc).await
    }

    /// Opens a DA: the directory first takes the address for this node (it
    /// refuses an address another node's DA has), and only then is the DA
    /// journaled, so a refused opening leaves nothing on the node or in the
    /// directory. Openings run one at a time, so concurrent ones never share
    /// an id.
    pub(super) async fn open_with(
        &self,
        holder: Holder,
        address: Address,
        custody: Custody,
        kyc: KycState,
    ) -> Result<Account, NodeError> {
        let _one_at_a_time = self.opening.lock().await;
        holder.check().map_err(NodeError::Invalid)?;
        if self.state().account_of(&address).is_some() {
            return Err(NodeError::Invalid(format!("a DA with address {address} already exists")));
        }
        let account = Account {
            id: AccountId::new(&self.config.id, self.state().opened.saturating_add(1)),
            holder,
            address,
            custody,
            kyc,
            opened_at: self.clock.now(),
            closed: false,
        };
        self.register(&account).await?;
        crate::witness::tell(&self.config.id, || crate::witness::Produced::Account(address)).await?;
        self.record(vec![NodeRecord::AccountOpened(account.clone())]).await?;
        Ok(account)
    }

    /// Registers a DA in the platform directory (idempotent).
    pub(super) async fn register(&self, account: &Account) -> Result<(), NodeError> {
        let entry = DaEntry {
            address: account.address,
            host: self.config.id.clone(),
            account: account.id.clone(),
            iin_bin: account.holder.iin_bin,
            name: account.holder.name.clone(),
            kind: account.holder.kind,
        };
        match self.directory(DirectoryRequest::Register(entry)).await? {
            DirectoryAnswer::Refused(DirectoryRefusal::Storage(why)) => Err(NodeError::Unavailable(why)),
            DirectoryAnswer::Refused(DirectoryRefusal::AddressTaken { address, host }) => {
                Err(NodeError::AddressTaken { address, host })
            }
            DirectoryAnswer::Refused(refusal @ DirectoryRefusal::NotTheHost { .. }) => {
                Err(NodeError::Invalid(refusal.to_string()))
            }
            DirectoryAnswer::Done => {
                self.remember_host(account.address, self.config.id.clone());
                Ok(())
            }
            DirectoryAnswer::Entry(_) | DirectoryAnswer::Entries(_) => {
                Err(NodeError::Unavailable("the directory answered a registration with something else".into()))
            }
        }
    }

    /// Sets a DA's KYC state.
    pub async fn set_kyc(&self, account: &AccountId, kyc: KycState) -> Result<(), NodeError> {
        self.account(account)?;
        self.record(vec![NodeRecord::KycSet { account: account.clone(), kyc }]).await
    }

    /// A DA.
    pub fn account(&self, id: &AccountId) -> Result<Account, NodeError> {
        self.state().accounts.get(id).cloned().ok_or_else(|| NodeError::UnknownAccount(id.to_string()))
    }

    /// DAs of a holder on this node.
    pub fn accounts_of(&self, iin: &IinBin) -> Vec<Account> {
        self.state().accounts_of(iin).into_iter().cloned().collect()
    }

    /// Balances by kind.
    pub fn balances(&self, id: &AccountId) -> Result<Balances, NodeError> {
        self.account(id)?;
        self.state().vault.balances(id)
    }

    /// Up to `limit` of a DA's newest history lines, newest first.
    pub fn history(&self, id: &AccountId, limit: usize) -> Vec<HistoryEntry> {
        self.archive().history(id, limit)
    }

    /// A DA's history, newest first, until `visit` returns `false` (read
    /// from the archive without holding the node's state).
    pub fn history_newest_first(&self, id: &AccountId, visit: impl FnMut(u64, HistoryEntry) -> bool) {
        self.archive().history_newest_first(id, visit)
    }

    /// Up to `limit` of a DA's newest notifications, newest first.
    pub fn notifications(&self, id: &AccountId, limit: usize) -> Vec<Notification> {
        self.archive().notifications(id, limit)
    }

    /// A DA's notifications, newest first, until `visit` returns `false`.
    pub fn notifications_newest_first(&self, id: &AccountId, visit: impl FnMut(Notification) -> bool) {
        self.archive().notifications_newest_first(id, visit)
    }

    /// The parents of a token this node has seen created.
    pub fn lineage(&self, token: &TokenId) -> Option<Vec<TokenId>> {
        // The archive is read without holding the node's state.
        let archive = {
            let state = self.state();
            if let Some(known) = state.lineage_in_memory(token) {
                return known;
            }
            state.archive().clone()
        };
        archive.lineage(token)
    }

    /// Visits every transaction this node built — those in memory, then the
    /// archived ones — until `visit` returns `false`. The archive is scanned
    /// without holding the node's state, so payments go on meanwhile.
    pub fn for_each_outgoing(&self, mut visit: impl FnMut(&TxId, &Outgoing) -> bool) {
        let (unsettled, archive) = {
            let state = self.state();
            let unsettled: Vec<(TxId, Outgoing)> = state.unsettled().map(|(id, o)| (*id, o.clone())).collect();
            (unsettled, state.archive().clone())
        };
        for (id, o) in &unsettled {
            if !visit(id, o) {
                return;
            }
        }
        // One settled since the copy above was visited already.
        let seen: BTreeSet<TxId> = unsettled.into_iter().map(|(id, _)| id).collect();
        archive.for_each_settled(|id, o| seen.contains(id) || visit(id, o));
    }

    /// The node's archive, for reads that need not hold the state lock
    /// (history, notifications, lineage and received transactions live only there).
    pub fn archive(&self) -> Archive {
        self.state().archive().clone()
    }
}
