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
