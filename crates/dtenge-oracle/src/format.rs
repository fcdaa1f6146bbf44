//! How the oracle stores its records and snapshots, version by version
//! (see `dtenge_store::versioned`).
//!
//! | format | records | snapshot |
//! |---|---|---|
//! | 0 (release 9e7a3dd, untagged) | [`OracleRecord`] without `ReservedFor` / `Abandoned` | state without the node of a reservation or abandoned reservations |
//! | 1 | [`OracleRecord`] | [`OracleState`] and the notices |
//!
//! Version 0 records decode as today's type (its variants were only appended
//! to); a version 0 snapshot decodes through [`StateV0`].

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_store::versioned::kinds;
use dtenge_store::{Format, FormatError, Tagged};
use dtenge_types::{Currency, EventId, InvoiceId, ParameterId, ParticipantId, Statement, Timestamp, TxId};

use crate::OracleRecord;
use crate::model::{
    EventState, InvoiceState, Notice, ParameterState, Provider, RateState, Reservation, ReservationEntry,
};
use crate::state::OracleState;

/// The oracle's journal records.
pub const RECORD: Format = Format { kind: kinds::ORACLE_RECORD, version: 1, name: "oracle record" };
/// The oracle's snapshots.
pub const SNAPSHOT: Format = Format { kind: kinds::ORACLE_SNAPSHOT, version: 1, name: "oracle snapshot" };

/// Largest record or snapshot the oracle decodes.
const STORED_BYTES_MAX: usize = dtenge_store::RECORD_BYTES_MAX;

/// A record as stored.
pub fn encode_record(record: &OracleRecord) -> Vec<u8> {
    RECORD.encode(record)
}

/// A stored record, whichever format version wrote it.
pub fn decode_record(stored: &[u8]) -> Result<OracleRecord, FormatError> {
    RECORD.decode(stored, STORED_BYTES_MAX)
}

/// A snapshot as stored.
pub fn encode_snapshot(state: &OracleState, notices: &[Notice]) -> Vec<u8> {
    SNAPSHOT.encode(&(state, notices))
}

/// A stored snapshot, whichever format version wrote it.
pub fn decode_snapshot(stored: &[u8]) -> Result<(OracleState, Vec<Notice>), FormatError> {
    match SNAPSHOT.read(stored)? {
        Tagged::Versioned { .. } => SNAPSHOT.decode(stored, STORED_BYTES_MAX),
        Tagged::Untagged(body) => {
            let (state, notices): (StateV0, Vec<Notice>) =
                dtenge_types::encoding::decode(body, STORED_BYTES_MAX).map_err(|e| SNAPSHOT.undecodable(0, e))?;
            Ok((state.into(), notices))
        }
    }
}

/// The oracle's state as release 9e7a3dd stored it.
#[derive(BorshSerialize, BorshDeserialize)]
struct StateV0 {
    providers: BTreeMap<ParticipantId, Provider>,
    events: BTreeMap<EventId, EventState>,
    parameters: BTreeMap<ParameterId, ParameterState>,
    invoices: BTreeMap<InvoiceId, InvoiceState>,
    rates: BTreeMap<(Currency, Currency), RateState>,
    reservations: BTreeMap<TxId, ReservationV0>,
}

/// A reservation as release 9e7a3dd stored it: no node named.
#[derive(BorshSerialize, BorshDeserialize)]
struct ReservationV0 {
    reservation: Reservation,
    statement: Statement,
    expires_at: Timestamp,
}

impl From<StateV0> for OracleState {
    fn from(v0: StateV0) -> OracleState {
        OracleState {
            providers: v0.providers,
            events: v0.events,
            parameters: v0.parameters,
            invoices: v0.invoices,
            rates: v0.rates,
            reservations: v0
                .reservations
                .into_iter()
                .map(|(tx, r)| {
                    let entry = ReservationEntry {
                        reservation: r.reservation,
                        statement: r.statement,
                        expires_at: r.expires_at,
                        node: None,
                    };
                    (tx, entry)
                })
                .collect(),
            abandoned: BTreeMap::new(),
            broken_abandonments: Vec::new(),
        }
    }
}
