-- The top stories of the last 24 hours by classifier score, one row per story.
--
-- Answers: "what must I read this morning?" Matched items (latest classification) published
-- in the last :hours hours, grouped into stories by cluster_id (near-duplicates from
-- several outlets are one story); each story shows its best-scoring item, its score, how
-- many items and sources carry it and when it first appeared. Highest score first, then
-- the most widely covered.
--
-- Dialect: postgresql (DISTINCT ON, make_interval)
--
-- Parameters:
--   :hours  integer  look-back window in hours, by published_at (default 24)
--   :limit  integer  most stories to return (default 20)
--
-- Example:
--   sentinela query top_stories_24h --param hours=12 --param limit=10
WITH recent AS (
    SELECT i.id, COALESCE(i.cluster_id, i.id) AS story, i.source_id, i.published_at,
           i.title, i.canonical_url, i.lang, c.score, c.labels
    FROM items i
    JOIN classifications c ON c.item_id = i.id
    WHERE i.published_at >= now() - make_interval(hours => CAST(:hours AS integer))
      AND c.is_match
      AND c.id = (SELECT MAX(c2.id) FROM classifications c2 WHERE c2.item_id = i.id)
),
stories AS (
    SELECT story, COUNT(*) AS items, COUNT(DISTINCT source_id) AS sources,
           MIN(published_at) AS first_seen
    FROM recent
    GROUP BY story
),
best AS (
    SELECT DISTINCT ON (story) *
    FROM recent
    ORDER BY story, score DESC, published_at, id
)
SELECT b.story AS story_id,
       round(CAST(b.score AS numeric), 3) AS score,
       b.labels,
       st.items,
       st.sources,
       st.first_seen,
       src.name AS source,
       b.lang,
       b.title,
       b.canonical_url AS url,
       b.id AS item_id
FROM best b
JOIN stories st ON st.story = b.story
JOIN sources src ON src.id = b.source_id
ORDER BY b.score DESC, st.sources DESC, st.first_seen
LIMIT CAST(:limit AS integer)
