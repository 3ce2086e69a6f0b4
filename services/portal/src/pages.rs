//! Portal routes — one table, [`ROUTES`], that says for every route who may use it — and the
//! helpers every page uses. The [`crate::staff::Staff`] guard enforces the table; the
//! authorization-matrix test walks it, so a route cannot be added without saying who may use it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Route, web};
use askama::Template;
use omneuro_platform::auth::Permission;
use omneuro_platform::db::now_utc;
use omneuro_platform::error::DomainError;
use omneuro_platform::http::{error_page, refusal_status, request_id};

use crate::accounts::{self, Audit};
use crate::staff::Staff;
use crate::{
    Portal, assistant, bench, board, catalog, clients, conversations, fees, invoices, kb, photos,
    reports, roster, settings, signin, stock, team, today, walkin,
};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-in steps, invite links); the handler itself checks any half-open session.
    Public,
    /// Any signed-in staff member (their own account, sign-out).
    SignedIn,
    /// Signed-in staff whose role allows this.
    Can(Permission),
}

/// One route: method, pattern, who may use it, what a POST does (for the audit log), handler.
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// For the audit log: what a staff member did with this POST. Empty for public routes and
    /// for account changes, which [`crate::accounts`] records itself (with more detail).
    pub action: &'static str,
    route: fn() -> Route,
}

use Access::{Can, Public, SignedIn};
use Permission as P;

macro_rules! r {
    ($m:literal, $path:literal, $access:expr, $action:literal, $route:expr) => {
        RouteSpec {
            method: $m,
            path: $path,
            access: $access,
            action: $action,
            route: || $route,
        }
    };
}

/// Every portal route. Add a route here (and to the matrix in `tests/tests/portal_access.rs`).
pub static ROUTES: &[RouteSpec] = &[
    r!("GET", "/", Public, "", web::get().to(home)),
    r!("GET", "/signin", Public, "", web::get().to(signin::form)),
    r!(
        "POST",
        "/signin",
        Public,
        "",
        web::post().to(signin::submit)
    ),
    r!(
        "GET",
        "/signin/code",
        Public,
        "",
        web::get().to(signin::code_form)
    ),
    r!(
        "POST",
        "/signin/code",
        Public,
        "",
        web::post().to(signin::code_submit)
    ),
    r!(
        "GET",
        "/signin/enroll",
        Public,
        "",
        web::get().to(signin::enroll_form)
    ),
    r!(
        "POST",
        "/signin/enroll",
        Public,
        "",
        web::post().to(signin::enroll_submit)
    ),
    r!(
        "GET",
        "/invite/{token}",
        Public,
        "",
        web::get().to(team::invite_form)
    ),
    r!(
        "POST",
        "/invite/{token}",
        Public,
        "",
        web::post().to(team::invite_accept)
    ),
    r!(
        "POST",
        "/signout",
        SignedIn,
        "signed out",
        web::post().to(signin::signout)
    ),
    r!(
        "GET",
        "/account",
        SignedIn,
        "",
        web::get().to(team::account)
    ),
    r!(
        "POST",
        "/account/password",
        SignedIn,
        "",
        web::post().to(team::change_password)
    ),
    r!(
        "POST",
        "/account/totp",
        SignedIn,
        "started setting up the authenticator app",
        web::post().to(team::totp_begin)
    ),
    r!(
        "POST",
        "/account/totp/confirm",
        SignedIn,
        "",
        web::post().to(team::totp_confirm)
    ),
    r!(
        "POST",
        "/account/totp/off",
        SignedIn,
        "",
        web::post().to(team::totp_off)
    ),
    r!(
        "POST",
        "/account/recovery-codes",
        SignedIn,
        "",
        web::post().to(team::recovery_codes)
    ),
    r!(
        "POST",
        "/account/signout-everywhere",
        SignedIn,
        "signed out everywhere",
        web::post().to(team::signout_everywhere)
    ),
    r!(
        "GET",
        "/today",
        Can(P::ViewJobs),
        "",
        web::get().to(today::today)
    ),
    r!(
        "GET",
        "/jobs",
        Can(P::ViewJobs),
        "",
        web::get().to(board::board)
    ),
    r!(
        "GET",
        "/jobs/{id}",
        Can(P::ViewJobs),
        "",
        web::get().to(board::job)
    ),
    r!(
        "POST",
        "/jobs/{id}/move",
        Can(P::MoveJobs),
        "moved a job",
        web::post().to(board::move_job)
    ),
    r!(
        "POST",
        "/jobs/{id}/notes",
        Can(P::WorkBench),
        "added a bench note",
        web::post().to(bench::add_note)
    ),
    r!(
        "POST",
        "/jobs/{id}/labor",
        Can(P::WorkBench),
        "added labor",
        web::post().to(bench::add_labor)
    ),
    r!(
        "POST",
        "/jobs/{id}/parts",
        Can(P::WorkBench),
        "added a part",
        web::post().to(bench::add_part)
    ),
    r!(
        "POST",
        "/jobs/{id}/lines/{line_id}/remove",
        Can(P::WorkBench),
        "removed a bench line",
        web::post().to(bench::remove_line)
    ),
    r!(
        "POST",
        "/jobs/{id}/photos",
        Can(P::WorkBench),
        "added a photo",
        web::post().to(photos::upload)
    ),
    r!(
        "GET",
        "/jobs/{id}/photos/{photo_id}",
        Can(P::ViewJobs),
        "",
        web::get().to(photos::show)
    ),
    r!(
        "POST",
        "/jobs/{id}/photos/{photo_id}/remove",
        Can(P::WorkBench),
        "removed a photo",
        web::post().to(photos::remove)
    ),
    r!(
        "POST",
        "/jobs/{id}/assign",
        Can(P::AssignTech),
        "assigned a tech",
        web::post().to(bench::assign)
    ),
    r!(
        "POST",
        "/jobs/{id}/estimate",
        Can(P::SendEstimate),
        "sent an estimate",
        web::post().to(bench::send_estimate)
    ),
    r!(
        "GET",
        "/clients",
        Can(P::ViewClients),
        "",
        web::get().to(clients::search)
    ),
    r!(
        "GET",
        "/conversations",
        Can(P::ViewClients),
        "",
        web::get().to(conversations::list)
    ),
    r!(
        "GET",
        "/conversations/{id}",
        Can(P::ViewClients),
        "",
        web::get().to(conversations::show)
    ),
    r!("GET", "/kb", Can(P::ViewJobs), "", web::get().to(kb::list)),
    // Before `/kb/{doc_id}`, which would take "upload" for an id.
    r!(
        "GET",
        "/kb/upload",
        Can(P::EditKnowledgeBase),
        "",
        web::get().to(kb::upload_form)
    ),
    r!(
        "POST",
        "/kb/upload",
        Can(P::EditKnowledgeBase),
        "added a knowledge-base document",
        web::post().to(kb::upload)
    ),
    r!(
        "GET",
        "/kb/{doc_id}",
        Can(P::ViewJobs),
        "",
        web::get().to(kb::show)
    ),
    r!(
        "POST",
        "/kb/{doc_id}/delete",
        Can(P::EditKnowledgeBase),
        "deleted a knowledge-base document",
        web::post().to(kb::delete)
    ),
    r!(
        "GET",
        "/assistant",
        Can(P::ViewJobs),
        "",
        web::get().to(assistant::show)
    ),
    r!(
        "POST",
        "/assistant",
        Can(P::ViewJobs),
        "asked the assistant",
        web::post().to(assistant::send)
    ),
    r!(
        "POST",
        "/assistant/stream",
        Can(P::ViewJobs),
        "asked the assistant",
        web::post().to(assistant::stream_reply)
    ),
    r!(
        "POST",
        "/assistant/new",
        Can(P::ViewJobs),
        "",
        web::post().to(assistant::start_over)
    ),
    r!(
        "GET",
        "/walkin",
        Can(P::OpenWalkIn),
        "",
        web::get().to(walkin::form)
    ),
    r!(
        "POST",
        "/walkin",
        Can(P::OpenWalkIn),
        "opened a walk-in job",
        web::post().to(walkin::create)
    ),
    r!(
        "GET",
        "/stock",
        Can(P::AdjustStock),
        "",
        web::get().to(stock::show)
    ),
    r!(
        "POST",
        "/stock/{id}",
        Can(P::AdjustStock),
        "adjusted stock",
        web::post().to(stock::adjust)
    ),
    r!(
        "GET",
        "/catalog",
        Can(P::EditCatalog),
        "",
        web::get().to(catalog::show)
    ),
    r!(
        "POST",
        "/catalog",
        Can(P::EditCatalog),
        "added a product",
        web::post().to(catalog::create)
    ),
    r!(
        "GET",
        "/catalog/{id}",
        Can(P::EditCatalog),
        "",
        web::get().to(catalog::product)
    ),
    r!(
        "POST",
        "/catalog/{id}",
        Can(P::EditCatalog),
        "changed a product's price or listing",
        web::post().to(catalog::update)
    ),
    r!(
        "POST",
        "/catalog/{id}/fitment",
        Can(P::EditCatalog),
        "changed what a product fits",
        web::post().to(catalog::fitment)
    ),
    r!(
        "GET",
        "/invoices",
        Can(P::Invoice),
        "",
        web::get().to(invoices::list)
    ),
    r!(
        "GET",
        "/invoices/{id}",
        Can(P::Invoice),
        "",
        web::get().to(invoices::show)
    ),
    r!(
        "POST",
        "/invoices/{id}/void",
        Can(P::Invoice),
        "voided an invoice",
        web::post().to(invoices::void)
    ),
    r!(
        "POST",
        "/invoices/{id}/refund",
        Can(P::Refund),
        "refunded a client",
        web::post().to(invoices::refund)
    ),
    r!(
        "GET",
        "/reports",
        Can(P::ViewReports),
        "",
        web::get().to(reports::show)
    ),
    r!(
        "GET",
        "/settings",
        Can(P::EditSettings),
        "",
        web::get().to(settings::show)
    ),
    r!(
        "POST",
        "/settings/booking",
        Can(P::EditSettings),
        "changed the booking rules",
        web::post().to(settings::save_booking)
    ),
    r!(
        "GET",
        "/settings/services",
        Can(P::EditSettings),
        "",
        web::get().to(fees::show)
    ),
    r!(
        "POST",
        "/settings/services",
        Can(P::EditSettings),
        "changed a service or its price",
        web::post().to(fees::save_service)
    ),
    r!(
        "POST",
        "/settings/tax",
        Can(P::EditSettings),
        "changed the tax rate",
        web::post().to(fees::save_tax)
    ),
    r!(
        "GET",
        "/settings/team",
        Can(P::EditSettings),
        "",
        web::get().to(roster::show)
    ),
    r!(
        "POST",
        "/settings/team/{id}",
        Can(P::EditSettings),
        "",
        web::post().to(roster::save_member)
    ),
    r!(
        "GET",
        "/staff",
        Can(P::ManageStaff),
        "",
        web::get().to(team::staff)
    ),
    r!(
        "POST",
        "/staff/invite",
        Can(P::ManageStaff),
        "",
        web::post().to(team::invite)
    ),
    r!(
        "POST",
        "/staff/invites/withdraw",
        Can(P::ManageStaff),
        "",
        web::post().to(team::withdraw_invite)
    ),
    r!(
        "POST",
        "/staff/{id}",
        Can(P::ManageStaff),
        "",
        web::post().to(team::update_member)
    ),
    r!(
        "GET",
        "/audit",
        Can(P::ManageStaff),
        "",
        web::get().to(team::audit)
    ),
];

/// The access rule for a request's method and matched route pattern; `None` denies.
pub fn access_for(method: &str, pattern: Option<&str>) -> Option<Access> {
    let pattern = pattern?;
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == pattern)
        .map(|r| r.access)
}

pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<Portal>) {
    let mut scope = web::scope("").wrap(from_fn(audit_posts));
    for r in ROUTES {
        scope = scope.route(r.path, (r.route)());
    }
    cfg.app_data(state).service(scope);
}

async fn home(req: HttpRequest) -> HttpResponse {
    match Staff::check(&req).await {
        Ok(_) => see_other("/today", &[]),
        Err(_) => see_other("/signin", &[]),
    }
}

/// Writes every staff POST to the audit log after it ran: who, what (the route's action), which
/// record (the path's ids), from where, and how it went (refusals too). Account changes are
/// recorded by [`crate::accounts`] in the same transaction as the change instead.
async fn audit_posts(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_post = req.method() == actix_web::http::Method::POST;
    let res = next.call(req).await?;
    if !is_post {
        return Ok(res);
    }
    let staff = res.request().extensions().get::<Staff>().cloned();
    let Some(staff) = staff else {
        return Ok(res);
    };
    let pattern = res.request().match_pattern();
    let action = ROUTES
        .iter()
        .find(|r| r.method == "POST" && Some(r.path) == pattern.as_deref())
        .map(|r| r.action)
        .unwrap_or("did something");
    if action.is_empty() {
        return Ok(res);
    }
    let target = res
        .request()
        .match_info()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let status = res.status();
    let outcome = if status.is_success() || status.is_redirection() {
        "ok".to_owned()
    } else {
        format!("refused ({})", status.as_u16())
    };
    let ip = omneuro_platform::web::client_ip(res.request());
    let state = res.request().app_data::<web::Data<Portal>>().cloned();
    if let Some(state) = state {
        let member = staff.member().clone();
        let action = action.to_owned();
        let written = state
            .db
            .run(move |c| {
                accounts::audit(
                    c,
                    &Audit {
                        staff_id: &member.id,
                        staff_email: &member.email,
                        action: &action,
                        target: &target,
                        detail: "",
                        ip: &ip,
                        outcome: &outcome,
                    },
                    now_utc(),
                )
            })
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "audit log write failed");
        }
    }
    Ok(res)
}

/// Renders a page (never cached: staff pages change with every move) with `cookies` set.
pub fn page(
    t: &impl Template,
    status: StatusCode,
    req: &HttpRequest,
    cookies: &[String],
) -> HttpResponse {
    match t.render() {
        Ok(html) => {
            let mut b = HttpResponse::build(status);
            b.content_type("text/html; charset=utf-8")
                .insert_header((CACHE_CONTROL, "no-store"));
            for c in cookies {
                b.append_header((SET_COOKIE, c.as_str()));
            }
            b.body(html)
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, &request_id(req))
        }
    }
}

/// 303 See Other to `to`, with cookies.
pub fn see_other(to: &str, cookies: &[String]) -> HttpResponse {
    let mut b = HttpResponse::SeeOther();
    b.insert_header((LOCATION, to));
    for c in cookies {
        b.append_header((SET_COOKIE, c.as_str()));
    }
    b.finish()
}

/// A request that failed for want of the database or a dependency: logged once, the 503 page.
pub fn outage(req: &HttpRequest, e: &DomainError) -> HttpResponse {
    tracing::error!(error = %e, "staff request failed");
    error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(req))
}

/// A refusal to show on the page: its status and sentence; `None` for an outage (answer with
/// [`outage`]).
pub fn refusal(e: &DomainError) -> Option<(StatusCode, String)> {
    refusal_status(e.code()).map(|status| (status, e.to_string()))
}

/// A form post that failed the CSRF check: nothing changes, and the page says why.
pub fn forbidden(req: &HttpRequest) -> HttpResponse {
    tracing::warn!("form post refused: CSRF token or origin did not match");
    error_page(StatusCode::FORBIDDEN, &request_id(req))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once_and_unknown_routes_are_denied() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
            assert!(a.method == "GET" || a.method == "POST");
            if a.access == Public {
                assert!(
                    a.action.is_empty(),
                    "{}: public routes have no staff to audit",
                    a.path
                );
            }
        }
        assert_eq!(access_for("GET", Some("/nowhere")), None);
        assert_eq!(access_for("GET", None), None);
        assert_eq!(access_for("DELETE", Some("/jobs/{id}")), None);
        assert_eq!(
            access_for("POST", Some("/staff/invite")),
            Some(Can(P::ManageStaff))
        );
    }
}
