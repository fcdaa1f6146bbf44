//! The platform as separate processes: notary, directory, oracle and a bank
//! node each run as `dtenge node`; NBK and another bank run in this test's
//! process over the same HTTP transport. A payment crosses them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::service::PayTo;
use dtenge_node::state::{NodeRecord, NodeState};
use dtenge_platform::process::{self, Running};
use dtenge_platform::services::Service;
use dtenge_platform::spec::{PlatformSpec, ids};
use dtenge_store::{Journal, JournalConfig};
use dtenge_types::{Amount, CbsRef, IinBin};

/// A base port with enough free ports after it.
fn free_base_port(count: u16) -> u16 {
    for base in (30_000u16..60_000).step_by(97) {
        if (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_node(data: &Path, id: &str) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_dtenge"))
            .args(["node", "--data", data.to_str().unwrap(), "--id", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn node(running: &Running) -> &std::sync::Arc<dtenge_node::service::NodeService> {
    match &running.service {
        Service::Node(n) => n,
        _ => panic!("not a node"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_crosses_separate_processes() {
    // This process's metrics (NBK's and STB1's services run here) from the start.
    dtenge_net::telemetry::metrics_handle();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let status = Command::new(env!("CARGO_BIN_EXE_dtenge"))
        .args(["init", "--data", data.to_str().unwrap(), "--base-port", &free_base_port(12).to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let spec = PlatformSpec::load(data).unwrap();

    let _notary = spawn_node(data, ids::NOTARY);
    let _directory = spawn_node(data, ids::DIRECTORY);
    let _oracle = spawn_node(data, ids::ORACLE);
    let mut stb2 = spawn_node(data, "STB2");

    let nbk = process::start(data, ids::NBK, true).await.unwrap();
    let stb1 = process::start(data, "STB1", true).await.unwrap();
    let inst = |key: &str| spec.institutions.iter().find(|i| i.key == key).unwrap().clone();
    let (nbk_da, stb1_da, stb2_da) = (inst(ids::NBK_DA), inst("STB1-DA"), inst("STB2-DA"));
    // Wait for bootstrap (the other processes come up in their own time).
    let mut ready = false;
    for _ in 0..300 {
        // Every DA the test needs is registered in the (separate) directory.
        // (A DA is in the directory a moment before its node has journaled it.)
        let nbk_ok = node(&nbk).read(|s| s.account_of(&nbk_da.address).is_some())
            && node(&stb1).read(|s| s.account_of(&stb1_da.address).is_some());
        let stb1_known = node(&nbk).host_of(&stb1_da.address).await.is_ok();
        if nbk_ok && stb1_known && node(&stb1).host_of(&stb2_da.address).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the processes did not come up");

    let nbk_acct = node(&nbk).read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let stb1_acct = node(&stb1).read(|s| s.account_of(&stb1_da.address).unwrap().id.clone());
    let dt = |n| Amount::from_tenge(n).unwrap();
    node(&nbk)
        .issue(&nbk_acct, PayTo { address: stb1_da.address, amount: dt(10_000) }, CbsRef::new("CBS-P-1").unwrap())
        .await
        .unwrap();
    let iin = IinBin::with_check_digit(&[9, 1, 0, 1, 0, 1, 3, 0, 0, 0, 1]).unwrap();
    let client = node(&stb1)
        .open_account(
            Holder { iin_bin: iin, name: "Client".into(), kind: HolderKind::Individual },
            None,
            KycState::Verified,
        )
        .await
        .unwrap();
    node(&stb1).pay(&stb1_acct, &[PayTo { address: client.address, amount: dt(5_000) }], None).await.unwrap();
    let paid = node(&stb1).pay(&client.id, &[PayTo { address: stb2_da.address, amount: dt(150) }], None).await.unwrap();
    assert_eq!(node(&stb1).balances(&client.id).unwrap().standard, dt(4_850));
    assert!(
        node(&stb1).read(|s| s.outgoing(&paid.tx).unwrap().undelivered.is_empty()),
        "delivered to the STB2 process"
    );

    // What this process's `/metrics` shows of it: calls to the notary and
    // to STB2's process over HTTP, the registry in force, STB1's payments.
    let text = dtenge_net::telemetry::render_metrics();
    for series in [
        r#"dtenge_rpc_calls_total{to="NOTARY",outcome="ok"}"#,
        r#"dtenge_rpc_calls_total{to="STB2",outcome="ok"}"#,
        r#"dtenge_rpc_call_seconds_count{to="NOTARY"}"#,
        "dtenge_registry_serial 1",
        r#"dtenge_node_payments_total{node="STB1",outcome="committed"} 2"#,
        r#"dtenge_node_payments_total{node="NBK",outcome="committed"} 1"#,
    ] {
        assert!(text.lines().any(|l| l.starts_with(series)), "no {series} in:\n{text}");
    }

    // Stop STB2's process and read its journal: the payment is there.
    let _ = Command::new("kill").args(["-TERM", &stb2.0.id().to_string()]).status();
    let _ = stb2.0.wait();
    let (journal, recovery) = Journal::open(JournalConfig::new(data.join("nodes").join("STB2"))).unwrap();
    let mut state = NodeState::default();
    for (_, bytes) in &recovery.records {
        state.apply(&NodeRecord::decode(bytes).unwrap());
    }
    journal.close().unwrap();
    let stb2_acct = state.account_of(&stb2_da.address).unwrap().id.clone();
    assert_eq!(state.vault.balances(&stb2_acct).expect("representable").standard, dt(150));
    assert!(state.received(&paid.tx).is_some());
    nbk.stop().await.unwrap();
    stb1.stop().await.unwrap();
}
