//! Kill -9 mid-way: every payment the platform acknowledged survives, nothing
//! is spent twice, supply is conserved, and the nodes agree with the notary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dtenge_net::ManualClock;
use dtenge_node::accounts::AccountId;
use dtenge_node::state::Status;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, Timestamp, TxId};

/// The workload binary cargo builds with the tests.
fn workload() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dtenge-crash-workload"))
}

fn supply(p: &Platform) -> Amount {
    let mut total = Amount::ZERO;
    for node in p.nodes.values() {
        node.read(|s| s.vault.iter().for_each(|(_, t)| total = total.checked_add(t.token.amount).unwrap()));
    }
    total
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
    // Unsettled transactions resolve against the notary.
    p.tick().await;
    let notary = p.notary.state_copy();
    for tx in &acked {
        assert!(notary.committed(tx).is_some(), "acknowledged {tx} is not at the notary");
    }
    let stb1 = p.node("STB1").unwrap();
    stb1.read(|s| {
        for tx in &acked {
            assert_eq!(s.outgoing.get(tx).map(|o| o.status.clone()), Some(Status::Success), "payer lost {tx}");
        }
        assert!(s.in_flight().is_empty(), "nothing stays unresolved after a tick");
    });
    // Both runs funded a million each; payments only move money.
    assert_eq!(supply(&p), Amount::from_tenge(2_000_000).unwrap());
    // Every token a node holds is unspent at the notary: nodes agree with it.
    for node in p.nodes.values() {
        node.read(|s| {
            for (id, stored) in s.vault.iter() {
                assert_eq!(notary.status(&stored.token.commitment(id)), Some(Ok(())), "{id} held but not unspent");
            }
        });
    }
    let _ = accounts;
    p.close().unwrap();
}
