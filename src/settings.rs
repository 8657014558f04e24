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

/// Run `body` with setting `name` at `value`, as a function's `SET` clause would: back as it
/// was afterwards (or with the abort of the (sub)transaction when `body` raises). Nothing is
/// set when the setting does not exist (another extension's that is not loaded).
pub fn with_setting<T>(name: &CStr, value: &CStr, body: impl FnOnce() -> T) -> T {
    // SAFETY: a GUC lookup, then a GUC nest level that AtEOXact_GUC closes right after.
    unsafe {
        if pg_sys::GetConfigOption(name.as_ptr(), true, false).is_null() {
            return body();
        }
        let level = pg_sys::NewGUCNestLevel();
        save(name, value);
        let result = body();
        pg_sys::AtEOXact_GUC(true, level);
        result
    }
}

/// Set `name` to `value` in the current GUC nest level, as a function's `SET` clause does: the
/// caller opened the level (`NewGUCNestLevel`) and closes it (`AtEOXact_GUC`).
///
/// # Safety
/// Inside a transaction, with a GUC nest level of the caller's open.
pub unsafe fn save(name: &CStr, value: &CStr) {
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}
