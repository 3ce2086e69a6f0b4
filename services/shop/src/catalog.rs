//! Staff catalog edits: new products, changes to them, and which vehicles they fit. Every input is
//! checked here (messages for the staff member who typed it); stock is not set here except as an
//! opening count, which goes through [`inventory::adjust`] so the ledger explains it.
//!
//! Staff see every product, inactive ones included, with where it stands with Stripe
//! ([`StripeLink`], kept by [`crate::stripe_sync`]).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use omneuro_platform::db::{DbConnection, now_utc, write_transaction};
use omneuro_platform::error::{DomainError, text};
use omneuro_platform::ids;

use crate::products::Product;
use crate::schema::catalog::catalog_products as cp;
use crate::schema::product_fitment;
use crate::{inventory, kbsync};

/// $100,000.
pub const MAX_PRICE_CENTS: i64 = 10_000_000;
pub const MAX_NAME_CHARS: usize = 120;
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
pub const MAX_SLUG_CHARS: usize = 80;
pub const MAX_CATEGORY_CHARS: usize = 40;
pub const MAX_IMAGE_URL_CHARS: usize = 500;
pub const MAX_OPENING_STOCK: i64 = 100_000;
pub const MAX_SORT_ORDER: i32 = 1_000_000;
pub const MAX_FITMENT: usize = 200;

/// What Stripe has for a product, as the last sync left it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StripeLink {
    pub product_id: Option<String>,
    /// The current Price (older ones are archived).
    pub price_id: Option<String>,
    pub price_cents: Option<i64>,
    /// The name and active flag Stripe's Product has.
    pub name: Option<String>,
    pub active: Option<bool>,
    /// Why the last sync failed; empty when it did not.
    pub error: String,
    pub synced_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Stripe has the product's name, active flag and price.
    Synced,
    /// Not synced since it changed (or Stripe is off).
    Pending,
    /// The last attempt failed; the next sync retries.
    Failed,
}

/// A product as staff manage it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub product: Product,
    pub sort_order: i32,
    pub stripe: StripeLink,
}

impl CatalogEntry {
    /// Stripe has everything it should: nothing for a sync to do.
    pub fn in_step_with_stripe(&self) -> bool {
        let (p, s) = (&self.product, &self.stripe);
        s.product_id.is_some()
            && s.price_id.is_some()
            && s.price_cents == Some(p.price_cents)
            && s.name.as_deref() == Some(p.name.as_str())
            && s.active == Some(p.active)
    }

    pub fn sync_state(&self) -> SyncState {
        if !self.stripe.error.is_empty() {
            SyncState::Failed
        } else if self.in_step_with_stripe() {
            SyncState::Synced
        } else {
            SyncState::Pending
        }
    }
}

// ---- input checks ------------------------------------------------------------------------------

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::invalid(msg)
}

fn token_ok(v: &str, max: usize, extra: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= max
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
}

/// `[a-z0-9-]{1,80}`: the product's address in the shop.
pub fn slug(v: &str) -> Result<String, DomainError> {
    let v = v.trim();
    if !token_ok(v, MAX_SLUG_CHARS, b"-") {
        return Err(invalid(format!(
            "The slug must be 1 to {MAX_SLUG_CHARS} lower-case letters, digits or dashes \
             (e.g. `bms-20s-60a`)."
        )));
    }
    Ok(v.to_owned())
}

pub fn name(v: &str) -> Result<String, DomainError> {
    let v = text("The name", v, MAX_NAME_CHARS, false)?;
    if v.is_empty() {
        return Err(invalid("Give the product a name."));
    }
    Ok(v)
}

pub fn description(v: &str) -> Result<String, DomainError> {
    text("The description", v, MAX_DESCRIPTION_CHARS, true)
}

/// `[a-z0-9_-]{1,40}`.
pub fn category(v: &str) -> Result<String, DomainError> {
    let v = v.trim();
    if !token_ok(v, MAX_CATEGORY_CHARS, b"_-") {
        return Err(invalid(format!(
            "The category must be 1 to {MAX_CATEGORY_CHARS} lower-case letters, digits, `_` or \
             `-` (e.g. `bms`)."
        )));
    }
    Ok(v.to_owned())
}

/// A price in cents: USD only (an empty currency means USD), $0 to $100,000.
pub fn price_cents(cents: i64, currency: &str) -> Result<i64, DomainError> {
    let currency = currency.trim();
    if !(currency.is_empty() || currency.eq_ignore_ascii_case("USD")) {
        return Err(invalid("Prices are in US dollars (USD)."));
    }
    if !(0..=MAX_PRICE_CENTS).contains(&cents) {
        return Err(invalid(
            "The price must be between $0.00 and $100,000.00 (0 to 10000000 cents).",
        ));
    }
    Ok(cents)
}

/// Empty, `https://…`/`http://…`, or a path on the site (`/static/…`).
pub fn image_url(v: &str) -> Result<String, DomainError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    let shaped = v.starts_with("https://")
        || v.starts_with("http://")
        || (v.starts_with('/') && !v.starts_with("//"));
    let clean = v
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"'<>\\^`{|}".contains(&b));
    if v.len() > MAX_IMAGE_URL_CHARS || !shaped || !clean {
        return Err(invalid(format!(
            "The image URL must be an https:// address or a path on the site such as \
             /static/img/part.jpg (at most {MAX_IMAGE_URL_CHARS} characters, no spaces)."
        )));
    }
    Ok(v.to_owned())
}

pub fn sort_order(v: i32) -> Result<i32, DomainError> {
    if !(-MAX_SORT_ORDER..=MAX_SORT_ORDER).contains(&v) {
        return Err(invalid(format!(
            "The sort order must be between -{MAX_SORT_ORDER} and {MAX_SORT_ORDER}."
        )));
    }
    Ok(v)
}

pub fn opening_stock(v: i64) -> Result<i64, DomainError> {
    if !(0..=MAX_OPENING_STOCK).contains(&v) {
        return Err(invalid(
            "The opening stock must be between 0 and 100,000 (change it later with a stock \
             adjustment).",
        ));
    }
    Ok(v)
}

/// (make id, model id or "" for every model of the make), garage's catalog ids; duplicates go.
pub fn fitment(list: Vec<(String, String)>) -> Result<Vec<(String, String)>, DomainError> {
    if list.len() > MAX_FITMENT {
        return Err(invalid(format!(
            "A product can list at most {MAX_FITMENT} makes and models it fits."
        )));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(list.len());
    for (make, model) in list {
        let (make, model) = (make.trim().to_owned(), model.trim().to_owned());
        if !token_ok(&make, 64, b"_-") {
            return Err(invalid(format!(
                "`{make}` is not a make id from the vehicle catalog (e.g. `mk_kingsong`)."
            )));
        }
        if !model.is_empty() && !token_ok(&model, 64, b"_-") {
            return Err(invalid(format!(
                "`{model}` is not a model id from the vehicle catalog (leave it empty for every \
                 model of the make)."
            )));
        }
        if !out.contains(&(make.clone(), model.clone())) {
            out.push((make, model));
        }
    }
    Ok(out)
}

/// A product id staff sent; NOT_FOUND-shaped garbage is refused before any query.
pub fn product_id(v: &str) -> Result<String, DomainError> {
    if !ids::is_valid("prd", v) {
        return Err(invalid(format!("`{v}` is not a product id (prd_…).")));
    }
    Ok(v.to_owned())
}

/// What staff typed for a new product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewProductInput {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub currency: String,
    pub active: bool,
    pub featured: bool,
    pub sort_order: i32,
    pub image_url: String,
    pub opening_stock: i64,
    pub fits_all: bool,
    pub fitment: Vec<(String, String)>,
}

/// A checked new product; built only by [`NewProduct::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    slug: String,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    active: bool,
    featured: bool,
    sort_order: i32,
    image_url: String,
    opening_stock: i64,
    fits_all: bool,
    fitment: Vec<(String, String)>,
}

impl NewProduct {
    pub fn parse(i: NewProductInput) -> Result<Self, DomainError> {
        Ok(Self {
            slug: slug(&i.slug)?,
            name: name(&i.name)?,
            description: description(&i.description)?,
            category: category(&i.category)?,
            price_cents: price_cents(i.price_cents, &i.currency)?,
            active: i.active,
            featured: i.featured,
            sort_order: sort_order(i.sort_order)?,
            image_url: image_url(&i.image_url)?,
            opening_stock: opening_stock(i.opening_stock)?,
            fits_all: i.fits_all,
            fitment: fitment(i.fitment)?,
        })
    }
}

/// What staff want changed; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    /// (cents, currency)
    pub price: Option<(i64, String)>,
    pub active: Option<bool>,
    pub featured: Option<bool>,
    pub sort_order: Option<i32>,
    pub image_url: Option<String>,
}

/// Checked changes; built only by [`ProductChanges::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = cp)]
pub struct ProductChanges {
    name: Option<String>,
    description: Option<String>,
    category: Option<String>,
    price_cents: Option<i64>,
    active: Option<bool>,
    featured: Option<bool>,
    sort_order: Option<i32>,
    image_url: Option<String>,
}

impl ProductChanges {
    pub fn parse(i: ChangesInput) -> Result<Self, DomainError> {
        Ok(Self {
            name: i.name.as_deref().map(name).transpose()?,
            description: i.description.as_deref().map(description).transpose()?,
            category: i.category.as_deref().map(category).transpose()?,
            price_cents: i
                .price
                .map(|(cents, currency)| price_cents(cents, &currency))
                .transpose()?,
            active: i.active,
            featured: i.featured,
            sort_order: i.sort_order.map(sort_order).transpose()?,
            image_url: i.image_url.as_deref().map(image_url).transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

// ---- queries -----------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = cp)]
struct Row {
    id: String,
    slug: String,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    currency: String,
    featured: bool,
    active: bool,
    sort_order: i32,
    on_hand: i64,
    reserved: i64,
    image_url: String,
    fits_all: bool,
    stripe_product_id: Option<String>,
    stripe_price_id: Option<String>,
    stripe_price_cents: Option<i64>,
    stripe_name: Option<String>,
    stripe_active: Option<bool>,
    stripe_sync_error: String,
    stripe_synced_at: Option<NaiveDateTime>,
}

impl Row {
    fn into_entry(self) -> CatalogEntry {
        CatalogEntry {
            product: Product {
                id: self.id,
                slug: self.slug,
                name: self.name,
                description: self.description,
                category: self.category,
                price_cents: self.price_cents,
                currency: self.currency,
                on_hand: self.on_hand,
                reserved: self.reserved,
                featured: self.featured,
                active: self.active,
                image_url: self.image_url,
                fits_all: self.fits_all,
                fitment: Vec::new(),
            },
            sort_order: self.sort_order,
            stripe: StripeLink {
                product_id: self.stripe_product_id,
                price_id: self.stripe_price_id,
                price_cents: self.stripe_price_cents,
                name: self.stripe_name,
                active: self.stripe_active,
                error: self.stripe_sync_error,
                synced_at: self.stripe_synced_at,
            },
        }
    }
}

fn with_fitment(
    conn: &mut DbConnection,
    mut list: Vec<CatalogEntry>,
) -> Result<Vec<CatalogEntry>, DomainError> {
    if list.is_empty() {
        return Ok(list);
    }
    let ids: Vec<String> = list.iter().map(|e| e.product.id.clone()).collect();
    let rows: Vec<(String, String, String)> = product_fitment::table
        .filter(product_fitment::product_id.eq_any(&ids))
        .select((
            product_fitment::product_id,
            product_fitment::make_id,
            product_fitment::model_id,
        ))
        .order_by((product_fitment::make_id, product_fitment::model_id))
        .load(conn)?;
    for e in &mut list {
        e.product.fitment = rows
            .iter()
            .filter(|(pid, _, _)| *pid == e.product.id)
            .map(|(_, make, model)| (make.clone(), model.clone()))
            .collect();
    }
    Ok(list)
}

/// Any product, active or not.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<CatalogEntry>, DomainError> {
    let row = cp::table
        .filter(cp::id.eq(id))
        .select(Row::as_select())
        .first::<Row>(conn)
        .optional()?;
    Ok(with_fitment(conn, row.into_iter().map(Row::into_entry).collect())?.pop())
}

fn must_get(conn: &mut DbConnection, id: &str) -> Result<CatalogEntry, DomainError> {
    get(conn, id)?.ok_or_else(|| DomainError::not_found("No such product."))
}

/// Every product in the shop's order, one page plus the next page's offset (None on the last).
pub fn list(
    conn: &mut DbConnection,
    limit: i64,
    offset: i64,
) -> Result<(Vec<CatalogEntry>, Option<i64>), DomainError> {
    let mut rows: Vec<CatalogEntry> = cp::table
        .select(Row::as_select())
        .order_by((cp::sort_order, cp::name, cp::id))
        .limit(limit + 1)
        .offset(offset)
        .load::<Row>(conn)?
        .into_iter()
        .map(Row::into_entry)
        .collect();
    let next = (rows.len() as i64 > limit).then_some(offset + limit);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((with_fitment(conn, rows)?, next))
}

/// Every product id, for a full sync.
pub fn all_ids(conn: &mut DbConnection) -> Result<Vec<String>, DomainError> {
    Ok(cp::table
        .select(cp::id)
        .order_by((cp::sort_order, cp::id))
        .load(conn)?)
}

fn slug_taken(slug: &str) -> DomainError {
    invalid(format!(
        "The slug `{slug}` is already used by another product; pick another."
    ))
}

fn replace_fitment(
    conn: &mut DbConnection,
    id: &str,
    list: &[(String, String)],
) -> Result<(), DomainError> {
    diesel::delete(product_fitment::table.filter(product_fitment::product_id.eq(id)))
        .execute(conn)?;
    for (make, model) in list {
        diesel::insert_into(product_fitment::table)
            .values((
                product_fitment::product_id.eq(id),
                product_fitment::make_id.eq(make),
                product_fitment::model_id.eq(model),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Adds a product; an opening stock goes through the inventory ledger in the same transaction.
pub fn create(
    conn: &mut DbConnection,
    p: &NewProduct,
    actor: &str,
    now: NaiveDateTime,
) -> Result<CatalogEntry, DomainError> {
    let id = ids::new_id("prd");
    write_transaction(conn, |c| {
        let taken: i64 = cp::table
            .filter(cp::slug.eq(&p.slug))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(slug_taken(&p.slug));
        }
        let inserted = diesel::insert_into(cp::table)
            .values((
                cp::id.eq(&id),
                cp::slug.eq(&p.slug),
                cp::name.eq(&p.name),
                cp::description.eq(&p.description),
                cp::category.eq(&p.category),
                cp::price_cents.eq(p.price_cents),
                cp::currency.eq("USD"),
                cp::featured.eq(p.featured),
                cp::active.eq(p.active),
                cp::sort_order.eq(p.sort_order),
                cp::created_at.eq(now),
                cp::image_url.eq(&p.image_url),
                cp::fits_all.eq(p.fits_all),
            ))
            .execute(c);
        match inserted {
            Ok(_) => {}
            // Two staff members racing for one slug (PostgreSQL): the index settles it.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(slug_taken(&p.slug));
            }
            Err(e) => return Err(e.into()),
        }
        replace_fitment(c, &id, &p.fitment)?;
        if p.opening_stock > 0 {
            inventory::adjust(c, &id, p.opening_stock, "opening stock", actor, now)?;
        }
        kbsync::product_changed(c, &id, "created", now)?;
        must_get(c, &id)
    })
}

/// Applies the changes that are set; no changes at all returns the product as it is.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    changes: &ProductChanges,
) -> Result<CatalogEntry, DomainError> {
    write_transaction(conn, |c| {
        must_get(c, id)?;
        if !changes.is_empty() {
            diesel::update(cp::table.filter(cp::id.eq(id)))
                .set(changes)
                .execute(c)?;
            kbsync::product_changed(c, id, "changed", now_utc())?;
        }
        must_get(c, id)
    })
}

/// Replaces which vehicles a product fits (and whether it fits all of them).
pub fn set_fitment(
    conn: &mut DbConnection,
    id: &str,
    fits_all: bool,
    list: &[(String, String)],
) -> Result<CatalogEntry, DomainError> {
    write_transaction(conn, |c| {
        must_get(c, id)?;
        diesel::update(cp::table.filter(cp::id.eq(id)))
            .set(cp::fits_all.eq(fits_all))
            .execute(c)?;
        replace_fitment(c, id, list)?;
        kbsync::product_changed(c, id, "fitment", now_utc())?;
        must_get(c, id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NewProductInput {
        NewProductInput {
            slug: "bms-24s-80a".into(),
            name: "Smart BMS 24S 80A".into(),
            description: "For 100 V packs.\nBluetooth.".into(),
            category: "bms".into(),
            price_cents: 12_999,
            currency: "USD".into(),
            active: true,
            sort_order: 3,
            opening_stock: 4,
            fitment: vec![
                ("mk_begode".into(), String::new()),
                ("mk_begode".into(), String::new()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_product_parses_and_duplicate_fitment_goes() {
        let p = NewProduct::parse(input()).unwrap();
        assert_eq!(p.fitment, vec![("mk_begode".to_owned(), String::new())]);
        assert_eq!(p.price_cents, 12_999);
    }

    #[test]
    fn bad_input_is_refused_with_a_message() {
        let cases: Vec<(NewProductInput, &str)> = vec![
            (
                NewProductInput {
                    slug: "Bad Slug".into(),
                    ..input()
                },
                "slug",
            ),
            (
                NewProductInput {
                    slug: "x".repeat(81),
                    ..input()
                },
                "slug",
            ),
            (
                NewProductInput {
                    name: "n".repeat(121),
                    ..input()
                },
                "name",
            ),
            (
                NewProductInput {
                    name: "  ".into(),
                    ..input()
                },
                "name",
            ),
            (
                NewProductInput {
                    category: "BMS!".into(),
                    ..input()
                },
                "category",
            ),
            (
                NewProductInput {
                    description: "d".repeat(4001),
                    ..input()
                },
                "description",
            ),
            (
                NewProductInput {
                    price_cents: -1,
                    ..input()
                },
                "price",
            ),
            (
                NewProductInput {
                    price_cents: MAX_PRICE_CENTS + 1,
                    ..input()
                },
                "price",
            ),
            (
                NewProductInput {
                    currency: "EUR".into(),
                    ..input()
                },
                "USD",
            ),
            (
                NewProductInput {
                    image_url: "javascript:alert(1)".into(),
                    ..input()
                },
                "image",
            ),
            (
                NewProductInput {
                    opening_stock: -2,
                    ..input()
                },
                "opening stock",
            ),
            (
                NewProductInput {
                    fitment: vec![("Begode!".into(), String::new())],
                    ..input()
                },
                "make id",
            ),
        ];
        for (bad, word) in cases {
            let err = NewProduct::parse(bad.clone()).unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid(m) if m.to_lowercase().contains(&word.to_lowercase())),
                "{bad:?} → {err}"
            );
        }
        assert!(
            NewProduct::parse(NewProductInput {
                price_cents: MAX_PRICE_CENTS,
                image_url: "/static/img/bms.jpg".into(),
                ..input()
            })
            .is_ok()
        );
    }

    #[test]
    fn only_set_changes_count() {
        assert!(
            ProductChanges::parse(ChangesInput::default())
                .unwrap()
                .is_empty()
        );
        let c = ProductChanges::parse(ChangesInput {
            price: Some((500, String::new())),
            ..Default::default()
        })
        .unwrap();
        assert!(!c.is_empty());
        assert!(
            ProductChanges::parse(ChangesInput {
                category: Some("Not OK".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}
