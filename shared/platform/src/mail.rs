//! Outgoing email, written once: SMTP through lettre in production and tests (a real SMTP server,
//! aiosmtpd in tests, e.g. Amazon SES in production), or a dev mailbox directory (one readable
//! `.txt` per message) when no SMTP server is configured, so `scripts/run` works on a fresh machine and the magic link can be read
//! from `.omneuro/mail/`.
//!
//! Config (`[mail]`): `smtp_url` (`smtp://host:port`, `smtp://user@host:587?tls=required`,
//! `smtps://host:465`), `from`, `dev_dir`, `timeout_ms`. A password for the URL's user comes from
//! the secret `/omneuro/smtp/password`, never from the file. Production without `smtp_url` is a
//! start-up error for a service that sends mail: mail must never vanish quietly.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use crate::config::Environment;
use crate::secrets::{SecretStore, names};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Empty: no SMTP server; messages go to `dev_dir` (development only).
    #[serde(default)]
    pub smtp_url: String,
    #[serde(default = "default_from")]
    pub from: String,
    /// Where the dev mailbox writes one readable `.txt` file per message; empty means the log only.
    #[serde(default)]
    pub dev_dir: String,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_from() -> String {
    "Juice Junkiez <garage@juicejunkiez.com>".into()
}
fn default_timeout() -> u64 {
    10_000
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: String::new(),
            from: default_from(),
            dev_dir: String::new(),
            timeout_ms: default_timeout(),
        }
    }
}

pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// One message to one person.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// An HTML version shown by mail apps that can (receipts); the text stays for the rest.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// A stable Message-ID (e.g. from an outbox row), so a resend after a crash is recognisable.
    pub message_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("not a valid email address: {0}")]
    BadAddress(String),
    #[error("could not build the message: {0}")]
    Build(String),
    /// The server refused for good (bad recipient, …); retrying will not help.
    #[error("the mail server refused the message: {0}")]
    Rejected(String),
    /// Connection, timeout, 4xx: worth retrying later.
    #[error("the mail server is unavailable: {0}")]
    Unavailable(String),
}

impl MailError {
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailError::BadAddress(_) | MailError::Build(_) | MailError::Rejected(_)
        )
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Dev(Option<PathBuf>),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    /// Builds the mailer from config; reads the SMTP password secret when the URL names a user.
    pub async fn from_config(
        cfg: &MailConfig,
        environment: Environment,
        secrets: &SecretStore,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from {:?} is not an address: {e}", cfg.from))?;
        let transport = if cfg.smtp_url.trim().is_empty() {
            if environment == Environment::Production {
                anyhow::bail!(
                    "mail.smtp_url is required in production (set OMNEURO__MAIL__SMTP_URL)"
                );
            }
            let dir = (!cfg.dev_dir.is_empty()).then(|| PathBuf::from(&cfg.dev_dir));
            if let Some(d) = &dir {
                std::fs::create_dir_all(d)
                    .map_err(|e| anyhow::anyhow!("mail.dev_dir {}: {e}", d.display()))?;
            }
            tracing::info!(dir = ?dir, "no SMTP server configured: mail goes to the dev mailbox");
            Transport::Dev(dir)
        } else {
            let mut url = cfg.smtp_url.trim().to_owned();
            let needs_password = url::has_user_without_password(&url);
            if needs_password {
                let pw = secrets.get(names::SMTP_PASSWORD).await?;
                url = url::with_password(&url, pw.expose());
            }
            let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                .map_err(|e| anyhow::anyhow!("mail.smtp_url is not a usable SMTP URL: {e}"))?;
            Transport::Smtp(
                builder
                    .timeout(Some(Duration::from_millis(cfg.timeout_ms)))
                    .build(),
            )
        };
        Ok(Self { from, transport })
    }

    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::BadAddress(mail.to.clone()))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone());
        if let Some(id) = &mail.message_id {
            builder = builder.message_id(Some(id.clone()));
        }
        let message = if mail.attachments.is_empty() {
            match &mail.html {
                Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                    mail.text.clone(),
                    html.clone(),
                )),
                None => builder.singlepart(SinglePart::plain(mail.text.clone())),
            }
        } else {
            // Text (or text + HTML alternative) first, then the attachments, one level deep.
            let mut parts = match &mail.html {
                Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                    mail.text.clone(),
                    html.clone(),
                )),
                None => MultiPart::mixed().singlepart(SinglePart::plain(mail.text.clone())),
            };
            for a in &mail.attachments {
                let ct = ContentType::parse(&a.content_type)
                    .map_err(|e| MailError::Build(format!("{}: {e}", a.content_type)))?;
                parts = parts
                    .singlepart(LettreAttachment::new(a.filename.clone()).body(a.body.clone(), ct));
            }
            builder.multipart(parts)
        }
        .map_err(|e| MailError::Build(e.to_string()))?;

        match &self.transport {
            Transport::Smtp(t) => match t.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(MailError::Rejected(e.to_string())),
                Err(e) => Err(MailError::Unavailable(e.to_string())),
            },
            Transport::Dev(dir) => {
                match dir {
                    Some(d) => {
                        let name = format!(
                            "{}-{}.txt",
                            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"),
                            crate::ids::new_id("mail")
                        );
                        let path = d.join(name);
                        let attached: Vec<&str> = mail
                            .attachments
                            .iter()
                            .map(|a| a.filename.as_str())
                            .collect();
                        let body = format!(
                            "To: {}\nSubject: {}\nAttachments: {}\n\n{}\n",
                            mail.to,
                            mail.subject,
                            if attached.is_empty() {
                                "none".to_owned()
                            } else {
                                attached.join(", ")
                            },
                            mail.text
                        );
                        std::fs::write(&path, body)
                            .map_err(|e| MailError::Unavailable(e.to_string()))?;
                        tracing::info!(to = %crate::telemetry::masked_email(&mail.to), subject = %mail.subject, path = %path.display(), "mail written to the dev mailbox");
                    }
                    None => {
                        // Development only (production refuses to start without SMTP): the body is the point here,
                        // so a newcomer can find the sign-in link in the log.
                        tracing::info!(to = %crate::telemetry::masked_email(&mail.to), subject = %mail.subject, body = %mail.text, "mail (dev mailbox, log only)");
                    }
                }
                drop(message);
                Ok(())
            }
        }
    }
}

/// Tiny helpers for the user:password part of an SMTP URL (the password never lives in config).
mod url {
    pub fn has_user_without_password(url: &str) -> bool {
        authority(url)
            .is_some_and(|a| a.contains('@') && !a.split('@').next().unwrap_or("").contains(':'))
    }

    pub fn with_password(url: &str, password: &str) -> String {
        let enc: String = password
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        match url
            .find("://")
            .and_then(|i| url[i + 3..].find('@').map(|j| i + 3 + j))
        {
            Some(at) => format!("{}:{enc}{}", &url[..at], &url[at..]),
            None => url.to_owned(),
        }
    }

    fn authority(url: &str) -> Option<&str> {
        let rest = &url[url.find("://")? + 3..];
        Some(rest.split(['/', '?']).next().unwrap_or(rest))
    }
}

/// An email address as typed, trimmed and lower-cased, or a clear error (one rule for clients and
/// staff).
pub fn normalize_email(raw: &str) -> Result<String, crate::error::DomainError> {
    let e = raw.trim().to_lowercase();
    let bad = || {
        crate::error::DomainError::invalid(
            "Please enter a valid email address, like rider@example.com.",
        )
    };
    if e.is_empty() || e.len() > 254 {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+'".contains(&b))
    };
    if local.len() > 64
        || !label_ok(local)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad());
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_password_is_spliced_in_encoded() {
        assert!(url::has_user_without_password(
            "smtp://me@host:587?tls=required"
        ));
        assert!(!url::has_user_without_password("smtp://host:25"));
        assert!(!url::has_user_without_password("smtp://me:pw@host"));
        assert_eq!(
            url::with_password("smtp://me@host:587?tls=required", "p@ss/w"),
            "smtp://me:p%40ss%2Fw@host:587?tls=required"
        );
    }

    #[tokio::test]
    async fn production_without_smtp_is_refused_and_dev_writes_eml_files() {
        let secrets = SecretStore::env(Vec::new());
        let err = Mailer::from_config(&MailConfig::default(), Environment::Production, &secrets)
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("mail.smtp_url"));

        let dir = std::env::temp_dir().join(crate::ids::new_id("maildir"));
        let cfg = MailConfig {
            dev_dir: dir.display().to_string(),
            ..MailConfig::default()
        };
        let m = Mailer::from_config(&cfg, Environment::Development, &secrets)
            .await
            .unwrap();
        m.send(Mail {
            to: "rider@example.com".into(),
            subject: "Your sign-in link".into(),
            text: "https://example/link".into(),
            html: None,
            attachments: vec![],
            message_id: None,
        })
        .await
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let bad = m
            .send(Mail {
                to: "not an address".into(),
                subject: "x".into(),
                text: "x".into(),
                html: None,
                attachments: vec![],
                message_id: None,
            })
            .await
            .unwrap_err();
        assert!(bad.is_permanent());
        let _ = std::fs::remove_dir_all(dir);
    }
}
