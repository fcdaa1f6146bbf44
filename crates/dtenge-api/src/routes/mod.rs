//! The API's routes, one module per area; each returns an `OpenApiRouter` so
//! the OpenAPI document is generated from the handlers themselves.

pub mod accounts;
pub mod cards;
pub mod conversions;
pub mod offline;
pub mod oracle;
pub mod payments;
pub mod programmable;
pub mod qr;
pub mod regime;
pub mod stablecoins;
