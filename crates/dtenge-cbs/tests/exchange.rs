//! The exchange folders with the CBS simulator on the other side.

use std::fs;
use std::path::{Path, PathBuf};

use dtenge_cbs::{
    CbsError, CbsSimulator, Confirmation, ConfirmationStatus, Direction, Exchange, Instruction, MAX_FILE_BYTES,
    confirmation_xml, instruction_xml, parse_confirmation,
};
use dtenge_types::{Amount, CbsRef, ParticipantId, Timestamp};

/// 2024-07-24T16:58:02+05:00.
const NOW: Timestamp = Timestamp(1_721_822_282_000);

fn instruction(id: &str, direction: Direction, tiyn: u64) -> Instruction {
    Instruction {
        id: id.into(),
        direction,
        bank: ParticipantId::new("STB1").expect("valid participant"),
        bank_bic: "HSBKKZKX".into(),
        amount: Amount::from_tiyn(tiyn),
        created_at: Timestamp(1_721_822_251_000),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("readable folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn accept_all(_: &Instruction) -> Option<String> {
    None
}

fn accept_every(_: &Confirmation) -> Result<(), String> {
    Ok(())
}

#[test]
fn open_creates_the_folders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path().join("cbs")).expect("opens");
    for folder in [exchange.outbox(), exchange.inbox(), exchange.processed(), exchange.rejected()] {
        assert!(folder.is_dir(), "{}", folder.display());
    }
    assert!(Exchange::open(dir.path().join("cbs")).is_ok(), "opening again is fine");
}

#[test]
fn simulator_then_import_gives_accepted_confirmations_matching_the_instructions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    let issue = instruction("NBK-REQ-000001", Direction::Issue, 400_000);
    let redeem = instruction("NBK-REQ-000002", Direction::Redeem, 12_345);
    for i in [&issue, &redeem] {
        let path = exchange.write_instruction(i).expect("written");
        assert_eq!(path, exchange.outbox().join(format!("{}.xml", i.id)));
    }
    assert_eq!(exchange.pending_instructions().expect("readable"), vec![issue.clone(), redeem.clone()]);

    let simulator = CbsSimulator::new(dir.path());
    assert_eq!(simulator.process(NOW, accept_all).expect("processed"), 2);
    assert_eq!(exchange.pending_instructions().expect("readable"), vec![], "moved to outbox/sent");
    assert_eq!(simulator.process(NOW, accept_all).expect("processed"), 0, "nothing confirmed twice");

    let report = exchange.import(accept_every).expect("imported");
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let confirmations: Vec<&Confirmation> = report.imported.iter().map(|(_, c)| c).collect();
    assert_eq!(confirmations.len(), 2);
    for (confirmation, (n, i)) in confirmations.iter().zip([(1, &issue), (2, &redeem)]) {
        assert_eq!(confirmation.instruction_id, i.id);
        assert_eq!(confirmation.amount, i.amount);
        assert_eq!(confirmation.bank_bic, i.bank_bic);
        assert_eq!(confirmation.booked_at, NOW);
        let expected = CbsRef::new(format!("CBS-20240724-00000{n}")).expect("valid ref");
        assert_eq!(confirmation.status, ConfirmationStatus::Accepted { cbs_reference: expected });
    }
    for (path, _) in &report.imported {
        assert!(path.starts_with(exchange.processed()) && path.is_file(), "{}", path.display());
    }
    assert!(names(exchange.inbox()).is_empty());
    let again = exchange.import(accept_every).expect("imported");
    assert!(again.imported.is_empty() && again.refused.is_empty(), "importing twice finds nothing new");
    assert_eq!(names(exchange.processed()).len(), 2, "kept as the record of what was applied");
}

#[test]
fn rejected_instruction_comes_back_with_its_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    exchange.write_instruction(&instruction("NBK-REQ-000003", Direction::Issue, 500)).expect("written");
    exchange.write_instruction(&instruction("NBK-REQ-000004", Direction::Issue, 1_000_000_000)).expect("written");
    let too_large = |i: &Instruction| {
        (i.amount > Amount::from_tiyn(1_000)).then(|| format!("insufficient funds for {} on {}", i.amount, i.bank_bic))
    };
    assert_eq!(CbsSimulator::new(dir.path()).process(NOW, too_large).expect("processed"), 2);
    let report = exchange.import(accept_every).expect("imported");
    let statuses: Vec<&ConfirmationStatus> = report.imported.iter().map(|(_, c)| &c.status).collect();
    assert!(matches!(statuses[0], ConfirmationStatus::Accepted { .. }), "{statuses:?}");
    assert_eq!(
        statuses[1],
        &ConfirmationStatus::Rejected { reason: "insufficient funds for 10 000 000,00 on HSBKKZKX".into() }
    );
}

#[test]
fn writing_the_same_instruction_twice_is_idempotent_and_a_different_one_conflicts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    let original = instruction("NBK-REQ-000005", Direction::Issue, 400_000);
    let first = exchange.write_instruction(&original).expect("written");
    let bytes = fs::read(&first).expect("readable");
    assert_eq!(exchange.write_instruction(&original).expect("same again"), first);
    assert_eq!(fs::read(&first).expect("readable"), bytes);
    assert_eq!(names(exchange.outbox()), vec!["NBK-REQ-000005.xml"], "one file, no temporary left");

    let different = instruction("NBK-REQ-000005", Direction::Issue, 400_001);
    assert!(matches!(exchange.write_instruction(&different), Err(CbsError::Conflict { id }) if id == "NBK-REQ-000005"));
    assert_eq!(fs::read(&first).expect("readable"), bytes, "never overwritten");

    // Once the CBS has taken it, writing it again must not send it a second time.
    CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("processed");
    let sent = exchange.write_instruction(&original).expect("same again");
    assert!(sent.ends_with("outbox/sent/NBK-REQ-000005.xml"), "{}", sent.display());
    assert!(exchange.pending_instructions().expect("readable").is_empty());
    assert!(matches!(exchange.write_instruction(&different), Err(CbsError::Conflict { .. })));
}

#[test]
fn invalid_instruction_is_not_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    let bad = instruction("../escape", Direction::Issue, 1);
    assert!(matches!(exchange.write_instruction(&bad), Err(CbsError::Malformed { .. })));
    assert!(names(exchange.outbox()).is_empty());
}

#[test]
fn malformed_files_are_refused_with_a_report_and_change_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    // One good confirmation imported earlier: processed/ must stay as it is.
    exchange.write_instruction(&instruction("NBK-REQ-000010", Direction::Issue, 100)).expect("written");
    CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("processed");
    assert_eq!(exchange.import(accept_every).expect("imported").imported.len(), 1);
    let processed_before = names(exchange.processed());

    let good = confirmation_xml(
        &Confirmation {
            instruction_id: "NBK-REQ-000011".into(),
            status: ConfirmationStatus::Accepted { cbs_reference: CbsRef::new("CBS-X-1").expect("valid ref") },
            amount: Amount::from_tiyn(400_000),
            bank_bic: "HSBKKZKX".into(),
            direction: Direction::Issue,
            booked_at: NOW,
        },
        "CBS-X-1",
    );
    let bad_files: Vec<(&str, String, &str)> = vec![
        ("a-garbage.xml", "%PDF-1.4 garbage".into(), "not an XML document"),
        ("b-wrong-root.xml", "<Invoice xmlns=\"urn:x\"/>".into(), "root element is <Invoice>"),
        (
            "c-no-end-to-end.xml",
            good.replace("<OrgnlEndToEndId>NBK-REQ-000011</OrgnlEndToEndId>", ""),
            "missing element FIToFIPmtStsRpt/TxInfAndSts/OrgnlEndToEndId",
        ),
        ("d-negative.xml", good.replace(">4000.00<", ">-4000.00<"), "is negative"),
        ("e-three-decimals.xml", good.replace(">4000.00<", ">4000.005<"), "has 3 decimals"),
        ("f-unknown-status.xml", good.replace("<TxSts>ACSC", "<TxSts>ACCC"), "TxSts \"ACCC\""),
        ("g-oversize.xml", format!("{good}<!--{}-->", "x".repeat(MAX_FILE_BYTES)), "more than the 1048576-byte limit"),
    ];
    for (name, content, _) in &bad_files {
        fs::write(exchange.inbox().join(name), content).expect("written");
    }
    fs::write(exchange.inbox().join("z-good.xml"), &good).expect("written");
    fs::write(exchange.inbox().join(".incoming.xml.tmp"), "half a fi").expect("written");

    let report = exchange.import(accept_every).expect("imported");
    assert_eq!(report.imported.len(), 1, "the good file in the same run is still imported");
    assert_eq!(report.imported[0].1.instruction_id, "NBK-REQ-000011");
    assert_eq!(report.refused.len(), bad_files.len());
    for ((path, reason), (name, _, expected)) in report.refused.iter().zip(&bad_files) {
        assert_eq!(path, &exchange.rejected().join(name));
        assert!(reason.contains(expected), "{name}: expected {expected:?} in {reason:?}");
        let report_text = fs::read_to_string(PathBuf::from(format!("{}.report.txt", path.display()))).expect("report");
        assert!(report_text.contains(reason.as_str()) && report_text.contains(name), "{report_text}");
    }
    let mut expected_processed = processed_before;
    expected_processed.push("z-good.xml".into());
    expected_processed.sort();
    assert_eq!(names(exchange.processed()), expected_processed, "only the good file was added");
    assert_eq!(names(exchange.inbox()), vec![".incoming.xml.tmp"], "a file being written is left alone");
    assert!(exchange.pending_instructions().expect("readable").is_empty(), "outbox untouched");
}

#[test]
fn a_second_file_with_a_taken_name_is_kept_beside_the_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    for _ in 0..2 {
        fs::write(exchange.inbox().join("same.xml"), "not xml").expect("written");
        exchange.import(accept_every).expect("imported");
    }
    assert_eq!(
        names(exchange.rejected()),
        vec!["same.xml", "same.xml.dup1", "same.xml.dup1.report.txt", "same.xml.report.txt"]
    );
}

#[test]
fn simulator_interrupted_before_moving_the_instruction_resends_the_same_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    let i = instruction("NBK-REQ-000020", Direction::Redeem, 7_500);
    exchange.write_instruction(&i).expect("written");
    let simulator = CbsSimulator::new(dir.path());
    simulator.process(NOW, accept_all).expect("processed");
    let first = exchange.import(accept_every).expect("imported").imported;
    // As if the simulator had crashed before moving the instruction to sent/.
    fs::rename(exchange.outbox().join("sent/NBK-REQ-000020.xml"), exchange.outbox().join("NBK-REQ-000020.xml"))
        .expect("moved back");
    simulator.process(NOW.plus_days(1), |_| Some("would differ".into())).expect("processed");
    let second = exchange.import(accept_every).expect("imported").imported;
    assert_eq!(first[0].1, second[0].1, "the same answer, not a second booking");
    let inbox_copy = fs::read(&second[0].0).expect("readable");
    assert_eq!(parse_confirmation(&inbox_copy).expect("parses"), first[0].1);
}

#[test]
fn a_confirmation_the_caller_refuses_goes_to_rejected_with_the_callers_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    for (id, tiyn) in [("NBK-REQ-000030", 100), ("NBK-REQ-000031", 200)] {
        exchange.write_instruction(&instruction(id, Direction::Issue, tiyn)).expect("written");
    }
    CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("processed");
    let report = exchange
        .import(|c| match c.instruction_id.as_str() {
            "NBK-REQ-000030" => Err("no conversion request NBK-REQ-000030 exists".to_string()),
            _ => Ok(()),
        })
        .expect("imported");
    assert_eq!(report.imported.len(), 1);
    assert_eq!(report.imported[0].1.instruction_id, "NBK-REQ-000031");
    assert_eq!(report.refused.len(), 1);
    let (path, reason) = &report.refused[0];
    assert!(path.starts_with(exchange.rejected()), "{}", path.display());
    let text = fs::read_to_string(PathBuf::from(format!("{}.report.txt", path.display()))).expect("report");
    assert!(
        text.contains("no conversion request NBK-REQ-000030 exists") && reason.contains("NBK-REQ-000030"),
        "{text}"
    );
}

#[test]
fn read_inbox_moves_nothing_until_the_caller_settles_each_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    exchange.write_instruction(&instruction("NBK-REQ-000040", Direction::Redeem, 300)).expect("written");
    CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("processed");
    fs::write(exchange.inbox().join("zz-junk.xml"), "junk").expect("written");
    let files = exchange.read_inbox().expect("read");
    assert_eq!(files.len(), 2);
    let again = exchange.read_inbox().expect("read");
    assert_eq!(again.len(), 2, "reading moves nothing: a crash before applying loses nothing");
    let good = files.iter().find(|f| f.confirmation.is_ok()).expect("the simulator's answer");
    assert_eq!(good.confirmation.as_ref().expect("parsed").direction, Direction::Redeem);
    let junk = files.iter().find(|f| f.confirmation.is_err()).expect("the junk file");
    exchange.accept(good).expect("accepted");
    exchange.refuse(junk, "not a confirmation").expect("refused");
    assert!(names(exchange.inbox()).is_empty());
    assert_eq!(names(exchange.processed()), vec!["NBK-REQ-000040.pacs002.xml"]);
    assert_eq!(names(exchange.rejected()), vec!["zz-junk.xml", "zz-junk.xml.report.txt"]);
}

#[test]
fn an_amount_no_cbs_file_can_carry_is_never_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    for tiyn in [u64::MAX, dtenge_cbs::MAX_AMOUNT.tiyn() + 1] {
        let err =
            exchange.write_instruction(&instruction("NBK-REQ-000050", Direction::Issue, tiyn)).expect_err("refused");
        assert!(err.to_string().contains("the largest amount a CBS file carries"), "{err}");
    }
    assert!(names(exchange.outbox()).is_empty());
    // The largest that is carried round-trips through both files.
    let largest = instruction("NBK-REQ-000051", Direction::Issue, dtenge_cbs::MAX_AMOUNT.tiyn());
    exchange.write_instruction(&largest).expect("written");
    CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("processed");
    let report = exchange.import(accept_every).expect("imported");
    assert_eq!(report.imported[0].1.amount, dtenge_cbs::MAX_AMOUNT);
}

#[test]
fn the_simulator_sets_aside_an_unreadable_instruction_and_answers_the_others() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exchange = Exchange::open(dir.path()).expect("opens");
    // As an older release could have written: an amount the parser refuses.
    let huge = instruction_xml(&instruction("NBK-REQ-000060", Direction::Issue, u64::MAX));
    fs::write(exchange.outbox().join("NBK-REQ-000060.xml"), huge).expect("written");
    exchange.write_instruction(&instruction("NBK-REQ-000061", Direction::Issue, 500)).expect("written");
    let answered = CbsSimulator::new(dir.path()).process(NOW, accept_all).expect("not stalled");
    assert_eq!(answered, 1);
    let refused = exchange.outbox().join(dtenge_cbs::REFUSED_DIR);
    assert_eq!(names(&refused), vec!["NBK-REQ-000060.xml", "NBK-REQ-000060.xml.report.txt"]);
    let report = exchange.import(accept_every).expect("imported");
    assert_eq!(report.imported.len(), 1);
    assert_eq!(report.imported[0].1.instruction_id, "NBK-REQ-000061");
}
