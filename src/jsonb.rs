//! A `jsonb` argument read as its stored bytes: no parsing, no conversion to serde_json.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::{impl_sql_translatable, pg_sys, FromDatum};

/// A detoasted `jsonb` value; lives as long as the function call's memory context.
pub struct JsonbBytes {
    varlena: *const pg_sys::varlena,
}

impl JsonbBytes {
    /// The value as a datum (to pass it on as a statement's parameter).
    pub fn datum(&self) -> pg_sys::Datum {
        pg_sys::Datum::from(self.varlena)
    }

    /// The `JsonbContainer` bytes, without the varlena header, as `Jsonb::root` expects.
    pub fn container(&self) -> &[u8] {
        // SAFETY: `varlena` was detoasted in `from_polymorphic_datum` and lives in the
        // call's memory context, which outlives `self`.
        unsafe { pgrx::varlena_to_byte_slice(self.varlena) }
    }
}

impl JsonbBytes {
    /// The value as serde_json (slow path only: definitions, and compiling a condition on a
    /// cache miss). Fails past serde_json's nesting limit (128), which no schema needs.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        // SAFETY: the container is a valid jsonb written by PostgreSQL; JsonbToCString
        // pallocs the text in the current memory context.
        let text = unsafe {
            let container = pgrx::varlena::vardata_any(self.varlena) as *mut pg_sys::JsonbContainer;
            let cstr = pg_sys::JsonbToCString(
                std::ptr::null_mut(),
                container,
                self.container().len() as i32,
            );
            std::ffi::CStr::from_ptr(cstr)
        };
        serde_json::from_slice(text.to_bytes())
    }
}

impl FromDatum for JsonbBytes {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: the caller guarantees `datum` is a non-null jsonb.
        let varlena = unsafe { pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr()) };
        Some(JsonbBytes { varlena })
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonbBytes {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

impl_sql_translatable!(JsonbBytes, arg_only = "jsonb");

/// A `jsonb` value the engine keeps across statements (a record's data): the detoasted
/// varlena's bytes, copied out of PostgreSQL's memory.
#[derive(Clone)]
pub struct OwnedJsonb(Vec<u8>);

impl OwnedJsonb {
    /// Copy a non-null jsonb datum.
    ///
    /// # Safety
    /// `datum` must be a valid, non-null jsonb datum.
    pub unsafe fn from_datum(datum: pg_sys::Datum) -> OwnedJsonb {
        // SAFETY: the caller guarantees a jsonb datum; the detoasted copy has a 4-byte header.
        unsafe {
            let varlena = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
            let len = pgrx::varlena::varsize_any(varlena);
            OwnedJsonb(std::slice::from_raw_parts(varlena as *const u8, len).to_vec())
        }
    }

    /// The `JsonbContainer` bytes, as the validators read them.
    pub fn container(&self) -> &[u8] {
        &self.0[pg_sys::VARHDRSZ..]
    }

    /// A datum of this value, palloc'd in the current memory context.
    pub fn datum(&self) -> pg_sys::Datum {
        // SAFETY: copies our bytes (a complete varlena with a 4-byte header) into palloc'd memory.
        unsafe {
            let ptr = pg_sys::palloc(self.0.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), ptr, self.0.len());
            pg_sys::Datum::from(ptr)
        }
    }

    /// Whether PostgreSQL sees the two values as equal (`=`): equal bytes are, and a few
    /// different encodings are too (1.0 and 1.00).
    pub fn same_as(&self, other: &OwnedJsonb) -> bool {
        if self.0 == other.0 {
            return true;
        }
        // SAFETY: both datums are valid jsonb values; jsonb_eq compares them.
        unsafe {
            pgrx::direct_function_call::<bool>(
                pg_sys::jsonb_eq,
                &[Some(self.datum()), Some(other.datum())],
            )
            .unwrap_or(false)
        }
    }

    /// The value as serde_json (for building payloads).
    pub fn to_json(&self) -> serde_json::Value {
        // SAFETY: our bytes are a jsonb container written by PostgreSQL.
        let text = unsafe {
            let container = self.0.as_ptr().add(pg_sys::VARHDRSZ) as *mut pg_sys::JsonbContainer;
            let cstr = pg_sys::JsonbToCString(
                std::ptr::null_mut(),
                container,
                self.container().len() as i32,
            );
            std::ffi::CStr::from_ptr(cstr)
        };
        serde_json::from_slice(text.to_bytes()).unwrap_or(serde_json::Value::Null)
    }
}

// SAFETY: the datum is a complete jsonb varlena palloc'd in the function's memory context.
unsafe impl pgrx::callconv::BoxRet for OwnedJsonb {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.datum()) }
    }
}

impl_sql_translatable!(OwnedJsonb, "jsonb");

/// A JSON value as PostgreSQL prints a jsonb (`{"a": 1, "bb": [1, 2]}`: keys shortest first,
/// then bytewise; ", " and ": " between), so that messages built in Rust read like those
/// built in SQL.
pub fn jsonb_text(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_jsonb_text(value, &mut out);
    out
}

fn write_jsonb_text(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb_text(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push_str(": ");
                write_jsonb_text(&map[*key], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The header of a jsonb container (the bytes after the varlena header): its kind and size.
fn header(container: &[u8]) -> u32 {
    container
        .get(..4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// Whether a jsonb container holds an object.
pub fn is_object(container: &[u8]) -> bool {
    header(container) & pg_sys::JB_FOBJECT != 0
}

/// Whether a jsonb container holds an empty object.
pub fn is_empty_object(container: &[u8]) -> bool {
    is_object(container) && header(container) & pg_sys::JB_CMASK == 0
}

impl JsonbBytes {
    /// A JSON value as a jsonb argument (a call sent as `lowcode.call_at`, its arguments
    /// by name).
    pub fn from_json(value: &serde_json::Value) -> JsonbBytes {
        use pgrx::IntoDatum;
        let datum = pgrx::JsonB(value.clone())
            .into_datum()
            .unwrap_or_else(|| crate::report::broken("a jsonb value gave no datum"));
        // SAFETY: a non-null jsonb datum just made, in the current memory context.
        unsafe { JsonbBytes::from_polymorphic_datum(datum, false, pg_sys::JSONBOID) }
            .unwrap_or_else(|| crate::report::broken("a jsonb value gave NULL"))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_empty_object, is_object, jsonb_text};
    use pgrx::pg_sys;
    use serde_json::json;

    #[test]
    fn reads_a_container_header() {
        let object = |n: u32| (pg_sys::JB_FOBJECT | n).to_ne_bytes();
        assert!(is_object(&object(0)) && is_empty_object(&object(0)));
        assert!(is_object(&object(2)) && !is_empty_object(&object(2)));
        // An array, and 'null' (a raw scalar: an array of one, flagged scalar).
        let array = (pg_sys::JB_FARRAY | 1).to_ne_bytes();
        let null = (pg_sys::JB_FARRAY | pg_sys::JB_FSCALAR | 1).to_ne_bytes();
        assert!(!is_object(&array) && !is_object(&null) && !is_empty_object(&array));
        assert!(!is_object(&[]));
    }

    #[test]
    fn prints_like_jsonb() {
        assert_eq!(
            jsonb_text(&json!([{"path": "/q", "message": "m", "field": "/q", "keyword": "k"}])),
            r#"[{"path": "/q", "field": "/q", "keyword": "k", "message": "m"}]"#
        );
        assert_eq!(
            jsonb_text(&json!({"b": [1, "x\n"], "a": null})),
            r#"{"a": null, "b": [1, "x\n"]}"#
        );
    }
}
