//! `omneuro.shop.v1.ShopService`: the RPCs, who may call them, the Stripe checkout, and the
//! proto ⇄ domain mapping.

use std::sync::Arc;

use omneuro_platform::auth::{self, Actor, Permission};
use omneuro_platform::db::{Database, now_utc};
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_platform::ids;
use omneuro_platform::stripe::{Stripe, StripeError};
use omneuro_proto::billing::v1 as billing;
use omneuro_proto::billing::v1::billing_service_client::BillingServiceClient;
use omneuro_proto::common::v1::{Money, PageResponse, Timestamp};
use omneuro_proto::shop::v1 as pb;
use tonic::{Request, Response, Status};

use crate::catalog::{self, CatalogEntry, ChangesInput, NewProduct, NewProductInput, SyncState};
use crate::inventory;
use crate::orders::{self, Cart, Order};
use crate::products::{self, Product, ProductQuery};
use crate::quote::{self, BmsOption, CellType, PricingTable, QuoteRequest, Target};
use crate::stripe_sync::{CatalogSync, Outcome, SyncError};

/// Where shop orders are taxed (billing keeps the rates).
pub const TAX_JURISDICTION: &str = "US-MD";

pub struct Shop {
    db: Arc<Database>,
    stripe: Arc<Stripe>,
    sync: Arc<CatalogSync>,
    /// Sales-tax rates are billing's data: asked at every checkout.
    billing: BillingServiceClient<TracedChannel>,
}

impl Shop {
    pub fn new(
        db: Arc<Database>,
        stripe: Arc<Stripe>,
        billing: BillingServiceClient<TracedChannel>,
    ) -> Self {
        let sync = Arc::new(CatalogSync::new(db.clone(), stripe.clone()));
        Self {
            db,
            stripe,
            sync,
            billing,
        }
    }

    /// Maryland's sales-tax rate in basis points, from billing. Any failure is UNAVAILABLE: an
    /// order is never placed with a guessed tax.
    async fn tax_rate_bps(&self) -> Result<u32, Status> {
        let mut b = self.billing.clone();
        let res = grpc::call(
            "BillingService/GetTaxRate",
            b.get_tax_rate(auth::request(
                &Actor::System("shop".into()),
                billing::GetTaxRateRequest {
                    jurisdiction: TAX_JURISDICTION.into(),
                },
            )),
        )
        .await;
        match res.map(|r| r.into_inner().tax_rate) {
            Ok(Some(rate)) if rate.rate_bps <= 10_000 => Ok(rate.rate_bps),
            Ok(_) => Err(Status::unavailable(
                "Sales tax could not be worked out right now; please try again in a minute.",
            )),
            Err(e) => {
                tracing::warn!(grpc.code = ?e.code(), error = e.message(), "no tax rate from billing");
                Err(Status::unavailable(
                    "Sales tax could not be worked out right now; please try again in a minute.",
                ))
            }
        }
    }

    /// The cart with its tax at billing's current rate (left out, not guessed, when billing does
    /// not answer: the cart still shows and checkout asks again).
    async fn cart_with_tax(&self, cart: Cart) -> pb::Cart {
        let rate = if cart.lines.is_empty() {
            None
        } else {
            self.tax_rate_bps().await.ok()
        };
        cart_to_pb(cart, rate)
    }

    /// The Stripe catalog sync the RPCs use (share it with the worker: syncs take turns).
    pub fn catalog_sync(&self) -> Arc<CatalogSync> {
        self.sync.clone()
    }

    /// After a staff edit: syncs the product to Stripe when Stripe is on (waiting at most
    /// [`EDIT_SYNC_WAIT`]); a failure is recorded on the product, never fails the edit, and the
    /// note says what happened.
    async fn synced_after_edit(&self, entry: CatalogEntry) -> Result<pb::CatalogProduct, Status> {
        if !self.sync.is_on() {
            let note = format!(
                "Saved. Stripe is off ({}), so Stripe was not updated; a catalog sync brings it \
                 in step once Stripe is on.",
                self.sync.off_reason()
            );
            return Ok(catalog_to_pb(entry, note));
        }
        let (sync, id) = (self.sync.clone(), entry.product.id.clone());
        let task = tokio::spawn(async move { sync.sync_product(&id).await });
        let note = match tokio::time::timeout(EDIT_SYNC_WAIT, task).await {
            Ok(Ok(Ok(Outcome::Unchanged))) => "Saved. Stripe already had this.".to_owned(),
            Ok(Ok(Ok(_))) => "Saved and synced to Stripe.".to_owned(),
            Ok(Ok(Err(e))) => format!(
                "Saved, but Stripe could not be updated ({}); the next catalog sync will retry.",
                e.message()
            ),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "Stripe sync task ended abnormally");
                "Saved, but the Stripe sync stopped; the next catalog sync will retry.".to_owned()
            }
            Err(_) => "Saved. Stripe is slow to answer: the sync carries on in the background, \
                       and the next catalog sync retries it if it fails."
                .to_owned(),
        };
        let id = entry.product.id.clone();
        let entry = self
            .db
            .run(move |c| catalog::get(c, &id))
            .await?
            .unwrap_or(entry);
        Ok(catalog_to_pb(entry, note))
    }
}

/// How long a staff edit waits for its Stripe sync before answering.
const EDIT_SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The caller, who must be staff whose role allows `p`.
fn staff_only<T>(req: &Request<T>, p: Permission) -> Result<Actor, Status> {
    let actor = auth::actor(req)?;
    auth::require(&actor, p)?;
    Ok(actor)
}

fn fitment_from_pb(list: Vec<pb::Fitment>) -> Vec<(String, String)> {
    list.into_iter().map(|f| (f.make_id, f.model_id)).collect()
}

fn cart_to_pb(c: Cart, tax_rate_bps: Option<u32>) -> pb::Cart {
    let tax = tax_rate_bps.map(|bps| orders::tax(c.total_cents, bps));
    pb::Cart {
        lines: c
            .lines
            .into_iter()
            .map(|l| pb::CartLine {
                product_id: l.product_id,
                name: l.name,
                quantity: l.quantity,
                unit_price: Some(Money::usd(l.unit_cents)),
                repriced_from: l.repriced_from.map(Money::usd),
                available: l.available,
            })
            .collect(),
        total: Some(Money::usd(c.total_cents + tax.unwrap_or(0))),
        subtotal: Some(Money::usd(c.total_cents)),
        tax: tax.map(Money::usd),
        tax_rate_bps: tax_rate_bps.unwrap_or(0),
    }
}

fn order_to_pb(o: Order) -> pb::Order {
    pb::Order {
        id: o.id,
        status: o.status,
        items: o
            .items
            .into_iter()
            .map(|i| pb::OrderItem {
                product_id: i.product_id,
                name: i.name,
                quantity: i.quantity,
                unit_price: Some(Money::usd(i.unit_cents)),
                amount: Some(Money::usd(i.amount_cents)),
            })
            .collect(),
        total: Some(Money::usd(o.total_cents)),
        checkout_url: o.checkout_url,
        status_token: o.status_token,
        created_at: Some(Timestamp::from_utc(o.created_at)),
        email: o.email,
        subtotal: Some(Money::usd(o.subtotal_cents)),
        tax: Some(Money::usd(o.tax_cents)),
        tax_rate_bps: o.tax_rate_bps,
        client_id: o.client_id.unwrap_or_default(),
    }
}

fn system_only(actor: &Actor) -> Result<(), Status> {
    match actor {
        Actor::System(name) if name == "billing" => Ok(()),
        _ => Err(Status::permission_denied("only billing reports payments")),
    }
}

/// jobs (as itself) or staff may move stock for work orders; returns who, for the ledger.
fn job_parts_caller<T>(req: &Request<T>) -> Result<String, Status> {
    match auth::actor(req)? {
        a @ Actor::Staff { .. } if a.may(Permission::WorkBench) => Ok(a.encode()),
        Actor::System(name) if name == "jobs" => Ok("system:jobs".into()),
        _ => Err(Status::permission_denied(
            "only jobs and staff move stock for work orders",
        )),
    }
}

fn stripe_status(e: StripeError) -> Status {
    e.into_status("visit the shop to buy")
}

#[tonic::async_trait]
impl pb::shop_service_server::ShopService for Shop {
    async fn list_products(
        &self,
        req: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let req = req.into_inner();
        let page = req.page.unwrap_or_default();
        let q = ProductQuery::new(
            req.featured_only,
            &req.category,
            page.page_size,
            &page.page_token,
        )
        .map_err(Status::invalid_argument)?;
        let mut q = q;
        q.fits = req
            .fits
            .into_iter()
            .take(20)
            .map(|f| (f.make_id, f.model_id))
            .collect();
        let (list, next) = self.db.run(move |c| products::list(c, &q)).await?;
        Ok(Response::new(pb::ListProductsResponse {
            products: list.into_iter().map(to_pb).collect(),
            page: Some(PageResponse {
                next_page_token: next.unwrap_or_default(),
            }),
        }))
    }

    async fn get_product(
        &self,
        req: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let id = req.into_inner().id;
        if !ids::is_valid("prd", &id) {
            return Err(Status::invalid_argument(format!(
                "`{id}` is not a product id (prd_…)"
            )));
        }
        let p = self
            .db
            .run(move |c| products::get(c, &id))
            .await?
            .ok_or_else(|| Status::not_found("no such product"))?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(to_pb(p)),
        }))
    }

    async fn get_cart(
        &self,
        req: Request<pb::GetCartRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let r = req.into_inner();
        let cart = self
            .db
            .run(move |c| orders::view(c, &r.cart_token, r.acknowledge_prices))
            .await?;
        Ok(Response::new(self.cart_with_tax(cart).await))
    }

    async fn set_cart_item(
        &self,
        req: Request<pb::SetCartItemRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let r = req.into_inner();
        let now = now_utc();
        let cart = self
            .db
            .run(move |c| orders::set_item(c, &r.cart_token, &r.product_id, r.quantity, now))
            .await?;
        Ok(Response::new(self.cart_with_tax(cart).await))
    }

    async fn checkout(
        &self,
        req: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let client = auth::actor(&req)
            .ok()
            .and_then(|a| a.client_id().map(str::to_owned));
        let r = req.into_inner();
        let email = r.email.trim().to_lowercase();
        if !email.is_empty() && (email.len() > 254 || !email.contains('@')) {
            return Err(Status::invalid_argument(
                "Please enter a valid email address for the receipt.",
            ));
        }
        if !self.stripe.is_on() {
            return Err(stripe_status(StripeError::Off(
                self.stripe.off_reason().unwrap_or("no key").to_owned(),
            )));
        }
        // Asked before anything is reserved: without billing's rate no order is placed and no
        // stock is held (as when Stripe cannot open the payment page).
        let bps = self.tax_rate_bps().await?;
        let (token, now, cl, em) = (
            r.cart_token.clone(),
            now_utc(),
            client.clone(),
            email.clone(),
        );
        let order = self
            .db
            .run(move |c| orders::place(c, &token, cl.as_deref(), &em, bps, now))
            .await?;
        let mut form: Vec<(String, String)> = vec![
            ("mode".into(), "payment".into()),
            (
                "success_url".into(),
                r.success_url.replace("{ORDER_TOKEN}", &order.status_token),
            ),
            (
                "cancel_url".into(),
                r.cancel_url.replace("{ORDER_TOKEN}", &order.status_token),
            ),
            ("client_reference_id".into(), order.id.clone()),
            ("metadata[order_id]".into(), order.id.clone()),
            (
                "payment_intent_data[metadata][order_id]".into(),
                order.id.clone(),
            ),
            // Stock is held while the shopper pays; an unpaid session gives it back.
            (
                "expires_at".into(),
                (chrono::Utc::now().timestamp() + 31 * 60).to_string(),
            ),
        ];
        if !email.is_empty() {
            form.push(("customer_email".into(), email));
        }
        // The synced Stripe Price when it matches what the order charges; otherwise the amount
        // itself (never a price from the browser either way).
        let ids: Vec<String> = order.items.iter().map(|i| i.product_id.clone()).collect();
        let synced = self
            .db
            .run(move |c| products::stripe_prices(c, &ids))
            .await
            .unwrap_or_default();
        for (i, item) in order.items.iter().enumerate() {
            form.push((
                format!("line_items[{i}][quantity]"),
                item.quantity.to_string(),
            ));
            match synced.get(&item.product_id) {
                Some((price, cents)) if *cents == item.unit_cents => {
                    form.push((format!("line_items[{i}][price]"), price.clone()));
                }
                _ => {
                    form.push((
                        format!("line_items[{i}][price_data][currency]"),
                        "usd".into(),
                    ));
                    form.push((
                        format!("line_items[{i}][price_data][unit_amount]"),
                        item.unit_cents.to_string(),
                    ));
                    form.push((
                        format!("line_items[{i}][price_data][product_data][name]"),
                        item.name.clone(),
                    ));
                }
            }
        }
        if order.tax_cents > 0 {
            let i = order.items.len();
            form.extend([
                (format!("line_items[{i}][quantity]"), "1".to_owned()),
                (
                    format!("line_items[{i}][price_data][currency]"),
                    "usd".to_owned(),
                ),
                (
                    format!("line_items[{i}][price_data][unit_amount]"),
                    order.tax_cents.to_string(),
                ),
                (
                    format!("line_items[{i}][price_data][product_data][name]"),
                    orders::tax_label(order.tax_rate_bps),
                ),
            ]);
        }
        match self
            .stripe
            .post(
                "/v1/checkout/sessions",
                &form,
                &format!("{}-checkout", order.id),
            )
            .await
        {
            Ok(session) => {
                let sid = session["id"].as_str().unwrap_or_default().to_owned();
                let url = session["url"].as_str().unwrap_or_default().to_owned();
                let (id, now) = (order.id.clone(), now_utc());
                let order = self
                    .db
                    .run(move |c| {
                        orders::attach_checkout(c, &id, &sid, &url, now)?;
                        orders::get(c, &id, None)
                    })
                    .await?;
                tracing::info!(order.id = %order.id, total_cents = order.total_cents, "checkout opened");
                Ok(Response::new(order_to_pb(order)))
            }
            Err(e) => {
                // No payment page: give the stock back at once.
                let (id, now) = (order.id.clone(), now_utc());
                self.db
                    .run(move |c| orders::release(c, &id, "canceled", "system:shop", now))
                    .await?;
                Err(stripe_status(e))
            }
        }
    }

    async fn get_order(
        &self,
        req: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let actor = auth::actor(&req).ok();
        let r = req.into_inner();
        let order = if !r.status_token.is_empty() {
            self.db
                .run(move |c| orders::by_status_token(c, &r.status_token))
                .await?
        } else {
            let owner = match &actor {
                Some(Actor::Client(id)) => Some(id.clone()),
                Some(Actor::Staff { .. } | Actor::System(_)) => None,
                None => return Err(Status::unauthenticated("this call needs a caller identity")),
            };
            self.db
                .run(move |c| orders::get(c, &r.id, owner.as_deref()))
                .await?
        };
        Ok(Response::new(order_to_pb(order)))
    }

    async fn order_paid(
        &self,
        req: Request<pb::OrderPaymentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        system_only(&auth::actor(&req)?)?;
        let id = req.into_inner().order_id;
        let now = now_utc();
        let order = self
            .db
            .run(move |c| orders::mark_paid(c, &id, "system:billing", now))
            .await?;
        tracing::info!(order.id = %order.id, "order paid");
        Ok(Response::new(order_to_pb(order)))
    }

    async fn order_expired(
        &self,
        req: Request<pb::OrderPaymentRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        system_only(&auth::actor(&req)?)?;
        let id = req.into_inner().order_id;
        let now = now_utc();
        let order = self
            .db
            .run(move |c| orders::release(c, &id, "expired", "system:billing", now))
            .await?;
        Ok(Response::new(order_to_pb(order)))
    }

    async fn adjust_stock(
        &self,
        req: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let actor = staff_only(&req, Permission::AdjustStock)?;
        let r = req.into_inner();
        let (who, now) = (actor.encode(), now_utc());
        let available = self
            .db
            .run(move |c| inventory::adjust(c, &r.product_id, r.delta, &r.reason, &who, now))
            .await?;
        Ok(Response::new(pb::AdjustStockResponse { available }))
    }

    async fn use_job_part(
        &self,
        req: Request<pb::JobPartRequest>,
    ) -> Result<Response<pb::JobPartResponse>, Status> {
        let actor = job_parts_caller(&req)?;
        let r = req.into_inner();
        let now = now_utc();
        let available = self
            .db
            .run(move |c| {
                inventory::use_for_job(
                    c,
                    &r.product_id,
                    i64::from(r.quantity),
                    &r.line_id,
                    &actor,
                    now,
                )?;
                Ok::<_, omneuro_platform::error::DomainError>(
                    products::get(c, &r.product_id)?
                        .map(|p| p.available())
                        .unwrap_or(0),
                )
            })
            .await?;
        Ok(Response::new(pb::JobPartResponse { available }))
    }

    async fn return_job_part(
        &self,
        req: Request<pb::JobPartRequest>,
    ) -> Result<Response<pb::JobPartResponse>, Status> {
        let actor = job_parts_caller(&req)?;
        let r = req.into_inner();
        let now = now_utc();
        let available = self
            .db
            .run(move |c| {
                inventory::return_from_job(c, &r.line_id, &actor, now)?;
                Ok::<_, omneuro_platform::error::DomainError>(
                    products::get(c, &r.product_id)?
                        .map(|p| p.available())
                        .unwrap_or(0),
                )
            })
            .await?;
        Ok(Response::new(pb::JobPartResponse { available }))
    }

    async fn quote_battery_pack(
        &self,
        req: Request<pb::QuoteBatteryPackRequest>,
    ) -> Result<Response<pb::BatteryPackQuote>, Status> {
        let r = req.into_inner();
        let target = match (r.range_miles, r.energy_wh) {
            (0, 0) => {
                return Err(Status::invalid_argument(
                    "Tell us the range in miles or the energy in Wh you want.",
                ));
            }
            (m, 0) => Target::RangeMiles(m),
            (0, wh) => Target::EnergyWh(wh),
            _ => {
                return Err(Status::invalid_argument(
                    "Give either a range in miles or an energy in Wh, not both.",
                ));
            }
        };
        let bad = |e: quote::QuoteError| Status::invalid_argument(e.to_string());
        let req = QuoteRequest {
            target,
            voltage_class: r.voltage_class,
            cell: r.cell.parse::<CellType>().map_err(bad)?,
            bms: r.bms.parse::<BmsOption>().map_err(bad)?,
            wh_per_mile: (r.wh_per_mile != 0).then_some(r.wh_per_mile),
        };
        let q = quote::quote(&req, &PricingTable::shop_default()).map_err(bad)?;
        Ok(Response::new(pb::BatteryPackQuote {
            configuration: q.configuration(),
            series: q.series,
            parallel: q.parallel,
            cell_count: q.cell_count,
            nominal_volts: format!("{:.1}", q.nominal_volts()),
            full_volts: format!("{:.1}", q.full_volts()),
            capacity_ah: format!("{:.1}", q.capacity_ah()),
            energy_wh: format!("{:.0}", q.energy_wh()),
            range_miles: q.range_miles,
            lines: q
                .lines
                .iter()
                .map(|l| pb::QuoteLine {
                    description: l.description.clone(),
                    amount: Some(Money::usd(l.amount_cents)),
                })
                .collect(),
            subtotal: Some(Money::usd(q.subtotal_cents)),
            deposit: Some(Money::usd(q.deposit_cents)),
            balance: Some(Money::usd(q.balance_cents)),
            warranty: q.warranty.to_owned(),
            safety_notes: q.safety_notes.clone(),
        }))
    }

    async fn list_catalog(
        &self,
        req: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        staff_only(&req, Permission::EditCatalog)?;
        let page = req.into_inner().page.unwrap_or_default();
        let q = ProductQuery::new(false, "", page.page_size, &page.page_token)
            .map_err(Status::invalid_argument)?;
        let (list, next) = self
            .db
            .run(move |c| catalog::list(c, q.limit, q.offset))
            .await?;
        Ok(Response::new(pb::ListCatalogResponse {
            products: list
                .into_iter()
                .map(|e| catalog_to_pb(e, String::new()))
                .collect(),
            page: Some(PageResponse {
                next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
            }),
        }))
    }

    async fn create_product(
        &self,
        req: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let actor = staff_only(&req, Permission::EditCatalog)?;
        let r = req.into_inner();
        let Some(price) = r.price else {
            return Err(Status::invalid_argument("Give the product a price."));
        };
        let new = NewProduct::parse(NewProductInput {
            slug: r.slug,
            name: r.name,
            description: r.description,
            category: r.category,
            price_cents: price.amount_cents,
            currency: price.currency,
            active: r.active,
            featured: r.featured,
            sort_order: r.sort_order,
            image_url: r.image_url,
            opening_stock: r.opening_stock,
            fits_all: r.fits_all,
            fitment: fitment_from_pb(r.fitment),
        })?;
        let (who, now) = (actor.encode(), now_utc());
        let entry = self
            .db
            .run(move |c| catalog::create(c, &new, &who, now))
            .await?;
        tracing::info!(product.id = %entry.product.id, actor = %actor.encode(), "product created");
        Ok(Response::new(pb::CreateProductResponse {
            product: Some(self.synced_after_edit(entry).await?),
        }))
    }

    async fn update_product(
        &self,
        req: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        let actor = staff_only(&req, Permission::EditCatalog)?;
        let r = req.into_inner();
        let id = catalog::product_id(&r.id)?;
        let changes = catalog::ProductChanges::parse(ChangesInput {
            name: r.name,
            description: r.description,
            category: r.category,
            price: r.price.map(|m| (m.amount_cents, m.currency)),
            active: r.active,
            featured: r.featured,
            sort_order: r.sort_order,
            image_url: r.image_url,
        })?;
        let entry = self
            .db
            .run(move |c| catalog::update(c, &id, &changes))
            .await?;
        tracing::info!(product.id = %entry.product.id, actor = %actor.encode(), "product updated");
        Ok(Response::new(pb::UpdateProductResponse {
            product: Some(self.synced_after_edit(entry).await?),
        }))
    }

    async fn set_fitment(
        &self,
        req: Request<pb::SetFitmentRequest>,
    ) -> Result<Response<pb::SetFitmentResponse>, Status> {
        let actor = staff_only(&req, Permission::EditCatalog)?;
        let r = req.into_inner();
        let id = catalog::product_id(&r.product_id)?;
        let list = catalog::fitment(fitment_from_pb(r.fitment))?;
        let fits_all = r.fits_all;
        let entry = self
            .db
            .run(move |c| catalog::set_fitment(c, &id, fits_all, &list))
            .await?;
        tracing::info!(product.id = %entry.product.id, actor = %actor.encode(), fits_all, "product fitment set");
        Ok(Response::new(pb::SetFitmentResponse {
            product: Some(catalog_to_pb(entry, String::new())),
        }))
    }

    async fn sync_catalog(
        &self,
        req: Request<pb::SyncCatalogRequest>,
    ) -> Result<Response<pb::SyncCatalogResponse>, Status> {
        let actor = staff_only(&req, Permission::EditCatalog)?;
        let report = self.sync.sync_all().await.map_err(|e| match e {
            SyncError::Stripe(StripeError::Off(why)) => {
                Status::failed_precondition(format!("Stripe is off ({why}); nothing was synced."))
            }
            SyncError::Domain(d) => d.into(),
            other => Status::unavailable(other.message()),
        })?;
        tracing::info!(
            actor = %actor.encode(),
            created = report.created,
            updated = report.updated,
            unchanged = report.unchanged,
            failed = report.failed.len(),
            "Stripe catalog synced"
        );
        Ok(Response::new(pb::SyncCatalogResponse {
            created: report.created,
            updated: report.updated,
            unchanged: report.unchanged,
            failed: u32::try_from(report.failed.len()).unwrap_or(u32::MAX),
            failures: report
                .failed
                .into_iter()
                .map(|(product_id, error)| pb::SyncFailure { product_id, error })
                .collect(),
        }))
    }
}

fn to_pb(p: Product) -> pb::Product {
    let stock = p.available();
    pb::Product {
        id: p.id,
        slug: p.slug,
        name: p.name,
        description: p.description,
        category: p.category,
        price: Some(Money {
            amount_cents: p.price_cents,
            currency: p.currency,
        }),
        stock,
        featured: p.featured,
        image_url: p.image_url,
        fits_all: p.fits_all,
        fitment: p
            .fitment
            .into_iter()
            .map(|(make_id, model_id)| pb::Fitment { make_id, model_id })
            .collect(),
    }
}

fn catalog_to_pb(e: CatalogEntry, note: String) -> pb::CatalogProduct {
    let state = match e.sync_state() {
        SyncState::Synced => pb::StripeSyncState::Synced,
        SyncState::Pending => pb::StripeSyncState::Pending,
        SyncState::Failed => pb::StripeSyncState::Failed,
    };
    let stripe = pb::StripeSync {
        state: state as i32,
        stripe_product_id: e.stripe.product_id.clone().unwrap_or_default(),
        stripe_price_id: e.stripe.price_id.clone().unwrap_or_default(),
        error: e.stripe.error.clone(),
        note,
        synced_at: e.stripe.synced_at.map(Timestamp::from_utc),
    };
    pb::CatalogProduct {
        active: e.product.active,
        sort_order: e.sort_order,
        on_hand: e.product.on_hand,
        reserved: e.product.reserved,
        product: Some(to_pb(e.product)),
        stripe: Some(stripe),
    }
}
