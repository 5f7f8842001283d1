-- Matched items per day and country, with a column per label.
--
-- Answers: "where is it happening, and is it getting worse?" Counts matched items (latest
-- classification) by UTC day of published_at and by the source's country; an item with
-- both labels counts once in `matches` and once in each label column. Items without a
-- publication date are not counted. For the same counts by label and language across
-- the whole archive (both dialects), see the daily_counts view.
--
-- Dialect: postgresql (jsonb containment, make_interval)
--
-- Parameters:
--   :days     integer  the last N days, today included (default 14)
--   :country  text     only this country, as in sources.country, e.g. EC (default none)
--
-- Example:
--   sentinela query daily_matches_by_country --param days=30 --param country=EC
SELECT CAST(i.published_at AT TIME ZONE 'UTC' AS date) AS day,
       COALESCE(s.country, '?') AS country,
       COUNT(*) AS matches,
       COUNT(*) FILTER (WHERE c.labels @> '["gang_prison_control"]') AS gang_prison_control,
       COUNT(*) FILTER (WHERE c.labels @> '["security_operation"]') AS security_operation
FROM items i
JOIN classifications c ON c.item_id = i.id
JOIN sources s ON s.id = i.source_id
WHERE i.published_at >= (date_trunc('day', now() AT TIME ZONE 'UTC')
                         - make_interval(days => CAST(:days AS integer) - 1)) AT TIME ZONE 'UTC'
  AND (CAST(:country AS text) IS NULL OR s.country = CAST(:country AS text))
  AND c.is_match
  AND c.id = (SELECT MAX(c2.id) FROM classifications c2 WHERE c2.item_id = i.id)
GROUP BY 1, 2
ORDER BY 1 DESC, 3 DESC, 2
