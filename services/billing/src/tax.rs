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
}
