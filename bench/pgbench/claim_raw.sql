-- the physical baseline: the same SKIP LOCKED claim on a plain table, no history row
UPDATE bench.tasks_raw x SET status = 'claimed', claimed_by = 'w' || :client_id, claimed_at = now()
 WHERE x.id = (SELECT c.id FROM bench.tasks_raw c WHERE c.pool = :pool AND c.status = 'open'
                ORDER BY c.id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING x.id;
