//! Products: domain type, listing with pagination, and the demo catalog.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc};

use crate::schema::products;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct Product {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i64,
    pub featured: bool,
}

/// Which products to list; built only through [`ProductQuery::new`], which checks its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    pub featured_only: bool,
    pub category: Option<String>,
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
        .select(Product::as_select())
        .into_boxed();
    if q.featured_only {
        query = query.filter(products::featured.eq(true));
    }
    if let Some(c) = &q.category {
        query = query.filter(products::category.eq(c.clone()));
    }
    let mut rows: Vec<Product> = query
        .order_by((products::sort_order, products::name))
        .limit(q.limit + 1)
        .offset(q.offset)
        .load(conn)?;
    let next = (rows.len() as i64 > q.limit).then(|| (q.offset + q.limit).to_string());
    rows.truncate(usize::try_from(q.limit).unwrap_or(0));
    Ok((rows, next))
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Product>, DbError> {
    Ok(products::table
        .filter(products::id.eq(id))
        .filter(products::active.eq(true))
        .select(Product::as_select())
        .first(conn)
        .optional()?)
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
    stock: i64,
    featured: bool,
    active: bool,
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
                    stock,
                    featured,
                    active: true,
                    sort_order: i32::try_from(i).unwrap_or(0) + 1,
                    created_at: now,
                }
            },
        )
        .collect();
    let inserted = conn.transaction(|conn| {
        let mut n = 0;
        for row in &rows {
            n += omneuro_platform::per_backend!(&mut *conn, |c| diesel::insert_into(
                products::table
            )
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
        }
        Ok::<_, diesel::result::Error>(n)
    })?;
    tracing::info!(products_inserted = inserted, "demo catalog seeded");
    Ok(())
}
