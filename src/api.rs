//! The SQL surface implemented in Rust. Each function is thin: arguments in, one call into
//! the pipeline, errors out through `report::raise`.

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use crate::definitions::{self, Registered};
use crate::definitions_cache;
use crate::diff;
use crate::engine_state;
use crate::identity;
use crate::jsonb::JsonbBytes;
use crate::report::{raise, Reportable};
use crate::validation;
use crate::workflow;

/// Misuse of an argument.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("argument \"{0}\" must not be NULL")]
    Null(&'static str),
}

impl Reportable for ApiError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED
    }
}

/// A definition (schema, workflow) as serde_json; nesting past 128 levels is refused clearly.
fn definition_json(subject: &str, value: &JsonbBytes) -> serde_json::Value {
    value.to_json().unwrap_or_else(|error| {
        raise(
            subject,
            definitions::DefinitionError::Invalid {
                pointer: String::new(),
                keyword: "depth".into(),
                message: format!(
                    "the definition cannot be read ({error}); definitions nest at most 127 levels"
                ),
            },
        )
    })
}

/// The result, or the too-deep error raised about `subject` (built only on error).
fn checked<T>(subject: impl FnOnce() -> String, result: Result<T, validation::TooDeep>) -> T {
    result.unwrap_or_else(|error| raise(&subject(), error))
}

fn required<T>(value: Option<T>, name: &'static str) -> T {
    value.unwrap_or_else(|| raise("", ApiError::Null(name)))
}

/// Raises unless `name` is a valid `kind` name (app, form, state, role, pool ...).
#[pg_extern(immutable, parallel_safe)]
fn check_name(kind: Option<&str>, name: Option<&str>) {
    let kind = required(kind, "kind");
    match name {
        None => raise("", ApiError::Null(argument_name(kind))),
        Some(name) => {
            if let Err(error) = definitions::check_name(kind, name) {
                raise("", error);
            }
        }
    }
}

/// The SQL argument a name of this kind comes from (for the NULL error).
fn argument_name(kind: &str) -> &'static str {
    match kind {
        "app" => "app",
        "form" => "form",
        _ => "name",
    }
}

/// Check a schema for `subject` (e.g. `inspection.fault_report`) and bundle its registered
/// `$ref`s: `{"draft": "2020-12", "bundled": {...}}`.
#[pg_extern(stable)]
fn compile_schema(subject: Option<&str>, schema: Option<JsonbBytes>) -> JsonB {
    let subject = required(subject, "subject");
    let schema = definition_json(subject, &required(schema, "schema"));
    let registered = registered_schemas();
    match definitions::check_schema(&schema, &registered) {
        Ok(checked) => {
            JsonB(serde_json::json!({"draft": checked.draft, "bundled": checked.bundled}))
        }
        Err(error) => raise(subject, error),
    }
}

/// Check a schema about to be registered under `uri`: its `$ref`s resolve as they will from
/// a form (the URI is its base URI). Raises about `schema "<uri>"` otherwise.
#[pg_extern(stable)]
fn check_registered_schema(uri: Option<&str>, schema: Option<JsonbBytes>) {
    let uri = required(uri, "uri");
    let subject = format!("schema \"{uri}\"");
    let schema = definition_json(&subject, &required(schema, "schema"));
    if let Err(error) = definitions::check_registered(uri, &schema, &registered_schemas()) {
        raise(&subject, error);
    }
}

fn registered_schemas() -> Registered {
    let rows = Spi::connect(|client| {
        client
            .select("SELECT uri, schema FROM lowcode.schemas", None, &[])?
            .map(|row| Ok((row.get::<String>(1)?, row.get::<JsonB>(2)?)))
            .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
    })
    .unwrap_or_else(|error| raise("", definitions_cache::CatalogError::from(error)));
    Registered(
        rows.into_iter()
            .filter_map(|(uri, schema)| Some((uri?, schema?.0)))
            .collect(),
    )
}

/// The typed columns a form's view gets: (name, SQL type, jsonb type the value must have).
#[pg_extern(immutable, parallel_safe)]
fn view_columns(
    subject: &str,
    schema: JsonB,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(sql_type, String),
        name!(json_type, Option<String>),
    ),
> {
    match definitions::view_columns(crate::bundle::schema_of(&schema.0)) {
        Ok(columns) => TableIterator::new(columns.into_iter().map(|(name, kind)| {
            (
                name,
                kind.sql().to_owned(),
                kind.json_type().map(str::to_owned),
            )
        })),
        Err(error) => raise(subject, error),
    }
}

/// Tell every backend that form definitions changed (called by `define_form`).
#[pg_extern(volatile)]
fn forms_changed() {
    if let Err(error) = definitions_cache::forms_changed() {
        raise("", error);
    }
}

/// Every reason `data` does not conform to the current version of `app.form`; no rows when
/// it does. Never raises for invalid data. `path` is where the failing value is, `field` the
/// field a form shows the message next to (the missing one for `required`), `params` the
/// rule's parameters (for a client's own or translated message), `schema_path` where the rule
/// is in the schema.
#[pg_extern(stable, parallel_safe, name = "validate")]
#[allow(clippy::type_complexity)]
fn validate_issues(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<JsonbBytes>,
) -> TableIterator<
    'static,
    (
        name!(path, String),
        name!(keyword, String),
        name!(message, String),
        name!(field, String),
        name!(params, JsonB),
        name!(schema_path, String),
    ),
> {
    TableIterator::new(issues(app, form, data).into_iter().map(|issue| {
        (
            issue.path,
            issue.keyword,
            issue.message,
            issue.field,
            JsonB(issue.params),
            issue.schema_path,
        )
    }))
}

/// `validate` as lowcode 0.2.0 declared it (no `params`, `schema_path`): the C symbol a 0.2.0
/// database calls until it is updated. Not part of the 0.3.0 SQL.
#[pg_extern(stable, parallel_safe, sql = false)]
fn validate_fields(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<JsonbBytes>,
) -> TableIterator<
    'static,
    (
        name!(path, String),
        name!(keyword, String),
        name!(message, String),
        name!(field, String),
    ),
> {
    TableIterator::new(
        issues(app, form, data)
            .into_iter()
            .map(|issue| (issue.path, issue.keyword, issue.message, issue.field)),
    )
}

/// `validate` as lowcode 0.1.0 declared it (no `field` column): the C symbol a 0.1.0
/// database calls until it is updated to 0.2.0. Not part of the 0.2.0 SQL.
#[pg_extern(stable, parallel_safe, sql = false)]
fn validate(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<JsonbBytes>,
) -> TableIterator<
    'static,
    (
        name!(path, String),
        name!(keyword, String),
        name!(message, String),
    ),
> {
    TableIterator::new(
        issues(app, form, data)
            .into_iter()
            .map(|issue| (issue.path, issue.keyword, issue.message)),
    )
}

fn issues(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<JsonbBytes>,
) -> Vec<validation::Issue> {
    let (app, form, data) = (
        required(app, "app"),
        required(form, "form"),
        required(data, "data"),
    );
    let validator = current_validator(app, form);
    checked(
        || format!("{app}.{form}"),
        validator.issues(data.container(), definitions_cache::max_document_depth()),
    )
}

/// Whether `data` conforms to the current version of `app.form`. NULL data is an error.
#[pg_extern(stable, parallel_safe)]
fn is_valid(app: Option<&str>, form: Option<&str>, data: Option<JsonbBytes>) -> bool {
    let (app, form, data) = (
        required(app, "app"),
        required(form, "form"),
        required(data, "data"),
    );
    checked(
        || format!("{app}.{form}"),
        current_validator(app, form)
            .is_valid(data.container(), definitions_cache::max_document_depth()),
    )
}

/// Like `is_valid`, for CHECK constraints on your own tables: NULL data gives NULL (so the
/// constraint passes, as SQL's CHECK does for NULL).
#[pg_extern(stable, parallel_safe, strict)]
fn conforms(app: &str, form: &str, data: JsonbBytes) -> bool {
    checked(
        || format!("{app}.{form}"),
        current_validator(app, form)
            .is_valid(data.container(), definitions_cache::max_document_depth()),
    )
}

/// Whether `data` conforms to one particular form version (by `lowcode.form_versions.id`),
/// e.g. to check that a record still satisfies the version it was validated against.
#[pg_extern(stable, parallel_safe, strict)]
fn conforms_to_version(version_id: i64, data: JsonbBytes) -> bool {
    definitions_cache::validator(version_id)
        .unwrap_or_else(|error| raise("", error))
        .is_valid(data.container(), definitions_cache::max_document_depth())
        .unwrap_or_else(|error| raise("", error))
}

fn current_validator(app: &str, form: &str) -> std::rc::Rc<validation::Compiled> {
    definitions_cache::current_validator(app, form)
        .map(|(_, validator)| validator)
        .unwrap_or_else(|error| raise("", error))
}

/// The write path's check (used by the records trigger): the id of the current form version
/// `data` conforms to; raises 23514 with every issue in DETAIL otherwise.
#[pg_extern(stable)]
fn check_record(app: Option<&str>, form: Option<&str>, data: Option<JsonbBytes>) -> i64 {
    let (app, form, data) = (
        required(app, "app"),
        required(form, "form"),
        required(data, "data"),
    );
    crate::conformance::check(app, form, data.container()).unwrap_or_else(|error| match error {
        crate::conformance::ConformanceError::Catalog(error) => raise("", error),
        rejected => raise(&format!("{app}.{form}"), rejected),
    })
}

/// This backend's validator cache: how many are compiled, the capacity, the generation.
#[pg_extern(volatile)]
fn cache_stats() -> JsonB {
    JsonB(definitions_cache::stats())
}

/// Empty this backend's validator cache (to measure cold paths).
#[pg_extern(volatile)]
fn cache_clear() {
    definitions_cache::clear();
}

/// Check a workflow definition for `subject`: `{"initial": ..., "finals": [...], "diagram": ...}`.
#[pg_extern(immutable, parallel_safe)]
fn check_workflow(subject: Option<&str>, definition: Option<JsonbBytes>) -> JsonB {
    let subject = required(subject, "subject");
    let definition = definition_json(subject, &required(definition, "definition"));
    match workflow::check(&definition) {
        Ok((parsed, checked)) => JsonB(serde_json::json!({
            "initial": checked.initial,
            "finals": checked.finals,
            "diagram": workflow::mermaid(&parsed),
        })),
        Err(error) => raise(subject, error),
    }
}

/// Whether `data` satisfies a workflow condition (a JSON Schema); compiled once per backend.
#[pg_extern(stable, parallel_safe, strict)]
fn matches(condition: JsonbBytes, data: JsonbBytes) -> bool {
    checked(
        || "condition".to_owned(),
        condition_validator(&condition)
            .is_valid(data.container(), definitions_cache::max_document_depth()),
    )
}

/// Why `data` does not satisfy a condition: a JSON array of `{path, field, keyword, message}`.
#[pg_extern(stable, parallel_safe, strict)]
fn condition_issues(condition: JsonbBytes, data: JsonbBytes) -> JsonB {
    let validator = condition_validator(&condition);
    JsonB(
        serde_json::to_value(checked(
            || "condition".to_owned(),
            validator.issues(data.container(), definitions_cache::max_document_depth()),
        ))
        .unwrap_or_default(),
    )
}

fn condition_validator(condition: &JsonbBytes) -> std::rc::Rc<validation::Compiled> {
    definitions_cache::condition(condition.container(), || definition_json("", condition))
        .unwrap_or_else(|error| {
            raise(
                "",
                definitions::DefinitionError::Invalid {
                    pointer: String::new(),
                    keyword: "when".into(),
                    message: error.to_string(),
                },
            )
        })
}

/// The changes from `current` to `wanted` (both in `export_app`'s format), each marked
/// breaking or not. `lowcode.diff_app` calls this with the app's current export.
#[pg_extern(immutable, parallel_safe)]
fn diff_definitions(
    current: JsonB,
    wanted: JsonB,
) -> TableIterator<
    'static,
    (
        name!(kind, String),
        name!(path, String),
        name!(change, String),
        name!(detail, JsonB),
    ),
> {
    TableIterator::new(diff::diff_app(&current.0, &wanted.0).into_iter().map(|c| {
        (
            c.kind.to_owned(),
            c.path,
            c.change.to_owned(),
            JsonB(c.detail),
        )
    }))
}

/// The role lowcode authorizes and records as the actor: the session's role (after
/// `SET ROLE`). Unlike `current_user` it stays the caller's inside lowcode's SECURITY DEFINER
/// functions, where `current_user` is the extension's owner.
#[pg_extern(stable, parallel_safe)]
fn invoker() -> pg_sys::Oid {
    identity::invoker()
}

/// 0.1.0's way of running workflow `call` actions (as whoever fired the rule). Not part of
/// 0.2.0's SQL; the symbol stays so that this library still serves a 0.1.0 database until
/// `ALTER EXTENSION lowcode UPDATE` (see docs/operations.md, "Upgrading").
#[pg_extern(volatile, sql = false)]
fn call_as_invoker(query: &str, arg: JsonB) -> Option<JsonB> {
    identity::call_as_invoker(query, arg).unwrap_or_else(|error| raise("", error))
}

/// Internal: the cause of the change being written (what its history row records), or NULL.
#[pg_extern(volatile, parallel_unsafe)]
fn cause() -> Option<JsonB> {
    engine_state::get(engine_state::Slot::Cause).map(|text| JsonB(parse_json(&text)))
}

/// Internal: set the cause of the next changes (NULL or JSON null: none) and return the
/// previous one (JSON null: none), to restore afterwards.
#[pg_extern(volatile, parallel_unsafe)]
fn with_cause(cause: Option<JsonB>) -> JsonB {
    let value = cause
        .map(|c| c.0)
        .filter(|v| !v.is_null())
        .map(|v| v.to_string());
    engine_state::set(engine_state::Slot::Cause, value)
        .map(|text| JsonB(parse_json(&text)))
        .unwrap_or(JsonB(serde_json::Value::Null))
}

/// Internal: the rules running now, outermost first, joined by ' → ' ('' when none).
#[pg_extern(volatile, parallel_unsafe)]
fn rule_chain() -> String {
    engine_state::get(engine_state::Slot::RuleChain).unwrap_or_default()
}

/// Internal: set the chain of running rules; returns the previous one.
#[pg_extern(volatile, parallel_unsafe)]
fn set_rule_chain(chain: Option<&str>) -> String {
    let value = chain.filter(|c| !c.is_empty()).map(str::to_owned);
    engine_state::set(engine_state::Slot::RuleChain, value).unwrap_or_default()
}

fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("lowcode's engine state holds JSON it wrote itself")
}

/// The naive path `make bench` compares against: compile the schema and convert the
/// document to serde_json on every call. Built only with `--features bench`.
#[cfg(feature = "bench")]
#[pg_extern(immutable, parallel_safe, strict)]
fn naive_is_valid(schema: JsonB, data: JsonB) -> bool {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema.0)
        .map(|validator| validator.is_valid(&data.0))
        .unwrap_or(false)
}

/// Internal: whether `topic` is one of `topics` (exact, `prefix.*`, `*`; NULL or empty: every
/// topic). The one topic matcher (crates/core/src/topics.rs), for poll_events and consumer_lag.
#[pg_extern(immutable, parallel_safe)]
fn topic_matches(topic: Option<&str>, topics: Option<pgrx::Array<&str>>) -> Option<bool> {
    let topic = topic?;
    let Some(topics) = topics else {
        return Some(true);
    };
    let topics: Vec<&str> = topics.iter().flatten().collect();
    Some(crate::topics::matches(topic, Some(&topics)))
}

/// Internal: the wait before the next attempt of work tried `tried` times under `policy`
/// ('timer', 'consumer', 'webhook'; crates/core/src/retry.rs), following `schedule` when it has entries;
/// NULL when it has had `max_attempts` (NULL: the policy's own limit, none but for timers).
#[pg_extern(immutable, parallel_safe)]
fn retry_delay(
    policy: Option<&str>,
    tried: Option<i32>,
    max_attempts: default!(Option<i32>, "NULL"),
    schedule: default!(Option<Vec<Option<pgrx::datum::Interval>>>, "NULL"),
) -> Option<pgrx::datum::Interval> {
    use crate::retry;
    let name = policy.unwrap_or_default();
    let Some(p) = retry::named(name) else {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("retry_delay: unknown policy \"{name}\""),
            Some("the policies are timer, consumer and webhook".into()),
            None,
        );
    };
    let tried = tried.unwrap_or(0).max(0) as u32;
    let limit = match max_attempts {
        Some(n) => Some(n.max(0) as u32),
        None => (name == "timer").then_some(retry::TIMER_ATTEMPTS),
    };
    if limit.is_some_and(|n| !retry::again(tried, n)) {
        return None;
    }
    let schedule: Vec<std::time::Duration> = schedule
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|i| std::time::Duration::from_micros(i.as_micros().clamp(0, i64::MAX as i128) as u64))
        .collect();
    let wait = retry::delay(&p, tried.max(1), &schedule, 0);
    Some(pgrx::datum::Interval::from_micros(
        wait.as_micros().min(i64::MAX as u128) as i64,
    ))
}

/// Run call (one of transition, update_record, claim_task (by task, or from a pool),
/// complete_task, release_task, reassign_task, decide, withdraw, delete_record,
/// read_records, or an outbox call of `crate::outbox::CALLS` with its consumer; args: its arguments by name, as JSON) on the
/// node of app's records, and return its result as JSON. On a distributed runtime
/// (lowcode.distribute(runtime => true)) the calls that take only an id, and the outbox calls,
/// send themselves as this; a caller that knows the app saves their lookup. Authorized like
/// the call itself.
#[pg_extern(volatile)]
fn call_at(
    app: Option<&str>,
    call: Option<&str>,
    args: default!(Option<JsonB>, "'{}'"),
) -> Option<JsonB> {
    let (Some(app), Some(call)) = (app, call) else {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "call_at: arguments \"app\" and \"call\" must not be NULL".into(),
            None,
            None,
        )
    };
    if !crate::placement::CALLS.contains(&call)
        && !crate::outbox::CALLS.contains(&call)
        && !SQL_CALLS.contains(&call)
    {
        crate::report::raise(
            "",
            crate::placement::PlacementError::NoCall {
                call: call.to_owned(),
                calls: [
                    &crate::placement::CALLS[..],
                    &SQL_CALLS[..],
                    &crate::outbox::CALLS[..],
                ]
                .concat()
                .join(", "),
            },
        );
    }
    let args = args.map(|a| a.0).unwrap_or_else(|| serde_json::json!({}));
    crate::placement::here_or_there(
        app,
        call,
        || dispatch(call, &args).map(JsonB),
        || crate::placement::send_call(app, call, args.clone()).map(JsonB),
    )
}

/// One of `call_at`'s calls, with its arguments by name.
fn dispatch(call: &str, args: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    let int = |k: &str| args.get(k).and_then(Value::as_i64);
    let text = |k: &str| args.get(k).and_then(Value::as_str);
    let json = |k: &str| {
        args.get(k)
            .filter(|v| !v.is_null())
            .map(crate::jsonb::JsonbBytes::from_json)
    };
    let or_empty = |v: Option<crate::jsonb::JsonbBytes>| {
        v.or_else(|| Some(crate::jsonb::JsonbBytes::from_json(&serde_json::json!({}))))
    };
    match call {
        "transition" => {
            crate::transitions::transition(int("record"), text("name"), or_empty(json("payload")))
                .map(Value::String)
        }
        "update_record" => Some(Value::from(crate::records::update_record(
            int("id"),
            json("data"),
            int("expected_revision").map(|v| v as i32),
        ))),
        "claim_task" if args.get("task").is_some() => Some(Value::Bool(
            crate::tasks::claim_task_by_id(int("task"), text("worker")),
        )),
        "claim_task" => crate::tasks::claim_task(text("pool"), text("worker")).map(Value::from),
        "complete_task" => {
            crate::tasks::complete_task(int("task"), text("outcome"), or_empty(json("data")));
            None
        }
        "release_task" => {
            crate::tasks::release_task(int("task"));
            None
        }
        "reassign_task" => {
            crate::tasks::reassign_task(int("task"), text("to_worker"));
            None
        }
        "decide" => Some(Value::String(crate::approvals::decide(
            int("task"),
            text("decision"),
            text("comment"),
        ))),
        "withdraw" => crate::approvals::withdraw(int("record")).map(Value::String),
        "delete_record" | "read_records" => sql_dispatch(call, args),
        _ => crate::outbox::dispatch(call, args),
    }
}

/// `call_at`'s calls written in SQL (sql/definitions.sql, sql/privileges.sql), which ask
/// [`runtime_at`] where they run.
const SQL_CALLS: [&str; 2] = ["delete_record", "read_records"];

/// One of [`SQL_CALLS`] run here, its result as JSON (read_records: its rows).
fn sql_dispatch(call: &str, args: &serde_json::Value) -> Option<serde_json::Value> {
    let sql = match call {
        "delete_record" => {
            "SELECT 'null'::pg_catalog.jsonb FROM lowcode.delete_record(($1 ->> 'id')::pg_catalog.int8)"
        }
        "read_records" => {
            "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]') \
               FROM lowcode.read_records($1 ->> 'app', $1 ->> 'form') r"
        }
        _ => return None,
    };
    crate::statements::call_with_json(call, sql, args)
}

/// Internal: the app of record `record` on a distributed runtime (of its history, once the
/// record is deleted), found on the nodes that answer (a node down: an error naming it, if
/// none of the others has it); NULL when there is none, and always on one node, where a read
/// by id needs no app. `get_record` and `record_history` read by it, on the app's shards only.
#[pg_extern(volatile)]
fn app_of_record(record: Option<i64>) -> Option<String> {
    let record = record?;
    if !crate::placement::runtime_distributed() {
        return None;
    }
    crate::placement::app_of_record(record)
}

/// Internal: where a call about an app's records that is written in SQL runs
/// (`delete_record`, `read_records`; the app given, or that of `record`). NULL on one node:
/// here. With the runtime distributed by app: `{"app": <app>}` here, on the node of the app
/// (the call's statements then name the app, and Citus runs them on its shards here); or
/// `{"r": <result>}`: the call (with `args`, and `record` as "id") ran on the app's node as
/// `lowcode.call_at`, and this is what it returned.
#[pg_extern(volatile)]
fn runtime_at(
    call: Option<&str>,
    app: Option<&str>,
    record: Option<i64>,
    args: default!(Option<JsonB>, "'{}'"),
) -> Option<JsonB> {
    use crate::placement;
    let Some(call) = call else {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "runtime_at: argument \"call\" must not be NULL".into(),
            None,
            None,
        )
    };
    if !placement::runtime_distributed() {
        return None;
    }
    if let Some(here) = crate::statements::shards_app() {
        return Some(JsonB(serde_json::json!({ "app": here })));
    }
    let app = match (app, record) {
        (Some(app), _) => app.to_owned(),
        (None, Some(id)) => placement::app_of_row(placement::Of::Record, id),
        // (Nothing to route by: the call reports its NULL argument itself.)
        (None, None) => return None,
    };
    let mut args = args.map(|a| a.0).unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = args.as_object_mut() {
        map.insert("app".into(), serde_json::Value::from(app.as_str()));
        if let Some(id) = record {
            map.insert("id".into(), serde_json::Value::from(id));
        }
    }
    placement::here_or_there(
        &app,
        call,
        || Some(JsonB(serde_json::json!({ "app": app }))),
        || {
            Some(JsonB(
                serde_json::json!({ "r": placement::send_call(&app, call, args.clone()) }),
            ))
        },
    )
}
