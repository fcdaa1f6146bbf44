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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

const INSTALL: &str =
    "the browser test needs Chromium and its WebDriver: `apt-get install -y chromium chromium-driver`";

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file()))
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_driver() -> (Driver, u16) {
    let driver = on_path("chromedriver").unwrap_or_else(|| panic!("chromedriver not found on PATH: {INSTALL}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}): {INSTALL}"));
    let driver = Driver(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Polls a JavaScript condition until it is true (at most 20 s).
async fn wait_for(c: &Client, condition: &str, what: &str) {
    for _ in 0..400 {
        if js(c, &format!("return !!({condition});")).await == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = js(c, "return document.body.innerText;").await;
    panic!("waited 20 s for {what} ({condition}); the page says:\n{}", text.as_str().unwrap_or_default());
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn message(c: &Client) -> String {
    js(c, "return document.getElementById('message').textContent;").await.as_str().unwrap_or_default().to_string()
}

fn png_of(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let width = code.width();
    let scale = 6usize;
    let side = (width + 8) * scale;
    let colors = code.to_colors();
    let img = image::GrayImage::from_fn(side as u32, side as u32, |x, y| {
        let (mx, my) = ((x as usize / scale).wrapping_sub(4), (y as usize / scale).wrapping_sub(4));
        let dark = mx < width && my < width && colors[my * width + mx] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
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
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("wallet-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let data = tempfile::tempdir().unwrap();
    let env = common::open(data.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, env.app.clone()).into_future());
    let ticker = {
        let platform = Arc::clone(&env.platform);
        tokio::spawn(async move {
            loop {
                platform.tick().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let keys = Keys::at(&env.platform.data);
    let bank = |who: &str| -> ApiClient {
        let key: Arc<dyn Signer> = Arc::new(keys.load(who).unwrap());
        ApiClient::in_process(env.app.clone(), ParticipantId::new(who).unwrap(), key, Arc::clone(&env.platform.clock))
    };
    let (stb1, stb2) = (bank("STB1"), bank("STB2"));

    let (_driver, port) = start_driver().await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=360,800", "--lang=en-US"],
            "mobileEmulation": {"deviceMetrics": {"width": 360, "height": 800, "pixelRatio": 1.0}}}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session through chromedriver ({e}): {INSTALL}"));

    c.goto(&format!("{base}/wallet/")).await.unwrap();
    wait_for(&c, "document.body.dataset.ready === 'yes'", "the wallet page").await;
    signing_matches_the_rust_vector(&c).await;
    // 360 px: nothing wider than the screen.
    assert_eq!(js(&c, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));

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
    wait_for(&c, "document.getElementById('message').textContent.includes('success')", "the payment").await;
    assert_eq!(js(&c, "return document.getElementById('message').className;").await, json!("good"));
    assert_eq!(stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn, shop_before + 123_450);
    shot(&c, &shots, "wallet-04-paid").await;

    // The same QR again: refused, nothing moves.
    c.find(Locator::Css("#qr-form [name=image]")).await.unwrap().send_keys(image.to_str().unwrap()).await.unwrap();
    click(&c, "#qr-form button").await;
    wait_for(&c, "document.getElementById('message').className === 'bad'", "the refusal").await;
    assert!(message(&c).await.contains("already paid"), "{}", message(&c).await);
    assert_eq!(stb2.balance(&shop.id.to_string()).await.unwrap().total_tiyn, shop_before + 123_450);
    shot(&c, &shots, "wallet-05-already-paid").await;

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

    // Receive: my static QR; switch to Kazakh.
    click(&c, "nav [data-tab=receive]").await;
    wait_for(&c, "document.getElementById('receive-address').textContent.length === 64", "my QR").await;
    c.find(Locator::Css("#lang")).await.unwrap().select_by_value("kk").await.unwrap();
    wait_for(&c, "document.querySelector('nav [data-tab=receive]').textContent === 'Қабылдау'", "Kazakh").await;
    assert_eq!(js(&c, "return document.documentElement.scrollWidth <= window.innerWidth;").await, json!(true));
    shot(&c, &shots, "wallet-08-receive-kk").await;

    c.close().await.unwrap();
    ticker.abort();
    server.abort();
}
