-- Gangs named in matched coverage this month that were not named the month before.
--
-- Answers: "which groups are new in our coverage?" For each known gang (the VALUES list
-- below: one row per name or alias; add rows as new groups appear) it counts the matched
-- items (latest classification) that name it this month and the month before, by
-- published_at. A name is found when all its words are, through the full-text index in
-- each item's language (case and, in Spanish, accents do not matter; stop words such as
-- "los" are skipped, so in Spanish items "Los Lobos" is any "lobos": the restriction to
-- matched coverage keeps that honest). Gangs not named this month are left out; new ones
-- come first, then by how often they are named.
--
-- Dialect: postgresql (full-text phrase search; item_search_vector/item_search_query from 0002)
--
-- Parameters:
--   :month  date  any day of the month to report, e.g. 2026-11-01 (default none: this month)
--
-- Example:
--   sentinela query new_gangs --param month=2026-11-01
WITH gangs(gang, term) AS (
    VALUES ('MS-13', 'MS-13'), ('MS-13', 'Mara Salvatrucha'),
           ('Barrio 18', 'Barrio 18'), ('Barrio 18', 'Calle 18'),
           ('Tren de Aragua', 'Tren de Aragua'),
           ('Los Choneros', 'Choneros'),
           ('Los Lobos', 'Los Lobos'),
           ('Los Tiguerones', 'Tiguerones'),
           ('Chone Killers', 'Chone Killers'),
           ('Los Lagartos', 'Los Lagartos'),
           ('Primeiro Comando da Capital', 'Primeiro Comando da Capital'),
           ('Primeiro Comando da Capital', 'PCC'),
           ('Comando Vermelho', 'Comando Vermelho'),
           ('Família do Norte', 'Família do Norte'),
           ('CJNG', 'CJNG'), ('CJNG', 'Cártel Jalisco Nueva Generación'),
           ('Cártel de Sinaloa', 'Cártel de Sinaloa'),
           ('Los Fantasmas', 'Los Fantasmas')
),
bounds AS (
    SELECT m.start - interval '1 month' AS prev_start,
           m.start AS this_start,
           m.start + interval '1 month' AS next_start
    -- months are UTC months: the timestamp is truncated, then read as UTC
    FROM (SELECT date_trunc('month', CAST(COALESCE(CAST(:month AS date),
                                                   CAST(now() AT TIME ZONE 'UTC' AS date))
                                          AS timestamp)) AT TIME ZONE 'UTC' AS start) m
),
hits AS MATERIALIZED (
    SELECT g.gang, h.id, h.published_at >= b.this_start AS this_month
    FROM gangs g
    CROSS JOIN bounds b
    CROSS JOIN LATERAL (
        SELECT i.id, i.published_at
        FROM items i
        WHERE item_search_vector(i.lang, i.title, i.text) @@ item_search_query(g.term)
          AND i.published_at >= b.prev_start
          AND i.published_at < b.next_start
        -- OFFSET 0 keeps this a per-name index scan; flattened, the planner may compute
        -- every item's tsvector once per name instead (15x slower on 60k items)
        OFFSET 0
    ) h
),
-- Matched coverage: the latest classification of each item found, looked up once per item
-- (one index probe each). Joining every hit to all matched classifications and checking
-- "latest" per row cost a scan of the whole classifications table plus a MAX() probe per
-- hit: a third of the query on a 1M-item archive.
matched AS (
    SELECT d.id
    FROM (SELECT DISTINCT id FROM hits) d
    CROSS JOIN LATERAL (
        SELECT c.is_match
        FROM classifications c
        WHERE c.item_id = d.id
        ORDER BY c.id DESC
        LIMIT 1
    ) latest
    WHERE latest.is_match
)
SELECT gang,
       COUNT(DISTINCT id) FILTER (WHERE this_month) AS items_this_month,
       COUNT(DISTINCT id) FILTER (WHERE NOT this_month) AS items_previous_month,
       COUNT(DISTINCT id) FILTER (WHERE NOT this_month) = 0 AS new_this_month
FROM hits
WHERE id IN (SELECT id FROM matched)
GROUP BY gang
HAVING COUNT(DISTINCT id) FILTER (WHERE this_month) > 0
ORDER BY new_this_month DESC, items_this_month DESC, gang
