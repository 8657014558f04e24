#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: lowcode's speed against physical baselines, measured side by
# side in one throwaway cluster (port 28817), printed as a table and written to
# docs/benchmarks.md. Scenarios (see docs/benchmarks.md for what each one measures):
#   1 bulk validation of stored documents     5 outbox: poll + ack
#   2 submit throughput (pgbench)             6 memory of cached validators
#   3 claim throughput                        7 invalidation: seeing a new version
#   4 timers                                  8 per-action paths (pgbench): transition,
#                                               update_record, complete_task
#                                             9 cost as the tables grow (10k → 1M records)
#                                            10 a mixed load: each kind alone and together
# Every scenario runs its baseline in the same cluster, interleaved with lowcode, and reports
# the median of LOWCODE_BENCH_REPS repetitions.
#
# The extension is built in release mode with the `bench` feature (which adds the naive
# baseline lowcode.naive_is_valid) and installed; the cluster then loads a private copy of that
# library, so another `cargo pgrx install` in the same machine during the run cannot swap the
# code being measured.
#
# Environment:
#   LOWCODE_SKIP_INSTALL=1        don't build/install; use the last release build
#                                 (target/release/liblowcode.so, must have the bench feature)
#   LOWCODE_PGPORT                cluster port (default 28817)
#   LOWCODE_BENCH_REPS=3          repetitions per scenario
#   LOWCODE_BENCH_ONLY="1 3"      run only these scenarios (the report covers what ran)
#   LOWCODE_BENCH_SECONDS=10      pgbench run length in scenarios 2 and 8
#   LOWCODE_BENCH_CAP=5           time box (s) of one claim / timer / outbox run
#   LOWCODE_BENCH_DOC=FILE        where to write the report (default docs/benchmarks.md)
#   LOWCODE_BENCH_KEEP=1          leave the cluster running afterwards
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_t0=$(date +%s.%N)
reps="${LOWCODE_BENCH_REPS:-3}"
only="${LOWCODE_BENCH_ONLY:-1 2 3 4 5 6 7 8 9 10}"
pgb_seconds="${LOWCODE_BENCH_SECONDS:-10}"
cap="${LOWCODE_BENCH_CAP:-5}"
doc_out="${LOWCODE_BENCH_DOC:-$LC_ROOT/docs/benchmarks.md}"
n_tasks=100000   # scenario 3 pool, scenario 4 timers, scenario 5 events
pgmq_version=0.33.7   # scenario 5 baseline (the crate; it embeds pgmq 1.11.1)
db=lowcode_bench

wants() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
now() { date +%s.%N; }
phase_start=$(now)
# phase NAME — log how long the previous phase took (also into the report).
phases=""
phase() {
    local t
    t=$(now)
    if [ -n "${phase_name:-}" ]; then
        phases+="$phase_name"$'\t'"$(awk -v a="$phase_start" -v b="$t" 'BEGIN { printf "%.1f", b - a }')"$'\n'
    fi
    phase_name="$1"
    phase_start=$t
    [ -z "$1" ] || lc_log "[$(awk -v a="$bench_t0" -v b="$t" 'BEGIN { printf "%5.0f s", b - a }')] $1"
}

command -v python3 >/dev/null || lc_die "python3 is needed (report and pgbench log parsing)"
[ -x /usr/bin/pgbench ] || [ -x "$pg_bin/pgbench" ] || lc_die "pgbench not found"
pgbench_bin="$pg_bin/pgbench"

# --- build ----------------------------------------------------------------------
phase "build: cargo pgrx install --release --features bench"
lc_setup
so_built="${CARGO_TARGET_DIR:-$LC_ROOT/target}/release/liblowcode.so"
if [ "${LOWCODE_SKIP_INSTALL:-0}" != 1 ]; then
    (cd "$LC_ROOT" && cargo pgrx install --release --features bench --pg-config "$PG_CONFIG")
fi
[ -f "$so_built" ] || lc_die "no release build at $so_built (run without LOWCODE_SKIP_INSTALL=1)"
# What was built and installed: the commit, and whether src/ or sql/ differed from it then
# (read now, not when the report is written: the tree may change during the run).
built_from="$(cd "$LC_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$LC_ROOT" && git diff --quiet HEAD -- src sql 2>/dev/null || echo ' (with uncommitted changes in src/ or sql/)')"
grep -q naive_is_valid_wrapper "$so_built" ||
    lc_die "$so_built was built without the bench feature (run without LOWCODE_SKIP_INSTALL=1)"
if readelf -S "$so_built" 2>/dev/null | grep -q '\.debug_info'; then
    lc_warn "$so_built has debug info: is it really a release build?"
fi

# --- cluster --------------------------------------------------------------------
phase "cluster"
[ "${LOWCODE_BENCH_KEEP:-0}" = 1 ] && LC_KEEP_CLUSTERS=1
lc_cluster_start bench
work="$LC_DIR/work"
rm -rf "$work"
mkdir -p "$work/pgbench" "$work/logs"
cp "$so_built" "$work/lowcode_bench.so"
so_md5=$(md5sum "$work/lowcode_bench.so" | cut -c1-12)
cp "$LC_ROOT"/bench/*.sql "$work/"
cp "$LC_ROOT"/bench/pgbench/*.sql "$work/pgbench/"
python3 "$LC_ROOT/bench/forms.py" "$work"
chown -R "$PG_OS_USER:" "$work"

# Durability stays on (fsync); commits don't wait for the WAL flush, so the figures show CPU
# cost, not the disk's flush latency. No checkpoint during the run; JIT off.
lc_psql -q -d postgres <<'SQL'
ALTER SYSTEM SET shared_buffers = '1GB';
ALTER SYSTEM SET synchronous_commit = off;
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET checkpoint_timeout = '1h';
ALTER SYSTEM SET jit = off;
ALTER SYSTEM SET max_connections = 50;
SQL
lc_as_pg "$pg_bin/pg_ctl" restart -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 -m fast >/dev/null
lc_as_pg "$pg_bin/createdb" -h "$LC_SOCK" -p "$LC_PORT" "$db"

# The extension from the system installation, its C functions pointed at the private copy.
lc_psql -q -d "$db" <<SQL
CREATE EXTENSION lowcode;
UPDATE pg_proc SET probin = '$work/lowcode_bench.so' WHERE probin = '\$libdir/lowcode';
SQL
# When the installed extension lacks the baseline (installed without the bench feature), it is
# added here: with lowcode's DDL guard off (it refuses new objects in schema lowcode), and
# without privileges (the guard refuses every later GRANT, e.g. publish's, while a privilege
# exists on a lowcode function that its scripts did not give; the bench runs as superuser).
lc_psql -q -d "$db" <<SQL
DO \$\$
DECLARE
    guard bool := EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'lowcode_guard' AND evtenabled <> 'D');
BEGIN
    IF to_regprocedure('lowcode.naive_is_valid(jsonb, jsonb)') IS NULL THEN
        IF guard THEN
            ALTER EVENT TRIGGER lowcode_guard DISABLE;
        END IF;
        CREATE FUNCTION lowcode.naive_is_valid(schema jsonb, data jsonb) RETURNS bool
        IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS '$work/lowcode_bench.so', 'naive_is_valid_wrapper';
        REVOKE ALL ON FUNCTION lowcode.naive_is_valid(jsonb, jsonb) FROM PUBLIC, CURRENT_USER;
        IF guard THEN
            ALTER EVENT TRIGGER lowcode_guard ENABLE;
        END IF;
    END IF;
END \$\$;
SQL

psql_db() { lc_psql -q -d "$db" "$@"; }
sql1() { lc_psql -qAt -d "$db" -c "$1"; }

phase "setup: forms, workflow, baseline tables"
psql_db -f "$work/forms.sql"
psql_db -f "$work/setup.sql" >/dev/null
psql_db -f "$work/s5_outbox.sql" >/dev/null

# pgbench RUN_NAME CLIENTS SCRIPT [pgbench args...] — run it; its output in $work/pgbench/NAME.out.
run_pgbench() {
    local name="$1" clients="$2" script="$3" threads=2
    shift 3
    [ "$clients" -gt 1 ] || threads=1
    lc_as_pg "$pgbench_bin" -h "$LC_SOCK" -p "$LC_PORT" -n -M prepared -c "$clients" -j "$threads" \
        -f "$work/pgbench/$script.sql" "$@" "$db" >"$work/pgbench/$name.out" 2>&1 ||
        { cat "$work/pgbench/$name.out" >&2; lc_die "pgbench $name failed"; }
    if ! grep -q 'number of failed transactions: 0 ' "$work/pgbench/$name.out"; then
        cat "$work/pgbench/$name.out" >&2
        lc_die "pgbench $name: failed transactions"
    fi
}
# Seconds pgbench measured (transactions / tps).
pgbench_elapsed() {
    awk '/actually processed:/ { split($NF, a, "/"); n = a[1] }
         /^tps = / { t = $3 }
         END { printf "%.6f", n / t }' "$work/pgbench/$1.out"
}

# parallel N SQL_TEMPLATE — run N psql sessions at once (%w in the SQL is the worker number).
parallel() {
    local n="$1" sql="$2" w pids=() rc=0
    for w in $(seq 1 "$n"); do
        lc_psql -q -d "$db" -c "${sql//%w/$w}" &
        pids+=($!)
    done
    for w in "${pids[@]}"; do wait "$w" || rc=1; done
    [ "$rc" = 0 ] || lc_die "a worker failed: $sql"
}

# --- 1: bulk validation -------------------------------------------------------------
if wants 1; then
    phase "1: load 1M small and 1M large documents"
    psql_db -f "$work/s1_data.sql" >/dev/null
    for rep in $(seq 1 "$reps"); do
        phase "1: bulk validation, repetition $rep/$reps"
        psql_db -v rep="$rep" -f "$work/s1_scan.sql" >/dev/null
    done
    sql1 "DROP TABLE bench.small, bench.large"
fi

# --- 2: submit throughput -----------------------------------------------------------------
# 4 clients: every repetition; 1 and 8 clients: one run each (the time budget).
# Baselines (bench/pgbench/*.sql; their mirrors of lowcode's tables in bench/setup.sql):
#   raw_insert            one row into a plain table (the limit)
#   raw_insert_history    the record and its history row, one statement (for submit)
#   handwritten_workflow  the rows a workflow submit writes (record, its three history rows,
#                         task, deadline timer, outbox event), one statement, into mirrors with
#                         lowcode's keys
#   plain_workflow        the same statement into plain tables: the indexes the queries need, no
#                         foreign keys, CHECKs or triggers (for submit_workflow: the physical limit)
# Each pair writes the same rows: counted in one rolled-back transaction of each (the
# transaction's own table statistics), and the run stops when they differ.
# rows_written SCRIPT SCHEMA_PATTERN — rows one run of SCRIPT inserts into tables of SCHEMA_PATTERN
rows_written() {
    { echo "BEGIN;"; grep -v '^--' "$work/pgbench/$1.sql"; echo ";"
      echo "SELECT sum(n_tup_ins) FROM pg_stat_xact_user_tables WHERE schemaname || '.' || relname ~ '$2';"
      echo "ROLLBACK;"; } | lc_psql -qAt -v ON_ERROR_STOP=1 -d "$db" | grep -E '^[0-9]+$' | tail -1
}
if wants 2; then
    for pair in "submit_workflow:^lowcode\\.:plain_workflow:^bench\\..*_plain\$" \
                "submit_workflow:^lowcode\\.:handwritten_workflow:^bench\\..*_raw\$" \
                "submit:^lowcode\\.:raw_insert_history:^bench\\..*_raw\$"; do
        IFS=: read -r a a_tables b b_tables <<<"$pair"
        na=$(rows_written "$a" "$a_tables"); nb=$(rows_written "$b" "$b_tables")
        [ -n "$na" ] && [ "$na" = "$nb" ] ||
            lc_die "scenario 2: $a writes ${na:-?} rows, its baseline $b ${nb:-?}: not the same work"
        lc_log "scenario 2: $a and $b each write $na rows"
    done
    variants="raw_insert raw_insert_history submit view_insert submit_workflow handwritten_workflow plain_workflow"
    for plan in "1:1" "4:$reps" "8:1"; do
        clients=${plan%%:*}
        for rep in $(seq 1 "${plan#*:}"); do
            phase "2: pgbench, $clients client(s), repetition $rep/${plan#*:}"
            for v in $variants; do
                name="s2_${v}_c${clients}_r${rep}"
                run_pgbench "$name" "$clients" "$v" -T "$pgb_seconds" -l --log-prefix="$work/logs/$name"
                python3 "$LC_ROOT/bench/report.py" pgbench "$work/pgbench/$name.out" "$work/logs/$name" \
                    "2" "$clients clients" "$v" "$rep" >>"$work/results_pgbench.tsv"
                rm -f "$work/logs/$name".*
            done
            [ "$clients" = 4 ] || continue
            # The same workflow submits while two outbox consumers poll and ack what they emit.
            v=submit_workflow_consumed
            name="s2_${v}_c${clients}_r${rep}"
            sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
            sql1 "SELECT lowcode.create_consumer('live1'), lowcode.create_consumer('live2')" >/dev/null
            for c in live1 live2; do
                lc_psql -q -d "$db" -c "CALL bench.consume_live('$c', $pgb_seconds + 2)" &
            done
            lc_psql -q -d "$db" -c "CALL bench.sample_lag('$clients clients', 'lowcode.submit with the inspection workflow, 2 outbox consumers running', $rep, $pgb_seconds + 1)" &
            run_pgbench "$name" "$clients" submit_workflow -T "$pgb_seconds" -l --log-prefix="$work/logs/$name"
            wait || lc_die "a live consumer failed"
            python3 "$LC_ROOT/bench/report.py" pgbench "$work/pgbench/$name.out" "$work/logs/$name" \
                "2" "$clients clients" "$v" "$rep" >>"$work/results_pgbench.tsv"
            rm -f "$work/logs/$name".*
        done
    done
    sql1 "SELECT count(*) FROM lowcode.records" >/dev/null
fi

# --- 3: claims ----------------------------------------------------------------------------
# Baseline (claim_raw): lowcode.claim_task's own claim statement, with its history row, on plain
# mirrors of lowcode's tables.
if wants 3; then
    psql_db -f "$work/s3_claims.sql" >/dev/null
    for rep in $(seq 1 "$reps"); do
        phase "3: claims, repetition $rep/$reps"
        pool="claims_r$rep"
        sql1 "SELECT bench.s3_prepare('$pool', $n_tasks)" >/dev/null
        psql_db -c "VACUUM ANALYZE lowcode.tasks, bench.tasks_raw"
        for v in claim claim_raw; do
            name="s3_${v}_r$rep"
            run_pgbench "$name" 8 "$v" -T "$cap" -D pool="$pool"
            label="lowcode claim_task"
            [ "$v" = claim ] || label="baseline: plain table"
            sql1 "SELECT bench.s3_check('$label', '$pool', $n_tasks, $rep, $(pgbench_elapsed "$name"))" >/dev/null
        done
    done
fi

# --- 4: timers ----------------------------------------------------------------------------
if wants 4; then
    psql_db -f "$work/s4_timers.sql" >/dev/null
    phase "4: timers, prepare $n_tasks due deadlines"
    sql1 "SELECT bench.s4_prepare($n_tasks)" >/dev/null
    for rep in $(seq 1 "$reps"); do
        phase "4: timers, repetition $rep/$reps"
        for callers in 1 2; do
            for v in lowcode raw; do
                sql1 "SELECT bench.s4_reset()" >/dev/null
                psql_db -c "VACUUM ANALYZE lowcode.timers, bench.timers_raw"
                run="s4_${v}_c${callers}_r$rep"
                item="$callers caller$([ "$callers" = 1 ] || echo s)"
                if [ "$v" = lowcode ]; then
                    marks=$(sql1 "SELECT (SELECT coalesce(max(id), 0) FROM lowcode.history) || ', ' || (SELECT coalesce(max(id), 0) FROM lowcode.events)")
                    parallel "$callers" "CALL bench.fire_timers('$run', %w, $cap)"
                    sql1 "SELECT bench.s4_check('$run', '$item', $rep, $n_tasks, $marks)" >/dev/null
                else
                    parallel "$callers" "CALL bench.fire_timers_raw('$run', %w, $cap)"
                    sql1 "SELECT bench.s4_check_raw('$run', '$item', $rep, $n_tasks)" >/dev/null
                fi
            done
        done
    done
fi

# --- 5: outbox ----------------------------------------------------------------------------
# Baseline: pgmq, installed from the SQL its crate embeds (fetched from the Rust package registry
# by `cargo info`, which unpacks the crate into cargo's registry cache).
if wants 5; then
    phase "5: outbox, install pgmq $pgmq_version"
    (cd "$work" && cargo info "pgmq@$pgmq_version" >/dev/null 2>&1) || lc_die "cargo info pgmq@$pgmq_version failed"
    pgmq_sql="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path "*/pgmq-$pgmq_version/src/install/embedded/sql/pgmq.sql" | head -n 1)"
    [ -n "$pgmq_sql" ] || lc_die "pgmq $pgmq_version's embedded pgmq.sql not found in cargo's registry"
    cp "$pgmq_sql" "$work/pgmq.sql"
    chown "$PG_OS_USER:" "$work/pgmq.sql"
    psql_db -f "$work/pgmq.sql" >/dev/null
    psql_db -f "$work/s5_outbox.sql" >/dev/null
    phase "5: outbox, prepare $n_tasks events"
    sql1 "SELECT bench.s5_prepare($n_tasks)" >/dev/null
    for rep in $(seq 1 "$reps"); do
        phase "5: outbox, repetition $rep/$reps (pgmq, lowcode, 4 lowcode consumers)"
        sql1 "SELECT bench.s5_prepare_pgmq($n_tasks)" >/dev/null
        psql_db -c "VACUUM ANALYZE pgmq.q_bench, lowcode.events"
        parallel 1 "CALL bench.consume_pgmq('s5_pgmq_r$rep', %w, $cap)"
        sql1 "SELECT bench.s5_record('s5_pgmq_r$rep', $rep, '100k waiting', 'pgmq read + archive', NULL)" >/dev/null
        sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
        parallel 1 "CALL bench.consume('s5_lc_r$rep', %w, 'one_r$rep', 1000000000000, 60)"
        sql1 "SELECT bench.s5_record('s5_lc_r$rep', $rep, '100k waiting', 'lowcode poll_events + ack_events', $n_tasks)" >/dev/null
        sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
        parallel 4 "CALL bench.consume('s5_lc4_r$rep', %w, 'four_r${rep}_%w', 1000000000000, 120)"
        sql1 "SELECT bench.s5_record('s5_lc4_r$rep', $rep, '100k waiting, 4 consumers', 'lowcode poll_events + ack_events', 4 * $n_tasks)" >/dev/null
    done
    # Poll cost and the backlog: the same consumer loop takes the same 10,000 events with 10k
    # and with 1M events waiting (five runs each: one takes a fraction of a second).
    for backlog in 10000 1000000; do
        phase "5: outbox, $backlog events waiting"
        sql1 "SELECT bench.s5_prepare($backlog)" >/dev/null
        psql_db -c "VACUUM ANALYZE lowcode.events"
        for rep in $(seq 1 5); do
            sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
            parallel 1 "CALL bench.consume('s5_b${backlog}_r$rep', %w, 'b_r$rep', 10000, 60)"
            sql1 "SELECT bench.s5_record('s5_b${backlog}_r$rep', $rep, '$backlog waiting', 'lowcode poll_events + ack_events', NULL)" >/dev/null
        done
    done
fi

# --- 6: memory ----------------------------------------------------------------------------
if wants 6; then
    phase "6: memory, define 1,000 forms"
    psql_db -f "$work/s6_memory.sql" >/dev/null
    for rep in $(seq 1 "$reps"); do
        phase "6: memory, repetition $rep/$reps"
        # Each case in a fresh backend; each pass its own transaction, except the last case.
        for c in "2000:cache 2000 (all cached):2" "512:cache 512 (default):4" "100:cache 100:4"; do
            size=${c%%:*} item=${c#*:} passes=${c##*:}
            item=${item%:*}
            args=(-c "SET lowcode.validator_cache_size = $size" -c "SELECT bench.s6_baseline($rep, '$item')")
            for p in $(seq 1 "$passes"); do args+=(-c "SELECT bench.s6_pass($rep, '$item', $p)"); done
            psql_db "${args[@]}" >/dev/null
        done
        # 4 passes in one transaction: what a single statement that keeps missing the cache holds
        psql_db -c "SET lowcode.validator_cache_size = 100" \
            -c "SELECT bench.s6_baseline($rep, 'cache 100, one transaction'); $(for p in 1 2 3 4; do printf "SELECT bench.s6_pass(%s, 'cache 100, one transaction', %s); " "$rep" "$p"; done)" >/dev/null
    done
fi

# --- 7: invalidation ------------------------------------------------------------------------
if wants 7; then
    phase "7: invalidation"
    psql_db -f "$work/s7_invalidation.sql" >/dev/null
    script="$work/s7_run.sql"
    {
        echo '\set ON_ERROR_STOP on'
        echo "SELECT dblink_connect('pub', 'host=$LC_SOCK port=$LC_PORT dbname=$db user=$PG_OS_USER');"
        echo "SELECT bench.small_valid_doc(1)::text AS doc \\gset"
        k=0
        for rep in $(seq 1 "$reps"); do
            for _ in $(seq 1 10); do
                k=$((k + 1))
                # another session publishes version k (committed when dblink returns) ...
                echo "SELECT v FROM dblink('pub', format('SELECT lowcode.define_form(%L, %L, %L)', 'bench', 'inv', bench.inv_schema($k))) AS t(v int);"
                # ... and this session's next statement must enforce it
                for item in "first statement after a publish" "next statement (warm)"; do
                    echo "WITH m AS MATERIALIZED (SELECT lowcode.is_valid('bench', 'inv', :'doc'::jsonb || '{\"n\": $k}') AS ok, clock_timestamp() - statement_timestamp() AS took)"
                    echo "INSERT INTO bench.results (scenario, item, variant, rep, metric, value) SELECT '7', '$item', 'lowcode is_valid', $rep, x.metric, x.value FROM m, LATERAL (VALUES ('ms', extract(epoch FROM m.took) * 1000), ('saw_new_version', m.ok::int)) x(metric, value);"
                done
                echo "SELECT current_version_id AS vid FROM lowcode.forms WHERE app = 'bench' AND name = 'inv' \\gset"
                echo "WITH m AS MATERIALIZED (SELECT lowcode.conforms_to_version(:vid, :'doc'::jsonb || '{\"n\": $k}') AS ok, clock_timestamp() - statement_timestamp() AS took)"
                echo "INSERT INTO bench.results (scenario, item, variant, rep, metric, value) SELECT '7', 'next statement (warm)', 'lowcode conforms_to_version', $rep, 'ms', extract(epoch FROM m.took) * 1000 FROM m;"
            done
            echo "SELECT bench.s7_rowcost($rep);"
        done
        echo "SELECT dblink_disconnect('pub');"
    } >"$script"
    chown "$PG_OS_USER:" "$script"
    psql_db -f "$script" >/dev/null
fi

# --- 8: per-action paths -------------------------------------------------------------------
# lowcode.transition, update_record and complete_task (bench/pgbench/s8_<action>.sql), each
# against one hand-written statement writing the same rows into plain copies of lowcode's
# tables (bench/pgbench/s8_<action>_plain.sql; tables, workflow and rows in bench/s8_actions.sql).
# Each client works on its own rows; bench.s8_reset puts them back before every run, and the
# rows each call wrote per table are counted from the table statistics after it.
# 1 client: one run; 4 clients: every repetition (as scenario 2).
s8_records=1000            # records per client that transition / update_record cycle through
s8_task_rate=20000         # claimed tasks in lowcode per second of run, shared by the clients
s8_plain_task_rate=60000   # the same in the plain tables (the baseline is faster)
if wants 8; then
    phase "8: per-action paths, prepare"
    s8_tasks=$((s8_task_rate * pgb_seconds))
    s8_plain_tasks=$((s8_plain_task_rate * pgb_seconds))
    psql_db -f "$work/s8_actions.sql" >/dev/null
    sql1 "SELECT bench.s8_prepare(4, $s8_records, $s8_tasks, $s8_plain_tasks)" >/dev/null
    read -r -a s8_vars <<<"$(sql1 "SELECT string_agg(format('-D %s_first=%s', kind, first_id), ' ' ORDER BY kind) FROM bench.s8_ranges")"
    for plan in "1:1" "4:$reps"; do
        clients=${plan%%:*}
        for rep in $(seq 1 "${plan#*:}"); do
            phase "8: per-action paths, $clients client(s), repetition $rep/${plan#*:}"
            for v in transition transition_plain update update_plain complete complete_plain; do
                plain=false tasks=$s8_tasks
                case "$v" in *_plain) plain=true tasks=$s8_plain_tasks ;; esac
                sql1 "SELECT bench.s8_reset()" >/dev/null
                psql_db -c "VACUUM ANALYZE lowcode.records, lowcode.tasks, lowcode.timers, bench.s8_records_plain, bench.s8_tasks_plain, bench.s8_timers_plain"
                sql1 "SELECT bench.s8_mark()" >/dev/null
                name="s8_${v}_c${clients}_r${rep}"
                run_pgbench "$name" "$clients" "s8_$v" -T "$pgb_seconds" -l --log-prefix="$work/logs/$name" \
                    -D n=0 -D per="$s8_records" -D task_per=$((tasks / clients)) "${s8_vars[@]}"
                python3 "$LC_ROOT/bench/report.py" pgbench "$work/pgbench/$name.out" "$work/logs/$name" \
                    "8" "$clients clients" "s8_$v" "$rep" >>"$work/results_pgbench.tsv"
                rm -f "$work/logs/$name".*
                txs=$(awk '/actually processed:/ { split($NF, a, "/"); print a[1] }' "$work/pgbench/$name.out")
                sql1 "SELECT bench.s8_writes('$clients clients', 's8_$v', $rep, $plain, $txs)" >/dev/null
            done
        done
    done
fi

# --- 9: cost as the tables grow -------------------------------------------------------------
# submit, claim + complete, transition, update_record and decide (bench/pgbench/s9_*.sql, one
# client, a fixed number of calls each) with 10k, 100k and 1M records of one form in lowcode's
# tables (half with an open pool task and its pending deadline, a quarter with a pending
# approval), grown through lowcode.submit (bench/s9_growth.sql). Every repetition at every size.
s9_calls=3000              # calls per run (transition: 2000, every record there and back)
if wants 9; then
    phase "9: cost as tables grow, prepare"
    psql_db -f "$work/s9_growth.sql" >/dev/null
    sql1 "SELECT bench.s9_prepare()" >/dev/null
    read -r -a s9_vars <<<"$(sql1 "SELECT string_agg(format('-D %s_first=%s', kind, first_id), ' ' ORDER BY kind) FROM bench.s9_ranges")"
    for size in 10000 100000 1000000; do
        item="$((size / 1000))k records"
        [ "$size" -lt 1000000 ] || item="1M records"
        phase "9: grow to $item"
        psql_db -c "CALL bench.s9_grow($size)"
        psql_db -c "VACUUM ANALYZE lowcode.records, lowcode.history, lowcode.tasks, lowcode.timers"
        sql1 "SELECT bench.s9_sizes('$item')" >/dev/null
        for rep in $(seq 1 "$reps"); do
            phase "9: $item, repetition $rep/$reps"
            for v in submit claim transition update decide; do
                calls=$s9_calls
                [ "$v" != transition ] || calls=2000
                sql1 "SELECT bench.s9_reset()" >/dev/null
                decide_first=0
                [ "$v" != decide ] || decide_first=$(sql1 "SELECT bench.s9_approvals($calls)")
                name="s9_${v}_$((size / 1000))k_r${rep}"
                run_pgbench "$name" 1 "s9_$v" -t "$calls" -l --log-prefix="$work/logs/$name" -D n=0 \
                    -D decide_first="$decide_first" "${s9_vars[@]}"
                python3 "$LC_ROOT/bench/report.py" pgbench "$work/pgbench/$name.out" "$work/logs/$name" \
                    "9" "$item" "s9_$v" "$rep" >>"$work/results_pgbench.tsv"
                rm -f "$work/logs/$name".*
            done
        done
    done
fi

# --- 10: a mixed load -------------------------------------------------------------------------
# Submitters (3 pgbench clients), claimers (claim_task + complete_task, 3 clients), two outbox
# consumers and a timer caller (run_due_timers, the worker's loop), each kind alone and then all
# together, pgb_seconds each (bench/s10_mixed.sql): every kind's rate alone and together, and
# how often a session waited on a lock.
s10_prefill=60000          # records (tasks, deadlines 5 s out, events) the runs start from
if wants 10; then
    phase "10: mixed load, prepare $s10_prefill records"
    psql_db -f "$work/s10_mixed.sql" >/dev/null
    sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
    for c in mix1 mix2; do
        sql1 "SELECT lowcode.create_consumer('$c', '{\"app\": \"insp\", \"topics\": [\"insp.s10\"], \"from\": \"now\"}')" >/dev/null
    done
    sql1 "SELECT bench.s10_prefill($s10_prefill)" >/dev/null
    psql_db -c "VACUUM ANALYZE lowcode.records, lowcode.tasks, lowcode.timers, lowcode.events"
    for rep in $(seq 1 "$reps"); do
        for kind in submitters claimers consumers timers together; do
            phase "10: mixed load, $kind, repetition $rep/$reps"
            run="s10_${kind}_r$rep"
            kinds="$kind" item=alone
            [ "$kind" != together ] || { kinds="submitters claimers consumers timers"; item=together; }
            sql1 "SELECT bench.s10_mark('$run')" >/dev/null
            pids=()
            case " $kinds " in *" submitters "*)
                run_pgbench "${run}_submit" 3 s10_submit -T "$pgb_seconds" & pids+=($!) ;; esac
            case " $kinds " in *" claimers "*)
                run_pgbench "${run}_claim" 3 s10_claim -T "$pgb_seconds" & pids+=($!) ;; esac
            case " $kinds " in *" consumers "*)
                for c in mix1 mix2; do
                    lc_psql -q -d "$db" -c "CALL bench.s10_consume('$c', '$run', $pgb_seconds)" & pids+=($!)
                done ;; esac
            case " $kinds " in *" timers "*)
                lc_psql -q -d "$db" -c "CALL bench.s10_timers('$run', $pgb_seconds)" & pids+=($!) ;; esac
            lc_psql -q -d "$db" -c "CALL bench.s10_sample('$run', $pgb_seconds)" & pids+=($!)
            for p in "${pids[@]}"; do wait "$p" || lc_die "scenario 10: a $kind session failed"; done
            sql1 "SELECT bench.s10_record('$run', '$item', string_to_array('$kinds', ' '), $pgb_seconds, $rep)" >/dev/null
        done
    done
fi

export_results() {
    lc_psql -qAt -d "$db" -F $'\t' -c "SELECT scenario, item, variant, rep, metric, value FROM bench.results ORDER BY scenario, at" \
        >"$work/results.tsv"
    [ ! -f "$work/results_pgbench.tsv" ] || cat "$work/results_pgbench.tsv" >>"$work/results.tsv"
}
export_results

# --- profiles: the submit path, and each missed target ----------------------------------------
# Restart with pg_stat_statements (statements inside functions too) and per-function timing,
# rerun the missed path briefly, and keep the top functions and statements (and perf's split
# by shared object, if perf is installed) for the report.
missed="$(python3 "$LC_ROOT/bench/report.py" missed "$work")"
# The submit path is always profiled (docs/benchmarks.md shows what is left of it, and why).
profiles=()
if wants 2; then profiles+=(submit); fi
case "$missed" in *timers_*) profiles+=(timers) ;; esac
case "$missed" in *claims*) profiles+=(claims) ;; esac
case "$missed" in *outbox*) profiles+=(outbox) ;; esac
case "$missed" in *fresh_cost*) profiles+=(fresh) ;; esac
# perf_backends SECONDS OUTFILE [SORT] — sample the server's client backends; the top lines of
# perf report, by shared object (or SORT, e.g. symbol).
perf_backends() {
    local pids sort="${3:-dso}" lines=8
    command -v perf >/dev/null || return 0
    pids=$(sql1 "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    [ -n "$pids" ] || return 0
    [ "$sort" = dso ] || lines=16
    # (perf exits non-zero when a sampled backend ends first; what it recorded is still good)
    perf record -F 999 -p "$pids" -o "$work/perf.data" -- sleep "$1" >/dev/null 2>&1 || true
    [ -s "$work/perf.data" ] || return 0
    perf report -i "$work/perf.data" --no-children --sort "$sort" --stdio 2>/dev/null |
        awk -v max="$lines" '/^ +[0-9.]+%/ && n < max { sub(/^ +/, ""); sub(/ +$/, ""); print; n++ }' >"$2" || true
    rm -f "$work/perf.data"
}
profile_dump() {
    local name="$1"
    sleep 0.6   # function statistics are flushed at most every 500 ms
    lc_psql -qAt -F $'\t' -d "$db" -c "SELECT format('%s.%s', schemaname, funcname), calls, round(total_time::numeric, 1), round(self_time::numeric, 1),
                 round((1000 * self_time / greatest(calls, 1))::numeric, 1)
            FROM pg_stat_user_functions WHERE calls > 0 AND funcname !~ '^pg_stat' ORDER BY self_time DESC LIMIT 14" \
        >"$work/profile_${name}_functions.tsv"
    lc_psql -qAt -F $'\t' -d "$db" -c "SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 110), calls, round(total_exec_time::numeric, 1),
                 round((1000 * total_exec_time / greatest(calls, 1))::numeric, 1)
            FROM pg_stat_statements WHERE query !~* 'pg_stat_|bench\.|^(SELECT|CALL) lowcode\.(submit|run_due_timers|claim_task)\(|^(BEGIN|COMMIT|SET|SHOW|TRUNCATE)'
           ORDER BY total_exec_time DESC LIMIT 12" \
        >"$work/profile_${name}_statements.tsv"
}
if [ "${#profiles[@]}" -gt 0 ]; then
    phase "profile: ${profiles[*]}"
    printf '%s\n' "shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track = 'all'" \
        "track_functions = 'all'" | lc_as_pg tee -a "$LC_DATA/postgresql.conf" >/dev/null
    sql1 "ALTER SYSTEM RESET shared_preload_libraries" >/dev/null
    lc_as_pg "$pg_bin/pg_ctl" restart -D "$LC_DATA" -l "$LC_LOGFILE" -w -t 60 -m fast >/dev/null
    sql1 "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    for p in "${profiles[@]}"; do
        sql1 "SELECT pg_stat_reset(), pg_stat_statements_reset()" >/dev/null
        case "$p" in
            submit)
                run_pgbench profile_submit 4 submit_workflow -T 5 &
                sleep 1.5; perf_backends 2 "$work/profile_submit_perf.txt" dso,symbol
                wait $! || lc_die "profile pgbench failed" ;;
            claims)
                sql1 "SELECT bench.s3_prepare('claims_profile', 20000)" >/dev/null
                run_pgbench profile_claims 8 claim -T 4 -D pool=claims_profile &
                sleep 1.5; perf_backends 2 "$work/profile_claims_perf.txt"
                wait $! || lc_die "profile pgbench failed" ;;
            timers)
                sql1 "SELECT bench.s4_reset()" >/dev/null
                sql1 "SELECT pg_stat_reset(), pg_stat_statements_reset()" >/dev/null
                lc_psql -q -d "$db" -c "SELECT lowcode.run_due_timers(6000)" >/dev/null &
                sleep 0.7; perf_backends 1.5 "$work/profile_timers_perf.txt"
                wait $! || lc_die "profile run_due_timers failed" ;;
            outbox)
                sql1 "TRUNCATE lowcode.consumers CASCADE" >/dev/null
                sql1 "SELECT pg_stat_reset(), pg_stat_statements_reset()" >/dev/null
                lc_psql -q -d "$db" -c "CALL bench.consume('profile', 1, 'profile', 1000000000000, 4)" >/dev/null &
                sleep 2; perf_backends 1.5 "$work/profile_outbox_perf.txt"
                wait $! || lc_die "profile consumer failed" ;;
            fresh)
                lc_psql -q -d "$db" -c "SET max_parallel_workers_per_gather = 0" -c "SET track_functions = 'none'" \
                    -c "SELECT count(*) FILTER (WHERE lowcode.is_valid('bench', 'small', doc)) FROM bench.inv_rows, generate_series(1, 40)" >/dev/null &
                sleep 0.5; perf_backends 1.5 "$work/profile_fresh_perf.txt" dso,symbol
                wait $! || lc_die "profile scan failed"
                continue ;;
        esac
        profile_dump "$p"
    done
fi

# --- report -------------------------------------------------------------------------------
phase "report"
[ "$(md5sum "$work/lowcode_bench.so" | cut -c1-12)" = "$so_md5" ] || lc_die "the measured library changed during the run"
lc_log_crash_free "$LC_LOGFILE" || lc_die "the server crashed during the benchmark"

{
    echo "nproc	$(nproc)"
    echo "memory	$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "cpu	$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "postgres	$(sql1 'SHOW server_version')"
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit	$built_from"
    echo "library	$(basename "$so_built"), release build with the bench feature, md5 $so_md5…"
    echo "reps	$reps"
    echo "pgbench_seconds	$pgb_seconds"
    echo "cap	$cap"
    echo "n	$n_tasks"
    echo "load	$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$work/machine.tsv"
phase ""
total=$(awk -v a="$bench_t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
printf '%s' "$phases" >"$work/phases.tsv"
echo "total	$total" >>"$work/phases.tsv"

mkdir -p "$(dirname "$doc_out")"
python3 "$LC_ROOT/bench/report.py" report "$work" "$doc_out"
lc_log "wrote ${doc_out#"$LC_ROOT"/} ($total s in all)"

if [ "$LC_KEEP_CLUSTERS" = 1 ]; then
    lc_log "cluster left running; connect with: $(lc_connect_hint "$db")"
else
    lc_cluster_stop
    rm -rf "$LC_DATA"   # gigabytes of tables and WAL; the results stay in $work
fi
