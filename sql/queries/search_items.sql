-- Every archived item (matched or not) that mentions some words, newest first.
--
-- Answers: "did anyone report this, even where the model did not alert?" The recall check
-- behind facility_mentions: the same language-aware full-text search over the whole
-- archive, with a column saying whether the item was a match.
--
-- The words are read as English, Spanish, Portuguese and as written, and an item matches
-- when its text, indexed in its own language, matches one of those readings.
--
-- Dialect: postgresql (full-text search; item_search_vector/item_search_query from 0002)
--
-- Parameters:
--   :q      text     words to look for, web-search syntax: "exact phrase", OR, -word
--   :days   integer  look-back window in days, by published_at (default 30)
--   :lang   text     only items in this language (en, es, pt), or every language (default none)
--   :limit  integer  most rows to return (default 50)
--
-- Example:
--   sentinela query search_items --param q='motín OR rebelión' --param lang=es
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
       i.lang,
       i.title,
       i.canonical_url AS url,
       COALESCE((SELECT c.is_match FROM classifications c
                 WHERE c.item_id = i.id ORDER BY c.id DESC LIMIT 1), false) AS matched,
       ts_headline(item_ts_config(i.lang), i.text, item_search_query(CAST(:q AS text)),
                   'MaxFragments=1, MaxWords=30, MinWords=12, StartSel=«, StopSel=»') AS excerpt
FROM hits h
JOIN items i ON i.id = h.id
JOIN sources s ON s.id = i.source_id
WHERE CAST(:lang AS text) IS NULL OR i.lang = CAST(:lang AS text)
ORDER BY i.published_at DESC, i.id DESC
LIMIT CAST(:limit AS integer)
