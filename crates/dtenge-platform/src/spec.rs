//! Who takes part in a platform and with which keys (SPEC §1).
//!
//! A data directory holds `platform.json` (public: participants, their roles,
//! keys and endpoints; the ledger parameters) — or, for a platform of separate
//! services, the same description signed by NBK in `registry.json`
//! ([`crate::registry`]) — and `keys/` (secret seeds, mode 0600, one file each). A fresh directory gets the demo set of participants:
//! NBK, the Treasury, three banks, the notary, the oracle, the DA directory and
//! the event providers of the seed's scenarios.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dtenge_crypto::SecretKey;
use dtenge_ledger::Params;
use dtenge_net::{ParticipantInfo, Participants, Role};
use dtenge_node::accounts::HolderKind;
use dtenge_oracle::model::Registry;
use dtenge_types::{Address, Currency, IinBin, ParticipantId};
use serde::{Deserialize, Serialize};

use crate::PlatformError;

/// An institution's own DA (NBK's issuing DA, a bank's DA, the tax authority's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionAccount {
    /// Key file name under `keys/` (and a name for people).
    pub key: String,
    /// The hosting node.
    pub host: ParticipantId,
    /// Its BIN.
    pub bin: IinBin,
    /// Its name.
    pub name: String,
    /// Its address (public key).
    pub address: Address,
    /// Its kind.
    pub kind: HolderKind,
}

/// An event provider and what it may write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSpec {
    /// The provider.
    pub id: ParticipantId,
    /// What it may write on the oracle.
    pub registries: BTreeSet<Registry>,
}

/// The public description of a platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// Every participant.
    pub participants: Vec<ParticipantInfo>,
    /// Institutions' own DAs.
    pub institutions: Vec<InstitutionAccount>,
    /// Event providers.
    pub providers: Vec<ProviderSpec>,
    /// Ledger parameters every node validates with.
    pub params: Params,
}

/// Well-known participant ids.
pub mod ids {
    /// The National Bank.
    pub const NBK: &str = "NBK";
    /// The Treasury Committee.
    pub const TREASURY: &str = "TREASURY";
    /// Second-tier banks.
    pub const STBS: [&str; 3] = ["STB1", "STB2", "STB3"];
    /// The notary (a single process; a replicated group's replicas are
    /// `NOTARY-1` … `NOTARY-N`, see [`notary_replica`]).
    pub const NOTARY: &str = "NOTARY";

    /// The id of replica `n` (from 1) of a replicated notary group.
    pub fn notary_replica(n: u64) -> String {
        format!("{NOTARY}-{n}")
    }

    /// The replica number of a replica's id (`NOTARY-2` → 2).
    pub fn notary_replica_number(id: &str) -> Option<u64> {
        id.strip_prefix(NOTARY)?.strip_prefix('-')?.parse().ok().filter(|n| *n > 0)
    }
    /// The oracle.
    pub const ORACLE: &str = "ORACLE";
    /// The DA directory.
    pub const DIRECTORY: &str = "DIRECTORY";
    /// NBK's issuing DA key name.
    pub const NBK_DA: &str = "NBK-DA";
    /// The tax authority's DA key name (State Revenue Committee, on the Treasury node).
    pub const TAX_DA: &str = "SRC-DA";
    /// A second central bank, issuing the foreign currency of cross-border PvP.
    pub const FCB: &str = "FCB";
    /// Its issuing DA.
    pub const FCB_DA: &str = "FCB-DA";
    /// A foreign commercial bank's DA, hosted on the FCB node.
    pub const FOREIGN_BANK_DA: &str = "FBANK-DA";
    /// The foreign currency's code.
    pub const FOREIGN_CURRENCY: &str = "FCY";
    /// The enforcement authority (court bailiffs), whose signed orders freeze, arrest and collect.
    pub const BAILIFF: &str = "BAILIFF";
    /// A licensed stablecoin issuer (SPEC §9), running its own node.
    pub const COIN_ISSUER: &str = "COINCO";
    /// Its DA: mints and burns the stablecoin, holds its reserve.
    pub const COIN_ISSUER_DA: &str = "COINCO-DA";
    /// The DT-backed stablecoin's code.
    pub const STABLECOIN: &str = "KZTC";
}

fn pid(s: &str) -> ParticipantId {
    // Only called with the constants above and derived names, all valid.
    ParticipantId::new(s).unwrap_or_else(|_| unreachable!("invalid built-in participant id {s}"))
}

/// A deterministic, valid BIN for an institution (legal-entity digit 4).
pub fn institution_bin(n: u8) -> IinBin {
    let mut first = [0u8, 1, 0, 1, 4, 0, 0, 0, 0, 0, 0];
    first[9] = n / 10 % 10;
    first[10] = n % 10;
    for bump in 0..10u8 {
        first[8] = bump;
        if let Some(bin) = IinBin::with_check_digit(&first) {
            return bin;
        }
    }
    unreachable!("some check digit exists among ten variants")
}

/// Where secret keys live.
pub struct Keys {
    dir: PathBuf,
}

impl Keys {
    /// The key directory of a data directory.
    pub fn at(data: &Path) -> Keys {
        Keys { dir: data.join("keys") }
    }

    /// Loads a key, or creates it (mode 0600) if missing.
    pub fn get_or_create(&self, name: &str) -> Result<SecretKey, PlatformError> {
        let path = self.dir.join(format!("{name}.key"));
        if path.exists() {
            return self.load(name);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| PlatformError::io(&self.dir, e))?;
        let key = SecretKey::generate();
        write_private(&path, &hex::encode(key.seed()))?;
        Ok(key)
    }

    /// Creates a new key (mode 0600); refuses if the file exists, since a key
    /// is never overwritten.
    pub fn create(&self, name: &str) -> Result<SecretKey, PlatformError> {
        let path = self.dir.join(format!("{name}.key"));
        if path.exists() {
            return Err(PlatformError::Config(format!("{} exists: a key is never overwritten", path.display())));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| PlatformError::io(&self.dir, e))?;
        let key = SecretKey::generate();
        write_private(&path, &hex::encode(key.seed()))?;
        Ok(key)
    }

    /// Loads an existing key.
    pub fn load(&self, name: &str) -> Result<SecretKey, PlatformError> {
        let path = self.dir.join(format!("{name}.key"));
        let text = std::fs::read_to_string(&path).map_err(|e| PlatformError::io(&path, e))?;
        let bytes =
            hex::decode(text.trim()).map_err(|e| PlatformError::Config(format!("{}: not hex: {e}", path.display())))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| PlatformError::Config(format!("{}: a key is 32 bytes of hex", path.display())))?;
        Ok(SecretKey::from_seed(seed))
    }
}

/// Writes a new file of mode 0600 (a private key); refuses an existing one.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), PlatformError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| PlatformError::io(path, e))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| PlatformError::io(path, e))
}

/// Writes a new private file.
#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), PlatformError> {
    std::fs::write(path, text).map_err(|e| PlatformError::io(path, e))
}

impl PlatformSpec {
    /// The demo platform's participants, creating any missing keys in `data`.
    /// `endpoints` maps participant ids to `host:port` for multi-process runs.
    pub fn demo(data: &Path, endpoints: &BTreeMap<String, String>) -> Result<PlatformSpec, PlatformError> {
        Self::demo_with(data, endpoints, 1)
    }

    /// As [`PlatformSpec::demo`], with a notary group of `notary_replicas`
    /// replicas (`NOTARY-1` … `NOTARY-N`, each with its own key); 1 is the
    /// single notary `NOTARY`.
    pub fn demo_with(
        data: &Path,
        endpoints: &BTreeMap<String, String>,
        notary_replicas: u64,
    ) -> Result<PlatformSpec, PlatformError> {
        if notary_replicas == 0 || notary_replicas.is_multiple_of(2) {
            return Err(PlatformError::Config(format!(
                "a notary group has an odd number of replicas (1, 3, 5 …), not {notary_replicas}"
            )));
        }
        let keys = Keys::at(data);
        let mut participants = Vec::new();
        let mut add = |id: &str, name: &str, role: Role| -> Result<(), PlatformError> {
            let key = keys.get_or_create(id)?;
            participants.push(ParticipantInfo {
                id: pid(id),
                name: name.to_string(),
                role,
                public_key: key.public_key(),
                endpoint: endpoints.get(id).cloned(),
                tls_key: None,
            });
            Ok(())
        };
        add(ids::NBK, "National Bank of Kazakhstan", Role::Nbk)?;
        add(ids::TREASURY, "Treasury Committee", Role::Treasury)?;
        for (i, stb) in ids::STBS.iter().enumerate() {
            add(stb, &format!("Second-tier bank {}", i + 1), Role::Stb)?;
        }
        add(ids::FCB, "Foreign central bank (second currency for cross-border PvP)", Role::CounterpartyCentralBank)?;
        add(ids::COIN_ISSUER, "Licensed stablecoin issuer (KZTC, backed 1:1 by DT)", Role::StablecoinIssuer)?;
        if notary_replicas == 1 {
            add(ids::NOTARY, "Notary", Role::Notary)?;
        } else {
            for n in 1..=notary_replicas {
                add(&ids::notary_replica(n), &format!("Notary replica {n}"), Role::Notary)?;
            }
        }
        add(ids::ORACLE, "Oracle", Role::Oracle)?;
        add(ids::DIRECTORY, "DA directory", Role::Directory)?;
        let provider_list: [(&str, &str, &[Registry]); 7] = [
            ("SRC", "State Revenue Committee (ISEI e-invoices)", &[Registry::Invoices]),
            ("SSIS", "State subsidy information system", &[Registry::Events]),
            ("IFA", "Identification of farm animals", &[Registry::Events]),
            ("PORTAL", "Smart Contract Portal", &[Registry::Parameters]),
            ("TERMINALS", "Canteen card terminals (Kazpost)", &[Registry::Events]),
            ("EGOV", "Real estate register and delivery services", &[Registry::Events]),
            ("FXDESK", "Foreign exchange rate provider", &[Registry::Fx]),
        ];
        let mut providers = Vec::new();
        for (id, name, registries) in provider_list {
            add(id, name, Role::Provider)?;
            providers.push(ProviderSpec { id: pid(id), registries: registries.iter().copied().collect() });
        }
        add("CROWD", "Crowdfunding platform", Role::Provider)?;
        // An authorised body acting on DAs through their banks (issue #9):
        // freezes, arrests and collection orders, signed with its key.
        add(ids::BAILIFF, "Enforcement authority (court bailiffs)", Role::Provider)?;
        providers.push(ProviderSpec { id: pid("CROWD"), registries: [Registry::Events].into_iter().collect() });

        let mut institutions = Vec::new();
        let mut inst = |key: &str, host: &str, n: u8, name: &str, kind| -> Result<(), PlatformError> {
            let secret = keys.get_or_create(key)?;
            institutions.push(InstitutionAccount {
                key: key.to_string(),
                host: pid(host),
                bin: institution_bin(n),
                name: name.to_string(),
                address: Address(secret.public_key()),
                kind,
            });
            Ok(())
        };
        inst(ids::NBK_DA, ids::NBK, 1, "National Bank of Kazakhstan", HolderKind::Institution)?;
        inst(ids::TAX_DA, ids::TREASURY, 2, "State Revenue Committee", HolderKind::GovernmentAgency)?;
        inst("TREASURY-DA", ids::TREASURY, 3, "Treasury Committee (own DA)", HolderKind::Institution)?;
        for (i, stb) in ids::STBS.iter().enumerate() {
            let n = u8::try_from(i).unwrap_or(0).saturating_add(10);
            inst(
                &format!("{stb}-DA"),
                stb,
                n,
                &format!("Second-tier bank {} (own DA)", i + 1),
                HolderKind::Institution,
            )?;
        }

        inst(ids::FCB_DA, ids::FCB, 20, "Foreign central bank (issuer of FCY)", HolderKind::Institution)?;
        inst(ids::FOREIGN_BANK_DA, ids::FCB, 21, "Foreign commercial bank", HolderKind::Institution)?;
        inst(
            ids::COIN_ISSUER_DA,
            ids::COIN_ISSUER,
            30,
            "Licensed stablecoin issuer (issuer of KZTC)",
            HolderKind::Institution,
        )?;

        let oracle = keys.get_or_create(ids::ORACLE)?;
        let mut params = Params { max_window_ms: Params::DEFAULT_MAX_WINDOW_MS, ..Params::default() };
        params.issuers.insert(Currency::DT, Address(keys.get_or_create(ids::NBK_DA)?.public_key()));
        let foreign = Currency::new(ids::FOREIGN_CURRENCY).map_err(|e| PlatformError::Config(e.to_string()))?;
        params.issuers.insert(foreign, Address(keys.get_or_create(ids::FCB_DA)?.public_key()));
        let stablecoin = Currency::new(ids::STABLECOIN).map_err(|e| PlatformError::Config(e.to_string()))?;
        params.stablecoins.insert(stablecoin, Address(keys.get_or_create(ids::COIN_ISSUER_DA)?.public_key()));
        params.oracles.insert(oracle.public_key());
        params.tax_authorities.insert(Address(keys.get_or_create(ids::TAX_DA)?.public_key()));
        params.authorities.insert(keys.get_or_create(ids::BAILIFF)?.public_key());
        // The State Revenue Committee collects tax arrears from DAs too.
        params.authorities.insert(keys.get_or_create("SRC")?.public_key());
        let mut spec = PlatformSpec { participants, institutions, providers, params };
        spec.fill_hosts();
        Ok(spec)
    }

    /// Lists every participant node's key as a host key in the ledger
    /// parameters (a host bank signs collections and key rotations of its
    /// DAs); fills in `platform.json` files written before hosts existed.
    pub fn fill_hosts(&mut self) {
        if !self.params.hosts.is_empty() {
            return;
        }
        for p in &self.participants {
            if p.role.is_node() {
                self.params.hosts.insert(p.id.clone(), p.public_key);
            }
        }
    }

    /// `platform.json` files written before participant kinds had a
    /// counterparty central bank list the issuer of a foreign currency as
    /// NBK, with NBK's powers: the participant of kind NBK whose node hosts
    /// the issuing DA of a currency other than DT becomes a counterparty
    /// central bank.
    pub fn fill_counterparty_central_banks(&mut self) {
        let foreign_issuers: Vec<&Address> =
            self.params.issuers.iter().filter(|(c, _)| **c != Currency::DT).map(|(_, a)| a).collect();
        let hosts_foreign_issuer = |id: &ParticipantId| {
            self.institutions.iter().any(|i| i.host == *id && foreign_issuers.contains(&&i.address))
        };
        let demote: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|p| p.role == Role::Nbk && hosts_foreign_issuer(&p.id))
            .map(|p| p.id.clone())
            .collect();
        for p in &mut self.participants {
            if demote.contains(&p.id) {
                p.role = Role::CounterpartyCentralBank;
            }
        }
    }

    /// Writes `platform.json` (atomically).
    pub fn save(&self, data: &Path) -> Result<(), PlatformError> {
        std::fs::create_dir_all(data).map_err(|e| PlatformError::io(data, e))?;
        let path = data.join("platform.json");
        let tmp = data.join("platform.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| PlatformError::Config(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| PlatformError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| PlatformError::io(&path, e))
    }

    /// Loads `platform.json`, or creates the demo platform in a fresh directory.
    pub fn load_or_create(data: &Path, endpoints: &BTreeMap<String, String>) -> Result<PlatformSpec, PlatformError> {
        if data.join("platform.json").exists() {
            let mut spec = Self::load(data)?;
            if !endpoints.is_empty() {
                for p in &mut spec.participants {
                    if let Some(e) = endpoints.get(p.id.as_str()) {
                        p.endpoint = Some(e.clone());
                    }
                }
            }
            return Ok(spec);
        }
        let spec = Self::demo(data, endpoints)?;
        spec.save(data)?;
        Ok(spec)
    }

    /// The participant directory.
    pub fn directory(&self) -> Participants {
        Participants::new(self.participants.clone())
    }

    /// A participant by id.
    pub fn participant(&self, id: &str) -> Option<&ParticipantInfo> {
        self.participants.iter().find(|p| p.id.as_str() == id)
    }

    /// The replicas of a replicated notary group (replica number → id);
    /// empty for a single notary.
    pub fn notary_group(&self) -> BTreeMap<u64, ParticipantId> {
        self.participants
            .iter()
            .filter(|p| p.role == Role::Notary)
            .filter_map(|p| Some((ids::notary_replica_number(p.id.as_str())?, p.id.clone())))
            .collect()
    }

    /// Participant node ids (NBK, Treasury, banks).
    pub fn nodes(&self) -> Vec<&ParticipantInfo> {
        self.participants.iter().filter(|p| p.role.is_node()).collect()
    }
}
