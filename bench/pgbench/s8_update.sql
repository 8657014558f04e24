-- scenario 8 (bench/s8_actions.sql): lowcode.update_record on this client's own records of
-- form fault_s8 (no rule listens): call n replaces the data of record (n - 1) mod per of the
-- client's block with the fault report below, downtime_minutes = n (so every call changes
-- it). Writes: the record (data, revision, updated_at/_by) and its 'updated' history row
-- (before and after). (-D edit_first=, per=, n=0 from scripts/bench.sh.)
\set n :n + 1
\set rec :edit_first + :client_id * :per + (:n - 1) % :per
SELECT lowcode.update_record(:rec, '{"site": "plant-7", "severity": 2, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}'::jsonb || jsonb_build_object('downtime_minutes', CAST(:n AS int)));
