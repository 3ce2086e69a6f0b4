//! The staff guard, written once: the `jjt_session` cookie, the session behind it
//! ([`crate::accounts::authenticate`]) and the [`Staff`] extractor every staff handler takes.
//!
//! Taking `Staff` as a handler argument is the guard. It looks up the request's route in
//! [`crate::pages::ROUTES`] and lets the handler run only when the session is signed in and the
//! role allows what the route needs; otherwise it answers itself:
//! - no session, or an ended one: 303 `/signin` (a stale cookie is removed);
//! - password checked but the second factor (or its set-up) still due: 303 to that step;
//! - a role that may not: 403 naming what the role may not do;
//! - a route without an entry in the table: 403 (deny by default).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web as aweb};
use askama::Template;
use omneuro_platform::auth::{Actor, Permission, StaffRole};
use omneuro_platform::db::now_utc;
use omneuro_platform::error::DomainError;
use omneuro_platform::http::{error_page, request_id};
use omneuro_platform::web;

use crate::Portal;
use crate::accounts::{self, Origin, Session, StaffMember, Stage};
use crate::pages::{Access, access_for, page, see_other};

/// The portal's session cookie: host-only, so it is never sent to the public host (and the
/// public site's cookie never reaches the tech host).
pub const SESSION_COOKIE: &str = "jjt_session";

/// `Set-Cookie` for the staff session (`value` empty removes it). No `Max-Age`: the cookie ends
/// with the browser; the server ends the session on idle or absolute time anyway.
pub fn session_cookie(state: &Portal, value: &str) -> String {
    let max_age = if value.is_empty() { Some(0) } else { None };
    web::set_cookie(SESSION_COOKIE, value, max_age, state.environment, false)
}

/// Where a request comes from, for sessions and the audit log.
pub fn origin(req: &HttpRequest) -> Origin {
    Origin {
        ip: web::client_ip(req),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    }
}

/// The signed-in staff member of this request (put into the request's extensions by the guard,
/// so the audit middleware knows who acted).
#[derive(Clone)]
pub struct Staff {
    token: String,
    pub session: Session,
}

impl Staff {
    pub fn member(&self) -> &StaffMember {
        &self.session.member
    }

    pub fn role(&self) -> StaffRole {
        self.session.member.role
    }

    /// Who the portal says is calling when it calls a domain service for this person.
    pub fn actor(&self) -> Actor {
        Actor::Staff {
            id: self.session.member.id.clone(),
            role: self.session.member.role,
        }
    }

    pub fn may(&self, p: Permission) -> bool {
        p.allows(self.role())
    }

    /// The CSRF token for this page's forms (bound to the session).
    pub fn csrf(&self, req: &HttpRequest, state: &Portal) -> String {
        web::csrf(req, Some(&self.token), state.environment).token
    }

    /// Whether a POST carries this session's CSRF token and comes from the tech host.
    pub fn csrf_ok(&self, req: &HttpRequest, state: &Portal, submitted: &str) -> bool {
        web::csrf_ok(req, Some(&self.token), submitted, &state.links.tech_url)
    }

    /// The navigation bar's facts for this person.
    pub fn nav(&self, req: &HttpRequest, state: &Portal) -> Nav {
        Nav {
            csrf: self.csrf(req, state),
            name: self.session.member.name.clone(),
            role: role_label(self.role()),
            manage_staff: self.may(Permission::ManageStaff),
            edit_settings: self.may(Permission::EditSettings),
            adjust_stock: self.may(Permission::AdjustStock),
            edit_catalog: self.may(Permission::EditCatalog),
            invoices: self.may(Permission::Invoice),
            view_reports: self.may(Permission::ViewReports),
        }
    }

    /// The guard itself: `Ok` for a signed-in session whose role allows this route, else the
    /// response to send instead.
    pub async fn check(req: &HttpRequest) -> Result<Staff, HttpResponse> {
        let Some(state) = req.app_data::<aweb::Data<Portal>>().cloned() else {
            tracing::error!("portal state missing from the app");
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &request_id(req),
            ));
        };
        let access = access_for(req.method().as_str(), req.match_pattern().as_deref());
        let Some(access) = access else {
            tracing::error!(
                http.route = req.match_pattern().unwrap_or_default(),
                "route has no entry in the access table: refused"
            );
            return Err(denied(req, "use this page (it has no access rule)"));
        };
        let Some(token) = web::cookie(req, SESSION_COOKIE) else {
            return Err(see_other("/signin", &[]));
        };
        let lookup = {
            let (token, cfg) = (token.clone(), state.staff.clone());
            state
                .db
                .run(move |c| accounts::authenticate(c, &token, &cfg, now_utc()))
                .await
        };
        let session = match lookup {
            Ok(s) => s,
            Err(DomainError::Unauthenticated(_)) => {
                // A stale or forged cookie goes away so the browser stops sending it.
                return Err(see_other("/signin", &[session_cookie(&state, "")]));
            }
            Err(e) => {
                tracing::error!(error = %e, "staff session lookup failed");
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &request_id(req),
                ));
            }
        };
        match session.stage {
            Stage::SignedIn => {}
            Stage::SecondFactor => return Err(see_other("/signin/code", &[])),
            Stage::Enroll => return Err(see_other("/signin/enroll", &[])),
        }
        let staff = Staff { token, session };
        if let Access::Can(p) = access
            && !staff.may(p)
        {
            return Err(denied(req, p.as_str()));
        }
        req.extensions_mut().insert(staff.clone());
        Ok(staff)
    }
}

impl FromRequest for Staff {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Staff, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Staff::check(&req)
                .await
                .map_err(|res| InternalError::from_response("staff only", res).into())
        })
    }
}

/// What the bar at the top of every staff page shows.
pub struct Nav {
    pub csrf: String,
    pub name: String,
    pub role: &'static str,
    pub manage_staff: bool,
    pub edit_settings: bool,
    pub adjust_stock: bool,
    pub edit_catalog: bool,
    pub invoices: bool,
    pub view_reports: bool,
}

pub fn role_label(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Owner => "owner",
        StaffRole::Tech => "tech",
        StaffRole::FrontDesk => "front desk",
    }
}

#[derive(Template)]
#[template(path = "denied.html")]
struct DeniedPage<'a> {
    what: &'a str,
}

/// 403: signed in, but the role may not do this.
pub fn denied(req: &HttpRequest, what: &str) -> HttpResponse {
    page(&DeniedPage { what }, StatusCode::FORBIDDEN, req, &[])
}
