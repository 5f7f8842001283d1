-- Precision of alerts by source, from analysts' feedback.
--
-- Answers: "which sources send us noise?" Analysts mark alerted items relevant or
-- not_relevant (table feedback, one verdict per analyst per item). Per source: items
-- judged, votes each way, the share of relevant votes (precision), and the share of judged
-- items that a majority found relevant. Sources with fewer than :min_votes votes are left
-- out: a precision over three votes says little.
--
-- Dialect: postgresql (FILTER, make_interval)
--
-- Parameters:
--   :days       integer  feedback given in the last N days (default 90)
--   :min_votes  integer  only sources with at least this many votes (default 1)
--
-- Example:
--   sentinela query precision_by_source --param days=30 --param min_votes=10
WITH votes AS (
    SELECT f.item_id, i.source_id, f.label_verdict, f.created_at
    FROM feedback f
    JOIN items i ON i.id = f.item_id
    WHERE f.created_at >= now() - make_interval(days => CAST(:days AS integer))
),
per_item AS (
    SELECT item_id, source_id,
           AVG(CASE WHEN label_verdict = 'relevant' THEN 1.0 ELSE 0.0 END) AS relevant_share
    FROM votes
    GROUP BY item_id, source_id
),
by_source AS (
    SELECT source_id,
           COUNT(*) AS items_judged,
           COUNT(*) FILTER (WHERE relevant_share > 0.5) AS items_relevant
    FROM per_item
    GROUP BY source_id
)
SELECT s.name AS source,
       s.country,
       b.items_judged,
       COUNT(*) FILTER (WHERE v.label_verdict = 'relevant') AS relevant_votes,
       COUNT(*) FILTER (WHERE v.label_verdict = 'not_relevant') AS not_relevant_votes,
       round(100.0 * COUNT(*) FILTER (WHERE v.label_verdict = 'relevant') / COUNT(*), 1)
           AS precision_pct,
       round(100.0 * b.items_relevant / b.items_judged, 1) AS items_relevant_pct,
       MAX(v.created_at) AS last_feedback_at
FROM votes v
JOIN by_source b ON b.source_id = v.source_id
JOIN sources s ON s.id = v.source_id
GROUP BY s.name, s.country, b.items_judged, b.items_relevant
HAVING COUNT(*) >= CAST(:min_votes AS integer)
ORDER BY precision_pct ASC, COUNT(*) DESC, s.name
