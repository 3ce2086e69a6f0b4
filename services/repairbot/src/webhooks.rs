//! `POST /webhooks/telnyx/{event}` (public, through nginx). The SMS/voice receptionist arrives with
//! its own issue; until then the route answers 503 with a clear JSON error so Telnyx retries later
//! and nothing is acknowledged without being processed.

use actix_web::{HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/telnyx/{event}", web::post().to(telnyx));
}

async fn telnyx(_body: web::Bytes) -> HttpResponse {
    HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "3600")).json(serde_json::json!({
        "error": "telnyx webhook processing is not enabled on this server yet; the event was not recorded",
        "service": "repairbot",
    }))
}
