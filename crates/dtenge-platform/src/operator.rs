//! The back-office interface of a participant node running as its own
//! process: the bank's (or NBK's) operators ask their node to open DAs, pay,
//! issue and redeem over the same message interface as everything else —
//! an [`OperatorRequest`] in an envelope signed with the node's own key.
//! Nobody else may: a request from any other participant goes to the node's
//! ordinary handler, which does not understand it. `dtenge chaos` drives the
//! multi-process platform through it.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_net::{Handler, HandlerError};
pub use dtenge_node::accounts::AccountId;
use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::service::{NodeService, PayTo, TxOutcome};
use dtenge_node::state::Status;
use dtenge_types::{Address, Amount, CbsRef, Currency, IinBin, ParticipantId, Token, TokenId, TxId};

/// What an operator asks its own node.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum OperatorRequest {
    /// The DA with this address, if the node hosts it (e.g. an institution's own DA after bootstrap).
    Account {
        /// Its address.
        address: Address,
    },
    /// Opens a custodial, verified DA.
    OpenAccount {
        /// The holder's IIN/BIN.
        iin_bin: IinBin,
        /// The holder's name.
        name: String,
        /// Individual, legal entity, …
        kind: HolderKind,
    },
    /// A standard payment.
    Pay {
        /// The paying DA.
        from: AccountId,
        /// The payee's address.
        to: Address,
        /// How much.
        amount: Amount,
    },
    /// NBK issues DT.
    Issue {
        /// The issuer's DA.
        issuer: AccountId,
        /// The recipient.
        to: Address,
        /// How much.
        amount: Amount,
        /// The CBS confirmation.
        cbs_reference: String,
    },
    /// NBK redeems DT it holds.
    Redeem {
        /// The issuer's DA.
        issuer: AccountId,
        /// How much.
        amount: Amount,
        /// The CBS confirmation.
        cbs_reference: String,
    },
    /// How much standard DT a DA has.
    Balance {
        /// The DA.
        account: AccountId,
    },
    /// Unfinished work: transactions in flight and deliveries outstanding.
    Pending,
    /// A payment in a stablecoin.
    PayIn {
        /// The paying DA.
        from: AccountId,
        /// The stablecoin.
        currency: Currency,
        /// The payee's address.
        to: Address,
        /// How much.
        amount: Amount,
    },
    /// A licensed issuer mints its stablecoin against the same DT put in reserve.
    Mint {
        /// The issuer's DA.
        issuer: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A licensed issuer burns its stablecoin, releasing the same DT from the reserve.
    Burn {
        /// The issuer's DA.
        issuer: AccountId,
        /// How much.
        amount: Amount,
    },
}

/// The node's answer.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub enum OperatorAnswer {
    /// A DA.
    Account {
        /// Its id.
        id: AccountId,
        /// Its address.
        address: Address,
    },
    /// A transaction the notary committed, with the tokens it consumed.
    Committed {
        /// The transaction.
        tx: TxId,
        /// Its inputs.
        inputs: Vec<(TokenId, Token)>,
    },
    /// A transaction that did not commit (yet): its status.
    NotCommitted {
        /// The transaction.
        tx: TxId,
        /// Why.
        status: String,
    },
    /// An amount.
    Amount(Amount),
    /// Unfinished work.
    Pending {
        /// Transactions in flight.
        in_flight: u64,
        /// Deliveries outstanding.
        undelivered: u64,
    },
    /// Refused, why.
    Refused(String),
}

impl dtenge_net::Request for OperatorRequest {
    type Answer = OperatorAnswer;
    const SERVICE: &'static str = "node's operator desk";
}

/// The node's handler, plus the operator interface for envelopes signed by the node itself.
pub struct OperatorGate {
    node: Arc<NodeService>,
    inner: Arc<dyn Handler>,
}

impl OperatorGate {
    /// Wraps `node`'s handler.
    pub fn new(node: Arc<NodeService>) -> Arc<OperatorGate> {
        let inner: Arc<dyn Handler> = node.clone();
        Arc::new(OperatorGate { node, inner })
    }

    fn outcome(&self, outcome: TxOutcome) -> OperatorAnswer {
        if outcome.status != Status::Success {
            return OperatorAnswer::NotCommitted { tx: outcome.tx, status: format!("{:?}", outcome.status) };
        }
        let inputs = self.node.read(|s| {
            s.outgoing(&outcome.tx)
                .map(|o| o.tx.body.inputs.iter().copied().zip(o.inputs.iter().cloned()).collect())
                .unwrap_or_default()
        });
        OperatorAnswer::Committed { tx: outcome.tx, inputs }
    }

    fn answer(&self, outcome: Result<TxOutcome, dtenge_node::NodeError>) -> OperatorAnswer {
        match outcome {
            Ok(outcome) => self.outcome(outcome),
            Err(e) => OperatorAnswer::Refused(e.to_string()),
        }
    }

    async fn operate(&self, request: OperatorRequest) -> OperatorAnswer {
        let node = &self.node;
        let refused = |e: &dyn std::fmt::Display| OperatorAnswer::Refused(e.to_string());
        match request {
            OperatorRequest::Account { address } => match node.read(|s| s.account_of(&address).cloned()) {
                Some(a) => OperatorAnswer::Account { id: a.id, address: a.address },
                None => OperatorAnswer::Refused(format!("{} hosts no DA {address}", node.id())),
            },
            OperatorRequest::OpenAccount { iin_bin, name, kind } => {
                match node.open_account(Holder { iin_bin, name, kind }, None, KycState::Verified).await {
                    Ok(a) => OperatorAnswer::Account { id: a.id, address: a.address },
                    Err(e) => refused(&e),
                }
            }
            OperatorRequest::Pay { from, to, amount } => {
                self.answer(node.pay(&from, &[PayTo { address: to, amount }], None).await)
            }
            OperatorRequest::Issue { issuer, to, amount, cbs_reference } => {
                let reference = match CbsRef::new(cbs_reference) {
                    Ok(r) => r,
                    Err(e) => return refused(&e),
                };
                self.answer(node.issue(&issuer, PayTo { address: to, amount }, reference).await)
            }
            OperatorRequest::Redeem { issuer, amount, cbs_reference } => {
                let reference = match CbsRef::new(cbs_reference) {
                    Ok(r) => r,
                    Err(e) => return refused(&e),
                };
                self.answer(node.redeem(&issuer, amount, reference).await)
            }
            OperatorRequest::Balance { account } => match node.balances(&account) {
                Ok(b) => OperatorAnswer::Amount(b.standard),
                Err(e) => refused(&e),
            },
            OperatorRequest::Pending => {
                let (in_flight, undelivered) = node.read(|s| (s.in_flight().len(), s.undelivered().len()));
                OperatorAnswer::Pending { in_flight: in_flight as u64, undelivered: undelivered as u64 }
            }
            OperatorRequest::PayIn { from, currency, to, amount } => {
                self.answer(node.pay_in(&from, currency, &[PayTo { address: to, amount }], None).await)
            }
            OperatorRequest::Mint { issuer, amount } => self.answer(node.mint(&issuer, amount, None).await),
            OperatorRequest::Burn { issuer, amount } => self.answer(node.burn(&issuer, amount, None).await),
        }
    }
}

impl dtenge_net::authz::Authorized for OperatorRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        // Every back-office request is the node's own (the gate checks the sender is the node itself).
        dtenge_net::authz::Operation::NodeOperator
    }
}

#[async_trait::async_trait]
impl Handler for OperatorGate {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        if from != self.node.id() {
            return self.inner.handle(from, body).await;
        }
        let request: OperatorRequest = dtenge_net::decode_request(&body)?;
        dtenge_net::authz::admit(self.node.participants(), from, &request)?;
        let answer = self.operate(request).await;
        borsh::to_vec(&answer).map_err(|e| HandlerError::Unavailable(e.to_string()))
    }
}

/// An operator's connection to its own node from the node's host (`dtenge
/// operator`): speaks as the node, with the node's EDS key and — when the
/// registry lists one — its TLS key, to the endpoints of the data
/// directory's signed registry.
pub fn connect(
    data: &std::path::Path,
    id: &str,
    registry_key: Option<dtenge_crypto::PublicKey>,
) -> Result<Arc<dtenge_net::HttpBus>, crate::PlatformError> {
    let (_, body) = crate::registry::load_verified(data, registry_key)?;
    let me = ParticipantId::new(id).map_err(|e| crate::PlatformError::Config(e.to_string()))?;
    let info = body
        .platform
        .participant(id)
        .ok_or_else(|| crate::PlatformError::Config(format!("{id} is not in the signed registry")))?
        .clone();
    let key = Arc::new(crate::spec::Keys::at(data).load(id)?);
    let tls = match info.tls_key {
        Some(_) => Some(Arc::new(
            dtenge_net::TlsIdentity::load(&crate::ceremony::tls_key_path(data, id))
                .map_err(|e| crate::PlatformError::Config(e.to_string()))?,
        )),
        None => None,
    };
    let participants = Arc::new(body.directory()?);
    let config = dtenge_net::HttpBusConfig { tls, ..dtenge_net::HttpBusConfig::default() };
    Ok(dtenge_net::HttpBus::with_config(
        me,
        key,
        participants,
        Arc::new(dtenge_net::SystemClock),
        Arc::new(dtenge_net::NoEvidence),
        config,
    ))
}

/// Sends one operator request to `to` (the node itself, normally) and decodes the answer.
pub async fn ask(
    bus: &dtenge_net::HttpBus,
    to: &ParticipantId,
    request: &OperatorRequest,
) -> Result<OperatorAnswer, dtenge_net::NetError> {
    use dtenge_net::BusExt;
    bus.request(to, request).await
}
