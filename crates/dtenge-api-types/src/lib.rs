//! # dtenge-api-types — the one definition of every body on the API's wire
//!
//! Every request body, query and answer of the HTTP API (`dtenge-api`),
//! with serde both ways: the server serializes answers and deserializes
//! requests with these types, and the typed client (`dtenge-client`), the
//! demo and the web interface build requests and read answers with the very
//! same types — so a server change that a client does not follow fails to
//! compile instead of drifting. The `ToSchema` derives keep the OpenAPI
//! document generated from these definitions.
//!
//! Invariants: this crate knows nothing of HTTP frameworks, the platform or
//! the node (no axum, no `dtenge-*` dependency); turning ledger data into
//! these views is the server's work. Money is integer tiyn in fields ending
//! `_tiyn` (1 DT = 100 tiyn) with a display string beside it where people
//! read it; times are milliseconds since the epoch (`_ms`) with an
//! Astana-time (UTC+5) string beside them.

pub mod accounts;
pub mod cards;
pub mod common;
pub mod conversions;
pub mod offline;
pub mod oracle;
pub mod payments;
pub mod programmable;
pub mod qr;
pub mod regime;
pub mod signing;
pub mod stablecoins;

pub use accounts::*;
pub use cards::*;
pub use common::*;
pub use conversions::*;
pub use offline::*;
pub use oracle::*;
pub use payments::*;
pub use programmable::*;
pub use qr::{QrCheck, QrPayRequest, QrPayment, QrSubmit, QrView};
pub use regime::*;
pub use stablecoins::*;
