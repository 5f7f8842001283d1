-- Matched items that mention a facility (or any words) in the last few days.
--
-- Answers: "what did our alerts say about La Roca / the Litoral penitentiary / CECOT this
-- week?" Full-text search in each item's own language (Spanish items are stemmed as Spanish,
-- so "cárceles" finds "cárcel"), limited to items the classifier matched (latest
-- classification), newest first, with the passage that matched.
--
-- The words are read as English, Spanish, Portuguese and as written, and an item matches
-- when its text, indexed in its own language, matches one of those readings.
--
-- Dialect: postgresql (full-text search; item_search_vector/item_search_query from 0002)
--
-- Parameters:
--   :q      text     words to look for, web-search syntax: "exact phrase", OR, -word
--   :days   integer  look-back window in days, by published_at (default 7)
--   :limit  integer  most rows to return (default 50)
--
-- Example:
--   sentinela query facility_mentions --param q='"Penitenciaría del Litoral"' --param days=7
-- MATERIALIZED: find the hits through the indexes first; left to itself, the planner
-- walks published_at newest first and computes every item's tsvector until it has :limit
WITH hits AS MATERIALIZED (
    SELECT i.id
    FROM items i
    WHERE item_search_vector(i.lang, i.title, i.text) @@ item_search_query(CAST(:q AS text))
      AND i.published_at >= now() - make_interval(days => CAST(:days AS integer))
)
SELECT i.id AS item_id,
       i.published_at,
       s.name AS source,
       s.country,
       i.lang,
       i.title,
       i.canonical_url AS url,
       c.labels,
       round(CAST(c.score AS numeric), 3) AS score,
       ts_headline(item_ts_config(i.lang), i.text, item_search_query(CAST(:q AS text)),
                   'MaxFragments=1, MaxWords=30, MinWords=12, StartSel=«, StopSel=»') AS excerpt
FROM hits h
JOIN items i ON i.id = h.id
JOIN sources s ON s.id = i.source_id
JOIN classifications c ON c.item_id = i.id
WHERE c.is_match
  AND c.id = (SELECT MAX(c2.id) FROM classifications c2 WHERE c2.item_id = i.id)
ORDER BY i.published_at DESC, i.id DESC
LIMIT CAST(:limit AS integer)
