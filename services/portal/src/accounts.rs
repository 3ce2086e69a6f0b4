//! Staff accounts (ADR 0011): the first owner, invites, sign-in with a password and a second
//! factor, sessions, password changes, throttling and lockout. Domain types and queries only; the
//! pages are in [`crate::signin`] and [`crate::team`].
//!
//! - Passwords are argon2id ([`crate::password`]); an unknown address costs the same hashing time
//!   as a wrong password and gets the same answer.
//! - A sign-in is throttled and locked per address and per IP from [`sign_in_attempts`]: failures
//!   since the last success within the window.
//! - A session begins half-open (second factor due, or its set-up for an owner without one).
//!   Completing it deletes that row and opens a new token: a token known before sign-in never
//!   becomes a signed-in session (session fixation).
//! - Only SHA-256 hashes of session, invite and recovery tokens are stored.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::auth::StaffRole;
use omneuro_platform::config::StaffConfig;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::DomainError;
use omneuro_platform::ids;
use omneuro_platform::mail::normalize_email;

use crate::schema::{
    audit_log, sign_in_attempts, staff, staff_invites, staff_recovery_codes, staff_sessions,
};
use crate::{password, totp};

/// How many recovery codes a staff member gets.
pub const RECOVERY_CODES: usize = 10;
/// How long a half-open session (password checked, second factor due) lasts.
pub const HALF_OPEN_MINUTES: i64 = 10;
/// Sessions' `last_seen_at` is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;
/// The same words for an unknown address, a wrong password and a disabled account.
pub const WRONG: &str = "That email and password don't match an account. Check them and try again.";
pub const WRONG_CODE: &str = "That code didn't work. Type the 6 digits your authenticator app shows now, or one of your recovery codes.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub totp_on: bool,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
}

/// Where a session is in signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password checked; the TOTP (or a recovery code) is due.
    SecondFactor,
    /// Password checked; an owner without a second factor must set it up now.
    Enroll,
    SignedIn,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::Enroll => "enroll",
            Stage::SignedIn => "signed_in",
        }
    }
    fn parse(s: &str) -> Stage {
        match s {
            "signed_in" => Stage::SignedIn,
            "enroll" => Stage::Enroll,
            _ => Stage::SecondFactor,
        }
    }
}

/// A live session and who holds it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub stage: Stage,
    pub member: StaffMember,
    /// The TOTP secret being set up in this session, if any.
    pub pending_totp_secret: Option<String>,
}

/// A new session's cookie value and stage.
#[derive(Debug)]
pub struct Opened {
    pub token: String,
    pub stage: Stage,
    pub member: StaffMember,
}

/// Where the request came from (for sessions, attempts and the audit log).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

type StaffRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

const STAFF_COLUMNS: (
    staff::id,
    staff::email,
    staff::name,
    staff::role,
    staff::totp_secret,
    staff::disabled_at,
    staff::created_at,
) = (
    staff::id,
    staff::email,
    staff::name,
    staff::role,
    staff::totp_secret,
    staff::disabled_at,
    staff::created_at,
);

fn member_from_row(r: StaffRow) -> StaffMember {
    StaffMember {
        id: r.0,
        email: r.1,
        name: r.2,
        role: StaffRole::parse(&r.3).unwrap_or(StaffRole::Tech),
        totp_on: r.4.is_some(),
        disabled: r.5.is_some(),
        created_at: r.6,
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A display name: trimmed, 1–80 characters, no control characters.
pub fn normalize_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("Please enter a name."));
    }
    if name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "A name is at most 80 characters, on one line.",
        ));
    }
    Ok(name.to_owned())
}

fn check_password(pw: &str, email: &str, name: &str) -> Result<(), DomainError> {
    password::check_policy(pw, &[email, name]).map_err(|e| DomainError::invalid(e.to_string()))
}

fn hash_password(pw: &str) -> Result<String, DomainError> {
    password::hash(pw).map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        DomainError::Unavailable("Passwords can't be saved right now; try again.".into())
    })
}

pub fn load(conn: &mut DbConnection, id: &str) -> Result<StaffMember, DomainError> {
    staff::table
        .find(id)
        .select(STAFF_COLUMNS)
        .first::<StaffRow>(conn)
        .optional()?
        .map(member_from_row)
        .ok_or_else(|| DomainError::NotFound("No such staff member.".into()))
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<StaffMember>, DomainError> {
    Ok(staff::table
        .select(STAFF_COLUMNS)
        .order((staff::disabled_at.is_not_null(), staff::name, staff::id))
        .load::<StaffRow>(conn)?
        .into_iter()
        .map(member_from_row)
        .collect())
}

fn active_owners(conn: &mut DbConnection) -> Result<i64, DomainError> {
    Ok(staff::table
        .filter(staff::role.eq(StaffRole::Owner.as_str()))
        .filter(staff::disabled_at.is_null())
        .count()
        .get_result(conn)?)
}

fn insert_staff(
    c: &mut DbConnection,
    email: &str,
    name: &str,
    role: StaffRole,
    phc: &str,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let taken: i64 = staff::table
        .filter(staff::email.eq(email))
        .count()
        .get_result(c)?;
    if taken > 0 {
        return Err(DomainError::conflict(
            "There is already a staff account with that email address.",
        ));
    }
    let id = ids::new_id("stf");
    diesel::insert_into(staff::table)
        .values((
            staff::id.eq(&id),
            staff::email.eq(email),
            staff::name.eq(name),
            staff::role.eq(role.as_str()),
            staff::password_hash.eq(phc),
            staff::created_at.eq(now),
            staff::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(id)
}

/// The command-line step that makes the first owner (there is no default password). Refused when
/// an active owner exists: later staff are invited by an owner.
pub fn create_first_owner(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    pw: &str,
    now: NaiveDateTime,
) -> Result<StaffMember, DomainError> {
    let email = normalize_email(email)?;
    let name = normalize_name(name)?;
    check_password(pw, &email, &name)?;
    let phc = hash_password(pw)?;
    write_transaction(conn, |c| {
        if active_owners(c)? > 0 {
            return Err(DomainError::conflict(
                "An owner account already exists; owners invite everyone else from Staff in the portal.",
            ));
        }
        let id = insert_staff(c, &email, &name, StaffRole::Owner, &phc, now)?;
        audit(
            c,
            &Audit {
                staff_id: &id,
                staff_email: &email,
                action: "created the first owner (command line)",
                target: &id,
                detail: "",
                ip: "",
                outcome: "ok",
            },
            now,
        )?;
        load(c, &id)
    })
}

/// One row of the audit log to write.
pub struct Audit<'a> {
    pub staff_id: &'a str,
    pub staff_email: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub ip: &'a str,
    pub outcome: &'a str,
}

pub fn audit(c: &mut DbConnection, a: &Audit<'_>, now: NaiveDateTime) -> Result<(), DomainError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(ids::new_id("aud")),
            audit_log::at.eq(now),
            audit_log::staff_id.eq(a.staff_id),
            audit_log::staff_email.eq(truncate(a.staff_email, 254)),
            audit_log::action.eq(truncate(a.action, 200)),
            audit_log::target.eq(truncate(a.target, 200)),
            audit_log::detail.eq(truncate(a.detail, 500)),
            audit_log::ip.eq(truncate(a.ip, 64)),
            audit_log::outcome.eq(truncate(a.outcome, 40)),
        ))
        .execute(c)?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: NaiveDateTime,
    pub staff_email: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: String,
    pub outcome: String,
}

/// The newest `limit` entries, newest first.
pub fn audit_entries(conn: &mut DbConnection, limit: i64) -> Result<Vec<AuditEntry>, DomainError> {
    let rows: Vec<(
        NaiveDateTime,
        String,
        String,
        String,
        String,
        String,
        String,
    )> = audit_log::table
        .select((
            audit_log::at,
            audit_log::staff_email,
            audit_log::action,
            audit_log::target,
            audit_log::detail,
            audit_log::ip,
            audit_log::outcome,
        ))
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            at: r.0,
            staff_email: r.1,
            action: r.2,
            target: r.3,
            detail: r.4,
            ip: r.5,
            outcome: r.6,
        })
        .collect())
}

/// Failures for this address and this IP since their last success, within the window.
fn failures(
    c: &mut DbConnection,
    email: &str,
    ip: &str,
    since: NaiveDateTime,
) -> Result<(i64, i64), DomainError> {
    let last_ok_email: Option<NaiveDateTime> = sign_in_attempts::table
        .filter(sign_in_attempts::email.eq(email))
        .filter(sign_in_attempts::succeeded.eq(true))
        .filter(sign_in_attempts::at.gt(since))
        .select(diesel::dsl::max(sign_in_attempts::at))
        .first(c)?;
    let by_email: i64 = sign_in_attempts::table
        .filter(sign_in_attempts::email.eq(email))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::at.gt(last_ok_email.unwrap_or(since).max(since)))
        .count()
        .get_result(c)?;
    let by_ip: i64 = sign_in_attempts::table
        .filter(sign_in_attempts::ip.eq(ip))
        .filter(sign_in_attempts::succeeded.eq(false))
        .filter(sign_in_attempts::at.gt(since))
        .count()
        .get_result(c)?;
    Ok((by_email, by_ip))
}

fn record_attempt(
    c: &mut DbConnection,
    email: &str,
    ip: &str,
    ok: bool,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::insert_into(sign_in_attempts::table)
        .values((
            sign_in_attempts::id.eq(ids::new_id("att")),
            sign_in_attempts::email.eq(truncate(email, 254)),
            sign_in_attempts::ip.eq(truncate(ip, 64)),
            sign_in_attempts::succeeded.eq(ok),
            sign_in_attempts::at.eq(now),
        ))
        .execute(c)?;
    // Attempts only matter for throttling and lockout (minutes to hours): older ones go, after
    // every successful sign-in and now and then after a failure (so a flood can't grow the
    // table without bound either).
    if ok || rand::random_ratio(1, 64) {
        prune_attempts(c, now)?;
    }
    Ok(())
}

/// How long sign-in attempts are kept.
pub const ATTEMPTS_KEPT_DAYS: i64 = 30;

/// Deletes sign-in attempts older than [`ATTEMPTS_KEPT_DAYS`]; returns how many.
pub fn prune_attempts(c: &mut DbConnection, now: NaiveDateTime) -> Result<usize, DomainError> {
    Ok(diesel::delete(
        sign_in_attempts::table
            .filter(sign_in_attempts::at.lt(now - Duration::days(ATTEMPTS_KEPT_DAYS))),
    )
    .execute(c)?)
}

fn locked_message(cfg: &StaffConfig) -> DomainError {
    DomainError::RateLimited(format!(
        "Too many failed sign-ins. Sign-in is locked for {} minutes; try again later, or ask the owner.",
        cfg.lockout_minutes
    ))
}

/// How long to hold a failed answer back: nothing for the first two failures, then a growing
/// pause (capped), so guessing is slow well before the lockout.
pub fn failure_delay_ms(failures_so_far: i64) -> u64 {
    let extra = failures_so_far.saturating_sub(2).clamp(0, 8) as u64;
    extra * 250
}

/// The outcome of a password check that failed: the error to show and how many failures are now
/// on record for the address (for the delay).
#[derive(Debug)]
pub struct Refused {
    pub error: DomainError,
    pub failures: i64,
}

impl From<DomainError> for Refused {
    fn from(error: DomainError) -> Self {
        Refused { error, failures: 0 }
    }
}

impl From<omneuro_platform::db::DbError> for Refused {
    fn from(e: omneuro_platform::db::DbError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<diesel::result::Error> for Refused {
    fn from(e: diesel::result::Error) -> Self {
        DomainError::from(e).into()
    }
}

/// A hash to verify against when the address is unknown, so both answers take as long.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not a real password, never matches").unwrap_or_default())
}

fn open_session(
    c: &mut DbConnection,
    member: StaffMember,
    stage: Stage,
    pending_totp_secret: Option<String>,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Opened, DomainError> {
    let token = ids::new_secret();
    let expires_at = match stage {
        Stage::SignedIn => now + Duration::hours(cfg.absolute_hours),
        _ => now + Duration::minutes(HALF_OPEN_MINUTES),
    };
    diesel::insert_into(staff_sessions::table)
        .values((
            staff_sessions::token_hash.eq(ids::secret_hash(&token)),
            staff_sessions::staff_id.eq(&member.id),
            staff_sessions::stage.eq(stage.as_str()),
            staff_sessions::pending_totp_secret.eq(pending_totp_secret),
            staff_sessions::created_at.eq(now),
            staff_sessions::last_seen_at.eq(now),
            staff_sessions::expires_at.eq(expires_at),
            staff_sessions::ip.eq(truncate(&origin.ip, 64)),
            staff_sessions::user_agent.eq(truncate(&origin.user_agent, 256)),
        ))
        .execute(c)?;
    Ok(Opened {
        token,
        stage,
        member,
    })
}

/// Checks an email and password. Right: a half-open session (second factor or its set-up due) —
/// or, for a non-owner without a second factor, a signed-in one. Wrong, unknown or disabled: the
/// same [`WRONG`] answer; locked: [`locked_message`].
pub fn sign_in(
    conn: &mut DbConnection,
    email_typed: &str,
    pw: &str,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Opened, Refused> {
    let email = truncate(&email_typed.trim().to_lowercase(), 254);
    let since = now - Duration::minutes(cfg.lockout_minutes);
    let (by_email, by_ip) = failures(conn, &email, &origin.ip, since)?;
    if by_email >= cfg.lockout_failures || by_ip >= cfg.lockout_failures_per_ip {
        return Err(Refused {
            error: locked_message(cfg),
            failures: by_email.max(by_ip),
        });
    }
    let found: Option<(StaffRow, String)> = staff::table
        .filter(staff::email.eq(&email))
        .select((STAFF_COLUMNS, staff::password_hash))
        .first(conn)
        .optional()?;
    // Hash either way so an unknown address takes as long as a wrong password.
    let (row, phc) = match found {
        Some((row, phc)) => (Some(row), phc),
        None => (None, dummy_hash().to_owned()),
    };
    let matches = password::verify(pw, &phc) && !pw.is_empty();
    let member = row.map(member_from_row).filter(|m| !m.disabled);
    let rehash = matches && password::needs_rehash(&phc);
    let Some(member) = member.filter(|_| matches) else {
        // Outside any transaction: a refusal must stay on record.
        record_attempt(conn, &email, &origin.ip, false, now)?;
        return Err(Refused {
            error: DomainError::Unauthenticated(WRONG.into()),
            failures: by_email + 1,
        });
    };
    write_transaction(conn, |c| {
        if rehash && let Ok(new) = password::hash(pw) {
            diesel::update(staff::table.find(&member.id))
                .set(staff::password_hash.eq(new))
                .execute(c)?;
        }
        let (stage, pending) = if member.totp_on {
            (Stage::SecondFactor, None)
        } else if member.role == StaffRole::Owner {
            (Stage::Enroll, Some(totp::new_secret()))
        } else {
            record_attempt(c, &email, &origin.ip, true, now)?;
            (Stage::SignedIn, None)
        };
        Ok(open_session(c, member, stage, pending, origin, cfg, now)?)
    })
}

/// staff id, stage, pending TOTP secret, last seen, expires, revoked.
type SessionRow = (
    String,
    String,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

/// The live session behind a cookie value (not revoked, not idle too long, not past its end, its
/// staff member not disabled). Touches `last_seen_at` at most once a minute.
pub fn authenticate(
    conn: &mut DbConnection,
    token: &str,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Session, DomainError> {
    let ended =
        || DomainError::Unauthenticated("Your session has ended; please sign in again.".into());
    if !ids::is_secret_shaped(token) {
        return Err(ended());
    }
    let hash = ids::secret_hash(token);
    let row: Option<SessionRow> = staff_sessions::table
        .find(&hash)
        .select((
            staff_sessions::staff_id,
            staff_sessions::stage,
            staff_sessions::pending_totp_secret,
            staff_sessions::last_seen_at,
            staff_sessions::expires_at,
            staff_sessions::revoked_at,
        ))
        .first(conn)
        .optional()?;
    let Some((staff_id, stage, pending, last_seen, expires_at, revoked)) = row else {
        return Err(ended());
    };
    if revoked.is_some()
        || expires_at <= now
        || last_seen + Duration::minutes(cfg.idle_minutes) <= now
    {
        return Err(ended());
    }
    let member = load(conn, &staff_id)?;
    if member.disabled {
        return Err(ended());
    }
    if (now - last_seen).num_seconds() >= TOUCH_EVERY_SECS {
        diesel::update(staff_sessions::table.find(&hash))
            .set(staff_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Session {
        token_hash: hash,
        stage: Stage::parse(&stage),
        member,
        pending_totp_secret: pending,
    })
}

fn unix(now: NaiveDateTime) -> u64 {
    u64::try_from(now.and_utc().timestamp()).unwrap_or(0)
}

/// Replaces a half-open session with a signed-in one under a new token.
fn promote(
    c: &mut DbConnection,
    session: &Session,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Opened, DomainError> {
    diesel::delete(staff_sessions::table.find(&session.token_hash)).execute(c)?;
    record_attempt(c, &session.member.email, &origin.ip, true, now)?;
    open_session(
        c,
        session.member.clone(),
        Stage::SignedIn,
        None,
        origin,
        cfg,
        now,
    )
}

/// The second step: a TOTP code (refused when replayed) or an unused recovery code.
pub fn second_factor(
    conn: &mut DbConnection,
    session: &Session,
    code: &str,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Opened, Refused> {
    let email = session.member.email.clone();
    let since = now - Duration::minutes(cfg.lockout_minutes);
    let (by_email, by_ip) = failures(conn, &email, &origin.ip, since)?;
    if by_email >= cfg.lockout_failures || by_ip >= cfg.lockout_failures_per_ip {
        // Locked: the half-open session is no good any more.
        diesel::delete(staff_sessions::table.find(&session.token_hash)).execute(conn)?;
        return Err(Refused {
            error: locked_message(cfg),
            failures: by_email,
        });
    }
    let accepted = write_transaction(conn, |c| {
        let (secret, last): (Option<String>, Option<i64>) = staff::table
            .find(&session.member.id)
            .select((staff::totp_secret, staff::totp_last_step))
            .first(c)?;
        let step = secret.as_deref().and_then(|s| {
            totp::verify(s, code, unix(now), last.and_then(|l| u64::try_from(l).ok()))
        });
        if let Some(step) = step {
            diesel::update(staff::table.find(&session.member.id))
                .set(staff::totp_last_step.eq(i64::try_from(step).unwrap_or(i64::MAX)))
                .execute(c)?;
            return Ok(Some(promote(c, session, origin, cfg, now)?));
        }
        let used = diesel::delete(
            staff_recovery_codes::table
                .filter(staff_recovery_codes::staff_id.eq(&session.member.id))
                .filter(staff_recovery_codes::code_hash.eq(totp::recovery_hash(code))),
        )
        .execute(c)?;
        if used == 1 {
            audit(
                c,
                &Audit {
                    staff_id: &session.member.id,
                    staff_email: &email,
                    action: "used a recovery code",
                    target: "",
                    detail: "",
                    ip: &origin.ip,
                    outcome: "ok",
                },
                now,
            )?;
            return Ok(Some(promote(c, session, origin, cfg, now)?));
        }
        Ok::<_, DomainError>(None)
    })?;
    match accepted {
        Some(opened) => Ok(opened),
        None => {
            record_attempt(conn, &email, &origin.ip, false, now)?;
            Err(Refused {
                error: DomainError::Unauthenticated(WRONG_CODE.into()),
                failures: by_email + 1,
            })
        }
    }
}

/// Starts setting up TOTP in a signed-in session (a non-owner turning it on): a new pending
/// secret, shown until confirmed.
pub fn begin_totp(conn: &mut DbConnection, session: &Session) -> Result<String, DomainError> {
    if let Some(s) = &session.pending_totp_secret {
        return Ok(s.clone());
    }
    let secret = totp::new_secret();
    diesel::update(staff_sessions::table.find(&session.token_hash))
        .set(staff_sessions::pending_totp_secret.eq(&secret))
        .execute(conn)?;
    Ok(secret)
}

/// Confirms the pending secret with a code from the app: the second factor is on, new recovery
/// codes are returned (to show once), and the session is replaced by a signed-in one.
pub fn finish_totp(
    conn: &mut DbConnection,
    session: &Session,
    code: &str,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<(Opened, Vec<String>), DomainError> {
    let Some(secret) = session.pending_totp_secret.clone() else {
        return Err(DomainError::conflict(
            "Start setting up the authenticator app again.",
        ));
    };
    let Some(step) = totp::verify(&secret, code, unix(now), None) else {
        return Err(DomainError::invalid(
            "That code didn't match. Scan the code again (or type the key) and enter the 6 digits the app shows now.",
        ));
    };
    let codes = totp::new_recovery_codes(RECOVERY_CODES);
    write_transaction(conn, |c| {
        diesel::update(staff::table.find(&session.member.id))
            .set((
                staff::totp_secret.eq(&secret),
                staff::totp_last_step.eq(i64::try_from(step).unwrap_or(i64::MAX)),
                staff::updated_at.eq(now),
            ))
            .execute(c)?;
        store_recovery_codes(c, &session.member.id, &codes, now)?;
        audit(
            c,
            &Audit {
                staff_id: &session.member.id,
                staff_email: &session.member.email,
                action: "set up the authenticator app",
                target: &session.member.id,
                detail: "",
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )?;
        let mut member = session.member.clone();
        member.totp_on = true;
        let s = Session {
            member,
            ..session.clone()
        };
        Ok((promote(c, &s, origin, cfg, now)?, codes))
    })
}

fn store_recovery_codes(
    c: &mut DbConnection,
    staff_id: &str,
    codes: &[String],
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::delete(staff_recovery_codes::table.filter(staff_recovery_codes::staff_id.eq(staff_id)))
        .execute(c)?;
    for code in codes {
        diesel::insert_into(staff_recovery_codes::table)
            .values((
                staff_recovery_codes::code_hash.eq(totp::recovery_hash(code)),
                staff_recovery_codes::staff_id.eq(staff_id),
                staff_recovery_codes::created_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// Ends this session, or every session of its staff member.
pub fn sign_out(
    conn: &mut DbConnection,
    session: &Session,
    everywhere: bool,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    if everywhere {
        revoke_all(conn, &session.member.id, now)?;
    } else {
        diesel::update(staff_sessions::table.find(&session.token_hash))
            .set(staff_sessions::revoked_at.eq(now))
            .execute(conn)?;
    }
    Ok(())
}

fn revoke_all(c: &mut DbConnection, staff_id: &str, now: NaiveDateTime) -> Result<(), DomainError> {
    diesel::update(
        staff_sessions::table
            .filter(staff_sessions::staff_id.eq(staff_id))
            .filter(staff_sessions::revoked_at.is_null()),
    )
    .set(staff_sessions::revoked_at.eq(now))
    .execute(c)?;
    Ok(())
}

/// Changes the password after checking the current one; every session of this staff member ends
/// and this browser gets a new one.
pub fn change_password(
    conn: &mut DbConnection,
    session: &Session,
    current: &str,
    new: &str,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Opened, DomainError> {
    let phc: String = staff::table
        .find(&session.member.id)
        .select(staff::password_hash)
        .first(conn)?;
    if !password::verify(current, &phc) {
        return Err(DomainError::invalid("Your current password isn't right."));
    }
    check_password(new, &session.member.email, &session.member.name)?;
    let phc = hash_password(new)?;
    write_transaction(conn, |c| {
        diesel::update(staff::table.find(&session.member.id))
            .set((staff::password_hash.eq(&phc), staff::updated_at.eq(now)))
            .execute(c)?;
        revoke_all(c, &session.member.id, now)?;
        audit(
            c,
            &Audit {
                staff_id: &session.member.id,
                staff_email: &session.member.email,
                action: "changed their password (all sessions ended)",
                target: &session.member.id,
                detail: "",
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )?;
        open_session(
            c,
            session.member.clone(),
            Stage::SignedIn,
            None,
            origin,
            cfg,
            now,
        )
    })
}

/// Turns the second factor off (not allowed for owners), after checking the password.
pub fn turn_off_totp(
    conn: &mut DbConnection,
    session: &Session,
    current: &str,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    if session.member.role == StaffRole::Owner {
        return Err(DomainError::Forbidden(
            "Owners must keep the authenticator app.".into(),
        ));
    }
    let phc: String = staff::table
        .find(&session.member.id)
        .select(staff::password_hash)
        .first(conn)?;
    if !password::verify(current, &phc) {
        return Err(DomainError::invalid("Your current password isn't right."));
    }
    write_transaction(conn, |c| {
        diesel::update(staff::table.find(&session.member.id))
            .set((
                staff::totp_secret.eq(None::<String>),
                staff::totp_last_step.eq(None::<i64>),
                staff::updated_at.eq(now),
            ))
            .execute(c)?;
        diesel::delete(
            staff_recovery_codes::table
                .filter(staff_recovery_codes::staff_id.eq(&session.member.id)),
        )
        .execute(c)?;
        audit(
            c,
            &Audit {
                staff_id: &session.member.id,
                staff_email: &session.member.email,
                action: "turned off the authenticator app",
                target: &session.member.id,
                detail: "",
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )
    })
}

/// Staff with a live, signed-in session right now ("who is on"), with when each was last seen,
/// most recently seen first.
pub fn signed_in_now(
    conn: &mut DbConnection,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<Vec<(StaffMember, NaiveDateTime)>, DomainError> {
    let rows: Vec<(String, NaiveDateTime)> = staff_sessions::table
        .filter(staff_sessions::stage.eq(Stage::SignedIn.as_str()))
        .filter(staff_sessions::revoked_at.is_null())
        .filter(staff_sessions::expires_at.gt(now))
        .filter(staff_sessions::last_seen_at.gt(now - Duration::minutes(cfg.idle_minutes)))
        .select((staff_sessions::staff_id, staff_sessions::last_seen_at))
        .load(conn)?;
    let mut latest: std::collections::HashMap<String, NaiveDateTime> = Default::default();
    for (id, seen) in rows {
        let e = latest.entry(id).or_insert(seen);
        *e = (*e).max(seen);
    }
    let mut on: Vec<(StaffMember, NaiveDateTime)> = list(conn)?
        .into_iter()
        .filter(|m| !m.disabled)
        .filter_map(|m| latest.get(&m.id).copied().map(|seen| (m, seen)))
        .collect();
    on.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    Ok(on)
}

/// How many unused recovery codes a staff member has.
pub fn recovery_codes_left(conn: &mut DbConnection, staff_id: &str) -> Result<i64, DomainError> {
    Ok(staff_recovery_codes::table
        .filter(staff_recovery_codes::staff_id.eq(staff_id))
        .count()
        .get_result(conn)?)
}

/// New recovery codes (the old ones stop working); returned once to show.
pub fn new_recovery_codes(
    conn: &mut DbConnection,
    session: &Session,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<Vec<String>, DomainError> {
    if !session.member.totp_on {
        return Err(DomainError::conflict(
            "Set up the authenticator app first; recovery codes come with it.",
        ));
    }
    let codes = totp::new_recovery_codes(RECOVERY_CODES);
    write_transaction(conn, |c| {
        store_recovery_codes(c, &session.member.id, &codes, now)?;
        audit(
            c,
            &Audit {
                staff_id: &session.member.id,
                staff_email: &session.member.email,
                action: "made new recovery codes",
                target: &session.member.id,
                detail: "",
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )
    })?;
    Ok(codes)
}

/// An open invite, as its link shows it.
#[derive(Debug, Clone)]
pub struct Invite {
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub expires_at: NaiveDateTime,
}

/// The owner invites someone: returns the one-time token for the link (mailed, never stored).
/// Who the owner invites, as typed.
pub struct NewInvite<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: StaffRole,
}

pub fn invite(
    conn: &mut DbConnection,
    by: &StaffMember,
    new: &NewInvite<'_>,
    origin: &Origin,
    cfg: &StaffConfig,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let email = normalize_email(new.email)?;
    let name = normalize_name(new.name)?;
    let role = new.role;
    write_transaction(conn, |c| {
        let taken: i64 = staff::table
            .filter(staff::email.eq(&email))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(DomainError::conflict(
                "There is already a staff account with that email address.",
            ));
        }
        // A new invite replaces any open one for the same address.
        diesel::update(
            staff_invites::table
                .filter(staff_invites::email.eq(&email))
                .filter(staff_invites::accepted_at.is_null())
                .filter(staff_invites::revoked_at.is_null()),
        )
        .set(staff_invites::revoked_at.eq(now))
        .execute(c)?;
        let token = ids::new_secret();
        diesel::insert_into(staff_invites::table)
            .values((
                staff_invites::token_hash.eq(ids::secret_hash(&token)),
                staff_invites::email.eq(&email),
                staff_invites::name.eq(&name),
                staff_invites::role.eq(role.as_str()),
                staff_invites::invited_by.eq(&by.id),
                staff_invites::created_at.eq(now),
                staff_invites::expires_at.eq(now + Duration::hours(cfg.invite_hours)),
            ))
            .execute(c)?;
        audit(
            c,
            &Audit {
                staff_id: &by.id,
                staff_email: &by.email,
                action: "invited a staff member",
                target: &email,
                detail: &format!("{name} as {}", role.as_str()),
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )?;
        Ok(token)
    })
}

/// Withdraws the open invites for an address (an invite whose mail could not be sent).
pub fn withdraw_invites(
    conn: &mut DbConnection,
    email: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(
        staff_invites::table
            .filter(staff_invites::email.eq(email))
            .filter(staff_invites::accepted_at.is_null())
            .filter(staff_invites::revoked_at.is_null()),
    )
    .set(staff_invites::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// An invite nobody has accepted yet, still valid, for the staff page.
pub struct OpenInvite {
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Every open invite (not accepted, not withdrawn, not expired), newest first.
pub fn open_invites(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<OpenInvite>, DomainError> {
    let rows: Vec<(String, String, String, NaiveDateTime, NaiveDateTime)> = staff_invites::table
        .filter(staff_invites::accepted_at.is_null())
        .filter(staff_invites::revoked_at.is_null())
        .filter(staff_invites::expires_at.gt(now))
        .order_by(staff_invites::created_at.desc())
        .select((
            staff_invites::email,
            staff_invites::name,
            staff_invites::role,
            staff_invites::created_at,
            staff_invites::expires_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(email, name, role, created_at, expires_at)| OpenInvite {
            email,
            name,
            role: StaffRole::parse(&role).unwrap_or(StaffRole::Tech),
            created_at,
            expires_at,
        })
        .collect())
}

/// The owner withdraws the open invite for `email`: its link stops working. Audited.
pub fn withdraw_invite(
    conn: &mut DbConnection,
    by: &StaffMember,
    email: &str,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    write_transaction(conn, |c| {
        let n = diesel::update(
            staff_invites::table
                .filter(staff_invites::email.eq(email))
                .filter(staff_invites::accepted_at.is_null())
                .filter(staff_invites::revoked_at.is_null())
                .filter(staff_invites::expires_at.gt(now)),
        )
        .set(staff_invites::revoked_at.eq(now))
        .execute(c)?;
        if n == 0 {
            return Err(DomainError::NotFound(
                "There is no open invite for that address (it was accepted, withdrawn or has expired)."
                    .into(),
            ));
        }
        audit(
            c,
            &Audit {
                staff_id: &by.id,
                staff_email: &by.email,
                action: "withdrew an invite",
                target: email,
                detail: "",
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )
    })
}

/// An unknown, used, withdrawn or expired invite link (all look alike).
const INVITE_GONE: &str =
    "This invite link has expired or was already used. Ask the owner for a new one.";

/// The open invite behind a link.
pub fn invite_for(
    conn: &mut DbConnection,
    token: &str,
    now: NaiveDateTime,
) -> Result<Invite, DomainError> {
    if !ids::is_secret_shaped(token) {
        return Err(DomainError::NotFound(INVITE_GONE.into()));
    }
    let row: Option<(String, String, String, NaiveDateTime)> = staff_invites::table
        .find(ids::secret_hash(token))
        .filter(staff_invites::accepted_at.is_null())
        .filter(staff_invites::revoked_at.is_null())
        .filter(staff_invites::expires_at.gt(now))
        .select((
            staff_invites::email,
            staff_invites::name,
            staff_invites::role,
            staff_invites::expires_at,
        ))
        .first(conn)
        .optional()?;
    let (email, name, role, expires_at) =
        row.ok_or_else(|| DomainError::NotFound(INVITE_GONE.into()))?;
    Ok(Invite {
        email,
        name,
        role: StaffRole::parse(&role).unwrap_or(StaffRole::Tech),
        expires_at,
    })
}

/// Spends an invite exactly once and makes the account with the chosen name and password.
pub fn accept_invite(
    conn: &mut DbConnection,
    token: &str,
    name: &str,
    pw: &str,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<StaffMember, DomainError> {
    let invite = invite_for(conn, token, now)?;
    let name = normalize_name(name)?;
    check_password(pw, &invite.email, &name)?;
    let phc = hash_password(pw)?;
    let hash = ids::secret_hash(token);
    write_transaction(conn, |c| {
        let spent = diesel::update(
            staff_invites::table
                .filter(staff_invites::token_hash.eq(&hash))
                .filter(staff_invites::accepted_at.is_null())
                .filter(staff_invites::revoked_at.is_null())
                .filter(staff_invites::expires_at.gt(now)),
        )
        .set(staff_invites::accepted_at.eq(now))
        .execute(c)?;
        if spent != 1 {
            return Err(DomainError::NotFound(INVITE_GONE.into()));
        }
        let id = insert_staff(c, &invite.email, &name, invite.role, &phc, now)?;
        audit(
            c,
            &Audit {
                staff_id: &id,
                staff_email: &invite.email,
                action: "accepted an invite",
                target: &id,
                detail: invite.role.as_str(),
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )?;
        load(c, &id)
    })
}

/// The owner changes someone's role or turns their account off (sessions end at once). The last
/// active owner can't be demoted or disabled, and nobody changes their own account here.
pub fn update_member(
    conn: &mut DbConnection,
    by: &StaffMember,
    id: &str,
    role: StaffRole,
    disabled: bool,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<StaffMember, DomainError> {
    if !ids::is_valid("stf", id) {
        return Err(DomainError::NotFound("No such staff member.".into()));
    }
    if id == by.id {
        return Err(DomainError::conflict(
            "You can't change your own role or switch off your own account.",
        ));
    }
    write_transaction(conn, |c| {
        let before = load(c, id)?;
        let loses_owner = before.role == StaffRole::Owner
            && !before.disabled
            && (role != StaffRole::Owner || disabled);
        if loses_owner && active_owners(c)? <= 1 {
            return Err(DomainError::conflict(
                "The shop needs at least one active owner.",
            ));
        }
        diesel::update(staff::table.find(id))
            .set((
                staff::role.eq(role.as_str()),
                staff::disabled_at.eq(if disabled {
                    Some(now)
                } else {
                    None::<NaiveDateTime>
                }),
                staff::updated_at.eq(now),
            ))
            .execute(c)?;
        if disabled || role != before.role {
            revoke_all(c, id, now)?;
        }
        audit(
            c,
            &Audit {
                staff_id: &by.id,
                staff_email: &by.email,
                action: if disabled {
                    "switched off a staff account"
                } else {
                    "changed a staff member's role"
                },
                target: &before.email,
                detail: &format!("{} → {}", before.role.as_str(), role.as_str()),
                ip: &origin.ip,
                outcome: "ok",
            },
            now,
        )?;
        load(c, id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_after_two_failures_and_is_capped() {
        assert_eq!(failure_delay_ms(0), 0);
        assert_eq!(failure_delay_ms(2), 0);
        assert_eq!(failure_delay_ms(3), 250);
        assert_eq!(failure_delay_ms(100), 2_000);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  Dee ").unwrap(), "Dee");
        assert!(normalize_name("  ").is_err());
        assert!(normalize_name(&"x".repeat(81)).is_err());
        assert!(normalize_name("a\nb").is_err());
    }
}
