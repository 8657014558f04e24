-- lowcode 0.2.0 → 0.3.0, written by hand (`ALTER EXTENSION lowcode UPDATE TO '0.3.0'`).
--
-- 0.2.0 is frozen in sql/releases/lowcode--0.2.0.sql. Every change to lowcode's SQL after it
-- goes here as well as into sql/*.sql (in the order of sql/*.sql; a script that adds objects
-- ends with sql/hardening.sql's ownership, privileges and guard, so that an updated database
-- equals a fresh install). tests/system/upgrade.sh updates a lived-in 0.2.0 database with
-- this script and compares its catalog with a fresh install; upgrade_oldest.sh does the same
-- from 0.1.0 through every update script. Nothing has changed yet.
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.3.0'" to load this file. \quit
