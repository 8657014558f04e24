-- bench/s7_invalidation.sql — scenario 7: how soon a session enforces a version another
-- session just published, and what the freshness check costs. scripts/bench.sh writes the
-- repetitions (psql variables rep, k, schema, doc) after this prologue.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
-- Version k of form bench.inv: the inspection fault report, plus "n" that must equal k.
CREATE FUNCTION bench.inv_schema(k int) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_set(jsonb_set(f.schema, '{properties,n}', jsonb_build_object('const', k)),
                     '{required}', (f.schema -> 'required') || '["n"]')
      FROM bench.forms f WHERE f.form = 'small'
$$;
SELECT lowcode.define_form('bench', 'inv', bench.inv_schema(0));

-- The per-row cost of finding the current version (freshness check + version lookup):
-- is_valid(app, form, doc) against conforms_to_version(version id, doc), which skips both, over
-- the same 100k stored documents, alternating 5 times per repetition.
CREATE TABLE bench.inv_rows (doc jsonb NOT NULL);
INSERT INTO bench.inv_rows SELECT bench.small_doc(i) FROM generate_series(1, 100000) i;
SELECT count(*) FROM bench.inv_rows;
CREATE FUNCTION bench.s7_rowcost(rep int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    vid bigint := (SELECT current_version_id FROM lowcode.forms WHERE app = 'bench' AND name = 'small');
    a record; b record;
BEGIN
    SET LOCAL max_parallel_workers_per_gather = 0;
    FOR i IN 1..5 LOOP
        a := bench.time_query('SELECT count(*) FILTER (WHERE lowcode.is_valid(''bench'', ''small'', doc)) FROM bench.inv_rows');
        b := bench.time_query(format('SELECT count(*) FILTER (WHERE lowcode.conforms_to_version(%s, doc)) FROM bench.inv_rows', vid));
        IF a.result <> b.result THEN
            RAISE EXCEPTION 'bench: is_valid counted %, conforms_to_version %', a.result, b.result;
        END IF;
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
            ('7', 'per row, 100k rows', 'lowcode is_valid', rep, 'us_per_row', a.ms / 100),
            ('7', 'per row, 100k rows', 'lowcode conforms_to_version', rep, 'us_per_row', b.ms / 100),
            ('7', 'per row, 100k rows', 'is_valid over conforms_to_version', rep, 'overhead_pct', (a.ms / b.ms - 1) * 100);
    END LOOP;
END $$;
