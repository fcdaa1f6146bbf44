//! The key ceremony (SPEC §11): every participant makes its own keys on its
//! own host; NBK builds and signs the participant registry from their public
//! parts, and changes it — a bank joins, a key is rotated or revoked, an
//! endpoint moves — by signing a new version. docs/deploy.md walks through it.
//!
//! ```text
//!  bank host: keygen(data, STB4, …) ─► keys/STB4.key, keys/STB4.tls.key, keys/STB4-DA.key (0600)
//!                                   └► STB4.request.json  (public: keys, role, endpoint, own DA)
//!  NBK host:  genesis(requests)  or  add / rotate / revoke / move_endpoint (current body)
//!               ─► next body (serial + 1) ─► SignedRegistry::sign(REGISTRY.key) ─► registry.json
//! ```
//!
//! Each operation is a pure function from the current body to the next one;
//! signing and files are the caller's (the `dtenge registry` command).
//!
//! Invariants: a private key file is created once (never overwritten) with
//! mode 0600 and never leaves its host — only public keys travel in a
//! request; every key a participant stops using is listed as revoked in the
//! next registry; the ledger parameters follow the participants' keys (a
//! node's host key, the oracle's attestation key).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dtenge_crypto::PublicKey;
use dtenge_ledger::Params;
use dtenge_net::{ParticipantInfo, RevokedKey, Role, TlsIdentity};
use dtenge_node::accounts::HolderKind;
use dtenge_oracle::model::Registry;
use dtenge_types::{Address, Currency, IinBin, ParticipantId};
use serde::{Deserialize, Serialize};

use crate::PlatformError;
use crate::registry::RegistryBody;
use crate::spec::{InstitutionAccount, Keys, PlatformSpec, ProviderSpec, write_private};

/// What a participant sends NBK to be listed: public parts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRequest {
    /// Its directory entry (EDS key, TLS key, role, endpoint).
    pub participant: ParticipantInfo,
    /// The DAs it holds itself (a bank's own DA, NBK's issuing DA).
    #[serde(default)]
    pub institutions: Vec<InstitutionAccount>,
    /// For an event provider: the oracle registries it may write.
    #[serde(default)]
    pub registries: BTreeSet<Registry>,
}

/// What `keygen` makes.
#[derive(Debug, Clone)]
pub struct KeygenOptions {
    /// The participant id.
    pub id: ParticipantId,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Where its service will listen (`host:port`), for services.
    pub endpoint: Option<String>,
    /// Make a TLS key too (every service on its own host does).
    pub tls: bool,
    /// Its own DA: BIN and name (nodes: NBK, banks, the Treasury).
    pub institution: Option<(IinBin, String)>,
    /// For an event provider: the oracle registries it asks to write.
    pub registries: BTreeSet<Registry>,
}

/// The TLS key file of participant `id` under `keys/`.
pub fn tls_key_path(data: &Path, id: &str) -> PathBuf {
    data.join("keys").join(format!("{id}.tls.key"))
}

/// The request file `keygen` writes.
pub fn request_path(data: &Path, id: &str) -> PathBuf {
    data.join(format!("{id}.request.json"))
}

/// Makes a participant's keys in `data/keys/` (refusing to overwrite any)
/// and returns — and writes to `data/<ID>.request.json` — the request to send NBK.
pub fn keygen(data: &Path, options: &KeygenOptions) -> Result<ParticipantRequest, PlatformError> {
    let keys = Keys::at(data);
    let id = options.id.as_str();
    let key = keys.create(id)?;
    let tls_key = if options.tls {
        let path = tls_key_path(data, id);
        if path.exists() {
            return Err(PlatformError::Config(format!("{} exists: a key is never overwritten", path.display())));
        }
        let (identity, pem) = TlsIdentity::generate().map_err(|e| PlatformError::Config(e.to_string()))?;
        write_private(&path, &pem)?;
        Some(identity.public_key())
    } else {
        None
    };
    let mut institutions = Vec::new();
    if let Some((bin, name)) = &options.institution {
        let da = format!("{id}-DA");
        let secret = keys.create(&da)?;
        institutions.push(InstitutionAccount {
            key: da,
            host: options.id.clone(),
            bin: *bin,
            name: name.clone(),
            address: Address(secret.public_key()),
            kind: HolderKind::Institution,
        });
    }
    let request = ParticipantRequest {
        participant: ParticipantInfo {
            id: options.id.clone(),
            name: options.name.clone(),
            role: options.role,
            public_key: key.public_key(),
            endpoint: options.endpoint.clone(),
            tls_key,
        },
        institutions,
        registries: options.registries.clone(),
    };
    let path = request_path(data, id);
    let text = serde_json::to_string_pretty(&request).map_err(|e| PlatformError::Config(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| PlatformError::io(&path, e))?;
    Ok(request)
}

/// Reads a request file.
pub fn load_request(path: &Path) -> Result<ParticipantRequest, PlatformError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlatformError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| PlatformError::Config(format!("{}: not a participant request: {e}", path.display())))
}

fn config(message: String) -> PlatformError {
    PlatformError::Config(message)
}

/// Ledger parameters that cannot be derived from the participants.
#[derive(Debug, Clone, Default)]
pub struct GenesisOptions {
    /// Tax authorities' DAs (VAT tokens become standard there).
    pub tax_authorities: BTreeSet<Address>,
    /// Authorised bodies whose signed orders freeze, arrest and collect.
    pub authorities: BTreeSet<PublicKey>,
    /// Other currencies and their issuers' DAs (cross-border).
    pub issuers: BTreeMap<Currency, Address>,
}

/// The first registry (serial 1) from every participant's request: DT's
/// issuer is NBK's own DA, the oracles' keys attest, every node's key is a
/// host key.
pub fn genesis(
    requests: &[ParticipantRequest],
    options: &GenesisOptions,
    now_ms: u64,
) -> Result<RegistryBody, PlatformError> {
    let mut platform = PlatformSpec {
        participants: Vec::new(),
        institutions: Vec::new(),
        providers: Vec::new(),
        params: Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() },
    };
    for request in requests {
        admit(&mut platform, request)?;
    }
    let nbk = platform
        .participants
        .iter()
        .find(|p| p.role == Role::Nbk)
        .ok_or_else(|| config("the registry needs NBK's request (role nbk)".into()))?;
    let issuing = platform
        .institutions
        .iter()
        .find(|i| i.host == nbk.id)
        .ok_or_else(|| config(format!("{}'s request names no own DA: DT needs an issuing DA", nbk.id)))?;
    platform.params.issuers.insert(Currency::DT, issuing.address);
    platform.params.issuers.extend(options.issuers.clone());
    platform.params.tax_authorities = options.tax_authorities.clone();
    platform.params.authorities = options.authorities.clone();
    let body = RegistryBody { serial: 1, issued_at_ms: now_ms, platform, revoked: Vec::new() };
    body.check().map_err(|e| config(e.to_string()))?;
    Ok(body)
}

/// Lists a request's participant, DAs and provider rights, and its keys in
/// the parameters.
fn admit(platform: &mut PlatformSpec, request: &ParticipantRequest) -> Result<(), PlatformError> {
    let p = &request.participant;
    if platform.participant(p.id.as_str()).is_some() {
        return Err(config(format!("{} is listed already (to change its keys use rotate)", p.id)));
    }
    for institution in &request.institutions {
        if institution.host != p.id {
            return Err(config(format!("{}'s request lists a DA hosted by {}", p.id, institution.host)));
        }
    }
    platform.participants.push(p.clone());
    platform.institutions.extend(request.institutions.iter().cloned());
    if p.role == Role::Provider {
        platform.providers.push(ProviderSpec { id: p.id.clone(), registries: request.registries.clone() });
    }
    if p.role.is_node() {
        platform.params.hosts.insert(p.id.clone(), p.public_key);
    }
    if p.role == Role::Oracle {
        platform.params.oracles.insert(p.public_key);
    }
    Ok(())
}

fn next(current: &RegistryBody, now_ms: u64) -> RegistryBody {
    let mut body = current.clone();
    body.serial = current.serial.saturating_add(1);
    body.issued_at_ms = now_ms;
    body
}

/// A new participant joins (a bank, a provider…).
pub fn add(current: &RegistryBody, request: &ParticipantRequest, now_ms: u64) -> Result<RegistryBody, PlatformError> {
    let mut body = next(current, now_ms);
    if body
        .revoked
        .iter()
        .any(|r| r.key == request.participant.public_key || Some(r.key) == request.participant.tls_key)
    {
        return Err(config(format!("{}'s request uses a revoked key: make new keys", request.participant.id)));
    }
    admit(&mut body.platform, request)?;
    Ok(body)
}

/// A participant's keys are replaced by the ones in its new request (its EDS
/// key; its TLS key too if the request has one); the old ones are revoked
/// ("rotated").
pub fn rotate(
    current: &RegistryBody,
    request: &ParticipantRequest,
    now_ms: u64,
) -> Result<RegistryBody, PlatformError> {
    let mut body = next(current, now_ms);
    let id = &request.participant.id;
    let old = body
        .platform
        .participants
        .iter_mut()
        .find(|p| &p.id == id)
        .ok_or_else(|| config(format!("{id} is not listed: add it instead")))?;
    let (old_key, old_tls) = (old.public_key, old.tls_key);
    if old_key == request.participant.public_key {
        return Err(config(format!("{id}'s request carries its current key: make new keys to rotate")));
    }
    old.public_key = request.participant.public_key;
    // A request without a TLS key rotates the EDS key alone.
    let new_tls = request.participant.tls_key.or(old_tls);
    old.tls_key = new_tls;
    let serial = body.serial;
    let revoke = |key| RevokedKey { participant: id.clone(), key, serial, reason: "rotated".into() };
    body.revoked.push(revoke(old_key));
    if let Some(tls) = old_tls.filter(|tls| Some(*tls) != new_tls) {
        body.revoked.push(revoke(tls));
    }
    replace_in_params(&mut body.platform.params, id, old_key, Some(request.participant.public_key));
    Ok(body)
}

/// A participant is withdrawn (compromised, left the platform): its entry,
/// DAs' listing and provider rights go and its keys are revoked.
pub fn revoke(
    current: &RegistryBody,
    id: &ParticipantId,
    reason: &str,
    now_ms: u64,
) -> Result<RegistryBody, PlatformError> {
    let mut body = next(current, now_ms);
    let at = body
        .platform
        .participants
        .iter()
        .position(|p| &p.id == id)
        .ok_or_else(|| config(format!("{id} is not listed")))?;
    let gone = body.platform.participants.remove(at);
    let serial = body.serial;
    for key in std::iter::once(gone.public_key).chain(gone.tls_key) {
        body.revoked.push(RevokedKey { participant: id.clone(), key, serial, reason: reason.to_string() });
    }
    body.platform.providers.retain(|p| &p.id != id);
    replace_in_params(&mut body.platform.params, id, gone.public_key, None);
    Ok(body)
}

/// A participant's service moves to another address.
pub fn move_endpoint(
    current: &RegistryBody,
    id: &ParticipantId,
    endpoint: &str,
    now_ms: u64,
) -> Result<RegistryBody, PlatformError> {
    let mut body = next(current, now_ms);
    let entry = body
        .platform
        .participants
        .iter_mut()
        .find(|p| &p.id == id)
        .ok_or_else(|| config(format!("{id} is not listed")))?;
    entry.endpoint = Some(endpoint.to_string());
    Ok(body)
}

fn replace_in_params(params: &mut Params, id: &ParticipantId, old: PublicKey, new: Option<PublicKey>) {
    if params.hosts.get(id) == Some(&old) {
        match new {
            Some(key) => {
                params.hosts.insert(id.clone(), key);
            }
            None => {
                params.hosts.remove(id);
            }
        }
    }
    for set in [&mut params.oracles, &mut params.authorities] {
        if set.remove(&old)
            && let Some(key) = new
        {
            set.insert(key);
        }
    }
}
