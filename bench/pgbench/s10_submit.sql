-- scenario 10 (bench/s10_mixed.sql): a fault report to fault_s10 (its task in pool s10 with a
-- 5-second deadline, and an outbox event).
SELECT lowcode.submit('insp', 'fault_s10', '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}');
