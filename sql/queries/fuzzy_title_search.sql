-- Items whose title looks like what you typed, typos and missing accents included.
--
-- Answers: "I half-remember a headline: find it." Trigram word similarity (pg_trgm) between
-- the words typed and the closest stretch of each title; "Penitenciaria del Litorall"
-- finds "Penitenciaría del Litoral". Only titles at or above pg_trgm's
-- word_similarity_threshold (0.6 unless the session sets pg_trgm.word_similarity_threshold)
-- are returned, most similar first. Uses the trigram index ix_items_title_trgm.
--
-- Dialect: postgresql (pg_trgm)
--
-- Parameters:
--   :q      text     the title, or part of it, as you remember it
--   :limit  integer  most rows to return (default 20)
--
-- Example:
--   sentinela query fuzzy_title_search --param q='motin carcel guayaqil'
SELECT i.id AS item_id,
       round(CAST(word_similarity(CAST(:q AS text), i.title) AS numeric), 2) AS similarity,
       i.published_at,
       s.name AS source,
       i.lang,
       i.title,
       i.canonical_url AS url
FROM items i
JOIN sources s ON s.id = i.source_id
WHERE CAST(:q AS text) <% i.title
ORDER BY word_similarity(CAST(:q AS text), i.title) DESC, i.published_at DESC NULLS LAST
LIMIT CAST(:limit AS integer)
