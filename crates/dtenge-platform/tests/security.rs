//! Adversarial messages between the running services (issue #8, point 4):
//! forged signatures at every layer (envelope, notarisation batch,
//! transaction, oracle attestation, notary receipt), replays (an envelope
//! delivered twice, a committed transaction resubmitted or redelivered), a
//! bank acting for another bank's client, a provider writing outside its
//! registry. Each is refused with an error that names the problem, and each
//! test checks that nothing changed. The HTTP layer's own suite (signed
//! requests, nonces, other banks' clients, registries) is in
//! `crates/dtenge-api/tests/api.rs` and `programmable.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dtenge_crypto::SecretKey;
use dtenge_net::{Answer, Clock, Envelope, NetError, Outcome};
use dtenge_node::RefusalCode;
use dtenge_node::accounts::{Account, HolderKind, KycState};
use dtenge_node::service::{MAX_LINK_BATCH, NodeAnswer, NodeRequest, PayTo, PeerAnswer, PeerRequest};
use dtenge_node::state::Status;
use dtenge_notary::{
    BatchRefusal, NotariseBatch, NotaryAnswer, NotaryRejection, NotaryRequest, Receipt, TxClaim, Verdict,
};
use dtenge_oracle::OracleCode;
use dtenge_oracle::model::{EventKind, EventSpec};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::{Keys, ids};
use dtenge_types::*;

mod support;
use support::{World, dt, holder, pid};

impl World {
    fn key(&self, id: &str) -> SecretKey {
        Keys::at(&self.p.data).load(id).unwrap()
    }

    /// A signed transfer of `client`'s first token to a fresh address, and its claim.
    fn transfer_claim(&self, node: &str, client: &Account) -> (Transaction, TxClaim) {
        let (token_id, token, key) = self.node(node).read(|s| {
            let (id, stored) = s.vault.of_account(&client.id).next().unwrap();
            (*id, stored.token.clone(), s.accounts[&client.id].key().unwrap().clone())
        });
        let to = Address(SecretKey::from_seed([77; 32]).public_key());
        let body = TxBody {
            inputs: vec![token_id].try_into().unwrap(),
            outputs: vec![Token::standard(token.currency, token.amount, to, token.host.clone())].try_into().unwrap(),
            command: Command::Transfer,
            window: TimeWindow::starting(self.clock.now(), 60_000),
            memo: None,
        };
        let mut tx = Transaction::unsigned(body);
        tx.sign(&key).unwrap();
        let claim = TxClaim::of(&tx, std::slice::from_ref(&token)).unwrap();
        (tx, claim)
    }

    fn notarise_body(&self, node: &str, claim: TxClaim, signer: &SecretKey) -> Vec<u8> {
        let batch = NotariseBatch::signed(pid(node), vec![claim], signer).unwrap();
        borsh::to_vec(&NotaryRequest::Notarise(batch)).unwrap()
    }

    /// Everything a refused message could have changed.
    fn snapshot(&self) -> String {
        let mut out = format!("notary {:?}\n", self.p.notary.stats());
        for (id, node) in &self.p.nodes {
            out.push_str(&node.read(|s| {
                let value: u64 = s.vault.iter().map(|(_, t)| t.token.amount.tiyn()).sum();
                format!(
                    "{id}: tokens {} value {value} outgoing {:?} archive {:?} accounts {}\n",
                    s.vault.len(),
                    s.counts(),
                    s.archive().counts(),
                    s.accounts.len()
                )
            }));
        }
        out.push_str(&format!("oracle {:?}\n", self.p.oracle.state_copy()));
        out
    }

    async fn deliver(&self, from: &str, to: &str, tx: Transaction, inputs: Vec<Token>, receipt: Receipt) -> NodeAnswer {
        let request = NodeRequest::Deliver { tx: Box::new(tx), inputs, receipt };
        let answer = self.p.bus(from).unwrap().call(&pid(to), borsh::to_vec(&request).unwrap()).await.unwrap();
        borsh::from_slice(&answer).unwrap()
    }

    /// The committed transaction `tx` as its payer node holds it: body, inputs, receipt.
    fn committed(&self, node: &str, tx: &TxId) -> (Transaction, Vec<Token>, Receipt) {
        self.node(node).read(|s| {
            let o = s.outgoing(tx).unwrap();
            assert_eq!(o.status, Status::Success);
            (o.tx.clone(), o.inputs.clone(), borsh::from_slice(o.receipt.as_ref().unwrap()).unwrap())
        })
    }
}

fn verdict(bytes: &[u8]) -> Verdict {
    match borsh::from_slice::<NotaryAnswer>(bytes).unwrap() {
        NotaryAnswer::Verdicts(mut v) => v.remove(0),
        other => panic!("{other:?}"),
    }
}

fn answer_body(envelope: &Envelope) -> Vec<u8> {
    match Answer::decode(&envelope.body).unwrap().outcome {
        Outcome::Done(body) => body,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_forged_envelope_or_notarisation_batch_is_refused_by_the_notary_and_changes_nothing() {
    let w = World::new().await;
    let client = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let (_, claim) = w.transfer_claim("STB1", &client);
    let before = w.snapshot();
    let (stb1, stb2) = (w.key("STB1"), w.key("STB2"));

    // An envelope claiming to come from STB1, signed with STB2's key.
    let forged = Envelope::seal(
        pid("STB1"),
        pid(ids::NOTARY),
        w.clock.now(),
        1,
        w.notarise_body("STB1", claim.clone(), &stb1),
        &stb2,
    );
    let err = w.p.network.deliver(forged).await.unwrap_err();
    assert_eq!(err, NetError::BadSignature { from: pid("STB1") });
    assert!(err.to_string().contains("bad signature on a message claiming to be from STB1"), "{err}");

    // An envelope signed by an unknown key claiming an unknown sender.
    let stranger = SecretKey::from_seed([9; 32]);
    let unknown = Envelope::seal(pid("STB9"), pid(ids::NOTARY), w.clock.now(), 1, vec![0], &stranger);
    let err = w.p.network.deliver(unknown).await.unwrap_err();
    assert!(err.to_string().contains("unknown participant STB9"), "{err}");

    // A genuine envelope from STB1 carrying a batch signed with another key.
    let bus = w.p.bus("STB1").unwrap();
    let answer = bus.call(&pid(ids::NOTARY), w.notarise_body("STB1", claim.clone(), &stb2)).await.unwrap();
    let refused = borsh::from_slice::<NotaryAnswer>(&answer).unwrap();
    assert_eq!(refused, NotaryAnswer::Refused(BatchRefusal::BadSignature(pid("STB1"))));
    assert!(
        BatchRefusal::BadSignature(pid("STB1")).to_string().contains("signature does not verify for node STB1"),
        "the refusal names the problem"
    );
    // STB2 sending a batch in STB1's name (signed by STB1's key, so it verifies on its own).
    let answer =
        w.p.bus("STB2").unwrap().call(&pid(ids::NOTARY), w.notarise_body("STB1", claim.clone(), &stb1)).await.unwrap();
    assert_eq!(
        borsh::from_slice::<NotaryAnswer>(&answer).unwrap(),
        NotaryAnswer::Refused(BatchRefusal::BadSignature(pid("STB1")))
    );

    // A bank issuing money from nothing (only NBK may).
    let mut issue = claim.clone();
    issue.inputs = Vec::new().try_into().unwrap();
    issue.openings = Vec::new().try_into().unwrap();
    let answer = bus.call(&pid(ids::NOTARY), w.notarise_body("STB1", issue, &stb1)).await.unwrap();
    match verdict(&answer) {
        Verdict::Rejected(r @ NotaryRejection::IssueNotAllowed) => {
            assert!(r.to_string().contains("only from an issuer node"), "{r}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before, "nothing changed");
}

#[tokio::test]
async fn a_replayed_envelope_is_refused_and_a_resubmitted_transaction_commits_once() {
    let w = World::new().await;
    let client = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let (_, claim) = w.transfer_claim("STB1", &client);
    let stb1 = w.key("STB1");
    let envelope = Envelope::seal(
        pid("STB1"),
        pid(ids::NOTARY),
        w.clock.now(),
        7,
        w.notarise_body("STB1", claim.clone(), &stb1),
        &stb1,
    );
    let first = w.p.network.deliver(envelope.clone()).await.unwrap();
    let Verdict::Committed(receipt) = verdict(&answer_body(&first)) else { panic!("the first delivery commits") };
    let after_first = w.snapshot();

    // The very same envelope again: refused at the gate, the handler never runs.
    let err = w.p.network.deliver(envelope).await.unwrap_err();
    assert!(matches!(err, NetError::Replayed { nonce: 7, .. }), "{err:?}");
    assert!(err.to_string().contains("replayed message from STB1: nonce 7 already seen"), "{err}");
    assert_eq!(w.snapshot(), after_first);

    // The same transaction resubmitted in a fresh envelope: the same receipt, no second commit.
    let bus = w.p.bus("STB1").unwrap();
    let again = verdict(&bus.call(&pid(ids::NOTARY), w.notarise_body("STB1", claim.clone(), &stb1)).await.unwrap());
    assert_eq!(again, Verdict::Committed(receipt.clone()));
    assert_eq!(w.snapshot(), after_first);
    assert_eq!(w.p.notary.state_copy().committed(&claim.tx), Some(receipt.body.clone()));

    // An envelope signed now but dated two minutes ago is stale.
    let old = Envelope::seal(
        pid("STB1"),
        pid(ids::NOTARY),
        Timestamp(w.clock.now().millis() - 120_000),
        8,
        w.notarise_body("STB1", claim, &stb1),
        &stb1,
    );
    let err = w.p.network.deliver(old).await.unwrap_err();
    assert!(err.to_string().contains("stale message from STB1"), "{err}");
    // An answer replayed as a request is refused: nonces carry the direction.
    let mut as_request = first;
    as_request.nonce &= !dtenge_net::ANSWER_NONCE_BIT;
    let err = w.p.network.deliver(as_request).await.unwrap_err();
    assert!(err.to_string().contains("misdirected") || err.to_string().contains("signature"), "{err}");
    assert_eq!(w.snapshot(), after_first);
}

#[tokio::test]
async fn a_delivery_with_a_forged_signature_or_receipt_is_refused_and_credits_nothing() {
    let w = World::new().await;
    let payer = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let payee = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    // The payee's node is away while STB1 pays: the delivery waits.
    w.p.network.partition(&pid("STB2"));
    let paid = w.node("STB1").pay(&payer.id, &[PayTo { address: payee.address, amount: dt(10) }], None).await.unwrap();
    w.p.network.heal(&pid("STB2"));
    assert_eq!(paid.status, Status::Success);
    let (tx, inputs, receipt) = w.committed("STB1", &paid.tx);
    let before = w.snapshot();
    let stb2 = w.node("STB2");
    assert_eq!(stb2.balances(&payee.id).unwrap().total, Amount::ZERO);

    // The genuine receipt, but the transaction re-signed by a key that does not own the input.
    let mut forged = Transaction::unsigned(tx.body.clone());
    forged.sign(&SecretKey::from_seed([66; 32])).unwrap();
    assert_eq!(forged.id(), tx.id(), "signatures are not part of the id");
    match w.deliver("STB1", "STB2", forged, inputs.clone(), receipt.clone()).await {
        NodeAnswer::Refused(r) => assert!(matches!(r.code, RefusalCode::Rule(_)), "{r:?}"),
        other => panic!("{other:?}"),
    }
    // The genuine transaction with a receipt the notary never signed.
    let fake_receipt = Receipt::sign(receipt.body.clone(), &w.key("STB1"));
    match w.deliver("STB1", "STB2", tx.clone(), inputs.clone(), fake_receipt).await {
        NodeAnswer::Refused(r) => assert_eq!(r.code, RefusalCode::BadReceipt, "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before, "nothing credited, nothing recorded");
    // A genuine receipt for another transaction.
    let other = w.funded("STB1", 3, HolderKind::Individual, dt(5)).await;
    let issued = w.node(ids::NBK).read(|s| {
        let mut found = None;
        s.for_each_outgoing(|id, o| {
            if o.tx.body.outputs.iter().any(|t| t.owner == other.address) {
                found = Some(*id);
            }
            found.is_none()
        });
        found
    });
    let (_, _, other_receipt) = w.committed(ids::NBK, &issued.unwrap());
    let before = w.snapshot();
    match w.deliver("STB1", "STB2", tx.clone(), inputs.clone(), other_receipt).await {
        NodeAnswer::Refused(r) => assert_eq!(r.code, RefusalCode::BadReceipt, "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before, "nothing credited, nothing recorded");
    assert_eq!(stb2.balances(&payee.id).unwrap().total, Amount::ZERO);

    // The genuine delivery is accepted; delivering it again credits nothing more.
    assert!(matches!(
        w.deliver("STB1", "STB2", tx.clone(), inputs.clone(), receipt.clone()).await,
        NodeAnswer::Accepted
    ));
    assert_eq!(stb2.balances(&payee.id).unwrap().standard, dt(10));
    let once = w.snapshot();
    assert!(matches!(w.deliver("STB1", "STB2", tx, inputs, receipt).await, NodeAnswer::Accepted));
    assert_eq!(w.snapshot(), once);
    assert_eq!(stb2.balances(&payee.id).unwrap().standard, dt(10));
}

/// Deliveries of concurrent payments travel in batches whose transactions'
/// signatures and receipts' roots verify together: one forged transaction,
/// or one receipt whose root the notary never signed, is refused on its
/// own, the genuine ones next to it are credited, and an oversize batch is
/// refused whole.
#[tokio::test]
async fn a_forged_delivery_in_a_batch_is_refused_alone_and_the_others_are_credited() {
    let w = World::new().await;
    let payer = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let payee = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    w.p.network.partition(&pid("STB2"));
    let to = [PayTo { address: payee.address, amount: dt(10) }];
    let first = w.node("STB1").pay(&payer.id, &to, None).await.unwrap();
    let second = w.node("STB1").pay(&payer.id, &to, None).await.unwrap();
    w.p.network.heal(&pid("STB2"));
    let (tx1, inputs1, receipt1) = w.committed("STB1", &first.tx);
    let (tx2, inputs2, receipt2) = w.committed("STB1", &second.tx);
    let mut forged = Transaction::unsigned(tx1.body.clone());
    forged.sign(&SecretKey::from_seed([66; 32])).unwrap();
    // The notary's key and a genuine proof, but a root signature it never made.
    let mut unsigned_root = receipt1.clone();
    unsigned_root.signature.0[0] ^= 1;
    let batch = NodeRequest::Batch(vec![
        PeerRequest::Deliver { tx: Box::new(forged), inputs: inputs1.clone(), receipt: Box::new(receipt1.clone()) },
        PeerRequest::CanReceive { address: payee.address, amount: dt(5) },
        PeerRequest::Deliver { tx: Box::new(tx2), inputs: inputs2, receipt: Box::new(receipt2) },
        PeerRequest::CanReceive { address: Address(SecretKey::from_seed([99; 32]).public_key()), amount: dt(5) },
        PeerRequest::Deliver { tx: Box::new(tx1.clone()), inputs: inputs1.clone(), receipt: Box::new(unsigned_root) },
    ]);
    let answer = w.p.bus("STB1").unwrap().call(&pid("STB2"), borsh::to_vec(&batch).unwrap()).await.unwrap();
    let NodeAnswer::Batch(answers) = borsh::from_slice(&answer).unwrap() else { panic!("not a batch answer") };
    assert_eq!(answers.len(), 5);
    assert!(
        matches!(&answers[0], PeerAnswer::Refused(r) if matches!(r.code, RefusalCode::Rule(_))),
        "{:?}",
        answers[0]
    );
    assert_eq!(answers[1], PeerAnswer::Accepted);
    assert_eq!(answers[2], PeerAnswer::Accepted);
    assert!(
        matches!(&answers[3], PeerAnswer::Refused(r) if r.code == RefusalCode::NotHostedHere),
        "an address the bank does not host: {:?}",
        answers[3]
    );
    assert!(
        matches!(&answers[4], PeerAnswer::Refused(r) if r.code == RefusalCode::BadReceipt),
        "a root the notary never signed: {:?}",
        answers[4]
    );
    let stb2 = w.node("STB2");
    assert_eq!(stb2.balances(&payee.id).unwrap().standard, dt(10), "only the genuine delivery is credited");

    // The genuine first payment, redelivered in a batch with itself: credited once.
    let genuine = PeerRequest::Deliver { tx: Box::new(tx1), inputs: inputs1, receipt: Box::new(receipt1) };
    let batch = NodeRequest::Batch(vec![genuine.clone(), genuine]);
    let answer = w.p.bus("STB1").unwrap().call(&pid("STB2"), borsh::to_vec(&batch).unwrap()).await.unwrap();
    assert!(matches!(borsh::from_slice(&answer).unwrap(), NodeAnswer::Batch(a) if a == vec![PeerAnswer::Accepted; 2]));
    assert_eq!(stb2.balances(&payee.id).unwrap().standard, dt(20));

    let before = w.snapshot();
    let check = PeerRequest::CanReceive { address: payee.address, amount: dt(1) };
    let oversize = NodeRequest::Batch(vec![check; MAX_LINK_BATCH + 1]);
    let error = w.p.bus("STB1").unwrap().call(&pid("STB2"), borsh::to_vec(&oversize).unwrap()).await.unwrap_err();
    assert!(error.to_string().contains(&format!("at most {MAX_LINK_BATCH} items")), "{error}");
    assert_eq!(w.snapshot(), before);
}

#[tokio::test]
async fn a_release_with_a_forged_oracle_attestation_is_refused_by_the_recipients_node() {
    let w = World::new().await;
    let agency = w.funded(ids::TREASURY, 1, HolderKind::GovernmentAgency, dt(10_000)).await;
    let farmer =
        w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let event = EventId::new("SEC-EV-1").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        kind: EventKind::Single,
        sender: Some(agency.address),
        sender_node: Some(pid(ids::TREASURY)),
        recipient: farmer.address,
        recipient_node: pid("STB2"),
        amount: Some(dt(4_000)),
        valid_until: w.clock.now().plus_days(30),
    };
    assert!(matches!(w.provider("IFA", OracleRequest::RegisterEvent(spec)).await, OracleAnswer::Done));
    let treasury = w.node(ids::TREASURY);
    treasury.hold(&agency.id, event.clone(), None).await.unwrap();
    assert!(matches!(
        w.provider("IFA", OracleRequest::ReportOccurrence { event: event.clone(), amount: None }).await,
        OracleAnswer::Done
    ));
    // The release commits while the recipient's node is away.
    w.p.network.partition(&pid("STB2"));
    let released = treasury.release(&agency.id, &event).await.unwrap();
    w.p.network.heal(&pid("STB2"));
    let (tx, inputs, receipt) = w.committed(ids::TREASURY, &released.tx);
    assert_eq!(tx.attestations.len(), 1);
    let before = w.snapshot();

    // The attestation's signature altered (same oracle key, same statement).
    let mut forged = tx.clone();
    let mut attestations = forged.attestations.to_vec();
    attestations[0].signature.0[0] ^= 0x01;
    forged.attestations = attestations.try_into().unwrap();
    match w.deliver(ids::TREASURY, "STB2", forged, inputs.clone(), receipt.clone()).await {
        NodeAnswer::Refused(r) => assert!(matches!(r.code, RefusalCode::Rule(_)), "{r:?}"),
        other => panic!("{other:?}"),
    }
    // An attestation signed by a key that is not the platform's oracle.
    let mut forged = tx.clone();
    let mut attestations = forged.attestations.to_vec();
    let impostor = SecretKey::from_seed([55; 32]);
    attestations[0].oracle = dtenge_crypto::Signer::public_key(&impostor);
    attestations[0].signature =
        dtenge_crypto::Signer::sign(&impostor, &attestations[0].statement.signing_message(&tx.id()));
    forged.attestations = attestations.try_into().unwrap();
    match w.deliver(ids::TREASURY, "STB2", forged, inputs.clone(), receipt.clone()).await {
        NodeAnswer::Refused(r) => assert!(matches!(r.code, RefusalCode::Rule(_)), "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before, "nothing credited");
    assert_eq!(w.node("STB2").balances(&farmer.id).unwrap().total, Amount::ZERO);
    // The genuine one is accepted.
    assert!(matches!(w.deliver(ids::TREASURY, "STB2", tx, inputs, receipt).await, NodeAnswer::Accepted));
    assert_eq!(w.node("STB2").balances(&farmer.id).unwrap().standard, dt(4_000));
}

#[tokio::test]
async fn a_bank_cannot_act_for_another_banks_client_at_the_nodes() {
    let w = World::new().await;
    let client = w.funded("STB1", 1, HolderKind::Individual, dt(100)).await;
    let mine = w.node("STB2").open_account(holder(2, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let before = w.snapshot();
    // STB2's node has no custody of STB1's client's DA.
    let err =
        w.node("STB2").pay(&client.id, &[PayTo { address: mine.address, amount: dt(1) }], None).await.unwrap_err();
    assert!(err.to_string().contains(client.id.0.as_str()), "names the account: {err}");
    assert_eq!(w.snapshot(), before);
    // STB2 asks NBK about STB1's conversion request.
    let request =
        w.node("STB1").request_conversion(dtenge_node::conversion::ConversionKind::Issue, dt(1_000)).await.unwrap();
    let before_status = w.snapshot();
    let ask = NodeRequest::ConversionStatus { id: request.id.clone() };
    let answer = w.p.bus("STB2").unwrap().call(&pid(ids::NBK), borsh::to_vec(&ask).unwrap()).await.unwrap();
    match borsh::from_slice::<NodeAnswer>(&answer).unwrap() {
        NodeAnswer::Refused(r) => assert_eq!(r.code, RefusalCode::Forbidden, "{r:?}"),
        other => panic!("{other:?}"),
    }
    // STB2 hands STB1 a transfer out of STB1's client's DA signed with STB2's own key,
    // with a receipt STB2 made up: refused, nothing moves.
    let (tx, _) = w.transfer_claim("STB1", &client);
    let mut forged = Transaction::unsigned(tx.body.clone());
    forged.sign(&w.key("STB2")).unwrap();
    let inputs = w.node("STB1").read(|s| vec![s.vault.of_account(&client.id).next().unwrap().1.token.clone()]);
    let claim = TxClaim::of(&forged, &inputs).unwrap();
    let body = dtenge_notary::ReceiptBody {
        tx: forged.id(),
        seq: 1,
        committed_at: w.clock.now(),
        inputs_digest: claim.inputs_digest(),
        outputs_digest: claim.outputs_digest(),
    };
    match w.deliver("STB2", "STB1", forged, inputs, Receipt::sign(body, &w.key("STB2"))).await {
        NodeAnswer::Refused(r) => assert_eq!(r.code, RefusalCode::BadReceipt, "{r:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before_status);
    assert_eq!(w.node("STB1").balances(&client.id).unwrap().standard, dt(100));
}

#[tokio::test]
async fn a_provider_cannot_write_outside_its_registry_at_the_oracle() {
    let w = World::new().await;
    let recipient =
        w.node("STB1").open_account(holder(1, HolderKind::Individual), None, KycState::Verified).await.unwrap();
    let agency = w
        .node(ids::TREASURY)
        .open_account(holder(3, HolderKind::GovernmentAgency), None, KycState::Verified)
        .await
        .unwrap();
    let spec = |id: &str| EventSpec {
        id: EventId::new(id).unwrap(),
        kind: EventKind::Single,
        sender: Some(agency.address),
        sender_node: Some(pid(ids::TREASURY)),
        recipient: recipient.address,
        recipient_node: pid("STB1"),
        amount: Some(dt(10)),
        valid_until: w.clock.now().plus_days(1),
    };
    let registered = w.provider("IFA", OracleRequest::RegisterEvent(spec("SEC-IFA-1"))).await;
    assert!(matches!(registered, OracleAnswer::Done), "{registered:?}");
    let before = w.snapshot();
    // SRC (e-invoices) and FXDESK (rates) may not register events.
    for provider in ["SRC", "FXDESK"] {
        match w.provider(provider, OracleRequest::RegisterEvent(spec("SEC-X-1"))).await {
            OracleAnswer::Refused(r) => assert_eq!(r.code, OracleCode::NotAllowed, "{r:?}"),
            other => panic!("{provider}: {other:?}"),
        }
    }
    // SSIS has the events registry, but the event is IFA's: it may not report or cancel it.
    for request in [
        OracleRequest::ReportOccurrence { event: EventId::new("SEC-IFA-1").unwrap(), amount: None },
        OracleRequest::CancelEvent { event: EventId::new("SEC-IFA-1").unwrap() },
    ] {
        match w.provider("SSIS", request).await {
            OracleAnswer::Refused(r) => assert_eq!(r.code, OracleCode::NotOwner, "{r:?}"),
            other => panic!("{other:?}"),
        }
    }
    // A bank node is no provider: the authorisation table refuses it before the oracle looks.
    let bus = w.p.bus("STB1").unwrap();
    let request = borsh::to_vec(&OracleRequest::RegisterEvent(spec("SEC-X-2"))).unwrap();
    match bus.call(&pid(ids::ORACLE), request).await {
        Err(NetError::Refused(dtenge_net::HandlerError::Forbidden(why))) => {
            assert!(why.contains("oracle.write"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.snapshot(), before, "the oracle's registries did not change");
}
