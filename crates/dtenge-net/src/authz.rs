//! Who may do what: ONE table, participant kind × operation.
//!
//! Every operation a participant can ask of the platform — each HTTP API
//! endpoint and each request one service sends another (node, oracle,
//! directory, notary, a node's operator) — is an [`Operation`], and
//! [`rule`] says which participant kinds ([`Role`]) may ask for it and
//! what the service checks beyond the kind ([`Scope`]: the caller's own
//! DAs, its own records, …). Nothing else decides by kind:
//!
//! ```text
//!   API request ──► route ──► Operation ─┐
//!                                        ├─► rule(op).kinds ∋ caller's kind? ──► no: 403 / HandlerError::Forbidden
//!   envelope ──► request ──► Operation ──┘                                  └─► yes: the handler checks the scope
//! ```
//!
//! Invariants:
//! * [`rule`] is an exhaustive match: an operation cannot exist without a
//!   row, and every request enum maps each variant to an operation with an
//!   exhaustive match ([`Authorized`]), so a new endpoint or request cannot
//!   forget the table.
//! * The table lives here, beside [`Role`], so every service can use it
//!   without a dependency circle; `docs/security.md` is generated from it and
//!   a test checks that the document matches.
//! * The counterparty central bank of cross-border PvP is a kind of its own:
//!   it runs a node and issues its own currency, and has none of NBK's
//!   regulator powers.

use dtenge_types::ParticipantId;

use crate::{HandlerError, Participants, Role};

/// Participant kinds that run a participant node (they host DAs).
pub const NODES: &[Role] =
    &[Role::Nbk, Role::Stb, Role::Treasury, Role::CounterpartyCentralBank, Role::StablecoinIssuer];
/// Kinds that convert non-cash money at NBK (SPEC §5).
pub const BANKS: &[Role] = &[Role::Stb, Role::Treasury];
/// The regulator and issuer of DT.
pub const NBK: &[Role] = &[Role::Nbk];
/// The Treasury.
pub const TREASURY: &[Role] = &[Role::Treasury];
/// Event providers (and enforcement authorities, which are providers whose key NBK listed).
pub const PROVIDERS: &[Role] = &[Role::Provider];
/// Who reads the oracle's registries.
pub const ORACLE_READERS: &[Role] =
    &[Role::Provider, Role::Nbk, Role::Stb, Role::Treasury, Role::CounterpartyCentralBank, Role::StablecoinIssuer];
/// Who may create money at the notary (claims without inputs): the issuers of a currency.
pub const ISSUERS: &[Role] = &[Role::Nbk, Role::CounterpartyCentralBank];
/// Who asks the notary what became of a transaction: every kind that runs
/// a node (it resolves its own transactions in flight from their receipts)
/// and the oracle.
pub const RECEIPT_READERS: &[Role] =
    &[Role::Nbk, Role::Stb, Role::Treasury, Role::CounterpartyCentralBank, Role::StablecoinIssuer, Role::Oracle];
/// The replicas of a notary group.
pub const NOTARIES: &[Role] = &[Role::Notary];
/// Licensed stablecoin issuers: mint and burn their own stablecoin.
pub const STABLECOIN_ISSUERS: &[Role] = &[Role::StablecoinIssuer];
/// Everyone who asks through the API or of a service (not the services that only serve).
pub const PUBLIC: &[Role] =
    &[Role::Nbk, Role::Stb, Role::Treasury, Role::CounterpartyCentralBank, Role::StablecoinIssuer, Role::Provider];
/// Every kind, and anyone who does not sign at all: only with
/// [`Scope::Unsigned`] (the public proof of reserves).
pub const EVERYONE: &[Role] = &KINDS;
/// The oracle (it asks nodes only for their count, to count reserves).
pub const ORACLES: &[Role] = &[Role::Oracle];
/// Nobody: an operation no participant may ask for.
pub const NOBODY: &[Role] = &[];

/// Every participant kind, in the order the table is shown.
pub const KINDS: [Role; 9] = [
    Role::Nbk,
    Role::Stb,
    Role::Treasury,
    Role::CounterpartyCentralBank,
    Role::StablecoinIssuer,
    Role::Provider,
    Role::Notary,
    Role::Oracle,
    Role::Directory,
];

/// What a service checks beyond the caller's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Nothing more: any participant of an allowed kind.
    Any,
    /// Only DAs (and their transactions) hosted by the caller's own node.
    OwnNode,
    /// Only records the caller registered itself (its events, contracts, orders, requests).
    OwnRecords,
    /// Only the registries NBK registered the provider for.
    Registries,
    /// What concerns the caller: its node's DAs or its own registrations; NBK sees all.
    Concerned,
    /// Only a provider whose key NBK lists as an enforcement authority.
    Authority,
    /// Only a node's own key (its operator's back office).
    Itself,
    /// Nothing: public, no signature needed (a signature, if any, is not
    /// checked); the API still bounds its size and rate.
    Unsigned,
}

impl Scope {
    /// The check in words (the security document's column).
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Any => "",
            Scope::OwnNode => "only DAs of the caller's own node",
            Scope::OwnRecords => "only what the caller registered itself",
            Scope::Registries => "only registries NBK registered the provider for",
            Scope::Concerned => "only what concerns the caller (NBK: all)",
            Scope::Authority => "only a registered enforcement authority",
            Scope::Itself => "only the node's own key",
            Scope::Unsigned => "public: no signature needed (bounded in size and rate)",
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Kinds that may ask.
    pub kinds: &'static [Role],
    /// What the service checks beyond the kind.
    pub scope: Scope,
}

impl Rule {
    const fn new(kinds: &'static [Role], scope: Scope) -> Rule {
        Rule { kinds, scope }
    }

    /// Whether `kind` may ask.
    pub fn permits(&self, kind: Role) -> bool {
        self.kinds.contains(&kind)
    }
}

macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ),+ $(,)?) => {
        /// Everything a participant can ask of the platform: one variant per
        /// API endpoint and per service request.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $( $(#[$doc])* $variant, )+
        }

        impl Operation {
            /// Every operation, in table order.
            pub const ALL: &'static [Operation] = &[ $( Operation::$variant, )+ ];

            /// The operation's stable name (docs, error messages).
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$variant => $name, )+
                }
            }
        }
    };
}

operations! {
    // The HTTP API (one per endpoint; `dtenge-api` maps each route to one).
    /// `POST /api/v1/accounts`.
    OpenAccount = "open_account",
    /// `GET /api/v1/accounts`.
    ListAccounts = "list_accounts",
    /// `GET /api/v1/accounts/{id}`.
    ReadAccount = "read_account",
    /// `POST /api/v1/accounts/{id}/kyc`.
    SetKyc = "set_kyc",
    /// `GET /api/v1/accounts/{id}/balance`.
    ReadBalance = "read_balance",
    /// `GET /api/v1/accounts/{id}/history`.
    ReadHistory = "read_history",
    /// `GET /api/v1/accounts/{id}/notifications`.
    ReadNotifications = "read_notifications",
    /// `GET /api/v1/directory/{iin_bin}`.
    FindHolder = "find_holder",
    /// `POST /api/v1/transfers`.
    Transfer = "transfer",
    /// `POST /api/v1/transfers/prepare`.
    PrepareTransfer = "prepare_transfer",
    /// `POST /api/v1/transfers/submit`.
    SubmitSignedTransfer = "submit_signed_transfer",
    /// `GET /api/v1/transactions/{tx}`.
    ReadTransaction = "read_transaction",
    /// `GET /api/v1/tokens/{token}/lineage`.
    ReadLineage = "read_lineage",
    /// `GET /api/v1/notary/receipts/{tx}`.
    ReadReceipt = "read_receipt",
    /// `POST /api/v1/conversions`.
    RequestConversion = "request_conversion",
    /// `GET /api/v1/conversions`.
    ListConversions = "list_conversions",
    /// `GET /api/v1/conversions/{id}`.
    ReadConversion = "read_conversion",
    /// `POST /api/v1/conversions/{id}/approve`.
    ApproveConversion = "approve_conversion",
    /// `POST /api/v1/conversions/{id}/reject`.
    RejectConversion = "reject_conversion",
    /// `GET /api/v1/stats/supply`.
    ReadSupply = "read_supply",
    /// `GET /api/v1/stats/volumes`.
    ReadVolumes = "read_volumes",
    /// `POST /api/v1/holds`.
    Hold = "hold",
    /// `POST /api/v1/holds/{event}/release`.
    ReleaseHold = "release_hold",
    /// `POST /api/v1/holds/{event}/cancel`.
    CancelHold = "cancel_hold",
    /// `POST /api/v1/holds/{event}/expire`.
    ExpireHold = "expire_hold",
    /// `GET /api/v1/accounts/{id}/holds`.
    ListHolds = "list_holds",
    /// `POST /api/v1/markings/address`.
    MarkByAddress = "mark_by_address",
    /// `POST /api/v1/markings/parameter`.
    MarkByParameter = "mark_by_parameter",
    /// `POST /api/v1/transfers/marked`.
    PayMarked = "pay_marked",
    /// `POST /api/v1/contract-payments`.
    PayUnderContract = "pay_under_contract",
    /// `POST /api/v1/invoices/{id}/pay`.
    PayInvoice = "pay_invoice",
    /// `POST /api/v1/vat-payments`.
    PayVat = "pay_vat",
    /// `POST /api/v1/mandates`.
    GrantMandate = "grant_mandate",
    /// `POST /api/v1/mandates/{mandate}/debit`.
    DebitMandate = "debit_mandate",
    /// `POST /api/v1/mandates/{mandate}/revoke`.
    RevokeMandate = "revoke_mandate",
    /// `POST /api/v1/pvp`.
    Pvp = "pvp",
    /// `POST /api/v1/oracle/providers`.
    RegisterProvider = "register_provider",
    /// `POST /api/v1/oracle/events`.
    RegisterEvent = "register_event",
    /// `GET /api/v1/oracle/events`.
    ListEvents = "list_events",
    /// `GET /api/v1/oracle/events/{id}`.
    ReadEvent = "read_event",
    /// `POST /api/v1/oracle/events/{id}/occurrences`.
    ReportOccurrence = "report_occurrence",
    /// `POST /api/v1/oracle/events/{id}/cancel`.
    CancelEvent = "cancel_event",
    /// `POST /api/v1/oracle/parameters`.
    RegisterParameter = "register_parameter",
    /// `POST /api/v1/oracle/contracts`.
    RegisterContract = "register_contract",
    /// `GET /api/v1/oracle/contracts/{parameter}/{number}`.
    ReadContract = "read_contract",
    /// `POST /api/v1/oracle/contracts/{parameter}/{number}/amend`.
    AmendContract = "amend_contract",
    /// `POST /api/v1/oracle/invoices`.
    RegisterInvoice = "register_invoice",
    /// `GET /api/v1/oracle/invoices/{id}`.
    ReadInvoice = "read_invoice",
    /// `POST /api/v1/oracle/fx-rates`.
    SetRate = "set_rate",
    /// `GET /api/v1/oracle/fx-rates/{base}/{quote}`.
    ReadRate = "read_rate",
    /// `GET /api/v1/accounts/{id}/profile`.
    ReadProfile = "read_profile",
    /// `POST /api/v1/accounts/{id}/profile`.
    SetProfile = "set_profile",
    /// `POST /api/v1/accounts/{id}/rekey`.
    Rekey = "rekey",
    /// `POST /api/v1/accounts/{id}/close`.
    CloseAccount = "close_account",
    /// `GET /api/v1/limits`.
    ReadLimits = "read_limits",
    /// `POST /api/v1/nbk/limits`.
    PublishLimits = "publish_limits",
    /// `POST /api/v1/enforcement/orders`.
    PlaceOrder = "place_order",
    /// `GET /api/v1/enforcement/orders`.
    ListOrders = "list_orders",
    /// `GET /api/v1/regulator/aggregates`.
    ReadAggregates = "read_aggregates",
    /// `GET /api/v1/regulator/large-payments`.
    ReadLargePayments = "read_large_payments",
    /// `GET /api/v1/regulator/marked-funds`.
    ReadMarkedFunds = "read_marked_funds",

    // Requests between services.
    /// Node: a committed transaction (or traceability copy) delivered to the payee's node.
    NodeDeliver = "node.deliver",
    /// Node (NBK): a bank's conversion request.
    NodeConvert = "node.convert",
    /// Node (NBK): the status of a bank's conversion request.
    NodeConversionStatus = "node.conversion_status",
    /// Node: another node proposes a PvP to one of its DAs.
    NodePvpPropose = "node.pvp_propose",
    /// Node: the proposer of a PvP gives it up, so the counterparty frees its leg.
    NodePvpAbandon = "node.pvp_abandon",
    /// Node: whether a DA accepts a payment (before it is built).
    NodeCanReceive = "node.can_receive",
    /// Node: as `node.can_receive`, with a promise that the DA takes payments for a while (a lease).
    NodeLease = "node.lease",
    /// Node: the payee's bank ends a lease it gave the caller.
    NodeLeaseEnd = "node.lease_end",
    /// Node: NBK publishes its limit policy.
    NodePolicy = "node.policy",
    /// Node: NBK asks for a bank's aggregate report.
    NodeReport = "node.report",
    /// Node: deliveries and pre-checks of concurrent payments in one envelope.
    NodeBatch = "node.batch",
    /// Node: its operator's back-office request, signed with the node's own key.
    NodeOperator = "node.operator",
    /// Oracle: NBK registers an event provider.
    OracleRegisterProvider = "oracle.register_provider",
    /// Oracle: a provider writes to its registries (events, occurrences,
    /// cancellations, parameters, contracts, e-invoices, FX rates).
    OracleWrite = "oracle.write",
    /// Oracle: a node asks for a signed attestation bound to a transaction.
    OracleAttest = "oracle.attest",
    /// Oracle: a node reports that an attested transaction was notarised.
    OracleConfirm = "oracle.confirm",
    /// Oracle: a node gives up an attested transaction it will never notarise,
    /// so what the attestation reserved is free at once.
    OracleAbandon = "oracle.abandon",
    /// Oracle: a node pulls the notices addressed to it.
    OracleNotices = "oracle.notices",
    /// Oracle: reading an event, contract, e-invoice, FX rate or the event list.
    OracleRead = "oracle.read",
    /// Directory: a node registers one of its DAs.
    DirectoryRegister = "directory.register",
    /// Directory: who hosts an address.
    DirectoryLookup = "directory.lookup",
    /// Directory: a holder's DAs by IIN/BIN.
    DirectoryFind = "directory.find",
    /// Notary: a node's signed batch of claims spending its tokens.
    NotaryNotarise = "notary.notarise",
    /// Notary: claims without inputs (money created by an issuer).
    NotaryIssue = "notary.issue",
    /// Notary: the receipt of a committed transaction.
    NotaryReceipt = "notary.receipt",
    /// Notary group: one replica to another (log entries, votes, snapshots).
    NotaryGroup = "notary.group",
    /// Notary: where it (or a replica) stands — leader, applied, state digest.
    NotaryStatus = "notary.status",
    /// `POST /api/v1/offline/certificates`.
    OfflineCertify = "offline_certify",
    /// `POST /api/v1/offline/loads`.
    OfflineFund = "offline_fund",
    /// `POST /api/v1/offline/deposits`.
    OfflineDeposit = "offline_deposit",
    /// `GET /api/v1/offline/trust`.
    OfflineTrust = "offline_trust",

    // Bank cards (issue 22), appended.
    /// `POST /api/v1/cards`.
    LinkCard = "link_card",
    /// `GET /api/v1/cards/{token}`.
    ReadCard = "read_card",
    /// `POST /api/v1/cards/messages`.
    CardMessage = "card_message",
    /// `GET /api/v1/cards/payments/{rrn}`.
    ReadCardPayment = "read_card_payment",

    // Stablecoins (SPEC §9): API endpoints, then the oracle's attestation of reserves.
    MintStablecoin = "mint_stablecoin",
    BurnStablecoin = "burn_stablecoin",
    ReadReserves = "read_reserves",
    ListStablecoins = "list_stablecoins",
    OracleAttestReserves = "oracle.attest_reserves",
    TransferStablecoin = "transfer_stablecoin",

    // QR payments (issue 21), appended here to keep merges easy.
    /// `POST /api/v1/qr/check`.
    CheckQr = "check_qr",
    /// `POST /api/v1/qr/pay`.
    PayQr = "pay_qr",
    /// `POST /api/v1/qr/prepare`.
    PrepareQrPayment = "prepare_qr_payment",
    /// `POST /api/v1/qr/submit`.
    SubmitQrPayment = "submit_qr_payment",

    // Issue 22's gaps, appended.
    /// Node: the oracle counts a stablecoin's supply and reserve (proof of
    /// reserves) and asks each node for its count.
    NodeStablecoinCount = "node.stablecoin_count",
    /// `POST /api/v1/cards/{token}/unlink`.
    UnlinkCard = "unlink_card",
    /// Node: another bank hands a deposit of this bank's offline load
    /// (deposits between banks on their own hosts).
    NodeOfflineDeposit = "node.offline_deposit",
}

/// The table: who may ask for `op`, and what is checked beyond the kind.
pub fn rule(op: Operation) -> Rule {
    use Operation as O;
    use Scope as S;
    match op {
        O::OpenAccount | O::SetKyc | O::SetProfile | O::Rekey | O::CloseAccount => Rule::new(NODES, S::OwnNode),
        O::ListAccounts | O::ReadAccount | O::ReadBalance | O::ReadHistory | O::ReadNotifications => {
            Rule::new(NODES, S::OwnNode)
        }
        O::ReadProfile | O::ListHolds | O::ReadLimits => Rule::new(NODES, S::OwnNode),
        O::FindHolder => Rule::new(NODES, S::Any),
        O::Transfer | O::PrepareTransfer | O::SubmitSignedTransfer => Rule::new(NODES, S::OwnNode),
        O::ReadTransaction | O::ReadLineage | O::ReadReceipt => Rule::new(NODES, S::OwnNode),
        O::Hold | O::ReleaseHold | O::CancelHold | O::ExpireHold => Rule::new(NODES, S::OwnNode),
        O::MarkByParameter | O::PayMarked | O::PayUnderContract | O::PayInvoice | O::PayVat => {
            Rule::new(NODES, S::OwnNode)
        }
        O::GrantMandate | O::DebitMandate | O::RevokeMandate | O::Pvp => Rule::new(NODES, S::OwnNode),
        O::MarkByAddress => Rule::new(TREASURY, S::OwnNode),
        O::RequestConversion => Rule::new(BANKS, S::OwnNode),
        O::ListConversions | O::ReadConversion => Rule::new(&[Role::Nbk, Role::Stb, Role::Treasury], S::Concerned),
        O::ApproveConversion | O::RejectConversion => Rule::new(NBK, S::Any),
        O::ReadSupply | O::ReadVolumes | O::PublishLimits | O::RegisterProvider => Rule::new(NBK, S::Any),
        O::ReadAggregates | O::ReadLargePayments | O::ReadMarkedFunds => Rule::new(NBK, S::Any),
        O::MintStablecoin | O::BurnStablecoin => Rule::new(STABLECOIN_ISSUERS, S::OwnNode),
        // The proof of reserves is public (SPEC §9): anyone may check it.
        O::ReadReserves => Rule::new(EVERYONE, S::Unsigned),
        O::ListStablecoins => Rule::new(NBK, S::Any),
        O::RegisterEvent | O::RegisterParameter | O::RegisterInvoice | O::SetRate => {
            Rule::new(PROVIDERS, S::Registries)
        }
        O::ReportOccurrence | O::CancelEvent | O::RegisterContract | O::AmendContract => {
            Rule::new(PROVIDERS, S::OwnRecords)
        }
        O::ListEvents | O::ReadEvent | O::ReadContract | O::ReadInvoice | O::ReadRate => {
            Rule::new(ORACLE_READERS, S::Concerned)
        }
        O::PlaceOrder => Rule::new(PROVIDERS, S::Authority),
        O::ListOrders => Rule::new(ORACLE_READERS, S::Concerned),

        O::NodeDeliver
        | O::NodePvpPropose
        | O::NodePvpAbandon
        | O::NodeCanReceive
        | O::NodeLease
        | O::NodeLeaseEnd
        | O::NodeBatch => Rule::new(NODES, S::Any),
        O::NodeConvert | O::NodeConversionStatus => Rule::new(BANKS, S::OwnRecords),
        O::NodePolicy | O::NodeReport => Rule::new(NBK, S::Any),
        O::NodeOperator => Rule::new(NODES, S::Itself),
        O::OracleRegisterProvider => Rule::new(NBK, S::Any),
        O::OracleWrite => Rule::new(PROVIDERS, S::Registries),
        O::OracleAttest | O::OracleConfirm | O::OracleAbandon | O::OracleNotices => Rule::new(NODES, S::Any),
        O::OracleRead => Rule::new(ORACLE_READERS, S::Concerned),
        O::DirectoryRegister => Rule::new(NODES, S::OwnNode),
        O::DirectoryLookup | O::DirectoryFind => Rule::new(NODES, S::Any),
        O::NotaryNotarise => Rule::new(NODES, S::OwnNode),
        O::NotaryIssue => Rule::new(ISSUERS, S::Any),
        O::NotaryReceipt => Rule::new(RECEIPT_READERS, S::Any),
        O::NotaryStatus => Rule::new(NODES, S::Any),
        O::NotaryGroup => Rule::new(NOTARIES, S::Any),
        // Offline purses are a second-tier bank's retail service (issue 21.3).
        O::OfflineCertify | O::OfflineFund | O::OfflineDeposit => Rule::new(&[Role::Stb], S::OwnNode),
        O::OfflineTrust => Rule::new(NODES, S::Any),
        // The issuing bank's card processing relays the network's messages
        // for cards linked to its own DAs.
        O::LinkCard | O::ReadCard | O::CardMessage | O::ReadCardPayment => Rule::new(NODES, S::OwnNode),
        O::OracleAttestReserves => Rule::new(PUBLIC, S::Any),
        O::TransferStablecoin => Rule::new(NODES, S::OwnNode),
        O::CheckQr | O::PayQr | O::PrepareQrPayment | O::SubmitQrPayment => Rule::new(NODES, S::OwnNode),
        // Only the oracle counts reserves; a node's count are sums, no DA named.
        O::NodeStablecoinCount => Rule::new(ORACLES, S::Any),
        O::UnlinkCard => Rule::new(NODES, S::OwnNode),
        O::NodeOfflineDeposit => Rule::new(BANKS, S::Any),
    }
}

/// Whether a participant of `kind` may ask for `op`.
pub fn permits(kind: Role, op: Operation) -> bool {
    rule(op).permits(kind)
}

/// A request that names the operation it asks for (every service request
/// enum implements it with an exhaustive match).
pub trait Authorized {
    /// The operation this request asks for.
    fn operation(&self) -> Operation;
}

/// Why the table refused a participant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender is not in the directory.
    #[error("{0} is not a registered participant")]
    Unknown(ParticipantId),
    /// The sender's kind may not ask for the operation.
    #[error("{who} ({kind:?}) may not ask for {operation}: see the authorisation table in docs/security.md")]
    Kind {
        /// Who asked.
        who: ParticipantId,
        /// Its kind.
        kind: Role,
        /// The operation's name.
        operation: &'static str,
    },
}

impl From<Refusal> for HandlerError {
    fn from(r: Refusal) -> HandlerError {
        HandlerError::Forbidden(r.to_string())
    }
}

/// Checks `who` against the table for `op`; its kind when allowed.
pub fn authorize(participants: &Participants, who: &ParticipantId, op: Operation) -> Result<Role, Refusal> {
    let kind = participants.get(who).map(|p| p.role).ok_or_else(|| Refusal::Unknown(who.clone()))?;
    if permits(kind, op) { Ok(kind) } else { Err(Refusal::Kind { who: who.clone(), kind, operation: op.name() }) }
}

/// Checks a decoded service request from `who` against the table.
pub fn admit<R: Authorized>(
    participants: &Participants,
    who: &ParticipantId,
    request: &R,
) -> Result<Role, HandlerError> {
    Ok(authorize(participants, who, request.operation())?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_operation_is_listed_once_with_a_unique_name() {
        let names: BTreeSet<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Operation::ALL.len());
        let ops: BTreeSet<Operation> = Operation::ALL.iter().copied().collect();
        assert_eq!(ops.len(), Operation::ALL.len());
    }

    #[test]
    fn the_counterparty_central_bank_has_none_of_nbks_regulator_powers() {
        let ccb = Role::CounterpartyCentralBank;
        for op in [
            Operation::PublishLimits,
            Operation::RegisterProvider,
            Operation::OracleRegisterProvider,
            Operation::ListConversions,
            Operation::ReadConversion,
            Operation::ReadSupply,
            Operation::ReadVolumes,
            Operation::ReadAggregates,
            Operation::ReadLargePayments,
            Operation::ReadMarkedFunds,
            Operation::ApproveConversion,
            Operation::NodePolicy,
            Operation::NodeReport,
            Operation::RequestConversion,
        ] {
            assert!(!permits(ccb, op), "{} must not be open to the counterparty central bank", op.name());
            assert!(
                permits(Role::Nbk, op) || BANKS.iter().any(|k| permits(*k, op)),
                "{} is open to someone",
                op.name()
            );
        }
        // It runs a node and issues its own currency.
        for op in [Operation::Transfer, Operation::Pvp, Operation::NotaryIssue, Operation::NodeDeliver] {
            assert!(permits(ccb, op), "{}", op.name());
        }
    }

    #[test]
    fn only_the_proof_of_reserves_is_public_and_only_the_oracle_asks_nodes_for_holdings() {
        let public: Vec<Operation> =
            Operation::ALL.iter().copied().filter(|op| rule(*op).scope == Scope::Unsigned).collect();
        assert_eq!(public, vec![Operation::ReadReserves]);
        for kind in KINDS {
            assert!(permits(kind, Operation::ReadReserves), "{kind:?}");
            assert_eq!(permits(kind, Operation::NodeStablecoinCount), kind == Role::Oracle, "{kind:?}");
        }
    }

    /// A node whose transaction is still in flight when its time window
    /// closes asks the notary for its receipt: every kind that may notarise
    /// may ask that, or its tokens stay reserved for good (the stablecoin
    /// issuer could not, until the simulation minted stablecoins).
    #[test]
    fn whoever_notarises_may_ask_what_became_of_it() {
        for kind in KINDS {
            if permits(kind, Operation::NotaryNotarise) {
                assert!(permits(kind, Operation::NotaryReceipt), "{kind:?} notarises but may not read its receipts");
                assert!(permits(kind, Operation::NotaryStatus), "{kind:?} notarises but may not ask its status");
            }
        }
    }

    #[test]
    fn services_that_only_serve_never_ask_through_the_api() {
        for op in Operation::ALL {
            for kind in [Role::Notary, Role::Directory] {
                // The replicas of a notary group talk to each other, and only that.
                if kind == Role::Notary && matches!(op, Operation::NotaryGroup) {
                    continue;
                }
                // A public operation needs no identity at all.
                if rule(*op).scope == Scope::Unsigned {
                    continue;
                }
                assert!(!permits(kind, *op), "{kind:?} may not ask for {}", op.name());
            }
            if !matches!(op, Operation::NotaryReceipt | Operation::NodeStablecoinCount)
                && rule(*op).scope != Scope::Unsigned
            {
                assert!(!permits(Role::Oracle, *op), "the oracle may not ask for {}", op.name());
            }
        }
    }
}
