//! The background worker: timers fire on time and webhooks are delivered with no outside
//! scheduler, in every database that has lowcode, by a bounded pool of processes.
//!
//! Only with `shared_preload_libraries = 'lowcode'`: `_PG_init` then registers one static
//! *launcher* (which connects to no database) and a table in shared memory with an entry per
//! database (src/worker_registry.rs). Like autovacuum's launcher, ours keeps that table in
//! step with `pg_database` every `lowcode.launcher_naptime` and starts *workers*, at most
//! `lowcode.worker_max` at a time, where work is due, the most overdue database first
//! (crates/core/src/dispatch.rs decides). A worker is bound to one database for its life, so a worker
//! *visits*: it connects, does what is due, and stays while no other database waits; when
//! one does, it leaves as soon as nothing is due where it is (or at the end of
//! `lowcode.worker_slice`, webhooks drained first), noting in shared memory when something is
//! due there next. A committing backend that adds a timer due earlier than anyone planned to
//! look, or events for a database with webhooks, notes it there too and sets the latch of the
//! worker in that database or of the launcher: so any number of databases is served, each
//! timer on time, with a bounded number of processes.
//!
//! A database is visited once to find out whether lowcode is installed there (CREATE
//! EXTENSION lowcode notes itself); `lowcode.worker_databases` limits the pool to some.
//! In a database, before its first statement, a worker pins `search_path = pg_catalog,
//! pg_temp` and makes the extension's owner its session user (the owner's rights and no more,
//! also in a trusted install; see `become_owner`), then loops:
//!
//! - `lowcode.run_due_timers(lowcode.worker_batch)`, again at once while a batch comes back
//!   full;
//! - `lowcode.signal_events()` (the outbox's NOTIFY, a few times a second) and the webhooks
//!   (src/webhook_delivery.rs);
//! - then sleeps on its latch until the next pending `fire_at`, at most `lowcode.worker_naptime`
//!   (a commit that adds an earlier timer sets the latch);
//! - leaves when the extension is dropped, and steps aside when someone waits to drop (or
//!   rename) its database, so that DROP DATABASE is never held up.
//!
//! SIGTERM ends the loop at the next wake-up, SIGHUP reloads the configuration, postmaster
//! death ends it too. An ERROR (or a Rust panic) in one round is logged, written to
//! `lowcode.worker_state.last_error`, its transaction rolled back, and the loop goes on after a
//! pause; `run_due_timers` marks timers fired in the transaction that fires them, so a round
//! that is rolled back (or a worker killed mid-round) fires nothing twice.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PgMemoryContexts};

use crate::background::in_transaction;
use crate::dispatch::{self, Next};
use crate::webhook_delivery::Deliveries;
use crate::worker_registry::{self, Blocked, Entry, Installed, NEVER, REGISTRY};

/// `lowcode.worker_databases`: comma-separated database names the launcher serves (empty: all).
pub static WORKER_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `lowcode.worker_max`: workers the launcher runs at most, whatever the number of databases.
pub static WORKER_MAX: GucSetting<i32> = GucSetting::<i32>::new(4);
/// `lowcode.worker_slice` (ms): longest a worker stays in one database while others wait.
pub static WORKER_SLICE: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// `lowcode.worker_naptime` (ms): longest a worker sleeps between two looks at the timers.
pub static WORKER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// `lowcode.launcher_naptime` (ms): how often the launcher lists the databases.
pub static LAUNCHER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(5000);
/// `lowcode.worker_batch`: timers fired per transaction.
pub static WORKER_BATCH: GucSetting<i32> = GucSetting::<i32>::new(500);

pub const LAUNCHER_TYPE: &str = "lowcode launcher";
pub const WORKER_TYPE: &str = "lowcode worker";

/// Registered once per backend by `_PG_init`: the settings always, the launcher only when the
/// library is being preloaded by the postmaster.
pub fn init() {
    GucRegistry::define_string_guc(
        c"lowcode.worker_databases",
        c"Databases lowcode's background worker serves (comma-separated; empty: every database that has lowcode).",
        c"Needs shared_preload_libraries = 'lowcode'. Applied on reload.",
        &WORKER_DATABASES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"lowcode.worker_max",
        c"Workers lowcode's launcher runs at most, whatever the number of databases.",
        c"Each takes a max_worker_processes slot while it runs (shared with parallel queries \
          and other extensions). With more databases than workers, the workers visit them in \
          turn, where work is due first.",
        &WORKER_MAX,
        0,
        1000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"lowcode.worker_slice",
        c"Longest a lowcode worker stays in one database while other databases wait for one.",
        c"A worker leaves as soon as nothing is due where it is when another database waits; \
          at the latest after this long (its webhook deliveries finished first).",
        &WORKER_SLICE,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"lowcode.worker_naptime",
        c"Longest a lowcode worker sleeps before it looks at the timers again.",
        c"The worker sleeps until the next timer is due, at most this long, so a timer created \
          for an earlier time fires at most this late.",
        &WORKER_NAPTIME,
        10,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"lowcode.launcher_naptime",
        c"How often lowcode's launcher looks for databases that need a worker.",
        c"CREATE EXTENSION lowcode in a database is noticed within this time.",
        &LAUNCHER_NAPTIME,
        100,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"lowcode.worker_batch",
        c"Timers a lowcode worker fires per transaction.",
        c"A full batch is followed by the next one at once.",
        &WORKER_BATCH,
        1,
        100_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    // SAFETY: reads a postmaster global.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        worker_registry::init_shmem();
        BackgroundWorkerBuilder::new(LAUNCHER_TYPE)
            .set_type(LAUNCHER_TYPE)
            .set_library("lowcode")
            .set_function("lowcode_launcher_main")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(5)))
            .load();
    }
}

/// Reloads the configuration after a SIGHUP; true if it did.
fn reload_if_asked() -> bool {
    if BackgroundWorker::sighup_received() {
        // SAFETY: outside any transaction, in the worker's main loop, as PostgreSQL's own
        // background processes do it.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        true
    } else {
        false
    }
}

fn naptime(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(setting.get().max(1) as u64)
}

/// Internal: is lowcode in `shared_preload_libraries`, so that its background worker runs?
/// (lowcode.worker_status tells why not.)
#[pg_extern(stable)]
fn worker_preloaded() -> bool {
    worker_registry::preloaded()
}

/// Internal: lowcode's background processes running now (pid, database, `lowcode launcher` or
/// `lowcode worker`), whoever started them: pg_stat_activity hides the backend type of a
/// superuser's processes from other roles, and the worker connects as the bootstrap superuser
/// before it becomes the extension's owner.
#[pg_extern(volatile)]
fn worker_processes() -> TableIterator<
    'static,
    (
        name!(pid, i32),
        name!(database, Option<String>),
        name!(kind, String),
    ),
> {
    let mut rows = Vec::new();
    // SAFETY: reads this transaction's snapshot of the backend status array, as
    // pg_stat_get_activity does; every pointer is checked.
    unsafe {
        let n = pg_sys::pgstat_fetch_stat_numbackends();
        for i in 1..=n {
            #[cfg(any(feature = "pg14", feature = "pg15"))]
            let local = pg_sys::pgstat_fetch_stat_local_beentry(i);
            // (renamed in PostgreSQL 16)
            #[cfg(not(any(feature = "pg14", feature = "pg15")))]
            let local = pg_sys::pgstat_get_local_beentry_by_index(i);
            if local.is_null() {
                continue;
            }
            let status = &(*local).backendStatus;
            if status.st_backendType != pg_sys::BackendType::B_BG_WORKER {
                continue;
            }
            let kind = pg_sys::GetBackgroundWorkerTypeByPid(status.st_procpid);
            if kind.is_null() {
                continue;
            }
            let kind = CStr::from_ptr(kind).to_string_lossy().into_owned();
            if kind != LAUNCHER_TYPE && kind != WORKER_TYPE {
                continue;
            }
            let database = if status.st_databaseid == pg_sys::InvalidOid {
                None
            } else {
                let name = pg_sys::get_database_name(status.st_databaseid);
                (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
            };
            rows.push((status.st_procpid, database, kind));
        }
    }
    TableIterator::new(rows)
}

// ------------------------------------------------------------------ the launcher

struct Database {
    oid: pg_sys::Oid,
    name: String,
}

/// The databases that accept connections (templates and half-dropped ones left out).
fn list_databases() -> Vec<Database> {
    let mut found = Vec::new();
    // SAFETY: a plain catalog scan of the shared pg_database, inside a transaction.
    unsafe {
        let rel = pg_sys::table_open(
            pg_sys::DatabaseRelationId,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        );
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if !(*form).datallowconn || (*form).datistemplate || (*form).datconnlimit < -1 {
                continue;
            }
            let name = CStr::from_ptr((*form).datname.data.as_ptr())
                .to_string_lossy()
                .into_owned();
            found.push(Database {
                oid: (*form).oid,
                name,
            });
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
    found
}

/// The names in `lowcode.worker_databases`, or None for all.
fn wanted_databases() -> Option<Vec<String>> {
    let setting = WORKER_DATABASES.get()?;
    let names: Vec<String> = setting
        .to_string_lossy()
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        None
    } else {
        Some(names)
    }
}

/// The registry follows pg_database: new databases are added (due at once: a first visit
/// finds out whether lowcode is there), dropped ones removed, `lowcode.worker_databases`
/// applied (a worker in a database left out is woken to leave; one taken back in is due).
fn sync_databases(databases: &[Database], now: i64) {
    let wanted = wanted_databases();
    let mut nudge = Vec::new();
    let mut reg = REGISTRY.exclusive();
    let present: Vec<u32> = databases.iter().map(|d| u32::from(d.oid)).collect();
    for e in reg.entries.iter_mut() {
        if e.db != 0 && !present.contains(&e.db) && !e.served() {
            *e = Entry::EMPTY;
        }
    }
    let mut overflow = 0;
    for d in databases {
        match reg.find_or_add(u32::from(d.oid), now) {
            Some(i) => {
                let e = &mut reg.entries[i];
                let excluded = wanted.as_ref().is_some_and(|w| !w.contains(&d.name));
                if e.excluded && !excluded {
                    e.next_due = now;
                } else if excluded && e.pid != 0 {
                    nudge.push(e.latch);
                }
                e.excluded = excluded;
                e.listed = true;
            }
            None => overflow += 1,
        }
    }
    reg.overflow = overflow;
    drop(reg);
    for latch in nudge {
        worker_registry::wake(latch);
    }
}

/// Is process `pid` alive? (A worker that ended by an ERROR left its entry behind.)
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

fn start_worker(db: u32) -> Result<DynamicBackgroundWorker, ()> {
    // SAFETY: reads a backend global.
    let me = unsafe { pg_sys::MyProcPid };
    // The handle must outlive the current memory context.
    unsafe {
        PgMemoryContexts::TopMemoryContext.switch_to(|_| {
            BackgroundWorkerBuilder::new(&format!("{WORKER_TYPE} {db}"))
                .set_type(WORKER_TYPE)
                .set_library("lowcode")
                .set_function("lowcode_worker_main")
                .enable_spi_access()
                .set_restart_time(None)
                .set_argument(Some(pg_sys::Datum::from(db as usize)))
                .set_notify_pid(me)
                .load_dynamic()
                .map_err(|_| ())
        })
    }
}

/// With no background worker slot free, the launcher tries again when one of its workers
/// ends (it is told), or after this long (a slot another process held).
const NO_SLOT_RETRY: Duration = Duration::from_millis(200);

/// A worker that could not get into its database is not sent there again before this.
const RETRY_AFTER_FAILED_START: Duration = Duration::from_secs(5);

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// The launcher's main function (registered by `init`): keeps the registry in step with
/// pg_database, and starts a worker where work is due, most overdue first, while fewer than
/// `lowcode.worker_max` run (crates/core/src/dispatch.rs decides).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn lowcode_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    {
        let mut reg = REGISTRY.exclusive();
        // SAFETY: reads a backend global.
        reg.launcher_pid = unsafe { pg_sys::MyProcPid };
        reg.launcher_latch = worker_registry::my_latch();
        // A restarted launcher: workers its predecessor was starting either came up (and
        // say so in their entry) or never will.
        for e in reg.entries.iter_mut() {
            e.starting = false;
        }
    }
    log!("lowcode launcher started");
    // The workers this launcher started (with their database) until they have exited.
    let mut handles: Vec<(u32, DynamicBackgroundWorker)> = Vec::new();
    let mut last_scan: Option<Instant> = None;
    let mut no_slot_until: Option<Instant> = None;
    let mut no_slot_logged: Option<Instant> = None;
    loop {
        if reload_if_asked() {
            last_scan = None; // lowcode.worker_databases may have changed
        }
        // Workers that ended: their entry is free again (one that ended by an ERROR did not
        // say so; one killed mid-visit may have left events leased: its successor waits for
        // them).
        let before = handles.len();
        handles.retain(|(_, h)| {
            !matches!(
                h.pid(),
                Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied)
            )
        });
        if handles.len() < before {
            no_slot_until = None; // a slot was freed
        }
        let now = worker_registry::now();
        // A database created since the last look has an entry (its first commit added it) but
        // is not listed: look now, so that lowcode.worker_databases applies to it at once.
        let unlisted = REGISTRY
            .share()
            .entries
            .iter()
            .any(|e| e.db != 0 && !e.listed && !e.served());
        if unlisted || last_scan.is_none_or(|at| at.elapsed() >= naptime(&LAUNCHER_NAPTIME)) {
            last_scan = Some(Instant::now());
            match in_transaction(list_databases) {
                Ok(databases) => sync_databases(&databases, now),
                Err(message) => log!("lowcode launcher: could not list databases: {message}"),
            }
        }
        let max = WORKER_MAX.get().max(0) as usize;
        let slots_known_full = no_slot_until.is_some_and(|t| t > Instant::now());
        let mut nudge = Vec::new();
        let chosen: Vec<(usize, u32)> = {
            let mut reg = REGISTRY.exclusive();
            for e in reg.entries.iter_mut() {
                if e.starting && !handles.iter().any(|(db, _)| *db == e.db) {
                    // Ended before it came in (no connection: the database refuses them, or
                    // went away): not again for a while.
                    e.starting = false;
                    e.next_due = e.next_due.max(now + micros(RETRY_AFTER_FAILED_START));
                }
                if e.pid != 0 && !alive(e.pid) {
                    e.pid = 0;
                    e.latch = 0;
                    e.clean = false;
                    e.next_due = e.next_due.min(now);
                }
            }
            // A worker that has left its database holds its background worker slot until it
            // has exited (the postmaster then tells us: set_notify_pid).
            let running = reg
                .entries
                .iter()
                .filter(|e| e.served())
                .count()
                .max(handles.len());
            let free = if slots_known_full {
                0
            } else {
                max.saturating_sub(running)
            };
            let (mut start, waiting) = dispatch::choose(&reg.entries, now, free);
            if waiting == 0 {
                let fill = dispatch::fill(&reg.entries, max, free.saturating_sub(start.len()));
                let more: Vec<usize> = fill.into_iter().filter(|i| !start.contains(i)).collect();
                start.extend(more);
            } else if !slots_known_full {
                // The pool is full: workers where nothing is due are woken to hand over.
                for i in dispatch::to_nudge(&reg.entries, now, waiting) {
                    nudge.push(reg.entries[i].latch);
                }
            }
            let blocked = if slots_known_full {
                Blocked::NoSlot
            } else {
                Blocked::PoolFull
            };
            for e in reg.entries.iter_mut() {
                match e.wants_worker_at() {
                    Some(at) if at <= now => {
                        if e.waiting_since == 0 {
                            e.waiting_since = now;
                        }
                        e.blocked = blocked;
                    }
                    _ => {
                        e.waiting_since = 0;
                        e.blocked = Blocked::No;
                    }
                }
            }
            for &i in &start {
                reg.entries[i].starting = true;
                reg.entries[i].blocked = Blocked::No;
            }
            reg.waiting = (waiting + start.len()) as u32;
            start.iter().map(|&i| (i, reg.entries[i].db)).collect()
        };
        for latch in nudge {
            worker_registry::wake(latch);
        }
        let mut failed: Option<usize> = None;
        for (n, &(_, db)) in chosen.iter().enumerate() {
            match start_worker(db) {
                Ok(handle) => handles.push((db, handle)),
                Err(()) => {
                    failed = Some(n);
                    break;
                }
            }
        }
        if let Some(n) = failed {
            // SAFETY: reads a postmaster-set global.
            let max_workers = unsafe { pg_sys::max_worker_processes };
            if no_slot_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                no_slot_logged = Some(Instant::now());
                log!(
                "lowcode launcher: no background worker slot for {} database(s) (max_worker_processes = {max_workers} is full; lowcode.worker_max = {max}); trying again when a worker ends",
                    chosen.len() - n
                );
            }
            no_slot_until = Some(Instant::now() + NO_SLOT_RETRY);
            let mut reg = REGISTRY.exclusive();
            for &(i, _) in &chosen[n..] {
                reg.entries[i].starting = false;
                reg.entries[i].blocked = Blocked::NoSlot;
            }
        } else if !chosen.is_empty() {
            no_slot_until = None;
        }
        // Sleep until the next scan, the next database due, or a retry when slots were
        // full; a commit that makes a database due earlier, and every worker that starts or
        // ends (set_notify_pid), wake us sooner.
        let mut sleep = naptime(&LAUNCHER_NAPTIME)
            .saturating_sub(last_scan.map_or(Duration::ZERO, |t| t.elapsed()));
        if no_slot_until.is_some() {
            sleep = sleep.min(NO_SLOT_RETRY);
        }
        {
            let mut reg = REGISTRY.exclusive();
            let now = worker_registry::now();
            if let Some(at) = dispatch::next_wanted(&reg.entries) {
                let until = Duration::from_micros((at - now).max(0) as u64);
                sleep = sleep.min(until.max(Duration::from_millis(1)));
            }
            reg.launcher_wake_at = now.saturating_add(micros(sleep));
        }
        if !BackgroundWorker::wait_latch(Some(sleep.max(Duration::from_millis(1)))) {
            break;
        }
    }
    REGISTRY.exclusive().launcher_latch = 0;
    log!("lowcode launcher stopped");
}

// ------------------------------------------------------------------ a database worker

/// What one round found.
struct TimerRound {
    fired: i32,
    /// Seconds until the next pending timer (negative: already due), None: no timer pending.
    next_in: Option<f64>,
}

/// Does lowcode live in this database? (A catalog index scan: no SQL.)
fn installed() -> bool {
    crate::identity::extension_owner() != pg_sys::InvalidOid
}

/// Before the worker runs any statement: `search_path = pg_catalog, pg_temp` for the whole
/// session, whatever `ALTER DATABASE ... SET` or `ALTER ROLE ... SET` said (every statement it
/// runs names its schemas as well), and the session's role becomes lowcode's owner, so
/// that the worker has that role's rights and no more, also in a trusted install. The
/// database's and the bootstrap superuser's own settings were applied at connection; none of
/// them runs code, and none can change what a statement of the worker means any more.
/// Returns the owner, or None when lowcode is not installed here.
fn become_owner() -> Option<pg_sys::Oid> {
    // SAFETY: session-level settings and the session user, set as SET and SET SESSION
    // AUTHORIZATION set them, in a transaction, before any SQL runs.
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SET,
            true,
            0,
            false,
        );
    }
    let owner = crate::identity::extension_owner();
    if owner == pg_sys::InvalidOid {
        return None;
    }
    unsafe { pg_sys::SetSessionAuthorization(owner, pg_sys::superuser_arg(owner)) };
    Some(owner)
}

/// Someone waits to drop (or rename, or move) this database, or to copy it (CREATE DATABASE
/// ... TEMPLATE): step aside.
fn database_wanted_exclusively() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l
                         WHERE l.locktype OPERATOR(pg_catalog.=) 'object'
                           AND l.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_database'::pg_catalog.regclass
                           AND l.objid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                           AND l.mode OPERATOR(pg_catalog.=) ANY ('{AccessExclusiveLock,ShareLock}'::pg_catalog.text[])
                           AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

// When the next pending timer is due, in seconds from now (negative: due already).
const NEXT_TIMER: crate::statements::Statement = crate::statements::Statement {
    sql: "SELECT pg_catalog.date_part('epoch', pg_catalog.min(t.fire_at) OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8
            FROM lowcode.timers t WHERE t.status OPERATOR(pg_catalog.=) 'pending'",
    args: &[],
};

fn timer_round(batch: i32) -> TimerRound {
    let fired = Spi::get_one_with_args::<i32>("SELECT lowcode.run_due_timers($1)", &[batch.into()])
        .ok()
        .flatten()
        .unwrap_or(0);
    // (With the runtime distributed: the timers of this node's shards, as run_due_timers
    // fires them.)
    let next_in = crate::placement::on_local_shards(|| {
        crate::statements::first_row(&NEXT_TIMER, &[], |row| row.get::<f64>(1))
            .ok()
            .flatten()
            .flatten()
    })
    .into_iter()
    .flatten()
    .reduce(f64::min);
    if fired > 0 {
        let _ = Spi::run_with_args(
            "UPDATE lowcode.worker_state SET last_timer_run = pg_catalog.now(),
                    timers_fired = timers_fired OPERATOR(pg_catalog.+) $1",
            &[(fired as i64).into()],
        );
    }
    TimerRound { fired, next_in }
}

const NEXT_RETRY: crate::statements::Statement = crate::statements::Statement {
    sql: "SELECT pg_catalog.date_part('epoch', pg_catalog.min(d.visible_at) OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8
            FROM lowcode.deliveries d
           WHERE d.consumer OPERATOR(pg_catalog.=) ANY ($1) AND d.status OPERATOR(pg_catalog.=) 'pending'",
    args: &[pgrx::pg_sys::BuiltinOid::TEXTARRAYOID],
};

/// When the next webhook retry is due here (a nacked delivery of an active webhook,
/// `consumers`), in seconds from now; None: none waits. (With the runtime distributed: on
/// this node's shards.)
fn next_retry_in(consumers: &[String]) -> Option<f64> {
    crate::placement::on_local_shards(|| {
        crate::statements::first_row(&NEXT_RETRY, &[consumers.to_vec().into()], |row| {
            row.get::<f64>(1)
        })
        .ok()
        .flatten()
        .flatten()
    })
    .into_iter()
    .flatten()
    .reduce(f64::min)
}

const END_LEASES: crate::statements::Statement = crate::statements::Statement {
    sql: "UPDATE lowcode.leases SET expires_at = pg_catalog.now()
           WHERE pg_catalog.starts_with(consumer, 'webhook:')
             AND expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
    args: &[],
};

/// On a Citus worker node (not the coordinator) whose runtime is not distributed, lowcode's
/// tables hold nothing of any app: the apps' runtime is on the coordinator. The worker leaves
/// them alone there, and so takes no lock on them while `lowcode.distribute(runtime => true)`,
/// on the coordinator, changes them in one transaction over every node (a round that did, on
/// a worker node, made a distributed deadlock of the two: tests/system/citus.sh). Once the
/// runtime is distributed (the commit invalidates lowcode.records here), it works as on any
/// node, on this node's shards.
fn unused_citus_worker() -> bool {
    // (Without Citus, a catalog cache lookup per round, no statement.)
    // SAFETY: a catalog cache lookup by name, in a transaction.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_local_group".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        )
    } != pg_sys::InvalidOid;
    if !citus {
        return false;
    }
    let worker_node = Spi::get_one::<bool>(
        "SELECT g.groupid OPERATOR(pg_catalog.>) 0 FROM pg_catalog.pg_dist_local_group g",
    );
    matches!(worker_node, Ok(Some(true))) && !crate::placement::runtime_distributed()
}

/// The webhooks' leases in this database end now: their holder, a worker, is gone. (With the
/// runtime distributed: those on this node's shards, this node's worker's.)
fn end_dead_leases() -> Result<(), pgrx::spi::SpiError> {
    if unused_citus_worker() {
        return Ok(());
    }
    crate::placement::on_local_shards(|| {
        Spi::connect_mut(|client| crate::statements::run(client, &END_LEASES, &[]).map(|_| ()))
    })
    .into_iter()
    .collect()
}

fn note_error(message: &str) {
    let message = message.to_string();
    let _ = in_transaction(move || {
        Spi::run_with_args(
            "UPDATE lowcode.worker_state SET last_error = $1, last_error_at = pg_catalog.now()",
            &[message.as_str().into()],
        )
    });
}

fn seconds_from(now: i64, seconds: f64) -> i64 {
    now.saturating_add((seconds * 1e6) as i64)
}

/// A database worker's main function (started by the launcher): one visit to one database.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn lowcode_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = arg.value() as u32;
    let dboid = pg_sys::Oid::from(db);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(dboid), None);
    let dbname = in_transaction(move || unsafe {
        let name = pg_sys::get_database_name(dboid);
        if name.is_null() {
            db.to_string()
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    })
    .unwrap_or_else(|_| db.to_string());

    // lowcode there? Then act as its owner from now on, with a pinned search_path.
    let owner = match in_transaction(become_owner) {
        Ok(owner) => owner,
        Err(message) => {
            log!("lowcode worker for database \"{dbname}\": {message}");
            None
        }
    };
    let here = owner.is_some();
    let owner = owner.map_or(0, u32::from);
    // SAFETY: reads a backend global.
    let me = unsafe { pg_sys::MyProcPid };
    let arrived = worker_registry::now();
    let (slot, clean_before, record_owner) = {
        let mut reg = REGISTRY.exclusive();
        let Some(i) = reg.find_or_add(db, arrived) else {
            return;
        };
        let e = &mut reg.entries[i];
        e.starting = false;
        if !here {
            e.installed = Installed::No;
            e.next_due = NEVER;
            return;
        }
        if e.pid != 0 && e.pid != me && alive(e.pid) {
            return; // another worker is here already
        }
        e.installed = Installed::Yes;
        e.pid = me;
        e.latch = worker_registry::my_latch();
        e.arrived = arrived;
        e.visits += 1;
        e.waiting_since = 0;
        e.blocked = Blocked::No;
        e.wake_at = arrived;
        let clean = e.clean;
        e.clean = false;
        // lowcode.worker_state says whom the worker acts as: written when that changes (or
        // on a first visit), not on every visit.
        let record_owner = e.owner != owner || e.visits <= 1;
        e.owner = owner;
        (i, clean, record_owner)
    };
    // Webhooks are looked at where the last visit found some, or where they changed since
    // (or on a first visit): a visit costs nothing for them elsewhere.
    let mut webhooks_here = {
        let reg = REGISTRY.share();
        let e = &reg.entries[slot];
        e.has_webhooks || e.changed || e.visits <= 1
    };
    let started = if !record_owner {
        Ok(Ok(()))
    } else {
        in_transaction(move || {
            // (Bookkeeping: not worth a wait for the WAL flush on every visit.)
            Spi::run("SELECT pg_catalog.set_config('synchronous_commit', 'off', true)")?;
            Spi::run(
            "INSERT INTO lowcode.worker_state AS s (pid, acting_as, started_at, timers_fired)
             VALUES (pg_catalog.pg_backend_pid(), SESSION_USER, pg_catalog.now(), 0)
             ON CONFLICT (singleton) DO UPDATE
                SET pid = EXCLUDED.pid, acting_as = EXCLUDED.acting_as, started_at = EXCLUDED.started_at",
            )
        })
    };
    let problem = match started {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(message) => Some(message),
    };
    if let Some(problem) = problem {
        log!("lowcode worker for database \"{dbname}\" could not start: {problem}");
        leave(slot, me, false, NEVER);
        return;
    }
    pgrx::debug1!("lowcode worker visits database \"{dbname}\"");

    // The events its predecessor had leased to webhooks: handed back if it left cleanly;
    // otherwise it is gone (a database has one worker at a time: this one came in because
    // the entry had no live one), so its leases end now and the events come back at once
    // (at least once, as after a lease: what was in flight may arrive twice). Only if that
    // fails does the worker wait one lease before it polls.
    let wait_for_leases = !clean_before && !matches!(in_transaction(end_dead_leases), Ok(Ok(())));
    let mut deliveries = Deliveries::new(wait_for_leases);
    // (A DROP DATABASE that began before we connected made us wait at connection time: the
    // first look for one is due only after a round.)
    let mut last_guard = Instant::now();
    let mut last_signal = Instant::now() - Duration::from_secs(60);
    let mut pause = Duration::ZERO;
    let mut draining: Option<Instant> = None;
    let clean;
    let mut later = NEVER;
    loop {
        if pause.is_zero() {
            if BackgroundWorker::sigterm_received() {
                clean = false;
                break;
            }
        } else if !BackgroundWorker::wait_latch(Some(pause)) {
            clean = false;
            break;
        }
        reload_if_asked();
        // Still wanted here? (DROP EXTENSION, a DROP DATABASE waiting for us.) Checked at most
        // every 200 ms: DROP DATABASE waits 5 s for other sessions to leave.
        if last_guard.elapsed() >= Duration::from_millis(200) {
            last_guard = Instant::now();
            match in_transaction(|| (installed(), database_wanted_exclusively())) {
                Ok((true, false)) => {}
                Ok((false, _)) => {
                    log!("lowcode worker for database \"{dbname}\": lowcode was dropped, leaving");
                    let mut reg = REGISTRY.exclusive();
                    reg.entries[slot].installed = Installed::No;
                    drop(reg);
                    clean = false;
                    break;
                }
                Ok((true, true)) => {
                    log!("lowcode worker for database \"{dbname}\": the database is being dropped, altered or copied, leaving");
                    clean = false;
                    break;
                }
                Err(message) => {
                    log!("lowcode worker for database \"{dbname}\": {message}");
                    pause = Duration::from_secs(1);
                    continue;
                }
            }
        }
        // What commits note from now on is not in this round's snapshot: it is merged with
        // what the round finds, below.
        let (events, changed) = {
            let mut reg = REGISTRY.exclusive();
            let e = &mut reg.entries[slot];
            e.next_due = NEVER;
            let seen = (e.events, e.changed);
            e.changed = false;
            seen
        };
        if changed {
            webhooks_here = true;
            deliveries.refresh();
        }
        let batch = WORKER_BATCH.get().max(1);
        let unused = matches!(in_transaction(unused_citus_worker), Ok(true));
        let round = match in_transaction(|| match unused {
            true => TimerRound {
                fired: 0,
                next_in: None,
            },
            false => timer_round(batch),
        }) {
            Ok(round) => round,
            Err(message) => {
                if !matches!(in_transaction(installed), Ok(true)) {
                    log!("lowcode worker for database \"{dbname}\": lowcode was dropped, leaving");
                    REGISTRY.exclusive().entries[slot].installed = Installed::No;
                    clean = false;
                    break;
                }
                warning!("lowcode worker for database \"{dbname}\": timers: {message}");
                note_error(&message);
                let mut reg = REGISTRY.exclusive();
                let e = &mut reg.entries[slot];
                e.next_due = e.next_due.min(worker_registry::now() + 1_000_000);
                drop(reg);
                pause = Duration::from_secs(1);
                continue;
            }
        };
        // Wake the outbox's listeners (writers never NOTIFY): signal_events in a transaction
        // of its own, a few times a second at most, when events were written.
        if events && !unused && last_signal.elapsed() >= Duration::from_millis(250) {
            last_signal = Instant::now();
            REGISTRY.exclusive().entries[slot].events = false;
            if let Err(message) = in_transaction(|| Spi::run("SELECT lowcode.signal_events()")) {
                log!("lowcode worker for database \"{dbname}\": signal_events: {message}");
            }
        }
        // Webhooks: hand out new deliveries, record finished ones (never waits for HTTP).
        let busy = webhooks_here && !unused && deliveries.step(&dbname, draining.is_some());
        webhooks_here = busy || deliveries.has_active();
        if busy && draining.is_some_and(|since| since.elapsed() >= DRAIN_AT_MOST) {
            // (A failed event's followers stay leased while it waits for its retry.)
            later = worker_registry::now();
            clean = false;
            break;
        }
        let now = worker_registry::now();
        let next_timer = round.next_in.map_or(NEVER, |s| seconds_from(now, s));
        let full_batch = round.fired >= batch;
        let mut sleep = naptime(&WORKER_NAPTIME);
        if let Some(next_in) = round.next_in {
            // Already due but not fired (its record is being changed): look again soon; due
            // meanwhile, after a round that fired: at once.
            let soon = if round.fired > 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(5)
            };
            let next = Duration::from_secs_f64(next_in.max(0.0)).max(soon);
            sleep = sleep.min(next);
        }
        if busy {
            sleep = sleep.min(Duration::from_millis(10));
        }
        if full_batch {
            sleep = Duration::ZERO; // a full batch: more are due
        }
        let next = {
            let mut reg = REGISTRY.exclusive();
            let others_waiting = reg.waiting > 0;
            let e = &mut reg.entries[slot];
            let excluded = e.excluded;
            e.next_due = e.next_due.min(next_timer);
            e.has_webhooks = deliveries.has_active();
            let decision = dispatch::after_round(&dispatch::Round {
                now,
                arrived,
                others_waiting,
                full_batch,
                next_timer: e.next_due,
                deliveries_busy: busy,
                slice: micros(naptime(&WORKER_SLICE)),
            });
            if decision == Next::Stay || decision == Next::Drain {
                // Commits that make something due before then wake us.
                if e.next_due <= now {
                    sleep = sleep.min(Duration::from_millis(5));
                }
                e.wake_at = now.saturating_add(micros(sleep));
            }
            if excluded {
                Next::Leave
            } else {
                decision
            }
        };
        match next {
            Next::Stay => {}
            Next::Drain => {
                draining.get_or_insert_with(Instant::now);
            }
            Next::Leave => {
                if busy || full_batch {
                    later = now; // left with work due: the launcher sends the next worker
                }
                clean = !busy;
                break;
            }
        }
        pause = sleep;
    }
    let active = deliveries.active_consumers();
    deliveries.shutdown();
    // Retries of the webhooks here are due then; a worker that did not hand its leases back
    // leaves them to run out first.
    if webhooks_here {
        if let Ok(Some(retry)) = in_transaction(|| next_retry_in(&active)) {
            later = later.min(seconds_from(worker_registry::now(), retry.max(0.0)));
        }
    }
    if !clean {
        later = later.min(worker_registry::now() + micros(Duration::from_secs(LEASE_SECS)));
    }
    leave(slot, me, clean, later);
    pgrx::debug1!("lowcode worker leaves database \"{dbname}\"");
}

/// A worker leaves its database: the entry says when something is due there next, and the
/// launcher is woken to send a worker where one waits.
fn leave(slot: usize, me: i32, clean: bool, due: i64) {
    let mut reg = REGISTRY.exclusive();
    let now = worker_registry::now();
    let e = &mut reg.entries[slot];
    if e.pid == me {
        e.pid = 0;
        e.latch = 0;
        e.wake_at = NEVER;
        e.left = now;
        e.clean = clean;
        e.next_due = e.next_due.min(due);
    }
    let latch = reg.launcher_latch;
    reg.launcher_wake_at = now;
    drop(reg);
    worker_registry::wake(latch);
}

/// How long a leaving worker waits for its webhook deliveries in flight.
const DRAIN_AT_MOST: Duration = Duration::from_secs(5);

/// How long the outbox leases events to a webhook's worker (src/webhook_delivery.rs).
const LEASE_SECS: u64 = crate::webhook_delivery::VISIBILITY_SECS as u64;

// ------------------------------------------------------------------ what lowcode.worker_status shows

fn timestamp(t: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    if t == 0 || t == NEVER {
        return None;
    }
    pgrx::datum::TimestampWithTimeZone::try_from(t).ok()
}

/// Internal: what lowcode's worker pool knows about each database (read by
/// `lowcode.worker_status`): the state (`on`: a worker is there now; `starting`; `waiting`:
/// work is due and no worker is free, with why; `idle`: nothing due, a worker comes when
/// something is; `off`: left out by `lowcode.worker_databases`), the worker's pid, when the
/// current or last visit began and ended, how many visits, when something is due next.
#[pg_extern(volatile)]
#[allow(clippy::type_complexity)]
fn worker_databases() -> TableIterator<
    'static,
    (
        name!(database, Option<String>),
        name!(state, String),
        name!(pid, Option<i32>),
        name!(arrived, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(last_visit, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(next_due, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(visits, i64),
        name!(detail, String),
    ),
> {
    let mut rows = Vec::new();
    if !worker_registry::preloaded() {
        return TableIterator::new(rows);
    }
    let (entries, overflow): (Vec<Entry>, u32) = {
        let reg = REGISTRY.share();
        (
            reg.entries.iter().filter(|e| e.db != 0).copied().collect(),
            reg.overflow,
        )
    };
    let max = WORKER_MAX.get();
    // SAFETY: reads a postmaster-set global.
    let max_workers = unsafe { pg_sys::max_worker_processes };
    let me = worker_registry::my_database();
    let mut seen_me = false;
    for e in entries {
        if e.installed == Installed::No && e.db != me {
            continue;
        }
        seen_me |= e.db == me;
        // SAFETY: a catalog lookup in the caller's transaction.
        let name = unsafe {
            let n = pg_sys::get_database_name(pg_sys::Oid::from(e.db));
            (!n.is_null()).then(|| CStr::from_ptr(n).to_string_lossy().into_owned())
        };
        let (state, detail) = if e.excluded {
            (
                "off",
                format!(
                    "this database is not in lowcode.worker_databases ({})",
                    WORKER_DATABASES
                        .get()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ),
            )
        } else if e.installed == Installed::No {
            ("off", "lowcode is not installed in this database".into())
        } else if e.pid != 0 {
            (
                "on",
                format!("a worker of the pool (lowcode.worker_max = {max}) is here"),
            )
        } else if e.starting {
            ("starting", "the launcher is starting a worker here".into())
        } else if e.waiting_since != 0 {
            (
                "waiting",
                match e.blocked {
                    Blocked::NoSlot => format!(
                        "work is due; PostgreSQL has no background worker slot free (max_worker_processes = {max_workers}, shared with parallel queries and other extensions): raise max_worker_processes"
                    ),
                    _ => format!(
                        "work is due; all lowcode.worker_max ({max}) workers are busy in other databases: the next one to leave comes here (raise lowcode.worker_max to serve more databases at once)"
                    ),
                },
            )
        } else {
            (
                "idle",
                "nothing is due: a worker comes when the next timer is due or events wait for a webhook".into(),
            )
        };
        rows.push((
            name,
            state.to_string(),
            (e.pid != 0).then_some(e.pid),
            timestamp(e.arrived),
            timestamp(e.left),
            timestamp(e.next_due),
            e.visits as i64,
            detail,
        ));
    }
    if !seen_me {
        // SAFETY: reads a backend global.
        let name = unsafe {
            let n = pg_sys::get_database_name(pg_sys::MyDatabaseId);
            (!n.is_null()).then(|| CStr::from_ptr(n).to_string_lossy().into_owned())
        };
        let detail = if overflow > 0 {
            format!("the worker pool keeps track of {} databases at most and this cluster has more: this one is not served", worker_registry::CAPACITY)
        } else {
            "the launcher has not seen this database yet (it lists the databases every lowcode.launcher_naptime)".into()
        };
        rows.push((name, "waiting".into(), None, None, None, None, 0, detail));
    }
    TableIterator::new(rows)
}
