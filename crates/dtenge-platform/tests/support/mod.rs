//! What the platform's end-to-end tests share: a fresh in-process platform on
//! a manual clock, holders with valid IINs/BINs, funded DAs, provider calls.
#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::sync::Arc;

use dtenge_crypto::Signer;
use dtenge_net::{ManualClock, Role};
use dtenge_node::accounts::{Account, Holder, HolderKind, KycState};
use dtenge_node::archive::Archive;
use dtenge_node::service::{NodeConfig, NodeService, PayTo};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_store::{Journal, Recovery};
use dtenge_types::*;

pub fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

pub fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

/// Holder `n` of `kind`, with a valid IIN (individual) or BIN.
pub fn holder(n: u8, kind: HolderKind) -> Holder {
    let fifth = if kind == HolderKind::Individual { 0 } else { 4 };
    let iin = (0..10u8).find_map(|b| IinBin::with_check_digit(&[6, 1, 0, 1, fifth, 1, 3, 0, b, 0, n])).unwrap();
    Holder { iin_bin: iin, name: format!("Holder {n}"), kind }
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub p: Platform,
    pub clock: Arc<ManualClock>,
}

impl World {
    pub async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp(1_767_225_600_000));
        let p = Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: false }).await.unwrap();
        World { _dir: dir, p, clock }
    }

    pub fn node(&self, id: &str) -> Arc<NodeService> {
        self.p.node(id).unwrap().clone()
    }

    /// Opens a verified DA at `node` and funds it with an issue by NBK.
    pub async fn funded(&self, node: &str, n: u8, kind: HolderKind, amount: Amount) -> Account {
        let account = self.node(node).open_account(holder(n, kind), None, KycState::Verified).await.unwrap();
        let nbk_da = self.p.spec.institutions.iter().find(|i| i.key == ids::NBK_DA).unwrap().clone();
        let nbk = self.node(ids::NBK);
        let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
        let reference = CbsRef::new(format!("CBS-{node}-{n}")).unwrap();
        nbk.issue(&nbk_acct, PayTo { address: account.address, amount }, reference).await.unwrap();
        account
    }

    /// Three DAs at `payer` (holders 1, 3, 4, 100 DT each) and Bob at
    /// `payee` (holder 2); then, with `cut` cut off the network, each of
    /// the three pays Bob 10 DT, all at once. The payers, Bob, and what
    /// each payment answered.
    pub async fn three_pay_bob_with_cut_off(
        &self,
        payer: &str,
        payee: &str,
        cut: &str,
    ) -> (Vec<Account>, Account, [dtenge_node::service::TxOutcome; 3]) {
        let mut payers = Vec::new();
        for n in [1, 3, 4] {
            payers.push(self.funded(payer, n, HolderKind::Individual, dt(100)).await);
        }
        let bob = self.node(payee).open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await;
        let bob = bob.unwrap();
        self.p.network.partition(&pid(cut));
        let node = self.node(payer);
        let to_bob = [PayTo { address: bob.address, amount: dt(10) }];
        let (a, b, c) = tokio::join!(
            node.pay(&payers[0].id, &to_bob, None),
            node.pay(&payers[1].id, &to_bob, None),
            node.pay(&payers[2].id, &to_bob, None)
        );
        (payers, bob, [a.unwrap(), b.unwrap(), c.unwrap()])
    }

    /// `request` sent to the oracle as provider `id`.
    pub async fn provider(&self, id: &str, request: OracleRequest) -> OracleAnswer {
        let bus = self.p.bus(id).unwrap();
        borsh::from_slice(&bus.call(&pid(ids::ORACLE), borsh::to_vec(&request).unwrap()).await.unwrap()).unwrap()
    }
}

/// Another instance of bank node `id` of the platform, over `journal`,
/// recovered from `recovery` (not registered on the network: what it sends
/// goes out as `id`, what is sent to `id` reaches the platform's node).
pub fn instance(w: &World, id: &str, journal: Journal, recovery: Recovery) -> Arc<NodeService> {
    let p = &w.p;
    let key: Arc<dyn Signer> = Arc::new(Keys::at(&p.data).load(id).unwrap());
    let config = NodeConfig {
        id: pid(id),
        role: Role::Stb,
        oracle: pid(ids::ORACLE),
        directory: pid(ids::DIRECTORY),
        params: p.spec.params.clone(),
        cbs: None,
    };
    let participants = Arc::new(p.participants());
    NodeService::recover(
        config,
        key,
        p.bus(id).unwrap(),
        p.clock.clone(),
        participants,
        journal,
        recovery,
        Archive::memory(),
    )
    .unwrap()
}

/// Copies the directory `from`, with everything under it, to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Transactions `node` timed in `stage` so far (`dtenge_node_stage_seconds`).
pub fn timed(node: &str, stage: &str) -> f64 {
    dtenge_net::telemetry::render_metrics()
        .lines()
        .filter(|l| l.starts_with("dtenge_node_stage_seconds_count{"))
        .filter(|l| l.contains(&format!("node=\"{node}\"")) && l.contains(&format!("stage=\"{stage}\"")))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}
