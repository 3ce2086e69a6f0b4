//! Sales-tax rates by jurisdiction.

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError};

use crate::schema::tax_rates;

/// A jurisdiction code such as `US-MD`: two upper-case letters, `-`, one to three upper-case letters/digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jurisdiction(String);

impl Jurisdiction {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_uppercase();
        let ok = matches!(s.split_once('-'), Some((c, r))
            if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=3).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()));
        if ok {
            Ok(Self(s))
        } else {
            Err(format!("`{s}` is not a jurisdiction code like US-MD"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRate {
    pub jurisdiction: String,
    pub rate_bps: u32,
}

pub fn get(conn: &mut DbConnection, j: &Jurisdiction) -> Result<Option<TaxRate>, DbError> {
    let row: Option<(String, i32)> = tax_rates::table
        .filter(tax_rates::jurisdiction.eq(j.as_str()))
        .select((tax_rates::jurisdiction, tax_rates::rate_bps))
        .first(conn)
        .optional()?;
    Ok(row.map(|(jurisdiction, bps)| TaxRate {
        jurisdiction,
        rate_bps: u32::try_from(bps).unwrap_or(0),
    }))
}

/// The highest rate staff may set (20 %): anything above is a typo, not a tax.
pub const MAX_RATE_BPS: u32 = 2000;

/// A rate staff typed, in basis points: 0 to [`MAX_RATE_BPS`].
pub fn rate_bps(bps: u32) -> Result<u32, String> {
    if bps > MAX_RATE_BPS {
        return Err(format!(
            "A sales-tax rate must be between 0 % and {} % ({bps} basis points is more).",
            MAX_RATE_BPS / 100
        ));
    }
    Ok(bps)
}

/// Sets the rate for a jurisdiction (new or existing); invoices made later use it.
pub fn set(conn: &mut DbConnection, j: &Jurisdiction, bps: u32) -> Result<TaxRate, DbError> {
    let bps_i = i32::try_from(bps).unwrap_or(i32::MAX);
    let updated = diesel::update(tax_rates::table.filter(tax_rates::jurisdiction.eq(j.as_str())))
        .set(tax_rates::rate_bps.eq(bps_i))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(tax_rates::table)
            .values((
                tax_rates::jurisdiction.eq(j.as_str()),
                tax_rates::rate_bps.eq(bps_i),
            ))
            .execute(conn)?;
    }
    Ok(TaxRate {
        jurisdiction: j.as_str().to_owned(),
        rate_bps: bps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jurisdiction_codes_are_checked() {
        assert_eq!(Jurisdiction::parse("us-md").unwrap().as_str(), "US-MD");
        assert!(Jurisdiction::parse("Maryland").is_err());
        assert!(Jurisdiction::parse("").is_err());
        assert!(Jurisdiction::parse("US-'; DROP").is_err());
    }

    #[test]
    fn rates_are_checked() {
        assert_eq!(rate_bps(600), Ok(600));
        assert_eq!(rate_bps(0), Ok(0));
        assert!(rate_bps(2001).unwrap_err().contains("between 0 % and 20 %"));
    }
}
