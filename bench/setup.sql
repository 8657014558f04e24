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
SELECT lowcode.define_workflow('insp', 'fault_wf', '{
  "states": {"open": {"initial": true}, "resolved": {"final": true}},
  "transitions": [{"name": "resolve", "from": "open", "to": "resolved", "when": {"required": ["resolution"]}}],
  "rules": [
    {"name": "route_severe", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 minutes"}},
              {"emit": {"topic": "fault.severe"}}]},
    {"name": "fixed", "on": "task_completed:fix", "outcome": "fixed",
     "then": [{"set": {"resolution": "fixed"}}, {"transition": "resolved"}]},
    {"name": "overdue", "on": "deadline_passed:fix", "then": [{"emit": {"topic": "fault.overdue"}}]}
  ]}');
SELECT lowcode.publish('insp');

-- 1,000 records (severity 2: no rule fires) that the tasks and timers of scenarios 3 and 4 belong to.
SELECT count(lowcode.submit('insp', 'fault_wf', jsonb_set(bench.small_valid_doc(i), '{severity}', '2')))
  FROM generate_series(1, 1000) i;
CREATE TABLE bench.hosts AS
    SELECT id FROM lowcode.records WHERE app = 'insp' AND form = 'fault_wf' ORDER BY id;

-- ------------------------------------------------------------------ physical baselines
-- Scenario 2: the limit, a plain table.
CREATE TABLE bench.raw (id bigserial PRIMARY KEY, data jsonb NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now());

-- Scenario 3: a plain claim queue with the same claim index as lowcode.tasks.
CREATE TABLE bench.tasks_raw (id bigserial PRIMARY KEY, record_id bigint NOT NULL, pool text NOT NULL,
                              status text NOT NULL DEFAULT 'open', claimed_by text, claimed_at timestamptz);
CREATE INDEX ON bench.tasks_raw (pool, id) WHERE status = 'open';

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
