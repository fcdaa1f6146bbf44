//! The reference wallet in a real browser (issue 21.1, 21.2, 21.5): headless
//! Chromium at 360 px wide, driven through chromedriver, against a `dtenge
//! serve`-equivalent platform. The page's RFC 9421 signature base is checked
//! against `dtenge_api_types::signing` (the test vector); a DA is opened with
//! a key made in the browser (WebCrypto Ed25519, non-extractable, in
//! IndexedDB) that the bank registers as the DA's address; the wallet pays a
//! dynamic QR read from an uploaded PNG (signed by the merchant's bank), is
//! refused paying it again, shows a merchant's dynamic QR and sees it paid.
//! Saves screenshots in `target/wallet-screenshots/` (the ones in
//! `docs/screenshots/` come from this test).
//!
//! Needs Debian's `chromium` and `chromium-driver`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::driver::{INSTALL, click, fill, on_path, shot, start_driver, wait_for};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dtenge_api_types::qr::{self, QrPayment};
use dtenge_api_types::signing::{self, SignatureParams};
use dtenge_client::{Client as ApiClient, QrPayRequest, Recipient, TransferRequest};
use dtenge_crypto::{SecretKey, Signer};
use dtenge_node::accounts::HolderKind;
use dtenge_platform::demo_set::demo_iin_bin;
use dtenge_platform::spec::Keys;
use dtenge_types::ParticipantId;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A Chromium session at 360 × 800; each session is its own profile (its own IndexedDB).
async fn session(port: u16, chromium: &Path) -> Client {
    session_with(port, chromium, &[]).await
}

/// A session whose Chromium also gets `more` arguments.
async fn session_with(port: u16, chromium: &Path, more: &[String]) -> Client {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=360,800",
        "--lang=en-US",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(more);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args,
            "mobileEmulation": {"deviceMetrics": {"width": 360, "height": 800, "pixelRatio": 1.0}}}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver ({e}): {INSTALL}"))
}

/// Chromium's arguments for a camera that films `video` (a Y4M file, read
/// when the page opens the camera), allowed without a prompt.
fn fake_camera(video: &Path) -> [String; 3] {
    [
        "--use-fake-ui-for-media-stream".to_string(),
        "--use-fake-device-for-media-stream".to_string(),
        format!("--use-file-for-fake-video-capture={}", video.display()),
    ]
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Every element the page marks `hidden` takes no room on screen, whatever
/// display the stylesheet gives its kind.
async fn nothing_hidden_shows(c: &Client) {
    let shown = js(
        c,
        "return [...document.querySelectorAll('[hidden]')].filter((e) => getComputedStyle(e).display !== 'none').map((e) => e.id || e.tagName);",
    )
    .await;
    assert_eq!(shown, json!([]), "marked hidden, yet displayed");
}

async fn message(c: &Client) -> String {
    js(c, "return document.getElementById('message').textContent;").await.as_str().unwrap_or_default().to_string()
}

/// `code` drawn at `scale` pixels a module with a 4-module quiet zone: its
/// side, and whether each pixel, row by row, is dark.
fn qr_pixels(code: &qrcode::QrCode, scale: usize) -> (usize, Vec<bool>) {
    let width = code.width();
    let side = (width + 8) * scale;
    let colors = code.to_colors();
    let dark = (0..side * side)
        .map(|i| {
            let (mx, my) = ((i % side / scale).wrapping_sub(4), (i / side / scale).wrapping_sub(4));
            mx < width && my < width && colors[my * width + mx] == qrcode::Color::Dark
        })
        .collect();
    (side, dark)
}

/// A camera's video of `text`'s QR code, as Chromium's fake camera reads
/// it (YUV4MPEG2, grey: the chroma planes at 128), two frames.
fn y4m_of(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).unwrap();
    // An even side (4 pixels a module), as 4:2:0 chroma needs.
    let (side, dark) = qr_pixels(&code, 4);
    let mut out = format!("YUV4MPEG2 W{side} H{side} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..2 {
        out.extend_from_slice(b"FRAME\n");
        out.extend(dark.iter().map(|&d| if d { 16u8 } else { 235 }));
        out.extend(std::iter::repeat_n(128u8, 2 * (side / 2) * (side / 2)));
    }
    out
}

/// A white PNG with no QR code in it.
fn blank_png() -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(64, 64, image::Luma([255])).write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

fn png_of(text: &str) -> Vec<u8> {
    let (side, dark) = qr_pixels(&qrcode::QrCode::new(text.as_bytes()).unwrap(), 6);
    let luma = dark.iter().map(|&d| if d { 0u8 } else { 255 }).collect();
    let img = image::GrayImage::from_raw(side as u32, side as u32, luma).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The page builds the same signature base and content digest as the Rust signer.
async fn signing_matches_the_rust_vector(c: &Client) {
    let key = SecretKey::from_seed([42; 32]);
    let body = br#"{"account":"STB1-7","amount":"12.50"}"#;
    let params =
        SignatureParams { created: 1_767_225_600, keyid: key.public_key().to_string(), nonce: "n0nce-123456".into() };
    let uri = "http://127.0.0.1:8080/wallet/api/pay/prepare";
    let rust = signing::sign(&key, "POST", uri, body, None, &params).unwrap();
    let page = c
        .execute_async(
            "const [body, created, keyid, nonce, uri, done] = arguments; const w = window.dtengeWallet; \
             w.contentDigest(body).then(d => done([d, w.signatureBase('POST', uri, d, w.signatureParams(created, keyid, nonce))]));",
            vec![
                json!(std::str::from_utf8(body).unwrap()),
                json!(params.created),
                json!(params.keyid),
                json!(params.nonce),
                json!(uri),
            ],
        )
        .await
        .unwrap();
    assert_eq!(page[0], json!(rust.content_digest));
    assert_eq!(page[1], json!(rust.base), "the page's signature base differs from dtenge_api_types::signing's");
    assert_eq!(format!("sig={}", page[1].as_str().unwrap().rsplit(": ").next().unwrap()), rust.signature_input);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_opens_a_da_with_a_browser_key_and_pays_a_qr_from_an_image() {
    let chromium = on_path("chromium").unwrap_or_else(|| panic!("chromium not found on PATH: {INSTALL}"));
    let shots = common::screenshots("wallet-screenshots");

    let data = tempfile::tempdir().unwrap();
    let env = common::open(data.path()).await;
    let served = common::serve(&env).await;
    let base = served.base.clone();
    let keys = Keys::at(&env.platform.data);
    let bank = |who: &str| -> ApiClient {
        let key: Arc<dyn Signer> = Arc::new(keys.load(who).unwrap());
        ApiClient::in_process(env.app.clone(), ParticipantId::new(who).unwrap(), key, Arc::clone(&env.platform.clock))
    };
    let (stb1, stb2) = (bank("STB1"), bank("STB2"));

    let (_driver, port) = start_driver().await;
    // The phone's camera films what the test writes to `camera` (read when the page opens the camera).
    let camera = data.path().join("camera.y4m");
    let c = session_with(port, &chromium, &fake_camera(&camera)).await;

    c.goto(&format!("{base}/wallet/")).await.unwrap();
    wait_for(&c, "document.body.dataset.ready === 'yes'", "the wallet page").await;
    signing_matches_the_rust_vector(&c).await;
    // 360 px: nothing wider than the screen.
    assert_eq!(js(&c, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));

    // Before a DA is opened only the opening form shows: not the tabs.
    assert_eq!(js(&c, "return getComputedStyle(document.getElementById('tabs')).display;").await, json!("none"));
    nothing_hidden_shows(&c).await;

    // Open a DA: the key is made in the browser.
    let iin = demo_iin_bin(HolderKind::Individual, 70).to_string();
    fill(&c, "#open-form [name=iin_bin]", &iin).await;
    fill(&c, "#open-form [name=name]", "Aliya Nurlanovna").await;
    shot(&c, &shots, "wallet-01-open").await;
    click(&c, "#open-form button").await;
    wait_for(
        &c,
        "!document.getElementById('tabs').hidden && document.getElementById('account-id').textContent",
        "the DA",
    )
    .await;
    let info = js(&c, "return window.dtengeWallet.keyInfo();").await;
    assert_eq!(info["extractable"], json!(false), "{info}");
    assert_eq!(info["algorithm"], json!("Ed25519"));
    let account_id = info["account"].as_str().unwrap().to_string();
    let me = stb1.account(&account_id).await.unwrap();
    assert_eq!((me.custody.as_str(), me.address.as_str()), ("client", info["publicHex"].as_str().unwrap()));
    assert_eq!(me.iin_bin, iin);
    // The key survives a reload (IndexedDB).
    c.refresh().await.unwrap();
    wait_for(&c, "document.body.dataset.ready === 'yes' && !document.getElementById('tabs').hidden", "the DA again")
        .await;

    // Money arrives from another holder; the home page shows it by kind.
    let farmer =
        env.platform.node("STB1").unwrap().accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].id.to_string();
    stb1.transfer(
        &TransferRequest { from: farmer, to: vec![Recipient::address(me.address.clone(), 500_000)], memo: None },
        None,
    )
    .await
    .unwrap();
    click(&c, "nav [data-tab=home]").await;
    wait_for(&c, "document.getElementById('balances').textContent.includes('5 000,00')", "the balance").await;
    shot(&c, &shots, "wallet-02-home").await;
    nothing_hidden_shows(&c).await;

    // A shop at STB2 shows a dynamic QR its bank signed; the wallet reads it from a PNG and pays.
    let shop = env.platform.node("STB2").unwrap().accounts_of(&demo_iin_bin(HolderKind::LegalEntity, 6))[0].clone();
    let shop_before = stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn;
    let order = QrPayment {
        address: shop.address.to_string(),
        bank: "STB2".into(),
        name: "Road Works Cafe".into(),
        city: "Astana".into(),
        amount_tiyn: Some(123_450),
        reference: Some("ORDER-77".into()),
        expires_at_s: Some(env.platform.clock.now().millis() / 1_000 + 600),
    };
    let payload = qr::encode_dynamic(&order, &keys.load("STB2").unwrap()).unwrap();
    let image = data.path().join("order-77.png");
    std::fs::write(&image, png_of(&payload)).unwrap();
    click(&c, "nav [data-tab=qr]").await;
    // An image with no QR code in it: named by the page, which reads images itself.
    let blank = data.path().join("blank.png");
    std::fs::write(&blank, blank_png()).unwrap();
    c.find(Locator::Css("#qr-form [name=image]")).await.unwrap().send_keys(blank.to_str().unwrap()).await.unwrap();
    click(&c, "#qr-form button").await;
    wait_for(&c, "document.getElementById('message').className === 'bad'", "the blank image refused").await;
    let none = message(&c).await;
    assert!(none.starts_with("Отказано: в изображении не найден QR-код"), "{none}");
    c.find(Locator::Css("#qr-form [name=image]")).await.unwrap().send_keys(image.to_str().unwrap()).await.unwrap();
    click(&c, "#qr-form button").await;
    wait_for(&c, "!document.getElementById('qr-found').hidden", "the QR read").await;
    let details = js(&c, "return document.getElementById('qr-details').textContent;").await;
    assert!(
        details.as_str().unwrap().contains("1 234,50") && details.as_str().unwrap().contains("ORDER-77"),
        "{details}"
    );
    shot(&c, &shots, "wallet-03-qr").await;
    click(&c, "#qr-pay").await;
    // The status in the page's language (Russian, the default).
    wait_for(&c, "document.getElementById('message').textContent.includes('(Успешно)')", "the payment").await;
    assert_eq!(js(&c, "return document.getElementById('message').className;").await, json!("good"));
    assert_eq!(stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn, shop_before + 123_450);
    shot(&c, &shots, "wallet-04-paid").await;

    // The same QR again: refused, nothing moves.
    c.find(Locator::Css("#qr-form [name=image]")).await.unwrap().send_keys(image.to_str().unwrap()).await.unwrap();
    click(&c, "#qr-form button").await;
    wait_for(&c, "document.getElementById('message').className === 'bad'", "the refusal").await;
    // Named in the page's language (Russian, the default), then the bank's own words and its code.
    let refusal = message(&c).await;
    assert!(refusal.starts_with("Отказано: Этот QR-код уже оплачен — "), "{refusal}");
    assert!(refusal.contains("already paid") && refusal.ends_with("(qr_already_paid)"), "{refusal}");
    assert_eq!(stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn, shop_before + 123_450);
    shot(&c, &shots, "wallet-05-already-paid").await;
    // A language switch names it again.
    switch_language(&c, "kk").await;
    wait_for(
        &c,
        "document.getElementById('message').textContent.startsWith('Бас тартылды: Бұл QR-код бұрын төленген — ')",
        "the refusal in Kazakh",
    )
    .await;
    switch_language(&c, "ru").await;

    // The next order, scanned with the camera: read in the page, checked by the bank, paid.
    let next = QrPayment { amount_tiyn: Some(1_000), reference: Some("ORDER-78".into()), ..order.clone() };
    std::fs::write(&camera, y4m_of(&qr::encode_dynamic(&next, &keys.load("STB2").unwrap()).unwrap())).unwrap();
    click(&c, "#qr-camera").await;
    wait_for(
        &c,
        "!document.getElementById('qr-found').hidden && document.getElementById('qr-details').textContent.includes('ORDER-78')",
        "the QR read by the camera",
    )
    .await;
    assert_eq!(js(&c, "return document.getElementById('qr-camera-view').hidden;").await, json!(true), "camera off");
    shot(&c, &shots, "wallet-05b-camera-read").await;
    click(&c, "#qr-pay").await;
    wait_for(&c, "document.getElementById('message').textContent.includes('(Успешно)')", "the scanned payment").await;
    assert_eq!(stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn, shop_before + 123_450 + 1_000);

    // The holder as a merchant: a dynamic QR signed by STB1, paid by a client of STB2, seen paid.
    click(&c, "nav [data-tab=merchant]").await;
    fill(&c, "#merchant-form [name=amount]", "25,00").await;
    fill(&c, "#merchant-form [name=reference]", "TABLE-5").await;
    click(&c, "#merchant-form button").await;
    wait_for(&c, "document.getElementById('merchant-payload').value.length > 0", "the merchant's QR").await;
    shot(&c, &shots, "wallet-06-merchant-qr").await;
    let shown = js(&c, "return document.getElementById('merchant-payload').value;").await;
    // The shop at STB2 (paid above) pays it.
    let paid = stb2
        .pay_qr(
            &QrPayRequest {
                from: shop.id.to_string(),
                payload: shown.as_str().unwrap().to_string(),
                amount_tiyn: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(paid.status.status, "success");
    wait_for(&c, "document.getElementById('merchant-status').className === 'good'", "the merchant seeing it paid")
        .await;
    shot(&c, &shots, "wallet-07-merchant-paid").await;
    // In English the merchant still sees the payment, not the waiting text.
    switch_language(&c, "en").await;
    wait_for(
        &c,
        "document.getElementById('merchant-status').textContent.startsWith('Payment received: ') \
         && document.getElementById('merchant-status').className === 'good'",
        "the merchant's payment in English",
    )
    .await;
    // The history names each line's status in the page's language, not by its wire word.
    click(&c, "nav [data-tab=home]").await;
    wait_for(
        &c,
        "document.getElementById('history').textContent.includes('−1 234,50 ') \
         && document.getElementById('history').textContent.includes('(Success)') \
         && !document.getElementById('history').textContent.includes('(success)')",
        "the history in English",
    )
    .await;
    // Notifications too: worded from their kind and particulars, not the node's English sentence.
    wait_for(
        &c,
        "document.getElementById('notifications').textContent.includes('Incoming ') \
         && !document.getElementById('notifications').textContent.includes(' (')",
        "the notifications in English",
    )
    .await;

    // Receive: my static QR; switch to Kazakh.
    click(&c, "nav [data-tab=receive]").await;
    wait_for(&c, "document.getElementById('receive-address').textContent.length === 64", "my QR").await;
    switch_language(&c, "kk").await;
    wait_for(&c, "document.querySelector('nav [data-tab=receive]').textContent === 'Қабылдау'", "Kazakh").await;
    assert_eq!(js(&c, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));
    shot(&c, &shots, "wallet-08-receive-kk").await;
    click(&c, "nav [data-tab=home]").await;
    wait_for(
        &c,
        "document.getElementById('notifications').textContent.includes('Түсім ')",
        "the notifications in Kazakh",
    )
    .await;

    c.close().await.unwrap();
    drop(served);
}

/// Sets (or lifts) chromedriver's network emulation for a session: `offline`
/// makes every request of that browser fail, the API's origin included.
async fn network(c: &Client, driver_port: u16, offline: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let id = c.session_id().await.unwrap().expect("a session id");
    let path = format!("/session/{id}/chromium/network_conditions");
    let (method, body) = if offline {
        (
            "POST",
            json!({"network_conditions": {"offline": true, "latency": 0, "download_throughput": 1_048_576, "upload_throughput": 1_048_576}})
                .to_string(),
        )
    } else {
        ("DELETE", String::new())
    };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", driver_port)).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{driver_port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    // chromedriver may keep the connection open: read the head, then Content-Length bytes.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("chromedriver answers within 10 s")
            .unwrap();
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if n == 0 || answer.len() >= head_end + 4 + length {
                break;
            }
        } else if n == 0 {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "chromedriver network conditions: {answer}");
}

/// Runs an async script whose last argument is the callback; answers what it passed.
async fn js_async(c: &Client, script: &str) -> Value {
    c.execute_async(script, vec![]).await.unwrap()
}

/// Whether this page can reach the server now (a signed wallet call and a plain GET).
async fn reaches_server(c: &Client) -> bool {
    let r = js_async(
        c,
        "const done = arguments[0]; fetch('/wallet/', {cache: 'no-store'}).then(() => done('reached'), (e) => done('failed: ' + e));",
    )
    .await;
    r.as_str().unwrap() == "reached"
}

fn clear_message() -> &'static str {
    "const m = document.getElementById('message'); m.textContent = ''; m.className = ''; return true;"
}

async fn open_da(c: &Client, base: &str, iin: &str, name: &str) -> Value {
    c.goto(&format!("{base}/wallet/")).await.unwrap();
    wait_for(c, "document.body.dataset.ready === 'yes'", "the wallet page").await;
    fill(c, "#open-form [name=iin_bin]", iin).await;
    fill(c, "#open-form [name=name]", name).await;
    click(c, "#open-form button").await;
    wait_for(
        c,
        "!document.getElementById('tabs').hidden && document.getElementById('account-id').textContent",
        "the DA",
    )
    .await;
    js(c, "return window.dtengeWallet.keyInfo();").await
}

async fn total(bank: &ApiClient, da: &str) -> u64 {
    bank.balance(da).await.unwrap().total_tiyn
}

/// Scrolls to the purse's status.
async fn top(c: &Client) {
    js(c, "window.scrollTo(0, 0); return true;").await;
}

/// Picks `lang` in the page's language menu.
async fn switch_language(c: &Client, lang: &str) {
    c.find(Locator::Css("#lang")).await.unwrap().select_by_value(lang).await.unwrap();
}

/// Waits for the page's message after an action: its class (`good` or
/// `bad`) and its text.
async fn said(c: &Client, what: &str) -> (String, String) {
    wait_for(c, "document.getElementById('message').className !== ''", what).await;
    let class = js(c, "return document.getElementById('message').className;").await;
    (class.as_str().unwrap_or_default().to_string(), message(c).await)
}

/// Clicks `selector` with the message cleared; what the page then says.
async fn answer_to(c: &Client, selector: &str, what: &str) -> (String, String) {
    js(c, clear_message()).await;
    click(c, selector).await;
    said(c, what).await
}

/// Picks `file` in the offline receive form's image input; what the page then says.
async fn scanned(c: &Client, file: &Path) -> (String, String) {
    js(c, clear_message()).await;
    let input = c.find(Locator::Css("#offline-receive-form [name=image]")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    said(c, "the image read").await
}

/// The offline receive form's payment text box.
const PAYMENT_BOX: &str = "document.querySelector('#offline-receive-form [name=payment]')";

async fn purse_text(c: &Client) -> String {
    js(c, "return document.getElementById('purse-status').textContent;").await.as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_wallets_pay_offline_with_the_network_cut_then_deposit_and_settle() {
    use dtenge_client::DepositChain;
    use dtenge_offline::{Purpose, decode_chain, encode_payment, verify_chain};

    let chromium = on_path("chromium").unwrap_or_else(|| panic!("chromium not found on PATH: {INSTALL}"));
    let shots = common::screenshots("wallet-screenshots");
    let data = tempfile::tempdir().unwrap();
    let env = common::open(data.path()).await;
    let served = common::serve(&env).await;
    let base = served.base.clone();
    let keys = Keys::at(&env.platform.data);
    let key: Arc<dyn Signer> = Arc::new(keys.load("STB1").unwrap());
    let stb1 = ApiClient::in_process(
        env.app.clone(),
        ParticipantId::new("STB1").unwrap(),
        key,
        Arc::clone(&env.platform.clock),
    );
    let desk = Arc::clone(env.platform.offline_desk(&ParticipantId::new("STB1").unwrap()).unwrap());

    // Two people, two browser profiles.
    let (_driver, port) = start_driver().await;
    // Bob's camera films what the test writes to `camera` (read when the page opens the camera).
    let camera = data.path().join("camera.y4m");
    let (alia, bob) = (session(port, &chromium).await, session_with(port, &chromium, &fake_camera(&camera)).await);
    let alia_info =
        open_da(&alia, &base, &demo_iin_bin(HolderKind::Individual, 71).to_string(), "Aliya Serikovna").await;
    let bob_info = open_da(&bob, &base, &demo_iin_bin(HolderKind::Individual, 72).to_string(), "Bolat Askarov").await;
    let (alia_da, bob_da) =
        (alia_info["account"].as_str().unwrap().to_string(), bob_info["account"].as_str().unwrap().to_string());
    let farmer =
        env.platform.node("STB1").unwrap().accounts_of(&demo_iin_bin(HolderKind::Individual, 5))[0].id.to_string();
    stb1.transfer(
        &TransferRequest {
            from: farmer,
            to: vec![Recipient::address(alia_info["publicHex"].as_str().unwrap().to_string(), 500_000)],
            memo: None,
        },
        None,
    )
    .await
    .unwrap();

    // Online: both set up a purse (device key made in the browser, certified by STB1); Alia loads 300.
    for c in [&alia, &bob] {
        click(c, "nav [data-tab=offline]").await;
        let (class, text) = answer_to(c, "#purse-setup", "the purse set up").await;
        assert_eq!(class, "good", "{text}");
    }
    let device_of = |c: &Client| {
        let c = c.clone();
        async move {
            js_async(&c, "const done = arguments[0]; window.dtengeWallet.purse.deviceInfo().then(done, (e) => done({error: String(e)}));")
                .await
        }
    };
    let (alia_device, bob_device) = (device_of(&alia).await, device_of(&bob).await);
    for d in [&alia_device, &bob_device] {
        assert_eq!((d["extractable"].clone(), d["algorithm"].clone()), (json!(false), json!("Ed25519")), "{d}");
    }
    assert_ne!(alia_device["publicHex"], alia_info["publicHex"], "the device key is not the DA's key");
    let reserve = desk.reserve().await.unwrap().id.to_string();
    let reserve_before = total(&stb1, &reserve).await;
    fill(&alia, "#purse-load-form [name=amount]", "300,00").await;
    let (class, text) = answer_to(&alia, "#purse-load-form button", "the load").await;
    assert_eq!(class, "good", "{text}");
    assert!(purse_text(&alia).await.contains("300,00"), "{}", purse_text(&alia).await);
    assert_eq!(total(&stb1, &alia_da).await, 500_000 - 30_000);
    assert_eq!(total(&stb1, &reserve).await, reserve_before + 30_000);
    top(&alia).await;
    shot(&alia, &shots, "wallet-offline-01-loaded").await;

    // The network is cut for both: the server cannot be reached while they exchange.
    network(&alia, port, true).await;
    network(&bob, port, true).await;
    assert!(!reaches_server(&alia).await && !reaches_server(&bob).await, "the network is not cut");

    // Alia pays Bob's device 120 offline; the payment is a QR code, and text (NFC-sized).
    let bob_key = bob_device["publicHex"].as_str().unwrap().to_string();
    fill(&alia, "#offline-pay-form [name=payee]", &bob_key).await;
    fill(&alia, "#offline-pay-form [name=amount]", "120,00").await;
    let (class, text) = answer_to(&alia, "#offline-pay-form button", "the offline payment").await;
    assert_eq!(class, "good", "{text}");
    let payment = js(&alia, "return document.getElementById('offline-out').value;").await.as_str().unwrap().to_string();
    assert!(purse_text(&alia).await.contains("180,00"), "{}", purse_text(&alia).await);
    js(&alia, "document.getElementById('offline-pay-form').scrollIntoView(); return true;").await;
    shot(&alia, &shots, "wallet-offline-02-signed").await;

    // JS ↔ Rust: the bytes the page built decode and verify with dtenge-offline as a payment to Bob's device.
    let bytes = hex::decode(&payment).unwrap();
    println!("offline payment built in the browser: {} bytes", bytes.len());
    let chain = decode_chain(&bytes).expect("dtenge-offline decodes the page's chain");
    assert_eq!(encode_payment(&chain).unwrap(), bytes, "re-encoded by Rust to the same bytes, ≤ 1 KiB");
    let receiver: dtenge_crypto::PublicKey = bob_key.parse().unwrap();
    let holding = verify_chain(&chain, desk.trust(), Purpose::Payment { receiver }, env.platform.clock.now())
        .expect("dtenge-offline verifies the page's chain");
    assert_eq!(holding.amount(), 12_000);

    // Alia's browser has no camera: the page says so, and shows no camera view.
    let (class, text) = answer_to(&alia, "#offline-camera", "the camera refused").await;
    assert_eq!(class, "bad", "{text}");
    assert!(text.contains("камеру открыть нельзя"), "{text}");
    assert_eq!(js(&alia, "return document.getElementById('offline-camera-view').hidden;").await, json!(true));

    // The QR code Alia's page drew, as an image of her screen would give it.
    let codes = js(&alia, "return [...document.querySelectorAll('#offline-qr img')].map(i => i.src);").await;
    let codes = codes.as_array().unwrap();
    assert_eq!(codes.len(), 1, "one QR code per chain, one chain: {codes:?}");
    let gif = codes[0].as_str().unwrap().strip_prefix("data:image/gif;base64,").expect("a GIF drawn in the page");
    let image = data.path().join("offline-payment.gif");
    std::fs::write(&image, base64::Engine::decode(&base64::engine::general_purpose::STANDARD, gif).unwrap()).unwrap();

    // In English, Alia's page says its last message again, and the signed payment's size and code.
    switch_language(&alia, "en").await;
    wait_for(
        &alia,
        "document.getElementById('message').textContent.startsWith('Refused: no camera can be opened in this browser')",
        "Alia's refusal in English",
    )
    .await;
    wait_for(
        &alia,
        "document.getElementById('offline-size').textContent.endsWith(' bytes') \
         && document.querySelector('#offline-qr img').alt === 'QR code 1/1'",
        "the signed payment's size and code in English",
    )
    .await;

    // An image with no QR code in it is named as such.
    let blank = data.path().join("blank.png");
    std::fs::write(&blank, blank_png()).unwrap();
    let (class, text) = scanned(&bob, &blank).await;
    assert_eq!(class, "bad", "{text}");
    assert!(text.contains("QR"), "{text}");

    // Bob, still offline: a tampered copy is refused by the page's own check; the real one, read by
    // his page from the image of Alia's QR code, is accepted, pending.
    let mut tampered = bytes.clone();
    let at = tampered.len() - 10;
    tampered[at] ^= 1;
    let pasted = || format!("return {PAYMENT_BOX}.value;");
    for (text, good) in [(hex::encode(&tampered), false), (payment.clone(), true)] {
        let put = format!("{PAYMENT_BOX}.value = arguments[0]; return true;");
        bob.execute(&put, vec![json!(if good { "" } else { text.as_str() })]).await.unwrap();
        if good {
            let (class, said) = scanned(&bob, &image).await;
            assert_eq!(class, "good", "{said}");
            assert_eq!(js(&bob, &pasted()).await, json!(text), "the page read the payment from its QR code");

            // The same payment through the camera's live view: Bob films Alia's screen.
            bob.execute(&put, vec![json!("")]).await.unwrap();
            std::fs::write(&camera, y4m_of(&text.to_uppercase())).unwrap();
            let (class, said) = answer_to(&bob, "#offline-camera", "the camera read").await;
            assert_eq!(class, "good", "{said}");
            assert_eq!(js(&bob, &pasted()).await, json!(text), "the page read the payment from the camera");
            let camera_off = js(&bob, "return document.getElementById('offline-camera-view').hidden;").await;
            assert_eq!(camera_off, json!(true), "the camera is off once read");
        }
        let (class, said) = answer_to(&bob, "#offline-receive-form button[type=submit]", "the check").await;
        assert_eq!(class, if good { "good" } else { "bad" }, "{said}");
        if !good {
            assert!(said.contains("offline_bad_signature"), "{said}");
            js(&bob, "document.getElementById('offline-receive-form').scrollIntoView(); return true;").await;
            shot(&bob, &shots, "wallet-offline-03-tampered").await;
        }
    }
    assert!(purse_text(&bob).await.contains("120,00"), "{}", purse_text(&bob).await);
    assert!(!reaches_server(&bob).await, "Bob checked the payment with the network cut");
    top(&bob).await;
    shot(&bob, &shots, "wallet-offline-04-received").await;
    assert_eq!(total(&stb1, &bob_da).await, 0, "nothing settles before the deposit");

    // Reconnect: Bob deposits, then Alia deposits what is left in her purse.
    network(&alia, port, false).await;
    network(&bob, port, false).await;
    assert!(reaches_server(&bob).await);
    for c in [&bob, &alia] {
        let (class, text) = answer_to(c, "#purse-deposit", "the deposit").await;
        assert_eq!(class, "good", "{text}");
    }
    assert_eq!(total(&stb1, &bob_da).await, 12_000);
    assert_eq!(total(&stb1, &alia_da).await, 500_000 - 30_000 + 18_000);
    assert_eq!(total(&stb1, &reserve).await, reserve_before, "the reserve paid out exactly what was loaded");
    assert!(message(&bob).await.contains("120,00"), "{}", message(&bob).await);
    top(&bob).await;
    shot(&bob, &shots, "wallet-offline-05-deposited").await;

    // The same chain deposited again: nothing changes.
    let records = js_async(&bob, "const done = arguments[0]; window.dtengeWallet.purse.records().then(done);").await;
    let deposited = records["settled"][0]["chain"].as_str().unwrap().to_string();
    assert_eq!(records["settled"][0]["outcome"], json!("settled"));
    let again = stb1.offline_deposit(&DepositChain { chain: deposited }, None).await.unwrap();
    assert_eq!((again.outcome.as_str(), again.amount_tiyn), ("already_settled", 0));
    assert_eq!(total(&stb1, &bob_da).await, 12_000);
    assert_eq!(total(&stb1, &reserve).await, reserve_before);

    // The pages ran in Russian (the default); now English. 360 px: nothing wider than the screen.
    assert_eq!(js(&bob, "return document.querySelector('nav [data-tab=offline]').textContent;").await, json!("Офлайн"));
    assert_eq!(js(&bob, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));
    switch_language(&bob, "en").await;
    wait_for(&bob, "document.querySelector('nav [data-tab=offline]').textContent === 'Offline'", "English").await;
    wait_for(&bob, "!document.getElementById('purse-status').textContent.includes('Офлайн')", "the purse in English")
        .await;
    // The last message too: made of the page's own words, it is said again in English.
    wait_for(
        &bob,
        "document.getElementById('message').textContent.startsWith('Deposit: ') \
         && document.getElementById('message').textContent.endsWith(' — settled')",
        "the last message in English",
    )
    .await;
    assert_eq!(js(&bob, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));
    top(&bob).await;
    shot(&bob, &shots, "wallet-offline-06-en").await;

    alia.close().await.unwrap();
    bob.close().await.unwrap();
    drop(served);
}
