//! Why an offline message or act was refused: one enum, each variant with a
//! stable code ([`OfflineCode`]) that wallets and the API decide on.

use dtenge_crypto::PublicKey;

/// A refusal of the offline protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// The bytes are not a canonical, bounded encoding.
    #[error("malformed offline message: {0}")]
    Malformed(String),
    /// A bank whose key this wallet or bank does not know.
    #[error("unknown bank {0}: fetch the bank keys when online")]
    UnknownBank(String),
    /// A signature does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// Hop `index` is not signed by the holder of its parent, or its
    /// certificate names another device.
    #[error("chain broken at hop {index}: {reason}")]
    ChainBroken {
        /// The hop.
        index: usize,
        /// What does not match.
        reason: &'static str,
    },
    /// A device in the chain is on a revocation list.
    #[error("device {0} is revoked")]
    Revoked(PublicKey),
    /// A certificate had expired when its device signed, or has now.
    #[error("certificate of device {0} has expired: the device must reconnect")]
    Expired(PublicKey),
    /// A hop's range is empty or not inside its parent's.
    #[error("hop {0} moves a range not inside what its payer held")]
    Range(usize),
    /// A limit of the device's certificate, or of this purse, is passed.
    #[error("limit passed: {0}")]
    Limit(&'static str),
    /// Times go backwards along the chain or lie in the future.
    #[error("hop {0} is dated before its parent or in the future")]
    Time(usize),
    /// More hops than a payment or deposit may carry.
    #[error("chain of {hops} hops: at most {max}; deposit it instead")]
    TooManyHops {
        /// Hops in the chain.
        hops: usize,
        /// The bound.
        max: usize,
    },
    /// The purse holds too little free value.
    #[error("offline balance too low: {available} tiyn free, {wanted} wanted")]
    Insufficient {
        /// Free tiyn.
        available: u64,
        /// Asked for.
        wanted: u64,
    },
    /// The secure element refused to sign.
    #[error("secure element: {0}")]
    Element(#[from] crate::ElementError),
    /// This chain's value was deposited before by another chain that shares
    /// no divergence point (cannot be attributed).
    #[error("deposit overlaps an earlier one without a divergent hop")]
    Unattributable,
    /// A load has had too many deposits.
    #[error("load has {0} deposits already: no more are taken")]
    TooManyDeposits(usize),
    /// The load was issued by another bank than the one asked to settle it.
    #[error("load issued by {0}: deposit it there")]
    WrongBank(String),
}

/// Stable codes of [`OfflineError`]; numbers are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum OfflineCode {
    /// [`OfflineError::Malformed`].
    Malformed = 1,
    /// [`OfflineError::UnknownBank`].
    UnknownBank = 2,
    /// [`OfflineError::BadSignature`].
    BadSignature = 3,
    /// [`OfflineError::ChainBroken`].
    ChainBroken = 4,
    /// [`OfflineError::Revoked`].
    Revoked = 5,
    /// [`OfflineError::Expired`].
    Expired = 6,
    /// [`OfflineError::Range`].
    Range = 7,
    /// [`OfflineError::Limit`].
    Limit = 8,
    /// [`OfflineError::Time`].
    Time = 9,
    /// [`OfflineError::TooManyHops`].
    TooManyHops = 10,
    /// [`OfflineError::Insufficient`].
    Insufficient = 11,
    /// [`OfflineError::Element`].
    Element = 12,
    /// [`OfflineError::Unattributable`].
    Unattributable = 13,
    /// [`OfflineError::TooManyDeposits`].
    TooManyDeposits = 14,
    /// [`OfflineError::WrongBank`].
    WrongBank = 15,
}

impl OfflineError {
    /// The stable code.
    pub fn code(&self) -> OfflineCode {
        match self {
            OfflineError::Malformed(_) => OfflineCode::Malformed,
            OfflineError::UnknownBank(_) => OfflineCode::UnknownBank,
            OfflineError::BadSignature(_) => OfflineCode::BadSignature,
            OfflineError::ChainBroken { .. } => OfflineCode::ChainBroken,
            OfflineError::Revoked(_) => OfflineCode::Revoked,
            OfflineError::Expired(_) => OfflineCode::Expired,
            OfflineError::Range(_) => OfflineCode::Range,
            OfflineError::Limit(_) => OfflineCode::Limit,
            OfflineError::Time(_) => OfflineCode::Time,
            OfflineError::TooManyHops { .. } => OfflineCode::TooManyHops,
            OfflineError::Insufficient { .. } => OfflineCode::Insufficient,
            OfflineError::Element(_) => OfflineCode::Element,
            OfflineError::Unattributable => OfflineCode::Unattributable,
            OfflineError::TooManyDeposits(_) => OfflineCode::TooManyDeposits,
            OfflineError::WrongBank(_) => OfflineCode::WrongBank,
        }
    }

    /// The code as the API's snake_case error code.
    pub fn api_code(&self) -> &'static str {
        self.code().api_code()
    }
}

impl OfflineCode {
    /// Every code, in number order.
    pub const ALL: [OfflineCode; 15] = [
        OfflineCode::Malformed,
        OfflineCode::UnknownBank,
        OfflineCode::BadSignature,
        OfflineCode::ChainBroken,
        OfflineCode::Revoked,
        OfflineCode::Expired,
        OfflineCode::Range,
        OfflineCode::Limit,
        OfflineCode::Time,
        OfflineCode::TooManyHops,
        OfflineCode::Insufficient,
        OfflineCode::Element,
        OfflineCode::Unattributable,
        OfflineCode::TooManyDeposits,
        OfflineCode::WrongBank,
    ];

    /// The code numbered `n` (as it travels between services), if any.
    pub fn from_number(n: u16) -> Option<OfflineCode> {
        OfflineCode::ALL.into_iter().find(|c| *c as u16 == n)
    }

    /// The API's snake_case error code.
    pub fn api_code(self) -> &'static str {
        match self {
            OfflineCode::Malformed => "offline_malformed",
            OfflineCode::UnknownBank => "offline_unknown_bank",
            OfflineCode::BadSignature => "offline_bad_signature",
            OfflineCode::ChainBroken => "offline_chain_broken",
            OfflineCode::Revoked => "offline_device_revoked",
            OfflineCode::Expired => "offline_certificate_expired",
            OfflineCode::Range => "offline_bad_range",
            OfflineCode::Limit => "offline_limit",
            OfflineCode::Time => "offline_bad_time",
            OfflineCode::TooManyHops => "offline_too_many_hops",
            OfflineCode::Insufficient => "offline_insufficient",
            OfflineCode::Element => "offline_secure_element",
            OfflineCode::Unattributable => "offline_unattributable",
            OfflineCode::TooManyDeposits => "offline_too_many_deposits",
            OfflineCode::WrongBank => "offline_wrong_bank",
        }
    }
}
