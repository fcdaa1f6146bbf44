//! A service's configuration file (TOML), one per service; `dtenge node
//! --config FILE` reads it and flags override it. Examples per role are in
//! `deploy/config/`.
//!
//! ```toml
//! id = "STB1"                        # whose service
//! data = "/var/lib/dtenge"           # journals, keys/, registry.json
//! listen = "0.0.0.0:7100"            # default: the endpoint the registry lists
//! registry_key = "9f3c…"             # NBK's registry key (default: DATA/registry.pub)
//! registry_sources = ["NBK"]         # whose GET /registry to follow
//! registry_poll_ms = 5000
//!
//! [tls]
//! key = "/var/lib/dtenge/keys/STB1.tls.key"   # default: DATA/keys/<ID>.tls.key
//!
//! [metrics]
//! listen = "127.0.0.1:9100"          # plain-HTTP /metrics for Prometheus (also on the service port)
//!
//! [limits]
//! call_timeout_ms = 10000
//!
//! [log]
//! format = "json"                    # or "text"
//! filter = "info"
//! ```
//!
//! Invariant: an unknown key is an error (a misspelt setting is never
//! silently ignored), and every value is checked before anything starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::PlatformError;
use crate::process::NodeOptions;
use crate::registry::parse_anchor;

/// Longest call timeout accepted (a call never waits longer than this).
pub const MAX_CALL_TIMEOUT_MS: u64 = 600_000;
/// Shortest registry poll accepted.
pub const MIN_REGISTRY_POLL_MS: u64 = 100;
/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The file's contents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Whose service.
    pub id: Option<String>,
    /// The data directory.
    pub data: Option<PathBuf>,
    /// Where to listen.
    pub listen: Option<String>,
    /// The trust anchor, hex.
    pub registry_key: Option<String>,
    /// Whose `GET /registry` to follow.
    pub registry_sources: Option<Vec<String>>,
    /// How often to look for a newer registry (ms).
    pub registry_poll_ms: Option<u64>,
    /// TLS.
    #[serde(default)]
    pub tls: TlsSection,
    /// Metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Logs.
    #[serde(default)]
    pub log: LogSection,
}

/// `[tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The TLS key file (PKCS#8 PEM, Ed25519).
    pub key: Option<PathBuf>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// A plain-HTTP listener for `GET /metrics`.
    pub listen: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// How long a call to another service may take (ms).
    pub call_timeout_ms: Option<u64>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: Option<LogFormat>,
    /// A tracing filter (`info`, `dtenge_net=debug,warn`).
    pub filter: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the spans (and their trace ids).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?}: expected text or json")),
        }
    }
}

impl ServiceConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ServiceConfig, PlatformError> {
        let size = std::fs::metadata(path).map_err(|e| PlatformError::io(path, e))?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(PlatformError::Config(format!("{}: larger than {MAX_CONFIG_BYTES} bytes", path.display())));
        }
        let text = std::fs::read_to_string(path).map_err(|e| PlatformError::io(path, e))?;
        Self::parse(&text).map_err(|e| PlatformError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses a configuration (TOML text).
    pub fn parse(text: &str) -> Result<ServiceConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The options to run with: this file's values, then `overrides` (flags)
    /// on top; `id` and `data` must come from one of them.
    pub fn options(&self, overrides: &ServiceConfig) -> Result<NodeOptions, PlatformError> {
        let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        let id = pick(&overrides.id, &self.id)
            .ok_or_else(|| PlatformError::Config("no service id: give --id or `id = \"…\"` in the config".into()))?;
        let data = overrides.data.clone().or_else(|| self.data.clone()).ok_or_else(|| {
            PlatformError::Config("no data directory: give --data or `data = \"…\"` in the config".into())
        })?;
        let mut options = NodeOptions::new(&data, &id);
        options.listen = pick(&overrides.listen, &self.listen);
        if let Some(anchor) = pick(&overrides.registry_key, &self.registry_key) {
            options.registry_key =
                Some(parse_anchor(&anchor).map_err(|e| PlatformError::Config(format!("registry_key: {e}")))?);
        }
        if let Some(sources) = overrides.registry_sources.clone().or_else(|| self.registry_sources.clone()) {
            options.registry_sources = sources;
        }
        if let Some(ms) = overrides.registry_poll_ms.or(self.registry_poll_ms) {
            if ms < MIN_REGISTRY_POLL_MS {
                return Err(PlatformError::Config(format!("registry_poll_ms = {ms}: at least {MIN_REGISTRY_POLL_MS}")));
            }
            options.registry_poll = Duration::from_millis(ms);
        }
        options.tls_key = overrides.tls.key.clone().or_else(|| self.tls.key.clone());
        options.metrics_listen = pick(&overrides.metrics.listen, &self.metrics.listen);
        if let Some(ms) = overrides.limits.call_timeout_ms.or(self.limits.call_timeout_ms) {
            if !(1..=MAX_CALL_TIMEOUT_MS).contains(&ms) {
                return Err(PlatformError::Config(format!(
                    "limits.call_timeout_ms = {ms}: between 1 and {MAX_CALL_TIMEOUT_MS}"
                )));
            }
            options.call_timeout = Duration::from_millis(ms);
        }
        Ok(options)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        id = "STB1"
        data = "/var/lib/dtenge"
        listen = "0.0.0.0:7100"
        registry_sources = ["NBK", "DIRECTORY"]
        registry_poll_ms = 2000
        [tls]
        key = "/etc/dtenge/stb1.tls.key"
        [metrics]
        listen = "127.0.0.1:9100"
        [limits]
        call_timeout_ms = 15000
        [log]
        format = "json"
    "#;

    #[test]
    fn the_file_fills_the_options_and_flags_override_it() {
        let file = ServiceConfig::parse(FILE).unwrap();
        let options = file.options(&ServiceConfig::default()).unwrap();
        assert_eq!(options.id, "STB1");
        assert_eq!(options.listen.as_deref(), Some("0.0.0.0:7100"));
        assert_eq!(options.registry_sources, ["NBK", "DIRECTORY"]);
        assert_eq!(options.registry_poll, Duration::from_millis(2000));
        assert_eq!(options.call_timeout, Duration::from_millis(15_000));
        assert_eq!(options.metrics_listen.as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(file.log.format, Some(LogFormat::Json));

        let flags = ServiceConfig {
            listen: Some("10.0.0.5:7100".into()),
            data: Some("/srv/dtenge".into()),
            ..ServiceConfig::default()
        };
        let options = file.options(&flags).unwrap();
        assert_eq!(options.listen.as_deref(), Some("10.0.0.5:7100"));
        assert_eq!(options.data, Path::new("/srv/dtenge"));
        assert_eq!(options.id, "STB1", "what the flags leave out comes from the file");
    }

    #[test]
    fn a_misspelt_or_out_of_range_setting_is_an_error_naming_it() {
        let misspelt = ServiceConfig::parse("id = \"STB1\"\nlisten_addr = \"x\"").unwrap_err();
        assert!(misspelt.contains("listen_addr"), "{misspelt}");
        let file = ServiceConfig::parse("id = \"STB1\"\ndata = \"/d\"\n[limits]\ncall_timeout_ms = 0").unwrap();
        assert!(file.options(&ServiceConfig::default()).unwrap_err().to_string().contains("call_timeout_ms"));
        let file = ServiceConfig::parse("id = \"STB1\"\ndata = \"/d\"\nregistry_key = \"zz\"").unwrap();
        assert!(file.options(&ServiceConfig::default()).unwrap_err().to_string().contains("registry_key"));
        let none = ServiceConfig::parse("data = \"/d\"").unwrap();
        assert!(none.options(&ServiceConfig::default()).unwrap_err().to_string().contains("--id"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod examples {
    use super::*;

    /// deploy/config/*.toml: the examples a bank's engineer copies must stay valid.
    #[test]
    fn every_example_in_deploy_config_is_a_valid_configuration() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let anchor = dtenge_crypto::SecretKey::from_seed([5; 32]).public_key().to_string();
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("REPLACE-WITH-THE-HEX-KEY-NBK-PUBLISHED", &anchor);
            let file = ServiceConfig::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let options = file.options(&ServiceConfig::default()).unwrap();
            assert!(options.tls_key.is_some() && options.metrics_listen.is_some(), "{}", path.display());
            seen.push(options.id);
        }
        seen.sort();
        assert_eq!(seen, ["DIRECTORY", "NBK", "NOTARY", "ORACLE", "STB1", "TREASURY"]);
    }
}
