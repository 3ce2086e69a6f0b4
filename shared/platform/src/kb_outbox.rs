//! Records into the knowledge base through each service's own `kb_outbox` (ADR 0014, ADR 0020).
//!
//! Every service that tells kb about its records (jobs, shop, repairbot) has a `kb_outbox` table
//! of the same shape in its own database: `id`, the record's key column, `event`, `state`
//! (`pending`/`done`), `attempts`, `next_attempt_at`, `lease_until`, `last_error`, `created_at`,
//! `done_at`. A change writes a row with [`Outbox::enqueue`] **inside the change's own
//! transaction**; the row is a trigger, not a payload.
//!
//! The [`Worker`] claims due rows with a lease, asks the service's [`Renderer`] for the record as
//! it is now, and puts it into kb (`PutDocument` with its `source_ref`, replacing the previous
//! version) or deletes it (`DeleteDocument` by source ref). So a repeated, late or out-of-order
//! delivery is harmless and always converges on the current record: one document per source ref.
//! While kb (or whatever the renderer needs) cannot be reached, rows wait and are retried with a
//! backoff capped at [`MAX_RETRY_MS`]; they are never given up. kb refusing a document for good
//! (`INVALID_ARGUMENT`, `PERMISSION_DENIED`) marks the row done with the reason.
//!
//! The table's queries are plain SQL (`sql_query`): the key column is the one thing that differs
//! (`job_id` in jobs, which came first; `source_ref` elsewhere), and it is named by code, never by
//! input.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use omneuro_proto::kb::v1 as kbpb;
use omneuro_proto::kb::v1::kb_service_client::KbServiceClient;
use tracing::Instrument;

use crate::auth::{self, Actor};
use crate::config::WorkerConfig;
use crate::db::{Database, DbConnection, DbError, now_utc};
use crate::grpc::TracedChannel;
use crate::ids;
use crate::metrics::Metrics;

/// How long a claim lasts; a worker that dies mid-delivery frees the row after this.
pub const LEASE_SECONDS: i64 = 60;
/// The longest wait between two attempts while kb is down.
pub const MAX_RETRY_MS: i64 = 60_000;
/// Rows one round claims.
pub const BATCH: i64 = 20;
/// The longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

/// The delay before attempt `attempts + 1`: `base_ms` doubling per attempt, at most a minute.
pub fn backoff_ms(base_ms: u64, attempts: i32) -> i64 {
    let base = i64::try_from(base_ms).unwrap_or(MAX_RETRY_MS).max(1);
    base.saturating_mul(1i64 << attempts.clamp(0, 16))
        .min(MAX_RETRY_MS)
}

/// A service's `kb_outbox` table; only the name of its key column differs between services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbox {
    key_column: &'static str,
}

/// A claimed row.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Item {
    #[diesel(sql_type = Text)]
    pub id: String,
    /// The record's key as the service wrote it (`job_…`, `product:prd_…`).
    #[diesel(sql_type = Text, column_name = record_key)]
    pub key: String,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

#[derive(QueryableByName)]
struct Backlog {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    oldest: Option<NaiveDateTime>,
}

/// `sql` with `?` placeholders, as the connection's backend wants them (`$1`, `$2`… on PostgreSQL).
fn placeholders(conn: &DbConnection, sql: &str) -> String {
    match conn {
        DbConnection::Sqlite(_) => sql.to_owned(),
        DbConnection::Postgresql(_) => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for ch in sql.chars() {
                if ch == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(ch);
                }
            }
            out
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_ERROR_CHARS).collect()
}

/// Rows no worker holds a live claim on.
const UNLEASED: &str = "(lease_until IS NULL OR lease_until < ?)";

impl Outbox {
    /// The shape every service but jobs uses: the key column is `source_ref`.
    pub const BY_SOURCE_REF: Outbox = Outbox {
        key_column: "source_ref",
    };

    /// A table whose key column has another name (jobs: `job_id`). `column` comes from code: a
    /// lower-case SQL identifier.
    pub const fn with_key_column(column: &'static str) -> Self {
        Self { key_column: column }
    }

    pub fn key_column(&self) -> &'static str {
        self.key_column
    }

    /// Queues the record for kb; call it inside the change's transaction.
    pub fn enqueue(
        &self,
        conn: &mut DbConnection,
        key: &str,
        event: &str,
        now: NaiveDateTime,
    ) -> QueryResult<()> {
        let sql = placeholders(
            conn,
            &format!(
                "INSERT INTO kb_outbox (id, {}, event, state, attempts, next_attempt_at, \
                 last_error, created_at) VALUES (?, ?, ?, 'pending', 0, ?, '', ?)",
                self.key_column
            ),
        );
        let id = ids::new_id("kbe");
        crate::per_backend!(conn, |c| diesel::sql_query(&sql)
            .bind::<Text, _>(&id)
            .bind::<Text, _>(key)
            .bind::<Text, _>(event)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(now)
            .execute(c))?;
        Ok(())
    }

    /// Claims up to `limit` due rows for this worker, oldest first.
    pub fn claim(
        &self,
        conn: &mut DbConnection,
        limit: i64,
        now: NaiveDateTime,
    ) -> Result<Vec<Item>, DbError> {
        let select = placeholders(
            conn,
            &format!(
                "SELECT id, {} AS record_key, event, attempts FROM kb_outbox \
                 WHERE state = 'pending' AND next_attempt_at <= ? AND {UNLEASED} \
                 ORDER BY created_at, id LIMIT ?",
                self.key_column
            ),
        );
        let due: Vec<Item> = crate::per_backend!(&mut *conn, |c| diesel::sql_query(&select)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load::<Item>(c))?;
        let lease = placeholders(
            conn,
            &format!(
                "UPDATE kb_outbox SET lease_until = ? \
                 WHERE id = ? AND state = 'pending' AND {UNLEASED}"
            ),
        );
        let until = now + chrono::Duration::seconds(LEASE_SECONDS);
        let mut claimed = Vec::with_capacity(due.len());
        for item in due {
            let n = crate::per_backend!(&mut *conn, |c| diesel::sql_query(&lease)
                .bind::<Timestamp, _>(until)
                .bind::<Text, _>(&item.id)
                .bind::<Timestamp, _>(now)
                .execute(c))?;
            if n == 1 {
                claimed.push(item);
            }
        }
        Ok(claimed)
    }

    /// Delivered (or nothing left to deliver: `note` says why).
    pub fn done(
        &self,
        conn: &mut DbConnection,
        id: &str,
        note: &str,
        now: NaiveDateTime,
    ) -> Result<(), DbError> {
        let sql = placeholders(
            conn,
            "UPDATE kb_outbox SET state = 'done', last_error = ?, lease_until = NULL, done_at = ? \
             WHERE id = ?",
        );
        let note = clip(note);
        crate::per_backend!(conn, |c| diesel::sql_query(&sql)
            .bind::<Text, _>(&note)
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(id)
            .execute(c))?;
        Ok(())
    }

    /// Not delivered this time; tried again after the backoff. Returns when.
    pub fn retry_later(
        &self,
        conn: &mut DbConnection,
        id: &str,
        attempts: i32,
        error: &str,
        now: NaiveDateTime,
        base_ms: u64,
    ) -> Result<NaiveDateTime, DbError> {
        let at = now + chrono::Duration::milliseconds(backoff_ms(base_ms, attempts));
        let sql = placeholders(
            conn,
            "UPDATE kb_outbox SET attempts = ?, next_attempt_at = ?, lease_until = NULL, \
             last_error = ? WHERE id = ?",
        );
        let error = clip(error);
        crate::per_backend!(conn, |c| diesel::sql_query(&sql)
            .bind::<Integer, _>(attempts.saturating_add(1))
            .bind::<Timestamp, _>(at)
            .bind::<Text, _>(&error)
            .bind::<Text, _>(id)
            .execute(c))?;
        Ok(at)
    }

    /// The backlog: rows waiting for kb, and when the oldest of them was written.
    pub fn backlog(
        &self,
        conn: &mut DbConnection,
    ) -> Result<(i64, Option<NaiveDateTime>), DbError> {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) AS n, MIN(created_at) AS oldest \
                   FROM kb_outbox WHERE state = 'pending'";
        let b: Backlog =
            crate::per_backend!(conn, |c| diesel::sql_query(sql).get_result::<Backlog>(c))?;
        Ok((b.n, b.oldest))
    }
}

// ---- documents ---------------------------------------------------------------------------------

/// One end of a graph link: (kind, key, label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub kind: &'static str,
    pub key: String,
    pub label: String,
}

impl End {
    pub fn new(kind: &'static str, key: &str, label: &str) -> Self {
        Self {
            kind,
            key: key.to_owned(),
            label: label.to_owned(),
        }
    }
}

/// A structured fact for kb's graph: `from` -[kind]-> `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFact {
    pub kind: &'static str,
    pub from: End,
    pub to: End,
}

impl LinkFact {
    pub fn new(kind: &'static str, from: End, to: End) -> Self {
        Self { kind, from, to }
    }
}

/// Who may find a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Clients too (shop-wide, or only its owner when it has one).
    Client,
    /// Shop staff (and system callers) only.
    Staff,
}

/// A record as kb gets it (Markdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub title: String,
    pub body: String,
    pub visibility: Visibility,
    /// The client the record belongs to (`cli_…`), or empty.
    pub owner_client: String,
    pub source_ref: String,
    pub links: Vec<LinkFact>,
}

impl Doc {
    /// The `PutDocument` request for this document.
    pub fn to_pb(&self) -> kbpb::PutDocumentRequest {
        let r = |e: &End| kbpb::EntityRef {
            kind: e.kind.to_owned(),
            key: e.key.clone(),
        };
        kbpb::PutDocumentRequest {
            title: self.title.clone(),
            body: self.body.clone(),
            visibility: match self.visibility {
                Visibility::Client => kbpb::Visibility::Client,
                Visibility::Staff => kbpb::Visibility::Staff,
            }
            .into(),
            format: kbpb::Format::Markdown.into(),
            data: Vec::new(),
            owner_client_id: self.owner_client.clone(),
            source_ref: self.source_ref.clone(),
            links: self
                .links
                .iter()
                .map(|l| kbpb::Link {
                    kind: l.kind.to_owned(),
                    from: Some(r(&l.from)),
                    to: Some(r(&l.to)),
                    from_label: l.from.label.clone(),
                    to_label: l.to.label.clone(),
                })
                .collect(),
        }
    }
}

/// What a record is for kb right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Render {
    /// Put this document (replacing the one with its source ref).
    Put(Doc),
    /// The record is gone or no longer for kb: delete the document with this source ref.
    Delete { source_ref: String, why: String },
    /// Nothing to tell kb (why).
    Nothing(String),
    /// Cannot tell now (a dependency is down): try again after the backoff.
    Retry(String),
}

/// The one thing a service supplies: its record `key` as kb should have it now.
pub trait Renderer: Send + Sync + 'static {
    fn render(&self, key: &str) -> impl Future<Output = Render> + Send;
}

/// The worker that empties a service's `kb_outbox` into kb.
pub struct Worker<R> {
    pub db: Arc<Database>,
    pub outbox: Outbox,
    pub kb: KbServiceClient<TracedChannel>,
    pub worker: WorkerConfig,
    /// kb sees the calls as `system:<service>`.
    pub service: &'static str,
    pub renderer: R,
    /// Where the backlog is reported after each round (`omneuro_kb_outbox_pending`,
    /// `omneuro_kb_outbox_oldest_pending_seconds`): the service's [`crate::App::metrics`].
    pub metrics: Option<Metrics>,
}

enum Outcome {
    Delivered,
    Settled(String),
    Retry(String),
}

impl<R: Renderer> Worker<R> {
    /// Runs until `stop` resolves: due deliveries every `worker.poll_ms`. `stop` also cuts a
    /// round short (a slow kb must not hold up shutdown): rows it claimed but did not settle are
    /// taken again when their lease runs out, and delivering a record twice is harmless.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_millis(self.worker.poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            if !self.db.is_migrated() {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                round = self.deliver_due() => {
                    if let Err(e) = round {
                        tracing::warn!(error = %e, "kb outbox round failed");
                    }
                }
            }
            self.report_backlog().await;
        }
    }

    /// Puts the backlog into the service's metrics (a failed count keeps the last figures).
    async fn report_backlog(&self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let outbox = self.outbox;
        match self.db.run(move |c| outbox.backlog(c)).await {
            Ok((n, oldest)) => {
                let age = oldest.map_or(0, |at| (now_utc() - at).num_seconds());
                metrics.set_kb_outbox(n, age);
            }
            Err(e) => tracing::debug!(error = %e, "kb outbox backlog not counted"),
        }
    }

    /// Delivers what is due now; returns how many rows were handled. Rows of one record claimed
    /// together are delivered once (the record is re-rendered anyway).
    pub async fn deliver_due(&self) -> Result<usize, DbError> {
        let now = now_utc();
        let outbox = self.outbox;
        let items = self.db.run(move |c| outbox.claim(c, BATCH, now)).await?;
        let n = items.len();
        let mut by_key: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for item in items {
            if !by_key.contains_key(&item.key) {
                order.push(item.key.clone());
            }
            by_key.entry(item.key.clone()).or_default().push(item);
        }
        for key in order {
            let rows = by_key.remove(&key).unwrap_or_default();
            let events: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
            let span = tracing::info_span!(
                "kb_sync",
                kb_outbox.key = %key,
                kb_outbox.rows = rows.len(),
                event = %events.join(","),
            );
            self.deliver_record(&key, rows).instrument(span).await?;
        }
        Ok(n)
    }

    async fn deliver_record(&self, key: &str, rows: Vec<Item>) -> Result<(), DbError> {
        let outcome = self.deliver(key).await;
        let (outbox, now, base) = (self.outbox, now_utc(), self.worker.retry_base_ms);
        match &outcome {
            Outcome::Delivered => tracing::debug!("delivered to kb"),
            Outcome::Settled(why) => tracing::info!(reason = %why, "nothing more for kb"),
            Outcome::Retry(why) => {
                let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
                tracing::warn!(error = %why, attempts = attempts + 1, "kb delivery will be retried");
            }
        }
        self.db
            .run(move |c| {
                for r in &rows {
                    match &outcome {
                        Outcome::Delivered => outbox.done(c, &r.id, "", now)?,
                        Outcome::Settled(why) => outbox.done(c, &r.id, why, now)?,
                        Outcome::Retry(why) => {
                            outbox.retry_later(c, &r.id, r.attempts, why, now, base)?;
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    fn actor(&self) -> Actor {
        Actor::System(self.service.to_owned())
    }

    async fn deliver(&self, key: &str) -> Outcome {
        let mut kb = self.kb.clone();
        match self.renderer.render(key).await {
            Render::Nothing(why) => Outcome::Settled(why),
            Render::Retry(why) => Outcome::Retry(why),
            Render::Put(doc) => {
                let res = crate::grpc::call(
                    "KbService/PutDocument",
                    kb.put_document(auth::request(&self.actor(), doc.to_pb())),
                )
                .await;
                match res {
                    Ok(_) => Outcome::Delivered,
                    Err(s) => refused_or_retry(s),
                }
            }
            Render::Delete { source_ref, why } => {
                let res = crate::grpc::call(
                    "KbService/DeleteDocument",
                    kb.delete_document(auth::request(
                        &self.actor(),
                        kbpb::DeleteDocumentRequest {
                            id: String::new(),
                            source_ref,
                        },
                    )),
                )
                .await;
                match res {
                    Ok(_) => Outcome::Settled(why),
                    // Never put, or deleted by an earlier delivery: what was wanted.
                    Err(s) if s.code() == tonic::Code::NotFound => Outcome::Settled(why),
                    Err(s) => refused_or_retry(s),
                }
            }
        }
    }
}

/// kb refusing a request for good (too large, bad fields): retrying cannot help. Anything else
/// (unreachable, timed out, busy) is retried.
fn refused_or_retry(s: tonic::Status) -> Outcome {
    if matches!(
        s.code(),
        tonic::Code::InvalidArgument | tonic::Code::PermissionDenied
    ) {
        tracing::error!(error = %s.message(), "kb refused the document");
        Outcome::Settled(format!("kb refused it: {}", s.message()))
    } else {
        Outcome::Retry(format!("kb: {} ({:?})", s.message(), s.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(backoff_ms(200, 0), 200);
        assert_eq!(backoff_ms(200, 3), 1_600);
        assert_eq!(backoff_ms(30_000, 10), MAX_RETRY_MS);
        assert_eq!(backoff_ms(30_000, i32::MAX), MAX_RETRY_MS);
        assert_eq!(backoff_ms(0, 0), 1);
    }

    #[test]
    fn documents_become_put_requests() {
        let d = Doc {
            title: "T".into(),
            body: "B".into(),
            visibility: Visibility::Client,
            owner_client: String::new(),
            source_ref: "product:prd_x".into(),
            links: vec![LinkFact::new(
                "fits",
                End::new("product", "prd_x", "Tyre"),
                End::new("model", "King Song S22", "King Song S22"),
            )],
        };
        let pb = d.to_pb();
        assert_eq!(pb.visibility, i32::from(kbpb::Visibility::Client));
        assert_eq!(pb.format, i32::from(kbpb::Format::Markdown));
        assert_eq!(pb.source_ref, "product:prd_x");
        assert_eq!(pb.links.len(), 1);
        assert_eq!(pb.links[0].from_label, "Tyre");
        assert_eq!(
            pb.links[0].to.as_ref().map(|e| e.key.as_str()),
            Some("King Song S22")
        );
    }
}
