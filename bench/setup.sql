-- bench/setup.sql — what every scenario of `make bench` shares. Run by scripts/bench.sh in
-- database lowcode_bench after CREATE EXTENSION lowcode and bench/forms.py's forms.sql.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- ------------------------------------------------------------------ results
-- One row per measurement; bench/report.py reads them (as TSV) and writes the table.
CREATE TABLE bench.results (
    scenario  text NOT NULL,
    item      text NOT NULL,      -- what is measured (e.g. "small 200k")
    variant   text NOT NULL,      -- who does it (baseline A, lowcode is_valid, ...)
    rep       int NOT NULL,
    metric    text NOT NULL,      -- us_per_row, tps, per_s, kB, ms, count, ...
    value     float8 NOT NULL,
    at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Concurrent workers (timer callers, outbox consumers) report here.
CREATE TABLE bench.runs (
    run       text NOT NULL,
    worker    int NOT NULL,
    started   timestamptz NOT NULL,
    finished  timestamptz NOT NULL,
    items     bigint NOT NULL
);

-- Time one query (server side, clock_timestamp deltas); its single bigint result comes back too.
CREATE FUNCTION bench.time_query(sql text, OUT ms float8, OUT result bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE sql INTO result;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- This backend's memory, from /proc (VmRSS: resident, RssAnon: private heap).
CREATE FUNCTION bench.rss_kb(field text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT (regexp_match(pg_read_file('/proc/self/status'), field || ':\s+(\d+) kB'))[1]::bigint
$$;

-- ------------------------------------------------------------------ forms
-- app "bench": the two forms of scenario 1 (bench/forms.py).
SELECT lowcode.create_app('bench', 'make bench: bulk validation');
SELECT lowcode.define_form('bench', f.form, f.schema) FROM bench.forms f ORDER BY f.form;

-- app "insp": the inspection fault report (the small form) twice, without and with the
-- inspection workflow of examples/inspection.sql.
SELECT lowcode.create_app('insp', 'make bench: the write path');
SELECT lowcode.define_form('insp', 'fault', f.schema), lowcode.define_form('insp', 'fault_wf', f.schema)
  FROM bench.forms f WHERE f.form = 'small';
\ir insp_workflow.sql
SELECT lowcode.publish('insp');

-- 1,000 records (severity 2: no rule fires) that the tasks and timers of scenarios 3 and 4 belong to.
SELECT count(lowcode.submit('insp', 'fault_wf', jsonb_set(bench.small_valid_doc(i), '{severity}', '2')))
  FROM generate_series(1, 1000) i;
CREATE TABLE bench.hosts AS
    SELECT id FROM lowcode.records WHERE app = 'insp' AND form = 'fault_wf' ORDER BY id;

-- ------------------------------------------------------------------ physical baselines
-- Scenario 2: the limit, a plain table (bench/pgbench/raw_insert.sql).
CREATE TABLE bench.raw (id bigserial PRIMARY KEY, data jsonb NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now());

-- Scenarios 2 and 3: plain mirrors of the tables lowcode's write path writes, with their
-- columns, defaults, checks, indexes, primary and foreign keys copied from sql/catalog.sql,
-- sql/workflow.sql and sql/outbox.sql (no triggers, no row level security):
--   bench.records_raw    lowcode.records          bench.tasks_raw      lowcode.tasks
--   bench.history_raw    lowcode.history          bench.wf_timers_raw  lowcode.timers
--   bench.wf_events_raw  lowcode.events
-- (bench.timers_raw and bench.events_raw below are scenario 4's and 5's simpler tables.)
-- (Records name their form and version without foreign keys, as in lowcode.) The foreign keys'
-- targets: a forms table and a form versions table holding app insp's rows of lowcode.forms and
-- lowcode.form_versions (same keys and ids), and an approvals table that stays empty
-- (lowcode.tasks.approval_id is NULL for a pool task: no check, as in lowcode).
CREATE TABLE bench.forms_raw (
    app                 text NOT NULL,
    name                text NOT NULL,
    current_version_id  bigint,
    PRIMARY KEY (app, name)
);
CREATE TABLE bench.form_versions_raw (
    id       bigint PRIMARY KEY,
    app      text NOT NULL,
    form     text NOT NULL,
    version  int NOT NULL
);
CREATE TABLE bench.approvals_raw (id bigserial PRIMARY KEY);

CREATE TABLE bench.records_raw (
    id               bigserial PRIMARY KEY,
    app              text NOT NULL,
    form             text NOT NULL,
    form_version_id  bigint NOT NULL,
    data             jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'submitted',
    revision         int NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL DEFAULT current_user,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT current_user,
    owner            text NOT NULL DEFAULT current_user
);
CREATE INDEX ON bench.records_raw (app, form, id);

CREATE TABLE bench.history_raw (
    id          bigserial PRIMARY KEY,
    record_id   bigint NOT NULL,
    app         text NOT NULL,
    form        text NOT NULL,
    action      text NOT NULL,
    revision    int,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state  text,
    to_state    text,
    before      jsonb,
    after       jsonb,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON bench.history_raw (record_id, id);

-- Scenario 3's claim queue too (its pools 'claims_r<rep>', scenario 2's 'engineers').
CREATE TABLE bench.tasks_raw (
    id            bigserial PRIMARY KEY,
    record_id     bigint NOT NULL REFERENCES bench.records_raw (id) ON DELETE CASCADE,
    name          text NOT NULL,
    kind          text NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'approval')),
    approval_id   bigint REFERENCES bench.approvals_raw (id) ON DELETE CASCADE,
    pool          text,
    role          text,
    assignee      text,
    title         text,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'completed', 'cancelled')),
    due_at        timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    claimed_at    timestamptz,
    completed_by  text,
    completed_at  timestamptz,
    outcome       text,
    result        jsonb,
    met_deadline  boolean,
    -- (NOT NULL in lowcode; nullable here for scenario 3's queue, which leaves them out.)
    app           text,
    form          text,
    outcomes      text[],
    result_schema jsonb,
    events        boolean NOT NULL DEFAULT false
);
CREATE INDEX ON bench.tasks_raw (pool, id) WHERE status = 'open';
CREATE INDEX ON bench.tasks_raw (record_id);

CREATE TABLE bench.wf_timers_raw (
    id         bigserial PRIMARY KEY,
    record_id  bigint NOT NULL REFERENCES bench.records_raw (id) ON DELETE CASCADE,
    name       text NOT NULL,
    event      text NOT NULL,
    task_id    bigint,
    in_state   text,
    fire_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'cancelled', 'failed')),
    fired_at   timestamptz,
    error      text,
    attempts   int NOT NULL DEFAULT 0,
    app        text NOT NULL
);
CREATE INDEX ON bench.wf_timers_raw (fire_at) WHERE status = 'pending';
CREATE INDEX ON bench.wf_timers_raw (record_id) WHERE status = 'pending';
CREATE INDEX ON bench.wf_timers_raw (task_id) WHERE status = 'pending';

CREATE TABLE bench.wf_events_raw (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    record_id   bigint,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    app         text
);
CREATE INDEX ON bench.wf_events_raw (txid, id);

-- The plain baseline of a workflow submit (bench/pgbench/plain_workflow.sql): the same columns,
-- defaults and indexes, and no foreign keys, CHECKs or triggers; lowcode's own keys and checks
-- are its cost, not the work's.
CREATE TABLE bench.records_plain (LIKE bench.records_raw INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.history_plain (LIKE bench.history_raw INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.tasks_plain (LIKE bench.tasks_raw INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.wf_timers_plain (LIKE bench.wf_timers_raw INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE bench.wf_events_plain (LIKE bench.wf_events_raw INCLUDING DEFAULTS INCLUDING INDEXES);

-- App insp's forms and versions (same ids), and the 1,000 host records of bench.hosts (same
-- ids: scenario 3's baseline tasks belong to them as lowcode's tasks belong to the originals).
INSERT INTO bench.form_versions_raw (id, app, form, version)
SELECT v.id, v.app, v.form, v.version FROM lowcode.form_versions v WHERE v.app = 'insp';
INSERT INTO bench.forms_raw (app, name, current_version_id)
SELECT f.app, f.name, f.current_version_id FROM lowcode.forms f WHERE f.app = 'insp';
INSERT INTO bench.records_raw (id, app, form, form_version_id, data, state, revision, created_at, created_by,
                               updated_at, updated_by, owner)
SELECT r.id, r.app, r.form, r.form_version_id, r.data, r.state, r.revision, r.created_at, r.created_by,
       r.updated_at, r.updated_by, r.owner
  FROM lowcode.records r JOIN bench.hosts h ON h.id = r.id ORDER BY r.id;
SELECT setval(pg_get_serial_sequence('bench.records_raw', 'id'), (SELECT max(id) FROM bench.records_raw));

-- Scenario 4: plain due rows; firing = mark fired + write an outbox row, in set-based batches.
CREATE TABLE bench.timers_raw (id bigserial PRIMARY KEY, record_id bigint NOT NULL, event text NOT NULL,
                               fire_at timestamptz NOT NULL, status text NOT NULL DEFAULT 'pending',
                               fired_at timestamptz);
CREATE INDEX ON bench.timers_raw (fire_at) WHERE status = 'pending';
CREATE TABLE bench.outbox_raw (id bigserial PRIMARY KEY, topic text NOT NULL, record_id bigint,
                               payload jsonb NOT NULL);

-- Scenario 5: a plain event log read with one cursor per consumer.
CREATE TABLE bench.events_raw (id bigserial PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL);
CREATE TABLE bench.cursors_raw (consumer text PRIMARY KEY, pos bigint NOT NULL DEFAULT 0);
