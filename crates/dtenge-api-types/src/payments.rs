//! Payments: transfers to one or several recipients, client-signed
//! transfers, transaction status, token lineage and notary receipts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::StatusView;

/// A recipient: an address, or an IIN/BIN at a bank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recipient {
    /// The recipient DA's address (hex public key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Or the holder's IIN/BIN…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iin_bin: Option<String>,
    /// …and the bank (node id) holding the DA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
}

impl Recipient {
    /// Pay `amount_tiyn` to `address`.
    pub fn address(address: impl Into<String>, amount_tiyn: u64) -> Recipient {
        Recipient { address: Some(address.into()), amount_tiyn, ..Recipient::default() }
    }

    /// Pay `amount_tiyn` to the DA of `iin_bin` at `bank`.
    pub fn holder(iin_bin: impl Into<String>, bank: impl Into<String>, amount_tiyn: u64) -> Recipient {
        Recipient { iin_bin: Some(iin_bin.into()), bank: Some(bank.into()), amount_tiyn, address: None }
    }
}

/// A transfer (`POST /api/v1/transfers` and `/transfers/prepare`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferRequest {
    /// The paying DA (on the caller's node).
    pub from: String,
    /// One or several recipients (one atomic transaction).
    pub to: Vec<Recipient>,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// What became of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxOutcomeView {
    /// The transaction id.
    pub tx: String,
    /// Its status.
    pub status: StatusView,
    /// The notary's commit position, once committed.
    #[serde(default)]
    pub notary_seq: Option<u64>,
}

/// A transaction prepared for the holder to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PreparedView {
    /// The transaction id: the holder signs `"dtenge/txsig" ‖ id bytes` with their key.
    pub tx_id: String,
    /// The exact bytes to sign, hex.
    pub signing_message: String,
    /// The canonical encoding of the unsigned transaction, hex: add the signature and submit.
    pub transaction: String,
}

/// A client-signed transaction (`POST /api/v1/transfers/submit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmitSigned {
    /// The canonical encoding of the transaction with the holder's signature, hex.
    pub transaction: String,
}

/// A transaction as the caller's node knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransactionView {
    /// Its id.
    pub tx: String,
    /// `outgoing` (built here) or `incoming` (delivered here).
    pub direction: String,
    /// The command.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its status.
    pub status: StatusView,
    /// The full transaction as JSON.
    #[schema(value_type = Object)]
    pub transaction: serde_json::Value,
}

/// A token's parents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineageView {
    /// The token (`<tx id>:<index>`).
    pub token: String,
    /// The tokens consumed by the transaction that created it.
    pub parents: Vec<String>,
}

/// A notary receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    /// The transaction.
    pub tx: String,
    /// Its position in the notary's commit order.
    pub seq: u64,
    /// Commit time (ms).
    pub committed_at_ms: u64,
    /// Commit time, Astana time.
    pub committed_at: String,
    /// Digest of the input commitments.
    pub inputs_digest: String,
    /// Digest of the output commitments.
    pub outputs_digest: String,
    /// The notary's key.
    pub notary: String,
    /// Its signature.
    pub signature: String,
}
