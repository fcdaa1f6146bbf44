//! Acts on a DA that its holder does not sign (issue #9): a collection order
//! executed by the DA's host bank on an authority's signed order, and key
//! rotation after re-identification.
//!
//! Both are signed by the host bank named in the tokens (`host`), whose key
//! the platform parameters list: one bank can never move another bank's
//! clients' tokens. A collection moves at most the ordered amount, standard
//! funds only, to the named beneficiary; change stays with the debtor at the
//! same host. A rotation changes nothing but the owner.

use dtenge_types::{Address, OrderAct, SignedOrder, Token};

use super::{Signers, View};
use crate::common::{conserve, single_owner, standard_inputs};
use crate::{Rejection, SignatureCheck, SignerRole};

/// The one host of all inputs and its registered key.
fn host_signer(v: &View<'_>) -> Result<Signers, Rejection> {
    let first = v.inputs.first().ok_or(Rejection::NoInputs { command: v.command })?;
    if let Some(input) = v.inputs.iter().position(|t| t.host != first.host) {
        return Err(Rejection::MixedHosts { input });
    }
    let key =
        v.ctx.params.hosts.get(&first.host).ok_or_else(|| Rejection::UnknownHost { host: first.host.to_string() })?;
    Ok(Signers::from([*key]))
}

pub(crate) fn collect(
    v: &View<'_>,
    signed: &SignedOrder,
    signatures: &mut Vec<SignatureCheck>,
) -> Result<Signers, Rejection> {
    let order = &signed.order;
    let OrderAct::Collect { amount, beneficiary } = &order.act else {
        return Err(Rejection::OrderMismatch { reason: "only a collection order debits a DA" });
    };
    if !v.ctx.params.authorities.contains(&order.authority) {
        return Err(Rejection::UnknownAuthority { authority: order.authority });
    }
    standard_inputs(v.inputs, v.command)?;
    let debtor = single_owner(v.inputs)?;
    if debtor != order.debtor {
        return Err(Rejection::OrderMismatch { reason: "the inputs are not the debtor's" });
    }
    if *beneficiary == debtor {
        return Err(Rejection::OrderMismatch { reason: "the beneficiary must differ from the debtor" });
    }
    let signers = host_signer(v)?;
    let host = &v.inputs[0].host;
    let mut collected: Vec<&Token> = Vec::new();
    for (output, token) in v.outputs.iter().enumerate() {
        if !token.is_standard() {
            return Err(Rejection::OutputNotStandard { output, command: v.command });
        }
        if token.owner == *beneficiary {
            collected.push(token);
        } else if token.owner != debtor || token.host != *host {
            return Err(Rejection::ChangeNotToOwner { output });
        }
    }
    let requested = crate::common::sum(collected.iter().copied())?;
    if requested.is_zero() {
        return Err(Rejection::OrderMismatch { reason: "nothing goes to the beneficiary" });
    }
    if requested > *amount {
        return Err(Rejection::CollectionExceedsOrder { ordered: *amount, requested });
    }
    conserve(v.inputs, v.outputs)?;
    signatures.push(SignatureCheck {
        public_key: order.authority,
        message: order.signing_message().to_vec(),
        signature: signed.signature,
        role: SignerRole::Transaction,
    });
    Ok(signers)
}

pub(crate) fn rekey(v: &View<'_>, old: &Address, new: &Address) -> Result<Signers, Rejection> {
    if old == new {
        return Err(Rejection::RekeyOutputMismatch { output: 0, reason: "the new key must differ from the old one" });
    }
    let owner = single_owner(v.inputs)?;
    if owner != *old {
        return Err(Rejection::WrongInputKind { input: 0, expected: "owned by the old key" });
    }
    let signers = host_signer(v)?;
    if v.outputs.len() != v.inputs.len() {
        return Err(Rejection::RekeyOutputMismatch {
            output: v.outputs.len().min(v.inputs.len()),
            reason: "one output per input, in the same order",
        });
    }
    for (output, (input, token)) in v.inputs.iter().zip(v.outputs.iter()).enumerate() {
        let expected = Token { owner: *new, ..input.clone() };
        if *token != expected {
            return Err(Rejection::RekeyOutputMismatch {
                output,
                reason: "must equal its input with only the owner changed to the new key",
            });
        }
    }
    Ok(signers)
}
