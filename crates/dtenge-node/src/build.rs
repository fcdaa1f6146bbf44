//! Building transactions from selected tokens: the shapes the kernel accepts,
//! with change back to the payer. Pure functions: the node selects and reserves
//! tokens, these lay out the outputs, the kernel validates the result.

use dtenge_types::{Address, MAX_OUTPUTS, TypesError};
use dtenge_types::{
    AddressMarking, Amount, BoundedVec, CbsRef, Command, ContractNo, Currency, Encumbrance, EventId, Hold, InvoiceId,
    MandateId, MandateTerms, Marking, MarkingRule, Memo, ParameterId, ParameterMarking, ParticipantId, ReserveTerms,
    TimeWindow, Timestamp, Token, TokenId, TxBody,
};

use crate::NodeError;

/// The smallest part change is split into (1,00): splitting finer would only
/// fragment a DA's funds.
pub const MIN_CHANGE_PART: u64 = 100;

/// Where a payment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    /// The recipient DA's address.
    pub address: Address,
    /// The node hosting it.
    pub host: ParticipantId,
    /// How much.
    pub amount: Amount,
}

/// What every transaction from this node shares.
#[derive(Debug, Clone)]
pub struct Draft {
    /// This node.
    pub host: ParticipantId,
    /// The payer's address (owner of the inputs, receiver of change).
    pub payer: Address,
    /// When the window starts.
    pub now: Timestamp,
    /// How long the transaction may take to commit.
    pub window_ms: u64,
    /// Purpose text.
    pub memo: Option<Memo>,
    /// Into how many tokens the payer's standard change is split (at least
    /// one): a DA that pays often needs several free tokens to pay
    /// concurrently, or every payment waits for the previous one's change.
    pub change_parts: usize,
}

impl Draft {
    fn body(&self, inputs: &[(TokenId, Token)], outputs: Vec<Token>, command: Command) -> Result<TxBody, NodeError> {
        let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
        Ok(TxBody {
            inputs: BoundedVec::new(ids).map_err(NodeError::from)?,
            outputs: BoundedVec::new(outputs).map_err(|e: TypesError| NodeError::TooManyOutputs(e.to_string()))?,
            command,
            window: TimeWindow::starting(self.now, self.window_ms),
            memo: self.memo.clone(),
        })
    }

    /// The payer's change of `amount`, in up to `change_parts` tokens of
    /// at least [`MIN_CHANGE_PART`] each, within the room `used` outputs
    /// leave; the parts sum to `amount` exactly.
    fn change(&self, currency: Currency, amount: Amount, used: usize) -> Vec<Token> {
        if amount.is_zero() {
            return Vec::new();
        }
        let tiyn = amount.tiyn();
        let room = u64::try_from(MAX_OUTPUTS.saturating_sub(used)).unwrap_or(1).max(1);
        let wanted = u64::try_from(self.change_parts).unwrap_or(1).max(1);
        let parts = wanted.min(room).min((tiyn / MIN_CHANGE_PART).max(1));
        // parts >= 1 and each * parts <= tiyn: neither line can wrap.
        let each = tiyn / parts;
        let last = tiyn - each * (parts - 1);
        (0..parts)
            .map(|i| {
                let part = if i + 1 == parts { last } else { each };
                Token::standard(currency, Amount::from_tiyn(part), self.payer, self.host.clone())
            })
            .collect()
    }
}

fn total(inputs: &[(TokenId, Token)]) -> Result<Amount, NodeError> {
    Amount::checked_sum(inputs.iter().map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)
}

fn paid(payees: &[Payee]) -> Result<Amount, NodeError> {
    Amount::checked_sum(payees.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)
}

fn left(inputs: &[(TokenId, Token)], spent: Amount) -> Result<Amount, NodeError> {
    total(inputs)?
        .checked_sub(spent)
        .ok_or(NodeError::InsufficientFunds { requested: spent, available: total(inputs)? })
}

/// Issue: NBK creates DT (another central bank its currency) for a bank's DA (no inputs).
pub fn issue(d: &Draft, to: &Payee, cbs_reference: CbsRef, currency: Currency) -> Result<TxBody, NodeError> {
    let token = Token::standard(currency, to.amount, to.address, to.host.clone());
    d.body(&[], vec![token], Command::Issue { cbs_reference })
}

/// Redeem: the issuer destroys `amount` of the DT it holds.
pub fn redeem(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    amount: Amount,
    cbs_reference: CbsRef,
) -> Result<TxBody, NodeError> {
    let rest = left(inputs, amount)?;
    let outputs = d.change(Currency::DT, rest, 0);
    d.body(inputs, outputs, Command::Redeem { cbs_reference })
}

/// A standard transfer to one or several payees, change to the payer.
pub fn transfer(d: &Draft, inputs: &[(TokenId, Token)], payees: &[Payee]) -> Result<TxBody, NodeError> {
    transfer_in(d, Currency::DT, inputs, payees)
}

/// A standard transfer in `currency` (DT, or a stablecoin between its holders).
pub fn transfer_in(
    d: &Draft,
    currency: Currency,
    inputs: &[(TokenId, Token)],
    payees: &[Payee],
) -> Result<TxBody, NodeError> {
    let rest = left(inputs, paid(payees)?)?;
    let mut outputs: Vec<Token> =
        payees.iter().map(|p| Token::standard(currency, p.amount, p.address, p.host.clone())).collect();
    outputs.extend(d.change(currency, rest, outputs.len()));
    d.body(inputs, outputs, Command::Transfer)
}

fn reserve_token(d: &Draft, stablecoin: Currency, amount: Amount) -> Token {
    let mut token = Token::standard(Currency::DT, amount, d.payer, d.host.clone());
    token.encumbrance = Some(Encumbrance::Reserve(ReserveTerms { stablecoin }));
    token
}

/// Mint: the licensed issuer (the payer) puts `amount` of its standard DT
/// in `stablecoin`'s reserve and gets `amount` of the stablecoin.
pub fn mint(d: &Draft, inputs: &[(TokenId, Token)], stablecoin: Currency, amount: Amount) -> Result<TxBody, NodeError> {
    let rest = left(inputs, amount)?;
    let mut outputs =
        vec![Token::standard(stablecoin, amount, d.payer, d.host.clone()), reserve_token(d, stablecoin, amount)];
    outputs.extend(d.change(Currency::DT, rest, outputs.len()));
    d.body(inputs, outputs, Command::Mint { stablecoin })
}

/// Burn: the licensed issuer destroys `amount` of the stablecoin it holds
/// and gets the same DT back from the reserve; `inputs` are its stablecoin
/// and reserve tokens (each at least `amount`).
pub fn burn(d: &Draft, inputs: &[(TokenId, Token)], stablecoin: Currency, amount: Amount) -> Result<TxBody, NodeError> {
    let total_of = |f: &dyn Fn(&Token) -> bool| {
        Amount::checked_sum(inputs.iter().filter(|(_, t)| f(t)).map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)
    };
    let coins = total_of(&|t| t.currency == stablecoin)?;
    let reserve = total_of(&|t| t.currency == Currency::DT)?;
    let short = |available| NodeError::InsufficientFunds { requested: amount, available };
    let coin_rest = coins.checked_sub(amount).ok_or_else(|| short(coins))?;
    let reserve_rest = reserve.checked_sub(amount).ok_or_else(|| short(reserve))?;
    let mut outputs = vec![Token::standard(Currency::DT, amount, d.payer, d.host.clone())];
    if !reserve_rest.is_zero() {
        outputs.push(reserve_token(d, stablecoin, reserve_rest));
    }
    outputs.extend(d.change(stablecoin, coin_rest, outputs.len()));
    d.body(inputs, outputs, Command::Burn { stablecoin })
}

/// Marks funds by address: `amount` to the marking recipient (level 0) with
/// the rule's limits as its allowances.
pub fn mark_address(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    recipient: &Payee,
    rule: MarkingRule,
) -> Result<TxBody, NodeError> {
    let rest = left(inputs, recipient.amount)?;
    let allowances: Vec<Amount> = rule.levels.iter().map(|l| l.limit).collect();
    let marking = Marking::Address(AddressMarking {
        rule,
        level: 0,
        allowances: BoundedVec::new(allowances).map_err(NodeError::from)?,
    });
    let mut token = Token::standard(Currency::DT, recipient.amount, recipient.address, recipient.host.clone());
    token.marking = Some(marking);
    let mut outputs = vec![token];
    outputs.extend(d.change(Currency::DT, rest, outputs.len()));
    d.body(inputs, outputs, Command::MarkAddress)
}

/// Transfers address-marked funds to next-level recipients. The next level's
/// allowance is consumed by the payment; deeper allowances go to the payees
/// first come, first served (each gets at most its amount), the rest stays
/// with the change.
pub fn marked_transfer(d: &Draft, inputs: &[(TokenId, Token)], payees: &[Payee]) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Marking::Address(m)) = &first.marking else { return Err(NodeError::NothingToSpend) };
    let rule = m.rule.clone();
    let level = m.level;
    let depth = rule.depth();
    let mut available = vec![Amount::ZERO; m.allowances.len()];
    for (_, t) in inputs {
        if let Some(Marking::Address(tm)) = &t.marking {
            for (slot, a) in available.iter_mut().zip(tm.allowances.iter()) {
                *slot = slot.checked_add(*a).ok_or(NodeError::Overflow)?;
            }
        }
    }
    let paying = paid(payees)?;
    let next_left =
        available.first().copied().unwrap_or_default().checked_sub(paying).ok_or(NodeError::MarkingLimit {
            level: usize::from(level).saturating_add(1),
            requested: paying,
            available: available.first().copied().unwrap_or_default(),
        })?;
    let last = usize::from(level).saturating_add(1) == depth;
    let mut deeper: Vec<Amount> = available.iter().skip(1).copied().collect();
    let mut outputs = Vec::with_capacity(payees.len().saturating_add(1));
    for p in payees {
        let mut token = Token::standard(Currency::DT, p.amount, p.address, p.host.clone());
        if !last {
            let share: Vec<Amount> = deeper
                .iter_mut()
                .map(|rest| {
                    let give = (*rest).min(p.amount);
                    *rest = rest.saturating_sub(give);
                    give
                })
                .collect();
            token.marking = Some(Marking::Address(AddressMarking {
                rule: rule.clone(),
                level: level.saturating_add(1),
                allowances: BoundedVec::new(share).map_err(NodeError::from)?,
            }));
        }
        outputs.push(token);
    }
    let rest = left(inputs, paying)?;
    if !rest.is_zero() {
        let mut allowances = vec![next_left];
        allowances.extend(deeper);
        let mut change = Token::standard(Currency::DT, rest, d.payer, d.host.clone());
        change.marking = Some(Marking::Address(AddressMarking {
            rule,
            level,
            allowances: BoundedVec::new(allowances).map_err(NodeError::from)?,
        }));
        outputs.push(change);
    }
    d.body(inputs, outputs, Command::Transfer)
}

/// Marks funds with a registered parameter for `recipient`.
pub fn mark_parameter(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    recipient: &Payee,
    parameter: ParameterId,
) -> Result<TxBody, NodeError> {
    let rest = left(inputs, recipient.amount)?;
    let marking = Marking::Parameter(ParameterMarking {
        parameter: parameter.clone(),
        initiator: d.payer,
        initiator_node: d.host.clone(),
    });
    let mut token = Token::standard(Currency::DT, recipient.amount, recipient.address, recipient.host.clone());
    token.marking = Some(marking);
    let mut outputs = vec![token];
    outputs.extend(d.change(Currency::DT, rest, outputs.len()));
    d.body(inputs, outputs, Command::MarkParameter { parameter })
}

/// Pays parameter-marked funds under a contract; `unmark` for the end
/// supplier or a cash-out.
pub fn contract_payment(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    recipient: &Payee,
    contract: ContractNo,
    unmark: bool,
) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Marking::Parameter(m)) = first.marking.clone() else { return Err(NodeError::NothingToSpend) };
    let rest = left(inputs, recipient.amount)?;
    let mut paid_token = Token::standard(Currency::DT, recipient.amount, recipient.address, recipient.host.clone());
    if !unmark {
        paid_token.marking = Some(Marking::Parameter(m.clone()));
    }
    let mut outputs = vec![paid_token];
    if !rest.is_zero() {
        let mut change = Token::standard(Currency::DT, rest, d.payer, d.host.clone());
        change.marking = Some(Marking::Parameter(m.clone()));
        outputs.push(change);
    }
    d.body(inputs, outputs, Command::ContractPayment { parameter: m.parameter, contract })
}

/// Holds `amount` of the payer's standard funds under `hold`.
pub fn hold(d: &Draft, inputs: &[(TokenId, Token)], amount: Amount, hold: Hold) -> Result<TxBody, NodeError> {
    let rest = left(inputs, amount)?;
    let event = hold.event.clone();
    let mut held = Token::standard(Currency::DT, amount, d.payer, d.host.clone());
    held.encumbrance = Some(Encumbrance::Hold(hold));
    let mut outputs = vec![held];
    outputs.extend(d.change(Currency::DT, rest, outputs.len()));
    d.body(inputs, outputs, Command::Hold { event })
}

/// Releases `amount` of held funds to the hold's recipient; the rest returns
/// (single) or stays held (recurring).
pub fn release(d: &Draft, inputs: &[(TokenId, Token)], amount: Amount) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Encumbrance::Hold(h)) = first.encumbrance.clone() else { return Err(NodeError::NothingToSpend) };
    let rest = left(inputs, amount)?;
    let mut outputs = vec![Token::standard(Currency::DT, amount, h.recipient, h.recipient_node.clone())];
    if !rest.is_zero() {
        let mut back = Token::standard(Currency::DT, rest, d.payer, d.host.clone());
        if h.kind == dtenge_types::HoldKind::Recurring {
            back.encumbrance = Some(Encumbrance::Hold(h.clone()));
        }
        outputs.push(back);
    }
    d.body(inputs, outputs, Command::Release { event: h.event })
}

/// Returns held funds to the payer: after valid-until (`expire`) or on a
/// cancelled event.
pub fn unhold(d: &Draft, inputs: &[(TokenId, Token)], event: EventId, expire: bool) -> Result<TxBody, NodeError> {
    let back = d.change(Currency::DT, total(inputs)?, 0);
    let command = if expire { Command::Expire { event } } else { Command::CancelHold { event } };
    d.body(inputs, back, command)
}

/// Pays an e-invoice: net as standard, VAT as VAT tokens, own VAT first.
pub fn pay_invoice(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    seller: &Payee,
    net: Amount,
    vat: Amount,
    invoice: InvoiceId,
) -> Result<TxBody, NodeError> {
    let vat_in =
        Amount::checked_sum(inputs.iter().filter(|(_, t)| t.marking == Some(Marking::Vat)).map(|(_, t)| t.amount))
            .ok_or(NodeError::Overflow)?;
    let std_in = total(inputs)?.checked_sub(vat_in).ok_or(NodeError::Overflow)?;
    let vat_change = vat_in.saturating_sub(vat);
    let marked_from_standard = vat.saturating_sub(vat_in);
    let std_needed = net.checked_add(marked_from_standard).ok_or(NodeError::Overflow)?;
    let std_change = std_in
        .checked_sub(std_needed)
        .ok_or(NodeError::InsufficientFunds { requested: std_needed, available: std_in })?;
    let vat_token = |owner: Address, host: ParticipantId, amount| {
        let mut t = Token::standard(Currency::DT, amount, owner, host);
        t.marking = Some(Marking::Vat);
        t
    };
    let mut outputs = Vec::new();
    if !net.is_zero() {
        outputs.push(Token::standard(Currency::DT, net, seller.address, seller.host.clone()));
    }
    if !vat.is_zero() {
        outputs.push(vat_token(seller.address, seller.host.clone(), vat));
    }
    outputs.extend(d.change(Currency::DT, std_change, outputs.len()));
    if !vat_change.is_zero() {
        outputs.push(vat_token(d.payer, d.host.clone(), vat_change));
    }
    d.body(inputs, outputs, Command::PayInvoice { invoice })
}

/// Pays VAT tokens to the tax authority, where they become standard.
pub fn pay_vat(d: &Draft, inputs: &[(TokenId, Token)], authority: &Payee) -> Result<TxBody, NodeError> {
    let rest = left(inputs, authority.amount)?;
    let mut outputs = vec![Token::standard(Currency::DT, authority.amount, authority.address, authority.host.clone())];
    if !rest.is_zero() {
        let mut change = Token::standard(Currency::DT, rest, d.payer, d.host.clone());
        change.marking = Some(Marking::Vat);
        outputs.push(change);
    }
    d.body(inputs, outputs, Command::PayVat)
}

/// Reserves `amount` for debits by the grantee.
pub fn grant_mandate(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    amount: Amount,
    terms: MandateTerms,
) -> Result<TxBody, NodeError> {
    let rest = left(inputs, amount)?;
    let mandate = terms.mandate.clone();
    let mut reserved = Token::standard(Currency::DT, amount, d.payer, d.host.clone());
    reserved.encumbrance = Some(Encumbrance::Mandate(terms));
    let mut outputs = vec![reserved];
    outputs.extend(d.change(Currency::DT, rest, outputs.len()));
    d.body(inputs, outputs, Command::GrantMandate { mandate })
}

/// The grantee debits reserved funds to `payee`; `owner` and `owner_host`
/// receive the reserved change.
pub fn debit(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    payee: &Payee,
    owner: Address,
    owner_host: ParticipantId,
) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Encumbrance::Mandate(terms)) = first.encumbrance.clone() else { return Err(NodeError::NothingToSpend) };
    let rest = left(inputs, payee.amount)?;
    let mut outputs = vec![Token::standard(Currency::DT, payee.amount, payee.address, payee.host.clone())];
    if !rest.is_zero() {
        let mut change = Token::standard(Currency::DT, rest, owner, owner_host);
        change.encumbrance = Some(Encumbrance::Mandate(terms.clone()));
        outputs.push(change);
    }
    d.body(inputs, outputs, Command::Debit { mandate: terms.mandate })
}

/// Card clearing: the mandate's grantee (the issuing bank) pays
/// `acquirer.amount` of a card payment's held funds to the acquirer; the
/// rest returns to `owner` as standard money — a payment is captured once.
pub fn card_capture(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    acquirer: &Payee,
    owner: Address,
    owner_host: ParticipantId,
) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Encumbrance::Mandate(terms)) = first.encumbrance.clone() else { return Err(NodeError::NothingToSpend) };
    let rest = left(inputs, acquirer.amount)?;
    let mut outputs = vec![Token::standard(Currency::DT, acquirer.amount, acquirer.address, acquirer.host.clone())];
    if !rest.is_zero() {
        outputs.push(Token::standard(Currency::DT, rest, owner, owner_host));
    }
    d.body(inputs, outputs, Command::Debit { mandate: terms.mandate })
}

/// A partial reversal of a card hold (DE 95): the grantee returns all but
/// `keep` of the held funds to the owner as standard money, and `keep` stays
/// held to the owner under the same terms (a debit whose only payee is the
/// owner; the grantee signs, so the owner's key is not needed).
pub fn card_release(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    keep: Amount,
    owner: Address,
    owner_host: ParticipantId,
) -> Result<TxBody, NodeError> {
    let Some((_, first)) = inputs.first() else { return Err(NodeError::NothingToSpend) };
    let Some(Encumbrance::Mandate(terms)) = first.encumbrance.clone() else { return Err(NodeError::NothingToSpend) };
    let released = left(inputs, keep)?;
    if released.is_zero() || keep.is_zero() {
        return Err(NodeError::Invalid("a partial reversal releases part and keeps part".into()));
    }
    let held = Token {
        encumbrance: Some(Encumbrance::Mandate(terms.clone())),
        ..Token::standard(Currency::DT, keep, owner, owner_host.clone())
    };
    let outputs = vec![Token::standard(Currency::DT, released, owner, owner_host), held];
    d.body(inputs, outputs, Command::Debit { mandate: terms.mandate })
}

/// The owner takes reserved funds back.
pub fn revoke_mandate(d: &Draft, inputs: &[(TokenId, Token)], mandate: MandateId) -> Result<TxBody, NodeError> {
    let back = d.change(Currency::DT, total(inputs)?, 0);
    d.body(inputs, back, Command::RevokeMandate { mandate })
}

/// Collect: the host bank debits `to.amount` of the debtor's standard tokens
/// to the order's beneficiary under the authority's signed order; change
/// stays with the debtor (the draft's payer).
pub fn collect(
    d: &Draft,
    inputs: &[(TokenId, Token)],
    to: &Payee,
    order: dtenge_types::SignedOrder,
) -> Result<TxBody, NodeError> {
    let change = left(inputs, to.amount)?;
    let mut outputs = vec![Token::standard(Currency::DT, to.amount, to.address, to.host.clone())];
    outputs.extend(d.change(Currency::DT, change, outputs.len()));
    d.body(inputs, outputs, Command::Collect { order })
}

/// Rekey: every input again, owned by `new`, in the same order.
pub fn rekey(d: &Draft, inputs: &[(TokenId, Token)], new: Address) -> Result<TxBody, NodeError> {
    let outputs = inputs.iter().map(|(_, t)| Token { owner: new, ..t.clone() }).collect();
    d.body(inputs, outputs, Command::Rekey { old: d.payer, new })
}
