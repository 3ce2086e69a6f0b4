//! `POST /webhooks/stripe` (public, through nginx). Stripe event handling arrives with the billing
//! issue; until then the route answers 503 with a clear JSON error so Stripe retries later and no
//! event is acknowledged without being processed.

use actix_web::{HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/stripe", web::post().to(stripe));
}

async fn stripe(_body: web::Bytes) -> HttpResponse {
    HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "3600")).json(serde_json::json!({
        "error": "stripe webhook processing is not enabled on this server yet; the event was not recorded",
        "service": "billing",
    }))
}
