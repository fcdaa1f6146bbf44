//! Parses arbitrary bytes as what the HTTP API reads from outside: every
//! JSON request body (the first byte picks the type) with the checks the
//! handlers apply to its fields, and the signed-request headers
//! (`authenticate`: participant, timestamp, nonce, signature).
//!
//! Properties: nothing panics; a refusal is an `ApiError` with a status
//! and code, never a crash; the same headers are never accepted twice
//! (replay guard).
#![no_main]

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use dtenge_api::auth::{ReplayGuard, authenticate};
use dtenge_api::dto::{address, iin_bin, page, positive_amount};
use dtenge_api_types::common::ListQuery;
use dtenge_api_types::{accounts, conversions, oracle, payments, programmable};
use dtenge_crypto::SecretKey;
use dtenge_net::{ParticipantInfo, Participants, Role};
use dtenge_types::{ParticipantId, Timestamp};
use libfuzzer_sys::fuzz_target;

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

fn fields(text: &str) {
    let _ = address(text, "field");
    let _ = iin_bin(text);
    let _ = text.parse::<dtenge_types::TxId>();
}

fn directory() -> &'static Participants {
    static DIRECTORY: OnceLock<Participants> = OnceLock::new();
    DIRECTORY.get_or_init(|| {
        Participants::new(vec![ParticipantInfo {
            id: ParticipantId::new("STB1").unwrap_or_else(|_| unreachable!("valid id")),
            name: "bank".into(),
            role: Role::Stb,
            public_key: SecretKey::from_seed([1; 32]).public_key(),
            endpoint: None,
        }])
    })
}

fn headers(bytes: &[u8]) {
    // Fields separated by 0xFF: participant, timestamp, nonce, signature, path, body.
    let mut parts = bytes.split(|&b| b == 0xFF);
    let mut map = HeaderMap::new();
    for name in ["x-dtenge-participant", "x-dtenge-timestamp", "x-dtenge-nonce", "x-dtenge-signature"] {
        if let Some(value) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            map.insert(name, value);
        }
    }
    let uri = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/api/v1/accounts"));
    let body = parts.next().unwrap_or_default();
    let guard = ReplayGuard::default();
    let now = Timestamp(1_767_225_600_000);
    let first = authenticate(directory(), &guard, now, &Method::POST, &uri, &map, body);
    if first.is_ok() {
        assert!(
            authenticate(directory(), &guard, now, &Method::POST, &uri, &map, body).is_err(),
            "a signed request was accepted twice"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 24 {
        0 => {
            if let Some(r) = json::<payments::TransferRequest>(bytes) {
                fields(&r.from);
                for to in &r.to {
                    let _ = positive_amount(to.amount_tiyn, "amount");
                    to.address.as_deref().map(fields);
                    to.iin_bin.as_deref().map(fields);
                }
            }
        }
        1 => {
            if let Some(r) = json::<payments::SubmitSigned>(bytes)
                && let Ok(raw) = hex::decode(r.transaction.trim())
            {
                let _ = dtenge_types::decode_transaction(&raw);
            }
        }
        2 => {
            let _ = json::<accounts::OpenAccount>(bytes);
        }
        3 => {
            let _ = json::<accounts::SetKyc>(bytes);
        }
        4 => {
            let _ = json::<conversions::ConversionRequestBody>(bytes);
        }
        5 => {
            let _ = json::<conversions::Decision>(bytes);
        }
        6 => {
            let _ = json::<oracle::ProviderRequest>(bytes);
        }
        7 => {
            let _ = json::<oracle::EventRequest>(bytes);
        }
        8 => {
            let _ = json::<oracle::OccurrenceRequest>(bytes);
        }
        9 => {
            let _ = json::<oracle::ParameterRequest>(bytes);
        }
        10 => {
            let _ = json::<oracle::ContractRequest>(bytes);
        }
        11 => {
            let _ = json::<oracle::AmendRequest>(bytes);
        }
        12 => {
            let _ = json::<oracle::InvoiceRequest>(bytes);
        }
        13 => {
            let _ = json::<oracle::RateRequest>(bytes);
        }
        14 => {
            let _ = json::<programmable::HoldRequest>(bytes);
        }
        15 => {
            let _ = json::<programmable::MarkAddressRequest>(bytes);
        }
        16 => {
            let _ = json::<programmable::MarkParameterRequest>(bytes);
        }
        17 => {
            let _ = json::<programmable::MarkedTransferRequest>(bytes);
        }
        18 => {
            let _ = json::<programmable::ContractPaymentRequest>(bytes);
        }
        19 => {
            let _ = json::<programmable::VatPaymentRequest>(bytes);
        }
        20 => {
            let _ = json::<programmable::GrantMandateRequest>(bytes);
        }
        21 => {
            let _ = json::<programmable::DebitRequest>(bytes);
        }
        22 => {
            let _ = json::<programmable::PvpRequest>(bytes);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                if let Ok(query) = serde_json::from_str::<ListQuery>(text) {
                    let _ = page(&query, vec![(); 3]);
                    let _ = query.in_period(0);
                }
                fields(text);
            }
            headers(bytes);
        }
    }
});
