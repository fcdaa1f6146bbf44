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
use dtenge_crypto::{Digest, Hasher, PublicKey, Signature, Signer, Verifier};
use dtenge_types::encoding::HashWriter;
use dtenge_types::{BoundedVec, Commitment, MAX_INPUTS, MAX_OUTPUTS, ParticipantId, TimeWindow, Timestamp, TxId};
use serde::{Deserialize, Serialize};

/// Most transactions in one batch.
pub const MAX_BATCH: usize = 4096;

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
}

impl TxClaim {
    /// The claim for `tx` whose inputs resolve to `inputs` (same order).
    pub fn of(
        tx: &dtenge_types::Transaction,
        inputs: &[dtenge_types::Token],
    ) -> Result<TxClaim, dtenge_types::TypesError> {
        let id = tx.id();
        let input_commitments: Vec<Commitment> =
            tx.body.inputs.iter().zip(inputs).map(|(token_id, token)| token.commitment(token_id)).collect();
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
        })
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

impl ReceiptBody {
    fn signing_digest(&self) -> Digest {
        digest_of(b"dtenge/notary/receipt/v1", self)
    }
}

/// Proof that the notary committed a transaction: its inputs are spent by it
/// and its outputs exist. Ed25519 signatures are deterministic, so the same
/// body always carries the same signature: a retry gets an identical receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// What is attested.
    pub body: ReceiptBody,
    /// The notary's key.
    pub notary: PublicKey,
    /// Its signature over the body.
    pub signature: Signature,
}

impl Receipt {
    /// Signs `body`.
    pub fn sign(body: ReceiptBody, key: &dyn Signer) -> Receipt {
        let signature = key.sign(body.signing_digest().as_bytes());
        Receipt { body, notary: key.public_key(), signature }
    }

    /// Checks the receipt is signed by `notary` and matches `claim`.
    pub fn verify(&self, notary: &PublicKey, claim: &TxClaim, verifier: &dyn Verifier) -> Result<(), ReceiptError> {
        if self.notary != *notary {
            return Err(ReceiptError::WrongNotary);
        }
        if self.body.tx != claim.tx
            || self.body.inputs_digest != claim.inputs_digest()
            || self.body.outputs_digest != claim.outputs_digest()
        {
            return Err(ReceiptError::Mismatch);
        }
        verifier
            .verify(&self.notary, self.body.signing_digest().as_bytes(), &self.signature)
            .map_err(|_| ReceiptError::BadSignature)
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
