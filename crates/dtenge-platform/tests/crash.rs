//! Kill -9 mid-way: every payment the platform acknowledged survives, nothing
//! is spent twice, supply is conserved, and the nodes agree with the notary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dtenge_net::ManualClock;
use dtenge_node::accounts::AccountId;
use dtenge_platform::ledger_audit::{self, Acked, Facts};
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, ParticipantId, Timestamp, TxId};

/// The workload binary cargo builds with the tests.
fn workload() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dtenge-crash-workload"))
}

#[tokio::test]
async fn a_killed_platform_keeps_every_acknowledged_payment() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<TxId> = Vec::new();
    let mut accounts = (AccountId(String::new()), AccountId(String::new()));
    for round in 0..2 {
        let mut child = Command::new(workload())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the workload binary is built with the tests");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut this_round = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("READY ") {
                let mut parts = rest.split(' ');
                accounts = (AccountId(parts.next().unwrap().into()), AccountId(parts.next().unwrap().into()));
            } else if let Some(tx) = line.strip_prefix("ACK ") {
                acked.push(tx.parse().unwrap());
                this_round += 1;
                if this_round == 25 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(this_round, 25, "round {round}: the workload acknowledged fewer payments than expected");
    }

    let clock = ManualClock::new(Timestamp(u64::MAX / 4));
    let p = Platform::open(dir.path(), clock, PlatformOptions { durable: true }).await.unwrap();
    // Unsettled transactions resolve against the notary, deliveries are retried.
    p.tick().await;
    // The shared auditor (also `dtenge chaos`'s): nothing spent twice, every
    // acknowledged payment committed at the notary and at payer and payee,
    // supply = issued − redeemed, nodes agree with the notary, nothing in flight.
    let notary = p.notary.state_copy();
    let mut facts = Facts::from_notary(&notary);
    for (id, node) in &p.nodes {
        node.read(|s| facts.add_node(&notary, id, s));
    }
    let (stb1, stb2) = (ParticipantId::new("STB1").unwrap(), ParticipantId::new("STB2").unwrap());
    let acked: Vec<Acked> =
        acked.iter().map(|tx| Acked { tx: *tx, payer: stb1.clone(), payees: vec![stb2.clone()] }).collect();
    let report = ledger_audit::check(&facts, &acked);
    assert!(report.passed(), "{:#?}", report.violations());
    assert_eq!(report.acknowledged, 50);
    // Both runs funded a million each; payments only move money.
    assert_eq!(report.issued, Amount::from_tenge(2_000_000).unwrap().tiyn());
    assert_eq!(report.held, report.issued);
    let _ = accounts;
    p.close().unwrap();
}
