//! A small world for kernel tests: deterministic keys, platform parameters,
//! and a reference book of unspent tokens that applies only transactions the
//! kernel accepts — the model against which "no token is spent twice" and
//! "value is conserved" are checked.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use dtenge_crypto::{Ed25519, SecretKey, hash};
use dtenge_ledger::{Context, Params, Rejection, validate};
use dtenge_types::*;

pub const HOUR_MS: u64 = 3_600_000;

/// A deterministic key for a name.
pub fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(*hash(b"test-key", &[name.as_bytes()]).as_bytes())
}

/// The participant key of a host node (signs collections and key rotations).
pub fn host_key(host: &str) -> SecretKey {
    key(&format!("{host}-NODE"))
}

pub fn addr(key: &SecretKey) -> Address {
    Address(key.public_key())
}

/// `n` whole tenge.
pub fn dt(n: u64) -> Amount {
    Amount::from_tenge(n).unwrap()
}

pub fn node(name: &str) -> ParticipantId {
    ParticipantId::new(name).unwrap()
}

pub fn std_token(owner: &SecretKey, amount: Amount) -> Token {
    Token::standard(Currency::DT, amount, addr(owner), node("STB1"))
}

pub fn with_marking(mut token: Token, marking: Marking) -> Token {
    token.marking = Some(marking);
    token
}

pub fn with_encumbrance(mut token: Token, encumbrance: Encumbrance) -> Token {
    token.encumbrance = Some(encumbrance);
    token
}

pub struct World {
    pub params: Params,
    pub nbk: SecretKey,
    pub oracle: SecretKey,
    pub tax: SecretKey,
    pub now: Timestamp,
    pub book: BTreeMap<TokenId, Token>,
    pub spent: BTreeMap<TokenId, TxId>,
    pub issued: BTreeMap<Currency, u128>,
    pub redeemed: BTreeMap<Currency, u128>,
    counter: u64,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> World {
        let nbk = key("NBK");
        let oracle = key("ORACLE");
        let tax = key("SRC");
        let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
        params.issuers.insert(Currency::DT, addr(&nbk));
        params.issuers.insert(Currency::new("XCB").unwrap(), addr(&key("FOREIGN-CB")));
        params.oracles.insert(oracle.public_key());
        params.tax_authorities.insert(addr(&tax));
        for host in ["STB1", "STB2"] {
            params.hosts.insert(node(host), host_key(host).public_key());
        }
        params.authorities.insert(key("BAILIFF").public_key());
        World {
            params,
            nbk,
            oracle,
            tax,
            now: Timestamp(1_730_000_000_000),
            book: BTreeMap::new(),
            spent: BTreeMap::new(),
            issued: BTreeMap::new(),
            redeemed: BTreeMap::new(),
            counter: 0,
        }
    }

    pub fn ctx(&self) -> Context<'_> {
        Context { now: self.now, params: &self.params }
    }

    pub fn body(&self, inputs: Vec<TokenId>, outputs: Vec<Token>, command: Command) -> TxBody {
        TxBody {
            inputs: inputs.try_into().unwrap(),
            outputs: outputs.try_into().unwrap(),
            command,
            window: TimeWindow::starting(self.now, HOUR_MS),
            memo: None,
        }
    }

    /// Signs `body` with `signers`.
    pub fn signed(&self, body: TxBody, signers: &[&SecretKey]) -> Transaction {
        let mut tx = Transaction::unsigned(body);
        for s in signers {
            tx.sign(*s).unwrap();
        }
        tx
    }

    /// Adds the platform oracle's attestation.
    pub fn attested(&self, mut tx: Transaction, statement: Statement) -> Transaction {
        tx.attest(&self.oracle, statement).unwrap();
        tx
    }

    /// The unspent tokens the inputs name; a spent or unknown input is left
    /// out, so the kernel sees fewer resolved inputs and rejects it.
    pub fn resolve(&self, tx: &Transaction) -> Vec<Token> {
        tx.body.inputs.iter().filter_map(|id| self.book.get(id).cloned()).collect()
    }

    pub fn check(&self, tx: &Transaction) -> Result<TxId, Rejection> {
        validate(tx, &self.resolve(tx), &self.ctx(), &Ed25519)
    }

    /// Validates and applies; the reference model refuses to spend a token
    /// twice regardless of what validation says.
    pub fn apply(&mut self, tx: &Transaction) -> Result<Vec<TokenId>, Rejection> {
        let id = self.check(tx)?;
        let consumed = self.resolve(tx);
        for input in tx.body.inputs.iter() {
            assert!(!self.spent.contains_key(input), "model: {input:?} spent twice");
            self.book.remove(input).expect("model: input not in book");
            self.spent.insert(*input, id);
        }
        let ids: Vec<TokenId> = tx.output_ids().collect();
        for (token_id, token) in ids.iter().zip(tx.body.outputs.iter()) {
            self.book.insert(*token_id, token.clone());
        }
        match &tx.body.command {
            Command::Issue { .. } => {
                for t in tx.body.outputs.iter() {
                    *self.issued.entry(t.currency).or_default() += u128::from(t.amount.tiyn());
                }
            }
            Command::Redeem { .. } => {
                let inp: u128 = consumed.iter().map(|t| u128::from(t.amount.tiyn())).sum();
                let out: u128 = tx.body.outputs.iter().map(|t| u128::from(t.amount.tiyn())).sum();
                let currency = tx.body.outputs.first().map(|t| t.currency).unwrap_or(Currency::DT);
                *self.redeemed.entry(currency).or_default() += inp - out;
            }
            _ => {}
        }
        Ok(ids)
    }

    /// Issues `amount` DT to `to` through NBK, returning the token id.
    pub fn issue(&mut self, to: &SecretKey, amount: Amount) -> TokenId {
        self.issue_token(std_token(to, amount))
    }

    pub fn issue_token(&mut self, token: Token) -> TokenId {
        self.counter += 1;
        let nbk_signer = if token.currency == Currency::DT { self.nbk.clone() } else { key("FOREIGN-CB") };
        let body = self.body(
            vec![],
            vec![token],
            Command::Issue { cbs_reference: CbsRef::new(format!("CBS-{}", self.counter)).unwrap() },
        );
        let tx = self.signed(body, &[&nbk_signer]);
        self.apply(&tx).expect("issue")[0]
    }

    /// Total of `owner`'s tokens of `kind`.
    pub fn balance(&self, owner: &SecretKey, kind: TokenKind) -> Amount {
        let a = addr(owner);
        Amount::checked_sum(self.book.values().filter(|t| t.owner == a && t.kind() == kind).map(|t| t.amount)).unwrap()
    }

    /// Total supply of a currency in the book.
    pub fn supply(&self, currency: Currency) -> u128 {
        self.book.values().filter(|t| t.currency == currency).map(|t| u128::from(t.amount.tiyn())).sum()
    }
}
