#!/usr/bin/env bash
# versions_race — one session publishes a new version of a form every ~50 ms, alternating
# "v" minimum 0 and minimum 10, while 4 pgbench clients submit v = 0..20 for a few
# seconds. Submits refused with 23514 are expected (counted, not errors).
# Invariant: every record conforms to the version it names —
#   SELECT count(*) FROM lowcode.records r WHERE NOT lowcode.conforms_to_version(r.form_version_id, r.data) = 0
# and the race really happened: records name several versions of both kinds, some
# submits were refused, and records with v < 10 exist.
# shellcheck source=tests/concurrency/lib.sh
source "$(dirname "$0")/lib.sh"

SECS=4
CLIENTS=4

schema() { # MINIMUM
    echo "{\"type\": \"object\", \"required\": [\"v\"], \"properties\": {\"v\": {\"type\": \"integer\", \"minimum\": $1, \"maximum\": 20}}}"
}

sql >/dev/null <<SQL
SELECT lowcode.create_app('ver');
SELECT lowcode.define_form('ver', 'f', '$(schema 0)');
CREATE TABLE refused (v int NOT NULL, sqlstate text NOT NULL);
-- pgbench stops a client at its first error, so a refused submit is caught and counted.
CREATE FUNCTION try_submit(v int) RETURNS bigint LANGUAGE plpgsql AS \$\$
DECLARE st text;
BEGIN
    RETURN lowcode.submit('ver', 'f', jsonb_build_object('v', v));
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
    INSERT INTO refused VALUES (v, st);
    RETURN NULL;
END \$\$;
SQL

cat >"$CONC_WORK/submit.pgbench" <<'PGB'
\set v random(0, 20)
SELECT try_submit(:v);
PGB
chown "$PG_OS_USER:" "$CONC_WORK/submit.pgbench"

session definer -c "
    DO \$\$
    DECLARE deadline timestamptz := clock_timestamp() + interval '$SECS s';
    BEGIN
        WHILE clock_timestamp() < deadline LOOP
            PERFORM lowcode.define_form('ver', 'f',
                CASE WHEN (SELECT max(version) FROM lowcode.form_versions) % 2 = 1
                     THEN '$(schema 10)' ELSE '$(schema 0)' END::jsonb);
            COMMIT;
            PERFORM pg_sleep(0.05);
        END LOOP;
    END \$\$"
pgbench_bg submitters -n -c "$CLIENTS" -j 2 -T "$SECS" -f "$CONC_WORK/submit.pgbench"
wait_sessions

versions="$(val "SELECT count(*) FROM lowcode.form_versions")"
records="$(val "SELECT count(*) FROM lowcode.records")"
refused="$(val "SELECT count(*) FROM refused")"
[ "$versions" -ge 10 ] || fail "only $versions versions published: the definer did not keep up"
[ "$records" -ge 100 ] || fail "only $records records submitted: the submitters did not run"

bad="$(val "SELECT string_agg(format('record %s (v=%s) names version %s', r.id, r.data -> 'v', v.version), '; ' ORDER BY r.id)
              FROM (SELECT * FROM lowcode.records r
                     WHERE NOT lowcode.conforms_to_version(r.form_version_id, r.data) ORDER BY id LIMIT 10) r
              JOIN lowcode.form_versions v ON v.id = r.form_version_id")"
[ -z "$bad" ] || fail "records that do not conform to the version they name: $bad"
expect "records not conforming to their version" 0 \
    "SELECT count(*) FROM lowcode.records r WHERE NOT lowcode.conforms_to_version(r.form_version_id, r.data)"
expect "refusals other than 23514" 0 "SELECT count(*) FROM refused WHERE sqlstate <> '23514'"
# The race was real: both kinds of versions took submissions, and minimum 10 refused some.
strict="$(val "SELECT count(DISTINCT form_version_id) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
                WHERE (v.schema #>> '{properties,v,minimum}')::int = 10")"
lax="$(val "SELECT count(DISTINCT form_version_id) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
             WHERE (v.schema #>> '{properties,v,minimum}')::int = 0")"
{ [ "$strict" -ge 2 ] && [ "$lax" -ge 2 ]; } ||
    fail "records name only $strict strict and $lax lax versions: the definer and the submitters did not overlap"
[ "$refused" -gt 0 ] || fail "no submit was refused: the minimum-10 versions never applied"
expect "records with v < 10 naming a minimum-10 version" 0 "
    SELECT count(*) FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id
     WHERE (r.data ->> 'v')::int < 10 AND (v.schema #>> '{properties,v,minimum}')::int = 10"
echo "$records records and $refused refusals (23514) while $versions versions were published;" \
    "every record conforms to the version it names ($lax lax and $strict strict versions took records);" \
    "pgbench: $(grep -E '^tps' "$CONC_WORK/submitters.log" | head -n 1)"
