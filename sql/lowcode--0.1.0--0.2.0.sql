-- lowcode 0.1.0 → 0.2.0, written by hand (`ALTER EXTENSION lowcode UPDATE TO '0.2.0'`).
--
-- tests/system/upgrade.sh installs the frozen 0.1.0 script (sql/releases/lowcode--0.1.0.sql),
-- fills it with a lived-in app, runs this script and checks that the catalog equals a fresh
-- 0.2.0 install. The 0.2.0 library keeps every C function 0.1.0's SQL calls, so a server can
-- hold databases on 0.1.0 and 0.2.0 at once (see docs/operations.md, "Upgrading").
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.2.0'" to load this file. \quit
