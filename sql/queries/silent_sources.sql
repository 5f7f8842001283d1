-- Sources that have gone quiet.
--
-- Answers: "which feeds stopped delivering?" Sources with no item archived (by fetched_at)
-- in the last :hours hours, or none ever, from the source_health view, with the fetch
-- failure count and last error that usually say why (a feed that fetches fine but has
-- nothing new shows 0 failures). Longest silent first; never-seen sources at the top.
--
-- Dialect: postgresql (make_interval); the source_health view itself exists on SQLite too
--
-- Parameters:
--   :hours  integer  silent for at least this many hours (default 48)
--
-- Example:
--   sentinela query silent_sources --param hours=24
SELECT h.name AS source,
       h.kind,
       h.country,
       h.last_item_at,
       round(CAST(extract(epoch FROM now() - h.last_item_at) / 3600.0 AS numeric), 1)
           AS hours_silent,
       h.items_7d,
       h.last_success_at,
       h.consecutive_failures,
       h.last_error
FROM source_health h
WHERE h.last_item_at IS NULL
   OR h.last_item_at < now() - make_interval(hours => CAST(:hours AS integer))
ORDER BY h.last_item_at ASC NULLS FIRST, h.name
