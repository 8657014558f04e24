//! lowcode: a low-code application backend inside PostgreSQL.
//!
//! The pipeline, one module each, arrows only forward (scripts/modules.sh checks there are no
//! import cycles; docs/architecture.md draws it):
//! `definitions` (names, schemas) → `validation` (compiled validators over jsonb bytes) →
//! `conformance` (a document against its form's current version) → `records` (the one write
//! path: the triggers on `lowcode.records`) → `rules` (the workflow at run time: rules and their
//! actions — tasks, approvals, timers, messages) → `tasks` & `timers` (and `transitions`,
//! the transitions people fire) → `outbox` (events written
//! at once) → `worker` (timers and webhooks in the background: a launcher and a bounded pool of
//! workers for every database; `dispatch` decides where they go, `worker_registry` is the shared
//! memory they and the committing backends share; `webhook_delivery` POSTs).
//! Beneath them: `journal` is the one writer of history rows and of the events a write's rules
//! emit, `definitions_cache` keeps each backend's view of the definitions fresh, `engine_state`
//! holds what the workflow engine is doing in this backend (the cause of a change, the rules
//! running: state only lowcode's own functions can write), `identity` says who is acting and
//! who owns lowcode (and runs workflow `call`s as the role that published them), `privileges`
//! decides what the invoker may do, `statements` keeps prepared statements per backend,
//! `report` turns each module's errors into ereports with a SQLSTATE, `placement` says where an app's
//! runtime is (here, or on its node when Citus distributes it: sql/scale_out.sql) and sends a
//! call there. Above them: `api`,
//! `forms_api` and `views` are the SQL surface.
//!
//! The pure logic (definitions, bundling, validation, workflows, diffs, webhook signing, topic
//! matching, retry, egress policy, the pool's decisions) is the crate `lowcode-core`
//! (crates/core: no pgrx, `cargo test -p lowcode-core`). Tables, views, grants and the thin SQL
//! wrappers of the API are hand-written in `sql/*.sql`.

// The pure stages live in crates/core (no pgrx); `crate::validation` and friends keep naming them.
pub use lowcode_core::{
    bundle, cache, definitions, diff, dispatch, egress, renderer, retry, topics, validation,
    webhook, workflow,
};

mod actions;
mod api;
mod approvals;
mod background;
mod conformance;
mod definitions_cache;
pub mod engine_state;
mod forms_api;
mod identity;
mod journal;
mod jsonb;
mod outbox;
mod placement;
mod privileges;
mod records;
mod report;
mod rules;
mod settings;
mod statements;
mod tasks;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
mod timers;
mod transitions;
mod views;
mod webhook_delivery;
mod worker;
mod worker_registry;

pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
pgrx::extension_sql_file!(
    "../sql/definitions.sql",
    name = "records",
    requires = [
        "catalog",
        api::check_record,
        api::compile_schema,
        api::check_registered_schema,
        api::check_name,
        api::forms_changed,
        records::records_before,
        records::records_after,
        forms_api::property_order,
        forms_api::check_form_ui
    ]
);
pgrx::extension_sql_file!(
    "../sql/publish.sql",
    name = "publish",
    requires = ["records", api::view_columns, views::view_write]
);
pgrx::extension_sql_file!(
    "../sql/workflow.sql",
    name = "workflow",
    requires = [
        "records",
        api::check_workflow,
        api::matches,
        api::condition_issues,
        rules::grant_calls
    ]
);
pgrx::extension_sql_file!(
    "../sql/tasks_timers.sql",
    name = "tasks",
    requires = ["workflow"]
);
pgrx::extension_sql_file!(
    "../sql/outbox.sql",
    name = "events",
    requires = [
        "tasks",
        records::replaying_sql,
        api::topic_matches,
        api::retry_delay
    ]
);
pgrx::extension_sql_file!(
    "../sql/privileges.sql",
    name = "privileges",
    requires = [
        "events",
        "publish",
        api::invoker,
        privileges::is_admin,
        privileges::may,
        privileges::authorize,
        privileges::refuse,
        privileges::apps_where
    ]
);
pgrx::extension_sql_file!(
    "../sql/migrations.sql",
    name = "migrations",
    requires = ["privileges", api::diff_definitions]
);
pgrx::extension_sql_file!(
    "../sql/scale_out.sql",
    name = "scale_out",
    requires = ["migrations", api::forms_changed]
);
pgrx::extension_sql_file!(
    "../sql/comments.sql",
    name = "comments",
    requires = [
        "scale_out",
        api::check_name,
        api::compile_schema,
        api::view_columns,
        api::forms_changed,
        api::check_registered_schema,
        api::validate_issues,
        api::is_valid,
        api::conforms,
        api::conforms_to_version,
        api::check_record,
        api::cache_stats,
        api::cache_clear,
        api::check_workflow,
        api::matches,
        api::topic_matches,
        api::retry_delay,
        api::condition_issues,
        api::diff_definitions,
        api::invoker,
        records::records_before,
        records::records_after,
        journal::log,
        records::replaying_sql,
        records::submit,
        records::update_record,
        transitions::transition,
        views::view_write,
        privileges::is_admin,
        privileges::may,
        privileges::authorize,
        privileges::refuse,
        rules::fire,
        timers::fire_timers,
        timers::run_due_timers,
        tasks::claim_task,
        tasks::claim_task_by_id,
        tasks::complete_task,
        tasks::release_task,
        approvals::decide,
        approvals::withdraw,
        tasks::reassign_task,
        tasks::claimable_tasks,
        tasks::my_tasks,
        tasks::check_task_result,
        forms_api::form_schema,
        forms_api::submit_expecting,
        outbox::emit,
        api::cause,
        api::with_cause,
        api::rule_chain,
        api::set_rule_chain
    ]
);
pgrx::extension_sql_file!(
    "../sql/worker.sql",
    name = "worker",
    requires = [
        "comments",
        worker::worker_preloaded,
        worker::worker_processes,
        worker::worker_databases,
        worker_registry::worker_note_changed,
        worker_registry::worker_note_due
    ]
);
pgrx::extension_sql_file!("../sql/hardening.sql", name = "hardening", finalize);

/// Called once per backend when the library loads.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx attaches a Rust backtrace to an error's DETAIL when RUST_BACKTRACE or
    // RUST_LIB_BACKTRACE is set in the server's environment: the client would get ~40 lines
    // of backtrace after the JSON of a validation error. Errors are lowcode's contract, so
    // backtraces are off in every process that loads lowcode (std reads this once, at the
    // first capture; _PG_init runs before any, and before this process starts a thread).
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    definitions_cache::init();
    placement::init();
    engine_state::init();
    worker::init();
    // (After worker::init, which asks for the worker pool's shared memory when preloaded.)
    worker_registry::init();
    webhook_delivery::init();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
