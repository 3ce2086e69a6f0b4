"""A local fake of the parts of Stripe's API that localstripe lacks: Products, Prices and Checkout
Sessions with a hosted payment page, plus signed webhooks. Python standard library only.

usage: fake_stripe.py PORT DIR API_KEY WEBHOOK_SECRET

Listens on 127.0.0.1:PORT, prints "listening PORT" once ready and stops cleanly on SIGTERM.
Follows the shapes of Stripe's API reference (https://docs.stripe.com/api):

Requests to /v1/* need `Authorization: Bearer API_KEY` (or HTTP Basic with API_KEY as the user),
else 401. Bodies are form-encoded with Stripe's bracket notation (`metadata[order_id]=…`,
`line_items[0][price]=…`, `expand[]=…`); answers are JSON. Errors are
`{"error": {"type": "invalid_request_error", "message": …, "param": …, "code": …}}` with 400
(bad or unknown parameter), 404 (no such object) or 401; every answer carries a `Request-Id`.

POST /v1/products                 name (required), active, description, metadata[…]
POST /v1/products/{id}            name, active, description, metadata[…] (merged; "" deletes a key)
GET  /v1/products/{id}, GET /v1/products?active=
POST /v1/prices                   product (or product_data[name]), unit_amount, currency (required),
                                  active, nickname, lookup_key, metadata[…]; type is "one_time"
POST /v1/prices/{id}              only active, nickname, lookup_key, metadata (anything else, such as
                                  unit_amount, is 400 "Received unknown parameter", as Stripe)
GET  /v1/prices/{id}, GET /v1/prices?product=&active=&currency=&limit=
POST /v1/checkout/sessions        mode=payment, line_items[i][price] + [quantity] or
                                  line_items[i][price_data][currency|unit_amount|product|
                                  product_data][name]] + [quantity], success_url, cancel_url,
                                  client_reference_id, customer_email, metadata[…],
                                  payment_intent_data[metadata][…], expires_at (30 min to 24 h),
                                  payment_method_types[], locale, submit_type, …
                                  → cs_test_… with url http://127.0.0.1:PORT/pay/{id}
GET  /v1/checkout/sessions/{id}   (expand[]=line_items includes the items)
GET  /v1/checkout/sessions/{id}/line_items, GET /v1/checkout/sessions?status=&payment_intent=
POST /v1/checkout/sessions/{id}/expire    open → expired (+ checkout.session.expired), else 400
GET  /v1/payment_intents/{id}     the PaymentIntent a paid session made (status succeeded)
GET  /v1/events/{id}, GET /v1/events?type=

Every POST honours `Idempotency-Key`: the same key with the same path and parameters gets the
stored answer again (header `Idempotent-Replayed: true`) and nothing is created or sent twice; the
same key with another path or other parameters is 400 `idempotency_error`. As Stripe, only answers
of requests that ran are kept (not 400s from validation, 401s or injected failures).

GET  /pay/{id}    the hosted page: the items, the total, a "Pay" button (form POST to /pay/{id})
                  and a "Cancel" link to cancel_url
POST /pay/{id}    completes the session (status complete, payment_status paid, payment_intent
                  pi_…, customer_details.email), sends checkout.session.completed, and answers
                  303 to success_url with {CHECKOUT_SESSION_ID} replaced; 410 when not open

Events: product.created/updated, price.created/updated, checkout.session.completed/expired,
shaped {"id": "evt_…", "object": "event", "api_version", "created", "data": {"object": {…}},
"livemode": false, "pending_webhooks", "request", "type"}.

POST /_config/webhooks            form url, optional enabled_events[] (or events[]; default all):
                                  every later event is POSTed there as JSON with
                                  `Stripe-Signature: t=…,v1=HMAC-SHA256(WEBHOOK_SECRET, "t.body")`,
                                  in order, from a background thread; each delivery is tried once
GET  /_fake/state                 {"counts": {"products", "prices", "checkout_sessions",
                                  "payment_intents", "events"}, "requests": …, "replays": …,
                                  "deliveries": [{"event", "type", "url", "status"}]}
                                  (status 0 = could not connect)
POST /_fake/fail                  JSON {"status": 429|500|…, "count": N}: the next N authenticated
                                  /v1 calls answer that status (429 as `rate_limit_error`, 5xx as
                                  `api_error`, with `Stripe-Should-Retry: true`) doing nothing
POST /_fake/resend                JSON {"event": "evt_…"}: delivers that event again
DELETE /_config/data              forgets every object, key, event and count (webhooks stay)

Each object is also written to DIR/<kind>/<id>.json whenever it changes.
"""
import base64
import hashlib
import hmac
import html
import json
import os
import queue
import re
import secrets
import signal
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, out, api_key, webhook_secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.makedirs(out, exist_ok=True)
BASE = f"http://127.0.0.1:{port}"
API_VERSION = "2024-06-20"

lock = threading.RLock()


def fresh_state():
    return {
        "objects": {},  # id -> object (products, prices, sessions, payment intents)
        "line_items": {},  # session id -> [item]
        "events": {},  # id -> event (in creation order)
        "idempotency": {},  # key -> (method, path, params, status, body)
        "counts": {"products": 0, "prices": 0, "checkout_sessions": 0,
                   "payment_intents": 0, "events": 0},
        "requests": 0,
        "replays": 0,
        "deliveries": [],
        "fail_status": 0,
        "fail_count": 0,
    }


state = fresh_state()
webhooks = []  # {"id", "url", "events": None | [types]}
deliveries = queue.Queue()

ALNUM = string.ascii_letters + string.digits


def new_id(prefix, n=24):
    return prefix + "".join(secrets.choice(ALNUM) for _ in range(n))


def now():
    return int(time.time())


class ApiError(Exception):
    def __init__(self, status, message, param=None, code=None, type_=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or error_type(status)

    def body(self):
        e = {"type": self.type, "message": self.message}
        if self.param is not None:
            e["param"] = self.param
        if self.code is not None:
            e["code"] = self.code
        return {"error": e}


def error_type(status):
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "api_error"
    if status == 402:
        return "card_error"
    return "invalid_request_error"


def missing(kind, id_, param="id"):
    return ApiError(404 if param == "id" else 400, f"No such {kind}: '{id_}'", param,
                    "resource_missing")


# ---- Stripe's form encoding -------------------------------------------------------------------

KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_form(raw):
    """`a[b][0][c]=x&d[]=y` → {"a": {"b": [{"c": "x"}]}, "d": ["y"]}, as Stripe reads it."""
    root = {}
    for key, value in urllib.parse.parse_qsl(raw, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head] + KEY_PART.findall(key[len(head):])
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # `x[]`: append
                if not isinstance(node, list):
                    raise ApiError(400, f"Invalid array: {key}", key)
                if last:
                    node.append(value)
                    break
                node.append({})
                node = node[-1]
                continue
            if not isinstance(node, dict):
                raise ApiError(400, f"Invalid parameter: {key}", key)
            nxt = parts[i + 1] if not last else None
            if last:
                node[part] = value
            else:
                want = list if nxt == "" else dict
                if not isinstance(node.get(part), (list, dict)):
                    node[part] = want()
                node = node[part]
    return listify(root)


def listify(v):
    if isinstance(v, dict):
        v = {k: listify(x) for k, x in v.items()}
        if v and all(k.isdigit() for k in v):
            return [v[k] for k in sorted(v, key=int)]
        return v
    if isinstance(v, list):
        return [listify(x) for x in v]
    return v


def take_int(params, name, param=None, minimum=None):
    if name not in params:
        return None
    raw = params.pop(name)
    p = param or name
    if not isinstance(raw, str) or not re.fullmatch(r"-?[0-9]+", raw):
        raise ApiError(400, f"Invalid integer: {raw}", p)
    v = int(raw)
    if minimum is not None and v < minimum:
        raise ApiError(400, f"This value must be greater than or equal to {minimum}.", p)
    return v


def take_bool(params, name, param=None):
    if name not in params:
        return None
    raw = params.pop(name)
    if raw not in ("true", "false"):
        raise ApiError(400, f"Invalid boolean: {raw}", param or name)
    return raw == "true"


def take_str(params, name, param=None, required=False, max_len=5000):
    p = param or name
    if name not in params:
        if required:
            raise ApiError(400, f"Missing required param: {p}.", p, "parameter_missing")
        return None
    raw = params.pop(name)
    if not isinstance(raw, str):
        raise ApiError(400, f"Invalid string: {p}", p)
    if required and raw == "":
        raise ApiError(400, f"Missing required param: {p}.", p, "parameter_missing")
    if len(raw) > max_len:
        raise ApiError(400, f"Invalid string: {p} is longer than {max_len} characters.", p)
    return raw


def take_currency(params, name, param=None, required=True):
    c = take_str(params, name, param, required=required)
    if c is None:
        return None
    c = c.lower()
    if not re.fullmatch(r"[a-z]{3}", c):
        raise ApiError(400, f"Invalid currency: {c}.", param or name)
    return c


def take_url(params, name, param=None, required=False):
    u = take_str(params, name, param, required=required, max_len=5000)
    if u is None:
        return None
    if not re.match(r"^https?://[^/\s]+", u):
        raise ApiError(400, "Not a valid URL", param or name, "url_invalid")
    return u


def take_metadata(params, name="metadata", param=None, current=None):
    """Stripe's metadata rules: ≤50 keys, keys ≤40 chars, values ≤500 chars; on update keys
    merge, "" deletes a key and `metadata=` (empty) clears all."""
    p = param or name
    base = dict(current or {})
    if name not in params:
        return base
    raw = params.pop(name)
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid object", p)
    for k, v in raw.items():
        if not isinstance(v, str):
            raise ApiError(400, f"Invalid string: {p}[{k}]", f"{p}[{k}]")
        if len(k) > 40:
            raise ApiError(400, f"Metadata keys can have up to 40 characters: {k}", f"{p}[{k}]")
        if len(v) > 500:
            raise ApiError(400, "Metadata values can have up to 500 characters, but you passed "
                           f"in a value that is {len(v)} characters.", f"{p}[{k}]")
        if v == "":
            base.pop(k, None)
        else:
            base[k] = v
    if len(base) > 50:
        raise ApiError(400, "You can have up to 50 metadata keys", p)
    return base


def reject_unknown(params, prefix=None):
    for k in params:
        name = f"{prefix}[{k}]" if prefix else k
        raise ApiError(400, f"Received unknown parameter: {name}", name)


def take_expand(params):
    e = params.pop("expand", None)
    if e is None:
        return []
    return e if isinstance(e, list) else [e]


# ---- storage and events ------------------------------------------------------------------------

KIND_DIRS = {"product": "products", "price": "prices", "checkout.session": "checkout_sessions",
             "payment_intent": "payment_intents", "event": "events"}


def save(obj):
    """Stores (or re-stores) an object in memory and as DIR/<kind>/<id>.json."""
    with lock:
        state["objects"][obj["id"]] = obj
    write_file(obj)


def write_file(obj):
    d = os.path.join(out, KIND_DIRS.get(obj["object"], "other"))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{obj['id']}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, os.path.join(d, f"{obj['id']}.json"))


def created(obj):
    with lock:
        state["counts"][KIND_DIRS[obj["object"]]] += 1
    save(obj)
    return obj


def get(kind, id_, param="id", label=None):
    with lock:
        obj = state["objects"].get(id_)
    if obj is None or obj["object"] != kind:
        raise missing(label or kind.split(".")[-1], id_, param)
    return obj


def emit(type_, obj):
    """Creates an event for `obj` (a snapshot) and queues it for every matching webhook."""
    event = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "data": {"object": json.loads(json.dumps(obj))},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
    with lock:
        targets = [w for w in webhooks if w["events"] is None or type_ in w["events"]
                   or "*" in w["events"]]
        event["pending_webhooks"] = len(targets)
        state["events"][event["id"]] = event
        state["counts"]["events"] += 1
    write_file(event)
    for w in targets:
        deliveries.put((event, w["url"]))
    return event


def sign(payload, t):
    mac = hmac.new(webhook_secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


# Deliveries go straight to the endpoint, never through an HTTP(S)_PROXY from the environment.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def deliver_forever():
    while True:
        event, url = deliveries.get()
        if event is None:
            return
        payload = json.dumps(event, indent=2).encode()
        t = now()
        req = urllib.request.Request(url, data=payload, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, t),
        })
        try:
            with opener.open(req, timeout=10) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError):
            status = 0
        sys.stderr.write(f"fake_stripe: webhook {event['type']} {event['id']} → {url}: "
                         f"{status}\n")
        with lock:
            state["deliveries"].append({"event": event["id"], "type": event["type"],
                                        "url": url, "status": status, "at": t})


# ---- objects -----------------------------------------------------------------------------------

def product_create(params):
    name = take_str(params, "name", required=True)
    active = take_bool(params, "active")
    description = take_str(params, "description")
    metadata = take_metadata(params)
    pid = take_str(params, "id") or new_id("prod_", 14)
    take_expand(params)
    reject_unknown(params)
    with lock:
        if pid in state["objects"]:
            raise ApiError(400, f"Product already exists: {pid}", "id", "resource_already_exists")
    t = now()
    product = {
        "id": pid, "object": "product", "active": True if active is None else active,
        "created": t, "default_price": None, "description": description, "images": [],
        "livemode": False, "marketing_features": [], "metadata": metadata, "name": name,
        "package_dimensions": None, "shippable": None, "statement_descriptor": None,
        "tax_code": None, "type": "service", "unit_label": None, "updated": t, "url": None,
    }
    created(product)
    emit("product.created", product)
    return product


def product_update(pid, params):
    product = dict(get("product", pid))
    if "name" in params:
        product["name"] = take_str(params, "name", required=True)
    active = take_bool(params, "active")
    if active is not None:
        product["active"] = active
    if "description" in params:
        product["description"] = take_str(params, "description") or None
    product["metadata"] = take_metadata(params, current=product["metadata"])
    take_expand(params)
    reject_unknown(params)
    product["updated"] = now()
    save(product)
    emit("product.updated", product)
    return product


def price_create(params):
    product_id = take_str(params, "product")
    product_data = params.pop("product_data", None)
    currency = take_currency(params, "currency")
    unit_amount = take_int(params, "unit_amount", minimum=0)
    active = take_bool(params, "active")
    nickname = take_str(params, "nickname")
    lookup_key = take_str(params, "lookup_key", max_len=200)
    metadata = take_metadata(params)
    take_str(params, "tax_behavior")
    take_expand(params)
    if "recurring" in params:
        raise ApiError(400, "This fake supports only one-time prices (no `recurring`).",
                       "recurring")
    reject_unknown(params)
    if unit_amount is None:
        raise ApiError(400, "Missing required param: unit_amount.", "unit_amount",
                       "parameter_missing")
    if product_id is None and product_data is None:
        raise ApiError(400, "Missing required param: product.", "product", "parameter_missing")
    if product_id is not None and product_data is not None:
        raise ApiError(400, "You may only specify one of these parameters: product, "
                       "product_data.", "product")
    if product_id is not None:
        product = get("product", product_id, "product")
    else:
        if not isinstance(product_data, dict):
            raise ApiError(400, "Invalid object", "product_data")
        product = product_create(dict(product_data))
    price = {
        "id": new_id("price_"), "object": "price",
        "active": True if active is None else active, "billing_scheme": "per_unit",
        "created": now(), "currency": currency, "custom_unit_amount": None, "livemode": False,
        "lookup_key": lookup_key, "metadata": metadata, "nickname": nickname,
        "product": product["id"], "recurring": None, "tax_behavior": "unspecified",
        "tiers_mode": None, "transform_quantity": None, "type": "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
    }
    created(price)
    emit("price.created", price)
    return price


def price_update(pid, params):
    price = dict(get("price", pid))
    active = take_bool(params, "active")
    if active is not None:
        price["active"] = active
    if "nickname" in params:
        price["nickname"] = take_str(params, "nickname") or None
    if "lookup_key" in params:
        price["lookup_key"] = take_str(params, "lookup_key") or None
    price["metadata"] = take_metadata(params, current=price["metadata"])
    take_expand(params)
    reject_unknown(params)  # unit_amount, currency, product: immutable, as on Stripe
    save(price)
    emit("price.updated", price)
    return price


def listing(url, items, params, newest_first=True):
    limit = take_int(params, "limit", minimum=1)
    limit = 10 if limit is None else min(limit, 100)
    after = take_str(params, "starting_after")
    take_expand(params)
    reject_unknown(params)
    if newest_first:
        items = sorted(items, key=lambda o: o["created"], reverse=True)
    if after is not None:
        ids = [o["id"] for o in items]
        if after not in ids:
            raise missing("object", after, "starting_after")
        items = items[ids.index(after) + 1:]
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
            "url": url}


def all_of(kind):
    with lock:
        return [o for o in state["objects"].values() if o["object"] == kind]


def price_list(params):
    items = all_of("price")
    product = take_str(params, "product")
    active = take_bool(params, "active")
    currency = take_currency(params, "currency", required=False)
    type_ = take_str(params, "type")
    items = [p for p in items
             if (product is None or p["product"] == product)
             and (active is None or p["active"] == active)
             and (currency is None or p["currency"] == currency)
             and (type_ is None or p["type"] == type_)]
    return listing("/v1/prices", items, params)


def product_list(params):
    active = take_bool(params, "active")
    items = [p for p in all_of("product") if active is None or p["active"] == active]
    return listing("/v1/products", items, params)


SESSION_IGNORED = ("payment_method_types", "locale", "submit_type", "billing_address_collection",
                   "allow_promotion_codes", "phone_number_collection", "customer_creation",
                   "ui_mode", "custom_text", "consent_collection", "invoice_creation")


def line_item(i, raw):
    p = f"line_items[{i}]"
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid object", p)
    raw = dict(raw)
    quantity = take_int(raw, "quantity", f"{p}[quantity]", minimum=1)
    if quantity is None:
        raise ApiError(400, f"Missing required param: {p}[quantity].", f"{p}[quantity]",
                       "parameter_missing")
    price_id = take_str(raw, "price", f"{p}[price]")
    price_data = raw.pop("price_data", None)
    raw.pop("adjustable_quantity", None)
    reject_unknown(raw, p)
    if (price_id is None) == (price_data is None):
        raise ApiError(400, f"You must specify either `price` or `price_data` in {p}.",
                       f"{p}[price]")
    if price_id is not None:
        price = get("price", price_id, f"{p}[price]")
        if not price["active"]:
            raise ApiError(400, "The price specified is inactive. This field only accepts "
                           "active prices.", f"{p}[price]")
        product = get("product", price["product"], f"{p}[price]")
        if not product["active"]:
            raise ApiError(400, "The price specified is for an inactive product. This field "
                           "only accepts prices of active products.", f"{p}[price]")
        description = product["name"]
    else:
        pd = f"{p}[price_data]"
        if not isinstance(price_data, dict):
            raise ApiError(400, "Invalid object", pd)
        price_data = dict(price_data)
        currency = take_currency(price_data, "currency", f"{pd}[currency]")
        unit_amount = take_int(price_data, "unit_amount", f"{pd}[unit_amount]", minimum=0)
        if unit_amount is None:
            raise ApiError(400, f"Missing required param: {pd}[unit_amount].",
                           f"{pd}[unit_amount]", "parameter_missing")
        product_id = take_str(price_data, "product", f"{pd}[product]")
        product_data = price_data.pop("product_data", None)
        take_str(price_data, "tax_behavior", f"{pd}[tax_behavior]")
        reject_unknown(price_data, pd)
        if (product_id is None) == (product_data is None):
            raise ApiError(400, f"You must specify either `product` or `product_data` in {pd}.",
                           f"{pd}[product_data]")
        if product_id is not None:
            product = get("product", product_id, f"{pd}[product]")
            description = product["name"]
            product_ref = product_id
        else:
            if not isinstance(product_data, dict):
                raise ApiError(400, "Invalid object", f"{pd}[product_data]")
            product_data = dict(product_data)
            description = take_str(product_data, "name", f"{pd}[product_data][name]",
                                   required=True)
            take_str(product_data, "description", f"{pd}[product_data][description]")
            take_metadata(product_data, param=f"{pd}[product_data][metadata]")
            product_data.pop("images", None)
            reject_unknown(product_data, f"{pd}[product_data]")
            # Stripe makes an inline product and price that are not listed; so does the fake.
            product_ref = new_id("prod_", 14)
        price = {
            "id": new_id("price_"), "object": "price", "active": False,
            "billing_scheme": "per_unit", "created": now(), "currency": currency,
            "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {},
            "nickname": None, "product": product_ref, "recurring": None,
            "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
            "type": "one_time", "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
    amount = price["unit_amount"] * quantity
    return {
        "id": new_id("li_"), "object": "item", "amount_discount": 0,
        "amount_subtotal": amount, "amount_tax": 0, "amount_total": amount,
        "currency": price["currency"], "description": description, "price": price,
        "quantity": quantity,
    }


def session_create(params):
    mode = take_str(params, "mode", required=True)
    if mode != "payment":
        raise ApiError(400, f"This fake supports only mode=payment, not {mode}.", "mode")
    raw_items = params.pop("line_items", None)
    success_url = take_url(params, "success_url")
    cancel_url = take_url(params, "cancel_url")
    client_reference_id = take_str(params, "client_reference_id", max_len=200)
    customer_email = take_str(params, "customer_email", max_len=512)
    customer = take_str(params, "customer")
    metadata = take_metadata(params)
    pi_data = params.pop("payment_intent_data", None) or {}
    if not isinstance(pi_data, dict):
        raise ApiError(400, "Invalid object", "payment_intent_data")
    pi_data = dict(pi_data)
    pi_metadata = take_metadata(pi_data, param="payment_intent_data[metadata]")
    pi_description = take_str(pi_data, "description", "payment_intent_data[description]")
    take_str(pi_data, "receipt_email", "payment_intent_data[receipt_email]")
    take_str(pi_data, "statement_descriptor", "payment_intent_data[statement_descriptor]")
    take_str(pi_data, "capture_method", "payment_intent_data[capture_method]")
    reject_unknown(pi_data, "payment_intent_data")
    t = now()
    expires_at = take_int(params, "expires_at")
    expand = take_expand(params)
    for k in SESSION_IGNORED:
        params.pop(k, None)
    reject_unknown(params)
    if customer is not None and customer_email is not None:
        raise ApiError(400, "You may only specify one of these parameters: customer, "
                       "customer_email.", "customer_email")
    if expires_at is None:
        expires_at = t + 24 * 3600
    elif not (t + 30 * 60 - 5 <= expires_at <= t + 24 * 3600 + 5):
        raise ApiError(400, "The `expires_at` timestamp must be between 30 minutes and 24 "
                       "hours from Checkout Session creation.", "expires_at")
    if raw_items is None or raw_items == []:
        raise ApiError(400, "Missing required param: line_items.", "line_items",
                       "parameter_missing")
    if not isinstance(raw_items, list):
        raise ApiError(400, "Invalid array", "line_items")
    if len(raw_items) > 100:
        raise ApiError(400, "You can have at most 100 line items.", "line_items")
    items = [line_item(i, raw) for i, raw in enumerate(raw_items)]
    currencies = {it["currency"] for it in items}
    if len(currencies) > 1:
        raise ApiError(400, "All line items must use the same currency.", "line_items")
    currency = currencies.pop()
    total = sum(it["amount_total"] for it in items)
    if currency == "usd" and total < 50:
        raise ApiError(400, "The Checkout Session's total amount due must add up to at least "
                       "$0.50 usd", "line_items", "amount_too_small")
    sid = new_id("cs_test_", 58)
    session = {
        "id": sid, "object": "checkout.session", "after_expiration": None,
        "allow_promotion_codes": None, "amount_subtotal": total, "amount_total": total,
        "billing_address_collection": None, "cancel_url": cancel_url,
        "client_reference_id": client_reference_id, "created": t, "currency": currency,
        "customer": customer, "customer_creation": "if_required", "customer_details": None,
        "customer_email": customer_email, "expires_at": expires_at, "invoice": None,
        "livemode": False, "locale": None, "metadata": metadata, "mode": mode,
        "payment_intent": None, "payment_link": None,
        "payment_method_collection": "if_required", "payment_method_types": ["card"],
        "payment_status": "unpaid", "recovered_from": None, "status": "open",
        "submit_type": None, "subscription": None, "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": f"{BASE}/pay/{sid}",
        "_payment_intent_data": {"metadata": pi_metadata, "description": pi_description},
    }
    with lock:
        state["line_items"][sid] = items
    created(session)
    return session_view(session, expand)


def session_view(session, expand=()):
    view = {k: v for k, v in session.items() if not k.startswith("_")}
    if "line_items" in expand:
        view["line_items"] = {"object": "list", "data": state["line_items"].get(session["id"], []),
                              "has_more": False,
                              "url": f"/v1/checkout/sessions/{session['id']}/line_items"}
    return view


def session_expire(sid, params):
    take_expand(params)
    reject_unknown(params)
    with lock:
        session = dict(get("checkout.session", sid, label="checkout.session"))
        if session["status"] != "open":
            raise ApiError(400, "Only Checkout Sessions with a status in [\"open\"] can be "
                           f"expired (this one is {session['status']}).", "session")
        session["status"] = "expired"
        session["url"] = None
        save(session)
    view = session_view(session)
    emit("checkout.session.expired", view)
    return view


def session_complete(sid):
    with lock:
        session = dict(get("checkout.session", sid, label="checkout.session"))
        if session["status"] != "open":
            return None
        t = now()
        pi_data = session["_payment_intent_data"]
        pi = {
            "id": new_id("pi_"), "object": "payment_intent",
            "amount": session["amount_total"], "amount_capturable": 0,
            "amount_received": session["amount_total"], "capture_method": "automatic_async",
            "client_secret": None, "confirmation_method": "automatic", "created": t,
            "currency": session["currency"], "customer": session["customer"],
            "description": pi_data["description"], "last_payment_error": None,
            "latest_charge": new_id("ch_"), "livemode": False,
            "metadata": pi_data["metadata"], "payment_method": new_id("pm_"),
            "payment_method_types": ["card"], "receipt_email": session["customer_email"],
            "status": "succeeded",
        }
        pi["client_secret"] = f"{pi['id']}_secret_{new_id('', 24)}"
        created(pi)
        session.update({
            "status": "complete", "payment_status": "paid", "payment_intent": pi["id"],
            "url": None,
            "customer_details": {"address": None, "email": session["customer_email"]
                                 or "customer@example.com", "name": None, "phone": None,
                                 "tax_exempt": "none", "tax_ids": []},
        })
        save(session)
    view = session_view(session)
    emit("checkout.session.completed", view)
    return view


def session_list(params):
    status = take_str(params, "status")
    pi = take_str(params, "payment_intent")
    items = [session_view(s) for s in all_of("checkout.session")
             if (status is None or s["status"] == status)
             and (pi is None or s["payment_intent"] == pi)]
    return listing("/v1/checkout/sessions", items, params)


def event_list(params):
    type_ = take_str(params, "type")
    with lock:
        items = [e for e in state["events"].values() if type_ is None or e["type"] == type_]
    return listing("/v1/events", items, params)


# ---- HTTP --------------------------------------------------------------------------------------

def money(amount, currency):
    return f"{amount / 100:.2f} {currency.upper()}"


def pay_page(session):
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(it['description'])}</td><td>× {it['quantity']}</td>"
        f"<td>{e(money(it['amount_total'], it['currency']))}</td></tr>"
        for it in state["line_items"].get(session["id"], []))
    cancel = (f'<p><a id="cancel" href="{e(session["cancel_url"])}">Cancel</a></p>'
              if session["cancel_url"] else "")
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Pay — fake Stripe Checkout"
        f"</title></head><body><h1>Fake Stripe Checkout</h1><table>{rows}</table>"
        f"<p>Total: <strong id=\"total\">{e(money(session['amount_total'], session['currency']))}"
        f"</strong></p><form method=\"post\" action=\"/pay/{e(session['id'])}\">"
        "<button id=\"pay\" type=\"submit\">Pay</button></form>"
        f"{cancel}</body></html>")


ROUTES = [
    ("POST", r"/v1/products", lambda m, p: product_create(p)),
    ("GET", r"/v1/products", lambda m, p: product_list(p)),
    ("POST", r"/v1/products/([^/]+)", lambda m, p: product_update(m[1], p)),
    ("GET", r"/v1/products/([^/]+)", lambda m, p: read(p, get("product", m[1]))),
    ("POST", r"/v1/prices", lambda m, p: price_create(p)),
    ("GET", r"/v1/prices", lambda m, p: price_list(p)),
    ("POST", r"/v1/prices/([^/]+)", lambda m, p: price_update(m[1], p)),
    ("GET", r"/v1/prices/([^/]+)", lambda m, p: read(p, get("price", m[1]))),
    ("POST", r"/v1/checkout/sessions", lambda m, p: session_create(p)),
    ("GET", r"/v1/checkout/sessions", lambda m, p: session_list(p)),
    ("POST", r"/v1/checkout/sessions/([^/]+)/expire", lambda m, p: session_expire(m[1], p)),
    ("GET", r"/v1/checkout/sessions/([^/]+)/line_items",
     lambda m, p: listing(f"/v1/checkout/sessions/{m[1]}/line_items",
                          line_items_of(m[1]), p, newest_first=False)),
    ("GET", r"/v1/checkout/sessions/([^/]+)", lambda m, p: session_read(m[1], p)),
    ("GET", r"/v1/payment_intents/([^/]+)", lambda m, p: read(p, get("payment_intent", m[1]))),
    ("GET", r"/v1/events", lambda m, p: event_list(p)),
    ("GET", r"/v1/events/([^/]+)", lambda m, p: read(p, event_of(m[1]))),
]


def read(params, obj):
    take_expand(params)
    reject_unknown(params)
    return obj


def session_read(sid, params):
    expand = take_expand(params)
    reject_unknown(params)
    return session_view(get("checkout.session", sid, label="checkout.session"), expand)


def line_items_of(sid):
    get("checkout.session", sid, label="checkout.session")
    return list(state["line_items"].get(sid, []))


def event_of(eid):
    with lock:
        e = state["events"].get(eid)
    if e is None:
        raise missing("event", eid)
    return e


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_stripe: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else (json.dumps(body, indent=2) + "\n").encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        raw = self.body()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            if path.startswith("/v1/"):
                return self.api(method, path, url.query, raw)
            if path.startswith("/pay/"):
                return self.pay(method, path[len("/pay/"):])
            return self.control(method, path, raw)
        except ApiError as e:
            self.send(e.status, e.body())

    # -- test controls
    def control(self, method, path, raw):
        if (method, path) == ("GET", "/_fake/state"):
            with lock:
                body = {"counts": dict(state["counts"]), "requests": state["requests"],
                        "replays": state["replays"], "deliveries": list(state["deliveries"]),
                        "webhooks": list(webhooks)}
            return self.send(200, body)
        if (method, path) == ("POST", "/_fake/fail"):
            body = json.loads(raw or b"{}")
            with lock:
                state["fail_status"] = int(body.get("status", 500))
                state["fail_count"] = int(body.get("count", 1))
            return self.send(200, {"ok": True})
        if (method, path) == ("POST", "/_fake/resend"):
            body = json.loads(raw or b"{}")
            event = event_of(body.get("event", ""))
            with lock:
                targets = [w for w in webhooks if w["events"] is None
                           or event["type"] in w["events"] or "*" in w["events"]]
            for w in targets:
                deliveries.put((event, w["url"]))
            return self.send(200, {"ok": True, "webhooks": len(targets)})
        if (method, path) == ("POST", "/_config/webhooks"):
            params = parse_form(raw.decode())
            target = params.get("url")
            if not isinstance(target, str) or not re.match(r"^https?://", target):
                raise ApiError(400, "Missing or invalid `url`.", "url")
            events = params.get("enabled_events", params.get("events"))
            if isinstance(events, str):
                events = [events]
            hook = {"id": new_id("we_"), "object": "webhook_endpoint", "url": target,
                    "events": events, "enabled_events": events or ["*"], "status": "enabled",
                    "livemode": False, "created": now()}
            with lock:
                webhooks.append(hook)
            return self.send(200, hook)
        if (method, path) == ("DELETE", "/_config/data"):
            with lock:
                state.clear()
                state.update(fresh_state())
            return self.send(200, {"ok": True})
        raise ApiError(404, f"Unrecognized request URL ({method}: {path}).")

    # -- the API
    def api(self, method, path, query, raw):
        headers = {"Request-Id": new_id("req_", 14), "Stripe-Version": API_VERSION}
        try:
            self.api_call(method, path, query, raw, headers)
        except ApiError as e:
            self.send(e.status, e.body(), headers=headers)

    def api_call(self, method, path, query, raw, headers):
        auth = self.headers.get("Authorization", "")
        key = None
        if auth.startswith("Bearer "):
            key = auth[len("Bearer "):].strip()
        elif auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[len("Basic "):]).decode().split(":", 1)[0]
            except ValueError:
                key = None
        if not key:
            return self.send(401, ApiError(
                401, "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').").body(), headers=headers)
        if not hmac.compare_digest(key.encode(), api_key.encode()):
            return self.send(401, ApiError(
                401, f"Invalid API Key provided: {key[:8]}{'*' * max(0, len(key) - 12)}"
                f"{key[-4:]}", code="api_key_invalid").body(), headers=headers)
        with lock:
            state["requests"] += 1
            if state["fail_count"] > 0:
                state["fail_count"] -= 1
                fail = state["fail_status"]
            else:
                fail = 0
        if fail:
            msg = ("Too many requests hit the API too quickly. We recommend an exponential "
                   "backoff of your requests." if fail == 429 else
                   "An unknown error occurred (injected by fake_stripe).")
            err = ApiError(fail, msg, code="rate_limit" if fail == 429 else None)
            return self.send(fail, err.body(), headers=dict(headers, **{
                "Stripe-Should-Retry": "true"}))

        for m, pattern, fn in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and m == method:
                break
        else:
            return self.send(404, ApiError(
                404, f"Unrecognized request URL ({method}: {path}).").body(), headers=headers)

        if method == "GET":
            params = parse_form(query)
            return self.send(200, fn(match, params), headers=headers)

        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if raw and ctype != "application/x-www-form-urlencoded":
            raise ApiError(400, "Invalid request: request parameters should be form-encoded "
                           f"(Content-Type application/x-www-form-urlencoded, not {ctype!r}).")
        text = raw.decode("utf-8", "replace")
        idem = self.headers.get("Idempotency-Key")
        canonical = json.dumps(parse_form(text), sort_keys=True)
        # One POST at a time: check, run and remember under the lock, so two racing retries with
        # one key still create one object.
        with lock:
            if idem is not None:
                if len(idem) > 255:
                    return self.send(400, ApiError(400, "Idempotency-Key is too long.").body(),
                                     headers=headers)
                seen = state["idempotency"].get(idem)
                if seen is not None:
                    s_method, s_path, s_params, s_status, s_body = seen
                    if (s_method, s_path, s_params) != (method, path, canonical):
                        return self.send(400, ApiError(
                            400, "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{idem}' if you meant to execute a different request.",
                            type_="idempotency_error").body(), headers=headers)
                    state["replays"] += 1
                    return self.send(s_status, s_body, headers=dict(
                        headers, **{"Idempotent-Replayed": "true", "Idempotency-Key": idem}))
            result = fn(match, parse_form(text))
            if idem is not None:
                state["idempotency"][idem] = (method, path, canonical, 200, result)
                headers["Idempotency-Key"] = idem
        self.send(200, result, headers=headers)

    # -- the hosted payment page
    def pay(self, method, sid):
        with lock:
            session = state["objects"].get(sid)
        if session is None or session["object"] != "checkout.session":
            return self.send(404, "<!doctype html><p>No such Checkout Session.</p>",
                             "text/html; charset=utf-8")
        if method == "GET":
            if session["status"] != "open":
                return self.send(410, "<!doctype html><p>This Checkout Session is no longer "
                                 f"available ({html.escape(session['status'])}).</p>",
                                 "text/html; charset=utf-8")
            return self.send(200, pay_page(session), "text/html; charset=utf-8")
        if method != "POST":
            raise ApiError(405, "Method not allowed.")
        done = session_complete(sid)
        if done is None:
            return self.send(410, "<!doctype html><p>This Checkout Session is no longer "
                             f"available ({html.escape(session['status'])}).</p>",
                             "text/html; charset=utf-8")
        target = done["success_url"]
        if target is None:
            return self.send(200, "<!doctype html><p>Payment complete.</p>",
                             "text/html; charset=utf-8")
        target = target.replace("{CHECKOUT_SESSION_ID}", sid)
        self.send(303, b"", "text/plain", headers={"Location": target})


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
sender = threading.Thread(target=deliver_forever, daemon=True)
sender.start()
print(f"listening {port}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
server.shutdown()
server.server_close()
deliveries.put((None, None))
sender.join(timeout=2)
