//! The scenario runner: a fresh platform per scenario, DAs by label, steps
//! with balances before and after, expected refusals.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use dtenge_net::{Clock, ManualClock};
use dtenge_node::NodeError;
use dtenge_node::accounts::{Account, Holder, HolderKind, KycState};
use dtenge_node::conversion::ConversionKind;
use dtenge_node::service::{NodeService, PayTo, TxOutcome};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Address, Amount, Currency, IinBin, ParticipantId, Timestamp};
use serde::Serialize;

/// Why a scenario could not run at all (as opposed to a step failing).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The platform failed to start.
    #[error("platform: {0}")]
    Platform(String),
    /// A step's precondition failed.
    #[error("{0}")]
    Step(String),
}

impl From<NodeError> for DemoError {
    fn from(e: NodeError) -> Self {
        DemoError::Step(e.to_string())
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

/// What a scenario sees: the platform, the clock, its DAs by label.
pub struct Ctx {
    /// The platform.
    pub platform: Platform,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    accounts: BTreeMap<String, (String, Account)>,
    steps: Vec<StepReport>,
    serial: u8,
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap_or(Amount::MAX)
}

impl Ctx {
    /// A context over a fresh platform in `data`.
    pub async fn open(data: &Path) -> Result<Ctx, DemoError> {
        let clock = ManualClock::new(Timestamp(1_767_225_600_000)); // 2026-01-01 05:00 Astana
        let platform = Platform::open(data, clock.clone(), PlatformOptions { durable: true })
            .await
            .map_err(|e| DemoError::Platform(e.to_string()))?;
        Ok(Ctx { platform, clock, accounts: BTreeMap::new(), steps: Vec::new(), serial: 0 })
    }

    /// A node.
    pub fn node(&self, id: &str) -> Result<Arc<NodeService>, DemoError> {
        self.platform.node(id).cloned().map_err(|e| DemoError::Step(e.to_string()))
    }

    /// Opens a verified DA labelled `label` on `node` and, if `tenge` > 0,
    /// funds it from the node's own DA (which gets DT through the NBK
    /// conversion flow first).
    pub async fn open_da(
        &mut self,
        label: &str,
        node: &str,
        kind: HolderKind,
        tenge: u64,
    ) -> Result<Account, DemoError> {
        self.serial = self.serial.wrapping_add(1);
        let holder = Holder { iin_bin: demo_id(kind, self.serial), name: label.to_string(), kind };
        let host = self.node(node)?;
        let account = host.open_account(holder, None, KycState::Verified).await?;
        if tenge > 0 {
            self.fund(node, &account, dt(tenge)).await?;
        }
        self.accounts.insert(label.to_string(), (node.to_string(), account.clone()));
        Ok(account)
    }

    /// Funds `account` from its bank's own DA, converting through NBK first.
    pub async fn fund(&self, node: &str, account: &Account, amount: Amount) -> Result<(), DemoError> {
        let host = self.node(node)?;
        let request = host.request_conversion(ConversionKind::Issue, amount).await?;
        let nbk = self.node(ids::NBK)?;
        nbk.import_cbs().await?;
        nbk.approve_conversion(&request.id, "demo").await?;
        let own = host.own_account()?;
        host.pay(&own, &[PayTo { address: account.address, amount }], None).await?;
        Ok(())
    }

    /// A DA by label.
    pub fn account(&self, label: &str) -> Result<Account, DemoError> {
        self.accounts
            .get(label)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| DemoError::Step(format!("no DA labelled {label}")))
    }

    /// A DA's address by label.
    pub fn addr(&self, label: &str) -> Result<Address, DemoError> {
        Ok(self.account(label)?.address)
    }

    /// Registers an institution's DA (configured at platform start) under a label.
    pub fn adopt_institution(&mut self, label: &str, key: &str) -> Result<Account, DemoError> {
        let inst = self
            .platform
            .spec
            .institutions
            .iter()
            .find(|i| i.key == key)
            .cloned()
            .ok_or_else(|| DemoError::Step(format!("no institution {key}")))?;
        let node = self.node(inst.host.as_str())?;
        let account = node
            .read(|s| s.account_of(&inst.address).cloned())
            .ok_or_else(|| DemoError::Step(format!("{key} not opened")))?;
        self.accounts.insert(label.to_string(), (inst.host.to_string(), account.clone()));
        Ok(account)
    }

    fn balances(&self, labels: &[&str]) -> Vec<(String, BTreeMap<String, u64>)> {
        labels
            .iter()
            .filter_map(|label| {
                let (node, account) = self.accounts.get(*label)?;
                let host = self.platform.node(node).ok()?;
                let by_currency = host.read(|s| {
                    let mut map = BTreeMap::new();
                    for (_, stored) in s.vault.of_account(&account.id) {
                        let kind = match stored.token.kind() {
                            dtenge_types::TokenKind::Standard => "standard",
                            dtenge_types::TokenKind::Marked => "marked",
                            dtenge_types::TokenKind::Held => "held",
                            dtenge_types::TokenKind::Vat => "vat",
                            dtenge_types::TokenKind::Mandated => "mandated",
                        };
                        let key = if stored.token.currency == Currency::DT {
                            kind.to_string()
                        } else {
                            format!("{kind}_{}", stored.token.currency)
                        };
                        let entry: &mut u64 = map.entry(key).or_default();
                        *entry = entry.saturating_add(stored.token.amount.tiyn());
                    }
                    map
                });
                Some((label.to_string(), by_currency))
            })
            .collect()
    }

    async fn record<T, F, Fut>(
        &mut self,
        title: &str,
        labels: &[&str],
        expect_refusal: Option<&str>,
        work: F,
    ) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DemoError>>,
    {
        let before = self.balances(labels);
        let result = work().await;
        let after = self.balances(labels);
        let balances = before
            .into_iter()
            .zip(after)
            .map(|((account, before), (_, after))| BalanceLine { account, before, after })
            .collect();
        let (passed, outcome, value) = match (expect_refusal, result) {
            (None, Ok(v)) => (true, "done".to_string(), Some(v)),
            (None, Err(e)) => (false, format!("failed: {e}"), None),
            (Some(reason), Err(e)) => {
                let text = e.to_string();
                (text.contains(reason), format!("refused: {text}"), None)
            }
            (Some(reason), Ok(_)) => (false, format!("was accepted, but must be refused ({reason})"), None),
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

    /// A step that must be refused with a message containing `reason`.
    pub async fn refused<T, F, Fut>(&mut self, title: &str, labels: &[&str], reason: &str, work: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, DemoError>>,
    {
        self.record(title, labels, Some(reason), work).await;
    }

    /// A check on the state, recorded as a step.
    pub fn check(&mut self, title: &str, labels: &[&str], ok: bool, detail: String) {
        let now = self.balances(labels);
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

    /// A DA's balance of one kind (`standard`, `marked`, `held`, `vat`, `mandated`).
    pub fn balance(&self, label: &str, kind: &str) -> u64 {
        self.balances(&[label]).first().and_then(|(_, b)| b.get(kind).copied()).unwrap_or(0)
    }

    /// A provider's request to the oracle.
    pub async fn provider(&self, provider: &str, request: OracleRequest) -> Result<OracleAnswer, DemoError> {
        let bus = self.platform.bus(provider).map_err(|e| DemoError::Step(e.to_string()))?;
        let body = borsh::to_vec(&request).map_err(|e| DemoError::Step(e.to_string()))?;
        let answer = bus
            .call(&ParticipantId::new(ids::ORACLE).map_err(|e| DemoError::Step(e.to_string()))?, body)
            .await
            .map_err(|e| DemoError::Step(e.to_string()))?;
        match borsh::from_slice::<OracleAnswer>(&answer).map_err(|e| DemoError::Step(e.to_string()))? {
            OracleAnswer::Refused(why) => Err(DemoError::Step(format!("oracle refused: {why}"))),
            other => Ok(other),
        }
    }

    /// Background work everywhere (notices, releases, expiries).
    pub async fn tick(&self) {
        self.platform.tick().await;
    }

    /// The clock's now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn finish(self, name: &str, title: &str) -> ScenarioReport {
        let _ = self.platform.close();
        let passed = !self.steps.is_empty() && self.steps.iter().all(|s| s.passed);
        ScenarioReport { name: name.to_string(), title: title.to_string(), passed, steps: self.steps }
    }
}

/// A valid IIN (individuals) or BIN (others) for demo holders.
pub fn demo_id(kind: HolderKind, serial: u8) -> IinBin {
    dtenge_platform::demo_set::demo_iin_bin(kind, serial.wrapping_add(100))
}

/// Payment helper for steps.
pub fn pay_to(address: Address, tenge: u64) -> PayTo {
    PayTo { address, amount: dt(tenge) }
}

/// Result of a step that produced a transaction.
pub type StepResult = Result<TxOutcome, DemoError>;

/// Runs the named scenarios (all if empty), each on a fresh platform under
/// `data` (a temporary directory if `None`), calling `progress` after each.
pub async fn run(
    data: Option<&Path>,
    only: &[String],
    mut progress: impl FnMut(&ScenarioReport),
) -> Result<Vec<ScenarioReport>, DemoError> {
    let all = crate::scenarios::all();
    for name in only {
        if !all.iter().any(|s| s.name == name) {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(DemoError::Step(format!("no scenario {name}; scenarios: {}", names.join(", "))));
        }
    }
    let temp = match data {
        Some(_) => None,
        None => {
            Some(std::env::temp_dir().join(format!("dtenge-demo-{}-{}", std::process::id(), Timestamp(0).millis())))
        }
    };
    let root =
        data.map(Path::to_path_buf).or(temp.clone()).ok_or_else(|| DemoError::Platform("no data directory".into()))?;
    let mut reports = Vec::new();
    for scenario in all.into_iter().filter(|s| only.is_empty() || only.iter().any(|n| n == s.name)) {
        let dir = root.join(scenario.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| DemoError::Platform(format!("{}: {e}", dir.display())))?;
        }
        let mut ctx = Ctx::open(&dir).await?;
        if let Err(e) = (scenario.run)(&mut ctx).await {
            ctx.steps.push(StepReport {
                title: "scenario setup".into(),
                expect: "ok".into(),
                outcome: format!("failed: {e}"),
                passed: false,
                balances: Vec::new(),
            });
        }
        let report = ctx.finish(scenario.name, scenario.title);
        progress(&report);
        reports.push(report);
    }
    if let Some(t) = temp {
        let _ = std::fs::remove_dir_all(t);
    }
    Ok(reports)
}
