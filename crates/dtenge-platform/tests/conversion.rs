//! STB–NBK conversion through the CBS file exchange, with statuses
//! Request accepted → Under review → Success / Rejected (SPEC §5, §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_net::ManualClock;
use dtenge_node::RefusalCode;
use dtenge_node::conversion::ConversionKind;
use dtenge_node::state::Status;
use dtenge_node::status::Reason;
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
    assert_eq!(
        rejected.status,
        Status::Rejected { reason: Reason::coded(RefusalCode::OperatorRejected, "limit for the day reached") }
    );
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

/// A pacs.002 for `id` as the CBS would write it, with the given fields.
fn confirmation_file(
    id: &str,
    bank: &str,
    direction: dtenge_cbs::Direction,
    amount: Amount,
    status: dtenge_cbs::ConfirmationStatus,
) -> String {
    let bank = dtenge_types::ParticipantId::new(bank).unwrap();
    let confirmation = dtenge_cbs::Confirmation {
        instruction_id: id.to_string(),
        status,
        amount,
        bank_bic: dtenge_node::conversion::bic_of(&bank),
        direction,
        booked_at: Timestamp(1_767_225_600_000),
    };
    dtenge_cbs::confirmation_xml(&confirmation, "CBS-FORGED")
}

fn accepted(reference: &str) -> dtenge_cbs::ConfirmationStatus {
    dtenge_cbs::ConfirmationStatus::Accepted { cbs_reference: dtenge_types::CbsRef::new(reference).unwrap() }
}

fn report_of(p: &Platform, name: &str) -> String {
    std::fs::read_to_string(p.data.join("cbs/rejected").join(format!("{name}.report.txt")))
        .unwrap_or_else(|e| panic!("no report for {name}: {e}"))
}

#[tokio::test]
async fn a_confirmation_applies_only_to_its_own_request_and_everything_else_is_rejected_with_a_report() {
    use dtenge_cbs::Direction::{Issue, Redeem};
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let request = stb1.request_conversion(ConversionKind::Issue, dt(500)).await.unwrap();
    let id = request.id.clone();
    let next_id = "NBK-REQ-000002";
    let inbox = p.data.join("cbs/inbox");
    // Each file differs from the request in one respect (or names one that does not exist yet).
    let forged = [
        ("a-other-bank.xml", confirmation_file(&id, "STB2", Issue, dt(500), accepted("FORGED-1")), "is STB1's"),
        ("b-other-direction.xml", confirmation_file(&id, "STB1", Redeem, dt(500), accepted("FORGED-2")), "is an issue"),
        ("c-other-amount.xml", confirmation_file(&id, "STB1", Issue, dt(5_000), accepted("FORGED-3")), "is for 500,00"),
        (
            "d-unknown.xml",
            confirmation_file(next_id, "STB1", Issue, dt(700), accepted("FORGED-4")),
            "no conversion request",
        ),
    ];
    for (name, xml, _) in &forged {
        std::fs::write(inbox.join(name), xml).unwrap();
    }
    p.tick().await; // the simulator answers the real instruction; NBK imports everything
    for (name, _, why) in &forged {
        let report = report_of(&p, name);
        assert!(report.contains(why), "{name}: {report}");
        assert!(!p.data.join("cbs/processed").join(name).exists(), "{name} was not applied");
    }
    let confirmed = nbk.conversion(&id).unwrap();
    let reference = confirmed.cbs_reference.clone().expect("the CBS's own answer applied");
    assert!(reference.as_str().starts_with("CBS-"), "{reference}");

    // A second, different confirmation of an already confirmed request is a duplicate.
    std::fs::write(inbox.join("e-duplicate.xml"), confirmation_file(&id, "STB1", Issue, dt(500), accepted("FORGED-5")))
        .unwrap();
    // The forged file for the next id came before that request existed: it must not be attached to it now.
    let next = stb1.request_conversion(ConversionKind::Issue, dt(700)).await.unwrap();
    assert_eq!(next.id, next_id);
    p.tick().await;
    assert!(report_of(&p, "e-duplicate.xml").contains("already confirmed"), "duplicate reported");
    assert_eq!(nbk.conversion(&id).unwrap().cbs_reference, Some(reference), "the first confirmation stands");
    let next = nbk.conversion(next_id).unwrap();
    assert!(next.cbs_reference.as_ref().is_some_and(|r| r.as_str().starts_with("CBS-")), "{next:?}");
    nbk.approve_conversion(&id, "op").await.unwrap();
    nbk.approve_conversion(next_id, "op").await.unwrap();
    assert_eq!(supply(&p), dt(1_200), "exactly what was requested and confirmed");
}

#[tokio::test]
async fn a_cbs_rejection_found_again_after_a_crash_returns_the_dt_once() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let issue = stb1.request_conversion(ConversionKind::Issue, dt(1_000)).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&issue.id, "op").await.unwrap();
    let redeem = stb1.request_conversion(ConversionKind::Redeem, dt(300)).await.unwrap();
    let rejection = dtenge_cbs::ConfirmationStatus::Rejected { reason: "correspondent account closed".into() };
    let xml = confirmation_file(&redeem.id, "STB1", dtenge_cbs::Direction::Redeem, dt(300), rejection);
    let inbox = p.data.join("cbs/inbox");
    std::fs::write(inbox.join("0-rjct.xml"), &xml).unwrap();
    p.tick().await;
    let own = stb1.own_account().unwrap();
    let request = nbk.conversion(&redeem.id).unwrap();
    assert!(
        matches!(&request.status, Status::Rejected { reason }
            if reason.text == "CBS rejected: correspondent account closed" && reason.code == Some(RefusalCode::CbsRejected)),
        "{:?}",
        request.status
    );
    assert!(request.settled_tx.is_some(), "the return is recorded");
    assert_eq!(stb1.balances(&own).unwrap().standard, dt(1_000), "the DT came back");
    // The simulator's later ACSC for the same instruction contradicts the decision: reported, not applied.
    assert!(std::fs::read_dir(p.data.join("cbs/rejected")).unwrap().count() >= 2);
    // As if NBK had crashed after applying the file but before moving it: the same file again.
    std::fs::write(inbox.join("0-rjct.xml"), &xml).unwrap();
    p.tick().await;
    p.tick().await;
    assert_eq!(stb1.balances(&own).unwrap().standard, dt(1_000), "returned once, not twice");
    assert!(p.data.join("cbs/processed/0-rjct.xml.dup1").exists(), "recognised as already applied");
    assert_eq!(supply(&p), dt(1_000));
}

#[tokio::test]
async fn a_conversion_no_cbs_file_can_carry_is_refused_when_requested_and_others_go_on() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let stb2 = p.node("STB2").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    for kind in [ConversionKind::Issue, ConversionKind::Redeem] {
        for amount in [Amount::MAX, Amount::from_tiyn(dtenge_cbs::MAX_AMOUNT.tiyn() + 1)] {
            let err = stb1.request_conversion(kind, amount).await.unwrap_err();
            assert!(err.to_string().contains("largest amount a CBS file carries"), "{err}");
        }
    }
    assert!(nbk.conversions().is_empty(), "nothing recorded at NBK");
    let other = stb2.request_conversion(ConversionKind::Issue, dt(250)).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&other.id, "op").await.unwrap();
    assert_eq!(supply(&p), dt(250));
}

#[tokio::test]
async fn issues_past_the_representable_supply_are_refused_and_balances_stay_exact() {
    let (_dir, p) = platform().await;
    let stb1 = p.node("STB1").unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let largest = dtenge_cbs::MAX_AMOUNT;
    let first = stb1.request_conversion(ConversionKind::Issue, largest).await.unwrap();
    let second = stb1.request_conversion(ConversionKind::Issue, largest).await.unwrap();
    p.tick().await;
    nbk.approve_conversion(&first.id, "op").await.unwrap();
    let err = nbk.approve_conversion(&second.id, "op").await.unwrap_err();
    assert!(matches!(err, dtenge_node::NodeError::SupplyOverflow { .. }), "{err}");
    assert!(err.to_string().contains("largest representable amount"), "{err}");
    assert_eq!(nbk.conversion(&second.id).unwrap().status, Status::UnderReview, "still awaiting a decision");
    let own = stb1.own_account().unwrap();
    assert_eq!(stb1.balances(&own).unwrap().standard, largest, "exact, not saturated");
    assert_eq!(nbk.read(|s| s.supply(&dtenge_types::Currency::DT)), largest);
    assert_eq!(supply(&p), largest);
}
