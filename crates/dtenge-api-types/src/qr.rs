//! QR payments: the EMVCo merchant-presented QR code (EMV® QRCPS-MPM, the
//! layout national QR standards follow) with a DT template, the wire bodies
//! of the QR routes, and the merchant's bank's signature of a dynamic QR.
//!
//! ```text
//!  00 02 "01"                payload format indicator
//!  01 02 "11" | "12"         static | dynamic
//!  26 .. DT template         00 "KZ.DT"  01 payee address (base64url, 43)
//!                            02 bank (participant id)  [03 expiry, unix s]
//!  52 04 "0000"              merchant category code
//!  53 03 "398"               KZT (the digital tenge's unit)
//!  [54 .. "1500.00"]         amount (dynamic only)
//!  58 02 "KZ"  59 .. name  60 .. city
//!  [62 .. 05 reference]      reference label (dynamic only)
//!  [80 99 00 "KZ.DT" 01 sig] the bank's Ed25519 signature (dynamic only)
//!  63 04 CRC                 CRC-16/CCITT-FALSE over everything before it, "6304" included
//! ```
//!
//! A length is two decimal digits counting characters (EMVCo), so no data
//! object is longer than 99. The signature covers `"dtenge/qr/v1" ‖` the
//! payload's characters before the `80` object (UTF-8): every field a payer
//! sees. A static QR carries no amount, reference or signature; a dynamic
//! one carries all three and an expiry, and is paid once.
//!
//! Invariants: [`parse`] is a pure function of the text; every refusal is a
//! [`QrError`] with a stable [`QrError::code`]; the payload is at most
//! [`PAYLOAD_CHARS_MAX`] characters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use dtenge_crypto::{PublicKey, Signature, Signer, Verifier};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The globally unique identifier of the DT templates (tags 26 and 80).
pub const GUI: &str = "KZ.DT";
/// Longest payload accepted (an EMVCo payload is at most 512 characters).
pub const PAYLOAD_CHARS_MAX: usize = 512;
/// Longest merchant name (tag 59).
pub const NAME_CHARS_MAX: usize = 25;
/// Longest city (tag 60).
pub const CITY_CHARS_MAX: usize = 15;
/// Longest reference label (tag 62, sub-tag 05).
pub const REFERENCE_CHARS_MAX: usize = 25;
/// Longest amount text (tag 54).
pub const AMOUNT_CHARS_MAX: usize = 13;
/// The domain tag of the bank's signature.
pub const SIGNATURE_DOMAIN: &[u8] = b"dtenge/qr/v1";
/// ISO 4217 numeric code of the tenge.
pub const CURRENCY_KZT: &str = "398";

/// Why a QR payload was refused; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Not a well-formed EMVCo TLV string.
    #[error("the QR is not an EMVCo merchant-presented payload: {0}")]
    Malformed(String),
    /// The CRC (tag 63) does not match: the text was changed or misread.
    #[error(
        "the QR's checksum does not match (tag 63 says {found}, the content gives {computed}): it was changed or misread"
    )]
    Checksum {
        /// What tag 63 says.
        found: String,
        /// What the content gives.
        computed: String,
    },
    /// Not a DT QR (no template with GUI `KZ.DT`), or a field it needs is missing or invalid.
    #[error("not a DT payment QR: {0}")]
    NotDt(String),
    /// A dynamic QR whose bank signature does not verify.
    #[error("the QR's signature by bank {bank} does not verify: it was altered after the bank made it")]
    BadSignature {
        /// The bank named in the QR.
        bank: String,
    },
    /// A dynamic QR past its expiry.
    #[error("the QR expired at {expires_at_s} s (the platform clock is {now_s} s); ask the merchant for a new one")]
    Expired {
        /// Its expiry, unix seconds.
        expires_at_s: u64,
        /// The clock, unix seconds.
        now_s: u64,
    },
    /// Something to be encoded does not fit the layout.
    #[error("cannot make the QR: {0}")]
    Unencodable(String),
}

impl QrError {
    /// The stable code (API error code).
    pub fn code(&self) -> &'static str {
        match self {
            QrError::Malformed(_) => "qr_malformed",
            QrError::Checksum { .. } => "qr_checksum",
            QrError::NotDt(_) => "qr_not_dt",
            QrError::BadSignature { .. } => "qr_bad_signature",
            QrError::Expired { .. } => "qr_expired",
            QrError::Unencodable(_) => "qr_unencodable",
        }
    }
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection), as EMVCo specifies for tag 63.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// One data object: `(tag, value)`.
pub type DataObject = (String, String);

/// Splits a TLV string into data objects (tags are two digits, lengths two digits counting characters).
pub fn tlv(text: &str) -> Result<Vec<DataObject>, QrError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < chars.len() {
        let head: String = chars.get(at..at.saturating_add(4)).map(|c| c.iter().collect()).unwrap_or_default();
        if head.len() != 4 || !head.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QrError::Malformed(format!("at character {at}: expected a 2-digit tag and a 2-digit length")));
        }
        let (tag, len) = head.split_at(2);
        let len: usize = len.parse().map_err(|_| QrError::Malformed(format!("bad length at {at}")))?;
        let start = at.saturating_add(4);
        let end = start.saturating_add(len);
        let value: String = chars
            .get(start..end)
            .ok_or_else(|| QrError::Malformed(format!("tag {tag} says {len} characters, fewer remain")))?
            .iter()
            .collect();
        out.push((tag.to_string(), value));
        at = end;
    }
    Ok(out)
}

fn object(out: &mut String, tag: &str, value: &str) -> Result<(), QrError> {
    let len = value.chars().count();
    if len > 99 {
        return Err(QrError::Unencodable(format!("tag {tag} would be {len} characters, the most is 99")));
    }
    out.push_str(&format!("{tag}{len:02}{value}"));
    Ok(())
}

/// A DT payment QR as a payer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QrPayment {
    /// The payee DA's address (hex public key).
    pub address: String,
    /// The bank (participant id) hosting the payee's DA; for a dynamic QR, the signer.
    pub bank: String,
    /// The merchant's name (tag 59).
    pub name: String,
    /// The merchant's city (tag 60).
    pub city: String,
    /// Dynamic only: the amount, tiyn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_tiyn: Option<u64>,
    /// Dynamic only: the merchant's reference (paid once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Dynamic only: expiry, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_s: Option<u64>,
}

impl QrPayment {
    /// Dynamic: it has an amount, a reference and an expiry (and must carry the bank's signature).
    pub fn is_dynamic(&self) -> bool {
        self.amount_tiyn.is_some()
    }

    /// The memo the payment carries, so the merchant sees which QR was paid.
    pub fn memo(&self) -> Option<String> {
        self.reference.as_ref().map(|r| format!("QR {r}"))
    }
}

/// Amount text of tag 54 (`1500.00`) from tiyn.
pub fn amount_text(tiyn: u64) -> String {
    format!("{}.{:02}", tiyn / 100, tiyn % 100)
}

/// Tiyn from the text of tag 54: digits, optionally `.` and one or two digits.
pub fn amount_tiyn(text: &str) -> Result<u64, QrError> {
    let bad = || QrError::NotDt(format!("amount {text:?} is not a positive amount like 1500.00"));
    if text.is_empty() || text.len() > AMOUNT_CHARS_MAX {
        return Err(bad());
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    let tiyn = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)?;
    if tiyn == 0 {
        return Err(bad());
    }
    Ok(tiyn)
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), QrError> {
    if text.trim().is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(QrError::Unencodable(format!("{what} must be 1–{max} printable characters")));
    }
    Ok(())
}

fn address_bytes(hex_text: &str) -> Result<[u8; 32], QrError> {
    let key: PublicKey =
        hex_text.parse().map_err(|_| QrError::Unencodable(format!("address {hex_text:?} is not a 32-byte hex key")))?;
    Ok(*key.as_bytes())
}

fn unsigned_payload(qr: &QrPayment) -> Result<String, QrError> {
    check_text("name", &qr.name, NAME_CHARS_MAX)?;
    check_text("city", &qr.city, CITY_CHARS_MAX)?;
    let dynamic = qr.is_dynamic();
    if dynamic != (qr.reference.is_some() && qr.expires_at_s.is_some()) {
        return Err(QrError::Unencodable(
            "a dynamic QR has an amount, a reference and an expiry; a static one none".into(),
        ));
    }
    let mut template = String::new();
    object(&mut template, "00", GUI)?;
    object(&mut template, "01", &BASE64URL.encode(address_bytes(&qr.address)?))?;
    object(&mut template, "02", &qr.bank)?;
    if let Some(expires) = qr.expires_at_s {
        object(&mut template, "03", &expires.to_string())?;
    }
    let mut out = String::new();
    object(&mut out, "00", "01")?;
    object(&mut out, "01", if dynamic { "12" } else { "11" })?;
    object(&mut out, "26", &template)?;
    object(&mut out, "52", "0000")?;
    object(&mut out, "53", CURRENCY_KZT)?;
    if let Some(tiyn) = qr.amount_tiyn {
        if tiyn == 0 {
            return Err(QrError::Unencodable("the amount must be more than 0".into()));
        }
        object(&mut out, "54", &amount_text(tiyn))?;
    }
    object(&mut out, "58", "KZ")?;
    object(&mut out, "59", &qr.name)?;
    object(&mut out, "60", &qr.city)?;
    if let Some(reference) = &qr.reference {
        check_text("reference", reference, REFERENCE_CHARS_MAX)?;
        let mut extra = String::new();
        object(&mut extra, "05", reference)?;
        object(&mut out, "62", &extra)?;
    }
    Ok(out)
}

fn with_crc(mut payload: String) -> String {
    payload.push_str("6304");
    let crc = crc16(payload.as_bytes());
    payload.push_str(&format!("{crc:04X}"));
    payload
}

fn signing_message(prefix: &str) -> Vec<u8> {
    [SIGNATURE_DOMAIN, prefix.as_bytes()].concat()
}

/// A static QR (payee only; the payer enters the amount).
pub fn encode_static(qr: &QrPayment) -> Result<String, QrError> {
    if qr.is_dynamic() || qr.reference.is_some() || qr.expires_at_s.is_some() {
        return Err(QrError::Unencodable("a static QR has no amount, reference or expiry".into()));
    }
    Ok(with_crc(unsigned_payload(qr)?))
}

/// A dynamic QR signed by the merchant's bank (`bank_key` is `qr.bank`'s registered key).
pub fn encode_dynamic(qr: &QrPayment, bank_key: &dyn Signer) -> Result<String, QrError> {
    if !qr.is_dynamic() {
        return Err(QrError::Unencodable("a dynamic QR has an amount".into()));
    }
    let mut payload = unsigned_payload(qr)?;
    let signature = bank_key.sign(&signing_message(&payload));
    let mut template = String::new();
    object(&mut template, "00", GUI)?;
    object(&mut template, "01", &BASE64URL.encode(signature.as_bytes()))?;
    object(&mut payload, "80", &template)?;
    if payload.chars().count() > PAYLOAD_CHARS_MAX.saturating_sub(8) {
        return Err(QrError::Unencodable(format!("longer than {PAYLOAD_CHARS_MAX} characters")));
    }
    Ok(with_crc(payload))
}

/// A parsed payload with its signature, before the signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedQr {
    /// What it asks to pay.
    pub payment: QrPayment,
    /// Dynamic: the bank's signature and the text it covers.
    pub signature: Option<(Signature, String)>,
}

impl ParsedQr {
    /// Checks a dynamic QR's signature against `bank_key` (the registered key
    /// of `payment.bank`) and its expiry against `now_s`; a static QR passes.
    pub fn check(&self, bank_key: Option<&PublicKey>, now_s: u64, verifier: &dyn Verifier) -> Result<(), QrError> {
        let Some((signature, prefix)) = &self.signature else {
            return Ok(());
        };
        let bad = || QrError::BadSignature { bank: self.payment.bank.clone() };
        let key = bank_key.ok_or_else(bad)?;
        verifier.verify(key, &signing_message(prefix), signature).map_err(|_| bad())?;
        match self.payment.expires_at_s {
            Some(expires_at_s) if expires_at_s <= now_s => Err(QrError::Expired { expires_at_s, now_s }),
            _ => Ok(()),
        }
    }
}

fn template_fields(value: &str) -> Result<Vec<DataObject>, QrError> {
    let fields = tlv(value)?;
    Ok(fields)
}

fn field<'a>(fields: &'a [DataObject], tag: &str) -> Option<&'a str> {
    fields.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str())
}

/// Parses a payload: TLV, CRC, the DT template; the signature is checked by [`ParsedQr::check`].
pub fn parse(text: &str) -> Result<ParsedQr, QrError> {
    let text = text.trim();
    if text.chars().count() > PAYLOAD_CHARS_MAX {
        return Err(QrError::Malformed(format!("longer than {PAYLOAD_CHARS_MAX} characters")));
    }
    let objects = tlv(text)?;
    let Some((last_tag, crc_text)) = objects.last() else {
        return Err(QrError::Malformed("empty".into()));
    };
    if last_tag != "63" || crc_text.len() != 4 {
        return Err(QrError::Malformed("the last data object must be the CRC (tag 63, 4 characters)".into()));
    }
    let body = text.get(..text.len().saturating_sub(4)).unwrap_or_default();
    let computed = format!("{:04X}", crc16(body.as_bytes()));
    if !crc_text.eq_ignore_ascii_case(&computed) {
        return Err(QrError::Checksum { found: crc_text.clone(), computed });
    }
    if field(&objects, "00") != Some("01") {
        return Err(QrError::Malformed("payload format indicator (tag 00) must be 01 and come first".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some((tag, _)) = objects.iter().find(|(tag, _)| !seen.insert(tag.clone())) {
        return Err(QrError::Malformed(format!("tag {tag} appears twice")));
    }
    let template = objects
        .iter()
        .filter(|(tag, _)| ("26".."52").contains(&tag.as_str()))
        .map(|(_, v)| template_fields(v))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|fields| field(fields, "00") == Some(GUI))
        .ok_or_else(|| QrError::NotDt(format!("no merchant account template with identifier {GUI}")))?;
    let address = field(&template, "01")
        .and_then(|a| BASE64URL.decode(a).ok())
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(|b| PublicKey(b).to_string())
        .ok_or_else(|| QrError::NotDt("the payee address (template 01) is not a 32-byte key in base64url".into()))?;
    let bank = field(&template, "02").ok_or_else(|| QrError::NotDt("no bank (template 02)".into()))?.to_string();
    let expires_at_s = field(&template, "03")
        .map(|e| e.parse::<u64>().map_err(|_| QrError::NotDt(format!("expiry {e:?} is not unix seconds"))))
        .transpose()?;
    if let Some(currency) = field(&objects, "53")
        && currency != CURRENCY_KZT
    {
        return Err(QrError::NotDt(format!("currency {currency} is not the tenge ({CURRENCY_KZT})")));
    }
    let amount_tiyn = field(&objects, "54").map(amount_tiyn).transpose()?;
    let reference = field(&objects, "62").map(tlv).transpose()?.and_then(|f| field(&f, "05").map(str::to_string));
    let payment = QrPayment {
        address,
        bank,
        name: field(&objects, "59").unwrap_or_default().to_string(),
        city: field(&objects, "60").unwrap_or_default().to_string(),
        amount_tiyn,
        reference,
        expires_at_s,
    };
    let dynamic = field(&objects, "01") == Some("12");
    let signature = signature_of(text, &objects)?;
    match (dynamic, payment.is_dynamic() && payment.reference.is_some() && payment.expires_at_s.is_some(), &signature) {
        (true, true, Some(_)) => {}
        (false, false, None) if payment.reference.is_none() && payment.expires_at_s.is_none() => {}
        _ => {
            return Err(QrError::NotDt(
                "a dynamic QR (01 = 12) needs an amount, a reference, an expiry and the bank's signature; a static one (11) none of them".into(),
            ));
        }
    }
    Ok(ParsedQr { payment, signature })
}

/// The signature object (tag 80) and the text before it; it must come right before the CRC.
fn signature_of(text: &str, objects: &[DataObject]) -> Result<Option<(Signature, String)>, QrError> {
    let Some(position) = objects.iter().position(|(tag, _)| tag == "80") else {
        return Ok(None);
    };
    if position.saturating_add(2) != objects.len() {
        return Err(QrError::Malformed("the signature (tag 80) must come right before the CRC".into()));
    }
    let fields = tlv(objects.get(position).map(|(_, v)| v.as_str()).unwrap_or_default())?;
    if field(&fields, "00") != Some(GUI) {
        return Err(QrError::NotDt(format!("template 80 is not {GUI}'s")));
    }
    let signature = field(&fields, "01")
        .and_then(|s| BASE64URL.decode(s).ok())
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(Signature)
        .ok_or_else(|| QrError::NotDt("the signature (template 80, 01) is not 64 bytes in base64url".into()))?;
    let sig_len = objects.get(position).map(|(_, v)| v.chars().count()).unwrap_or_default();
    // Everything before "80" + length + value + "6304" + CRC.
    let prefix_chars = text.chars().count().saturating_sub(sig_len + 4 + 8);
    Ok(Some((signature, text.chars().take(prefix_chars).collect())))
}

/// Paying a QR (`POST /api/v1/qr/pay` and `/qr/prepare`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QrPayRequest {
    /// The paying DA (on the caller's node).
    pub from: String,
    /// The QR's text, as read from the image.
    pub payload: String,
    /// A static QR: the amount the payer enters, tiyn. Refused for a dynamic QR (its amount is signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_tiyn: Option<u64>,
}

/// A client-signed QR payment (`POST /api/v1/qr/submit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QrSubmit {
    /// The canonical encoding of the transaction from `/qr/prepare` with the holder's signature, hex.
    pub transaction: String,
}

/// A QR checked by the payer's bank (`POST /api/v1/qr/check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QrCheck {
    /// The QR's text.
    pub payload: String,
}

/// What a QR asks to pay and whether it may be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QrView {
    /// `static` or `dynamic`.
    pub kind: String,
    /// The payment it asks for.
    pub payment: QrPayment,
    /// A dynamic QR already paid: the transaction that paid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_by: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use dtenge_crypto::{Ed25519, SecretKey};

    use super::*;

    /// The example payload of EMV® QRCPS-MPM v1.1 (appendix), with its CRC.
    const EMVCO_EXAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

    fn merchant() -> QrPayment {
        QrPayment {
            address: SecretKey::from_seed([7; 32]).public_key().to_string(),
            bank: "STB2".into(),
            name: "Coffee Point".into(),
            city: "Astana".into(),
            amount_tiyn: Some(150_050),
            reference: Some("ORDER-42".into()),
            expires_at_s: Some(1_800_000_000),
        }
    }

    #[test]
    fn crc_matches_the_standard_check_value_and_the_emvco_example() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        let body = EMVCO_EXAMPLE.strip_suffix("A13A").unwrap();
        assert_eq!(crc16(body.as_bytes()), 0xA13A);
    }

    #[test]
    fn the_emvco_example_splits_into_its_data_objects_counting_characters() {
        let objects = tlv(EMVCO_EXAMPLE).unwrap();
        let tags: Vec<&str> = objects.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tags, ["00", "01", "29", "31", "52", "58", "59", "60", "64", "54", "53", "55", "62", "91", "63"]);
        let language = tlv(&objects[8].1).unwrap();
        assert_eq!(language[1], ("01".to_string(), "最佳运输".to_string()));
        // Not a DT QR: it is refused naming why, after its CRC passed.
        assert_eq!(parse(EMVCO_EXAMPLE).unwrap_err().code(), "qr_not_dt");
    }

    #[test]
    fn a_dynamic_qr_round_trips_and_verifies_against_its_bank() {
        let bank = SecretKey::from_seed([1; 32]);
        let text = encode_dynamic(&merchant(), &bank).unwrap();
        assert!(text.starts_with("000201010212"), "{text}");
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.payment, merchant());
        assert_eq!(parsed.payment.memo().as_deref(), Some("QR ORDER-42"));
        parsed.check(Some(&bank.public_key()), 1_700_000_000, &Ed25519).unwrap();
        // Another bank's key, or the right one after expiry: refused.
        let other = SecretKey::from_seed([2; 32]).public_key();
        assert_eq!(parsed.check(Some(&other), 1_700_000_000, &Ed25519).unwrap_err().code(), "qr_bad_signature");
        assert_eq!(parsed.check(None, 1_700_000_000, &Ed25519).unwrap_err().code(), "qr_bad_signature");
        assert_eq!(
            parsed.check(Some(&bank.public_key()), 1_800_000_000, &Ed25519).unwrap_err(),
            QrError::Expired { expires_at_s: 1_800_000_000, now_s: 1_800_000_000 }
        );
    }

    fn recrc(text: &str) -> String {
        with_crc(text.get(..text.len() - 8).unwrap().to_string())
    }

    #[test]
    fn a_tampered_dynamic_qr_is_refused() {
        let bank = SecretKey::from_seed([1; 32]);
        let text = encode_dynamic(&merchant(), &bank).unwrap();
        // A changed character without a new CRC: checksum.
        let changed = text.replacen("1500.50", "1.50000", 1);
        assert_eq!(parse(&changed).unwrap_err().code(), "qr_checksum");
        // A changed amount with a recomputed CRC: the bank's signature fails.
        let forged = recrc(&text.replacen("54071500.50", "54071000.50", 1));
        let parsed = parse(&forged).unwrap();
        assert_eq!(parsed.payment.amount_tiyn, Some(100_050));
        assert_eq!(parsed.check(Some(&bank.public_key()), 0, &Ed25519).unwrap_err().code(), "qr_bad_signature");
        // The signature removed, the QR made "static" with an amount: refused as not DT.
        let stripped = recrc(&text.replacen("010212", "010211", 1));
        assert_eq!(parse(&stripped).unwrap_err().code(), "qr_not_dt");
    }

    #[test]
    fn a_static_qr_has_only_the_payee() {
        let qr = QrPayment { amount_tiyn: None, reference: None, expires_at_s: None, ..merchant() };
        let text = encode_static(&qr).unwrap();
        assert!(text.starts_with("000201010211"));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.payment, qr);
        assert!(parsed.signature.is_none());
        parsed.check(None, u64::MAX, &Ed25519).unwrap();
        assert!(encode_static(&merchant()).is_err());
        let long = QrPayment { name: "x".repeat(26), ..qr };
        assert_eq!(encode_static(&long).unwrap_err().code(), "qr_unencodable");
    }

    #[test]
    fn amounts_are_exact_tiyn() {
        assert_eq!(amount_tiyn("1500.5").unwrap(), 150_050);
        assert_eq!(amount_tiyn("23.72").unwrap(), 2_372);
        assert_eq!(amount_tiyn("7").unwrap(), 700);
        for bad in ["", "0", "0.00", "1.234", "-1", "1,00", ".5", "99999999999999", "1e3"] {
            assert!(amount_tiyn(bad).is_err(), "{bad}");
        }
        assert_eq!(amount_text(150_050), "1500.50");
    }

    #[test]
    fn malformed_text_is_refused_without_panicking() {
        for bad in ["", "00", "0002", "000201", "6304ABCD", "00020163", "ZZ02016304FFFF", "0099"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse(&"0".repeat(600)).unwrap_err().code(), "qr_malformed");
    }
}
