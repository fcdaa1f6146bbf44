//! History lines are per currency; a line archived before they carried
//! their currency still reads (as `currency: None`), and nothing else does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use borsh::BorshSerialize;
use dtenge_crypto::{Digest, PublicKey};
use dtenge_node::state::{HistoryEntry, Status};
use dtenge_types::{Address, Amount, Currency, Timestamp, TxId};

/// A history line as releases before per-currency lines wrote it.
#[derive(BorshSerialize)]
struct LineBeforeCurrency {
    tx: TxId,
    at: Timestamp,
    kind: String,
    incoming: Amount,
    outgoing: Amount,
    counterparties: Vec<Address>,
    memo: Option<String>,
    status: Status,
}

fn line(currency: Option<Currency>) -> HistoryEntry {
    HistoryEntry {
        tx: TxId(Digest([7; 32])),
        at: Timestamp(1_767_225_600_000),
        kind: "pvp".into(),
        incoming: Amount::from_tiyn(0),
        outgoing: Amount::from_tiyn(1_250_000),
        counterparties: vec![Address(PublicKey([9; 32]))],
        memo: Some("fx".into()),
        status: Status::Rejected { reason: "window closed".into() },
        currency,
    }
}

#[test]
fn a_line_written_before_lines_carried_their_currency_reads_as_none() {
    let new = line(None);
    let old = LineBeforeCurrency {
        tx: new.tx,
        at: new.at,
        kind: new.kind.clone(),
        incoming: new.incoming,
        outgoing: new.outgoing,
        counterparties: new.counterparties.clone(),
        memo: new.memo.clone(),
        status: new.status.clone(),
    };
    let bytes = borsh::to_vec(&old).unwrap();
    assert_eq!(borsh::from_slice::<HistoryEntry>(&bytes).unwrap(), new);
}

#[test]
fn a_line_with_its_currency_round_trips_and_a_bad_tail_is_refused() {
    for currency in [None, Some(Currency::DT), Some(Currency::new("CNY").unwrap())] {
        let entry = line(currency);
        let bytes = borsh::to_vec(&entry).unwrap();
        assert_eq!(borsh::from_slice::<HistoryEntry>(&bytes).unwrap(), entry);
    }
    let mut bytes = borsh::to_vec(&line(Some(Currency::DT))).unwrap();
    let tag_at = bytes.len() - 1 - borsh::to_vec(&Currency::DT).unwrap().len();
    bytes[tag_at] = 2;
    assert!(borsh::from_slice::<HistoryEntry>(&bytes).is_err(), "an unknown currency tag is refused");
    let mut bytes = borsh::to_vec(&line(None)).unwrap();
    bytes.push(0);
    assert!(borsh::from_slice::<HistoryEntry>(&bytes).is_err(), "trailing bytes are refused");
}
