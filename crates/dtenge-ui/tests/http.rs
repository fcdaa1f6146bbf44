//! The UI backend at the HTTP level, on a real platform: sign-in, CSRF and
//! session checks, maker-checker (a maker approving their own request is
//! refused), requests executed through the API, reports, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    json: Value,
    bytes: Vec<u8>,
    cookie: Option<String>,
    content_type: String,
}

async fn call(app: &axum::Router, method: &str, path: &str, cookie: Option<&str>, body: Option<Value>) -> Answer {
    let mut req = Request::builder().method(method).uri(path).header("x-dtenge-ui", "1").header("host", "localhost");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())).unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let cookie =
        res.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let content_type =
        res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap().to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, json, bytes, cookie, content_type }
}

async fn sign_in(app: &axum::Router, login: &str) -> String {
    let a = call(app, "POST", "/ui/api/login", None, Some(json!({"login": login, "password": common::PASSWORD}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let cookie = a.cookie.expect("session cookie");
    assert!(cookie.starts_with("dtenge_ui="));
    cookie
}

async fn ga_account(app: &axum::Router, cookie: &str) -> String {
    let a = call(app, "GET", "/ui/api/accounts", Some(cookie), None).await;
    a.json.as_array().unwrap().iter().find(|a| a["name"] == "Department of Agriculture (DAg)").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_needed_and_cross_site_requests_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::open(dir.path()).await;
    let app = &env.app;
    assert_eq!(call(app, "GET", "/ui/api/me", None, None).await.status, StatusCode::UNAUTHORIZED);
    let bad =
        call(app, "POST", "/ui/api/login", None, Some(json!({"login": "maker", "password": "nope nope nope"}))).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.cookie.is_none());
    let cookie = sign_in(app, "maker").await;
    let me = call(app, "GET", "/ui/api/me", Some(&cookie), None).await;
    assert_eq!(me.json["participant"], "TREASURY");
    // A POST without the UI's header (what a cross-site form sends) is refused.
    let req = Request::builder()
        .method("POST")
        .uri("/ui/api/requests")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"type": "issuance", "amount": "10"}).to_string()))
        .unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::FORBIDDEN);
    // The page and its modules are served by the binary.
    let page = call(app, "GET", "/ui/", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.bytes).contains("/ui/assets/app.js"));
    let js = call(app, "GET", "/ui/assets/sections/transfers.js", None, None).await;
    assert!(js.content_type.starts_with("text/javascript"));
    let out = call(app, "POST", "/ui/api/logout", Some(&cookie), None).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(call(app, "GET", "/ui/api/me", Some(&cookie), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maker_approving_their_own_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::open(dir.path()).await;
    let app = &env.app;
    // A head of department is both maker and checker: still not for their own request.
    let head = sign_in(app, "head").await;
    let prepared =
        call(app, "POST", "/ui/api/requests", Some(&head), Some(json!({"type": "issuance", "amount": "1 000,00"})))
            .await;
    assert_eq!(prepared.status, StatusCode::CREATED, "{}", prepared.json);
    let id = prepared.json["id"].as_str().unwrap().to_string();
    let own = call(app, "POST", &format!("/ui/api/requests/{id}/approve"), Some(&head), None).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.json);
    assert!(own.json["error"]["message"].as_str().unwrap().contains("prepared by you"), "{}", own.json);
    let own =
        call(app, "POST", &format!("/ui/api/requests/{id}/reject"), Some(&head), Some(json!({"reason": "x"}))).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    // A maker without the checker role may not decide anyone's request.
    let maker = sign_in(app, "maker").await;
    let not_checker = call(app, "POST", &format!("/ui/api/requests/{id}/approve"), Some(&maker), None).await;
    assert_eq!(not_checker.status, StatusCode::FORBIDDEN);
    // A checker may not prepare.
    let checker = sign_in(app, "checker").await;
    let p =
        call(app, "POST", "/ui/api/requests", Some(&checker), Some(json!({"type": "issuance", "amount": "5"}))).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Still under review, nothing sent to NBK.
    let r = call(app, "GET", &format!("/ui/api/requests/{id}"), Some(&head), None).await;
    assert_eq!(r.json["status"], "under_review");
    // A different checker approves: the conversion request reaches NBK.
    let ok = call(app, "POST", &format!("/ui/api/requests/{id}/approve"), Some(&checker), None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["status"], "success", "{}", ok.json);
    assert_eq!(ok.json["checker_name"], "Daniyar Omarov");
    let conversion = ok.json["result"].as_str().unwrap().to_string();
    let again = call(app, "POST", &format!("/ui/api/requests/{id}/approve"), Some(&checker), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // NBK's operator sees it; approves once the CBS confirmation is imported.
    let operator = sign_in(app, "operator").await;
    let overview = call(app, "GET", "/ui/api/nbk/overview", Some(&operator), None).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.json);
    assert!(overview.json["conversions"].as_array().unwrap().iter().any(|c| c["id"] == conversion.as_str()));
    assert!(overview.json["health"]["nodes"].as_array().unwrap().len() >= 5);
    // Each stablecoin's supply and reserve (nothing minted yet on this platform).
    let coins = overview.json["stablecoins"].as_array().unwrap();
    let kztc = coins.iter().find(|c| c["code"] == "KZTC").expect("the stablecoin is listed");
    assert_eq!((kztc["supply_tiyn"].as_u64(), kztc["reserve_tiyn"].as_u64()), (Some(0), Some(0)));
    assert_eq!(kztc["covered"], true);
    env.platform.tick().await;
    let approved =
        call(app, "POST", &format!("/ui/api/nbk/conversions/{conversion}/approve"), Some(&operator), None).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.json);
    assert_eq!(approved.json["status"]["status"], "success");
    assert_eq!(approved.json["decided_by"], "Yerlan Bekov");
    // Treasury staff cannot reach the NBK view.
    assert_eq!(call(app, "GET", "/ui/api/nbk/overview", Some(&checker), None).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_requests_run_through_the_api_and_show_in_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (pending_id, transfer_id) = {
        let env = common::open(dir.path()).await;
        let app = &env.app;
        let maker = sign_in(app, "maker").await;
        let checker = sign_in(app, "checker").await;
        let from = ga_account(app, &maker).await;

        // Open a DA for a legal entity by BIN.
        let bin = common::bin(40);
        let open = call(
            app,
            "POST",
            "/ui/api/requests",
            Some(&maker),
            Some(json!({"type": "open_account", "bin": bin, "name": "LLP Steppe Builders"})),
        )
        .await;
        assert_eq!(open.status, StatusCode::CREATED, "{}", open.json);
        let bad_bin = call(
            app,
            "POST",
            "/ui/api/requests",
            Some(&maker),
            Some(json!({"type": "open_account", "bin": "123456789012", "name": "X"})),
        )
        .await;
        assert_eq!(bad_bin.status, StatusCode::BAD_REQUEST);
        let done = call(
            app,
            "POST",
            &format!("/ui/api/requests/{}/approve", open.json["id"].as_str().unwrap()),
            Some(&checker),
            None,
        )
        .await;
        assert_eq!(done.json["status"], "success", "{}", done.json);
        let accounts = call(app, "GET", "/ui/api/accounts", Some(&maker), None).await;
        let opened = accounts.json.as_array().unwrap().iter().find(|a| a["iin_bin"] == bin.as_str()).unwrap().clone();
        assert_eq!((opened["kind"].as_str(), opened["kyc"].as_str()), (Some("legal_entity"), Some("verified")));

        // A marked transfer: to LLP General Contractor (STB1), which may pay on only to LLP Road Works (STB2).
        let unknown = call(
            app,
            "POST",
            "/ui/api/requests",
            Some(&maker),
            Some(json!({
            "type": "transfer", "from": from, "to_iin_bin": common::bin(4), "to_bank": "STB2", "amount": "10"})),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.json);
        assert!(unknown.json["error"]["message"].as_str().unwrap().contains("no digital account at STB2"));
        // The interface's own refusal: its code, and no platform code.
        assert_eq!(unknown.json["error"]["code"], "bad_input", "{}", unknown.json);
        assert!(unknown.json["error"].get("reason").is_none(), "{}", unknown.json);
        let marked = call(app, "POST", "/ui/api/requests", Some(&maker), Some(json!({
            "type": "transfer", "from": from, "to_iin_bin": common::bin(4), "to_bank": "STB1",
            "amount": "1 500,00", "memo": "Road repair, state contract 17",
            "marking": {"reference": "ROADS-2026", "allowed_iin_bin": common::bin(6), "allowed_bank": "STB2", "limit": "1 500"}
        }))).await;
        assert_eq!(marked.status, StatusCode::CREATED, "{}", marked.json);
        assert_eq!(marked.json["action"]["to"]["name"], "LLP General Contractor");
        let transfer_id = marked.json["id"].as_str().unwrap().to_string();
        let done = call(app, "POST", &format!("/ui/api/requests/{transfer_id}/approve"), Some(&checker), None).await;
        assert_eq!(done.json["status"], "success", "{}", done.json);

        // Too much: the API refuses, the request is Rejected with its reason.
        let big = call(app, "POST", "/ui/api/requests", Some(&maker), Some(json!({
            "type": "transfer", "from": from, "to_iin_bin": common::bin(4), "to_bank": "STB1", "amount": "999 999 999"}))).await;
        let refused = call(
            app,
            "POST",
            &format!("/ui/api/requests/{}/approve", big.json["id"].as_str().unwrap()),
            Some(&checker),
            None,
        )
        .await;
        assert_eq!(refused.json["status"], "rejected", "{}", refused.json);
        assert!(!refused.json["reason"].as_str().unwrap().is_empty());
        // With the platform's code, for the page to name it in its reader's language.
        assert_eq!(refused.json["reason_code"], "insufficient_funds", "{}", refused.json);

        // Filters and pages.
        let page = call(app, "GET", "/ui/api/requests?type=marked_transfer&status=success", Some(&maker), None).await;
        assert_eq!(page.json["total"], 1);
        let page =
            call(app, "GET", "/ui/api/requests?type=transfer,marked_transfer&per_page=1&page=2", Some(&maker), None)
                .await;
        assert_eq!((page.json["total"].as_u64(), page.json["items"].as_array().unwrap().len()), (Some(2), 1));

        // Main page: balances by kind.
        let home = call(app, "GET", "/ui/api/dashboard", Some(&maker), None).await;
        assert!(home.json["totals"]["total_tiyn"].as_u64().unwrap() > 0);
        assert!(!home.json["recent_operations"].as_array().unwrap().is_empty());
        // Notifications of the Treasury's DAs, newest first, each naming its DA.
        let notices = home.json["notifications"].as_array().unwrap();
        assert!(!notices.is_empty() && notices.len() <= 10, "{notices:?}");
        assert!(notices.iter().all(|n| n["account_name"].is_string() && n["kind"].is_string()), "{notices:?}");
        assert!(notices.windows(2).all(|w| w[0]["at_ms"].as_u64() >= w[1]["at_ms"].as_u64()), "{notices:?}");
        assert!(
            notices.iter().any(|n| n["kind"] == "incoming" && n["params"]["amount_tiyn"].is_string()),
            "{notices:?}"
        );

        // Reports: CSV and XLSX.
        let csv =
            call(app, "GET", "/ui/api/reports?type=operations&direction=outgoing&format=csv", Some(&maker), None).await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.content_type.starts_with("text/csv"));
        let text = String::from_utf8(csv.bytes).unwrap();
        assert!(text.contains("Road repair, state contract 17") && text.contains("1500.00"), "{text}");
        let incoming =
            call(app, "GET", "/ui/api/reports?type=operations&direction=incoming&format=csv", Some(&maker), None).await;
        assert!(!String::from_utf8(incoming.bytes).unwrap().contains("Road repair"));
        let xlsx = call(app, "GET", "/ui/api/reports?type=requests&format=xlsx&lang=ru", Some(&maker), None).await;
        assert_eq!(&xlsx.bytes[..2], b"PK");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx.bytes)).unwrap();
        let mut strings = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("xl/sharedStrings.xml").unwrap(), &mut strings).unwrap();
        assert!(strings.contains("LLP General Contractor") && strings.contains("Исполнитель"), "{strings}");

        // One left under review for the restart.
        let pending =
            call(app, "POST", "/ui/api/requests", Some(&maker), Some(json!({"type": "redemption", "amount": "100"})))
                .await;
        let pending_id = pending.json["id"].as_str().unwrap().to_string();
        env.ui.close().unwrap();
        env.platform.close().unwrap();
        (pending_id, transfer_id)
    };
    // Restart: pending and decided requests are still there.
    let env = common::open(dir.path()).await;
    let maker = sign_in(&env.app, "maker").await;
    let pending = call(&env.app, "GET", &format!("/ui/api/requests/{pending_id}"), Some(&maker), None).await;
    assert_eq!(pending.json["status"], "under_review");
    let transfer = call(&env.app, "GET", &format!("/ui/api/requests/{transfer_id}"), Some(&maker), None).await;
    assert_eq!(transfer.json["status"], "success");
    let checker = sign_in(&env.app, "checker").await;
    let done = call(&env.app, "POST", &format!("/ui/api/requests/{pending_id}/approve"), Some(&checker), None).await;
    assert_eq!(done.json["status"], "success", "{}", done.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nbk_operator_sees_the_regulator_view_and_treasury_staff_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::open(dir.path()).await;
    let app = &env.app;
    let maker = sign_in(app, "maker").await;
    let checker = sign_in(app, "checker").await;
    let operator = sign_in(app, "operator").await;
    let from = ga_account(app, &maker).await;

    // A marked payment of 1 500 DT and a plain one of 20 DT from the Treasury to LLP General Contractor (STB1).
    let marked = call(app, "POST", "/ui/api/requests", Some(&maker), Some(json!({
        "type": "transfer", "from": from, "to_iin_bin": common::bin(4), "to_bank": "STB1",
        "amount": "1 500,00", "memo": "Road repair, state contract 17",
        "marking": {"reference": "ROADS-2026", "allowed_iin_bin": common::bin(6), "allowed_bank": "STB2", "limit": "1 500"}
    }))).await;
    let small = call(
        app,
        "POST",
        "/ui/api/requests",
        Some(&maker),
        Some(json!({
        "type": "transfer", "from": from, "to_iin_bin": common::bin(4), "to_bank": "STB1", "amount": "20"})),
    )
    .await;
    for r in [&marked, &small] {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        let id = r.json["id"].as_str().unwrap();
        let done = call(app, "POST", &format!("/ui/api/requests/{id}/approve"), Some(&checker), None).await;
        assert_eq!(done.json["status"], "success", "{}", done.json);
    }

    // Treasury staff are refused, with a reason.
    for cookie in [&maker, &checker] {
        let refused = call(app, "GET", "/ui/api/nbk/regulator", Some(cookie), None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.json);
        assert_eq!(refused.json["error"]["code"], "forbidden");
        assert!(
            refused.json["error"]["message"].as_str().unwrap().contains("is not an NBK operator"),
            "{}",
            refused.json
        );
    }

    // The operator: threshold 1 000 DT catches the 1 500 DT payment, not the 20 DT one.
    let view = call(app, "GET", "/ui/api/nbk/regulator?threshold=1%20000", Some(&operator), None).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.json);
    assert_eq!(view.json["threshold_tiyn"], 100_000);
    let aggregates = view.json["aggregates"].as_array().unwrap();
    for bank in ["STB1", "STB2", "STB3", "TREASURY"] {
        assert!(aggregates.iter().any(|a| a["bank"] == bank), "{bank} missing: {}", view.json);
    }
    let treasury = aggregates.iter().find(|a| a["bank"] == "TREASURY").unwrap();
    let out: u64 = treasury["days"].as_array().unwrap().iter().map(|d| d["amount_out_tiyn"].as_u64().unwrap()).sum();
    assert!(out >= 152_000, "{treasury}");
    let stb1 = aggregates.iter().find(|a| a["bank"] == "STB1").unwrap();
    let received: u64 = stb1["days"].as_array().unwrap().iter().map(|d| d["amount_in_tiyn"].as_u64().unwrap()).sum();
    assert!(received >= 152_000, "{stb1}");
    // The demo set's funding payments are large too; ours is the 1 500 DT one, the 20 DT one is not listed.
    let large = view.json["large_payments"].as_array().unwrap();
    assert!(large.iter().all(|l| l["amount_tiyn"].as_u64().unwrap() >= 100_000), "{}", view.json);
    assert!(!large.iter().any(|l| l["amount_tiyn"] == 2_000), "{}", view.json);
    let ours = large
        .iter()
        .find(|l| l["bank"] == "TREASURY" && l["amount_tiyn"] == 150_000)
        .unwrap_or_else(|| panic!("the 1 500 DT payment is not listed: {}", view.json));
    assert_eq!(ours["payer_kind"], "government_agency");
    assert!(ours["at"].as_str().unwrap().ends_with("+05:00"), "Astana time: {ours}");
    let marking = view.json["marked_funds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["marking"] == "address:ROADS-2026")
        .unwrap_or_else(|| panic!("no traceability for ROADS-2026: {}", view.json));
    assert_eq!(marking["initiator_node"], "TREASURY");
    assert_eq!(marking["moved_tiyn"], 150_000);
    assert_eq!(marking["moves"][0]["tx"], ours["tx"]);
    assert_eq!(marking["moves"][0]["to_banks"], json!(["STB1"]));
    // No retail or counterparty detail: no names, no IINs/BINs.
    let text = view.json.to_string();
    assert!(!text.contains("LLP General Contractor") && !text.contains(&common::bin(4)), "{text}");

    // A higher threshold leaves ours out; a period before the payments shows no days.
    let high = call(app, "GET", "/ui/api/nbk/regulator?threshold=2000", Some(&operator), None).await;
    let high = high.json["large_payments"].as_array().unwrap();
    assert!(high.iter().all(|l| l["amount_tiyn"].as_u64().unwrap() >= 200_000), "{high:?}");
    assert!(!high.iter().any(|l| l["amount_tiyn"] == 150_000), "{high:?}");
    let before = call(app, "GET", "/ui/api/nbk/regulator?from_ms=0&to_ms=1000", Some(&operator), None).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.json);
    assert!(before.json["aggregates"].as_array().unwrap().iter().all(|a| a["days"] == json!([])), "{}", before.json);
    assert_eq!(before.json["large_payments"], json!([]));

    // Bad input is named.
    let bad = call(app, "GET", "/ui/api/nbk/regulator?threshold=lots", Some(&operator), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    assert!(bad.json["error"]["message"].as_str().unwrap().starts_with("threshold"), "{}", bad.json);
    let bad = call(app, "GET", "/ui/api/nbk/regulator?from_ms=10&to_ms=5", Some(&operator), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
}
