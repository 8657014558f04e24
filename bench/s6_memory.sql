-- bench/s6_memory.sql — scenario 6: a backend's memory after compiling validators for 1,000
-- distinct forms, and when the validator cache (lowcode.validator_cache_size, an LRU) is
-- smaller than that. Each measurement runs in a fresh backend (scripts/bench.sh).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- 1,000 forms: the inspection fault report, each with its own constant (distinct schemas,
-- distinct validators; the same document is valid for all of them).
SELECT lowcode.create_app('mem', 'make bench: validator memory');
SELECT count(lowcode.define_form('mem', format('f%s', lpad(g::text, 4, '0')),
                                 jsonb_set(f.schema, '{properties,form_no}', jsonb_build_object('const', g))))
  FROM bench.forms f, generate_series(1, 1000) g WHERE f.form = 'small';

-- Memory of this backend: VmRSS (resident), RssAnon (private heap) and the transaction's
-- memory context (released at commit).
CREATE FUNCTION bench.s6_record(rep int, item text, step text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO bench.results (scenario, item, variant, rep, metric, value) VALUES
        ('6', item, step, rep, 'VmRSS_kB', bench.rss_kb('VmRSS')),
        ('6', item, step, rep, 'RssAnon_kB', bench.rss_kb('RssAnon')),
        ('6', item, step, rep, 'TopTransactionContext_kB',
            (SELECT total_bytes / 1024 FROM pg_backend_memory_contexts WHERE name = 'TopTransactionContext')),
        ('6', item, step, rep, 'validators', (lowcode.cache_stats() ->> 'validators')::int);
$$;

-- Step 0 (in a fresh backend): validate against form 1: the library and one validator loaded.
CREATE FUNCTION bench.s6_baseline(rep int, item text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lowcode.is_valid('mem', 'f0001', bench.small_valid_doc(1));
    PERFORM bench.s6_record(rep, item, 'after 1 form (baseline)');
END $$;

-- Pass p: validate the same document against each of the 1,000 forms.
CREATE FUNCTION bench.s6_pass(rep int, item text, p int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb := bench.small_valid_doc(1);
    ok bigint;
BEGIN
    SELECT count(*) FILTER (WHERE lowcode.is_valid('mem', f.name, doc)) INTO ok
      FROM lowcode.forms f WHERE f.app = 'mem';
    IF ok <> 1000 THEN
        RAISE EXCEPTION 'bench: % of 1000 forms accepted the document', ok;
    END IF;
    PERFORM bench.s6_record(rep, item, format('after 1,000 forms, pass %s', p));
END $$;
