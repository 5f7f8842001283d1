-- How long alerts take: publication to Slack, and archive to Slack.
--
-- Answers: "are analysts hearing about it in time, and whose fault is the delay?" For
-- alerts sent in the last :days days: the median, 95th percentile and worst delay from the
-- item's published_at to the alert's sent_at (what the analyst experiences: the feed's own
-- lag included), and the median from fetched_at to sent_at (the pipeline's part). One row
-- per channel and source, plus one "(all sources)" row per channel. A negative delay means
-- the feed dated the item after we had alerted on it.
--
-- Dialect: postgresql (percentile_cont, GROUPING SETS, make_interval)
--
-- Parameters:
--   :days  integer  alerts sent in the last N days (default 7)
--
-- Example:
--   sentinela query alert_latency --param days=30
WITH sent AS (
    SELECT a.channel, s.name AS source,
           extract(epoch FROM a.sent_at - i.published_at) / 60.0 AS published_min,
           extract(epoch FROM a.sent_at - i.fetched_at) / 60.0 AS pipeline_min
    FROM alerts a
    JOIN items i ON i.id = a.item_id
    JOIN sources s ON s.id = i.source_id
    WHERE a.status = 'sent'
      AND a.sent_at >= now() - make_interval(days => CAST(:days AS integer))
      AND i.published_at IS NOT NULL
)
SELECT channel,
       COALESCE(source, '(all sources)') AS source,
       COUNT(*) AS alerts_sent,
       round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY published_min) AS numeric), 1)
           AS p50_published_to_alert_min,
       round(CAST(percentile_cont(0.95) WITHIN GROUP (ORDER BY published_min) AS numeric), 1)
           AS p95_published_to_alert_min,
       round(CAST(MAX(published_min) AS numeric), 1) AS max_published_to_alert_min,
       round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY pipeline_min) AS numeric), 1)
           AS p50_fetched_to_alert_min
FROM sent
GROUP BY GROUPING SETS ((channel, source), (channel))
ORDER BY channel, GROUPING(source) DESC, p95_published_to_alert_min DESC, source
