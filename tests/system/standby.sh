#!/usr/bin/env bash
# standby — lowcode on a streaming replica (hot standby; tests/system/polardb_ro.sh runs the
# same checks on a PolarDB read-only node on shared storage): a primary with lowcode's worker
# on loopback, pg_basebackup -R, then on the standby (sys_replica_checks in lib.sh)
#   - reads work: validate, is_valid, conforms, conforms_to_version, matches, records and their
#     history, the typed view, tasks, events, workflow_diagram, export_app, diff_app, cache_stats;
#   - writes fail with SQLSTATE 25006 (read_only_sql_transaction): submit, update_record,
#     delete_record, view INSERT, create_app, define_form, define_workflow, claim_task,
#     complete_task, decide, transition, poll_events, emit, ack_events, LISTEN, run_due_timers;
#   - the worker: preloaded on both (the standby's postgresql.conf is the primary's), it runs
#     and fires a timer on the primary; the standby runs no lowcode process and sees the timer
#     fired once, by replay; once promoted, the standby starts a worker;
#   - a new form version defined on the primary is enforced on the standby as soon as replay
#     has caught up (waited for with pg_last_wal_replay_lsn()), also in a session that had
#     validated against the old version before (its cached validator is dropped).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

sys_start primary 28852
sys_worker_conf "" | sys_conf primary
sys_restart primary

step "a primary with an app"
sys_replica_app primary

step "pg_basebackup -R into a standby"
sys_replica_dir standby standby_replica 28853
lc_as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$(sys_port primary)" -U "$PG_OS_USER" \
    -D "$(sys_data standby)" -R -X stream -c fast >"$SYS_WORK/basebackup.log" 2>&1 ||
    fail "pg_basebackup failed: $(cat "$SYS_WORK/basebackup.log")"
printf '%s\n' "# standby (tests/system/standby.sh)" "port = $(sys_port standby)" \
    "unix_socket_directories = '$(sys_sock standby)'" "hot_standby = on" | sys_conf standby
lc_as_pg "$pg_bin/pg_ctl" start -D "$(sys_data standby)" -l "$(sys_log standby)" -w -t 60 >/dev/null ||
    fail "the standby did not start: $(tail -n 20 "$(sys_log standby)")"
sys_expect "standby is in recovery" t standby app "SELECT pg_is_in_recovery()"

sys_replica_checks primary standby
# And the primary keeps working (the standby is attached and streaming).
check sys_expect "primary: the standby streams" "1" primary app \
    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"

step "promoted, the standby runs lowcode's worker"
sys_expect "promoted" t standby app "SELECT pg_promote(true, 60)"
sys_wait_true standby app 20 "a worker for app on the promoted standby" \
    "SELECT state = 'on' AND pid IS NOT NULL FROM lowcode.worker_status() WHERE database = 'app'"
finish
echo "standby: ok"
