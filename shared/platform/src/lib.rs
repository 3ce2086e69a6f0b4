//! Plumbing every Omneuro service shares, written once:
//!
//! | module | what |
//! |---|---|
//! | [`auth`] | the caller identity (`x-omneuro-actor`) carried on every internal gRPC call |
//! | [`blobs`] | files kept outside the database (jobs' photos): `BlobStore`, on disk today |
//! | [`kb_outbox`] | records into the knowledge base: each service's `kb_outbox` table and the worker that empties it |
//! | [`mail`] | outgoing email over SMTP (lettre), or a dev mailbox directory |
//! | [`config`] | file + `OMNEURO__…` env layering, strict parsing that names the bad key |
//! | [`secrets`] | secrets from AWS SSM (or env in dev), cached, never printed |
//! | [`sms`] | outgoing SMS through Telnyx's Messaging API (`POST /v2/messages`) |
//! | [`telemetry`] | JSON logs, OpenTelemetry traces, W3C `traceparent` in and out |
//! | [`db`] | diesel `MultiConnection` over PostgreSQL and SQLite, r2d2 pool, migrations, blocking helper |
//! | [`error`] | `DomainError`: the ways a domain operation fails, each a typed gRPC status |
//! | [`grpc`] | tonic server with health tied to DB readiness, client channels with timeouts |
//! | [`http`] | actix `/healthz`, `/readyz`, `/metrics`, request spans, friendly error pages |
//! | [`stripe`] | Stripe API client (idempotency keys, retries) and webhook signature checks |
//! | [`web`] | for page services: cookies, CSRF on every form, the client IP behind nginx |
//! | [`metrics`] | the Prometheus registry behind `/metrics` |
//! | [`app`] | lifecycle: bind, run, watch the database, drain on SIGTERM |
//! | [`weeks`] | the weeks a report covers (ISO weeks, Monday 00:00 UTC), shared by jobs and billing |
//!
//! Errors: typed (`thiserror`) wherever a request can fail, mapped to a `tonic::Status` or an HTTP
//! status at the boundary and logged once there; `anyhow` only at start-up and in background workers.

pub mod app;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ids;
pub mod kb_outbox;
pub mod mail;
pub mod metrics;
pub mod secrets;
pub mod sms;
pub mod stripe;
pub mod telemetry;
pub mod web;
pub mod weeks;

pub use app::{App, Shutdown};
