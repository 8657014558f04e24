//! Reading PostgreSQL settings (GUCs) from Rust, lowcode's own (`lowcode.*`) and others.

use std::ffi::CStr;

use pgrx::pg_sys;

/// A setting's value (None when it is not set at all).
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption returns a pointer to the setting's current value, or NULL.
    unsafe {
        let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
    }
}
