//! Portal routes and the helpers every page uses. `/` sends staff to sign in; the staff pages are
//! in [`crate::board`], [`crate::bench`] and [`crate::walkin`], sign-in and sign-out in [`crate::signin`].

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use omneuro_platform::http::{error_page, request_id};

use crate::{Portal, bench, board, signin, walkin};

pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<Portal>) {
    cfg.app_data(state)
        .route(
            "/",
            web::get().to(|| async {
                HttpResponse::SeeOther()
                    .insert_header((LOCATION, "/signin"))
                    .finish()
            }),
        )
        .route("/signin", web::get().to(signin::form))
        .route("/signin", web::post().to(signin::submit))
        .route("/signout", web::post().to(signin::signout))
        .route("/jobs", web::get().to(board::board))
        .route("/walkin", web::get().to(walkin::form))
        .route("/walkin", web::post().to(walkin::create))
        .route("/jobs/{id}", web::get().to(board::job))
        .route("/jobs/{id}/move", web::post().to(board::move_job))
        .route("/jobs/{id}/notes", web::post().to(bench::add_note))
        .route("/jobs/{id}/labor", web::post().to(bench::add_labor))
        .route("/jobs/{id}/parts", web::post().to(bench::add_part))
        .route(
            "/jobs/{id}/lines/{line_id}/remove",
            web::post().to(bench::remove_line),
        )
        .route("/jobs/{id}/assign", web::post().to(bench::assign))
        .route("/jobs/{id}/estimate", web::post().to(bench::send_estimate));
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

/// A form post that failed the CSRF check: nothing changes, and the page says why.
pub fn forbidden(req: &HttpRequest) -> HttpResponse {
    tracing::warn!("form post refused: CSRF token or origin did not match");
    error_page(StatusCode::FORBIDDEN, &request_id(req))
}
