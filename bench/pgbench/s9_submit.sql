-- scenario 9 (bench/s9_growth.sql): lowcode.submit to fault_s9, severity 5 (the rule gives it a
-- task in pool s9 and a deadline).
SELECT lowcode.submit('insp', 'fault_s9', '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}');
