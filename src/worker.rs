//! The background worker: timers fire on time with no outside scheduler.
//!
//! Only with `shared_preload_libraries = 'lowcode'`: `_PG_init` then registers one static
//! *launcher*, which connects to no database, lists `pg_database` every
//! `lowcode.launcher_naptime` and starts one dynamic *worker* per database (those named in
//! `lowcode.worker_databases`, default all that accept connections; at most
//! `lowcode.worker_max`). A worker connects to its database; if lowcode is not installed there
//! it leaves at once (the launcher looks again later, so CREATE EXTENSION is noticed within a
//! launcher naptime). Otherwise, before its first statement, it pins `search_path =
//! pg_catalog, pg_temp` and makes the extension's owner its session user (the owner's rights
//! and no more, also in a trusted install; see `become_owner`), and loops:
//!
//! - `lowcode.run_due_timers(lowcode.worker_batch)`, again at once while a batch comes back
//!   full;
//! - then sleeps on its latch until the next pending `fire_at`, at most `lowcode.worker_naptime`
//!   (so a timer added meanwhile for an earlier time is seen within a naptime; no LISTEN);
//! - leaves when the extension is dropped, and steps aside when someone waits to drop (or
//!   rename) its database, so that DROP DATABASE is never held up: the launcher's next worker
//!   for that database waits at connection time until the drop is done, then fails quietly.
//!
//! SIGTERM ends the loop at the next wake-up, SIGHUP reloads the configuration, postmaster
//! death ends it too. An ERROR (or a Rust panic) in one round is logged, written to
//! `lowcode.worker_state.last_error`, its transaction rolled back, and the loop goes on after a
//! pause; `run_due_timers` marks timers fired in the transaction that fires them, so a round
//! that is rolled back (or a worker killed mid-round) fires nothing twice.
//!
//! The same loop calls `lowcode.signal_events()` (the outbox's NOTIFY, a few times a second)
//! and delivers webhooks (src/webhook_delivery.rs).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PgMemoryContexts, PgTryBuilder};

use crate::webhook_delivery::Deliveries;

/// `lowcode.worker_databases`: comma-separated database names the launcher serves (empty: all).
pub static WORKER_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `lowcode.worker_max`: database workers the launcher runs at most.
pub static WORKER_MAX: GucSetting<i32> = GucSetting::<i32>::new(8);
/// `lowcode.worker_naptime` (ms): longest a worker sleeps between two looks at the timers.
pub static WORKER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// `lowcode.launcher_naptime` (ms): how often the launcher lists the databases.
pub static LAUNCHER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(5000);
/// `lowcode.worker_batch`: timers fired per transaction.
pub static WORKER_BATCH: GucSetting<i32> = GucSetting::<i32>::new(500);

/// Set in the postmaster when lowcode is in `shared_preload_libraries`; backends inherit it.
static PRELOADED: AtomicBool = AtomicBool::new(false);

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
        c"Database workers lowcode's launcher runs at most.",
        c"One worker per database that has lowcode; each takes a max_worker_processes slot.",
        &WORKER_MAX,
        0,
        1000,
        GucContext::Sighup,
        GucFlags::default(),
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
        PRELOADED.store(true, Ordering::SeqCst);
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

/// Is lowcode in `shared_preload_libraries` (so that a launcher was registered)?
pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::SeqCst)
}

fn reload_if_asked() {
    if BackgroundWorker::sighup_received() {
        // SAFETY: outside any transaction, in the worker's main loop, as PostgreSQL's own
        // background processes do it.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
}

fn naptime(setting: &GucSetting<i32>) -> Duration {
    Duration::from_millis(setting.get().max(1) as u64)
}

/// Runs `body` in a transaction of its own; an ERROR (or a panic) rolls it back and comes
/// back as its message instead of ending the worker.
pub(crate) fn in_transaction<R>(
    body: impl FnOnce() -> R + UnwindSafe + RefUnwindSafe,
) -> Result<R, String> {
    // SAFETY: called from a background worker's main loop, outside any transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| Ok(body()))
        .catch_others(|error| {
            Err(match error {
                pg_sys::panic::CaughtError::PostgresError(report)
                | pg_sys::panic::CaughtError::ErrorReport(report) => report.message().to_string(),
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    ereport.message().to_string()
                }
            })
        })
        .execute();
    // SAFETY: ends the transaction started above (the error state was flushed by pgrx).
    unsafe {
        match result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// Internal: is lowcode in `shared_preload_libraries`, so that its background worker runs?
/// (lowcode.worker_status tells why not.)
#[pg_extern(stable)]
fn worker_preloaded() -> bool {
    preloaded()
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

struct Running {
    handle: DynamicBackgroundWorker,
}

fn start_worker(db: &Database) -> Option<Running> {
    // SAFETY: reads a backend global.
    let me = unsafe { pg_sys::MyProcPid };
    // The handle must outlive the transaction that listed the databases.
    let handle = unsafe {
        PgMemoryContexts::TopMemoryContext.switch_to(|_| {
            BackgroundWorkerBuilder::new(&format!("{WORKER_TYPE} {}", db.name))
                .set_type(WORKER_TYPE)
                .set_library("lowcode")
                .set_function("lowcode_worker_main")
                .enable_spi_access()
                .set_restart_time(None)
                .set_argument(Some(pg_sys::Datum::from(u32::from(db.oid) as usize)))
                .set_extra(&db.name)
                .set_notify_pid(me)
                .load_dynamic()
        })
    };
    match handle {
        Ok(handle) => Some(Running { handle }),
        Err(_) => {
            log!(
                "lowcode launcher: no background worker slot for database \"{}\" (raise max_worker_processes)",
                db.name
            );
            None
        }
    }
}

/// The launcher's main function (registered by `init`).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn lowcode_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    log!("lowcode launcher started");
    let mut running: HashMap<pg_sys::Oid, Running> = HashMap::new();
    let mut last_scan: Option<Instant> = None;
    loop {
        reload_if_asked();
        // Forget workers that ended (their database dropped, lowcode not installed there, an
        // error): the next scan starts them again where needed.
        running.retain(|_, w| {
            !matches!(
                w.handle.pid(),
                Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied)
            )
        });
        let due = last_scan.is_none_or(|at| at.elapsed() >= naptime(&LAUNCHER_NAPTIME));
        if due {
            last_scan = Some(Instant::now());
            match in_transaction(list_databases) {
                Ok(databases) => {
                    let wanted = wanted_databases();
                    let max = WORKER_MAX.get().max(0) as usize;
                    // Stop the workers of databases no longer served.
                    let served: Vec<pg_sys::Oid> = databases
                        .iter()
                        .filter(|d| wanted.as_ref().is_none_or(|w| w.contains(&d.name)))
                        .map(|d| d.oid)
                        .collect();
                    let gone: Vec<pg_sys::Oid> = running
                        .keys()
                        .filter(|oid| !served.contains(oid))
                        .copied()
                        .collect();
                    for oid in gone {
                        if let Some(w) = running.remove(&oid) {
                            let _ = w.handle.terminate();
                        }
                    }
                    let missing: Vec<&Database> = databases
                        .iter()
                        .filter(|d| served.contains(&d.oid) && !running.contains_key(&d.oid))
                        .collect();
                    for db in missing {
                        if running.len() >= max {
                            break;
                        }
                        if let Some(w) = start_worker(db) {
                            running.insert(db.oid, w);
                        }
                    }
                }
                Err(message) => log!("lowcode launcher: could not list databases: {message}"),
            }
        }
        if !BackgroundWorker::wait_latch(Some(naptime(&LAUNCHER_NAPTIME))) {
            break;
        }
    }
    log!("lowcode launcher stopped");
}

// ------------------------------------------------------------------ a database worker

/// What one round found.
struct Round {
    fired: i32,
    /// Seconds until the next pending timer (negative: already due), None: no timer pending.
    next_in: Option<f64>,
}

/// Does lowcode live in this database? (A catalog index scan: no SQL.)
fn installed() -> bool {
    crate::privileges::extension_owner() != pg_sys::InvalidOid
}

/// Before the worker runs any statement: `search_path = pg_catalog, pg_temp` for the whole
/// session, whatever `ALTER DATABASE ... SET` or `ALTER ROLE ... SET` said (every statement it
/// runs names its schemas as well), and the session's role becomes lowcode's owner, so
/// that the worker has that role's rights and no more, also in a trusted install. The
/// database's and the bootstrap superuser's own settings were applied at connection; none of
/// them runs code, and none can change what a statement of the worker means any more.
/// Returns false when lowcode is not installed here.
fn become_owner() -> bool {
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
    let owner = crate::privileges::extension_owner();
    if owner == pg_sys::InvalidOid {
        return false;
    }
    unsafe { pg_sys::SetSessionAuthorization(owner, pg_sys::superuser_arg(owner)) };
    true
}

/// Someone waits to drop (or rename, or move) this database: step aside.
fn database_wanted_exclusively() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l
                         WHERE l.locktype OPERATOR(pg_catalog.=) 'object'
                           AND l.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_database'::pg_catalog.regclass
                           AND l.objid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
                           AND l.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'
                           AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

fn timer_round(batch: i32) -> Round {
    let fired = Spi::get_one_with_args::<i32>("SELECT lowcode.run_due_timers($1)", &[batch.into()])
        .ok()
        .flatten()
        .unwrap_or(0);
    let next_in = Spi::get_one::<f64>(
        "SELECT pg_catalog.date_part('epoch', pg_catalog.min(t.fire_at) OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp())::pg_catalog.float8
           FROM lowcode.timers t WHERE t.status OPERATOR(pg_catalog.=) 'pending'",
    )
    .ok()
    .flatten();
    if fired > 0 {
        let _ = Spi::run_with_args(
            "UPDATE lowcode.worker_state SET last_timer_run = pg_catalog.now(),
                    timers_fired = timers_fired OPERATOR(pg_catalog.+) $1",
            &[(fired as i64).into()],
        );
    }
    Round { fired, next_in }
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

/// A database worker's main function (started by the launcher).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn lowcode_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let dboid = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(dboid), None);
    let dbname = BackgroundWorker::get_extra().to_string();

    // lowcode there? Then act as its owner from now on, with a pinned search_path.
    match in_transaction(become_owner) {
        Ok(true) => {}
        Ok(false) => return, // not installed here: the launcher looks again later
        Err(message) => {
            log!("lowcode worker for database \"{dbname}\": {message}");
            return;
        }
    }
    let started = in_transaction(move || {
        Spi::run(
            "INSERT INTO lowcode.worker_state AS s (pid, acting_as, started_at, timers_fired)
             VALUES (pg_catalog.pg_backend_pid(), SESSION_USER, pg_catalog.now(), 0)
             ON CONFLICT (singleton) DO UPDATE
                SET pid = EXCLUDED.pid, acting_as = EXCLUDED.acting_as,
                    started_at = EXCLUDED.started_at, timers_fired = 0, last_timer_run = NULL",
        )
    });
    match started {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            log!("lowcode worker for database \"{dbname}\" could not start: {error}");
            return;
        }
        Err(message) => {
            log!("lowcode worker for database \"{dbname}\" could not start: {message}");
            return;
        }
    }
    log!("lowcode worker started for database \"{dbname}\"");

    let mut deliveries = Deliveries::new();
    let mut last_guard = Instant::now() - Duration::from_secs(60);
    let mut last_signal = last_guard;
    let mut pause = Duration::ZERO;
    loop {
        if pause.is_zero() {
            if BackgroundWorker::sigterm_received() {
                break;
            }
        } else if !BackgroundWorker::wait_latch(Some(pause)) {
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
                    break;
                }
                Ok((true, true)) => {
                    log!("lowcode worker for database \"{dbname}\": the database is being dropped or altered, leaving");
                    break;
                }
                Err(message) => {
                    log!("lowcode worker for database \"{dbname}\": {message}");
                    pause = Duration::from_secs(1);
                    continue;
                }
            }
        }
        let batch = WORKER_BATCH.get().max(1);
        let round = match in_transaction(|| timer_round(batch)) {
            Ok(round) => round,
            Err(message) => {
                if !matches!(in_transaction(installed), Ok(true)) {
                    log!("lowcode worker for database \"{dbname}\": lowcode was dropped, leaving");
                    break;
                }
                warning!("lowcode worker for database \"{dbname}\": timers: {message}");
                note_error(&message);
                pause = Duration::from_secs(1);
                continue;
            }
        };
        // Wake the outbox's listeners (writers never NOTIFY): signal_events in a transaction
        // of its own, a few times a second at most.
        if last_signal.elapsed() >= Duration::from_millis(250) {
            last_signal = Instant::now();
            if let Err(message) = in_transaction(|| Spi::run("SELECT lowcode.signal_events()")) {
                log!("lowcode worker for database \"{dbname}\": signal_events: {message}");
            }
        }
        // Webhooks: hand out new deliveries, record finished ones (never waits for HTTP).
        let busy = deliveries.step(&dbname);
        if round.fired >= batch {
            pause = Duration::ZERO; // a full batch: more are due
            continue;
        }
        let mut sleep = naptime(&WORKER_NAPTIME);
        if let Some(next_in) = round.next_in {
            // Already due but not fired (its record is being changed): look again soon.
            let next = Duration::from_secs_f64(next_in.max(0.0)).max(Duration::from_millis(5));
            sleep = sleep.min(next);
        }
        if busy {
            sleep = sleep.min(Duration::from_millis(10));
        }
        pause = sleep;
    }
    deliveries.shutdown();
    log!("lowcode worker for database \"{dbname}\" stopped");
}
