//! Products: domain type, listing with pagination, and the demo catalog.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc};

use crate::schema::{inventory_ledger, product_fitment, products};

/// A product as shoppers and staff see it. Stock is what can still be sold: on hand minus what
/// open checkouts have reserved (see [`crate::inventory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub featured: bool,
    pub active: bool,
    pub image_url: String,
    /// Fits every vehicle (chargers' connectors aside, tools, consumables).
    pub fits_all: bool,
    /// (make id, model id or "" for every model of the make)
    pub fitment: Vec<(String, String)>,
}

impl Product {
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved).max(0)
    }
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    bool,
    bool,
    String,
    bool,
);

macro_rules! product_columns {
    () => {
        (
            products::id,
            products::slug,
            products::name,
            products::description,
            products::category,
            products::price_cents,
            products::currency,
            products::on_hand,
            products::reserved,
            products::featured,
            products::active,
            products::image_url,
            products::fits_all,
        )
    };
}

fn from_row(r: Row) -> Product {
    Product {
        id: r.0,
        slug: r.1,
        name: r.2,
        description: r.3,
        category: r.4,
        price_cents: r.5,
        currency: r.6,
        on_hand: r.7,
        reserved: r.8,
        featured: r.9,
        active: r.10,
        image_url: r.11,
        fits_all: r.12,
        fitment: Vec::new(),
    }
}

fn with_fitment(conn: &mut DbConnection, mut list: Vec<Product>) -> Result<Vec<Product>, DbError> {
    if list.is_empty() {
        return Ok(list);
    }
    let ids: Vec<String> = list.iter().map(|p| p.id.clone()).collect();
    let rows: Vec<(String, String, String)> = product_fitment::table
        .filter(product_fitment::product_id.eq_any(&ids))
        .select((
            product_fitment::product_id,
            product_fitment::make_id,
            product_fitment::model_id,
        ))
        .load(conn)?;
    for p in &mut list {
        p.fitment = rows
            .iter()
            .filter(|(pid, _, _)| *pid == p.id)
            .map(|(_, make, model)| (make.clone(), model.clone()))
            .collect();
    }
    Ok(list)
}

/// Which products to list; built only through [`ProductQuery::new`], which checks its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    pub featured_only: bool,
    pub category: Option<String>,
    /// Only products that fit one of these (make id, model id) vehicles (or fit everything).
    pub fits: Vec<(String, String)>,
    pub limit: i64,
    pub offset: i64,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

impl ProductQuery {
    pub fn new(
        featured_only: bool,
        category: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<Self, String> {
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token
                .parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .ok_or_else(|| "page_token is not a token this server issued".to_owned())?
        };
        let category = category.trim();
        if category.len() > 64 {
            return Err("category is too long".into());
        }
        let limit = i64::from(if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size.min(MAX_PAGE)
        });
        Ok(Self {
            featured_only,
            fits: Vec::new(),
            category: (!category.is_empty()).then(|| category.to_owned()),
            limit,
            offset,
        })
    }
}

/// Active products in the shop's order, one page plus the next page's token (None on the last page).
pub fn list(
    conn: &mut DbConnection,
    q: &ProductQuery,
) -> Result<(Vec<Product>, Option<String>), DbError> {
    let mut query = products::table
        .filter(products::active.eq(true))
        .select(product_columns!())
        .into_boxed();
    if q.featured_only {
        query = query.filter(products::featured.eq(true));
    }
    if let Some(c) = &q.category {
        query = query.filter(products::category.eq(c.clone()));
    }
    if !q.fits.is_empty() {
        // Universal parts, or a fitment row for one of the vehicles' make (any model) or model.
        let mut fitting: Vec<String> = Vec::new();
        for (make, model) in &q.fits {
            let ids: Vec<String> = product_fitment::table
                .filter(product_fitment::make_id.eq(make))
                .filter(
                    product_fitment::model_id
                        .eq("")
                        .or(product_fitment::model_id.eq(model)),
                )
                .select(product_fitment::product_id)
                .load(conn)?;
            fitting.extend(ids);
        }
        query = query.filter(products::fits_all.eq(true).or(products::id.eq_any(fitting)));
    }
    let mut rows: Vec<Product> = query
        .order_by((products::sort_order, products::name))
        .limit(q.limit + 1)
        .offset(q.offset)
        .load::<Row>(conn)?
        .into_iter()
        .map(from_row)
        .collect();
    let next = (rows.len() as i64 > q.limit).then(|| (q.offset + q.limit).to_string());
    rows.truncate(usize::try_from(q.limit).unwrap_or(0));
    Ok((with_fitment(conn, rows)?, next))
}

/// Each product's current Stripe Price (id, amount in cents) where the catalog sync has made one.
pub fn stripe_prices(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (String, i64)>, DbError> {
    Ok(products::table
        .filter(products::id.eq_any(ids))
        .select((
            products::id,
            products::stripe_price_id,
            products::stripe_price_cents,
        ))
        .load::<(String, Option<String>, Option<i64>)>(conn)?
        .into_iter()
        .filter_map(|(id, price, cents)| Some((id, (price?, cents?))))
        .collect())
}

/// An active product.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Product>, DbError> {
    let row = products::table
        .filter(products::id.eq(id))
        .filter(products::active.eq(true))
        .select(product_columns!())
        .first::<Row>(conn)
        .optional()?;
    Ok(with_fitment(conn, row.into_iter().map(from_row).collect())?.pop())
}

#[derive(Insertable)]
#[diesel(table_name = products)]
struct NewProduct<'a> {
    id: &'a str,
    slug: &'a str,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    price_cents: i64,
    on_hand: i64,
    featured: bool,
    active: bool,
    fits_all: bool,
    sort_order: i32,
    created_at: NaiveDateTime,
}

/// (id, slug, name, category, price in cents, stock, featured, description)
type Demo = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
    bool,
    &'static str,
);

const DEMO: &[Demo] = &[
    (
        "prd_demo_phone_mount",
        "eu-phone-mount",
        "3D-printed EUC phone mount",
        "mounts",
        2499,
        25,
        true,
        "PETG phone mount that clamps to the handle or trolley of most electric unicycles. Printed in the shop.",
    ),
    (
        "prd_demo_battery_bracket",
        "ebike-battery-bracket",
        "E-bike battery bracket (Hailong)",
        "mounts",
        3499,
        12,
        true,
        "Reinforced 3D-printed down-tube bracket for Hailong-style packs; bolts to standard bottle bosses.",
    ),
    (
        "prd_demo_bms_20s",
        "bms-20s-60a",
        "Smart BMS 20S 60A",
        "bms",
        8999,
        6,
        true,
        "Bluetooth smart BMS for 72 V / 84 V packs: balancing, temperature cut-off, app monitoring.",
    ),
    (
        "prd_demo_bms_13s",
        "bms-13s-40a",
        "BMS 13S 40A",
        "bms",
        3999,
        10,
        false,
        "Common-port BMS for 36 V / 48 V e-bike packs.",
    ),
    (
        "prd_demo_tire_16x3",
        "tire-16x3-cst",
        "16 × 3.0 street tire",
        "tires",
        6499,
        8,
        true,
        "Street tire for 16-inch electric unicycles (King Song 16X, Inmotion V11 class).",
    ),
    (
        "prd_demo_tube_10",
        "tube-10x2-5",
        "10 × 2.5 inner tube, bent valve",
        "tires",
        1299,
        30,
        false,
        "Heavy-duty butyl tube for 10-inch scooters (Segway-Ninebot Max, Kaabo Mantis).",
    ),
    (
        "prd_demo_brake_pads",
        "brake-pads-sintered",
        "Sintered disc brake pads (pair)",
        "brakes",
        1999,
        40,
        false,
        "Sintered metal pads for Shimano and Tektro e-bike calipers; long life in wet weather.",
    ),
    (
        "prd_demo_charger_84v",
        "charger-84v-5a",
        "84 V 5 A fast charger",
        "chargers",
        12999,
        5,
        true,
        "GX16 fast charger for 20S wheels and scooters with adjustable cut-off.",
    ),
    (
        "prd_demo_xt90",
        "xt90-connector-pair",
        "XT90 anti-spark connector pair",
        "connectors",
        699,
        100,
        false,
        "Genuine XT90-S anti-spark pair for pack-to-controller leads.",
    ),
];

/// Which demo products fit which makes (garage's catalog ids; "" = every model of the make).
/// Products not listed here fit every vehicle.
const FITMENT: &[(&str, &str, &str)] = &[
    ("prd_demo_phone_mount", "mk_begode", ""),
    ("prd_demo_phone_mount", "mk_inmotion", ""),
    ("prd_demo_phone_mount", "mk_kingsong", ""),
    ("prd_demo_phone_mount", "mk_leaperkim", ""),
    ("prd_demo_battery_bracket", "mk_rad_power", ""),
    ("prd_demo_battery_bracket", "mk_trek", ""),
    ("prd_demo_battery_bracket", "mk_specialized", ""),
    ("prd_demo_tire_16x3", "mk_kingsong", ""),
    ("prd_demo_tire_16x3", "mk_inmotion", ""),
    ("prd_demo_tube_10", "mk_segway_ninebot", ""),
    ("prd_demo_tube_10", "mk_kaabo", ""),
    ("prd_demo_charger_84v", "mk_begode", ""),
    ("prd_demo_charger_84v", "mk_kingsong", ""),
    ("prd_demo_charger_84v", "mk_dualtron", ""),
];

/// Inserts the demo catalog into an empty shop; re-running inserts nothing twice.
pub fn seed_demo(conn: &mut DbConnection) -> Result<(), DbError> {
    let now = now_utc();
    let rows: Vec<NewProduct<'_>> = DEMO
        .iter()
        .enumerate()
        .map(
            |(i, &(id, slug, name, category, price_cents, stock, featured, description))| {
                NewProduct {
                    id,
                    slug,
                    name,
                    description,
                    category,
                    price_cents,
                    on_hand: stock,
                    featured,
                    active: true,
                    fits_all: !FITMENT.iter().any(|(p, _, _)| *p == id),
                    sort_order: i32::try_from(i).unwrap_or(0) + 1,
                    created_at: now,
                }
            },
        )
        .collect();
    let inserted = conn.transaction(|conn| {
        let mut n = 0;
        for row in &rows {
            let inserted = omneuro_platform::per_backend!(&mut *conn, |c| diesel::insert_into(
                products::table
            )
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
            if inserted == 1 {
                crate::kbsync::product_changed(conn, row.id, "seeded", now)?;
            }
            n += inserted;
            if row.on_hand != 0 {
                omneuro_platform::per_backend!(&mut *conn, |c| diesel::insert_into(
                    inventory_ledger::table
                )
                .values((
                    inventory_ledger::id.eq(format!("led_open_{}", row.id)),
                    inventory_ledger::product_id.eq(row.id),
                    inventory_ledger::on_hand_delta.eq(row.on_hand),
                    inventory_ledger::reserved_delta.eq(0i64),
                    inventory_ledger::reason.eq("opening"),
                    inventory_ledger::actor.eq("system:demo"),
                    inventory_ledger::created_at.eq(row.created_at),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
            }
        }
        for (product, make, model) in FITMENT {
            omneuro_platform::per_backend!(&mut *conn, |c| diesel::insert_into(
                product_fitment::table
            )
            .values((
                product_fitment::product_id.eq(*product),
                product_fitment::make_id.eq(*make),
                product_fitment::model_id.eq(*model),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        }
        Ok::<_, diesel::result::Error>(n)
    })?;
    tracing::info!(products_inserted = inserted, "demo catalog seeded");
    Ok(())
}
