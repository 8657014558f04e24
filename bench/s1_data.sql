-- bench/s1_data.sql — scenario 1's stored documents and the queries that scan them.
-- Documents stay inline and uncompressed (toast_tuple_target 8160, storage external), so every
-- contender reads the same bytes and none pays for decompression; the tables are unlogged
-- (loading them writes no WAL). 1M rows cycle through 100k (small) / 20k (large) distinct
-- documents from bench/forms.py, 1 in 100 of which is invalid.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- (Copying a compressed value keeps it compressed: the sources are uncompressed too.)
CREATE UNLOGGED TABLE bench.small_src (id int PRIMARY KEY, doc jsonb NOT NULL) WITH (toast_tuple_target = 8160);
CREATE UNLOGGED TABLE bench.large_src (id int PRIMARY KEY, doc jsonb NOT NULL) WITH (toast_tuple_target = 8160);
CREATE UNLOGGED TABLE bench.small (id int NOT NULL, doc jsonb NOT NULL) WITH (toast_tuple_target = 8160);
CREATE UNLOGGED TABLE bench.large (id int NOT NULL, doc jsonb NOT NULL) WITH (toast_tuple_target = 8160);
ALTER TABLE bench.small_src ALTER COLUMN doc SET STORAGE EXTERNAL;
ALTER TABLE bench.large_src ALTER COLUMN doc SET STORAGE EXTERNAL;
ALTER TABLE bench.small ALTER COLUMN doc SET STORAGE EXTERNAL;
ALTER TABLE bench.large ALTER COLUMN doc SET STORAGE EXTERNAL;
INSERT INTO bench.small_src SELECT i, bench.small_doc(i) FROM generate_series(1, 100000) i;
INSERT INTO bench.large_src SELECT i, bench.large_doc(i) FROM generate_series(1, 20000) i;
INSERT INTO bench.small SELECT g, s.doc FROM generate_series(0, 999999) g JOIN bench.small_src s ON s.id = g % 100000 + 1;
INSERT INTO bench.large SELECT g, s.doc FROM generate_series(0, 999999) g JOIN bench.large_src s ON s.id = g % 20000 + 1;
DROP TABLE bench.small_src, bench.large_src;
-- First read sets the hint bits, so no measured scan pays for it. Every document must be
-- stored inline and uncompressed.
SELECT count(*) FROM bench.small;
SELECT count(*) FROM bench.large;
DO $$
BEGIN
    IF EXISTS (SELECT FROM bench.large WHERE id < 20000 AND pg_column_compression(doc) IS NOT NULL)
       OR EXISTS (SELECT FROM bench.small WHERE id < 20000 AND pg_column_compression(doc) IS NOT NULL) THEN
        RAISE EXCEPTION 'bench: documents were stored compressed';
    END IF;
END $$;

-- The measurements of one repetition, in order: for each size, the contenders one after the
-- other (interleaved). Every query has the same shape:
--   SELECT count(*) FILTER (WHERE <check>) FROM (SELECT doc FROM bench.<form> LIMIT <n>) s
CREATE TABLE bench.s1_plan (ord serial, form text, n int, variant text, sql text);
INSERT INTO bench.s1_plan (form, n, variant, sql)
SELECT f.form, m.n, m.variant,
       format('SELECT count(*) FILTER (WHERE %s) FROM (SELECT doc FROM bench.%I LIMIT %s) s',
              CASE m.variant
                  WHEN 'scan only' THEN 'doc IS NOT NULL'
                  WHEN 'baseline A' THEN f.native
                  WHEN 'lowcode is_valid' THEN format('lowcode.is_valid(%L, %L, doc)', 'bench', f.form)
                  WHEN 'lowcode conforms' THEN format('lowcode.conforms(%L, %L, doc)', 'bench', f.form)
                  WHEN 'lowcode conforms_to_version' THEN format('lowcode.conforms_to_version(%s, doc)', v.current_version_id)
                  WHEN 'baseline B' THEN format('lowcode.naive_is_valid(%L::jsonb, doc)', f.schema)
              END, f.form, m.n)
  FROM bench.forms f
  JOIN lowcode.forms v ON v.app = 'bench' AND v.name = f.form
  JOIN (VALUES
        ('small', 5000, 1, 'baseline B'), ('small', 5000, 2, 'lowcode is_valid'),
        ('small', 200000, 1, 'scan only'), ('small', 200000, 2, 'baseline A'),
        ('small', 200000, 3, 'lowcode is_valid'), ('small', 200000, 4, 'lowcode conforms'),
        ('small', 1000000, 1, 'scan only'), ('small', 1000000, 2, 'baseline A'),
        ('small', 1000000, 3, 'lowcode is_valid'), ('small', 1000000, 4, 'lowcode conforms_to_version'),
        ('large', 500, 1, 'baseline B'), ('large', 500, 2, 'lowcode is_valid'),
        ('large', 10000, 1, 'baseline A'), ('large', 10000, 2, 'lowcode is_valid'),
        ('large', 200000, 1, 'scan only'), ('large', 200000, 2, 'lowcode is_valid'),
        ('large', 1000000, 1, 'lowcode is_valid')
       ) AS m(form, n, o, variant) ON m.form = f.form
 ORDER BY f.form DESC, m.n, m.o;

CREATE FUNCTION bench.s1_rep(rep int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p bench.s1_plan;
    r record;
BEGIN
    FOR p IN SELECT * FROM bench.s1_plan ORDER BY ord LOOP
        r := bench.time_query(p.sql);
        INSERT INTO bench.results (scenario, item, variant, rep, metric, value)
        VALUES ('1', p.form || ' ' || p.n, p.variant, rep, 'us_per_row', r.ms * 1000 / p.n),
               ('1', p.form || ' ' || p.n, p.variant, rep, 'valid_rows', r.result);
    END LOOP;
END $$;
