//! # dtenge-demo — the seed's scenarios, end to end (SPEC §8, §4.4, §9)
//!
//! Each scenario runs against a fresh embedded platform through the
//! platform's interfaces — participant nodes' operations, providers' oracle
//! requests, the NBK conversion flow — following the seed's step lists with
//! its numbers, and also tries what must fail, checking it fails for the
//! right reason. Every step records the balances of the DAs it touches before
//! and after.
//!
//! The clock is a [`dtenge_net::ManualClock`]: "180 days pass" advances it.

pub mod runner;
pub mod scenarios;

pub use runner::{Ctx, DemoError, ScenarioReport, StepReport, run};
