//! The PEV make/model catalog: domain types and the queries that read them.

use std::collections::BTreeMap;

use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError};

use crate::schema::{vehicle_makes, vehicle_models};

/// Kinds of personal electric vehicle. Stored as snake_case text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleCategory {
    ElectricUnicycle,
    EBike,
    EScooter,
    ESkateboard,
    Other,
}

impl VehicleCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ElectricUnicycle => "electric_unicycle",
            Self::EBike => "e_bike",
            Self::EScooter => "e_scooter",
            Self::ESkateboard => "e_skateboard",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "electric_unicycle" => Self::ElectricUnicycle,
            "e_bike" => Self::EBike,
            "e_scooter" => Self::EScooter,
            "e_skateboard" => Self::ESkateboard,
            "other" => Self::Other,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleModel {
    pub id: String,
    pub name: String,
    pub category: VehicleCategory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleMake {
    pub id: String,
    pub name: String,
    pub models: Vec<VehicleModel>,
}

#[derive(Queryable)]
struct Row {
    make_id: String,
    make_name: String,
    model_id: String,
    model_name: String,
    category: String,
}

/// Every make with its models in the shop's order; only makes with a model in `category` when given.
pub fn list_makes(
    conn: &mut DbConnection,
    category: Option<VehicleCategory>,
) -> Result<Vec<VehicleMake>, DbError> {
    let mut query = vehicle_models::table
        .inner_join(vehicle_makes::table)
        .select((
            vehicle_makes::id,
            vehicle_makes::name,
            vehicle_models::id,
            vehicle_models::name,
            vehicle_models::category,
        ))
        .order_by((
            vehicle_makes::sort_order,
            vehicle_makes::name,
            vehicle_models::sort_order,
            vehicle_models::name,
        ))
        .into_boxed();
    if let Some(c) = category {
        query = query.filter(vehicle_models::category.eq(c.as_str()));
    }
    let rows: Vec<Row> = query.load(conn)?;
    let mut order: Vec<String> = Vec::new();
    let mut makes: BTreeMap<String, VehicleMake> = BTreeMap::new();
    for r in rows {
        let make = makes.entry(r.make_id.clone()).or_insert_with(|| {
            order.push(r.make_id.clone());
            VehicleMake {
                id: r.make_id.clone(),
                name: r.make_name.clone(),
                models: Vec::new(),
            }
        });
        make.models.push(VehicleModel {
            id: r.model_id,
            name: r.model_name,
            category: VehicleCategory::parse(&r.category).unwrap_or(VehicleCategory::Other),
        });
    }
    Ok(order
        .into_iter()
        .filter_map(|id| makes.remove(&id))
        .collect())
}
