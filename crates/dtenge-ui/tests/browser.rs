//! The web interface in a real browser: headless Chromium driven through
//! chromedriver (WebDriver) against a `dtenge serve`-equivalent platform on
//! a free port. Signs in as a Treasury maker, opens a DA for a legal entity
//! by BIN, prepares a marked transfer, signs out; signs in as a checker,
//! approves both, sees Success; downloads a report as CSV and XLSX and
//! checks their contents; switches language; signs in as the NBK operator
//! and opens the overview and the Regulator page.
//! Saves a screenshot of every section in `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash .ci/test.sh` installs
//! them); without them the test fails and says how to install them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::driver::{INSTALL, click, fill, on_path, shot, start_driver, text, wait_for};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

async fn section(c: &Client, id: &str) {
    c.find(Locator::Css(&format!("#nav-{id}"))).await.unwrap().click().await.unwrap();
    wait_for(c, &format!("document.getElementById('main').dataset.ready === '{id}'"), &format!("section {id}")).await;
}

async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css)).await.unwrap().select_by_value(value).await.unwrap();
}

async fn sign_in(c: &Client, login: &str, landing: &str) {
    wait_for(c, "!document.getElementById('login-view').hidden", "the sign-in form").await;
    fill(c, "#login-user", login).await;
    fill(c, "#login-password", common::PASSWORD).await;
    click(c, "#login-submit").await;
    wait_for(c, &format!("document.getElementById('main').dataset.ready === '{landing}'"), "the first section").await;
}

async fn sign_out(c: &Client) {
    click(c, "#logout").await;
    wait_for(c, "!document.getElementById('login-view').hidden", "the sign-in form after signing out").await;
}

/// Downloads `href` in the browser's session; the body's bytes.
async fn download(c: &Client, href: &str) -> Vec<u8> {
    let script = "const [href, done] = arguments; fetch(href, {credentials: 'same-origin'})\
                  .then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status))\
                  .then(b => done(Array.from(new Uint8Array(b)))).catch(e => done('failed: ' + e));";
    let answer = c.execute_async(script, vec![json!(href)]).await.unwrap();
    let bytes = answer.as_array().unwrap_or_else(|| panic!("download of {href}: {answer}"));
    bytes.iter().map(|b| u8::try_from(b.as_u64().unwrap()).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn treasury_staff_work_through_the_browser() {
    let chromium = on_path("chromium").unwrap_or_else(|| panic!("chromium not found on PATH: {INSTALL}"));
    let shots = common::screenshots("ui-screenshots");

    let data = tempfile::tempdir().unwrap();
    let env = common::open(data.path()).await;
    let served = common::serve(&env).await;
    let base = served.base.clone();

    let (_driver, port) = start_driver().await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,768", "--lang=en-US"]}),
    );
    // chromedriver is on loopback: plain HTTP, no TLS stack to build.
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver ({e}): {INSTALL}"));

    c.goto(&format!("{base}/ui/")).await.unwrap();
    // The interface starts in Russian; switch to English on the sign-in page.
    wait_for(&c, "!document.getElementById('login-view').hidden", "the sign-in form").await;
    assert_eq!(text(&c, "#login-submit").await, "Войти");
    shot(&c, &shots, "00-sign-in-ru").await;
    click(&c, "#login-view [data-lang=en]").await;
    assert_eq!(text(&c, "#login-submit").await, "Sign in");

    // A wrong password is refused on the page.
    fill(&c, "#login-user", "maker").await;
    fill(&c, "#login-password", "wrong password").await;
    click(&c, "#login-submit").await;
    wait_for(&c, "!document.getElementById('login-error').hidden", "the sign-in error").await;

    // Maker: main page.
    sign_in(&c, "maker", "home").await;
    wait_for(&c, "document.getElementById('tz-note').textContent.includes('UTC+5')", "the time-zone note").await;
    shot(&c, &shots, "01-main-page").await;

    // Accounts: open a DA for a legal entity by BIN.
    section(&c, "accounts").await;
    fill(&c, "#acc-bin", &common::bin(41)).await;
    fill(&c, "#acc-name", "LLP Steppe Builders").await;
    click(&c, "#acc-submit").await;
    wait_for(
        &c,
        "document.querySelector('tr[data-request=\"R-000001\"] [data-status=\"under_review\"]')",
        "the DA request under review",
    )
    .await;
    shot(&c, &shots, "02-accounts").await;

    // Transfers: a marked transfer to LLP General Contractor (STB1), onward only to LLP Road Works (STB2).
    section(&c, "transfers").await;
    transfer_to_general_contractor(&c, "2 500,00", "Road repair, state contract 17").await;
    click(&c, "#tr-marked").await;
    fill(&c, "#tr-reference", "ROADS-2026").await;
    fill(&c, "#tr-allowed-iin", &common::bin(6)).await;
    select(&c, "#tr-allowed-bank", "STB2").await;
    fill(&c, "#tr-limit", "2 500").await;
    submitted(&c, "R-000002").await;
    let row = text(&c, "tr[data-request=\"R-000002\"]").await;
    assert!(row.contains("LLP General Contractor") && row.contains("2 500,00") && row.contains("ROADS-2026"), "{row}");
    assert!(row.contains("STB1") && row.contains(&common::bin(4)), "{row}");
    shot(&c, &shots, "03-transfers-maker").await;
    // A transfer of more than the Treasury holds: the platform refuses it once approved.
    transfer_to_general_contractor(&c, "900 000 000,00", "More than the Treasury holds").await;
    submitted(&c, "R-000003").await;

    // The maker's other sections.
    for (id, name) in [("issuance", "04-issuance"), ("redeeming", "05-redeeming"), ("holding", "06-holding")] {
        section(&c, id).await;
        shot(&c, &shots, name).await;
    }
    section(&c, "approvals").await;
    // No approve button on a maker's own requests.
    assert!(c.find(Locator::Css("#approve-R-000002")).await.is_err());
    sign_out(&c).await;

    // Checker: approves both.
    sign_in(&c, "checker", "home").await;
    section(&c, "approvals").await;
    shot(&c, &shots, "07-for-approval").await;
    for id in ["R-000001", "R-000002"] {
        click(&c, &format!("#approve-{id}")).await;
        wait_for(
            &c,
            &format!("document.getElementById('main').dataset.ready === 'approvals' && !document.querySelector('#approve-{id}') && document.querySelector('tr[data-request=\"{id}\"] [data-status=\"success\"]')"),
            &format!("{id} to succeed"),
        )
        .await;
    }
    click(&c, "#approve-R-000003").await;
    wait_for(
        &c,
        "document.getElementById('main').dataset.ready === 'approvals' && !document.querySelector('#approve-R-000003') && document.querySelector('tr[data-request=\"R-000003\"] [data-status=\"rejected\"]')",
        "R-000003 to be refused by the platform",
    )
    .await;
    section(&c, "transfers").await;
    wait_for(
        &c,
        "document.querySelector('tr[data-request=\"R-000002\"] [data-status=\"success\"]')",
        "Success in the transfers table",
    )
    .await;
    // The platform's refusal, named, then its own words and code.
    let refused = text(&c, "tr[data-request=\"R-000003\"] .reason").await;
    assert!(refused.starts_with("Not enough funds — ") && refused.contains("(insufficient_funds)"), "{refused}");
    shot(&c, &shots, "08-transfers-success").await;
    section(&c, "accounts").await;
    let accounts = text(&c, "#main").await;
    assert!(accounts.contains("LLP Steppe Builders") && accounts.contains("Authorised"), "{accounts}");
    section(&c, "home").await;
    // The DAs' notifications, in the page's language from their kind.
    let notices = text(&c, "#notifications").await;
    assert!(notices.contains("Incoming ") && notices.contains(" DT"), "{notices}");
    shot(&c, &shots, "09-main-page-after").await;

    // Reports: outgoing operations, downloaded as CSV and XLSX.
    section(&c, "reports").await;
    select(&c, "#rep-direction", "outgoing").await;
    click(&c, "#rep-show").await;
    wait_for(&c, "document.getElementById('report-table') && document.getElementById('report-table').innerText.includes('Road repair')", "the report on the page").await;
    shot(&c, &shots, "10-reports").await;
    let csv_href = c.find(Locator::Css("#rep-csv")).await.unwrap().attr("href").await.unwrap().unwrap();
    let csv = String::from_utf8(download(&c, &csv_href).await).unwrap();
    assert!(csv.contains("Road repair, state contract 17") && csv.contains("2500.00"), "{csv}");
    assert!(csv.contains("Time (Astana, UTC+5)"), "{csv}");
    let xlsx_href = c.find(Locator::Css("#rep-xlsx")).await.unwrap().attr("href").await.unwrap().unwrap();
    let xlsx = download(&c, &xlsx_href).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut strings = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/sharedStrings.xml").unwrap(), &mut strings).unwrap();
    assert!(strings.contains("Road repair, state contract 17"), "{strings}");
    let mut sheet = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(), &mut sheet).unwrap();
    assert!(sheet.contains("<v>2500</v>"), "the amount is a number in the sheet: {sheet}");

    // Switch to Russian: the page changes and remembers it.
    click(&c, "#lang-ru").await;
    wait_for(&c, "document.getElementById('nav-home').textContent === 'Главная'", "Russian menu").await;
    section(&c, "home").await;
    let notices = text(&c, "#notifications").await;
    assert!(notices.contains("Поступление ") && notices.contains("Что произошло"), "{notices}");
    section(&c, "transfers").await;
    let row = text(&c, "tr[data-request=\"R-000002\"]").await;
    assert!(row.contains("Успешно"), "{row}");
    let refused = text(&c, "tr[data-request=\"R-000003\"] .reason").await;
    assert!(refused.starts_with("Недостаточно средств — ") && refused.contains("(insufficient_funds)"), "{refused}");
    assert!(text(&c, "#tz-note").await.contains("Астана (UTC+5)"));
    shot(&c, &shots, "11-transfers-ru").await;
    c.refresh().await.unwrap();
    wait_for(
        &c,
        "document.getElementById('nav-home') && document.getElementById('nav-home').textContent === 'Главная'",
        "Russian after reload",
    )
    .await;
    click(&c, "#lang-en").await;
    sign_out(&c).await;

    // NBK operator: supply, volumes, conversions, node health.
    sign_in(&c, "operator", "nbk").await;
    let nbk = text(&c, "#main").await;
    assert!(nbk.contains("TREASURY") && nbk.contains("STB1") && nbk.contains("STB3"), "{nbk}");
    // A conversion the CBS refused: its code's name, then the CBS's own words without the prefix they are
    // stored with, then the code.
    let script = "const done = arguments[arguments.length - 1]; import('/ui/assets/refusals.js').then(m => \
                  done([m.refusalText('cbs_rejected', 'CBS rejected: account closed', 'en'), \
                  m.refusalText('cbs_rejected', 'CBS rejected: ', 'ru'), \
                  m.refusalText('operator_rejected', 'CBS rejected: x', 'en')]))";
    let shown = c.execute_async(script, vec![]).await.unwrap();
    assert_eq!(
        shown,
        json!([
            "The core banking system refused the conversion — account closed (cbs_rejected)",
            "Автоматизированная банковская система отказала в конвертации",
            "Rejected by the NBK operator — CBS rejected: x (operator_rejected)"
        ])
    );
    assert!(nbk.contains("Health of every node") && nbk.contains("DT in circulation"), "{nbk}");
    shot(&c, &shots, "12-nbk-operator").await;

    // Regulator page: aggregates by bank and day, large payments (threshold 1 000 DT catches the 2 500 DT
    // marked transfer), marked-funds traceability — without names or IINs.
    section(&c, "regulator").await;
    wait_for(&c, "document.querySelector('#reg-banks tr[data-bank=\"TREASURY\"]')", "the Treasury in the aggregates")
        .await;
    fill(&c, "#reg-threshold", "1 000").await;
    click(&c, "#reg-show").await;
    wait_for(&c, "document.querySelector('#reg-large tr[data-tx]')", "a large payment").await;
    let large = text(&c, "#reg-large").await;
    let ours = large.lines().find(|l| l.contains("2 500,00")).unwrap_or_else(|| panic!("no 2 500 DT payment: {large}"));
    assert!(ours.contains("TREASURY") && ours.contains("Government agency") && ours.contains("mark_address"), "{ours}");
    let days = text(&c, "#reg-days").await;
    assert!(days.contains("TREASURY") && days.contains("STB1"), "{days}");
    let marked = text(&c, "#reg-marked").await;
    assert!(marked.contains("address:ROADS-2026") && marked.contains("STB1"), "{marked}");
    let page = text(&c, "#main").await;
    assert!(!page.contains("LLP General Contractor") && !page.contains(&common::bin(4)), "{page}");
    shot(&c, &shots, "13-regulator").await;
    c.execute(
        "document.getElementById('reg-large').previousElementSibling.scrollIntoView(); window.scrollBy(0, -70);",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, &shots, "14-regulator-large-payments").await;
    sign_out(&c).await;

    c.close().await.unwrap();
    drop(served);
    for name in [
        "01-main-page",
        "02-accounts",
        "03-transfers-maker",
        "08-transfers-success",
        "10-reports",
        "12-nbk-operator",
        "13-regulator",
        "14-regulator-large-payments",
    ] {
        assert!(shots.join(format!("{name}.png")).exists());
    }
}

/// Fills the new transfer's payee (LLP General Contractor at STB1), amount and purpose.
async fn transfer_to_general_contractor(c: &Client, amount: &str, memo: &str) {
    fill(c, "#tr-to-iin", &common::bin(4)).await;
    select(c, "#tr-to-bank", "STB1").await;
    fill(c, "#tr-amount", amount).await;
    fill(c, "#tr-memo", memo).await;
}

/// Submits the transfer form and waits for request `id` under review.
async fn submitted(c: &Client, id: &str) {
    click(c, "#tr-submit").await;
    wait_for(
        c,
        &format!("document.querySelector('tr[data-request=\"{id}\"] [data-status=\"under_review\"]')"),
        &format!("{id} under review"),
    )
    .await;
}
