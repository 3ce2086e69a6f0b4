//! The services the shop offers (diagnostics, battery, …): domain type and query.

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError};

use crate::schema::service_offerings;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ServiceOffering {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_price_cents: i64,
    pub currency: String,
    pub sort_order: i32,
}

/// Active offerings in the shop's order.
pub fn list_active(conn: &mut DbConnection) -> Result<Vec<ServiceOffering>, DbError> {
    Ok(service_offerings::table
        .filter(service_offerings::active.eq(true))
        .order_by((service_offerings::sort_order, service_offerings::code))
        .select((
            service_offerings::code,
            service_offerings::name,
            service_offerings::description,
            service_offerings::starting_price_cents,
            service_offerings::currency,
            service_offerings::sort_order,
        ))
        .load(conn)?)
}
