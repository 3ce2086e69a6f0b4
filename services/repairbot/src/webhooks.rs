//! `POST /webhooks/telnyx/{event}` (public, through nginx): Telnyx's SMS webhooks. Every delivery
//! is checked first — an Ed25519 signature over `"{telnyx-timestamp}|{raw body}"` with the
//! account's public key (SSM `/omneuro/telnyx/public_key`), the timestamp within 5 minutes — and
//! handled once per Telnyx event id (`telnyx_events`), so a redelivery changes nothing twice.
//!
//! A text of STOP (or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) records the opt-out in garage
//! (`RecordSmsOptOut` as `system:repairbot`) and in repairbot's `sms_opt_outs`: the shop sends
//! that number nothing more. Any other text is stored in `sms_texts`, in the transaction that
//! records the event id, and answered later by the receptionist's worker (`receptionist.rs`,
//! ADR 0023), so the webhook answers at once. Other events are acknowledged and logged.
//!
//! Answers: 200 handled (or a duplicate, or an event we don't act on); 400 a delivery that fails
//! the checks (forged, stale, not JSON) — never acted on; 503 when the public key isn't set or
//! garage can't be reached — nothing is recorded, so Telnyx's retry is handled in full later.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::prelude::*;
use omneuro_platform::auth::{self, Actor};
use omneuro_platform::db::{Database, DbError, now_utc};
use omneuro_platform::error::DomainError;
use omneuro_platform::grpc::{self, TracedChannel};
use omneuro_proto::garage::v1 as gpb;
use omneuro_proto::garage::v1::garage_service_client::GarageServiceClient;
use serde_json::json;

use crate::receptionist;
use crate::schema::telnyx_events;

/// How far a delivery's timestamp may be from now (Telnyx's own tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// Words that opt a number out of texts (the carriers' standard list).
const STOP_WORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];

/// What the webhook needs: the key to check deliveries with (none: refuse to act), garage for
/// opt-outs, the database for the events already handled.
pub struct Telnyx {
    pub public_key: Option<Vec<u8>>,
    pub garage: GarageServiceClient<TracedChannel>,
    pub db: Arc<Database>,
}

/// Why a delivery was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Headers missing or not base64/numbers.
    Malformed(&'static str),
    /// Outside the tolerance window.
    Stale,
    /// The signature doesn't verify with the account's key.
    Forged,
}

/// Checks a delivery: `timestamp` and `signature_b64` are the `telnyx-timestamp` and
/// `telnyx-signature-ed25519` headers, `now` unix seconds.
pub fn verify(
    public_key: &[u8],
    timestamp: &str,
    signature_b64: &str,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refused::Malformed("telnyx-timestamp is not unix seconds"))?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(Refused::Stale);
    }
    let signature = B64
        .decode(signature_b64.trim())
        .map_err(|_| Refused::Malformed("telnyx-signature-ed25519 is not base64"))?;
    let mut signed = Vec::with_capacity(body.len() + 12);
    signed.extend_from_slice(ts.to_string().as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed, &signature)
        .map_err(|_| Refused::Forged)
}

/// The account's public key as Telnyx shows it (base64 of 32 bytes).
pub fn parse_public_key(b64: &str) -> Option<Vec<u8>> {
    B64.decode(b64.trim()).ok().filter(|k| k.len() == 32)
}

/// Whether a text asks to stop all texts.
pub fn is_stop(text: &str) -> bool {
    let word = text
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_uppercase();
    STOP_WORDS.contains(&word.as_str())
}

pub fn routes(cfg: &mut web::ServiceConfig, telnyx: web::Data<Telnyx>) {
    cfg.app_data(telnyx)
        .route("/webhooks/telnyx/{event}", web::post().to(webhook));
}

fn answer(status: actix_web::http::StatusCode, what: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "result": what, "service": crate::NAME }))
}

async fn webhook(req: HttpRequest, body: web::Bytes, t: web::Data<Telnyx>) -> HttpResponse {
    use actix_web::http::StatusCode as S;
    let Some(key) = &t.public_key else {
        tracing::error!("telnyx webhook refused: /omneuro/telnyx/public_key is not set");
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "600"))
            .json(json!({
                "error": "the Telnyx public key is not configured on this server; the event was not recorded",
                "service": crate::NAME,
            }));
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = verify(
        key,
        &header("telnyx-timestamp"),
        &header("telnyx-signature-ed25519"),
        &body,
        now,
    ) {
        tracing::warn!(reason = ?why, client.ip = %omneuro_platform::web::client_ip(&req), "telnyx webhook refused");
        return answer(
            S::BAD_REQUEST,
            "refused: the signature or timestamp did not check out",
        );
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return answer(S::BAD_REQUEST, "refused: the body is not JSON");
    };
    let data = &event["data"];
    let (Some(id), Some(kind)) = (data["id"].as_str(), data["event_type"].as_str()) else {
        return answer(S::BAD_REQUEST, "refused: no data.id or data.event_type");
    };
    let (id, kind) = (id.chars().take(100).collect::<String>(), kind.to_owned());
    let payload = &data["payload"];
    let from = payload["from"]["phone_number"]
        .as_str()
        .unwrap_or("")
        .trim()
        .chars()
        .take(32)
        .collect::<String>();
    let text = payload["text"].as_str().unwrap_or("").to_owned();
    // What is stored with the event id, in one transaction: a text to answer (the receptionist's
    // worker answers it; the model may take a minute and Telnyx retries slow webhooks), a STOP
    // kept for the number, or just the id.
    let inbound = kind == "message.received";
    let stop = inbound && is_stop(&text);
    let keyword = receptionist::keyword(&text);
    let action = match () {
        _ if !inbound => Store::Nothing,
        _ if from.is_empty() => Store::Nothing,
        _ if stop => Store::OptOut,
        _ if text.trim().is_empty() => Store::Nothing,
        _ => Store::Text,
    };
    let claimed = {
        let (id, kind, from, text) = (id.clone(), kind.clone(), from.clone(), text.clone());
        t.db.run(move |c| {
            let claimed = c.transaction::<_, Claim, _>(|c| {
                let now = now_utc();
                let inserted = diesel::insert_into(telnyx_events::table)
                    .values((
                        telnyx_events::id.eq(&id),
                        telnyx_events::event_type.eq(&kind),
                        telnyx_events::received_at.eq(now),
                    ))
                    .execute(c);
                match inserted {
                    Ok(_) => {}
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => return Err(Claim::Duplicate),
                    Err(e) => return Err(Claim::Failed(DbError::from(e))),
                }
                match action {
                    Store::Nothing => {}
                    Store::OptOut => receptionist::record_opt_out(c, &from, now)?,
                    Store::Text => {
                        if keyword == Some(receptionist::Keyword::Start) {
                            receptionist::clear_opt_out(c, &from)?;
                        }
                        receptionist::record_inbound(c, &id, &from, &text, now)?;
                    }
                }
                Ok(())
            });
            match claimed {
                Ok(()) => Ok(true),
                Err(Claim::Duplicate) => Ok(false),
                Err(Claim::Failed(e)) => Err(DomainError::from(e)),
            }
        })
        .await
    };
    match claimed {
        Ok(true) => {}
        Ok(false) => return answer(S::OK, "duplicate: already handled"),
        Err(e) => {
            tracing::error!(error = %e, "telnyx event not recorded; Telnyx will retry");
            return answer(S::SERVICE_UNAVAILABLE, "not recorded; retry later");
        }
    }
    let handled = match action {
        Store::OptOut => opt_out(&t, &from).await,
        Store::Text => Ok("received: the receptionist answers by text"),
        Store::Nothing if !inbound => Ok("ignored: not an inbound message"),
        Store::Nothing if from.is_empty() => Ok("ignored: no sender number"),
        Store::Nothing => Ok("ignored: no text"),
    };
    match handled {
        Ok(what) => {
            tracing::info!(telnyx.event = %kind, telnyx.id = %id, result = what, "telnyx event handled");
            answer(S::OK, what)
        }
        Err(e) => {
            let release_id = id.clone();
            let _ =
                t.db.run(move |c| {
                    diesel::delete(telnyx_events::table.find(&release_id)).execute(c)?;
                    Ok::<_, DomainError>(())
                })
                .await;
            tracing::error!(error = %e, telnyx.event = %kind, "telnyx event not handled; Telnyx will retry");
            answer(S::SERVICE_UNAVAILABLE, "not handled; retry later")
        }
    }
}

/// What a delivery stores beside its event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Nothing,
    OptOut,
    Text,
}

/// Why an event id was not claimed.
enum Claim {
    Duplicate,
    Failed(DbError),
}

impl From<DbError> for Claim {
    fn from(e: DbError) -> Self {
        Claim::Failed(e)
    }
}

impl From<diesel::result::Error> for Claim {
    fn from(e: diesel::result::Error) -> Self {
        Claim::Failed(DbError::from(e))
    }
}

/// A texted STOP: garage turns SMS off for every client with the number (the number is also
/// kept in `sms_opt_outs`, for numbers that are no client's).
async fn opt_out(t: &Telnyx, from: &str) -> Result<&'static str, tonic::Status> {
    let mut g = t.garage.clone();
    grpc::call(
        "GarageService/RecordSmsOptOut",
        g.record_sms_opt_out(auth::request(
            &Actor::System("repairbot".into()),
            gpb::RecordSmsOptOutRequest {
                phone: from.to_owned(),
            },
        )),
    )
    .await?;
    Ok("opted out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    fn signed(kp: &Ed25519KeyPair, ts: i64, body: &str) -> String {
        B64.encode(kp.sign(format!("{ts}|{body}").as_bytes()).as_ref())
    }

    #[test]
    fn deliveries_are_checked_like_telnyx_signs_them() {
        let kp = Ed25519KeyPair::generate().unwrap();
        let key = kp.public_key().as_ref().to_vec();
        let body = r#"{"data":{"id":"e1"}}"#;
        let now = 1_800_000_000;
        let sig = signed(&kp, now, body);
        assert_eq!(
            verify(&key, &now.to_string(), &sig, body.as_bytes(), now),
            Ok(())
        );
        assert_eq!(
            verify(
                &key,
                &now.to_string(),
                &sig,
                b"{\"data\":{\"id\":\"e2\"}}",
                now
            ),
            Err(Refused::Forged)
        );
        let old = now - 301;
        let stale = signed(&kp, old, body);
        assert_eq!(
            verify(&key, &old.to_string(), &stale, body.as_bytes(), now),
            Err(Refused::Stale)
        );
        assert!(matches!(
            verify(&key, "soon", &sig, body.as_bytes(), now),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            verify(&key, &now.to_string(), "%%%", body.as_bytes(), now),
            Err(Refused::Malformed(_))
        ));
        let other = Ed25519KeyPair::generate().unwrap();
        assert_eq!(
            verify(
                other.public_key().as_ref(),
                &now.to_string(),
                &sig,
                body.as_bytes(),
                now
            ),
            Err(Refused::Forged)
        );
        assert_eq!(parse_public_key(&B64.encode(&key)), Some(key));
        assert_eq!(parse_public_key("c2hvcnQ="), None);
    }

    #[test]
    fn stop_words() {
        for yes in ["STOP", " stop ", "Stop.", "unsubscribe", "QUIT!", "StopAll"] {
            assert!(is_stop(yes), "{yes}");
        }
        for no in ["stop texting me at work please", "don't stop", "", "STOPP"] {
            assert!(!is_stop(no), "{no}");
        }
    }
}
