-- lowcode.submit to the same form with the inspection workflow (severity 5: a rule, a task with a deadline, an outbox event)
SELECT lowcode.submit('insp', 'fault_wf', '{"site": "plant-7", "severity": 5, "machine": "M-042", "reported_at": "2026-11-25T08:30:00Z", "category": "electrical", "description": "bearing noise above normal", "downtime_minutes": 12.5, "photos": ["valve.jpg"]}');
