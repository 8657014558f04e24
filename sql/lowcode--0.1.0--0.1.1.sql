-- lowcode 0.1.0 → 0.1.1: this update changes nothing in the catalog.
--
-- It exists so that `ALTER EXTENSION lowcode UPDATE TO '0.1.1'` has a path, and so that
-- tests/system/upgrade.sh can check the upgrade machinery: 0.1.0 (frozen in
-- sql/releases/lowcode--0.1.0.sql) updated with this script must have exactly the catalog of
-- a fresh 0.1.1 install. When 0.1.1 really changes something, put the ALTER / CREATE OR
-- REPLACE statements here.
\echo Use "ALTER EXTENSION lowcode UPDATE TO '0.1.1'" to load this file. \quit
