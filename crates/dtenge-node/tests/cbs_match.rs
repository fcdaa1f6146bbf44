//! NBK's matching of CBS confirmations against its conversion requests: a
//! confirmation applies only to the request its id names, with the same bank,
//! direction and amount, while that request awaits the CBS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_cbs::{Confirmation, ConfirmationStatus, Direction};
use dtenge_crypto::SecretKey;
use dtenge_node::conversion::{ConversionKind, ConversionRequest, Match, bic_of, match_confirmation};
use dtenge_node::state::Status;
use dtenge_types::{Address, Amount, CbsRef, ParticipantId, Timestamp};

fn stb(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

fn request(kind: ConversionKind) -> ConversionRequest {
    ConversionRequest {
        id: "NBK-REQ-000007".into(),
        kind,
        bank: stb("STB1"),
        bank_address: Address(SecretKey::from_seed([7; 32]).public_key()),
        amount: Amount::from_tiyn(50_000),
        created_at: Timestamp(1),
        status: Status::UnderReview,
        cbs_reference: None,
        funding_tx: None,
        settled_tx: None,
        decided_by: None,
    }
}

fn answer(status: ConfirmationStatus) -> Confirmation {
    Confirmation {
        instruction_id: "NBK-REQ-000007".into(),
        status,
        amount: Amount::from_tiyn(50_000),
        bank_bic: bic_of(&stb("STB1")),
        direction: Direction::Issue,
        booked_at: Timestamp(2),
    }
}

fn acsc(reference: &str) -> ConfirmationStatus {
    ConfirmationStatus::Accepted { cbs_reference: CbsRef::new(reference).unwrap() }
}

fn mismatch(m: Match) -> String {
    match m {
        Match::Mismatch(why) => why,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn a_confirmation_matching_in_every_respect_applies() {
    let r = request(ConversionKind::Issue);
    assert_eq!(match_confirmation(Some(&r), &answer(acsc("CBS-1"))), Match::Apply);
    let r = ConversionRequest { status: Status::RequestAccepted, ..r };
    assert_eq!(match_confirmation(Some(&r), &answer(acsc("CBS-1"))), Match::Apply, "before Under review too");
}

#[test]
fn each_field_that_differs_from_the_request_is_named() {
    let r = request(ConversionKind::Issue);
    let c = answer(acsc("CBS-1"));
    assert!(mismatch(match_confirmation(None, &c)).contains("no conversion request NBK-REQ-000007"));
    let other_bank = Confirmation { bank_bic: bic_of(&stb("STB2")), ..c.clone() };
    assert!(mismatch(match_confirmation(Some(&r), &other_bank)).contains("names bank STB2KZKX"));
    let redemption = Confirmation { direction: Direction::Redeem, ..c.clone() };
    assert!(mismatch(match_confirmation(Some(&r), &redemption)).contains("is for a redemption"));
    let more = Confirmation { amount: Amount::from_tiyn(50_001), ..c.clone() };
    assert!(mismatch(match_confirmation(Some(&r), &more)).contains("names 500,01 KZT"));
    let redeem = request(ConversionKind::Redeem);
    assert!(mismatch(match_confirmation(Some(&redeem), &c)).contains("is a redemption"));
}

#[test]
fn the_same_answer_again_is_recognised_and_a_different_one_is_a_duplicate() {
    let confirmed =
        ConversionRequest { cbs_reference: Some(CbsRef::new("CBS-1").unwrap()), ..request(ConversionKind::Issue) };
    assert_eq!(match_confirmation(Some(&confirmed), &answer(acsc("CBS-1"))), Match::AlreadyApplied);
    assert!(mismatch(match_confirmation(Some(&confirmed), &answer(acsc("CBS-2")))).contains("already confirmed"));
    let rejection = ConfirmationStatus::Rejected { reason: "closed".into() };
    assert!(mismatch(match_confirmation(Some(&confirmed), &answer(rejection.clone()))).contains("already confirmed"));

    let rejected = ConversionRequest {
        status: Status::Rejected { reason: "CBS rejected: closed".into() },
        decided_by: Some("CBS".into()),
        ..request(ConversionKind::Issue)
    };
    assert_eq!(match_confirmation(Some(&rejected), &answer(rejection)), Match::AlreadyApplied);
    assert!(mismatch(match_confirmation(Some(&rejected), &answer(acsc("CBS-3")))).contains("already rejected"));
    let by_operator = ConversionRequest { decided_by: Some("op".into()), ..rejected };
    let same_text = ConfirmationStatus::Rejected { reason: "closed".into() };
    assert!(
        mismatch(match_confirmation(Some(&by_operator), &answer(same_text))).contains("already rejected"),
        "only the CBS's own rejection is recognised as applied"
    );
    let settled = ConversionRequest { status: Status::Success, ..request(ConversionKind::Issue) };
    assert!(mismatch(match_confirmation(Some(&settled), &answer(acsc("CBS-4")))).contains("already settled"));
}
