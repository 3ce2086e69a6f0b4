//! Documents: parsing of new documents, de-duplication by content hash, queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc};
use omneuro_platform::ids;
use sha2::{Digest, Sha256};

use crate::schema::documents;

/// Largest document body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Client,
    Staff,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Staff => "staff",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(Self::Client),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }
}

/// A document that passed validation and can be stored.
#[derive(Debug, Clone)]
pub struct NewDocument {
    title: String,
    body: String,
    visibility: Visibility,
}

impl NewDocument {
    pub fn parse(title: &str, body: &str, visibility: Visibility) -> Result<Self, String> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 300 {
            return Err("title must be 1 to 300 characters".into());
        }
        if body.trim().is_empty() {
            return Err("body is empty".into());
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "body is {} bytes; the limit is {MAX_BODY_BYTES}",
                body.len()
            ));
        }
        if body.contains('\0') {
            return Err("body looks binary (contains NUL bytes)".into());
        }
        Ok(Self {
            title: title.to_owned(),
            body: body.to_owned(),
            visibility,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub body: String,
    pub visibility: Visibility,
    pub content_hash: String,
    pub created_at: NaiveDateTime,
}

type Row = (String, String, String, String, String, NaiveDateTime);

fn from_row((id, title, body, visibility, content_hash, created_at): Row) -> Document {
    Document {
        id,
        title,
        body,
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Staff),
        content_hash,
        created_at,
    }
}

fn columns() -> (
    documents::id,
    documents::title,
    documents::body,
    documents::visibility,
    documents::content_hash,
    documents::created_at,
) {
    (
        documents::id,
        documents::title,
        documents::body,
        documents::visibility,
        documents::content_hash,
        documents::created_at,
    )
}

pub fn content_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `doc` unless the same body is already stored; returns the stored document and whether it is new.
pub fn put(conn: &mut DbConnection, doc: NewDocument) -> Result<(Document, bool), DbError> {
    let hash = content_hash(&doc.body);
    conn.transaction(|conn| {
        let existing: Option<Row> = documents::table
            .filter(documents::content_hash.eq(&hash))
            .select(columns())
            .first(conn)
            .optional()?;
        if let Some(row) = existing {
            return Ok((from_row(row), false));
        }
        let stored = Document {
            id: ids::new_id("doc"),
            title: doc.title,
            body: doc.body,
            visibility: doc.visibility,
            content_hash: hash.clone(),
            created_at: now_utc(),
        };
        diesel::insert_into(documents::table)
            .values((
                documents::id.eq(&stored.id),
                documents::title.eq(&stored.title),
                documents::body.eq(&stored.body),
                documents::visibility.eq(stored.visibility.as_str()),
                documents::content_hash.eq(&stored.content_hash),
                documents::created_at.eq(stored.created_at),
            ))
            .execute(conn)?;
        Ok((stored, true))
    })
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Document>, DbError> {
    Ok(documents::table
        .find(id)
        .select(columns())
        .first::<Row>(conn)
        .optional()?
        .map(from_row))
}
