//! A staff member's own account (password, authenticator app, recovery codes, sign out
//! everywhere), the owner's staff page (invites, roles, switching accounts off), the invite link
//! and the audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web as aweb};
use askama::Template;
use chrono::NaiveDateTime;
use omneuro_platform::auth::StaffRole;
use omneuro_platform::db::now_utc;
use omneuro_platform::error::DomainError;
use omneuro_platform::mail::Mail;
use omneuro_platform::web;
use serde::Deserialize;

use crate::Portal;
use crate::accounts::{self, AuditEntry, StaffMember};
use crate::pages::{forbidden, outage, page, refusal, see_other};
use crate::signin::{CodeForm, CsrfForm, enroll_page, recovery_page};
use crate::staff::{Nav, Staff, origin, role_label, session_cookie};

fn when(t: NaiveDateTime) -> String {
    t.and_utc()
        .with_timezone(&chrono_tz::America::New_York)
        .format("%b %-d, %Y %-I:%M %p")
        .to_string()
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    nav: Nav,
    me: &'a StaffMember,
    role: &'static str,
    codes_left: i64,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn account_page(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
    status: StatusCode,
    message: Option<&str>,
    notice: Option<&str>,
    cookies: &[String],
) -> HttpResponse {
    let id = staff.member().id.clone();
    let codes_left = match state
        .db
        .run(move |c| accounts::recovery_codes_left(c, &id))
        .await
    {
        Ok(n) => n,
        Err(e) => return outage(req, &e),
    };
    let t = AccountPage {
        nav: staff.nav(req, state),
        me: staff.member(),
        role: role_label(staff.role()),
        codes_left,
        message,
        notice,
    };
    page(&t, status, req, cookies)
}

/// The account page again with why a change was refused (or the outage page).
async fn account_refused(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
    e: DomainError,
) -> HttpResponse {
    match refusal(&e) {
        Some((status, m)) => account_page(state, req, staff, status, Some(&m), None, &[]).await,
        None => outage(req, &e),
    }
}

#[derive(Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    changed: Option<String>,
}

pub async fn account(
    state: aweb::Data<Portal>,
    staff: Staff,
    q: aweb::Query<AccountQuery>,
    req: HttpRequest,
) -> HttpResponse {
    let notice = q
        .changed
        .as_ref()
        .map(|_| "Password changed. Every other session has been signed out.");
    account_page(&state, &req, &staff, StatusCode::OK, None, notice, &[]).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<PasswordForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    if form.new != form.confirm {
        let differ = DomainError::invalid("The new password and its confirmation differ.");
        return account_refused(&state, &req, &staff, differ).await;
    }
    let (s, who, cfg) = (staff.session.clone(), origin(&req), state.staff.clone());
    let (current, new) = (form.current.clone(), form.new.clone());
    match state
        .db
        .run(move |c| accounts::change_password(c, &s, &current, &new, &who, &cfg, now_utc()))
        .await
    {
        Ok(opened) => see_other(
            "/account?changed=1",
            &[session_cookie(&state, &opened.token)],
        ),
        Err(e) => account_refused(&state, &req, &staff, e).await,
    }
}

pub async fn totp_begin(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<CsrfForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    if staff.member().totp_on {
        return see_other("/account", &[]);
    }
    let s = staff.session.clone();
    match state.db.run(move |c| accounts::begin_totp(c, &s)).await {
        Ok(secret) => enroll_page(
            &req,
            &staff.csrf(&req, &state),
            &staff.member().email,
            &secret,
            "/account/totp/confirm",
            StatusCode::OK,
            None,
        ),
        Err(e) => outage(&req, &e),
    }
}

pub async fn totp_confirm(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<CodeForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (s, who, cfg) = (staff.session.clone(), origin(&req), state.staff.clone());
    let code: String = form.code.chars().take(64).collect();
    match state
        .db
        .run(move |c| accounts::finish_totp(c, &s, &code, &who, &cfg, now_utc()))
        .await
    {
        Ok((opened, codes)) => recovery_page(
            &req,
            &codes,
            "/account",
            &[session_cookie(&state, &opened.token)],
        ),
        Err(DomainError::Invalid(m)) => enroll_page(
            &req,
            &staff.csrf(&req, &state),
            &staff.member().email,
            staff.session.pending_totp_secret.as_deref().unwrap_or(""),
            "/account/totp/confirm",
            StatusCode::BAD_REQUEST,
            Some(&m),
        ),
        Err(DomainError::Conflict(_)) => see_other("/account", &[]),
        Err(e) => outage(&req, &e),
    }
}

pub async fn totp_off(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<PasswordForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (s, who, current) = (staff.session.clone(), origin(&req), form.current.clone());
    match state
        .db
        .run(move |c| accounts::turn_off_totp(c, &s, &current, &who, now_utc()))
        .await
    {
        Ok(()) => see_other("/account", &[]),
        Err(e) => account_refused(&state, &req, &staff, e).await,
    }
}

pub async fn recovery_codes(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<CsrfForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (s, who) = (staff.session.clone(), origin(&req));
    match state
        .db
        .run(move |c| accounts::new_recovery_codes(c, &s, &who, now_utc()))
        .await
    {
        Ok(codes) => recovery_page(&req, &codes, "/account", &[]),
        Err(e) => account_refused(&state, &req, &staff, e).await,
    }
}

pub async fn signout_everywhere(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<CsrfForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let s = staff.session.clone();
    match state
        .db
        .run(move |c| accounts::sign_out(c, &s, true, now_utc()))
        .await
    {
        Ok(()) => see_other("/signin", &[session_cookie(&state, "")]),
        Err(e) => outage(&req, &e),
    }
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage<'a> {
    nav: Nav,
    me: &'a str,
    members: Vec<MemberRow>,
    invites: Vec<InviteRow>,
    draft: &'a InviteForm,
    message: Option<&'a str>,
    notice: Option<&'a str>,
}

struct InviteRow {
    email: String,
    name: String,
    role: &'static str,
    role_code: &'static str,
    sent: String,
    expires: String,
}

struct MemberRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    role_code: &'static str,
    totp_on: bool,
    disabled: bool,
}

pub const ROLES: [(StaffRole, &str); 3] = [
    (StaffRole::Tech, "Tech"),
    (StaffRole::FrontDesk, "Front desk"),
    (StaffRole::Owner, "Owner"),
];

#[derive(Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: String,
}

#[derive(Deserialize)]
pub struct StaffQuery {
    #[serde(default)]
    invited: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
}

async fn staff_page(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
    status: StatusCode,
    draft: &InviteForm,
    message: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let listed = state
        .db
        .run(|c| Ok::<_, DomainError>((accounts::list(c)?, accounts::open_invites(c, now_utc())?)))
        .await;
    let (members, invites) = match listed {
        Ok(m) => m,
        Err(e) => return outage(req, &e),
    };
    let t = StaffPage {
        nav: staff.nav(req, state),
        me: &staff.member().id,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                role: role_label(m.role),
                role_code: m.role.as_str(),
                id: m.id,
                name: m.name,
                email: m.email,
                totp_on: m.totp_on,
                disabled: m.disabled,
            })
            .collect(),
        invites: invites
            .into_iter()
            .map(|i| InviteRow {
                role: role_label(i.role),
                role_code: i.role.as_str(),
                sent: when(i.created_at),
                expires: when(i.expires_at),
                email: i.email,
                name: i.name,
            })
            .collect(),
        draft,
        message,
        notice,
    };
    page(&t, status, req, &[])
}

/// The staff page again (the invite form as typed) with why a change was refused, or the outage
/// page.
async fn staff_refused(
    state: &Portal,
    req: &HttpRequest,
    staff: &Staff,
    draft: &InviteForm,
    e: DomainError,
) -> HttpResponse {
    match refusal(&e) {
        Some((status, m)) => staff_page(state, req, staff, status, draft, Some(&m), None).await,
        None => outage(req, &e),
    }
}

const NO_ROLE: &str = "Choose a role: tech, front desk or owner.";

pub async fn staff(
    state: aweb::Data<Portal>,
    staff: Staff,
    q: aweb::Query<StaffQuery>,
    req: HttpRequest,
) -> HttpResponse {
    let notice = if q.invited.is_some() {
        Some(format!(
            "Invite sent. The link works once, for {} hours.",
            state.staff.invite_hours
        ))
    } else if q.withdrawn.is_some() {
        Some("Invite withdrawn: its link no longer works.".to_owned())
    } else {
        None
    };
    staff_page(
        &state,
        &req,
        &staff,
        StatusCode::OK,
        &InviteForm::default(),
        None,
        notice.as_deref(),
    )
    .await
}

fn invite_mail(state: &Portal, to: &str, name: &str, by: &str, role: &str, token: &str) -> Mail {
    let link = format!(
        "{}/invite/{token}",
        state.links.tech_url.trim_end_matches('/')
    );
    Mail {
        to: to.to_owned(),
        subject: "You're invited to the Juice Junkiez tech portal".into(),
        text: format!(
            "Hi {name},\n\n{by} invited you to the Juice Junkiez tech portal as {role}.\n\nSet your password here (the link works once, for {} hours):\n{link}\n\nIf you weren't expecting this, ignore this email.\n",
            state.staff.invite_hours
        ),
        html: None,
        attachments: Vec::new(),
        message_id: None,
    }
}

pub async fn invite(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<InviteForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let Some(role) = StaffRole::parse(&form.role) else {
        return staff_refused(&state, &req, &staff, &form, DomainError::invalid(NO_ROLE)).await;
    };
    let (by, who, cfg) = (staff.member().clone(), origin(&req), state.staff.clone());
    let (email, name) = (form.email.clone(), form.name.clone());
    let made = state
        .db
        .run(move |c| {
            let new = accounts::NewInvite {
                email: &email,
                name: &name,
                role,
            };
            let token = accounts::invite(c, &by, &new, &who, &cfg, now_utc())?;
            let invite = accounts::invite_for(c, &token, now_utc())?;
            Ok::<_, DomainError>((token, invite))
        })
        .await;
    let (token, inv) = match made {
        Ok(t) => t,
        Err(e) => return staff_refused(&state, &req, &staff, &form, e).await,
    };
    let mail = invite_mail(
        &state,
        &inv.email,
        &inv.name,
        &staff.member().name,
        role_label(inv.role),
        &token,
    );
    if let Err(e) = state.mailer.send(mail).await {
        tracing::error!(error = %e, "invite mail failed");
        // Nothing half-done: the unsent invite is withdrawn.
        let email = inv.email.clone();
        let _ = state
            .db
            .run(move |c| accounts::withdraw_invites(c, &email, now_utc()))
            .await;
        return staff_page(
            &state,
            &req,
            &staff,
            StatusCode::SERVICE_UNAVAILABLE,
            &form,
            Some("The invite email couldn't be sent, so no invite was made. Try again in a few minutes."),
            None,
        )
        .await;
    }
    see_other("/staff?invited=1", &[])
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// POST `/staff/invites/withdraw`: the open invite for an address stops working.
pub async fn withdraw_invite(
    state: aweb::Data<Portal>,
    staff: Staff,
    form: aweb::Form<WithdrawForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (by, who) = (staff.member().clone(), origin(&req));
    let email: String = form.email.trim().to_lowercase().chars().take(320).collect();
    let done = state
        .db
        .run(move |c| accounts::withdraw_invite(c, &by, &email, &who, now_utc()))
        .await;
    match done {
        Ok(()) => see_other("/staff?withdrawn=1", &[]),
        Err(e) => staff_refused(&state, &req, &staff, &InviteForm::default(), e).await,
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    disabled: Option<String>,
}

pub async fn update_member(
    state: aweb::Data<Portal>,
    staff: Staff,
    id: aweb::Path<String>,
    form: aweb::Form<MemberForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let blank = InviteForm::default();
    let Some(role) = StaffRole::parse(&form.role) else {
        return staff_refused(&state, &req, &staff, &blank, DomainError::invalid(NO_ROLE)).await;
    };
    let disabled = form.disabled.is_some();
    let (by, who, id) = (staff.member().clone(), origin(&req), id.into_inner());
    match state
        .db
        .run(move |c| accounts::update_member(c, &by, &id, role, disabled, &who, now_utc()))
        .await
    {
        Ok(_) => see_other("/staff", &[]),
        Err(e) => staff_refused(&state, &req, &staff, &blank, e).await,
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    email: &'a str,
    name: &'a str,
    role: &'static str,
    message: Option<&'a str>,
    csrf: &'a str,
    gone: bool,
}

fn invite_page(
    state: &Portal,
    req: &HttpRequest,
    status: StatusCode,
    invite: Option<&accounts::Invite>,
    name: &str,
    message: Option<&str>,
) -> HttpResponse {
    let csrf = web::csrf(req, None, state.environment);
    let t = InvitePage {
        email: invite.map(|i| i.email.as_str()).unwrap_or(""),
        name,
        role: invite.map(|i| role_label(i.role)).unwrap_or(""),
        message,
        csrf: &csrf.token,
        gone: invite.is_none(),
    };
    let cookies: Vec<String> = csrf.set_cookie.into_iter().collect();
    page(&t, status, req, &cookies)
}

pub async fn invite_form(
    state: aweb::Data<Portal>,
    token: aweb::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let token = token.into_inner();
    match state
        .db
        .run(move |c| accounts::invite_for(c, &token, now_utc()))
        .await
    {
        Ok(inv) => invite_page(&state, &req, StatusCode::OK, Some(&inv), &inv.name, None),
        Err(DomainError::NotFound(m)) => {
            invite_page(&state, &req, StatusCode::GONE, None, "", Some(&m))
        }
        Err(e) => outage(&req, &e),
    }
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn invite_accept(
    state: aweb::Data<Portal>,
    token: aweb::Path<String>,
    form: aweb::Form<AcceptForm>,
    req: HttpRequest,
) -> HttpResponse {
    if !web::csrf_ok(&req, None, &form.csrf, &state.links.tech_url) {
        return forbidden(&req);
    }
    let token = token.into_inner();
    let t2 = token.clone();
    let invite = match state
        .db
        .run(move |c| accounts::invite_for(c, &t2, now_utc()))
        .await
    {
        Ok(i) => i,
        Err(DomainError::NotFound(m)) => {
            return invite_page(&state, &req, StatusCode::GONE, None, "", Some(&m));
        }
        Err(e) => return outage(&req, &e),
    };
    let name: String = form.name.chars().take(200).collect();
    if form.password != form.confirm {
        return invite_page(
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            Some(&invite),
            &name,
            Some("The password and its confirmation differ."),
        );
    }
    let (who, pw, n) = (origin(&req), form.password.clone(), name.clone());
    match state
        .db
        .run(move |c| accounts::accept_invite(c, &token, &n, &pw, &who, now_utc()))
        .await
    {
        Ok(_) => see_other("/signin?welcome=1", &[session_cookie(&state, "")]),
        Err(DomainError::NotFound(m)) => {
            invite_page(&state, &req, StatusCode::GONE, None, "", Some(&m))
        }
        Err(e) => match refusal(&e) {
            Some((status, m)) => invite_page(&state, &req, status, Some(&invite), &name, Some(&m)),
            None => outage(&req, &e),
        },
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<(String, AuditEntry)>,
}

/// How many audit entries the page shows.
const AUDIT_PAGE: i64 = 300;

pub async fn audit(state: aweb::Data<Portal>, staff: Staff, req: HttpRequest) -> HttpResponse {
    match state
        .db
        .run(|c| accounts::audit_entries(c, AUDIT_PAGE))
        .await
    {
        Ok(entries) => {
            let t = AuditPage {
                nav: staff.nav(&req, &state),
                entries: entries.into_iter().map(|e| (when(e.at), e)).collect(),
            };
            page(&t, StatusCode::OK, &req, &[])
        }
        Err(e) => outage(&req, &e),
    }
}
