//! An operation as a plan: which tokens (selected and reserved under the
//! payer's guard's clearance), which build shape, which attestations, who
//! signs. Tokens are handed out only against a [`Clearance`], so no plan
//! exists that skipped the guard.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dtenge_crypto::{Ed25519, PublicKey, SecretKey};
use dtenge_ledger::Context;
use dtenge_net::{Bus, Handler, HandlerError, Role};
use dtenge_notary::{NotaryRejection, Receipt, TxClaim, Verdict};
use dtenge_oracle::model::{AttestRequest, ContractPurpose, EventState};
use dtenge_oracle::service::{NoticeKind, OracleAnswer, OracleRequest};
use dtenge_oracle::{OracleCode, OracleError, OracleRefusal};
use dtenge_types::{
    Address, Amount, CbsRef, ContractNo, Encumbrance, EventId, Hold, IinBin, InvoiceId, MandateId, MandateTerms,
    Marking, MarkingRule, Memo, ParameterId, ParticipantId, Timestamp, Token, TokenId, Transaction, TxBody, TxId,
};

use super::plan::Plan;
use super::protocol::{LinkAnswer, LinkRequest, MAX_LINK_BATCH, NodeAnswer, NodeRequest};
use super::{NOTARY_ATTEMPTS, NodeService, PayTo, TxOutcome, durable, standard_dt, store};
use crate::NodeError;
use crate::accounts::{Account, AccountId, Custody, Holder, KycState};
use crate::archive::Archive;
use crate::build::{self, Draft, Payee};
use crate::directory::{DaEntry, DirectoryAnswer, DirectoryRefusal, DirectoryRequest};
use crate::guard::{self, Clearance, Cleared, Exemption, Outflow, Standing};
use crate::state::{HistoryEntry, NodeRecord, Notification, Outgoing, Status};
use crate::vault::Balances;

/// A transaction ready to go: body, resolved inputs, who signs, what the oracle must attest.
pub(super) struct Plan {
    /// The DA whose transaction it is (whose book counts it).
    pub(super) account: AccountId,
    /// What is built.
    pub(super) body: TxBody,
    /// The inputs, resolved, reserved for this body.
    pub(super) inputs: Vec<Token>,
    /// The custodial keys that sign.
    pub(super) signers: Vec<SecretKey>,
    /// What the oracle must attest, if anything.
    pub(super) attest: Option<AttestRequest>,
    /// The payer's guard's permission; dropped once `Prepared` is journaled
    /// (the DA's book then counts the amount) or the operation is refused.
    pub(super) clearance: Clearance,
}

impl NodeService {
    /// Selects, builds and reserves under one lock, so concurrent operations
    /// never pick the same tokens.
    pub(super) fn plan(
        &self,
        clearance: Clearance,
        signers: Vec<SecretKey>,
        attest: Option<AttestRequest>,
        amount: Amount,
        wanted: impl Fn(&Token) -> bool,
        build: impl FnOnce(&[(TokenId, Token)]) -> Result<TxBody, NodeError>,
    ) -> Result<Plan, NodeError> {
        let mut state = self.state();
        let inputs = state.vault.select(&clearance, amount, wanted)?;
        let body = build(&inputs)?;
        let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
        state.vault.reserve(&clearance, &ids, body.id())?;
        Ok(Plan {
            account: clearance.account().clone(),
            body,
            inputs: inputs.into_iter().map(|(_, t)| t).collect(),
            signers,
            attest,
            clearance,
        })
    }

    /// Runs the payer's guard for `outflow` from `account` (see [`crate::guard`]):
    /// tops the DA up from its linked bank account when the guard asks, then
    /// asks again.
    pub(crate) async fn clear(&self, account: &Account, outflow: Outflow) -> Result<Clearance, NodeError> {
        let mut topped_up = false;
        loop {
            let cleared = {
                let state = self.state();
                let current =
                    state.accounts.get(&account.id).ok_or_else(|| NodeError::UnknownAccount(account.id.to_string()))?;
                let standing = Standing {
                    account: current,
                    limits: state.limits_of(current),
                    spent_today: state.spent_on_day(&current.id, self.clock.now()),
                    orders: state.active_orders(&current.id),
                    free_standard: state.vault.available(&current.id, standard_dt)?,
                    linked_bank_account: state.profile(&current.id).linked_bank_account,
                };
                guard::clear(&standing, outflow, &self.pending)?
            };
            match cleared {
                Cleared::Go(clearance) => return Ok(clearance),
                Cleared::TopUp { shortfall, bank_account } if !topped_up => {
                    // Boxed: the top-up is itself a guarded conversion.
                    Box::pin(self.waterfall(account, shortfall, &bank_account)).await?;
                    topped_up = true;
                }
                Cleared::TopUp { shortfall, .. } => {
                    return Err(NodeError::FundsInFlight { requested: shortfall, available: Amount::ZERO });
                }
            }
        }
    }

    /// The custodial key the node signs with for `account`.
    pub(super) fn keys_of(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        let key = account.key().cloned().ok_or_else(|| NodeError::ClientSigns(account.id.to_string()))?;
        Ok(vec![key])
    }

    pub(crate) fn custodial_keys(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        Self::keys_of(account)
    }
}
