//! A `jsonb` argument read as its stored bytes: no parsing, no conversion to serde_json.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::{impl_sql_translatable, pg_sys, FromDatum};

/// A detoasted `jsonb` value; lives as long as the function call's memory context.
pub struct JsonbBytes {
    varlena: *const pg_sys::varlena,
}

impl JsonbBytes {
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
