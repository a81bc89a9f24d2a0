//! Reading a configuration: the sources (file and environment), the layering of defaults < file
//! < environment, and the check that names every unknown key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Settings;

/// Why a configuration could not be loaded. Printed as one line by `check-config` (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, a value or a key is wrong; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        ConfigError::Invalid(error.to_string())
    }
}

/// Where configuration comes from: an optional TOML file and a set of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The `--config FILE`, if given. It must exist.
    pub file: Option<PathBuf>,
    /// Environment variables; only those prefixed `<SVC>__` are read.
    pub env: BTreeMap<String, String>,
}

impl Source {
    /// The process environment plus an optional file: what a binary uses. Called once, in `run`.
    #[allow(clippy::disallowed_methods)] // The one place the environment is read.
    pub fn from_process(file: Option<PathBuf>) -> Source {
        Source {
            file,
            env: std::env::vars().collect(),
        }
    }

    /// A source of explicit `<SVC>__SECTION__KEY` pairs, for tests.
    ///
    /// ```
    /// let source = platform::config::Source::from_pairs([("HELLO__STORAGE__URL", "memory:")]);
    /// assert_eq!(source.env.len(), 1);
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Source {
        Source {
            file: None,
            env: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// What [`load`] returns: the platform's sections and the service's own.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    /// The platform's sections.
    pub platform: Settings,
    /// The service's sections (`[messages]`, `[auth]`, …).
    pub service: S,
}

/// Loads defaults < file < environment for service `name` and checks every key.
///
/// `S` holds the service's own sections; its field names are the extra top-level sections
/// allowed. Values in the environment are strings; numbers and booleans are parsed from them.
///
/// ```
/// use platform::config::{load, NoServiceSettings, Settings, Source};
/// let defaults = Settings::for_service("hello", 8081);
/// let source = Source::from_pairs([("HELLO__SERVER__MAX_CONCURRENCY", "8")]);
/// let loaded = load::<NoServiceSettings>("hello", &defaults, &source).unwrap();
/// assert_eq!(loaded.platform.server.max_concurrency, 8);
///
/// let bad = Source::from_pairs([("HELLO__SERVER__COLOUR", "blue")]);
/// let error = load::<NoServiceSettings>("hello", &defaults, &bad).unwrap_err();
/// assert!(error.to_string().contains("colour"));
/// ```
pub fn load<S>(name: &str, defaults: &Settings, source: &Source) -> Result<Loaded<S>, ConfigError>
where
    S: Serialize + DeserializeOwned + Default,
{
    let platform_defaults = config::Config::try_from(defaults)?;
    let service_defaults = config::Config::try_from(&S::default())?;
    let mut builder = config::Config::builder()
        .add_source(platform_defaults)
        .add_source(service_defaults);
    if let Some(file) = &source.file {
        if !file.is_file() {
            return Err(ConfigError::Invalid(format!(
                "configuration file {} does not exist",
                file.display()
            )));
        }
        builder =
            builder.add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
    }
    let prefix = name.to_ascii_uppercase();
    let env: config::Map<String, String> = source
        .env
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{prefix}__")))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let environment = config::Environment::with_prefix(&prefix)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env));
    let merged = builder.add_source(environment).build()?;

    let mut known = section_names(defaults)?;
    known.extend(section_names(&S::default())?);
    let table = merged
        .clone()
        .try_deserialize::<BTreeMap<String, config::Value>>()?;
    if let Some(unknown) = table.keys().find(|key| !known.contains(key)) {
        return Err(ConfigError::Invalid(format!(
            "unknown configuration section `{unknown}`; expected one of: {}",
            known.join(", ")
        )));
    }
    let platform: Settings = merged.clone().try_deserialize()?;
    let service: S = merged.try_deserialize()?;
    Ok(Loaded { platform, service })
}

fn section_names<T: Serialize>(value: &T) -> Result<Vec<String>, ConfigError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => Ok(map.keys().cloned().collect()),
        Ok(_) => Ok(Vec::new()),
        Err(error) => Err(ConfigError::Invalid(error.to_string())),
    }
}

/// Renders effective settings as TOML with secrets redacted, for `check-config`.
pub fn render<S: Serialize>(loaded: &Loaded<S>) -> Result<String, ConfigError> {
    let mut table = toml::Table::try_from(&loaded.platform)
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    let service = toml::Table::try_from(&loaded.service)
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    table.extend(service);
    toml::to_string(&table).map_err(|error| ConfigError::Invalid(error.to_string()))
}
