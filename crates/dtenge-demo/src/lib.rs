//! # dtenge-demo — the seed's scenarios, end to end (SPEC §8, §4.4, §9)
//!
//! Each scenario runs against a fresh embedded platform through its HTTP
//! API: [`Ctx`] builds `dtenge_api::router` over the platform once and keeps
//! one typed, signed [`dtenge_client::Client`] per participant that acts
//! (the banks, the Treasury, NBK, the foreign central bank and the event
//! providers), driving the router in process. Opening DAs, funding them (a
//! bank's conversion request, NBK's approval, a transfer from the bank's own
//! DA), payments, marking, holds, e-invoices and VAT, debit mandates, PvP and
//! every provider's request to the oracle are API calls made as the
//! participant that performs them; balances are read with
//! `GET /api/v1/accounts/{id}/balance`. The scenarios follow the seed's step
//! lists with its numbers and also try what must fail, checking the API's
//! error code and message say why. Every step records the balances of the DAs
//! it touches before and after.
//!
//! Not API operations, and so not through the client: the platform's
//! background round ([`Ctx::tick`]: notices, releases, expiries, CBS
//! confirmations) and the clock. One scenario operation has no API route open
//! to its actor and uses the node interface: the foreign central bank issuing
//! its currency (the API issues only through NBK's conversions). Balances of
//! foreign currency are read per currency from the node's vault.
//!
//! The clock is a [`dtenge_net::ManualClock`]: "180 days pass" advances it.

mod offline;
pub mod runner;
pub mod scenarios;

pub use runner::{Api, Ctx, Da, DemoError, ScenarioReport, StepReport};
pub use scenarios::run;
