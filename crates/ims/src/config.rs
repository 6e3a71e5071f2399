//! Configuration: a TOML file, then `IMS_*` environment overrides, then CLI flags.
//!
//! Environment names: `IMS_<KEY>` for top-level keys and `IMS_<SECTION>__<KEY>` for keys in
//! a section (e.g. `IMS_IMAGES__SIZE_CAP=1073741824`). Values are parsed as TOML values
//! (numbers, booleans, arrays) and fall back to strings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the catalog, image data and clouds.yaml live.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: String,
    /// Public base URL for links and the service catalog; defaults to the request Host.
    pub public_url: Option<String>,
    /// Catalog database URL; defaults to SQLite in the data dir.
    pub database_url: Option<String>,
    /// 64 hex digits sealing stored AK/SK secrets; defaults to `<data-dir>/credential.key`,
    /// created on first use. Every node of a cluster needs the same key.
    pub credential_key: Option<String>,
    /// Region shown in the service catalog.
    pub region: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// Image settings.
    pub images: ImagesConfig,
    /// web-download URL filter.
    pub web_download: WebDownloadConfig,
    /// Job engine.
    pub jobs: JobsConfig,
}

/// `[images]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// Largest image in bytes (`image_size_cap`).
    pub size_cap: u64,
    /// `sha256`, `sha384` or `sha512`.
    pub hash_algo: String,
    /// Inspect data as it arrives and refuse unsafe or mismatched content.
    pub inspect_formats: bool,
    /// The largest bucket file an image may be imported from, bytes.
    pub max_import_file: u64,
    /// Images per project; 0 = unlimited.
    pub quota_image_count: u64,
    /// Bytes per project; 0 = unlimited.
    pub quota_image_size_total: u64,
    /// Tags per image.
    pub max_tags: usize,
    /// Extra properties per image.
    pub max_properties: usize,
    /// Members per image.
    pub max_members: usize,
    /// Enabled import methods.
    pub import_methods: Vec<String>,
}

/// `[web_download]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebDownloadConfig {
    /// Allowed URL schemes.
    pub schemes: Vec<String>,
    /// Allowed ports; empty allows any.
    pub ports: Vec<u16>,
    /// Allow loopback and private addresses (off by default: SSRF).
    pub allow_private: bool,
}

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs running at once on this node.
    pub concurrency: usize,
    /// Per-kind limits on this node, e.g. `{ image_export = 1, image_copy = 2 }`; kinds
    /// not named are bounded by `concurrency` only.
    pub per_kind: std::collections::BTreeMap<String, usize>,
    /// Lease length in seconds; heartbeats renew it every third.
    pub lease_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./ims-data"),
            listen: "127.0.0.1:9292".into(),
            public_url: None,
            database_url: None,
            credential_key: None,
            region: "RegionOne".into(),
            log_format: "text".into(),
            token_ttl_secs: 3600,
            images: ImagesConfig::default(),
            web_download: WebDownloadConfig::default(),
            jobs: JobsConfig::default(),
        }
    }
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            size_cap: 1 << 40,
            hash_algo: "sha512".into(),
            inspect_formats: true,
            max_import_file: 128 << 30,
            quota_image_count: 0,
            quota_image_size_total: 0,
            max_tags: 128,
            max_properties: 128,
            max_members: 128,
            import_methods: vec!["glance-direct".into(), "web-download".into()],
        }
    }
}

impl Default for WebDownloadConfig {
    fn default() -> Self {
        WebDownloadConfig {
            schemes: vec!["http".into(), "https".into()],
            ports: vec![80, 443],
            allow_private: false,
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            concurrency: 2,
            per_kind: std::collections::BTreeMap::new(),
            lease_secs: 30,
        }
    }
}

/// Loads the file (if any) and applies `IMS_*` overrides from `env`.
pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
    let mut doc: toml::Table = match file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .parse()
            .with_context(|| format!("parsing {}", p.display()))?,
        None => toml::Table::new(),
    };
    let known = known_keys();
    for (key, raw) in env {
        let Some(name) = key.strip_prefix("IMS_") else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        // Other IMS_* variables (IMS_CONFIG, IMS_NEW_USER_PASSWORD, a test's IMS_BIN…)
        // are not configuration; only names of real keys apply.
        if !known.contains(&name) {
            continue;
        }
        // A TOML value if it parses as one (numbers, booleans, arrays), else a string.
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        match name.split_once("__") {
            Some((section, key)) => {
                let entry = doc
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.to_string(), value);
                }
            }
            None => {
                doc.insert(name, value);
            }
        }
    }
    let config: Config = toml::Value::Table(doc)
        .try_into()
        .context("invalid configuration")?;
    Ok(config)
}

/// `key` and `section__key` for every configuration key.
fn known_keys() -> Vec<String> {
    let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Config::default()) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (k, v) in defaults {
        if let toml::Value::Table(section) = v {
            keys.extend(section.keys().map(|s| format!("{k}__{s}")));
        }
        keys.push(k);
    }
    // Optional keys are absent from the serialized defaults.
    keys.extend(["public_url", "database_url", "credential_key"].map(String::from));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_sections() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ims.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\n[images]\nsize_cap = 5\n").unwrap();
        let env = vec![
            ("IMS_LISTEN".to_string(), "127.0.0.1:2".to_string()),
            ("IMS_IMAGES__QUOTA_IMAGE_COUNT".to_string(), "3".to_string()),
            (
                "IMS_WEB_DOWNLOAD__ALLOW_PRIVATE".to_string(),
                "true".to_string(),
            ),
            ("IMS_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("OTHER".to_string(), "1".to_string()),
        ];
        let c = load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.images.size_cap, 5);
        assert_eq!(c.images.quota_image_count, 3);
        assert!(c.web_download.allow_private);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn unknown_file_keys_are_errors_but_other_env_vars_are_not_config() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ims.toml");
        std::fs::write(&f, "[images]\nbogus = 1\n").unwrap();
        assert!(load(Some(&f), std::iter::empty()).is_err());
        let env = vec![
            ("IMS_CONFIG".to_string(), "x".to_string()),
            ("IMS_BIN".to_string(), "/x".to_string()),
        ];
        assert!(load(None, env.into_iter()).is_ok());
    }
}
