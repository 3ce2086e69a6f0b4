//! Staff search for clients: by name, email or phone, or by a vehicle they have (catalog make and
//! model, typed make and model, nickname, battery and motor serial numbers). Archived vehicles
//! neither match nor show.
//!
//! Matching is a case-insensitive substring match written once for both databases:
//! `LOWER(column) LIKE LOWER(pattern) ESCAPE '\'`, with `%`, `_` and `\` in the person's text
//! escaped so they mean themselves. A query with a few digits also finds the phone number however
//! it was typed. One query finds the clients (vehicles and catalog names as subqueries), then the
//! vehicles of all of them are read at once: the number of queries does not grow with the matches.

use diesel::prelude::*;
use diesel::sql_types::Text;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::DomainError;

use crate::clients::{CLIENT_COLUMNS, Client, ClientRow, client_from_row};
use crate::schema::{clients, vehicle_makes, vehicle_models, vehicles};
use crate::vehicles::{self as vehicle_store, Vehicle};

pub const MIN_QUERY_CHARS: usize = 2;
pub const MAX_QUERY_CHARS: usize = 100;
/// Clients returned when the caller does not say (limit 0).
pub const DEFAULT_LIMIT: u32 = 20;
/// Clients returned at most, whatever the caller asks for.
pub const MAX_LIMIT: u32 = 50;
/// A query with at least this many digits is also matched against the phone number's digits.
const PHONE_DIGITS_MIN: usize = 3;
/// The `LIKE … ESCAPE` character.
const ESCAPE: char = '\\';

diesel::define_sql_function!(fn lower(x: Text) -> Text);

/// A checked search: the trimmed text and how many clients to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSearch {
    text: String,
    limit: u32,
}

impl ClientSearch {
    /// Trims the query and checks it (2 to 100 characters, no control characters); a limit of 0
    /// means [`DEFAULT_LIMIT`], above [`MAX_LIMIT`] means [`MAX_LIMIT`], below 0 is refused.
    pub fn parse(query: &str, limit: i32) -> Result<Self, DomainError> {
        let text = query.trim();
        let chars = text.chars().count();
        if chars < MIN_QUERY_CHARS {
            return Err(DomainError::invalid(format!(
                "Type at least {MIN_QUERY_CHARS} characters to search for a client."
            )));
        }
        if chars > MAX_QUERY_CHARS {
            return Err(DomainError::invalid(format!(
                "A client search can be at most {MAX_QUERY_CHARS} characters long."
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "The search contains characters that are not allowed.",
            ));
        }
        let limit = match u32::try_from(limit) {
            Ok(0) => DEFAULT_LIMIT,
            Ok(n) => n.min(MAX_LIMIT),
            Err(_) => {
                return Err(DomainError::invalid(
                    "The number of clients to return cannot be negative.",
                ));
            }
        };
        Ok(Self {
            text: text.to_owned(),
            limit,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// `%text%`, with LIKE's wildcards and the escape character made literal.
    fn pattern(&self) -> String {
        let mut p = String::with_capacity(self.text.len() + 2);
        p.push('%');
        for c in self.text.chars() {
            if matches!(c, '%' | '_' | ESCAPE) {
                p.push(ESCAPE);
            }
            p.push(c);
        }
        p.push('%');
        p
    }

    /// `%digits%` when the query has enough digits to look for a phone number: phones are stored
    /// in E.164 (`+` and digits), so "(410) 555-01" finds +14105550101.
    fn phone_digits(&self) -> Option<String> {
        let digits: String = self.text.chars().filter(char::is_ascii_digit).collect();
        (digits.len() >= PHONE_DIGITS_MIN).then(|| format!("%{digits}%"))
    }
}

/// A client found by a search, with all of their vehicles that are not archived (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMatch {
    pub client: Client,
    pub vehicles: Vec<Vehicle>,
}

/// The clients matching `search`, each once, by name then id.
pub fn clients(
    conn: &mut DbConnection,
    search: &ClientSearch,
) -> Result<Vec<ClientMatch>, DomainError> {
    let p = search.pattern();
    let makes = vehicle_makes::table
        .filter(
            lower(vehicle_makes::name)
                .like(lower(p.clone()))
                .escape(ESCAPE),
        )
        .select(vehicle_makes::id.nullable());
    let models = vehicle_models::table
        .filter(
            lower(vehicle_models::name)
                .like(lower(p.clone()))
                .escape(ESCAPE),
        )
        .select(vehicle_models::id.nullable());
    let by_vehicle = vehicles::table
        .filter(vehicles::archived_at.is_null())
        .filter(
            vehicles::make_id
                .eq_any(makes)
                .or(vehicles::model_id.eq_any(models))
                .or(lower(vehicles::other_make)
                    .like(lower(p.clone()))
                    .escape(ESCAPE))
                .or(lower(vehicles::other_model)
                    .like(lower(p.clone()))
                    .escape(ESCAPE))
                .or(lower(vehicles::nickname)
                    .like(lower(p.clone()))
                    .escape(ESCAPE))
                .or(lower(vehicles::battery_serial)
                    .like(lower(p.clone()))
                    .escape(ESCAPE))
                .or(lower(vehicles::motor_serial)
                    .like(lower(p.clone()))
                    .escape(ESCAPE)),
        )
        .select(vehicles::client_id);
    let mut query = clients::table
        .filter(
            lower(clients::name)
                .like(lower(p.clone()))
                .escape(ESCAPE)
                .or(lower(clients::email).like(lower(p.clone())).escape(ESCAPE))
                .or(lower(clients::phone).like(lower(p)).escape(ESCAPE))
                .or(clients::id.eq_any(by_vehicle)),
        )
        .select(CLIENT_COLUMNS)
        .order_by((clients::name, clients::id))
        .limit(i64::from(search.limit()))
        .into_boxed();
    if let Some(digits) = search.phone_digits() {
        query = query.or_filter(clients::phone.like(digits));
    }
    let found: Vec<Client> = query
        .load::<ClientRow>(conn)?
        .into_iter()
        .map(client_from_row)
        .collect();
    let ids: Vec<String> = found.iter().map(|c| c.id.clone()).collect();
    let mut vehicles = vehicle_store::list_for_clients(conn, &ids)?;
    Ok(found
        .into_iter()
        .map(|client| ClientMatch {
            vehicles: vehicles.remove(&client.id).unwrap_or_default(),
            client,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_trimmed_and_checked_and_limits_have_defaults() {
        let s = ClientSearch::parse("  Ada ", 0).unwrap();
        assert_eq!((s.text(), s.limit()), ("Ada", DEFAULT_LIMIT));
        assert_eq!(ClientSearch::parse("ab", 7).unwrap().limit(), 7);
        assert_eq!(ClientSearch::parse("ab", 500).unwrap().limit(), MAX_LIMIT);
        assert!(ClientSearch::parse(&"é".repeat(100), 1).is_ok());
        for (q, limit) in [
            ("", 0),
            (" a ", 0),
            (&"x".repeat(101) as &str, 0),
            ("a\u{7}b", 0),
            ("ab", -1),
        ] {
            let e = ClientSearch::parse(q, limit).unwrap_err();
            assert!(matches!(e, DomainError::Invalid(_)), "{q:?} {limit}");
        }
    }

    #[test]
    fn wildcards_are_literal_and_digits_find_phones() {
        let s = ClientSearch::parse(r"50%_off\x", 0).unwrap();
        assert_eq!(s.pattern(), r"%50\%\_off\\x%");
        assert_eq!(s.phone_digits(), None, "two digits are not a phone number");
        let s = ClientSearch::parse("(410) 555-01", 0).unwrap();
        assert_eq!(s.phone_digits().as_deref(), Some("%41055501%"));
        assert_eq!(ClientSearch::parse("B12", 0).unwrap().phone_digits(), None);
    }
}
