-- one claim from the pool (pgbench -D pool=...), worker w<client>
SELECT lowcode.claim_task(:pool, 'w' || :client_id);
