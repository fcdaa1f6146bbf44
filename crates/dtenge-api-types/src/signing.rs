//! Signed requests, the standard way: RFC 9421 HTTP Message Signatures with
//! Ed25519 over an RFC 9530 `Content-Digest`, following FAPI 2.0's
//! message-signing profile. The one definition both sides use: the client
//! signs with [`sign`], the server checks with [`verify`].
//!
//! ```text
//!  Content-Digest:  sha-256=:<base64 SHA-256 of the body>:
//!  Signature-Input: sig=("@method" "@target-uri" "content-digest" ["idempotency-key"])
//!                       ;created=<unix s>;keyid="<participant>";nonce="<unique>";alg="ed25519";tag="fapi-2-request"
//!  Signature:       sig=:<base64 Ed25519 signature of the signature base>:
//! ```
//!
//! The signature base (RFC 9421 §2.5) is one line per covered component,
//! `"<name>": <value>`, then `"@signature-params": <the inner list above>`,
//! joined by `\n` with no newline at the end.
//!
//! What the verifier requires (today's guarantees, in the standard's words):
//! * exactly one signature tagged `fapi-2-request`, by `keyid` = a registered
//!   participant, checked against that participant's registered Ed25519 key;
//! * `created` at most [`MAX_AGE_S`] old and at most [`MAX_FUTURE_S`] ahead of
//!   the server clock; `expires`, if present, not passed; `alg`, if present,
//!   `ed25519`;
//! * a `nonce` of 8–64 characters `[A-Za-z0-9_-]` (the server refuses one it
//!   has seen, see `dtenge-api`'s replay cache);
//! * `@method` and `@target-uri` (scheme, host, path and query) covered;
//!   `content-digest` covered and equal to the SHA-256 of the body whenever
//!   there is a body; `idempotency-key` covered whenever the request carries
//!   one (else a man in the middle could change the key of a payment and the
//!   client's honest retry would pay twice).
//!
//! Invariants: [`verify`] is a pure function of the request, the time and the
//! key directory; every refusal is a [`SignatureError`] with a stable
//! [`SignatureError::code`]. Header sizes and component counts are bounded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use dtenge_crypto::{PublicKey, Signature, Signer, Verifier};
use sfv::{BareItem, Dictionary, FieldType, InnerList, Item, List, ListEntry, Parser};
use sha2::{Digest as _, Sha256};

/// The header carrying the signature parameters and covered components.
pub const SIGNATURE_INPUT: &str = "signature-input";
/// The header carrying the signature.
pub const SIGNATURE: &str = "signature";
/// The header carrying the body digest (RFC 9530).
pub const CONTENT_DIGEST: &str = "content-digest";
/// The idempotency header, covered by the signature when present.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The `tag` FAPI 2.0 gives request signatures.
pub const TAG: &str = "fapi-2-request";
/// The algorithm name (RFC 9421 §6.2.2).
pub const ALG: &str = "ed25519";
/// The host a client driving a router in the same process addresses (the
/// signed `@target-uri` needs one; no socket is involved).
pub const IN_PROCESS_HOST: &str = "in-process.dtenge";
/// The label this crate's signer uses (any label is accepted).
pub const LABEL: &str = "sig";
/// Oldest acceptable `created`, in seconds before the server clock.
pub const MAX_AGE_S: u64 = 60;
/// Furthest-ahead acceptable `created`, in seconds after the server clock.
pub const MAX_FUTURE_S: u64 = 10;
/// Shortest nonce.
pub const NONCE_MIN: usize = 8;
/// Longest nonce.
pub const NONCE_MAX: usize = 64;
/// Longest `Signature-Input` or `Signature` header accepted.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Most components one signature may cover.
pub const MAX_COVERED: usize = 16;
/// Most signatures one request may carry.
pub const MAX_SIGNATURES: usize = 4;
/// The 401 code of a signature created before the server's last restart:
/// it accepts nothing it may have accepted before the restart, so the
/// client signs the request again after the answer's `Retry-After`.
pub const SIGNED_BEFORE_RESTART: &str = "signed_before_restart";

/// Why a request's signature was refused; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Signature-Input` / `Signature` header.
    #[error("header {0} is missing; every request is signed (RFC 9421 HTTP Message Signatures)")]
    Missing(&'static str),
    /// A header is not a valid structured field, or too large.
    #[error("header {header} is malformed: {why}")]
    Malformed {
        /// Which header.
        header: &'static str,
        /// What is wrong.
        why: String,
    },
    /// No signature tagged `fapi-2-request`, or more than one.
    #[error("{0}")]
    Tag(String),
    /// A required parameter is missing or has the wrong type or value.
    #[error("signature parameter {name}: {why}")]
    Parameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        why: String,
    },
    /// `created` outside the freshness window, or `expires` passed.
    #[error("the signature was created at {created} s, more than 60 s before or 10 s after the platform clock {now} s")]
    Stale {
        /// `created`, seconds since the epoch.
        created: u64,
        /// The server clock, seconds since the epoch.
        now: u64,
    },
    /// `expires` has passed.
    #[error("the signature expired at {expires} s; the platform clock is {now} s")]
    Expired {
        /// `expires`.
        expires: u64,
        /// The server clock.
        now: u64,
    },
    /// A component that must be covered is not.
    #[error("the signature must cover {0}")]
    NotCovered(&'static str),
    /// A covered component this server does not support (or with parameters).
    #[error("covered component {0} is not supported here")]
    Unsupported(String),
    /// A covered header field is absent from the request.
    #[error("covered header {0} is not in the request")]
    Absent(String),
    /// `Content-Digest` does not match the body.
    #[error("content-digest does not match the request body (sha-256 of the bytes sent)")]
    Digest,
    /// `keyid` names no registered participant.
    #[error("keyid {0:?} is not a registered participant")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify with {0}'s registered key")]
    BadSignature(String),
}

impl SignatureError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing(_) => "missing_signature",
            SignatureError::Malformed { .. } => "malformed_signature",
            SignatureError::Tag(_) => "signature_tag",
            SignatureError::Parameter { .. } => "signature_parameter",
            SignatureError::Stale { .. } => "stale_signature",
            SignatureError::Expired { .. } => "expired_signature",
            SignatureError::NotCovered(_) => "component_not_covered",
            SignatureError::Unsupported(_) => "unsupported_component",
            SignatureError::Absent(_) => "covered_header_absent",
            SignatureError::Digest => "content_digest_mismatch",
            SignatureError::UnknownKey(_) => "unknown_participant",
            SignatureError::BadSignature(_) => "bad_signature",
        }
    }
}

/// `Content-Digest` of a body: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", BASE64.encode(Sha256::digest(body)))
}

/// The request as both sides see it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// `GET`, `POST`, … as sent.
    pub method: &'a str,
    /// `scheme://host[:port]/path[?query]` as the client addressed it.
    pub target_uri: &'a str,
    /// Header fields (any case), each line as received.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes.
    pub body: &'a [u8],
}

impl Message<'_> {
    /// All lines of a header field, trimmed and joined with `, ` (RFC 9421 §2.1).
    fn field(&self, name: &str) -> Option<String> {
        let lines: Vec<&str> =
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).collect();
        (!lines.is_empty()).then(|| lines.join(", "))
    }
}

/// What a signer puts into `Signature-Input` besides the covered components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// Creation time, seconds since the epoch.
    pub created: u64,
    /// The participant id.
    pub keyid: String,
    /// Never reused.
    pub nonce: String,
}

/// Headers of a signed request, and the signature base that was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
    /// The exact bytes signed (for documentation and debugging).
    pub base: String,
}

impl Signed {
    /// The three headers to add, by name.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            (CONTENT_DIGEST, self.content_digest.as_str()),
            (SIGNATURE_INPUT, self.signature_input.as_str()),
            (SIGNATURE, self.signature.as_str()),
        ]
    }
}

fn string_item(text: &str) -> Result<Item, String> {
    let s = sfv::String::from_string(text.to_string()).map_err(|(e, _)| format!("{text:?}: {e}"))?;
    Ok(Item::new(BareItem::String(s)))
}

fn key(name: &str) -> sfv::Key {
    // Only called with the constant parameter names of this module.
    sfv::Key::from_string(name.to_string()).unwrap_or_else(|_| unreachable!("{name} is a valid key"))
}

/// The inner list of covered components with the parameters, as serialized
/// in `Signature-Input` and in the signature base's last line.
fn params_list(covered: &[&str], params: &SignatureParams) -> Result<InnerList, String> {
    let items = covered.iter().map(|c| string_item(c)).collect::<Result<Vec<_>, _>>()?;
    let mut list = InnerList::new(items);
    let created = sfv::Integer::try_from(params.created).map_err(|e| format!("created: {e}"))?;
    list.params.insert(key("created"), BareItem::Integer(created));
    list.params.insert(key("keyid"), string_item(&params.keyid)?.bare_item);
    list.params.insert(key("nonce"), string_item(&params.nonce)?.bare_item);
    list.params.insert(key("alg"), string_item(ALG)?.bare_item);
    list.params.insert(key("tag"), string_item(TAG)?.bare_item);
    Ok(list)
}

fn serialize_inner(list: &InnerList) -> Result<String, String> {
    let as_list: List = vec![ListEntry::InnerList(list.clone())];
    as_list.serialize().ok_or_else(|| "empty list".to_string())
}

/// Signs a request as `params.keyid`: covers `@method`, `@target-uri`,
/// `content-digest` and, if given, `idempotency-key` (whose value the caller
/// sends as the `Idempotency-Key` header).
pub fn sign(
    key: &dyn Signer,
    method: &str,
    target_uri: &str,
    body: &[u8],
    idempotency_key: Option<&str>,
    params: &SignatureParams,
) -> Result<Signed, String> {
    let digest = content_digest(body);
    let mut covered = vec!["@method", "@target-uri", CONTENT_DIGEST];
    let mut headers = vec![(CONTENT_DIGEST, digest.as_str())];
    if let Some(k) = idempotency_key {
        covered.push(IDEMPOTENCY_KEY);
        headers.push((IDEMPOTENCY_KEY, k));
    }
    let list = params_list(&covered, params)?;
    let inner = serialize_inner(&list)?;
    let message = Message { method, target_uri, headers: &headers, body };
    let base = signature_base(&message, &covered, &inner).map_err(|e| e.to_string())?;
    let signature = key.sign(base.as_bytes());
    Ok(Signed {
        content_digest: digest,
        signature_input: format!("{LABEL}={inner}"),
        signature: format!("{LABEL}=:{}:", BASE64.encode(signature.as_bytes())),
        base,
    })
}

/// The value of one covered component (RFC 9421 §2.1, §2.2).
fn component(message: &Message<'_>, name: &str) -> Result<String, SignatureError> {
    let uri = || split_uri(message.target_uri).ok_or_else(|| SignatureError::Unsupported(format!("{name} (bad URI)")));
    match name {
        "@method" => Ok(message.method.to_string()),
        "@target-uri" => Ok(message.target_uri.to_string()),
        "@scheme" => Ok(uri()?.0.to_ascii_lowercase()),
        "@authority" => Ok(uri()?.1.to_ascii_lowercase()),
        "@path" => Ok(uri()?.2.to_string()),
        "@query" => Ok(format!("?{}", uri()?.3.unwrap_or(""))),
        "@request-target" => {
            let (_, _, path, query) = uri()?;
            Ok(query.map_or_else(|| path.to_string(), |q| format!("{path}?{q}")))
        }
        n if n.starts_with('@') => Err(SignatureError::Unsupported(format!("\"{n}\""))),
        field => message.field(field).ok_or_else(|| SignatureError::Absent(field.to_string())),
    }
}

/// `(scheme, authority, path, query)` of an absolute URI.
fn split_uri(uri: &str) -> Option<(&str, &str, &str, Option<&str>)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (authority, path_query) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    Some((scheme, authority, path, query))
}

/// The signature base of `message` over `covered`, with the serialized
/// `@signature-params` inner list.
pub fn signature_base(message: &Message<'_>, covered: &[&str], params: &str) -> Result<String, SignatureError> {
    let mut base = String::new();
    for name in covered {
        let value = component(message, name)?;
        if value.contains(['\n', '\r']) {
            return Err(SignatureError::Unsupported(format!("{name} (a value with a line break)")));
        }
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    Ok(base)
}

/// Who signed, once [`verify`] accepted a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The participant (`keyid`).
    pub keyid: String,
    /// `created`, seconds since the epoch.
    pub created: u64,
    /// The nonce (the caller checks it was never used).
    pub nonce: String,
}

fn malformed(header: &'static str, why: impl Into<String>) -> SignatureError {
    SignatureError::Malformed { header, why: why.into() }
}

fn param_string<'a>(list: &'a InnerList, name: &'static str) -> Result<Option<&'a str>, SignatureError> {
    match list.params.get(name) {
        None => Ok(None),
        Some(BareItem::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(SignatureError::Parameter { name, why: "must be a string".into() }),
    }
}

fn param_integer(list: &InnerList, name: &'static str) -> Result<Option<u64>, SignatureError> {
    match list.params.get(name) {
        None => Ok(None),
        Some(BareItem::Integer(i)) => u64::try_from(*i)
            .map(Some)
            .map_err(|_| SignatureError::Parameter { name, why: "must not be negative".into() }),
        Some(_) => Err(SignatureError::Parameter { name, why: "must be an integer (seconds since the epoch)".into() }),
    }
}

fn dictionary(message: &Message<'_>, header: &'static str) -> Result<Dictionary, SignatureError> {
    let text = message.field(header).ok_or(SignatureError::Missing(header))?;
    if text.len() > MAX_HEADER_BYTES {
        return Err(malformed(header, format!("longer than {MAX_HEADER_BYTES} bytes")));
    }
    Parser::new(text.as_str()).parse::<Dictionary>().map_err(|e| malformed(header, e.to_string()))
}

/// Checks a request's signature (see the module docs for what is required).
/// `key_of` finds a participant's registered key; `now_s` is the server clock.
pub fn verify(
    message: &Message<'_>,
    now_s: u64,
    key_of: impl Fn(&str) -> Option<PublicKey>,
    verifier: &dyn Verifier,
) -> Result<Verified, SignatureError> {
    let inputs = dictionary(message, SIGNATURE_INPUT)?;
    let signatures = dictionary(message, SIGNATURE)?;
    if inputs.len() > MAX_SIGNATURES {
        return Err(malformed(SIGNATURE_INPUT, format!("more than {MAX_SIGNATURES} signatures")));
    }
    let mut tagged = inputs.iter().filter_map(|(label, entry)| match entry {
        ListEntry::InnerList(list) if matches!(list.params.get("tag"), Some(BareItem::String(t)) if t.as_str() == TAG) => {
            Some((label, list))
        }
        _ => None,
    });
    let (label, list) = tagged.next().ok_or_else(|| {
        SignatureError::Tag(format!("no signature in {SIGNATURE_INPUT} has tag=\"{TAG}\" (FAPI 2.0 request signing)"))
    })?;
    if tagged.next().is_some() {
        return Err(SignatureError::Tag(format!("more than one signature has tag=\"{TAG}\"")));
    }
    let signature = match signatures.get(label.as_str()) {
        Some(ListEntry::Item(Item { bare_item: BareItem::ByteSequence(bytes), .. })) => {
            let bytes: [u8; 64] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| malformed(SIGNATURE, format!("{} is not a 64-byte Ed25519 signature", label.as_str())))?;
            Signature(bytes)
        }
        _ => return Err(malformed(SIGNATURE, format!("no byte-sequence member {:?}", label.as_str()))),
    };

    let keyid = param_string(list, "keyid")?
        .ok_or(SignatureError::Parameter { name: "keyid", why: "is required (the participant id)".into() })?;
    let created = param_integer(list, "created")?
        .ok_or(SignatureError::Parameter { name: "created", why: "is required".into() })?;
    if created.saturating_add(MAX_AGE_S) < now_s || created > now_s.saturating_add(MAX_FUTURE_S) {
        return Err(SignatureError::Stale { created, now: now_s });
    }
    if let Some(expires) = param_integer(list, "expires")?
        && expires <= now_s
    {
        return Err(SignatureError::Expired { expires, now: now_s });
    }
    if let Some(alg) = param_string(list, "alg")?
        && alg != ALG
    {
        return Err(SignatureError::Parameter { name: "alg", why: format!("{alg:?} is not supported; use \"{ALG}\"") });
    }
    let nonce = param_string(list, "nonce")?
        .ok_or(SignatureError::Parameter { name: "nonce", why: "is required (never reuse one)".into() })?;
    let nonce_ok = (NONCE_MIN..=NONCE_MAX).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(SignatureError::Parameter {
            name: "nonce",
            why: format!("must be {NONCE_MIN}-{NONCE_MAX} characters of A-Z, a-z, 0-9, '-' or '_'"),
        });
    }

    if list.items.len() > MAX_COVERED {
        return Err(malformed(SIGNATURE_INPUT, format!("more than {MAX_COVERED} covered components")));
    }
    let mut covered: Vec<&str> = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let BareItem::String(name) = &item.bare_item else {
            return Err(malformed(SIGNATURE_INPUT, "covered components are strings"));
        };
        if !item.params.is_empty() {
            return Err(SignatureError::Unsupported(format!("\"{}\" with parameters", name.as_str())));
        }
        if name.as_str() != name.as_str().to_ascii_lowercase() || covered.contains(&name.as_str()) {
            return Err(malformed(SIGNATURE_INPUT, format!("{:?}: lowercase, each once", name.as_str())));
        }
        covered.push(name.as_str());
    }
    for required in ["@method", "@target-uri"] {
        if !covered.contains(&required) {
            return Err(SignatureError::NotCovered(required));
        }
    }
    if message.field(IDEMPOTENCY_KEY).is_some() && !covered.contains(&IDEMPOTENCY_KEY) {
        return Err(SignatureError::NotCovered(IDEMPOTENCY_KEY));
    }
    match message.field(CONTENT_DIGEST) {
        Some(_) if !covered.contains(&CONTENT_DIGEST) => return Err(SignatureError::NotCovered(CONTENT_DIGEST)),
        Some(value) => check_digest(&value, message.body)?,
        None if !message.body.is_empty() => return Err(SignatureError::NotCovered(CONTENT_DIGEST)),
        None => {}
    }

    let public_key = key_of(keyid).ok_or_else(|| SignatureError::UnknownKey(keyid.to_string()))?;
    let params = serialize_inner(list).map_err(|e| malformed(SIGNATURE_INPUT, e))?;
    let base = signature_base(message, &covered, &params)?;
    verifier
        .verify(&public_key, base.as_bytes(), &signature)
        .map_err(|_| SignatureError::BadSignature(keyid.to_string()))?;
    Ok(Verified { keyid: keyid.to_string(), created, nonce: nonce.to_string() })
}

/// Checks a `Content-Digest` value against the body: every sha-256 member
/// must match, and there must be one (other algorithms are not accepted alone).
fn check_digest(value: &str, body: &[u8]) -> Result<(), SignatureError> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(malformed(CONTENT_DIGEST, format!("longer than {MAX_HEADER_BYTES} bytes")));
    }
    let dict = Parser::new(value).parse::<Dictionary>().map_err(|e| malformed(CONTENT_DIGEST, e.to_string()))?;
    let expected = Sha256::digest(body);
    match dict.get("sha-256") {
        Some(ListEntry::Item(Item { bare_item: BareItem::ByteSequence(d), .. }))
            if d.as_slice() == expected.as_slice() =>
        {
            Ok(())
        }
        Some(ListEntry::Item(Item { bare_item: BareItem::ByteSequence(_), .. })) => Err(SignatureError::Digest),
        _ => Err(malformed(CONTENT_DIGEST, "needs a sha-256 member (RFC 9530)")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dtenge_crypto::{Ed25519, SecretKey};

    use super::*;

    const URI: &str = "http://127.0.0.1:8080/api/v1/transfers?x=1";

    fn params(created: u64) -> SignatureParams {
        SignatureParams { created, keyid: "STB1".into(), nonce: "nonce-0000000001".into() }
    }

    fn headers(s: &Signed, key: Option<&str>) -> Vec<(&'static str, String)> {
        let mut h: Vec<(&'static str, String)> = s.headers().iter().map(|(n, v)| (*n, v.to_string())).collect();
        if let Some(k) = key {
            h.push((IDEMPOTENCY_KEY, k.to_string()));
        }
        h
    }

    fn check(
        method: &str,
        uri: &str,
        h: &[(&'static str, String)],
        body: &[u8],
        now: u64,
    ) -> Result<Verified, SignatureError> {
        let key = SecretKey::from_seed([7; 32]);
        let pairs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let message = Message { method, target_uri: uri, headers: &pairs, body };
        verify(&message, now, |id| (id == "STB1").then(|| key.public_key()), &Ed25519)
    }

    #[test]
    fn a_signed_request_verifies_and_every_covered_change_is_refused() {
        let key = SecretKey::from_seed([7; 32]);
        let body = br#"{"from":"STB1-000001"}"#;
        let signed = sign(&key, "POST", URI, body, Some("k-1"), &params(1_000)).unwrap();
        let h = headers(&signed, Some("k-1"));
        assert_eq!(check("POST", URI, &h, body, 1_000).unwrap().keyid, "STB1");
        assert_eq!(check("PUT", URI, &h, body, 1_000).unwrap_err().code(), "bad_signature");
        assert_eq!(
            check("POST", "http://127.0.0.1:8080/api/v1/transfers?x=2", &h, body, 1_000).unwrap_err().code(),
            "bad_signature"
        );
        assert_eq!(check("POST", URI, &h, b"{}", 1_000).unwrap_err().code(), "content_digest_mismatch");
        let other_key = headers(&signed, Some("k-2"));
        assert_eq!(check("POST", URI, &other_key, body, 1_000).unwrap_err().code(), "bad_signature");
        let no_key = headers(&signed, None);
        assert_eq!(check("POST", URI, &no_key, body, 1_000).unwrap_err().code(), "covered_header_absent");
        assert_eq!(check("POST", URI, &h, body, 1_061).unwrap_err().code(), "stale_signature");
        assert_eq!(check("POST", URI, &h, body, 989).unwrap_err().code(), "stale_signature");
    }

    #[test]
    fn the_signature_base_is_the_rfc_9421_text() {
        let key = SecretKey::from_seed([7; 32]);
        let signed = sign(&key, "GET", "http://h/api/v1/limits", b"", None, &params(1_700_000_000)).unwrap();
        assert_eq!(
            signed.base,
            "\"@method\": GET\n\"@target-uri\": http://h/api/v1/limits\n\"content-digest\": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\n\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created=1700000000;keyid=\"STB1\";nonce=\"nonce-0000000001\";alg=\"ed25519\";tag=\"fapi-2-request\""
        );
        assert_eq!(signed.signature_input, format!("sig={}", &signed.base[signed.base.rfind(": (").unwrap() + 2..]));
    }

    const DOC_BEGIN: &str = "<!-- signature base example: generated by crates/dtenge-api-types (signing::tests); refresh with DTENGE_WRITE_DOCS=1 cargo test -p dtenge-api-types -->";
    const DOC_END: &str = "<!-- end of the signature base example -->";

    /// The example of docs/api.md: a real transfer request, signed here.
    fn documented_example() -> String {
        let key = SecretKey::from_seed([1; 32]);
        let body = br#"{"from":"STB1-000001","to":[{"address":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","amount_tiyn":150000}],"memo":"invoice 17"}"#;
        let params = SignatureParams {
            created: 1_767_225_600,
            keyid: "STB1".into(),
            nonce: "3f9c2a7d41e08b6c5d2e91a0b7c4f813".into(),
        };
        let uri = "http://127.0.0.1:8080/api/v1/transfers";
        let signed = sign(&key, "POST", uri, body, Some("pay-2026-0001"), &params).unwrap();
        let public = hex_lower(key.public_key().as_bytes());
        format!(
            "A transfer by `STB1` (its key: the Ed25519 seed of 32 bytes `0x01`, public key `{public}`), \
             `created` = 2026-01-01 00:00:00 UTC:\n\n```http\nPOST /api/v1/transfers HTTP/1.1\nHost: 127.0.0.1:8080\n\
             Content-Type: application/json\nIdempotency-Key: pay-2026-0001\nContent-Digest: {}\nSignature-Input: {}\n\
             Signature: {}\n\n{}\n```\n\nThe signature base — the exact bytes signed, lines joined by `\\n`, no newline at the end:\n\n```text\n{}\n```\n",
            signed.content_digest,
            signed.signature_input,
            signed.signature,
            String::from_utf8_lossy(body),
            signed.base
        )
    }

    fn hex_lower(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn docs_api_md_shows_the_signature_base_of_a_real_request() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (before, rest) = doc.split_once(DOC_BEGIN).expect("docs/api.md has the example's begin marker");
        let (_, after) = rest.split_once(DOC_END).expect("docs/api.md has the example's end marker");
        let fresh = format!("{before}{DOC_BEGIN}\n\n{}\n{DOC_END}{after}", documented_example());
        if std::env::var_os("DTENGE_WRITE_DOCS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        assert!(doc == fresh, "docs/api.md is stale; refresh with DTENGE_WRITE_DOCS=1 cargo test -p dtenge-api-types");
        // And the documented request verifies.
        let key = SecretKey::from_seed([1; 32]);
        let body = br#"{"from":"STB1-000001","to":[{"address":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","amount_tiyn":150000}],"memo":"invoice 17"}"#;
        let params = SignatureParams {
            created: 1_767_225_600,
            keyid: "STB1".into(),
            nonce: "3f9c2a7d41e08b6c5d2e91a0b7c4f813".into(),
        };
        let signed =
            sign(&key, "POST", "http://127.0.0.1:8080/api/v1/transfers", body, Some("pay-2026-0001"), &params).unwrap();
        let mut h = headers(&signed, Some("pay-2026-0001"));
        h.push(("content-type", "application/json".into()));
        let pairs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let message =
            Message { method: "POST", target_uri: "http://127.0.0.1:8080/api/v1/transfers", headers: &pairs, body };
        verify(&message, 1_767_225_600, |_| Some(key.public_key()), &Ed25519).unwrap();
    }

    #[test]
    fn an_untagged_or_uncovered_signature_is_refused() {
        let key = SecretKey::from_seed([7; 32]);
        let signed = sign(&key, "POST", URI, b"x", None, &params(1_000)).unwrap();
        let mut h = headers(&signed, None);
        h[1].1 = h[1].1.replace(";tag=\"fapi-2-request\"", "");
        assert_eq!(check("POST", URI, &h, b"x", 1_000).unwrap_err().code(), "signature_tag");
        let mut h = headers(&signed, None);
        h[1].1 = h[1].1.replace("\"@target-uri\" ", "");
        assert_eq!(check("POST", URI, &h, b"x", 1_000).unwrap_err().code(), "component_not_covered");
        let h = headers(&signed, Some("late-key"));
        assert_eq!(check("POST", URI, &h, b"x", 1_000).unwrap_err().code(), "component_not_covered");
        let h: Vec<(&'static str, String)> =
            headers(&signed, None).into_iter().filter(|(n, _)| *n != SIGNATURE).collect();
        assert_eq!(check("POST", URI, &h, b"x", 1_000).unwrap_err().code(), "missing_signature");
    }
}
