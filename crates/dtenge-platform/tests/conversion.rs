//! STB–NBK conversion through the CBS file exchange, with statuses
//! Request accepted → Under review → Success / Rejected (SPEC §5, §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_net::ManualClock;
use dtenge_node::conversion::ConversionKind;
use dtenge_node::state::Status;
use dtenge_platform::spec::ids;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_types::{Amount, Timestamp};

fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

async fn platform() -> (tempfile::TempDir, Platform) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock, PlatformOptions { durable: false }).await.unwrap();
    (dir, p)
}

fn supply(p: &Platform) -> Amount {
    let mut total = Amount::ZERO;
    for node in p.nodes.values() {
        node.read(|s| s.vault.iter().for_each(|(_, t)| total = total.checked_add(t.token.amount).unwrap()));
    }
    total
}

#[tokio::test]
async fn issuance_waits_for_the_cbs_and_nbk_approval() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let request = stb1.request_conversion(ConversionKind::Issue, dt(1_000_000)).await.unwrap();
    assert_eq!(request.status, Status::UnderReview);
    assert!(p.data.join("cbs/outbox").join(format!("{}.xml", request.id)).exists(), "instruction written for the CBS");
    let err = nbk.approve_conversion(&request.id, "operator-1").await.unwrap_err();
    assert!(err.to_string().contains("no CBS confirmation"), "{err}");
    assert_eq!(supply(&p), Amount::ZERO);

    p.tick().await; // the CBS (simulator) confirms; NBK imports
    let confirmed = stb1.conversion_status(&request.id).await.unwrap();
    assert_eq!(confirmed.status, Status::UnderReview);
    assert!(confirmed.cbs_reference.is_some());

    let done = nbk.approve_conversion(&request.id, "operator-1").await.unwrap();
    assert_eq!(done.status, Status::Success);
    assert_eq!(done.decided_by.as_deref(), Some("operator-1"));
    let own = stb1.own_account().unwrap();
    assert_eq!(stb1.balances(&own).unwrap().standard, dt(1_000_000));
    // Importing again changes nothing; approving again is refused.
    p.tick().await;
    assert!(nbk.approve_conversion(&request.id, "operator-1").await.is_err());
    assert_eq!(supply(&p), dt(1_000_000));
}

#[tokio::test]
async fn redemption_destroys_dt_and_a_rejection_returns_them() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let issue = stb1.request_conversion(ConversionKind::Issue, dt(1_000)).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&issue.id, "op").await.unwrap();

    let redeem = stb1.request_conversion(ConversionKind::Redeem, dt(400)).await.unwrap();
    assert_eq!(redeem.status, Status::UnderReview);
    p.tick().await;
    nbk.approve_conversion(&redeem.id, "op").await.unwrap();
    assert_eq!(supply(&p), dt(600), "supply = issued − redeemed");

    let second = stb1.request_conversion(ConversionKind::Redeem, dt(100)).await.unwrap();
    let rejected = nbk.reject_conversion(&second.id, "limit for the day reached", "op-2").await.unwrap();
    assert_eq!(rejected.status, Status::Rejected { reason: "limit for the day reached".into() });
    let own = stb1.own_account().unwrap();
    assert_eq!(stb1.balances(&own).unwrap().standard, dt(600), "the DT came back to the bank");
    assert!(nbk.reject_conversion(&second.id, "again", "op-2").await.is_err(), "decided requests stay decided");
}

#[tokio::test]
async fn a_malformed_cbs_file_is_refused_with_a_report_and_changes_nothing() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let request = stb1.request_conversion(ConversionKind::Issue, dt(500)).await.unwrap();
    std::fs::write(p.data.join("cbs/inbox/garbage.xml"), b"<Document><nonsense/></Document>").unwrap();
    p.tick().await;
    assert!(p.data.join("cbs/rejected/garbage.xml").exists());
    let report = std::fs::read_to_string(p.data.join("cbs/rejected/garbage.xml.report.txt")).unwrap();
    assert!(!report.is_empty());
    // The good confirmation of the same run still went through.
    assert!(stb1.conversion_status(&request.id).await.unwrap().cbs_reference.is_some());
    assert_eq!(supply(&p), Amount::ZERO);
}

#[tokio::test]
async fn a_bank_cannot_see_or_redeem_for_another() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let stb2 = p.node("STB2").unwrap();
    let request = stb1.request_conversion(ConversionKind::Issue, dt(500)).await.unwrap();
    let err = stb2.conversion_status(&request.id).await.unwrap_err();
    assert!(err.to_string().contains("another bank"), "{err}");
    let err = stb2.request_conversion(ConversionKind::Redeem, dt(10)).await.unwrap_err();
    assert!(err.to_string().contains("insufficient"), "{err}");
}
