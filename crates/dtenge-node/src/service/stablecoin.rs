//! DT-backed stablecoins (SPEC §9) on the issuer's node: mint against DT,
//! burn releasing DT, and payments in a stablecoin between holders. Each is
//! a plan on the one pipeline; the kernel enforces that a mint puts the same
//! DT in the reserve and a burn releases the same DT (docs/stablecoins.md).

use dtenge_types::{Amount, Currency, Encumbrance, Memo, ReserveTerms, Token};

use super::plan::Signers;
use super::{NodeService, PayTo, TxOutcome};
use crate::NodeError;
use crate::accounts::{Account, AccountId};
use crate::build;
use crate::guard::Outflow;

fn standard_of(currency: Currency) -> impl Fn(&Token) -> bool {
    move |t: &Token| t.is_standard() && t.currency == currency
}

/// DT in `stablecoin`'s reserve.
fn in_reserve_of(stablecoin: Currency) -> impl Fn(&Token) -> bool {
    move |t: &Token| {
        t.currency == Currency::DT
            && t.marking.is_none()
            && t.encumbrance == Some(Encumbrance::Reserve(ReserveTerms { stablecoin }))
    }
}

impl NodeService {
    /// This node's count of `stablecoin`, for the oracle's count of
    /// reserves: the stablecoin in its vault (every holder) and the DT
    /// encumbered as its reserve. Sums only: no DA is named.
    pub fn stablecoin_count(
        &self,
        stablecoin: Currency,
    ) -> Result<dtenge_oracle::reserves::StablecoinCount, NodeError> {
        let reserve_terms = Some(Encumbrance::Reserve(ReserveTerms { stablecoin }));
        let state = self.state();
        let mut counts = dtenge_oracle::reserves::StablecoinCount::default();
        for (_, stored) in state.vault.iter() {
            let t = &stored.token;
            if t.currency == stablecoin {
                counts.supply = counts.supply.checked_add(t.amount).ok_or(NodeError::Overflow)?;
            } else if t.currency == Currency::DT && t.encumbrance == reserve_terms {
                counts.reserve = counts.reserve.checked_add(t.amount).ok_or(NodeError::Overflow)?;
            }
        }
        Ok(counts)
    }

    /// The stablecoin `account` is the licensed issuer of.
    fn stablecoin_of(&self, account: &Account) -> Result<Currency, NodeError> {
        self.config
            .params
            .stablecoins
            .iter()
            .find(|(_, a)| **a == account.address)
            .map(|(c, _)| *c)
            .ok_or_else(|| NodeError::Forbidden(format!("{} is not the licensed issuer of any stablecoin", account.id)))
    }

    /// The issuer mints `amount` of its stablecoin to its own DA, moving the
    /// same amount of its standard DT into the stablecoin's reserve.
    pub async fn mint(&self, issuer: &AccountId, amount: Amount, memo: Option<Memo>) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        let stablecoin = self.stablecoin_of(&account)?;
        if amount.is_zero() {
            return Err(NodeError::Invalid("a mint of nothing: the amount must be positive".into()));
        }
        // Not a payment: the DT stay the issuer's, out of its free use
        // (tier limits do not apply; a freeze or arrest does).
        let clearance = self.clear(&account, Outflow::Conversion { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), None, amount, standard_of(Currency::DT), |inputs| {
                build::mint(&draft, inputs, stablecoin, amount)
            })
            .await?;
        self.execute(plan).await
    }

    /// The issuer burns `amount` of its stablecoin it holds (a holder
    /// redeeming first pays it back), releasing the same DT from the reserve.
    pub async fn burn(&self, issuer: &AccountId, amount: Amount, memo: Option<Memo>) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        let stablecoin = self.stablecoin_of(&account)?;
        if amount.is_zero() {
            return Err(NodeError::Invalid("a burn of nothing: the amount must be positive".into()));
        }
        // No DT leaves the DA (they come back from the reserve); a closed or
        // frozen DA still cannot act.
        let clearance = self.clear(&account, Outflow::Conversion { amount: Amount::ZERO }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, memo);
        // Two kinds of tokens, each at least the amount, under one lock.
        let select = |vault: &crate::vault::Vault, clearance: &crate::guard::Clearance| {
            let mut inputs = vault.select(clearance, amount, standard_of(stablecoin))?;
            inputs.extend(vault.select(clearance, amount, in_reserve_of(stablecoin))?);
            if inputs.len() > dtenge_types::MAX_INPUTS {
                return Err(NodeError::Invalid(format!(
                    "burning {amount} needs {} tokens of the stablecoin and its reserve, more than the {} inputs \
                     of a transaction: burn less at a time",
                    inputs.len(),
                    dtenge_types::MAX_INPUTS
                )));
            }
            Ok(inputs)
        };
        let plan = self
            .plan_with(clearance, Signers::Custodial(keys), None, select, |inputs| {
                build::burn(&draft, inputs, stablecoin, amount)
            })
            .await?;
        self.execute(plan).await
    }

    /// A payment in `currency` other than DT (a stablecoin) to one or several
    /// DAs: a plain transfer on the pipeline. DT tier limits count nothing
    /// of it; a freeze or a closed DA still stops it.
    pub async fn pay_in(
        &self,
        from: &AccountId,
        currency: Currency,
        to: &[PayTo],
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        if currency == Currency::DT {
            return self.pay(from, to, memo).await;
        }
        if !self.config.params.stablecoins.contains_key(&currency) {
            return Err(NodeError::Invalid(format!(
                "{currency} is not a stablecoin of this platform: payments are in DT or a registered stablecoin"
            )));
        }
        let account = self.account(from)?;
        let total = Amount::checked_sum(to.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let payees = self.route(to).await?;
        let outflow = Outflow::Pay { amount: Amount::ZERO, standard: Amount::ZERO };
        self.pay_checked(&account, outflow, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let draft = self.draft(&account, memo);
            self.plan(clearance, Signers::Custodial(keys), None, total, standard_of(currency), |inputs| {
                build::transfer_in(&draft, currency, inputs, &payees)
            })
            .await
        })
        .await
    }
}
