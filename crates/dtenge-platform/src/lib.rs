//! # dtenge-platform
//!
//! Assembles the platform from its services (SPEC §1, §5): the notary, the
//! oracle, the DA directory and the participant nodes (NBK, Treasury, banks),
//! each with its own journal in the data directory, talking only through the
//! message interface.
//!
//! - [`spec`]: participants, keys and ledger parameters (`platform.json`, `keys/`);
//! - [`registry`]: the participant registry signed by NBK, verified at start and updated live;
//! - [`config`]: a service's TOML configuration file;
//! - [`ceremony`]: keys made on each participant's host, the registry built and changed from their requests;
//! - [`services`]: opening one service from its journal (shared by both ways of running);
//! - [`assembly`]: every service in one process over the in-process network;
//! - [`process`]: one service per process over HTTP;
//! - [`audit_log`]: the hash-chained audit log of signed messages and `dtenge audit verify`;
//! - [`ledger_audit`]: the end-to-end invariants (nothing spent twice or lost, supply, agreement);
//! - [`sim`]: deterministic simulation under network faults and restarts, with audits.
//!
//! Invariant: no service reaches into another's state; the assembly only
//! starts them and hands each a bus bound to its own identity.

pub mod assembly;
pub mod audit_log;
pub mod ceremony;
pub mod config;
pub mod demo_set;
pub mod evidence;
pub mod gauges;
pub mod ledger_audit;
pub mod offline;
pub mod operator;
pub mod process;
pub mod registry;
pub mod services;
pub mod sim;
pub mod spec;

pub use assembly::{Platform, PlatformNotary, PlatformOptions};
pub use spec::PlatformSpec;

use std::path::Path;

/// Why the platform cannot start or run.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A file or directory problem.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What.
        source: std::io::Error,
    },
    /// Configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// A service failed to start.
    #[error("{service}: {reason}")]
    Service {
        /// Which.
        service: String,
        /// Why.
        reason: String,
    },
}

impl PlatformError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> PlatformError {
        PlatformError::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn service(service: impl Into<String>, reason: impl ToString) -> PlatformError {
        PlatformError::Service { service: service.into(), reason: reason.to_string() }
    }
}
