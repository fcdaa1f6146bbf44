//! A small world for oracle tests: the oracle engine with its journal, a
//! ledger book of unspent tokens that commits only what the real kernel
//! (`dtenge_ledger::validate`) accepts, providers, keys and an injected clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use dtenge_crypto::{Ed25519, SecretKey, hash};
use dtenge_ledger::{Context, Params, Rejection, validate};
use dtenge_oracle::*;
use dtenge_types::*;

pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = Timestamp::DAY_MS;

pub fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"oracle-test-key", &[name.as_bytes()]).as_bytes())
}

pub fn addr(name: &str) -> Address {
    Address(key(name).public_key())
}

pub fn node(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

pub fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

pub fn token(owner: &str, amount: Amount, host: &str) -> Token {
    Token::standard(Currency::DT, amount, addr(owner), node(host))
}

pub fn event_id(s: &str) -> EventId {
    EventId::new(s).unwrap()
}

/// The providers every world has: one per registry, plus one with none.
pub const EVENTS: &str = "SSIS";
pub const PORTAL: &str = "PORTAL";
pub const TAX: &str = "SRC";
pub const FX: &str = "FXP";

pub struct World {
    pub oracle: OracleState,
    pub journal: Vec<OracleRecord>,
    pub oracle_key: SecretKey,
    pub params: Params,
    pub book: BTreeMap<TokenId, Token>,
    pub now: Timestamp,
    counter: u64,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> World {
        let oracle_key = key("ORACLE");
        let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
        params.oracles.insert(oracle_key.public_key());
        params.issuers.insert(Currency::DT, addr("NBK"));
        params.tax_authorities.insert(addr("TAX-AUTHORITY"));
        let mut w = World {
            oracle: OracleState::new(),
            journal: Vec::new(),
            oracle_key,
            params,
            book: BTreeMap::new(),
            now: Timestamp(1_730_000_000_000),
            counter: 0,
        };
        for (id, registry) in
            [(EVENTS, Registry::Events), (PORTAL, Registry::Parameters), (TAX, Registry::Invoices), (FX, Registry::Fx)]
        {
            let record = w.oracle.register_provider(node(id), &format!("{id} system"), BTreeSet::from([registry]));
            w.run(record);
        }
        w
    }

    /// Journals and applies a record the oracle accepted.
    pub fn run(&mut self, record: Result<OracleRecord, OracleError>) {
        let record = record.expect("oracle accepts");
        self.oracle.apply(&record);
        self.journal.push(record);
    }

    /// Journals and applies a batch of records (from `tick`).
    pub fn run_all(&mut self, records: Vec<OracleRecord>) {
        for r in records {
            self.run(Ok(r));
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_millis(ms);
    }

    /// Puts a token into the book as if created earlier; returns its id.
    pub fn genesis(&mut self, token: Token) -> TokenId {
        self.counter += 1;
        let id = TokenId { tx: TxId(hash(b"genesis", &[&self.counter.to_le_bytes()])), index: 0 };
        self.book.insert(id, token);
        id
    }

    pub fn body(&mut self, inputs: Vec<TokenId>, outputs: Vec<Token>, command: Command) -> TxBody {
        self.counter += 1;
        TxBody {
            inputs: inputs.try_into().unwrap(),
            outputs: outputs.try_into().unwrap(),
            command,
            window: TimeWindow::starting(self.now, HOUR_MS),
            memo: Some(Memo::new(format!("tx {}", self.counter)).unwrap()),
        }
    }

    pub fn signed(&self, body: TxBody, signers: &[&str]) -> Transaction {
        let mut tx = Transaction::unsigned(body);
        for s in signers {
            tx.sign(&key(s)).unwrap();
        }
        tx
    }

    /// Asks the oracle to attest `tx`; on success journals the reservation
    /// and attaches the signed attestation.
    pub fn attest(&mut self, tx: &mut Transaction, request: AttestRequest) -> Result<Statement, OracleError> {
        let (statement, record) = self.oracle.attest(tx.id(), &tx.body, &request, self.now)?;
        if let Some(record) = record {
            self.run(Ok(record));
        }
        let attestation = sign_statement(&self.oracle_key, tx.id(), statement.clone());
        tx.attestations.try_push(attestation).unwrap();
        Ok(statement)
    }

    pub fn resolve(&self, tx: &Transaction) -> Vec<Token> {
        tx.body.inputs.iter().filter_map(|id| self.book.get(id).cloned()).collect()
    }

    /// The real kernel's verdict at the world's clock.
    pub fn validate(&self, tx: &Transaction) -> Result<TxId, Rejection> {
        validate(tx, &self.resolve(tx), &Context { now: self.now, params: &self.params }, &Ed25519)
    }

    /// Validates with the kernel, then spends inputs and books outputs (the
    /// notary's part, reduced to the book). Returns the output ids.
    pub fn commit(&mut self, tx: &Transaction) -> Result<Vec<TokenId>, Rejection> {
        self.validate(tx)?;
        for input in tx.body.inputs.iter() {
            self.book.remove(input).expect("input unspent");
        }
        let ids: Vec<TokenId> = tx.output_ids().collect();
        for (i, t) in ids.iter().zip(tx.body.outputs.iter()) {
            self.book.insert(*i, t.clone());
        }
        Ok(ids)
    }

    /// Commits with the kernel and confirms the reservation at the oracle.
    pub fn commit_and_confirm(&mut self, tx: &Transaction) -> Vec<TokenId> {
        let ids = self.commit(tx).expect("kernel accepts");
        let record = self.oracle.confirm(tx.id());
        self.run(record);
        ids
    }

    pub fn balance(&self, owner: &str, kind: TokenKind) -> Amount {
        let a = addr(owner);
        Amount::checked_sum(self.book.values().filter(|t| t.owner == a && t.kind() == kind).map(|t| t.amount)).unwrap()
    }

    /// A fresh state rebuilt from the journal.
    pub fn replayed(&self) -> OracleState {
        let mut fresh = OracleState::new();
        fresh.apply_all(&self.journal);
        fresh
    }
}
