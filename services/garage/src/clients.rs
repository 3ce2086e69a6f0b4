//! Clients: magic-link sign-in, sessions, and the profile with contact consent.
//!
//! Sign-in: a client asks for a link; a single-use token (15 minutes) is mailed. The landing page
//! spends it with a POST (mail scanners that only GET the link do not burn it). The answer is the
//! same whether the address is known or not: an unknown address gets the same link, and spending
//! it creates the client. Requests are limited per address and per IP (the link table is the log).
//! Only SHA-256 hashes of links and session tokens are stored.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;

use crate::schema::{client_sessions, clients, sign_in_links};

pub const LINK_TTL_MINUTES: i64 = 15;
/// Links per address, and per IP, within [`RATE_WINDOW_MINUTES`].
pub const LINKS_PER_EMAIL: i64 = 5;
pub const LINKS_PER_IP: i64 = 20;
pub const RATE_WINDOW_MINUTES: i64 = 15;
/// A session ends after this long without use, and in any case after the absolute lifetime.
pub const SESSION_IDLE_HOURS: i64 = 24 * 7;
pub const SESSION_ABSOLUTE_HOURS: i64 = 24 * 30;
/// `last_seen_at` is written at most this often (not on every page view).
const TOUCH_EVERY_MINUTES: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactPreference {
    Email,
    Sms,
}

impl ContactPreference {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
    fn parse(s: &str) -> Self {
        if s == "sms" { Self::Sms } else { Self::Email }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub contact_preference: ContactPreference,
    pub email_consent: bool,
    pub sms_consent: bool,
    pub sms_opted_out: bool,
    pub created_at: NaiveDateTime,
}

pub(crate) type ClientRow = (
    String,
    String,
    String,
    String,
    String,
    bool,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

pub(crate) const CLIENT_COLUMNS: (
    clients::id,
    clients::email,
    clients::name,
    clients::phone,
    clients::contact_preference,
    clients::email_consent,
    clients::sms_consent,
    clients::sms_opted_out_at,
    clients::created_at,
) = (
    clients::id,
    clients::email,
    clients::name,
    clients::phone,
    clients::contact_preference,
    clients::email_consent,
    clients::sms_consent,
    clients::sms_opted_out_at,
    clients::created_at,
);

pub(crate) fn client_from_row(r: ClientRow) -> Client {
    Client {
        id: r.0,
        email: r.1,
        name: r.2,
        phone: r.3,
        contact_preference: ContactPreference::parse(&r.4),
        email_consent: r.5,
        sms_consent: r.6,
        sms_opted_out: r.7.is_some(),
        created_at: r.8,
    }
}

pub use omneuro_platform::mail::normalize_email;

/// A phone number in E.164; US numbers may be typed the usual ways ("(410) 555-0123").
pub fn normalize_phone(raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(String::new());
    }
    let bad = || {
        DomainError::invalid(
            "Please enter a phone number we can text, like (410) 555-0123 or +14105550123.",
        )
    };
    if t.len() > 32
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return Err(bad());
    }
    let plus = t.starts_with('+');
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let e164 = match (plus, digits.len()) {
        (true, 8..=15) if !digits.starts_with('0') => format!("+{digits}"),
        (false, 10) => format!("+1{digits}"),
        (false, 11) if digits.starts_with('1') => format!("+{digits}"),
        _ => return Err(bad()),
    };
    // North American numbers: area code and exchange never start with 0 or 1.
    if let Some(nanp) = e164.strip_prefix("+1") {
        let b = nanp.as_bytes();
        if b.len() != 10 || b[0] < b'2' || b[3] < b'2' {
            return Err(bad());
        }
    }
    Ok(e164)
}

/// Records a sign-in request and returns the token to mail, unless the address or IP asked
/// too often recently.
pub fn request_link(
    conn: &mut DbConnection,
    email: &str,
    ip: &str,
    now: NaiveDateTime,
) -> Result<String, DomainError> {
    let since = now - Duration::minutes(RATE_WINDOW_MINUTES);
    write_transaction(conn, |c| {
        let by_email: i64 = sign_in_links::table
            .filter(sign_in_links::email.eq(email))
            .filter(sign_in_links::created_at.gt(since))
            .count()
            .get_result(c)?;
        let by_ip: i64 = sign_in_links::table
            .filter(sign_in_links::requested_ip.eq(ip))
            .filter(sign_in_links::created_at.gt(since))
            .count()
            .get_result(c)?;
        if by_email >= LINKS_PER_EMAIL || by_ip >= LINKS_PER_IP {
            return Err(DomainError::RateLimited(format!(
                "Too many sign-in links were asked for just now. Please wait {RATE_WINDOW_MINUTES} minutes and try again."
            )));
        }
        let token = ids::new_secret();
        diesel::insert_into(sign_in_links::table)
            .values((
                sign_in_links::token_hash.eq(ids::secret_hash(&token)),
                sign_in_links::email.eq(email),
                sign_in_links::requested_ip.eq(ip),
                sign_in_links::created_at.eq(now),
                sign_in_links::expires_at.eq(now + Duration::minutes(LINK_TTL_MINUTES)),
            ))
            .execute(c)?;
        Ok(token)
    })
}

pub struct Grant {
    pub session_token: String,
    pub client: Client,
    pub expires_at: NaiveDateTime,
    pub new_client: bool,
}

/// Spends a link exactly once and opens a session; creates the client on their first sign-in.
pub fn consume_link(
    conn: &mut DbConnection,
    token: &str,
    ip: &str,
    user_agent: &str,
    now: NaiveDateTime,
) -> Result<Grant, DomainError> {
    let unusable = || {
        DomainError::conflict(
            "This sign-in link has expired or was already used. Ask for a new one below.",
        )
    };
    if !ids::is_secret_shaped(token) {
        return Err(unusable());
    }
    let hash = ids::secret_hash(token);
    write_transaction(conn, |c| {
        // The guarded update is the single-use check: of two racing POSTs only one changes a row.
        let spent = diesel::update(
            sign_in_links::table
                .filter(sign_in_links::token_hash.eq(&hash))
                .filter(sign_in_links::consumed_at.is_null())
                .filter(sign_in_links::expires_at.gt(now)),
        )
        .set(sign_in_links::consumed_at.eq(now))
        .execute(c)?;
        if spent != 1 {
            return Err(unusable());
        }
        let email: String = sign_in_links::table
            .find(&hash)
            .select(sign_in_links::email)
            .first(c)?;
        let existing = clients::table
            .filter(clients::email.eq(&email))
            .select(CLIENT_COLUMNS)
            .first::<ClientRow>(c)
            .optional()?;
        let (client, new_client) = match existing {
            Some(row) => (client_from_row(row), false),
            None => {
                let id = ids::new_id("cli");
                diesel::insert_into(clients::table)
                    .values((
                        clients::id.eq(&id),
                        clients::email.eq(&email),
                        clients::created_at.eq(now),
                        clients::updated_at.eq(now),
                    ))
                    .execute(c)?;
                (load(c, &id)?, true)
            }
        };
        let session_token = ids::new_secret();
        let expires_at = now + Duration::hours(SESSION_ABSOLUTE_HOURS);
        diesel::insert_into(client_sessions::table)
            .values((
                client_sessions::token_hash.eq(ids::secret_hash(&session_token)),
                client_sessions::client_id.eq(&client.id),
                client_sessions::created_at.eq(now),
                client_sessions::last_seen_at.eq(now),
                client_sessions::expires_at.eq(expires_at),
                client_sessions::ip.eq(truncate(ip, 64)),
                client_sessions::user_agent.eq(truncate(user_agent, 256)),
            ))
            .execute(c)?;
        Ok(Grant {
            session_token,
            client,
            expires_at,
            new_client,
        })
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The client behind a live session (not revoked, not idle too long, not past its lifetime).
pub fn authenticate(
    conn: &mut DbConnection,
    token: &str,
    now: NaiveDateTime,
) -> Result<Client, DomainError> {
    let ended =
        || DomainError::Unauthenticated("Your session has ended; please sign in again.".into());
    if !ids::is_secret_shaped(token) {
        return Err(ended());
    }
    let hash = ids::secret_hash(token);
    let row: Option<(String, NaiveDateTime, NaiveDateTime, Option<NaiveDateTime>)> =
        client_sessions::table
            .find(&hash)
            .select((
                client_sessions::client_id,
                client_sessions::last_seen_at,
                client_sessions::expires_at,
                client_sessions::revoked_at,
            ))
            .first(conn)
            .optional()?;
    let Some((client_id, last_seen, expires_at, revoked)) = row else {
        return Err(ended());
    };
    if revoked.is_some()
        || expires_at <= now
        || last_seen + Duration::hours(SESSION_IDLE_HOURS) <= now
    {
        return Err(ended());
    }
    if now - last_seen >= Duration::minutes(TOUCH_EVERY_MINUTES) {
        diesel::update(client_sessions::table.find(&hash))
            .set(client_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    load(conn, &client_id)
}

/// Ends this session, or every session of its client.
pub fn sign_out(
    conn: &mut DbConnection,
    token: &str,
    everywhere: bool,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    if !ids::is_secret_shaped(token) {
        return Ok(());
    }
    let hash = ids::secret_hash(token);
    if everywhere {
        let client_id: Option<String> = client_sessions::table
            .find(&hash)
            .select(client_sessions::client_id)
            .first(conn)
            .optional()?;
        if let Some(id) = client_id {
            diesel::update(
                client_sessions::table
                    .filter(client_sessions::client_id.eq(id))
                    .filter(client_sessions::revoked_at.is_null()),
            )
            .set(client_sessions::revoked_at.eq(now))
            .execute(conn)?;
        }
    } else {
        diesel::update(client_sessions::table.find(&hash))
            .set(client_sessions::revoked_at.eq(now))
            .execute(conn)?;
    }
    Ok(())
}

pub fn load(conn: &mut DbConnection, id: &str) -> Result<Client, DomainError> {
    clients::table
        .find(id)
        .select(CLIENT_COLUMNS)
        .first::<ClientRow>(conn)
        .optional()?
        .map(client_from_row)
        .ok_or_else(|| DomainError::not_found("no such client"))
}

pub struct ProfileInput {
    pub name: String,
    pub phone: String,
    pub contact_preference: ContactPreference,
    pub email_consent: bool,
    pub sms_consent: bool,
}

impl ProfileInput {
    /// Trims and checks every field; the phone comes back in E.164.
    pub fn validated(self) -> Result<Self, DomainError> {
        let phone = normalize_phone(&self.phone)?;
        if (self.sms_consent || self.contact_preference == ContactPreference::Sms)
            && phone.is_empty()
        {
            return Err(DomainError::invalid(
                "Add a mobile number to get texts from the shop.",
            ));
        }
        Ok(Self {
            name: text("name", &self.name, 100, false)?,
            phone,
            ..self
        })
    }
}

/// Saves the profile. Turning SMS consent on clears an earlier STOP.
pub fn update_profile(
    conn: &mut DbConnection,
    id: &str,
    p: ProfileInput,
    now: NaiveDateTime,
) -> Result<Client, DomainError> {
    let p = p.validated()?;
    write_transaction(conn, |conn| {
        let opted_out_at: Option<NaiveDateTime> = if p.sms_consent {
            None
        } else {
            clients::table
                .find(id)
                .select(clients::sms_opted_out_at)
                .first(conn)
                .optional()?
                .flatten()
        };
        let n = diesel::update(clients::table.find(id))
            .set((
                clients::name.eq(&p.name),
                clients::phone.eq(&p.phone),
                clients::contact_preference.eq(p.contact_preference.as_str()),
                clients::email_consent.eq(p.email_consent),
                clients::sms_consent.eq(p.sms_consent),
                clients::sms_opted_out_at.eq(opted_out_at),
                clients::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(DomainError::not_found("no such client"));
        }
        load(conn, id)
    })
}

/// STOP from `phone`: SMS consent off for every client with that number, remembered.
pub fn record_sms_opt_out(
    conn: &mut DbConnection,
    phone: &str,
    now: NaiveDateTime,
) -> Result<usize, DomainError> {
    let phone = normalize_phone(phone)?;
    if phone.is_empty() {
        return Err(DomainError::invalid("phone is required"));
    }
    Ok(
        diesel::update(clients::table.filter(clients::phone.eq(&phone)))
            .set((
                clients::sms_consent.eq(false),
                clients::sms_opted_out_at.eq(now),
                clients::updated_at.eq(now),
            ))
            .execute(conn)?,
    )
}

/// The clients whose phone is `phone` (normalized first), by id.
pub fn find_by_phone(conn: &mut DbConnection, phone: &str) -> Result<Vec<Client>, DomainError> {
    let phone = normalize_phone(phone)?;
    if phone.is_empty() {
        return Err(DomainError::invalid("phone is required"));
    }
    Ok(clients::table
        .filter(clients::phone.eq(&phone))
        .order(clients::id)
        .limit(50)
        .select(CLIENT_COLUMNS)
        .load::<ClientRow>(conn)?
        .into_iter()
        .map(client_from_row)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_or_refused() {
        assert_eq!(
            normalize_email("  Rider@Example.COM ").unwrap(),
            "rider@example.com"
        );
        for bad in [
            "",
            "rider",
            "rider@",
            "@example.com",
            "rider@example",
            "a b@example.com",
            "rider@exa mple.com",
            "rider@@example.com",
            "rider@.example.com",
            "rider@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(normalize_phone("(410) 555-0123").unwrap(), "+14105550123");
        assert_eq!(normalize_phone("1-410-555-0123").unwrap(), "+14105550123");
        assert_eq!(
            normalize_phone("+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(normalize_phone("").unwrap(), "");
        for bad in [
            "555-0123",
            "call me",
            "+1 (110) 555-0123",
            "12345678901234567",
            "+0123456789",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }
}
