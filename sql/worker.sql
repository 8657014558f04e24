-- The background worker (src/worker.rs): with shared_preload_libraries = 'lowcode', a
-- launcher and a bounded pool of workers (lowcode.worker_max) serve every database that has
-- lowcode, visiting them where work is due; they fire timers on time and deliver events to
-- webhooks. Without it everything works as before (run_due_timers from a
-- scheduler), and lowcode.worker_status() says the worker is off and why.

COMMENT ON FUNCTION lowcode.worker_preloaded() IS 'Internal: is lowcode in shared_preload_libraries, so that its background worker runs?';
COMMENT ON FUNCTION lowcode.worker_databases() IS 'Internal: what lowcode''s worker pool knows about each database (state, worker pid, visits, next due time), read by lowcode.worker_status.';
COMMENT ON FUNCTION lowcode.worker_note_changed() IS 'Internal: lowcode was installed here or its webhooks changed: the worker pool looks at this database after the commit.';
COMMENT ON FUNCTION lowcode.worker_note_due(timestamptz) IS 'Internal: a timer written in this transaction is due then: the worker pool knows it after the commit.';
COMMENT ON FUNCTION lowcode.worker_processes() IS 'Internal: lowcode''s background processes running now (pid, database, lowcode launcher or lowcode worker), whoever started them.';
COMMENT ON FUNCTION lowcode.webhook_check(text, text) IS 'Internal: raises unless url is an http(s) URL that lowcode.webhook_allow allows and secret a whsec_ secret (never shown in the error).';

CREATE TABLE lowcode.worker_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pid            int,
    acting_as      name,
    started_at     timestamptz,
    last_timer_run timestamptz,
    timers_fired   bigint NOT NULL DEFAULT 0,
    last_error     text,
    last_error_at  timestamptz
);
COMMENT ON TABLE lowcode.worker_state IS 'What lowcode''s workers did in this database (one row, written by each worker that visits it): the pid of the latest, the role it acts as (the extension''s owner), when its visit began, the last timer run and the timers fired, the last error. Not dumped: it describes running processes.';

CREATE FUNCTION lowcode.worker_status()
RETURNS TABLE (database name, state text, pid int, acting_as name, started_at timestamptz, last_timer_run timestamptz,
               timers_fired bigint, last_error text, last_error_at timestamptz, detail text,
               last_visit timestamptz, next_due timestamptz, visits bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    launcher int;
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read the worker''s status');
    IF NOT lowcode.worker_preloaded() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'lowcode is not in shared_preload_libraries: timers fire only when something calls lowcode.run_due_timers(), and webhooks are not delivered'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    IF pg_is_in_recovery() THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'this server is a standby (read-only): timers fire and webhooks are delivered on the primary; the launcher starts here if it is promoted'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    SELECT p.pid INTO launcher FROM lowcode.worker_processes() p WHERE p.kind = 'lowcode launcher' LIMIT 1;
    IF launcher IS NULL THEN
        RETURN QUERY SELECT current_database(), 'off'::text, NULL::int, NULL::name, NULL::timestamptz, NULL::timestamptz,
                            NULL::bigint, NULL::text, NULL::timestamptz,
                            'the lowcode launcher is not running (starting, restarting after a crash, or out of max_worker_processes: see the server log)'::text,
                            NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.database::name, d.state, d.pid, s.acting_as, d.arrived, s.last_timer_run, s.timers_fired,
           s.last_error, s.last_error_at, d.detail || format(' (launcher pid %s)', launcher),
           d.last_visit, d.next_due, d.visits
      FROM lowcode.worker_databases() d
      LEFT JOIN lowcode.worker_state s ON d.database = current_database()
     ORDER BY d.database = current_database() DESC, d.database;
END $$;
COMMENT ON FUNCTION lowcode.worker_status() IS 'lowcode''s background workers (lowcode administrators): one row per database that has lowcode (this one first): state on (a worker is there now, pid), starting, waiting (work is due and no worker is free, and why: lowcode.worker_max or max_worker_processes), idle (nothing due: a worker comes when something is) or off (and why); when the current or last visit began (started_at) and ended (last_visit), visits, when something is due next; for this database also the role the worker acts as, its last timer run, timers fired and last error.';

-- CREATE EXTENSION lowcode (and ALTER EXTENSION ... UPDATE): the worker pool looks at this
-- database after the commit.
SELECT lowcode.worker_note_changed();

-- ---------------------------------------------------------------- webhooks
-- Each webhook is an outbox consumer named webhook:<name>: the worker POSTs its events, signed
-- as Standard Webhooks says, in order, at least once (src/webhook_delivery.rs).

CREATE TABLE lowcode.webhooks (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    url             text NOT NULL,
    topics          text[],
    secret          text NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    timeout_ms      int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 300000),
    backoff         interval[],
    rate_limit      int CHECK (rate_limit > 0),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'disabled')),
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The app whose events it sends (NULL: every app), as its consumer's: on a distributed
    -- runtime, the worker of that app's node delivers it.
    app             text
);
COMMENT ON TABLE lowcode.webhooks IS 'Webhooks (lowcode.create_webhook): where the worker POSTs the events of their topics (NULL: all), signed with secret; headers, timeout_ms, backoff (NULL: 1 s, 2 s, 4 s ... jittered), rate_limit per second; status active, paused or disabled (410 Gone). Its outbox consumer webhook:<name> keeps its max_attempts (before a dead letter). The secret and headers are readable by lowcode administrators only.';
REVOKE ALL ON lowcode.webhooks FROM PUBLIC;

-- A webhook made, changed or dropped: this node's worker reads the webhooks again. (On a
-- distributed runtime lowcode.webhooks is a reference table: the trigger fires on every node's
-- copy, so every node's worker hears of it.)
CREATE FUNCTION lowcode.webhooks_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lowcode.worker_note_changed();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION lowcode.webhooks_written() IS 'Trigger: lowcode.webhooks changed; the worker of this node reads them again (lowcode.worker_note_changed).';
CREATE TRIGGER webhooks_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lowcode.webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION lowcode.webhooks_written();

CREATE TABLE lowcode.webhook_attempts (
    id            bigserial PRIMARY KEY,
    webhook       text NOT NULL REFERENCES lowcode.webhooks (name) ON DELETE CASCADE,
    event_id      bigint NOT NULL,
    attempt       int NOT NULL,
    attempted_at  timestamptz NOT NULL,
    status_code   int,
    latency_ms    float8 NOT NULL,
    error         text,
    outcome       text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead', 'gone')),
    next_try      timestamptz,
    -- The webhook's app ('' for a webhook of every app): a distributed runtime keeps its
    -- attempts on the app's node, whose worker made them.
    app           text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_webhook_idx ON lowcode.webhook_attempts (webhook, id);
COMMENT ON TABLE lowcode.webhook_attempts IS 'Every webhook delivery attempt: the event, its HTTP status (NULL: no answer), latency, error, outcome (delivered, retry, dead, gone) and next try.';

-- The outbox layer: the only SQL here that knows how consumers are made and dropped.
CREATE FUNCTION lowcode.webhook_consumer(name text, app text, topics text[], max_attempts int, making boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF making THEN
        PERFORM lowcode.create_consumer('webhook:' || name,
                                        jsonb_strip_nulls(jsonb_build_object('app', app, 'topics', topics, 'max_attempts', max_attempts, 'from', 'now')));
    ELSE
        PERFORM lowcode.drop_consumer('webhook:' || name);
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.webhook_consumer(text, text, text[], int, boolean) IS 'Internal: creates (from now on; of one app, or NULL: every app) or drops the outbox consumer webhook:<name> of a webhook.';

CREATE FUNCTION lowcode.create_webhook(name text, url text, topics text[] DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o       jsonb := coalesce(options, '{}');
    secret  text;
    unknown text;
    backoff interval[];
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'create webhooks');
    IF name IS NULL OR url IS NULL THEN
        RAISE EXCEPTION 'lowcode: create_webhook: arguments "name" and "url" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT string_agg(k, ', ') INTO unknown FROM jsonb_object_keys(o) k
     WHERE k NOT IN ('app', 'secret', 'headers', 'timeout', 'max_attempts', 'backoff', 'rate_limit');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'lowcode: webhook %: unknown option(s) %', name, unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'options: app, secret, headers, timeout, max_attempts, backoff, rate_limit';
    END IF;
    secret := coalesce(o->>'secret',
                       'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'));
    PERFORM lowcode.webhook_check(url, secret);
    -- (Checked here: a failing row would be logged with its secret.)
    IF NOT coalesce((o->>'max_attempts')::int BETWEEN 1 AND 100, true) THEN
        RAISE EXCEPTION 'lowcode: webhook %: max_attempts must be between 1 and 100, not %', name, o->>'max_attempts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- (Apart: on a distributed runtime lowcode.webhooks is a reference table, whose INSERT may
    -- have no subquery.)
    backoff := (SELECT array_agg(b::interval ORDER BY i) FROM jsonb_array_elements_text(o->'backoff') WITH ORDINALITY x(b, i));
    INSERT INTO lowcode.webhooks (name, url, topics, secret, headers, timeout_ms, backoff, rate_limit, app)
    VALUES (name, url, topics, secret, coalesce(o->'headers', '{}'),
            coalesce((extract(epoch FROM (o->>'timeout')::interval) * 1000)::int, 10000),
            backoff, (o->>'rate_limit')::int, o->>'app');
    PERFORM lowcode.webhook_consumer(name, o->>'app', topics, coalesce((o->>'max_attempts')::int, 8), true);
    RETURN secret;
END $$;
COMMENT ON FUNCTION lowcode.create_webhook(text, text, text[], jsonb) IS 'Create a webhook (lowcode administrators): the worker POSTs every event of topics (exact or prefix.*; NULL: all) from now on to url, which lowcode.webhook_allow must allow. options: app (only that app''s events; default every app), secret (whsec_...; default a new one), headers (object), timeout (interval, default 10 s), max_attempts (default 8), backoff (array of intervals), rate_limit (per second). Returns the secret: the only time it is shown.';

CREATE FUNCTION lowcode.drop_webhook(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'drop webhooks');
    -- (Its attempts: by their key on one node; on a distributed runtime, where the attempts are
    -- on the app's node and the webhooks on every node, without one.)
    DELETE FROM lowcode.webhook_attempts a WHERE a.webhook = name;
    DELETE FROM lowcode.webhooks w WHERE w.name = name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM lowcode.webhook_consumer(name, NULL, NULL, NULL, false);
    RETURN true;
END $$;
COMMENT ON FUNCTION lowcode.drop_webhook(text) IS 'Drop a webhook, its consumer and its attempts (lowcode administrators); false if there was none.';

CREATE FUNCTION lowcode.pause_webhook(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'pause webhooks');
    UPDATE lowcode.webhooks w SET status = 'paused' WHERE w.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: webhook "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.pause_webhook(text) IS 'Stop sending to a webhook (lowcode administrators); its events wait in the outbox.';

CREATE FUNCTION lowcode.resume_webhook(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'resume webhooks');
    UPDATE lowcode.webhooks w SET status = 'active', disabled_reason = NULL WHERE w.name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lowcode: webhook "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END $$;
COMMENT ON FUNCTION lowcode.resume_webhook(text) IS 'Send to a paused or disabled (410 Gone) webhook again (lowcode administrators), from the events that waited.';

CREATE FUNCTION lowcode.webhook_deliveries(name text, max int DEFAULT 100)
RETURNS TABLE (event_id bigint, attempt int, attempted_at timestamptz, status_code int, latency_ms float8,
               error text, outcome text, next_try timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM lowcode.authorize(NULL, 'lowcode_admin', 'read webhook deliveries');
    RETURN QUERY
    SELECT a.event_id, a.attempt, a.attempted_at, a.status_code, a.latency_ms, a.error, a.outcome, a.next_try
      FROM lowcode.webhook_attempts a WHERE a.webhook = name ORDER BY a.id DESC LIMIT max;
END $$;
COMMENT ON FUNCTION lowcode.webhook_deliveries(text, int) IS 'The latest delivery attempts of a webhook, newest first (lowcode administrators): event, attempt, HTTP status, latency, error, outcome and next try.';
