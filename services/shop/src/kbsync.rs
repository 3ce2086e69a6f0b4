//! Products and orders into the knowledge base (ADR 0014, ADR 0020), through shop's `kb_outbox`.
//!
//! A product created or changed (name, description, price, category, listing, fitment) or an
//! order placed, paid, expired or canceled writes a row in the change's own transaction
//! ([`product_changed`], [`order_changed`]); its key is the document's source ref. The shared
//! worker ([`omneuro_platform::kb_outbox::Worker`]) asks [`ShopDocs`] for the record as it is now:
//!
//! - `product:<id>` — a listed product is a **client-visible** document titled with its name
//!   (name, description, price, category, what it fits by make and model as garage names them),
//!   linked product -fits-> make/model; an unlisted or missing product's document is deleted.
//!   Stock is left out: it changes with every sale and is not a fact to search for.
//! - `order:<id>` — a **staff-only** document owned by the order's client: status, date, items and
//!   totals only (no email, no status link, no payment details), linked client -owns-> order
//!   -about-> each product (kb has no order kind: the order is the `document` of its source ref).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use omneuro_platform::db::{Database, DbConnection};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::TracedChannel;
use omneuro_platform::kb_outbox::{Doc, End, LinkFact, Outbox, Render, Renderer, Visibility};
use omneuro_proto::garage::v1 as garage;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;

use crate::catalog::{self, CatalogEntry};
use crate::orders::{self, Order};

/// shop's `kb_outbox`, keyed by source ref.
pub const OUTBOX: Outbox = Outbox::BY_SOURCE_REF;

pub fn product_ref(id: &str) -> String {
    format!("product:{id}")
}

pub fn order_ref(id: &str) -> String {
    format!("order:{id}")
}

/// Queues a product for kb (inside the change's transaction). `event`: created, changed,
/// fitment, seeded.
pub fn product_changed(
    conn: &mut DbConnection,
    id: &str,
    event: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    OUTBOX.enqueue(conn, &product_ref(id), event, now)
}

/// Queues an order for kb (inside the change's transaction). `event`: placed, paid, expired,
/// canceled.
pub fn order_changed(
    conn: &mut DbConnection,
    id: &str,
    event: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<()> {
    OUTBOX.enqueue(conn, &order_ref(id), event, now)
}

/// `$1,234.56`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", c % 100)
}

/// garage's vehicle catalog by id: make id → (make name, [(model id, model name)]).
pub type Makes = HashMap<String, (String, Vec<(String, String)>)>;

/// The make-and-model names a product fits, in its fitment's order ("King Song S22 Pro"), and
/// what the document says for each fitment row.
fn fitment_names(fitment: &[(String, String)], makes: &Makes) -> (Vec<String>, Vec<String>) {
    let mut models: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for (make_id, model_id) in fitment {
        let Some((make, list)) = makes.get(make_id) else {
            lines.push(format!("{make_id} (not in the vehicle catalog)"));
            continue;
        };
        let chosen: Vec<&(String, String)> = if model_id.is_empty() {
            list.iter().collect()
        } else {
            list.iter().filter(|(id, _)| id == model_id).collect()
        };
        if model_id.is_empty() {
            lines.push(format!("{make} (every model)"));
        } else if let Some((_, name)) = chosen.first() {
            lines.push(format!("{make} {name}"));
        } else {
            lines.push(format!("{make} {model_id} (not in the vehicle catalog)"));
        }
        for (_, name) in chosen {
            let full = format!("{make} {name}");
            if !models.contains(&full) {
                models.push(full);
            }
        }
    }
    (models, lines)
}

/// A listed product as kb gets it: client-visible, shop-wide.
pub fn render_product(e: &CatalogEntry, makes: &Makes) -> Doc {
    let p = &e.product;
    let mut body = format!("# {}\n\n", p.name);
    if !p.description.trim().is_empty() {
        body.push_str(p.description.trim());
        body.push_str("\n\n");
    }
    body.push_str(&format!("- Price: {}\n", dollars(p.price_cents)));
    body.push_str(&format!("- Category: {}\n", p.category));
    let (models, lines) = fitment_names(&p.fitment, makes);
    if p.fits_all {
        body.push_str("- Fits: every vehicle\n");
    } else if lines.is_empty() {
        body.push_str("- Fits: ask the shop\n");
    } else {
        body.push_str(&format!("- Fits: {}\n", lines.join(", ")));
    }
    let this = End::new("product", &p.id, &p.name);
    let links = models
        .iter()
        .map(|m| LinkFact::new("fits", this.clone(), End::new("model", m, m)))
        .collect();
    Doc {
        title: p.name.clone(),
        body,
        visibility: Visibility::Client,
        owner_client: String::new(),
        source_ref: product_ref(&p.id),
        links,
    }
}

/// An order as kb gets it: staff-only, owned by its client; items and totals, nothing else.
pub fn render_order(o: &Order) -> Doc {
    let count: i64 = o.items.iter().map(|i| i64::from(i.quantity)).sum();
    let title = format!(
        "Order {} — {count} item{}, {}",
        o.id,
        if count == 1 { "" } else { "s" },
        dollars(o.total_cents)
    );
    let mut body = format!("# Order {}\n\n", o.id);
    body.push_str(&format!("- Status: {}\n", o.status.replace('_', " ")));
    body.push_str(&format!(
        "- Placed: {} UTC\n",
        o.created_at.format("%Y-%m-%d %H:%M")
    ));
    match &o.client_id {
        Some(c) => body.push_str(&format!("- Client: {c}\n")),
        None => body.push_str("- Client: a visitor without an account\n"),
    }
    body.push_str("\n## Items\n\n");
    for i in &o.items {
        body.push_str(&format!(
            "- {} × {} — {} each, {}\n",
            i.quantity,
            i.name,
            dollars(i.unit_cents),
            dollars(i.amount_cents)
        ));
    }
    body.push_str("\n## Totals\n\n");
    body.push_str(&format!("- Items: {}\n", dollars(o.subtotal_cents)));
    body.push_str(&format!(
        "- {}: {}\n",
        orders::tax_label(o.tax_rate_bps),
        dollars(o.tax_cents)
    ));
    body.push_str(&format!(
        "- Total: {} {}\n",
        dollars(o.total_cents),
        o.currency
    ));

    let source_ref = order_ref(&o.id);
    let this = End::new("document", &source_ref, &format!("Order {}", o.id));
    let mut links = Vec::new();
    if let Some(c) = &o.client_id {
        links.push(LinkFact::new(
            "owns",
            End::new("client", c, ""),
            this.clone(),
        ));
    }
    for i in &o.items {
        if links.iter().any(|l| l.to.key == i.product_id) {
            continue;
        }
        links.push(LinkFact::new(
            "about",
            this.clone(),
            End::new("product", &i.product_id, &i.name),
        ));
    }
    Doc {
        title,
        body,
        visibility: Visibility::Staff,
        owner_client: o.client_id.clone().unwrap_or_default(),
        source_ref,
        links,
    }
}

/// Renders shop's queued records for the shared worker.
pub struct ShopDocs {
    pub db: Arc<Database>,
    /// The vehicle catalog, for the names of the makes and models a product fits.
    pub garage: GarageServiceClient<TracedChannel>,
}

impl ShopDocs {
    async fn makes(&self) -> Result<Makes, String> {
        let mut g = self.garage.clone();
        let res = omneuro_platform::grpc::call(
            "GarageService/ListVehicleMakes",
            g.list_vehicle_makes(garage::ListVehicleMakesRequest::default()),
        )
        .await
        .map_err(|s| format!("garage: {} ({:?})", s.message(), s.code()))?;
        Ok(res
            .into_inner()
            .makes
            .into_iter()
            .map(|m| {
                let models = m.models.into_iter().map(|v| (v.id, v.name)).collect();
                (m.id, (m.name, models))
            })
            .collect())
    }

    async fn product(&self, id: &str) -> Render {
        let source_ref = product_ref(id);
        let pid = id.to_owned();
        let entry = match self.db.run(move |c| catalog::get(c, &pid)).await {
            Ok(e) => e,
            Err(e) => return Render::Retry(e.to_string()),
        };
        let Some(entry) = entry else {
            return Render::Delete {
                source_ref,
                why: "the product no longer exists".into(),
            };
        };
        if !entry.product.active {
            return Render::Delete {
                source_ref,
                why: "the product is not listed".into(),
            };
        }
        let makes = if entry.product.fits_all || entry.product.fitment.is_empty() {
            Makes::new()
        } else {
            match self.makes().await {
                Ok(m) => m,
                Err(e) => return Render::Retry(e),
            }
        };
        Render::Put(render_product(&entry, &makes))
    }

    async fn order(&self, id: &str) -> Render {
        let oid = id.to_owned();
        match self.db.run(move |c| orders::get(c, &oid, None)).await {
            Ok(o) => Render::Put(render_order(&o)),
            Err(DomainError::NotFound(_)) => Render::Delete {
                source_ref: order_ref(id),
                why: "the order no longer exists".into(),
            },
            Err(e) => Render::Retry(e.to_string()),
        }
    }
}

impl Renderer for ShopDocs {
    async fn render(&self, key: &str) -> Render {
        match key.split_once(':') {
            Some(("product", id)) => self.product(id).await,
            Some(("order", id)) => self.order(id).await,
            _ => Render::Nothing(format!("`{key}` is not a shop record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::OrderItem;
    use crate::products::Product;

    fn makes() -> Makes {
        let mut m = Makes::new();
        m.insert(
            "mk_kingsong".into(),
            (
                "King Song".into(),
                vec![
                    ("mdl_ks_s22".into(), "S22 Pro".into()),
                    ("mdl_ks_16x".into(), "16X".into()),
                ],
            ),
        );
        m.insert(
            "mk_begode".into(),
            (
                "Begode".into(),
                vec![("mdl_bg_master".into(), "Master".into())],
            ),
        );
        m
    }

    fn entry(fits_all: bool, fitment: Vec<(&str, &str)>) -> CatalogEntry {
        CatalogEntry {
            product: Product {
                id: "prd_tyre".into(),
                slug: "tyre".into(),
                name: "Street tyre 16x3".into(),
                description: "Grippy.".into(),
                category: "tires".into(),
                price_cents: 123_456,
                currency: "USD".into(),
                on_hand: 3,
                reserved: 0,
                featured: false,
                active: true,
                image_url: String::new(),
                fits_all,
                fitment: fitment
                    .into_iter()
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .collect(),
            },
            sort_order: 0,
            stripe: Default::default(),
        }
    }

    #[test]
    fn money_reads_as_dollars() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(123_456), "$1,234.56");
        assert_eq!(dollars(100_000_000), "$1,000,000.00");
        assert_eq!(dollars(-250), "-$2.50");
    }

    #[test]
    fn a_product_is_client_visible_and_fits_models_by_name() {
        let d = render_product(
            &entry(
                false,
                vec![
                    ("mk_kingsong", ""),
                    ("mk_begode", "mdl_bg_master"),
                    ("mk_gone", ""),
                ],
            ),
            &makes(),
        );
        assert_eq!(d.title, "Street tyre 16x3");
        assert_eq!(d.source_ref, "product:prd_tyre");
        assert_eq!(d.visibility, Visibility::Client);
        assert!(d.owner_client.is_empty());
        for s in [
            "Grippy.",
            "$1,234.56",
            "King Song (every model)",
            "Begode Master",
            "mk_gone (not in the vehicle catalog)",
        ] {
            assert!(d.body.contains(s), "{s} in {}", d.body);
        }
        let fits: Vec<(&str, &str, &str)> = d
            .links
            .iter()
            .map(|l| (l.kind, l.from.key.as_str(), l.to.key.as_str()))
            .collect();
        assert_eq!(
            fits,
            vec![
                ("fits", "prd_tyre", "King Song S22 Pro"),
                ("fits", "prd_tyre", "King Song 16X"),
                ("fits", "prd_tyre", "Begode Master"),
            ]
        );
        let all = render_product(&entry(true, vec![]), &Makes::new());
        assert!(all.body.contains("every vehicle"));
        assert!(all.links.is_empty());
    }

    #[test]
    fn an_order_is_staff_only_with_items_and_totals_only() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 3, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .unwrap_or_default();
        let item = |id: &str, name: &str, q: i32, unit: i64| OrderItem {
            product_id: id.into(),
            name: name.into(),
            quantity: q,
            unit_cents: unit,
            amount_cents: unit * i64::from(q),
        };
        let o = Order {
            id: "ord_a".into(),
            client_id: Some("cli_a".into()),
            email: "rider@example.com".into(),
            status: "pending_payment".into(),
            subtotal_cents: 3_000,
            tax_cents: 180,
            tax_rate_bps: 600,
            total_cents: 3_180,
            currency: "USD".into(),
            checkout_session_id: Some("cs_test_secret".into()),
            checkout_url: "https://checkout.stripe.com/c/pay/cs_test_secret".into(),
            status_token: "tok_secret_value".into(),
            created_at: at,
            items: vec![
                item("prd_a", "Brake pads", 2, 1_000),
                item("prd_b", "Tube", 1, 1_000),
            ],
        };
        let d = render_order(&o);
        assert_eq!(d.visibility, Visibility::Staff);
        assert_eq!(d.owner_client, "cli_a");
        assert_eq!(d.source_ref, "order:ord_a");
        for s in [
            "2 × Brake pads",
            "$31.80",
            "Maryland sales tax (6%): $1.80",
            "pending payment",
        ] {
            assert!(d.body.contains(s), "{s} in {}", d.body);
        }
        for secret in ["rider@example.com", "cs_test_secret", "tok_secret_value"] {
            assert!(!d.body.contains(secret) && !d.title.contains(secret));
        }
        let links: Vec<(&str, String, String)> = d
            .links
            .iter()
            .map(|l| {
                (
                    l.kind,
                    format!("{}:{}", l.from.kind, l.from.key),
                    format!("{}:{}", l.to.kind, l.to.key),
                )
            })
            .collect();
        assert_eq!(
            links,
            vec![
                ("owns", "client:cli_a".into(), "document:order:ord_a".into()),
                (
                    "about",
                    "document:order:ord_a".into(),
                    "product:prd_a".into()
                ),
                (
                    "about",
                    "document:order:ord_a".into(),
                    "product:prd_b".into()
                ),
            ]
        );
        let visitor = render_order(&Order {
            client_id: None,
            ..o
        });
        assert!(visitor.owner_client.is_empty());
        assert!(visitor.links.iter().all(|l| l.kind == "about"));
    }
}
