//! A client's vehicles: make/model from the catalog or typed in, battery and serials, notes.
//! Every read and write takes the owner's id when the caller is a client, so one client can never
//! reach another's vehicle (it simply is "not found").

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::DbConnection;
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;

use crate::catalog::VehicleCategory;
use crate::schema::{vehicle_makes, vehicle_models, vehicles};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatteryFormat {
    Cells18650,
    Cells21700,
    Lfp,
    Other,
    Unknown,
}

impl BatteryFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cells18650 => "18650",
            Self::Cells21700 => "21700",
            Self::Lfp => "lfp",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "18650" => Self::Cells18650,
            "21700" => Self::Cells21700,
            "lfp" => Self::Lfp,
            "other" => Self::Other,
            _ => Self::Unknown,
        }
    }
}

/// Voltage classes offered in the form; any whole number in 12..=200 V is accepted.
pub const COMMON_VOLTAGES: &[u32] = &[36, 48, 52, 60, 67, 72, 84, 100, 126, 134, 151, 168];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleInput {
    pub category: VehicleCategory,
    pub make_id: String,
    pub model_id: String,
    pub other_make: String,
    pub other_model: String,
    pub nickname: String,
    pub battery_format: BatteryFormat,
    pub voltage_class: u32,
    pub battery_serial: String,
    pub motor_serial: String,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub id: String,
    pub client_id: String,
    pub input: VehicleInput,
    pub make_name: String,
    pub model_name: String,
    pub archived: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Vehicle {
    /// "Nickname (Begode Master)" or "Begode Master".
    pub fn label(&self) -> String {
        let what = format!("{} {}", self.make_name, self.model_name)
            .trim()
            .to_owned();
        if self.input.nickname.is_empty() {
            what
        } else {
            format!("{} ({what})", self.input.nickname)
        }
    }
}

fn serial(field: &str, v: &str) -> Result<String, DomainError> {
    let v = text(field, v, 64, false)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " -_/.#".contains(c))
    {
        return Err(DomainError::invalid(format!(
            "{field} may only contain letters, digits, spaces and - _ / . #"
        )));
    }
    Ok(v)
}

/// Checks the input against the catalog: a catalog model (its make and category win), a catalog
/// make with a typed model, or both typed. Returns the cleaned input.
fn validated(conn: &mut DbConnection, i: VehicleInput) -> Result<VehicleInput, DomainError> {
    let mut out = VehicleInput {
        other_make: text("make", &i.other_make, 80, false)?,
        other_model: text("model", &i.other_model, 80, false)?,
        nickname: text("nickname", &i.nickname, 60, false)?,
        battery_serial: serial("battery serial number", &i.battery_serial)?,
        motor_serial: serial("motor serial number", &i.motor_serial)?,
        notes: text("notes", &i.notes, 2000, true)?,
        ..i
    };
    if out.voltage_class != 0 && !(12..=200).contains(&out.voltage_class) {
        return Err(DomainError::invalid(
            "voltage class should be the pack's nominal volts, between 12 and 200 (e.g. 84, 100, 126, 134)",
        ));
    }
    let make_id = out.make_id.trim().to_owned();
    let model_id = out.model_id.trim().to_owned();
    if !model_id.is_empty() {
        let model: Option<(String, String)> = vehicle_models::table
            .find(&model_id)
            .select((vehicle_models::make_id, vehicle_models::category))
            .first(conn)
            .optional()?;
        let (model_make, category) = model.ok_or_else(|| {
            DomainError::invalid("Pick a model from the list, or choose \"other\" and type it.")
        })?;
        if !make_id.is_empty() && make_id != model_make {
            return Err(DomainError::invalid(
                "That model is not made by the chosen make.",
            ));
        }
        out.make_id = model_make;
        out.model_id = model_id;
        out.category = VehicleCategory::parse(&category).unwrap_or(out.category);
        out.other_make.clear();
        out.other_model.clear();
    } else if !make_id.is_empty() {
        let known: i64 = vehicle_makes::table
            .filter(vehicle_makes::id.eq(&make_id))
            .count()
            .get_result(conn)?;
        if known == 0 {
            return Err(DomainError::invalid(
                "Pick a make from the list, or choose \"other\" and type it.",
            ));
        }
        if out.other_model.is_empty() {
            return Err(DomainError::invalid(
                "Pick a model, or type it under \"other model\".",
            ));
        }
        out.make_id = make_id;
        out.other_make.clear();
    } else if out.other_make.is_empty() || out.other_model.is_empty() {
        return Err(DomainError::invalid(
            "Tell us the make and model: pick them from the lists or type them under \"other\".",
        ));
    }
    Ok(out)
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    i32,
    String,
    String,
    String,
    Option<NaiveDateTime>,
    NaiveDateTime,
    NaiveDateTime,
);

macro_rules! vehicle_columns {
    () => {
        (
            vehicles::id,
            vehicles::client_id,
            vehicles::category,
            vehicles::make_id,
            vehicles::model_id,
            vehicles::other_make,
            vehicles::other_model,
            vehicles::nickname,
            vehicles::battery_format,
            vehicles::voltage_class,
            vehicles::battery_serial,
            vehicles::motor_serial,
            vehicles::notes,
            vehicles::archived_at,
            vehicles::created_at,
            vehicles::updated_at,
        )
    };
}

/// Display names of the catalog, to resolve ids without a join per row.
struct Names {
    makes: HashMap<String, String>,
    models: HashMap<String, String>,
}

impl Names {
    fn load(conn: &mut DbConnection) -> Result<Self, DomainError> {
        let makes = vehicle_makes::table
            .select((vehicle_makes::id, vehicle_makes::name))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let models = vehicle_models::table
            .select((vehicle_models::id, vehicle_models::name))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        Ok(Self { makes, models })
    }

    fn vehicle(&self, r: Row) -> Vehicle {
        let make_id = r.3.unwrap_or_default();
        let model_id = r.4.unwrap_or_default();
        let make_name = self
            .makes
            .get(&make_id)
            .cloned()
            .unwrap_or_else(|| r.5.clone());
        let model_name = self
            .models
            .get(&model_id)
            .cloned()
            .unwrap_or_else(|| r.6.clone());
        Vehicle {
            id: r.0,
            client_id: r.1,
            input: VehicleInput {
                category: VehicleCategory::parse(&r.2).unwrap_or(VehicleCategory::Other),
                make_id,
                model_id,
                other_make: r.5,
                other_model: r.6,
                nickname: r.7,
                battery_format: BatteryFormat::parse(&r.8),
                voltage_class: u32::try_from(r.9).unwrap_or(0),
                battery_serial: r.10,
                motor_serial: r.11,
                notes: r.12,
            },
            make_name,
            model_name,
            archived: r.13.is_some(),
            created_at: r.14,
            updated_at: r.15,
        }
    }
}

/// A client's vehicles, newest first; archived ones only when asked.
pub fn list(
    conn: &mut DbConnection,
    client_id: &str,
    include_archived: bool,
) -> Result<Vec<Vehicle>, DomainError> {
    let names = Names::load(conn)?;
    let mut q = vehicles::table
        .filter(vehicles::client_id.eq(client_id))
        .select(vehicle_columns!())
        .order_by((vehicles::created_at.desc(), vehicles::id))
        .into_boxed();
    if !include_archived {
        q = q.filter(vehicles::archived_at.is_null());
    }
    Ok(q.load::<Row>(conn)?
        .into_iter()
        .map(|r| names.vehicle(r))
        .collect())
}

/// The vehicles that are not archived of several clients at once (for staff lists), newest first,
/// by client id. Three queries however many clients there are.
pub fn list_for_clients(
    conn: &mut DbConnection,
    client_ids: &[String],
) -> Result<HashMap<String, Vec<Vehicle>>, DomainError> {
    let mut by_client: HashMap<String, Vec<Vehicle>> = HashMap::new();
    if client_ids.is_empty() {
        return Ok(by_client);
    }
    let names = Names::load(conn)?;
    let rows = vehicles::table
        .filter(vehicles::client_id.eq_any(client_ids))
        .filter(vehicles::archived_at.is_null())
        .select(vehicle_columns!())
        .order_by((vehicles::created_at.desc(), vehicles::id))
        .load::<Row>(conn)?;
    for r in rows {
        let v = names.vehicle(r);
        by_client.entry(v.client_id.clone()).or_default().push(v);
    }
    Ok(by_client)
}

/// One vehicle; `owner` (when the caller is a client) must match, else it is "not found".
pub fn get(conn: &mut DbConnection, id: &str, owner: Option<&str>) -> Result<Vehicle, DomainError> {
    let not_found = || DomainError::not_found("That vehicle isn't in your garage.");
    if !ids::is_valid("veh", id) {
        return Err(not_found());
    }
    let mut q = vehicles::table
        .filter(vehicles::id.eq(id))
        .select(vehicle_columns!())
        .into_boxed();
    if let Some(o) = owner {
        q = q.filter(vehicles::client_id.eq(o.to_owned()));
    }
    let row = q.first::<Row>(conn).optional()?.ok_or_else(not_found)?;
    Ok(Names::load(conn)?.vehicle(row))
}

fn nullable(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

pub fn create(
    conn: &mut DbConnection,
    client_id: &str,
    input: VehicleInput,
    now: NaiveDateTime,
) -> Result<Vehicle, DomainError> {
    let i = validated(conn, input)?;
    let id = ids::new_id("veh");
    diesel::insert_into(vehicles::table)
        .values((
            vehicles::id.eq(&id),
            vehicles::client_id.eq(client_id),
            vehicles::category.eq(i.category.as_str()),
            vehicles::make_id.eq(nullable(&i.make_id)),
            vehicles::model_id.eq(nullable(&i.model_id)),
            vehicles::other_make.eq(&i.other_make),
            vehicles::other_model.eq(&i.other_model),
            vehicles::nickname.eq(&i.nickname),
            vehicles::battery_format.eq(i.battery_format.as_str()),
            vehicles::voltage_class.eq(i32::try_from(i.voltage_class).unwrap_or(0)),
            vehicles::battery_serial.eq(&i.battery_serial),
            vehicles::motor_serial.eq(&i.motor_serial),
            vehicles::notes.eq(&i.notes),
            vehicles::created_at.eq(now),
            vehicles::updated_at.eq(now),
        ))
        .execute(conn)?;
    get(conn, &id, Some(client_id))
}

pub fn update(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
    input: VehicleInput,
    now: NaiveDateTime,
) -> Result<Vehicle, DomainError> {
    let current = get(conn, id, owner)?;
    let i = validated(conn, input)?;
    diesel::update(vehicles::table.find(&current.id))
        .set((
            vehicles::category.eq(i.category.as_str()),
            vehicles::make_id.eq(nullable(&i.make_id)),
            vehicles::model_id.eq(nullable(&i.model_id)),
            vehicles::other_make.eq(&i.other_make),
            vehicles::other_model.eq(&i.other_model),
            vehicles::nickname.eq(&i.nickname),
            vehicles::battery_format.eq(i.battery_format.as_str()),
            vehicles::voltage_class.eq(i32::try_from(i.voltage_class).unwrap_or(0)),
            vehicles::battery_serial.eq(&i.battery_serial),
            vehicles::motor_serial.eq(&i.motor_serial),
            vehicles::notes.eq(&i.notes),
            vehicles::updated_at.eq(now),
        ))
        .execute(conn)?;
    get(conn, id, owner)
}

/// Archives (hides) a vehicle; its history stays.
pub fn archive(
    conn: &mut DbConnection,
    id: &str,
    owner: Option<&str>,
    now: NaiveDateTime,
) -> Result<Vehicle, DomainError> {
    let current = get(conn, id, owner)?;
    if !current.archived {
        diesel::update(vehicles::table.find(&current.id))
            .set((
                vehicles::archived_at.eq(Some(now)),
                vehicles::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    get(conn, id, owner)
}
