-- The plain baseline of a workflow submit as issue 21 designs lowcode's runtime on Citus: the
-- rows of plain_workflow.sql written into tables distributed by app, by one function that
-- Citus delegates to the app's node (bench/citus.sql, bench.submit_byapp).
SELECT bench.submit_byapp('insp', '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}');
