//! The SQL surface for whoever renders a form: `form_schema` (a document a renderer takes as
//! is, the author's order, the UI schema), `set_form_ui`'s check, the author's property order
//! of a schema written as text, and `submit` with the version the page was built from.
//! The logic is plain Rust in crates/core/src/renderer.rs.

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};

use crate::renderer::{self, UiError};
use crate::report::{raise, Reportable};

/// Why a form could not be shown or a page's submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum FormsError {
    #[error("argument \"{0}\" must not be NULL")]
    Null(&'static str),
    #[error("unknown form \"{0}\"")]
    UnknownForm(String),
    #[error("form \"{0}\" has no version {1}")]
    UnknownVersion(String, i32),
    #[error("UI schema at \"{}\": {}", .0.pointer, .0.message)]
    Ui(UiError),
    #[error("the form changed since the page was loaded: version {current} is current, the page was built from version {expected}")]
    Changed { current: i32, expected: i32 },
}

impl Reportable for FormsError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            FormsError::Null(_) => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            FormsError::UnknownForm(_) | FormsError::UnknownVersion(..) => {
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT
            }
            FormsError::Ui(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            FormsError::Changed { .. } => PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        }
    }
    fn detail(&self) -> Option<String> {
        match self {
            FormsError::Ui(e) => Some(json!({"path": e.pointer}).to_string()),
            FormsError::Changed { current, expected } => {
                Some(json!({"current_version": current, "expected_version": expected}).to_string())
            }
            _ => None,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            FormsError::Changed { .. } => Some(
                "load the form again (lowcode.form_schema) and submit against its current version"
                    .into(),
            ),
            FormsError::UnknownForm(_) => {
                Some("define it with lowcode.define_form(app, form, schema)".into())
            }
            _ => None,
        }
    }
}

fn required<T>(value: Option<T>, name: &'static str) -> T {
    value.unwrap_or_else(|| raise("", FormsError::Null(name)))
}

/// One form version as `form_schema` reads it.
struct Version {
    version: i32,
    id: i64,
    draft: String,
    bundled: Value,
    order: Option<Value>,
    title: String,
    ui: Value,
}

fn read_version(app: &str, form: &str, version: Option<i32>) -> Option<Version> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT v.version, v.id, v.draft, v.bundled, v.property_order, f.title, f.ui
               FROM lowcode.forms f
               JOIN lowcode.form_versions v
                 ON v.app OPERATOR(pg_catalog.=) f.app AND v.form OPERATOR(pg_catalog.=) f.name
              WHERE f.app OPERATOR(pg_catalog.=) $1 AND f.name OPERATOR(pg_catalog.=) $2
                AND CASE WHEN $3::pg_catalog.int4 IS NULL THEN v.id OPERATOR(pg_catalog.=) f.current_version_id
                         ELSE v.version OPERATOR(pg_catalog.=) $3 END",
            Some(1),
            &[app.into(), form.into(), version.into()],
        )?;
        if rows.is_empty() {
            return Ok::<_, pgrx::spi::SpiError>(None);
        }
        let row = rows.first();
        Ok(Some(Version {
            version: row.get::<i32>(1)?.unwrap_or_default(),
            id: row.get::<i64>(2)?.unwrap_or_default(),
            draft: row.get::<String>(3)?.unwrap_or_default(),
            bundled: row.get::<JsonB>(4)?.map(|j| j.0).unwrap_or(Value::Null),
            order: row.get::<JsonB>(5)?.map(|j| j.0),
            title: row.get::<String>(6)?.unwrap_or_default(),
            ui: row.get::<JsonB>(7)?.map(|j| j.0).unwrap_or_else(|| json!({})),
        }))
    })
    .unwrap_or_else(|error| crate::report::failed(format_args!("reading form {app}.{form}"), error))
}

fn form_exists(app: &str, form: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM lowcode.forms f WHERE f.app OPERATOR(pg_catalog.=) $1 AND f.name OPERATOR(pg_catalog.=) $2)",
        &[app.into(), form.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The order a renderer shows the fields in: the author's (when the version was defined from
/// text), else the stored schema's, with the UI schema's `order` over both.
fn effective_order(version: &Version) -> Value {
    let mut order: serde_json::Map<String, Value> = renderer::property_order_of(&version.bundled)
        .into_iter()
        .map(|(object, names)| {
            (
                object,
                Value::Array(names.into_iter().map(Value::String).collect()),
            )
        })
        .collect();
    if let Some(Value::Object(authored)) = &version.order {
        for (object, names) in authored {
            order.insert(object.clone(), names.clone());
        }
    }
    if let Some(Value::Object(ui_order)) = version.ui.get("order") {
        for (object, names) in ui_order {
            order.insert(object.clone(), names.clone());
        }
    }
    Value::Object(order)
}

/// A form for a renderer: `{app, form, version, version_id, draft, title, schema, order,
/// ui}`. `schema` is a standard JSON Schema document (explicit `$schema`, registered `$ref`s
/// embedded under `$defs` with their `$id`); `order` the fields' order per object (`""`: the
/// form); `ui` the form's UI schema (lowcode.set_form_ui). The current version, or `version`.
#[pg_extern(stable, parallel_safe)]
fn form_schema(
    app: Option<&str>,
    form: Option<&str>,
    version: default!(Option<i32>, "NULL"),
) -> JsonB {
    let app = required(app, "app");
    let form = required(form, "form");
    let subject = format!("{app}.{form}");
    let Some(v) = read_version(app, form, version) else {
        match version {
            Some(n) if form_exists(app, form) => {
                raise(&subject, FormsError::UnknownVersion(form.into(), n))
            }
            _ => raise(app, FormsError::UnknownForm(form.into())),
        }
    };
    let schema = renderer::standard_document(&v.bundled, &v.draft);
    let order = effective_order(&v);
    let title =
        v.ui.get("title")
            .cloned()
            .or_else(|| (!v.title.is_empty()).then(|| Value::String(v.title.clone())))
            .unwrap_or(Value::Null);
    JsonB(json!({
        "app": app,
        "form": form,
        "version": v.version,
        "version_id": v.id,
        "draft": renderer::draft_uri(&v.draft),
        "title": title,
        "schema": schema,
        "order": order,
        "ui": v.ui,
    }))
}

/// Internal: raises unless `ui` is a UI schema for the current version of app.form (22023,
/// naming where in it and what is wrong).
#[pg_extern(stable)]
fn check_form_ui(app: Option<&str>, form: Option<&str>, ui: Option<JsonB>) {
    let app = required(app, "app");
    let form = required(form, "form");
    let ui = required(ui, "ui");
    let Some(v) = read_version(app, form, None) else {
        raise(app, FormsError::UnknownForm(form.into()))
    };
    if let Err(e) = renderer::check_ui(&ui.0, &v.bundled) {
        raise(&format!("{app}.{form}"), FormsError::Ui(e));
    }
}

/// Internal: the author's property order of a schema written as JSON text, per object field
/// (`""`: the form itself); NULL when it cannot be read that way (the text's own errors are
/// jsonb's to report, its depth define_form's).
#[pg_extern(immutable, parallel_safe)]
fn property_order(schema: Option<&str>) -> Option<JsonB> {
    renderer::property_order(schema?).ok().map(JsonB)
}

/// The current version of app.form (None: no such form).
fn current_version(app: &str, form: &str) -> Option<i32> {
    Spi::get_one_with_args::<i32>(
        "SELECT v.version FROM lowcode.forms f
           JOIN lowcode.form_versions v ON v.id OPERATOR(pg_catalog.=) f.current_version_id
          WHERE f.app OPERATOR(pg_catalog.=) $1 AND f.name OPERATOR(pg_catalog.=) $2",
        &[app.into(), form.into()],
    )
    .ok()
    .flatten()
}

// (By app and id, then the version by its id: with the runtime distributed, a read of the
// app's shard that Citus routes by the app, as it requires in a call it delegated.)
fn version_of_record(app: &str, id: i64) -> Option<i32> {
    let version_id = Spi::get_one_with_args::<i64>(
        "SELECT r.form_version_id FROM lowcode.records r \
          WHERE r.app OPERATOR(pg_catalog.=) $2 AND r.id OPERATOR(pg_catalog.=) $1",
        &[id.into(), app.into()],
    )
    .ok()
    .flatten()?;
    Spi::get_one_with_args::<i32>(
        "SELECT v.version FROM lowcode.form_versions v WHERE v.id OPERATOR(pg_catalog.=) $1",
        &[version_id.into()],
    )
    .ok()
    .flatten()
}

/// Submit data to a form, as a page built from version `expected_version` of it does: refused
/// with SQLSTATE 40001 (nothing written) when the form's current version is another one, also
/// when it changed while this ran. Otherwise as `submit(app, form, data)`.
#[pg_extern(volatile, name = "submit")]
fn submit_expecting(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<crate::jsonb::JsonbBytes>,
    expected_version: Option<i32>,
) -> i64 {
    let expected = required(expected_version, "expected_version");
    let datum = data.as_ref().map(crate::jsonb::JsonbBytes::datum);
    let Some(on) = app else {
        return submit_expecting_here(app, form, datum, expected);
    };
    crate::placement::here_or_there(
        on,
        "submit",
        || submit_expecting_here(app, form, datum, expected),
        || crate::placement::send_submit(on, form, datum, Some(expected)),
    )
}

/// `submit(app, form, data, expected_version)` where the app's records are.
fn submit_expecting_here(
    app: Option<&str>,
    form: Option<&str>,
    data: Option<pg_sys::Datum>,
    expected: i32,
) -> i64 {
    let subject = format!("{}.{}", app.unwrap_or(""), form.unwrap_or(""));
    if let (Some(a), Some(f)) = (app, form) {
        if let Some(current) = current_version(a, f) {
            if current != expected {
                raise(&subject, FormsError::Changed { current, expected });
            }
        }
    }
    let id = crate::records::insert(app, form, data).id;
    // The version the record was validated against (a define_form may have committed since
    // the check above): the same, or nothing is written.
    if let Some(used) = app.and_then(|a| version_of_record(a, id)) {
        if used != expected {
            raise(
                &subject,
                FormsError::Changed {
                    current: used,
                    expected,
                },
            );
        }
    }
    id
}
