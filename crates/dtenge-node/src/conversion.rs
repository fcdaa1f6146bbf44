//! Conversion between non-cash tenge and DT at the STB–NBK level (SPEC §5,
//! §6), through the NBK core banking system's file exchange.
//!
//! ```text
//!  issue:   STB ─Convert{Issue}─► NBK: Request accepted ─► pacs.009 to the CBS outbox ─► Under review
//!           CBS pacs.002 (ACSC) imported ─► NBK operator approves ─► issue tx ─► Success
//!  redeem:  STB pays the DT to NBK's DA, then Convert{Redeem, funding tx} ─► … same …
//!           ─► approve ─► redeem tx (DT destroyed) ─► Success
//!  refused: CBS RJCT, or the operator rejects ─► Rejected (reason); a redemption's DT go back to the bank
//! ```
//!
//! Invariants: DT are issued only for a request whose CBS confirmation was
//! imported; a confirmation is applied once (importing it again changes
//! nothing); a malformed confirmation file is refused with a report and
//! changes nothing.

use std::path::PathBuf;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_cbs::{CbsSimulator, ConfirmationStatus, Direction, Exchange, Instruction};
use dtenge_net::Role;
use dtenge_types::{Address, Amount, CbsRef, ParticipantId, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::accounts::{AccountId, HolderKind};
use crate::service::{NodeAnswer, NodeRequest, NodeService, PayTo};
use crate::state::{NodeRecord, Status};

/// Which way money converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionKind {
    /// Non-cash tenge → DT.
    Issue,
    /// DT → non-cash tenge.
    Redeem,
}

/// A bank's conversion request as NBK keeps it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ConversionRequest {
    /// `NBK-REQ-000001`: also the CBS instruction's message id.
    pub id: String,
    /// Which way.
    pub kind: ConversionKind,
    /// The requesting bank.
    pub bank: ParticipantId,
    /// The bank's DA that receives (issue) or gave (redeem) the DT.
    pub bank_address: Address,
    /// How much.
    pub amount: Amount,
    /// When NBK accepted it.
    pub created_at: Timestamp,
    /// Where it stands (SPEC §6).
    pub status: Status,
    /// The CBS confirmation, once imported.
    pub cbs_reference: Option<CbsRef>,
    /// For a redemption: the bank's payment of the DT to NBK.
    pub funding_tx: Option<TxId>,
    /// The issue or redeem transaction, once done.
    pub settled_tx: Option<TxId>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
}

/// NBK's link to the core banking system.
#[derive(Debug, Clone)]
pub struct CbsLink {
    /// The exchange folder root (outbox, inbox, processed, rejected).
    pub root: PathBuf,
    /// Run the CBS simulator on each tick (there is no real CBS here).
    pub simulate: bool,
}

/// NBK's BIC.
pub const NBK_BIC: &str = "NBRKKZKX";

/// A participant's BIC-form identifier for CBS files: the first four
/// characters of its id, padded with `X`, then `KZKX`.
pub fn bic_of(participant: &ParticipantId) -> String {
    let mut head: String = participant.as_str().chars().filter(char::is_ascii_alphanumeric).take(4).collect();
    while head.len() < 4 {
        head.push('X');
    }
    format!("{head}KZKX")
}

impl NodeService {
    fn issuing_account(&self) -> Result<AccountId, NodeError> {
        let issuer = self
            .config()
            .params
            .issuers
            .get(&dtenge_types::Currency::DT)
            .copied()
            .ok_or_else(|| NodeError::Invalid("no DT issuer configured".into()))?;
        self.read(|s| s.account_of(&issuer).map(|a| a.id.clone()))
            .ok_or_else(|| NodeError::Invalid("this node does not hold the DT issuing account".into()))
    }

    /// The node's own institutional DA.
    pub fn own_account(&self) -> Result<AccountId, NodeError> {
        self.read(|s| {
            s.accounts
                .values()
                .find(|a| a.holder.kind == HolderKind::Institution && a.key().is_some())
                .map(|a| a.id.clone())
        })
        .ok_or_else(|| NodeError::Invalid(format!("{} has no institutional DA", self.id())))
    }

    fn exchange(&self) -> Result<Exchange, NodeError> {
        let link =
            self.cbs().ok_or_else(|| NodeError::Invalid(format!("{} is not connected to the CBS", self.id())))?;
        Exchange::open(&link.root).map_err(|e| NodeError::Storage(format!("CBS exchange: {e}")))
    }

    /// STB: asks NBK to convert `amount`. For a redemption the DT are first
    /// paid from the bank's DA to NBK's issuing DA.
    pub async fn request_conversion(
        &self,
        kind: ConversionKind,
        amount: Amount,
    ) -> Result<ConversionRequest, NodeError> {
        let own = self.own_account()?;
        let bank_address = self.account(&own)?.address;
        let funding_tx = match kind {
            ConversionKind::Issue => None,
            ConversionKind::Redeem => {
                let issuer = self
                    .config()
                    .params
                    .issuers
                    .get(&dtenge_types::Currency::DT)
                    .copied()
                    .ok_or_else(|| NodeError::Invalid("no DT issuer configured".into()))?;
                let memo = dtenge_types::Memo::new("DT redemption").ok();
                Some(self.pay(&own, &[PayTo { address: issuer, amount }], memo).await?.tx)
            }
        };
        let nbk = self.nbk()?;
        match self.call_node(&nbk, NodeRequest::Convert { kind, amount, bank_address, funding_tx }).await? {
            NodeAnswer::Conversion(request) => Ok(*request),
            NodeAnswer::Refused(why) => Err(NodeError::Invalid(why)),
            NodeAnswer::Accepted | NodeAnswer::Pvp(_) | NodeAnswer::Report(_) | NodeAnswer::Batch(_) => {
                Err(NodeError::Unavailable("NBK answered without the request".into()))
            }
        }
    }

    /// STB: the status of a conversion request at NBK.
    pub async fn conversion_status(&self, id: &str) -> Result<ConversionRequest, NodeError> {
        let nbk = self.nbk()?;
        match self.call_node(&nbk, NodeRequest::ConversionStatus { id: id.to_string() }).await? {
            NodeAnswer::Conversion(request) => Ok(*request),
            NodeAnswer::Refused(why) => Err(NodeError::Invalid(why)),
            NodeAnswer::Accepted | NodeAnswer::Pvp(_) | NodeAnswer::Report(_) | NodeAnswer::Batch(_) => {
                Err(NodeError::Unavailable("NBK answered without the request".into()))
            }
        }
    }

    fn nbk(&self) -> Result<ParticipantId, NodeError> {
        self.participants()
            .with_role(Role::Nbk)
            .first()
            .map(|p| p.id.clone())
            .ok_or_else(|| NodeError::Invalid("no NBK participant".into()))
    }

    /// NBK: accepts a bank's request and sends the instruction to the CBS.
    pub(crate) async fn accept_conversion(
        &self,
        from: &ParticipantId,
        kind: ConversionKind,
        amount: Amount,
        bank_address: Address,
        funding_tx: Option<TxId>,
    ) -> Result<ConversionRequest, NodeError> {
        if self.config().role != Role::Nbk {
            return Err(NodeError::Invalid("conversion requests go to NBK".into()));
        }
        let role = self.participants().get(from).map(|p| p.role);
        if !matches!(role, Some(Role::Stb | Role::Treasury)) {
            return Err(NodeError::Invalid(format!("{from} is not a bank and cannot convert")));
        }
        if amount.is_zero() {
            return Err(NodeError::Invalid("a conversion needs a positive amount".into()));
        }
        if self.host_of(&bank_address).await? != *from {
            return Err(NodeError::Invalid(format!("DA {bank_address} is not hosted by {from}")));
        }
        let issuer = self.issuing_account()?;
        if kind == ConversionKind::Redeem {
            let funding = funding_tx
                .ok_or_else(|| NodeError::Invalid("a redemption names the payment of the DT to NBK".into()))?;
            let issuer_address = self.account(&issuer)?.address;
            let (paid, used) = self.read(|s| {
                let paid = s.received(&funding).map(|(tx, _)| {
                    Amount::checked_sum(
                        tx.body
                            .outputs
                            .iter()
                            .filter(|t| t.owner == issuer_address && t.is_standard())
                            .map(|t| t.amount),
                    )
                    .unwrap_or(Amount::ZERO)
                });
                let used = s.conversions.values().any(|r| r.funding_tx == Some(funding));
                (paid, used)
            });
            match paid {
                None => return Err(NodeError::Invalid(format!("payment {funding} has not reached NBK"))),
                Some(p) if p != amount => {
                    return Err(NodeError::Invalid(format!(
                        "payment {funding} brought {p}, the request says {amount}"
                    )));
                }
                Some(_) if used => {
                    return Err(NodeError::Invalid(format!("payment {funding} already funds another request")));
                }
                Some(_) => {}
            }
        }
        let now = self.clock().now();
        let id = self.read(|s| format!("NBK-REQ-{:06}", s.conversions.len().saturating_add(1)));
        let request = ConversionRequest {
            id: id.clone(),
            kind,
            bank: from.clone(),
            bank_address,
            amount,
            created_at: now,
            status: Status::RequestAccepted,
            cbs_reference: None,
            funding_tx,
            settled_tx: None,
            decided_by: None,
        };
        self.record_all(vec![NodeRecord::ConversionRequested(request.clone())]).await?;
        let instruction = Instruction {
            id: id.clone(),
            direction: match kind {
                ConversionKind::Issue => Direction::Issue,
                ConversionKind::Redeem => Direction::Redeem,
            },
            bank: from.clone(),
            bank_bic: bic_of(from),
            amount,
            created_at: now,
        };
        self.exchange()?
            .write_instruction(&instruction)
            .map_err(|e| NodeError::Storage(format!("CBS instruction: {e}")))?;
        self.update_conversion(&id, Status::UnderReview, None, None, None).await?;
        self.conversion(&id)
    }

    /// NBK: a conversion request.
    pub fn conversion(&self, id: &str) -> Result<ConversionRequest, NodeError> {
        self.read(|s| s.conversions.get(id).cloned())
            .ok_or_else(|| NodeError::Invalid(format!("no conversion request {id}")))
    }

    /// NBK: every conversion request, oldest first.
    pub fn conversions(&self) -> Vec<ConversionRequest> {
        self.read(|s| s.conversions.values().cloned().collect())
    }

    async fn update_conversion(
        &self,
        id: &str,
        status: Status,
        cbs_reference: Option<CbsRef>,
        settled_tx: Option<TxId>,
        decided_by: Option<String>,
    ) -> Result<(), NodeError> {
        self.record_all(vec![NodeRecord::ConversionUpdated {
            id: id.to_string(),
            status,
            cbs_reference,
            settled_tx,
            decided_by,
        }])
        .await
    }

    /// NBK: imports CBS confirmations (running the simulator first if
    /// configured). Returns what happened, for logs.
    pub async fn import_cbs(&self) -> Result<Vec<String>, NodeError> {
        let Some(link) = self.cbs().cloned() else { return Ok(Vec::new()) };
        let exchange = self.exchange()?;
        if link.simulate {
            CbsSimulator::new(&link.root)
                .process(self.clock().now(), |_| None)
                .map_err(|e| NodeError::Storage(format!("CBS simulator: {e}")))?;
        }
        let report = exchange.import().map_err(|e| NodeError::Storage(format!("CBS import: {e}")))?;
        let mut done = Vec::new();
        for (path, why) in &report.refused {
            done.push(format!("refused CBS file {}: {why}", path.display()));
        }
        // Also re-apply what an earlier run moved to processed/ but may not have applied.
        let mut confirmations =
            exchange.processed_confirmations().map_err(|e| NodeError::Storage(format!("CBS processed: {e}")))?;
        confirmations.extend(report.imported);
        for (_, confirmation) in confirmations {
            let Ok(request) = self.conversion(&confirmation.instruction_id) else {
                done.push(format!("confirmation for unknown request {}", confirmation.instruction_id));
                continue;
            };
            if request.status != Status::UnderReview || request.cbs_reference.is_some() {
                continue; // applied before
            }
            if confirmation.amount != request.amount {
                done.push(format!(
                    "confirmation for {} names {}, the request {}",
                    request.id, confirmation.amount, request.amount
                ));
                continue;
            }
            match confirmation.status {
                ConfirmationStatus::Accepted { cbs_reference } => {
                    self.update_conversion(&request.id, Status::UnderReview, Some(cbs_reference), None, None).await?;
                    done.push(format!("{} confirmed by the CBS; awaiting NBK approval", request.id));
                }
                ConfirmationStatus::Rejected { reason } => {
                    self.refuse(&request, format!("CBS rejected: {reason}"), "CBS".into()).await?;
                    done.push(format!("{} rejected by the CBS", request.id));
                }
            }
        }
        Ok(done)
    }

    /// NBK operator: approves a confirmed request: DT are issued or destroyed.
    pub async fn approve_conversion(&self, id: &str, approver: &str) -> Result<ConversionRequest, NodeError> {
        let request = self.conversion(id)?;
        if request.status != Status::UnderReview {
            return Err(NodeError::Invalid(format!("{id} is not under review")));
        }
        let cbs_reference = request
            .cbs_reference
            .clone()
            .ok_or_else(|| NodeError::Invalid(format!("{id} has no CBS confirmation yet; it cannot be approved")))?;
        let issuer = self.issuing_account()?;
        let outcome = match request.kind {
            ConversionKind::Issue => {
                self.issue(
                    &issuer,
                    PayTo { address: request.bank_address, amount: request.amount },
                    cbs_reference.clone(),
                )
                .await?
            }
            ConversionKind::Redeem => self.redeem(&issuer, request.amount, cbs_reference.clone()).await?,
        };
        if outcome.status == Status::Success {
            self.update_conversion(id, Status::Success, None, Some(outcome.tx), Some(approver.to_string())).await?;
        }
        self.conversion(id)
    }

    /// NBK operator: rejects a request under review.
    pub async fn reject_conversion(&self, id: &str, reason: &str, by: &str) -> Result<ConversionRequest, NodeError> {
        let request = self.conversion(id)?;
        if !matches!(request.status, Status::UnderReview | Status::RequestAccepted) {
            return Err(NodeError::Invalid(format!("{id} is already decided")));
        }
        if reason.trim().is_empty() {
            return Err(NodeError::Invalid("a rejection needs a reason".into()));
        }
        self.refuse(&request, reason.to_string(), by.to_string()).await?;
        self.conversion(id)
    }

    /// Marks a request rejected; a redemption's DT return to the bank.
    async fn refuse(&self, request: &ConversionRequest, reason: String, by: String) -> Result<(), NodeError> {
        if request.kind == ConversionKind::Redeem {
            let issuer = self.issuing_account()?;
            let memo = dtenge_types::Memo::new(format!("return of {}", request.id)).ok();
            self.pay(&issuer, &[PayTo { address: request.bank_address, amount: request.amount }], memo).await?;
        }
        self.update_conversion(&request.id, Status::Rejected { reason }, None, None, Some(by)).await
    }
}
