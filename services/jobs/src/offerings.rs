//! The services the shop offers (diagnostics, battery, …): domain type, the owner's rules for
//! changing them, and queries. Prices here are starting prices; the estimate sets the real one.

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, write_transaction};
use omneuro_platform::error::DomainError;

use crate::schema::service_offerings;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ServiceOffering {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_price_cents: i64,
    pub currency: String,
    pub sort_order: i32,
    pub active: bool,
}

pub const MAX_NAME_CHARS: usize = 80;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_PRICE_CENTS: i64 = 10_000_000;
pub const MAX_SORT_ORDER: i32 = 1000;

/// What the owner typed for a service, checked: [`OfferingInput::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferingInput {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_price_cents: i64,
    pub sort_order: i32,
    pub active: bool,
}

impl OfferingInput {
    /// Checks every field; the first problem is the error, in words for the owner.
    pub fn parse(
        code: &str,
        name: &str,
        description: &str,
        starting_price_cents: i64,
        currency: &str,
        sort_order: i64,
        active: bool,
    ) -> Result<Self, DomainError> {
        let code = code.trim();
        let code_ok = (1..=40).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !code_ok {
            return Err(DomainError::invalid(format!(
                "The service code `{code}` must be 1 to 40 lower-case letters, digits or `_` (e.g. `brake_service`)."
            )));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(DomainError::invalid(format!(
                "Give the service a name of 1 to {MAX_NAME_CHARS} characters."
            )));
        }
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(DomainError::invalid(format!(
                "The description can be at most {MAX_DESCRIPTION_CHARS} characters."
            )));
        }
        if name
            .chars()
            .chain(description.chars())
            .any(|c| c.is_control() && c != '\n')
        {
            return Err(DomainError::invalid(
                "The name and description can't hold control characters.",
            ));
        }
        let currency = currency.trim();
        if !(currency.is_empty() || currency.eq_ignore_ascii_case("USD")) {
            return Err(DomainError::invalid("Prices are in US dollars (USD)."));
        }
        if !(0..=MAX_PRICE_CENTS).contains(&starting_price_cents) {
            return Err(DomainError::invalid(
                "The starting price must be between $0 and $100,000.",
            ));
        }
        let sort_order = i32::try_from(sort_order)
            .ok()
            .filter(|s| (0..=MAX_SORT_ORDER).contains(s))
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "The order must be a whole number from 0 to {MAX_SORT_ORDER}."
                ))
            })?;
        Ok(Self {
            code: code.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            starting_price_cents,
            sort_order,
            active,
        })
    }
}

fn columns() -> (
    service_offerings::code,
    service_offerings::name,
    service_offerings::description,
    service_offerings::starting_price_cents,
    service_offerings::currency,
    service_offerings::sort_order,
    service_offerings::active,
) {
    (
        service_offerings::code,
        service_offerings::name,
        service_offerings::description,
        service_offerings::starting_price_cents,
        service_offerings::currency,
        service_offerings::sort_order,
        service_offerings::active,
    )
}

/// Active offerings in the shop's order.
pub fn list_active(conn: &mut DbConnection) -> Result<Vec<ServiceOffering>, DbError> {
    list(conn, false)
}

/// Offerings in the shop's order; with `include_inactive`, the ones switched off too.
pub fn list(
    conn: &mut DbConnection,
    include_inactive: bool,
) -> Result<Vec<ServiceOffering>, DbError> {
    let mut q = service_offerings::table
        .order_by((service_offerings::sort_order, service_offerings::code))
        .select(columns())
        .into_boxed();
    if !include_inactive {
        q = q.filter(service_offerings::active.eq(true));
    }
    Ok(q.load(conn)?)
}

/// Adds the service, or changes the one with its code. The last offered service stays on.
pub fn save(conn: &mut DbConnection, o: &OfferingInput) -> Result<ServiceOffering, DomainError> {
    write_transaction(conn, |c| {
        let others_active: i64 = service_offerings::table
            .filter(service_offerings::active.eq(true))
            .filter(service_offerings::code.ne(&o.code))
            .count()
            .get_result(c)?;
        if !o.active && others_active == 0 {
            return Err(DomainError::conflict(
                "This is the only service still offered; clients need at least one to book. Add or switch on another first.",
            ));
        }
        let changed = diesel::update(service_offerings::table.find(&o.code))
            .set((
                service_offerings::name.eq(&o.name),
                service_offerings::description.eq(&o.description),
                service_offerings::starting_price_cents.eq(o.starting_price_cents),
                service_offerings::sort_order.eq(o.sort_order),
                service_offerings::active.eq(o.active),
            ))
            .execute(c)?;
        if changed == 0 {
            diesel::insert_into(service_offerings::table)
                .values((
                    service_offerings::code.eq(&o.code),
                    service_offerings::name.eq(&o.name),
                    service_offerings::description.eq(&o.description),
                    service_offerings::starting_price_cents.eq(o.starting_price_cents),
                    service_offerings::currency.eq("USD"),
                    service_offerings::sort_order.eq(o.sort_order),
                    service_offerings::active.eq(o.active),
                ))
                .execute(c)?;
        }
        Ok(service_offerings::table
            .find(&o.code)
            .select(columns())
            .first(c)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(code: &str, name: &str, cents: i64, sort: i64) -> Result<OfferingInput, DomainError> {
        OfferingInput::parse(code, name, "", cents, "", sort, true)
    }

    #[test]
    fn the_owners_input_is_checked() {
        assert!(parse("brake_service", " Brakes ", 4900, 3).is_ok_and(|o| o.name == "Brakes"));
        for (code, name, cents, sort, why) in [
            ("Brake Service", "Brakes", 0, 0, "service code"),
            ("", "Brakes", 0, 0, "service code"),
            ("brakes", "", 0, 0, "name"),
            ("brakes", "Brakes", -1, 0, "starting price"),
            ("brakes", "Brakes", MAX_PRICE_CENTS + 1, 0, "starting price"),
            ("brakes", "Brakes", 0, 1001, "order"),
            ("brakes", "Brakes", 0, -1, "order"),
        ] {
            let e = parse(code, name, cents, sort).unwrap_err();
            assert!(e.to_string().contains(why), "{code}/{name}: {e}");
        }
        assert!(OfferingInput::parse("x", "X", "", 0, "EUR", 0, true).is_err());
        assert!(OfferingInput::parse("x", "X", &"d".repeat(501), 0, "", 0, true).is_err());
    }
}
