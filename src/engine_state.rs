//! The workflow engine's own state in this backend: the cause of the change being written
//! (a transition, a rule action, an approval verdict, a migration) and the chain of rules
//! running. lowcode's triggers trust these values — the cause decides whether rules run and
//! what history says — so they live here, in the library, where only lowcode's own functions
//! (EXECUTE revoked from PUBLIC, see sql/hardening.sql) can write them, and never in a
//! setting that `SET` could change.
//!
//! They behave like `set_config(..., is_local => true)`: a value set inside a subtransaction
//! that rolls back (a PL/pgSQL `EXCEPTION` block, a savepoint) goes back to what it was, and
//! both are cleared when the transaction ends. [`Stack`] is that logic without pgrx.

use std::cell::RefCell;

/// The values, by slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Cause = 0,
    RuleChain = 1,
}

const SLOTS: usize = 2;

/// Transaction-scoped values with subtransaction rollback, as PostgreSQL keeps `SET LOCAL`:
/// the first change of a slot at a nesting level saves the value it had, a subtransaction
/// that aborts restores what its levels saved, one that commits hands its saves to its parent.
#[derive(Debug, Default)]
pub struct Stack {
    values: [Option<String>; SLOTS],
    /// (nesting level, slot, value before the first change at that level)
    saved: Vec<(i32, Slot, Option<String>)>,
}

impl Stack {
    pub fn get(&self, slot: Slot) -> Option<&str> {
        self.values[slot as usize].as_deref()
    }

    /// Set `slot` at nesting `level`; returns the previous value.
    pub fn set(&mut self, level: i32, slot: Slot, value: Option<String>) -> Option<String> {
        let previous = std::mem::replace(&mut self.values[slot as usize], value);
        if !self.saved.iter().any(|&(l, s, _)| l == level && s == slot) {
            self.saved.push((level, slot, previous.clone()));
        }
        previous
    }

    /// The subtransaction at `level` rolled back: undo what it (and anything deeper) changed.
    pub fn abort_sub(&mut self, level: i32) {
        while let Some(&(l, _, _)) = self.saved.last() {
            if l < level {
                break;
            }
            let (_, slot, value) = self.saved.pop().expect("checked above");
            self.values[slot as usize] = value;
        }
    }

    /// The subtransaction at `level` committed: its saved values belong to its parent now
    /// (unless the parent saved the slot itself, whose older value wins).
    pub fn commit_sub(&mut self, level: i32) {
        let parent = level - 1;
        let parent_has: Vec<Slot> = self
            .saved
            .iter()
            .filter(|&&(l, _, _)| l == parent)
            .map(|&(_, s, _)| s)
            .collect();
        self.saved
            .retain(|&(l, s, _)| l != level || !parent_has.contains(&s));
        for entry in self.saved.iter_mut() {
            if entry.0 == level {
                entry.0 = parent;
            }
        }
    }

    /// The transaction ended (either way): nothing carries over.
    pub fn clear(&mut self) {
        *self = Stack::default();
    }
}

thread_local! {
    static STATE: RefCell<Stack> = RefCell::new(Stack::default());
}

/// The current value of `slot`.
pub fn get(slot: Slot) -> Option<String> {
    STATE.with(|s| s.borrow().get(slot).map(str::to_owned))
}

/// Set `slot` for the rest of the transaction (or until a subtransaction around it rolls
/// back); returns the previous value.
pub fn set(slot: Slot, value: Option<String>) -> Option<String> {
    // SAFETY: reads a backend global.
    let level = unsafe { pgrx::pg_sys::GetCurrentTransactionNestLevel() };
    STATE.with(|s| s.borrow_mut().set(level, slot, value))
}

/// How deep rules may trigger rules (`lowcode.max_cascade`), read by the rules engine
/// (src/rules.rs). A setting, not engine state: a session may lower or raise it within these
/// bounds, which only changes when its own writes are refused.
pub static MAX_CASCADE: pgrx::GucSetting<i32> = pgrx::GucSetting::<i32>::new(32);

/// Registered once per backend by `_PG_init`.
pub fn init() {
    pgrx::GucRegistry::define_int_guc(
        c"lowcode.max_cascade",
        c"How deep workflow rules may trigger one another before a write is refused (54000).",
        c"A rule whose actions trigger rules again (a loop) stops at this depth, naming the rules.",
        &MAX_CASCADE,
        1,
        1000,
        pgrx::GucContext::Userset,
        pgrx::GucFlags::default(),
    );
    // SAFETY: callbacks registered once, for the life of the backend.
    unsafe {
        pgrx::pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pgrx::pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_xact(
    event: pgrx::pg_sys::XactEvent::Type,
    _: *mut std::ffi::c_void,
) {
    use pgrx::pg_sys::XactEvent::*;
    if matches!(
        event,
        XACT_EVENT_COMMIT
            | XACT_EVENT_ABORT
            | XACT_EVENT_PARALLEL_COMMIT
            | XACT_EVENT_PARALLEL_ABORT
            | XACT_EVENT_PREPARE
    ) {
        STATE.with(|s| s.borrow_mut().clear());
        crate::identity::reset();
        if event == XACT_EVENT_COMMIT {
            crate::outbox::epochs_committed();
        } else {
            crate::outbox::forget_epochs();
        }
    }
    if event == XACT_EVENT_COMMIT {
        // (After the commit: publishes what the worker pool must know, never raises.)
        crate::worker_registry::at_commit();
    }
    if matches!(
        event,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE
    ) {
        // (A prepared transaction's notes would come before its rows are visible: its
        // COMMIT PREPARED notes instead, worker_registry::process_utility.)
        crate::worker_registry::discard();
    }
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        crate::journal::discard();
    } else if matches!(event, XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE)
        && crate::journal::discard() > 0
    {
        // Every entry point of the engine writes its notes before it returns.
        pgrx::warning!("lowcode: history notes were left unwritten at commit (a bug in lowcode)");
    }
}

unsafe extern "C-unwind" fn on_subxact(
    event: pgrx::pg_sys::SubXactEvent::Type,
    _mine: pgrx::pg_sys::SubTransactionId,
    _parent: pgrx::pg_sys::SubTransactionId,
    _: *mut std::ffi::c_void,
) {
    use pgrx::pg_sys::SubXactEvent::*;
    // Called while the subtransaction that ends is still the current one.
    let level = unsafe { pgrx::pg_sys::GetCurrentTransactionNestLevel() };
    match event {
        SUBXACT_EVENT_ABORT_SUB => {
            STATE.with(|s| s.borrow_mut().abort_sub(level));
            crate::outbox::forget_epochs();
            // Notes are written before anything that could start a subtransaction, so the
            // ones waiting now are the aborted subtransaction's.
            crate::journal::discard();
        }
        SUBXACT_EVENT_COMMIT_SUB => STATE.with(|s| s.borrow_mut().commit_sub(level)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn set_returns_previous_and_get_reads() {
        let mut st = Stack::default();
        assert_eq!(st.set(1, Slot::Cause, v("a")), None);
        assert_eq!(st.set(1, Slot::Cause, v("b")), v("a"));
        assert_eq!(st.get(Slot::Cause), Some("b"));
        assert_eq!(st.get(Slot::RuleChain), None);
    }

    #[test]
    fn aborted_subtransaction_restores() {
        let mut st = Stack::default();
        st.set(1, Slot::Cause, v("top"));
        st.set(2, Slot::Cause, v("sub"));
        st.set(2, Slot::RuleChain, v("r1"));
        st.set(3, Slot::Cause, v("subsub"));
        st.abort_sub(3);
        assert_eq!(st.get(Slot::Cause), Some("sub"));
        st.abort_sub(2);
        assert_eq!(st.get(Slot::Cause), Some("top"));
        assert_eq!(st.get(Slot::RuleChain), None);
    }

    #[test]
    fn committed_subtransaction_hands_its_saves_to_the_parent() {
        let mut st = Stack::default();
        st.set(1, Slot::Cause, v("top"));
        st.set(3, Slot::Cause, v("deep"));
        st.commit_sub(3);
        // level 2 now owns the save of "top": aborting it restores "top".
        st.abort_sub(2);
        assert_eq!(st.get(Slot::Cause), Some("top"));

        let mut st = Stack::default();
        st.set(2, Slot::Cause, v("two"));
        st.set(3, Slot::Cause, v("three"));
        st.commit_sub(3);
        st.abort_sub(2);
        assert_eq!(st.get(Slot::Cause), None, "level 2's own, older save wins");
    }

    #[test]
    fn clear_forgets_everything() {
        let mut st = Stack::default();
        st.set(1, Slot::Cause, v("x"));
        st.set(2, Slot::RuleChain, v("y"));
        st.clear();
        assert_eq!(st.get(Slot::Cause), None);
        assert_eq!(st.get(Slot::RuleChain), None);
        st.abort_sub(2);
        assert_eq!(st.get(Slot::Cause), None);
    }
}
