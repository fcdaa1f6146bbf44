//! Driving Debian's Chromium through chromedriver (fantoccini): what every
//! browser test needs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;

pub const INSTALL: &str = "the browser test needs Chromium and its WebDriver: `apt-get install -y chromium chromium-driver` \
                           (Debian; `bash .ci/test.sh` does this, then runs the suite)";

pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file()))
}

/// chromedriver and the browsers it started, stopped when dropped.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads a process group of its own, which its browsers
        // join: a test that panics before closing its sessions leaves no
        // browser running once its driver is dropped.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn start_driver() -> (Driver, u16) {
    let driver = on_path("chromedriver").unwrap_or_else(|| panic!("chromedriver not found on PATH: {INSTALL}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .process_group(0)
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

/// Polls a JavaScript condition until it is true (at most 20 s).
pub async fn wait_for(c: &Client, condition: &str, what: &str) {
    for _ in 0..400 {
        if c.execute(&format!("return !!({condition});"), vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let main = c
        .execute("return document.getElementById('main') ? document.getElementById('main').innerText : document.body.innerText;", vec![])
        .await
        .unwrap();
    panic!("waited 20 s for {what} ({condition}); the page says:\n{}", main.as_str().unwrap_or_default());
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// The text of the element `css` names. A section that renders again
/// between finding the element and reading it leaves a stale reference:
/// then the element is found again (at most 20 times).
pub async fn text(c: &Client, css: &str) -> String {
    for _ in 0..20 {
        match c.find(Locator::Css(css)).await.unwrap().text().await {
            Ok(text) => return text,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot read the text of {css}: {e}"),
        }
    }
    panic!("{css} kept going stale while its text was read");
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

pub async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}
