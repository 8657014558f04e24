#!/usr/bin/env bash
# scripts/cluster.sh — manage lowcode's throwaway PostgreSQL clusters by hand.
#
#   scripts/cluster.sh start  [PURPOSE]   fresh cluster, left running (default PURPOSE: dev)
#   scripts/cluster.sh stop   [PURPOSE]
#   scripts/cluster.sh status [PURPOSE]
#   scripts/cluster.sh psql   [PURPOSE] [psql args...]
#   scripts/cluster.sh log    [PURPOSE]   print the server log
#   scripts/cluster.sh check-log [PURPOSE]  fail if the server log shows a crash
#   scripts/cluster.sh stop-all           stop every cluster our scripts started
#                                         (test, demo, bench, pgtest, ...)
# PURPOSE picks directory and default port (see scripts/lib.sh).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd="${1:-}"
[ $# -gt 0 ] && shift
purpose="${1:-dev}"
[ $# -gt 0 ] && shift

case "$cmd" in
    start)
        LC_KEEP_CLUSTERS=1
        lc_cluster_start "$purpose"
        lc_log "running; connect with: $(lc_connect_hint postgres)"
        ;;
    stop)
        lc_cluster_vars "$purpose"
        lc_cluster_stop
        ;;
    status)
        lc_cluster_vars "$purpose"
        if [ -f "$LC_DATA/postmaster.pid" ] &&
            lc_as_pg "$pg_bin/pg_ctl" status -D "$LC_DATA" >/dev/null 2>&1; then
            lc_log "$purpose: running on port $LC_PORT; connect with: $(lc_connect_hint postgres)"
        else
            lc_log "$purpose: not running"
            exit 3
        fi
        ;;
    psql)
        lc_cluster_vars "$purpose"
        lc_psql "$@"
        ;;
    log)
        lc_cluster_vars "$purpose"
        cat "$LC_LOGFILE"
        ;;
    check-log)
        lc_cluster_vars "$purpose"
        lc_log_crash_free "$LC_LOGFILE" && lc_log "no crash in $LC_LOGFILE"
        ;;
    stop-all)
        lc_require_pg_user
        n=0
        while IFS= read -r dir; do
            # <dir>/data for our clusters, <dir>/15-<pid> for cargo pgrx test.
            for pidfile in "$dir"/*/postmaster.pid; do
                [ -f "$pidfile" ] || continue
                lc_stop_datadir "$(dirname "$pidfile")"
                n=$((n + 1))
            done
        done < <(lc_candidate_dirs)
        lc_log "checked $n data director$([ "$n" = 1 ] && echo y || echo ies) with a postmaster.pid"
        ;;
    *)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
