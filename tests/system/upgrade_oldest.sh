#!/usr/bin/env bash
# upgrade_oldest — tests/system/upgrade.sh from the first frozen release (sql/releases), so that
# a database made by it is updated through every update script to the current version, as
# well as from the newest release (upgrade.sh itself). Nothing to do while they are the same.
here="$(cd "$(dirname "$0")" && pwd)"
oldest="$(find "$here/../../sql/releases" -maxdepth 1 -name 'lowcode--*.sql' -printf '%f\n' |
    sed -E 's/^lowcode--(.*)\.sql$/\1/' | sort -V | head -n 1)"
export LOWCODE_UPGRADE_FROM="$oldest" LC_NAME=upgrade_oldest
exec bash "$here/upgrade.sh"
