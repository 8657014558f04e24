//! Typed views: the INSTEAD OF trigger of every view `lowcode.publish` makes. INSERT submits
//! the row's columns as the record's data, UPDATE applies the changed columns
//! (`lowcode.view_change`), DELETE deletes the record; RETURNING shows the row as stored, as
//! the writer may see it. The view-specific statements are prepared once per backend.

use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use crate::jsonb::OwnedJsonb;
use crate::privileges;
use crate::records::{self, Inserted};
use crate::statements;

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
