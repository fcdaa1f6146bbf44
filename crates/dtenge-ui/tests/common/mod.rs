//! A `dtenge serve`-equivalent platform for the UI tests: the demo set of
//! participants, the API router, the UI with staff whose passwords the test knows.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod driver;

use std::sync::Arc;

use dtenge_node::accounts::HolderKind;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::{Platform, PlatformOptions};
use dtenge_ui::{NewStaff, Staff, StaffRole, Ui};

pub const PASSWORD: &str = "test-password-1";

pub struct Env {
    pub platform: Arc<Platform>,
    pub ui: Arc<Ui>,
    pub app: axum::Router,
}

pub fn staff() -> Staff {
    let user = |login: &str, name: &str, participant: &str, roles: &[StaffRole]| NewStaff {
        login: login.into(),
        name: name.into(),
        participant: participant.into(),
        roles: roles.to_vec(),
        password: PASSWORD.into(),
    };
    Staff::from_new(&[
        user("maker", "Aigul Sadykova", "TREASURY", &[StaffRole::Maker]),
        user("checker", "Daniyar Omarov", "TREASURY", &[StaffRole::Checker]),
        user("head", "Saule Iskakova", "TREASURY", &[StaffRole::Maker, StaffRole::Checker]),
        user("operator", "Yerlan Bekov", "NBK", &[StaffRole::Operator]),
    ])
    .unwrap()
}

pub async fn open(data: &std::path::Path) -> Env {
    let platform = Arc::new(
        Platform::open(data, Arc::new(dtenge_net::SystemClock), PlatformOptions { durable: true }).await.unwrap(),
    );
    dtenge_platform::demo_set::ensure(&platform).await.unwrap();
    let api = dtenge_api::router(Arc::clone(&platform));
    let ui = Ui::open(&platform, api.clone(), staff()).unwrap();
    let app = api.merge(dtenge_ui::router(Arc::clone(&ui)));
    Env { platform, ui, app }
}

/// A legal entity's BIN from the demo set: `serial` 4 = LLP General Contractor (STB1), 6 = LLP Road Works (STB2).
pub fn bin(serial: u8) -> String {
    demo_iin_bin(HolderKind::LegalEntity, serial).to_string()
}

/// The app on a loopback port, with the platform's tick every 200 ms as
/// `dtenge serve` runs it; both stop when this is dropped.
pub struct Served {
    pub base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.ticker.abort();
        self.server.abort();
    }
}

pub async fn serve(env: &Env) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(listener, env.app.clone())));
    let platform = Arc::clone(&env.platform);
    let ticker = tokio::spawn(async move {
        loop {
            platform.tick().await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    Served { base, server, ticker }
}

/// `target/<dir>/`, made if missing: where a browser test saves screenshots.
pub fn screenshots(dir: &str) -> std::path::PathBuf {
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join(dir);
    std::fs::create_dir_all(&shots).unwrap();
    shots
}
