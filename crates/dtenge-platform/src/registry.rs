//! The signed participant registry (SPEC §11): who takes part, with which
//! public keys, roles and endpoints, signed by NBK.
//!
//! ```text
//!  each host:  dtenge keygen ─► keys/<ID>.key, keys/<ID>.tls.key (0600, never leave the host)
//!                            └► <ID>.request.json (public keys, role, endpoint) ──► NBK
//!  NBK:        dtenge registry init|add|rotate|revoke|move --key REGISTRY.key
//!                 ─► registry.json = { serial, body: PlatformSpec + revoked keys, signer, signature }
//!  every service: registry.json verified against the trust anchor (registry.pub, or
//!                 `registry_key` in its config) at start — unsigned or badly signed: refused;
//!                 newer signed versions picked up while running (its own file, or any peer's
//!                 GET /registry) and applied to the live directory (`Participants::replace`).
//! ```
//!
//! The signature covers a canonical form of the body (JSON, object keys
//! sorted, no spaces), so the file can be pretty-printed, re-indented or have
//! its keys reordered without breaking it, while any change of content does.
//!
//! Invariants:
//! * A registry is used only if its signer is the trust anchor and the
//!   signature over the canonical body verifies.
//! * A running service never moves to an older or equal serial; the newest
//!   registry it accepted is written to its data directory (atomically) before
//!   it is applied, so a restart starts from it.
//! * Ledger parameters (`params`) are read at start: a change to them needs a
//!   restart of the services (participants, keys, endpoints and revocations
//!   do not).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use dtenge_crypto::{Ed25519, PublicKey, SecretKey, Signature, Verifier};
use dtenge_net::{Participants, RevokedKey};
use serde::{Deserialize, Serialize};

use crate::PlatformError;
use crate::spec::PlatformSpec;

/// Domain tag of the registry signature.
pub const REGISTRY_DOMAIN: &[u8] = b"dtenge/registry/v1";
/// The signed registry in a data directory.
pub const REGISTRY_FILE: &str = "registry.json";
/// The trust anchor in a data directory: the hex public key registries must be signed with.
pub const ANCHOR_FILE: &str = "registry.pub";
/// The name of NBK's registry signing key under `keys/`.
pub const SIGNING_KEY: &str = "REGISTRY";
/// Largest registry file read (from disk or from a peer).
pub const MAX_REGISTRY_BYTES: usize = 4 << 20;
/// The format name every registry file carries.
pub const FORMAT: &str = "dtenge-registry/1";

/// What NBK signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryBody {
    /// Increases by one with every change; services never go back.
    pub serial: u64,
    /// When NBK signed it (ms since the epoch).
    pub issued_at_ms: u64,
    /// Participants, institutions' DAs, providers, ledger parameters.
    pub platform: PlatformSpec,
    /// Keys withdrawn (rotated, compromised, participant left).
    #[serde(default)]
    pub revoked: Vec<RevokedKey>,
}

/// A registry file: the body and NBK's signature over its canonical form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedRegistry {
    /// [`FORMAT`].
    pub format: String,
    /// The body, as JSON.
    pub body: serde_json::Value,
    /// The signing key (must be the verifier's trust anchor).
    pub signer: PublicKey,
    /// Ed25519 over H([`REGISTRY_DOMAIN`], canonical JSON of `body`).
    pub signature: Signature,
}

/// Why a registry is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a registry file at all, or one without a signature.
    #[error("{0}: not a signed participant registry ({1}); NBK signs it with `dtenge registry`")]
    Unsigned(String, String),
    /// Signed, but not by the trusted key.
    #[error(
        "the registry is signed by {signed_by}, but this service trusts only {trusted} (registry_key / registry.pub)"
    )]
    WrongSigner {
        /// Who signed it.
        signed_by: PublicKey,
        /// The trust anchor.
        trusted: PublicKey,
    },
    /// The signature does not verify: the body was changed after signing.
    #[error("the registry's signature does not verify: its content was changed after NBK signed it")]
    BadSignature,
    /// Signed correctly, but its content is inconsistent.
    #[error("the signed registry is inconsistent: {0}")]
    Invalid(String),
    /// Not newer than what the service runs with.
    #[error("registry serial {offered} is not newer than the current {current}")]
    Older {
        /// The offered serial.
        offered: u64,
        /// The current one.
        current: u64,
    },
    /// A file problem.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What.
        source: std::io::Error,
    },
}

impl From<RegistryError> for PlatformError {
    fn from(error: RegistryError) -> Self {
        PlatformError::Config(error.to_string())
    }
}

/// JSON with object keys sorted and no insignificant space: what is signed.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(value: &serde_json::Value, out: &mut Vec<u8>) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(&serde_json::Value::String(key.clone()), out);
                    out.push(b':');
                    write(item, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            // Scalars have one serde_json form each (strings escaped the same way every time).
            scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn signed_message(body: &serde_json::Value) -> dtenge_crypto::Digest {
    dtenge_crypto::hash(REGISTRY_DOMAIN, &[&canonical_json(body)])
}

impl RegistryBody {
    /// Checks what a signature cannot: the participants form a valid directory.
    pub fn check(&self) -> Result<(), RegistryError> {
        Participants::with_revoked(self.platform.participants.clone(), self.revoked.clone(), self.serial)
            .map(|_| ())
            .map_err(|e| RegistryError::Invalid(e.to_string()))
    }

    /// The live directory this registry describes.
    pub fn directory(&self) -> Result<Participants, RegistryError> {
        Participants::with_revoked(self.platform.participants.clone(), self.revoked.clone(), self.serial)
            .map_err(|e| RegistryError::Invalid(e.to_string()))
    }
}

impl SignedRegistry {
    /// Signs `body` with NBK's registry key.
    pub fn sign(body: &RegistryBody, key: &SecretKey) -> Result<SignedRegistry, RegistryError> {
        body.check()?;
        let value = serde_json::to_value(body).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let signature = key.sign(signed_message(&value).as_bytes());
        Ok(SignedRegistry { format: FORMAT.into(), body: value, signer: key.public_key(), signature })
    }

    /// The body, if `anchor` signed it and the signature verifies.
    pub fn verify(&self, anchor: &PublicKey) -> Result<RegistryBody, RegistryError> {
        if &self.signer != anchor {
            return Err(RegistryError::WrongSigner { signed_by: self.signer, trusted: *anchor });
        }
        Ed25519
            .verify(anchor, signed_message(&self.body).as_bytes(), &self.signature)
            .map_err(|_| RegistryError::BadSignature)?;
        let body: RegistryBody =
            serde_json::from_value(self.body.clone()).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        body.check()?;
        Ok(body)
    }

    /// Parses a registry file's bytes (`origin` names it in errors).
    pub fn parse(bytes: &[u8], origin: &str) -> Result<SignedRegistry, RegistryError> {
        if bytes.len() > MAX_REGISTRY_BYTES {
            return Err(RegistryError::Unsigned(origin.into(), format!("larger than {MAX_REGISTRY_BYTES} bytes")));
        }
        let parsed: SignedRegistry =
            serde_json::from_slice(bytes).map_err(|e| RegistryError::Unsigned(origin.into(), e.to_string()))?;
        if parsed.format != FORMAT {
            return Err(RegistryError::Unsigned(
                origin.into(),
                format!("format {:?}, expected {FORMAT:?}", parsed.format),
            ));
        }
        Ok(parsed)
    }

    /// The file's bytes (pretty JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads a registry file.
    pub fn load(path: &Path) -> Result<SignedRegistry, RegistryError> {
        let bytes =
            std::fs::read(path).map_err(|source| RegistryError::Io { path: path.display().to_string(), source })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Writes a registry file atomically (a crash leaves the old or the new one).
    pub fn save(&self, path: &Path) -> Result<(), RegistryError> {
        write_atomically(path, &self.to_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let io = |path: &Path, source| RegistryError::Io { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Reads a trust anchor file (hex public key).
pub fn load_anchor(path: &Path) -> Result<PublicKey, RegistryError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| RegistryError::Io { path: path.display().to_string(), source })?;
    parse_anchor(&text).map_err(|reason| RegistryError::Invalid(format!("{}: {reason}", path.display())))
}

/// Parses a trust anchor (hex public key).
pub fn parse_anchor(text: &str) -> Result<PublicKey, String> {
    let key: PublicKey = serde_json::from_value(serde_json::Value::String(text.trim().to_string()))
        .map_err(|e| format!("not a hex Ed25519 public key: {e}"))?;
    key.check().map_err(|e| format!("not a usable Ed25519 public key: {e}"))?;
    Ok(key)
}

/// Writes a trust anchor file.
pub fn save_anchor(path: &Path, key: &PublicKey) -> Result<(), RegistryError> {
    write_atomically(path, format!("{key}\n").as_bytes())
}

/// Reads and verifies the registry of a data directory against its anchor
/// (`registry.pub`, or `anchor` when given).
pub fn load_verified(data: &Path, anchor: Option<PublicKey>) -> Result<(SignedRegistry, RegistryBody), RegistryError> {
    let anchor = match anchor {
        Some(anchor) => anchor,
        None => load_anchor(&data.join(ANCHOR_FILE))?,
    };
    let signed = SignedRegistry::load(&data.join(REGISTRY_FILE))?;
    let body = signed.verify(&anchor)?;
    Ok((signed, body))
}

/// What came of offering a registry to a running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// Newer and valid: applied.
    Applied {
        /// Its serial.
        serial: u64,
    },
    /// The same serial as the current one (nothing to do).
    Current,
}

/// The registry a running process works with: verifies offered updates and
/// applies them to the shared directory without a restart.
pub struct LiveRegistry {
    anchor: PublicKey,
    file: PathBuf,
    participants: Arc<Participants>,
    current: Mutex<(u64, Arc<Vec<u8>>)>,
}

impl LiveRegistry {
    /// Opens the registry of `data` (refusing an unsigned or badly signed one)
    /// and the live directory it describes.
    pub fn open(data: &Path, anchor: PublicKey) -> Result<(Arc<LiveRegistry>, RegistryBody), RegistryError> {
        let file = data.join(REGISTRY_FILE);
        let (signed, body) = load_verified(data, Some(anchor))?;
        let participants = Arc::new(body.directory()?);
        let live = LiveRegistry {
            anchor,
            file,
            participants,
            current: Mutex::new((body.serial, Arc::new(signed.to_bytes()))),
        };
        metrics::gauge!("dtenge_registry_serial").set(body.serial as f64);
        Ok((Arc::new(live), body))
    }

    /// The live directory (share it with every service of the process).
    pub fn participants(&self) -> Arc<Participants> {
        Arc::clone(&self.participants)
    }

    /// The current serial.
    pub fn serial(&self) -> u64 {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    /// The current registry file's bytes (what `GET /registry` serves).
    pub fn current_bytes(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner).1)
    }

    /// Verifies `bytes` and, if newer, saves and applies them.
    pub fn offer(&self, bytes: &[u8], origin: &str) -> Result<Offered, RegistryError> {
        let signed = SignedRegistry::parse(bytes, origin)?;
        let body = signed.verify(&self.anchor)?;
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if body.serial == current.0 {
            return Ok(Offered::Current);
        }
        if body.serial < current.0 {
            return Err(RegistryError::Older { offered: body.serial, current: current.0 });
        }
        signed.save(&self.file)?;
        self.participants
            .replace(body.platform.participants.clone(), body.revoked.clone(), body.serial)
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        *current = (body.serial, Arc::new(signed.to_bytes()));
        tracing::info!(serial = body.serial, %origin, participants = body.platform.participants.len(),
            revoked = body.revoked.len(), "participant registry updated");
        metrics::gauge!("dtenge_registry_serial").set(body.serial as f64);
        Ok(Offered::Applied { serial: body.serial })
    }
}

// Reading a platform belongs with the registry: it prefers the signed one.
impl PlatformSpec {
    /// Reads the platform of a data directory: its signed registry
    /// (`registry.json`, verified against `registry.pub`) where there is one —
    /// a platform of separate services — or else `platform.json` (`dtenge serve`).
    pub fn load(data: &Path) -> Result<PlatformSpec, PlatformError> {
        if data.join(REGISTRY_FILE).exists() {
            let (_, body) = load_verified(data, None)?;
            return Ok(body.platform);
        }
        let path = data.join("platform.json");
        let text = std::fs::read_to_string(&path).map_err(|e| PlatformError::io(&path, e))?;
        let mut spec: PlatformSpec =
            serde_json::from_str(&text).map_err(|e| PlatformError::Config(format!("{}: {e}", path.display())))?;
        spec.fill_hosts();
        spec.fill_counterparty_central_banks();
        Ok(spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_spaces() {
        let a: serde_json::Value = serde_json::from_str(r#"{ "b": [ {"y":1, "x":"é\n"} ], "a": null }"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":null,"b":[{"x":"é\n","y":1}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(String::from_utf8(canonical_json(&a)).unwrap(), r#"{"a":null,"b":[{"x":"é\n","y":1}]}"#);
    }
}
