//! The worker pool's shared memory: one [`Entry`] per database (crates/core/src/dispatch.rs says what
//! the fields mean and decides with them), the launcher's latch, and the notes a committing
//! backend leaves there.
//!
//! Only with `shared_preload_libraries = 'lowcode'` (the memory is sized at server start);
//! without it every function here does nothing. Writers note what they add
//! (`note_due` for a timer, `note_events` for outbox events) in backend-local memory; at
//! commit, `at_commit` moves the earliest time into the database's entry and sets the latch of
//! the one who must act on it: the worker in that database when it meant to sleep past it,
//! else the launcher. A rolled-back transaction notes nothing; a noted time that turns out
//! later than the truth is never possible, one earlier only costs a look.

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

pub use crate::dispatch::{Blocked, Entry, Installed, NEVER};

/// Databases the pool keeps track of; a cluster with more is served up to this many (the
/// others are reported by `lowcode.worker_status`).
pub const CAPACITY: usize = 4096;

#[derive(Clone, Copy)]
pub struct Registry {
    pub launcher_pid: i32,
    pub launcher_latch: usize,
    /// When the launcher means to look again (a commit wakes it only for earlier).
    pub launcher_wake_at: i64,
    /// Databases due that have no worker yet.
    pub waiting: u32,
    /// Databases that found no free slot in this table.
    pub overflow: u32,
    pub entries: [Entry; CAPACITY],
}

// SAFETY: plain data (integers and booleans), no pointers into a process's own memory: the
// latches are addresses in shared memory, the same in every process.
unsafe impl PGRXSharedMemory for Registry {}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            launcher_pid: 0,
            launcher_latch: 0,
            launcher_wake_at: NEVER,
            waiting: 0,
            overflow: 0,
            entries: [Entry::EMPTY; CAPACITY],
        }
    }
}

impl Registry {
    pub fn find(&self, db: u32) -> Option<usize> {
        self.entries.iter().position(|e| e.db == db)
    }

    /// The entry of `db`, added (due at `now`) when it has none; None when the table is full.
    pub fn find_or_add(&mut self, db: u32, now: i64) -> Option<usize> {
        if let Some(i) = self.find(db) {
            return Some(i);
        }
        let free = self.entries.iter().position(|e| e.db == 0)?;
        self.entries[free] = Entry::new(db, now);
        Some(free)
    }
}

pub static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"lowcode_worker_registry") };

/// Set in the postmaster when lowcode is in `shared_preload_libraries` (and the registry's
/// shared memory was asked for); backends inherit it.
static PRELOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks for the shared memory; only while the postmaster preloads the library.
pub fn init_shmem() {
    PRELOADED.store(true, std::sync::atomic::Ordering::SeqCst);
    pg_shmem_init!(REGISTRY);
}

/// Is lowcode in `shared_preload_libraries` (so that a launcher was registered and the
/// registry exists)?
pub fn preloaded() -> bool {
    PRELOADED.load(std::sync::atomic::Ordering::SeqCst)
}

fn enabled() -> bool {
    preloaded()
}

pub fn now() -> i64 {
    // SAFETY: reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// Sets a latch whose address was read from the registry (0: nobody).
pub fn wake(latch: usize) {
    if latch != 0 {
        // SAFETY: a latch in shared memory (a PGPROC's), published by its owner while alive;
        // setting the latch of a process that has exited is harmless (the PGPROC stays).
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
    }
}

/// This process's latch, as other processes can set it.
pub fn my_latch() -> usize {
    // SAFETY: MyLatch points at this process's PGPROC latch once it is a background worker
    // (or a backend).
    unsafe { pg_sys::MyLatch as usize }
}

pub fn my_database() -> u32 {
    // SAFETY: reads a backend global.
    u32::from(unsafe { pg_sys::MyDatabaseId })
}

#[derive(Clone, Copy)]
struct Pending {
    due: i64,
    events: bool,
    changed: bool,
}

thread_local! {
    static PENDING: Cell<Pending> = const {
        Cell::new(Pending { due: NEVER, events: false, changed: false })
    };
}

/// The ProcessUtility hook before ours (Citus's, when it is loaded first).
static mut PREVIOUS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Installs [`process_utility`] (from `_PG_init`, with `shared_preload_libraries`).
pub fn init() {
    if !preloaded() {
        return;
    }
    // SAFETY: _PG_init runs once per process, before any statement; the previous hook is
    // kept and called.
    unsafe {
        PREVIOUS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// A prepared transaction (PREPARE TRANSACTION: Citus's two-phase commit of a transaction over
/// several nodes, or anyone's) notes nothing when it is prepared (its rows are not visible
/// until COMMIT PREPARED: a worker that looked then found no webhook and did not look again).
/// Its COMMIT PREPARED, in whatever session of the database it runs, notes all there is to
/// note once its own transaction commits: the worker pool looks at timers and webhooks, and
/// the outbox's listeners are woken. (What the prepared transaction wrote is not known here:
/// a COMMIT PREPARED costs a database with lowcode one look.)
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: pstmt is the statement being run; its utilityStmt a node of it.
    let commit_prepared = unsafe {
        let stmt = (*pstmt).utilityStmt;
        !stmt.is_null()
            && (*stmt).type_ == pg_sys::NodeTag::T_TransactionStmt
            && (*(stmt as *mut pg_sys::TransactionStmt)).kind
                == pg_sys::TransactionStmtKind::TRANS_STMT_COMMIT_PREPARED
    };
    // SAFETY: the hook's arguments, passed on unchanged. An ERROR comes back as a panic and
    // goes on as that ERROR at this function's boundary (pg_guard): the previous hook, a bare
    // function pointer, inside a guarded boundary; standard_ProcessUtility, whose binding is
    // guarded already, not inside a second one (a panic unwinding through the outer
    // boundary's C frame aborts the process).
    unsafe {
        match PREVIOUS_UTILITY {
            Some(previous) => pg_sys::ffi::pg_guard_ffi_boundary(|| {
                previous(
                    pstmt,
                    query_string,
                    read_only_tree,
                    context,
                    params,
                    query_env,
                    dest,
                    qc,
                )
            }),
            None => pg_sys::standard_ProcessUtility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    };
    // (Only where lowcode is installed: a syscache lookup.)
    // SAFETY: a catalog cache lookup by name, in a transaction.
    if commit_prepared
        && unsafe { pg_sys::get_namespace_oid(c"lowcode".as_ptr(), true) } != pg_sys::InvalidOid
    {
        note_due(now());
        note_events();
        note_changed();
    }
}

/// A timer (or deadline) of this transaction is due at `fire_at`.
pub fn note_due(fire_at: i64) {
    if enabled() {
        PENDING.with(|p| {
            let mut v = p.get();
            v.due = v.due.min(fire_at);
            p.set(v);
        });
    }
}

/// This transaction wrote outbox events.
pub fn note_events() {
    if enabled() {
        PENDING.with(|p| {
            let mut v = p.get();
            v.events = true;
            p.set(v);
        });
    }
}

/// lowcode was installed (or its webhooks changed) in this transaction: a worker should look.
pub fn note_changed() {
    if enabled() {
        PENDING.with(|p| {
            let mut v = p.get();
            v.changed = true;
            p.set(v);
        });
    }
}

/// The transaction aborted: forget its notes.
pub fn discard() {
    PENDING.with(|p| {
        p.set(Pending {
            due: NEVER,
            events: false,
            changed: false,
        })
    });
}

/// The transaction committed: publish its notes and wake whoever must act. Never raises (it
/// runs after the commit).
pub fn at_commit() {
    let pending = PENDING.with(|p| p.get());
    if pending.due == NEVER && !pending.events && !pending.changed {
        return;
    }
    discard();
    if !enabled() {
        return;
    }
    let now = now();
    let db = my_database();
    let mut latch = 0;
    {
        let mut reg = REGISTRY.exclusive();
        let Some(i) = reg.find_or_add(db, now) else {
            reg.overflow = reg.overflow.max(1);
            latch = reg.launcher_latch;
            drop(reg);
            wake(latch);
            return;
        };
        let e = &mut reg.entries[i];
        let mut due = pending.due;
        if pending.changed {
            e.changed = true;
            if e.installed == Installed::No {
                e.installed = Installed::Unknown;
            }
            due = now;
        } else if e.installed == Installed::No {
            e.installed = Installed::Yes; // lowcode wrote here: it is installed
        }
        if pending.events {
            e.events = true;
            if e.has_webhooks {
                due = due.min(now);
            }
        }
        if due < e.next_due {
            e.next_due = due;
        }
        if e.pid != 0 {
            if due < e.wake_at {
                e.wake_at = due;
                latch = e.latch;
            }
        } else if !e.starting && due < reg.launcher_wake_at {
            reg.launcher_wake_at = due;
            latch = reg.launcher_latch;
        }
    }
    wake(latch);
}

/// Internal: notes that lowcode was installed in this database (the install script calls
/// it), or that its webhooks changed: lowcode's worker pool looks at this database after
/// the commit.
#[pg_extern(volatile)]
fn worker_note_changed() {
    note_changed();
}

/// Internal: notes that a timer of this transaction is due at `fire_at` (the PL/pgSQL that
/// writes timers calls it; the Rust that does calls `note_due`).
#[pg_extern(volatile)]
fn worker_note_due(fire_at: Option<pgrx::datum::TimestampWithTimeZone>) {
    if let Some(at) = fire_at {
        note_due(timestamp_micros(at));
    }
}

pub fn timestamp_micros(at: pgrx::datum::TimestampWithTimeZone) -> i64 {
    pg_sys::TimestampTz::from(at)
}
