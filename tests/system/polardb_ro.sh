#!/usr/bin/env bash
# polardb_ro — lowcode on a PolarDB for PostgreSQL read-only node: a primary ("RW node") and a
# replica ("RO node") sharing one copy of the data, PolarDB's shared-storage mode on a local
# directory (polar_vfs.localfs_mode, as PolarDB's own build.sh and TAP tests set it up):
#   1. initdb, then PolarDB's settings (polar_enable_shared_storage_mode, polar_hostid 1,
#      polar_datadir = 'file-dio://<dir>/shared', polar_vfs preloaded with lowcode) and
#      `polar-initdb.sh <data>/ <shared>/ primary localfs`, which moves the databases, WAL,
#      CLOG ... into the shared directory; started as the RW node, with lowcode's worker;
#   2. the RO node: `polar-initdb.sh <ro-data>/ <shared>/ replica localfs` (a local directory
#      with no copy of the data), the primary's configuration, polar_hostid 2, replica.signal,
#      primary_conninfo and a replication slot; it reads the primary's pages from the shared
#      directory and replays WAL on them;
#   3. the checks of tests/system/standby.sh on the RO node (sys_replica_checks in lib.sh:
#      reads work, writes fail with 25006, the worker stays idle there, a new form version is
#      enforced after replay), and that it really is one: polar_node_type() says 'replica'
#      there and 'primary' on the RW node, and the RO node's own directory holds no relation
#      file of the app's database.
# Only PolarDB has this: on another PostgreSQL (no polar-initdb.sh in its bindir) the test says
# so and passes without starting anything (`make test-polardb` runs it on PolarDB and fails if
# it did not run there, see scripts/polardb_stage.sh).
# Ports 28856 (RW) and 28857 (RO). LOWCODE_POLARDB_RO_MAX_WORKERS: max_worker_processes of both
# (default 32; PolarDB's default, 16, starves lowcode's launcher: see docs/polardb.md).
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

if [ ! -x "$pg_bin/polar-initdb.sh" ]; then
    echo "polardb_ro: not PolarDB ($("$PG_CONFIG" --version), no $pg_bin/polar-initdb.sh): nothing to test here"
    exit 0
fi

step "the RW node: initdb, PolarDB's shared-storage settings, polar-initdb.sh primary"
sys_start polar_rw 28856
lc_as_pg "$pg_bin/pg_ctl" stop -D "$(sys_data polar_rw)" -m fast -w -t 60 >/dev/null || fail "stop failed"
shared="$(sys_dir polar_rw)/shared"
rm -rf "$shared"
mkdir -m 700 "$shared"
chown "$PG_OS_USER:" "$shared"
{
    echo "# PolarDB shared storage on a local directory (tests/system/polardb_ro.sh)"
    echo "polar_enable_shared_storage_mode = on"
    echo "polar_vfs.localfs_mode = on"
    echo "polar_disk_name = 'lowcode'"
    echo "polar_datadir = 'file-dio://$shared'"
    echo "polar_hostid = 1"
    echo "polar_logindex_mem_size = 64MB"
    echo "polar_xlog_queue_buffers = 64MB"
    echo "polar_xlog_page_buffers = 64MB"
    echo "polar_has_partial_write = on"
    echo "full_page_writes = off"
    echo "shared_buffers = 128MB"
    echo "hot_standby = on"
    echo "hot_standby_feedback = on"
    # Shared-storage mode starts 10 "polar parallel bgwriter" background workers, which leaves
    # PolarDB's default max_worker_processes (16) too few slots for lowcode's launcher and its
    # workers (PolarDB's sample configuration sets 128, its TAP tests 32).
    echo "max_worker_processes = ${LOWCODE_POLARDB_RO_MAX_WORKERS:-32}"
    # shellcheck disable=SC2016  # $libdir is for the server to expand
    sys_worker_conf '$libdir/polar_vfs,$libdir/polar_worker'
} | sys_conf polar_rw
lc_as_pg "$pg_bin/polar-initdb.sh" "$(sys_data polar_rw)/" "$shared/" primary localfs >"$SYS_WORK/polar-initdb-rw.log" 2>&1 ||
    fail "polar-initdb.sh primary failed: $(cat "$SYS_WORK/polar-initdb-rw.log")"
lc_as_pg "$pg_bin/pg_ctl" start -D "$(sys_data polar_rw)" -l "$(sys_log polar_rw)" -w -t 60 >/dev/null ||
    fail "the RW node did not start: $(tail -n 20 "$(sys_log polar_rw)")"
sys_expect "RW node: shared storage" "on" polar_rw postgres "SHOW polar_enable_shared_storage_mode"
sys_psql polar_rw -d postgres -c "SELECT pg_create_physical_replication_slot('polar_ro')" >/dev/null

step "a primary with an app"
sys_replica_app polar_rw

step "the RO node: polar-initdb.sh replica, the primary's configuration, replica.signal"
sys_replica_dir polar_ro polardb_ro_node 28857
lc_as_pg mkdir -m 700 "$(sys_data polar_ro)"
lc_as_pg "$pg_bin/polar-initdb.sh" "$(sys_data polar_ro)/" "$shared/" replica localfs >"$SYS_WORK/polar-initdb-ro.log" 2>&1 ||
    fail "polar-initdb.sh replica failed: $(cat "$SYS_WORK/polar-initdb-ro.log")"
for f in postgresql.conf pg_hba.conf pg_ident.conf; do
    lc_as_pg cp "$(sys_data polar_rw)/$f" "$(sys_data polar_ro)/$f"
done
{
    echo "# the RO node (tests/system/polardb_ro.sh)"
    echo "port = $(sys_port polar_ro)"
    echo "unix_socket_directories = '$(sys_sock polar_ro)'"
    echo "polar_hostid = 2"
    echo "primary_conninfo = 'host=127.0.0.1 port=$(sys_port polar_rw) user=$PG_OS_USER application_name=polar_ro'"
    echo "primary_slot_name = 'polar_ro'"
    echo "recovery_target_timeline = 'latest'"
} | sys_conf polar_ro
lc_as_pg touch "$(sys_data polar_ro)/replica.signal"
lc_as_pg "$pg_bin/pg_ctl" start -D "$(sys_data polar_ro)" -l "$(sys_log polar_ro)" -w -t 60 >/dev/null ||
    fail "the RO node did not start: $(tail -n 20 "$(sys_log polar_ro)")"
sys_expect "RO node is in recovery" t polar_ro app "SELECT pg_is_in_recovery()"

step "it is a PolarDB RO node: no copy of the data of its own"
sys_psql polar_rw -d app -c "CREATE EXTENSION polar_monitor" >/dev/null
sys_wait_replay polar_rw polar_ro
check sys_expect "RW node: polar_node_type()" primary polar_rw app "SELECT polar_node_type()"
check sys_expect "RO node: polar_node_type()" replica polar_ro app "SELECT polar_node_type()"
no_local_relations() {
    local oid files
    oid="$(sys_val polar_ro app "SELECT oid FROM pg_database WHERE datname = 'app'")"
    files="$(find "$(sys_data polar_ro)/base/$oid" -type f -name '[0-9]*' | head -n 5)"
    [ -z "$files" ] || fail "the RO node has relation files of its own: $files"
    [ -n "$(find "$shared/base/$oid" -type f -name '[0-9]*' | head -n 1)" ] ||
        fail "no relation files of app in the shared directory $shared/base/$oid"
}
check no_local_relations "RO node: app's relation files are in the shared directory only"

sys_replica_checks polar_rw polar_ro
check sys_expect "RW node: the RO node streams" "1" polar_rw app \
    "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'polar_ro' AND state = 'streaming'"
finish
# The RO node first (without its RW node it retries the connection until stopped), then its
# slot: a RW node's shutdown checkpoint waits for the replay position of every RO node's slot,
# so a slot left behind by an RO node stopped while replay lagged keeps the RW node from
# stopping (seen: pg_ctl stop -m fast waiting 60 s until -m immediate).
lc_stop_datadir "$(sys_data polar_ro)"
sys_psql polar_rw -d postgres -c "SELECT pg_drop_replication_slot('polar_ro')" >/dev/null
echo "polardb_ro: ok (PolarDB shared-storage RO node)"
