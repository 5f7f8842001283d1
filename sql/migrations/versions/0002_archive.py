"""Queryable archive: feedback table, analyst views, full-text and fuzzy search, read-only role.

Revision ID: 0002
Revises: 0001

Both dialects get the `feedback` table, an index for per-source recency and the views
`daily_counts`, `source_health` and `alert_log` (the SQL differs where the dialects do: JSON
arrays, date arithmetic). PostgreSQL also gets:

* `item_ts_config(lang)` and `item_search_vector(lang, title, text)`: the text-search
  configuration for an item's language (english / spanish / portuguese, `simple` for anything
  else) and its weighted tsvector (title A, body B), with a GIN expression index
  `ix_items_search` on it, so that `cárceles` finds `cárcel` in Spanish items and `prisons`
  finds `prison` in English ones; `item_search_query(q)` turns an analyst's words (web-search
  syntax: quotes, OR, -word) into the matching tsquery:

      WHERE item_search_vector(i.lang, i.title, i.text) @@ item_search_query('cárceles')

* `pg_trgm` and a trigram GIN index `ix_items_title_trgm` on `items.title` for fuzzy title search;
* `sentinela_analyst`, a NOLOGIN group role that can read every table and view in the schema
  (today's and future ones) and write nothing. Roles are cluster-wide, so it may already exist
  (another database on the server ran this migration): creation is guarded. Give a person a
  login in it with:

      CREATE ROLE alice LOGIN PASSWORD '…' IN ROLE sentinela_analyst;
      ALTER ROLE alice SET default_transaction_read_only = on;   -- belt and braces

  On PostgreSQL ≤ 14 also run `REVOKE CREATE ON SCHEMA public FROM PUBLIC` (15+ does not grant
  it), or analysts can create tables of their own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ANALYST_ROLE = "sentinela_analyst"

# The newest classification of an item is the one that counts (a re-classification by a newer
# model supersedes the old verdict), as in the `matches` view of 0001.
_LATEST = "c.id = (SELECT MAX(c2.id) FROM classifications c2 WHERE c2.item_id = i.id)"

PG_FUNCTIONS = [
    """
CREATE OR REPLACE FUNCTION item_ts_config(lang text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE lower(lang)
    WHEN 'en' THEN 'english'::regconfig
    WHEN 'es' THEN 'spanish'::regconfig
    WHEN 'pt' THEN 'portuguese'::regconfig
    ELSE 'simple'::regconfig
  END
$$
""",
    # Kept inlinable (plain SQL, no SET clause) so the planner matches queries that call it
    # against the expression index.
    """
CREATE OR REPLACE FUNCTION item_search_vector(lang text, title text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(pg_catalog.to_tsvector(item_ts_config(lang), coalesce(title, '')), 'A')
      || setweight(pg_catalog.to_tsvector(item_ts_config(lang), coalesce(body, '')), 'B')
$$
""",
    # The analyst's words read in every configuration, OR-ed: a Spanish query finds Spanish
    # items by their Spanish stems, an English one English items, names and numbers match
    # everywhere. One constant tsquery, so one scan of ix_items_search and no recheck.
    """
CREATE OR REPLACE FUNCTION item_search_query(q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.websearch_to_tsquery('english'::regconfig, q)
      || pg_catalog.websearch_to_tsquery('spanish'::regconfig, q)
      || pg_catalog.websearch_to_tsquery('portuguese'::regconfig, q)
      || pg_catalog.websearch_to_tsquery('simple'::regconfig, q)
$$
""",
]

DAILY_COUNTS = {
    "postgresql": f"""
CREATE VIEW daily_counts AS
SELECT CAST(COALESCE(i.published_at, i.fetched_at) AT TIME ZONE 'UTC' AS date) AS day,
       l.label,
       s.country,
       i.lang AS language,
       COUNT(DISTINCT i.id) AS items
FROM items i
JOIN classifications c ON c.item_id = i.id
JOIN sources s ON s.id = i.source_id
CROSS JOIN LATERAL jsonb_array_elements_text(c.labels) AS l(label)
WHERE c.is_match AND {_LATEST}
GROUP BY 1, 2, 3, 4
""",
    "sqlite": f"""
CREATE VIEW daily_counts AS
SELECT date(COALESCE(i.published_at, i.fetched_at)) AS day,
       l.value AS label,
       s.country,
       i.lang AS language,
       COUNT(DISTINCT i.id) AS items
FROM items i
JOIN classifications c ON c.item_id = i.id
JOIN sources s ON s.id = i.source_id
JOIN json_each(c.labels) AS l
WHERE c.is_match AND {_LATEST}
GROUP BY 1, 2, 3, 4
""",
}

# Counted by fetched_at (when the archive received the item), like `sentinela sources check`:
# a source that stops delivering shows up even if its publishers back-date stories.
_SOURCE_HEALTH = """
CREATE VIEW source_health AS
SELECT s.id AS source_id,
       s.name,
       s.kind,
       s.country,
       s.last_fetch_at,
       s.last_success_at,
       s.consecutive_failures,
       (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id AND i.fetched_at >= {since_24h})
           AS items_24h,
       (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id AND i.fetched_at >= {since_7d})
           AS items_7d,
       (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id AND i.fetched_at >= {since_7d})
           / 7.0 AS items_per_day,
       (SELECT MAX(i.fetched_at) FROM items i WHERE i.source_id = s.id) AS last_item_at,
       s.last_error
FROM sources s
"""
SOURCE_HEALTH = {
    "postgresql": _SOURCE_HEALTH.format(
        since_24h="now() - interval '24 hours'", since_7d="now() - interval '7 days'"
    ),
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, which
    # compares correctly as text with datetime('now', …).
    "sqlite": _SOURCE_HEALTH.format(
        since_24h="datetime('now', '-1 day')", since_7d="datetime('now', '-7 days')"
    ),
}

ALERT_LOG = """
CREATE VIEW alert_log AS
SELECT a.id AS alert_id,
       a.item_id,
       i.title,
       i.canonical_url AS url,
       s.name AS source,
       a.channel,
       a.status,
       a.attempts,
       a.slack_ts,
       i.published_at,
       a.created_at,
       a.sent_at,
       a.last_error
FROM alerts a
JOIN items i ON i.id = a.item_id
JOIN sources s ON s.id = i.source_id
"""

PG_ROLE = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ANALYST_ROLE}') THEN
    BEGIN
      CREATE ROLE {ANALYST_ROLE} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      -- another database's migration created it between our check and our CREATE
      NULL;
    END;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ANALYST_ROLE}', current_schema());
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {ANALYST_ROLE}', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO {ANALYST_ROLE}',
                 current_schema());
END
$$
"""

PG_ROLE_DOWN = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ANALYST_ROLE}') THEN
    RETURN;
  END IF;
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE SELECT ON TABLES FROM {ANALYST_ROLE}',
                 current_schema());
  EXECUTE format('REVOKE SELECT ON ALL TABLES IN SCHEMA %I FROM {ANALYST_ROLE}', current_schema());
  EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {ANALYST_ROLE}', current_schema());
  -- The role is cluster-wide: keep it while people log in through it or another database
  -- still grants it something (DROP ROLE refuses then).
  IF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
             WHERE r.rolname = '{ANALYST_ROLE}') THEN
    RETURN;
  END IF;
  BEGIN
    DROP ROLE {ANALYST_ROLE};
  EXCEPTION WHEN dependent_objects_still_exist THEN
    NULL;
  END;
END
$$
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("label_verdict", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("item_id", "user_id", name="uq_feedback_item_user"),
        sa.CheckConstraint(
            "label_verdict IN ('relevant', 'not_relevant')", name="ck_feedback_verdict"
        ),
    )
    op.create_index("ix_feedback_alert_id", "feedback", ["alert_id"])
    # source_health, silent sources: "items of this source since T" without scanning items.
    op.create_index("ix_items_source_fetched", "items", ["source_id", "fetched_at"])
    # first_to_break: the later copies of multi-outlet stories (deduplication gives a cluster
    # its first item's id), a few percent of the archive, by date.
    copies = sa.text("cluster_id <> id")
    op.create_index(
        "ix_items_cluster_copies",
        "items",
        ["published_at"],
        postgresql_where=copies,
        sqlite_where=copies,
    )
    if dialect == "postgresql":
        for fn in PG_FUNCTIONS:
            op.execute(fn)
        op.execute(
            "CREATE INDEX ix_items_search ON items "
            "USING gin (item_search_vector(lang, title, text))"
        )
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_items_title_trgm ON items USING gin (title gin_trgm_ops)")
    op.execute(DAILY_COUNTS[dialect])
    op.execute(SOURCE_HEALTH[dialect])
    op.execute(ALERT_LOG)
    if dialect == "postgresql":
        # Last, so that GRANT … ON ALL TABLES covers the views and the feedback table.
        op.execute(PG_ROLE)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_ROLE_DOWN)
    for view in ("alert_log", "source_health", "daily_counts"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_items_title_trgm")
        op.execute("DROP INDEX IF EXISTS ix_items_search")
        op.execute("DROP FUNCTION IF EXISTS item_search_query(text)")
        op.execute("DROP FUNCTION IF EXISTS item_search_vector(text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS item_ts_config(text)")
        # pg_trgm stays: it may have been there before us, and other schemas may use it.
    op.drop_index("ix_items_cluster_copies", table_name="items")
    op.drop_index("ix_items_source_fetched", table_name="items")
    op.drop_index("ix_feedback_alert_id", table_name="feedback")
    op.drop_table("feedback")
