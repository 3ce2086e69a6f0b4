//! Carts and orders. The cart lives on the server (a cookie token names it); prices always come
//! from the catalog, and a cart whose prices changed since the shopper saw them is re-priced and
//! must be confirmed again. Placing an order reserves its stock in the same transaction; payment
//! takes it, an expired or canceled checkout releases it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, write_transaction};
use omneuro_platform::error::DomainError;
use omneuro_platform::{ids, per_backend};

use crate::schema::{cart_items, carts, order_items, orders, products};
use crate::{inventory, kbsync};

/// Most of one item a shopper may put in a cart.
pub const MAX_QUANTITY: i32 = 20;

/// Sales tax on `taxable` cents at `bps` basis points, rounded half up to the cent (the same
/// rounding billing's invoices use).
pub fn tax(taxable: i64, bps: u32) -> i64 {
    (taxable * i64::from(bps) + 5_000) / 10_000
}

/// How the tax line reads on Stripe's page and receipts: "Maryland sales tax (6%)".
pub fn tax_label(bps: u32) -> String {
    let (whole, frac) = (bps / 100, bps % 100);
    let pct = if frac == 0 {
        whole.to_string()
    } else if frac % 10 == 0 {
        format!("{whole}.{}", frac / 10)
    } else {
        format!("{whole}.{frac:02}")
    };
    format!("Maryland sales tax ({pct}%)")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit_cents: i64,
    /// The price changed since the shopper last saw the cart.
    pub repriced_from: Option<i64>,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub total_cents: i64,
}

fn cart_id(
    conn: &mut DbConnection,
    token: &str,
    create: bool,
    now: NaiveDateTime,
) -> Result<Option<String>, DomainError> {
    if !ids::is_secret_shaped(token) {
        return Err(DomainError::invalid("That cart is not valid."));
    }
    let hash = ids::secret_hash(token);
    let found: Option<String> = carts::table
        .filter(carts::token_hash.eq(&hash))
        .select(carts::id)
        .first(conn)
        .optional()?;
    if found.is_some() || !create {
        return Ok(found);
    }
    let id = ids::new_id("cart");
    per_backend!(&mut *conn, |c| diesel::insert_into(carts::table)
        .values((
            carts::id.eq(&id),
            carts::token_hash.eq(&hash),
            carts::created_at.eq(now),
            carts::updated_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(carts::table
        .filter(carts::token_hash.eq(&hash))
        .select(carts::id)
        .first(conn)
        .optional()?)
}

/// Puts `quantity` of a product in the cart (0 takes it out).
pub fn set_item(
    conn: &mut DbConnection,
    token: &str,
    product_id: &str,
    quantity: i32,
    now: NaiveDateTime,
) -> Result<Cart, DomainError> {
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(DomainError::invalid(format!(
            "Quantity should be between 0 and {MAX_QUANTITY}."
        )));
    }
    write_transaction(conn, |c| {
        let Some(cart) = cart_id(c, token, true, now)? else {
            return Err(DomainError::Unavailable("cart could not be created".into()));
        };
        if quantity == 0 {
            diesel::delete(
                cart_items::table
                    .filter(cart_items::cart_id.eq(&cart))
                    .filter(cart_items::product_id.eq(product_id)),
            )
            .execute(c)?;
        } else {
            let price: Option<(i64, String)> = products::table
                .filter(products::id.eq(product_id))
                .filter(products::active.eq(true))
                .select((products::price_cents, products::currency))
                .first(c)
                .optional()?;
            let Some((price, currency)) = price else {
                return Err(DomainError::invalid("That product isn't for sale."));
            };
            if currency != "USD" {
                return Err(DomainError::invalid("That product can't be sold online."));
            }
            let updated = diesel::update(
                cart_items::table
                    .filter(cart_items::cart_id.eq(&cart))
                    .filter(cart_items::product_id.eq(product_id)),
            )
            .set((
                cart_items::quantity.eq(quantity),
                cart_items::seen_price_cents.eq(price),
            ))
            .execute(c)?;
            if updated == 0 {
                diesel::insert_into(cart_items::table)
                    .values((
                        cart_items::cart_id.eq(&cart),
                        cart_items::product_id.eq(product_id),
                        cart_items::quantity.eq(quantity),
                        cart_items::seen_price_cents.eq(price),
                    ))
                    .execute(c)?;
            }
        }
        diesel::update(carts::table.find(&cart))
            .set(carts::updated_at.eq(now))
            .execute(c)?;
        view(c, token, false)
    })
}

/// (product id, name, quantity, price now, price seen, on hand, reserved, active)
type CartRow = (String, String, i32, i64, i64, i64, i64, bool);

/// The cart at today's prices. `acknowledge` records that the shopper has now seen them.
pub fn view(conn: &mut DbConnection, token: &str, acknowledge: bool) -> Result<Cart, DomainError> {
    let Some(cart) = cart_id(conn, token, false, chrono::Utc::now().naive_utc())? else {
        return Ok(Cart {
            lines: Vec::new(),
            total_cents: 0,
        });
    };
    let rows: Vec<CartRow> = cart_items::table
        .inner_join(products::table)
        .filter(cart_items::cart_id.eq(&cart))
        .order_by(products::sort_order)
        .select((
            products::id,
            products::name,
            cart_items::quantity,
            products::price_cents,
            cart_items::seen_price_cents,
            products::on_hand,
            products::reserved,
            products::active,
        ))
        .load(conn)?;
    let mut lines = Vec::new();
    for (id, name, quantity, price, seen, on_hand, reserved, active) in rows {
        if !active {
            // Withdrawn from sale since it was added: out of the cart.
            diesel::delete(
                cart_items::table
                    .filter(cart_items::cart_id.eq(&cart))
                    .filter(cart_items::product_id.eq(&id)),
            )
            .execute(conn)?;
            continue;
        }
        if acknowledge && seen != price {
            diesel::update(
                cart_items::table
                    .filter(cart_items::cart_id.eq(&cart))
                    .filter(cart_items::product_id.eq(&id)),
            )
            .set(cart_items::seen_price_cents.eq(price))
            .execute(conn)?;
        }
        lines.push(CartLine {
            product_id: id,
            name,
            quantity,
            unit_cents: price,
            repriced_from: (seen != price).then_some(seen),
            available: (on_hand - reserved).max(0),
        });
    }
    let total_cents = lines
        .iter()
        .map(|l| l.unit_cents * i64::from(l.quantity))
        .sum();
    Ok(Cart { lines, total_cents })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub product_id: String,
    pub name: String,
    pub quantity: i32,
    pub unit_cents: i64,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub client_id: Option<String>,
    pub email: String,
    pub status: String,
    /// The items before tax.
    pub subtotal_cents: i64,
    pub tax_cents: i64,
    pub tax_rate_bps: u32,
    /// subtotal + tax: what Stripe charges.
    pub total_cents: i64,
    pub currency: String,
    pub checkout_session_id: Option<String>,
    pub checkout_url: String,
    pub status_token: String,
    pub created_at: NaiveDateTime,
    pub items: Vec<OrderItem>,
}

/// Turns the cart into an order: re-priced carts are refused (the shopper must see the new
/// prices), every item's stock is reserved, the cart is emptied — all or nothing. Sales tax at
/// `tax_rate_bps` is added to the items' total.
pub fn place(
    conn: &mut DbConnection,
    token: &str,
    client_id: Option<&str>,
    email: &str,
    tax_rate_bps: u32,
    now: NaiveDateTime,
) -> Result<Order, DomainError> {
    write_transaction(conn, |c| {
        let cart = view(c, token, false)?;
        if cart.lines.is_empty() {
            return Err(DomainError::invalid("Your cart is empty."));
        }
        if cart.lines.iter().any(|l| l.repriced_from.is_some()) {
            // The cart page (GetCart with acknowledge_prices) shows the new prices; then retry.
            return Err(DomainError::conflict(
                "Some prices changed since you added them; please check your cart and check out again.",
            ));
        }
        let id = ids::new_id("ord");
        let tax_cents = tax(cart.total_cents, tax_rate_bps);
        let bps = i32::try_from(tax_rate_bps)
            .map_err(|_| DomainError::invalid("The sales-tax rate is out of range."))?;
        diesel::insert_into(orders::table)
            .values((
                orders::id.eq(&id),
                orders::client_id.eq(client_id),
                orders::email.eq(email),
                orders::status.eq("pending_payment"),
                orders::total_cents.eq(cart.total_cents + tax_cents),
                orders::tax_cents.eq(tax_cents),
                orders::tax_rate_bps.eq(bps),
                orders::status_token.eq(ids::new_secret()),
                orders::created_at.eq(now),
                orders::updated_at.eq(now),
            ))
            .execute(c)?;
        let actor = client_id
            .map(|c| format!("client:{c}"))
            .unwrap_or_else(|| "shopper".into());
        for l in &cart.lines {
            inventory::reserve(
                c,
                &l.product_id,
                &l.name,
                i64::from(l.quantity),
                &id,
                &actor,
                now,
            )?;
            diesel::insert_into(order_items::table)
                .values((
                    order_items::order_id.eq(&id),
                    order_items::product_id.eq(&l.product_id),
                    order_items::name.eq(&l.name),
                    order_items::quantity.eq(l.quantity),
                    order_items::unit_cents.eq(l.unit_cents),
                    order_items::amount_cents.eq(l.unit_cents * i64::from(l.quantity)),
                ))
                .execute(c)?;
        }
        if let Some(cart) = cart_id(c, token, false, now)? {
            diesel::delete(cart_items::table.filter(cart_items::cart_id.eq(cart))).execute(c)?;
        }
        kbsync::order_changed(c, &id, "placed", now)?;
        get(c, &id, None)
    })
}

pub fn attach_checkout(
    conn: &mut DbConnection,
    id: &str,
    session: &str,
    url: &str,
    now: NaiveDateTime,
) -> Result<(), DomainError> {
    diesel::update(orders::table.find(id))
        .set((
            orders::checkout_session_id.eq(Some(session)),
            orders::checkout_url.eq(url),
            orders::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    String,
    NaiveDateTime,
    i64,
    i32,
);

macro_rules! order_columns {
    () => {
        (
            orders::id,
            orders::client_id,
            orders::email,
            orders::status,
            orders::total_cents,
            orders::currency,
            orders::checkout_session_id,
            orders::checkout_url,
            orders::status_token,
            orders::created_at,
            orders::tax_cents,
            orders::tax_rate_bps,
        )
    };
}

fn complete(conn: &mut DbConnection, r: Row) -> Result<Order, DomainError> {
    let items = order_items::table
        .filter(order_items::order_id.eq(&r.0))
        .select((
            order_items::product_id,
            order_items::name,
            order_items::quantity,
            order_items::unit_cents,
            order_items::amount_cents,
        ))
        .load::<(String, String, i32, i64, i64)>(conn)?
        .into_iter()
        .map(
            |(product_id, name, quantity, unit_cents, amount_cents)| OrderItem {
                product_id,
                name,
                quantity,
                unit_cents,
                amount_cents,
            },
        )
        .collect();
    Ok(Order {
        id: r.0,
        client_id: r.1,
        email: r.2,
        status: r.3,
        subtotal_cents: r.4 - r.10,
        tax_cents: r.10,
        tax_rate_bps: u32::try_from(r.11).unwrap_or(0),
        total_cents: r.4,
        currency: r.5,
        checkout_session_id: r.6,
        checkout_url: r.7,
        status_token: r.8,
        created_at: r.9,
        items,
    })
}

/// An order; a client (`owner`) sees only their own.
pub fn get(conn: &mut DbConnection, id: &str, owner: Option<&str>) -> Result<Order, DomainError> {
    let not_found = || DomainError::not_found("No such order.");
    if !ids::is_valid("ord", id) {
        return Err(not_found());
    }
    let mut q = orders::table
        .filter(orders::id.eq(id))
        .select(order_columns!())
        .into_boxed();
    if let Some(o) = owner {
        q = q.filter(orders::client_id.eq(o.to_owned()));
    }
    let row = q.first::<Row>(conn).optional()?.ok_or_else(not_found)?;
    complete(conn, row)
}

/// The order behind its no-login status link.
pub fn by_status_token(conn: &mut DbConnection, token: &str) -> Result<Order, DomainError> {
    let not_found = || DomainError::not_found("No such order.");
    if !ids::is_secret_shaped(token) {
        return Err(not_found());
    }
    let row = orders::table
        .filter(orders::status_token.eq(token))
        .select(order_columns!())
        .first::<Row>(conn)
        .optional()?
        .ok_or_else(not_found)?;
    complete(conn, row)
}

/// Paid: the reservation becomes a sale. Again for a paid order: nothing happens.
pub fn mark_paid(
    conn: &mut DbConnection,
    id: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Order, DomainError> {
    write_transaction(conn, |c| {
        let order = get(c, id, None)?;
        match order.status.as_str() {
            "paid" | "fulfilled" => return Ok(order),
            "pending_payment" => {}
            other => {
                // Paid after it expired: Stripe took the money, so the sale stands if stock allows.
                tracing::warn!(order.id = %order.id, status = other, "payment for an order that was {other}");
                for i in &order.items {
                    inventory::reserve(
                        c,
                        &i.product_id,
                        &i.name,
                        i64::from(i.quantity),
                        &order.id,
                        actor,
                        now,
                    )?;
                }
            }
        }
        let n = diesel::update(
            orders::table
                .filter(orders::id.eq(id))
                .filter(orders::status.eq(&order.status)),
        )
        .set((orders::status.eq("paid"), orders::updated_at.eq(now)))
        .execute(c)?;
        if n == 1 {
            kbsync::order_changed(c, id, "paid", now)?;
            for i in &order.items {
                inventory::take(
                    c,
                    &i.product_id,
                    i64::from(i.quantity),
                    &order.id,
                    actor,
                    now,
                )?;
            }
        }
        get(c, id, None)
    })
}

/// The checkout expired or was canceled: the reservation goes back on the shelf.
pub fn release(
    conn: &mut DbConnection,
    id: &str,
    to: &str,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Order, DomainError> {
    write_transaction(conn, |c| {
        let order = get(c, id, None)?;
        if order.status != "pending_payment" {
            return Ok(order);
        }
        let n = diesel::update(
            orders::table
                .filter(orders::id.eq(id))
                .filter(orders::status.eq("pending_payment")),
        )
        .set((orders::status.eq(to), orders::updated_at.eq(now)))
        .execute(c)?;
        if n == 1 {
            kbsync::order_changed(c, id, to, now)?;
            for i in &order.items {
                inventory::release(
                    c,
                    &i.product_id,
                    i64::from(i.quantity),
                    &order.id,
                    actor,
                    now,
                )?;
            }
        }
        get(c, id, None)
    })
}
