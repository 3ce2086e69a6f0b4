//! Help pages: `/help/{doc_id}` shows one client-visible knowledge-base document — where the
//! assistant's citations of kb passages link for clients (staff read the same document at the
//! portal's `/kb/{doc_id}`).
//!
//! kb decides who may read what (`GetDocument`): a signed-in client asks as themself, anyone else
//! is asked for by site as a visitor (`system:site` with the client audience). Either way only a
//! client-visible document that is shop-wide (or the client's own) comes back, with e-mail
//! addresses and phone numbers redacted; a staff-only document, another client's, a deleted one
//! and a made-up id all get the same helpful 404, so the page never tells whether one exists.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, ServiceConfig, get};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::ids;
use omneuro_proto::kb::v1 as kb;
use tonic::Code;

use crate::pages::SiteState;
use crate::visitor::{Chrome, Visitor, page, site_actor};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/help/{doc_id}", get().to(help_page));
}

/// One section of the document, as shown.
pub struct SectionView {
    pub heading: String,
    pub paragraphs: Vec<String>,
}

#[derive(Template)]
#[template(path = "help.html")]
struct HelpView<'a> {
    chrome: Chrome<'a>,
    title: String,
    updated: String,
    sections: Vec<SectionView>,
}

/// Why there is no document to show.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Not found for this reader (or never was).
    NotFound,
    /// kb did not answer.
    Unavailable,
}

#[derive(Template)]
#[template(path = "help_missing.html")]
struct MissingView<'a> {
    chrome: Chrome<'a>,
    unavailable: bool,
}

/// "November 25, 2026" in shop time.
fn day(t: Option<&omneuro_proto::common::v1::Timestamp>) -> String {
    t.and_then(|t| t.to_utc())
        .map(|u| {
            u.and_utc()
                .with_timezone(&chrono_tz::America::New_York)
                .format("%B %-d, %Y")
                .to_string()
        })
        .unwrap_or_default()
}

fn section_view(s: kb::DocumentSection) -> SectionView {
    SectionView {
        heading: s.heading,
        paragraphs: s
            .text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// GET `/help/{doc_id}`.
async fn help_page(state: Data<SiteState>, req: HttpRequest, doc_id: Path<String>) -> HttpResponse {
    let v = Visitor::of(&state, &req).await;
    let id = doc_id.into_inner();
    let found = if ids::is_valid("doc", &id) {
        // A signed-in client reads as themself; everyone else as a visitor (shop-wide only).
        let actor = v.actor().unwrap_or_else(site_actor);
        let mut k = state.upstreams.kb.clone();
        let res = grpc::call(
            "KbService/GetDocument",
            k.get_document(auth::request(
                &actor,
                kb::GetDocumentRequest {
                    id,
                    audience: kb::Audience::Client.into(),
                    client_id: String::new(),
                },
            )),
        )
        .await;
        match res {
            Ok(r) => Ok(r.into_inner()),
            Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => {
                Err(Missing::NotFound)
            }
            // Logged once by `grpc::call`.
            Err(_) => Err(Missing::Unavailable),
        }
    } else {
        Err(Missing::NotFound)
    };
    match found {
        Ok(r) => {
            let doc = r.document.unwrap_or_default();
            page(
                &HelpView {
                    chrome: v.chrome(&state.links),
                    title: doc.title,
                    updated: day(doc.updated_at.as_ref()),
                    sections: r.sections.into_iter().map(section_view).collect(),
                },
                StatusCode::OK,
                &req,
                &v.cookies,
            )
        }
        Err(why) => page(
            &MissingView {
                chrome: v.chrome(&state.links),
                unavailable: why == Missing::Unavailable,
            },
            if why == Missing::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::NOT_FOUND
            },
            &req,
            &v.cookies,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_become_paragraphs_without_blank_ones() {
        let s = section_view(kb::DocumentSection {
            heading: "Battery › Storage".into(),
            text: "Keep it at 40–60 %.\n\n\n\nNever below freezing.\n\n".into(),
        });
        assert_eq!(s.heading, "Battery › Storage");
        assert_eq!(
            s.paragraphs,
            vec!["Keep it at 40–60 %.", "Never below freezing."]
        );
    }
}
