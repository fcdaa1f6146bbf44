//! The conversion desk: NBK's side (accepting a bank's request, writing the
//! instruction to the CBS, importing confirmations, approval, issuing or
//! redeeming, returning refused redemptions) and a bank's (asking NBK).

use dtenge_cbs::{CbsSimulator, ConfirmationStatus, Direction, Exchange, Instruction};
use dtenge_net::Role;
use dtenge_types::{Address, Amount, CbsRef, ParticipantId, TxId};

use super::{
    CBS_DECIDER, ConversionKind, ConversionRequest, Match, ReturnMade, bic_of, check_conversion_amount,
    match_confirmation, return_memo,
};
use crate::accounts::{AccountId, HolderKind};
use crate::service::{NodeAnswer, NodeRequest, NodeService, PayTo};
use crate::state::NodeRecord;
use crate::status::{Reason, Status};
use crate::{NodeError, RefusalCode};

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
        // Checked before a redemption pays its DT to NBK: a request NBK must
        // refuse would leave them there.
        check_conversion_amount(amount)?;
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
        self.ask_nbk(NodeRequest::Convert { kind, amount, bank_address, funding_tx }).await
    }

    /// STB: the status of a conversion request at NBK.
    pub async fn conversion_status(&self, id: &str) -> Result<ConversionRequest, NodeError> {
        self.ask_nbk(NodeRequest::ConversionStatus { id: id.to_string() }).await
    }

    /// Sends NBK's node a request it answers with a conversion request.
    async fn ask_nbk(&self, request: NodeRequest) -> Result<ConversionRequest, NodeError> {
        let nbk = self.nbk()?;
        match self.call_node(&nbk, request).await? {
            NodeAnswer::Conversion(request) => Ok(*request),
            NodeAnswer::Refused(refusal) => Err(NodeError::RefusedBy { node: nbk, refusal }),
            NodeAnswer::Accepted
            | NodeAnswer::Pvp(_)
            | NodeAnswer::Report(_)
            | NodeAnswer::Batch(_)
            | NodeAnswer::StablecoinCount(_)
            | NodeAnswer::OfflineDeposit(_)
            | NodeAnswer::OfflineRefused { .. }
            | NodeAnswer::Lease(_) => Err(NodeError::Unavailable("NBK answered without the request".into())),
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
        check_conversion_amount(amount)?;
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
    /// configured). Each file is matched against its request
    /// ([`match_confirmation`]); a confirmation that matches is journaled
    /// before its file leaves the inbox, anything else goes to `rejected/`
    /// with a report naming the mismatch. Returns what happened, for logs.
    pub async fn import_cbs(&self) -> Result<Vec<String>, NodeError> {
        let Some(link) = self.cbs().cloned() else { return Ok(Vec::new()) };
        let exchange = self.exchange()?;
        if link.simulate {
            CbsSimulator::new(&link.root)
                .process(self.clock().now(), |_| None)
                .map_err(|e| NodeError::Storage(format!("CBS simulator: {e}")))?;
        }
        let mut done = Vec::new();
        if let Err(e) = self.return_redemptions().await {
            done.push(format!("returning rejected redemptions: {e}"));
        }
        let files = exchange.read_inbox().map_err(|e| NodeError::Storage(format!("CBS inbox: {e}")))?;
        for file in files {
            let name = file.path.display().to_string();
            let confirmation = match (&file.confirmation, file.readable) {
                (Ok(c), _) => c.clone(),
                (Err(why), false) => {
                    done.push(format!("CBS file {name} is unreadable for now: {why}"));
                    continue;
                }
                (Err(why), true) => {
                    self.refuse_cbs_file(&exchange, &file, why, &mut done);
                    continue;
                }
            };
            let request = self.conversion(&confirmation.instruction_id).ok();
            match match_confirmation(request.as_ref(), &confirmation) {
                Match::Mismatch(why) => self.refuse_cbs_file(&exchange, &file, &why, &mut done),
                Match::AlreadyApplied => {
                    // Applied before a crash kept the file in the inbox.
                    if let Err(e) = exchange.accept(&file) {
                        done.push(format!("CBS file {name}: {e}"));
                    }
                }
                Match::Apply => {
                    let Some(request) = request else { continue };
                    let applied = match confirmation.status {
                        ConfirmationStatus::Accepted { cbs_reference } => self
                            .update_conversion(&request.id, Status::UnderReview, Some(cbs_reference), None, None)
                            .await
                            .map(|()| format!("{} confirmed by the CBS; awaiting NBK approval", request.id)),
                        ConfirmationStatus::Rejected { reason } => self
                            .refuse(
                                &request,
                                Reason::coded(RefusalCode::CbsRejected, format!("CBS rejected: {reason}")),
                                CBS_DECIDER.into(),
                            )
                            .await
                            .map(|()| format!("{} rejected by the CBS", request.id)),
                    };
                    match applied {
                        Ok(line) => {
                            done.push(line);
                            if let Err(e) = exchange.accept(&file) {
                                done.push(format!("CBS file {name} applied, not moved (it will be recognised): {e}"));
                            }
                        }
                        // Left in the inbox: tried again on the next import.
                        Err(e) => done.push(format!("CBS file {name} not applied yet: {e}")),
                    }
                }
            }
        }
        Ok(done)
    }

    fn refuse_cbs_file(&self, exchange: &Exchange, file: &dtenge_cbs::InboxFile, why: &str, done: &mut Vec<String>) {
        let name = file.path.display();
        match exchange.refuse(file, why) {
            Ok(moved) => done.push(format!("refused CBS file {name} (moved to {}): {why}", moved.display())),
            Err(e) => done.push(format!("refused CBS file {name}, but could not move it: {e}")),
        }
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
        self.refuse(&request, Reason::coded(RefusalCode::OperatorRejected, reason), by.to_string()).await?;
        self.conversion(id)
    }

    /// Marks a request rejected; a redemption's DT return to the bank
    /// ([`NodeService::return_redemptions`]). The status is journaled first,
    /// so a crash never lets the same rejection pay the DT back twice.
    async fn refuse(&self, request: &ConversionRequest, reason: Reason, by: String) -> Result<(), NodeError> {
        self.update_conversion(&request.id, Status::Rejected { reason }, None, None, Some(by)).await?;
        if request.kind == ConversionKind::Redeem {
            self.return_redemptions().await?;
        }
        Ok(())
    }

    /// NBK: pays back the DT of every rejected redemption not paid back yet:
    /// its request records the return transaction (`settled_tx`) once that is
    /// committed. A return made before a crash, or still in flight, is found
    /// by its memo and not made twice; one that was aborted is made again.
    pub async fn return_redemptions(&self) -> Result<(), NodeError> {
        let due: Vec<ConversionRequest> = self.read(|s| {
            s.conversions
                .values()
                .filter(|r| r.kind == ConversionKind::Redeem && matches!(r.status, Status::Rejected { .. }))
                .filter(|r| r.settled_tx.is_none())
                .cloned()
                .collect()
        });
        for request in due {
            let memo = return_memo(&request.id);
            let committed = match self.return_made(&memo) {
                ReturnMade::Committed(tx) => Some(tx),
                ReturnMade::InFlight => None,
                ReturnMade::None => {
                    let issuer = self.issuing_account()?;
                    let to = PayTo { address: request.bank_address, amount: request.amount };
                    let outcome = self.pay(&issuer, &[to], dtenge_types::Memo::new(memo).ok()).await?;
                    (outcome.status == Status::Success).then_some(outcome.tx)
                }
            };
            if let Some(tx) = committed {
                self.update_conversion(&request.id, request.status.clone(), None, Some(tx), None).await?;
            }
        }
        Ok(())
    }

    /// Whether a return payment with this memo was made: committed, still in
    /// flight, or not at all (never made, or aborted).
    fn return_made(&self, memo: &str) -> ReturnMade {
        let mut found = ReturnMade::None;
        self.for_each_outgoing(|id, o| {
            if o.tx.body.memo.as_ref().is_some_and(|m| m.as_str() == memo) {
                match o.status {
                    Status::Success => found = ReturnMade::Committed(*id),
                    Status::RequestAccepted | Status::UnderReview => found = ReturnMade::InFlight,
                    Status::Rejected { .. } => {}
                }
            }
            found == ReturnMade::None
        });
        found
    }
}
