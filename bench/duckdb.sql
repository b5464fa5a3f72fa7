-- hopscope's report, hand-written in SQL for DuckDB, for the `--rich` logs
-- of examples/gen_logs (one JSON schema in every file: ts, level, service,
-- request_id, event, peer, status, error). bench/run.sh replaces __LOGS__
-- with the glob of the log files and runs the statements in order; the
-- three final SELECTs are the result (services, hops, requests).
--
-- What it relies on (true of the generated data, not of logs in general,
-- which is why hopscope does more): events carry kinds; the k-th
-- server_recv of a (request, service) pairs with its k-th server_send and
-- the k-th client_send to a peer with the k-th client_recv (calls to one
-- peer are sequential); every service has one caller, so its k-th visit in
-- a request answers the k-th call to it; no clock correction is needed for
-- these figures (processing and propagation do not depend on skew).
-- Quantiles are quantile_disc; hopscope's are nearest-rank (rank ⌈q·n⌉).

SET threads = 2;

-- Every line, once, with the failure flag of SPEC §1.
CREATE TEMP TABLE ev AS
SELECT
    epoch_us(ts::TIMESTAMPTZ) AS t,
    service,
    request_id,
    event,
    peer,
    (level IN ('error', 'fatal', 'critical')
        OR coalesce(status, 0) >= 500
        OR error IS NOT NULL) AS failed
FROM read_ndjson(
    '__LOGS__',
    columns = {ts: 'VARCHAR', level: 'VARCHAR', service: 'VARCHAR',
               request_id: 'VARCHAR', event: 'VARCHAR', peer: 'VARCHAR',
               status: 'INTEGER', error: 'VARCHAR'},
    format = 'newline_delimited'
);

-- Visits: k-th server_recv with the k-th server_send of a (request, service).
CREATE TEMP TABLE visits AS
WITH s AS (
    SELECT request_id, service, event, t, failed,
           row_number() OVER (PARTITION BY request_id, service, event ORDER BY t) AS k
    FROM ev
    WHERE event IN ('server_recv', 'server_send')
)
SELECT r.request_id, r.service, r.k, r.t AS v_start, e.t AS v_end,
       r.failed OR e.failed AS failed
FROM s AS r
JOIN s AS e ON e.request_id = r.request_id AND e.service = r.service AND e.k = r.k
WHERE r.event = 'server_recv' AND e.event = 'server_send';

-- Calls: k-th client_send with the k-th client_recv to the same peer (none
-- for a hand-off), and the callee's k-th visit (none for a virtual peer).
CREATE TEMP TABLE calls AS
WITH c AS (
    SELECT request_id, service, peer, event, t, failed,
           row_number() OVER (PARTITION BY request_id, service, peer, event ORDER BY t) AS k
    FROM ev
    WHERE event IN ('client_send', 'client_recv')
)
SELECT s.request_id, s.service AS caller, s.peer AS callee, s.k,
       s.t AS cs, r.t AS cr, coalesce(r.failed, false) AS cr_failed,
       v.v_start, v.v_end, v.failed AS v_failed
FROM c AS s
LEFT JOIN c AS r
    ON r.request_id = s.request_id AND r.service = s.service AND r.peer = s.peer
   AND r.k = s.k AND r.event = 'client_recv'
LEFT JOIN visits AS v
    ON v.request_id = s.request_id AND v.service = s.peer AND v.k = s.k
WHERE s.event = 'client_send';

-- Per service: logged services from their visits, virtual ones from calls.
SELECT 'service' AS row_kind, service AS name, false AS virtual,
       count(*) AS visits, count(*) FILTER (failed) AS failed,
       round(count(*) FILTER (failed) / count(*), 6) AS failure_rate,
       quantile_disc(v_end - v_start, [0.5, 0.9, 0.99]) AS processing_us,
       avg(v_end - v_start) AS processing_mean_us,
       max(v_end - v_start) AS processing_max_us
FROM visits GROUP BY service
UNION ALL
SELECT 'service', callee, true, count(*), count(*) FILTER (cr_failed),
       round(count(*) FILTER (cr_failed) / count(*), 6), NULL, NULL, NULL
FROM calls WHERE v_start IS NULL AND cr IS NOT NULL GROUP BY callee
ORDER BY name;

-- Per hop: calls, failures (callee failed or its answer failed), call
-- time, processing, propagation = (cr − cs) − processing, or the queue
-- time V.start − cs for a hand-off; the root's hop from (client).
SELECT 'hop' AS row_kind, caller || '>' || callee AS name,
       count(*) AS calls,
       count(*) FILTER (coalesce(v_failed, false) OR cr_failed) AS failed,
       round(count(*) FILTER (coalesce(v_failed, false) OR cr_failed) / count(*), 6) AS failure_rate,
       quantile_disc(cr - cs, [0.5, 0.9, 0.99]) AS call_us,
       quantile_disc(v_end - v_start, [0.5, 0.9, 0.99]) AS processing_us,
       quantile_disc(CASE WHEN cr IS NULL THEN v_start - cs
                          ELSE (cr - cs) - (v_end - v_start) END,
                     [0.5, 0.9, 0.99]) AS propagation_us,
       avg(CASE WHEN cr IS NULL THEN v_start - cs
                ELSE (cr - cs) - (v_end - v_start) END) AS propagation_mean_us
FROM calls GROUP BY caller, callee
UNION ALL
SELECT 'hop', '(client)>' || v.service, count(*), count(*) FILTER (v.failed),
       round(count(*) FILTER (v.failed) / count(*), 6), NULL,
       quantile_disc(v.v_end - v.v_start, [0.5, 0.9, 0.99]), NULL, NULL
FROM visits AS v
ANTI JOIN calls AS c
    ON c.request_id = v.request_id AND c.callee = v.service AND c.k = v.k
GROUP BY v.service
ORDER BY name;

-- Requests: failed when any visit (virtual ones included) failed;
-- root_failed when the root (the visit no call leads to) failed.
WITH per_request AS (
    SELECT request_id, bool_or(failed) AS failed FROM (
        SELECT request_id, failed FROM visits
        UNION ALL
        SELECT request_id, cr_failed FROM calls WHERE v_start IS NULL AND cr IS NOT NULL
    ) GROUP BY request_id
),
roots AS (
    SELECT v.request_id, v.failed, v.v_end - v.v_start AS latency
    FROM visits AS v
    ANTI JOIN calls AS c
        ON c.request_id = v.request_id AND c.callee = v.service AND c.k = v.k
)
SELECT 'requests' AS row_kind,
       count(*) AS total,
       count(*) FILTER (p.failed) AS failed,
       count(*) FILTER (r.failed) AS root_failed,
       quantile_disc(r.latency, [0.5, 0.9, 0.99]) AS latency_us
FROM per_request AS p JOIN roots AS r USING (request_id);
