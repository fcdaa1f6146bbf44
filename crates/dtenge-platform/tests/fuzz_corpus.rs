//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`) are real
//! encodings made by the running platform: a notarisation, its answer, a
//! delivery, oracle and directory messages, the CBS files of a conversion,
//! `platform.json`. This test checks that every checked-in seed still
//! decodes with today's decoders (so a change of encoding cannot silently
//! turn the corpus into noise); with `DTENGE_WRITE_FUZZ_CORPUS=1` it first
//! writes them afresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dtenge_net::{Answer, Clock, Envelope, ManualClock, ProtocolRange};
use dtenge_node::NodeError;
use dtenge_node::accounts::{Holder, HolderKind, KycState};
use dtenge_node::conversion::ConversionKind;
use dtenge_node::directory::{DirectoryAnswer, DirectoryRequest};
use dtenge_node::service::{NodeAnswer, NodeRequest, PayTo};
use dtenge_notary::{NotariseBatch, NotaryAnswer, NotaryRequest, Receipt, TxClaim};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_oracle::{OracleCode, OracleRefusal};
use dtenge_platform::spec::{Keys, ids};
use dtenge_platform::{Platform, PlatformOptions, PlatformSpec};
use dtenge_types::{Amount, CbsRef, IinBin, ParticipantId, Timestamp};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn tagged(tag: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(body);
    out
}

/// Seeds by target, made by a small platform run.
async fn seeds() -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_767_225_600_000));
    let p = Platform::open(dir.path(), clock.clone(), PlatformOptions { durable: false }).await.unwrap();
    let nbk = p.node(ids::NBK).unwrap();
    let stb1 = p.node("STB1").unwrap();
    let nbk_da = p.spec.institutions.iter().find(|i| i.key == ids::NBK_DA).unwrap().clone();
    let nbk_acct = nbk.read(|s| s.account_of(&nbk_da.address).unwrap().id.clone());
    let iin = IinBin::with_check_digit(&[9, 9, 0, 1, 0, 1, 3, 0, 0, 0, 1])
        .or_else(|| IinBin::with_check_digit(&[9, 9, 0, 1, 0, 1, 3, 0, 1, 0, 1]))
        .unwrap();
    let holder = Holder { iin_bin: iin, name: "Corpus".into(), kind: HolderKind::Individual };
    let client = stb1.open_account(holder, None, KycState::Verified).await.unwrap();
    let issued = nbk
        .issue(
            &nbk_acct,
            PayTo { address: client.address, amount: Amount::from_tenge(100).unwrap() },
            CbsRef::new("C-1").unwrap(),
        )
        .await
        .unwrap();
    let (tx, inputs, receipt) = nbk.read(|s| {
        let o = s.outgoing(&issued.tx).unwrap();
        (o.tx.clone(), o.inputs.clone(), borsh::from_slice::<Receipt>(o.receipt.as_ref().unwrap()).unwrap())
    });
    let claim = TxClaim::of(&tx, &inputs).unwrap();
    let key = Keys::at(&p.data).load(ids::NBK).unwrap();
    let batch = NotariseBatch::signed(ParticipantId::new(ids::NBK).unwrap(), vec![claim.clone()], &key).unwrap();
    let notarise = borsh::to_vec(&NotaryRequest::Notarise(batch.clone())).unwrap();
    let request = Envelope::seal(
        ParticipantId::new(ids::NBK).unwrap(),
        ParticipantId::new(ids::NOTARY).unwrap(),
        clock.now(),
        42,
        notarise.clone(),
        &key,
    );
    let answer = p.network.deliver(request.clone()).await.unwrap();
    let verdicts = match Answer::decode(&answer.body).unwrap().outcome {
        dtenge_net::Outcome::Done(body) => body,
        other => panic!("{other:?}"),
    };
    // A conversion: the instruction NBK writes for the CBS, the confirmation it imports.
    stb1.request_conversion(ConversionKind::Issue, Amount::from_tenge(1_000).unwrap()).await.unwrap();
    p.tick().await;
    let mut cbs = Vec::new();
    for sub in ["outbox", "inbox", "processed", "outbox/sent"] {
        let Ok(entries) = std::fs::read_dir(p.data.join("cbs").join(sub)) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "xml") {
                let name = path.file_name().unwrap().to_string_lossy().replace(".xml", "");
                cbs.push((format!("seed_{}_{name}", sub.replace('/', "_")), std::fs::read(&path).unwrap()));
            }
        }
    }
    assert!(!cbs.is_empty(), "the conversion wrote CBS files");
    let event = borsh::to_vec(&OracleRequest::Notices { after: 0 }).unwrap();
    let mut receipt_and_claim = u16::try_from(borsh::to_vec(&receipt).unwrap().len()).unwrap().to_le_bytes().to_vec();
    receipt_and_claim.extend(borsh::to_vec(&receipt).unwrap());
    receipt_and_claim.extend(borsh::to_vec(&claim).unwrap());
    let deliver = NodeRequest::Deliver { tx: Box::new(tx.clone()), inputs: inputs.clone(), receipt: receipt.clone() };
    let mut out = BTreeMap::new();
    out.insert(
        "decode_envelope",
        vec![
            ("seed_request".to_string(), request.encode()),
            ("seed_answer".to_string(), answer.encode()),
            ("seed_answer_body".to_string(), answer.body.clone()),
        ],
    );
    out.insert(
        "decode_service_message",
        vec![
            ("seed_notarise".into(), tagged(0, notarise)),
            ("seed_receipt_request".into(), tagged(0, borsh::to_vec(&NotaryRequest::Receipt(tx.id())).unwrap())),
            ("seed_verdicts".into(), tagged(1, verdicts)),
            ("seed_oracle_notices".into(), tagged(2, event)),
            (
                "seed_oracle_refused".into(),
                tagged(
                    3,
                    borsh::to_vec(&OracleAnswer::Refused(OracleRefusal::new(OracleCode::NoReservation, "no"))).unwrap(),
                ),
            ),
            ("seed_deliver".into(), tagged(4, borsh::to_vec(&deliver).unwrap())),
            (
                "seed_node_refused".into(),
                tagged(5, borsh::to_vec(&NodeAnswer::Refused(NodeError::Invalid("no".into()).refusal())).unwrap()),
            ),
            ("seed_lookup".into(), tagged(6, borsh::to_vec(&DirectoryRequest::Lookup(client.address)).unwrap())),
            ("seed_directory_done".into(), tagged(7, borsh::to_vec(&DirectoryAnswer::Done).unwrap())),
            ("seed_batch".into(), tagged(8, borsh::to_vec(&batch).unwrap())),
            ("seed_receipt_claim".into(), tagged(9, receipt_and_claim)),
        ],
    );
    out.insert("parse_cbs_file", cbs);
    out.insert(
        "parse_platform_json",
        vec![("seed_platform".into(), std::fs::read(p.data.join("platform.json")).unwrap())],
    );
    let _ = verdicts_decode_check(&out);
    p.close().unwrap();
    out
}

/// Panics if a seed of a binary target does not decode.
fn verdicts_decode_check(seeds: &BTreeMap<&'static str, Vec<(String, Vec<u8>)>>) -> usize {
    let mut n = 0;
    for (target, files) in seeds {
        for (name, bytes) in files {
            assert!(decodes(target, bytes), "{target}/{name} does not decode");
            n += 1;
        }
    }
    n
}

/// Whether `bytes` gets past the target's decoder (its own selector included).
fn decodes(target: &str, bytes: &[u8]) -> bool {
    match target {
        "decode_envelope" => {
            Envelope::decode(bytes).is_ok()
                || Answer::decode(bytes).is_ok()
                // The target also reads its bytes as the `dtenge-protocol` header.
                || std::str::from_utf8(bytes).ok().and_then(ProtocolRange::parse).is_some()
        }
        "decode_service_message" => {
            let Some((&which, rest)) = bytes.split_first() else { return false };
            match which % 10 {
                0 => borsh::from_slice::<NotaryRequest>(rest).is_ok(),
                1 => borsh::from_slice::<NotaryAnswer>(rest).is_ok(),
                2 => borsh::from_slice::<OracleRequest>(rest).is_ok(),
                3 => borsh::from_slice::<OracleAnswer>(rest).is_ok(),
                4 => borsh::from_slice::<NodeRequest>(rest).is_ok(),
                5 => borsh::from_slice::<NodeAnswer>(rest).is_ok(),
                6 => borsh::from_slice::<DirectoryRequest>(rest).is_ok(),
                7 => borsh::from_slice::<DirectoryAnswer>(rest).is_ok(),
                8 => borsh::from_slice::<NotariseBatch>(rest).is_ok(),
                _ => {
                    let Some((len, rest)) = rest.split_first_chunk::<2>() else { return false };
                    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
                    borsh::from_slice::<Receipt>(&rest[..len]).is_ok()
                        && borsh::from_slice::<TxClaim>(&rest[len..]).is_ok()
                }
            }
        }
        "parse_platform_json" => serde_json::from_slice::<PlatformSpec>(bytes).is_ok(),
        // XML is checked by the CBS crate's own tests; here only that it is there.
        _ => !bytes.is_empty(),
    }
}

#[tokio::test]
async fn fuzz_seed_corpora_are_real_encodings_that_still_decode() {
    let root = corpus_root();
    if std::env::var_os("DTENGE_WRITE_FUZZ_CORPUS").is_some() {
        for (target, files) in seeds().await {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in files {
                std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
            }
        }
    } else {
        // The generator itself still works and its output decodes.
        assert!(verdicts_decode_check(&seeds().await) > 10);
    }
    let mut checked = 0;
    for target in ["decode_envelope", "decode_service_message", "parse_platform_json", "parse_cbs_file"] {
        let dir = root.join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                decodes(target, &bytes),
                "{} no longer decodes: regenerate with DTENGE_WRITE_FUZZ_CORPUS=1 cargo test -p dtenge-platform --test fuzz_corpus",
                entry.path().display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} seeds checked in");
}
