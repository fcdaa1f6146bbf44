//! DT-backed stablecoins (SPEC §9, docs/stablecoins.md): the licensed
//! issuer mints and burns (each against its reserve, enforced by the
//! kernel), holders pay each other in the stablecoin, NBK lists every
//! stablecoin's supply and reserve, and anyone reads the oracle-attested
//! proof of reserves.

use axum::Json;
use axum::extract::State;
use dtenge_crypto::Ed25519;
use dtenge_oracle::reserves::ReservesAttestation;
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_platform::spec::ids;
use dtenge_types::{Address, Amount, Currency, Encumbrance, ReserveTerms};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use dtenge_api_types::{ReservesView, StablecoinTransferRequest, StablecoinView, SupplyChangeRequest, TxOutcomeView};

use crate::auth::Caller;
use crate::dto::{add_tiyn, astana, positive_amount};
use crate::error::ApiError;
use crate::routes::accounts::own_account;
use crate::routes::oracle::ask;
use crate::routes::payments::{memo, outcome_view, resolve};
use crate::state::{ApiPath, Authenticated, Shared, Signed};

/// Routes of this module.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(reserves))
        .routes(routes!(mint))
        .routes(routes!(burn))
        .routes(routes!(transfer))
}

/// A registered stablecoin and its issuer, or 404.
fn stablecoin(state: &Shared, code: &str) -> Result<(Currency, Address), ApiError> {
    let currency =
        Currency::new(code).map_err(|e| ApiError::bad_request("bad_currency", format!("stablecoin code: {e}")))?;
    let issuer = state
        .platform
        .spec
        .params
        .stablecoins
        .get(&currency)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("{currency} is not a stablecoin of this platform")))?;
    Ok((currency, issuer))
}

/// Supply (the stablecoin in every node's vault) and reserve (DT in its
/// reserve, wherever held), read node by node.
fn figures(state: &Shared, currency: Currency, issuer: Address) -> Result<StablecoinView, ApiError> {
    let reserve_terms = Some(Encumbrance::Reserve(ReserveTerms { stablecoin: currency }));
    let (mut supply, mut reserve) = (0u64, 0u64);
    for node in state.platform.nodes.values() {
        let (s, r) = node.read(|st| {
            let (mut s, mut r) = (0u64, 0u64);
            for (_, stored) in st.vault.iter() {
                let t = &stored.token;
                if t.currency == currency {
                    s = add_tiyn(s, t.amount.tiyn(), &format!("the supply of {currency}"))?;
                } else if t.currency == Currency::DT && t.encumbrance == reserve_terms {
                    r = add_tiyn(r, t.amount.tiyn(), &format!("the reserve of {currency}"))?;
                }
            }
            Ok::<_, ApiError>((s, r))
        })?;
        supply = add_tiyn(supply, s, &format!("the supply of {currency}"))?;
        reserve = add_tiyn(reserve, r, &format!("the reserve of {currency}"))?;
    }
    Ok(StablecoinView {
        code: currency.to_string(),
        issuer: issuer.to_string(),
        supply_tiyn: supply,
        reserve_tiyn: reserve,
        covered: reserve >= supply,
        supply: Amount::from_tiyn(supply).to_string(),
        reserve: Amount::from_tiyn(reserve).to_string(),
    })
}

#[utoipa::path(get, path = "/api/v1/stablecoins", tag = "stablecoins",
    responses((status = 200, body = Vec<StablecoinView>), (status = 403, body = crate::error::ErrorBody)))]
async fn list(State(state): State<Shared>, _caller: Authenticated) -> Result<Json<Vec<StablecoinView>>, ApiError> {
    let coins: Vec<(Currency, Address)> =
        state.platform.spec.params.stablecoins.iter().map(|(c, a)| (*c, *a)).collect();
    Ok(Json(coins.into_iter().map(|(c, a)| figures(&state, c, a)).collect::<Result<_, _>>()?))
}

#[utoipa::path(get, path = "/api/v1/stablecoins/{code}/reserves", tag = "stablecoins",
    description = "Public, unsigned: the oracle's own count of the stablecoin's supply and reserve (it asks every participant node for its holdings) and its signature over that count. At most 20 unsigned requests a second are served (429 beyond).",
    params(("code" = String, Path, description = "The stablecoin's code, e.g. KZTC")),
    responses((status = 200, body = ReservesView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
async fn reserves(State(state): State<Shared>, ApiPath(code): ApiPath<String>) -> Result<Json<ReservesView>, ApiError> {
    let (currency, issuer) = stablecoin(&state, &code)?;
    // The API only relays: the request names the stablecoin, the oracle
    // counts and signs. It is sent as NBK, the platform's operator, whose
    // node runs this API; the caller is not known (no signature).
    let operator = Caller {
        id: dtenge_types::ParticipantId::new(ids::NBK)
            .map_err(|e| ApiError::unavailable("unavailable", e.to_string()))?,
        role: dtenge_net::Role::Nbk,
    };
    let signed = match ask(&state, &operator, OracleRequest::AttestReserves { stablecoin: currency }).await? {
        OracleAnswer::Reserves(signed) => signed,
        _ => return Err(ApiError::unavailable("unavailable", "the oracle answered something else")),
    };
    if signed.report.stablecoin != currency {
        return Err(ApiError::unavailable("unavailable", "the oracle counted another stablecoin"));
    }
    let oracle_key = state.platform.spec.participant(ids::ORACLE).map(|p| p.public_key);
    let verified = oracle_key == Some(signed.oracle) && signed.verify(&Ed25519);
    let (supply, reserve) = (signed.report.supply.tiyn(), signed.report.reserve.tiyn());
    Ok(Json(ReservesView {
        stablecoin: StablecoinView {
            code: currency.to_string(),
            issuer: issuer.to_string(),
            supply_tiyn: supply,
            reserve_tiyn: reserve,
            covered: reserve >= supply,
            supply: signed.report.supply.to_string(),
            reserve: signed.report.reserve.to_string(),
        },
        at_ms: signed.at.millis(),
        at: astana(signed.at),
        oracle: signed.oracle.to_string(),
        signing_message: hex::encode(ReservesAttestation::signing_message(&signed.report, signed.at)),
        signature: hex::encode(signed.signature.0),
        verified,
    }))
}

#[utoipa::path(post, path = "/api/v1/stablecoins/{code}/mint", tag = "stablecoins", request_body = SupplyChangeRequest,
    params(("code" = String, Path, description = "The stablecoin's code")),
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn mint(
    State(state): State<Shared>,
    ApiPath(code): ApiPath<String>,
    req: Signed<SupplyChangeRequest>,
) -> Result<Json<TxOutcomeView>, ApiError> {
    let (account, amount) = issuer_account(&state, &code, &req)?;
    let node = state.node_of(&req.caller)?;
    Ok(Json(outcome_view(node.mint(&account, amount, memo(&req.body.memo)?).await?)))
}

#[utoipa::path(post, path = "/api/v1/stablecoins/{code}/burn", tag = "stablecoins", request_body = SupplyChangeRequest,
    params(("code" = String, Path, description = "The stablecoin's code")),
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn burn(
    State(state): State<Shared>,
    ApiPath(code): ApiPath<String>,
    req: Signed<SupplyChangeRequest>,
) -> Result<Json<TxOutcomeView>, ApiError> {
    let (account, amount) = issuer_account(&state, &code, &req)?;
    let node = state.node_of(&req.caller)?;
    Ok(Json(outcome_view(node.burn(&account, amount, memo(&req.body.memo)?).await?)))
}

/// The caller's DA named in a mint or burn, checked to be the stablecoin's
/// licensed issuer, and the amount.
fn issuer_account(
    state: &Shared,
    code: &str,
    req: &Signed<SupplyChangeRequest>,
) -> Result<(dtenge_node::accounts::AccountId, Amount), ApiError> {
    let (currency, issuer) = stablecoin(state, code)?;
    let node = state.node_of(&req.caller)?;
    let account = own_account(node.id().as_str(), &req.body.account)?;
    let amount = positive_amount(req.body.amount_tiyn, "amount_tiyn")?;
    let address = node.account(&account)?.address;
    if address != issuer {
        return Err(ApiError::forbidden_code(
            "not_stablecoin_issuer",
            format!("{} is not the licensed issuer of {currency}", req.body.account),
        ));
    }
    Ok((account, amount))
}

#[utoipa::path(post, path = "/api/v1/stablecoins/{code}/transfers", tag = "stablecoins", request_body = StablecoinTransferRequest,
    params(("code" = String, Path, description = "The stablecoin's code")),
    responses((status = 200, body = TxOutcomeView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn transfer(
    State(state): State<Shared>,
    ApiPath(code): ApiPath<String>,
    req: Signed<StablecoinTransferRequest>,
) -> Result<Json<TxOutcomeView>, ApiError> {
    let (currency, _) = stablecoin(&state, &code)?;
    let node = state.node_of(&req.caller)?;
    let from = own_account(node.id().as_str(), &req.body.from)?;
    let to = resolve(&node, &req.body.to).await?;
    Ok(Json(outcome_view(node.pay_in(&from, currency, &to, memo(&req.body.memo)?).await?)))
}
