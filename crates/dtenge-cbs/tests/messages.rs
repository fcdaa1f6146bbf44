//! The ISO 20022 files themselves: writing, reading back, refusing.

use dtenge_cbs::{
    CbsError, Confirmation, ConfirmationStatus, Direction, Instruction, MAX_FILE_BYTES, confirmation_xml,
    instruction_xml, parse_confirmation, parse_instruction,
};
use dtenge_types::{Amount, CbsRef, ParticipantId, Timestamp};

fn instruction(direction: Direction) -> Instruction {
    Instruction {
        id: "NBK-REQ-000017".into(),
        direction,
        bank: ParticipantId::new("STB1").expect("valid participant"),
        bank_bic: "HSBKKZKX".into(),
        amount: Amount::from_tiyn(400_000),
        created_at: Timestamp(1_721_822_251_000),
    }
}

fn accepted() -> Confirmation {
    Confirmation {
        instruction_id: "NBK-REQ-000017".into(),
        status: ConfirmationStatus::Accepted { cbs_reference: CbsRef::new("CBS-20240724-000001").expect("valid ref") },
        amount: Amount::from_tiyn(400_000),
        bank_bic: "HSBKKZKX".into(),
        direction: Direction::Issue,
        booked_at: Timestamp(1_721_822_282_000),
    }
}

fn accepted_xml() -> String {
    confirmation_xml(&accepted(), "CBS-20240724-000001")
}

fn malformed_reason(result: Result<Confirmation, CbsError>) -> String {
    match result {
        Err(CbsError::Malformed { what }) => what,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn instruction_round_trips_in_both_directions() {
    for direction in [Direction::Issue, Direction::Redeem] {
        let original = instruction(direction);
        let xml = instruction_xml(&original);
        assert_eq!(parse_instruction(xml.as_bytes()).expect("parses"), original);
    }
    let unusual = Instruction {
        id: "a-Z-9".into(),
        bank: ParticipantId::new("BANK_2-X").expect("valid participant"),
        bank_bic: "CASPKZKAXXX".into(),
        amount: Amount::from_tiyn(1),
        created_at: Timestamp(1_721_822_251_007),
        ..instruction(Direction::Redeem)
    };
    assert_eq!(parse_instruction(instruction_xml(&unusual).as_bytes()).expect("parses"), unusual);
}

#[test]
fn issue_instruction_has_the_bank_as_debtor_and_nbk_as_creditor() {
    let xml = instruction_xml(&instruction(Direction::Issue));
    for expected in [
        r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08">"#,
        "<MsgId>NBK-REQ-000017</MsgId>",
        "<CreDtTm>2024-07-24T16:57:31+05:00</CreDtTm>",
        "<NbOfTxs>1</NbOfTxs>",
        "<SttlmMtd>INDA</SttlmMtd>",
        "<EndToEndId>NBK-REQ-000017</EndToEndId>",
        r#"<IntrBkSttlmAmt Ccy="KZT">4000.00</IntrBkSttlmAmt>"#,
        "<Ustrd>DT issue</Ustrd>",
    ] {
        assert!(xml.contains(expected), "{expected} missing from\n{xml}");
    }
    let debtor = section(&xml, "Dbtr");
    let creditor = section(&xml, "Cdtr");
    assert!(debtor.contains("<BICFI>HSBKKZKX</BICFI>") && debtor.contains("<Id>STB1</Id>"), "{debtor}");
    assert!(creditor.contains("<BICFI>NBRKKZKX</BICFI>"), "{creditor}");
}

#[test]
fn redeem_instruction_has_nbk_as_debtor_and_the_bank_as_creditor() {
    let xml = instruction_xml(&instruction(Direction::Redeem));
    assert!(section(&xml, "Dbtr").contains("<BICFI>NBRKKZKX</BICFI>"));
    assert!(section(&xml, "Cdtr").contains("<BICFI>HSBKKZKX</BICFI>"));
    assert!(xml.contains("<Ustrd>DT redemption</Ustrd>"));
}

fn section<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).expect("open tag");
    let end = xml.find(&format!("</{tag}>")).expect("close tag");
    &xml[start..end]
}

#[test]
fn instruction_xml_is_deterministic_and_escapes_text() {
    let i = instruction(Direction::Issue);
    assert_eq!(instruction_xml(&i), instruction_xml(&i));
    let hostile = Instruction { id: "<x>&\"".into(), ..i };
    let xml = instruction_xml(&hostile);
    assert!(xml.contains("<MsgId>&lt;x&gt;&amp;&quot;</MsgId>"), "{xml}");
    // Escaped, so it still reads as XML and is refused for its id, not for its syntax.
    let err = parse_instruction(xml.as_bytes()).expect_err("bad id");
    assert!(err.to_string().contains("EndToEndId \"<x>&\\\"\""), "{err}");
}

#[test]
fn invalid_instructions_are_refused_before_writing() {
    let good = instruction(Direction::Issue);
    let cases = [
        (Instruction { id: String::new(), ..good.clone() }, "instruction id"),
        (Instruction { id: "A".repeat(36), ..good.clone() }, "instruction id"),
        (Instruction { id: "NBK REQ".into(), ..good.clone() }, "instruction id"),
        (Instruction { bank_bic: "hsbkkzkx".into(), ..good.clone() }, "not a BIC"),
        (Instruction { bank_bic: "HSBKKZK".into(), ..good.clone() }, "not a BIC"),
        (Instruction { bank_bic: "HSBK12KX".into(), ..good.clone() }, "not a BIC"),
        (Instruction { bank_bic: "NBRKKZKX".into(), ..good.clone() }, "NBK's own"),
        (Instruction { amount: Amount::ZERO, ..good.clone() }, "more than zero"),
        (Instruction { created_at: Timestamp(u64::MAX), ..good.clone() }, "after the year 9999"),
    ];
    for (bad, why) in cases {
        let err = bad.validate().expect_err(why).to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[test]
fn instruction_with_nbk_on_the_wrong_side_is_refused() {
    let xml = instruction_xml(&instruction(Direction::Issue)).replace("DT issue", "DT redemption");
    let err = parse_instruction(xml.as_bytes()).expect_err("sides swapped").to_string();
    assert!(err.contains("the Dbtr must be NBK (NBRKKZKX), found \"HSBKKZKX\""), "{err}");
    let confirmation = accepted_xml();
    let err = parse_instruction(confirmation.as_bytes()).expect_err("a pacs.002").to_string();
    assert!(err.contains("wrong message type"), "{err}");
}

#[test]
fn accepted_confirmation_round_trips() {
    assert_eq!(parse_confirmation(accepted_xml().as_bytes()).expect("parses"), accepted());
    let redemption = Confirmation { direction: Direction::Redeem, ..accepted() };
    let redeemed = confirmation_xml(&redemption, "M-1");
    assert_eq!(parse_confirmation(redeemed.as_bytes()).expect("parses"), redemption, "the direction is read back");
}

#[test]
fn rejected_confirmation_carries_its_reason() {
    let reason = "insufficient funds on correspondent account 'KZ12' <limit & reserve> ".repeat(3).trim().to_string();
    assert!(reason.chars().count() > 105, "spans several AddtlInf");
    let rejected = Confirmation { status: ConfirmationStatus::Rejected { reason: reason.clone() }, ..accepted() };
    let xml = confirmation_xml(&rejected, "CBS-20240724-000002");
    assert!(xml.contains("<TxSts>RJCT</TxSts>") && xml.matches("<AddtlInf>").count() == 2, "{xml}");
    assert!(!xml.contains("AccptncDtTm") && !xml.contains("AcctSvcrRef"));
    let parsed = parse_confirmation(xml.as_bytes()).expect("parses");
    assert_eq!(parsed.status, ConfirmationStatus::Rejected { reason });
    assert_eq!(parsed.booked_at, accepted().booked_at, "the report's CreDtTm");
}

#[test]
fn rejection_without_text_uses_the_reason_code() {
    let xml = confirmation_xml(
        &Confirmation { status: ConfirmationStatus::Rejected { reason: "x".into() }, ..accepted() },
        "M",
    )
    .replace("<Cd>NARR</Cd>", "<Cd>AM04</Cd>")
    .replace("<AddtlInf>x</AddtlInf>", "");
    let parsed = parse_confirmation(xml.as_bytes()).expect("parses");
    assert_eq!(parsed.status, ConfirmationStatus::Rejected { reason: "reason code AM04".into() });
    let no_reason = xml.replace("<Cd>AM04</Cd>", "");
    assert!(malformed_reason(parse_confirmation(no_reason.as_bytes())).contains("RJCT without a reason"));
}

#[test]
fn confirmation_accepts_prefixes_z_times_and_comments() {
    let xml = accepted_xml()
        .replace("<Document xmlns=", "<!-- from the CBS --><ns:Document xmlns:ns=")
        .replace("</Document>", "</ns:Document>")
        .replace("<AccptncDtTm>2024-07-24T16:58:02+05:00", "<AccptncDtTm>2024-07-24T11:58:02Z");
    assert_eq!(parse_confirmation(xml.as_bytes()).expect("parses"), accepted());
}

#[test]
fn malformed_confirmations_are_refused_with_a_specific_reason() {
    let good = accepted_xml();
    let oversize = format!("{good}<!--{}-->", " ".repeat(MAX_FILE_BYTES));
    let cases: Vec<(String, &str)> = vec![
        ("garbage \u{1}\u{2} not xml".into(), "not an XML document: it starts with the text \"garbage"),
        (String::new(), "no XML element"),
        ("<Document".into(), "not well-formed XML"),
        (
            good.replace("FIToFIPmtStsRpt>", "Foo>").replace("<Document", "<Report").replace("</Document", "</Report"),
            "root element is <Report>",
        ),
        (
            instruction_xml(&instruction(Direction::Issue)),
            "wrong message type: namespace \"urn:iso:std:iso:20022:tech:xsd:pacs.009.001.08\"",
        ),
        (good.replace("pacs.002.001.10", "pacs.002.001.03"), "wrong message type"),
        (
            good.replace("<OrgnlEndToEndId>NBK-REQ-000017</OrgnlEndToEndId>", ""),
            "missing element FIToFIPmtStsRpt/TxInfAndSts/OrgnlEndToEndId",
        ),
        (
            good.replace("<OrgnlEndToEndId>NBK-REQ-000017", "<OrgnlEndToEndId>"),
            "element FIToFIPmtStsRpt/TxInfAndSts/OrgnlEndToEndId is empty",
        ),
        (
            good.replace("<OrgnlMsgId>NBK-REQ-000017", "<OrgnlMsgId>NBK-REQ-000018"),
            "OrgnlMsgId \"NBK-REQ-000018\" differs",
        ),
        (good.replace(">4000.00<", ">-4000.00<"), "\"-4000.00\" is negative"),
        (good.replace(">4000.00<", ">4000.001<"), "has 3 decimals"),
        (good.replace(">4000.00<", ">4 000,00<"), "not a plain decimal"),
        (good.replace(">4000.00<", ">0.00<"), "amount is zero"),
        (good.replace("Ccy=\"KZT\"", "Ccy=\"USD\""), "in currency \"USD\", expected KZT"),
        (good.replace("<TxSts>ACSC", "<TxSts>XYZW"), "TxSts \"XYZW\" is not ACSC"),
        (good.replace("<TxSts>ACSC", "<TxSts>PDNG"), "TxSts \"PDNG\" is not ACSC"),
        (
            good.replace("<AcctSvcrRef>CBS-20240724-000001</AcctSvcrRef>", ""),
            "missing element FIToFIPmtStsRpt/TxInfAndSts/AcctSvcrRef",
        ),
        (
            good.replace("<AccptncDtTm>2024-07-24T16:58:02+05:00", "<AccptncDtTm>2024-07-24T16:58:02"),
            "AccptncDtTm: \"2024-07-24T16:58:02\"",
        ),
        (good.replace("<BICFI>NBRKKZKX", "<BICFI>CASPKZKA"), "neither debtor \"HSBKKZKX\" nor creditor \"CASPKZKA\""),
        (good.replace("<BICFI>HSBKKZKX", "<BICFI>NBRKKZKX"), "NBK as both debtor and creditor"),
        (good.replace("<BICFI>HSBKKZKX", "<BICFI>hsbk"), "not a BIC"),
        (good.replace("</TxInfAndSts>", "</TxInfAndSts><TxInfAndSts/>"), "TxInfAndSts appears 2 times"),
        (good.replace("<OrgnlMsgNmId>pacs.009.001.08", "<OrgnlMsgNmId>pacs.008.001.08"), "answers no pacs.009"),
        (good.replace("<TxSts>ACSC", "<TxSts>&xxe;ACSC"), "unknown entity &xxe;"),
        (oversize, "more than the 1048576-byte limit"),
    ];
    for (xml, expected) in cases {
        let what = malformed_reason(parse_confirmation(xml.as_bytes()));
        assert!(what.contains(expected), "expected {expected:?} in {what:?}");
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let mut bytes = accepted_xml().into_bytes();
    bytes[200] = 0xFF;
    assert!(malformed_reason(parse_confirmation(&bytes)).contains("not UTF-8"));
}

/// The module documentation shows files as this crate writes them.
#[test]
fn documentation_examples_match_the_writers() {
    let docs: String = include_str!("../src/lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    assert!(docs.contains(&instruction_xml(&instruction(Direction::Issue))), "instruction example is stale");
    assert!(docs.contains(&accepted_xml()), "confirmation example is stale");
}
