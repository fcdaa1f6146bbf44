//! Which operation of the authorisation table (`dtenge_net::authz`) each
//! route is. The signed-request extractors look the matched route up here
//! and refuse the caller with 403 `operation_forbidden` unless the table
//! lets its kind ask for that operation; a route missing from this list is
//! refused for everyone (`tests/authz.rs` fails on it, and on a listed route
//! the OpenAPI document does not have).

use axum::http::Method;
use dtenge_net::authz::{self, Operation};

use crate::auth::Caller;
use crate::error::ApiError;

/// The health route: unsigned, outside the authorisation table.
pub const HEALTH: &str = "/api/v1/health";
/// The public proof of reserves: unsigned (its operation's scope is
/// [`authz::Scope::Unsigned`]), bounded in size and rate.
pub const RESERVES: &str = "/api/v1/stablecoins/{code}/reserves";

/// Whether the route `method path` is served without a signature: health,
/// and every route whose operation the table makes public.
pub fn unsigned(method: &Method, path: &str) -> bool {
    path == HEALTH || operation_of(method, path).is_some_and(|op| authz::rule(op).scope == authz::Scope::Unsigned)
}

/// Unsigned requests served per second, all callers together, beyond
/// health: each proof of reserves makes the oracle ask every node, so an
/// unsigned caller must not be able to make it do that without bound.
pub const PUBLIC_PER_SECOND: u32 = 20;

/// The budget of unsigned requests ([`PUBLIC_PER_SECOND`]), over the
/// process's monotonic clock (a rate bound, not a ledger time).
#[derive(Debug)]
pub struct PublicBudget {
    window: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl Default for PublicBudget {
    fn default() -> Self {
        PublicBudget { window: std::sync::Mutex::new((std::time::Instant::now(), 0)) }
    }
}

impl PublicBudget {
    /// Takes one request from this second's budget, or 429 `rate_limited`.
    pub fn take(&self) -> Result<(), ApiError> {
        let mut window = self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if now.duration_since(window.0) >= std::time::Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= PUBLIC_PER_SECOND {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("at most {PUBLIC_PER_SECOND} unsigned requests a second are served; try again in a second"),
            ));
        }
        window.1 = window.1.saturating_add(1);
        Ok(())
    }
}

/// Every signed route: method, path template (as in the OpenAPI document), operation.
pub const ROUTES: &[(&str, &str, Operation)] = &[
    ("POST", "/api/v1/accounts", Operation::OpenAccount),
    ("GET", "/api/v1/accounts", Operation::ListAccounts),
    ("GET", "/api/v1/accounts/{id}", Operation::ReadAccount),
    ("POST", "/api/v1/accounts/{id}/kyc", Operation::SetKyc),
    ("GET", "/api/v1/accounts/{id}/balance", Operation::ReadBalance),
    ("GET", "/api/v1/accounts/{id}/history", Operation::ReadHistory),
    ("GET", "/api/v1/accounts/{id}/notifications", Operation::ReadNotifications),
    ("GET", "/api/v1/directory/{iin_bin}", Operation::FindHolder),
    ("POST", "/api/v1/transfers", Operation::Transfer),
    ("POST", "/api/v1/offline/certificates", Operation::OfflineCertify),
    ("POST", "/api/v1/offline/loads", Operation::OfflineFund),
    ("POST", "/api/v1/offline/deposits", Operation::OfflineDeposit),
    ("GET", "/api/v1/offline/trust", Operation::OfflineTrust),
    ("POST", "/api/v1/transfers/prepare", Operation::PrepareTransfer),
    ("POST", "/api/v1/transfers/submit", Operation::SubmitSignedTransfer),
    ("GET", "/api/v1/transactions/{tx}", Operation::ReadTransaction),
    ("GET", "/api/v1/tokens/{token}/lineage", Operation::ReadLineage),
    ("GET", "/api/v1/notary/receipts/{tx}", Operation::ReadReceipt),
    ("POST", "/api/v1/conversions", Operation::RequestConversion),
    ("GET", "/api/v1/conversions", Operation::ListConversions),
    ("GET", "/api/v1/conversions/{id}", Operation::ReadConversion),
    ("POST", "/api/v1/conversions/{id}/approve", Operation::ApproveConversion),
    ("POST", "/api/v1/conversions/{id}/reject", Operation::RejectConversion),
    ("GET", "/api/v1/stats/supply", Operation::ReadSupply),
    ("GET", "/api/v1/stats/volumes", Operation::ReadVolumes),
    ("POST", "/api/v1/holds", Operation::Hold),
    ("POST", "/api/v1/holds/{event}/release", Operation::ReleaseHold),
    ("POST", "/api/v1/holds/{event}/cancel", Operation::CancelHold),
    ("POST", "/api/v1/holds/{event}/expire", Operation::ExpireHold),
    ("GET", "/api/v1/accounts/{id}/holds", Operation::ListHolds),
    ("POST", "/api/v1/markings/address", Operation::MarkByAddress),
    ("POST", "/api/v1/markings/parameter", Operation::MarkByParameter),
    ("POST", "/api/v1/transfers/marked", Operation::PayMarked),
    ("POST", "/api/v1/contract-payments", Operation::PayUnderContract),
    ("POST", "/api/v1/invoices/{id}/pay", Operation::PayInvoice),
    ("POST", "/api/v1/vat-payments", Operation::PayVat),
    ("POST", "/api/v1/mandates", Operation::GrantMandate),
    ("POST", "/api/v1/mandates/{mandate}/debit", Operation::DebitMandate),
    ("POST", "/api/v1/mandates/{mandate}/revoke", Operation::RevokeMandate),
    ("POST", "/api/v1/pvp", Operation::Pvp),
    ("POST", "/api/v1/oracle/providers", Operation::RegisterProvider),
    ("POST", "/api/v1/oracle/events", Operation::RegisterEvent),
    ("GET", "/api/v1/oracle/events", Operation::ListEvents),
    ("GET", "/api/v1/oracle/events/{id}", Operation::ReadEvent),
    ("POST", "/api/v1/oracle/events/{id}/occurrences", Operation::ReportOccurrence),
    ("POST", "/api/v1/oracle/events/{id}/cancel", Operation::CancelEvent),
    ("POST", "/api/v1/oracle/parameters", Operation::RegisterParameter),
    ("POST", "/api/v1/oracle/contracts", Operation::RegisterContract),
    ("GET", "/api/v1/oracle/contracts/{parameter}/{number}", Operation::ReadContract),
    ("POST", "/api/v1/oracle/contracts/{parameter}/{number}/amend", Operation::AmendContract),
    ("POST", "/api/v1/oracle/invoices", Operation::RegisterInvoice),
    ("GET", "/api/v1/oracle/invoices/{id}", Operation::ReadInvoice),
    ("POST", "/api/v1/oracle/fx-rates", Operation::SetRate),
    ("GET", "/api/v1/oracle/fx-rates/{base}/{quote}", Operation::ReadRate),
    ("GET", "/api/v1/accounts/{id}/profile", Operation::ReadProfile),
    ("POST", "/api/v1/accounts/{id}/profile", Operation::SetProfile),
    ("POST", "/api/v1/accounts/{id}/rekey", Operation::Rekey),
    ("POST", "/api/v1/accounts/{id}/close", Operation::CloseAccount),
    ("GET", "/api/v1/limits", Operation::ReadLimits),
    ("POST", "/api/v1/nbk/limits", Operation::PublishLimits),
    ("POST", "/api/v1/enforcement/orders", Operation::PlaceOrder),
    ("GET", "/api/v1/enforcement/orders", Operation::ListOrders),
    ("GET", "/api/v1/regulator/aggregates", Operation::ReadAggregates),
    ("GET", "/api/v1/regulator/large-payments", Operation::ReadLargePayments),
    ("GET", "/api/v1/regulator/marked-funds", Operation::ReadMarkedFunds),
    ("POST", "/api/v1/cards", Operation::LinkCard),
    ("GET", "/api/v1/cards/{token}", Operation::ReadCard),
    ("POST", "/api/v1/cards/messages", Operation::CardMessage),
    ("GET", "/api/v1/cards/payments/{rrn}", Operation::ReadCardPayment),
    ("POST", "/api/v1/cards/{token}/unlink", Operation::UnlinkCard),
    ("GET", "/api/v1/stablecoins", Operation::ListStablecoins),
    ("GET", "/api/v1/stablecoins/{code}/reserves", Operation::ReadReserves),
    ("POST", "/api/v1/stablecoins/{code}/mint", Operation::MintStablecoin),
    ("POST", "/api/v1/stablecoins/{code}/burn", Operation::BurnStablecoin),
    ("POST", "/api/v1/stablecoins/{code}/transfers", Operation::TransferStablecoin),
    ("POST", "/api/v1/qr/check", Operation::CheckQr),
    ("POST", "/api/v1/qr/pay", Operation::PayQr),
    ("POST", "/api/v1/qr/prepare", Operation::PrepareQrPayment),
    ("POST", "/api/v1/qr/submit", Operation::SubmitQrPayment),
];

/// The operation of a route, by method and path template.
pub fn operation_of(method: &Method, path: &str) -> Option<Operation> {
    ROUTES.iter().find(|(m, p, _)| *m == method.as_str() && *p == path).map(|(_, _, op)| *op)
}

/// Lets `caller` through the route `method path` only if the table allows its kind.
pub fn check(caller: &Caller, method: &Method, path: Option<&str>) -> Result<Operation, ApiError> {
    let Some(op) = path.and_then(|p| operation_of(method, p)) else {
        return Err(ApiError::forbidden_code(
            "operation_unlisted",
            format!(
                "{method} {} is not in the authorisation table, so nobody may call it (a server bug: report it)",
                path.unwrap_or("?")
            ),
        ));
    };
    if authz::permits(caller.role, op) {
        Ok(op)
    } else {
        Err(ApiError::forbidden_code(
            dtenge_api_types::OPERATION_FORBIDDEN,
            format!(
                "{} ({}) may not {method} {} (operation {}): see the authorisation table in docs/security.md",
                caller.id,
                kind_name(caller.role),
                path.unwrap_or("?"),
                op.name()
            ),
        ))
    }
}

/// A participant kind as people read it.
pub fn kind_name(kind: dtenge_net::Role) -> &'static str {
    use dtenge_net::Role;
    match kind {
        Role::Nbk => "NBK",
        Role::Stb => "bank",
        Role::Treasury => "Treasury",
        Role::CounterpartyCentralBank => "counterparty central bank",
        Role::Provider => "provider",
        Role::Notary => "notary",
        Role::Oracle => "oracle",
        Role::Directory => "directory",
        Role::StablecoinIssuer => "stablecoin issuer",
    }
}

/// The authorisation table as Markdown (the tables of `docs/security.md`):
/// every API endpoint, then every request between services, with ✓ for
/// each kind allowed and what is checked beyond the kind.
pub fn security_tables() -> String {
    let header = |first: &str| {
        let mut line = format!("| {first} |");
        let mut rule = String::from("|---|");
        for kind in authz::KINDS {
            line.push_str(&format!(" {} |", kind_name(kind)));
            rule.push_str(":-:|");
        }
        line.push_str(" checked beyond the kind |\n");
        rule.push_str("---|\n");
        line + &rule
    };
    let row = |first: String, op: Operation| {
        let rule = authz::rule(op);
        let mut line = format!("| {first} |");
        for kind in authz::KINDS {
            line.push_str(if rule.permits(kind) { " ✓ |" } else { " |" });
        }
        line.push_str(&format!(" {} |\n", rule.scope.describe()));
        line
    };
    let mut out = String::from("### API endpoints\n\n");
    out.push_str(&header("endpoint (operation)"));
    for (method, path, op) in ROUTES {
        out.push_str(&row(format!("`{method} {path}` ({})", op.name()), *op));
    }
    out.push_str("\n### Requests between services\n\n");
    out.push_str(&header("request"));
    let routed: Vec<Operation> = ROUTES.iter().map(|(_, _, op)| *op).collect();
    for op in Operation::ALL.iter().filter(|op| !routed.contains(op)) {
        out.push_str(&row(format!("`{}`", op.name()), *op));
    }
    out
}
