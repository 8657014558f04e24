#!/usr/bin/env bash
# scripts/bench_citus.sh — make bench-citus: a submit with the inspection workflow on a Citus 13
# cluster of three nodes on this machine (a coordinator and two workers, as
# tests/system/citus.sh sets them up) against the same rows written by hand, in the same
# cluster, and the same on one node (a database without Citus on the coordinator's server):
#   lowcode       bench/pgbench/submit_workflow.sql: lowcode.submit (the record, three history
#                 rows, a task, its deadline timer, an outbox event)
#   plain         bench/pgbench/plain_workflow.sql: the same rows by one statement into plain
#                 tables where lowcode's runtime is (on the coordinator: not distributed yet)
#   by app        bench/pgbench/citus_byapp.sql: the same rows into plain tables distributed by
#                 app, one function delegated to the app's node (issue 21's design; on one node
#                 the same function, local)
#   by app, shards bench/pgbench/citus_byapp_shards.sql: the same rows by the plain statement
#                 straight into the app's shards of those tables, by one function delegated to
#                 their node: the physical limit of the design (Citus plans nothing there)
#   distributed   lowcode.submit in a database whose runtime is distributed by app
#                 (lowcode.distribute(runtime => true)): delegated to the app's node, where it
#                 writes the app's shards itself, against "by app, shards"
# and, for one call of each, the commands the coordinator sent to other nodes and how many
# nodes they went to (citus.log_remote_commands). Writes docs/benchmarks-citus.md.
#
# Needs Citus (scripts/citus.sh builds it, cached) and lowcode installed for PG_CONFIG
# (LOWCODE_INSTALL=1: a release build first).
# Environment: LOWCODE_BENCH_REPS (default 3: runs with 4 clients; 1 client runs once),
# LOWCODE_BENCH_SECONDS (default 10), LOWCODE_BENCH_DOC (default docs/benchmarks-citus.md).
LC_NAME=bench_citus
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/system/lib.sh"

lc_setup
[ "${LOWCODE_INSTALL:-0}" != 1 ] || lc_install_extension "${LOWCODE_PROFILE:-release}"
citus_version="$(bash "$LC_ROOT/scripts/citus.sh")" || lc_die "Citus could not be built or installed (scripts/citus.sh)"
reps="${LOWCODE_BENCH_REPS:-3}"
seconds="${LOWCODE_BENCH_SECONDS:-10}"
doc_out="${LOWCODE_BENCH_DOC:-$LC_ROOT/docs/benchmarks-citus.md}"
built_from="$(cd "$LC_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$LC_ROOT" && git diff --quiet HEAD -- src sql bench 2>/dev/null || echo ' (with uncommitted changes)')"
pgbench_bin="$pg_bin/pgbench"
[ -x "$pgbench_bin" ] || pgbench_bin=/usr/bin/pgbench

work="$SYS_WORK/bench"
mkdir -p "$work/pgbench"
cp "$LC_ROOT"/bench/{citus,insp_workflow}.sql "$work/"
cp "$LC_ROOT"/bench/pgbench/{submit_workflow,plain_workflow,citus_byapp,citus_byapp_shards}.sql "$work/pgbench/"
python3 "$LC_ROOT/bench/forms.py" "$work" >/dev/null
chown -R "$PG_OS_USER:" "$work"

NODES=(coord w1 w2)
port=29660
for n in "${NODES[@]}"; do
    sys_start "$n" "$port"
    port=$((port + 1))
    {
        echo "shared_preload_libraries = 'citus,lowcode'"
        echo "shared_buffers = 128MB"
        echo "max_worker_processes = 32"
        echo "max_prepared_transactions = 20"
        # lowcode's worker stays out of the measured database (its deadlines are 5 minutes out).
        echo "lowcode.worker_databases = 'postgres'"
        echo "citus.node_conninfo = 'sslmode=prefer'"
        echo "synchronous_commit = on"
    } | sys_conf "$n"
    sys_restart "$n"
done
sys_citus_db bench coord w1 w2
sys_psql coord -d bench -c "CREATE EXTENSION lowcode" -c "SELECT lowcode.distribute()" >/dev/null ||
    fail "lowcode, distributed, in bench"
sys_citus_db spread coord w1 w2
sys_psql coord -d spread -c "CREATE EXTENSION lowcode" -c "SELECT lowcode.distribute(runtime => true)" >/dev/null ||
    fail "lowcode, its runtime distributed, in spread"
sys_psql coord -d postgres -c "CREATE DATABASE one" || fail "CREATE DATABASE one"
sys_psql coord -d one -c "CREATE EXTENSION lowcode" >/dev/null || fail "lowcode in one"
for db in bench spread one; do
    citus=on
    [ "$db" != one ] || citus=off
    sys_psql coord -d "$db" -f "$work/forms.sql" >/dev/null || fail "forms in $db"
    sys_psql coord -d "$db" -v citus="$citus" -f "$work/citus.sql" >/dev/null || fail "bench/citus.sql in $db"
done

# Every row a workflow submit writes, in lowcode's tables and in the baselines' (distributed
# ones included: counted, not read from statistics, which Citus keeps per shard).
count_rows="SELECT (SELECT count(*) FROM lowcode.records) + (SELECT count(*) FROM lowcode.history)
    + (SELECT count(*) FROM lowcode.tasks) + (SELECT count(*) FROM lowcode.timers)
    + (SELECT count(*) FROM lowcode.events)
    + (SELECT count(*) FROM bench.records_plain) + (SELECT count(*) FROM bench.history_plain)
    + (SELECT count(*) FROM bench.tasks_plain) + (SELECT count(*) FROM bench.wf_timers_plain)
    + (SELECT count(*) FROM bench.wf_events_plain)
    + (SELECT count(*) FROM bench.records_byapp) + (SELECT count(*) FROM bench.history_byapp)
    + (SELECT count(*) FROM bench.tasks_byapp) + (SELECT count(*) FROM bench.timers_byapp)
    + (SELECT count(*) FROM bench.events_byapp)"
# rows DB SCRIPT — rows one run of SCRIPT writes (in a transaction rolled back).
rows() {
    { echo "BEGIN;"; grep -v '^--' "$work/pgbench/$2.sql"; echo "$count_rows;"; echo "ROLLBACK;"; } |
        sys_psql coord -d "$1" | grep -E '^[0-9]+$' | tail -1
}
# scripts DB — the variants measured in DB (in spread, lowcode only: the baselines are bench's).
scripts() {
    case "$1" in
        bench) echo submit_workflow plain_workflow citus_byapp citus_byapp_shards ;;
        spread) echo submit_workflow ;;
        one) echo submit_workflow plain_workflow citus_byapp ;;
    esac
}
for db in bench spread one; do
    base="$(sys_val coord "$db" "$count_rows")"
    for s in $(scripts "$db"); do
        n="$(rows "$db" "$s")"
        [ "$((n - base))" = 7 ] || fail "$db: $s writes $((n - base)) rows, not the 7 of a workflow submit"
    done
done

# remote SCRIPT [DB] — for one call on the coordinator: "<commands sent to other nodes> <nodes>".
remote() {
    { echo "SET citus.log_remote_commands = on; SET client_min_messages = notice;"
      grep -v '^--' "$work/pgbench/$1.sql"; } |
        lc_as_pg env PGOPTIONS="-c lc_messages=C" "$pg_bin/psql" -h "$(sys_sock coord)" -p "$(sys_port coord)" \
            -U "$PG_OS_USER" -X -q -d "${2:-bench}" 2>&1 >/dev/null |
        awk '/NOTICE:  issuing/ { n++ } /DETAIL:  on server/ { s[$4] = 1 }
             END { printf "%d %d\n", n, length(s) }'
}

# tps DB SCRIPT CLIENTS — pgbench's rate (without connection time).
tps() {
    local out
    out="$(lc_as_pg "$pgbench_bin" -h "$(sys_sock coord)" -p "$(sys_port coord)" -U "$PG_OS_USER" -n -M prepared \
        -c "$3" -j "$(( $3 > 1 ? 2 : 1 ))" -T "$seconds" -f "$work/pgbench/$2.sql" "$1" 2>&1)" ||
        fail "pgbench $1 $2: $out"
    printf '%s\n' "$out" | awk '/^tps = / { printf "%.0f\n", $3 }'
}

declare -A rate=()
for plan in "1:1" "4:$reps"; do
    clients=${plan%%:*}
    for rep in $(seq 1 "${plan#*:}"); do
        for db in bench spread one; do
            for s in $(scripts "$db"); do
                t="$(tps "$db" "$s" "$clients")"
                lc_log "$db $s $clients client(s) run $rep: $t tps"
                rate[$db.$s.$clients]+="$t "
            done
        done
    done
done

# median of the space-separated numbers
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }

read -r lc_cmds lc_nodes <<<"$(remote submit_workflow)"
read -r pl_cmds pl_nodes <<<"$(remote plain_workflow)"
read -r ba_cmds ba_nodes <<<"$(remote citus_byapp)"
read -r bs_cmds bs_nodes <<<"$(remote citus_byapp_shards)"
read -r sp_cmds sp_nodes <<<"$(remote submit_workflow spread)"
shards="$(sys_val coord bench "SELECT string_agg(DISTINCT s.nodeport::text, ',') FROM citus_shards s
                                WHERE s.shardid = get_shard_id_for_distribution_column('bench.records_byapp', 'insp')")"
for n in "${NODES[@]}"; do
    sys_no_crash="$(grep -c 'terminated by signal' "$(sys_log "$n")" || true)"
    [ "$sys_no_crash" = 0 ] || fail "$n: a backend crashed (see $(sys_log "$n"))"
done

{
    echo "# make bench-citus"
    echo
    echo "A submit with the inspection workflow (the record, three history rows, a task, its deadline"
    echo "timer, an outbox event: 7 rows, checked for every variant) on a Citus $citus_version cluster of"
    echo "three nodes on one machine (a coordinator and two workers), against the same rows written by"
    echo "hand in the same cluster, and the same on one node (a database without Citus on the"
    echo "coordinator's server). pgbench, prepared statements, ${seconds}-second runs; 4 clients: the"
    echo "median of $reps runs. \`scripts/bench_citus.sh\`, \`bench/citus.sql\`."
    echo
    echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
         "$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM; PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}')"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $built_from"
    echo
    echo "| database | variant | 1 client (tps) | 4 clients (tps) | lowcode / it, 4 clients |"
    echo "| --- | --- | ---: | ---: | ---: |"
    for db in bench spread one; do
        case "$db" in
            bench) label="Citus, 3 nodes" ;;
            spread) label="Citus, 3 nodes, runtime distributed" ;;
            one) label="one node" ;;
        esac
        lc4="$(median "${rate[$db.submit_workflow.4]}")"
        for s in $(scripts "$db"); do
            case "$s" in
                submit_workflow) v="lowcode.submit" ;;
                plain_workflow) v="plain, where lowcode's runtime is" ;;
                citus_byapp) v="plain, by app, delegated (a statement per table, each planned by Citus)" ;;
                citus_byapp_shards) v="plain, by app, delegated, one statement into the app's shards" ;;
            esac
            [ "$db" = bench ] || [ "$s" != citus_byapp ] || v="plain, the same function, local"
            r4="$(median "${rate[$db.$s.4]}")"
            ratio="$(pct "$lc4" "$r4") %"
            [ "$s" != submit_workflow ] || ratio=""
            if [ "$db" = spread ]; then
                v="lowcode.submit, delegated to the app's node"
                ratio="$(pct "$r4" "$(median "${rate[bench.citus_byapp_shards.4]}")") % of by app, shards"
                sp_vs_byapp="$(pct "$r4" "$(median "${rate[bench.citus_byapp.4]}")")"
            fi
            echo "| $label | $v | $(median "${rate[$db.$s.1]}") | $r4 | $ratio |"
        done
    done
    echo
    echo "Per call on the coordinator (\`citus.log_remote_commands\`): lowcode.submit sent $lc_cmds commands"
    echo "to $lc_nodes other nodes; the plain statement $pl_cmds to $pl_nodes; the delegated function"
    echo "$ba_cmds to $ba_nodes (app insp's shards are on the node of port $shards), the one into the"
    echo "shards $bs_cmds to $bs_nodes. With the runtime distributed, lowcode.submit sent $sp_cmds commands"
    echo "to $sp_nodes other nodes."
    echo
    echo "With the runtime distributed, lowcode.submit is $sp_vs_byapp % of the delegated function that"
    echo "writes a statement per table through Citus's planner on the node: lowcode, on the app's node,"
    echo "writes the app's shards itself (src/placement.rs), as the one-statement limit above does."
    echo
    echo "Cost of Citus for lowcode: $(pct "$(median "${rate[bench.submit_workflow.4]}")" "$(median "${rate[one.submit_workflow.4]}")") % of the"
    echo "one-node rate with 4 clients (the same server: Citus's planner and executor hooks on every"
    echo "statement of a database where it is installed)."
    echo
    echo "The three nodes share two cores, so this shows what distribution costs per"
    echo "call, not how throughput grows with nodes (docs/scale-out.md says that on paper). The"
    echo "limit of issue 21's design is the delegated function that writes the app's shards by one"
    echo "statement: one round trip from the coordinator to the app's node, then one local statement"
    echo "there that Citus does not plan. Through Citus's planner the same rows take a statement per"
    echo "table (a chain of modifying CTEs over distributed tables is planned in steps instead, with a"
    echo "two-phase commit over every node: about 120 ms a call)."
} >"$doc_out"
lc_log "wrote $doc_out"
cat "$doc_out"
finish
