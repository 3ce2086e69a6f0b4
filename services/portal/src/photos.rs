//! Job photos on the job page: uploading one from the bench (a plain multipart form, no
//! JavaScript: `<input type=file accept="image/*" capture="environment">` opens a tablet's camera),
//! showing it, removing it. jobs owns the photos and their rules (size, type by the file's first
//! bytes, how many per job, caption); the portal only streams the upload in with a hard cap, so a
//! huge file is never held in memory, and shows jobs' reason on the job page when it refuses.
//!
//! Answers: 303 back to the job's photos on success; the job page with the reason for bad input
//! (400), a file over the limit (413), a job that has all its photos (409); 403 for a forged post
//! or a role that may not; a short page saying nothing was saved when jobs is down (503).

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, X_CONTENT_TYPE_OPTIONS};
use actix_web::web::{Data, Form, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt as _;
use omneuro_platform::auth;
use omneuro_platform::blobs::MAX_PHOTO_BYTES;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, refusal_status, request_id};
use omneuro_proto::jobs::v1 as pb;
use tonic::{Code, Status};

use crate::Portal;
use crate::bench::{Draft, refuse};
use crate::board::fetch;
use crate::pages::{forbidden, page, see_other};
use crate::signin::CsrfForm;
use crate::staff::Staff;

/// The form's file field.
const PHOTO_FIELD: &str = "photo";
/// The most a text field (csrf, caption) may carry; jobs checks the caption's own limit.
const TEXT_LIMIT: usize = 4 * 1024;
/// Past the photo limit the rest of the upload is read and thrown away (so the browser gets the
/// page instead of a reset connection), up to this much; beyond it the connection is dropped.
const DRAIN_LIMIT: usize = 32 * 1024 * 1024;
/// How long a browser may keep a photo (its bytes never change under the same id).
const PHOTO_CACHE: &str = "private, max-age=3600";

pub const NO_FILE: &str = "Choose a photo (or take one) first.";
pub const BROKEN: &str = "The upload didn't arrive whole. Choose the photo and send it again.";
const STORE_DOWN: &str =
    "Photos can't be stored right now, so this one wasn't saved. Try again in a minute.";
const JOBS_DOWN: &str = "The jobs service isn't answering, so the photo wasn't saved. Nothing is lost; go back to the job and try again in a minute.";

/// The sentence for a file over the limit (the same as jobs').
pub fn too_large() -> String {
    format!(
        "The photo is too large: at most {} MB.",
        MAX_PHOTO_BYTES / (1024 * 1024)
    )
}

/// What the upload form sent.
#[derive(Debug, Default)]
pub struct Upload {
    pub csrf: String,
    pub caption: String,
    /// The file's name as the browser gave it (empty: no file was chosen).
    pub filename: String,
    /// What the browser declared; passed on, jobs decides by the bytes.
    pub content_type: String,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub enum Parsed {
    Whole(Upload),
    /// The file went past [`MAX_PHOTO_BYTES`]: the text fields read so far, no data.
    TooLarge(Upload),
    /// Not multipart, cut off, or a text field far too long.
    Broken,
}

/// Reads the multipart body, keeping at most [`MAX_PHOTO_BYTES`] of the first `photo` field and
/// small text fields; anything else is read and dropped. Past the limit nothing more is kept.
pub async fn read_upload(mut body: Multipart) -> Parsed {
    let mut up = Upload::default();
    let (mut over, mut seen_photo, mut dropped) = (false, false, 0usize);
    while let Some(field) = body.next().await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "photo upload: bad multipart body");
                return if over {
                    Parsed::TooLarge(up)
                } else {
                    Parsed::Broken
                };
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let keep_photo = name == PHOTO_FIELD && !seen_photo;
        if keep_photo {
            seen_photo = true;
            up.filename = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or_default()
                .to_owned();
            up.content_type = field
                .content_type()
                .map(|m| m.essence_str().to_owned())
                .unwrap_or_default();
        }
        let keep_text = matches!(name.as_str(), "csrf" | "caption");
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "photo upload: cut off");
                    return if over {
                        Parsed::TooLarge(up)
                    } else {
                        Parsed::Broken
                    };
                }
            };
            let limit = if keep_photo {
                MAX_PHOTO_BYTES
            } else {
                TEXT_LIMIT
            };
            if (keep_photo || keep_text) && !over && buf.len() + chunk.len() <= limit {
                buf.extend_from_slice(&chunk);
                continue;
            }
            if keep_text && !over {
                return Parsed::Broken;
            }
            if keep_photo && !over {
                over = true;
                dropped += buf.len();
                buf = Vec::new();
            }
            dropped += chunk.len();
            if dropped > DRAIN_LIMIT {
                tracing::warn!("photo upload: far over the limit; the connection is dropped");
                return Parsed::TooLarge(up);
            }
        }
        if keep_photo && !over {
            up.data = buf;
        } else if keep_text {
            let text = String::from_utf8_lossy(&buf).into_owned();
            match name.as_str() {
                "csrf" => up.csrf = text,
                _ => up.caption = text,
            }
        }
    }
    if over {
        Parsed::TooLarge(up)
    } else {
        Parsed::Whole(up)
    }
}

#[derive(Template)]
#[template(path = "photo_failed.html")]
struct FailedPage<'a> {
    nav: crate::staff::Nav,
    job_id: &'a str,
    message: &'a str,
}

/// After a photo call: back to the job's photos on success; jobs' reason on the job page for a
/// refusal; the "nothing was saved" page when jobs (or its photo store) is away.
async fn finish(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: String,
    res: Result<(), Status>,
    draft: Draft,
) -> HttpResponse {
    let s = match res {
        Ok(()) => return see_other(&format!("/jobs/{id}#photos"), &[]),
        Err(s) => s,
    };
    match refusal_status(s.code()) {
        Some(StatusCode::FORBIDDEN) => return error_page(StatusCode::FORBIDDEN, &request_id(req)),
        Some(status) => return refuse(staff, state, req, id, status, s.message(), draft).await,
        None => {}
    }
    // jobs answers but its photo store doesn't: the job page says so; jobs away: a short page.
    match fetch(staff, state, req, id.clone()).await {
        Ok(wb) => {
            crate::board::job_page(
                staff,
                state,
                req,
                wb,
                StatusCode::SERVICE_UNAVAILABLE,
                STORE_DOWN,
                draft,
            )
            .await
        }
        Err(_) => page(
            &FailedPage {
                nav: staff.nav(req, state),
                job_id: &id,
                message: JOBS_DOWN,
            },
            StatusCode::SERVICE_UNAVAILABLE,
            req,
            &[],
        ),
    }
}

/// POST `/jobs/{id}/photos`: multipart `csrf`, `caption`, `photo`.
pub async fn upload(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Multipart,
) -> HttpResponse {
    let id = id.into_inner();
    let (up, too_big) = match read_upload(body).await {
        Parsed::Whole(up) => (up, false),
        Parsed::TooLarge(up) => (up, true),
        Parsed::Broken => {
            return refuse(
                &staff,
                &state,
                &req,
                id,
                StatusCode::BAD_REQUEST,
                BROKEN,
                Draft::default(),
            )
            .await;
        }
    };
    // A too-large file whose token came after it still gets its page (nothing changes).
    let token_unread = too_big && up.csrf.is_empty();
    if !token_unread && !staff.csrf_ok(&req, &state, &up.csrf) {
        return forbidden(&req);
    }
    let draft = Draft {
        photo_caption: up.caption.clone(),
        ..Draft::default()
    };
    let refusal = if too_big {
        Some((StatusCode::PAYLOAD_TOO_LARGE, too_large()))
    } else if up.data.is_empty() && up.filename.is_empty() {
        Some((StatusCode::BAD_REQUEST, NO_FILE.to_owned()))
    } else {
        None
    };
    if let Some((status, message)) = refusal {
        return refuse(&staff, &state, &req, id, status, &message, draft).await;
    }
    let mut j = state.job_files.clone();
    let res = grpc::call(
        "JobsService/AddPhoto",
        j.add_photo(auth::request(
            &staff.actor(),
            pb::AddPhotoRequest {
                job_id: id.clone(),
                content_type: up.content_type,
                data: up.data,
                caption: up.caption.trim().to_owned(),
            },
        )),
    )
    .await
    .map(|_| ());
    finish(&staff, &state, &req, id, res, draft).await
}

/// What a photo may be served as: only the types jobs stores.
fn servable(content_type: &str) -> Option<(&'static str, &'static str)> {
    match content_type {
        "image/jpeg" => Some(("image/jpeg", "jpg")),
        "image/png" => Some(("image/png", "png")),
        "image/webp" => Some(("image/webp", "webp")),
        _ => None,
    }
}

/// GET `/jobs/{id}/photos/{photo_id}`: the bytes, as the type jobs decided, never sniffed, shown
/// inline, kept privately for an hour.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    path: Path<(String, String)>,
) -> HttpResponse {
    let (job_id, photo_id) = path.into_inner();
    let mut j = state.job_files.clone();
    let res = grpc::call(
        "JobsService/GetPhoto",
        j.get_photo(auth::request(
            &staff.actor(),
            pb::GetPhotoRequest { job_id, photo_id },
        )),
    )
    .await;
    let photo = match res {
        Ok(r) => r.into_inner(),
        Err(s) => {
            let status = match s.code() {
                Code::NotFound | Code::InvalidArgument => StatusCode::NOT_FOUND,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return error_page(status, &request_id(&req));
        }
    };
    let meta = photo.photo.unwrap_or_default();
    let Some((content_type, ext)) = servable(&meta.content_type) else {
        tracing::error!(photo_id = %meta.id, content_type = %meta.content_type, "a photo of a type that is never stored");
        return error_page(StatusCode::NOT_FOUND, &request_id(&req));
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("inline; filename=\"{}.{ext}\"", meta.id),
        ))
        .insert_header((CACHE_CONTROL, PHOTO_CACHE))
        .insert_header(("content-security-policy", "default-src 'none'; sandbox"))
        .body(photo.data)
}

/// POST `/jobs/{id}/photos/{photo_id}/remove`.
pub async fn remove(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    path: Path<(String, String)>,
    form: Form<CsrfForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let (id, photo_id) = path.into_inner();
    let mut j = state.jobs.clone();
    let res = grpc::call(
        "JobsService/RemovePhoto",
        j.remove_photo(auth::request(
            &staff.actor(),
            pb::RemovePhotoRequest {
                job_id: id.clone(),
                photo_id,
            },
        )),
    )
    .await
    .map(|_| ());
    finish(&staff, &state, &req, id, res, Draft::default()).await
}

/// "2.4 MB", "310 KB" for the page.
pub fn size_text(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else {
        format!("{} KB", ((b / 1024.0).ceil() as i64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well_and_only_stored_types_are_served() {
        assert_eq!(size_text(500), "1 KB");
        assert_eq!(size_text(310 * 1024), "310 KB");
        assert_eq!(size_text(2_516_582), "2.4 MB");
        assert_eq!(servable("image/png"), Some(("image/png", "png")));
        assert_eq!(servable("text/html"), None);
        assert_eq!(servable("image/svg+xml"), None);
        assert!(too_large().contains("10 MB"));
    }
}
