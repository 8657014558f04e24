#!/usr/bin/env bash
# scripts/citus_stage.sh — lowcode on a three-node Citus cluster: the citus stage of `make test`
# (`make test-citus` runs it alone).
#
# 1. scripts/citus.sh builds Citus 13.2.2 from ../shared/vendor/citus-13.2.2.tar.gz for the
#    PostgreSQL of PG_CONFIG (once: cached under ~/.cache/lowcode/citus, about 8 minutes on two
#    cores the first time, a second afterwards) and installs it there.
# 2. tests/system/citus.sh (through scripts/system.sh, which checks the server logs for
#    crashes), with lowcode as the earlier stages installed it (LOWCODE_INSTALL=1 installs it
#    first).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lc_setup
start=$SECONDS
version="$(bash "$LC_ROOT/scripts/citus.sh")" || lc_die "Citus could not be built or installed (scripts/citus.sh)"
lc_log "Citus $version installed in $("$PG_CONFIG" --pkglibdir) ($((SECONDS - start))s)"
LOWCODE_SYSTEM_TIMEOUT="${LOWCODE_SYSTEM_TIMEOUT:-600}" bash "$LC_ROOT/scripts/system.sh" citus
