//! lowcode's pure logic, without pgrx: `cargo test -p lowcode-core` needs no PostgreSQL and no
//! `pg_config`. The extension (the crate at the repository root) re-exports these modules under
//! the same names and adds what talks to PostgreSQL.
//!
//! In pipeline order:
//! - [`cache`]: the bound of the per-backend caches (least recently used, on `lru`);
//! - [`definitions`]: naming rules, draft detection, meta-schema checks of a form's schema;
//! - [`bundle`]: `$ref`s resolved against registered schemas into one self-contained document;
//! - [`validation`]: compiled validators over PostgreSQL's jsonb bytes, issues with their rule;
//! - [`renderer`]: what a browser needs to draw a form (property order, UI schema checks);
//! - [`workflow`]: a workflow definition checked and compiled into what the engine runs;
//! - [`actions`]: a rule's actions, one file per kind: its definition and its pure plan;
//! - [`diff`]: two exports of an app compared (migrations);
//! - [`retry`]: the one retry policy (timers, outbox consumers, webhooks);
//! - [`topics`]: the one topic matcher (outbox consumers and webhooks);
//! - [`webhook`]: Standard Webhooks signatures, Retry-After, what an answer means;
//! - [`egress`]: which webhook targets may be reached, and the HTTP client that reaches them;
//! - [`dispatch`]: where the worker pool goes next.

pub mod actions;
pub mod bundle;
pub mod cache;
pub mod definitions;
pub mod diff;
pub mod dispatch;
pub mod egress;
pub mod renderer;
pub mod retry;
pub mod topics;
pub mod validation;
pub mod webhook;
pub mod workflow;
