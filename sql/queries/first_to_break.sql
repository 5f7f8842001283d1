-- Sources that broke stories first.
--
-- Answers: "which outlets should we watch most closely?" A story is a cluster of
-- near-duplicate items (items.cluster_id, set by deduplication); a source broke it when its
-- first item of the cluster has the earliest published_at (ties all count). Only clusters
-- with a later copy published in the window and covered by at least :min_sources sources
-- count; for each
-- source: stories it broke, stories it covered, the share it broke, and the median lead
-- in minutes over the next source when it was first.
--
-- Dialect: postgresql (window functions, percentile_cont, make_interval)
--
-- Parameters:
--   :days         integer  clusters with an item published in the last N days (default 30)
--   :min_sources  integer  clusters covered by at least this many sources (default 2)
--
-- Example:
--   sentinela query first_to_break --param days=30 --param min_sources=3
WITH recent AS (
    -- Deduplication gives a cluster the id of its first item, so an item whose cluster_id is
    -- not its own id is a later copy: this finds the clusters with more than one item
    -- without grouping every singleton story of the window.
    SELECT DISTINCT i.cluster_id
    FROM items i
    WHERE i.cluster_id <> i.id
      AND i.published_at >= now() - make_interval(days => CAST(:days AS integer))
),
per_source AS (
    -- LATERAL: one ix_items_cluster_id lookup per cluster (the planner cannot tell how few
    -- items have cluster_id <> id, and would rather scan the whole table)
    SELECT r.cluster_id, x.source_id, x.first_at
    FROM recent r
    CROSS JOIN LATERAL (
        SELECT i.source_id, MIN(i.published_at) AS first_at
        FROM items i
        WHERE i.cluster_id = r.cluster_id AND i.published_at IS NOT NULL
        GROUP BY i.source_id
    ) x
),
ranked AS (
    SELECT p.*,
           rank() OVER (PARTITION BY p.cluster_id ORDER BY p.first_at) AS pos,
           COUNT(*) OVER (PARTITION BY p.cluster_id) AS n_sources,
           lead(p.first_at) OVER (PARTITION BY p.cluster_id ORDER BY p.first_at) AS next_at
    FROM per_source p
)
SELECT s.name AS source,
       s.country,
       COUNT(*) FILTER (WHERE r.pos = 1) AS stories_first,
       COUNT(*) AS stories_covered,
       round(100.0 * COUNT(*) FILTER (WHERE r.pos = 1) / COUNT(*), 1) AS pct_first,
       round(CAST(percentile_cont(0.5) WITHIN GROUP (
                 ORDER BY extract(epoch FROM r.next_at - r.first_at) / 60.0)
                 FILTER (WHERE r.pos = 1) AS numeric), 1) AS median_lead_min
FROM ranked r
JOIN sources s ON s.id = r.source_id
WHERE r.n_sources >= CAST(:min_sources AS integer)
GROUP BY s.name, s.country
ORDER BY stories_first DESC, pct_first DESC, s.name
