//! Typed views: the INSTEAD OF trigger of every view `lowcode.publish` makes. INSERT submits
//! the row's columns as the record's data, UPDATE applies the changed columns with
//! `lowcode.update_record` (`change`: the record locked, refused when another transaction
//! changed it meanwhile), DELETE deletes the record; RETURNING shows the row as stored, as the
//! writer may see it. The view-specific statements are prepared once per backend.

use pgrx::pg_sys::BuiltinOid::{INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID};
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgTupleDesc};

use crate::jsonb::OwnedJsonb;
use crate::privileges;
use crate::records::{self, Inserted};
use crate::statements::{self, jsonb_arg, Statement};

/// The columns a typed view adds to the form's fields.
const OWN: [&str; 5] = ["id", "state", "revision", "created_at", "updated_at"];

/// `'null'::jsonb`'s container: a raw scalar (an array of one, flagged scalar) holding null.
const JSON_NULL: [u8; 8] = [0x01, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x40];

/// The record data an inserted view row stands for: its columns but the view's own, without
/// NULLs (SQL or JSON), as `to_jsonb` writes them.
fn row_data(
    app: &str,
    form: &str,
    view: &str,
    tuple: *mut pg_sys::HeapTupleData,
    desc: pg_sys::TupleDesc,
    rowtype: pg_sys::Oid,
) -> OwnedJsonb {
    let mut left_out: Vec<String> = OWN.iter().map(|c| (*c).to_owned()).collect();
    // SAFETY: `desc` describes `tuple`, a row of the view.
    let tupdesc = unsafe { PgTupleDesc::from_pg_unchecked(desc) };
    for (i, attr) in tupdesc.iter().enumerate() {
        if attr.is_dropped() {
            continue;
        }
        let mut null = false;
        // SAFETY: attribute i + 1 of the row.
        let datum = unsafe { pg_sys::SPI_getbinval(tuple, desc, i as i32 + 1, &mut null) };
        // SAFETY: a jsonb column's datum.
        let json_null = !null
            && attr.type_oid().value() == pg_sys::JSONBOID
            && unsafe { OwnedJsonb::from_datum(datum) }.container() == JSON_NULL;
        if null || json_null {
            left_out.push(attr.name().to_owned());
        }
    }
    let row = row_datum(tuple, desc);
    // SAFETY: `row` is a composite datum of `rowtype`.
    let json = unsafe { row_to_jsonb(row, rowtype) };
    // SAFETY: jsonb_delete_array takes a jsonb and a text[] and returns a jsonb.
    let data = unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::jsonb_delete_array,
            &[Some(json), left_out.into_datum()],
        )
    };
    // SAFETY: a jsonb datum.
    data.map(|d| unsafe { OwnedJsonb::from_datum(d) })
        .unwrap_or_else(|| {
            crate::report::broken(format_args!("{app}.{form}: the row of {view} gave no data"))
        })
}

/// `pg_catalog.to_jsonb(row)` for a row of `rowtype`, called as a query would call it (the
/// function reads its argument's type from the call's expression), without running one.
///
/// # Safety
/// `row` must be a composite datum of type `rowtype`.
unsafe fn row_to_jsonb(row: pg_sys::Datum, rowtype: pg_sys::Oid) -> pg_sys::Datum {
    // SAFETY: palloc'd nodes in the current memory context describe the call; fmgr_info
    // looks to_jsonb up; the call gets a valid composite datum of the type its expression
    // names.
    unsafe {
        let arg = pg_sys::makeNullConst(rowtype, -1, pg_sys::InvalidOid);
        let mut args = pgrx::PgList::<pg_sys::Node>::new();
        args.push(arg.cast());
        let expr = pg_sys::makeFuncExpr(
            pg_sys::Oid::from(pg_sys::F_TO_JSONB),
            pg_sys::JSONBOID,
            args.into_pg(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        let flinfo =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
        pg_sys::fmgr_info(pg_sys::Oid::from(pg_sys::F_TO_JSONB), flinfo);
        (*flinfo).fn_expr = expr.cast();
        pg_sys::FunctionCall1Coll(flinfo, pg_sys::InvalidOid, row)
    }
}

/// Whether `INSERT ... RETURNING` may show the row as written (with the record's own columns)
/// instead of reading it back: no rule can have changed the new record yet (none listens to
/// `created` or to entering its initial state), and the writer sees all of it (it may read
/// its records and no field of the form is hidden from it).
fn returns_as_written(app: &str, form: &str) -> bool {
    match crate::definitions_cache::current_workflow(app, form) {
        Ok(None) => {}
        Ok(Some(wf)) => {
            let entered = format!("entered:{}", wf.runtime.initial);
            if !wf.runtime.rules_for("created").is_empty()
                || !wf.runtime.rules_for(&entered).is_empty()
            {
                return false;
            }
        }
        Err(_) => return false,
    }
    if privileges::admin() {
        return true;
    }
    (privileges::holds(Some(app), Some("read_all"))
        || privileges::holds(Some(app), Some("read_own")))
        && !privileges::hides_any(app, form)
}

/// The written row with the record's own columns (id, state, revision, created_at,
/// updated_at) as its INSERT returned them.
fn with_own_columns(
    tuple: *mut pg_sys::HeapTupleData,
    desc: pg_sys::TupleDesc,
    inserted: &Inserted,
) -> *mut pg_sys::HeapTupleData {
    let values: [(&std::ffi::CStr, Option<pg_sys::Datum>); 5] = [
        (c"id", inserted.id.into_datum()),
        (c"state", inserted.state.clone().into_datum()),
        (c"revision", inserted.revision.into_datum()),
        (c"created_at", inserted.created_at),
        (c"updated_at", inserted.updated_at),
    ];
    let (mut columns, mut datums, mut nulls) = (Vec::new(), Vec::new(), Vec::new());
    for (name, value) in values {
        // SAFETY: a column lookup by name in the view's descriptor.
        let n = unsafe { pg_sys::SPI_fnumber(desc, name.as_ptr()) };
        if n > 0 {
            columns.push(n);
            datums.push(value.unwrap_or(pg_sys::Datum::from(0)));
            nulls.push(value.is_none());
        }
    }
    // SAFETY: the columns exist in `desc`; the values have their types.
    unsafe {
        pg_sys::heap_modify_tuple_by_cols(
            tuple,
            desc,
            columns.len() as i32,
            columns.as_mut_ptr(),
            datums.as_mut_ptr(),
            nulls.as_mut_ptr(),
        )
    }
}

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
    crate::report::failed(
        format_args!("{app}.{form}: writing through the view"),
        error,
    )
}

// An UPDATE through a view: the record locked, with its data, revision and the transaction
// that wrote it last.
const LOCK_RECORD: Statement = Statement {
    sql: "SELECT r.data, r.revision, r.xmin::pg_catalog.text::pg_catalog.int8 FROM lowcode.records r \
           WHERE r.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
    args: &[INT8OID],
};
// The data after the change: the stored data without the fields hidden from the writer ($4,
// $5: app, form) and without the columns that changed ($2 the old row, $3 the new, both as
// jsonb; $6 the view's own columns), then the changed columns that are not NULL.
const CHANGED_DATA: Statement = Statement {
    sql: "WITH h AS (SELECT lowcode.hidden($4, $5) AS hide), \
               n AS (SELECT x.key, x.value FROM pg_catalog.jsonb_each($3) x \
                      WHERE x.key OPERATOR(pg_catalog.<>) ALL ($6) \
                        AND x.value IS DISTINCT FROM $2 OPERATOR(pg_catalog.->) x.key) \
          SELECT COALESCE((SELECT pg_catalog.jsonb_object_agg(d.k, d.v) \
                             FROM pg_catalog.jsonb_each($1) AS d(k, v), h \
                            WHERE d.k OPERATOR(pg_catalog.<>) ALL (h.hide) \
                              AND d.k NOT IN (SELECT n.key FROM n)), '{}'::pg_catalog.jsonb) \
                 OPERATOR(pg_catalog.||) \
                 COALESCE((SELECT pg_catalog.jsonb_object_agg(n.key, n.value) FROM n \
                            WHERE n.value OPERATOR(pg_catalog.<>) 'null'::pg_catalog.jsonb), \
                          '{}'::pg_catalog.jsonb)",
    args: &[JSONBOID, JSONBOID, JSONBOID, TEXTOID, TEXTOID, TEXTARRAYOID],
};
const JSON_TYPE: Statement = Statement {
    sql: "SELECT pg_catalog.jsonb_typeof($1)",
    args: &[JSONBOID],
};
const UPDATE_RECORD: Statement = Statement {
    sql: "SELECT lowcode.update_record($1, $2)",
    args: &[INT8OID, JSONBOID],
};

/// An UPDATE of a view row: applies the columns that changed (old → new, both as jsonb) to
/// the record with `lowcode.update_record`, keeping the fields the view does not show and
/// those hidden from the writer; returns the record id.
fn change(app: &str, form: &str, old_row: &OwnedJsonb, new_row: &OwnedJsonb) -> i64 {
    let (old_json, new_json) = (old_row.to_json(), new_row.to_json());
    if ["id", "state", "revision"]
        .iter()
        .any(|c| old_json.get(c) != new_json.get(c))
    {
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{app}.{form}: id, state and revision cannot be set through the view"),
            None,
            Some("change state with lowcode.transition; revision counts itself".into()),
        );
    }
    let id = old_json
        .get("id")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_default();
    // Lock the record. If another transaction changed it after this statement read OLD, NEW
    // was computed from stale values (SET balance = balance - 40): refuse, as REPEATABLE READ
    // would, rather than silently lose that change. Changes by this transaction (a rule run
    // by an earlier row of the same statement) are kept: only what changed is applied.
    let locked = Spi::connect_mut(|client| {
        let table = statements::run(client, &LOCK_RECORD, &[id.into()])?;
        if table.is_empty() {
            return Ok(None);
        }
        let row = table.first();
        Ok(Some((
            row.get_datum_by_ordinal(1)?
                // SAFETY: column 1 is the record's jsonb data.
                .map(|d| unsafe { OwnedJsonb::from_datum(d) }),
            row.get::<i32>(2)?,
            row.get::<i64>(3)?,
        )))
    })
    .unwrap_or_else(|error| fail(app, form, error));
    let Some((Some(data), revision, writer)) = locked else {
        // Gone meanwhile: update_record says so.
        return update_record(id, new_row, app, form);
    };
    if !crate::jsonb::is_object(data.container()) {
        let kind = Spi::connect_mut(|client| {
            statements::run(client, &JSON_TYPE, &[jsonb_arg(data.datum())])?
                .first()
                .get::<String>(1)
        })
        .unwrap_or_else(|error| fail(app, form, error))
        .unwrap_or_default();
        crate::report::refuse(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{app}.{form}: record {id} holds a JSON {kind}, not an object, so its view columns cannot be updated"),
            None,
            Some("replace its data with lowcode.update_record".into()),
        );
    }
    let seen = old_json.get("revision").and_then(serde_json::Value::as_i64);
    if revision.map(i64::from) != seen {
        // We hold the row lock, so its last writer is this transaction (or one of its
        // subtransactions) or one that has committed.
        let ours = writer.is_some_and(|xid| {
            // SAFETY: asks whether a transaction id is this transaction's or a subtransaction's.
            unsafe {
                pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from(xid as u32))
            }
        });
        if !ours {
            crate::report::refuse(
                PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                format!("{app}.{form}: record {id} was changed by another transaction while this UPDATE ran"),
                None,
                Some("run the statement again: it will see the other change".into()),
            );
        }
    }
    let own: Vec<String> = OWN.iter().map(|c| (*c).to_owned()).collect();
    let merged = Spi::connect_mut(|client| {
        Ok::<_, pgrx::spi::SpiError>(
            statements::run(
                client,
                &CHANGED_DATA,
                &[
                    jsonb_arg(data.datum()),
                    jsonb_arg(old_row.datum()),
                    jsonb_arg(new_row.datum()),
                    app.into(),
                    form.into(),
                    own.into(),
                ],
            )?
            .first()
            .get_datum_by_ordinal(1)?
            // SAFETY: a jsonb column.
            .map(|d| unsafe { OwnedJsonb::from_datum(d) }),
        )
    })
    .unwrap_or_else(|error| fail(app, form, error))
    .unwrap_or_else(|| {
        crate::report::broken(format_args!("{app}.{form}: no data for record {id}"))
    });
    update_record(id, &merged, app, form)
}

fn update_record(id: i64, data: &OwnedJsonb, app: &str, form: &str) -> i64 {
    Spi::connect_mut(|client| {
        statements::run(
            client,
            &UPDATE_RECORD,
            &[id.into(), jsonb_arg(data.datum())],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|error| fail(app, form, error));
    id
}

/// INSTEAD OF INSERT OR UPDATE OR DELETE on a published view (arguments: app, form).
#[pg_trigger]
fn view_write<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let args = trigger.extra_args().unwrap_or_default();
    let (app, form) = match args.as_slice() {
        [app, form, ..] => (app.as_str(), form.as_str()),
        _ => crate::report::broken("view_write needs the app and form as trigger arguments"),
    };
    let data = trigger.trigger_data();
    // SAFETY: a row trigger on a view: its relation and tuples are valid.
    let (desc, rowtype, old, new) = unsafe {
        let desc = (*data.tg_relation).rd_att;
        (desc, (*desc).tdtypeid, data.tg_trigtuple, data.tg_newtuple)
    };
    let view = format!("{}.{}", ident(app), ident(form));
    // (A typed view's write is the engine's, here: with the runtime distributed, on the
    // app's node only.)
    crate::placement::require_here(app, || format!("a write to view {view}"));
    let op = trigger.op();
    let id: Option<i64> = match op {
        Ok(PgTriggerOperation::Delete) => {
            // SAFETY: column 1 of a typed view is the record id.
            let id = unsafe { heap_int8(old, desc, 1) };
            Spi::connect_mut(|client| {
                statements::run_typed(
                    client,
                    "SELECT lowcode.delete_record($1)",
                    &[pg_sys::INT8OID],
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
            let data = row_data(app, form, &view, old, desc, rowtype);
            let inserted = records::insert(Some(app), Some(form), Some(data.datum()));
            if returns_as_written(app, form) {
                // The row as written is the row as stored: no need to read it back.
                // SAFETY: the tuple has the view's columns.
                return Ok(Some(unsafe {
                    PgHeapTuple::from_heap_tuple(
                        PgTupleDesc::from_pg_unchecked(desc),
                        with_own_columns(old, desc, &inserted),
                    )
                }));
            }
            Some(inserted.id)
        }
        _ => {
            // SAFETY: OLD and NEW are rows of the view, composite datums of its row type.
            let (old_row, new_row) = unsafe {
                (
                    OwnedJsonb::from_datum(row_to_jsonb(row_datum(old, desc), rowtype)),
                    OwnedJsonb::from_datum(row_to_jsonb(row_datum(new, desc), rowtype)),
                )
            };
            Some(change(app, form, &old_row, &new_row))
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
