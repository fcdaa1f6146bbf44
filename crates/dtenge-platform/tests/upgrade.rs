//! Upgrades lose nothing (issue 18, point 8): a data directory written by
//! release 9e7a3dd (`tests/fixtures/release-9e7a3dd`, made before records
//! carried format versions) opens with today's code and reads exactly as
//! that release read it — every DA, balance, history line, notification,
//! token, conversion, order, outgoing and received transaction — and the
//! platform goes on from it: a payment on top, a restart, the same again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use dtenge_net::ManualClock;
use dtenge_node::service::PayTo;
use dtenge_node::state::Message;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::*;
use support::copy_dir;

const FIXTURE: &str = "tests/fixtures/release-9e7a3dd";
/// The day after the fixture's workload (its clock started at 1 767 225 600 000).
const NOW: u64 = 1_767_312_000_000;

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE).join("data"), &data);
    (dir, data)
}

/// The nodes' part of what `generator/inspect_fixture.rs.txt` prints.
fn nodes_digest(p: &Platform) -> String {
    let mut out = String::new();
    for (id, node) in &p.nodes {
        let accounts: Vec<_> = node.read(|s| s.accounts.values().cloned().collect());
        for a in accounts {
            let b = node.balances(&a.id).unwrap();
            writeln!(
                out,
                "{id} {} {} {:?} {:?} closed={} std={} marked={} held={} vat={} mandated={} total={} other={:?}",
                a.id,
                a.address,
                a.holder.kind,
                a.kyc,
                a.closed,
                b.standard,
                b.marked,
                b.held,
                b.vat,
                b.mandated,
                b.total,
                b.other_currencies
            )
            .unwrap();
            for h in node.history(&a.id, usize::MAX) {
                writeln!(
                    out,
                    "  h {} {} {} in={} out={} {:?} {:?} {:?}",
                    h.tx,
                    h.at.millis(),
                    h.kind,
                    h.incoming,
                    h.outgoing,
                    h.counterparties,
                    h.memo,
                    h.status
                )
                .unwrap();
            }
            for n in node.notifications(&a.id, usize::MAX) {
                writeln!(out, "  n {} {} {:?}", n.at.millis(), n.message, n.tx).unwrap();
            }
            let profile = node.read(|s| s.profile(&a.id));
            writeln!(
                out,
                "  profile {:?} spent {}",
                profile,
                node.read(|s| s.spent_on_day(&a.id, Timestamp(1_767_312_000_000)))
            )
            .unwrap();
        }
        let (counts, conversions, orders, policy, tokens) = node.read(|s| {
            (
                s.counts(),
                s.conversions.values().cloned().collect::<Vec<_>>(),
                s.orders.values().cloned().collect::<Vec<_>>(),
                s.policy.clone(),
                s.vault
                    .iter()
                    .map(|(id, t)| format!("{id} {} {:?} {:?}", t.account, t.token, t.reserved_by))
                    .collect::<Vec<_>>(),
            )
        });
        writeln!(out, "{id} counts {counts:?} policy {policy:?}").unwrap();
        for c in conversions {
            writeln!(out, "{id} conversion {c:?}").unwrap();
        }
        for o in orders {
            writeln!(out, "{id} order {o:?}").unwrap();
        }
        for t in tokens {
            writeln!(out, "{id} token {t}").unwrap();
        }
        let mut outgoing = Vec::new();
        node.for_each_outgoing(|tx, o| {
            outgoing.push(format!("{tx} {:?} {} {:?}", o.status, o.account, o.undelivered));
            true
        });
        outgoing.sort();
        for o in outgoing {
            writeln!(out, "{id} outgoing {o}").unwrap();
        }
        let mut received = Vec::new();
        node.read(|s| {
            s.for_each_received(|tx, _, from| {
                received.push(format!("{tx} from {from}"));
                true
            })
        });
        received.sort();
        for r in received {
            writeln!(out, "{id} received {r}").unwrap();
        }
    }
    out
}

fn expected_nodes() -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE).join("expected.txt")).unwrap();
    text.lines().filter(|l| !l.starts_with("oracle ") && !l.starts_with("notary ")).map(|l| format!("{l}\n")).collect()
}

async fn open(data: &Path) -> Platform {
    Platform::open(data, ManualClock::new(Timestamp(NOW)), PlatformOptions { durable: true }).await.unwrap()
}

#[tokio::test]
async fn a_data_directory_of_the_previous_release_opens_and_reads_the_same() {
    let (_dir, data) = fixture();
    let p = open(&data).await;
    let expected = expected_nodes();
    let got = nodes_digest(&p);
    for (line, (e, g)) in expected.lines().zip(got.lines()).enumerate() {
        assert_eq!(g, e, "line {} differs", line + 1);
    }
    assert_eq!(got.lines().count(), expected.lines().count());
    // The oracle's registries and cumulative usage read the same.
    let oracle = p.oracle.state_copy();
    let c1 =
        oracle.contract(&ParameterId::new("GZ-2026-1").unwrap(), &ContractNo::new("C-1").unwrap()).unwrap().clone();
    assert_eq!((c1.transferred.confirmed, c1.cashed_out.confirmed), (dt(4_000), dt(1_000)));
    assert!(oracle.invoice(&InvoiceId::new("EI-1").unwrap()).unwrap().paid_by.is_some());
    assert_eq!(oracle.reservations().count(), 0);
    p.close().unwrap();
}

#[tokio::test]
async fn the_platform_goes_on_from_a_previous_releases_data_directory() {
    let (_dir, data) = fixture();
    let p = open(&data).await;
    let stb1 = p.node("STB1").unwrap().clone();
    let alice = stb1.read(|s| s.accounts.values().find(|a| a.holder.name == "Holder 1").unwrap().clone());
    let bob =
        p.node("STB2").unwrap().read(|s| s.accounts.values().find(|a| a.holder.name == "Holder 2").unwrap().clone());
    let before = p.node("STB2").unwrap().balances(&bob.id).unwrap().standard;
    stb1.pay(&alice.id, &[PayTo { address: bob.address, amount: dt(7) }], None).await.unwrap();
    let after = p.node("STB2").unwrap().balances(&bob.id).unwrap().standard;
    assert_eq!(after, before.checked_add(dt(7)).unwrap());
    let digest = nodes_digest(&p);
    p.close().unwrap();
    drop(p);
    // Old and new records together replay to the same state.
    let p = open(&data).await;
    assert_eq!(nodes_digest(&p), digest);
    // Bob's notifications: the new one keeps its kind, the release's own are its words.
    let told = p.node("STB2").unwrap().notifications(&bob.id, usize::MAX);
    assert!(
        matches!(&told[0].message, Message::Incoming { amount, .. } if *amount == dt(7)),
        "newest first: {:?}",
        told[0]
    );
    assert!(told.len() > 1 && told[1..].iter().all(|n| matches!(n.message, Message::Words(_))), "{told:?}");
    p.close().unwrap();
}

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}
