//! Each backend's view of the definitions: which version of a form is current, and its
//! compiled validator.
//!
//! Freshness: `define_form` sends a relcache invalidation for `lowcode.forms`; every backend
//! processes invalidations at least once per statement (we call `AcceptInvalidationMessages`
//! when a new statement starts), and the callback bumps a generation counter that empties the
//! current-version map. A bulk statement therefore costs no catalog query per row, and a new
//! version is enforced everywhere from the next statement on.
//!
//! Compiled validators are keyed by version id (immutable) in a bounded LRU whose size is the
//! `lowcode.validator_cache_size` setting.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, JsonB, PgSqlErrorCode};

use crate::report::Reportable;
use crate::validation::{self, ValidatorCache};

/// `lowcode.validator_cache_size`: compiled validators kept per backend.
pub static VALIDATOR_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(512);

/// `lowcode.max_document_depth`: deepest document validated against a recursive schema.
pub static MAX_DOCUMENT_DEPTH: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// The depth limit for recursive schemas, from `lowcode.max_document_depth`.
pub fn max_document_depth() -> usize {
    MAX_DOCUMENT_DEPTH.get().max(1) as usize
}

/// Why a definition could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown app \"{0}\"")]
    UnknownApp(String),
    #[error("unknown form \"{0}.{1}\"")]
    UnknownForm(String, String),
    #[error("form version {0} does not compile: {1}")]
    Corrupt(i64, String),
    #[error("catalog query failed: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl Reportable for CatalogError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            CatalogError::UnknownApp(_) | CatalogError::UnknownForm(..) => {
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT
            }
            CatalogError::Corrupt(..) => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            CatalogError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            CatalogError::UnknownApp(app) => Some(format!(
                "create it with lowcode.create_app('{app}', 'a title')"
            )),
            CatalogError::UnknownForm(app, form) => Some(format!(
                "define it with lowcode.define_form('{app}', '{form}', '<json schema>')"
            )),
            _ => None,
        }
    }
}

/// The version of a form that new writes are validated against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentForm {
    pub version_id: i64,
    /// The form's workflow version (`forms.workflow_version_id`), if it has a workflow.
    pub workflow_id: Option<i64>,
}

thread_local! {
    // Touched by PostgreSQL callbacks: plain cells only, never borrowed.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static FORMS_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    static XACT_SCOPED_FILL: Cell<bool> = const { Cell::new(false) };
    static LAST_STATEMENT: Cell<i64> = const { Cell::new(i64::MIN) };

    static SEEN_GENERATION: Cell<u64> = const { Cell::new(0) };
    static CURRENT: RefCell<HashMap<String, HashMap<String, CurrentForm>>> =
        RefCell::new(HashMap::new());
    static VALIDATORS: RefCell<ValidatorCache> = RefCell::new(ValidatorCache::new(512));
    static CONDITIONS: RefCell<ConditionCache> = RefCell::new(ConditionCache::new(1024));
    static WORKFLOWS: RefCell<crate::cache::Lru<(u32, i64), Rc<CompiledWorkflow>>> =
        RefCell::new(crate::cache::Lru::new(256));
    // The last form looked up with its validator: a bulk statement asks for the same one on
    // every row, and comparing two short strings is cheaper than hashing them for the maps.
    static LAST_FORM: RefCell<Option<LastForm>> = const { RefCell::new(None) };
}

struct LastForm {
    generation: u64,
    app: String,
    form: String,
    current: CurrentForm,
    validator: Rc<validation::Compiled>,
}

/// A workflow version compiled for the engine: its rules indexed by event, their `when`
/// conditions compiled as validators (by rule position).
pub struct CompiledWorkflow {
    pub id: i64,
    pub runtime: crate::workflow::Runtime,
    pub conditions: Vec<Option<Rc<validation::Compiled>>>,
    /// The transitions' conditions compiled as validators (by transition name).
    pub transition_conditions: HashMap<String, Rc<validation::Compiled>>,
}

/// Compiled workflow conditions keyed by a hash of their jsonb bytes (the bytes are kept and
/// compared, so a collision only costs a compile).
type ConditionCache = crate::cache::Lru<u64, (Rc<Vec<u8>>, Rc<validation::Compiled>)>;

/// Register the setting and the invalidation callbacks (from `_PG_init`).
pub fn init() {
    GucRegistry::define_int_guc(
        c"lowcode.validator_cache_size",
        c"Compiled form validators each backend keeps (least recently used are dropped).",
        c"Each cached validator costs memory in every backend that used it; raise this when \
          one session validates against more forms than this.",
        &VALIDATOR_CACHE_SIZE,
        1,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"lowcode.max_document_depth",
        c"Deepest document (nested arrays/objects) validated against a recursive schema.",
        c"Validating a recursive schema descends as deep as the document; deeper documents are \
          refused (SQLSTATE 54000) instead of risking the backend's stack.",
        &MAX_DOCUMENT_DEPTH,
        1,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        );
        pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let forms = FORMS_OID.with(Cell::get);
    if relid == pg_sys::InvalidOid || (forms != pg_sys::InvalidOid && relid == forms) {
        bump();
    }
}

unsafe extern "C-unwind" fn on_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    ) && XACT_SCOPED_FILL.with(Cell::get)
    {
        // Entries read under a REPEATABLE READ / SERIALIZABLE snapshot are only good
        // for that transaction.
        XACT_SCOPED_FILL.with(|c| c.set(false));
        bump();
    }
}

fn bump() {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    FORMS_OID.with(|o| o.set(pg_sys::InvalidOid));
}

/// Forget every cached current version, here and (at commit) in every other backend.
pub fn forms_changed() -> Result<(), CatalogError> {
    let oid = forms_oid()?;
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    bump();
    Ok(())
}

fn forms_oid() -> Result<pg_sys::Oid, CatalogError> {
    let cached = FORMS_OID.with(Cell::get);
    if cached != pg_sys::InvalidOid {
        return Ok(cached);
    }
    let oid = read_one::<pg_sys::Oid>(
        "SELECT 'lowcode.forms'::pg_catalog.regclass::pg_catalog.oid",
        &[],
    )?
    .unwrap_or(pg_sys::InvalidOid);
    FORMS_OID.with(|o| o.set(oid));
    Ok(oid)
}

/// One value from a read-only catalog query (its operators are written
/// `OPERATOR(pg_catalog.=)`: the query runs under the caller's search_path). A read never assigns a transaction id, so
/// validation works on hot standbys (PolarDB read-only nodes) and in read-only transactions.
fn read_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<T>, pgrx::spi::SpiError> {
    reading(|| Spi::connect(|client| client.select(query, Some(1), args)?.first().get_one::<T>()))
}

/// Run `read`, a read of lowcode's definitions, where Citus lets it run. On a Citus node the
/// definitions are reference tables (lowcode.distribute), and a validation may run inside a
/// query on a shard (a CHECK with lowcode.conforms on a table distributed by tenant), where
/// Citus refuses queries of distributed tables unless citus.allow_nested_distributed_execution
/// is on. A reference table's read is answered by the node's own copy, so it is safe: the
/// setting is on for the read only, and back as it was after. (Without Citus the setting does
/// not exist and nothing is set; a read only happens on a cache miss.)
fn reading<T>(read: impl FnOnce() -> T) -> T {
    crate::settings::with_setting(c"citus.allow_nested_distributed_execution", c"on", read)
}

/// Once per statement: take in other sessions' invalidations, and drop the current-version
/// map if anything changed.
fn refresh() {
    let started = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    if LAST_STATEMENT.with(|s| s.replace(started)) != started {
        unsafe { pg_sys::AcceptInvalidationMessages() };
    }
    let generation = GENERATION.with(Cell::get);
    if SEEN_GENERATION.with(|s| s.replace(generation)) != generation {
        CURRENT.with(|c| c.borrow_mut().clear());
    }
}

/// The current version of `app.form`: one catalog query per backend per change, not per row.
pub fn current_form(app: &str, form: &str) -> Result<CurrentForm, CatalogError> {
    refresh();
    let cached = CURRENT.with(|c| {
        c.borrow()
            .get(app)
            .and_then(|forms| forms.get(form))
            .copied()
    });
    if let Some(current) = cached {
        return Ok(current);
    }
    // Learn the table's oid first, so an invalidation racing with this read is not missed.
    forms_oid()?;
    let generation = GENERATION.with(Cell::get);
    let found = reading(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT f.current_version_id, f.workflow_version_id FROM lowcode.forms f \
                  WHERE f.app OPERATOR(pg_catalog.=) $1 AND f.name OPERATOR(pg_catalog.=) $2",
                    Some(1),
                    &[app.into(), form.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::SpiError>(match row.get::<i64>(1) {
                Ok(Some(id)) => Some((id, row.get::<i64>(2)?)),
                Ok(None) | Err(pgrx::spi::SpiError::InvalidPosition) => None,
                Err(error) => return Err(error),
            })
        })
    });
    let (version_id, workflow_id) = match found {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            let app_exists = read_one::<bool>(
                "SELECT EXISTS (SELECT FROM lowcode.apps WHERE name OPERATOR(pg_catalog.=) $1)",
                &[app.into()],
            )?
            .unwrap_or(false);
            return Err(if app_exists {
                CatalogError::UnknownForm(app.to_owned(), form.to_owned())
            } else {
                CatalogError::UnknownApp(app.to_owned())
            });
        }
        Err(error) => return Err(error.into()),
    };
    let current = CurrentForm {
        version_id,
        workflow_id,
    };
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        XACT_SCOPED_FILL.with(|c| c.set(true));
    }
    // Keep it only if nothing was invalidated while we read.
    if GENERATION.with(Cell::get) == generation {
        CURRENT.with(|c| {
            c.borrow_mut()
                .entry(app.to_owned())
                .or_default()
                .insert(form.to_owned(), current)
        });
    }
    Ok(current)
}

/// The current version of `app.form` and its compiled validator, as `current_form` and
/// `validator` give them, remembered for the next call while no invalidation intervenes.
pub fn current_validator(
    app: &str,
    form: &str,
) -> Result<(CurrentForm, Rc<validation::Compiled>), CatalogError> {
    refresh();
    let generation = GENERATION.with(Cell::get);
    let hit = LAST_FORM.with(|last| {
        last.borrow()
            .as_ref()
            .filter(|l| l.generation == generation && l.app == app && l.form == form)
            .map(|l| (l.current, l.validator.clone()))
    });
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let current = current_form(app, form)?;
    let validator = validator(current.version_id)?;
    if GENERATION.with(Cell::get) == generation {
        LAST_FORM.with(|last| {
            *last.borrow_mut() = Some(LastForm {
                generation,
                app: app.to_owned(),
                form: form.to_owned(),
                current,
                validator: validator.clone(),
            })
        });
    }
    Ok((current, validator))
}

/// The workflow of `app.form` as the engine runs it, if the form has one.
pub fn current_workflow(
    app: &str,
    form: &str,
) -> Result<Option<Rc<CompiledWorkflow>>, CatalogError> {
    let (current, _) = current_validator(app, form)?;
    current.workflow_id.map(workflow).transpose()
}

/// A workflow version compiled for the engine, at most once per backend while it stays in
/// the LRU (versions are immutable; the key has the table's oid, as validators do).
pub fn workflow(id: i64) -> Result<Rc<CompiledWorkflow>, CatalogError> {
    let key = (forms_oid()?.to_u32(), id);
    if let Some(hit) = WORKFLOWS.with(|w| w.borrow_mut().get(&key)) {
        return Ok(hit);
    }
    let row = reading(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT w.definition, w.initial_state, w.final_states \
                   FROM lowcode.workflow_versions w WHERE w.id OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[id.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::SpiError>(match row.get::<JsonB>(1) {
                Ok(Some(definition)) => Some((
                    definition.0,
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<Vec<String>>(3)?.unwrap_or_default(),
                )),
                Ok(None) | Err(pgrx::spi::SpiError::InvalidPosition) => None,
                Err(error) => return Err(error),
            })
        })
    })?;
    let (definition, initial, finals) =
        row.ok_or_else(|| CatalogError::Corrupt(id, "the workflow version does not exist".into()))?;
    let runtime = crate::workflow::Runtime::new(&definition, initial, finals)
        .map_err(|error| CatalogError::Corrupt(id, error.to_string()))?;
    let conditions = runtime
        .rules
        .iter()
        .map(|rule| {
            rule.when
                .as_ref()
                .map(|when| validation::Compiled::new(when).map(Rc::new))
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CatalogError::Corrupt(id, error.to_string()))?;
    let transition_conditions = runtime
        .transitions
        .iter()
        .filter_map(|(name, t)| t.when.as_ref().map(|when| (name, when)))
        .map(|(name, when)| Ok((name.clone(), Rc::new(validation::Compiled::new(when)?))))
        .collect::<Result<HashMap<_, _>, validation::CompileError>>()
        .map_err(|error| CatalogError::Corrupt(id, error.to_string()))?;
    let compiled = Rc::new(CompiledWorkflow {
        id,
        runtime,
        conditions,
        transition_conditions,
    });
    WORKFLOWS.with(|w| w.borrow_mut().insert(key, compiled.clone()));
    Ok(compiled)
}

/// The compiled validator of a form version, compiled at most once per backend while it
/// stays in the LRU.
pub fn validator(version_id: i64) -> Result<Rc<validation::Compiled>, CatalogError> {
    let capacity = VALIDATOR_CACHE_SIZE.get().max(1) as usize;
    // Version ids restart when the extension is dropped and created again; the table's
    // oid does not come back, so it makes the key unique.
    let key = (forms_oid()?.to_u32(), version_id);
    let cached = VALIDATORS.with(|v| {
        let mut cache = v.borrow_mut();
        cache.resize(capacity);
        cache.get(&key)
    });
    if let Some(validator) = cached {
        return Ok(validator);
    }
    let schema = read_one::<JsonB>(
        "SELECT bundled FROM lowcode.form_versions WHERE id OPERATOR(pg_catalog.=) $1",
        &[version_id.into()],
    )?
    .ok_or_else(|| CatalogError::Corrupt(version_id, "the version does not exist".into()))?;
    let compiled = validation::Compiled::new(&schema.0)
        .map_err(|error| CatalogError::Corrupt(version_id, error.to_string()))?;
    let compiled = Rc::new(compiled);
    VALIDATORS.with(|v| v.borrow_mut().insert(key, compiled.clone()));
    Ok(compiled)
}

/// The compiled validator of a workflow condition (`when`), given as jsonb container bytes;
/// `to_json` turns them into a schema on a cache miss.
pub fn condition(
    container: &[u8],
    to_json: impl FnOnce() -> serde_json::Value,
) -> Result<Rc<validation::Compiled>, validation::CompileError> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    container.hash(&mut hasher);
    let key = hasher.finish();
    let hit = CONDITIONS.with(|c| c.borrow_mut().get(&key));
    if let Some((bytes, validator)) = hit {
        if bytes.as_slice() == container {
            return Ok(validator);
        }
    }
    let compiled = Rc::new(validation::Compiled::new(&to_json())?);
    CONDITIONS.with(|c| {
        c.borrow_mut()
            .insert(key, (Rc::new(container.to_vec()), compiled.clone()))
    });
    Ok(compiled)
}

/// Numbers for tests and benchmarks: cached validators, capacity, generation.
pub fn stats() -> serde_json::Value {
    let (cached, workflows, current) = (
        VALIDATORS.with(|v| v.borrow().len()),
        WORKFLOWS.with(|w| w.borrow().len()),
        CURRENT.with(|c| c.borrow().values().map(HashMap::len).sum::<usize>()),
    );
    serde_json::json!({
        "validators": cached,
        "capacity": VALIDATOR_CACHE_SIZE.get(),
        "current_forms": current,
        "workflows": workflows,
        "statements": crate::statements::kept(),
        "generation": GENERATION.with(Cell::get),
    })
}

/// Drop every compiled validator (tests and benchmarks measure cold paths with it).
pub fn clear() {
    LAST_FORM.with(|last| last.borrow_mut().take());
    VALIDATORS.with(|v| v.borrow_mut().clear());
    CONDITIONS.with(|c| c.borrow_mut().clear());
    WORKFLOWS.with(|w| w.borrow_mut().clear());
    CURRENT.with(|c| c.borrow_mut().clear());
}
