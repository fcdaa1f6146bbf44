//! What the notary is told and what it answers (SPEC §5).
//!
//! A participant node sends a [`NotariseBatch`]: for each transaction only its
//! id, the commitments of its inputs and outputs, and its time window — never
//! amounts, owners or markings. The node signs the whole batch once with its
//! EDS key; the notary keeps the signed batch as evidence of who asked.
//!
//! For each transaction the notary answers a [`Verdict`]: a signed
//! [`Receipt`], or a [`NotaryRejection`] naming the input at fault and, for a
//! conflict, the transaction that spent it.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Hasher, PublicKey, Signature, Signer, Verifier, VerifyItem};
use dtenge_types::encoding::HashWriter;
use dtenge_types::{BoundedVec, Commitment, MAX_INPUTS, MAX_OUTPUTS, ParticipantId, TimeWindow, Timestamp, TxId};
use serde::{Deserialize, Serialize};

/// Most transactions in one batch.
pub const MAX_BATCH: usize = 4096;

/// How a claim opens one input's commitment to its host: the commitment is
/// `Commitment::bound(host, sealed)`, and `sealed` hides everything else of
/// the token (amount, owner, marking). The notary learns the host of what is
/// spent — the submitting node, which it sees anyway — and nothing of what
/// is created: outputs stay bare commitments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InputOpening {
    /// The node hosting the input.
    pub host: ParticipantId,
    /// The token's sealed hash ([`dtenge_types::Token::sealed`]).
    pub sealed: Digest,
}

impl InputOpening {
    /// How a claim opens token `id`.
    pub fn of(id: &dtenge_types::TokenId, token: &dtenge_types::Token) -> InputOpening {
        InputOpening { host: token.host.clone(), sealed: token.sealed(id) }
    }

    /// The commitment this opening opens.
    pub fn commitment(&self) -> Commitment {
        Commitment::bound(&self.host, &self.sealed)
    }

    /// The commitment the same token had before commitments bound their
    /// host (format version 0): the sealed hash alone. The notary spends it
    /// only if it holds it as legacy ([`crate::engine`]).
    pub fn legacy_commitment(&self) -> Commitment {
        Commitment(self.sealed)
    }
}

/// A host's consent to a transaction another node submits that spends
/// tokens it hosts (the counterparty's leg of a PvP): its node key's
/// signature over [`HostConsent::digest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct HostConsent {
    /// The consenting host.
    pub host: ParticipantId,
    /// Its signature.
    pub signature: Signature,
}

impl HostConsent {
    /// What a host signs to let another node spend its tokens in `tx`.
    pub fn digest(tx: &TxId) -> Digest {
        digest_of(b"dtenge/notary/host-consent/v1", tx)
    }

    /// `host`'s consent to `tx`, signed with its node key.
    pub fn sign(host: ParticipantId, tx: &TxId, key: &dyn Signer) -> HostConsent {
        HostConsent { host, signature: key.sign(Self::digest(tx).as_bytes()) }
    }

    /// Checks the signature with the host's registered `key`.
    pub fn verify(&self, tx: &TxId, key: &PublicKey, verifier: &dyn Verifier) -> bool {
        verifier.verify(key, Self::digest(tx).as_bytes(), &self.signature).is_ok()
    }
}

/// One transaction as the notary sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxClaim {
    /// The transaction id.
    pub tx: TxId,
    /// Commitments of the tokens it consumes.
    pub inputs: BoundedVec<Commitment, MAX_INPUTS>,
    /// Commitments of the tokens it creates.
    pub outputs: BoundedVec<Commitment, MAX_OUTPUTS>,
    /// When it may commit.
    pub window: TimeWindow,
    /// Each input's opening, in the same order: the notary checks that it
    /// gives the input's commitment and names the submitting node, or a host
    /// that consented.
    pub openings: BoundedVec<InputOpening, MAX_INPUTS>,
    /// Consents of other hosts whose tokens the transaction spends.
    pub consents: BoundedVec<HostConsent, MAX_INPUTS>,
}

impl TxClaim {
    /// The claim for `tx` whose inputs resolve to `inputs` (same order).
    pub fn of(
        tx: &dtenge_types::Transaction,
        inputs: &[dtenge_types::Token],
    ) -> Result<TxClaim, dtenge_types::TypesError> {
        let id = tx.id();
        let openings: Vec<InputOpening> =
            tx.body.inputs.iter().zip(inputs).map(|(token_id, token)| InputOpening::of(token_id, token)).collect();
        let input_commitments: Vec<Commitment> = openings.iter().map(InputOpening::commitment).collect();
        let output_commitments: Vec<Commitment> = tx
            .body
            .outputs
            .iter()
            .enumerate()
            .map(|(i, token)| token.commitment(&dtenge_types::TxBody::output_id(id, i)))
            .collect();
        Ok(TxClaim {
            tx: id,
            inputs: BoundedVec::new(input_commitments)?,
            outputs: BoundedVec::new(output_commitments)?,
            window: tx.body.window,
            openings: BoundedVec::new(openings)?,
            consents: BoundedVec::default(),
        })
    }

    /// The claim with another host's consent added.
    ///
    /// # Errors
    /// More consents than inputs.
    pub fn with_consent(mut self, consent: HostConsent) -> Result<TxClaim, dtenge_types::TypesError> {
        self.consents.try_push(consent)?;
        Ok(self)
    }

    /// Whether every input is opened to its commitment and hosted by
    /// `submitter` or by a host in `consented`: the rejection naming the first
    /// input that is not.
    pub fn check_hosts(&self, submitter: &ParticipantId, consented: &[&ParticipantId]) -> Result<(), NotaryRejection> {
        if self.openings.len() != self.inputs.len() {
            return Err(NotaryRejection::BadOpening { input: self.openings.len().min(self.inputs.len()) });
        }
        for (input, (opening, commitment)) in self.openings.iter().zip(self.inputs.iter()).enumerate() {
            if opening.commitment() != *commitment {
                return Err(NotaryRejection::BadOpening { input });
            }
            if opening.host != *submitter && !consented.contains(&&opening.host) {
                return Err(NotaryRejection::NotHost { input, host: opening.host.clone() });
            }
        }
        Ok(())
    }

    /// The digest a receipt names for the inputs.
    pub fn inputs_digest(&self) -> Digest {
        digest_of(b"dtenge/notary/inputs/v1", &self.inputs)
    }

    /// The digest a receipt names for the outputs.
    pub fn outputs_digest(&self) -> Digest {
        digest_of(b"dtenge/notary/outputs/v1", &self.outputs)
    }
}

fn digest_of<T: BorshSerialize>(domain: &[u8], value: &T) -> Digest {
    let mut hasher = Hasher::new(domain);
    let _ = BorshSerialize::serialize(value, &mut HashWriter(&mut hasher));
    hasher.finish()
}

/// A node's request to notarise transactions, signed once.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct NotariseBatch {
    /// The submitting node.
    pub node: ParticipantId,
    /// The transactions.
    pub claims: BoundedVec<TxClaim, MAX_BATCH>,
    /// The node's EDS signature over [`NotariseBatch::signing_digest`].
    pub signature: Signature,
}

impl NotariseBatch {
    /// Builds and signs a batch.
    /// A batch is idempotent: submitting the same signed batch again gets the
    /// same answers, so it needs no nonce.
    pub fn signed(
        node: ParticipantId,
        claims: Vec<TxClaim>,
        key: &dyn Signer,
    ) -> Result<Self, dtenge_types::TypesError> {
        let claims = BoundedVec::new(claims)?;
        let digest = Self::digest(&node, &claims);
        Ok(NotariseBatch { node, claims, signature: key.sign(digest.as_bytes()) })
    }

    fn digest(node: &ParticipantId, claims: &BoundedVec<TxClaim, MAX_BATCH>) -> Digest {
        let mut hasher = Hasher::new(b"dtenge/notary/batch/v1");
        let mut w = HashWriter(&mut hasher);
        let _ = BorshSerialize::serialize(node, &mut w);
        let _ = BorshSerialize::serialize(claims, &mut w);
        hasher.finish()
    }

    /// What the node signs.
    pub fn signing_digest(&self) -> Digest {
        Self::digest(&self.node, &self.claims)
    }

    /// Checks the node's signature with `key`.
    pub fn verify(&self, key: &PublicKey, verifier: &dyn Verifier) -> bool {
        verifier.verify(key, self.signing_digest().as_bytes(), &self.signature).is_ok()
    }
}

/// The signed part of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The transaction.
    pub tx: TxId,
    /// Its position in the notary's commit order, from 1.
    pub seq: u64,
    /// The notary's clock when it committed.
    pub committed_at: Timestamp,
    /// Digest of the input commitments spent.
    pub inputs_digest: Digest,
    /// Digest of the output commitments recorded.
    pub outputs_digest: Digest,
}

/// Most levels of a receipt's Merkle path: enough for [`MAX_BATCH`] receipts.
pub const MAX_PROOF_DEPTH: usize = 16;

/// Proof that the notary committed a transaction: its inputs are spent by it
/// and its outputs exist.
///
/// The notary signs once per answered batch: the receipt bodies of the batch
/// are the leaves of a Merkle tree, and the signature covers the root and the
/// number of leaves. A receipt carries its leaf's index and the sibling
/// hashes up to the root. A receipt asked for alone is a tree of one leaf
/// (empty path). The body is the same on every retry; the proof depends on
/// which batch answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// What is attested.
    pub body: ReceiptBody,
    /// The notary's key.
    pub notary: PublicKey,
    /// The leaf's position among the signed receipts.
    pub index: u32,
    /// How many receipts the signature covers.
    pub leaves: u32,
    /// Sibling hashes from the leaf up to the root (levels where the node had
    /// no sibling are skipped).
    pub path: BoundedVec<Digest, MAX_PROOF_DEPTH>,
    /// The notary's signature over the root and the number of leaves.
    pub signature: Signature,
}

fn leaf_hash(body: &ReceiptBody) -> Digest {
    digest_of(b"dtenge/notary/receipt-leaf/v1", body)
}

fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = Hasher::new(b"dtenge/notary/receipt-node/v1");
    hasher.update(left.as_bytes());
    hasher.update(right.as_bytes());
    hasher.finish()
}

fn root_message(root: &Digest, leaves: u32) -> Digest {
    let mut hasher = Hasher::new(b"dtenge/notary/receipts/v1");
    hasher.update(root.as_bytes());
    hasher.update(&leaves.to_le_bytes());
    hasher.finish()
}

/// Every level of the tree over `leaves`, from the leaves up to the root. A
/// node without a sibling moves up unchanged.
fn levels(leaves: Vec<Digest>) -> Vec<Vec<Digest>> {
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let below = levels.last().map(Vec::as_slice).unwrap_or_default();
        let above: Vec<Digest> = below
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(left, right),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
        levels.push(above);
    }
    levels
}

impl Receipt {
    /// Signs one receipt alone.
    pub fn sign(body: ReceiptBody, key: &dyn Signer) -> Receipt {
        let mut all = Receipt::sign_all(vec![body], key);
        all.pop().unwrap_or_else(|| unreachable!("one body gives one receipt"))
    }

    /// Signs `bodies` with one signature; the receipts come back in the same
    /// order. At most [`MAX_BATCH`] bodies (the most one batch can commit).
    pub fn sign_all(bodies: Vec<ReceiptBody>, key: &dyn Signer) -> Vec<Receipt> {
        if bodies.is_empty() {
            return Vec::new();
        }
        debug_assert!(bodies.len() <= MAX_BATCH);
        let count = u32::try_from(bodies.len()).unwrap_or(u32::MAX);
        let levels = levels(bodies.iter().map(leaf_hash).collect());
        let root = levels.last().and_then(|l| l.first()).copied().unwrap_or_else(|| leaf_hash(&bodies[0]));
        let signature = key.sign(root_message(&root, count).as_bytes());
        let notary = key.public_key();
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let mut path = Vec::new();
                let mut at = i;
                for level in &levels[..levels.len().saturating_sub(1)] {
                    if let Some(sibling) = level.get(at ^ 1) {
                        path.push(*sibling);
                    }
                    at /= 2;
                }
                Receipt {
                    body,
                    notary,
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    leaves: count,
                    path: BoundedVec::new(path).unwrap_or_default(),
                    signature,
                }
            })
            .collect()
    }

    /// The digest the notary signed, recomputed from the body and the path.
    pub fn signed_digest(&self) -> Result<Digest, ReceiptError> {
        if self.leaves == 0 || self.index >= self.leaves {
            return Err(ReceiptError::BadProof);
        }
        let mut hash = leaf_hash(&self.body);
        let mut at = self.index;
        let mut width = self.leaves;
        let mut path = self.path.iter();
        while width > 1 {
            let has_sibling = (at ^ 1) < width;
            if has_sibling {
                let sibling = path.next().ok_or(ReceiptError::BadProof)?;
                hash = if at.is_multiple_of(2) { node_hash(&hash, sibling) } else { node_hash(sibling, &hash) };
            }
            at /= 2;
            width = width.div_ceil(2);
        }
        if path.next().is_some() {
            return Err(ReceiptError::BadProof);
        }
        Ok(root_message(&hash, self.leaves))
    }

    /// Checks the receipt is signed by `notary` and matches `claim`.
    pub fn verify(&self, notary: &PublicKey, claim: &TxClaim, verifier: &dyn Verifier) -> Result<(), ReceiptError> {
        let digest = self.check(notary, claim)?;
        verifier.verify(&self.notary, digest.as_bytes(), &self.signature).map_err(|_| ReceiptError::BadSignature)
    }

    /// Everything [`Receipt::verify`] checks except the signature; returns the signed digest.
    fn check(&self, notary: &PublicKey, claim: &TxClaim) -> Result<Digest, ReceiptError> {
        if self.notary != *notary {
            return Err(ReceiptError::WrongNotary);
        }
        if self.body.tx != claim.tx
            || self.body.inputs_digest != claim.inputs_digest()
            || self.body.outputs_digest != claim.outputs_digest()
        {
            return Err(ReceiptError::Mismatch);
        }
        self.signed_digest()
    }
}

/// Verifies receipts, remembering the signed roots it has verified so that
/// the receipts of one notary batch cost one signature verification, not one
/// each. Bounded: the oldest roots are forgotten first.
pub struct ReceiptVerifier {
    seen: std::sync::Mutex<(std::collections::HashSet<Digest>, std::collections::VecDeque<Digest>)>,
    capacity: usize,
}

impl ReceiptVerifier {
    /// Remembers up to `capacity` verified roots.
    pub fn new(capacity: usize) -> ReceiptVerifier {
        ReceiptVerifier { seen: std::sync::Mutex::new(Default::default()), capacity: capacity.max(1) }
    }

    /// As [`Receipt::verify`], skipping the signature check for a root this
    /// verifier has already seen verify with the same key and signature.
    pub fn verify(
        &self,
        receipt: &Receipt,
        notary: &PublicKey,
        claim: &TxClaim,
        verifier: &dyn Verifier,
    ) -> Result<(), ReceiptError> {
        let Some(root) = self.check_root(receipt, notary, claim)? else { return Ok(()) };
        let item = root.item();
        verifier.verify(item.public_key, item.message, item.signature).map_err(|_| ReceiptError::BadSignature)?;
        self.remember(&root);
        Ok(())
    }

    /// Verifies `others` (the caller's own signatures: a delivered batch's
    /// transactions, say) and `roots` ([`Self::check_root`]'s) in one batch
    /// verification, and remembers the roots that verified in it — only
    /// those: the cache never takes a caller's word. Returns the indices of
    /// `others` that failed and, for each root, whether it verified.
    pub fn verify_batch_with(
        &self,
        others: &[VerifyItem<'_>],
        roots: &[&RootCheck],
        verifier: &dyn Verifier,
    ) -> (Vec<usize>, Vec<bool>) {
        let mut items: Vec<VerifyItem<'_>> = others.to_vec();
        items.extend(roots.iter().map(|root| root.item()));
        let failed = match verifier.verify_batch(&items) {
            Ok(()) => Vec::new(),
            Err(failure) => failure.failed,
        };
        let verified: Vec<bool> = (others.len()..items.len()).map(|i| !failed.contains(&i)).collect();
        for (root, ok) in roots.iter().zip(&verified) {
            if *ok {
                self.remember(root);
            }
        }
        (failed.into_iter().filter(|i| *i < others.len()).collect(), verified)
    }

    /// Everything [`Self::verify`] checks but the root's signature: `None`
    /// if that root has already verified here, else the signature still to
    /// verify, in a batch with others ([`Self::verify_batch_with`]).
    pub fn check_root(
        &self,
        receipt: &Receipt,
        notary: &PublicKey,
        claim: &TxClaim,
    ) -> Result<Option<RootCheck>, ReceiptError> {
        let digest = receipt.check(notary, claim)?;
        let mut hasher = Hasher::new(b"dtenge/notary/verified-root/v1");
        hasher.update(receipt.notary.as_bytes());
        hasher.update(digest.as_bytes());
        hasher.update(&receipt.signature.0);
        let key = hasher.finish();
        if self.lock().0.contains(&key) {
            return Ok(None);
        }
        Ok(Some(RootCheck { key, notary: receipt.notary, digest, signature: receipt.signature }))
    }

    /// Remembers a root whose signature verified here.
    fn remember(&self, root: &RootCheck) {
        let mut seen = self.lock();
        if seen.0.insert(root.key) {
            seen.1.push_back(root.key);
            while seen.1.len() > self.capacity {
                if let Some(old) = seen.1.pop_front() {
                    seen.0.remove(&old);
                }
            }
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (std::collections::HashSet<Digest>, std::collections::VecDeque<Digest>)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A receipt's signed root not yet verified ([`ReceiptVerifier::check_root`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCheck {
    /// Names the root, its key and its signature together.
    key: Digest,
    notary: PublicKey,
    digest: Digest,
    signature: Signature,
}

impl RootCheck {
    /// The signature to verify, as an item of a batch verification.
    pub fn item(&self) -> VerifyItem<'_> {
        VerifyItem { public_key: &self.notary, message: self.digest.as_bytes(), signature: &self.signature }
    }

    /// Whether `other` is the same signed root (one verification for both).
    pub fn same_root(&self, other: &RootCheck) -> bool {
        self.key == other.key
    }
}

impl Default for ReceiptVerifier {
    fn default() -> Self {
        ReceiptVerifier::new(4096)
    }
}

/// Why a receipt does not prove what it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Signed by another key than the platform notary's.
    #[error("receipt is not signed by the platform notary")]
    WrongNotary,
    /// For another transaction or other commitments.
    #[error("receipt does not match the transaction's commitments")]
    Mismatch,
    /// The signature does not verify.
    #[error("receipt signature does not verify")]
    BadSignature,
    /// The Merkle path does not lead from the receipt to a signed root.
    #[error("receipt's proof is malformed (index, leaf count or path)")]
    BadProof,
}

/// Why the notary did not commit a transaction. Stable wire numbers via
/// variant order: append only.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize, thiserror::Error,
)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotaryRejection {
    /// An input was already spent, by the named transaction.
    #[error("input {input} is already spent by transaction {spent_by}")]
    Conflict { input: usize, commitment: Commitment, spent_by: TxId },
    /// An input was never created (or was created by no transaction the notary knows).
    #[error("input {input} is unknown to the notary")]
    UnknownInput { input: usize, commitment: Commitment },
    /// The notary's clock is outside the transaction's window.
    #[error("notary time {now:?} is outside the transaction's window {window:?}")]
    OutsideWindow { now: Timestamp, window: TimeWindow },
    /// Only issuer nodes may create tokens from nothing.
    #[error("a transaction without inputs (an issue) is accepted only from an issuer node")]
    IssueNotAllowed,
    /// An output commitment already exists.
    #[error("output {output} already exists")]
    DuplicateOutput { output: usize },
    /// The same commitment appears twice in the transaction.
    #[error("the transaction names commitment {commitment:?} twice")]
    RepeatedCommitment { commitment: Commitment },
    /// An input is hosted by another node than the one submitting, which did
    /// not consent: only a token's host (or a transaction it co-signed) may
    /// spend it.
    #[error("input {input} is hosted by {host}, which neither submitted nor consented to the transaction")]
    NotHost { input: usize, host: ParticipantId },
    /// An input's opening does not give its commitment (or is missing).
    #[error("input {input}'s opening does not match its commitment")]
    BadOpening { input: usize },
}

/// The answer for one claim.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Verdict {
    /// Committed.
    Committed(Receipt),
    /// Not committed.
    Rejected(NotaryRejection),
}

/// Why a whole batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize, thiserror::Error)]
pub enum BatchRefusal {
    /// The node is not registered with the notary.
    #[error("node {0} is not registered with the notary")]
    UnknownNode(ParticipantId),
    /// The batch's signature does not verify.
    #[error("the batch's signature does not verify for node {0}")]
    BadSignature(ParticipantId),
    /// The batch is empty.
    #[error("the batch is empty")]
    Empty,
}
