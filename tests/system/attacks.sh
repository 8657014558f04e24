#!/usr/bin/env bash
# attacks — the attacks of the security issue that need a trusted install, the background
# worker or the server's environment (tests/pg_regress/sql/attacks.sql has the others). The
# cluster preloads lowcode (the worker runs every timer: nobody calls run_due_timers here) and
# is started with RUST_BACKTRACE=1 and RUST_LIB_BACKTRACE=1 in its environment.
#
# 1. The error contract holds in that environment: a validation error's DETAIL is JSON.
# 2. An app admin's call, fired by the worker: runs as the app admin, who stays what it was
#    (no admin of another app, no superuser, no secrets), and the worker acts as the owner.
# 3. A CREATEDB role makes a database whose search_path (ALTER DATABASE ... SET) puts its own
#    `text` domain, with a CHECK that runs ALTER ROLE ... SUPERUSER, ahead of pg_catalog: the
#    worker serves it without running any of it.
# 4. The database owner of a trusted install tries every command tag an event trigger sees
#    (read from PostgreSQL's own cmdtaglist.h, so a tag new in a later PostgreSQL fails this
#    test until it is tried or said not to apply) on each entry point, table, view,
#    sequence, index, trigger and policy of lowcode; then a superuser calls lowcode, and no
#    role has changed, and no lowcode function or table is different.
# Port 29530 (override with LOWCODE_ATTACKS_PORT).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

port="${LOWCODE_ATTACKS_PORT:-29530}"
sys_start atk "$port"
data="$(sys_data atk)"
log="$(sys_log atk)"

as() { # as ROLE DB [psql args]
    local role="$1" db="$2"
    shift 2
    lc_as_pg "$pg_bin/psql" -h "$(sys_sock atk)" -p "$(sys_port atk)" -U "$role" -d "$db" \
        -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}
expect_as() { # expect_as WHAT WANT ROLE DB SQL
    local what="$1" want="$2" role="$3" db="$4" query="$5" got
    got="$(as "$role" "$db" -c "$query")" || fail "$what: query failed as $role on $db: $query"
    [ "$got" = "$want" ] || fail "$what: expected '$want', got '$got' (as $role on $db: $query)"
}
wait_for() { # wait_for WHAT SECONDS DB SQL — until the query (as the superuser) returns t
    local what="$1" secs="$2" db="$3" query="$4" _
    for _ in $(seq 1 $((secs * 10))); do
        [ "$(sys_val atk "$db" "$query" 2>/dev/null || true)" = t ] && return 0
        sleep 0.1
    done
    fail "$what: not true after ${secs}s: $query"
}
no_superuser() { # no_superuser WHAT — the only superuser is the one initdb made
    sys_expect "$1: no new superuser" "$PG_OS_USER" atk postgres \
        "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolsuper"
}

step "a cluster with the worker and RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=1 in its environment"
{
    echo "shared_preload_libraries = 'lowcode'"
    echo "lowcode.launcher_naptime = '500ms'"
    echo "lowcode.worker_naptime = '200ms'"
} | lc_as_pg tee -a "$data/postgresql.conf" >/dev/null
lc_as_pg "$pg_bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null || fail "stop failed"
lc_as_pg env RUST_BACKTRACE=1 RUST_LIB_BACKTRACE=1 "$pg_bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 >/dev/null ||
    fail "start with RUST_BACKTRACE failed"
postmaster="$(head -n 1 "$data/postmaster.pid")"
tr '\0' '\n' <"/proc/$postmaster/environ" | grep -qx 'RUST_LIB_BACKTRACE=1' ||
    fail "the postmaster's environment lacks RUST_LIB_BACKTRACE=1"
sys_psql atk -d postgres >/dev/null <<'SQL'
CREATE ROLE dbo LOGIN NOSUPERUSER;
CREATE ROLE shopadm LOGIN;
CREATE ROLE clerk LOGIN;
CREATE ROLE maker LOGIN CREATEDB;
CREATE DATABASE app OWNER dbo;
GRANT CREATE ON DATABASE app TO shopadm;
SQL
as dbo app -c "CREATE EXTENSION lowcode" >/dev/null

step "1. the error contract holds with backtraces asked for"
as dbo app >/dev/null <<'SQL'
SELECT lowcode.create_app('shop', 'Canteen');
SELECT lowcode.create_app('payroll', 'Payroll');
SELECT lowcode.define_form('shop', 'order', '{"type": "object", "required": ["item"],
  "properties": {"item": {"type": "string"}, "qty": {"type": "integer", "maximum": 5}, "probe": {"type": "object"}}}');
SELECT lowcode.define_form('payroll', 'payment', '{"type": "object"}');
SELECT lowcode.grant('shop', 'shopadm', ARRAY['admin']);
SELECT lowcode.grant('shop', 'clerk', ARRAY['submit', 'read_own']);
CREATE FUNCTION public.detail_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END $$;
SQL
expect_as "the DETAIL of a refused submit is a JSON array and nothing else" "2" clerk app \
    "SELECT jsonb_array_length(public.detail_of(\$\$ SELECT lowcode.submit('shop', 'order', '{\"qty\": 9}') \$\$)::jsonb)"
expect_as "nor does a message carry a backtrace" "f" clerk app \
    "SELECT public.detail_of(\$\$ SELECT lowcode.submit('shop', 'order', '{\"qty\": 9}') \$\$) ~ '(backtrace|rust_begin_unwind|src/.*\\.rs)'"

step "2. an app admin's call, fired by the worker"
as shopadm app >/dev/null <<'SQL'
CREATE SCHEMA shopadm;
GRANT USAGE ON SCHEMA shopadm TO dbo;   -- lowcode (run as dbo) resolves the function when the workflow is published
CREATE FUNCTION shopadm.probe(r jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    res jsonb := jsonb_build_object('user', current_user::text, 'invoker', lowcode.invoker()::regrole::text,
                                    'is_admin', lowcode.is_admin());
BEGIN
    BEGIN
        PERFORM lowcode.grant('payroll', 'shopadm', ARRAY['admin']);
        res := res || '{"grant_payroll": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('grant_payroll', SQLSTATE);
    END;
    BEGIN
        PERFORM lowcode.define_workflow('payroll', 'payment', '{"states": {"s": {"initial": true}}}');
        res := res || '{"define_payroll": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('define_payroll', SQLSTATE);
    END;
    BEGIN
        EXECUTE 'ALTER ROLE shopadm SUPERUSER';
        res := res || '{"superuser": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('superuser', SQLSTATE);
    END;
    BEGIN
        PERFORM count(*) FROM lowcode.webhooks;
        res := res || '{"webhooks": "succeeded"}';
    EXCEPTION WHEN OTHERS THEN res := res || jsonb_build_object('webhooks', SQLSTATE);
    END;
    RETURN jsonb_build_object('probe', res);
END $$;
SELECT lowcode.define_workflow('shop', 'order', '{"states": {"new": {"initial": true}},
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "t", "after": "1 second"}}]},
            {"name": "probe", "on": "timer:t", "then": [{"call": "shopadm.probe"}]}]}');
SQL
as clerk app -c "SELECT lowcode.submit('shop', 'order', '{\"item\": \"tea\"}')" >/dev/null
wait_for "the worker fired the timer" 20 app \
    "SELECT bool_and(status = 'fired') FROM lowcode.timers WHERE event = 'timer:t'"
expect_as "the call ran as the app admin, with lowcode seeing the app admin" \
    '{"user": "shopadm", "invoker": "shopadm", "is_admin": false, "webhooks": "42501", "superuser": "42501", "grant_payroll": "42501", "define_payroll": "42501"}' \
    dbo app "SELECT data -> 'probe' FROM lowcode.records WHERE app = 'shop'"
expect_as "the worker acts as the owner" "dbo" dbo app "SELECT acting_as FROM lowcode.worker_state"
expect_as "shopadm is no admin of payroll" "{}" dbo app "SELECT lowcode.privileges_of('payroll', 'shopadm')"
no_superuser "after the app admin's call"

step "3. a CREATEDB role's database with a hostile search_path"
as maker postgres -c "CREATE DATABASE made" >/dev/null
as maker made >/dev/null <<'SQL'
CREATE SCHEMA evil;
CREATE FUNCTION evil.grab(t pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE maker SUPERUSER';
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN true;
END $$;
CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.grab(VALUE));
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE maker SUPERUSER';
    RETURN pg_catalog.now();
EXCEPTION WHEN OTHERS THEN
    RETURN pg_catalog.now();
END $$;
ALTER DATABASE made SET search_path = evil, pg_catalog, public;
SQL
as maker made >/dev/null <<'SQL'
CREATE EXTENSION lowcode;
SELECT lowcode.create_app('gym', 'Jump rope');
SELECT lowcode.define_form('gym', 'checkin', '{"type": "object"}');
SELECT lowcode.define_workflow('gym', 'checkin', '{"states": {"in": {"initial": true}, "late": {"final": true}},
  "rules": [{"name": "arm", "on": "created", "then": [{"timer": {"name": "t", "after": "1 second"}}]},
            {"name": "late", "on": "timer:t", "then": [{"transition": "late"}]}]}');
SELECT lowcode.submit('gym', 'checkin', '{}');
SQL
wait_for "the worker served the database" 20 made \
    "SELECT bool_and(state = 'late') FROM lowcode.records"
expect_as "the worker acts as maker there" "maker" maker made "SELECT acting_as FROM lowcode.worker_state"
no_superuser "after the worker served a hostile search_path"

step "4. the trusted install's owner tries every command tag on every object of lowcode"
header="$("$PG_CONFIG" --includedir-server)/tcop/cmdtaglist.h"
[ -f "$header" ] || fail "no $header"
mapfile -t tags < <(sed -nE 's/^PG_CMDTAG\([^,]+, "([^"]+)", true, .*/\1/p' "$header" | LC_ALL=C sort -u)
[ "${#tags[@]}" -gt 100 ] || fail "read only ${#tags[@]} event trigger tags from $header"
# Tags that cannot change lowcode, and why (each one is checked to be a tag PostgreSQL has).
declare -A not_applicable=(
    ["ALTER ACCESS METHOD"]="no such statement" ["CREATE ACCESS METHOD"]="superuser only"
    ["DROP ACCESS METHOD"]="superuser only" ["ALTER CAST"]="no such statement"
    ["ALTER CONSTRAINT"]="no such statement (ALTER TABLE ... ALTER CONSTRAINT is ALTER TABLE)"
    ["CREATE CONSTRAINT"]="CREATE CONSTRAINT TRIGGER is tried as CREATE TRIGGER's statement here"
    ["DROP CONSTRAINT"]="no such statement: ALTER TABLE ... DROP CONSTRAINT is tried as ALTER TABLE"
    ["ALTER DEFAULT PRIVILEGES"]="applies to objects the owner creates later, never to lowcode's (made by the superuser running the extension scripts)"
    ["ALTER FOREIGN DATA WRAPPER"]="superuser only" ["CREATE FOREIGN DATA WRAPPER"]="superuser only"
    ["DROP FOREIGN DATA WRAPPER"]="superuser only" ["ALTER LANGUAGE"]="no language is lowcode's"
    ["CREATE LANGUAGE"]="no language is lowcode's" ["DROP LANGUAGE"]="no language is lowcode's"
    ["ALTER LARGE OBJECT"]="lowcode has no large objects"
    ["ALTER PUBLICATION"]="a publication changes no lowcode object" ["CREATE PUBLICATION"]="a publication changes no lowcode object"
    ["DROP PUBLICATION"]="a publication changes no lowcode object"
    ["ALTER SERVER"]="no server is lowcode's" ["CREATE SERVER"]="no server is lowcode's" ["DROP SERVER"]="no server is lowcode's"
    ["ALTER SUBSCRIPTION"]="superuser only" ["CREATE SUBSCRIPTION"]="superuser only" ["DROP SUBSCRIPTION"]="superuser only"
    ["ALTER USER MAPPING"]="no server is lowcode's" ["CREATE USER MAPPING"]="no server is lowcode's"
    ["DROP USER MAPPING"]="no server is lowcode's"
    ["ALTER TEXT SEARCH PARSER"]="superuser only" ["CREATE TEXT SEARCH PARSER"]="superuser only"
    ["DROP TEXT SEARCH PARSER"]="superuser only" ["ALTER TEXT SEARCH TEMPLATE"]="superuser only"
    ["CREATE TEXT SEARCH TEMPLATE"]="superuser only" ["DROP TEXT SEARCH TEMPLATE"]="superuser only"
    ["CREATE EXTENSION"]="creates another extension's objects, none of lowcode's"
    ["DROP EXTENSION"]="DROP EXTENSION lowcode is the owner's right: it takes every app with it, and gives nothing"
    ["DROP OWNED"]="drops the owner's objects as DROP EXTENSION does, tried through the other DROP tags"
    ["CREATE ROUTINE"]="no such statement" ["REFRESH MATERIALIZED VIEW"]="lowcode has no materialized views"
    ["SECURITY LABEL"]="no label provider is loaded" ["CREATE TRANSFORM"]="lowcode's types are tables' row types; tried as CREATE CAST"
    ["DROP TRANSFORM"]="see CREATE TRANSFORM" ["ALTER TRANSFORM"]="no such statement"
    ["GRANT"]="tried below" ["REVOKE"]="tried below (a REVOKE only takes away: the owner's own business)"
    ["SELECT INTO"]="tried as CREATE TABLE AS" ["IMPORT FOREIGN SCHEMA"]="tried as CREATE FOREIGN TABLE"
    ["LOGIN"]="not a DDL command"
)
as dbo app >/dev/null <<'SQL'
SET client_min_messages = error;
CREATE FUNCTION public.grab_bool() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE dbo SUPERUSER'; RETURN true; EXCEPTION WHEN OTHERS THEN RETURN true; END $$;
CREATE FUNCTION public.grab_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE dbo SUPERUSER'; RETURN NEW; EXCEPTION WHEN OTHERS THEN RETURN NEW; END $$;
CREATE FUNCTION public.grab_imm(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN EXECUTE 'ALTER ROLE dbo SUPERUSER'; RETURN x; EXCEPTION WHEN OTHERS THEN RETURN x; END $$;
CREATE FUNCTION public.grab_text(r lowcode.records) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE dbo SUPERUSER'; RETURN ''; EXCEPTION WHEN OTHERS THEN RETURN ''; END $$;
CREATE TABLE public.attack (tag text, stmt text, outcome text);
CREATE TABLE public.before AS
    SELECT p.oid::regprocedure::text AS object, p.proowner::regrole::text AS owner, p.prosecdef::text AS secdef,
           coalesce(p.proconfig::text, '') AS config, md5(p.prosrc) AS src
      FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace
    UNION ALL
    SELECT c.oid::regclass::text, c.relowner::regrole::text, c.relrowsecurity::text || c.relforcerowsecurity::text,
           coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text,
           (SELECT string_agg(t.tgname::text || t.tgenabled::text, ',' ORDER BY t.tgname) FROM pg_trigger t WHERE t.tgrelid = c.oid)
      FROM pg_class c WHERE c.relnamespace = 'lowcode'::regnamespace;
-- Every statement an owner could try, by command tag, on each object of lowcode it names.
INSERT INTO public.attack (tag, stmt)
WITH f AS (SELECT p.oid::regprocedure AS fn, p.proname FROM pg_proc p
            WHERE p.pronamespace = 'lowcode'::regnamespace AND (p.prosecdef OR p.proname IN ('is_admin', 'may', 'invoker', 'records_before'))),
     t AS (SELECT c.oid::regclass AS rel, c.relkind, c.relname FROM pg_class c
            WHERE c.relnamespace = 'lowcode'::regnamespace AND c.relkind IN ('r', 'v', 'S', 'i')),
     tr AS (SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             WHERE c.relnamespace = 'lowcode'::regnamespace AND NOT t.tgisinternal),
     po AS (SELECT p.polname, p.polrelid::regclass AS rel FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
             WHERE c.relnamespace = 'lowcode'::regnamespace)
SELECT k, format('%s %s %s', k, fn, v)
  FROM f, unnest(ARRAY['ALTER FUNCTION', 'ALTER ROUTINE', 'ALTER PROCEDURE']) k,
       unnest(ARRAY['SECURITY INVOKER', 'SET search_path = public, pg_catalog', 'RESET ALL', 'OWNER TO clerk',
                    'RENAME TO ' || proname || '_old', 'SET SCHEMA public', 'DEPENDS ON EXTENSION plpgsql',
                    'NO DEPENDS ON EXTENSION lowcode', 'CALLED ON NULL INPUT', 'LEAKPROOF', 'VOLATILE', 'COST 1']) v
UNION ALL SELECT 'CREATE FUNCTION', pg_get_functiondef(fn) FROM f
UNION ALL SELECT 'CREATE FUNCTION', 'CREATE FUNCTION lowcode.may(varchar, varchar) RETURNS boolean LANGUAGE sql AS ''SELECT public.grab_bool()'''
UNION ALL SELECT 'CREATE PROCEDURE', 'CREATE PROCEDURE lowcode.evil() LANGUAGE sql AS ''SELECT public.grab_bool()'''
UNION ALL SELECT 'CREATE AGGREGATE', 'CREATE AGGREGATE lowcode.evil(int) (SFUNC = int4pl, STYPE = int)'
UNION ALL SELECT 'ALTER AGGREGATE', 'ALTER AGGREGATE lowcode.evil(int) OWNER TO dbo'
UNION ALL SELECT 'DROP AGGREGATE', 'DROP AGGREGATE lowcode.evil(int)'
UNION ALL SELECT k, format('%s %s', k, fn) FROM f, unnest(ARRAY['DROP FUNCTION', 'DROP ROUTINE', 'DROP PROCEDURE']) k
UNION ALL SELECT 'ALTER EXTENSION', format('ALTER EXTENSION lowcode DROP FUNCTION %s', fn) FROM f
UNION ALL SELECT 'ALTER EXTENSION', format('ALTER EXTENSION lowcode DROP TABLE %s', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'COMMENT', format('COMMENT ON FUNCTION %s IS ''mine''', fn) FROM f
UNION ALL SELECT 'ALTER TABLE', format('ALTER TABLE %s %s', rel, v) FROM t,
       unnest(ARRAY['DISABLE TRIGGER ALL', 'DISABLE TRIGGER USER', 'NO FORCE ROW LEVEL SECURITY', 'DISABLE ROW LEVEL SECURITY',
                    'OWNER TO clerk', 'RENAME TO ' || relname || '_old', 'SET SCHEMA public', 'ADD COLUMN evil boolean DEFAULT public.grab_bool()',
                    'ADD CONSTRAINT evil CHECK (public.grab_bool())', 'SET (fillfactor = 50)', 'REPLICA IDENTITY FULL']) v
 WHERE relkind = 'r'
UNION ALL SELECT 'ALTER VIEW', format('ALTER VIEW %s %s', rel, v) FROM t,
       unnest(ARRAY['OWNER TO clerk', 'RENAME TO ' || relname || '_old', 'SET SCHEMA public', 'SET (security_barrier = false)']) v
 WHERE relkind = 'v'
UNION ALL SELECT 'CREATE VIEW', format('CREATE OR REPLACE VIEW %s AS %s', rel, pg_get_viewdef(rel)) FROM t WHERE relkind = 'v'
UNION ALL SELECT 'CREATE VIEW', 'CREATE VIEW lowcode.evil AS SELECT public.grab_bool()'
UNION ALL SELECT 'ALTER SEQUENCE', format('ALTER SEQUENCE %s %s', rel, v) FROM t,
       unnest(ARRAY['OWNER TO clerk', 'RENAME TO ' || relname || '_old', 'SET SCHEMA public', 'RESTART']) v WHERE relkind = 'S'
UNION ALL SELECT 'ALTER INDEX', format('ALTER INDEX %s RENAME TO %s', rel, relname || '_old') FROM t WHERE relkind = 'i'
UNION ALL SELECT 'DROP INDEX', format('DROP INDEX %s', rel) FROM t WHERE relkind = 'i'
UNION ALL SELECT 'DROP TABLE', format('DROP TABLE %s', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'DROP VIEW', format('DROP VIEW %s', rel) FROM t WHERE relkind = 'v'
UNION ALL SELECT 'DROP SEQUENCE', format('DROP SEQUENCE %s', rel) FROM t WHERE relkind = 'S'
UNION ALL SELECT 'CREATE TRIGGER', format('CREATE TRIGGER evil BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION public.grab_trigger()', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'CREATE TRIGGER', format('CREATE CONSTRAINT TRIGGER evil AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.grab_trigger()', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'CREATE RULE', format('CREATE RULE evil AS ON INSERT TO %s DO ALSO SELECT public.grab_bool()', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'CREATE POLICY', format('CREATE POLICY evil ON %s USING (public.grab_bool())', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'CREATE INDEX', format('CREATE INDEX evil ON %s ((public.grab_imm(1)))', rel) FROM t WHERE relkind = 'r'
UNION ALL SELECT 'CREATE STATISTICS', 'CREATE STATISTICS lowcode.evil ON app, form FROM lowcode.records'
UNION ALL SELECT 'ALTER STATISTICS', 'ALTER STATISTICS lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP STATISTICS', 'DROP STATISTICS lowcode.evil'
UNION ALL SELECT 'ALTER TABLE', format('ALTER TABLE %s DROP CONSTRAINT %I', k.conrelid::regclass, k.conname)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = 'lowcode'::regnamespace
UNION ALL SELECT 'ALTER TRIGGER', format('ALTER TRIGGER %I ON %s RENAME TO evil', tgname, rel) FROM tr
UNION ALL SELECT 'DROP TRIGGER', format('DROP TRIGGER %I ON %s', tgname, rel) FROM tr
UNION ALL SELECT 'ALTER POLICY', format('ALTER POLICY %I ON %s USING (public.grab_bool())', polname, rel) FROM po
UNION ALL SELECT 'DROP POLICY', format('DROP POLICY %I ON %s', polname, rel) FROM po
UNION ALL SELECT 'ALTER RULE', 'ALTER RULE evil ON lowcode.records RENAME TO evil2'
UNION ALL SELECT 'DROP RULE', 'DROP RULE evil ON lowcode.records'
UNION ALL SELECT 'ALTER SCHEMA', 'ALTER SCHEMA lowcode RENAME TO lowcode_old'
UNION ALL SELECT 'ALTER SCHEMA', 'ALTER SCHEMA lowcode OWNER TO clerk'
UNION ALL SELECT 'CREATE SCHEMA', 'CREATE SCHEMA lowcode'
UNION ALL SELECT 'DROP SCHEMA', 'DROP SCHEMA lowcode'
UNION ALL SELECT 'CREATE TABLE', 'CREATE TABLE lowcode.evil (x int)'
UNION ALL SELECT 'CREATE TABLE AS', 'CREATE TABLE lowcode.evil AS SELECT 1'
UNION ALL SELECT 'CREATE SEQUENCE', 'CREATE SEQUENCE lowcode.evil'
UNION ALL SELECT 'CREATE MATERIALIZED VIEW', 'CREATE MATERIALIZED VIEW lowcode.evil AS SELECT 1'
UNION ALL SELECT 'ALTER MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP MATERIALIZED VIEW', 'DROP MATERIALIZED VIEW lowcode.evil'
UNION ALL SELECT 'CREATE FOREIGN TABLE', 'CREATE FOREIGN TABLE lowcode.evil (x int) SERVER nosuch'
UNION ALL SELECT 'ALTER FOREIGN TABLE', 'ALTER FOREIGN TABLE lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP FOREIGN TABLE', 'DROP FOREIGN TABLE lowcode.evil'
UNION ALL SELECT 'CREATE TYPE', 'CREATE TYPE lowcode.evil AS (x int)'
UNION ALL SELECT 'ALTER TYPE', 'ALTER TYPE lowcode.records OWNER TO clerk'
UNION ALL SELECT 'ALTER TYPE', 'ALTER TYPE lowcode.records RENAME ATTRIBUTE data TO evil'
UNION ALL SELECT 'DROP TYPE', 'DROP TYPE lowcode.records'
UNION ALL SELECT 'CREATE DOMAIN', 'CREATE DOMAIN lowcode.text AS pg_catalog.text CHECK (public.grab_bool())'
UNION ALL SELECT 'ALTER DOMAIN', 'ALTER DOMAIN lowcode.text OWNER TO clerk'
UNION ALL SELECT 'DROP DOMAIN', 'DROP DOMAIN lowcode.text'
UNION ALL SELECT 'CREATE CAST', 'CREATE CAST (lowcode.records AS pg_catalog.text) WITH FUNCTION public.grab_text(lowcode.records)'
UNION ALL SELECT 'DROP CAST', 'DROP CAST (lowcode.records AS pg_catalog.text)'
UNION ALL SELECT 'CREATE OPERATOR', 'CREATE OPERATOR lowcode.= (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq)'
UNION ALL SELECT 'ALTER OPERATOR', 'ALTER OPERATOR lowcode.= (text, text) OWNER TO clerk'
UNION ALL SELECT 'DROP OPERATOR', 'DROP OPERATOR lowcode.= (text, text)'
UNION ALL SELECT 'CREATE OPERATOR CLASS', 'CREATE OPERATOR CLASS lowcode.evil FOR TYPE int USING btree AS OPERATOR 1 <'
UNION ALL SELECT 'ALTER OPERATOR CLASS', 'ALTER OPERATOR CLASS lowcode.evil USING btree OWNER TO clerk'
UNION ALL SELECT 'DROP OPERATOR CLASS', 'DROP OPERATOR CLASS lowcode.evil USING btree'
UNION ALL SELECT 'CREATE OPERATOR FAMILY', 'CREATE OPERATOR FAMILY lowcode.evil USING btree'
UNION ALL SELECT 'ALTER OPERATOR FAMILY', 'ALTER OPERATOR FAMILY lowcode.evil USING btree OWNER TO clerk'
UNION ALL SELECT 'DROP OPERATOR FAMILY', 'DROP OPERATOR FAMILY lowcode.evil USING btree'
UNION ALL SELECT 'CREATE COLLATION', 'CREATE COLLATION lowcode.evil FROM "C"'
UNION ALL SELECT 'ALTER COLLATION', 'ALTER COLLATION lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP COLLATION', 'DROP COLLATION lowcode.evil'
UNION ALL SELECT 'CREATE CONVERSION', 'CREATE CONVERSION lowcode.evil FOR ''UTF8'' TO ''LATIN1'' FROM utf8_to_iso8859_1'
UNION ALL SELECT 'ALTER CONVERSION', 'ALTER CONVERSION lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP CONVERSION', 'DROP CONVERSION lowcode.evil'
UNION ALL SELECT 'CREATE TEXT SEARCH CONFIGURATION', 'CREATE TEXT SEARCH CONFIGURATION lowcode.evil (COPY = simple)'
UNION ALL SELECT 'ALTER TEXT SEARCH CONFIGURATION', 'ALTER TEXT SEARCH CONFIGURATION lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP TEXT SEARCH CONFIGURATION', 'DROP TEXT SEARCH CONFIGURATION lowcode.evil'
UNION ALL SELECT 'CREATE TEXT SEARCH DICTIONARY', 'CREATE TEXT SEARCH DICTIONARY lowcode.evil (TEMPLATE = simple)'
UNION ALL SELECT 'ALTER TEXT SEARCH DICTIONARY', 'ALTER TEXT SEARCH DICTIONARY lowcode.evil OWNER TO clerk'
UNION ALL SELECT 'DROP TEXT SEARCH DICTIONARY', 'DROP TEXT SEARCH DICTIONARY lowcode.evil'
-- (A GRANT on what the superuser owns grants nothing, with a warning: only dbo's own objects.)
UNION ALL SELECT 'GRANT', format('GRANT EXECUTE ON FUNCTION %s TO clerk', fn) FROM f JOIN pg_proc p ON p.oid = fn WHERE p.proowner = 'dbo'::regrole
UNION ALL SELECT 'GRANT', 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lowcode TO clerk'
UNION ALL SELECT 'GRANT', 'GRANT ALL ON ALL TABLES IN SCHEMA lowcode TO clerk'
UNION ALL SELECT 'GRANT', format('GRANT ALL ON %s TO clerk', rel) FROM t WHERE relkind IN ('r', 'v', 'S') AND rel <> 'lowcode.call_grants'::regclass
UNION ALL SELECT 'GRANT', 'GRANT CREATE ON SCHEMA lowcode TO clerk'
UNION ALL SELECT 'REVOKE', format('REVOKE ALL ON %s FROM clerk', rel) FROM t WHERE relkind = 'r';
-- Each in a subtransaction of its own, as dbo.
DO $try$
DECLARE
    a record;
    state text;
BEGIN
    FOR a IN SELECT ctid, stmt FROM public.attack LOOP
        BEGIN
            EXECUTE a.stmt;
            state := 'succeeded';
        EXCEPTION WHEN OTHERS THEN
            state := SQLSTATE;
        END;
        UPDATE public.attack SET outcome = state WHERE ctid = a.ctid;
    END LOOP;
END
$try$;
SQL
# Every tag PostgreSQL lets an event trigger see was tried, or is said not to apply.
# (Sets, not `printf ... | grep -q`: under pipefail, grep -q leaving early can SIGPIPE printf
# and turn a match into a miss.)
declare -A was_tried=() is_tag=()
while IFS= read -r tag; do was_tried[$tag]=1; done < <(as dbo app -c "SELECT DISTINCT tag FROM public.attack ORDER BY 1")
for tag in "${tags[@]}"; do is_tag[$tag]=1; done
missing=()
for tag in "${tags[@]}"; do
    [ -n "${was_tried[$tag]:-}" ] && continue
    [ -n "${not_applicable[$tag]:-}" ] || missing+=("$tag")
done
[ "${#missing[@]}" -eq 0 ] ||
    fail "command tags of $header neither tried nor said not to apply: $(printf '"%s" ' "${missing[@]}")"
for tag in "${!not_applicable[@]}"; do
    [ -n "${is_tag[$tag]:-}" ] || [ "$tag" = "LOGIN" ] ||
        fail "\"$tag\" is said not to apply but is no event trigger tag of this PostgreSQL"
done
expect_as "attacks tried" "t" dbo app "SELECT count(*) > 500 FROM public.attack"
echo "    $(as dbo app -c "SELECT (SELECT count(*) FROM public.attack) || ' statements of '
                             || (SELECT count(DISTINCT tag) FROM public.attack) || ' command tags; SQLSTATEs: '
                             || (SELECT string_agg(outcome || ' x' || n, ', ' ORDER BY n DESC)
                                   FROM (SELECT outcome, count(*) AS n FROM public.attack GROUP BY 1) x)")"
# What succeeded: only a REVOKE (which takes away) may.
expect_as "no attack succeeded but REVOKE" "" dbo app \
    "SELECT string_agg(tag || ': ' || stmt, E'\n') FROM public.attack WHERE outcome = 'succeeded' AND tag <> 'REVOKE'"
expect_as "lowcode's guard refused each one PostgreSQL itself allowed" "t" dbo app \
    "SELECT count(*) FILTER (WHERE outcome = '42501') > 400 FROM public.attack"
# A superuser now calls lowcode, as the README's pg_cron line and the worker do.
sys_psql atk -d app >/dev/null <<'SQL'
SELECT lowcode.run_due_timers();
SELECT lowcode.submit('shop', 'order', '{"item": "cake"}');
SELECT lowcode.is_admin(), lowcode.may('shop', 'submit');
SELECT count(*) FROM lowcode.records r;
SQL
expect_as "lowcode's functions and tables are as they were" "" dbo app \
    "SELECT string_agg(object, ', ') FROM (
       SELECT * FROM public.before
       EXCEPT
       (SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.prosecdef::text,
               coalesce(p.proconfig::text, ''), md5(p.prosrc)
          FROM pg_proc p WHERE p.pronamespace = 'lowcode'::regnamespace
        UNION ALL
        SELECT c.oid::regclass::text, c.relowner::regrole::text, c.relrowsecurity::text || c.relforcerowsecurity::text,
               coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))::text,
               (SELECT string_agg(t.tgname::text || t.tgenabled::text, ',' ORDER BY t.tgname) FROM pg_trigger t WHERE t.tgrelid = c.oid)
          FROM pg_class c WHERE c.relnamespace = 'lowcode'::regnamespace)) changed"
no_superuser "after every command tag"
expect_as "dbo is still no superuser" "f" dbo app "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbo'"

lc_log_crash_free "$log" || fail "the server log shows a crash"
finish
