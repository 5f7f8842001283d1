"""Table definitions. Alembic migrations in `sql/migrations` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("lang", sa.String(8)),
    sa.Column("country", sa.String(64)),
    sa.Column("tags", JSONType),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("cursor", sa.Text),
    sa.Column("last_fetch_at", TS),
    sa.Column("last_success_at", TS),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    # 0003: a source failing again and again is not fetched before this time.
    sa.Column("next_fetch_after", TS),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("canonical_url", sa.Text, nullable=False, unique=True),
    sa.Column("guid", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("lang", sa.String(8)),
    sa.Column("published_at", TS),
    sa.Column("fetched_at", TS, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False, index=True),
    sa.Column("cluster_id", sa.Integer, index=True),
)

classifications = sa.Table(
    "classifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("labels", JSONType, nullable=False),
    sa.Column("scores", JSONType, nullable=False),
    sa.Column("evidence", JSONType),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("is_match", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("item_id", "model_version", name="uq_classification_item_model"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("slack_ts", sa.String(64)),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", TS),
    # 0004: severity, threads, the 'sending' state (status: pending|sending|sent|failed)
    sa.Column("kind", sa.String(8), nullable=False, server_default="alert"),  # alert|reply
    sa.Column("severity", sa.String(8), nullable=False, server_default="normal"),  # |high
    sa.Column("parent_alert_id", sa.Integer),
    sa.Column("thread_ts", sa.String(64)),
    sa.Column("first_attempt_at", TS),
    sa.Column("last_attempt_at", TS),
    sa.UniqueConstraint("item_id", "channel", name="uq_alert_item_channel"),
    sa.Index("ix_alerts_channel_status", "channel", "status"),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("slack_ts", sa.String(64)),
    sa.Column("channel_id", sa.String(64)),
    sa.Column("file_id", sa.String(64)),
    sa.Column("matches", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", TS),
    sa.UniqueConstraint("channel", "day", name="uq_digest_channel_day"),
)

# 0002: analysts' verdicts on matched items (one per analyst per item), the source of the
# precision-by-source query in sql/queries/.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True, index=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("label_verdict", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("item_id", "user_id", name="uq_feedback_item_user"),
    sa.CheckConstraint("label_verdict IN ('relevant', 'not_relevant')", name="ck_feedback_verdict"),
)

# 0002: per-source recency (source_health view), and on PostgreSQL only full-text search in
# the item's language (item_search_vector() is defined by the migration) and trigram search
# on titles (pg_trgm).
sa.Index("ix_items_source_fetched", items.c.source_id, items.c.fetched_at)
sa.Index(
    "ix_items_cluster_copies",
    items.c.published_at,
    postgresql_where=items.c.cluster_id != items.c.id,
    sqlite_where=items.c.cluster_id != items.c.id,
)
sa.Index(
    "ix_items_search",
    sa.func.item_search_vector(items.c.lang, items.c.title, items.c.text),
    postgresql_using="gin",
).ddl_if(dialect="postgresql")
sa.Index(
    "ix_items_title_trgm",
    items.c.title,
    postgresql_using="gin",
    postgresql_ops={"title": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_name", sa.String(200), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("excerpt", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
)

# 0003: near-duplicate clustering (pipeline/ingest/dedup.py). The MinHash signature of each
# item, and one LSH bucket key per band, indexed so that a new item finds its candidates.
item_signatures = sa.Table(
    "item_signatures",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("signature", sa.LargeBinary, nullable=False),
)

item_buckets = sa.Table(
    "item_buckets",
    metadata,
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sqlite_with_rowid=False,
)
