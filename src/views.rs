//! Typed views: the INSTEAD OF trigger of every view `lowcode.publish` makes. INSERT submits
//! the row's columns as the record's data, UPDATE applies the changed columns
//! (`lowcode.view_change`), DELETE deletes the record; RETURNING shows the row as stored, as
//! the writer may see it. The view-specific statements are prepared once per backend.

use pgrx::pg_sys::BuiltinOid::INT8OID;
use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use crate::statements;

/// `"name"`, quoted for SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A row of the view (its trigger's relation) as a composite datum.
fn row_datum(tuple: *mut pg_sys::HeapTupleData, desc: pg_sys::TupleDesc) -> pg_sys::Datum {
    // SAFETY: `tuple` is a row of the relation `desc` describes.
    unsafe { pg_sys::heap_copy_tuple_as_datum(tuple, desc) }
}

fn fail(app: &str, form: &str, error: pgrx::spi::SpiError) -> ! {
    pgrx::error!("lowcode: {app}.{form}: writing through the view failed: {error}")
}

/// INSTEAD OF INSERT OR UPDATE OR DELETE on a published view (arguments: app, form).
#[pg_trigger]
fn view_write<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let args = trigger.extra_args().unwrap_or_default();
    let (app, form) = match args.as_slice() {
        [app, form, ..] => (app.as_str(), form.as_str()),
        _ => pgrx::error!("lowcode: view_write needs the app and form as trigger arguments"),
    };
    let data = trigger.trigger_data();
    // SAFETY: a row trigger on a view: its relation and tuples are valid.
    let (desc, rowtype, old, new) = unsafe {
        let desc = (*data.tg_relation).rd_att;
        (desc, (*desc).tdtypeid, data.tg_trigtuple, data.tg_newtuple)
    };
    let view = format!("{}.{}", ident(app), ident(form));
    let op = trigger.op();
    let id: Option<i64> = match op {
        Ok(PgTriggerOperation::Delete) => {
            // SAFETY: column 1 of a typed view is the record id.
            let id = unsafe { heap_int8(old, desc, 1) };
            Spi::connect_mut(|client| {
                statements::run_built(
                    client,
                    "SELECT lowcode.delete_record($1)",
                    &[INT8OID],
                    &[id.into()],
                )
                .map(|_| ())
            })
            .unwrap_or_else(|error| fail(app, form, error));
            // SAFETY: OLD is a row of the view.
            return Ok(Some(unsafe {
                PgHeapTuple::from_heap_tuple(PgTupleDesc::from_pg_unchecked(desc), old)
            }));
        }
        Ok(PgTriggerOperation::Insert) => {
            let sql = format!(
                "SELECT lowcode.submit($1, $2, (SELECT coalesce(pg_catalog.jsonb_object_agg(e.key, e.value), '{{}}') \
                   FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb($3::{view})) e \
                  WHERE e.key OPERATOR(pg_catalog.<>) ALL ('{{id,state,revision,created_at,updated_at}}'::pg_catalog.text[]) \
                    AND e.value OPERATOR(pg_catalog.<>) 'null'::pg_catalog.jsonb))"
            );
            let row = row_datum(old, desc);
            Spi::connect_mut(|client| {
                statements::run_typed(
                    client,
                    &sql,
                    &[pg_sys::TEXTOID, pg_sys::TEXTOID, rowtype],
                    &[app.into(), form.into(), unsafe {
                        pgrx::datum::DatumWithOid::new(row, rowtype)
                    }],
                )?
                .first()
                .get::<i64>(1)
            })
            .unwrap_or_else(|error| fail(app, form, error))
        }
        _ => {
            let sql = format!(
                "SELECT lowcode.view_change($1, $2, pg_catalog.to_jsonb($3::{view}), pg_catalog.to_jsonb($4::{view}))"
            );
            let (old_row, new_row) = (row_datum(old, desc), row_datum(new, desc));
            Spi::connect_mut(|client| {
                statements::run_typed(
                    client,
                    &sql,
                    &[pg_sys::TEXTOID, pg_sys::TEXTOID, rowtype, rowtype],
                    &[
                        app.into(),
                        form.into(),
                        unsafe { pgrx::datum::DatumWithOid::new(old_row, rowtype) },
                        unsafe { pgrx::datum::DatumWithOid::new(new_row, rowtype) },
                    ],
                )?
                .first()
                .get::<i64>(1)
            })
            .unwrap_or_else(|error| fail(app, form, error))
        }
    };
    let written = if matches!(op, Ok(PgTriggerOperation::Insert)) {
        old
    } else {
        new
    };
    // RETURNING shows what was stored, as the writer may see it (a role that may submit but
    // not read gets back only the id).
    let sql = format!("SELECT v.* FROM {view} v WHERE v.id OPERATOR(pg_catalog.=) $1");
    let shown: Option<*mut pg_sys::HeapTupleData> = Spi::connect_mut(|client| {
        statements::run_typed(client, &sql, &[pg_sys::INT8OID], &[id.into()]).map(|_| {
            // SAFETY: the statement just ran; SPI_copytuple copies its row into the trigger's
            // memory context, which outlives this connection.
            unsafe {
                let table = pg_sys::SPI_tuptable;
                if table.is_null() || pg_sys::SPI_processed == 0 {
                    None
                } else {
                    Some(pg_sys::SPI_copytuple(*(*table).vals))
                }
            }
        })
    })
    .unwrap_or_else(|error| fail(app, form, error));
    let tuple = match shown {
        Some(tuple) => tuple,
        None => {
            // SAFETY: sets column 1 (the id) of the written row.
            unsafe {
                let mut column = 1i32;
                let mut value = id.into_datum().unwrap_or(pg_sys::Datum::from(0));
                let mut null = id.is_none();
                pg_sys::heap_modify_tuple_by_cols(
                    written,
                    desc,
                    1,
                    &mut column,
                    &mut value,
                    &mut null,
                )
            }
        }
    };
    // SAFETY: the tuple has the view's columns.
    Ok(Some(unsafe {
        PgHeapTuple::from_heap_tuple(PgTupleDesc::from_pg_unchecked(desc), tuple)
    }))
}

/// A bigint column of a row.
///
/// # Safety
/// `tuple` must be a row of the relation `desc` describes.
unsafe fn heap_int8(
    tuple: *mut pg_sys::HeapTupleData,
    desc: pg_sys::TupleDesc,
    column: i32,
) -> Option<i64> {
    let mut null = false;
    let datum = unsafe { pg_sys::SPI_getbinval(tuple, desc, column, &mut null) };
    if null {
        None
    } else {
        unsafe { i64::from_datum(datum, false) }
    }
}
