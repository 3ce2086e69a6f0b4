//! The Stripe catalog sync: each product has exactly one Stripe Product and its current Price.
//!
//! [`CatalogSync::sync_product`] brings one product in step:
//! - no Stripe Product yet → `POST /v1/products` (name, `metadata[product_id]`, active) with the
//!   idempotency key `prd-{id}-product`; otherwise, when the name or the active flag changed,
//!   `POST /v1/products/{stripe id}`;
//! - no Price yet, or the price changed → `POST /v1/prices` (product, unit_amount, currency,
//!   `metadata[product_id]`) with the key `prd-{id}-price-{cents}`, then the old Price is archived
//!   (`active=false`, key `price-{old}-archive`), then the new ids are stored.
//!
//! The shop remembers what Stripe has (`stripe_*` columns), so a sync of a product that has not
//! changed makes no Stripe call at all, and a retried sync creates nothing twice: the same key
//! gets Stripe's stored answer back. The Stripe client itself retries 429/5xx with the same key.
//!
//! Keys are replayed by Stripe for a day, so a price that goes back to an earlier amount (2499 →
//! 2599 → 2499) would get the earlier, archived Price back. Archived Prices are never revived: the
//! sync checks the replayed Price and, when it is archived, creates a fresh one keyed on the Price
//! it replaces (`prd-{id}-price-{cents}-after-{old}`), which again is safe to retry.
//!
//! Syncs run one at a time per process (edits, `SyncCatalog` and the worker share one
//! [`CatalogSync`]). A failure is stored on the product (`stripe_sync_error`) and the next sync
//! retries it; [`CatalogSync::run`] is the worker that does so every few minutes.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{Database, DbConnection, DbError, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::ids;
use omneuro_platform::stripe::{Stripe, StripeError};

use crate::catalog::{self, CatalogEntry};
use crate::schema::catalog::catalog_products as cp;

/// How often the worker retries products that are not in step with Stripe.
pub const WORKER_EVERY: Duration = Duration::from_secs(300);

/// Most pages of `GET /v1/products` read when looking for a product whose create answer was lost.
const MAX_LOOKUP_PAGES: usize = 20;

/// What one product's sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its Stripe Product was created (and its Price).
    Created,
    /// Its Stripe Product or Price changed.
    Updated,
    /// Already in step: no Stripe call.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("Stripe's answer to {0} had no id")]
    Malformed(&'static str),
    /// The create key was spent with other parameters, and no Stripe Product names this product.
    #[error(
        "Stripe would not repeat this product's earlier create (its details changed since) and \
         has no product for it"
    )]
    Lost,
}

impl From<DbError> for SyncError {
    fn from(e: DbError) -> Self {
        Self::Domain(e.into())
    }
}

impl SyncError {
    /// For staff (stored on the product and shown in the catalog): no database internals.
    pub fn message(&self) -> String {
        match self {
            SyncError::Domain(DomainError::Db(_)) => {
                "the shop's database was unavailable during the sync".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// A full run's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    /// (product id, why)
    pub failed: Vec<(String, String)>,
}

/// The Stripe object fields the sync reads.
struct StripeObject {
    id: String,
    name: Option<String>,
    active: Option<bool>,
}

pub struct CatalogSync {
    db: Arc<Database>,
    stripe: Arc<Stripe>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

fn form(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl CatalogSync {
    pub fn new(db: Arc<Database>, stripe: Arc<Stripe>) -> Self {
        Self {
            db,
            stripe,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    pub fn is_on(&self) -> bool {
        self.stripe.is_on()
    }

    pub fn off_reason(&self) -> String {
        self.stripe
            .off_reason()
            .unwrap_or("no secret key")
            .to_owned()
    }

    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        key: &str,
        what: &'static str,
    ) -> Result<StripeObject, SyncError> {
        let v = self.stripe.post(path, &form(fields), key).await?;
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        if id.is_empty() {
            return Err(SyncError::Malformed(what));
        }
        Ok(StripeObject {
            id,
            name: v["name"].as_str().map(str::to_owned),
            active: v["active"].as_bool(),
        })
    }

    /// Syncs one product and records how it went on the product (the error, or the time).
    pub async fn sync_product(&self, id: &str) -> Result<Outcome, SyncError> {
        if !self.is_on() {
            return Err(StripeError::Off(self.off_reason()).into());
        }
        let _turn = self.one_at_a_time.lock().await;
        let result = self.sync_locked(id).await;
        let (pid, now) = (id.to_owned(), now_utc());
        let recorded = match &result {
            Ok(_) => self.db.run(move |c| record_success(c, &pid, now)).await,
            Err(SyncError::Domain(DomainError::NotFound(_))) => Ok(()),
            Err(e) => {
                let why = e.message();
                tracing::warn!(product.id = %id, error = %why, "Stripe sync of a product failed; the next sync retries");
                self.db.run(move |c| record_failure(c, &pid, &why)).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(product.id = %id, error = %e, "could not record the Stripe sync outcome");
        }
        result
    }

    async fn sync_locked(&self, id: &str) -> Result<Outcome, SyncError> {
        let pid = id.to_owned();
        let entry: CatalogEntry = self
            .db
            .run(move |c| catalog::get(c, &pid))
            .await?
            .ok_or_else(|| DomainError::not_found("No such product."))?;
        if entry.in_step_with_stripe() {
            return Ok(Outcome::Unchanged);
        }
        let (p, s) = (&entry.product, &entry.stripe);
        let active = p.active.to_string();
        let mut outcome = Outcome::Unchanged;

        // 1. The Stripe Product.
        let (stripe_product, has_name, has_active) = match &s.product_id {
            Some(sp) => (sp.clone(), s.name.clone(), s.active),
            None => {
                let fields = [
                    ("name", p.name.as_str()),
                    ("metadata[product_id]", p.id.as_str()),
                    ("active", active.as_str()),
                ];
                let key = format!("prd-{}-product", p.id);
                let made = match self.post("/v1/products", &fields, &key, "a product").await {
                    Ok(o) => o,
                    // The key was used with other parameters: an earlier create went through but
                    // its answer never reached us, and the product changed since. Adopt that one.
                    Err(SyncError::Stripe(StripeError::Refused { kind, .. }))
                        if kind == "idempotency_error" =>
                    {
                        self.find_product(&p.id).await?.ok_or(SyncError::Lost)?
                    }
                    Err(e) => return Err(e),
                };
                let (i, sp, n, a) = (
                    p.id.clone(),
                    made.id.clone(),
                    made.name.clone(),
                    made.active,
                );
                self.db
                    .run(move |c| record_product(c, &i, &sp, n.as_deref(), a))
                    .await?;
                tracing::info!(product.id = %p.id, stripe.product_id = %made.id, "Stripe product created");
                outcome = Outcome::Created;
                (made.id, made.name, made.active)
            }
        };
        if has_name.as_deref() != Some(p.name.as_str()) || has_active != Some(p.active) {
            // Updates set values, so a repeat is harmless: a fresh key per attempt (a fixed one
            // would replay an old answer when a name goes back to an earlier one).
            let key = format!("prd-{}-update-{}", p.id, ids::new_id("k"));
            let fields = [("name", p.name.as_str()), ("active", active.as_str())];
            let path = format!("/v1/products/{stripe_product}");
            let o = self.post(&path, &fields, &key, "a product update").await?;
            let (i, sp) = (p.id.clone(), stripe_product.clone());
            self.db
                .run(move |c| record_product(c, &i, &sp, o.name.as_deref(), o.active))
                .await?;
            tracing::info!(product.id = %p.id, stripe.product_id = %stripe_product, active = p.active, "Stripe product updated");
            if outcome == Outcome::Unchanged {
                outcome = Outcome::Updated;
            }
        }

        // 2. Its current Price.
        if s.price_id.is_none() || s.price_cents != Some(p.price_cents) {
            let cents = p.price_cents.to_string();
            let currency = p.currency.to_lowercase();
            let fields = [
                ("product", stripe_product.as_str()),
                ("unit_amount", cents.as_str()),
                ("currency", currency.as_str()),
                ("metadata[product_id]", p.id.as_str()),
            ];
            let key = format!("prd-{}-price-{}", p.id, p.price_cents);
            let mut price = self.post("/v1/prices", &fields, &key, "a price").await?.id;
            if let Some(old) = &s.price_id {
                if *old != price && !self.price_is_active(&price).await? {
                    // A replay of a Price an earlier change archived (see the module docs).
                    let key = format!("prd-{}-price-{}-after-{old}", p.id, p.price_cents);
                    price = self.post("/v1/prices", &fields, &key, "a price").await?.id;
                }
                if *old != price {
                    self.archive_price(old).await?;
                }
            }
            let (i, pr, c) = (p.id.clone(), price.clone(), p.price_cents);
            self.db
                .run(move |conn| record_price(conn, &i, &pr, c))
                .await?;
            tracing::info!(product.id = %p.id, stripe.price_id = %price, price_cents = p.price_cents, "Stripe price set");
            if outcome == Outcome::Unchanged {
                outcome = Outcome::Updated;
            }
        }
        Ok(outcome)
    }

    async fn price_is_active(&self, price: &str) -> Result<bool, SyncError> {
        let v = self.stripe.get(&format!("/v1/prices/{price}")).await?;
        Ok(v["active"].as_bool().unwrap_or(false))
    }

    /// `active=false` on the old Price; one that Stripe no longer has counts as archived.
    async fn archive_price(&self, old: &str) -> Result<(), SyncError> {
        let key = format!("price-{old}-archive");
        let path = format!("/v1/prices/{old}");
        match self
            .post(&path, &[("active", "false")], &key, "a price archive")
            .await
        {
            Ok(_) => Ok(()),
            Err(SyncError::Stripe(StripeError::Refused { status: 404, .. })) => {
                tracing::warn!(stripe.price_id = %old, "old Stripe price is gone; nothing to archive");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The Stripe Product made for `product_id` (by its metadata), reading the product list.
    async fn find_product(&self, product_id: &str) -> Result<Option<StripeObject>, SyncError> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_LOOKUP_PAGES {
            let path = match &after {
                Some(a) => format!("/v1/products?limit=100&starting_after={a}"),
                None => "/v1/products?limit=100".to_owned(),
            };
            let page = self.stripe.get(&path).await?;
            let items = page["data"].as_array().cloned().unwrap_or_default();
            for item in &items {
                if item["metadata"]["product_id"].as_str() == Some(product_id) {
                    return Ok(item["id"].as_str().map(|id| StripeObject {
                        id: id.to_owned(),
                        name: item["name"].as_str().map(str::to_owned),
                        active: item["active"].as_bool(),
                    }));
                }
            }
            after = items
                .last()
                .and_then(|i| i["id"].as_str())
                .map(str::to_owned);
            if page["has_more"].as_bool() != Some(true) || after.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// Syncs every product; products already in step make no Stripe call.
    pub async fn sync_all(&self) -> Result<Report, SyncError> {
        if !self.is_on() {
            return Err(StripeError::Off(self.off_reason()).into());
        }
        let ids = self.db.run(catalog::all_ids).await?;
        let mut report = Report::default();
        for id in ids {
            match self.sync_product(&id).await {
                Ok(Outcome::Created) => report.created += 1,
                Ok(Outcome::Updated) => report.updated += 1,
                Ok(Outcome::Unchanged) => report.unchanged += 1,
                Err(SyncError::Domain(DomainError::NotFound(_))) => {}
                Err(e) => report.failed.push((id, e.message())),
            }
        }
        Ok(report)
    }

    /// The worker: every [`WORKER_EVERY`] (first after one interval), a full sync, so products
    /// whose sync failed (or that changed while Stripe was down) catch up. Returns when `stop`
    /// resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let start = tokio::time::Instant::now() + WORKER_EVERY;
        let mut tick = tokio::time::interval_at(start, WORKER_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            if !self.db.is_migrated() || !self.is_on() {
                continue;
            }
            match self.sync_all().await {
                Ok(r) if r.created + r.updated > 0 || !r.failed.is_empty() => tracing::info!(
                    created = r.created,
                    updated = r.updated,
                    unchanged = r.unchanged,
                    failed = r.failed.len(),
                    "Stripe catalog sync round"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message(), "Stripe catalog sync round failed"),
            }
        }
    }
}

fn record_product(
    conn: &mut DbConnection,
    id: &str,
    stripe_product: &str,
    name: Option<&str>,
    active: Option<bool>,
) -> Result<(), DomainError> {
    diesel::update(cp::table.filter(cp::id.eq(id)))
        .set((
            cp::stripe_product_id.eq(stripe_product),
            cp::stripe_name.eq(name),
            cp::stripe_active.eq(active),
        ))
        .execute(conn)?;
    Ok(())
}

fn record_price(
    conn: &mut DbConnection,
    id: &str,
    price: &str,
    cents: i64,
) -> Result<(), DomainError> {
    diesel::update(cp::table.filter(cp::id.eq(id)))
        .set((
            cp::stripe_price_id.eq(price),
            cp::stripe_price_cents.eq(cents),
        ))
        .execute(conn)?;
    Ok(())
}

fn record_success(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(cp::table.filter(cp::id.eq(id)))
        .set((cp::stripe_sync_error.eq(""), cp::stripe_synced_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

fn record_failure(conn: &mut DbConnection, id: &str, why: &str) -> Result<(), DomainError> {
    let why: String = why.chars().take(500).collect();
    diesel::update(cp::table.filter(cp::id.eq(id)))
        .set(cp::stripe_sync_error.eq(why))
        .execute(conn)?;
    Ok(())
}
