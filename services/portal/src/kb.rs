//! The knowledge base for staff: the documents kb holds (newest first, paged, searched by title,
//! filtered by visibility and source), one document as readable text, uploading one (a plain
//! multipart form, no JavaScript: a Markdown, text, HTML or PDF file, or pasted text) and deleting
//! one. kb owns the documents and every rule about them (size, binary or broken files, empty
//! text); the portal streams the upload in with a hard cap, so a huge file is never held in
//! memory, and shows kb's reason on the form when it refuses. Calls go to kb as the signed-in
//! staff member (`ListDocuments`, `GetDocument`, `PutDocument`, `DeleteDocument`).
//!
//! Answers: the upload 303s to the new document; bad input keeps the form with the reason (400),
//! a file over the limit says so (413); a forged post 403; kb away: the form (or page) says that
//! nothing changed (503). Deleting needs the confirm box ticked and 303s to the list.

use std::fmt::Write as _;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt as _;
use omneuro_platform::auth::{self, Permission};
use omneuro_platform::config::KbConfig;
use omneuro_platform::grpc;
use omneuro_platform::http::{error_page, failure, request_id};
use omneuro_platform::ids;
use omneuro_proto::common::v1::PageRequest;
use omneuro_proto::kb::v1 as pb;
use serde::Deserialize;

use crate::Portal;
use crate::board::when;
use crate::pages::{forbidden, page, see_other};
use crate::staff::{Nav, Staff};

/// Documents on one page of the list.
const PAGE_SIZE: u32 = 50;
/// The form's file field.
const FILE_FIELD: &str = "file";
/// The form's pasted-text field.
const TEXT_FIELD: &str = "text";
/// The most a small text field (csrf, title, visibility, format) may carry.
const FIELD_LIMIT: usize = 4 * 1024;
/// Past the limit the rest of the upload is read and thrown away (so the browser gets the form
/// back instead of a reset connection), up to this much; beyond it the connection is dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

const KB_DOWN: &str = "The knowledge base isn't answering right now. Try again in a minute.";
const KB_DOWN_NOTHING_ADDED: &str =
    "The knowledge base isn't answering, so nothing was added. Try again in a minute.";
const KB_DOWN_NOTHING_DELETED: &str =
    "The knowledge base isn't answering, so nothing was deleted. Try again in a minute.";
pub const BROKEN: &str = "The upload didn't arrive whole. Choose the file and send it again.";
pub const NOTHING: &str = "Choose a file or paste the text to add.";
pub const BOTH: &str = "Choose a file or paste text, not both.";
pub const NO_TITLE: &str = "Give the pasted text a title.";
pub const NO_VISIBILITY: &str = "Choose who may read it: staff only, or clients too.";
pub const NOT_CONFIRMED: &str = "Tick “Yes, delete it” to delete the document.";
pub const NO_DOCUMENT: &str = "There is no document with that number.";

/// The largest upload the portal reads: kb's default document limit (kb checks its own).
pub fn max_upload_bytes() -> usize {
    KbConfig::default().max_document_bytes
}

/// The sentence for a file over the limit.
pub fn too_large() -> String {
    format!(
        "The file is too large: at most {} MB.",
        max_upload_bytes() / (1024 * 1024)
    )
}

// ---- reading the upload ---------------------------------------------------------------------

/// What the upload form sent.
#[derive(Debug, Default, Clone)]
pub struct Upload {
    pub csrf: String,
    pub title: String,
    pub visibility: String,
    /// How the pasted text is written: `text`, `markdown` or `html`.
    pub format: String,
    pub text: String,
    /// The file's name as the browser gave it (empty: no file was chosen).
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub enum Parsed {
    Whole(Upload),
    /// The file or the text went past [`max_upload_bytes`]: the small fields read so far.
    TooLarge(Upload),
    /// Not multipart, cut off, or a small field far too long.
    Broken,
}

/// Reads the multipart body, keeping at most [`max_upload_bytes`] of the first `file` field and
/// of the `text` field, and small fields; anything else is read and dropped. Past the limit
/// nothing more is kept.
pub async fn read_upload(mut body: Multipart) -> Parsed {
    let max = max_upload_bytes();
    let mut up = Upload::default();
    let (mut over, mut seen_file, mut dropped) = (false, false, 0usize);
    let cut = |over: bool, up: Upload| {
        if over {
            Parsed::TooLarge(up)
        } else {
            Parsed::Broken
        }
    };
    while let Some(field) = body.next().await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "kb upload: bad multipart body");
                return cut(over, up);
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let keep_file = name == FILE_FIELD && !seen_file;
        if keep_file {
            seen_file = true;
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
        let big = keep_file || name == TEXT_FIELD;
        let small = matches!(name.as_str(), "csrf" | "title" | "visibility" | "format");
        let limit = if big { max } else { FIELD_LIMIT };
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "kb upload: cut off");
                    return cut(over, up);
                }
            };
            if (big || small) && !over && buf.len() + chunk.len() <= limit {
                buf.extend_from_slice(&chunk);
                continue;
            }
            if small && !over {
                return Parsed::Broken;
            }
            if big && !over {
                over = true;
                dropped += buf.len();
                buf = Vec::new();
            }
            dropped += chunk.len();
            if dropped > DRAIN_LIMIT {
                tracing::warn!("kb upload: far over the limit; the connection is dropped");
                return Parsed::TooLarge(up);
            }
        }
        if over {
            continue;
        }
        if keep_file {
            up.data = buf;
        } else if big || small {
            let text = String::from_utf8_lossy(&buf).into_owned();
            match name.as_str() {
                "csrf" => up.csrf = text,
                "title" => up.title = text,
                "visibility" => up.visibility = text,
                "format" => up.format = text,
                _ => up.text = text,
            }
        }
    }
    if over {
        Parsed::TooLarge(up)
    } else {
        Parsed::Whole(up)
    }
}

/// A file's format by its name's extension, else by the type the browser declared.
pub fn file_format(filename: &str, content_type: &str) -> Option<pb::Format> {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "md" | "markdown" => return Some(pb::Format::Markdown),
        "txt" | "text" => return Some(pb::Format::Text),
        "html" | "htm" => return Some(pb::Format::Html),
        "pdf" => return Some(pb::Format::Pdf),
        _ => {}
    }
    match content_type {
        "text/markdown" | "text/x-markdown" => Some(pb::Format::Markdown),
        "text/plain" => Some(pb::Format::Text),
        "text/html" => Some(pb::Format::Html),
        "application/pdf" => Some(pb::Format::Pdf),
        _ => None,
    }
}

fn unsupported(filename: &str) -> String {
    format!(
        "“{}” can't be added: only Markdown (.md), text (.txt), HTML (.html) and PDF (.pdf) files can.",
        filename.chars().take(100).collect::<String>()
    )
}

/// A title from a file's name: "brake-bleeding.md" → "brake-bleeding".
fn title_from(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    stem.trim().chars().take(300).collect()
}

/// What the form asks kb to store, or the sentence saying why not.
fn put_request(up: &Upload) -> Result<pb::PutDocumentRequest, String> {
    let visibility = match up.visibility.trim() {
        "staff" => pb::Visibility::Staff,
        "client" => pb::Visibility::Client,
        _ => return Err(NO_VISIBILITY.into()),
    };
    let has_file = !up.filename.is_empty() || !up.data.is_empty();
    let has_text = !up.text.trim().is_empty();
    let mut req = pb::PutDocumentRequest {
        title: up.title.trim().to_owned(),
        visibility: visibility.into(),
        ..Default::default()
    };
    match (has_file, has_text) {
        (true, true) => return Err(BOTH.into()),
        (false, false) => return Err(NOTHING.into()),
        (true, false) => {
            let format = file_format(&up.filename, &up.content_type)
                .ok_or_else(|| unsupported(&up.filename))?;
            if req.title.is_empty() {
                req.title = title_from(&up.filename);
            }
            req.format = format.into();
            req.data = up.data.clone();
        }
        (false, true) => {
            if req.title.is_empty() {
                return Err(NO_TITLE.into());
            }
            req.format = match up.format.trim() {
                "markdown" => pb::Format::Markdown,
                "html" => pb::Format::Html,
                _ => pb::Format::Text,
            }
            .into();
            req.body = up.text.clone();
        }
    }
    Ok(req)
}

// ---- labels ---------------------------------------------------------------------------------

fn visibility_label(v: i32) -> &'static str {
    match pb::Visibility::try_from(v) {
        Ok(pb::Visibility::Client) => "clients and staff",
        Ok(pb::Visibility::Staff) => "staff only",
        _ => "",
    }
}

fn format_label(f: i32) -> &'static str {
    match pb::Format::try_from(f) {
        Ok(pb::Format::Markdown) => "Markdown",
        Ok(pb::Format::Html) => "HTML",
        Ok(pb::Format::Pdf) => "PDF",
        _ => "text",
    }
}

/// A source ref as shown, with a portal link when the record has a page here (`job:job_…`).
pub struct SourceView {
    pub label: String,
    pub url: String,
}

pub fn source_view(source_ref: &str) -> SourceView {
    if source_ref.is_empty() {
        return SourceView {
            label: "uploaded".into(),
            url: String::new(),
        };
    }
    let url = match source_ref.split_once(':') {
        Some(("job", id)) if ids::is_valid("job", id) => format!("/jobs/{id}"),
        _ => String::new(),
    };
    SourceView {
        label: source_ref.to_owned(),
        url,
    }
}

/// `text` for a query string value.
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---- the list -------------------------------------------------------------------------------

pub struct DocRow {
    pub id: String,
    pub title: String,
    pub visibility: &'static str,
    pub format: &'static str,
    pub source: SourceView,
    pub chunks: u32,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "kb_list.html")]
struct ListPage {
    nav: Nav,
    q: String,
    visibility: String,
    source: String,
    rows: Vec<DocRow>,
    total: u64,
    /// The next page's link (empty on the last page).
    next: String,
    /// Not on the first page: a link back to it.
    first: String,
    can_edit: bool,
    notice: Option<&'static str>,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    deleted: String,
}

/// GET `/kb?q=&visibility=&source=&page=`.
pub async fn list(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<ListQuery>,
) -> HttpResponse {
    let q = q.into_inner();
    let text: String = q.q.trim().chars().take(100).collect();
    let visibility = match q.visibility.as_str() {
        "client" | "staff" => q.visibility.clone(),
        _ => String::new(),
    };
    let source: String = q.source.trim().chars().take(32).collect();
    let link = |page: &str| {
        let mut l = format!(
            "/kb?q={}&visibility={}&source={}",
            query_value(&text),
            query_value(&visibility),
            query_value(&source)
        );
        if !page.is_empty() {
            let _ = write!(l, "&page={}", query_value(page));
        }
        l
    };
    let mut t = ListPage {
        nav: staff.nav(&req, &state),
        q: text.clone(),
        visibility: visibility.clone(),
        source: source.clone(),
        rows: Vec::new(),
        total: 0,
        next: String::new(),
        first: if q.page.is_empty() {
            String::new()
        } else {
            link("")
        },
        can_edit: staff.may(Permission::EditKnowledgeBase),
        notice: (q.deleted == "1").then_some("Document deleted."),
        message: None,
    };
    let mut k = state.kb.clone();
    let res = grpc::call(
        "KbService/ListDocuments",
        k.list_documents(auth::request(
            &staff.actor(),
            pb::ListDocumentsRequest {
                page: Some(PageRequest {
                    page_size: PAGE_SIZE,
                    page_token: q.page.chars().take(32).collect(),
                }),
                visibility: match visibility.as_str() {
                    "client" => pb::Visibility::Client,
                    "staff" => pb::Visibility::Staff,
                    _ => pb::Visibility::Unspecified,
                }
                .into(),
                source_kind: source.clone(),
                title_contains: text.clone(),
            },
        )),
    )
    .await;
    let status = match res {
        Ok(r) => {
            let r = r.into_inner();
            t.total = r.total;
            let next = r.page.unwrap_or_default().next_page_token;
            if !next.is_empty() {
                t.next = link(&next);
            }
            t.rows = r
                .documents
                .into_iter()
                .map(|d| DocRow {
                    visibility: visibility_label(d.visibility),
                    format: format_label(d.format),
                    source: source_view(&d.source_ref),
                    chunks: d.chunk_count,
                    updated: d
                        .updated_at
                        .map(|u| when(u.unix_micros))
                        .unwrap_or_default(),
                    title: d.title,
                    id: d.id,
                })
                .collect();
            StatusCode::OK
        }
        Err(s) => {
            let (status, message) = failure(&s, KB_DOWN);
            t.message = Some(message);
            status
        }
    };
    page(&t, status, &req, &[])
}

// ---- uploading ------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "kb_upload.html")]
struct UploadPage {
    nav: Nav,
    draft: Upload,
    max_mb: usize,
    message: Option<String>,
}

fn upload_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    draft: Upload,
    status: StatusCode,
    message: Option<String>,
) -> HttpResponse {
    page(
        &UploadPage {
            nav: staff.nav(req, state),
            draft,
            max_mb: max_upload_bytes() / (1024 * 1024),
            message,
        },
        status,
        req,
        &[],
    )
}

/// GET `/kb/upload`: the form.
pub async fn upload_form(staff: Staff, state: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let draft = Upload {
        visibility: "staff".into(),
        format: "markdown".into(),
        ..Upload::default()
    };
    upload_page(&staff, &state, &req, draft, StatusCode::OK, None)
}

/// "the document is empty" → "Nothing was added: the document is empty."
fn not_added(reason: &str) -> String {
    let reason = reason.trim().trim_end_matches('.');
    format!("Nothing was added: {reason}.")
}

/// POST `/kb/upload`: multipart `csrf`, `title`, `visibility`, `format`, `text`, `file`.
pub async fn upload(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    body: Multipart,
) -> HttpResponse {
    let (up, too_big) = match read_upload(body).await {
        Parsed::Whole(up) => (up, false),
        Parsed::TooLarge(up) => (up, true),
        Parsed::Broken => {
            let draft = Upload {
                visibility: "staff".into(),
                ..Upload::default()
            };
            return upload_page(
                &staff,
                &state,
                &req,
                draft,
                StatusCode::BAD_REQUEST,
                Some(BROKEN.into()),
            );
        }
    };
    // A too-large file whose token came after it still gets its form back (nothing changes).
    let token_unread = too_big && up.csrf.is_empty();
    if !token_unread && !staff.csrf_ok(&req, &state, &up.csrf) {
        return forbidden(&req);
    }
    // The form comes back without the file (a browser never re-fills a file input).
    let draft = |up: &Upload| Upload {
        data: Vec::new(),
        filename: String::new(),
        ..up.clone()
    };
    if too_big {
        return upload_page(
            &staff,
            &state,
            &req,
            draft(&up),
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(too_large()),
        );
    }
    let put = match put_request(&up) {
        Ok(p) => p,
        Err(m) => {
            return upload_page(
                &staff,
                &state,
                &req,
                draft(&up),
                StatusCode::BAD_REQUEST,
                Some(m),
            );
        }
    };
    let mut k = state.kb.clone();
    let res = grpc::call(
        "KbService/PutDocument",
        k.put_document(auth::request(&staff.actor(), put)),
    )
    .await;
    match res {
        Ok(r) => {
            let r = r.into_inner();
            let id = r.document.map(|d| d.id).unwrap_or_default();
            let flag = if r.created { "added" } else { "same" };
            see_other(&format!("/kb/{id}?{flag}=1"), &[])
        }
        Err(s) => {
            let (status, message) = failure(&s, KB_DOWN_NOTHING_ADDED);
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                message
            } else {
                not_added(&message)
            };
            upload_page(&staff, &state, &req, draft(&up), status, Some(message))
        }
    }
}

// ---- one document ---------------------------------------------------------------------------

pub struct SectionView {
    pub heading: String,
    pub paragraphs: Vec<String>,
}

#[derive(Template)]
#[template(path = "kb_doc.html")]
struct DocPage {
    nav: Nav,
    id: String,
    doc: Option<DocView>,
    can_edit: bool,
    notice: Option<&'static str>,
    message: Option<String>,
}

struct DocView {
    title: String,
    visibility: &'static str,
    format: &'static str,
    source: SourceView,
    owner: String,
    chunks: u32,
    created: String,
    updated: String,
    /// The public help page, for a client-visible shop-wide document.
    help_url: String,
    sections: Vec<SectionView>,
}

#[derive(Deserialize)]
pub struct DocQuery {
    #[serde(default)]
    added: String,
    #[serde(default)]
    same: String,
}

async fn doc_page(
    staff: &Staff,
    state: &Portal,
    req: &HttpRequest,
    id: String,
    notice: Option<&'static str>,
    refusal: Option<(StatusCode, String)>,
) -> HttpResponse {
    let mut t = DocPage {
        nav: staff.nav(req, state),
        id: id.chars().take(64).collect(),
        doc: None,
        can_edit: staff.may(Permission::EditKnowledgeBase),
        notice,
        message: None,
    };
    if !ids::is_valid("doc", &id) {
        t.message = Some(NO_DOCUMENT.into());
        return page(&t, StatusCode::NOT_FOUND, req, &[]);
    }
    let mut k = state.kb.clone();
    let res = grpc::call(
        "KbService/GetDocument",
        k.get_document(auth::request(
            &staff.actor(),
            pb::GetDocumentRequest {
                id: id.clone(),
                ..Default::default()
            },
        )),
    )
    .await;
    let status = match res {
        Ok(r) => {
            let r = r.into_inner();
            let d = r.document.unwrap_or_default();
            let shop_wide_client =
                d.visibility == i32::from(pb::Visibility::Client) && d.owner_client_id.is_empty();
            t.doc = Some(DocView {
                visibility: visibility_label(d.visibility),
                format: format_label(d.format),
                source: source_view(&d.source_ref),
                owner: d.owner_client_id,
                chunks: d.chunk_count,
                created: d
                    .created_at
                    .map(|u| when(u.unix_micros))
                    .unwrap_or_default(),
                updated: d
                    .updated_at
                    .map(|u| when(u.unix_micros))
                    .unwrap_or_default(),
                help_url: if shop_wide_client {
                    format!(
                        "{}/help/{}",
                        state.links.public_url.trim_end_matches('/'),
                        d.id
                    )
                } else {
                    String::new()
                },
                title: d.title,
                sections: r
                    .sections
                    .into_iter()
                    .map(|s| SectionView {
                        heading: s.heading,
                        paragraphs: s
                            .text
                            .split("\n\n")
                            .map(str::trim)
                            .filter(|p| !p.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    })
                    .collect(),
            });
            match refusal {
                Some((status, m)) => {
                    t.message = Some(m);
                    status
                }
                None => StatusCode::OK,
            }
        }
        Err(s) => {
            let (status, message) = failure(&s, KB_DOWN);
            t.message = Some(if status == StatusCode::NOT_FOUND {
                NO_DOCUMENT.into()
            } else {
                message
            });
            status
        }
    };
    page(&t, status, req, &[])
}

/// GET `/kb/{doc_id}`.
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    q: Query<DocQuery>,
) -> HttpResponse {
    let notice = if q.added == "1" {
        Some("Added to the knowledge base: it is searchable now.")
    } else if q.same == "1" {
        Some("This document was already in the knowledge base; nothing changed.")
    } else {
        None
    };
    doc_page(&staff, &state, &req, id.into_inner(), notice, None).await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// POST `/kb/{doc_id}/delete`: `csrf`, `confirm=yes`.
pub async fn delete(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Form<DeleteForm>,
) -> HttpResponse {
    if !staff.csrf_ok(&req, &state, &form.csrf) {
        return forbidden(&req);
    }
    let id = id.into_inner();
    if !ids::is_valid("doc", &id) {
        return doc_page(&staff, &state, &req, id, None, None).await;
    }
    if form.confirm != "yes" {
        let refusal = Some((StatusCode::BAD_REQUEST, NOT_CONFIRMED.to_owned()));
        return doc_page(&staff, &state, &req, id, None, refusal).await;
    }
    let mut k = state.kb.clone();
    let res = grpc::call(
        "KbService/DeleteDocument",
        k.delete_document(auth::request(
            &staff.actor(),
            pb::DeleteDocumentRequest {
                id: id.clone(),
                source_ref: String::new(),
            },
        )),
    )
    .await;
    match res {
        Ok(_) => see_other("/kb?deleted=1", &[]),
        Err(s) => {
            let (status, message) = failure(&s, KB_DOWN_NOTHING_DELETED);
            if status == StatusCode::FORBIDDEN {
                return error_page(StatusCode::FORBIDDEN, &request_id(&req));
            }
            doc_page(&staff, &state, &req, id, None, Some((status, message))).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_extension_then_declared_type() {
        assert_eq!(file_format("Brakes.MD", ""), Some(pb::Format::Markdown));
        assert_eq!(
            file_format("a.txt", "application/octet-stream"),
            Some(pb::Format::Text)
        );
        assert_eq!(file_format("page.htm", ""), Some(pb::Format::Html));
        assert_eq!(file_format("manual.pdf", ""), Some(pb::Format::Pdf));
        assert_eq!(
            file_format("notes", "text/markdown"),
            Some(pb::Format::Markdown)
        );
        assert_eq!(file_format("photo.jpg", "image/jpeg"), None);
        assert_eq!(title_from("C:\\docs\\brake-bleeding.md"), "brake-bleeding");
        assert_eq!(title_from("README"), "README");
    }

    #[test]
    fn the_form_says_what_is_missing() {
        let base = Upload {
            visibility: "client".into(),
            ..Upload::default()
        };
        assert_eq!(put_request(&base).unwrap_err(), NOTHING);
        let both = Upload {
            filename: "a.md".into(),
            data: b"# A".to_vec(),
            text: "b".into(),
            ..base.clone()
        };
        assert_eq!(put_request(&both).unwrap_err(), BOTH);
        let untitled = Upload {
            text: "pasted".into(),
            ..base.clone()
        };
        assert_eq!(put_request(&untitled).unwrap_err(), NO_TITLE);
        let no_vis = Upload {
            visibility: "everyone".into(),
            ..untitled.clone()
        };
        assert_eq!(put_request(&no_vis).unwrap_err(), NO_VISIBILITY);
        let exe = Upload {
            filename: "tool.exe".into(),
            data: vec![0x4d, 0x5a],
            ..base.clone()
        };
        assert!(put_request(&exe).unwrap_err().contains("only Markdown"));
        let file = Upload {
            filename: "care.md".into(),
            data: b"# Care".to_vec(),
            ..base
        };
        let r = put_request(&file).unwrap();
        assert_eq!(
            (r.title.as_str(), r.format, r.visibility),
            (
                "care",
                i32::from(pb::Format::Markdown),
                i32::from(pb::Visibility::Client)
            )
        );
        assert!(r.body.is_empty() && r.data == b"# Care");
    }

    #[test]
    fn job_sources_link_to_the_job_and_queries_are_escaped() {
        let s = source_view("job:job_0123456789abcdefghij");
        assert_eq!(s.url, "/jobs/job_0123456789abcdefghij");
        assert_eq!(source_view("file:/srv/x.md").url, "");
        assert_eq!(source_view("").label, "uploaded");
        assert_eq!(query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            not_added("the document is empty"),
            "Nothing was added: the document is empty."
        );
    }
}
