//! Parses arbitrary bytes as what the HTTP API reads from outside: every
//! JSON request body (the first byte picks the type) with the checks the
//! handlers apply to its fields, the `Idempotency-Key` header, and the
//! RFC 9421 signed-request headers (`signature-input`, `signature`,
//! `content-digest`) through `authenticate` with its replay cache.
//!
//! Properties: nothing panics; a refusal is an `ApiError` with a status
//! and code, never a crash; a signed request is never accepted twice
//! (replay cache), also when the cache is full (it refuses with 503 and
//! `Retry-After` instead of forgetting); a request whose covered parts were
//! changed after signing is never accepted as the signer's.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use dtenge_api::auth::{REPLAY_WINDOW_MS, ReplayGuard, authenticate, signed_headers};
use dtenge_api::dto::{address, iin_bin, page, positive_amount};
use dtenge_api::idempotency::parse_key;
use dtenge_api::types::{
    AmendRequest, ContractPaymentRequest, ContractRequest, ConversionRequestBody, DebitRequest, Decision,
    EventRequest, GrantMandateRequest, HoldRequest, InvoiceRequest, ListQuery, MarkAddressRequest,
    MarkParameterRequest, MarkedTransferRequest, OccurrenceRequest, OpenAccount, ParameterRequest, ProviderRequest,
    PvpRequest, RateRequest, SetKyc, SubmitSigned, TransferRequest, VatPaymentRequest,
};
use dtenge_crypto::SecretKey;
use dtenge_net::{ParticipantInfo, Participants, Role};
use dtenge_types::{ParticipantId, Timestamp};
use libfuzzer_sys::fuzz_target;

/// The signer's clock: 2026-01-01T00:00:00Z, in seconds.
const NOW_S: u64 = 1_767_225_600;

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

fn fields(text: &str) {
    let _ = address(text, "field");
    let _ = iin_bin(text);
    let _ = text.parse::<dtenge_types::TxId>();
}

fn key() -> SecretKey {
    SecretKey::from_seed([1; 32])
}

fn directory() -> &'static Participants {
    static DIRECTORY: OnceLock<Participants> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        Participants::new(vec![ParticipantInfo {
            id: ParticipantId::new("STB1").unwrap_or_else(|_| unreachable!("valid id")),
            name: "bank".into(),
            role: Role::Stb,
            public_key: key().public_key(),
            endpoint: None,
            tls_key: None,
        }])
    })
}

fn header_map(pairs: &[(&str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
    map
}

fn uri_of(bytes: &[u8]) -> Uri {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|p| p.parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/api/v1/accounts"))
}

/// Arbitrary header values, no valid signature expected: the parser of
/// each header must refuse without panicking; anything accepted is never
/// accepted twice.
fn raw_headers(bytes: &[u8]) {
    // Fields separated by 0xFF: signature-input, signature, content-digest, idempotency-key, host, path, body.
    let mut parts = bytes.split(|&b| b == 0xFF);
    let mut pairs = Vec::new();
    for name in ["signature-input", "signature", "content-digest", "idempotency-key", "host"] {
        if let Some(value) = parts.next() {
            pairs.push((name, value.to_vec()));
        }
    }
    let map = header_map(&pairs);
    let uri = uri_of(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let guard = ReplayGuard::new(4, Timestamp(0));
    let now = Timestamp(NOW_S * 1_000);
    let first = authenticate(directory(), &guard, "http", now, &Method::POST, &uri, &map, body);
    if first.is_ok() {
        let again = authenticate(directory(), &guard, "http", now, &Method::POST, &uri, &map, body);
        assert!(again.is_err(), "a signed request was accepted twice");
    }
}

/// Requests really signed by STB1 (nonce, path, body, time chosen by the
/// input), each optionally changed after signing in one byte of one
/// header, the method, the path or the body, sent through one replay cache
/// of a small capacity.
fn signed_requests(bytes: &[u8]) {
    let Some((&capacity, bytes)) = bytes.split_first() else {
        return;
    };
    let guard = ReplayGuard::new(usize::from(capacity % 4) + 1, Timestamp(0));
    // Nonce -> when it was accepted.
    let mut accepted: HashMap<String, u64> = HashMap::new();
    let mut now_ms = NOW_S * 1_000;
    // Requests separated by 0xFF; each: [advance ms/100, created offset, tamper what, tamper at] nonce 0xFE path 0xFE body.
    for request in bytes.split(|&b| b == 0xFF).take(16) {
        let [advance, offset, what, at, rest @ ..] = request else {
            continue;
        };
        now_ms += u64::from(*advance) * 100;
        let mut parts = rest.split(|&b| b == 0xFE);
        let nonce = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let path = if path.starts_with('/') { path } else { format!("/api/v1/{path}") };
        let body = parts.next().unwrap_or_default().to_vec();
        // created from 80 s back to 47 s ahead of the server's clock.
        let created = (now_ms / 1_000 + 47).saturating_sub(u64::from(*offset) / 2);
        let idempotency_key = (what & 0x80 != 0).then(|| format!("k-{nonce}"));
        let headers =
            signed_headers(&key(), "STB1", "POST", &path, &body, idempotency_key.as_deref(), created, &nonce);
        let mut pairs: Vec<(&str, Vec<u8>)> = headers.iter().map(|(n, v)| (*n, v.as_bytes().to_vec())).collect();
        let (mut method, mut uri, mut sent_body) = (Method::POST, uri_of(path.as_bytes()), body.clone());
        let tampered = match what % 8 {
            // host, content-digest, signature-input, signature, idempotency-key.
            0..=3 => {
                let i = usize::from(what % 8) + usize::from(what & 0x80 != 0 && what % 8 == 3);
                match pairs.get_mut(i) {
                    Some((_, value)) if !value.is_empty() => {
                        let j = usize::from(*at) % value.len();
                        value[j] ^= 0x01;
                        true
                    }
                    _ => false,
                }
            }
            4 => {
                method = Method::PUT;
                true
            }
            5 => {
                uri = uri_of(format!("{path}x").as_bytes());
                true
            }
            6 => {
                sent_body.push(*at);
                true
            }
            _ => false,
        };
        let map = header_map(&pairs);
        let now = Timestamp(now_ms);
        match authenticate(directory(), &guard, "http", now, &method, &uri, &map, &sent_body) {
            Ok(caller) => {
                assert_eq!(caller.id.as_str(), "STB1");
                if let Some(&before) = accepted.get(&nonce) {
                    assert!(before + REPLAY_WINDOW_MS <= now_ms, "nonce {nonce:?} accepted twice within the window");
                }
                accepted.insert(nonce.clone(), now_ms);
                // A changed method, path or body is never accepted (a changed
                // header byte may be an equivalent encoding, e.g. a letter's case in `host`).
                assert!(!(tampered && matches!(what % 8, 4..=6)), "a request changed after signing was accepted");
            }
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                assert!(e.retry_after.is_some_and(|s| s > 0), "a full replay cache must say when to retry");
            }
            Err(e) => assert!(
                matches!(e.status, StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST),
                "unexpected refusal {e:?}"
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 26 {
        0 => {
            if let Some(r) = json::<TransferRequest>(bytes) {
                fields(&r.from);
                for to in &r.to {
                    let _ = positive_amount(to.amount_tiyn, "amount");
                    to.address.as_deref().map(fields);
                    to.iin_bin.as_deref().map(fields);
                }
            }
        }
        1 => {
            if let Some(r) = json::<SubmitSigned>(bytes)
                && let Ok(raw) = hex::decode(r.transaction.trim())
            {
                let _ = dtenge_types::decode_transaction(&raw);
            }
        }
        2 => {
            let _ = json::<OpenAccount>(bytes);
        }
        3 => {
            let _ = json::<SetKyc>(bytes);
        }
        4 => {
            let _ = json::<ConversionRequestBody>(bytes);
        }
        5 => {
            let _ = json::<Decision>(bytes);
        }
        6 => {
            let _ = json::<ProviderRequest>(bytes);
        }
        7 => {
            let _ = json::<EventRequest>(bytes);
        }
        8 => {
            let _ = json::<OccurrenceRequest>(bytes);
        }
        9 => {
            let _ = json::<ParameterRequest>(bytes);
        }
        10 => {
            let _ = json::<ContractRequest>(bytes);
        }
        11 => {
            let _ = json::<AmendRequest>(bytes);
        }
        12 => {
            let _ = json::<InvoiceRequest>(bytes);
        }
        13 => {
            let _ = json::<RateRequest>(bytes);
        }
        14 => {
            let _ = json::<HoldRequest>(bytes);
        }
        15 => {
            let _ = json::<MarkAddressRequest>(bytes);
        }
        16 => {
            let _ = json::<MarkParameterRequest>(bytes);
        }
        17 => {
            let _ = json::<MarkedTransferRequest>(bytes);
        }
        18 => {
            let _ = json::<ContractPaymentRequest>(bytes);
        }
        19 => {
            let _ = json::<VatPaymentRequest>(bytes);
        }
        20 => {
            let _ = json::<GrantMandateRequest>(bytes);
        }
        21 => {
            let _ = json::<DebitRequest>(bytes);
        }
        22 => {
            let _ = json::<PvpRequest>(bytes);
        }
        23 => {
            if let Ok(key) = parse_key(bytes) {
                assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()), "bad key {key:?} accepted");
            }
            if let Ok(text) = std::str::from_utf8(bytes) {
                if let Ok(query) = serde_json::from_str::<ListQuery>(text) {
                    let _ = page(&query, vec![(); 3]);
                    let _ = query.in_period(0);
                }
                fields(text);
            }
        }
        24 => signed_requests(bytes),
        _ => raw_headers(bytes),
    }
});
