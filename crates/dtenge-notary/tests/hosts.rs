//! Claims bound to their host (issue 19.6): the notary accepts an input only
//! from the node that hosts it, or with that host's consent, and learns
//! nothing it did not before — in particular not who receives a payment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use borsh::BorshSerialize;

use dtenge_crypto::{SecretKey, Signer};
use dtenge_net::{ManualClock, ParticipantInfo, Participants, Role};
use dtenge_notary::*;
use dtenge_store::{Journal, JournalConfig};
use dtenge_types::{
    Address, Amount, Command, Commitment, Currency, ParticipantId, TimeWindow, Timestamp, Token, TokenId, Transaction,
    TxBody, TxId,
};

const NOW: Timestamp = Timestamp(1_000_000);

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn key(s: &str) -> Arc<SecretKey> {
    let mut seed = [3u8; 32];
    seed[..s.len()].copy_from_slice(s.as_bytes());
    Arc::new(SecretKey::from_seed(seed))
}

struct World {
    notary: Arc<NotaryService>,
    dir: tempfile::TempDir,
}

fn participants() -> Arc<Participants> {
    Arc::new(Participants::new(
        [("NBK", Role::Nbk), ("STB1", Role::Stb), ("STB2", Role::Stb), ("NOTARY", Role::Notary)]
            .into_iter()
            .map(|(id, role)| ParticipantInfo {
                id: pid(id),
                name: id.into(),
                role,
                public_key: key(id).public_key(),
                endpoint: None,
                tls_key: None,
            })
            .collect(),
    ))
}

fn world() -> World {
    reopen(tempfile::tempdir().unwrap())
}

/// The notary over the journal in `dir` (a restart when it was open before).
fn reopen(dir: tempfile::TempDir) -> World {
    let (journal, recovery) = Journal::open(JournalConfig::new(dir.path().join("journal"))).unwrap();
    let notary =
        NotaryService::recover(key("NOTARY"), participants(), ManualClock::new(NOW), journal, recovery).unwrap();
    World { notary, dir }
}

fn owner(n: u8) -> Address {
    Address(SecretKey::from_seed([n; 32]).public_key())
}

fn tx(inputs: Vec<TokenId>, outputs: Vec<Token>, command: Command) -> Transaction {
    Transaction::unsigned(TxBody {
        inputs: inputs.try_into().unwrap(),
        outputs: outputs.try_into().unwrap(),
        command,
        window: TimeWindow::starting(Timestamp(0), 2_000_000),
        memo: None,
    })
}

impl World {
    async fn ask(&self, node: &str, claims: Vec<TxClaim>) -> Vec<Verdict> {
        let batch = NotariseBatch::signed(pid(node), claims, key(node).as_ref()).unwrap();
        self.notary.notarise(&pid(node), batch).await.unwrap()
    }

    /// NBK issues a token to a client of STB1; returns the token and its id.
    async fn issued_at_stb1(&self) -> (TokenId, Token) {
        // An amount whose bytes would stand out among hashes.
        let token = Token::standard(Currency::DT, Amount::from_tiyn(123_456_789_123), owner(1), pid("STB1"));
        let issue = tx(vec![], vec![token.clone()], Command::Transfer);
        let verdicts = self.ask("NBK", vec![TxClaim::of(&issue, &[]).unwrap()]).await;
        assert!(matches!(verdicts[0], Verdict::Committed(_)), "{verdicts:?}");
        (TxBody::output_id(issue.id(), 0), token)
    }
}

/// A payment of `token` to a client of STB2.
fn payment(id: TokenId, token: &Token, to_owner: u8) -> Transaction {
    let paid = Token::standard(Currency::DT, token.amount, owner(to_owner), pid("STB2"));
    tx(vec![id], vec![paid], Command::Transfer)
}

#[tokio::test]
async fn a_bank_that_knows_another_banks_token_cannot_have_it_spent() {
    let w = world();
    let (id, token) = w.issued_at_stb1().await;
    // STB2 learned everything about the token (say, it was paid with its
    // sibling): opened truthfully, the input names its host STB1.
    let theft = TxClaim::of(&payment(id, &token, 9), std::slice::from_ref(&token)).unwrap();
    assert_eq!(
        w.ask("STB2", vec![theft.clone()]).await[0],
        Verdict::Rejected(NotaryRejection::NotHost { input: 0, host: pid("STB1") })
    );
    // Opened as if STB2 hosted it, the opening does not give the commitment.
    let mut lying = theft;
    lying.openings = vec![InputOpening { host: pid("STB2"), sealed: token.sealed(&id) }].try_into().unwrap();
    assert_eq!(w.ask("STB2", vec![lying]).await[0], Verdict::Rejected(NotaryRejection::BadOpening { input: 0 }));
    // Nothing changed: the token is unspent and its host spends it.
    assert_eq!(w.notary.state_copy().status(&token.commitment(&id)), Some(Ok(())));
    let honest = TxClaim::of(&payment(id, &token, 2), std::slice::from_ref(&token)).unwrap();
    assert!(matches!(w.ask("STB1", vec![honest]).await[0], Verdict::Committed(_)));
}

#[tokio::test]
async fn another_node_spends_a_token_only_with_its_hosts_consent() {
    let w = world();
    let (id, token) = w.issued_at_stb1().await;
    let pvp = payment(id, &token, 3);
    let claim = TxClaim::of(&pvp, std::slice::from_ref(&token)).unwrap();
    // A consent STB2 forged in STB1's name is no consent.
    let forged = HostConsent::sign(pid("STB1"), &pvp.id(), key("STB2").as_ref());
    assert_eq!(
        w.ask("STB2", vec![claim.clone().with_consent(forged).unwrap()]).await[0],
        Verdict::Rejected(NotaryRejection::NotHost { input: 0, host: pid("STB1") })
    );
    // STB1's own consent (its leg of a PvP) lets STB2 submit.
    let consent = HostConsent::sign(pid("STB1"), &pvp.id(), key("STB1").as_ref());
    let Verdict::Committed(receipt) =
        w.ask("STB2", vec![claim.clone().with_consent(consent).unwrap()]).await[0].clone()
    else {
        panic!("the consented claim commits")
    };
    // A retry after a crash lost the consent still gets the same receipt body.
    let Verdict::Committed(again) = w.ask("STB2", vec![claim]).await[0].clone() else { panic!("a retry is answered") };
    assert_eq!(again.body, receipt.body);
}

#[tokio::test]
async fn what_the_notary_stores_names_neither_the_payee_its_bank_nor_the_amount() {
    let w = world();
    let (id, token) = w.issued_at_stb1().await;
    let pay = payment(id, &token, 7);
    let claim = TxClaim::of(&pay, std::slice::from_ref(&token)).unwrap();
    assert!(matches!(w.ask("STB1", vec![claim]).await[0], Verdict::Committed(_)));
    w.notary.close().unwrap();
    let mut stored = Vec::new();
    for entry in walk(w.dir.path()) {
        stored.extend(std::fs::read(entry).unwrap());
    }
    assert!(!stored.is_empty());
    let found = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    // The payment's receiving bank, its client and the amount appear nowhere
    // (the paying bank does: it signed the batch, and it hosted the input).
    assert!(!found(b"STB2"), "the notary stored the receiving bank");
    assert!(!found(owner(7).0.as_bytes()), "the notary stored the payee");
    assert!(!found(owner(1).0.as_bytes()), "the notary stored the payer");
    assert!(!found(&token.amount.tiyn().to_le_bytes()), "the notary stored the amount");
    assert!(found(b"STB1"), "the submitting node is kept as evidence");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A claim as release 9e7a3dd journaled it (format version 0: untagged, no
/// openings, commitments of the earlier formula).
#[derive(BorshSerialize)]
struct ClaimV0 {
    tx: TxId,
    inputs: Vec<Commitment>,
    outputs: Vec<Commitment>,
    window: TimeWindow,
}

#[derive(BorshSerialize)]
struct RecordV0 {
    node: ParticipantId,
    claims: Vec<ClaimV0>,
    signature: dtenge_crypto::Signature,
    committed: Vec<u32>,
    committed_at: Timestamp,
}

#[tokio::test]
async fn tokens_recorded_before_commitments_bound_their_host_stay_spendable_once_after_the_upgrade() {
    // The earlier release issued a token to a client of STB1: its journal
    // holds the token's commitment of the earlier formula (the sealed hash).
    let dir = tempfile::tempdir().unwrap();
    let token = Token::standard(Currency::DT, Amount::from_tiyn(5_000), owner(1), pid("STB1"));
    let issue = tx(vec![], vec![token.clone()], Command::Transfer);
    let id = TxBody::output_id(issue.id(), 0);
    let record = RecordV0 {
        node: pid("NBK"),
        claims: vec![ClaimV0 {
            tx: issue.id(),
            inputs: vec![],
            outputs: vec![Commitment(token.sealed(&id))],
            window: issue.body.window,
        }],
        signature: key("NBK").sign(b"evidence of the earlier format"),
        committed: vec![0],
        committed_at: NOW,
    };
    {
        let (journal, _) = Journal::open(JournalConfig::new(dir.path().join("journal"))).unwrap();
        journal.append(borsh::to_vec(&record).unwrap()).unwrap().durable().await.unwrap();
        journal.close().unwrap();
    }
    // Today's notary replays it and keeps the token as legacy.
    let w = reopen(dir);
    let state = w.notary.state_copy();
    assert_eq!((state.legacy_count(), state.token_status(&id, &token)), (1, Some(Ok(()))));
    // Its host spends it with today's claim; a second spend conflicts.
    let pay = payment(id, &token, 2);
    let claim = TxClaim::of(&pay, std::slice::from_ref(&token)).unwrap();
    let Verdict::Committed(receipt) = w.ask("STB1", vec![claim.clone()]).await[0].clone() else {
        panic!("the host spends its token from before the upgrade")
    };
    let again = TxClaim::of(&payment(id, &token, 3), std::slice::from_ref(&token)).unwrap();
    assert_eq!(
        w.ask("STB1", vec![again.clone()]).await[0],
        Verdict::Rejected(NotaryRejection::Conflict { input: 0, commitment: claim.inputs[0], spent_by: pay.id() })
    );
    // After a restart (old and new records replayed together) the same.
    w.notary.close().unwrap();
    let World { notary, dir } = w;
    drop(notary);
    let w = reopen(dir);
    let state = w.notary.state_copy();
    assert_eq!((state.legacy_count(), state.token_status(&id, &token)), (0, Some(Err(pay.id()))));
    let Verdict::Committed(retry) = w.ask("STB1", vec![claim]).await[0].clone() else { panic!("a retry is answered") };
    assert_eq!(retry.body, receipt.body);
    assert!(matches!(w.ask("STB1", vec![again]).await[0], Verdict::Rejected(NotaryRejection::Conflict { .. })));
}

#[tokio::test]
async fn a_claim_cannot_pass_a_bound_commitment_off_as_a_legacy_one() {
    // Another bank knows STB1's token's (bound) commitment and opens an
    // input of its own to it, as if it were a sealed hash from before the
    // upgrade: only commitments recorded before the upgrade are legacy.
    let w = world();
    let (id, token) = w.issued_at_stb1().await;
    let known = token.commitment(&id);
    let forged = InputOpening { host: pid("STB2"), sealed: known.0 };
    let mut theft = TxClaim::of(&payment(id, &token, 9), std::slice::from_ref(&token)).unwrap();
    theft.inputs = vec![forged.commitment()].try_into().unwrap();
    theft.openings = vec![forged].try_into().unwrap();
    assert_eq!(
        w.ask("STB2", vec![theft]).await[0],
        Verdict::Rejected(NotaryRejection::UnknownInput {
            input: 0,
            commitment: InputOpening { host: pid("STB2"), sealed: known.0 }.commitment()
        })
    );
    assert_eq!(w.notary.state_copy().token_status(&id, &token), Some(Ok(())));
}
