-- scenario 9 (bench/s9_growth.sql): lowcode.update_record on the 1,000 records of range 'edit'
-- (downtime_minutes = n, so every call changes the data). (-D edit_first=, n=0.)
\set n :n + 1
\set rec :edit_first + (:n - 1) % 1000
SELECT lowcode.update_record(:rec, '{"site": "plant-7", "severity": 2, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}'::jsonb || jsonb_build_object('downtime_minutes', CAST(:n AS int)));
