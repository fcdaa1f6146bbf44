//! # dtenge-ui — the web interface for Treasury staff and NBK operators
//!
//! Served by `dtenge serve` under `/ui/` (SPEC §7, seed Fig. 10–16):
//! static pages embedded in the binary ([`assets`]: HTML, CSS, one vanilla
//! JS module per section, RU/EN dictionaries; no CDN, no build step) and a
//! small session backend under `/ui/api/…`.
//!
//! ```text
//! browser ──cookie session──► /ui/api/… (this crate)
//!                               │ staff user → participant (TREASURY, NBK) + roles
//!                               │ maker-checker store (journaled)
//!                               ▼
//!                     dtenge-client, in process, signed with the participant's key
//!                               ▼
//!                     /api/v1/… (dtenge-api): the same signed, checked API as any bank system
//! ```
//!
//! Invariants: the backend never touches platform state directly — every
//! read and every operation goes through the signed API as the staff
//! member's participant; a request a maker prepared is executed only after
//! a *different* checker of the same participant approved it ([`store`]);
//! passwords are stored only as Argon2id hashes ([`staff`]).

pub mod assets;
pub mod error;
mod execute;
pub mod reports;
pub mod session;
pub mod staff;
pub mod store;
mod views;
pub mod wallet;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use dtenge_client::Client;
use dtenge_crypto::Signer;
use dtenge_net::Clock;
use dtenge_platform::Platform;
use dtenge_platform::spec::Keys;
use dtenge_types::ParticipantId;

pub use error::UiError;
pub use staff::{NewStaff, Staff, StaffRole, StaffUser};

/// The running web interface's shared state.
pub struct Ui {
    clients: BTreeMap<String, Client>,
    staff: Staff,
    sessions: session::Sessions,
    store: store::Store,
    clock: Arc<dyn Clock>,
    wallet: Option<Arc<wallet::Wallet>>,
}

impl Ui {
    /// The UI over `platform`, calling the API `router` (from
    /// [`dtenge_api::router`]) in process as each staff user's participant,
    /// with keys from the platform's data directory; the maker-checker
    /// journal lives in `<data>/ui/requests`.
    pub fn open(platform: &Platform, api: Router, staff: Staff) -> Result<Arc<Ui>, UiError> {
        let keys = Keys::at(&platform.data);
        let mut clients = BTreeMap::new();
        for user in &staff.users {
            if clients.contains_key(&user.participant) {
                continue;
            }
            let id = ParticipantId::new(&user.participant)
                .map_err(|e| UiError::BadInput(format!("staff {}: participant: {e}", user.login)))?;
            let key = keys
                .load(&user.participant)
                .map_err(|e| UiError::Storage(format!("key of {} for staff {}: {e}", user.participant, user.login)))?;
            let key: Arc<dyn Signer> = Arc::new(key);
            clients.insert(
                user.participant.clone(),
                Client::in_process(api.clone(), id, key, Arc::clone(&platform.clock)),
            );
        }
        let store = store::Store::open(&platform.data.join("ui").join("requests"))?;
        // The reference wallet opens DAs at one bank, calling the API as that bank.
        let wallet = match (ParticipantId::new(wallet::WALLET_BANK), keys.load(wallet::WALLET_BANK)) {
            (Ok(id), Ok(key)) if platform.node(wallet::WALLET_BANK).is_ok() => {
                let key: Arc<dyn Signer> = Arc::new(key);
                let client = Client::in_process(api.clone(), id, Arc::clone(&key), Arc::clone(&platform.clock));
                Some(Arc::new(wallet::Wallet::new(wallet::WALLET_BANK, client, key, Arc::clone(&platform.clock))))
            }
            _ => None,
        };
        Ok(Arc::new(Ui {
            clients,
            staff,
            sessions: session::Sessions::default(),
            store,
            clock: Arc::clone(&platform.clock),
            wallet,
        }))
    }

    fn now_ms(&self) -> u64 {
        self.clock.now().millis()
    }

    fn client(&self, participant: &str) -> Result<&Client, UiError> {
        self.clients
            .get(participant)
            .ok_or_else(|| UiError::Forbidden(format!("no API client for participant {participant}")))
    }

    /// Makes the maker-checker journal durable and closes it.
    pub fn close(&self) -> Result<(), UiError> {
        self.store.close()
    }
}

/// Opens the UI for `dtenge serve`: loads `ui-staff.json` from the data
/// directory or creates the demo staff (returned with their passwords, to
/// print once).
pub fn open_for_serve(platform: &Platform, api: Router) -> Result<(Arc<Ui>, Option<staff::Credentials>), UiError> {
    let (staff, created) = Staff::load_or_create_demo(&platform.data)?;
    Ok((Ui::open(platform, api, staff)?, created))
}

/// The routes under `/ui` and the reference wallet's under `/wallet` (merge them into the API router).
pub fn router(ui: Arc<Ui>) -> Router {
    let wallet = ui.wallet.clone();
    let routes = views::routes().merge(assets::routes()).with_state(ui);
    match wallet {
        Some(w) => routes.merge(wallet::router(w)),
        None => routes,
    }
}

/// Where the credentials of demo staff are written, for messages.
pub fn credentials_path(data: &Path) -> std::path::PathBuf {
    data.join(staff::CREDENTIALS_FILE)
}

/// The signed-in staff member of a request (session cookie; CSRF checks on
/// state-changing methods).
pub struct Me(pub StaffUser);

impl FromRequestParts<Arc<Ui>> for Me {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Arc<Ui>) -> Result<Self, UiError> {
        session::check_csrf(&parts.method, &parts.headers)?;
        let token = session::token(&parts.headers).ok_or(UiError::Unauthenticated)?;
        let login = ui.sessions.touch(&token, ui.now_ms()).ok_or(UiError::Unauthenticated)?;
        let user = ui.staff.user(&login).cloned().ok_or(UiError::Unauthenticated)?;
        Ok(Me(user))
    }
}
