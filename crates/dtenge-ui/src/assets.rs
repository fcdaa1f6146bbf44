//! The static part of the interface, embedded in the binary: one HTML page,
//! a stylesheet, the shell (`app.js`), the helpers every section shares
//! (`core.js`), the RU/EN dictionaries, the names of refusal codes and the
//! words of notifications (`refusals.js`, `notices.js`, both shared with the
//! wallet) and one module per section
//! (`sections/*.js`; add a section by adding a module here and to `app.js`).
//! Served with a Content-Security-Policy that allows only this origin — the
//! machine is offline and nothing is fetched from elsewhere.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::Ui;

/// `(path under /ui/assets/, content type, body)`.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("core.js", "text/javascript; charset=utf-8", include_str!("../assets/core.js")),
    ("i18n.js", "text/javascript; charset=utf-8", include_str!("../assets/i18n.js")),
    ("refusals.js", "text/javascript; charset=utf-8", include_str!("../assets/refusals.js")),
    ("notices.js", "text/javascript; charset=utf-8", include_str!("../assets/notices.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../assets/favicon.svg")),
    ("sections/home.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/home.js")),
    ("sections/issuance.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/issuance.js")),
    ("sections/redeeming.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/redeeming.js")),
    ("sections/conversion.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/conversion.js")),
    ("sections/transfers.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/transfers.js")),
    ("sections/accounts.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/accounts.js")),
    ("sections/reports.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/reports.js")),
    ("sections/holding.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/holding.js")),
    ("sections/approvals.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/approvals.js")),
    ("sections/nbk.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/nbk.js")),
    ("sections/regulator.js", "text/javascript; charset=utf-8", include_str!("../assets/sections/regulator.js")),
];

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn respond(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX_HTML)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => respond(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

pub(crate) fn routes() -> Router<Arc<Ui>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/assets/{*path}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let mut sources: Vec<&str> = ASSETS.iter().map(|(_, _, body)| *body).collect();
        sources.push(INDEX_HTML);
        for body in sources {
            for line in body.lines() {
                let Some(rest) = line.split("from '").nth(1).or_else(|| line.split("src=\"/ui/assets/").nth(1)) else {
                    continue;
                };
                let target = rest.split(['\'', '"']).next().unwrap_or_default();
                let name = target.trim_start_matches("./").trim_start_matches("../");
                let name = if line.contains("from './") && !target.starts_with("../") && body_is_section(body) {
                    format!("sections/{name}")
                } else {
                    name.to_string()
                };
                assert!(ASSETS.iter().any(|(p, _, _)| *p == name), "{name} (imported in {line:?}) is not embedded");
            }
        }
    }

    fn body_is_section(body: &str) -> bool {
        ASSETS.iter().any(|(p, _, b)| p.starts_with("sections/") && *b == body)
    }

    #[test]
    fn nothing_is_loaded_from_another_origin() {
        for (path, _, body) in ASSETS {
            assert!(!body.contains("http://") && !body.contains("https://") || path.ends_with(".svg"), "{path}");
        }
        assert!(!INDEX_HTML.contains("https://") && !INDEX_HTML.contains("http://"));
    }
}
