//! Portal pages: `/` sends staff to sign in; `/signin` shows the form; posting it is refused with a
//! clear page until staff accounts exist.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use omneuro_platform::config::LinksConfig;
use omneuro_platform::http::{error_page, request_id};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig, links: web::Data<LinksConfig>) {
    cfg.app_data(links)
        .route(
            "/",
            web::get().to(|| async {
                HttpResponse::SeeOther()
                    .insert_header((LOCATION, "/signin"))
                    .finish()
            }),
        )
        .route("/signin", web::get().to(signin_form))
        .route("/signin", web::post().to(signin_submit));
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn<'a> {
    links: &'a LinksConfig,
    email: &'a str,
    message: Option<&'a str>,
}

async fn signin_form(links: web::Data<LinksConfig>, req: HttpRequest) -> HttpResponse {
    render(
        StatusCode::OK,
        &SignIn {
            links: &links,
            email: "",
            message: None,
        },
        &req,
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    #[allow(dead_code)]
    password: String,
}

async fn signin_submit(
    links: web::Data<LinksConfig>,
    form: web::Form<SignInForm>,
    req: HttpRequest,
) -> HttpResponse {
    let email: String = form.email.trim().chars().take(254).collect();
    let msg = "Staff sign-in isn't switched on yet: staff accounts arrive with the next portal release. Nobody can sign in until then.";
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        &SignIn {
            links: &links,
            email: &email,
            message: Some(msg),
        },
        &req,
    )
}

fn render(status: StatusCode, t: &impl Template, req: &HttpRequest) -> HttpResponse {
    match t.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, &request_id(req))
        }
    }
}
