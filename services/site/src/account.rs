//! The client's side of the garage: magic-link sign-in, my vehicles (add, edit, archive), profile
//! and contact consent. Every form is CSRF-checked; garage decides what the client may see, site
//! only forwards the signed-in client's identity.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query, ServiceConfig, get, post};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, failure, request_id};
use omneuro_proto::garage::v1 as garage;
use serde::Deserialize;
use tonic::Code;

use crate::pages::{ADDRESS, MakeView, SiteState};
use crate::visitor::{Chrome, Visitor, forbidden, page, see_other, site_actor};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/signin", get().to(signin_form))
        .route("/signin", post().to(signin_request))
        .route("/signin/link", get().to(link_landing))
        .route("/signin/link", post().to(link_consume))
        .route("/signout", post().to(signout))
        .route("/signout/everywhere", post().to(signout_everywhere))
        .route("/garage", get().to(garage_home))
        .route("/garage/vehicles/new", get().to(vehicle_new))
        .route("/garage/vehicles", post().to(vehicle_create))
        .route("/garage/vehicles/{id}/edit", get().to(vehicle_edit))
        .route("/garage/vehicles/{id}", post().to(vehicle_update))
        .route("/garage/vehicles/{id}/archive", post().to(vehicle_archive))
        .route("/garage/profile", get().to(profile_form))
        .route("/garage/profile", post().to(profile_save));
}

const GARAGE_BREAK: &str = "The garage is taking a break right now. Please try again in a minute.";

// ---- sign-in ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage<'a> {
    chrome: Chrome<'a>,
    email: String,
    error: String,
}

#[derive(Template)]
#[template(path = "signin_sent.html")]
struct SigninSentPage<'a> {
    chrome: Chrome<'a>,
    email: String,
}

#[derive(Template)]
#[template(path = "signin_link.html")]
struct SigninLinkPage<'a> {
    chrome: Chrome<'a>,
    token: String,
    error: String,
}

fn signin_page(
    state: &SiteState,
    req: &HttpRequest,
    mut v: Visitor,
    status: StatusCode,
    email: String,
    error: String,
) -> HttpResponse {
    v.form_csrf(state, req);
    page(
        &SigninPage {
            chrome: v.chrome(&state.links),
            email,
            error,
        },
        status,
        req,
        &v.cookies,
    )
}

async fn signin_form(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    if v.client.is_some() {
        return see_other("/garage", &v.cookies);
    }
    signin_page(
        &state,
        &req,
        v,
        StatusCode::OK,
        String::new(),
        String::new(),
    )
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

async fn signin_request(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<SigninForm>,
) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let email = form.email.trim().to_owned();
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/RequestSignInLink",
        g.request_sign_in_link(auth::request(
            &site_actor(),
            garage::RequestSignInLinkRequest {
                email: email.clone(),
                client_ip: omneuro_platform::web::client_ip(&req),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => page(
            &SigninSentPage {
                chrome: v.chrome(&state.links),
                email,
            },
            StatusCode::OK,
            &req,
            &v.cookies,
        ),
        Err(s) => {
            let (status, msg) = failure(&s, GARAGE_BREAK);
            signin_page(&state, &req, v, status, email, msg)
        }
    }
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// The page a mailed link opens. It only shows a button: a GET (a mail scanner's preview) never
/// spends the link.
async fn link_landing(
    state: Data<SiteState>,
    req: HttpRequest,
    q: Query<LinkQuery>,
) -> HttpResponse {
    let mut v = Visitor::of(&state, &req).await;
    v.form_csrf(&state, &req);
    let token: String = q.token.chars().take(64).collect();
    let error = if token.is_empty() {
        "This sign-in link is incomplete. Ask for a new one.".to_owned()
    } else {
        String::new()
    };
    page(
        &SigninLinkPage {
            chrome: v.chrome(&state.links),
            token,
            error,
        },
        StatusCode::OK,
        &req,
        &v.cookies,
    )
}

#[derive(Deserialize)]
struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn link_consume(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<LinkForm>,
) -> HttpResponse {
    let mut v = Visitor::of(&state, &req).await;
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/ConsumeSignInLink",
        g.consume_sign_in_link(auth::request(
            &site_actor(),
            garage::ConsumeSignInLinkRequest {
                token: form.token.clone(),
                client_ip: omneuro_platform::web::client_ip(&req),
                user_agent,
            },
        )),
    )
    .await;
    match res {
        Ok(r) => {
            let grant = r.into_inner();
            let now = chrono::Utc::now().timestamp_micros();
            let max_age = grant
                .expires_at
                .map(|t| (t.unix_micros - now) / 1_000_000)
                .unwrap_or(0);
            let mut cookies = v.cookies;
            cookies.push(state.session_cookie(&grant.session_token, Some(max_age)));
            let to = if grant.new_client {
                "/garage/profile?welcome=1"
            } else {
                "/garage"
            };
            see_other(to, &cookies)
        }
        Err(s) => {
            let (status, msg) = failure(&s, GARAGE_BREAK);
            v.form_csrf(&state, &req);
            page(
                &SigninLinkPage {
                    chrome: v.chrome(&state.links),
                    token: String::new(),
                    error: msg,
                },
                status,
                &req,
                &v.cookies,
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    state: &SiteState,
    req: &HttpRequest,
    csrf: &str,
    everywhere: bool,
) -> HttpResponse {
    let v = Visitor::of(state, req).await;
    let Some(session) = v.session.clone() else {
        return see_other("/", &[state.session_cookie("", Some(0))]);
    };
    if !v.csrf_ok(state, req, csrf) {
        return forbidden(req);
    }
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/SignOut",
        g.sign_out(auth::request(
            &site_actor(),
            garage::SignOutRequest {
                session_token: session,
                everywhere,
            },
        )),
    )
    .await;
    if let Err(s) = res {
        // The cookie goes anyway; the server-side session ends on its own schedule.
        tracing::warn!(code = ?s.code(), "sign-out not recorded by garage");
    }
    see_other("/", &[state.session_cookie("", Some(0))])
}

async fn signout(state: Data<SiteState>, req: HttpRequest, form: Form<CsrfForm>) -> HttpResponse {
    sign_out(&state, &req, &form.csrf, false).await
}

async fn signout_everywhere(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<CsrfForm>,
) -> HttpResponse {
    sign_out(&state, &req, &form.csrf, true).await
}

// ---- my garage -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "garage.html")]
struct PublicGaragePage<'a> {
    chrome: Chrome<'a>,
    address: &'a str,
    garage_down: bool,
    makes: Option<&'a [MakeView]>,
}

pub struct VehicleRow {
    pub id: String,
    pub label: String,
    pub category: String,
    pub battery: String,
    pub archived: bool,
}

#[derive(Template)]
#[template(path = "my_garage.html")]
struct MyGaragePage<'a> {
    chrome: Chrome<'a>,
    client: &'a garage::Client,
    vehicles: Option<Vec<VehicleRow>>,
    jobs: Option<Vec<crate::repairs::JobRow>>,
    invoices: Option<Vec<crate::store::InvoiceRow>>,
    flash: &'a str,
}

fn category_label(c: i32) -> &'static str {
    match garage::VehicleCategory::try_from(c) {
        Ok(garage::VehicleCategory::ElectricUnicycle) => "Electric unicycle",
        Ok(garage::VehicleCategory::EBike) => "E-bike",
        Ok(garage::VehicleCategory::EScooter) => "E-scooter",
        Ok(garage::VehicleCategory::ESkateboard) => "E-skateboard",
        _ => "Other",
    }
}

const CATEGORIES: &[(&str, &str)] = &[
    ("electric_unicycle", "Electric unicycle"),
    ("e_bike", "E-bike"),
    ("e_scooter", "E-scooter"),
    ("e_skateboard", "E-skateboard"),
    ("other", "Other"),
];

const BATTERY_FORMATS: &[(&str, &str)] = &[
    ("", "Not sure"),
    ("18650", "18650 cells"),
    ("21700", "21700 cells"),
    ("lfp", "LFP (LiFePO4)"),
    ("other", "Other"),
];

const VOLTAGES: &[u32] = &[36, 48, 52, 60, 67, 72, 84, 100, 126, 134, 151, 168];

fn battery_label(v: &garage::VehicleInput) -> String {
    let cells = match garage::BatteryFormat::try_from(v.battery_format) {
        Ok(garage::BatteryFormat::BatteryFormat18650) => "18650",
        Ok(garage::BatteryFormat::BatteryFormat21700) => "21700",
        Ok(garage::BatteryFormat::Lfp) => "LFP",
        Ok(garage::BatteryFormat::Other) => "other cells",
        _ => "",
    };
    match (v.voltage_class, cells) {
        (0, c) => c.to_owned(),
        (volts, "") => format!("{volts} V"),
        (volts, c) => format!("{volts} V {c}"),
    }
}

#[derive(Deserialize)]
struct Flash {
    #[serde(default)]
    saved: String,
}

async fn garage_home(state: Data<SiteState>, req: HttpRequest, q: Query<Flash>) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    let (Some(client), Some(actor)) = (v.client.as_ref(), v.actor()) else {
        let makes = state.makes().await;
        return page(
            &PublicGaragePage {
                chrome: v.chrome(&state.links),
                address: ADDRESS,
                garage_down: v.garage_down,
                makes: makes.as_deref().map(Vec::as_slice),
            },
            StatusCode::OK,
            &req,
            &v.cookies,
        );
    };
    let mut g = state.upstreams.garage.clone();
    let (vehicles, jobs, invoices) = tokio::join!(
        grpc::call(
            "GarageService/ListVehicles",
            g.list_vehicles(auth::request(
                &actor,
                garage::ListVehiclesRequest::default(),
            )),
        ),
        crate::repairs::my_jobs(&state, &actor),
        crate::store::my_invoices(&state, &actor)
    );
    let vehicles = vehicles.ok().map(|r| {
        r.into_inner()
            .vehicles
            .into_iter()
            .map(|veh| {
                let input = veh.input.unwrap_or_default();
                VehicleRow {
                    id: veh.id,
                    label: veh.label,
                    category: category_label(input.category).to_owned(),
                    battery: battery_label(&input),
                    archived: veh.archived,
                }
            })
            .collect()
    });
    let flash = match q.saved.as_str() {
        "vehicle" => "Vehicle saved.",
        "archived" => "Vehicle archived. Its history stays with us.",
        "profile" => "Profile saved.",
        _ => "",
    };
    page(
        &MyGaragePage {
            chrome: v.chrome(&state.links),
            client,
            vehicles,
            jobs,
            invoices,
            flash,
        },
        StatusCode::OK,
        &req,
        &v.cookies,
    )
}

#[derive(Deserialize, Default, Clone)]
struct VehicleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    make_id: String,
    #[serde(default)]
    model_id: String,
    #[serde(default)]
    other_make: String,
    #[serde(default)]
    other_model: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    battery_format: String,
    #[serde(default)]
    voltage_class: String,
    #[serde(default)]
    battery_serial: String,
    #[serde(default)]
    motor_serial: String,
    #[serde(default)]
    notes: String,
}

impl VehicleForm {
    fn from_vehicle(v: &garage::Vehicle) -> Self {
        let i = v.input.clone().unwrap_or_default();
        let category = match garage::VehicleCategory::try_from(i.category) {
            Ok(garage::VehicleCategory::ElectricUnicycle) => "electric_unicycle",
            Ok(garage::VehicleCategory::EBike) => "e_bike",
            Ok(garage::VehicleCategory::EScooter) => "e_scooter",
            Ok(garage::VehicleCategory::ESkateboard) => "e_skateboard",
            _ => "other",
        };
        let battery_format = match garage::BatteryFormat::try_from(i.battery_format) {
            Ok(garage::BatteryFormat::BatteryFormat18650) => "18650",
            Ok(garage::BatteryFormat::BatteryFormat21700) => "21700",
            Ok(garage::BatteryFormat::Lfp) => "lfp",
            Ok(garage::BatteryFormat::Other) => "other",
            _ => "",
        };
        Self {
            csrf: String::new(),
            category: category.into(),
            make_id: i.make_id,
            model_id: i.model_id,
            other_make: i.other_make,
            other_model: i.other_model,
            nickname: i.nickname,
            battery_format: battery_format.into(),
            voltage_class: if i.voltage_class == 0 {
                String::new()
            } else {
                i.voltage_class.to_string()
            },
            battery_serial: i.battery_serial,
            motor_serial: i.motor_serial,
            notes: i.notes,
        }
    }

    /// The proto input, or a sentence for the person when a field cannot be read.
    fn input(&self) -> Result<garage::VehicleInput, String> {
        let category = match self.category.as_str() {
            "electric_unicycle" => garage::VehicleCategory::ElectricUnicycle,
            "e_bike" => garage::VehicleCategory::EBike,
            "e_scooter" => garage::VehicleCategory::EScooter,
            "e_skateboard" => garage::VehicleCategory::ESkateboard,
            "other" => garage::VehicleCategory::Other,
            _ => garage::VehicleCategory::Unspecified,
        };
        let battery_format = match self.battery_format.as_str() {
            "18650" => garage::BatteryFormat::BatteryFormat18650,
            "21700" => garage::BatteryFormat::BatteryFormat21700,
            "lfp" => garage::BatteryFormat::Lfp,
            "other" => garage::BatteryFormat::Other,
            _ => garage::BatteryFormat::Unspecified,
        };
        let volts = self
            .voltage_class
            .trim()
            .trim_end_matches(['V', 'v'])
            .trim();
        let voltage_class = if volts.is_empty() {
            0
        } else {
            volts.parse::<u32>().map_err(|_| {
                "Voltage class should be a number of volts, like 84 or 126.".to_owned()
            })?
        };
        Ok(garage::VehicleInput {
            category: category.into(),
            make_id: self.make_id.clone(),
            model_id: self.model_id.clone(),
            other_make: self.other_make.clone(),
            other_model: self.other_model.clone(),
            nickname: self.nickname.clone(),
            battery_format: battery_format.into(),
            voltage_class,
            battery_serial: self.battery_serial.clone(),
            motor_serial: self.motor_serial.clone(),
            notes: self.notes.clone(),
        })
    }
}

#[derive(Template)]
#[template(path = "vehicle_form.html")]
struct VehicleFormPage<'a> {
    chrome: Chrome<'a>,
    /// The vehicle id when editing; empty when adding.
    editing: String,
    form: VehicleForm,
    error: String,
    makes: &'a [MakeView],
    categories: &'a [(&'a str, &'a str)],
    battery_formats: &'a [(&'a str, &'a str)],
    voltages: &'a [u32],
}

async fn vehicle_form_page(
    state: &SiteState,
    req: &HttpRequest,
    v: &Visitor,
    status: StatusCode,
    editing: String,
    form: VehicleForm,
    error: String,
) -> HttpResponse {
    let makes = state.makes().await;
    let error = if makes.is_none() && error.is_empty() {
        "The make and model lists are taking a break; type them under \"other\" for now.".to_owned()
    } else {
        error
    };
    page(
        &VehicleFormPage {
            chrome: v.chrome(&state.links),
            editing,
            form,
            error,
            makes: makes.as_deref().map(Vec::as_slice).unwrap_or_default(),
            categories: CATEGORIES,
            battery_formats: BATTERY_FORMATS,
            voltages: VOLTAGES,
        },
        status,
        req,
        &v.cookies,
    )
}

async fn vehicle_new(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let (v, _) = signed_in!(state, req);
    vehicle_form_page(
        &state,
        &req,
        &v,
        StatusCode::OK,
        String::new(),
        VehicleForm::default(),
        String::new(),
    )
    .await
}

async fn vehicle_create(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<VehicleForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let form = form.into_inner();
    let input = match form.input() {
        Ok(i) => i,
        Err(msg) => {
            return vehicle_form_page(
                &state,
                &req,
                &v,
                StatusCode::BAD_REQUEST,
                String::new(),
                form,
                msg,
            )
            .await;
        }
    };
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/CreateVehicle",
        g.create_vehicle(auth::request(
            &actor,
            garage::CreateVehicleRequest { input: Some(input) },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/garage?saved=vehicle", &v.cookies),
        Err(s) => {
            let (status, msg) = failure(&s, GARAGE_BREAK);
            vehicle_form_page(&state, &req, &v, status, String::new(), form, msg).await
        }
    }
}

async fn vehicle_edit(state: Data<SiteState>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/GetVehicle",
        g.get_vehicle(auth::request(
            &actor,
            garage::GetVehicleRequest {
                id: id.into_inner(),
            },
        )),
    )
    .await;
    match res {
        Ok(r) => {
            let veh = r.into_inner();
            vehicle_form_page(
                &state,
                &req,
                &v,
                StatusCode::OK,
                veh.id.clone(),
                VehicleForm::from_vehicle(&veh),
                String::new(),
            )
            .await
        }
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

async fn vehicle_update(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<VehicleForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let (id, form) = (id.into_inner(), form.into_inner());
    let input = match form.input() {
        Ok(i) => i,
        Err(msg) => {
            return vehicle_form_page(&state, &req, &v, StatusCode::BAD_REQUEST, id, form, msg)
                .await;
        }
    };
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/UpdateVehicle",
        g.update_vehicle(auth::request(
            &actor,
            garage::UpdateVehicleRequest {
                id: id.clone(),
                input: Some(input),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/garage?saved=vehicle", &v.cookies),
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(s) => {
            let (status, msg) = failure(&s, GARAGE_BREAK);
            vehicle_form_page(&state, &req, &v, status, id, form, msg).await
        }
    }
}

async fn vehicle_archive(
    state: Data<SiteState>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/ArchiveVehicle",
        g.archive_vehicle(auth::request(
            &actor,
            garage::ArchiveVehicleRequest {
                id: id.into_inner(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/garage?saved=archived", &v.cookies),
        Err(s) if s.code() == Code::NotFound => {
            error_page(StatusCode::NOT_FOUND, &request_id(&req))
        }
        Err(_) => error_page(StatusCode::SERVICE_UNAVAILABLE, &request_id(&req)),
    }
}

// ---- profile ---------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    contact_preference: String,
    /// Checkboxes: present ("on") when ticked.
    #[serde(default)]
    email_consent: Option<String>,
    #[serde(default)]
    sms_consent: Option<String>,
}

struct ProfileView {
    name: String,
    phone: String,
    contact_preference: String,
    email_consent: bool,
    sms_consent: bool,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    chrome: Chrome<'a>,
    email: &'a str,
    opted_out: bool,
    form: ProfileView,
    error: String,
}

fn profile_view(c: &garage::Client) -> ProfileView {
    ProfileView {
        name: c.name.clone(),
        phone: c.phone.clone(),
        contact_preference: if c.contact_preference == i32::from(garage::ContactPreference::Sms) {
            "sms".into()
        } else {
            "email".into()
        },
        email_consent: c.email_consent,
        sms_consent: c.sms_consent,
    }
}

async fn profile_form(state: Data<SiteState>, req: HttpRequest) -> HttpResponse {
    let (v, _) = signed_in!(state, req);
    let Some(client) = v.client.as_ref() else {
        return see_other("/signin", &v.cookies);
    };
    page(
        &ProfilePage {
            chrome: v.chrome(&state.links),
            email: &client.email,
            opted_out: client.sms_opted_out,
            form: profile_view(client),
            error: String::new(),
        },
        StatusCode::OK,
        &req,
        &v.cookies,
    )
}

async fn profile_save(
    state: Data<SiteState>,
    req: HttpRequest,
    form: Form<ProfileForm>,
) -> HttpResponse {
    let (v, actor) = signed_in!(state, req);
    if !v.csrf_ok(&state, &req, &form.csrf) {
        return forbidden(&req);
    }
    let Some(client) = v.client.as_ref() else {
        return see_other("/signin", &v.cookies);
    };
    let f = form.into_inner();
    let view = ProfileView {
        name: f.name.clone(),
        phone: f.phone.clone(),
        contact_preference: f.contact_preference.clone(),
        email_consent: f.email_consent.is_some(),
        sms_consent: f.sms_consent.is_some(),
    };
    let mut g = state.upstreams.garage.clone();
    let res = grpc::call(
        "GarageService/UpdateProfile",
        g.update_profile(auth::request(
            &actor,
            garage::UpdateProfileRequest {
                name: f.name,
                phone: f.phone,
                contact_preference: if f.contact_preference == "sms" {
                    garage::ContactPreference::Sms
                } else {
                    garage::ContactPreference::Email
                }
                .into(),
                email_consent: view.email_consent,
                sms_consent: view.sms_consent,
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/garage?saved=profile", &v.cookies),
        Err(s) => {
            let (status, msg) = failure(&s, GARAGE_BREAK);
            page(
                &ProfilePage {
                    chrome: v.chrome(&state.links),
                    email: &client.email,
                    opted_out: client.sms_opted_out,
                    form: view,
                    error: msg,
                },
                status,
                &req,
                &v.cookies,
            )
        }
    }
}
