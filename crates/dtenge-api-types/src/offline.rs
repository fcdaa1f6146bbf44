//! Offline device-to-device payments (issue 21.3, docs/offline.md): a bank
//! certifies a device, funds its purse from a DA, takes deposits of chains
//! received offline, and publishes bank keys and revocation lists for
//! wallets. Binary offline messages travel as hex of their canonical borsh
//! encoding (`dtenge-offline`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/offline/certificates`: certify a device key (at first use
/// and at every reconnection, which renews the offline time and count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertifyDevice {
    /// The device key (hex Ed25519 public key) from its secure element.
    pub device_key: String,
    /// The element's next counter value (hops under the certificate use
    /// counters from here).
    pub next_counter: u32,
}

/// A device certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// Hex of the signed certificate (canonical borsh).
    pub certificate: String,
    /// Most offline value the device may hold, tiyn.
    pub balance_max_tiyn: u64,
    /// Most value of one offline payment, tiyn.
    pub payment_max_tiyn: u64,
    /// Most offline payments before reconnecting.
    pub payments_max: u32,
    /// When the device must have reconnected (ms since the epoch).
    pub valid_until_ms: u64,
    /// The bank's offline reserve DA (address): a holder who signs its own
    /// payments funds a purse by paying it, then names that payment in
    /// [`FundPurse::paid_tx`].
    #[serde(default)]
    pub reserve: String,
}

/// `POST /api/v1/offline/loads`: fund a device's purse from a DA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FundPurse {
    /// The paying DA (on the caller's node).
    pub from: String,
    /// The device key (hex).
    pub device_key: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
    /// A committed payment of `amount_tiyn` from `from` into the bank's
    /// offline reserve, signed by the DA's holder (a DA whose key the bank
    /// does not hold): the bank issues the load for it instead of paying
    /// from the DA itself. A payment funds one load; asking again answers
    /// the same load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_tx: Option<String>,
}

/// A funded purse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoadView {
    /// Hex of the bank-signed load the device adds to its purse.
    pub load: String,
    /// Its serial at the bank.
    pub serial: u64,
    /// The payment from the DA into the bank's offline reserve.
    pub tx: String,
    /// The reserve DA's address.
    pub reserve: String,
}

/// `POST /api/v1/offline/deposits`: a chain received offline, ending in the
/// holder's deposit hop to a DA on the caller's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DepositChain {
    /// Hex of the chain (canonical borsh, at most 1 400 bytes).
    pub chain: String,
}

/// What a deposit came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DepositView {
    /// `settled`, `already_settled` or `double_spend`.
    pub outcome: String,
    /// Tiyn paid into the DA now (0 unless settled).
    pub amount_tiyn: u64,
    /// The reserve's payment, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    /// On a double spend: the device that signed twice (hex key), now revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    /// On a double spend: hex of the proof (its two signed hops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// On a double spend: tiyn already settled to someone else (the loss).
    #[serde(default)]
    pub loss_tiyn: u64,
}

/// A bank's key for offline messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfflineBank {
    /// The bank (participant id).
    pub bank: String,
    /// Its key (hex): loads, certificates and revocation lists verify against it.
    pub key: String,
}

/// A bank's signed revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    /// The bank.
    pub bank: String,
    /// Its serial (a wallet keeps the highest).
    pub serial: u64,
    /// Revoked device keys (hex).
    pub devices: Vec<String>,
    /// Hex of the signed list.
    pub list: String,
}

/// `GET /api/v1/offline/trust`: what a wallet fetches when online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfflineTrustView {
    /// Bank keys.
    pub banks: Vec<OfflineBank>,
    /// Every bank's revocation list.
    pub revocations: Vec<RevocationView>,
}
