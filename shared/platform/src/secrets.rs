//! Secrets: resolved from AWS SSM Parameter Store (SecureString, decrypted) or, in development,
//! from `OMNEURO_SECRET_*` env vars. Values are cached and never printed: a [`Secret`]'s `Debug`
//! and `Display` show only its length. A missing secret is an error for the feature that needs it;
//! nothing ever falls back to "open".

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;

use crate::config::{SecretsConfig, SecretsSource};

/// Canonical names of the secrets the shop uses.
pub mod names {
    pub const OPENAI_API_KEY: &str = "/omneuro/openai/api_key";
    pub const STRIPE_SECRET_KEY: &str = "/omneuro/stripe/secret_key";
    pub const STRIPE_WEBHOOK_SECRET: &str = "/omneuro/stripe/webhook_secret";
    pub const TELNYX_API_KEY: &str = "/omneuro/telnyx/api_key";
    pub const TELNYX_PUBLIC_KEY: &str = "/omneuro/telnyx/public_key";
    /// Password of the SMTP relay user named in `mail.smtp_url`.
    pub const SMTP_PASSWORD: &str = "/omneuro/smtp/password";
}

/// A secret value. `{:?}` and `{}` print `Secret(len=N)`; call [`Secret::expose`] at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(len={})", self.0.len())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} is not set ({hint}); the feature that needs it stays off")]
    Missing { name: String, hint: String },
    #[error("secret {name} could not be read from {source_name}: {message}")]
    Unavailable {
        name: String,
        source_name: &'static str,
        message: String,
    },
}

enum Backend {
    Ssm(aws_sdk_ssm::Client),
    Env(HashMap<String, String>),
}

/// Resolves and caches secrets by their canonical `/omneuro/...` name.
pub struct SecretStore {
    backend: Backend,
    cache: Mutex<HashMap<String, Secret>>,
}

impl SecretStore {
    /// Builds the store the config asks for. SSM uses the standard AWS credential chain.
    pub async fn from_config(cfg: &SecretsConfig) -> Self {
        match cfg.source {
            SecretsSource::Ssm => {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(ep) = &cfg.ssm_endpoint {
                    loader = loader.endpoint_url(ep);
                }
                if let Some(region) = &cfg.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                Self::ssm(aws_sdk_ssm::Client::new(&loader.load().await))
            }
            SecretsSource::Env => Self::env(std::env::vars()),
        }
    }

    pub fn ssm(client: aws_sdk_ssm::Client) -> Self {
        Self {
            backend: Backend::Ssm(client),
            cache: Mutex::default(),
        }
    }

    pub fn env(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("OMNEURO_SECRET_"))
            .collect();
        Self {
            backend: Backend::Env(vars),
            cache: Mutex::default(),
        }
    }

    /// `/omneuro/openai/api_key` → `OMNEURO_SECRET_OPENAI_API_KEY`.
    pub fn env_var_name(name: &str) -> String {
        let tail = name.trim_start_matches('/').trim_start_matches("omneuro/");
        format!(
            "OMNEURO_SECRET_{}",
            tail.replace(['/', '-', '.'], "_").to_ascii_uppercase()
        )
    }

    fn cached(&self, name: &str) -> Option<Secret> {
        self.cache.lock().ok().and_then(|c| c.get(name).cloned())
    }

    fn remember(&self, name: &str, secret: &Secret) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.to_owned(), secret.clone());
        }
        tracing::info!(
            secret.name = name,
            secret.len = secret.0.len(),
            "secret resolved"
        );
    }

    pub async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        if let Some(s) = self.cached(name) {
            return Ok(s);
        }
        let secret = match &self.backend {
            Backend::Env(vars) => {
                let var = Self::env_var_name(name);
                match vars.get(&var).filter(|v| !v.is_empty()) {
                    Some(v) => Secret(v.clone()),
                    None => {
                        return Err(SecretError::Missing {
                            name: name.to_owned(),
                            hint: format!("env var {var} is empty or unset"),
                        });
                    }
                }
            }
            Backend::Ssm(client) => {
                let out = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await;
                match out {
                    Ok(out) => match out
                        .parameter
                        .and_then(|p| p.value)
                        .filter(|v| !v.is_empty())
                    {
                        Some(v) => Secret(v),
                        None => {
                            return Err(SecretError::Missing {
                                name: name.to_owned(),
                                hint: "the SSM parameter is empty".into(),
                            });
                        }
                    },
                    Err(SdkError::ServiceError(e))
                        if matches!(e.err(), GetParameterError::ParameterNotFound(_)) =>
                    {
                        return Err(SecretError::Missing {
                            name: name.to_owned(),
                            hint: "no such SSM parameter".into(),
                        });
                    }
                    Err(e) => {
                        return Err(SecretError::Unavailable {
                            name: name.to_owned(),
                            source_name: "AWS SSM",
                            message: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                        });
                    }
                }
            }
        };
        self.remember(name, &secret);
        Ok(secret)
    }

    /// Every secret under `path` (e.g. `/omneuro/stripe`), keyed by full name.
    pub async fn get_by_path(&self, path: &str) -> Result<BTreeMap<String, Secret>, SecretError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut found = BTreeMap::new();
        match &self.backend {
            Backend::Env(vars) => {
                let var_prefix = format!("{}_", Self::env_var_name(&prefix).trim_end_matches('_'));
                for (k, v) in vars {
                    if let Some(rest) = k.strip_prefix(&var_prefix) {
                        found.insert(
                            format!("{prefix}{}", rest.to_ascii_lowercase()),
                            Secret(v.clone()),
                        );
                    }
                }
            }
            Backend::Ssm(client) => {
                let mut pages = client
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(true)
                    .with_decryption(true)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| SecretError::Unavailable {
                        name: path.to_owned(),
                        source_name: "AWS SSM",
                        message: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
                    })?;
                    for p in page.parameters.unwrap_or_default() {
                        if let (Some(n), Some(v)) = (p.name, p.value) {
                            found.insert(n, Secret(v));
                        }
                    }
                }
            }
        }
        for (name, secret) in &found {
            self.remember(name, secret);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new("sk_test_abcdef");
        assert_eq!(format!("{s:?}"), "Secret(len=14)");
        assert_eq!(format!("{s}"), "Secret(len=14)");
        assert_eq!(s.expose(), "sk_test_abcdef");
    }

    #[tokio::test]
    async fn env_backend_resolves_by_canonical_name_and_path() {
        let store = SecretStore::env([
            (
                "OMNEURO_SECRET_OPENAI_API_KEY".to_string(),
                "k1".to_string(),
            ),
            (
                "OMNEURO_SECRET_STRIPE_SECRET_KEY".to_string(),
                "k2".to_string(),
            ),
            (
                "OMNEURO_SECRET_STRIPE_WEBHOOK_SECRET".to_string(),
                "k3".to_string(),
            ),
        ]);
        assert_eq!(
            store.get(names::OPENAI_API_KEY).await.unwrap().expose(),
            "k1"
        );
        let stripe = store.get_by_path("/omneuro/stripe").await.unwrap();
        assert_eq!(
            stripe.keys().cloned().collect::<Vec<_>>(),
            vec![names::STRIPE_SECRET_KEY, names::STRIPE_WEBHOOK_SECRET]
        );
        let err = store
            .get(names::TELNYX_API_KEY)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/omneuro/telnyx/api_key")
                && err.contains("OMNEURO_SECRET_TELNYX_API_KEY"),
            "{err}"
        );
    }
}
