//! The scenario runner: a fresh platform per scenario with the HTTP API
//! router over it and one typed client per acting participant; DAs by label;
//! steps with balances before and after; expected refusals.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use dtenge_client::{
    AddressPayee, CardMessageResponse, CardView, Client, ClientError, ContractPaymentRequest, ContractRequest,
    ContractView, ConversionKindDto, DebitRequest, EventKindDto, EventRequest, EventView, GrantMandateRequest,
    HoldRequest, HolderKindDto, InvoiceRequest, InvoiceView, KycDto, LinkCardRequest, ListQuery, MarkAddressRequest,
    MarkParameterRequest, MarkedTransferRequest, MarkingLevelDto, NotificationView, OccurrenceRequest, OpenAccount,
    ParameterRequest, PvpRequest, RateRequest, RateView, Recipient, ReservesView, StablecoinTransferRequest,
    SupplyChangeRequest, TransferRequest, TxOutcomeView, VatPaymentRequest,
};
use dtenge_crypto::Signer;
use dtenge_net::{Clock, ManualClock};
use dtenge_node::accounts::{AccountId, HolderKind};
use dtenge_node::{NodeError, RefusalCode};
use dtenge_oracle::OracleCode;
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, Currency, IinBin, Timestamp};
use serde::Serialize;

/// The participants the scenarios act as, each with its own signing client.
pub const ACTORS: [&str; 15] = [
    "STB1",
    "STB2",
    "STB3",
    ids::TREASURY,
    ids::NBK,
    ids::FCB,
    ids::COIN_ISSUER,
    "IFA",
    "SSIS",
    "PORTAL",
    "SRC",
    "TERMINALS",
    "EGOV",
    "CROWD",
    "FXDESK",
];

/// Why a scenario could not run at all (as opposed to a step failing).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The platform failed to start.
    #[error("platform: {0}")]
    Platform(String),
    /// A step's precondition failed.
    #[error("{0}")]
    Step(String),
    /// The API refused a step (its status, stable code and message).
    #[error("{0}")]
    Api(ClientError),
    /// A node refused a step driven on it directly.
    #[error("{code}: {0}", code = .0.code())]
    Node(NodeError),
    /// An offline purse refused (on the device, no network).
    #[error("{code}: {0}", code = .0.api_code())]
    Offline(dtenge_offline::OfflineError),
    /// A deposit of offline value was refused as a double spend, and the
    /// bank named the device that signed the same value twice.
    #[error(
        "double spend: device {culprit} signed the same value twice (proof {proof_bytes} bytes); {loss_tiyn} tiyn lost"
    )]
    DoubleSpend {
        /// The device key the proof names.
        culprit: String,
        /// The proof's size.
        proof_bytes: usize,
        /// What the bank could not settle.
        loss_tiyn: u64,
    },
    /// The issuing bank declined a card message (DE 39 other than `00`).
    #[error("{mti} declined with response code {response_code}")]
    Declined {
        /// The answer's message type.
        mti: String,
        /// DE 39.
        response_code: String,
    },
    /// A transaction the API accepted was rejected afterwards.
    #[error("transaction {tx} rejected: {reason}")]
    Rejected {
        /// The transaction.
        tx: String,
        /// Why, as the status shows it.
        reason: String,
    },
}

impl From<NodeError> for DemoError {
    fn from(e: NodeError) -> Self {
        DemoError::Node(e)
    }
}

impl From<dtenge_offline::OfflineError> for DemoError {
    fn from(e: dtenge_offline::OfflineError) -> Self {
        DemoError::Offline(e)
    }
}

impl From<ClientError> for DemoError {
    fn from(e: ClientError) -> Self {
        DemoError::Api(e)
    }
}

/// What a step that must be refused is refused with: a stable code, never
/// the words of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The node's code, which is also the API's `code` (`insufficient_funds`,
    /// `rule_802`, …).
    Code(RefusalCode),
    /// The oracle refused: the API's `oracle_refused` with the oracle's own
    /// code as its `reason`.
    Oracle(OracleCode),
    /// An offline purse refused on the device.
    Offline(dtenge_offline::OfflineCode),
    /// A deposit refused as a double spend proven against this device.
    DoubleSpendBy(dtenge_crypto::PublicKey),
    /// A card message declined with this response code.
    Card(dtenge_node::cards::ResponseCode),
    /// The authorisation table refuses the operation to the caller's kind
    /// (403 `operation_forbidden`).
    NotPermitted,
    /// A stable code of the API's own (the QR endpoints' `qr_expired`, …).
    Api(&'static str),
}

impl From<RefusalCode> for Refused {
    fn from(code: RefusalCode) -> Self {
        Refused::Code(code)
    }
}

impl From<OracleCode> for Refused {
    fn from(code: OracleCode) -> Self {
        Refused::Oracle(code)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Code(code) => write!(f, "{code}"),
            Refused::Oracle(code) => write!(f, "{} ({})", RefusalCode::OracleRefused, code.code()),
            Refused::Offline(code) => write!(f, "offline {code:?}"),
            Refused::DoubleSpendBy(device) => write!(f, "double spend by device {device}"),
            Refused::Card(code) => write!(f, "response code {}", code.code()),
            Refused::NotPermitted => f.write_str(dtenge_api_types::OPERATION_FORBIDDEN),
            Refused::Api(code) => f.write_str(code),
        }
    }
}

impl Refused {
    /// Whether `error` is this refusal.
    pub fn matches(self, error: &DemoError) -> bool {
        match (self, error) {
            (Refused::Code(code), DemoError::Api(e)) => e.code() == Some(code.to_string().as_str()),
            (Refused::Code(code), DemoError::Node(e)) => e.code() == code,
            (Refused::Oracle(code), DemoError::Api(e)) => {
                e.code() == Some(RefusalCode::OracleRefused.code()) && e.reason() == Some(code.code())
            }
            (Refused::Oracle(code), DemoError::Node(NodeError::Oracle(refusal))) => refusal.code == code,
            (Refused::Offline(code), DemoError::Offline(e)) => e.code() == code,
            (Refused::DoubleSpendBy(device), DemoError::DoubleSpend { culprit, .. }) => *culprit == device.to_string(),
            (Refused::Card(code), DemoError::Declined { response_code, .. }) => response_code == code.code(),
            (Refused::Api(code), DemoError::Api(e)) => e.code() == Some(code),
            (Refused::NotPermitted, DemoError::Api(e)) => {
                e.status() == Some(403) && e.code() == Some(dtenge_api_types::OPERATION_FORBIDDEN)
            }
            _ => false,
        }
    }
}

/// One balance line of a step.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceLine {
    /// The DA's label.
    pub account: String,
    /// Before the step, by kind (tiyn).
    pub before: BTreeMap<String, u64>,
    /// After the step.
    pub after: BTreeMap<String, u64>,
}

/// One step of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// What the step does, in the seed's words.
    pub title: String,
    /// `ok` or `refused` (a step that must fail).
    pub expect: String,
    /// What happened.
    pub outcome: String,
    /// Whether it happened as expected.
    pub passed: bool,
    /// Balances of the DAs involved.
    pub balances: Vec<BalanceLine>,
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Its short name (`--scenario NAME`).
    pub name: String,
    /// Its title.
    pub title: String,
    /// Whether every step passed.
    pub passed: bool,
    /// The steps.
    pub steps: Vec<StepReport>,
}

/// A digital account as the API shows it: its id at its bank, its address
/// and the bank (node) hosting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Da {
    /// `<node>-<number>`.
    pub id: String,
    /// The DA's address (hex public key).
    pub address: String,
    /// The hosting node.
    pub node: String,
}

/// An amount in whole tenge as tiyn.
pub fn tiyn(tenge: u64) -> u64 {
    Amount::from_tenge(tenge).unwrap_or(Amount::MAX).tiyn()
}

/// Result of a step that produced a transaction.
pub type StepResult = Result<TxOutcomeView, DemoError>;

fn outcome(view: TxOutcomeView) -> StepResult {
    if view.status.status == "rejected" {
        let why = view.status.reason.clone().unwrap_or_default();
        return Err(DemoError::Rejected { tx: view.tx.to_string(), reason: why });
    }
    Ok(view)
}

fn payees(to: &[(&Da, u64)]) -> Vec<AddressPayee> {
    to.iter().map(|(da, tenge)| AddressPayee { address: da.address.clone(), amount_tiyn: tiyn(*tenge) }).collect()
}

/// A holder's kind on the wire.
pub fn holder_kind(kind: HolderKind) -> HolderKindDto {
    match kind {
        HolderKind::Individual => HolderKindDto::Individual,
        HolderKind::LegalEntity => HolderKindDto::LegalEntity,
        HolderKind::GovernmentAgency => HolderKindDto::GovernmentAgency,
        HolderKind::Institution => HolderKindDto::Institution,
    }
}

/// An event a provider registers on the oracle (`POST /api/v1/oracle/events`).
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Its id.
    pub id: &'a str,
    /// Single, recurring or campaign.
    pub kind: EventKindDto,
    /// Campaign only: its target, in tenge.
    pub target: Option<u64>,
    /// Whose funds are held (none for a campaign).
    pub sender: Option<&'a Da>,
    /// Who receives released funds.
    pub recipient: &'a Da,
    /// The amount held, in tenge (none for a campaign).
    pub amount: Option<u64>,
    /// Valid-until or deadline.
    pub valid_until: Timestamp,
}

/// A contract a provider registers under a parameter (`POST /api/v1/oracle/contracts`).
#[derive(Debug, Clone)]
pub struct ContractSpec<'a> {
    /// Its number.
    pub number: &'a str,
    /// Its parameter.
    pub parameter: &'a str,
    /// Who pays.
    pub sender: &'a Da,
    /// Who is paid.
    pub recipient: &'a Da,
    /// Maximum transfer total, in tenge.
    pub max_transfer: u64,
    /// Maximum cash-out total, in tenge.
    pub max_cashout: u64,
    /// End of validity.
    pub valid_until: Timestamp,
    /// Whether the recipient is the end supplier.
    pub final_recipient: bool,
}

/// One participant's signed, typed client to the platform's HTTP API, with
/// the requests the scenarios make. Amounts are in whole tenge.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `POST /api/v1/accounts`: a verified DA on this bank.
    pub async fn open_account(&self, iin_bin: &IinBin, name: &str, kind: HolderKind) -> Result<Da, DemoError> {
        let request = OpenAccount {
            iin_bin: iin_bin.to_string(),
            name: name.to_string(),
            kind: holder_kind(kind),
            kyc: Some(KycDto::Verified),
            client_public_key: None,
        };
        let view = self.client.open_account(&request, None).await?;
        Ok(Da { id: view.id, address: view.address, node: view.node })
    }

    /// `POST /api/v1/transfers`: one atomic payment to one or several recipients.
    pub async fn transfer(&self, from: &Da, to: &[(&Da, u64)]) -> StepResult {
        let request = TransferRequest {
            from: from.id.clone(),
            to: to.iter().map(|(da, tenge)| Recipient::address(da.address.clone(), tiyn(*tenge))).collect(),
            memo: None,
        };
        outcome(self.client.transfer(&request, None).await?)
    }

    /// `POST /api/v1/qr/pay`: pays a merchant's QR (`tenge` only for a static one).
    pub async fn pay_qr(&self, from: &Da, payload: &str, tenge: Option<u64>) -> StepResult {
        let request = dtenge_client::QrPayRequest {
            from: from.id.clone(),
            payload: payload.to_string(),
            amount_tiyn: tenge.map(tiyn),
        };
        outcome(self.client.pay_qr(&request, None).await?)
    }

    /// `POST /api/v1/transfers/marked`: pays address-marked funds.
    pub async fn pay_marked(&self, from: &Da, to: &[(&Da, u64)]) -> StepResult {
        let request = MarkedTransferRequest { from: from.id.clone(), to: payees(to), reference: None, memo: None };
        outcome(self.client.pay_marked(&request, None).await?)
    }

    /// `POST /api/v1/markings/address` (Treasury): marks funds of `account` paid to `recipient`.
    pub async fn mark_address(
        &self,
        account: &Da,
        recipient: &Da,
        tenge: u64,
        reference: &str,
        levels: &[(&[&Da], u64)],
    ) -> StepResult {
        let levels = levels
            .iter()
            .map(|(recipients, limit)| MarkingLevelDto {
                recipients: recipients.iter().map(|d| d.address.clone()).collect(),
                limit_tiyn: tiyn(*limit),
            })
            .collect();
        let request = MarkAddressRequest {
            account: account.id.clone(),
            recipient: recipient.address.clone(),
            amount_tiyn: tiyn(tenge),
            reference: reference.to_string(),
            levels,
            memo: None,
        };
        outcome(self.client.mark_address(&request, None).await?)
    }

    /// `POST /api/v1/markings/parameter`.
    pub async fn mark_parameter(&self, account: &Da, recipient: &Da, tenge: u64, parameter: &str) -> StepResult {
        let request = MarkParameterRequest {
            account: account.id.clone(),
            recipient: recipient.address.clone(),
            amount_tiyn: tiyn(tenge),
            parameter: parameter.to_string(),
            memo: None,
        };
        outcome(self.client.mark_parameter(&request, None).await?)
    }

    /// `POST /api/v1/contract-payments`.
    pub async fn contract_payment(
        &self,
        account: &Da,
        parameter: &str,
        contract: &str,
        recipient: &Da,
        tenge: u64,
        cash_out: bool,
    ) -> StepResult {
        let request = ContractPaymentRequest {
            account: account.id.clone(),
            parameter: parameter.to_string(),
            contract: contract.to_string(),
            recipient: recipient.address.clone(),
            amount_tiyn: tiyn(tenge),
            cash_out,
            memo: None,
        };
        outcome(self.client.contract_payment(&request, None).await?)
    }

    /// `POST /api/v1/holds`: holds funds for an event (a campaign contribution names its amount).
    pub async fn hold(&self, account: &Da, event: &str, contribution: Option<u64>) -> StepResult {
        let request =
            HoldRequest { account: account.id.clone(), event: event.to_string(), amount_tiyn: contribution.map(tiyn) };
        outcome(self.client.hold(&request, None).await?)
    }

    /// `POST /api/v1/holds/{event}/release`.
    pub async fn release(&self, account: &Da, event: &str) -> StepResult {
        outcome(self.client.release_hold(event, &account.id, None).await?)
    }

    /// `POST /api/v1/invoices/{id}/pay`.
    pub async fn pay_invoice(&self, account: &Da, invoice: &str) -> StepResult {
        outcome(self.client.pay_invoice(invoice, &account.id, None).await?)
    }

    /// `POST /api/v1/vat-payments`.
    pub async fn pay_vat(&self, account: &Da, tenge: u64) -> StepResult {
        let request = VatPaymentRequest { account: account.id.clone(), amount_tiyn: tiyn(tenge) };
        outcome(self.client.pay_vat(&request, None).await?)
    }

    /// `POST /api/v1/mandates`.
    pub async fn grant_mandate(
        &self,
        account: &Da,
        mandate: &str,
        grantee: &Da,
        tenge: u64,
        valid_until: Timestamp,
    ) -> StepResult {
        let request = GrantMandateRequest {
            account: account.id.clone(),
            mandate: mandate.to_string(),
            grantee: grantee.address.clone(),
            amount_tiyn: tiyn(tenge),
            valid_until_ms: valid_until.millis(),
        };
        outcome(self.client.grant_mandate(&request, None).await?)
    }

    /// `POST /api/v1/mandates/{mandate}/debit`.
    pub async fn debit(&self, grantee: &Da, owner: &Da, mandate: &str, to: &Da, tenge: u64) -> StepResult {
        let request = DebitRequest {
            grantee_account: grantee.id.clone(),
            owner_account: owner.id.clone(),
            to: to.address.clone(),
            amount_tiyn: tiyn(tenge),
            memo: None,
        };
        outcome(self.client.debit(mandate, &request, None).await?)
    }

    /// `POST /api/v1/mandates/{mandate}/revoke`.
    pub async fn revoke_mandate(&self, account: &Da, mandate: &str) -> StepResult {
        outcome(self.client.revoke_mandate(mandate, &account.id, None).await?)
    }

    /// `POST /api/v1/cards`: links a card (token, last four, expiry `YYMM`) to `account`.
    pub async fn link_card(&self, account: &Da, token: &str, last4: &str, expiry: &str) -> Result<CardView, DemoError> {
        let request = LinkCardRequest {
            account: account.id.clone(),
            token: token.to_string(),
            last4: last4.to_string(),
            expiry: expiry.to_string(),
        };
        Ok(self.client.link_card(&request, None).await?)
    }

    /// `POST /api/v1/cards/messages`: relays a card network message to this
    /// bank as issuer. A decline (any response code but `00`) is an error
    /// naming its code, so a scenario expects it like any refusal.
    pub async fn card_message(
        &self,
        message: &dtenge_node::cards::CardMessage,
    ) -> Result<CardMessageResponse, DemoError> {
        let request = dtenge_api::routes::cards::card_message_request(message);
        let answer = self.client.card_message(&request, None).await?;
        if answer.response_code == "00" {
            Ok(answer)
        } else {
            Err(DemoError::Declined { mti: answer.mti, response_code: answer.response_code })
        }
    }

    /// `POST /api/v1/pvp`: `tenge` of `base` against `quote` at the FX oracle's rate.
    pub async fn pvp(&self, account: &Da, counterparty: &Da, base: &str, tenge: u64, quote: &str) -> StepResult {
        let request = PvpRequest {
            account: account.id.clone(),
            counterparty: counterparty.address.clone(),
            base: base.to_string(),
            amount_tiyn: tiyn(tenge),
            quote: quote.to_string(),
        };
        outcome(self.client.pvp(&request, None).await?)
    }

    /// `POST /api/v1/stablecoins/{code}/mint` (the licensed issuer).
    pub async fn mint(&self, code: &str, issuer: &Da, tenge: u64) -> StepResult {
        let request = SupplyChangeRequest { account: issuer.id.clone(), amount_tiyn: tiyn(tenge), memo: None };
        outcome(self.client.mint(code, &request, None).await?)
    }

    /// `POST /api/v1/stablecoins/{code}/burn` (the licensed issuer).
    pub async fn burn(&self, code: &str, issuer: &Da, tenge: u64) -> StepResult {
        let request = SupplyChangeRequest { account: issuer.id.clone(), amount_tiyn: tiyn(tenge), memo: None };
        outcome(self.client.burn(code, &request, None).await?)
    }

    /// `POST /api/v1/stablecoins/{code}/transfers`: a payment in the stablecoin.
    pub async fn coin_transfer(&self, code: &str, from: &Da, to: &[(&Da, u64)]) -> StepResult {
        let request = StablecoinTransferRequest {
            from: from.id.clone(),
            to: to.iter().map(|(da, tenge)| Recipient::address(da.address.clone(), tiyn(*tenge))).collect(),
            memo: None,
        };
        outcome(self.client.stablecoin_transfer(code, &request, None).await?)
    }

    /// `GET /api/v1/stablecoins/{code}/reserves`: the oracle-attested proof of reserves.
    pub async fn reserves(&self, code: &str) -> Result<ReservesView, DemoError> {
        Ok(self.client.reserves(code).await?)
    }

    /// `POST /api/v1/oracle/events` (provider).
    pub async fn register_event(&self, e: &Event<'_>) -> Result<EventView, DemoError> {
        let request = EventRequest {
            id: e.id.to_string(),
            kind: e.kind,
            target_tiyn: e.target.map(tiyn),
            sender: e.sender.map(|d| d.address.clone()),
            sender_node: e.sender.map(|d| d.node.clone()),
            recipient: e.recipient.address.clone(),
            recipient_node: e.recipient.node.clone(),
            amount_tiyn: e.amount.map(tiyn),
            valid_until_ms: e.valid_until.millis(),
        };
        Ok(self.client.register_event(&request, None).await?)
    }

    /// `POST /api/v1/oracle/events/{id}/occurrences` (the event's provider).
    pub async fn report_occurrence(&self, event: &str, tenge: Option<u64>) -> Result<EventView, DemoError> {
        let request = OccurrenceRequest { amount_tiyn: tenge.map(tiyn) };
        Ok(self.client.report_occurrence(event, &request, None).await?)
    }

    /// `POST /api/v1/oracle/parameters` (the Smart Contract Portal).
    pub async fn register_parameter(
        &self,
        id: &str,
        initiator: &Da,
        title: &str,
    ) -> Result<ParameterRequest, DemoError> {
        let request = ParameterRequest {
            id: id.to_string(),
            initiator: initiator.address.clone(),
            initiator_node: initiator.node.clone(),
            title: title.to_string(),
        };
        Ok(self.client.register_parameter(&request, None).await?)
    }

    /// `POST /api/v1/oracle/contracts` (the Smart Contract Portal).
    pub async fn register_contract(&self, c: &ContractSpec<'_>) -> Result<ContractView, DemoError> {
        let request = ContractRequest {
            number: c.number.to_string(),
            parameter: c.parameter.to_string(),
            sender: c.sender.address.clone(),
            recipient: c.recipient.address.clone(),
            max_transfer_tiyn: tiyn(c.max_transfer),
            max_cashout_tiyn: tiyn(c.max_cashout),
            valid_until_ms: c.valid_until.millis(),
            final_recipient: c.final_recipient,
        };
        Ok(self.client.register_contract(&request, None).await?)
    }

    /// `POST /api/v1/oracle/invoices` (the tax service).
    pub async fn register_invoice(
        &self,
        id: &str,
        seller: &Da,
        buyer: &Da,
        net: u64,
        vat: u64,
    ) -> Result<InvoiceView, DemoError> {
        let request = InvoiceRequest {
            id: id.to_string(),
            seller: seller.address.clone(),
            buyer: buyer.address.clone(),
            net_tiyn: tiyn(net),
            vat_tiyn: tiyn(vat),
        };
        Ok(self.client.register_invoice(&request, None).await?)
    }

    /// `POST /api/v1/oracle/fx-rates` (the FX provider): `quote = base × numerator / denominator`.
    pub async fn set_rate(
        &self,
        base: &str,
        quote: &str,
        numerator: u64,
        denominator: u64,
        valid_until: Timestamp,
    ) -> Result<RateView, DemoError> {
        let request = RateRequest {
            base: base.to_string(),
            quote: quote.to_string(),
            numerator,
            denominator,
            valid_until_ms: valid_until.millis(),
        };
        Ok(self.client.set_rate(&request, None).await?)
    }

    /// `GET /api/v1/accounts/{id}/notifications`: newest first.
    pub async fn notifications(&self, da: &Da) -> Result<Vec<NotificationView>, DemoError> {
        let query = ListQuery { per_page: Some(200), ..ListQuery::default() };
        Ok(self.client.notifications(&da.id, &query).await?.items)
    }
}

/// What a scenario sees: the platform, the clock, the API clients, its DAs by label.
pub struct Ctx {
    /// The platform.
    pub platform: Arc<Platform>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    clients: BTreeMap<String, Api>,
    accounts: BTreeMap<String, Da>,
    pub(crate) steps: Vec<StepReport>,
    serial: u8,
}

impl Ctx {
    /// A context over a fresh platform in `data`, with the API router over
    /// it and a signed in-process client for every participant in [`ACTORS`].
    pub async fn open(data: &Path) -> Result<Ctx, DemoError> {
        let clock = ManualClock::new(Timestamp(1_767_225_600_000)); // 2026-01-01 05:00 Astana
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let platform = Platform::open(data, Arc::clone(&dyn_clock), PlatformOptions { durable: true })
            .await
            .map_err(|e| DemoError::Platform(e.to_string()))?;
        let platform = Arc::new(platform);
        let router = dtenge_api::router(Arc::clone(&platform));
        let keys = Keys::at(data);
        let mut clients = BTreeMap::new();
        for actor in ACTORS {
            let key = keys.load(actor).map_err(|e| DemoError::Platform(format!("key of {actor}: {e}")))?;
            let key: Arc<dyn Signer> = Arc::new(key);
            let participant =
                dtenge_types::ParticipantId::new(actor).map_err(|e| DemoError::Platform(e.to_string()))?;
            let client = Client::in_process(router.clone(), participant, key, Arc::clone(&dyn_clock));
            clients.insert(actor.to_string(), Api { client });
        }
        Ok(Ctx { platform, clock, clients, accounts: BTreeMap::new(), steps: Vec::new(), serial: 0 })
    }

    /// The API client of participant `id`.
    pub fn api(&self, id: &str) -> Result<Api, DemoError> {
        self.clients.get(id).cloned().ok_or_else(|| DemoError::Step(format!("no API client for {id}")))
    }

    /// A node, for what the API does not offer (a foreign central bank's issuance).
    pub fn node(&self, id: &str) -> Result<Arc<dtenge_node::service::NodeService>, DemoError> {
        self.platform.node(id).cloned().map_err(|e| DemoError::Step(e.to_string()))
    }

    /// Opens a verified DA labelled `label` at bank `node` through the API
    /// and, if `tenge` > 0, funds it (see [`Ctx::fund`]).
    pub async fn open_da(&mut self, label: &str, node: &str, kind: HolderKind, tenge: u64) -> Result<Da, DemoError> {
        self.serial = self.serial.wrapping_add(1);
        let da = self.api(node)?.open_account(&demo_id(kind, self.serial), label, kind).await?;
        if tenge > 0 {
            self.fund(&da, tenge).await?;
        }
        self.accounts.insert(label.to_string(), da.clone());
        Ok(da)
    }

    /// Funds `da` the way its bank does, through the API: the bank asks NBK
    /// for a conversion, the CBS simulator confirms it on the next round,
    /// NBK approves it (DT issued to the bank's own DA), and the bank pays
    /// the DA from its own DA.
    pub async fn fund(&self, da: &Da, tenge: u64) -> Result<(), DemoError> {
        let bank = self.api(&da.node)?;
        let amount = tiyn(tenge);
        let request = bank.client.request_conversion(ConversionKindDto::Issue, amount, None).await?;
        self.platform.tick().await;
        let approved = self.api(ids::NBK)?.client.approve_conversion(&request.id, "demo operator").await?;
        if approved.status.status == "rejected" {
            return Err(DemoError::Step(format!(
                "conversion {} rejected: {}",
                approved.id,
                approved.status.reason.unwrap_or_default()
            )));
        }
        let own = self.institution(&format!("{}-DA", da.node)).await?;
        if own.address != da.address {
            bank.transfer(&own, &[(da, tenge)]).await?;
        }
        Ok(())
    }

    /// A DA by label.
    pub fn account(&self, label: &str) -> Result<Da, DemoError> {
        self.accounts.get(label).cloned().ok_or_else(|| DemoError::Step(format!("no DA labelled {label}")))
    }

    /// An institution's DA (configured at platform start), found by its host
    /// bank through `GET /api/v1/accounts`.
    pub async fn institution(&self, key: &str) -> Result<Da, DemoError> {
        let inst = self
            .platform
            .spec
            .institutions
            .iter()
            .find(|i| i.key == key)
            .ok_or_else(|| DemoError::Step(format!("no institution {key}")))?;
        let (host, address) = (inst.host.to_string(), inst.address.to_string());
        let query = ListQuery { per_page: Some(200), ..ListQuery::default() };
        let page = self.api(&host)?.client.list_accounts(&query).await?;
        let view = page
            .items
            .into_iter()
            .find(|a| a.address == address)
            .ok_or_else(|| DemoError::Step(format!("{key} is not opened at {host}")))?;
        Ok(Da { id: view.id, address, node: host })
    }

    /// Registers an institution's DA under a label.
    pub async fn adopt_institution(&mut self, label: &str, key: &str) -> Result<Da, DemoError> {
        let da = self.institution(key).await?;
        self.accounts.insert(label.to_string(), da.clone());
        Ok(da)
    }

    /// A DA's balances by kind: `GET /api/v1/accounts/{id}/balance` through
    /// its bank's client. That answer sums every currency, so a DA that also
    /// holds another currency (the cross-border scenario) is read per
    /// currency from its node's vault instead.
    async fn balances_of(&self, da: &Da) -> Option<BTreeMap<String, u64>> {
        if let Some(split) = self.per_currency(da) {
            return Some(split);
        }
        let view = self.clients.get(&da.node)?.client.balance(&da.id).await.ok()?;
        let mut map = BTreeMap::new();
        for (kind, tiyn) in [
            ("standard", view.standard_tiyn),
            ("marked", view.marked_tiyn),
            ("held", view.held_tiyn),
            ("vat", view.vat_tiyn),
            ("mandated", view.mandated_tiyn),
            ("reserve", view.reserve_tiyn),
        ] {
            if tiyn > 0 {
                map.insert(kind.to_string(), tiyn);
            }
        }
        Some(map)
    }

    fn per_currency(&self, da: &Da) -> Option<BTreeMap<String, u64>> {
        let node = self.platform.node(&da.node).ok()?;
        let id = AccountId(da.id.clone());
        node.read(|s| {
            if s.vault.of_account(&id).all(|(_, t)| t.token.currency == Currency::DT) {
                return None;
            }
            let mut map = BTreeMap::new();
            for (_, stored) in s.vault.of_account(&id) {
                let kind = match stored.token.kind() {
                    dtenge_types::TokenKind::Standard => "standard",
                    dtenge_types::TokenKind::Marked => "marked",
                    dtenge_types::TokenKind::Held => "held",
                    dtenge_types::TokenKind::Vat => "vat",
                    dtenge_types::TokenKind::Mandated => "mandated",
                    dtenge_types::TokenKind::Reserve => "reserve",
                };
                let key = if stored.token.currency == Currency::DT {
                    kind.to_string()
                } else {
                    format!("{kind}_{}", stored.token.currency)
                };
                let entry: &mut u64 = map.entry(key).or_default();
                // Within u64: one currency's tokens never exceed its issuer's admitted supply.
                *entry = entry.checked_add(stored.token.amount.tiyn())?;
            }
            Some(map)
        })
    }

    async fn balances(&self, labels: &[&str]) -> Vec<(String, BTreeMap<String, u64>)> {
        let mut out = Vec::with_capacity(labels.len());
        for label in labels {
            let Some(da) = self.accounts.get(*label) else { continue };
            if let Some(b) = self.balances_of(da).await {
                out.push((label.to_string(), b));
            }
        }
        out
    }

    async fn record<T, F, Fut>(
        &mut self,
        title: &str,
        labels: &[&str],
        expect_refusal: Option<Refused>,
        work: F,
    ) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DemoError>>,
    {
        let before = self.balances(labels).await;
        let result = work().await;
        let after = self.balances(labels).await;
        let balances = before
            .into_iter()
            .zip(after)
            .map(|((account, before), (_, after))| BalanceLine { account, before, after })
            .collect();
        let (passed, outcome, value) = match (expect_refusal, result) {
            (None, Ok(v)) => (true, "done".to_string(), Some(v)),
            (None, Err(e)) => (false, format!("failed: {e}"), None),
            (Some(expected), Err(e)) if expected.matches(&e) => (true, format!("refused: {e}"), None),
            (Some(expected), Err(e)) => (false, format!("refused: {e}; expected {expected}"), None),
            (Some(expected), Ok(_)) => (false, format!("was accepted, but must be refused ({expected})"), None),
        };
        self.steps.push(StepReport {
            title: title.to_string(),
            expect: if expect_refusal.is_some() { "refused".into() } else { "ok".into() },
            outcome,
            passed,
            balances,
        });
        value
    }

    /// A step that must succeed.
    pub async fn step<T, F, Fut>(&mut self, title: &str, labels: &[&str], work: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DemoError>>,
    {
        self.record(title, labels, None, work).await
    }

    /// A step that must be refused, with the stable code `expected`.
    pub async fn refused<T, F, Fut>(&mut self, title: &str, labels: &[&str], expected: impl Into<Refused>, work: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DemoError>>,
    {
        self.record(title, labels, Some(expected.into()), work).await;
    }

    /// A check on the state, recorded as a step.
    pub async fn check(&mut self, title: &str, labels: &[&str], ok: bool, detail: String) {
        let now = self.balances(labels).await;
        let balances =
            now.into_iter().map(|(account, b)| BalanceLine { account, before: b.clone(), after: b }).collect();
        self.steps.push(StepReport {
            title: title.to_string(),
            expect: "ok".into(),
            outcome: if ok { "holds".into() } else { format!("does not hold: {detail}") },
            passed: ok,
            balances,
        });
    }

    /// A DA's balance of one kind (`standard`, `marked`, `held`, `vat`,
    /// `mandated`, `reserve`; `standard_KZTC` for a currency other than DT).
    pub async fn balance(&self, label: &str, kind: &str) -> u64 {
        self.balances(&[label]).await.first().and_then(|(_, b)| b.get(kind).copied()).unwrap_or(0)
    }

    /// Background work everywhere (notices, releases, expiries): not an API
    /// operation, the platform's own round.
    pub async fn tick(&self) {
        self.platform.tick().await;
    }

    /// What the kernel every node runs says of a plain transfer of all of
    /// `da`'s DT in `stablecoin`'s reserve to `to`, signed with `da`'s own
    /// key (kept under `key` in the platform's key directory): an issuer
    /// bypassing its node's operations, whose transaction any validating
    /// node would be handed. `Ok` if the kernel accepts it.
    pub fn spend_reserve_directly(&self, da: &Da, key: &str, stablecoin: &str, to: &Da) -> Result<(), DemoError> {
        use dtenge_types::{Command, Encumbrance, ReserveTerms, TimeWindow, Token, Transaction, TxBody};
        let coin = Currency::new(stablecoin).map_err(|e| DemoError::Step(e.to_string()))?;
        let node = self.platform.node(&da.node).map_err(|e| DemoError::Platform(e.to_string()))?;
        let id = AccountId(da.id.clone());
        let terms = Some(Encumbrance::Reserve(ReserveTerms { stablecoin: coin }));
        let inputs: Vec<(dtenge_types::TokenId, Token)> = node.read(|s| {
            s.vault
                .of_account(&id)
                .filter(|(_, st)| st.token.encumbrance == terms)
                .map(|(i, st)| (*i, st.token.clone()))
                .collect()
        });
        let total = Amount::checked_sum(inputs.iter().map(|(_, t)| t.amount))
            .ok_or_else(|| DemoError::Step("reserve total overflows".into()))?;
        let to_address = to.address.parse().map_err(|e: dtenge_types::TypesError| DemoError::Step(e.to_string()))?;
        let to_host = dtenge_types::ParticipantId::new(to.node.clone()).map_err(|e| DemoError::Step(e.to_string()))?;
        let body = TxBody {
            inputs: inputs
                .iter()
                .map(|(i, _)| *i)
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|e: dtenge_types::TypesError| DemoError::Step(e.to_string()))?,
            outputs: vec![Token::standard(Currency::DT, total, to_address, to_host)]
                .try_into()
                .map_err(|e: dtenge_types::TypesError| DemoError::Step(e.to_string()))?,
            command: Command::Transfer,
            window: TimeWindow::starting(self.now(), 60_000),
            memo: None,
        };
        let signer = Keys::at(&self.platform.data).load(key).map_err(|e| DemoError::Platform(e.to_string()))?;
        let mut tx = Transaction::unsigned(body);
        tx.sign(&signer).map_err(|e| DemoError::Step(e.to_string()))?;
        let tokens: Vec<Token> = inputs.into_iter().map(|(_, t)| t).collect();
        let ctx = dtenge_ledger::Context { now: self.now(), params: &self.platform.spec.params };
        dtenge_ledger::validate(&tx, &tokens, &ctx, &dtenge_crypto::Ed25519)
            .map(|_| ())
            .map_err(|r| DemoError::Node(NodeError::Rejected(r)))
    }

    /// The clock's now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn finish(self, name: &str, title: &str) -> ScenarioReport {
        let _ = self.platform.close();
        let passed = !self.steps.is_empty() && self.steps.iter().all(|s| s.passed);
        ScenarioReport { name: name.to_string(), title: title.to_string(), passed, steps: self.steps }
    }
}

/// A valid IIN (individuals) or BIN (others) for demo holders.
pub fn demo_id(kind: HolderKind, serial: u8) -> IinBin {
    dtenge_platform::demo_set::demo_iin_bin(kind, serial.wrapping_add(100))
}
