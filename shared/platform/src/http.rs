//! actix-web plumbing shared by every service: `/healthz`, `/readyz`, `/metrics`, a span and metrics
//! per request (parented on the incoming `traceparent`), request ids, body limits (413) and friendly
//! HTML error pages instead of bare status codes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use tracing::Instrument;

use crate::app::Readiness;
use crate::config::HttpConfig;
use crate::metrics::Metrics;
use crate::telemetry;

/// What the shared handlers and middleware need; one per service process.
#[derive(Clone)]
pub struct HttpContext {
    pub service: &'static str,
    pub readiness: Readiness,
    pub metrics: Metrics,
}

/// The request id: nginx's `X-Request-Id` when present, else a new one.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Builds the actix server on an already bound listener. `configure` adds the service's own routes.
pub fn server(
    cfg: &HttpConfig,
    listener: std::net::TcpListener,
    ctx: HttpContext,
    configure: Configure,
    grace: Duration,
) -> std::io::Result<actix_web::dev::Server> {
    let limit = cfg.max_body_bytes;
    let server = HttpServer::new(move || {
        let configure = configure.clone();
        App::new()
            .app_data(web::Data::new(ctx.clone()))
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::FormConfig::default().limit(limit))
            .app_data(web::JsonConfig::default().limit(limit))
            .wrap(ErrorHandlers::new().default_handler(friendly_error_page))
            .wrap(from_fn(observe))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(move |c| configure(c))
            .default_service(web::to(not_found))
    })
    .workers(cfg.workers.max(1))
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}

async fn healthz(ctx: web::Data<HttpContext>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "service": ctx.service }))
}

async fn readyz(ctx: web::Data<HttpContext>) -> HttpResponse {
    let (ready, detail) = ctx.readiness.state();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "service": ctx.service,
        "detail": detail,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(ctx: web::Data<HttpContext>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(ctx.metrics.render())
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// Span + metrics + request id around every request. Probes are counted but not traced.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let ctx = req.app_data::<web::Data<HttpContext>>().cloned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| crate::ids::new_id("req"));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    let span = if probe {
        tracing::Span::none()
    } else {
        let span = tracing::info_span!(
            "http.server",
            otel.kind = "server",
            http.method = %method,
            http.target = %req.path(),
            http.route = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
        );
        telemetry::adopt(
            &span,
            telemetry::extract(&telemetry::ActixHeaders(req.headers())),
        );
        span
    };
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".to_owned());
    span.record("http.route", route.as_str());
    // Named after the route pattern (`GET /orders/{id}`), never the raw path, so span names stay few.
    telemetry::rename(&span, format!("{method} {route}"));
    span.record("http.status_code", status.as_u16());
    if !probe {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(
                    http.status_code = status.as_u16(),
                    duration_ms = elapsed_ms,
                    "request failed"
                );
            } else {
                tracing::info!(
                    http.status_code = status.as_u16(),
                    duration_ms = elapsed_ms,
                    "request served"
                );
            }
        });
    }
    if let Some(ctx) = ctx {
        ctx.metrics
            .observe_http(&method, &route, status.as_u16(), started.elapsed());
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}

/// Error responses without a body of their own get a friendly page (JSON and HTML answers pass through).
fn friendly_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let typed = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/json"));
    if typed {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let request_id = res
        .request()
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let (req, old) = res.into_parts();
    let mut page = error_page(status, &request_id);
    if let Some(allow) = old.headers().get(header::ALLOW) {
        page.headers_mut().insert(header::ALLOW, allow.clone());
    }
    let res: ServiceResponse<BoxBody> = ServiceResponse::new(req, page);
    Ok(ErrorHandlerResponse::Response(
        res.map_body(|_, b| EitherBody::right(b)),
    ))
}

/// The HTTP status of a refusal a person can act on — the call's message is written for them and
/// goes on the page — or `None` for an outage, where the page says to try again instead. One rule
/// for every page on both hosts: bad input 400, not signed in 401, not allowed 403, not found 404,
/// not in a state that allows it 409, too often 429.
pub fn refusal_status(code: tonic::Code) -> Option<StatusCode> {
    use tonic::Code;
    Some(match code {
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => return None,
    })
}

/// A failed call as a person sees it: the status and the call's own sentence for a refusal, or
/// 503 and `outage` (what this page says when its service is away).
pub fn failure(s: &tonic::Status, outage: &str) -> (StatusCode, String) {
    match refusal_status(s.code()) {
        Some(status) => (status, s.message().to_owned()),
        None => (StatusCode::SERVICE_UNAVAILABLE, outage.to_owned()),
    }
}

/// The friendly HTML page for an error status; services use it for their own error answers too.
pub fn error_page(status: StatusCode, request_id: &str) -> HttpResponse {
    let (title, text) = match status.as_u16() {
        400 => (
            "That request didn't make sense",
            "Something in the request was malformed. Go back and try again.",
        ),
        401 | 403 => (
            "You can't open this page",
            "This page needs a different sign-in.",
        ),
        404 => (
            "We couldn't find that page",
            "The link may be old or mistyped.",
        ),
        405 => (
            "That action isn't allowed here",
            "This page can't be used that way.",
        ),
        413 => (
            "That's too large",
            "What you sent is bigger than we accept. Try a smaller file or shorter text.",
        ),
        429 => (
            "Slow down a little",
            "Too many requests in a short time. Wait a moment and try again.",
        ),
        503 => (
            "Temporarily unavailable",
            "This part of the shop is taking a break. Please try again in a minute.",
        ),
        s if s >= 500 => (
            "Something went wrong on our side",
            "It's not you. We've logged it; please try again in a minute.",
        ),
        _ => ("That didn't work", "Please go back and try again."),
    };
    let reference = if request_id.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"ref\">Reference: <code>{}</code></p>",
            escape(request_id)
        )
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{code} · {title} · Juice Junkiez</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#111}}\
h1{{font-size:1.6rem}}.code{{color:#7c3aed;font-weight:700}}.ref{{color:#666;font-size:.9rem}}a{{color:#7c3aed}}</style></head>\
<body><p class=\"code\">{code}</p><h1>{title}</h1><p>{text}</p><p><a href=\"/\">Back to the start</a></p>{reference}</body></html>",
        code = status.as_u16(),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// HTML-escapes text for the few pages built without a template engine.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The request id of `req` (set by the middleware), for pages that show a reference.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}
