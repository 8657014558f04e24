-- The physical limit of a workflow submit with the runtime distributed by app: the rows of
-- plain_workflow.sql by its one statement straight into app insp's shards, on their node, by
-- one function Citus delegates there (bench/citus.sql, bench.submit_byapp_shards).
SELECT bench.submit_byapp_shards('insp', '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}');
