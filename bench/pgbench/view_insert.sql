-- INSERT through the typed view of the form without a workflow (the same document, as columns)
INSERT INTO insp.fault (site, severity, machine, reported_at, category, description, downtime_minutes, photos)
VALUES ('plant-7', 5, 'M-042', '2026-11-25T08:30:00Z', 'electrical', 'bearing noise above normal', 12.5, '["valve.jpg"]');
