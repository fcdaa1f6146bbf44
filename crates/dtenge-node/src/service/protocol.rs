//! The messages between nodes: requests, batched peer requests (deliveries
//! and payee pre-checks), and answers, refusals typed with stable codes.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_net::{Bus, BusExt};
use dtenge_notary::Receipt;
use dtenge_types::{Address, Amount, ParticipantId, Timestamp, Token, Transaction, TxBody, TxId, TxSignature};

use crate::NodeError;
use crate::regime::BankReport;

/// Messages between nodes.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NodeRequest {
    /// A committed transaction for the receiver's DAs, or a traceability copy.
    Deliver {
        /// The transaction.
        tx: Box<Transaction>,
        /// Its inputs as the sender resolved them.
        inputs: Vec<Token>,
        /// The notary's receipt.
        receipt: Receipt,
    },
    /// A bank asks NBK to convert (SPEC §5).
    Convert {
        /// Which way.
        kind: crate::conversion::ConversionKind,
        /// How much.
        amount: Amount,
        /// The bank's DA.
        bank_address: Address,
        /// For a redemption: the payment of the DT to NBK.
        funding_tx: Option<TxId>,
    },
    /// A bank asks NBK for one of its requests.
    ConversionStatus {
        /// The request.
        id: String,
    },
    /// Another node proposes a PvP to one of this node's DAs.
    PvpPropose {
        /// The proposer's part.
        body: Box<TxBody>,
        /// The proposer's inputs.
        inputs: Vec<Token>,
        /// This node's DA.
        counterparty: Address,
        /// What it gives.
        quote: dtenge_types::Currency,
        /// How much.
        quote_amount: Amount,
    },
    /// A payer's node asks the payee's node, before building a payment,
    /// whether the DA accepts it (closed, revoked key, balance cap).
    CanReceive {
        /// The payee's address.
        address: Address,
        /// How much.
        amount: Amount,
    },
    /// NBK publishes its limit policy.
    Policy(Box<crate::regime::LimitPolicy>),
    /// NBK asks for the bank's aggregate report.
    Report {
        /// From.
        from: Timestamp,
        /// To.
        to: Timestamp,
        /// Large-payment threshold.
        threshold: Amount,
    },
    /// Deliveries and pre-checks of concurrent payments to the same node, in
    /// one envelope (at most [`MAX_LINK_BATCH`]); answered with
    /// [`NodeAnswer::Batch`], one answer per item, in order.
    Batch(Vec<PeerRequest>),
    /// The proposer of a PvP gives it up: the receiver frees the leg it
    /// co-signed at once.
    PvpAbandon {
        /// The transaction.
        tx: TxId,
    },
    /// The oracle counts a stablecoin's supply and reserve: this node's
    /// counts of it (sums over its vault, no DA named).
    StablecoinCount {
        /// The stablecoin.
        stablecoin: dtenge_types::Currency,
    },
    /// Another bank hands this node a deposit of a chain that spends one of
    /// this bank's offline loads (its reserve pays the depositor's DA): how
    /// deposits cross banks when each runs on its own host.
    OfflineDeposit {
        /// The chain, its last hop naming the DA.
        chain: Box<dtenge_offline::Chain>,
    },
    /// As [`NodeRequest::CanReceive`], asking also for a lease
    /// ([`crate::lease`]): answered [`NodeAnswer::Lease`], or
    /// [`NodeAnswer::Accepted`] without one (a DA with a balance cap), or
    /// refused as the pre-check would be.
    Lease {
        /// The payee's address.
        address: Address,
        /// The payment that asks.
        amount: Amount,
    },
    /// The payee's bank ends the lease it gave the receiver on `address`
    /// (the DA is being closed or given a new key): answered
    /// [`NodeAnswer::Accepted`] once the receiver no longer pays under it.
    LeaseEnd {
        /// The DA's address.
        address: Address,
    },
}

impl dtenge_net::authz::Authorized for NodeRequest {
    fn operation(&self) -> dtenge_net::authz::Operation {
        use dtenge_net::authz::Operation;
        match self {
            NodeRequest::Deliver { .. } => Operation::NodeDeliver,
            NodeRequest::Convert { .. } => Operation::NodeConvert,
            NodeRequest::ConversionStatus { .. } => Operation::NodeConversionStatus,
            NodeRequest::PvpPropose { .. } => Operation::NodePvpPropose,
            NodeRequest::CanReceive { .. } => Operation::NodeCanReceive,
            NodeRequest::Policy(_) => Operation::NodePolicy,
            NodeRequest::Report { .. } => Operation::NodeReport,
            NodeRequest::Batch(_) => Operation::NodeBatch,
            NodeRequest::PvpAbandon { .. } => Operation::NodePvpAbandon,
            NodeRequest::StablecoinCount { .. } => Operation::NodeStablecoinCount,
            NodeRequest::OfflineDeposit { .. } => Operation::NodeOfflineDeposit,
            NodeRequest::Lease { .. } => Operation::NodeLease,
            NodeRequest::LeaseEnd { .. } => Operation::NodeLeaseEnd,
        }
    }
}

/// Most items in one [`NodeRequest::Batch`].
pub const MAX_LINK_BATCH: usize = 256;

/// What one node sends another in a [`NodeRequest::Batch`].
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum PeerRequest {
    /// As [`NodeRequest::Deliver`].
    Deliver {
        /// The transaction.
        tx: Box<Transaction>,
        /// Its inputs as the sender resolved them.
        inputs: Vec<Token>,
        /// The notary's receipt.
        receipt: Box<Receipt>,
    },
    /// As [`NodeRequest::CanReceive`].
    CanReceive {
        /// The payee's address.
        address: Address,
        /// How much.
        amount: Amount,
    },
}

/// The answer to one [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PeerAnswer {
    /// Accepted (a delivery is durable on the receiving node).
    Accepted,
    /// Refused for good: the code and the message.
    Refused(crate::Refusal),
    /// Could not be handled now (storage); try again later.
    Unavailable(String),
}

/// Answers between nodes.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NodeAnswer {
    /// Accepted (or already known).
    Accepted,
    /// Refused: the code and the message.
    Refused(crate::Refusal),
    /// A conversion request as NBK holds it.
    Conversion(Box<crate::conversion::ConversionRequest>),
    /// A PvP with this node's leg added and signed.
    Pvp(Box<PvpContribution>),
    /// A bank's report to NBK.
    Report(Box<BankReport>),
    /// One answer per item of a [`NodeRequest::Batch`], in order.
    Batch(Vec<PeerAnswer>),
    /// The node's count of a stablecoin ([`NodeRequest::StablecoinCount`]).
    StablecoinCount(dtenge_oracle::reserves::StablecoinCount),
    /// What a deposit came to ([`NodeRequest::OfflineDeposit`]).
    OfflineDeposit(Box<dtenge_offline::DepositOutcome>),
    /// The offline protocol refused a deposit: its stable code
    /// (`dtenge_offline::OfflineCode` as a number) and the message.
    OfflineRefused {
        /// `OfflineCode as u16`.
        code: u16,
        /// What was wrong, for people.
        message: String,
    },
    /// The DA takes the payment, and payments for the lease's length
    /// ([`NodeRequest::Lease`]).
    Lease(crate::lease::Lease),
}

/// A bank's offline desk as its node serves other banks' deposits of its
/// loads (the desk lives in the platform, over the node).
#[async_trait::async_trait]
pub trait OfflineDeposits: Send + Sync {
    /// Settles `chain` from this bank's reserve, or says why not.
    async fn deposit(&self, chain: dtenge_offline::Chain) -> Result<dtenge_offline::DepositOutcome, DepositRefusal>;
}

/// Why a deposit handed to another bank was refused.
#[derive(Debug, thiserror::Error)]
pub enum DepositRefusal {
    /// The offline protocol refused (bad chain, limit, wrong bank).
    #[error(transparent)]
    Offline(#[from] dtenge_offline::OfflineError),
    /// The offline protocol refused, as it travelled between nodes: its
    /// stable code and message.
    #[error("{message}")]
    OfflineCode {
        /// The code.
        code: dtenge_offline::OfflineCode,
        /// What was wrong.
        message: String,
    },
    /// The node refused (the reserve's payment, storage, no desk, the bus).
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl dtenge_net::Request for NodeRequest {
    type Answer = NodeAnswer;
    const SERVICE: &'static str = "node";
}

/// Sends one batch of deliveries and pre-checks to node `to`.
pub(super) async fn send_peer_batch(
    bus: &dyn Bus,
    to: &ParticipantId,
    items: Vec<PeerRequest>,
) -> Result<Vec<PeerAnswer>, NodeError> {
    let count = items.len();
    match bus.request(to, &NodeRequest::Batch(items)).await {
        Ok(NodeAnswer::Batch(answers)) if answers.len() == count => Ok(answers),
        Ok(NodeAnswer::Refused(refusal)) => Err(NodeError::RefusedBy { node: to.clone(), refusal }),
        Ok(_) => Err(NodeError::Unavailable(format!("{to} answered the batch with something else"))),
        Err(e) => Err(NodeError::Unavailable(format!("{to}: {e}"))),
    }
}

/// B's contribution to a PvP, returned to A's node.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PvpContribution {
    /// The complete body (A's part, then B's inputs and outputs).
    pub body: TxBody,
    /// B's inputs.
    pub inputs: Vec<Token>,
    /// B's signature over the body's id.
    pub signature: TxSignature,
    /// B's node's consent that A submits the transaction spending B's tokens
    /// (the notary accepts an input only from its host or with its consent).
    pub consent: dtenge_notary::HostConsent,
}

/// How the oracle asks nodes for their count of a stablecoin: over its
/// own bus, so each request is signed as the oracle and the node's
/// authorisation table sees the oracle's kind.
pub struct StablecoinCountOverBus {
    bus: std::sync::Arc<dyn Bus>,
}

impl StablecoinCountOverBus {
    /// Asks through `bus` (the oracle's).
    pub fn new(bus: std::sync::Arc<dyn Bus>) -> StablecoinCountOverBus {
        StablecoinCountOverBus { bus }
    }
}

#[async_trait::async_trait]
impl dtenge_oracle::reserves::StablecoinCountSource for StablecoinCountOverBus {
    async fn count(
        &self,
        node: &ParticipantId,
        stablecoin: dtenge_types::Currency,
    ) -> Result<dtenge_oracle::reserves::StablecoinCount, String> {
        match self.bus.request(node, &NodeRequest::StablecoinCount { stablecoin }).await {
            Ok(NodeAnswer::StablecoinCount(counts)) => Ok(counts),
            Ok(NodeAnswer::Refused(refusal)) => Err(format!("refused: {refusal:?}")),
            Ok(_) => Err("answered something else".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}
