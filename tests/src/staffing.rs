//! Staff accounts for tests: made directly in portal's database through portal's own account
//! code (the first owner as `portal create-owner` makes it, the others through accepted invites),
//! and signed in through the real pages, second factor included.

use std::time::{SystemTime, UNIX_EPOCH};

use omneuro_platform::auth::StaffRole;
use omneuro_platform::config::{DatabaseConfig, StaffConfig};
use omneuro_platform::db::{Database, now_utc};
use portal::accounts::{self, Origin};

use crate::{Browser, Page};

/// One staff member's credentials, as the person knows them.
#[derive(Debug, Clone)]
pub struct StaffLogin {
    pub email: String,
    pub password: String,
    pub role: StaffRole,
    /// The authenticator app's key, once set up.
    pub totp_secret: Option<String>,
    pub recovery_codes: Vec<String>,
    last_step: Option<u64>,
}

/// The owner (with an authenticator app), a tech and a front-desk account.
pub struct ShopStaff {
    pub owner: StaffLogin,
    pub tech: StaffLogin,
    pub desk: StaffLogin,
}

pub fn portal_db(url: &str) -> Database {
    let db = Database::new(
        &DatabaseConfig {
            url: url.to_owned(),
            pool_size: 2,
            connect_timeout_ms: 5_000,
            health_interval_ms: 1_000,
        },
        portal::migrations(),
    )
    .unwrap();
    db.migrate_blocking().unwrap();
    db
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl StaffLogin {
    /// A code the portal will take now: the current step's, or the next step's when the current
    /// one was used already (replays are refused); when both were used, a recovery code, and
    /// without one, the next step.
    pub async fn fresh_code(&mut self) -> String {
        let secret = self.totp_secret.clone().expect("no authenticator set up");
        loop {
            let step = unix_now() / portal::totp::STEP_SECONDS;
            for s in [step, step + 1] {
                if self.last_step.is_none_or(|l| s > l) {
                    self.last_step = Some(s);
                    return portal::totp::code_at(&secret, s * portal::totp::STEP_SECONDS).unwrap();
                }
            }
            if let Some(code) = self.recovery_codes.pop() {
                return code;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// Makes the first owner (authenticator set up), a tech and a front desk in portal's database.
pub async fn seed_staff(db_url: &str) -> ShopStaff {
    let db = portal_db(db_url);
    let password = "bench-grease-7412-volt".to_owned();
    let origin = Origin::default();
    let cfg = StaffConfig::default();
    let owner_pw = password.clone();
    let (secret, codes, owner) = db
        .run(move |c| {
            let owner = accounts::create_first_owner(
                c,
                "owner@juicejunkiez.test",
                "Dana Owner",
                &owner_pw,
                now_utc(),
            )?;
            let opened = accounts::sign_in(
                c,
                "owner@juicejunkiez.test",
                &owner_pw,
                &origin,
                &cfg,
                now_utc(),
            )
            .map_err(|r| r.error)?;
            let session = accounts::authenticate(c, &opened.token, &cfg, now_utc())?;
            let secret = session.pending_totp_secret.clone().unwrap();
            let code = portal::totp::code_at(&secret, unix_now()).unwrap();
            let (_, codes) = accounts::finish_totp(c, &session, &code, &origin, &cfg, now_utc())?;
            Ok::<_, omneuro_platform::error::DomainError>((secret, codes, owner))
        })
        .await
        .unwrap();
    let mut made = Vec::new();
    for (email, name, role) in [
        ("tech@juicejunkiez.test", "Marcus Tech", StaffRole::Tech),
        ("desk@juicejunkiez.test", "Fran Desk", StaffRole::FrontDesk),
    ] {
        let (owner, pw) = (owner.clone(), password.clone());
        db.run(move |c| {
            let token = accounts::invite(
                c,
                &owner,
                &accounts::NewInvite { email, name, role },
                &Origin::default(),
                &StaffConfig::default(),
                now_utc(),
            )?;
            accounts::accept_invite(c, &token, name, &pw, &Origin::default(), now_utc())
        })
        .await
        .unwrap();
        made.push(StaffLogin {
            email: email.into(),
            password: password.clone(),
            role,
            totp_secret: None,
            recovery_codes: Vec::new(),
            last_step: None,
        });
    }
    let desk = made.pop().unwrap();
    let tech = made.pop().unwrap();
    ShopStaff {
        owner: StaffLogin {
            email: "owner@juicejunkiez.test".into(),
            password,
            role: StaffRole::Owner,
            totp_secret: Some(secret),
            recovery_codes: codes,
            // The step used while setting it up.
            last_step: Some(unix_now() / portal::totp::STEP_SECONDS),
        },
        tech,
        desk,
    }
}

/// Signs `login` in through the pages (password, then the code when one is due); returns the
/// last page (a 303 to `/jobs` when it worked).
pub async fn staff_sign_in(b: &mut Browser, login: &mut StaffLogin) -> Page {
    let csrf = b.get("/signin").await.csrf();
    let p = b
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", &login.email),
                ("password", &login.password),
            ],
        )
        .await;
    if p.location != "/signin/code" {
        return p;
    }
    let csrf = b.get("/signin/code").await.csrf();
    let code = login.fresh_code().await;
    b.post("/signin/code", &[("csrf", &csrf), ("code", &code)])
        .await
}

/// Runs `portal create-owner` against `db_url` with the password on stdin; returns its output.
pub fn create_owner_cli(db_url: &str, email: &str, name: &str, password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::bin("portal"))
        .args(["create-owner", "--email", email, "--name", name])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OMNEURO__DATABASE__URL", db_url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
