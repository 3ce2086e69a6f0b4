//! Documents and their chunks in the database (the source of truth; the search index is derived).
//!
//! A document is de-duplicated by one unique key: `src:<source ref>` when it has a source (putting
//! the same source again replaces the body and chunks when anything changed), otherwise
//! `hash:<visibility>:<owner>:<sha256 of the body>` — the same body is stored once per audience and
//! never shared between two clients' records.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use omneuro_platform::db::{DbConnection, DbError, now_utc, write_transaction};
use omneuro_platform::{ids, per_backend};
use sha2::{Digest, Sha256};

use crate::chunking::Chunk;
use crate::extract::SourceFormat;
use crate::schema::{chunks, documents};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest source ref, in characters.
pub const MAX_SOURCE_REF_CHARS: usize = 1000;
/// Separator between the headings of a chunk's heading path.
pub const HEADING_SEP: &str = " › ";

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

/// A document that passed validation and can be stored. `body` is the text kb keeps (a PDF's
/// extracted text layer, the markup of an HTML page).
#[derive(Debug, Clone)]
pub struct NewDocument {
    title: String,
    body: String,
    format: SourceFormat,
    visibility: Visibility,
    owner_client: Option<String>,
    source_ref: Option<String>,
}

impl NewDocument {
    pub fn parse(
        title: &str,
        body: String,
        format: SourceFormat,
        visibility: Visibility,
        owner_client: Option<&str>,
        source_ref: Option<&str>,
    ) -> Result<Self, String> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            return Err(format!("title must be 1 to {MAX_TITLE_CHARS} characters"));
        }
        if title.chars().any(char::is_control) {
            return Err("title must not contain control characters".into());
        }
        if body.trim().is_empty() {
            return Err("the document is empty".into());
        }
        let owner_client = match owner_client.map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) if ids::is_valid("cli", id) => Some(id.to_owned()),
            Some(id) => return Err(format!("`{id}` is not a client id (cli_…)")),
            None => None,
        };
        let source_ref = match source_ref.map(str::trim).filter(|s| !s.is_empty()) {
            Some(r) if r.chars().count() > MAX_SOURCE_REF_CHARS => {
                return Err(format!(
                    "source ref must be at most {MAX_SOURCE_REF_CHARS} characters"
                ));
            }
            Some(r) if r.chars().any(char::is_control) => {
                return Err("source ref must not contain control characters".into());
            }
            Some(r) => Some(r.to_owned()),
            None => None,
        };
        Ok(Self {
            title: title.to_owned(),
            body,
            format,
            visibility,
            owner_client,
            source_ref,
        })
    }

    pub fn body(&self) -> &str {
        &self.body
    }
    pub fn format(&self) -> SourceFormat {
        self.format
    }

    fn dedupe_key(&self, hash: &str) -> String {
        match &self.source_ref {
            Some(r) => format!("src:{r}"),
            None => format!(
                "hash:{}:{}:{hash}",
                self.visibility.as_str(),
                self.owner_client.as_deref().unwrap_or("")
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub body: String,
    pub visibility: Visibility,
    pub content_hash: String,
    pub format: SourceFormat,
    pub owner_client: Option<String>,
    pub source_ref: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub chunk_count: u32,
}

impl Document {
    /// May a search scoped to `client` (`None`: shop-wide only) use this document?
    pub fn visible_to_client(&self, client: Option<&str>) -> bool {
        self.visibility == Visibility::Client
            && match &self.owner_client {
                None => true,
                Some(owner) => client == Some(owner.as_str()),
            }
    }
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The same document was already stored; nothing changed.
    Unchanged,
    /// A document with the same source ref changed: body and chunks replaced.
    Replaced,
}

/// A chunk as stored, with what the index and search results need from its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    pub id: String,
    pub document_id: String,
    pub position: i32,
    /// The chunk's heading path joined with [`HEADING_SEP`] (empty outside any section).
    pub heading: String,
    pub text: String,
    pub start_char: i32,
    pub end_char: i32,
    pub title: String,
    pub source_ref: Option<String>,
    pub visibility: Visibility,
    pub owner_client: Option<String>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
);

#[allow(clippy::type_complexity)]
fn columns() -> (
    documents::id,
    documents::title,
    documents::body,
    documents::visibility,
    documents::content_hash,
    documents::format,
    documents::owner_client,
    documents::source_ref,
    documents::created_at,
    documents::updated_at,
) {
    (
        documents::id,
        documents::title,
        documents::body,
        documents::visibility,
        documents::content_hash,
        documents::format,
        documents::owner_client,
        documents::source_ref,
        documents::created_at,
        documents::updated_at,
    )
}

fn from_row(row: Row, chunk_count: u32) -> Document {
    let (id, title, body, vis, content_hash, format, owner_client, source_ref, created, updated) =
        row;
    Document {
        id,
        title,
        body,
        // The CHECK constraints keep these in range; staff / text are the safe readings.
        visibility: Visibility::parse(&vis).unwrap_or(Visibility::Staff),
        content_hash,
        format: SourceFormat::parse(&format).unwrap_or(SourceFormat::Text),
        owner_client,
        source_ref,
        created_at: created,
        updated_at: updated,
        chunk_count,
    }
}

pub fn content_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `doc_…#<position>`: stable across rebuilds.
pub fn chunk_id(doc_id: &str, position: usize) -> String {
    format!("{doc_id}#{position}")
}

fn count_chunks_of(conn: &mut DbConnection, doc_id: &str) -> Result<u32, DbError> {
    let n: i64 = chunks::table
        .filter(chunks::document_id.eq(doc_id))
        .count()
        .get_result(conn)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Stores `doc` with `new_chunks` (its chunking) unless it is already stored as it is; replaces
/// the body and chunks of a changed document with the same source ref.
pub fn put(
    conn: &mut DbConnection,
    doc: NewDocument,
    new_chunks: &[Chunk],
) -> Result<(Document, PutOutcome), DbError> {
    let hash = content_hash(&doc.body);
    let key = doc.dedupe_key(&hash);
    write_transaction(conn, |conn| {
        let existing: Option<Row> = documents::table
            .filter(documents::dedupe_key.eq(&key))
            .select(columns())
            .first(conn)
            .optional()?;
        let now = now_utc();
        if let Some(row) = existing {
            let n = count_chunks_of(conn, &row.0)?;
            let old = from_row(row, n);
            let same = old.content_hash == hash
                && old.title == doc.title
                && old.visibility == doc.visibility
                && old.owner_client == doc.owner_client
                && old.format == doc.format;
            if same || doc.source_ref.is_none() {
                return Ok((old, PutOutcome::Unchanged));
            }
            diesel::update(documents::table.find(&old.id))
                .set((
                    documents::title.eq(&doc.title),
                    documents::body.eq(&doc.body),
                    documents::visibility.eq(doc.visibility.as_str()),
                    documents::content_hash.eq(&hash),
                    documents::format.eq(doc.format.as_str()),
                    documents::owner_client.eq(&doc.owner_client),
                    documents::updated_at.eq(now),
                ))
                .execute(conn)?;
            diesel::delete(chunks::table.filter(chunks::document_id.eq(&old.id))).execute(conn)?;
            insert_chunks(conn, &old.id, new_chunks)?;
            let stored = Document {
                title: doc.title,
                body: doc.body,
                visibility: doc.visibility,
                content_hash: hash,
                format: doc.format,
                owner_client: doc.owner_client,
                updated_at: now,
                chunk_count: u32::try_from(new_chunks.len()).unwrap_or(u32::MAX),
                ..old
            };
            return Ok((stored, PutOutcome::Replaced));
        }
        let stored = Document {
            id: ids::new_id("doc"),
            title: doc.title,
            body: doc.body,
            visibility: doc.visibility,
            content_hash: hash,
            format: doc.format,
            owner_client: doc.owner_client,
            source_ref: doc.source_ref,
            created_at: now,
            updated_at: now,
            chunk_count: u32::try_from(new_chunks.len()).unwrap_or(u32::MAX),
        };
        diesel::insert_into(documents::table)
            .values((
                documents::id.eq(&stored.id),
                documents::title.eq(&stored.title),
                documents::body.eq(&stored.body),
                documents::visibility.eq(stored.visibility.as_str()),
                documents::content_hash.eq(&stored.content_hash),
                documents::format.eq(stored.format.as_str()),
                documents::owner_client.eq(&stored.owner_client),
                documents::source_ref.eq(&stored.source_ref),
                documents::dedupe_key.eq(&key),
                documents::created_at.eq(stored.created_at),
                documents::updated_at.eq(stored.updated_at),
            ))
            .execute(conn)?;
        insert_chunks(conn, &stored.id, new_chunks)?;
        Ok((stored, PutOutcome::Created))
    })
}

fn to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn insert_chunks(
    conn: &mut DbConnection,
    doc_id: &str,
    new_chunks: &[Chunk],
) -> Result<(), DbError> {
    // Multi-row inserts (500 rows, 3,500 parameters: under both backends' limits).
    for batch in new_chunks.chunks(500) {
        let rows: Vec<_> = batch
            .iter()
            .map(|c| {
                (
                    chunks::id.eq(chunk_id(doc_id, c.index)),
                    chunks::document_id.eq(doc_id.to_owned()),
                    chunks::position.eq(to_i32(c.index)),
                    chunks::heading.eq(c.heading_path.join(HEADING_SEP)),
                    chunks::text.eq(c.text.clone()),
                    chunks::start_char.eq(to_i32(c.start_char)),
                    chunks::end_char.eq(to_i32(c.end_char)),
                )
            })
            .collect();
        per_backend!(&mut *conn, |c| diesel::insert_into(chunks::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Document>, DbError> {
    let Some(row) = documents::table
        .find(id)
        .select(columns())
        .first::<Row>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let n = count_chunks_of(conn, id)?;
    Ok(Some(from_row(row, n)))
}

pub fn id_by_source(conn: &mut DbConnection, source_ref: &str) -> Result<Option<String>, DbError> {
    Ok(documents::table
        .filter(documents::source_ref.eq(source_ref))
        .select(documents::id)
        .first(conn)
        .optional()?)
}

/// Deletes a document and its chunks; the number of chunks removed, `None` if there was none.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<Option<u32>, DbError> {
    write_transaction(conn, |conn| {
        let n = diesel::delete(chunks::table.filter(chunks::document_id.eq(id))).execute(conn)?;
        let docs = diesel::delete(documents::table.find(id)).execute(conn)?;
        Ok((docs > 0).then(|| u32::try_from(n).unwrap_or(u32::MAX)))
    })
}

type ChunkRow = (
    String,
    String,
    i32,
    String,
    String,
    i32,
    i32,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn chunk_from_row(r: ChunkRow) -> StoredChunk {
    let (
        id,
        document_id,
        position,
        heading,
        text,
        start_char,
        end_char,
        title,
        source_ref,
        vis,
        owner,
    ) = r;
    StoredChunk {
        id,
        document_id,
        position,
        heading,
        text,
        start_char,
        end_char,
        title,
        source_ref,
        visibility: Visibility::parse(&vis).unwrap_or(Visibility::Staff),
        owner_client: owner,
    }
}

macro_rules! chunk_query {
    () => {
        chunks::table.inner_join(documents::table).select((
            chunks::id,
            chunks::document_id,
            chunks::position,
            chunks::heading,
            chunks::text,
            chunks::start_char,
            chunks::end_char,
            documents::title,
            documents::source_ref,
            documents::visibility,
            documents::owner_client,
        ))
    };
}

/// The chunks of one document, in order.
pub fn chunks_of(conn: &mut DbConnection, doc_id: &str) -> Result<Vec<StoredChunk>, DbError> {
    let rows: Vec<ChunkRow> = chunk_query!()
        .filter(chunks::document_id.eq(doc_id))
        .order(chunks::position.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(chunk_from_row).collect())
}

/// The chunks with these ids (search results), in no particular order; missing ids are skipped.
pub fn chunks_by_ids(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<StoredChunk>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ChunkRow> = chunk_query!().filter(chunks::id.eq_any(ids)).load(conn)?;
    Ok(rows.into_iter().map(chunk_from_row).collect())
}

/// One page of every stored chunk, ordered by document then position, after `after`
/// (`(document id, position)`); for rebuilding the index without holding everything in memory.
pub fn chunks_page(
    conn: &mut DbConnection,
    after: Option<(&str, i32)>,
    limit: i64,
) -> Result<Vec<StoredChunk>, DbError> {
    let mut q = chunk_query!()
        .order((chunks::document_id.asc(), chunks::position.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((doc, pos)) = after {
        q = q.filter(
            chunks::document_id
                .gt(doc.to_owned())
                .or(chunks::document_id
                    .eq(doc.to_owned())
                    .and(chunks::position.gt(pos))),
        );
    }
    let rows: Vec<ChunkRow> = q.load(conn)?;
    Ok(rows.into_iter().map(chunk_from_row).collect())
}

pub fn count_documents(conn: &mut DbConnection) -> Result<u64, DbError> {
    let n: i64 = documents::table.count().get_result(conn)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub fn count_chunks(conn: &mut DbConnection) -> Result<u64, DbError> {
    let n: i64 = chunks::table.count().get_result(conn)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Documents that have no chunks yet (stored before chunking existed), as `(id, body, format)`.
pub fn unchunked(conn: &mut DbConnection) -> Result<Vec<(String, String, SourceFormat)>, DbError> {
    let rows: Vec<(String, String, String)> = documents::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            chunks::table.filter(chunks::document_id.eq(documents::id)),
        )))
        .select((documents::id, documents::body, documents::format))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, body, f)| {
            (
                id,
                body,
                SourceFormat::parse(&f).unwrap_or(SourceFormat::Text),
            )
        })
        .collect())
}

/// Stores the chunks of a document that had none.
pub fn add_chunks(
    conn: &mut DbConnection,
    doc_id: &str,
    new_chunks: &[Chunk],
) -> Result<(), DbError> {
    write_transaction(conn, |conn| insert_chunks(conn, doc_id, new_chunks))
}

// ---------------------------------------------------------------------------------------------
// Listing (the portal's knowledge-base page)

/// Documents on one page when the caller does not say.
pub const DEFAULT_PAGE: u32 = 50;
/// Most documents on one page.
pub const MAX_PAGE: u32 = 200;
/// Longest title search, in characters.
pub const MAX_TITLE_SEARCH_CHARS: usize = 100;
/// Longest source kind (`job`, `file`), in characters.
pub const MAX_SOURCE_KIND_CHARS: usize = 32;
/// The `LIKE … ESCAPE` character of the title search.
const ESCAPE: char = '\\';

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Which source refs a listing keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Documents without a source ref (uploaded or ingested by hand without one).
    None,
    /// Source refs starting `<kind>:` (`job`, `file`).
    Kind(String),
}

/// A checked listing request: filters and one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    visibility: Option<Visibility>,
    source: Option<SourceKind>,
    /// Lower-cased, trimmed.
    title: Option<String>,
    limit: i64,
    offset: i64,
}

impl ListQuery {
    /// Checks the filters and the page: a page size of 0 means [`DEFAULT_PAGE`], more than
    /// [`MAX_PAGE`] means [`MAX_PAGE`]; the token is one this module issued (an offset).
    pub fn parse(
        visibility: Option<Visibility>,
        source_kind: &str,
        title_contains: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<Self, String> {
        let offset = match page_token.trim() {
            "" => 0,
            t => t
                .parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .ok_or_else(|| "page_token is not a token this server issued".to_owned())?,
        };
        let kind = source_kind.trim().to_ascii_lowercase();
        let source = match kind.as_str() {
            "" => None,
            "none" => Some(SourceKind::None),
            k if k.chars().count() > MAX_SOURCE_KIND_CHARS => {
                return Err(format!(
                    "source_kind must be at most {MAX_SOURCE_KIND_CHARS} characters"
                ));
            }
            k if k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                Some(SourceKind::Kind(k.to_owned()))
            }
            _ => {
                return Err(
                    "source_kind is a word such as `job` or `file` (letters, digits, - and _), or `none`"
                        .into(),
                );
            }
        };
        let title = title_contains.trim();
        if title.chars().count() > MAX_TITLE_SEARCH_CHARS {
            return Err(format!(
                "a title search is at most {MAX_TITLE_SEARCH_CHARS} characters"
            ));
        }
        if title.chars().any(char::is_control) {
            return Err("a title search must not contain control characters".into());
        }
        let limit = i64::from(match page_size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        });
        Ok(Self {
            visibility,
            source,
            title: (!title.is_empty()).then(|| title.to_lowercase()),
            limit,
            offset,
        })
    }
}

/// `text` with `LIKE`'s wildcards (and the escape character) escaped.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | ESCAPE) {
            out.push(ESCAPE);
        }
        out.push(c);
    }
    out
}

/// The listing's filters on a boxed `documents` query.
macro_rules! list_filters {
    ($query:expr, $q:expr) => {{
        let mut query = $query;
        if let Some(v) = $q.visibility {
            query = query.filter(documents::visibility.eq(v.as_str()));
        }
        match &$q.source {
            None => {}
            Some(SourceKind::None) => query = query.filter(documents::source_ref.is_null()),
            Some(SourceKind::Kind(k)) => {
                query = query.filter(
                    documents::source_ref
                        .like(format!("{}:%", like_escaped(k)))
                        .escape(ESCAPE),
                )
            }
        }
        if let Some(t) = &$q.title {
            query = query.filter(
                lower(documents::title)
                    .like(format!("%{}%", like_escaped(t)))
                    .escape(ESCAPE),
            );
        }
        query
    }};
}

type ListRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
);

/// One page of documents (without their bodies: `body` is empty), newest first; the token of the
/// next page (`None` on the last) and how many documents match in all.
pub fn list(
    conn: &mut DbConnection,
    q: &ListQuery,
) -> Result<(Vec<Document>, Option<String>, u64), DbError> {
    let total: i64 = list_filters!(documents::table.into_boxed(), q)
        .count()
        .get_result(conn)?;
    let rows: Vec<ListRow> = list_filters!(documents::table.into_boxed(), q)
        .select((
            documents::id,
            documents::title,
            documents::visibility,
            documents::content_hash,
            documents::format,
            documents::owner_client,
            documents::source_ref,
            documents::created_at,
            documents::updated_at,
        ))
        .order((documents::created_at.desc(), documents::id.desc()))
        .limit(q.limit + 1)
        .offset(q.offset)
        .load(conn)?;
    let keep = usize::try_from(q.limit).unwrap_or(usize::MAX);
    let more = rows.len() > keep;
    let rows: Vec<ListRow> = rows.into_iter().take(keep).collect();
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let counts: Vec<(String, i64)> = if ids.is_empty() {
        Vec::new()
    } else {
        chunks::table
            .filter(chunks::document_id.eq_any(ids))
            .group_by(chunks::document_id)
            .select((chunks::document_id, diesel::dsl::count_star()))
            .load(conn)?
    };
    let counts: std::collections::HashMap<String, i64> = counts.into_iter().collect();
    let docs = rows
        .into_iter()
        .map(
            |(id, title, vis, content_hash, format, owner, source, created, updated)| {
                let n = counts.get(&id).copied().unwrap_or(0);
                from_row(
                    (
                        id,
                        title,
                        String::new(),
                        vis,
                        content_hash,
                        format,
                        owner,
                        source,
                        created,
                        updated,
                    ),
                    u32::try_from(n).unwrap_or(u32::MAX),
                )
            },
        )
        .collect();
    let next = more.then(|| (q.offset + q.limit).to_string());
    Ok((docs, next, u64::try_from(total).unwrap_or(0)))
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn listing_requests_are_checked_and_wildcards_escaped() {
        let q = ListQuery::parse(Some(Visibility::Staff), " Job ", " Brake ", 0, "").unwrap();
        assert_eq!(q.source, Some(SourceKind::Kind("job".into())));
        assert_eq!(q.title.as_deref(), Some("brake"));
        assert_eq!((q.limit, q.offset), (i64::from(DEFAULT_PAGE), 0));
        let q = ListQuery::parse(None, "none", "", 10_000, "40").unwrap();
        assert_eq!(q.source, Some(SourceKind::None));
        assert_eq!(
            (q.limit, q.offset, q.title),
            (i64::from(MAX_PAGE), 40, None)
        );
        for (kind, title, token) in [
            ("job:%", "", ""),
            ("", "\u{7}bell", ""),
            ("", &"x".repeat(MAX_TITLE_SEARCH_CHARS + 1), ""),
            ("", "", "-1"),
            ("", "", "next"),
        ] {
            assert!(
                ListQuery::parse(None, kind, title, 0, token).is_err(),
                "{kind} {title} {token}"
            );
        }
        assert_eq!(like_escaped(r"50%_off\now"), r"50\%\_off\\now");
    }
}
