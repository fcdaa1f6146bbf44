//! Staff sessions: a random token in an `HttpOnly; SameSite=Strict` cookie
//! scoped to `/ui`, kept in memory (a restart signs everyone out, never
//! loses a request). State-changing calls must also carry the header
//! `x-dtenge-ui: 1` and, when the browser sends `Origin`, come from this
//! host: a cross-site page can neither send the cookie (SameSite) nor set
//! the header without a CORS preflight this server never grants.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};

use crate::error::UiError;

/// The cookie's name.
pub const COOKIE: &str = "dtenge_ui";
/// The header every state-changing call carries.
pub const CSRF_HEADER: &str = "x-dtenge-ui";
/// A session ends after this long without use.
pub const IDLE_MS_MAX: u64 = 8 * 60 * 60 * 1000;
/// Sessions kept at most (the oldest are dropped).
pub const SESSIONS_MAX: usize = 10_000;

struct Session {
    login: String,
    last_used_ms: u64,
}

/// Live sessions.
#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_token.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `login`; returns its token.
    pub fn start(&self, login: &str, now_ms: u64) -> Result<String, UiError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| UiError::Storage(format!("no OS randomness: {e}")))?;
        let token = hex::encode(raw);
        let mut sessions = self.lock();
        sessions.retain(|_, s| now_ms.saturating_sub(s.last_used_ms) < IDLE_MS_MAX);
        while sessions.len() >= SESSIONS_MAX {
            let oldest = sessions.iter().min_by_key(|(_, s)| s.last_used_ms).map(|(t, _)| t.clone());
            match oldest {
                Some(t) => sessions.remove(&t),
                None => break,
            };
        }
        sessions.insert(token.clone(), Session { login: login.to_string(), last_used_ms: now_ms });
        Ok(token)
    }

    /// The login of a live session, refreshing it.
    pub fn touch(&self, token: &str, now_ms: u64) -> Option<String> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(token)?;
        if now_ms.saturating_sub(session.last_used_ms) >= IDLE_MS_MAX {
            sessions.remove(token);
            return None;
        }
        session.last_used_ms = now_ms;
        Some(session.login.clone())
    }

    /// Ends a session.
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// The session token in the request's cookies.
pub fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Refuses a state-changing request that could come from another site.
pub fn check_csrf(method: &Method, headers: &HeaderMap) -> Result<(), UiError> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(UiError::Forbidden(format!("missing {CSRF_HEADER} header: requests must come from the dtenge UI")));
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin_host != host {
            return Err(UiError::Forbidden(format!("request from another site ({origin}) refused")));
        }
    }
    Ok(())
}

/// `Set-Cookie` value starting a session.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}", IDLE_MS_MAX / 1000)
}

/// `Set-Cookie` value ending a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_end_on_sign_out() {
        let s = Sessions::default();
        let t = s.start("a", 0).unwrap();
        assert_eq!(s.touch(&t, IDLE_MS_MAX - 1).as_deref(), Some("a"));
        assert_eq!(s.touch(&t, 2 * IDLE_MS_MAX - 2).as_deref(), Some("a"));
        assert_eq!(s.touch(&t, 3 * IDLE_MS_MAX), None);
        let t = s.start("b", 0).unwrap();
        s.end(&t);
        assert_eq!(s.touch(&t, 1), None);
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        assert!(check_csrf(&Method::GET, &h).is_ok());
        assert!(check_csrf(&Method::POST, &h).is_err());
        h.insert(CSRF_HEADER, "1".parse().unwrap());
        h.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert!(check_csrf(&Method::POST, &h).is_ok());
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(check_csrf(&Method::POST, &h).is_err());
        h.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
        assert!(check_csrf(&Method::POST, &h).is_ok());
    }
}
